//! `eks-access-sync kubeconfig`, the pure part: which role of a tier admits a member,
//! and which of the member's tiers gives each cluster its context.
//!
//! The **shard convention**: a tier's configured role `R` is shard 1; when the tier
//! outgrows one trust policy, shards 2..N are roles named `R-<k>` at the path
//! [`SHARD_PATH`]. A role admits a user when the `Allow` statement of its trust policy
//! whose `Sid` is the configured one names the user's ARN under `Principal.AWS`
//! (compared ignoring ASCII case, as the engine does).
//!
//! When the member is in several tiers that apply to one cluster, the context uses the
//! tier with the widest rights ([`rights_rank`]): `cluster-admin` > `admin` > `edit` >
//! `view`, then cluster scope > namespace scope, then the first in the configuration.

use crate::model::arn::{ClusterName, RoleArn, RoleName, UserArn};
use crate::model::cluster::ClusterInfo;
use crate::model::config::TagSpec;
use crate::model::tiers::{AccessPolicy, KubeAccess, Tier, TierName};
use crate::policy::trust::{decode_policy_document, managed_principals};

/// The IAM path of a tier's extra shard roles (`R-2`, `R-3`, …).
pub const SHARD_PATH: &str = "/eks-access-sync/";

/// A role as `GetRole` or `ListRoles` shows it: its ARN and trust policy (URL-encoded
/// or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleView {
    pub arn: RoleArn,
    pub trust_policy: String,
}

/// The shard number of a role listed at [`SHARD_PATH`] for the tier role `base`:
/// `k` for a role named `<base>-<k>` (`^<base>-[0-9]+$`, case ignored as IAM role names
/// are case-insensitive) at exactly that path; `None` for any other role.
pub fn shard_number(base: &RoleName, role: &RoleArn) -> Option<u32> {
    if role.path() != SHARD_PATH {
        return None;
    }
    let name = role.name();
    let name = name.as_str();
    let base = base.as_str();
    let prefix = name.get(..base.len())?;
    if !prefix.eq_ignore_ascii_case(base) {
        return None;
    }
    let digits = name.get(base.len()..)?.strip_prefix('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Whether the managed statement (`Sid` = `sid`, `Effect` `Allow`) of `trust_policy`
/// names `user` under `Principal.AWS`, ignoring ASCII case. A policy that cannot be
/// read admits nobody.
pub fn admits(trust_policy: &str, sid: &str, user: &UserArn) -> bool {
    let Ok(doc) = decode_policy_document(trust_policy) else {
        return false;
    };
    managed_principals(&doc, sid).is_ok_and(|principals| {
        principals
            .iter()
            .any(|p| p.eq_ignore_ascii_case(user.as_str()))
    })
}

/// The role of the tier whose role is `base_name` that admits `user`: the tier role
/// itself (`base`, shard 1, when it exists) or a shard `<base>-<k>` among `listed` (the
/// roles at [`SHARD_PATH`]); with several, the lowest `k`.
pub fn role_for_user<'a>(
    base_name: &RoleName,
    base: Option<&'a RoleView>,
    listed: &'a [RoleView],
    sid: &str,
    user: &UserArn,
) -> Option<&'a RoleView> {
    let shards = listed
        .iter()
        .filter_map(|r| shard_number(base_name, &r.arn).map(|k| (k, r)));
    base.map(|r| (1, r))
        .into_iter()
        .chain(shards)
        .filter(|(_, r)| admits(&r.trust_policy, sid, user))
        .min_by_key(|(k, _)| *k)
        .map(|(_, r)| r)
}

/// How wide a tier's rights are (larger is wider): the policy first (`cluster-admin` >
/// `admin` > `edit` > `view`), then the scope (cluster > namespaces).
pub fn rights_rank(access: &KubeAccess) -> (u8, u8) {
    let policy = match access.policy {
        AccessPolicy::ClusterAdmin => 3,
        AccessPolicy::Admin => 2,
        AccessPolicy::Edit => 1,
        AccessPolicy::View => 0,
    };
    (policy, u8::from(access.is_cluster_scope()))
}

/// A tier that admits the member, and the role that does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberTier<'a> {
    pub tier: &'a Tier,
    pub role: RoleArn,
}

/// The widest of `tiers` ([`rights_rank`]; a tie goes to the first, i.e. the
/// configuration's order).
pub fn widest_tier<'a, 'b>(tiers: &[&'b MemberTier<'a>]) -> Option<&'b MemberTier<'a>> {
    let mut best: Option<&MemberTier<'a>> = None;
    for t in tiers {
        if best.is_none_or(|b| rights_rank(&t.tier.kubernetes) > rights_rank(&b.tier.kubernetes)) {
            best = Some(t);
        }
    }
    best
}

/// The namespace a context of this tier starts in: the first namespace of a
/// namespace-scoped tier that is not a wildcard.
pub fn default_namespace(tier: &Tier) -> Option<String> {
    tier.kubernetes
        .namespaces
        .iter()
        .find(|n| !n.is_wildcard())
        .map(|n| n.as_str().to_owned())
}

/// One context to write: what `aws eks update-kubeconfig --name <cluster> --region
/// <region> --role-arn <role>` would write, plus the namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedContext {
    /// The context, cluster and user name: the cluster ARN (as update-kubeconfig names
    /// them).
    pub name: String,
    pub cluster: ClusterName,
    pub region: String,
    pub server: String,
    /// `certificateAuthority.data` (base64 of the PEM).
    pub ca_data: String,
    pub tier: TierName,
    pub role: RoleArn,
    pub namespace: Option<String>,
}

/// A managed cluster that gets no context, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedCluster {
    pub cluster: ClusterName,
    pub region: String,
    pub reason: String,
}

/// The contexts for `clusters` (every cluster the regions hold): the managed ones
/// (`cluster_tag`) that one of the member's `tiers` applies to, each with the widest
/// such tier. Managed clusters that are not `ACTIVE`, have no endpoint or that no tier
/// of the member applies to are skipped with a reason; unmanaged ones silently.
pub fn plan_contexts(
    clusters: &[ClusterInfo],
    cluster_tag: &TagSpec,
    tiers: &[MemberTier<'_>],
) -> (Vec<PlannedContext>, Vec<SkippedCluster>) {
    use base64::Engine as _;
    let mut planned = Vec::new();
    let mut skipped = Vec::new();
    for c in clusters {
        if !c.has_tag(&cluster_tag.key, &cluster_tag.value) {
            continue;
        }
        let skip = |reason: String| SkippedCluster {
            cluster: c.name.clone(),
            region: c.region.clone(),
            reason,
        };
        let applying: Vec<&MemberTier<'_>> = tiers
            .iter()
            .filter(|t| {
                t.tier
                    .clusters
                    .as_ref()
                    .is_none_or(|sel| c.has_tag(&sel.key, &sel.value))
            })
            .collect();
        let Some(best) = widest_tier(&applying) else {
            skipped.push(skip("none of your tiers applies to it".into()));
            continue;
        };
        if c.status != "ACTIVE" {
            skipped.push(skip(format!("not ACTIVE ({})", c.status)));
            continue;
        }
        let Some(server) = c.endpoint.clone().filter(|e| !e.is_empty()) else {
            skipped.push(skip("no endpoint yet".into()));
            continue;
        };
        if c.arn.is_empty() {
            skipped.push(skip("DescribeCluster gave no ARN".into()));
            continue;
        }
        planned.push(PlannedContext {
            name: c.arn.clone(),
            cluster: c.name.clone(),
            region: c.region.clone(),
            server,
            ca_data: base64::engine::general_purpose::STANDARD.encode(&c.ca_pem),
            tier: best.tier.name.clone(),
            role: best.role.clone(),
            namespace: default_namespace(best.tier),
        });
    }
    (planned, skipped)
}

#[cfg(test)]
mod tests;

//! Pure planning for clusters in `API` / `API_AND_CONFIG_MAP` mode, where
//! EKS access entries replace (or complement) `aws-auth`.
//!
//! Decisions:
//! - The admin entry's principal is the role's **full** ARN, path included:
//!   the EKS user guide ("Create access entries") says an access entry's role
//!   ARN can include a path, unlike aws-auth. Existing entries are matched
//!   ignoring path and case, so an entry made without the path is recognised
//!   (the principal of an entry cannot be changed; we leave such an entry).
//! - EKS refuses `system:masters` and groups or usernames starting with
//!   `system:`, `eks:`, `aws:`, `amazon:`, `iam:`. Such groups are dropped; a
//!   reserved username is replaced by none (EKS then picks its default). Admin
//!   rights come from associating `AmazonEKSClusterAdminPolicy` with
//!   `cluster` scope.
//! - Access entries are not removed by EKS when the IAM user is deleted:
//!   entries whose principal is an offboarded user are deleted.
//! - **Re-created role.** EKS stores the principal's unique ID (`AROA…`) in an
//!   access entry when it is created and matches callers by that ID: a role
//!   deleted and re-created under the same name gets a new ID, and its old entry
//!   then silently refuses everyone (containers-roadmap #2441). `DescribeAccessEntry`
//!   does not show the stored ID, only `createdAt`; `GetRole` gives the role's
//!   `CreateDate`. Rule: the admin entry is stale when its `createdAt` is strictly
//!   earlier than the role's `CreateDate`, compared at the precision each service
//!   reports (EKS: milliseconds; IAM: seconds, truncated, so a role's reported
//!   `CreateDate` is never later than its real creation and an entry made for the
//!   role is never taken for stale). A stale entry is deleted and created again for
//!   the current role, with the policy re-associated. Limits: a role re-created
//!   within the same second as the entry was created is not seen (its `CreateDate`
//!   reads as the entry's second); clock skew between IAM and EKS can make an entry
//!   created within the skew after the role look stale, which costs one needless
//!   re-creation, after which the new entry is younger than the role (the next run
//!   writes nothing). Unknown times (a response without them) never trigger it.
//!   The same holds in `API_AND_CONFIG_MAP` mode, where a caller whose ID matches no
//!   entry falls back to aws-auth. aws-auth itself is not affected: it maps by ARN,
//!   so a re-created role keeps its `mapRoles` access.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::model::arn::RoleArn;
use crate::model::mapping::{AdminMapping, Offboarded};
use crate::model::tiers::{AccessPolicy, KubeAccess};

/// The EKS managed policy giving cluster-admin.
pub const CLUSTER_ADMIN_POLICY: &str =
    "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy";
/// Access scope types.
pub const CLUSTER_SCOPE: &str = "cluster";
pub const NAMESPACE_SCOPE: &str = "namespace";
/// Prefixes EKS refuses in access-entry usernames and groups.
pub const RESERVED_PREFIXES: [&str; 5] = ["system:", "eks:", "aws:", "amazon:", "iam:"];

/// A creation time as EKS (`createdAt`) or IAM (`CreateDate`) reports it; shown and
/// serialized as RFC 3339 (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

/// A timestamp that is not RFC 3339 or is out of range.
#[derive(Debug, thiserror::Error)]
#[error("invalid timestamp {value:?}: {reason}")]
pub struct TimestampError {
    value: String,
    reason: String,
}

impl Timestamp {
    /// From nanoseconds since the Unix epoch; `None` out of range.
    pub fn from_unix_nanos(nanos: i128) -> Option<Self> {
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .map(Timestamp)
    }

    /// Nanoseconds since the Unix epoch.
    pub fn unix_nanos(self) -> i128 {
        self.0.unix_timestamp_nanos()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.format(&Rfc3339) {
            Ok(s) => f.write_str(&s),
            Err(_) => write!(f, "{}ns", self.unix_nanos()),
        }
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, TimestampError> {
        OffsetDateTime::parse(s, &Rfc3339)
            .map(Timestamp)
            .map_err(|e| TimestampError {
                value: s.to_owned(),
                reason: e.to_string(),
            })
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An access entry as the cluster holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessEntryView {
    pub principal_arn: String,
    pub username: Option<String>,
    pub kubernetes_groups: Vec<String>,
    /// `(policy ARN, access scope type)`.
    pub policies: Vec<(String, String)>,
    /// The namespaces of each namespace-scoped association, by policy ARN.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub policy_namespaces: BTreeMap<String, Vec<String>>,
    /// `createdAt`; `None` when not known (not read, or not in the response).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
}

/// The admin role's entry was created before the role: the role was deleted and
/// re-created under the same name, and the entry holds the old role's unique ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StaleAdminEntry {
    /// The principal ARN of the entry to delete (as the entry spells it).
    pub principal_arn: String,
    /// The entry's `createdAt`.
    pub entry_created_at: Timestamp,
    /// The role's `CreateDate`.
    pub role_created_at: Timestamp,
}

impl fmt::Display for StaleAdminEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "re-create access entry of {}: the role was re-created after the entry (entry {} < role {})",
            self.principal_arn, self.entry_created_at, self.role_created_at
        )
    }
}

/// An access entry to create or update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAccessEntry {
    pub principal_arn: String,
    /// `None`: let EKS choose (or keep) the username.
    pub username: Option<String>,
    pub kubernetes_groups: Vec<String>,
}

/// The access policy a tier role's entry gets, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyAssociation {
    pub policy_arn: String,
    /// The namespaces (patterns allowed); empty: cluster scope.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
}

impl Default for PolicyAssociation {
    /// [`CLUSTER_ADMIN_POLICY`] at cluster scope (the single-tier admin).
    fn default() -> Self {
        PolicyAssociation {
            policy_arn: CLUSTER_ADMIN_POLICY.to_owned(),
            namespaces: Vec::new(),
        }
    }
}

impl PolicyAssociation {
    /// A tier's policy and scope.
    pub fn for_access(access: &KubeAccess, partition: &str) -> Self {
        PolicyAssociation {
            policy_arn: access.policy.arn_in_partition(partition),
            namespaces: access
                .namespaces
                .iter()
                .map(|n| n.as_str().to_owned())
                .collect(),
        }
    }

    /// `cluster` or `namespace`, as EKS names the scope types.
    pub fn scope_type(&self) -> &'static str {
        if self.namespaces.is_empty() {
            CLUSTER_SCOPE
        } else {
            NAMESPACE_SCOPE
        }
    }

    /// Whether `entry` already has this association, with this exact scope.
    pub fn is_on(&self, entry: &AccessEntryView) -> bool {
        let scope = self.scope_type();
        let same_namespaces = || {
            let mut have = entry
                .policy_namespaces
                .get(&self.policy_arn)
                .cloned()
                .unwrap_or_default();
            have.sort();
            let mut want = self.namespaces.clone();
            want.sort();
            have == want
        };
        entry.policies.iter().any(|(p, s)| {
            p == &self.policy_arn
                && s.eq_ignore_ascii_case(scope)
                && (scope == CLUSTER_SCOPE || same_namespaces())
        })
    }
}

impl fmt::Display for PolicyAssociation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespaces.is_empty() {
            write!(f, "{} (cluster scope)", self.policy_arn)
        } else {
            write!(
                f,
                "{} (namespaces {})",
                self.policy_arn,
                self.namespaces.join(", ")
            )
        }
    }
}

/// What to do on one cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessEntryPlan {
    /// The admin entry predates the role: delete it first; `create_admin_entry` and
    /// `associate_admin_policy` then make it again for the current role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recreate_admin_entry: Option<StaleAdminEntry>,
    pub create_admin_entry: Option<NewAccessEntry>,
    pub update_admin_entry: Option<NewAccessEntry>,
    /// Associate `policy` on the entry's principal.
    pub associate_admin_policy: bool,
    /// The role's access policy and scope (the single-tier admin's:
    /// [`CLUSTER_ADMIN_POLICY`] at cluster scope).
    #[serde(default)]
    pub policy: PolicyAssociation,
    /// Tier policies associated with the role's entry other than `policy` (the
    /// tier's policy changed): disassociated, so that a tier's rights never outlive
    /// its configuration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disassociate: Vec<String>,
    /// Principal ARNs whose entries must be deleted.
    pub delete_entries: Vec<String>,
    /// The plans of the other tier roles mapped on the cluster (configuration order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_tiers: Vec<AccessEntryPlan>,
}

impl AccessEntryPlan {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.recreate_admin_entry.is_none()
            && self.create_admin_entry.is_none()
            && self.update_admin_entry.is_none()
            && !self.associate_admin_policy
            && self.disassociate.is_empty()
            && self.delete_entries.is_empty()
            && self.more_tiers.iter().all(AccessEntryPlan::is_empty)
    }

    /// One line per write, for people and the report.
    pub fn change_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(e) = &self.create_admin_entry {
            out.push(format!("create access entry for {}", e.principal_arn));
        }
        if let Some(e) = &self.update_admin_entry {
            out.push(format!("update access entry for {}", e.principal_arn));
        }
        if self.associate_admin_policy {
            out.push(format!("associate {}", self.policy));
        }
        for p in &self.disassociate {
            out.push(format!("disassociate {p}"));
        }
        for p in &self.delete_entries {
            out.push(format!("delete access entry for {p}"));
        }
        for t in &self.more_tiers {
            out.extend(t.change_lines());
        }
        out
    }
}

/// Whether `arn` is one of the four EKS access policies a tier may have (in any
/// partition): the ones the tool associates, and so may take away.
pub fn is_tier_policy(arn: &str) -> bool {
    arn.starts_with("arn:")
        && arn.split(':').nth(2) == Some("eks")
        && arn
            .rsplit_once(":cluster-access-policy/")
            .is_some_and(|(_, name)| AccessPolicy::ALL.iter().any(|p| p.name() == name))
}

/// The principals of the entries of offboarded users.
pub fn offboarded_entries(current: &[AccessEntryView], offboarded: &[Offboarded]) -> Vec<String> {
    current
        .iter()
        .filter(|e| offboarded.iter().any(|o| o.matches(&e.principal_arn)))
        .map(|e| e.principal_arn.clone())
        .collect()
}

/// Whether EKS would refuse this group or username.
pub fn is_reserved(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p))
}

/// The groups EKS accepts, in order, without duplicates.
pub fn allowed_groups(groups: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for g in groups {
        if !is_reserved(g) && !out.contains(g) {
            out.push(g.clone());
        }
    }
    out
}

fn same_role(principal: &str, admin: &RoleArn) -> bool {
    principal
        .parse::<RoleArn>()
        .map(|r| r.eq_ignoring_path_and_case(admin))
        .unwrap_or(false)
}

/// Plans the access-entry changes for one cluster. `role_created`: the admin role's
/// `CreateDate`, to tell an entry left from a deleted role of the same name.
pub fn plan_access_entries(
    current: &[AccessEntryView],
    admin: &AdminMapping,
    offboarded: &[Offboarded],
    role_created: Option<Timestamp>,
) -> AccessEntryPlan {
    plan_role_entry(
        current,
        admin,
        &PolicyAssociation::default(),
        offboarded,
        role_created,
    )
}

/// Plans one tier role's entry (`role` mapped with `policy`) and the deletion of the
/// offboarded users' entries.
pub fn plan_role_entry(
    current: &[AccessEntryView],
    admin: &AdminMapping,
    policy: &PolicyAssociation,
    offboarded: &[Offboarded],
    role_created: Option<Timestamp>,
) -> AccessEntryPlan {
    let username = (!admin.username.is_empty() && !is_reserved(&admin.username))
        .then(|| admin.username.clone());
    let groups = allowed_groups(&admin.groups);
    let mut plan = AccessEntryPlan {
        policy: policy.clone(),
        ..AccessEntryPlan::default()
    };

    let existing = current
        .iter()
        .find(|e| same_role(&e.principal_arn, &admin.role_arn));
    // The rule of the module documentation: strictly earlier; unknown times never are.
    plan.recreate_admin_entry = existing.and_then(|e| match (e.created_at, role_created) {
        (Some(entry_created_at), Some(role_created_at)) if entry_created_at < role_created_at => {
            Some(StaleAdminEntry {
                principal_arn: e.principal_arn.clone(),
                entry_created_at,
                role_created_at,
            })
        }
        _ => None,
    });

    // A stale entry is made again as a missing one is (after it is deleted).
    match existing.filter(|_| plan.recreate_admin_entry.is_none()) {
        None => {
            plan.create_admin_entry = Some(NewAccessEntry {
                principal_arn: admin.role_arn.to_string(),
                username,
                kubernetes_groups: groups,
            });
            plan.associate_admin_policy = true;
        }
        Some(e) => {
            let mut have = e.kubernetes_groups.clone();
            have.sort();
            let mut want = groups.clone();
            want.sort();
            let user_differs = username.is_some() && e.username != username;
            if have != want || user_differs {
                plan.update_admin_entry = Some(NewAccessEntry {
                    principal_arn: e.principal_arn.clone(),
                    username: if user_differs { username } else { None },
                    kubernetes_groups: groups,
                });
            }
            plan.associate_admin_policy = !policy.is_on(e);
            plan.disassociate = e
                .policies
                .iter()
                .map(|(p, _)| p)
                .filter(|p| **p != policy.policy_arn && is_tier_policy(p))
                .cloned()
                .collect();
            plan.disassociate.dedup();
        }
    }

    plan.delete_entries = offboarded_entries(current, offboarded);
    plan
}

#[cfg(test)]
mod tests;

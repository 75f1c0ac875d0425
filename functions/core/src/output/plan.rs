//! A plan is data: what the trust policy and each cluster will get.
//!
//! It serializes as camelCase JSON for machines and renders as a unified diff
//! (with the `similar` crate) for people: the pretty-printed trust policy, and
//! each changed `aws-auth` key under a per-cluster header. The inputs hold no
//! secrets, so neither does the output.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use similar::TextDiff;

use crate::model::arn::{ClusterName, RoleName, UserArn};
use crate::model::cluster::Backend;
use crate::model::tiers::Tier;
use crate::output::report::spans_accounts;
use crate::policy::accessentry::AccessEntryPlan;
use crate::policy::rbac::RbacPlan;
use crate::policy::trust::TrustEdit;

/// Everything a run would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub dry_run: bool,
    /// The first tier's trust policy; every tier's is in `tiers`.
    pub trust_policy: TrustPolicyPlan,
    /// Each tier's trust policy, in the configuration's order.
    #[serde(default)]
    pub tiers: Vec<TrustPolicyPlan>,
    pub clusters: Vec<ClusterPlan>,
}

/// The trust-policy part of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustPolicyPlan {
    pub role_name: RoleName,
    pub added: Vec<UserArn>,
    pub removed: Vec<String>,
    pub dangling_removed: Vec<String>,
    pub foreign_dangling: Vec<String>,
    pub size_before: usize,
    pub size_after: usize,
    pub max_chars: usize,
    pub before: String,
    pub after: Option<String>,
    /// The tier's shard roles written or created (issue 11), each as its own plan
    /// (`before` empty for a role to create).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<TrustPolicyPlan>,
}

impl TrustPolicyPlan {
    /// Builds the plan part from an edit of `role_name`'s policy.
    pub fn from_edit(role_name: RoleName, e: &TrustEdit) -> Self {
        TrustPolicyPlan {
            role_name,
            added: e.added.clone(),
            removed: e.removed.clone(),
            dangling_removed: e.dangling_removed.clone(),
            foreign_dangling: e.foreign_dangling.clone(),
            size_before: e.size_before,
            size_after: e.size_after,
            max_chars: e.max_chars,
            before: e.before.clone(),
            after: e.after.clone(),
            shards: Vec::new(),
        }
    }

    /// Nothing planned yet for `tier`'s role.
    pub fn empty(tier: &Tier, max_chars: usize) -> Self {
        Self::empty_for(tier.role.clone(), max_chars)
    }

    /// Nothing planned yet for `role_name`.
    pub fn empty_for(role_name: RoleName, max_chars: usize) -> Self {
        TrustPolicyPlan {
            role_name,
            added: Vec::new(),
            removed: Vec::new(),
            dangling_removed: Vec::new(),
            foreign_dangling: Vec::new(),
            size_before: 0,
            size_after: 0,
            max_chars,
            before: String::new(),
            after: None,
            shards: Vec::new(),
        }
    }

    /// Whether the policy will be written.
    pub fn changed(&self) -> bool {
        self.after.is_some()
    }
}

/// One cluster's part of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPlan {
    pub name: ClusterName,
    /// The account the cluster is in (issue 12); empty when not known (a region of
    /// the hub's that could not be listed).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub account: String,
    pub region: String,
    pub backend: Backend,
    pub change: ClusterChange,
    /// The tiers' RBAC bindings (aws-auth clusters).
    #[serde(default, skip_serializing_if = "RbacPlan::is_empty")]
    pub rbac: RbacPlan,
}

/// What happens to one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum ClusterChange {
    Unchanged,
    #[serde(rename_all = "camelCase")]
    AwsAuth {
        before: Option<BTreeMap<String, String>>,
        after: BTreeMap<String, String>,
        changes: Vec<String>,
        create: bool,
    },
    AccessEntries(Box<AccessEntryPlan>),
    Skipped {
        reason: String,
    },
    Failed {
        error: String,
    },
}

impl ClusterChange {
    /// Whether this cluster gets a write.
    pub fn has_changes(&self) -> bool {
        match self {
            ClusterChange::AwsAuth {
                changes, create, ..
            } => !changes.is_empty() || *create,
            ClusterChange::AccessEntries(p) => !p.is_empty(),
            _ => false,
        }
    }
}

fn pretty(doc: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(doc)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
    {
        Some(mut s) => {
            s.push('\n');
            s
        }
        None => format!("{doc}\n"),
    }
}

fn diff(out: &mut String, old: &str, new: &str, old_name: &str, new_name: &str) {
    let d = TextDiff::from_lines(old, new);
    let _ = write!(
        out,
        "{}",
        d.unified_diff()
            .context_radius(3)
            .header(old_name, new_name)
    );
}

impl Plan {
    /// Whether anything would be written.
    pub fn has_changes(&self) -> bool {
        self.trust_policy.changed()
            || self
                .tiers
                .iter()
                .any(|t| t.changed() || t.shards.iter().any(TrustPolicyPlan::changed))
            || self.clusters.iter().any(|c| {
                c.change.has_changes() || !c.rbac.put.is_empty() || !c.rbac.delete.is_empty()
            })
    }

    /// A readable summary with unified diffs.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let tiers = if self.tiers.is_empty() {
            std::slice::from_ref(&self.trust_policy)
        } else {
            &self.tiers[..]
        };
        for t in tiers {
            render_trust(&mut out, t, self.dry_run);
            for s in &t.shards {
                render_trust(&mut out, s, self.dry_run);
            }
        }
        // Clusters come sorted by account: each account's get a heading when there are
        // several.
        let accounts = spans_accounts(self.clusters.iter().map(|c| c.account.as_str()));
        let mut account: Option<&str> = None;
        for c in &self.clusters {
            if accounts && account != Some(c.account.as_str()) {
                account = Some(c.account.as_str());
                let _ = writeln!(out, "\n== Account {} ==", c.account);
            }
            let backend = match c.backend {
                Backend::ConfigMap => "aws-auth",
                Backend::AccessEntries => "access entries",
            };
            let _ = writeln!(out, "\nCluster {} ({}, {backend}):", c.name, c.region);
            match &c.change {
                ClusterChange::Unchanged => {
                    let _ = writeln!(out, "  no change");
                }
                ClusterChange::Skipped { reason } => {
                    let _ = writeln!(out, "  skipped: {reason}");
                }
                ClusterChange::Failed { error } => {
                    let _ = writeln!(out, "  FAILED: {error}");
                }
                ClusterChange::AwsAuth {
                    before,
                    after,
                    changes,
                    create,
                } => render_aws_auth(&mut out, before.as_ref(), after, changes, *create),
                ClusterChange::AccessEntries(p) => render_access_entries(&mut out, p),
            }
            for line in c.rbac.change_lines() {
                let _ = writeln!(out, "  * {line}");
            }
        }
        out
    }
}

/// One role's trust-policy change: the principals, then the diff.
fn render_trust(out: &mut String, t: &TrustPolicyPlan, dry_run: bool) {
    let _ = writeln!(
        out,
        "{}Trust policy of role {}: {} ({} -> {} of {} characters)",
        if dry_run { "[dry run] " } else { "" },
        t.role_name,
        match (t.changed(), t.before.is_empty()) {
            (true, true) => "create (a new shard role)",
            (true, false) => "update",
            (false, _) => "no change",
        },
        t.size_before,
        t.size_after,
        t.max_chars
    );
    for a in &t.added {
        let _ = writeln!(out, "  + {a}");
    }
    for r in &t.removed {
        let _ = writeln!(out, "  - {r}");
    }
    for d in &t.dangling_removed {
        let _ = writeln!(out, "  - {d} (dangling ID of a deleted principal)");
    }
    for d in &t.foreign_dangling {
        let _ = writeln!(
            out,
            "  ! {d}: dangling ID in a statement we do not own (left alone)"
        );
    }
    if let Some(after) = &t.after {
        diff(
            out,
            &pretty(&t.before),
            &pretty(after),
            "trust-policy (current)",
            "trust-policy (planned)",
        );
    }
}

/// A cluster's aws-auth change: the change lines, then a diff per changed key.
fn render_aws_auth(
    out: &mut String,
    before: Option<&BTreeMap<String, String>>,
    after: &BTreeMap<String, String>,
    changes: &[String],
    create: bool,
) {
    if create && before.is_none() {
        let _ = writeln!(out, "  create ConfigMap kube-system/aws-auth");
    }
    for ch in changes {
        let _ = writeln!(out, "  * {ch}");
    }
    let empty = BTreeMap::new();
    let before = before.unwrap_or(&empty);
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for k in keys {
        let (o, n) = (before.get(k), after.get(k));
        if o == n {
            continue;
        }
        diff(
            out,
            o.map(String::as_str).unwrap_or(""),
            n.map(String::as_str).unwrap_or(""),
            &format!("aws-auth/data.{k} (current)"),
            &format!("aws-auth/data.{k} (planned)"),
        );
    }
}

/// A cluster's access-entry writes, one line each.
fn render_access_entries(out: &mut String, p: &AccessEntryPlan) {
    if p.is_empty() {
        let _ = writeln!(out, "  no change");
    }
    if let Some(r) = &p.recreate_admin_entry {
        let _ = writeln!(out, "  - access entry {} ({r})", r.principal_arn);
    }
    if let Some(e) = &p.create_admin_entry {
        let _ = writeln!(
            out,
            "  + access entry {} (username {}, groups [{}])",
            e.principal_arn,
            e.username.as_deref().unwrap_or("(EKS default)"),
            e.kubernetes_groups.join(", ")
        );
    }
    if let Some(e) = &p.update_admin_entry {
        let _ = writeln!(
            out,
            "  ~ access entry {} (username {}, groups [{}])",
            e.principal_arn,
            e.username.as_deref().unwrap_or("(unchanged)"),
            e.kubernetes_groups.join(", ")
        );
    }
    if p.associate_admin_policy {
        let _ = writeln!(out, "  + associate {}", p.policy);
    }
    for d in &p.disassociate {
        let _ = writeln!(out, "  - associated policy {d} (the tier's policy changed)");
    }
    for d in &p.delete_entries {
        let _ = writeln!(out, "  - access entry {d}");
    }
    for t in &p.more_tiers {
        render_access_entries(out, t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::accessentry::{AccessEntryPlan, NewAccessEntry};
    use crate::policy::trust::{PrincipalChange, TrustOptions, edit_trust_policy};
    use crate::{model::mapping::AdminMapping, policy::awsauth::edit_aws_auth};

    const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"},{"Sid":"EksAccessSyncAdmins","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"sts:AssumeRole"}]}"#;

    fn opts() -> TrustOptions {
        TrustOptions {
            sid: "EksAccessSyncAdmins".into(),
            max_chars: 2048,
            require_session_name: false,
            account_fallback: None,
        }
    }

    fn plan(change: &PrincipalChange) -> Plan {
        let edit = edit_trust_policy(DOC, change, &opts()).unwrap();
        let admin = AdminMapping {
            role_arn: "arn:aws:iam::123456789012:role/EksAdmin".parse().unwrap(),
            username: "admin:{{AccessKeyID}}:{{SessionName}}".into(),
            groups: vec!["system:masters".into()],
        };
        let before: BTreeMap<String, String> = [(
            "mapRoles".to_string(),
            "- rolearn: arn:aws:iam::123456789012:role/node\n  username: system:node:{{EC2PrivateDNSName}}\n  groups:\n  - system:nodes\n".to_string(),
        ), ("mapAccounts".to_string(), "- \"123456789012\"\n".to_string())]
        .into();
        let aa = edit_aws_auth(Some(&before), &admin, &[]).unwrap();
        Plan {
            dry_run: true,
            trust_policy: TrustPolicyPlan::from_edit("EksAdmin".parse().unwrap(), &edit),
            tiers: vec![TrustPolicyPlan::from_edit(
                "EksAdmin".parse().unwrap(),
                &edit,
            )],
            clusters: vec![
                ClusterPlan {
                    name: "prod".parse().unwrap(),
                    account: String::new(),
                    region: "us-east-1".into(),
                    backend: Backend::ConfigMap,
                    rbac: RbacPlan::default(),
                    change: ClusterChange::AwsAuth {
                        before: Some(before),
                        after: aa.data,
                        changes: aa.changes.iter().map(|c| c.to_string()).collect(),
                        create: aa.created,
                    },
                },
                ClusterPlan {
                    name: "api".parse().unwrap(),
                    account: String::new(),
                    region: "eu-west-1".into(),
                    backend: Backend::AccessEntries,
                    rbac: RbacPlan::default(),
                    change: ClusterChange::AccessEntries(Box::new(AccessEntryPlan {
                        recreate_admin_entry: None,
                        create_admin_entry: Some(NewAccessEntry {
                            principal_arn: "arn:aws:iam::123456789012:role/EksAdmin".into(),
                            username: None,
                            kubernetes_groups: vec![],
                        }),
                        update_admin_entry: None,
                        associate_admin_policy: true,
                        policy: Default::default(),
                        disassociate: vec![],
                        delete_entries: vec!["arn:aws:iam::123456789012:user/dave".into()],
                        more_tiers: vec![],
                    })),
                },
                ClusterPlan {
                    name: "old".parse().unwrap(),
                    account: String::new(),
                    region: "us-east-1".into(),
                    backend: Backend::ConfigMap,
                    rbac: RbacPlan::default(),
                    change: ClusterChange::Failed {
                        error: "Unauthorized".into(),
                    },
                },
            ],
        }
    }

    #[test]
    fn renders_diffs_and_summaries() {
        let p = plan(&PrincipalChange::Add(
            "arn:aws:iam::123456789012:user/bob".parse().unwrap(),
        ));
        assert!(p.has_changes());
        let t = p.render_text();
        for needle in [
            "[dry run] Trust policy of role EksAdmin: update",
            "  + arn:aws:iam::123456789012:user/bob",
            "--- trust-policy (current)",
            "+++ trust-policy (planned)",
            "-        \"AWS\": \"arn:aws:iam::123456789012:user/alice\"",
            "+          \"arn:aws:iam::123456789012:user/bob\"",
            "Cluster prod (us-east-1, aws-auth):",
            "  * mapRoles: add tier role mapping arn:aws:iam::123456789012:role/EksAdmin",
            "--- aws-auth/data.mapRoles (current)",
            "+- rolearn: \"arn:aws:iam::123456789012:role/EksAdmin\"",
            "Cluster api (eu-west-1, access entries):",
            "  + access entry arn:aws:iam::123456789012:role/EksAdmin (username (EKS default), groups [])",
            "  - access entry arn:aws:iam::123456789012:user/dave",
            "Cluster old (us-east-1, aws-auth):\n  FAILED: Unauthorized",
        ] {
            assert!(t.contains(needle), "missing {needle:?} in\n{t}");
        }
        // Untouched keys are not diffed.
        assert!(!t.contains("mapAccounts"), "{t}");
    }

    #[test]
    fn json_is_camel_case() {
        let p = plan(&PrincipalChange::Add(
            "arn:aws:iam::123456789012:user/bob".parse().unwrap(),
        ));
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["dryRun"], true);
        assert_eq!(v["trustPolicy"]["roleName"], "EksAdmin");
        assert_eq!(
            v["trustPolicy"]["added"][0],
            "arn:aws:iam::123456789012:user/bob"
        );
        assert!(
            v["trustPolicy"]["sizeAfter"].as_u64().unwrap()
                > v["trustPolicy"]["sizeBefore"].as_u64().unwrap()
        );
        assert_eq!(v["clusters"][0]["backend"], "configmap");
        assert_eq!(v["clusters"][1]["backend"], "accessEntries");
        assert_eq!(v["clusters"][0]["change"]["type"], "awsAuth");
        assert_eq!(v["clusters"][1]["change"]["associateAdminPolicy"], true);
        assert_eq!(v["clusters"][2]["change"]["error"], "Unauthorized");
        let back: Plan = serde_json::from_value(v).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn no_change_plan() {
        let mut p = plan(&PrincipalChange::Add(
            "arn:aws:iam::123456789012:user/alice".parse().unwrap(),
        ));
        p.clusters
            .retain(|c| matches!(c.change, ClusterChange::Failed { .. }));
        p.clusters.push(ClusterPlan {
            name: "idle".parse().unwrap(),
            account: String::new(),
            region: "us-east-1".into(),
            backend: Backend::AccessEntries,
            rbac: RbacPlan::default(),
            change: ClusterChange::AccessEntries(Box::default()),
        });
        assert!(!p.has_changes());
        let t = p.render_text();
        assert!(t.contains("EksAdmin: no change"), "{t}");
        assert!(!t.contains("---"), "{t}");
        assert!(
            t.contains("Cluster idle (us-east-1, access entries):\n  no change"),
            "{t}"
        );
    }
}

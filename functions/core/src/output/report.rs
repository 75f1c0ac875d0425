//! The run report: what one run found and did, as JSON (camelCase).
//!
//! Every Lambda invocation and CLI run yields one. `succeeded()` is false when the
//! trust-policy step or any cluster failed.

use serde::{Deserialize, Serialize};

use crate::output::plan::Plan;

pub use crate::model::cluster::Backend;

/// The outcome of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub dry_run: bool,
    /// The first tier's trust policy (the `admin` tier of the single-tier
    /// variables); every tier's is in `tiers`.
    pub trust_policy: TrustPolicyReport,
    /// Each tier's trust policy, in the configuration's order.
    #[serde(default)]
    pub tiers: Vec<TierReport>,
    /// Sorted by region, then name.
    pub clusters: Vec<ClusterReport>,
    /// aws-auth read-modify-writes retried (a 409, or a 5xx or 429 on the read or the
    /// write), counted even when the cluster failed in the end.
    pub conflict_retries: u32,
    /// Users carrying the admin tag (in a full run; 1 or 0 for an event).
    pub admin_users: usize,
    /// How long the run took, in milliseconds (from its start to its report).
    #[serde(default)]
    pub duration_ms: u64,
    /// The plan, on dry runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
}

/// One tier's trust side.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TierReport {
    pub tier: String,
    /// The tier's members (in a full run; 1 or 0 for an event), or, when no listing
    /// was read, the users its trust policy names.
    pub members: usize,
    /// The tier role's trust policy, with the users added to or removed from any
    /// role of the tier (its shards included).
    pub trust_policy: TrustPolicyReport,
    /// Every role of the tier read or created by the run: the tier role first, then
    /// its shards (issue 11), each with its size against the quota.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<RoleUsage>,
    /// A role at 80 % of its quota or more where the next member would go, …
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One role of a tier: its members and size against `ACLSizePerRole`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleUsage {
    pub role_name: String,
    /// 1 for the tier role, k for its shard `<role>-k`.
    pub shard: u32,
    pub members: usize,
    /// Minified size after the run, as IAM counts it.
    pub size_chars: usize,
    pub max_chars: usize,
    /// `size_chars` in percent of `max_chars` (rounded down).
    pub percent: usize,
    /// Created by this run (a new shard).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub created: bool,
    /// Its trust policy written (or, on a dry run, to be written) by this run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub changed: bool,
}

impl RoleUsage {
    pub fn new(role_name: &str, shard: u32, members: usize, size: usize, max: usize) -> Self {
        RoleUsage {
            role_name: role_name.to_owned(),
            shard,
            members,
            size_chars: size,
            max_chars: max,
            percent: size.saturating_mul(100).checked_div(max).unwrap_or(0),
            created: false,
            changed: false,
        }
    }
}

/// A role's trust policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustPolicyReport {
    pub role_name: String,
    /// Written (or, on a dry run, would be written).
    pub changed: bool,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub dangling_removed: Vec<String>,
    /// Dangling IDs in statements we do not own: reported, never touched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign_dangling: Vec<String>,
    /// Minified size after the run, as IAM counts it.
    pub size_chars: usize,
    pub max_chars: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What happened on one cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ClusterStatus {
    Unchanged,
    Updated,
    Created,
    Skipped,
    Failed,
}

/// One cluster's line in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterReport {
    pub name: String,
    /// The account the cluster is in (issue 12); empty when not known (a region of
    /// the hub's that could not be listed).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub account: String,
    pub region: String,
    pub backend: Backend,
    pub status: ClusterStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Human-readable changes (made, or planned on a dry run).
    #[serde(default)]
    pub changes: Vec<String>,
    /// The tiers whose role the cluster maps (or was to map).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<String>,
}

/// Whether clusters of more than one account are listed (their text then names each
/// cluster's account).
pub fn spans_accounts<'a>(accounts: impl Iterator<Item = &'a str>) -> bool {
    let mut seen: Option<&str> = None;
    for a in accounts.filter(|a| !a.is_empty()) {
        match seen {
            Some(s) if s != a => return true,
            _ => seen = Some(a),
        }
    }
    false
}

impl ClusterReport {
    /// `region/name`, or `account/region/name` when `with_account`.
    pub fn location(&self, with_account: bool) -> String {
        if with_account && !self.account.is_empty() {
            format!("{}/{}/{}", self.account, self.region, self.name)
        } else {
            format!("{}/{}", self.region, self.name)
        }
    }
}

impl RunReport {
    pub fn new(dry_run: bool, role_name: &str, max_chars: usize) -> Self {
        RunReport {
            dry_run,
            trust_policy: TrustPolicyReport {
                role_name: role_name.to_owned(),
                max_chars,
                ..TrustPolicyReport::default()
            },
            tiers: Vec::new(),
            clusters: Vec::new(),
            conflict_retries: 0,
            admin_users: 0,
            duration_ms: 0,
            plan: None,
        }
    }

    /// False if the trust-policy step or any cluster failed.
    pub fn succeeded(&self) -> bool {
        self.trust_policy.error.is_none()
            && self.tiers.iter().all(|t| t.trust_policy.error.is_none())
            && self
                .clusters
                .iter()
                .all(|c| c.status != ClusterStatus::Failed)
    }

    /// One line naming every failure (trust policy, then each failed cluster);
    /// empty when the run succeeded. Holds no secrets: errors carry AWS codes and messages.
    pub fn failure_summary(&self) -> String {
        let mut parts = Vec::new();
        if self.tiers.len() > 1 {
            for t in &self.tiers {
                if let Some(e) = &t.trust_policy.error {
                    parts.push(format!("trust policy of {}: {e}", t.trust_policy.role_name));
                }
            }
        } else if let Some(e) = &self.trust_policy.error {
            parts.push(format!("trust policy: {e}"));
        }
        let accounts = spans_accounts(self.clusters.iter().map(|c| c.account.as_str()));
        for c in self.clusters.iter().filter(|c| c.error.is_some()) {
            parts.push(format!(
                "cluster {}: {}",
                c.location(accounts),
                c.error.as_deref().unwrap_or_default()
            ));
        }
        parts.join("; ")
    }

    /// How many clusters ended in `status`.
    pub fn count(&self, status: ClusterStatus) -> usize {
        self.clusters.iter().filter(|c| c.status == status).count()
    }

    /// Whether anything was (or, on a dry run, would be) written.
    pub fn changed_anything(&self) -> bool {
        self.trust_policy.changed
            || self
                .clusters
                .iter()
                .any(|c| matches!(c.status, ClusterStatus::Updated | ClusterStatus::Created))
    }

    /// One line per cluster and one for the trust policy, for the CLI.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let verb = if self.dry_run {
            "would change"
        } else {
            "changed"
        };
        let tiers: Vec<(Option<&str>, &TrustPolicyReport)> = if self.tiers.len() > 1 {
            self.tiers
                .iter()
                .map(|t| (Some(t.tier.as_str()), &t.trust_policy))
                .collect()
        } else {
            vec![(None, &self.trust_policy)]
        };
        for (tier, t) in tiers {
            out.push_str(&format!(
                "{}trust policy of {}: {} ({} added, {} removed, {} dangling removed; {}/{} chars)\n",
                tier.map(|n| format!("tier {n}: ")).unwrap_or_default(),
                t.role_name,
                if t.changed { verb } else { "unchanged" },
                t.added.len(),
                t.removed.len(),
                t.dangling_removed.len(),
                t.size_chars,
                t.max_chars
            ));
            if let Some(e) = &t.error {
                out.push_str(&format!("  error: {e}\n"));
            }
        }
        let accounts = spans_accounts(self.clusters.iter().map(|c| c.account.as_str()));
        for c in &self.clusters {
            let status = serde_json::to_value(c.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            out.push_str(&format!("cluster {}: {status}\n", c.location(accounts)));
            for ch in &c.changes {
                out.push_str(&format!("  - {ch}\n"));
            }
            if let Some(e) = &c.error {
                out.push_str(&format!("  error: {e}\n"));
            }
        }
        out.push_str(&format!(
            "admin users: {}; conflict retries: {}; result: {}\n",
            self.admin_users,
            self.conflict_retries,
            if self.succeeded() { "ok" } else { "FAILED" }
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(status: ClusterStatus) -> ClusterReport {
        ClusterReport {
            name: "c".into(),
            account: String::new(),
            region: "us-east-1".into(),
            backend: Backend::ConfigMap,
            status,
            error: None,
            changes: vec![],
            tiers: Vec::new(),
        }
    }

    #[test]
    fn json_shape_is_camel_case() {
        let mut r = RunReport::new(true, "eks-admin", 2048);
        r.trust_policy.size_chars = 300;
        r.clusters.push(cluster(ClusterStatus::Updated));
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(v["dryRun"], true);
        assert_eq!(v["trustPolicy"]["sizeChars"], 300);
        assert_eq!(v["trustPolicy"]["maxChars"], 2048);
        assert_eq!(v["trustPolicy"]["danglingRemoved"], serde_json::json!([]));
        assert_eq!(v["clusters"][0]["status"], "updated");
        assert_eq!(v["clusters"][0]["backend"], "configmap");
        assert_eq!(v["conflictRetries"], 0);
        assert_eq!(v["adminUsers"], 0);
        assert!(v.get("plan").is_none());
        assert!(v["clusters"][0].get("error").is_none());
        let back: RunReport = serde_json::from_value(v).expect("roundtrip");
        assert_eq!(back, r);
    }

    #[test]
    fn each_tier_is_reported_and_any_tiers_error_fails_the_run() {
        let mut r = RunReport::new(false, "eks-admin", 2048);
        for (tier, role) in [("admin", "eks-admin"), ("readers", "eks-view")] {
            r.tiers.push(TierReport {
                tier: tier.into(),
                members: 1,
                trust_policy: TrustPolicyReport {
                    role_name: role.into(),
                    max_chars: 2048,
                    ..TrustPolicyReport::default()
                },
                ..TierReport::default()
            });
        }
        assert!(r.succeeded());
        r.tiers[1].trust_policy.error = Some("AccessDenied".into());
        assert!(!r.succeeded());
        let text = r.render_text();
        assert!(
            text.contains("tier admin: trust policy of eks-admin: unchanged"),
            "{text}"
        );
        assert!(
            text.contains("tier readers: trust policy of eks-view"),
            "{text}"
        );
        assert!(
            r.failure_summary()
                .contains("trust policy of eks-view: AccessDenied")
        );
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(v["tiers"][1]["trustPolicy"]["roleName"], "eks-view");
    }

    #[test]
    fn succeeded_is_false_on_any_failure() {
        let mut r = RunReport::new(false, "r", 2048);
        r.clusters.push(cluster(ClusterStatus::Unchanged));
        r.clusters.push(cluster(ClusterStatus::Skipped));
        assert!(r.succeeded());
        assert!(!r.changed_anything());
        r.clusters.push(cluster(ClusterStatus::Failed));
        assert!(!r.succeeded());
        assert_eq!(r.count(ClusterStatus::Failed), 1);
        let mut t = RunReport::new(false, "r", 2048);
        t.trust_policy.error = Some("LimitExceeded".into());
        assert!(!t.succeeded());
        assert!(t.render_text().contains("FAILED"));
    }
}

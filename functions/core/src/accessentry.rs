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

use serde::{Deserialize, Serialize};

use crate::arn::RoleArn;
use crate::awsauth::{AdminMapping, Offboarded};

/// The EKS managed policy giving cluster-admin.
pub const CLUSTER_ADMIN_POLICY: &str =
    "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy";
/// Access scope type we associate the policy with.
pub const CLUSTER_SCOPE: &str = "cluster";
/// Prefixes EKS refuses in access-entry usernames and groups.
pub const RESERVED_PREFIXES: [&str; 5] = ["system:", "eks:", "aws:", "amazon:", "iam:"];

/// An access entry as the cluster holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessEntryView {
    pub principal_arn: String,
    pub username: Option<String>,
    pub kubernetes_groups: Vec<String>,
    /// `(policy ARN, access scope type)`.
    pub policies: Vec<(String, String)>,
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

/// What to do on one cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessEntryPlan {
    pub create_admin_entry: Option<NewAccessEntry>,
    pub update_admin_entry: Option<NewAccessEntry>,
    /// Associate [`CLUSTER_ADMIN_POLICY`] with `cluster` scope on the admin
    /// entry's principal.
    pub associate_admin_policy: bool,
    /// Principal ARNs whose entries must be deleted.
    pub delete_entries: Vec<String>,
}

impl AccessEntryPlan {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.create_admin_entry.is_none()
            && self.update_admin_entry.is_none()
            && !self.associate_admin_policy
            && self.delete_entries.is_empty()
    }

    /// The principal ARN the admin entry has (or will have).
    pub fn admin_principal<'a>(&'a self, admin: &'a AdminMapping) -> &'a str {
        self.create_admin_entry
            .as_ref()
            .or(self.update_admin_entry.as_ref())
            .map(|e| e.principal_arn.as_str())
            .unwrap_or(admin.role_arn.as_str())
    }
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

/// Plans the access-entry changes for one cluster.
pub fn plan_access_entries(
    current: &[AccessEntryView],
    admin: &AdminMapping,
    offboarded: &[Offboarded],
) -> AccessEntryPlan {
    let username = (!admin.username.is_empty() && !is_reserved(&admin.username))
        .then(|| admin.username.clone());
    let groups = allowed_groups(&admin.groups);
    let mut plan = AccessEntryPlan::default();

    match current
        .iter()
        .find(|e| same_role(&e.principal_arn, &admin.role_arn))
    {
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
            plan.associate_admin_policy = !e.policies.iter().any(|(p, scope)| {
                p == CLUSTER_ADMIN_POLICY && scope.eq_ignore_ascii_case(CLUSTER_SCOPE)
            });
        }
    }

    plan.delete_entries = current
        .iter()
        .filter(|e| offboarded.iter().any(|o| o.matches(&e.principal_arn)))
        .map(|e| e.principal_arn.clone())
        .collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin() -> AdminMapping {
        AdminMapping {
            role_arn: "arn:aws:iam::123456789012:role/teams/EksAdmin"
                .parse()
                .unwrap(),
            username: "admin:{{AccessKeyID}}:{{SessionName}}".into(),
            groups: vec!["system:masters".into(), "eks-admins".into()],
        }
    }

    fn entry(arn: &str, groups: &[&str], policies: &[(&str, &str)]) -> AccessEntryView {
        AccessEntryView {
            principal_arn: arn.into(),
            username: Some("admin:{{AccessKeyID}}:{{SessionName}}".into()),
            kubernetes_groups: groups.iter().map(|s| s.to_string()).collect(),
            policies: policies
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    #[test]
    fn creates_entry_with_full_arn_and_no_reserved_groups() {
        let p = plan_access_entries(&[], &admin(), &[]);
        let c = p.create_admin_entry.clone().unwrap();
        assert_eq!(
            c.principal_arn,
            "arn:aws:iam::123456789012:role/teams/EksAdmin"
        );
        assert_eq!(c.kubernetes_groups, vec!["eks-admins"]);
        assert_eq!(
            c.username.as_deref(),
            Some("admin:{{AccessKeyID}}:{{SessionName}}")
        );
        assert!(p.associate_admin_policy);
        assert!(!p.is_empty());
    }

    #[test]
    fn existing_entry_in_order_is_a_no_op() {
        let cur = [entry(
            "arn:aws:iam::123456789012:role/teams/EksAdmin",
            &["eks-admins"],
            &[(CLUSTER_ADMIN_POLICY, "cluster")],
        )];
        let p = plan_access_entries(&cur, &admin(), &[]);
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn matches_without_path_and_updates_groups_and_policy() {
        let cur = [entry(
            "arn:aws:iam::123456789012:role/EKSADMIN",
            &["old"],
            &[(CLUSTER_ADMIN_POLICY, "namespace")],
        )];
        let p = plan_access_entries(&cur, &admin(), &[]);
        assert!(p.create_admin_entry.is_none());
        let u = p.update_admin_entry.unwrap();
        assert_eq!(u.principal_arn, "arn:aws:iam::123456789012:role/EKSADMIN");
        assert_eq!(u.kubernetes_groups, vec!["eks-admins"]);
        assert!(u.username.is_none());
        assert!(p.associate_admin_policy);
    }

    #[test]
    fn reserved_username_is_dropped() {
        let mut a = admin();
        a.username = "system:admin".into();
        a.groups = vec!["system:masters".into()];
        let p = plan_access_entries(&[], &a, &[]);
        let c = p.create_admin_entry.unwrap();
        assert_eq!(c.username, None);
        assert!(c.kubernetes_groups.is_empty());
        for r in ["system:x", "EKS:x", "aws:x", "amazon:x", "iam:x"] {
            assert!(is_reserved(r));
        }
        assert!(!is_reserved("admin:x"));
    }

    #[test]
    fn deletes_offboarded_user_entries() {
        let cur = [
            entry(
                "arn:aws:iam::123456789012:role/teams/EksAdmin",
                &["eks-admins"],
                &[(CLUSTER_ADMIN_POLICY, "cluster")],
            ),
            entry("arn:aws:iam::123456789012:user/eng/dave", &[], &[]),
            entry("arn:aws:iam::123456789012:user/erin", &[], &[]),
            entry("arn:aws:iam::123456789012:role/dave", &[], &[]),
        ];
        let off = [Offboarded::Name {
            account: "123456789012".parse().unwrap(),
            name: "Dave".parse().unwrap(),
        }];
        let p = plan_access_entries(&cur, &admin(), &off);
        assert_eq!(
            p.delete_entries,
            vec!["arn:aws:iam::123456789012:user/eng/dave"]
        );
        let off = [Offboarded::Arn(
            "arn:aws:iam::123456789012:user/erin".parse().unwrap(),
        )];
        let p = plan_access_entries(&cur, &admin(), &off);
        assert_eq!(
            p.delete_entries,
            vec!["arn:aws:iam::123456789012:user/erin"]
        );
    }
}

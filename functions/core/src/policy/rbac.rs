//! The RBAC bindings of tiers on aws-auth clusters, planned.
//!
//! On a `CONFIG_MAP` cluster a tier role is mapped to the tier's own group
//! (`eks-access-sync:<tier>`), and that group gets the rights of the tier's EKS
//! access policy through the Kubernetes ClusterRole of the same rights
//! (`cluster-admin`, `admin`, `edit`, `view`): a ClusterRoleBinding for cluster scope,
//! a RoleBinding in each namespace matching the tier's patterns (expanded against the
//! namespaces present at each reconcile). Each binding is named after the group and
//! carries the label [`MANAGED_BY_LABEL`]`=`[`MANAGED_BY`].
//!
//! Rules: a binding without the label is never edited or deleted, even under one of
//! our names (the tier's binding there is refused and reported instead); a labelled
//! binding no tier wants any more is deleted; one whose `roleRef` differs is deleted
//! and made again (Kubernetes refuses to change a `roleRef`). Only a tier binding
//! counts as labelled here: named `eks-access-sync:…`, bound to one of the four
//! ClusterRoles. `bootstrap`'s own RBAC for the functions carries the label too and
//! is never touched (deleting it would lock the functions out).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::tiers::{AccessPolicy, NamespacePattern, OWN_GROUP_PREFIX};

/// The label key on every binding the tool owns.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Its value.
pub const MANAGED_BY: &str = "eks-access-sync";

/// Where a binding lives: `None` for a ClusterRoleBinding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BindingRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for BindingRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            None => write!(f, "ClusterRoleBinding {}", self.name),
            Some(ns) => write!(f, "RoleBinding {ns}/{}", self.name),
        }
    }
}

/// A binding as the cluster holds it (only ours by name or label are read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingView {
    pub at: BindingRef,
    /// Carries [`MANAGED_BY_LABEL`]`=`[`MANAGED_BY`].
    pub managed: bool,
    /// `roleRef` (kind, name).
    pub role_ref: (String, String),
    /// The `Group` subjects.
    pub groups: Vec<String>,
}

/// A binding the tool wants: `group` gets ClusterRole `cluster_role` at `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BindingSpec {
    pub at: BindingRef,
    pub cluster_role: String,
    pub group: String,
}

impl fmt::Display for BindingSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (ClusterRole {} to group {})",
            self.at, self.cluster_role, self.group
        )
    }
}

/// What one tier wants on a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierBinding {
    /// The tier's own group; also the bindings' name.
    pub group: String,
    pub cluster_role: String,
    /// Empty: cluster scope.
    pub namespaces: Vec<NamespacePattern>,
}

/// The RBAC writes of one cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RbacPlan {
    /// Created, or replaced in place (same `roleRef`).
    pub put: Vec<BindingSpec>,
    /// Deleted first (no tier wants them, or their `roleRef` must change).
    pub delete: Vec<BindingRef>,
    /// Bindings we want whose name is taken by one without our label: left alone.
    pub refused: Vec<BindingRef>,
}

impl RbacPlan {
    pub fn is_empty(&self) -> bool {
        self.put.is_empty() && self.delete.is_empty() && self.refused.is_empty()
    }

    /// One line per write (and refusal), for people and the report.
    pub fn change_lines(&self) -> Vec<String> {
        let deletes = self.delete.iter().map(|d| format!("delete {d}"));
        let puts = self.put.iter().map(|p| format!("bind {p}"));
        let refused = self.refused.iter().map(|r| {
            format!("{r} exists without the label {MANAGED_BY_LABEL}={MANAGED_BY}: left alone")
        });
        deletes.chain(puts).chain(refused).collect()
    }
}

/// The bindings `tiers` call for on a cluster whose namespaces are `namespaces`.
pub fn wanted_bindings(tiers: &[TierBinding], namespaces: &[String]) -> Vec<BindingSpec> {
    let mut out = Vec::new();
    for t in tiers {
        let spec = |namespace: Option<String>| BindingSpec {
            at: BindingRef {
                namespace,
                name: t.group.clone(),
            },
            cluster_role: t.cluster_role.clone(),
            group: t.group.clone(),
        };
        if t.namespaces.is_empty() {
            out.push(spec(None));
            continue;
        }
        for ns in namespaces {
            if t.namespaces.iter().any(|p| p.matches(ns)) {
                out.push(spec(Some(ns.clone())));
            }
        }
    }
    out
}

/// A tier binding the tool made: labelled, named `eks-access-sync:…`, bound to one of
/// the access policies' ClusterRoles. Not `bootstrap`'s (a Role, or its own
/// ClusterRole), though labelled alike.
fn ours(e: &BindingView) -> bool {
    e.managed
        && e.at.name.starts_with(OWN_GROUP_PREFIX)
        && e.role_ref.0 == "ClusterRole"
        && AccessPolicy::ALL
            .iter()
            .any(|p| p.cluster_role() == e.role_ref.1)
}

/// Plans the writes that take `existing` to `wanted`.
pub fn plan_bindings(wanted: &[BindingSpec], existing: &[BindingView]) -> RbacPlan {
    let mut plan = RbacPlan::default();
    for w in wanted {
        match existing.iter().find(|e| e.at == w.at) {
            None => plan.put.push(w.clone()),
            Some(e) if !ours(e) => plan.refused.push(w.at.clone()),
            Some(e) => {
                let role_ok = e.role_ref == ("ClusterRole".to_owned(), w.cluster_role.clone());
                if !role_ok {
                    plan.delete.push(e.at.clone());
                    plan.put.push(w.clone());
                } else if e.groups != [w.group.clone()] {
                    plan.put.push(w.clone());
                }
            }
        }
    }
    for e in existing {
        if ours(e) && !wanted.iter().any(|w| w.at == e.at) {
            plan.delete.push(e.at.clone());
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(group: &str, role: &str, ns: &[&str]) -> TierBinding {
        TierBinding {
            group: group.into(),
            cluster_role: role.into(),
            namespaces: ns.iter().map(|n| n.parse().unwrap()).collect(),
        }
    }

    fn view(
        ns: Option<&str>,
        name: &str,
        managed: bool,
        role: &str,
        groups: &[&str],
    ) -> BindingView {
        BindingView {
            at: BindingRef {
                namespace: ns.map(str::to_owned),
                name: name.into(),
            },
            managed,
            role_ref: ("ClusterRole".into(), role.into()),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn spec(ns: Option<&str>, name: &str, role: &str) -> BindingSpec {
        BindingSpec {
            at: BindingRef {
                namespace: ns.map(str::to_owned),
                name: name.into(),
            },
            cluster_role: role.into(),
            group: name.into(),
        }
    }

    #[test]
    fn patterns_expand_against_the_namespaces_present() {
        let namespaces: Vec<String> = ["default", "team-a", "team-b-web", "team-b", "kube-system"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let got = wanted_bindings(
            &[
                tier("eks-access-sync:dev", "edit", &["team-a", "team-b-*"]),
                tier("eks-access-sync:readers", "view", &[]),
            ],
            &namespaces,
        );
        assert_eq!(
            got,
            [
                spec(Some("team-a"), "eks-access-sync:dev", "edit"),
                spec(Some("team-b-web"), "eks-access-sync:dev", "edit"),
                spec(None, "eks-access-sync:readers", "view"),
            ]
        );
    }

    #[test]
    fn unlabelled_bindings_are_never_touched() {
        let wanted = [spec(None, "eks-access-sync:readers", "view")];
        let existing = [
            view(
                None,
                "eks-access-sync:readers",
                false,
                "cluster-admin",
                &["x"],
            ),
            view(Some("team-a"), "eks-access-sync:old", false, "edit", &["y"]),
        ];
        let plan = plan_bindings(&wanted, &existing);
        assert!(plan.put.is_empty() && plan.delete.is_empty(), "{plan:?}");
        assert_eq!(plan.refused, [wanted[0].at.clone()]);
        assert!(plan.change_lines()[0].contains("left alone"));
    }

    #[test]
    fn stale_ours_go_changed_role_is_recreated_in_order_is_a_no_op() {
        let wanted = [
            spec(None, "eks-access-sync:readers", "view"),
            spec(Some("team-a"), "eks-access-sync:dev", "admin"),
        ];
        let existing = [
            view(
                None,
                "eks-access-sync:readers",
                true,
                "view",
                &["eks-access-sync:readers"],
            ),
            view(
                Some("team-a"),
                "eks-access-sync:dev",
                true,
                "edit",
                &["eks-access-sync:dev"],
            ),
            view(
                Some("team-c"),
                "eks-access-sync:dev",
                true,
                "edit",
                &["eks-access-sync:dev"],
            ),
        ];
        let plan = plan_bindings(&wanted, &existing);
        assert_eq!(plan.put, [wanted[1].clone()]);
        assert_eq!(
            plan.delete,
            [existing[1].at.clone(), existing[2].at.clone()]
        );
        assert!(plan.refused.is_empty());
        let same = plan_bindings(&wanted[..1], &existing[..1]);
        assert!(same.is_empty(), "{same:?}");
    }
    /// bootstrap's RBAC for the functions carries the same label; it is not a
    /// retired tier's binding (deleting it locked the functions out), nor one a tier
    /// of the same name may take over.
    #[test]
    fn the_functions_own_labelled_bindings_are_not_a_tiers() {
        let own = |ns: Option<&str>, name: &str, kind: &str, role: &str| BindingView {
            at: BindingRef {
                namespace: ns.map(str::to_owned),
                name: name.into(),
            },
            managed: true,
            role_ref: (kind.into(), role.into()),
            groups: vec!["eks-access-sync".into()],
        };
        let existing = [
            own(
                Some("kube-system"),
                "eks-access-sync",
                "Role",
                "eks-access-sync",
            ),
            own(
                None,
                "eks-access-sync:functions-rbac",
                "ClusterRole",
                "eks-access-sync:functions-rbac",
            ),
        ];
        let wanted = [spec(None, "eks-access-sync:readers", "view")];
        let plan = plan_bindings(&wanted, &existing);
        assert!(plan.delete.is_empty(), "{plan:?}");
        assert_eq!(plan.put, wanted);
        // A tier named functions-rbac: its binding's name is taken; refused.
        let clash = [spec(None, "eks-access-sync:functions-rbac", "view")];
        let plan = plan_bindings(&clash, &existing);
        assert!(plan.delete.is_empty() && plan.put.is_empty(), "{plan:?}");
        assert_eq!(plan.refused, [clash[0].at.clone()]);
    }
}

//! Authorization: `system:masters`, EKS access policies, stored RBAC, and
//! read access for every mapped identity.

use serde_json::Value;

use super::auth::UserInfo;
use crate::state::Cluster;

pub const RBAC_PREFIX: &str = "apis/rbac.authorization.k8s.io/v1";

/// What a request wants to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attrs {
    pub verb: String,
    pub api_group: String,
    pub resource: String,
    /// Empty for cluster-scoped requests.
    pub namespace: String,
    /// Empty for collection requests.
    pub name: String,
}

pub fn is_read(verb: &str) -> bool {
    matches!(verb, "get" | "list" | "watch")
}

fn policy_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn policy_allows(user: &UserInfo, a: &Attrs) -> bool {
    user.policies.iter().any(|p| {
        let in_scope = p.scope_type != "namespace"
            || (!a.namespace.is_empty() && p.namespaces.iter().any(|n| n == &a.namespace));
        match policy_name(&p.policy_arn) {
            "AmazonEKSClusterAdminPolicy" => true,
            "AmazonEKSAdminPolicy" => in_scope && (is_read(&a.verb) || !a.namespace.is_empty()),
            "AmazonEKSEditPolicy" => {
                in_scope
                    && (is_read(&a.verb)
                        || (!a.namespace.is_empty() && a.api_group != "rbac.authorization.k8s.io"))
            }
            "AmazonEKSAdminViewPolicy" | "AmazonEKSViewPolicy" => in_scope && is_read(&a.verb),
            _ => false,
        }
    })
}

fn strs(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn rule_allows(rule: &Value, a: &Attrs) -> bool {
    let has = |field: &str, want: &str| {
        strs(rule.get(field))
            .iter()
            .any(|v| *v == "*" || *v == want)
    };
    if !(has("apiGroups", &a.api_group) && has("resources", &a.resource) && has("verbs", &a.verb)) {
        return false;
    }
    let names = strs(rule.get("resourceNames"));
    names.is_empty() || (!a.name.is_empty() && names.contains(&a.name.as_str()))
}

fn subject_matches(binding: &Value, user: &UserInfo) -> bool {
    binding
        .get("subjects")
        .and_then(Value::as_array)
        .is_some_and(|subs| {
            subs.iter().any(|s| {
                let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
                match s.get("kind").and_then(Value::as_str) {
                    Some("User") => name == user.username,
                    Some("Group") => user.groups.iter().any(|g| g == name),
                    _ => false,
                }
            })
        })
}

fn role_rules<'a>(cluster: &'a Cluster, binding_ns: &str, binding: &Value) -> Vec<&'a Value> {
    let Some(role_ref) = binding.get("roleRef") else {
        return Vec::new();
    };
    let name = role_ref
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (plural, ns) = match role_ref.get("kind").and_then(Value::as_str) {
        Some("Role") => ("roles", binding_ns),
        Some("ClusterRole") => ("clusterroles", ""),
        _ => return Vec::new(),
    };
    cluster
        .objects
        .get(&(
            RBAC_PREFIX.to_string(),
            plural.to_string(),
            ns.to_string(),
            name.to_string(),
        ))
        .and_then(|o| o.json.get("rules"))
        .and_then(Value::as_array)
        .map(|r| r.iter().collect())
        .unwrap_or_default()
}

fn rbac_allows(cluster: &Cluster, user: &UserInfo, a: &Attrs) -> bool {
    cluster
        .objects
        .iter()
        .filter(|((prefix, plural, ns, _), _)| {
            prefix == RBAC_PREFIX
                && ((plural == "rolebindings" && !a.namespace.is_empty() && *ns == a.namespace)
                    || plural == "clusterrolebindings")
        })
        .filter(|(_, obj)| subject_matches(&obj.json, user))
        .any(|((_, _, ns, _), obj)| {
            role_rules(cluster, ns, &obj.json)
                .into_iter()
                .any(|r| rule_allows(r, a))
        })
}

/// Whether `user` may do `a` on `cluster`.
pub fn authorize(cluster: &Cluster, user: &UserInfo, a: &Attrs) -> bool {
    user.groups.iter().any(|g| g == "system:masters")
        || policy_allows(user, a)
        || is_read(&a.verb)
        || rbac_allows(cluster, user, a)
}

/// Kubernetes' wording of a refusal.
pub fn forbidden_message(user: &UserInfo, a: &Attrs) -> String {
    let subject = if a.name.is_empty() {
        format!("{} is forbidden", a.resource)
    } else {
        format!("{} \"{}\" is forbidden", a.resource, a.name)
    };
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{}\"", a.namespace)
    };
    format!(
        "{subject}: User \"{}\" cannot {} resource \"{}\" in API group \"{}\" {scope}",
        user.username, a.verb, a.resource, a.api_group
    )
}

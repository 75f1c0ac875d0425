//! Authorization as on EKS: the `system:masters` group, EKS access policies
//! (cluster or namespace scope) and stored RBAC (Roles, ClusterRoles and
//! their bindings, including the default ClusterRoles every cluster has).
//! Nothing else is allowed: a mapped identity without a binding or a policy
//! can only do what `system:basic-user` and `system:discovery` grant.

use serde_json::Value;

use super::auth::UserInfo;
use super::roles;
use crate::state::Cluster;

pub const RBAC_PREFIX: &str = "apis/rbac.authorization.k8s.io/v1";

/// What a request wants to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attrs {
    pub verb: String,
    pub api_group: String,
    pub resource: String,
    /// `exec` in `pods/exec`; empty for the resource itself.
    pub subresource: String,
    /// Empty for cluster-scoped requests.
    pub namespace: String,
    /// Empty for collection requests.
    pub name: String,
}

fn policy_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Whether `namespace` is in an access scope's list: an exact name, or a
/// pattern with a trailing `*` (`team-b-*`), as EKS matches them.
pub fn namespace_in_scope(patterns: &[String], namespace: &str) -> bool {
    !namespace.is_empty()
        && patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => namespace.starts_with(prefix),
            None => p == namespace,
        })
}

/// EKS access policies (the EKS authorizer webhook): each association's
/// rules at cluster scope, or only for requests in a namespace of its scope.
fn policy_allows(user: &UserInfo, a: &Attrs) -> bool {
    user.policies.iter().any(|p| {
        let in_scope = p.scope_type == "cluster"
            || (p.scope_type == "namespace" && namespace_in_scope(&p.namespaces, &a.namespace));
        in_scope
            && roles::access_policy_rules(policy_name(&p.policy_arn))
                .is_some_and(|rules| rules.iter().any(|r| rule_allows(r, a)))
    })
}

/// Non-resource requests under EKS access policies: only a cluster-scoped one.
fn policy_allows_url(user: &UserInfo, verb: &str, path: &str) -> bool {
    user.policies.iter().any(|p| {
        p.scope_type == "cluster"
            && roles::access_policy_rules(policy_name(&p.policy_arn))
                .is_some_and(|rules| rules.iter().any(|r| url_rule_allows(r, verb, path)))
    })
}

fn strs(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// RBAC's resource match: `*`, the resource (`pods`), `pods/exec` for a
/// subresource, or `*/scale` for that subresource of anything.
fn resource_matches(rule_resource: &str, a: &Attrs) -> bool {
    if rule_resource == "*" {
        return true;
    }
    if a.subresource.is_empty() {
        return rule_resource == a.resource;
    }
    rule_resource == format!("{}/{}", a.resource, a.subresource)
        || rule_resource
            .strip_prefix("*/")
            .is_some_and(|sub| sub == a.subresource)
}

/// Whether one PolicyRule allows a resource request.
pub fn rule_allows(rule: &Value, a: &Attrs) -> bool {
    let has = |field: &str, want: &str| {
        strs(rule.get(field))
            .iter()
            .any(|v| *v == "*" || *v == want)
    };
    let resources = strs(rule.get("resources"));
    if !(has("apiGroups", &a.api_group)
        && resources.iter().any(|r| resource_matches(r, a))
        && has("verbs", &a.verb))
    {
        return false;
    }
    let names = strs(rule.get("resourceNames"));
    names.is_empty() || (!a.name.is_empty() && names.contains(&a.name.as_str()))
}

/// Whether one PolicyRule allows a non-resource request (`GET /version`):
/// `*`, the exact path, or a prefix ending in `*`.
fn url_rule_allows(rule: &Value, verb: &str, path: &str) -> bool {
    let verbs = strs(rule.get("verbs"));
    if !verbs.iter().any(|v| *v == "*" || *v == verb) {
        return false;
    }
    strs(rule.get("nonResourceURLs"))
        .iter()
        .any(|u| match u.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => *u == path,
        })
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

/// The rules of every binding that names `user`: RoleBindings of the
/// request's namespace (if any) and all ClusterRoleBindings.
fn bound_rules<'a>(cluster: &'a Cluster, user: &UserInfo, namespace: &str) -> Vec<&'a Value> {
    cluster
        .objects
        .iter()
        .filter(|((prefix, plural, ns, _), _)| {
            prefix == RBAC_PREFIX
                && ((plural == "rolebindings" && !namespace.is_empty() && ns == namespace)
                    || plural == "clusterrolebindings")
        })
        .filter(|(_, obj)| subject_matches(&obj.json, user))
        .flat_map(|((_, _, ns, _), obj)| role_rules(cluster, ns, &obj.json))
        .collect()
}

/// What a SelfSubjectRulesReview reports: the RBAC rules bound to `user` in
/// `namespace` (resource rules, non-resource rules). EKS access policies are
/// not listed, as on EKS (its authorizer webhook cannot list rules).
pub fn rules_review(
    cluster: &Cluster,
    user: &UserInfo,
    namespace: &str,
) -> (Vec<Value>, Vec<Value>) {
    let (mut resource, mut non_resource) = (Vec::new(), Vec::new());
    for r in bound_rules(cluster, user, namespace) {
        let pick = |f: &str| r.get(f).cloned().unwrap_or(Value::Array(Vec::new()));
        if r.get("nonResourceURLs").is_some() {
            non_resource.push(serde_json::json!({
                "verbs": pick("verbs"), "nonResourceURLs": pick("nonResourceURLs")}));
        } else {
            let mut rule = serde_json::json!({
                "verbs": pick("verbs"), "apiGroups": pick("apiGroups"), "resources": pick("resources")});
            if let (Some(o), Some(names)) = (rule.as_object_mut(), r.get("resourceNames")) {
                o.insert("resourceNames".into(), names.clone());
            }
            resource.push(rule);
        }
    }
    (resource, non_resource)
}

fn rbac_allows(cluster: &Cluster, user: &UserInfo, a: &Attrs) -> bool {
    bound_rules(cluster, user, &a.namespace)
        .into_iter()
        .any(|r| rule_allows(r, a))
}

fn is_master(user: &UserInfo) -> bool {
    user.groups.iter().any(|g| g == "system:masters")
}

/// Whether `user` may do `a` on `cluster`.
pub fn authorize(cluster: &Cluster, user: &UserInfo, a: &Attrs) -> bool {
    is_master(user) || policy_allows(user, a) || rbac_allows(cluster, user, a)
}

/// Whether `user` may send `verb` to the non-resource URL `path` (`/version`).
pub fn authorize_url(cluster: &Cluster, user: &UserInfo, verb: &str, path: &str) -> bool {
    is_master(user)
        || policy_allows_url(user, verb, path)
        || bound_rules(cluster, user, "")
            .into_iter()
            .any(|r| url_rule_allows(r, verb, path))
}

/// Why RBAC refuses a binding.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// The referenced role does not exist (and the writer may not `bind` it).
    RoleNotFound { plural: String, name: String },
    /// The role's rules the writer does not hold.
    NotHeld(Vec<Value>),
}

/// RBAC's escalation check for a binding to `role_ref` in `namespace` (empty
/// for a ClusterRoleBinding): allowed to `system:masters`, to a user allowed
/// the `bind` verb on the role (by any authorizer, EKS policies included), or
/// to a user whose own RBAC rules cover every rule of the role (EKS access
/// policies do not count there, as Kubernetes' rule resolver does not see them).
/// `Err` says why not.
pub fn confirm_no_escalation(
    cluster: &Cluster,
    user: &UserInfo,
    namespace: &str,
    role_ref: &Value,
) -> Result<(), Refusal> {
    if is_master(user) {
        return Ok(());
    }
    let name = role_ref
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = role_ref
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let bind = Attrs {
        verb: "bind".into(),
        api_group: "rbac.authorization.k8s.io".into(),
        resource: if kind == "Role" {
            "roles"
        } else {
            "clusterroles"
        }
        .into(),
        subresource: String::new(),
        namespace: if kind == "Role" { namespace } else { "" }.into(),
        name: name.into(),
    };
    if authorize(cluster, user, &bind)
        || (kind == "ClusterRole"
            && !namespace.is_empty()
            && authorize(
                cluster,
                user,
                &Attrs {
                    namespace: namespace.into(),
                    ..bind.clone()
                },
            ))
    {
        return Ok(());
    }
    let (plural, role_ns) = if kind == "Role" {
        ("roles", namespace)
    } else {
        ("clusterroles", "")
    };
    let exists = cluster.objects.contains_key(&(
        RBAC_PREFIX.to_string(),
        plural.to_string(),
        role_ns.to_string(),
        name.to_string(),
    ));
    if !exists {
        return Err(Refusal::RoleNotFound {
            plural: plural.into(),
            name: name.into(),
        });
    }
    let wanted = role_rules(
        cluster,
        namespace,
        &serde_json::json!({"roleRef": role_ref}),
    );
    let held = bound_rules(cluster, user, namespace);
    let missing: Vec<Value> = wanted
        .into_iter()
        .filter(|w| !covered(&held, w))
        .cloned()
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Refusal::NotHeld(missing))
    }
}

/// Whether the rules `held` cover every (group, resource, verb, name) of `want`
/// (a `*` in `want` is covered only by a `*`).
fn covered(held: &[&Value], want: &Value) -> bool {
    let field = |r: &Value, f: &str| -> Vec<String> {
        strs(r.get(f)).into_iter().map(str::to_string).collect()
    };
    let one = |h: &Value, f: &str, v: &str| {
        let hs = field(h, f);
        hs.iter().any(|x| x == "*" || x == v)
    };
    let urls = field(want, "nonResourceURLs");
    if !urls.is_empty() {
        return field(want, "verbs").iter().all(|verb| {
            urls.iter().all(|u| {
                held.iter().any(|h| {
                    one(h, "verbs", verb)
                        && field(h, "nonResourceURLs")
                            .iter()
                            .any(|x| x == "*" || x == u)
                })
            })
        });
    }
    let names = field(want, "resourceNames");
    field(want, "apiGroups").iter().all(|g| {
        field(want, "resources").iter().all(|res| {
            field(want, "verbs").iter().all(|verb| {
                held.iter().any(|h| {
                    let hnames = field(h, "resourceNames");
                    one(h, "apiGroups", g)
                        && one(h, "resources", res)
                        && one(h, "verbs", verb)
                        && (hnames.is_empty()
                            || (!names.is_empty() && names.iter().all(|n| hnames.contains(n))))
                })
            })
        })
    })
}

/// Kubernetes' wording of a refused escalation.
pub fn escalation_message(user: &UserInfo, plural: &str, name: &str, missing: &[Value]) -> String {
    let groups: Vec<String> = user.groups.iter().map(|g| format!("{g:?}")).collect();
    let rules: Vec<String> = missing
        .iter()
        .map(|r| {
            let list = |f: &str| {
                strs(r.get(f))
                    .iter()
                    .map(|s| format!("{s:?}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            if r.get("nonResourceURLs").is_some() {
                format!(
                    "{{NonResourceURLs:[{}], Verbs:[{}]}}",
                    list("nonResourceURLs"),
                    list("verbs")
                )
            } else {
                format!(
                    "{{APIGroups:[{}], Resources:[{}], Verbs:[{}]}}",
                    list("apiGroups"),
                    list("resources"),
                    list("verbs")
                )
            }
        })
        .collect();
    format!(
        "{plural}.rbac.authorization.k8s.io \"{name}\" is forbidden: user \"{}\" (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
        user.username,
        groups.join(" "),
        rules.join("\n")
    )
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
    let resource = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    format!(
        "{subject}: User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
        user.username, a.verb, a.api_group
    )
}

//! Kubernetes' default ClusterRoles (`kube-apiserver`'s bootstrap policy, the
//! user-facing `cluster-admin`, `admin`, `edit`, `view` as aggregated, plus
//! `system:basic-user` and `system:discovery`) and the rules of the EKS access
//! policies, which EKS defines with the same rule sets.

use serde_json::{Value, json};

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const READ_WRITE: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One policy rule: API groups, resources, verbs.
type Rule = (
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

const CORE: &[&str] = &[""];
const APPS: &[&str] = &["apps"];
const AUTOSCALING: &[&str] = &["autoscaling"];
const BATCH: &[&str] = &["batch"];
const EXTENSIONS: &[&str] = &["extensions"];
const POLICY: &[&str] = &["policy"];
const NETWORKING: &[&str] = &["networking.k8s.io"];
const DISCOVERY: &[&str] = &["discovery.k8s.io"];
const RBAC: &[&str] = &["rbac.authorization.k8s.io"];
const AUTHORIZATION: &[&str] = &["authorization.k8s.io"];

/// `system:aggregate-to-view`: reads most namespaced objects, never secrets.
const VIEW: &[Rule] = &[
    (
        CORE,
        &[
            "configmaps",
            "endpoints",
            "persistentvolumeclaims",
            "persistentvolumeclaims/status",
            "pods",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "serviceaccounts",
            "services",
            "services/status",
        ],
        READ,
    ),
    (
        CORE,
        &[
            "bindings",
            "events",
            "limitranges",
            "namespaces/status",
            "pods/log",
            "pods/status",
            "replicationcontrollers/status",
            "resourcequotas",
            "resourcequotas/status",
        ],
        READ,
    ),
    (CORE, &["namespaces"], READ),
    (DISCOVERY, &["endpointslices"], READ),
    (
        APPS,
        &[
            "controllerrevisions",
            "daemonsets",
            "daemonsets/status",
            "deployments",
            "deployments/scale",
            "deployments/status",
            "replicasets",
            "replicasets/scale",
            "replicasets/status",
            "statefulsets",
            "statefulsets/scale",
            "statefulsets/status",
        ],
        READ,
    ),
    (
        AUTOSCALING,
        &[
            "horizontalpodautoscalers",
            "horizontalpodautoscalers/status",
        ],
        READ,
    ),
    (
        BATCH,
        &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
        READ,
    ),
    (
        EXTENSIONS,
        &[
            "daemonsets",
            "daemonsets/status",
            "deployments",
            "deployments/scale",
            "deployments/status",
            "ingresses",
            "ingresses/status",
            "networkpolicies",
            "replicasets",
            "replicasets/scale",
            "replicasets/status",
            "replicationcontrollers/scale",
        ],
        READ,
    ),
    (
        POLICY,
        &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        READ,
    ),
    (
        NETWORKING,
        &["ingresses", "ingresses/status", "networkpolicies"],
        READ,
    ),
];

/// `system:aggregate-to-edit`: writes workloads, configmaps, secrets, services;
/// reads secrets; no roles or bindings.
const EDIT: &[Rule] = &[
    (
        CORE,
        &[
            "pods/attach",
            "pods/exec",
            "pods/portforward",
            "pods/proxy",
            "secrets",
            "services/proxy",
        ],
        READ,
    ),
    (CORE, &["serviceaccounts"], &["impersonate"]),
    (
        CORE,
        &[
            "pods",
            "pods/attach",
            "pods/exec",
            "pods/portforward",
            "pods/proxy",
        ],
        WRITE,
    ),
    (CORE, &["pods/eviction"], &["create"]),
    (
        CORE,
        &[
            "configmaps",
            "events",
            "persistentvolumeclaims",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "secrets",
            "serviceaccounts",
            "services",
            "services/proxy",
        ],
        WRITE,
    ),
    (CORE, &["serviceaccounts/token"], &["create"]),
    (
        APPS,
        &[
            "daemonsets",
            "deployments",
            "deployments/rollback",
            "deployments/scale",
            "replicasets",
            "replicasets/scale",
            "statefulsets",
            "statefulsets/scale",
        ],
        WRITE,
    ),
    (AUTOSCALING, &["horizontalpodautoscalers"], WRITE),
    (BATCH, &["cronjobs", "jobs"], WRITE),
    (
        EXTENSIONS,
        &[
            "daemonsets",
            "deployments",
            "deployments/rollback",
            "deployments/scale",
            "ingresses",
            "networkpolicies",
            "replicasets",
            "replicasets/scale",
            "replicationcontrollers/scale",
        ],
        WRITE,
    ),
    (POLICY, &["poddisruptionbudgets"], WRITE),
    (NETWORKING, &["ingresses", "networkpolicies"], WRITE),
];

/// `system:aggregate-to-admin`: roles and bindings in a namespace.
const ADMIN: &[Rule] = &[
    (AUTHORIZATION, &["localsubjectaccessreviews"], &["create"]),
    (RBAC, &["rolebindings", "roles"], READ_WRITE),
];

const BASIC_USER: &[Rule] = &[
    (
        AUTHORIZATION,
        &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
        &["create"],
    ),
    (
        &["authentication.k8s.io"],
        &["selfsubjectreviews"],
        &["create"],
    ),
];

/// The non-resource URLs `system:discovery` lets every authenticated user GET.
pub const DISCOVERY_URLS: &[&str] = &[
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/openapi",
    "/openapi/*",
    "/readyz",
    "/version",
    "/version/",
];

fn rule_json((groups, resources, verbs): &Rule) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

fn rules_json(sets: &[&[Rule]]) -> Vec<Value> {
    sets.iter().flat_map(|s| s.iter().map(rule_json)).collect()
}

fn cluster_admin_rules() -> Vec<Value> {
    vec![
        json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}),
        json!({"nonResourceURLs": ["*"], "verbs": ["*"]}),
    ]
}

/// The rules of a user-facing ClusterRole as aggregated on a real cluster
/// (admin ⊇ edit ⊇ view), `None` for another name.
pub fn user_facing_rules(name: &str) -> Option<Vec<Value>> {
    Some(match name {
        "cluster-admin" => cluster_admin_rules(),
        "admin" => rules_json(&[ADMIN, EDIT, VIEW]),
        "edit" => rules_json(&[EDIT, VIEW]),
        "view" => rules_json(&[VIEW]),
        _ => return None,
    })
}

/// The rules of an EKS access policy (by name), `None` for an unknown one.
/// EKS documents them as the Kubernetes user-facing roles' rules.
pub fn access_policy_rules(policy_name: &str) -> Option<Vec<Value>> {
    match policy_name {
        "AmazonEKSClusterAdminPolicy" => user_facing_rules("cluster-admin"),
        "AmazonEKSAdminPolicy" => user_facing_rules("admin"),
        "AmazonEKSEditPolicy" => user_facing_rules("edit"),
        "AmazonEKSViewPolicy" => user_facing_rules("view"),
        "AmazonEKSAdminViewPolicy" => Some(vec![
            json!({"apiGroups": ["*"], "resources": ["*"], "verbs": READ}),
        ]),
        "AmazonEKSSecretReaderPolicy" => Some(vec![
            json!({"apiGroups": [""], "resources": ["secrets"], "verbs": READ}),
        ]),
        _ => None,
    }
}

/// The ClusterRoles and ClusterRoleBindings a new cluster starts with, as
/// (plural, name, object without bookkeeping fields).
pub fn bootstrap_objects() -> Vec<(&'static str, &'static str, Value)> {
    let defaults = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    let autoupdate = json!({"rbac.authorization.kubernetes.io/autoupdate": "true"});
    let role =
        |name: &str, rules: Vec<Value>, extra_labels: Value, aggregate_from: Option<&str>| {
            let mut labels = defaults.clone();
            if let (Some(l), Some(extra)) = (labels.as_object_mut(), extra_labels.as_object()) {
                l.extend(extra.clone());
            }
            let mut obj = json!({
                "metadata": {"name": name, "labels": labels, "annotations": autoupdate},
                "rules": rules,
            });
            if let (Some(o), Some(from)) = (obj.as_object_mut(), aggregate_from) {
                o.insert(
                    "aggregationRule".into(),
                    json!({"clusterRoleSelectors": [{"matchLabels": {
                    format!("rbac.authorization.k8s.io/aggregate-to-{from}"): "true"}}]}),
                );
            }
            obj
        };
    let binding = |name: &str, role: &str, group: &str| {
        json!({
            "metadata": {"name": name, "labels": defaults, "annotations": autoupdate},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
        })
    };
    let discovery = vec![json!({"nonResourceURLs": DISCOVERY_URLS, "verbs": ["get"]})];
    vec![
        (
            "clusterroles",
            "cluster-admin",
            role("cluster-admin", cluster_admin_rules(), json!({}), None),
        ),
        (
            "clusterroles",
            "admin",
            role(
                "admin",
                rules_json(&[ADMIN, EDIT, VIEW]),
                json!({}),
                Some("admin"),
            ),
        ),
        (
            "clusterroles",
            "edit",
            role(
                "edit",
                rules_json(&[EDIT, VIEW]),
                json!({"rbac.authorization.k8s.io/aggregate-to-admin": "true"}),
                Some("edit"),
            ),
        ),
        (
            "clusterroles",
            "view",
            role(
                "view",
                rules_json(&[VIEW]),
                json!({"rbac.authorization.k8s.io/aggregate-to-edit": "true"}),
                Some("view"),
            ),
        ),
        (
            "clusterroles",
            "system:basic-user",
            role(
                "system:basic-user",
                rules_json(&[BASIC_USER]),
                json!({}),
                None,
            ),
        ),
        (
            "clusterroles",
            "system:discovery",
            role("system:discovery", discovery, json!({}), None),
        ),
        (
            "clusterrolebindings",
            "cluster-admin",
            binding("cluster-admin", "cluster-admin", "system:masters"),
        ),
        (
            "clusterrolebindings",
            "system:basic-user",
            binding(
                "system:basic-user",
                "system:basic-user",
                "system:authenticated",
            ),
        ),
        (
            "clusterrolebindings",
            "system:discovery",
            binding(
                "system:discovery",
                "system:discovery",
                "system:authenticated",
            ),
        ),
    ]
}

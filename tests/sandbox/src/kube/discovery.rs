//! Discovery documents (legacy JSON; clients asking for aggregated
//! discovery fall back to it when the response is plain `application/json`).

use serde_json::{Value, json};

/// A served resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceDef {
    /// `api/v1` or `apis/<group>/<version>`.
    pub prefix: &'static str,
    pub group: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub verbs: &'static [&'static str],
}

const RW: &[&str] = &["create", "delete", "get", "list", "patch", "update"];

pub const RESOURCES: &[ResourceDef] = &[
    ResourceDef {
        prefix: "api/v1",
        group: "",
        plural: "configmaps",
        singular: "configmap",
        kind: "ConfigMap",
        namespaced: true,
        short_names: &["cm"],
        verbs: RW,
    },
    ResourceDef {
        prefix: "api/v1",
        group: "",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        short_names: &["ns"],
        verbs: RW,
    },
    ResourceDef {
        prefix: "api/v1",
        group: "",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        short_names: &["po"],
        verbs: RW,
    },
    ResourceDef {
        prefix: "api/v1",
        group: "",
        plural: "secrets",
        singular: "secret",
        kind: "Secret",
        namespaced: true,
        short_names: &[],
        verbs: RW,
    },
    ResourceDef {
        prefix: "api/v1",
        group: "",
        plural: "services",
        singular: "service",
        kind: "Service",
        namespaced: true,
        short_names: &["svc"],
        verbs: RW,
    },
    ResourceDef {
        prefix: "api/v1",
        group: "",
        plural: "serviceaccounts",
        singular: "serviceaccount",
        kind: "ServiceAccount",
        namespaced: true,
        short_names: &["sa"],
        verbs: RW,
    },
    ResourceDef {
        prefix: "apis/apps/v1",
        group: "apps",
        plural: "deployments",
        singular: "deployment",
        kind: "Deployment",
        namespaced: true,
        short_names: &["deploy"],
        verbs: RW,
    },
    ResourceDef {
        prefix: "apis/rbac.authorization.k8s.io/v1",
        group: "rbac.authorization.k8s.io",
        plural: "roles",
        singular: "role",
        kind: "Role",
        namespaced: true,
        short_names: &[],
        verbs: RW,
    },
    ResourceDef {
        prefix: "apis/rbac.authorization.k8s.io/v1",
        group: "rbac.authorization.k8s.io",
        plural: "rolebindings",
        singular: "rolebinding",
        kind: "RoleBinding",
        namespaced: true,
        short_names: &[],
        verbs: RW,
    },
    ResourceDef {
        prefix: "apis/rbac.authorization.k8s.io/v1",
        group: "rbac.authorization.k8s.io",
        plural: "clusterroles",
        singular: "clusterrole",
        kind: "ClusterRole",
        namespaced: false,
        short_names: &[],
        verbs: RW,
    },
    ResourceDef {
        prefix: "apis/rbac.authorization.k8s.io/v1",
        group: "rbac.authorization.k8s.io",
        plural: "clusterrolebindings",
        singular: "clusterrolebinding",
        kind: "ClusterRoleBinding",
        namespaced: false,
        short_names: &[],
        verbs: RW,
    },
];

pub fn find(prefix: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.prefix == prefix && r.plural == plural)
}

/// `apiVersion` of objects under a prefix.
pub fn api_version(prefix: &str) -> &str {
    prefix
        .strip_prefix("apis/")
        .or_else(|| prefix.strip_prefix("api/"))
        .unwrap_or(prefix)
}

const GROUPS: &[&str] = &[
    "apps",
    "rbac.authorization.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
];

fn resource_json(r: &ResourceDef) -> Value {
    json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": r.verbs,
        "shortNames": r.short_names,
    })
}

fn group_json(g: &str) -> Value {
    json!({
        "name": g,
        "versions": [{"groupVersion": format!("{g}/v1"), "version": "v1"}],
        "preferredVersion": {"groupVersion": format!("{g}/v1"), "version": "v1"},
    })
}

/// The document for a discovery path (without leading `/`), if any.
pub fn document(path: &str, kube_version: &str, endpoint: &str) -> Option<Value> {
    let server = endpoint.trim_start_matches("https://");
    match path {
        "version" => {
            let minor = kube_version.split('.').nth(1).unwrap_or("33");
            Some(json!({
                "major": "1",
                "minor": minor,
                "gitVersion": format!("v{kube_version}.0-eks-sandbox"),
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.24.0",
                "compiler": "gc",
                "platform": "linux/amd64",
            }))
        }
        "openapi/v3" => Some(openapi_v3_index()),
        "openapi/v3/api/v1" => Some(openapi_v3_doc("api/v1")),
        "openapi/v3/apis/rbac.authorization.k8s.io/v1" => {
            Some(openapi_v3_doc("apis/rbac.authorization.k8s.io/v1"))
        }
        "openapi/v3/apis/apps/v1" => Some(openapi_v3_doc("apis/apps/v1")),
        "apis/apps/v1" => Some(resource_list("apps/v1", "apis/apps/v1")),
        "api" => Some(json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}],
        })),
        "api/v1" => Some(resource_list("v1", "api/v1")),
        "apis" => Some(json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": GROUPS.iter().map(|g| group_json(g)).collect::<Vec<_>>(),
        })),
        "apis/rbac.authorization.k8s.io/v1" => Some(resource_list(
            "rbac.authorization.k8s.io/v1",
            "apis/rbac.authorization.k8s.io/v1",
        )),
        "apis/authentication.k8s.io/v1" => Some(json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": "authentication.k8s.io/v1",
            "resources": [{"name": "selfsubjectreviews", "singularName": "selfsubjectreview",
                "namespaced": false, "kind": "SelfSubjectReview", "verbs": ["create"]}],
        })),
        "apis/authorization.k8s.io/v1" => Some(json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": "authorization.k8s.io/v1",
            "resources": [{"name": "selfsubjectaccessreviews", "singularName": "selfsubjectaccessreview",
                "namespaced": false, "kind": "SelfSubjectAccessReview", "verbs": ["create"]},
                {"name": "selfsubjectrulesreviews", "singularName": "selfsubjectrulesreview",
                "namespaced": false, "kind": "SelfSubjectRulesReview", "verbs": ["create"]}],
        })),
        _ => {
            let g = path.strip_prefix("apis/")?;
            GROUPS.contains(&g).then(|| {
                let mut v = group_json(g);
                if let Some(o) = v.as_object_mut() {
                    o.insert("kind".into(), json!("APIGroup"));
                    o.insert("apiVersion".into(), json!("v1"));
                }
                v
            })
        }
    }
}

fn resource_list(group_version: &str, prefix: &str) -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": RESOURCES.iter().filter(|r| r.prefix == prefix)
            .map(resource_json).collect::<Vec<_>>(),
    })
}

/// The OpenAPI v3 index: one entry per group-version that has resources.
fn openapi_v3_index() -> Value {
    let mut paths = serde_json::Map::new();
    for prefix in [
        "api/v1",
        "apis/apps/v1",
        "apis/rbac.authorization.k8s.io/v1",
    ] {
        paths.insert(
            prefix.to_string(),
            json!({"serverRelativeURL": format!("/openapi/v3/{prefix}?hash=sandbox")}),
        );
    }
    json!({"paths": paths})
}

/// A deliberately small OpenAPI v3 document: the write operations of each
/// resource with their `x-kubernetes-group-version-kind` and the
/// `fieldValidation` parameter, which is what kubectl checks before it
/// relies on server-side field validation (no schemas are published, so
/// kubectl computes patches from its built-in types).
fn openapi_v3_doc(prefix: &str) -> Value {
    let mut paths = serde_json::Map::new();
    for r in RESOURCES.iter().filter(|r| r.prefix == prefix) {
        let gvk = json!({"group": r.group, "version": "v1", "kind": r.kind});
        let op = |action: &str| {
            json!({
                "operationId": format!("{action}{}", r.kind),
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
                "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": {"description": "OK"}},
            })
        };
        let base = if r.namespaced {
            format!("/{prefix}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("/{prefix}/{}", r.plural)
        };
        paths.insert(base.clone(), json!({"post": op("post")}));
        paths.insert(
            format!("{base}/{{name}}"),
            json!({"put": op("put"), "patch": op("patch")}),
        );
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (eks-sandbox)", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": {}},
    })
}

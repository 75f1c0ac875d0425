//! Request dispatch: authentication, fault injection, counters, discovery,
//! review APIs and the object store (ConfigMaps, Namespaces, RBAC).

use std::collections::BTreeMap;

use http::request::Parts;
use http_body_util::Full;
use hyper::Response;
use hyper::body::Bytes;
use serde_json::{Map, Value, json};

use super::Ctx;
use super::auth::{self, UserInfo};
use super::authz::{self, Attrs};
use super::discovery::{self, ResourceDef};
use super::status::{self, Failure};
use crate::state::{Cluster, StoredObject};

type Resp = Response<Full<Bytes>>;
type Key = (String, String, String, String);

const ANONYMOUS_PATHS: [&str; 4] = ["version", "healthz", "livez", "readyz"];

/// A parsed resource path.
#[derive(Debug, Clone)]
struct Route {
    def: &'static ResourceDef,
    /// Empty for cluster-scoped or all-namespace requests.
    namespace: String,
    name: Option<String>,
}

enum Target {
    Discovery(String),
    Resource(Route),
    SelfSubjectReview,
    SelfSubjectAccessReview,
    SelfSubjectRulesReview,
    NotFound,
}

fn parse_target(path: &str) -> Target {
    let trimmed = path.trim_matches('/');
    if discovery::document(trimmed, "1.33", "").is_some() || ANONYMOUS_PATHS.contains(&trimmed) {
        return Target::Discovery(trimmed.to_string());
    }
    match trimmed {
        "apis/authentication.k8s.io/v1/selfsubjectreviews" => return Target::SelfSubjectReview,
        "apis/authorization.k8s.io/v1/selfsubjectaccessreviews" => {
            return Target::SelfSubjectAccessReview;
        }
        "apis/authorization.k8s.io/v1/selfsubjectrulesreviews" => {
            return Target::SelfSubjectRulesReview;
        }
        _ => {}
    }
    let segs: Vec<&str> = trimmed.split('/').collect();
    let (prefix, rest) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => ("api/v1".to_string(), rest),
        ["apis", g, v, rest @ ..] => (format!("apis/{g}/{v}"), rest),
        _ => return Target::NotFound,
    };
    let (plural, namespace, name) = match rest {
        ["namespaces", ns, plural] => (*plural, *ns, None),
        ["namespaces", ns, plural, name] => (*plural, *ns, Some(*name)),
        [plural] => (*plural, "", None),
        [plural, name] => (*plural, "", Some(*name)),
        _ => return Target::NotFound,
    };
    let Some(def) = discovery::find(&prefix, plural) else {
        return Target::NotFound;
    };
    if !def.namespaced && !namespace.is_empty() {
        return Target::NotFound;
    }
    if def.namespaced && namespace.is_empty() && name.is_some() {
        return Target::NotFound;
    }
    Target::Resource(Route {
        def,
        namespace: namespace.to_string(),
        name: name.map(str::to_string),
    })
}

fn query_params(parts: &Parts) -> BTreeMap<String, String> {
    parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

fn bearer(parts: &Parts) -> Option<String> {
    let v = parts
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// `"<METHOD> <resource>"`, as the call counters and fault rules name a call.
pub(crate) fn operation(parts: &Parts) -> String {
    operation_of(parts, &parse_target(parts.uri.path()))
}

fn operation_of(parts: &Parts, target: &Target) -> String {
    let counted = match target {
        Target::Resource(r) => r.def.plural.to_string(),
        Target::SelfSubjectReview => "selfsubjectreviews".to_string(),
        Target::SelfSubjectAccessReview => "selfsubjectaccessreviews".to_string(),
        Target::SelfSubjectRulesReview => "selfsubjectrulesreviews".to_string(),
        _ => parts.uri.path().to_string(),
    };
    format!("{} {counted}", parts.method)
}

/// Handles one request.
pub(crate) fn dispatch(ctx: &Ctx, parts: &Parts, body: &[u8], now: i64) -> Resp {
    let Some(mut st) = ctx.lock() else {
        return status::to_response(&Failure::internal("state lock poisoned".into()));
    };
    let target = parse_target(parts.uri.path());
    *st.calls
        .entry((format!("k8s:{}", ctx.cluster), operation_of(parts, &target)))
        .or_default() += 1;

    let state = &mut *st;
    match state.clusters.get_mut(&ctx.cluster) {
        None => {
            return status::to_response(&Failure::new(
                503,
                "ServiceUnavailable",
                format!("cluster {} no longer exists", ctx.cluster),
            ));
        }
        Some(c) if c.faults.errors_500 > 0 => {
            c.faults.errors_500 -= 1;
            return status::to_response(&Failure::internal(
                "an error on the server (\"injected fault\") has prevented the request from succeeding"
                    .into(),
            ));
        }
        Some(_) => {}
    }

    // Authentication: verify the token (needs credentials and the other
    // clusters' names), then map the identity on this cluster.
    let user =
        match bearer(parts) {
            Some(token) => {
                // The token names the cluster (`x-k8s-aws-id`) by its name, not its key.
                let name = state
                    .clusters
                    .get(&ctx.cluster)
                    .map(|c| c.name.clone())
                    .unwrap_or_default();
                let mapped = auth::verify_token(state, &name, &ctx.sts_hosts, &token, now)
                    .and_then(|id| match state.clusters.get(&ctx.cluster) {
                        Some(c) => auth::map_identity(c, &id),
                        None => Err("cluster vanished".into()),
                    });
                match mapped {
                    Ok(u) => Some(u),
                    Err(why) => return status::to_response(&Failure::unauthorized(&why)),
                }
            }
            None => None,
        };
    let Some(cluster) = state.clusters.get_mut(&ctx.cluster) else {
        return status::to_response(&Failure::internal("cluster vanished".into()));
    };
    let user = match (user, &target) {
        (Some(u), _) => u,
        (None, Target::Discovery(p)) if ANONYMOUS_PATHS.contains(&p.as_str()) => {
            return discovery_response(ctx, cluster, p);
        }
        (None, _) => {
            return status::to_response(&Failure::unauthorized("no bearer token"));
        }
    };

    let review = |resource: &str, group: &str| Attrs {
        verb: "create".into(),
        api_group: group.into(),
        resource: resource.into(),
        subresource: String::new(),
        namespace: String::new(),
        name: String::new(),
    };
    let refused = |a: &Attrs| {
        status::to_response(
            &Failure::new(403, "Forbidden", authz::forbidden_message(&user, a))
                .with_details(json!({"kind": a.resource})),
        )
    };
    match target {
        Target::Discovery(p) => {
            if parts.method != http::Method::GET {
                return method_not_allowed();
            }
            let url = format!("/{p}");
            if !ANONYMOUS_PATHS.contains(&p.as_str())
                && !authz::authorize_url(cluster, &user, "get", &url)
            {
                return status::to_response(&Failure::new(
                    403,
                    "Forbidden",
                    format!(
                        "forbidden: User \"{}\" cannot get path \"{url}\"",
                        user.username
                    ),
                ));
            }
            discovery_response(ctx, cluster, &p)
        }
        Target::NotFound => status::to_response(&Failure::new(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
        )),
        Target::SelfSubjectReview => {
            if parts.method != http::Method::POST {
                return method_not_allowed();
            }
            let a = review("selfsubjectreviews", "authentication.k8s.io");
            if !authz::authorize(cluster, &user, &a) {
                return refused(&a);
            }
            self_subject_review(&user)
        }
        Target::SelfSubjectAccessReview => {
            if parts.method != http::Method::POST {
                return method_not_allowed();
            }
            let a = review("selfsubjectaccessreviews", "authorization.k8s.io");
            if !authz::authorize(cluster, &user, &a) {
                return refused(&a);
            }
            self_subject_access_review(cluster, &user, body)
        }
        Target::SelfSubjectRulesReview => {
            if parts.method != http::Method::POST {
                return method_not_allowed();
            }
            let a = review("selfsubjectrulesreviews", "authorization.k8s.io");
            if !authz::authorize(cluster, &user, &a) {
                return refused(&a);
            }
            self_subject_rules_review(cluster, &user, body)
        }
        Target::Resource(route) => resource(cluster, &user, parts, body, &route, now),
    }
}

fn method_not_allowed() -> Resp {
    status::to_response(&Failure::new(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource".into(),
    ))
}

fn discovery_response(ctx: &Ctx, cluster: &Cluster, path: &str) -> Resp {
    if ["healthz", "livez", "readyz"].contains(&path) {
        let mut r = Response::new(Full::new(Bytes::from_static(b"ok")));
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        );
        return r;
    }
    match discovery::document(path, &cluster.version, &ctx.endpoint) {
        Some(doc) => status::json_response(200, &doc),
        None => status::to_response(&Failure::new(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
        )),
    }
}

fn user_info_json(user: &UserInfo) -> Value {
    json!({
        "username": user.username,
        "uid": user.uid,
        "groups": user.groups,
        "extra": user.extra,
    })
}

fn self_subject_review(user: &UserInfo) -> Resp {
    status::json_response(
        201,
        &json!({
            "kind": "SelfSubjectReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "status": {"userInfo": user_info_json(user)},
        }),
    )
}

fn self_subject_access_review(cluster: &Cluster, user: &UserInfo, body: &[u8]) -> Resp {
    let mut review: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => match super::proto::self_subject_access_review(body) {
            Some(v) => v,
            None => {
                return status::to_response(&Failure::bad_request(format!(
                    "invalid body (neither JSON nor Kubernetes protobuf): {e}"
                )));
            }
        },
    };
    let s = |v: Option<&Value>, f: &str| -> String {
        v.and_then(|v| v.get(f))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let spec = review.get("spec");
    let allowed = if let Some(ra) = spec.and_then(|s| s.get("resourceAttributes")) {
        let attrs = Attrs {
            verb: s(Some(ra), "verb"),
            api_group: s(Some(ra), "group"),
            resource: s(Some(ra), "resource"),
            subresource: s(Some(ra), "subresource"),
            namespace: s(Some(ra), "namespace"),
            name: s(Some(ra), "name"),
        };
        authz::authorize(cluster, user, &attrs)
    } else if let Some(nra) = spec.and_then(|s| s.get("nonResourceAttributes")) {
        authz::authorize_url(cluster, user, &s(Some(nra), "verb"), &s(Some(nra), "path"))
    } else {
        return status::to_response(&Failure::invalid(
            "SelfSubjectAccessReview",
            "",
            "spec",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    };
    if let Some(o) = review.as_object_mut() {
        o.insert("status".into(), json!({"allowed": allowed}));
        o.insert("apiVersion".into(), json!("authorization.k8s.io/v1"));
        o.insert("kind".into(), json!("SelfSubjectAccessReview"));
    }
    status::json_response(201, &review)
}

fn self_subject_rules_review(cluster: &Cluster, user: &UserInfo, body: &[u8]) -> Resp {
    let namespace = match serde_json::from_slice::<Value>(body) {
        Ok(v) => v
            .get("spec")
            .and_then(|s| s.get("namespace"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        Err(e) => match super::proto::self_subject_rules_review_namespace(body) {
            Some(ns) => ns,
            None => {
                return status::to_response(&Failure::bad_request(format!(
                    "invalid body (neither JSON nor Kubernetes protobuf): {e}"
                )));
            }
        },
    };
    let (resource_rules, non_resource_rules) = authz::rules_review(cluster, user, &namespace);
    status::json_response(
        201,
        &json!({
            "kind": "SelfSubjectRulesReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "spec": {"namespace": namespace},
            "status": {
                "resourceRules": resource_rules,
                "nonResourceRules": non_resource_rules,
                // EKS's authorizer webhook cannot list what access policies grant.
                "incomplete": true,
                "evaluationError": "webhook authorizer does not support user rule resolution",
            },
        }),
    )
}

// ---------------------------------------------------------------- objects

fn timestamp(now: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(now)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

fn new_uid() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn meta_str(obj: &Value, field: &str) -> Option<String> {
    obj.get("metadata")?
        .get(field)?
        .as_str()
        .map(str::to_string)
}

fn key(def: &ResourceDef, ns: &str, name: &str) -> Key {
    (
        def.prefix.to_string(),
        def.plural.to_string(),
        ns.to_string(),
        name.to_string(),
    )
}

/// Stamps identity and bookkeeping fields and bumps the resourceVersion.
fn finalize(
    cluster: &mut Cluster,
    def: &ResourceDef,
    mut obj: Value,
    ns: &str,
    name: &str,
    previous: Option<&Value>,
    now: i64,
) -> Value {
    cluster.resource_version += 1;
    let rv = cluster.resource_version.to_string();
    if !obj.is_object() {
        obj = json!({});
    }
    if let Some(o) = obj.as_object_mut() {
        o.insert(
            "apiVersion".into(),
            json!(discovery::api_version(def.prefix)),
        );
        o.insert("kind".into(), json!(def.kind));
        let meta = o
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if !meta.is_object() {
            *meta = Value::Object(Map::new());
        }
        if let Some(m) = meta.as_object_mut() {
            m.insert("name".into(), json!(name));
            if def.namespaced {
                m.insert("namespace".into(), json!(ns));
            } else {
                m.remove("namespace");
            }
            let uid = previous
                .and_then(|p| meta_str(p, "uid"))
                .unwrap_or_else(new_uid);
            let created = previous
                .and_then(|p| meta_str(p, "creationTimestamp"))
                .unwrap_or_else(|| timestamp(now));
            m.insert("uid".into(), json!(uid));
            m.insert("resourceVersion".into(), json!(rv));
            m.insert("creationTimestamp".into(), json!(created));
            m.remove("managedFields");
            m.remove("selfLink");
        }
    }
    obj
}

/// Seeds a namespace object if absent.
pub(crate) fn seed_namespace(cluster: &mut Cluster, ns: &str) {
    let Some(def) = discovery::find("api/v1", "namespaces") else {
        return;
    };
    let k = key(def, "", ns);
    if cluster.objects.contains_key(&k) {
        return;
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let obj = json!({
        "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    });
    let obj = finalize(cluster, def, obj, "", ns, None, now);
    cluster.objects.insert(k, StoredObject { json: obj });
}

/// Seeds the default ClusterRoles and ClusterRoleBindings if absent.
pub(crate) fn seed_rbac(cluster: &mut Cluster) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for (plural, name, obj) in super::roles::bootstrap_objects() {
        let Some(def) = discovery::find(authz::RBAC_PREFIX, plural) else {
            continue;
        };
        let k = key(def, "", name);
        if cluster.objects.contains_key(&k) {
            continue;
        }
        let obj = finalize(cluster, def, obj, "", name, None, now);
        cluster.objects.insert(k, StoredObject { json: obj });
    }
}

/// A Namespace's name: an RFC 1123 label.
fn valid_label(name: &str) -> bool {
    name.len() <= 63 && !name.contains('.') && valid_name(name)
}

/// An RBAC object's name: any path segment (`eks-access-sync:developers`).
fn valid_path_segment(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '%'])
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn validate(def: &ResourceDef, name: &str, obj: &Value) -> Result<(), Failure> {
    if !obj.is_object() {
        return Err(Failure::bad_request("the body is not a JSON object".into()));
    }
    let rbac = matches!(
        def.kind,
        "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding"
    );
    if rbac && !valid_path_segment(name) {
        return Err(Failure::invalid(
            def.kind,
            name,
            "metadata.name",
            "may not contain '/' or '%', and may not be '.' or '..'",
        ));
    }
    if def.kind == "Namespace" && !valid_label(name) {
        return Err(Failure::invalid(
            def.kind,
            name,
            "metadata.name",
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        ));
    }
    if !rbac && !valid_name(name) {
        return Err(Failure::invalid(
            def.kind,
            name,
            "metadata.name",
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        ));
    }
    if let Some(kind) = obj.get("kind").and_then(Value::as_str)
        && kind != def.kind
    {
        return Err(Failure::bad_request(format!(
            "the kind {kind:?} does not match the resource {}",
            def.plural
        )));
    }
    if def.kind == "ConfigMap" {
        for field in ["data", "binaryData"] {
            match obj.get(field) {
                None | Some(Value::Null) => {}
                Some(Value::Object(m)) => {
                    for (k, v) in m {
                        let key_ok = !k.is_empty()
                            && k.len() <= 253
                            && k.chars()
                                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
                        if !key_ok {
                            return Err(Failure::invalid(
                                "ConfigMap",
                                name,
                                &format!("{field}[{k}]"),
                                "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                            ));
                        }
                        if !v.is_string() {
                            return Err(Failure::invalid(
                                "ConfigMap",
                                name,
                                &format!("{field}[{k}]"),
                                "value must be a string",
                            ));
                        }
                    }
                }
                Some(_) => {
                    return Err(Failure::invalid(
                        "ConfigMap",
                        name,
                        field,
                        "must be a map of strings",
                    ));
                }
            }
        }
    }
    if (def.kind == "Role" || def.kind == "ClusterRole")
        && let Some(r) = obj.get("rules")
        && !r.is_array()
        && !r.is_null()
    {
        return Err(Failure::invalid(def.kind, name, "rules", "must be a list"));
    }
    if (def.kind == "RoleBinding" || def.kind == "ClusterRoleBinding")
        && obj
            .get("roleRef")
            .and_then(|r| r.get("name"))
            .and_then(Value::as_str)
            .is_none()
    {
        return Err(Failure::invalid(
            def.kind,
            name,
            "roleRef.name",
            "Required value",
        ));
    }
    if def.kind == "RoleBinding" || def.kind == "ClusterRoleBinding" {
        let rr = |f: &str| {
            obj.get("roleRef")
                .and_then(|r| r.get(f))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let kinds: &[&str] = if def.kind == "RoleBinding" {
            &["Role", "ClusterRole"]
        } else {
            &["ClusterRole"]
        };
        let kind = rr("kind");
        if !kinds.contains(&kind.as_str()) {
            let supported: Vec<String> = kinds.iter().map(|k| format!("{k:?}")).collect();
            return Err(Failure::invalid(
                def.kind,
                name,
                "roleRef.kind",
                &format!(
                    "Unsupported value: {kind:?}: supported values: {}",
                    supported.join(", ")
                ),
            ));
        }
        let group = rr("apiGroup");
        if group != "rbac.authorization.k8s.io" {
            return Err(Failure::invalid(
                def.kind,
                name,
                "roleRef.apiGroup",
                &format!(
                    "Unsupported value: {group:?}: supported values: \"rbac.authorization.k8s.io\""
                ),
            ));
        }
    }
    Ok(())
}

fn verb_of(method: &http::Method, route: &Route, query: &BTreeMap<String, String>) -> &'static str {
    let watch = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    match (method.as_str(), route.name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("POST", false) => "create",
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "",
    }
}

/// Before a write to kube-system/aws-auth: when the fault is armed, another
/// writer's edit (a node-role mapping) lands first.
fn maybe_race(cluster: &mut Cluster, def: &ResourceDef, ns: &str, name: &str, now: i64) {
    if def.plural != "configmaps" || ns != "kube-system" || name != "aws-auth" {
        return;
    }
    if cluster.faults.aws_auth_conflicts == 0 {
        return;
    }
    let k = key(def, ns, name);
    let Some(current) = cluster.objects.get(&k).map(|o| o.json.clone()) else {
        return;
    };
    cluster.faults.aws_auth_conflicts -= 1;
    let n = cluster.resource_version + 1;
    let existing = current
        .get("data")
        .and_then(|d| d.get("mapRoles"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let entry = json!({
        "rolearn": format!("arn:aws:iam::{}:role/race-node-{n}", cluster.account()),
        "username": "system:node:{{EC2PrivateDNSName}}",
        "groups": ["system:bootstrappers", "system:nodes"],
    });
    let new_roles = match serde_saphyr::from_str::<Option<Vec<Value>>>(&existing) {
        Ok(list) => {
            let mut list = list.unwrap_or_default();
            list.push(entry);
            serde_saphyr::to_string(&list).ok()
        }
        Err(_) => None,
    }
    .unwrap_or_else(|| {
        let sep = if existing.is_empty() || existing.ends_with('\n') { "" } else { "\n" };
        format!(
            "{existing}{sep}- rolearn: arn:aws:iam::{}:role/race-node-{n}\n  username: system:node:{{{{EC2PrivateDNSName}}}}\n  groups:\n  - system:bootstrappers\n  - system:nodes\n",
            cluster.account()
        )
    });
    let mut updated = current.clone();
    if let Some(o) = updated.as_object_mut() {
        let data = o.entry("data").or_insert_with(|| json!({}));
        if !data.is_object() {
            *data = json!({});
        }
        if let Some(d) = data.as_object_mut() {
            d.insert("mapRoles".into(), json!(new_roles));
        }
    }
    let obj = finalize(cluster, def, updated, ns, name, Some(&current), now);
    cluster.objects.insert(k, StoredObject { json: obj });
}

fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

fn apply_patch(content_type: &str, doc: &mut Value, body: &[u8]) -> Result<(), Failure> {
    let ct = content_type.split(';').next().unwrap_or_default().trim();
    match ct {
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            let mut patch: Value = serde_json::from_slice(body)
                .map_err(|e| Failure::bad_request(format!("invalid patch: {e}")))?;
            if ct == "application/strategic-merge-patch+json" {
                strip_directives(&mut patch);
            }
            json_patch::merge(doc, &patch);
            Ok(())
        }
        "application/json-patch+json" => {
            let patch: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| Failure::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(doc, &patch.0).map_err(|e| {
                Failure::new(
                    422,
                    "Invalid",
                    format!("the JSON patch could not be applied: {e}"),
                )
            })
        }
        other => Err(Failure::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {other:?})"
            ),
        )),
    }
}

fn resource(
    cluster: &mut Cluster,
    user: &UserInfo,
    parts: &Parts,
    body: &[u8],
    route: &Route,
    now: i64,
) -> Resp {
    let def = route.def;
    let query = query_params(parts);
    let verb = verb_of(&parts.method, route, &query);
    if verb.is_empty() || !def.verbs.contains(&verb) {
        return method_not_allowed();
    }
    // For creates the namespace/name come from the URL and the body.
    let body_json: Option<Value> = if matches!(verb, "create" | "update" | "patch") {
        if verb == "patch" {
            None
        } else {
            match serde_json::from_slice(body) {
                Ok(v) => Some(v),
                Err(_) if let Some(v) = super::proto::object_metadata(body) => Some(v),
                Err(e) => {
                    return status::to_response(&Failure::bad_request(format!(
                        "the body of the request could not be decoded as JSON: {e}"
                    )));
                }
            }
        }
    } else {
        None
    };
    let name = match (&route.name, &body_json) {
        (Some(n), _) => n.clone(),
        (None, Some(b)) if verb == "create" => meta_str(b, "name").unwrap_or_default(),
        _ => String::new(),
    };
    // As kube-apiserver's RequestInfo: a request on one namespace object is in
    // that namespace (a RoleBinding there can grant `get namespaces`).
    let attr_ns = if def.plural == "namespaces" && route.name.is_some() {
        name.clone()
    } else {
        route.namespace.clone()
    };
    let attrs = Attrs {
        verb: verb.to_string(),
        api_group: def.group.to_string(),
        resource: def.plural.to_string(),
        subresource: String::new(),
        namespace: attr_ns,
        name: if verb == "create" {
            String::new()
        } else {
            name.clone()
        },
    };
    if !authz::authorize(cluster, user, &attrs) {
        return status::to_response(
            &Failure::new(403, "Forbidden", authz::forbidden_message(user, &attrs))
                .with_details(json!({"name": name, "kind": def.plural})),
        );
    }
    let dry_run = query.contains_key("dryRun");
    let ns = route.namespace.clone();
    match verb {
        "list" => list(cluster, def, &ns, &query),
        "watch" => status::to_response(&Failure::new(
            405,
            "MethodNotAllowed",
            "watch is not supported by the sandbox".into(),
        )),
        "get" => match cluster.objects.get(&key(def, &ns, &name)) {
            Some(o) => status::json_response(200, &o.json),
            None => status::to_response(&Failure::not_found(def.plural, &name)),
        },
        "create" => {
            let Some(obj) = body_json else {
                return status::to_response(&Failure::bad_request("missing body".into()));
            };
            if name.is_empty() {
                return status::to_response(&Failure::invalid(
                    def.kind,
                    "",
                    "metadata.name",
                    "Required value: name or generateName is required",
                ));
            }
            if let Some(body_ns) = meta_str(&obj, "namespace")
                && def.namespaced
                && !body_ns.is_empty()
                && body_ns != ns
            {
                return status::to_response(&Failure::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
            if let Err(f) = validate(def, &name, &obj)
                .and_then(|()| check_binding(cluster, user, def, &ns, &name, &obj, None))
            {
                return status::to_response(&f);
            }
            let obj = if def.kind == "Namespace" {
                namespace_defaults(obj, &name)
            } else {
                obj
            };
            if def.namespaced
                && !cluster.objects.contains_key(&(
                    "api/v1".into(),
                    "namespaces".into(),
                    String::new(),
                    ns.clone(),
                ))
            {
                return status::to_response(&Failure::not_found("namespaces", &ns));
            }
            let k = key(def, &ns, &name);
            if cluster.objects.contains_key(&k) {
                return status::to_response(&Failure::already_exists(def.plural, &name));
            }
            if dry_run {
                return status::json_response(201, &obj);
            }
            let obj = finalize(cluster, def, obj, &ns, &name, None, now);
            cluster
                .objects
                .insert(k, StoredObject { json: obj.clone() });
            status::json_response(201, &obj)
        }
        "update" => {
            let Some(obj) = body_json else {
                return status::to_response(&Failure::bad_request("missing body".into()));
            };
            if let Some(body_name) = meta_str(&obj, "name")
                && body_name != name
            {
                return status::to_response(&Failure::invalid(
                    def.kind,
                    &body_name,
                    "metadata.name",
                    &format!(
                        "Invalid value: {body_name:?}: the name of the object ({body_name}) does not match the name on the URL ({name})"
                    ),
                ));
            }
            maybe_race(cluster, def, &ns, &name, now);
            let current = cluster
                .objects
                .get(&key(def, &ns, &name))
                .map(|o| o.json.clone());
            if let Some(cur) = &current
                && let Err(f) = check_binding(cluster, user, def, &ns, &name, &obj, Some(cur))
            {
                return status::to_response(&f);
            }
            write_checked(cluster, def, &ns, &name, obj, dry_run, now)
        }
        "patch" => {
            maybe_race(cluster, def, &ns, &name, now);
            let k = key(def, &ns, &name);
            let Some(current) = cluster.objects.get(&k).map(|o| o.json.clone()) else {
                return status::to_response(&Failure::not_found(def.plural, &name));
            };
            let ct = parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let mut doc = current.clone();
            if let Err(f) = apply_patch(ct, &mut doc, body) {
                return status::to_response(&f);
            }
            if meta_str(&doc, "name").as_deref() != Some(name.as_str()) {
                return status::to_response(&Failure::invalid(
                    def.kind,
                    &name,
                    "metadata.name",
                    "field is immutable",
                ));
            }
            if let Err(f) = check_binding(cluster, user, def, &ns, &name, &doc, Some(&current)) {
                return status::to_response(&f);
            }
            write_checked(cluster, def, &ns, &name, doc, dry_run, now)
        }
        "delete" => {
            let k = key(def, &ns, &name);
            let Some(old) = cluster.objects.get(&k).map(|o| o.json.clone()) else {
                return status::to_response(&Failure::not_found(def.plural, &name));
            };
            if def.kind == "Namespace" && IMMORTAL_NAMESPACES.contains(&name.as_str()) {
                return status::to_response(
                    &Failure::new(
                        403,
                        "Forbidden",
                        format!(
                            "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
                        ),
                    )
                    .with_details(json!({"name": name, "kind": "namespaces"})),
                );
            }
            if !dry_run {
                cluster.objects.remove(&k);
                if def.kind == "Namespace" {
                    // The namespace controller removes everything in it.
                    cluster.objects.retain(|(_, _, o_ns, _), _| *o_ns != name);
                }
                cluster.resource_version += 1;
            }
            status::json_response(
                200,
                &json!({
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {"name": name, "kind": def.plural, "uid": meta_str(&old, "uid")},
                }),
            )
        }
        _ => method_not_allowed(),
    }
}

/// Namespaces Kubernetes' NamespaceLifecycle admission refuses to delete.
const IMMORTAL_NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];

/// What the API server fills in on a new Namespace.
fn namespace_defaults(mut obj: Value, name: &str) -> Value {
    if let Some(o) = obj.as_object_mut() {
        let meta = o.entry("metadata").or_insert_with(|| json!({}));
        if let Some(m) = meta.as_object_mut() {
            let labels = m.entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        }
        o.insert("spec".into(), json!({"finalizers": ["kubernetes"]}));
        o.insert("status".into(), json!({"phase": "Active"}));
    }
    obj
}

/// For RoleBindings and ClusterRoleBindings: `roleRef` cannot change on an
/// existing binding, and the writer may not grant what it does not hold
/// (RBAC's escalation check).
fn check_binding(
    cluster: &Cluster,
    user: &UserInfo,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    obj: &Value,
    previous: Option<&Value>,
) -> Result<(), Failure> {
    if def.kind != "RoleBinding" && def.kind != "ClusterRoleBinding" {
        return Ok(());
    }
    let role_ref = obj.get("roleRef").cloned().unwrap_or(Value::Null);
    if let Some(prev) = previous
        && let Some(old_ref) = prev.get("roleRef")
    {
        let field = |r: &Value, f: &str| {
            r.get(f)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let same = ["apiGroup", "kind", "name"]
            .iter()
            .all(|f| field(old_ref, f) == field(&role_ref, f));
        if !same {
            return Err(Failure::invalid(
                &format!("{}.rbac.authorization.k8s.io", def.kind),
                name,
                "roleRef",
                &format!(
                    "Invalid value: rbac.RoleRef{{APIGroup:{:?}, Kind:{:?}, Name:{:?}}}: cannot change roleRef",
                    field(&role_ref, "apiGroup"),
                    field(&role_ref, "kind"),
                    field(&role_ref, "name")
                ),
            ));
        }
    }
    authz::confirm_no_escalation(cluster, user, ns, &role_ref).map_err(|refusal| match refusal {
        authz::Refusal::RoleNotFound { plural, name } => {
            Failure::not_found(&format!("{plural}.rbac.authorization.k8s.io"), &name)
        }
        authz::Refusal::NotHeld(missing) => Failure::new(
            403,
            "Forbidden",
            authz::escalation_message(user, def.plural, name, &missing),
        )
        .with_details(
            json!({"name": name, "group": "rbac.authorization.k8s.io", "kind": def.plural}),
        ),
    })
}

/// Replaces an existing object, refusing a stale `resourceVersion`.
fn write_checked(
    cluster: &mut Cluster,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    obj: Value,
    dry_run: bool,
    now: i64,
) -> Resp {
    let k = key(def, ns, name);
    let Some(current) = cluster.objects.get(&k).map(|o| o.json.clone()) else {
        return status::to_response(&Failure::not_found(def.plural, name));
    };
    if let Some(rv) = meta_str(&obj, "resourceVersion")
        && Some(&rv) != meta_str(&current, "resourceVersion").as_ref()
    {
        return status::to_response(&Failure::conflict(def.plural, name));
    }
    if let Err(f) = validate(def, name, &obj) {
        return status::to_response(&f);
    }
    if dry_run {
        return status::json_response(200, &obj);
    }
    let obj = finalize(cluster, def, obj, ns, name, Some(&current), now);
    cluster
        .objects
        .insert(k, StoredObject { json: obj.clone() });
    status::json_response(200, &obj)
}

fn list(cluster: &Cluster, def: &ResourceDef, ns: &str, query: &BTreeMap<String, String>) -> Resp {
    let mut name_filter = None;
    let mut ns_filter = None;
    if let Some(fs) = query.get("fieldSelector") {
        for clause in fs.split(',').filter(|c| !c.is_empty()) {
            match clause.split_once('=') {
                Some(("metadata.name", v)) => name_filter = Some(v.trim_start_matches('=')),
                Some(("metadata.namespace", v)) => ns_filter = Some(v.trim_start_matches('=')),
                _ => {
                    return status::to_response(&Failure::bad_request(format!(
                        "unable to parse requested fieldSelector {clause:?}"
                    )));
                }
            }
        }
    }
    let selector = match query.get("labelSelector").map(|q| parse_selector(q)) {
        None => Vec::new(),
        Some(Ok(s)) => s,
        Some(Err(why)) => {
            return status::to_response(&Failure::bad_request(format!(
                "unable to parse requested label selector: {why}"
            )));
        }
    };
    let items: Vec<Value> = cluster
        .objects
        .iter()
        .filter(|((p, r, o_ns, o_name), o)| {
            p == def.prefix
                && r == def.plural
                && (ns.is_empty() || o_ns == ns)
                && name_filter.is_none_or(|n| n == o_name)
                && ns_filter.is_none_or(|n| n == o_ns)
                && selector.iter().all(|req| req.matches(&o.json))
        })
        .map(|(_, o)| o.json.clone())
        .collect();
    status::json_response(
        200,
        &json!({
            "kind": format!("{}List", def.kind),
            "apiVersion": discovery::api_version(def.prefix),
            "metadata": {"resourceVersion": cluster.resource_version.to_string()},
            "items": items,
        }),
    )
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelReq {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

impl LabelReq {
    fn matches(&self, obj: &Value) -> bool {
        let label = |k: &str| {
            obj.get("metadata")
                .and_then(|m| m.get("labels"))
                .and_then(|l| l.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        match self {
            Self::In(k, vs) => label(k).is_some_and(|v| vs.contains(&v)),
            Self::NotIn(k, vs) => label(k).is_none_or(|v| !vs.contains(&v)),
            Self::Exists(k) => label(k).is_some(),
            Self::NotExists(k) => label(k).is_none(),
        }
    }
}

/// Parses `a=b,c!=d,e,!f,g in (h,i),j notin (k)` (Kubernetes' label selector syntax).
fn parse_selector(q: &str) -> Result<Vec<LabelReq>, String> {
    let mut clauses = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in q.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                clauses.push(&q[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    clauses.push(&q[start..]);
    let set = |v: &str| -> Result<Vec<String>, String> {
        let inner = v
            .trim()
            .strip_prefix('(')
            .and_then(|v| v.strip_suffix(')'))
            .ok_or_else(|| format!("expected a parenthesised set, found {v:?}"))?;
        Ok(inner.split(',').map(|s| s.trim().to_string()).collect())
    };
    let mut reqs = Vec::new();
    for clause in clauses.into_iter().map(str::trim).filter(|c| !c.is_empty()) {
        let req = if let Some((k, v)) = clause.split_once("!=") {
            LabelReq::NotIn(k.trim().into(), vec![v.trim().into()])
        } else if let Some((k, v)) = clause.split_once("==").or_else(|| clause.split_once('=')) {
            LabelReq::In(k.trim().into(), vec![v.trim().into()])
        } else if let Some((k, v)) = clause.split_once(" notin ") {
            LabelReq::NotIn(k.trim().into(), set(v)?)
        } else if let Some((k, v)) = clause.split_once(" in ") {
            LabelReq::In(k.trim().into(), set(v)?)
        } else if let Some(k) = clause.strip_prefix('!') {
            LabelReq::NotExists(k.trim().into())
        } else if clause.contains([' ', '(', ')']) {
            return Err(format!("invalid clause {clause:?}"));
        } else {
            LabelReq::Exists(clause.into())
        };
        reqs.push(req);
    }
    Ok(reqs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors_parse_and_match() {
        let obj = json!({"metadata": {"labels": {"app.kubernetes.io/managed-by": "eks-access-sync", "tier": "view"}}});
        let m = |q: &str| {
            parse_selector(q)
                .expect("parses")
                .iter()
                .all(|r| r.matches(&obj))
        };
        assert!(m("app.kubernetes.io/managed-by=eks-access-sync"));
        assert!(m("app.kubernetes.io/managed-by==eks-access-sync,tier"));
        assert!(!m("app.kubernetes.io/managed-by=someone-else"));
        assert!(m("tier in (view, edit),!missing"));
        assert!(!m("tier notin (view)"));
        assert!(m("tier!=edit"));
        assert!(!m("missing"));
        assert!(parse_selector("tier in view").is_err());
    }
}

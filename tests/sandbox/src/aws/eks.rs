//! The EKS control plane, in the EKS REST-JSON protocol.
//!
//! Each account has its own clusters: a call sees only the clusters of its
//! caller's account (a cluster name may be used in two accounts), and a
//! cluster's ARN names its account. Access entries may name a principal of
//! any account (as EKS allows); its unique ID is looked up in that account.

use std::collections::BTreeMap;

use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::request::Parts;
use http::{Method, StatusCode};
use hyper::body::Bytes;
use serde_json::{Value, json};

use super::iam::principal_id;
use super::{
    AwsError, ClusterExtra, FrontDoor, canonical_arn, lock, now_millis, now_secs, request_id,
};
use crate::state::{
    AccessEntry, AuthMode, Cluster, ClusterFaults, Credential, PolicyAssociation, arn_account,
    cluster_key,
};

/// The access policy EKS gives the cluster creator.
pub const CLUSTER_ADMIN_POLICY: &str =
    "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy";
const KNOWN_POLICIES: &[&str] = &[
    "AmazonEKSClusterAdminPolicy",
    "AmazonEKSAdminPolicy",
    "AmazonEKSEditPolicy",
    "AmazonEKSViewPolicy",
    "AmazonEKSAdminViewPolicy",
    "AmazonEKSSecretReaderPolicy",
];
const DEFAULT_VERSION: &str = "1.33";

pub fn mode_name(m: AuthMode) -> &'static str {
    match m {
        AuthMode::ConfigMap => "CONFIG_MAP",
        AuthMode::ApiAndConfigMap => "API_AND_CONFIG_MAP",
        AuthMode::Api => "API",
    }
}

pub fn parse_mode(s: &str) -> Result<AuthMode, AwsError> {
    match s {
        "CONFIG_MAP" => Ok(AuthMode::ConfigMap),
        "API_AND_CONFIG_MAP" => Ok(AuthMode::ApiAndConfigMap),
        "API" => Ok(AuthMode::Api),
        other => Err(invalid_param(format!(
            "Unsupported authentication mode: {other}"
        ))),
    }
}

fn invalid_param(m: impl Into<String>) -> AwsError {
    AwsError::new(400, "InvalidParameterException", m)
}

fn invalid_request(m: impl Into<String>) -> AwsError {
    AwsError::new(400, "InvalidRequestException", m)
}

fn not_found(m: impl Into<String>) -> AwsError {
    AwsError::new(404, "ResourceNotFoundException", m)
}

fn no_cluster(name: &str) -> AwsError {
    not_found(format!("No cluster found for name: {name}."))
}

fn no_entry() -> AwsError {
    not_found("The specified access entry resource could not be found.")
}

fn ok(v: Value) -> Response {
    let mut r = (
        StatusCode::OK,
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response();
    if let Ok(id) = http::HeaderValue::from_str(&request_id()) {
        r.headers_mut().insert("x-amzn-requestid", id);
    }
    r
}

fn decode(seg: &str) -> String {
    percent_encoding::percent_decode_str(seg)
        .decode_utf8_lossy()
        .into_owned()
}

fn query_map(parts: &Parts) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(q) = parts.uri.query() {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()).into_owned() {
            m.entry(k).or_default().push(v);
        }
    }
    m
}

fn epoch(t: i64) -> Value {
    json!(t)
}

/// Epoch seconds with milliseconds, as EKS renders `createdAt` (`1.700000000123E9`).
fn epoch_ms(ms: i64) -> Value {
    json!(ms as f64 / 1000.0)
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn tags_of(v: Option<&Value>) -> Result<BTreeMap<String, String>, AwsError> {
    let Some(obj) = v.and_then(Value::as_object) else {
        return Ok(BTreeMap::new());
    };
    obj.iter()
        .map(|(k, v)| {
            v.as_str()
                .map(|s| (k.clone(), s.to_string()))
                .ok_or_else(|| invalid_param("tag values must be strings"))
        })
        .collect()
}

/// The EKS operation at `method` `path`.
pub fn operation(m: &Method, path: &str) -> Option<&'static str> {
    let segs: Vec<String> = path.trim_matches('/').split('/').map(decode).collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let op = match (m, s.as_slice()) {
        (&Method::POST, ["clusters"]) => "CreateCluster",
        (&Method::GET, ["clusters"]) => "ListClusters",
        (&Method::GET, ["clusters", _]) => "DescribeCluster",
        (&Method::DELETE, ["clusters", _]) => "DeleteCluster",
        (&Method::POST, ["clusters", _, "update-config"]) => "UpdateClusterConfig",
        (&Method::POST, ["clusters", _, "access-entries"]) => "CreateAccessEntry",
        (&Method::GET, ["clusters", _, "access-entries"]) => "ListAccessEntries",
        (&Method::GET, ["clusters", _, "access-entries", _]) => "DescribeAccessEntry",
        (&Method::POST, ["clusters", _, "access-entries", _]) => "UpdateAccessEntry",
        (&Method::DELETE, ["clusters", _, "access-entries", _]) => "DeleteAccessEntry",
        (&Method::POST, ["clusters", _, "access-entries", _, "access-policies"]) => {
            "AssociateAccessPolicy"
        }
        (&Method::GET, ["clusters", _, "access-entries", _, "access-policies"]) => {
            "ListAssociatedAccessPolicies"
        }
        (&Method::DELETE, ["clusters", _, "access-entries", _, "access-policies", _]) => {
            "DisassociateAccessPolicy"
        }
        (&Method::POST, ["tags", _]) => "TagResource",
        (&Method::DELETE, ["tags", _]) => "UntagResource",
        (&Method::GET, ["tags", _]) => "ListTagsForResource",
        _ => return None,
    };
    Some(op)
}

/// Handles one EKS call; `region` is the signing scope's.
pub async fn handle(
    fd: &FrontDoor,
    region: &str,
    cred: &Credential,
    parts: &Parts,
    body: Bytes,
) -> Result<Response, AwsError> {
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AwsError::new(400, "BadRequestException", format!("invalid JSON: {e}")))?
    };
    let segs: Vec<String> = parts
        .uri
        .path()
        .trim_matches('/')
        .split('/')
        .map(decode)
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let q = query_map(parts);
    let m = &parts.method;
    let Some(op) = operation(m, parts.uri.path()) else {
        return Err(AwsError::new(
            404,
            "NotFoundException",
            format!("no EKS operation at {} {}", m, parts.uri.path()),
        ));
    };
    fd.count("eks", op);
    let account = cred.principal.account();
    // The caller's cluster of the name in the path: `region` and `account` pick it.
    let at = Place { region, account };
    let cluster = s.get(1).copied().unwrap_or_default();
    let principal = s.get(3).copied().unwrap_or_default();
    match op {
        "CreateCluster" => create_cluster(fd, at, &canonical_arn(&cred.principal), &body).await,
        "ListClusters" => list_clusters(fd, at, &q),
        "DescribeCluster" => with_cluster(fd, at, cluster, |c, x| {
            Ok(ok(json!({ "cluster": cluster_json(c, x) })))
        }),
        "DeleteCluster" => delete_cluster(fd, at, cluster),
        "UpdateClusterConfig" => update_config(fd, at, cluster, &body),
        "CreateAccessEntry" => create_entry(fd, at, cluster, &body).await,
        "ListAccessEntries" => list_entries(fd, at, cluster, &q),
        "DescribeAccessEntry" => with_entry(fd, at, cluster, principal, |c, e| {
            Ok(ok(json!({ "accessEntry": entry_json(c, e) })))
        }),
        "UpdateAccessEntry" => update_entry(fd, at, cluster, principal, &body),
        "DeleteAccessEntry" => with_cluster_mut(fd, at, cluster, |c| {
            require_api_mode(c)?;
            c.access_entries.remove(principal).ok_or_else(no_entry)?;
            Ok(ok(json!({})))
        }),
        "AssociateAccessPolicy" => associate(fd, at, cluster, principal, &body),
        "ListAssociatedAccessPolicies" => with_entry(fd, at, cluster, principal, |c, e| {
            let list: Vec<Value> = e.policies.iter().map(assoc_json).collect();
            Ok(ok(json!({
                "clusterName": c.name,
                "principalArn": e.principal_arn,
                "associatedAccessPolicies": list,
            })))
        }),
        "DisassociateAccessPolicy" => {
            let policy = s.get(5).copied().unwrap_or_default();
            with_cluster_mut(fd, at, cluster, |c| {
                require_api_mode(c)?;
                let e = c.access_entries.get_mut(principal).ok_or_else(no_entry)?;
                let before = e.policies.len();
                e.policies.retain(|p| p.policy_arn != policy);
                if before == e.policies.len() {
                    return Err(not_found(
                        "The specified access policy association could not be found.",
                    ));
                }
                Ok(ok(json!({})))
            })
        }
        "TagResource" => tag_op(fd, at, cluster, |c| {
            c.tags.extend(tags_of(body.get("tags"))?);
            Ok(json!({}))
        }),
        "UntagResource" => tag_op(fd, at, cluster, |c| {
            for k in q.get("tagKeys").into_iter().flatten() {
                c.tags.remove(k);
            }
            Ok(json!({}))
        }),
        _ => tag_op(fd, at, cluster, |c| Ok(json!({ "tags": c.tags }))),
    }
}

fn cluster_json(c: &Cluster, x: &ClusterExtra) -> Value {
    let short: String = c.name.bytes().map(|b| format!("{b:02X}")).collect();
    json!({
        "name": c.name,
        "arn": c.arn,
        "createdAt": epoch(c.created_at),
        "version": c.version,
        "endpoint": c.endpoint,
        "roleArn": x.role_arn,
        "resourcesVpcConfig": {
            "subnetIds": ["subnet-0sandbox0a", "subnet-0sandbox0b"],
            "securityGroupIds": [],
            "clusterSecurityGroupId": "sg-0sandbox",
            "vpcId": "vpc-0sandbox",
            "endpointPublicAccess": true,
            "endpointPrivateAccess": false,
            "publicAccessCidrs": ["0.0.0.0/0"]
        },
        "kubernetesNetworkConfig": {"serviceIpv4Cidr": "10.100.0.0/16", "ipFamily": "ipv4"},
        "logging": {"clusterLogging": [{"types": ["api", "audit", "authenticator", "controllerManager", "scheduler"], "enabled": false}]},
        "identity": {"oidc": {"issuer": format!("https://oidc.eks.{}.amazonaws.com/id/{short}", c.region)}},
        "status": "ACTIVE",
        "certificateAuthority": {"data": c.ca_data_b64},
        "platformVersion": "eks.1",
        "tags": c.tags,
        "accessConfig": {
            "bootstrapClusterCreatorAdminPermissions": x.bootstrap_admin,
            "authenticationMode": mode_name(c.auth_mode)
        }
    })
}

/// Where a call looks for clusters: its signing region and its caller's account.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place<'a> {
    pub region: &'a str,
    pub account: &'a str,
}

impl Place<'_> {
    fn key(&self, name: &str) -> String {
        cluster_key(self.account, name)
    }
}

fn entry_json(c: &Cluster, e: &AccessEntry) -> Value {
    let id: String = e
        .principal_arn
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        .to_string();
    json!({
        "clusterName": c.name,
        "principalArn": e.principal_arn,
        "kubernetesGroups": e.kubernetes_groups,
        "accessEntryArn": format!(
            "arn:aws:eks:{}:{}:access-entry/{}/{}/{}/{id}",
            c.region,
            c.account(),
            c.name,
            e.entry_type.to_ascii_lowercase(),
            arn_account(&e.principal_arn).unwrap_or(c.account())
        ),
        "createdAt": epoch_ms(e.created_at_ms),
        "modifiedAt": epoch(e.modified_at),
        "tags": {},
        "username": e.username,
        "type": e.entry_type,
    })
}

fn assoc_json(p: &PolicyAssociation) -> Value {
    json!({
        "policyArn": p.policy_arn,
        "accessScope": {"type": p.scope_type, "namespaces": p.namespaces},
        "associatedAt": epoch(p.associated_at),
        "modifiedAt": epoch(p.modified_at),
    })
}

fn with_cluster<T>(
    fd: &FrontDoor,
    at: Place<'_>,
    name: &str,
    f: impl FnOnce(&Cluster, &ClusterExtra) -> Result<T, AwsError>,
) -> Result<T, AwsError> {
    let key = at.key(name);
    let extra = fd.extras().get(&key).cloned().unwrap_or_default();
    let st = lock(&fd.shared);
    let c = st
        .clusters
        .get(&key)
        .filter(|c| c.region == at.region)
        .ok_or_else(|| no_cluster(name))?;
    f(c, &extra)
}

fn with_cluster_mut<T>(
    fd: &FrontDoor,
    at: Place<'_>,
    name: &str,
    f: impl FnOnce(&mut Cluster) -> Result<T, AwsError>,
) -> Result<T, AwsError> {
    let mut st = lock(&fd.shared);
    let c = st
        .clusters
        .get_mut(&at.key(name))
        .filter(|c| c.region == at.region)
        .ok_or_else(|| no_cluster(name))?;
    f(c)
}

fn with_entry(
    fd: &FrontDoor,
    at: Place<'_>,
    cluster: &str,
    principal: &str,
    f: impl FnOnce(&Cluster, &AccessEntry) -> Result<Response, AwsError>,
) -> Result<Response, AwsError> {
    with_cluster(fd, at, cluster, |c, _| {
        require_api_mode(c)?;
        let e = c.access_entries.get(principal).ok_or_else(no_entry)?;
        f(c, e)
    })
}

fn require_api_mode(c: &Cluster) -> Result<(), AwsError> {
    if c.auth_mode == AuthMode::ConfigMap {
        return Err(invalid_request(
            "The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP] to perform this operation.",
        ));
    }
    Ok(())
}

fn valid_cluster_name(n: &str) -> bool {
    let mut chars = n.chars();
    (1..=100).contains(&n.len())
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// What a new cluster is made of.
#[derive(Debug, Clone)]
pub(crate) struct NewCluster<'a> {
    pub name: &'a str,
    /// Canonical ARN of the creator.
    pub creator_arn: &'a str,
    pub mode: AuthMode,
    pub tags: BTreeMap<String, String>,
    pub extra: ClusterExtra,
    pub version: &'a str,
}

/// Creates a cluster in `at` (its region and account) and starts its API
/// server. Shared by the CreateCluster call and the seeds.
pub(crate) async fn create_cluster_record(
    fd: &FrontDoor,
    at: Place<'_>,
    spec: NewCluster<'_>,
) -> Result<(), AwsError> {
    let Place { region, account } = at;
    let NewCluster {
        name,
        creator_arn,
        mode,
        tags,
        extra,
        version,
    } = spec;
    if !valid_cluster_name(name) {
        return Err(invalid_param(format!(
            "The cluster name {name} is invalid: it must start with an alphanumeric character and contain only alphanumeric characters, hyphens and underscores (1-100)."
        )));
    }
    let now = now_secs();
    let key = at.key(name);
    {
        let mut st = lock(&fd.shared);
        if st.clusters.contains_key(&key) {
            return Err(AwsError::new(
                409,
                "ResourceInUseException",
                format!("Cluster already exists with name: {name}"),
            ));
        }
        let creator = if extra.bootstrap_admin {
            creator_arn.to_string()
        } else {
            String::new()
        };
        let mut access_entries = BTreeMap::new();
        if mode != AuthMode::ConfigMap && !creator.is_empty() {
            access_entries.insert(creator.clone(), creator_entry(&creator, now));
        }
        st.clusters.insert(
            key.clone(),
            Cluster {
                name: name.to_string(),
                arn: format!("arn:aws:eks:{region}:{account}:cluster/{name}"),
                region: region.to_string(),
                version: version.to_string(),
                created_at: now,
                tags,
                auth_mode: mode,
                creator_arn: creator,
                endpoint: String::new(),
                ca_data_b64: String::new(),
                access_entries,
                objects: BTreeMap::new(),
                resource_version: 0,
                faults: ClusterFaults::default(),
                aws_auth_read: Default::default(),
            },
        );
    }
    fd.extras().insert(key.clone(), extra);
    let server =
        match crate::kube::start_cluster_server(fd.shared.clone(), &key, fd.sts_hosts()).await {
            Ok(s) => s,
            Err(e) => {
                lock(&fd.shared).clusters.remove(&key);
                fd.extras().remove(&key);
                return Err(AwsError::new(
                    500,
                    "ServerException",
                    format!("cluster API server: {e}"),
                ));
            }
        };
    {
        let mut st = lock(&fd.shared);
        if let Some(c) = st.clusters.get_mut(&key) {
            c.endpoint = server.endpoint.clone();
            c.ca_data_b64 = base64::engine::general_purpose::STANDARD.encode(&server.ca_pem);
        }
    }
    fd.servers().insert(key.clone(), server);
    tracing::info!(cluster = %name, account = %account, "cluster created");
    Ok(())
}

fn creator_entry(creator: &str, now: i64) -> AccessEntry {
    cluster_admin_entry(creator, default_username(creator), Vec::new(), None, now)
}

/// A STANDARD access entry of `principal` with `AmazonEKSClusterAdminPolicy` at cluster
/// scope, made at `now` (the creator's; the member role's, as `bootstrap` would grant).
pub(crate) fn cluster_admin_entry(
    principal: &str,
    username: String,
    kubernetes_groups: Vec<String>,
    principal_id: Option<String>,
    now: i64,
) -> AccessEntry {
    AccessEntry {
        principal_arn: principal.to_string(),
        username,
        kubernetes_groups,
        entry_type: "STANDARD".to_string(),
        policies: vec![PolicyAssociation {
            policy_arn: CLUSTER_ADMIN_POLICY.to_string(),
            scope_type: "cluster".to_string(),
            namespaces: Vec::new(),
            associated_at: now,
            modified_at: now,
        }],
        created_at_ms: now * 1000,
        modified_at: now,
        principal_id,
    }
}

/// The username EKS gives an access entry when none is set (a role's names
/// the role's own account).
pub fn default_username(principal: &str) -> String {
    match principal.split_once(":role/") {
        Some((_, path_name)) => {
            let name = path_name.rsplit('/').next().unwrap_or_default();
            let account = arn_account(principal).unwrap_or_default();
            format!("arn:aws:sts::{account}:assumed-role/{name}/{{{{SessionName}}}}")
        }
        None => principal.to_string(),
    }
}

async fn create_cluster(
    fd: &FrontDoor,
    at: Place<'_>,
    creator: &str,
    body: &Value,
) -> Result<Response, AwsError> {
    let name = body.get("name").and_then(Value::as_str).unwrap_or_default();
    let role_arn = body
        .get("roleArn")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_param("roleArn is required"))?;
    let access = body.get("accessConfig");
    let mode = match access
        .and_then(|a| a.get("authenticationMode"))
        .and_then(Value::as_str)
    {
        Some(m) => parse_mode(m)?,
        None => AuthMode::ConfigMap,
    };
    let bootstrap = access
        .and_then(|a| a.get("bootstrapClusterCreatorAdminPermissions"))
        .and_then(Value::as_bool)
        .unwrap_or(true);
    if !bootstrap && mode == AuthMode::ConfigMap {
        return Err(invalid_param(
            "bootstrapClusterCreatorAdminPermissions must be true when authenticationMode is CONFIG_MAP",
        ));
    }
    let version = body
        .get("version")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_VERSION);
    let extra = ClusterExtra {
        role_arn: role_arn.to_string(),
        bootstrap_admin: bootstrap,
    };
    let spec = NewCluster {
        name,
        creator_arn: creator,
        mode,
        tags: tags_of(body.get("tags"))?,
        extra,
        version,
    };
    create_cluster_record(fd, at, spec).await?;
    with_cluster(fd, at, name, |c, x| {
        Ok(ok(json!({ "cluster": cluster_json(c, x) })))
    })
}

fn list_clusters(
    fd: &FrontDoor,
    at: Place<'_>,
    q: &BTreeMap<String, Vec<String>>,
) -> Result<Response, AwsError> {
    let max = max_results(q)?;
    let mut names: Vec<String> = lock(&fd.shared)
        .clusters
        .values()
        .filter(|c| c.region == at.region && c.account() == at.account)
        .map(|c| c.name.clone())
        .collect();
    // The map is ordered by key (`<account>/<name>` for members): pages go by name.
    names.sort();
    page_response("clusters", &names, max, q)
}

/// `maxResults` of a List call: 1 to 100, 100 when absent.
fn max_results(q: &BTreeMap<String, Vec<String>>) -> Result<usize, AwsError> {
    match q.get("maxResults").and_then(|v| v.first()) {
        Some(m) => m
            .parse()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| invalid_param("maxResults must be between 1 and 100")),
        None => Ok(100),
    }
}

/// One page of `items` under `key`, from the request's `nextToken`, with the
/// `nextToken` of the next page when more follow.
fn page_response(
    key: &str,
    items: &[String],
    max: usize,
    q: &BTreeMap<String, Vec<String>>,
) -> Result<Response, AwsError> {
    let (page, next) = paginate(items, max, q.get("nextToken").and_then(|v| v.first()))?;
    let mut out = json!({ key: page });
    if let Some(n) = next {
        out["nextToken"] = json!(n);
    }
    Ok(ok(out))
}

/// Pages `items` (sorted); tokens are base64 of the last item returned.
fn paginate(
    items: &[String],
    max: usize,
    token: Option<&String>,
) -> Result<(Vec<String>, Option<String>), AwsError> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let start = match token {
        Some(t) => {
            let after = b64
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| invalid_param("The nextToken is invalid."))?;
            items.iter().position(|i| *i > after).unwrap_or(items.len())
        }
        None => 0,
    };
    let page: Vec<String> = items.iter().skip(start).take(max).cloned().collect();
    let next = (start + page.len() < items.len())
        .then(|| page.last().map(|l| b64.encode(l)))
        .flatten();
    Ok((page, next))
}

fn delete_cluster(fd: &FrontDoor, at: Place<'_>, name: &str) -> Result<Response, AwsError> {
    let key = at.key(name);
    let extra = fd.extras().get(&key).cloned().unwrap_or_default();
    let json = {
        let mut st = lock(&fd.shared);
        let c = st
            .clusters
            .get(&key)
            .filter(|c| c.region == at.region)
            .ok_or_else(|| no_cluster(name))?;
        let mut j = cluster_json(c, &extra);
        j["status"] = json!("DELETING");
        st.clusters.remove(&key);
        j
    };
    if let Some(mut s) = fd.servers().remove(&key) {
        s.shutdown();
    }
    fd.extras().remove(&key);
    Ok(ok(json!({ "cluster": json })))
}

fn update_config(
    fd: &FrontDoor,
    at: Place<'_>,
    name: &str,
    body: &Value,
) -> Result<Response, AwsError> {
    let Some(m) = body
        .get("accessConfig")
        .and_then(|a| a.get("authenticationMode"))
        .and_then(Value::as_str)
    else {
        return Err(invalid_param(
            "The sandbox only supports accessConfig.authenticationMode updates.",
        ));
    };
    let mode = parse_mode(m)?;
    with_cluster_mut(fd, at, name, |c| {
        if mode == c.auth_mode {
            return Err(invalid_param(format!(
                "Unsupported authentication mode update: the cluster is already {}",
                mode_name(mode)
            )));
        }
        if mode < c.auth_mode {
            return Err(invalid_param(format!(
                "Unsupported authentication mode update from {} to {}",
                mode_name(c.auth_mode),
                mode_name(mode)
            )));
        }
        let now = now_secs();
        if c.auth_mode == AuthMode::ConfigMap && !c.creator_arn.is_empty() {
            let creator = c.creator_arn.clone();
            c.access_entries
                .entry(creator.clone())
                .or_insert_with(|| creator_entry(&creator, now));
        }
        c.auth_mode = mode;
        Ok(ok(json!({
            "update": {
                "id": request_id(),
                "status": "Successful",
                "type": "AccessConfigUpdate",
                "params": [{"type": "AuthenticationMode", "value": mode_name(mode)}],
                "createdAt": epoch(now),
                "errors": []
            }
        })))
    })
}

fn validate_groups_and_username(groups: &[String], username: Option<&str>) -> Result<(), AwsError> {
    for g in groups {
        if g.starts_with("system:") {
            return Err(invalid_param(format!(
                "The kubernetes group name {g} is invalid, it cannot start with system:"
            )));
        }
    }
    if let Some(u) = username {
        for prefix in ["system:", "eks:", "aws:", "amazon:", "iam:"] {
            if u.starts_with(prefix) {
                return Err(invalid_param(format!(
                    "The username {u} is invalid, it cannot start with {prefix}"
                )));
            }
        }
    }
    Ok(())
}

async fn create_entry(
    fd: &FrontDoor,
    at: Place<'_>,
    cluster: &str,
    body: &Value,
) -> Result<Response, AwsError> {
    with_cluster(fd, at, cluster, |c, _| require_api_mode(c))?;
    let principal = body
        .get("principalArn")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_param("principalArn is required"))?
        .to_string();
    let groups = str_list(body.get("kubernetesGroups"));
    let username = body.get("username").and_then(Value::as_str);
    let entry_type = body
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("STANDARD");
    if !matches!(
        entry_type,
        "STANDARD" | "EC2_LINUX" | "EC2_WINDOWS" | "FARGATE_LINUX" | "EC2"
    ) {
        return Err(invalid_param(format!("The type {entry_type} is invalid.")));
    }
    validate_groups_and_username(&groups, username)?;
    // EKS keeps the principal's unique ID, not only its ARN (looked up in the
    // principal's own account: a cross-account principal is accepted).
    let Some(principal_id) = principal_id(fd, &principal).await? else {
        return Err(invalid_param(format!(
            "The specified principalArn is invalid: invalid principal {principal}"
        )));
    };
    let now = now_secs();
    let now_ms = i64::try_from(now_millis()).unwrap_or(i64::MAX);
    with_cluster_mut(fd, at, cluster, |c| {
        if c.access_entries.contains_key(&principal) {
            return Err(AwsError::new(
                409,
                "ResourceInUseException",
                "The specified access entry resource is already in use on this cluster.",
            ));
        }
        let e = AccessEntry {
            principal_arn: principal.clone(),
            username: username.map_or_else(|| default_username(&principal), str::to_string),
            kubernetes_groups: groups,
            entry_type: entry_type.to_string(),
            policies: Vec::new(),
            created_at_ms: now_ms,
            modified_at: now,
            principal_id: Some(principal_id),
        };
        let j = entry_json(c, &e);
        c.access_entries.insert(principal.clone(), e);
        Ok(ok(json!({ "accessEntry": j })))
    })
}

fn list_entries(
    fd: &FrontDoor,
    at: Place<'_>,
    cluster: &str,
    q: &BTreeMap<String, Vec<String>>,
) -> Result<Response, AwsError> {
    let max = max_results(q)?;
    let policy = q
        .get("associatedPolicyArn")
        .and_then(|v| v.first())
        .cloned();
    let arns: Vec<String> = with_cluster(fd, at, cluster, |c, _| {
        require_api_mode(c)?;
        Ok(c.access_entries
            .values()
            .filter(|e| {
                policy
                    .as_ref()
                    .is_none_or(|p| e.policies.iter().any(|a| &a.policy_arn == p))
            })
            .map(|e| e.principal_arn.clone())
            .collect())
    })?;
    page_response("accessEntries", &arns, max, q)
}

fn update_entry(
    fd: &FrontDoor,
    at: Place<'_>,
    cluster: &str,
    principal: &str,
    body: &Value,
) -> Result<Response, AwsError> {
    let groups = body.get("kubernetesGroups").map(|g| str_list(Some(g)));
    let username = body.get("username").and_then(Value::as_str);
    validate_groups_and_username(groups.as_deref().unwrap_or_default(), username)?;
    with_cluster_mut(fd, at, cluster, |c| {
        require_api_mode(c)?;
        let e = c.access_entries.get_mut(principal).ok_or_else(no_entry)?;
        if let Some(g) = groups {
            e.kubernetes_groups = g;
        }
        if let Some(u) = username {
            e.username = u.to_string();
        }
        e.modified_at = now_secs();
        let e = e.clone();
        Ok(ok(json!({ "accessEntry": entry_json(c, &e) })))
    })
}

fn associate(
    fd: &FrontDoor,
    at: Place<'_>,
    cluster: &str,
    principal: &str,
    body: &Value,
) -> Result<Response, AwsError> {
    let policy = body
        .get("policyArn")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let known = policy
        .strip_prefix("arn:aws:eks::aws:cluster-access-policy/")
        .is_some_and(|n| KNOWN_POLICIES.contains(&n));
    if !known {
        return Err(invalid_param(format!("The policyArn {policy} is invalid.")));
    }
    let (scope_type, namespaces) = access_scope(body.get("accessScope"))?;
    with_cluster_mut(fd, at, cluster, |c| {
        require_api_mode(c)?;
        let name = c.name.clone();
        let e = c.access_entries.get_mut(principal).ok_or_else(no_entry)?;
        let now = now_secs();
        // Each policy is associated once per entry: associating it again
        // replaces its scope (EKS keeps `associatedAt`, moves `modifiedAt`).
        let associated_at = e
            .policies
            .iter()
            .find(|p| p.policy_arn == policy)
            .map_or(now, |p| p.associated_at);
        let assoc = PolicyAssociation {
            policy_arn: policy.to_string(),
            scope_type,
            namespaces,
            associated_at,
            modified_at: now,
        };
        match e.policies.iter_mut().find(|p| p.policy_arn == policy) {
            Some(p) => *p = assoc.clone(),
            None => e.policies.push(assoc.clone()),
        }
        e.modified_at = now;
        Ok(ok(json!({
            "clusterName": name,
            "principalArn": e.principal_arn,
            "associatedAccessPolicy": assoc_json(&assoc),
        })))
    })
}

/// A namespace of an access scope: a Kubernetes namespace name (RFC 1123
/// label), or such a prefix followed by one trailing `*` (`team-b-*`).
fn valid_scope_namespace(ns: &str) -> bool {
    let name = ns.strip_suffix('*').unwrap_or(ns);
    !name.is_empty()
        && name.len() <= 63
        && !name.contains('*')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && (ns.ends_with('*') || name.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// Validates an `accessScope`: `{type: cluster}` without namespaces, or
/// `{type: namespace, namespaces: [...]}` with at least one valid name or pattern.
fn access_scope(scope: Option<&Value>) -> Result<(String, Vec<String>), AwsError> {
    let Some(scope) = scope.filter(|s| s.is_object()) else {
        return Err(invalid_param("accessScope is required."));
    };
    let scope_type = scope
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let namespaces = str_list(scope.get("namespaces"));
    match scope_type {
        "cluster" if namespaces.is_empty() => {}
        "cluster" => {
            return Err(invalid_param(
                "namespaces must be empty for a cluster access scope",
            ));
        }
        "namespace" if namespaces.is_empty() => {
            return Err(invalid_param(
                "namespaces are required for a namespace access scope",
            ));
        }
        "namespace" => {
            if let Some(bad) = namespaces.iter().find(|n| !valid_scope_namespace(n)) {
                return Err(invalid_param(format!(
                    "The namespace {bad} is invalid: a namespace must be a lowercase RFC 1123 label, optionally ending with a single '*' wildcard."
                )));
            }
        }
        other => {
            return Err(invalid_param(format!(
                "The access scope type {other} is invalid."
            )));
        }
    }
    Ok((scope_type.to_string(), namespaces))
}

/// A tag call on cluster ARN `arn`, which must be in the caller's region and account.
fn tag_op(
    fd: &FrontDoor,
    at: Place<'_>,
    arn: &str,
    f: impl FnOnce(&mut Cluster) -> Result<Value, AwsError>,
) -> Result<Response, AwsError> {
    let Some(name) = arn
        .strip_prefix(&format!(
            "arn:aws:eks:{}:{}:cluster/",
            at.region, at.account
        ))
        .map(str::to_string)
    else {
        return Err(AwsError::new(
            400,
            "BadRequestException",
            format!("Invalid resource ARN: {arn}"),
        ));
    };
    with_cluster_mut(fd, at, &name, f).map(ok).map_err(|e| {
        if e.code == "ResourceNotFoundException" {
            AwsError::new(
                404,
                "NotFoundException",
                format!("Resource not found: {arn}"),
            )
        } else {
            e
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_tokens() {
        let items: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let (p, n) = paginate(&items, 2, None).unwrap();
        assert_eq!(p, vec!["a", "b"]);
        let (p, n) = paginate(&items, 2, n.as_ref()).unwrap();
        assert_eq!((p, n), (vec!["c".to_string()], None));
        assert!(paginate(&items, 2, Some(&"!!".to_string())).is_err());
    }

    #[test]
    fn usernames_and_names() {
        assert_eq!(
            default_username("arn:aws:iam::123456789012:role/x/eks-admin"),
            "arn:aws:sts::123456789012:assumed-role/eks-admin/{{SessionName}}"
        );
        assert_eq!(
            default_username("arn:aws:iam::111111111111:role/m"),
            "arn:aws:sts::111111111111:assumed-role/m/{{SessionName}}"
        );
        assert!(validate_groups_and_username(&["system:masters".into()], None).is_err());
        assert!(validate_groups_and_username(&[], Some("eks:x")).is_err());
        assert!(validate_groups_and_username(&["admins".into()], Some("alice")).is_ok());
        assert!(valid_cluster_name("prod-1"));
        for ok in ["team-a", "team-b-*", "t*", "a"] {
            assert!(valid_scope_namespace(ok), "{ok}");
        }
        for bad in ["*", "Team-A", "team.a", "te*am", "-x", "team-**", ""] {
            assert!(!valid_scope_namespace(bad), "{bad}");
        }
        assert!(!valid_cluster_name("-x"));
    }
}

//! EKS token authentication (aws-iam-authenticator `pkg/token`) and identity
//! mapping (`pkg/mapper`: access entries and/or aws-auth by auth mode).
//!
//! A token minted from any sandbox account's credential is verified (the
//! credentials are the front door's, of every account); the identity is the
//! caller's own account's (`arn:aws:iam::<caller account>:role/<name>` for a
//! session), and a cluster admits it only when it maps that ARN.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::awsauth::configmap_data;
use crate::sigv4::{self, SigV4Error};
use crate::state::{AuthMode, Cluster, PolicyAssociation, Principal, SharedState};

pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// Tokens are accepted for 15 minutes after `X-Amz-Date`.
pub const TOKEN_LIFETIME_SECS: i64 = 15 * 60;
const ALLOWED_PARAMS: [&str; 9] = [
    "action",
    "version",
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-expires",
    "x-amz-security-token",
    "x-amz-signature",
    "x-amz-signedheaders",
];

/// Who a verified token belongs to (what STS GetCallerIdentity would say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `arn:aws:iam::<acct>:user/...` or `arn:aws:sts::<acct>:assumed-role/<name>/<session>`.
    pub arn: String,
    /// User ARN, or `arn:<partition>:iam::<acct>:role/<name>` without path.
    pub canonical_arn: String,
    pub account_id: String,
    /// `AIDA...` for users, `AROA...:<session>` for sessions.
    pub principal_id: String,
    pub session_name: Option<String>,
    pub access_key_id: String,
}

/// An authenticated, mapped Kubernetes user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
    /// Access policies from the access entry (API modes).
    pub policies: Vec<PolicyAssociation>,
}

/// Parses `arn:<partition>:<service>:...` into its parts.
fn arn_parts(arn: &str) -> Option<(&str, &str, &str, &str)> {
    let mut it = arn.splitn(6, ':');
    let (_, partition, service, _region, account, resource) = (
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
    );
    Some((partition, service, account, resource))
}

/// Identity of a stored principal.
pub fn identity_of(principal: &Principal, access_key_id: &str) -> Option<Identity> {
    match principal {
        Principal::User { arn, user_id } => {
            let (_, _, account, _) = arn_parts(arn)?;
            Some(Identity {
                arn: arn.clone(),
                canonical_arn: arn.clone(),
                account_id: account.to_string(),
                principal_id: user_id.clone(),
                session_name: None,
                access_key_id: access_key_id.to_string(),
            })
        }
        Principal::AssumedRole {
            role_arn,
            role_id,
            session_name,
        } => {
            let (partition, _, account, resource) = arn_parts(role_arn)?;
            let name = resource.rsplit('/').next()?;
            Some(Identity {
                arn: format!("arn:{partition}:sts::{account}:assumed-role/{name}/{session_name}"),
                canonical_arn: format!("arn:{partition}:iam::{account}:role/{name}"),
                account_id: account.to_string(),
                principal_id: format!("{role_id}:{session_name}"),
                session_name: Some(session_name.clone()),
                access_key_id: access_key_id.to_string(),
            })
        }
    }
}

/// Canonicalises an ARN the way the authenticator does: assumed-role
/// session ARNs and role ARNs with a path become `...:role/<name>`.
pub fn canonicalize(arn: &str) -> String {
    let Some((partition, service, account, resource)) = arn_parts(arn) else {
        return arn.to_string();
    };
    if service == "sts"
        && let Some(rest) = resource.strip_prefix("assumed-role/")
        && let Some(name) = rest.split('/').next()
    {
        return format!("arn:{partition}:iam::{account}:role/{name}");
    }
    if service == "iam"
        && let Some(rest) = resource.strip_prefix("role/")
        && let Some(name) = rest.rsplit('/').next()
    {
        return format!("arn:{partition}:iam::{account}:role/{name}");
    }
    arn.to_string()
}

fn host_port(url: &url::Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    })
}

/// Verifies an EKS token for the cluster named `cluster` (its name, as the
/// token's `x-k8s-aws-id` carries it); `Err` carries the reason.
pub fn verify_token(
    st: &SharedState,
    cluster: &str,
    sts_hosts: &[String],
    token: &str,
    now: i64,
) -> Result<Identity, String> {
    let Some(b64) = token.strip_prefix(TOKEN_PREFIX) else {
        return Err(format!(
            "token is missing expected \"{TOKEN_PREFIX}\" prefix"
        ));
    };
    if b64.contains('=') {
        return Err("token is padded base64; EKS tokens are base64url without padding".into());
    }
    let raw = URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|e| format!("token is not base64url without padding: {e}"))?;
    let text = String::from_utf8(raw).map_err(|_| "token is not a UTF-8 URL".to_string())?;
    let url = url::Url::parse(&text).map_err(|e| format!("token is not a URL: {e}"))?;
    let host = host_port(&url).ok_or("token URL has no host")?;
    if !sts_hosts.iter().any(|h| h.eq_ignore_ascii_case(&host)) {
        return Err(format!("unexpected hostname {host:?} in pre-signed URL"));
    }
    let is_aws_host = host.to_ascii_lowercase().ends_with(".amazonaws.com");
    if url.scheme() != "https" && (is_aws_host || url.scheme() != "http") {
        return Err(format!(
            "unexpected scheme {:?} in pre-signed URL",
            url.scheme()
        ));
    }
    if url.path() != "/" {
        return Err("unexpected path in pre-signed URL".into());
    }
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in url.query_pairs() {
        let lk = k.to_ascii_lowercase();
        if !ALLOWED_PARAMS.contains(&lk.as_str()) {
            return Err(format!("non-allowlisted query parameter {k:?}"));
        }
        if params.insert(lk, v.into_owned()).is_some() {
            return Err(format!("query parameter {k:?} has multiple values"));
        }
    }
    if params.get("action").map(String::as_str) != Some("GetCallerIdentity") {
        return Err("unexpected action parameter in pre-signed URL".into());
    }
    let signed = params
        .get("x-amz-signedheaders")
        .cloned()
        .unwrap_or_default();
    if !signed
        .split(';')
        .any(|h| h.eq_ignore_ascii_case("x-k8s-aws-id"))
    {
        return Err("client did not sign the x-k8s-aws-id header in the pre-signed URL".into());
    }
    let expires: i64 = params
        .get("x-amz-expires")
        .and_then(|v| v.parse().ok())
        .ok_or("X-Amz-Expires missing or not a number")?;
    if !(0..=TOKEN_LIFETIME_SECS).contains(&expires) {
        return Err(format!("X-Amz-Expires {expires} is not between 0 and 900"));
    }
    let date = params.get("x-amz-date").ok_or("X-Amz-Date missing")?;
    let signed_at = sigv4::parse_amz_date(date).map_err(|_| "X-Amz-Date malformed".to_string())?;
    if now > signed_at + TOKEN_LIFETIME_SECS {
        return Err("X-Amz-Date parameter is expired (15 minute expiration)".into());
    }
    let akid = params
        .get("x-amz-credential")
        .and_then(|c| c.split('/').next())
        .filter(|a| !a.is_empty())
        .ok_or("X-Amz-Credential missing")?;
    let Some(cred) = st.credentials.get(akid) else {
        return Err(format!(
            "InvalidClientTokenId: the security token included in the request is invalid (unknown access key {akid})"
        ));
    };
    if let Some(expected) = &cred.session_token
        && params.get("x-amz-security-token") != Some(expected)
    {
        return Err(format!(
            "InvalidClientTokenId: session token does not match access key {akid}"
        ));
    }
    if cred.expires_at.is_some_and(|t| t <= now) {
        return Err("ExpiredToken: the security token included in the request is expired".into());
    }
    match sigv4::verify_presigned(
        &url,
        &[("x-k8s-aws-id", cluster)],
        &cred.secret_access_key,
        now,
    ) {
        Ok(_) => {}
        Err(SigV4Error::SignatureMismatch) => {
            let other = st
                .clusters
                .values()
                .map(|c| &c.name)
                .filter(|c| *c != cluster)
                .find(|c| {
                    sigv4::verify_presigned(
                        &url,
                        &[("x-k8s-aws-id", c.as_str())],
                        &cred.secret_access_key,
                        now,
                    )
                    .is_ok()
                });
            return Err(match other {
                Some(c) => format!(
                    "token was issued for cluster {c:?}, not {cluster:?} (x-k8s-aws-id mismatch)"
                ),
                None => "SignatureDoesNotMatch: the request signature we calculated does not match the signature you provided (bad signature or wrong cluster)".into(),
            });
        }
        Err(e) => return Err(format!("pre-signed URL refused: {e}")),
    }
    identity_of(&cred.principal, akid).ok_or_else(|| "credential has a malformed principal".into())
}

const EC2_PRIVATE_DNS: &str = "ip-10-0-0-1.ec2.internal";

/// Renders a username template; `Err` when a variable is unavailable.
pub fn render_username(template: &str, id: &Identity) -> Result<String, String> {
    let mut out = template.replace("{{AccountID}}", &id.account_id);
    out = out.replace("{{AccessKeyID}}", &id.access_key_id);
    out = out.replace("{{EC2PrivateDNSName}}", EC2_PRIVATE_DNS);
    if out.contains("{{SessionName}}") || out.contains("{{SessionNameRaw}}") {
        let Some(s) = &id.session_name else {
            return Err(format!(
                "username template {template:?} uses the session name but {} is not a role session",
                id.arn
            ));
        };
        out = out.replace("{{SessionNameRaw}}", s);
        out = out.replace("{{SessionName}}", &s.replace('@', "-"));
    }
    if out.contains("{{") {
        return Err(format!(
            "username template {template:?} has an unknown variable"
        ));
    }
    Ok(out)
}

fn default_entry_username(id: &Identity) -> String {
    match &id.session_name {
        Some(_) => {
            let name = id.canonical_arn.rsplit('/').next().unwrap_or_default();
            format!(
                "arn:aws:sts::{}:assumed-role/{name}/{{{{SessionName}}}}",
                id.account_id
            )
        }
        None => id.canonical_arn.clone(),
    }
}

/// The caller's unique ID: `AIDA…` for a user, the role's `AROA…` for a session
/// (what STS `GetCallerIdentity` gives EKS as `UserId`, before the `:`).
fn unique_id(id: &Identity) -> &str {
    id.principal_id
        .split_once(':')
        .map_or(id.principal_id.as_str(), |(role_id, _)| role_id)
}

/// The caller's access entry. As in EKS, an entry that recorded its principal's unique
/// ID matches only a caller with that ID: after the role was deleted and re-created
/// under the same name (new ID) the entry matches nobody (containers-roadmap #2441),
/// and `API_AND_CONFIG_MAP` falls back to aws-auth, which maps by ARN. An entry's
/// role ARN may carry the role's path (EKS user guide, "Create access entries"): it
/// names the role all the same, so the entry is matched on its canonical ARN.
fn from_access_entry(cluster: &Cluster, id: &Identity) -> Option<Result<UserInfo, String>> {
    let key = id.canonical_arn.to_ascii_lowercase();
    let entry = cluster
        .access_entries
        .iter()
        .find(|(k, _)| canonicalize(k).to_ascii_lowercase() == key)
        .map(|(_, e)| e)
        .filter(|e| {
            e.principal_id
                .as_deref()
                .is_none_or(|stored| stored == unique_id(id))
        })?;
    let template = if entry.username.is_empty() {
        default_entry_username(id)
    } else {
        entry.username.clone()
    };
    Some(render_username(&template, id).map(|username| UserInfo {
        username,
        uid: String::new(),
        groups: entry.kubernetes_groups.clone(),
        extra: BTreeMap::new(),
        policies: entry.policies.clone(),
    }))
}

fn from_aws_auth(cluster: &Cluster, id: &Identity) -> Option<Result<UserInfo, String>> {
    let cm = cluster.objects.get(&(
        "api/v1".to_string(),
        "configmaps".to_string(),
        "kube-system".to_string(),
        "aws-auth".to_string(),
    ))?;
    let auth = cluster.aws_auth_read.of(configmap_data(&cm.json));
    let key = id.canonical_arn.to_ascii_lowercase();
    let mapping = auth.roles.get(&key).or_else(|| auth.users.get(&key));
    if let Some(m) = mapping {
        let template = if m.username.is_empty() {
            id.arn.clone()
        } else {
            m.username.clone()
        };
        return Some(render_username(&template, id).map(|username| UserInfo {
            username,
            uid: String::new(),
            groups: m.groups.clone(),
            extra: BTreeMap::new(),
            policies: Vec::new(),
        }));
    }
    if auth.accounts.contains(&id.account_id) {
        return Some(Ok(UserInfo {
            username: id.arn.clone(),
            uid: String::new(),
            groups: Vec::new(),
            extra: BTreeMap::new(),
            policies: Vec::new(),
        }));
    }
    None
}

/// Maps a verified identity to a Kubernetes user; `Err` says why not.
pub fn map_identity(cluster: &Cluster, id: &Identity) -> Result<UserInfo, String> {
    let mapped = match cluster.auth_mode {
        AuthMode::ConfigMap => from_aws_auth(cluster, id),
        AuthMode::ApiAndConfigMap => {
            from_access_entry(cluster, id).or_else(|| from_aws_auth(cluster, id))
        }
        AuthMode::Api => from_access_entry(cluster, id),
    };
    let is_creator = !cluster.creator_arn.is_empty()
        && canonicalize(&cluster.creator_arn).eq_ignore_ascii_case(&id.canonical_arn);
    let mut user = match (mapped, is_creator) {
        (Some(Ok(u)), _) => u,
        (Some(Err(e)), false) => return Err(e),
        (None, false) => {
            return Err(format!(
                "ARN {} is not mapped on cluster {} (no access entry or aws-auth mapping)",
                id.canonical_arn, cluster.name
            ));
        }
        (_, true) => UserInfo {
            username: "kubernetes-admin".to_string(),
            uid: String::new(),
            groups: vec!["system:masters".to_string()],
            extra: BTreeMap::new(),
            policies: Vec::new(),
        },
    };
    if is_creator && !user.groups.iter().any(|g| g == "system:masters") {
        user.groups.push("system:masters".to_string());
    }
    user.uid = format!(
        "aws-iam-authenticator:{}:{}",
        id.account_id, id.principal_id
    );
    if !user.groups.iter().any(|g| g == "system:authenticated") {
        user.groups.push("system:authenticated".to_string());
    }
    let mut extra = BTreeMap::new();
    extra.insert("accessKeyId".to_string(), vec![id.access_key_id.clone()]);
    extra.insert("arn".to_string(), vec![id.arn.clone()]);
    extra.insert("canonicalArn".to_string(), vec![id.canonical_arn.clone()]);
    extra.insert("principalId".to_string(), vec![id.principal_id.clone()]);
    extra.insert(
        "sessionName".to_string(),
        vec![id.session_name.clone().unwrap_or_default()],
    );
    user.extra = extra;
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Identity {
        identity_of(
            &Principal::AssumedRole {
                role_arn: "arn:aws:iam::123456789012:role/team/Admin".into(),
                role_id: "AROAEXAMPLE".into(),
                session_name: "alice@example.com".into(),
            },
            "ASIAKEY",
        )
        .expect("identity")
    }

    #[test]
    fn assumed_role_is_canonicalised_without_path() {
        let id = session();
        assert_eq!(id.canonical_arn, "arn:aws:iam::123456789012:role/Admin");
        assert_eq!(
            id.arn,
            "arn:aws:sts::123456789012:assumed-role/Admin/alice@example.com"
        );
        assert_eq!(id.principal_id, "AROAEXAMPLE:alice@example.com");
        assert_eq!(
            canonicalize("arn:aws:sts::1:assumed-role/R/s"),
            "arn:aws:iam::1:role/R"
        );
        assert_eq!(
            canonicalize("arn:aws:iam::1:role/p/q/R"),
            "arn:aws:iam::1:role/R"
        );
        assert_eq!(
            canonicalize("arn:aws:iam::1:user/p/u"),
            "arn:aws:iam::1:user/p/u"
        );
    }

    #[test]
    fn templates_render() {
        let id = session();
        assert_eq!(
            render_username(
                "a:{{AccountID}}:{{SessionName}}:{{SessionNameRaw}}:{{AccessKeyID}}",
                &id
            )
            .expect("renders"),
            "a:123456789012:alice-example.com:alice@example.com:ASIAKEY"
        );
        assert_eq!(
            render_username("system:node:{{EC2PrivateDNSName}}", &id).expect("renders"),
            "system:node:ip-10-0-0-1.ec2.internal"
        );
        assert!(render_username("{{Nope}}", &id).is_err());
        let user = identity_of(
            &Principal::User {
                arn: "arn:aws:iam::123456789012:user/bob".into(),
                user_id: "AIDABOB".into(),
            },
            "AKIABOB",
        )
        .expect("identity");
        assert!(render_username("{{SessionName}}", &user).is_err());
    }

    fn cluster_with_entry(mode: AuthMode, stored_id: &str) -> Cluster {
        cluster_with_entry_for("arn:aws:iam::123456789012:role/Admin", mode, stored_id)
    }

    fn cluster_with_entry_for(principal: &str, mode: AuthMode, stored_id: &str) -> Cluster {
        let principal = principal.to_string();
        let entry = crate::state::AccessEntry {
            principal_arn: principal.clone(),
            username: "admin:{{SessionName}}".into(),
            kubernetes_groups: vec!["admins".into()],
            entry_type: "STANDARD".into(),
            policies: Vec::new(),
            created_at_ms: 0,
            modified_at: 0,
            principal_id: Some(stored_id.into()),
        };
        Cluster {
            name: "c".into(),
            arn: "arn:aws:eks:us-east-1:123456789012:cluster/c".into(),
            region: "us-east-1".into(),
            version: "1.33".into(),
            created_at: 0,
            tags: BTreeMap::new(),
            auth_mode: mode,
            creator_arn: String::new(),
            endpoint: String::new(),
            ca_data_b64: String::new(),
            access_entries: BTreeMap::from([(principal, entry)]),
            objects: BTreeMap::new(),
            resource_version: 0,
            faults: Default::default(),
            aws_auth_read: Default::default(),
        }
    }

    fn session_of(role_id: &str) -> Identity {
        identity_of(
            &Principal::AssumedRole {
                role_arn: "arn:aws:iam::123456789012:role/Admin".into(),
                role_id: role_id.into(),
                session_name: "alice".into(),
            },
            "ASIAKEY",
        )
        .expect("identity")
    }

    #[test]
    fn an_entry_naming_the_role_with_its_path_matches_its_sessions() {
        let c = cluster_with_entry_for(
            "arn:aws:iam::123456789012:role/eks-access-sync/Admin",
            AuthMode::Api,
            "AROAOLD",
        );
        let user = map_identity(&c, &session_of("AROAOLD")).expect("the role, with its path");
        assert_eq!(user.username, "admin:alice");
        let err = map_identity(&c, &session_of("AROANEW")).expect_err("another role");
        assert!(err.contains("is not mapped"), "{err}");
    }

    #[test]
    fn an_entry_matches_only_the_unique_id_it_was_made_for() {
        let c = cluster_with_entry(AuthMode::Api, "AROAOLD");
        let user = map_identity(&c, &session_of("AROAOLD")).expect("same role");
        assert_eq!(user.username, "admin:alice");
        // The role was deleted and re-created under the same name: new ID, refused.
        let err = map_identity(&c, &session_of("AROANEW")).expect_err("re-created role");
        assert!(err.contains("is not mapped"), "{err}");

        // API_AND_CONFIG_MAP: the entry matches nobody, aws-auth (by ARN) still does.
        let mut c = cluster_with_entry(AuthMode::ApiAndConfigMap, "AROAOLD");
        assert!(map_identity(&c, &session_of("AROANEW")).is_err());
        c.objects.insert(
            (
                "api/v1".into(),
                "configmaps".into(),
                "kube-system".into(),
                "aws-auth".into(),
            ),
            crate::state::StoredObject {
                json: serde_json::json!({"data": {"mapRoles":
                    "- rolearn: arn:aws:iam::123456789012:role/Admin\n  username: cm:{{SessionName}}\n  groups: [cm]\n"}}),
            },
        );
        let user = map_identity(&c, &session_of("AROANEW")).expect("aws-auth maps by ARN");
        assert_eq!(user.username, "cm:alice");
    }
}

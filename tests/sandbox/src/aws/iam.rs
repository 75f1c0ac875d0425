//! IAM and STS: proxied to moto, with what AWS does and moto does not
//! (AssumeRole judged by the trust policy and the caller's identity-based
//! policies, unique ids, quota and principal validation, credential capture
//! for signature checks, throttling).
//!
//! Every call runs in its caller's account (the account in the ARN of the
//! credential's user or session role): moto is told it in `x-moto-account-id`,
//! and every name the front door looks up for the call is looked up there. A
//! principal named by ARN (a trust-policy principal, an access entry's) is
//! looked up in the account of its ARN. AssumeRole of a role in another
//! account follows IAM's cross-account rule (see [`check_assume_role`]).

use std::collections::BTreeMap;

use axum::response::{IntoResponse, Response};
use http::request::Parts;
use hyper::body::Bytes;
use serde_json::Value;

use futures::future::try_join_all;

use super::identity::{self, Identity};
use super::moto::{MotoResponse, iam_arn_kind_name, iam_arn_parts};
use super::trust::{self, Caller};
use super::{
    AwsError, FrontDoor, OPERATOR_USER, SandboxError, caller_arn, lock, now_millis, now_secs,
    request_id, unique_id, xml,
};
use crate::state::{ACCOUNT_ID, Credential, ORGANIZATION_ID, Principal};

/// The default `ACLSizePerRole` quota, in characters without whitespace.
pub const TRUST_POLICY_QUOTA: usize = 2048;

type Params = BTreeMap<String, String>;

fn params_of(parts: &Parts, body: &[u8]) -> Params {
    let mut p: Params = url::form_urlencoded::parse(body).into_owned().collect();
    if let Some(q) = parts.uri.query() {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()).into_owned() {
            p.entry(k).or_insert(v);
        }
    }
    p
}

fn moto_err(e: SandboxError) -> AwsError {
    AwsError::internal(e.to_string())
}

/// Turns a moto answer into ours, replacing moto's user ids by `AIDA…` ids.
fn relay(fd: &FrontDoor, r: &MotoResponse) -> Response {
    let body = replace_moto_ids(&r.text(), &fd.moto_ids());
    let ct = r
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("text/xml")
        .to_string();
    (r.status, [("content-type", ct)], body).into_response()
}

/// Length of moto's user ids (lower-case letters and digits).
const MOTO_ID_LEN: usize = 20;

/// `body` with every moto user id known in `ids` replaced, in one pass: a moto id is
/// a maximal run of `MOTO_ID_LEN` lower-case letters and digits.
fn replace_moto_ids(body: &str, ids: &BTreeMap<String, String>) -> String {
    let is_id_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find(is_id_char) {
        let run_len = rest[start..]
            .find(|c: char| !is_id_char(c))
            .unwrap_or(rest.len() - start);
        let run = &rest[start..start + run_len];
        out.push_str(&rest[..start]);
        match ids.get(run).filter(|_| run_len == MOTO_ID_LEN) {
            Some(aida) => out.push_str(aida),
            None => out.push_str(run),
        }
        rest = &rest[start + run_len..];
    }
    out.push_str(rest);
    out
}

/// The `Action` of an IAM or STS call.
pub(crate) fn action_of(parts: &Parts, body: &[u8]) -> String {
    params_of(parts, body)
        .get("Action")
        .cloned()
        .unwrap_or_default()
}

/// Handles one IAM or STS call.
pub async fn handle(
    fd: &FrontDoor,
    service: &str,
    cred: &Credential,
    parts: &Parts,
    body: Bytes,
) -> Result<Response, AwsError> {
    let mut params = params_of(parts, &body);
    let action = params.get("Action").cloned().unwrap_or_default();
    let account = cred.principal.account().to_owned();
    let account = account.as_str();
    fd.count(service, &action);
    if service == "iam" {
        let mut st = lock(&fd.shared);
        if st.iam_faults.throttle > 0 {
            st.iam_faults.throttle -= 1;
            return Err(AwsError::new(400, "Throttling", "Rate exceeded"));
        }
    }
    let (mut path, mut body) = (path_of(parts).to_owned(), body);
    if service == "iam"
        && let Some(asked) = params.get("UserName").cloned()
    {
        // IAM user names are case-insensitive: any spelling names the stored user.
        // Every user is created through the front door, which knows them all: a
        // CreateUser of an unknown name needs no listing of moto's users (that made
        // creating N users O(N²)).
        let stored = if action == "CreateUser" {
            known_user_name(fd, account, &asked)
        } else {
            stored_user_name(fd, account, &asked).await?
        };
        match (action.as_str(), stored) {
            ("CreateUser", Some(stored)) if stored != asked => {
                return Err(AwsError::new(
                    409,
                    "EntityAlreadyExists",
                    format!("User with name {asked} already exists."),
                ));
            }
            ("CreateUser", _) => {}
            (_, Some(stored)) if stored != asked => {
                params.insert("UserName".to_owned(), stored);
                (path, body) = with_params(parts, &params);
            }
            _ => {}
        }
    }
    if service == "iam"
        && let Some(asked) = params.get("GroupName").cloned()
    {
        // Group names are case-insensitive too.
        match (
            action.as_str(),
            stored_group_name(fd, account, &asked).await?,
        ) {
            ("CreateGroup", Some(_)) => {
                return Err(AwsError::new(
                    409,
                    "EntityAlreadyExists",
                    format!("Group with name {asked} already exists."),
                ));
            }
            ("CreateGroup", None) => {}
            (_, None) => {
                return Err(AwsError::new(
                    404,
                    "NoSuchEntity",
                    format!("The group with name {asked} cannot be found."),
                ));
            }
            (_, Some(stored)) if stored != asked => {
                params.insert("GroupName".to_owned(), stored);
                (path, body) = with_params(parts, &params);
            }
            _ => {}
        }
    }
    if service == "iam" {
        refuse_delete_conflict(fd, account, &action, &params).await?;
    }
    let forward = || {
        fd.moto
            .forward(account, &parts.method, &path, &parts.headers, body.clone())
    };
    match (service, action.as_str()) {
        ("sts", "GetCallerIdentity") => Ok(caller_identity(&cred.principal)),
        ("sts", "AssumeRole") => {
            let target = check_assume_role(fd, cred, &params).await?;
            let r = forward().await.map_err(moto_err)?;
            if r.ok() {
                capture_session(fd, &r, target, &params)?;
            }
            Ok(relay(fd, &r))
        }
        ("iam", "CreateUser") => {
            let r = forward().await.map_err(moto_err)?;
            if r.ok() {
                register_user(fd, &r.text());
            }
            Ok(relay(fd, &r))
        }
        ("iam", "CreateGroup") => {
            let r = forward().await.map_err(moto_err)?;
            if r.ok()
                && let Some(moto_id) = xml::text(&r.text(), "GroupId")
            {
                fd.moto_ids().insert(moto_id, unique_id("AGPA"));
            }
            Ok(relay(fd, &r))
        }
        ("iam", "CreateAccessKey") => {
            let r = forward().await.map_err(moto_err)?;
            if r.ok() {
                capture_access_key(fd, account, &r.text()).await?;
            }
            Ok(relay(fd, &r))
        }
        ("iam", "DeleteAccessKey") => {
            let r = forward().await.map_err(moto_err)?;
            if r.ok()
                && let Some(k) = params.get("AccessKeyId")
            {
                lock(&fd.shared).credentials.remove(k);
            }
            Ok(relay(fd, &r))
        }
        ("iam", "DeleteUser") => {
            let name = params.get("UserName").cloned().unwrap_or_default();
            let arn = user_arn(fd, account, &name).await?;
            let r = forward().await.map_err(moto_err)?;
            if r.ok()
                && let Some(arn) = arn
            {
                forget_user(fd, &arn).await?;
            }
            Ok(relay(fd, &r))
        }
        ("iam", "UpdateAssumeRolePolicy") => {
            check_trust_policy(fd, params.get("PolicyDocument").map_or("", String::as_str)).await?;
            let r = forward().await.map_err(moto_err)?;
            Ok(relay(fd, &r))
        }
        ("iam", "CreateRole") => {
            check_trust_policy(
                fd,
                params
                    .get("AssumeRolePolicyDocument")
                    .map_or("", String::as_str),
            )
            .await?;
            let r = forward().await.map_err(moto_err)?;
            Ok(relay(fd, &r))
        }
        _ => {
            let r = forward().await.map_err(moto_err)?;
            Ok(relay(fd, &r))
        }
    }
}

fn path_of(parts: &Parts) -> &str {
    parts.uri.path_and_query().map_or("/", |p| p.as_str())
}

/// The request's path and body carrying `params` (a GET in its query, else in a
/// form body).
fn with_params(parts: &Parts, params: &Params) -> (String, Bytes) {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    if parts.method == http::Method::GET {
        (format!("{}?{form}", parts.uri.path()), Bytes::new())
    } else {
        (parts.uri.path().to_owned(), Bytes::from(form))
    }
}

/// The stored spelling of user `asked` (names are unique regardless of case, as in
/// IAM), `None` when no user has that name in any case. Users created through the
/// front door are known without asking moto.
async fn stored_user_name(
    fd: &FrontDoor,
    account: &str,
    asked: &str,
) -> Result<Option<String>, AwsError> {
    if let Some(hit) = known_user_name(fd, account, asked) {
        return Ok(Some(hit));
    }
    let names = fd.moto.user_names(account).await.map_err(moto_err)?;
    Ok(pick_name(&names, asked))
}

/// The stored spelling of user `asked` among the users the front door created
/// in `account`.
fn known_user_name(fd: &FrontDoor, account: &str, asked: &str) -> Option<String> {
    lock(&fd.shared)
        .user_names
        .get(&user_name_key(account, asked))
        .cloned()
}

/// The key of `SharedState::user_names`: IAM user names are unique regardless of case.
fn user_name_key(account: &str, name: &str) -> (String, String) {
    (account.to_owned(), name.to_ascii_lowercase())
}

/// The stored spelling of group `asked`, `None` when no group has that name in
/// any case.
async fn stored_group_name(
    fd: &FrontDoor,
    account: &str,
    asked: &str,
) -> Result<Option<String>, AwsError> {
    let names = fd.moto.group_names(account).await.map_err(moto_err)?;
    Ok(pick_name(&names, asked))
}

/// IAM's `DeleteConflict`s moto does not raise: a group that still has members
/// cannot be deleted, nor a user that is still in a group.
async fn refuse_delete_conflict(
    fd: &FrontDoor,
    account: &str,
    action: &str,
    params: &Params,
) -> Result<(), AwsError> {
    let (call, param, message) = match action {
        "DeleteGroup" => (
            "GetGroup",
            "GroupName",
            "Cannot delete entity, must remove users from group first.",
        ),
        "DeleteUser" => (
            "ListGroupsForUser",
            "UserName",
            "Cannot delete entity, must remove user from all groups first.",
        ),
        _ => return Ok(()),
    };
    let Some(name) = params.get(param) else {
        return Ok(());
    };
    let r = fd
        .moto
        .call(account, "iam", call, &[(param, name.as_str())])
        .await
        .map_err(moto_err)?;
    // GetGroup lists members under <Users>; ListGroupsForUser groups under <Groups>.
    let text = r.text();
    let busy = r.ok()
        && match action {
            "DeleteGroup" => !xml::raw_all(&text, "UserName").is_empty(),
            _ => !xml::raw_all(&text, "GroupName").is_empty(),
        };
    if busy {
        return Err(AwsError::new(409, "DeleteConflict", message));
    }
    Ok(())
}

/// `asked` if present, else its (only possible) case variant.
fn pick_name(names: &[String], asked: &str) -> Option<String> {
    names
        .iter()
        .find(|n| n.as_str() == asked)
        .or_else(|| names.iter().find(|n| n.eq_ignore_ascii_case(asked)))
        .cloned()
}

fn caller_identity(p: &Principal) -> Response {
    let (arn, user_id) = match p {
        Principal::User { arn, user_id } => (arn.clone(), user_id.clone()),
        Principal::AssumedRole {
            role_id,
            session_name,
            ..
        } => (caller_arn(p), format!("{role_id}:{session_name}")),
    };
    let body = format!(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
         <GetCallerIdentityResult><Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account>\
         </GetCallerIdentityResult><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata>\
         </GetCallerIdentityResponse>",
        xml::escape(&arn),
        xml::escape(&user_id),
        p.account(),
        request_id()
    );
    ([("content-type", "text/xml")], body).into_response()
}

/// Records a user moto just created (`CreateUser` response XML): assigns its
/// `AIDA…` id and remembers when it was created. Returns (arn, id).
pub(crate) fn register_user(fd: &FrontDoor, xml_body: &str) -> Option<(String, String)> {
    let arn = xml::text(xml_body, "Arn")?;
    let moto_id = xml::text(xml_body, "UserId")?;
    let aida = unique_id("AIDA");
    fd.moto_ids().insert(moto_id, aida.clone());
    let mut st = lock(&fd.shared);
    st.user_ids.insert(arn.clone(), aida.clone());
    if let Some((account, _, name)) = iam_arn_parts(&arn) {
        st.user_names
            .insert(user_name_key(account, name), name.to_owned());
    }
    st.user_created_ms.insert(arn.clone(), now_millis());
    Some((arn, aida))
}

/// The ARN of user `name` of `account` per moto, `None` when there is no such user.
pub(crate) async fn user_arn(
    fd: &FrontDoor,
    account: &str,
    name: &str,
) -> Result<Option<String>, AwsError> {
    let r = fd
        .moto
        .call(account, "iam", "GetUser", &[("UserName", name)])
        .await
        .map_err(moto_err)?;
    Ok(if r.ok() {
        xml::text(&r.text(), "Arn")
    } else {
        None
    })
}

/// Whether the IAM user or role `arn` exists (exact ARN, path included).
pub(crate) async fn principal_exists(fd: &FrontDoor, arn: &str) -> Result<bool, AwsError> {
    Ok(principal_id(fd, arn).await?.is_some())
}

/// The unique ID (`AIDA…` of a user, moto's `AROA…` of a role) of the IAM user or
/// role `arn` (exact ARN, path included), looked up in the account of the ARN;
/// `None` when there is no such principal. A role deleted and re-created under
/// the same name has a new ID.
pub(crate) async fn principal_id(fd: &FrontDoor, arn: &str) -> Result<Option<String>, AwsError> {
    let Some((account, kind, name)) = iam_arn_parts(arn) else {
        return Ok(None);
    };
    // Users created through the front door are known without asking moto.
    if kind == "user"
        && let Some(id) = lock(&fd.shared).user_ids.get(arn)
    {
        return Ok(Some(id.clone()));
    }
    let (action, param, id_tag) = if kind == "user" {
        ("GetUser", "UserName", "UserId")
    } else {
        ("GetRole", "RoleName", "RoleId")
    };
    let r = fd
        .moto
        .call(account, "iam", action, &[(param, name)])
        .await
        .map_err(moto_err)?;
    let text = r.text();
    if !r.ok() || xml::text(&text, "Arn").as_deref() != Some(arn) {
        return Ok(None);
    }
    Ok(xml::text(&text, id_tag).map(|id| fd.moto_ids().get(&id).cloned().unwrap_or(id)))
}

async fn capture_access_key(fd: &FrontDoor, account: &str, body: &str) -> Result<(), AwsError> {
    let (Some(ak), Some(sk), Some(user)) = (
        xml::text(body, "AccessKeyId"),
        xml::text(body, "SecretAccessKey"),
        xml::text(body, "UserName"),
    ) else {
        return Err(AwsError::internal(
            "moto's CreateAccessKey answer lacked the key",
        ));
    };
    let arn = user_arn(fd, account, &user)
        .await?
        .unwrap_or_else(|| format!("arn:aws:iam::{account}:user/{user}"));
    let mut st = lock(&fd.shared);
    let user_id = st
        .user_ids
        .get(&arn)
        .cloned()
        .unwrap_or_else(|| unique_id("AIDA"));
    st.credentials.insert(
        ak.clone(),
        Credential {
            access_key_id: ak,
            secret_access_key: sk,
            session_token: None,
            expires_at: None,
            principal: Principal::User { arn, user_id },
        },
    );
    Ok(())
}

/// After a user is deleted: its ARN becomes its unique id in every trust
/// policy (of every sandbox account: a trust policy may name a user of
/// another account), and its keys stop working.
async fn forget_user(fd: &FrontDoor, arn: &str) -> Result<(), AwsError> {
    let (aida, accounts) = {
        let mut st = lock(&fd.shared);
        st.credentials
            .retain(|_, c| !matches!(&c.principal, Principal::User { arn: a, .. } if a == arn));
        st.user_created_ms.remove(arn);
        let aida = st.user_ids.remove(arn).unwrap_or_else(|| unique_id("AIDA"));
        if let Some((account, _, name)) = iam_arn_parts(arn) {
            st.user_names.remove(&user_name_key(account, name));
        }
        let mut accounts = vec![ACCOUNT_ID.to_owned()];
        accounts.extend(st.member_accounts.iter().cloned());
        (aida, accounts)
    };
    for account in &accounts {
        let r = fd
            .moto
            .call(account, "iam", "ListRoles", &[("MaxItems", "1000")])
            .await
            .map_err(moto_err)?;
        let text = r.text();
        let names = xml::raw_all(&text, "RoleName");
        let docs = xml::raw_all(&text, "AssumeRolePolicyDocument");
        for (name, doc) in names.iter().zip(docs.iter()) {
            let Some(mut policy) = decode_policy(&xml::unescape(doc)) else {
                continue;
            };
            if replace_principal(&mut policy, arn, &aida) {
                let name = xml::unescape(name);
                let doc = policy.to_string();
                fd.moto
                    .call(
                        account,
                        "iam",
                        "UpdateAssumeRolePolicy",
                        &[("RoleName", &name), ("PolicyDocument", &doc)],
                    )
                    .await
                    .map_err(moto_err)?;
            }
        }
    }
    Ok(())
}

/// Parses a policy document that may still be percent-encoded (GetRole).
pub fn decode_policy(doc: &str) -> Option<Value> {
    serde_json::from_str(doc).ok().or_else(|| {
        let decoded = percent_encoding::percent_decode_str(doc)
            .decode_utf8()
            .ok()?;
        serde_json::from_str(&decoded).ok()
    })
}

fn principal_values_mut(policy: &mut Value) -> Vec<&mut Value> {
    let mut out = Vec::new();
    let stmts: Vec<&mut Value> = match policy.get_mut("Statement") {
        Some(Value::Array(a)) => a.iter_mut().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => Vec::new(),
    };
    for s in stmts {
        let Some(obj) = s.as_object_mut() else {
            continue;
        };
        for (k, v) in obj.iter_mut() {
            if (k == "Principal" || k == "NotPrincipal")
                && let Some(aws) = v.get_mut("AWS")
            {
                out.push(aws);
            }
        }
    }
    out
}

/// Replaces principal `from` by `to` in every `AWS` principal; true if any changed.
pub fn replace_principal(policy: &mut Value, from: &str, to: &str) -> bool {
    let mut changed = false;
    for aws in principal_values_mut(policy) {
        match aws {
            Value::String(s) if s == from => {
                *s = to.to_string();
                changed = true;
            }
            Value::Array(a) => {
                for item in a.iter_mut() {
                    if item.as_str() == Some(from) {
                        *item = Value::String(to.to_string());
                        changed = true;
                    }
                }
            }
            _ => {}
        }
    }
    changed
}

/// Every `AWS` principal string of a policy.
pub fn aws_principals(policy: &Value) -> Vec<String> {
    let mut copy = policy.clone();
    principal_values_mut(&mut copy)
        .into_iter()
        .flat_map(|v| match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// The size IAM counts against `ACLSizePerRole`.
pub fn policy_size(doc: &str) -> usize {
    doc.chars().filter(|c| !c.is_whitespace()).count()
}

fn invalid_principal(arn: &str) -> AwsError {
    AwsError::new(
        400,
        "MalformedPolicyDocument",
        format!("Invalid principal in policy: \"AWS\":\"{arn}\""),
    )
}

/// What IAM checks on a trust policy before storing it.
async fn check_trust_policy(fd: &FrontDoor, doc: &str) -> Result<(), AwsError> {
    if policy_size(doc) > TRUST_POLICY_QUOTA {
        return Err(AwsError::new(
            409,
            "LimitExceeded",
            format!("Cannot exceed quota for ACLSizePerRole: {TRUST_POLICY_QUOTA}"),
        ));
    }
    let policy = decode_policy(doc)
        .ok_or_else(|| AwsError::new(400, "MalformedPolicyDocument", "Syntax errors in policy."))?;
    let window = lock(&fd.shared).iam_faults.invalid_principal_window_ms;
    for p in aws_principals(&policy) {
        if iam_arn_kind_name(&p).is_none() {
            continue;
        }
        if !principal_exists(fd, &p).await? {
            return Err(invalid_principal(&p));
        }
        if window > 0 {
            let created = lock(&fd.shared).user_created_ms.get(&p).copied();
            if created.is_some_and(|c| now_millis() < c + window) {
                return Err(invalid_principal(&p));
            }
        }
    }
    Ok(())
}

/// The role about to be assumed.
struct Target {
    arn: String,
    role_id: String,
}

/// Judges an AssumeRole as IAM does: the trust policy ([`trust::evaluate`],
/// read in the role's account), then the caller's identity-based policies and
/// permissions boundary ([`identity::admits`], read in the caller's account),
/// read from moto only when the trust policy has not already refused. A user's
/// are its inline and attached policies and its groups'; a role session's, its
/// role's. moto cannot set a user's permissions boundary (no
/// `PutUserPermissionsBoundary`): GetUser's is read, but only a role's is
/// ever there. For a role of another account than the caller's, the trust
/// policy must admit the caller (its ARN or its account) AND the caller's
/// identity policies must allow `sts:AssumeRole` on the role (IAM User Guide,
/// "Cross account resource access in IAM").
async fn check_assume_role(
    fd: &FrontDoor,
    cred: &Credential,
    params: &Params,
) -> Result<Target, AwsError> {
    let role_arn = params.get("RoleArn").cloned().unwrap_or_default();
    let session = params.get("RoleSessionName").cloned().unwrap_or_default();
    let valid_session = (2..=64).contains(&session.len())
        && session
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if !valid_session {
        return Err(AwsError::new(
            400,
            "ValidationError",
            format!(
                "1 validation error detected: Value '{session}' at 'roleSessionName' failed to satisfy constraint: \
                 Member must satisfy regular expression pattern: [\\w+=,.@-]*"
            ),
        ));
    }
    let who = caller_arn(&cred.principal);
    let denied = || {
        AwsError::new(
            403,
            "AccessDenied",
            format!(
                "User: {who} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
            ),
        )
    };
    let Some((role_account, "role", name)) = iam_arn_parts(&role_arn) else {
        return Err(denied());
    };
    let r = fd
        .moto
        .call(role_account, "iam", "GetRole", &[("RoleName", name)])
        .await
        .map_err(moto_err)?;
    let text = r.text();
    if !r.ok() || xml::text(&text, "Arn").as_deref() != Some(role_arn.as_str()) {
        return Err(denied());
    }
    let policy = xml::text(&text, "AssumeRolePolicyDocument")
        .and_then(|d| decode_policy(&d))
        .ok_or_else(denied)?;
    let role_id = xml::text(&text, "RoleId").unwrap_or_else(|| unique_id("AROA"));
    let max: i64 = xml::text(&text, "MaxSessionDuration")
        .and_then(|m| m.parse().ok())
        .unwrap_or(3600);
    let duration: i64 = params
        .get("DurationSeconds")
        .and_then(|d| d.parse().ok())
        .unwrap_or(3600);
    if duration > max {
        return Err(AwsError::new(
            400,
            "ValidationError",
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ));
    }

    let (caller, boundary_arn) = caller_of(fd, cred, &session).await?;
    let decision = trust::evaluate(&policy, &caller);
    if identity::trust_refuses(decision) {
        tracing::info!(caller = %who, role = %role_arn, "AssumeRole denied by the trust policy");
        return Err(denied());
    }
    // Even a trust statement naming the caller yields to an explicit deny in
    // its identity policies; one naming only the account needs their allow.
    let id = identity_of(fd, &cred.principal, boundary_arn.as_deref()).await?;
    let cross_account = cred.principal.account() != role_account;
    if !identity::admits(decision, &id, &role_arn, &caller, cross_account) {
        tracing::info!(caller = %who, role = %role_arn, trust = ?decision,
            "AssumeRole denied by the caller's identity-based policies");
        return Err(denied());
    }
    Ok(Target {
        arn: role_arn.clone(),
        role_id,
    })
}

/// The AssumeRole caller as the policies see it (its ARNs and condition
/// context), and the ARN of its permissions boundary if it has one.
async fn caller_of(
    fd: &FrontDoor,
    cred: &Credential,
    session: &str,
) -> Result<(Caller, Option<String>), AwsError> {
    let mut caller = Caller::default();
    let ctx = &mut caller.context;
    let account = cred.principal.account();
    ctx.insert("sts:rolesessionname".into(), session.to_owned());
    ctx.insert("aws:principalaccount".into(), account.into());
    // Every sandbox account is in the one organization.
    ctx.insert("aws:principalorgid".into(), ORGANIZATION_ID.into());
    // GetUser/GetRole give the principal's tags (aws:PrincipalTag/<key>: a
    // role session's are its role's) and its permissions boundary.
    let (action, param, name) = match &cred.principal {
        Principal::User { arn, user_id } => {
            caller.arns.push(arn.clone());
            let uname = arn.rsplit('/').next().unwrap_or_default().to_string();
            ctx.insert("aws:username".into(), uname.clone());
            ctx.insert("aws:userid".into(), user_id.clone());
            ctx.insert("aws:principalarn".into(), arn.clone());
            ("GetUser", "UserName", uname)
        }
        Principal::AssumedRole { role_arn, .. } => {
            caller.arns.push(role_arn.clone());
            caller.arns.push(caller_arn(&cred.principal));
            ctx.insert("aws:principalarn".into(), role_arn.clone());
            let rname = role_arn.rsplit('/').next().unwrap_or_default().to_string();
            ("GetRole", "RoleName", rname)
        }
    };
    let text = moto_read(fd, account, action, &[(param, &name)]).await?;
    for (k, v) in xml::tags(&text) {
        caller
            .context
            .insert(format!("aws:principaltag/{}", k.to_ascii_lowercase()), v);
    }
    Ok((caller, xml::text(&text, "PermissionsBoundaryArn")))
}

/// A successful moto answer's body; a refusal is an internal error (the
/// front door only reads what it knows exists).
async fn moto_read(
    fd: &FrontDoor,
    account: &str,
    action: &str,
    params: &[(&str, &str)],
) -> Result<String, AwsError> {
    let r = fd
        .moto
        .call(account, "iam", action, params)
        .await
        .map_err(moto_err)?;
    if r.ok() {
        Ok(r.text())
    } else {
        Err(AwsError::internal(format!("moto {action}: {}", r.text())))
    }
}

/// The policy document in element `element` of a moto answer.
fn document_in(text: &str, element: &str) -> Result<Value, AwsError> {
    xml::text(text, element)
        .and_then(|d| decode_policy(&d))
        .ok_or_else(|| AwsError::internal(format!("moto gave no readable {element}")))
}

/// The default version's document of a managed policy, read in `account` (AWS
/// managed policies are in every account).
async fn managed_policy(fd: &FrontDoor, account: &str, arn: &str) -> Result<Value, AwsError> {
    let p = moto_read(fd, account, "GetPolicy", &[("PolicyArn", arn)]).await?;
    let version = xml::text(&p, "DefaultVersionId")
        .ok_or_else(|| AwsError::internal(format!("moto gave no DefaultVersionId for {arn}")))?;
    let v = moto_read(
        fd,
        account,
        "GetPolicyVersion",
        &[("PolicyArn", arn), ("VersionId", &version)],
    )
    .await?;
    document_in(&v, "Document")
}

/// The inline and attached managed policies of one user, group or role
/// (`kind` is `User`, `Group` or `Role`) of `account`.
async fn own_policies(
    fd: &FrontDoor,
    account: &str,
    kind: &str,
    name: &str,
) -> Result<Vec<Value>, AwsError> {
    let name_param = format!("{kind}Name");
    let key = [(name_param.as_str(), name), ("MaxItems", "1000")];
    let (list_inline, list_attached) = (
        format!("List{kind}Policies"),
        format!("ListAttached{kind}Policies"),
    );
    let (inline, attached) = tokio::try_join!(
        moto_read(fd, account, &list_inline, &key),
        moto_read(fd, account, &list_attached, &key),
    )?;
    let get_inline = format!("Get{kind}Policy");
    let inline = try_join_all(xml::raw_all(&inline, "member").into_iter().map(|p| {
        let policy = xml::unescape(p);
        let get = &get_inline;
        let name_param = &name_param;
        async move {
            let t = moto_read(
                fd,
                account,
                get,
                &[(name_param.as_str(), name), ("PolicyName", &policy)],
            )
            .await?;
            document_in(&t, "PolicyDocument")
        }
    }));
    let attached = try_join_all(
        xml::raw_all(&attached, "PolicyArn")
            .into_iter()
            .map(|arn| async move { managed_policy(fd, account, &xml::unescape(arn)).await }),
    );
    let (mut docs, managed) = tokio::try_join!(inline, attached)?;
    docs.extend(managed);
    Ok(docs)
}

/// The identity-based policies IAM evaluates for `principal`: a user's own
/// and its groups', or an assumed role's; and the boundary at `boundary_arn`
/// (all in the principal's account).
async fn identity_of(
    fd: &FrontDoor,
    principal: &Principal,
    boundary_arn: Option<&str>,
) -> Result<Identity, AwsError> {
    let account = principal.account();
    let boundary = async {
        match boundary_arn {
            Some(arn) => managed_policy(fd, account, arn).await.map(Some),
            None => Ok(None),
        }
    };
    let policies = async {
        match principal {
            Principal::User { arn, .. } => {
                let name = arn.rsplit('/').next().unwrap_or_default();
                let groups = async {
                    let t = moto_read(
                        fd,
                        account,
                        "ListGroupsForUser",
                        &[("UserName", name), ("MaxItems", "1000")],
                    )
                    .await?;
                    let names: Vec<String> = xml::raw_all(&t, "GroupName")
                        .into_iter()
                        .map(xml::unescape)
                        .collect();
                    try_join_all(names.iter().map(|g| own_policies(fd, account, "Group", g))).await
                };
                let (mut docs, groups) =
                    tokio::try_join!(own_policies(fd, account, "User", name), groups)?;
                docs.extend(groups.into_iter().flatten());
                Ok(docs)
            }
            Principal::AssumedRole { role_arn, .. } => {
                let name = role_arn.rsplit('/').next().unwrap_or_default();
                own_policies(fd, account, "Role", name).await
            }
        }
    };
    let (policies, boundary) = tokio::try_join!(policies, boundary)?;
    Ok(Identity { policies, boundary })
}

fn capture_session(
    fd: &FrontDoor,
    r: &MotoResponse,
    target: Target,
    params: &Params,
) -> Result<(), AwsError> {
    let text = r.text();
    let (Some(ak), Some(sk), Some(token)) = (
        xml::text(&text, "AccessKeyId"),
        xml::text(&text, "SecretAccessKey"),
        xml::text(&text, "SessionToken"),
    ) else {
        return Err(AwsError::internal(
            "moto's AssumeRole answer lacked credentials",
        ));
    };
    let duration: i64 = params
        .get("DurationSeconds")
        .and_then(|d| d.parse().ok())
        .unwrap_or(3600);
    lock(&fd.shared).credentials.insert(
        ak.clone(),
        Credential {
            access_key_id: ak,
            secret_access_key: sk,
            session_token: Some(token),
            expires_at: Some(now_secs() + duration),
            principal: Principal::AssumedRole {
                role_arn: target.arn,
                role_id: target.role_id,
                session_name: params.get("RoleSessionName").cloned().unwrap_or_default(),
            },
        },
    );
    Ok(())
}

/// Creates (or finds) `sandbox-operator` of `account` with an admin inline
/// policy and a fresh access key, registered in `credentials`.
pub(crate) async fn create_operator(
    fd: &FrontDoor,
    account: &str,
) -> Result<Credential, SandboxError> {
    let r = fd
        .moto
        .call(account, "iam", "CreateUser", &[("UserName", OPERATOR_USER)])
        .await?;
    let arn = if r.ok() {
        register_user(fd, &r.text()).map(|(a, _)| a)
    } else {
        let g = fd
            .moto
            .call(account, "iam", "GetUser", &[("UserName", OPERATOR_USER)])
            .await?;
        register_user(fd, &g.text()).map(|(a, _)| a)
    }
    .ok_or_else(|| SandboxError::Moto(format!("CreateUser failed: {}", r.text())))?;
    let admin =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    let p = fd
        .moto
        .call(
            account,
            "iam",
            "PutUserPolicy",
            &[
                ("UserName", OPERATOR_USER),
                ("PolicyName", "AdministratorAccess"),
                ("PolicyDocument", admin),
            ],
        )
        .await?;
    if !p.ok() {
        return Err(SandboxError::Moto(format!(
            "PutUserPolicy failed: {}",
            p.text()
        )));
    }
    let k = fd
        .moto
        .call(
            account,
            "iam",
            "CreateAccessKey",
            &[("UserName", OPERATOR_USER)],
        )
        .await?;
    capture_access_key(fd, account, &k.text()).await?;
    let ak = xml::text(&k.text(), "AccessKeyId")
        .ok_or_else(|| SandboxError::Moto("CreateAccessKey gave no key".into()))?;
    let cred = lock(&fd.shared)
        .credentials
        .get(&ak)
        .cloned()
        .ok_or_else(|| SandboxError::Moto("operator key not recorded".into()))?;
    tracing::debug!(operator = %arn, "operator identity ready");
    Ok(cred)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moto_ids_are_replaced_whole_and_only_when_known() {
        let ids: BTreeMap<String, String> =
            [("abcdefghij0123456789".to_owned(), "AIDAEXAMPLE".to_owned())].into();
        let body = "<UserId>abcdefghij0123456789</UserId><X>abcdefghij01234567890</X><Y>zzzzzzzzzz0123456789</Y>é";
        assert_eq!(
            replace_moto_ids(body, &ids),
            "<UserId>AIDAEXAMPLE</UserId><X>abcdefghij01234567890</X><Y>zzzzzzzzzz0123456789</Y>é"
        );
    }
    use serde_json::json;

    #[test]
    fn replaces_principals_everywhere() {
        let a = "arn:aws:iam::123456789012:user/alice";
        let mut p = json!({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": [a, "arn:aws:iam::123456789012:user/bob"]}, "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"AWS": a}, "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
        assert!(replace_principal(&mut p, a, "AIDAXXXXXXXXXXXXXXXXX"));
        assert!(!p.to_string().contains(a));
        assert_eq!(aws_principals(&p).len(), 3);
        assert!(!replace_principal(&mut p, a, "x"));
    }

    #[test]
    fn decodes_percent_encoded_policies_and_sizes() {
        let d = "%7B%22Version%22%3A%20%222012-10-17%22%7D";
        assert_eq!(decode_policy(d), Some(json!({"Version": "2012-10-17"})));
        assert_eq!(policy_size("{ \"a\" :\n 1 }"), 7);
    }
}

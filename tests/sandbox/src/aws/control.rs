//! The control endpoints under `/_sandbox/` (JSON, no authentication):
//! faults, call counters, seed, health, and accounts:
//! * `POST /_sandbox/accounts` `{"accountId": "111111111111"}`: creates a member
//!   account and its administrator; answers `{"accountId", "accessKeyId",
//!   "secretAccessKey", "userArn"}` (400 unless 12 digits; idempotent);
//! * `POST /_sandbox/seed-member` ([`seed::MemberSeed`]): a member account as the
//!   multi-account setup has it; answers [`seed::MemberSeedReport`];
//! * `GET /_sandbox/organization`: `{"organizationId", "hubAccountId", "accounts"}`.
//!
//! A fault's `cluster` is the cluster's key: its name in the hub,
//! `<account>/<name>` in a member account.

use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{Method, StatusCode};
use hyper::body::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{FrontDoor, lock, seed};
use crate::state::{ACCOUNT_ID, FaultKind, FaultRule, ORGANIZATION_ID, valid_account_id};

/// `POST /_sandbox/accounts` body.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountRequest {
    pub account_id: String,
}

/// `POST /_sandbox/faults` body; every field optional, absent ones untouched.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRequest {
    pub latency_ms: Option<u64>,
    pub cluster: Option<String>,
    pub aws_auth_conflicts: Option<u32>,
    pub errors500: Option<u32>,
    pub iam: Option<IamFaultRequest>,
    /// A per-service fault rule: `iam`, `sts`, `eks`, `dynamodb` or `kube` (with
    /// `cluster`, one cluster's API server only).
    pub service: Option<String>,
    /// The operation (IAM `Action`, EKS/DynamoDB operation, Kubernetes
    /// `"PUT configmaps"`); absent = every operation of the service.
    pub operation: Option<String>,
    pub kind: Option<RuleKind>,
    /// How many calls the rule faults; `null` = always. Required with `kind`
    /// (except `off`).
    #[serde(default, deserialize_with = "present")]
    pub count: Option<Option<u32>>,
    /// Error code instead of the service's default (throttle and error500).
    pub code: Option<String>,
}

/// `kind` of a fault rule; `off` removes the rule for that service/operation/cluster.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum RuleKind {
    Throttle,
    Error500,
    Hang,
    Reset,
    Off,
}

/// Tells `"count": null` (always) from an absent `count`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(d).map(Some)
}

/// The services a rule can name.
pub const RULE_SERVICES: [&str; 5] = ["iam", "sts", "eks", "dynamodb", "kube"];

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IamFaultRequest {
    pub throttle: Option<u32>,
    pub invalid_principal_window_ms: Option<u64>,
}

fn reply(status: StatusCode, v: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    reply(status, json!({ "error": message.into() }))
}

/// Applies a fault request; errors name what was wrong.
pub fn apply_faults(fd: &FrontDoor, f: &FaultRequest) -> Result<(), String> {
    let rule = rule_of(f)?;
    let mut st = lock(&fd.shared);
    if (f.aws_auth_conflicts.is_some() || f.errors500.is_some()) && f.cluster.is_none() {
        return Err("awsAuthConflicts and errors500 need a \"cluster\"".into());
    }
    if let Some(name) = &f.cluster {
        let c = st
            .clusters
            .get_mut(name)
            .ok_or_else(|| format!("no cluster named {name}"))?;
        if let Some(n) = f.aws_auth_conflicts {
            c.faults.aws_auth_conflicts = n;
        }
        if let Some(n) = f.errors500 {
            c.faults.errors_500 = n;
        }
    }
    match rule {
        Some(Ok(r)) => st.global_faults.set(r),
        Some(Err((service, operation))) => {
            st.global_faults
                .clear(&service, operation.as_deref(), f.cluster.as_deref());
        }
        None => {}
    }
    if let Some(ms) = f.latency_ms {
        st.global_faults.latency_ms = ms;
    }
    if let Some(iam) = &f.iam {
        if let Some(n) = iam.throttle {
            st.iam_faults.throttle = n;
        }
        if let Some(ms) = iam.invalid_principal_window_ms {
            st.iam_faults.invalid_principal_window_ms = ms;
        }
    }
    Ok(())
}

/// The rule a request describes: `Ok(rule)` to set, `Err((service, operation))` to
/// remove (`kind: off`), `None` when it names no service.
#[allow(clippy::type_complexity)]
fn rule_of(
    f: &FaultRequest,
) -> Result<Option<Result<FaultRule, (String, Option<String>)>>, String> {
    let Some(service) = &f.service else {
        if f.kind.is_some() || f.operation.is_some() || f.count.is_some() || f.code.is_some() {
            return Err("kind, operation, count and code need a \"service\"".into());
        }
        return Ok(None);
    };
    if !RULE_SERVICES.contains(&service.as_str()) {
        return Err(format!(
            "unknown service {service}; one of {}",
            RULE_SERVICES.join(", ")
        ));
    }
    if f.cluster.is_some() && service != "kube" {
        return Err("\"cluster\" narrows only service \"kube\"".into());
    }
    let kind = match f.kind {
        None => {
            return Err("a rule needs a \"kind\": throttle, error500, hang, reset or off".into());
        }
        Some(RuleKind::Off) => return Ok(Some(Err((service.clone(), f.operation.clone())))),
        Some(RuleKind::Throttle) => FaultKind::Throttle,
        Some(RuleKind::Error500) => FaultKind::Error500,
        Some(RuleKind::Hang) => FaultKind::Hang,
        Some(RuleKind::Reset) => FaultKind::Reset,
    };
    let Some(remaining) = f.count else {
        return Err("a rule needs a \"count\": a number of calls, or null for always".into());
    };
    Ok(Some(Ok(FaultRule {
        service: service.clone(),
        operation: f.operation.clone(),
        cluster: f.cluster.clone(),
        kind,
        code: f.code.clone(),
        remaining,
    })))
}

/// Handles `/_sandbox/…`.
pub async fn handle(fd: &FrontDoor, parts: &Parts, body: Bytes) -> Response {
    match (&parts.method, parts.uri.path()) {
        (&Method::GET, "/_sandbox/health") => reply(StatusCode::OK, json!({ "status": "ok" })),
        (&Method::POST, "/_sandbox/faults") => {
            let req: FaultRequest = match serde_json::from_slice(&body) {
                Ok(r) => r,
                Err(e) => {
                    return error(StatusCode::BAD_REQUEST, format!("invalid fault JSON: {e}"));
                }
            };
            match apply_faults(fd, &req) {
                Ok(()) => reply(StatusCode::OK, json!({ "ok": true })),
                Err(e) => error(StatusCode::NOT_FOUND, e),
            }
        }
        (&Method::GET, "/_sandbox/calls") => {
            let list: Vec<Value> = lock(&fd.shared)
                .calls
                .iter()
                .map(|((s, o), n)| json!({ "service": s, "operation": o, "count": n }))
                .collect();
            reply(StatusCode::OK, Value::Array(list))
        }
        (&Method::GET, "/_sandbox/events") => reply(
            StatusCode::OK,
            Value::Array(lock(&fd.shared).put_events.clone()),
        ),
        (&Method::POST, "/_sandbox/calls/reset") => {
            lock(&fd.shared).calls.clear();
            reply(StatusCode::OK, json!({ "ok": true }))
        }
        (&Method::POST, "/_sandbox/accounts") => {
            let req: AccountRequest = match serde_json::from_slice(&body) {
                Ok(r) => r,
                Err(e) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        format!("invalid account JSON: {e}"),
                    );
                }
            };
            if !valid_account_id(&req.account_id) {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("accountId {:?} is not 12 digits", req.account_id),
                );
            }
            match fd.create_account(&req.account_id).await {
                Ok(c) => reply(StatusCode::OK, json!(c)),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        (&Method::POST, "/_sandbox/seed-member") => {
            let req: seed::MemberSeed = match serde_json::from_slice(&body) {
                Ok(r) => r,
                Err(e) => {
                    return error(StatusCode::BAD_REQUEST, format!("invalid seed JSON: {e}"));
                }
            };
            if !valid_account_id(&req.account_id) || req.account_id == ACCOUNT_ID {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "accountId {:?} is not 12 digits, or is the hub's",
                        req.account_id
                    ),
                );
            }
            match seed::seed_member(fd, &req).await {
                Ok(r) => reply(StatusCode::OK, json!(r)),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        (&Method::GET, "/_sandbox/organization") => {
            let mut accounts = vec![ACCOUNT_ID.to_string()];
            accounts.extend(lock(&fd.shared).member_accounts.iter().cloned());
            reply(
                StatusCode::OK,
                json!({
                    "organizationId": ORGANIZATION_ID,
                    "hubAccountId": ACCOUNT_ID,
                    "accounts": accounts,
                }),
            )
        }
        (&Method::POST, "/_sandbox/seed") => match seed::seed(fd).await {
            Ok(r) => reply(StatusCode::OK, json!(r)),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        },
        (m, p) => error(
            StatusCode::NOT_FOUND,
            format!("no control endpoint {m} {p}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_shapes() {
        let f: FaultRequest = serde_json::from_str(r#"{"latencyMs": 20}"#).unwrap();
        assert_eq!(f.latency_ms, Some(20));
        let f: FaultRequest =
            serde_json::from_str(r#"{"cluster": "prod", "awsAuthConflicts": 2, "errors500": 1}"#)
                .unwrap();
        assert_eq!((f.aws_auth_conflicts, f.errors500), (Some(2), Some(1)));
        let f: FaultRequest =
            serde_json::from_str(r#"{"iam": {"throttle": 3, "invalidPrincipalWindowMs": 3000}}"#)
                .unwrap();
        assert_eq!(
            f.iam,
            Some(IamFaultRequest {
                throttle: Some(3),
                invalid_principal_window_ms: Some(3000)
            })
        );
        assert!(serde_json::from_str::<FaultRequest>(r#"{"latency": 1}"#).is_err());
    }
}

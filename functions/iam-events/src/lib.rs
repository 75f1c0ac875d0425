//! The `iam-events` Lambda: EventBridge IAM CloudTrail events (CreateUser, TagUser,
//! UntagUser, DeleteUser) → the admin role's trust policy → every tagged cluster.
//!
//! A payload over [`MAX_EVENT_BYTES`](eks_access_sync::intake::MAX_EVENT_BYTES) (EventBridge's 256 KiB) is refused unparsed.
//! Ignored events (failed calls, other names, malformed records) succeed with
//! `{"ignored": reason}` so that they are not retried. A run that fails returns an
//! error, so that Lambda's retries and the on-failure destination take over.
#![warn(clippy::too_many_lines)]

use eks_access_sync::engine::{Engine, EventResult, RunMode};
use eks_access_sync::intake::{IntakeError, parse_event};
use eks_access_sync::output::report::RunReport;
use eks_access_sync::ports::EksApi;
use eks_access_sync::ports::IamApi;
use eks_access_sync::ports::KubeConnector;
use eks_access_sync::telemetry::emit_emf;
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// The function name used in metrics.
pub const FUNCTION: &str = eks_access_sync::telemetry::IAM_EVENTS_FUNCTION;

/// A run that did not fully succeed. Its Display is the report's summary (no secrets).
#[derive(Debug, thiserror::Error)]
#[error("run failed: {summary}")]
pub struct RunFailed {
    pub summary: String,
    pub report: Box<RunReport>,
}

/// Handles one EventBridge payload.
pub async fn handle<I: IamApi, E: EksApi, K: KubeConnector>(
    engine: &Engine<I, E, K>,
    event: Value,
) -> Result<Value, RunFailed> {
    match engine
        .handle_iam_events_payload(&event, RunMode::Apply)
        .await
    {
        EventResult::Ignored(reason) => Ok(json!({ "ignored": reason })),
        EventResult::Ran(report) => {
            emit_emf(FUNCTION, &report);
            finish(*report)
        }
    }
}

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The payload was refused unread (over [`MAX_EVENT_BYTES`](eks_access_sync::intake::MAX_EVENT_BYTES)) or is not JSON. An
    /// error, not `{"ignored": …}`: the invocation fails, so the event reaches the
    /// function's on-failure destination rather than being dropped.
    #[error(transparent)]
    Input(#[from] IntakeError),
    #[error(transparent)]
    Run(#[from] RunFailed),
}

/// Handles one payload as its text (what `main` gets through
/// [`RawPayloadLayer`](eks_access_sync::lambda::RawPayloadLayer)): one over
/// [`MAX_EVENT_BYTES`](eks_access_sync::intake::MAX_EVENT_BYTES) is refused before it is
/// built into a tree, one that is not JSON is refused (`InputRefused`).
pub async fn handle_text<I: IamApi, E: EksApi, K: KubeConnector>(
    engine: &Engine<I, E, K>,
    text: &str,
) -> Result<Value, HandlerError> {
    let event = parse_event(text.as_bytes()).inspect_err(|e| {
        tracing::error!(error = %e, bytes = text.len(), "event refused");
    })?;
    Ok(handle(engine, event).await?)
}

/// [`handle_text`] of a payload already checked to be JSON.
pub async fn handle_raw<I: IamApi, E: EksApi, K: KubeConnector>(
    engine: &Engine<I, E, K>,
    raw: &RawValue,
) -> Result<Value, HandlerError> {
    handle_text(engine, raw.get()).await
}

impl HandlerError {
    /// The `errorType` Lambda reports.
    pub fn error_type(&self) -> &'static str {
        match self {
            HandlerError::Input(_) => "InputRefused",
            HandlerError::Run(_) => "RunFailed",
        }
    }
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type().to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// `Ok(report JSON)` if the run succeeded, else `Err` carrying the failures.
pub fn finish(report: RunReport) -> Result<Value, RunFailed> {
    if report.succeeded() {
        Ok(serde_json::to_value(&report).unwrap_or(Value::Null))
    } else {
        Err(RunFailed {
            summary: report.failure_summary(),
            report: Box::new(report),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eks_access_sync::{
        model::cluster::Backend,
        output::report::{ClusterReport, ClusterStatus},
    };

    #[test]
    fn success_returns_the_report_and_failure_an_error() {
        let mut r = RunReport::new(false, "eks-admin", 2048);
        r.admin_users = 2;
        let ok = finish(r.clone()).expect("succeeded");
        assert_eq!(ok["adminUsers"], 2);
        r.clusters.push(ClusterReport {
            name: "prod".into(),
            account: String::new(),
            region: "eu-west-1".into(),
            backend: Backend::ConfigMap,
            status: ClusterStatus::Failed,
            error: Some("refusing to edit aws-auth: mapRoles".into()),
            changes: vec![],
            tiers: Vec::new(),
        });
        let err = finish(r).expect_err("failed");
        assert!(err.to_string().contains("eu-west-1/prod"), "{err}");
        assert!(err.to_string().contains("mapRoles"), "{err}");
    }
}

#[cfg(test)]
mod handle_tests {
    use super::*;
    use eks_access_sync::model::cluster::AuthMode;
    use eks_access_sync::testing::*;

    type TestEngine = Engine<FakeIam, FakeEks, FakeKube>;

    /// dave (tagged admin) and erin; one tagged CONFIG_MAP cluster.
    fn engine(iam: &FakeIam) -> TestEngine {
        let eks = FakeEks::new(vec![cluster("c1", "us-east-1", true, AuthMode::ConfigMap)]);
        let kube = FakeKube::default();
        kube.set("c1", aws_auth(NODE_ROLES, None));
        Engine::new(
            test_config(&[("CLUSTER_REGIONS", "us-east-1")]),
            iam.clone(),
            eks,
            kube,
        )
    }

    fn iam() -> FakeIam {
        FakeIam::new(vec![user("dave", true), user("erin", false)], EMPTY_TRUST)
    }

    #[tokio::test]
    async fn malformed_payload_is_ignored() {
        let iam = iam();
        let out = handle(&engine(&iam), json!({"dryRun": true}))
            .await
            .expect("ignored, not an error");
        let reason = out["ignored"].as_str().expect("ignored");
        assert!(reason.contains("not an EventBridge event"), "{reason}");
        assert_eq!(iam.writes(), 0);
    }

    #[tokio::test]
    async fn failed_call_is_ignored() {
        let iam = iam();
        let mut ev = iam_event("CreateUser", "dave");
        ev["detail"]["errorCode"] = json!("EntityAlreadyExistsException");
        ev["detail"]["errorMessage"] = json!("User with name dave already exists.");
        let out = handle(&engine(&iam), ev).await.expect("ignored");
        let reason = out["ignored"].as_str().expect("ignored");
        assert!(reason.contains("EntityAlreadyExistsException"), "{reason}");
        assert_eq!(iam.writes(), 0);
    }

    #[tokio::test]
    async fn tag_user_trusts_the_user() {
        let iam = iam();
        let out = handle(&engine(&iam), iam_event("TagUser", "dave"))
            .await
            .expect("run succeeded");
        assert_eq!(
            out["trustPolicy"]["added"],
            json!([format!("arn:aws:iam::{ACCOUNT}:user/dave")])
        );
        assert_eq!(iam.writes(), 1);
        assert!(iam.policy().contains("user/dave"));
    }

    #[tokio::test]
    async fn a_failed_run_is_an_error_with_a_readable_type() {
        let iam = iam();
        iam.0.lock().expect("lock").fail_update = Some("MalformedPolicyDocument".into());
        let err = handle_raw(&engine(&iam), &raw(&iam_event("TagUser", "dave")))
            .await
            .expect_err("the trust-policy write failed");
        assert!(err.to_string().contains("MalformedPolicyDocument"), "{err}");
        let d = lambda_runtime::Diagnostic::from(err);
        assert_eq!(d.error_type, "RunFailed");
        let err = handle_raw(&engine(&iam), &raw(&json!("x".repeat(300 * 1024))))
            .await
            .expect_err("oversized");
        assert_eq!(
            lambda_runtime::Diagnostic::from(err).error_type,
            "InputRefused"
        );
    }

    #[tokio::test]
    async fn a_payload_that_is_not_json_is_refused_by_name() {
        let iam = iam();
        for text in ["{not json", "", "\u{fffd}\u{fffd}"] {
            let err = handle_text(&engine(&iam), text)
                .await
                .expect_err("not JSON");
            assert!(err.to_string().contains("not JSON"), "{err}");
            assert_eq!(
                lambda_runtime::Diagnostic::from(err).error_type,
                "InputRefused"
            );
        }
        assert_eq!(iam.writes(), 0);
    }

    fn raw(v: &Value) -> Box<RawValue> {
        RawValue::from_string(v.to_string()).expect("raw")
    }
}

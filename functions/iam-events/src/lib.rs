//! The `iam-events` Lambda: EventBridge IAM CloudTrail events (CreateUser, TagUser,
//! UntagUser, DeleteUser) → the admin role's trust policy → every tagged cluster.
//!
//! A payload over [`MAX_EVENT_BYTES`](eks_access_sync::intake::MAX_EVENT_BYTES) (EventBridge's 256 KiB) is refused unparsed.
//! Ignored events (failed calls, other names, malformed records) succeed with
//! `{"ignored": reason}` so that they are not retried. A run that fails returns an
//! error, so that Lambda's retries and the on-failure destination take over.

use eks_access_sync::eks::EksApi;
use eks_access_sync::engine::{Engine, EventResult};
use eks_access_sync::iam::IamApi;
use eks_access_sync::intake::{IntakeError, parse_raw_event};
use eks_access_sync::k8s::KubeConnector;
use eks_access_sync::report::RunReport;
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
    match engine.handle_iam_events_payload(&event, false).await {
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

/// Handles one payload as the Lambda runtime hands it over (unparsed): one over
/// [`MAX_EVENT_BYTES`](eks_access_sync::intake::MAX_EVENT_BYTES) is refused before it is built into a tree.
pub async fn handle_raw<I: IamApi, E: EksApi, K: KubeConnector>(
    engine: &Engine<I, E, K>,
    raw: &RawValue,
) -> Result<Value, HandlerError> {
    let event = parse_raw_event(raw).inspect_err(|e| {
        tracing::error!(error = %e, bytes = raw.get().len(), "event refused");
    })?;
    Ok(handle(engine, event).await?)
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
    use eks_access_sync::report::{Backend, ClusterReport, ClusterStatus};

    #[test]
    fn success_returns_the_report_and_failure_an_error() {
        let mut r = RunReport::new(false, "eks-admin", 2048);
        r.admin_users = 2;
        let ok = finish(r.clone()).expect("succeeded");
        assert_eq!(ok["adminUsers"], 2);
        r.clusters.push(ClusterReport {
            name: "prod".into(),
            region: "eu-west-1".into(),
            backend: Backend::ConfigMap,
            status: ClusterStatus::Failed,
            error: Some("refusing to edit aws-auth: mapRoles".into()),
            changes: vec![],
        });
        let err = finish(r).expect_err("failed");
        assert!(err.to_string().contains("eu-west-1/prod"), "{err}");
        assert!(err.to_string().contains("mapRoles"), "{err}");
    }
}

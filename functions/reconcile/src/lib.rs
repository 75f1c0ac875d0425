//! The `reconcile` Lambda: repair on demand, on a schedule, and when a cluster is
//! created or tagged.
//!
//! Payloads:
//! - manual `{"dryRun": true}` → the plan and report, nothing written;
//! - manual `{}` → a full apply; `{"clusters": ["name", …]}` limits the clusters
//!   (the trust policy is still reconciled);
//! - EventBridge `Scheduled Event` → a full apply;
//! - EventBridge EKS `CreateCluster` / `TagResource` → that cluster only.
//!
//! A payload over [`MAX_EVENT_BYTES`](eks_access_sync::intake::MAX_EVENT_BYTES) (EventBridge's 256 KiB) is refused unparsed.
//!
//! A manual invocation always returns the report (read `succeeded` there). A scheduled
//! or event-driven run that fails returns an error so that Lambda's failure handling
//! (and the alarm on it) sees it. IAM events are left to `iam-events`.
#![warn(clippy::too_many_lines)]

use eks_access_sync::engine::{AuditClusters, Engine, RunMode, Scope, eks_event_scope};
use eks_access_sync::intake::{IntakeError, parse_event};
use eks_access_sync::model::arn::ClusterName;
use eks_access_sync::model::config::Config;
use eks_access_sync::output::report::RunReport;
use eks_access_sync::policy::event::{EventClass, classify_event};
use eks_access_sync::ports::EksApi;
use eks_access_sync::ports::IamApi;
use eks_access_sync::ports::KubeConnector;
use eks_access_sync::telemetry::emit_emf;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

pub const FUNCTION: &str = eks_access_sync::telemetry::RECONCILE_FUNCTION;

/// A manual invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManualRequest {
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub clusters: Option<Vec<String>>,
    /// The access audit instead of a reconcile (read-only).
    #[serde(default)]
    pub access: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(
        "invalid request: {0} (expected {{\"dryRun\": bool, \"clusters\": [\"name\", …], \"access\": bool}})"
    )]
    BadRequest(String),
    /// Over [`MAX_EVENT_BYTES`](eks_access_sync::intake::MAX_EVENT_BYTES), or not JSON: refused unread.
    #[error(transparent)]
    Input(#[from] IntakeError),
    #[error("access audit failed: {0}")]
    AuditFailed(String),
    #[error("run failed: {summary}")]
    RunFailed {
        summary: String,
        report: Box<RunReport>,
    },
}

/// How a payload is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Manual { dry_run: bool, scope: Scope },
    Access(Scope),
    Scheduled,
    Eks(Scope),
    Ignored(String),
}

/// For logs: what is run, in plain words.
impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Manual {
                dry_run: true,
                scope,
            } => write!(f, "manual dry run: {scope}"),
            Request::Manual {
                dry_run: false,
                scope,
            } => write!(f, "manual run: {scope}"),
            Request::Access(scope) => write!(f, "access audit: {scope}"),
            Request::Scheduled => f.write_str("scheduled run: every tagged cluster"),
            Request::Eks(scope) => write!(f, "EKS event: {scope}"),
            Request::Ignored(reason) => write!(f, "ignored: {reason}"),
        }
    }
}

impl ReconcileError {
    /// The `errorType` Lambda reports.
    pub fn error_type(&self) -> &'static str {
        match self {
            ReconcileError::BadRequest(_) => "BadRequest",
            ReconcileError::Input(_) => "InputRefused",
            ReconcileError::RunFailed { .. } | ReconcileError::AuditFailed(_) => "RunFailed",
        }
    }
}

impl From<ReconcileError> for lambda_runtime::Diagnostic {
    fn from(e: ReconcileError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type().to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// Tells an EventBridge envelope from a manual payload and parses it.
pub fn parse_request(config: &Config, event: &Value) -> Result<Request, ReconcileError> {
    let is_envelope = event.get("detail-type").is_some() || event.get("source").is_some();
    if is_envelope {
        return Ok(match classify_event(event, config) {
            EventClass::Schedule => Request::Scheduled,
            EventClass::Eks(ev) => Request::Eks(eks_event_scope(&ev)),
            EventClass::Iam(ev) => Request::Ignored(format!(
                "IAM event for {}: handled by the iam-events function",
                ev.user_name
            )),
            EventClass::IamGroupDeleted { group } => Request::Ignored(format!(
                "IAM DeleteGroup of {group}: handled by the iam-events function"
            )),
            EventClass::Ignored { reason } => Request::Ignored(reason),
        });
    }
    let req: ManualRequest = serde_json::from_value(event.clone())
        .map_err(|e| ReconcileError::BadRequest(e.to_string()))?;
    let scope = match req.clusters {
        None => Scope::all(),
        Some(names) => Scope::clusters(
            names
                .iter()
                .map(|n| {
                    n.parse::<ClusterName>()
                        .map_err(|e| ReconcileError::BadRequest(format!("cluster {n:?}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    if req.access {
        if req.dry_run {
            return Err(ReconcileError::BadRequest(
                "access is read-only: dryRun does not apply to it".into(),
            ));
        }
        return Ok(Request::Access(scope));
    }
    Ok(Request::Manual {
        dry_run: req.dry_run,
        scope,
    })
}

/// Handles one payload as its text (what `main` gets through
/// [`RawPayloadLayer`](eks_access_sync::lambda::RawPayloadLayer)): one over
/// [`MAX_EVENT_BYTES`](eks_access_sync::intake::MAX_EVENT_BYTES) is refused before it is
/// built into a tree, one that is not JSON is refused (`InputRefused`).
pub async fn handle_text<I: IamApi, E: EksApi, K: KubeConnector>(
    engine: &Engine<I, E, K>,
    text: &str,
) -> Result<Value, ReconcileError> {
    let event = parse_event(text.as_bytes()).inspect_err(|e| {
        tracing::error!(error = %e, bytes = text.len(), "event refused");
    })?;
    handle(engine, event).await
}

/// [`handle_text`] of a payload already checked to be JSON.
pub async fn handle_raw<I: IamApi, E: EksApi, K: KubeConnector>(
    engine: &Engine<I, E, K>,
    raw: &RawValue,
) -> Result<Value, ReconcileError> {
    handle_text(engine, raw.get()).await
}

/// Handles one invocation.
pub async fn handle<I: IamApi, E: EksApi, K: KubeConnector>(
    engine: &Engine<I, E, K>,
    event: Value,
) -> Result<Value, ReconcileError> {
    let request = parse_request(engine.config(), &event)?;
    tracing::info!(request = %request, "reconcile");
    let (report, manual) = match request {
        Request::Ignored(reason) => {
            tracing::info!(reason = %reason, "event ignored");
            return Ok(json!({ "ignored": reason }));
        }
        Request::Manual { dry_run, scope } => {
            let mode = RunMode::from_dry_run(dry_run);
            (engine.run_full(&scope, mode).await.report, true)
        }
        Request::Access(scope) => {
            return match engine.audit(&scope, AuditClusters::Managed).await {
                Ok(report) => Ok(serde_json::to_value(&report).unwrap_or(Value::Null)),
                Err(e) => Err(ReconcileError::AuditFailed(e.to_string())),
            };
        }
        Request::Scheduled => (engine.apply_full(&Scope::all()).await, false),
        Request::Eks(scope) => (engine.apply_full(&scope).await, false),
    };
    emit_emf(FUNCTION, &report);
    if manual || report.succeeded() {
        Ok(serde_json::to_value(&report).unwrap_or(Value::Null))
    } else {
        let summary = report.failure_summary();
        Err(ReconcileError::RunFailed {
            summary,
            report: Box::new(report),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_lookup(|k| match k {
            "ADMIN_ROLE_NAME" => Some("eks-admin".to_owned()),
            "AWS_REGION" => Some("us-east-1".to_owned()),
            _ => None,
        })
        .expect("config")
    }

    #[test]
    fn manual_payloads() {
        let c = config();
        assert_eq!(
            parse_request(&c, &json!({})).expect("empty"),
            Request::Manual {
                dry_run: false,
                scope: Scope::all()
            }
        );
        assert_eq!(
            parse_request(&c, &json!({"dryRun": true})).expect("dry run"),
            Request::Manual {
                dry_run: true,
                scope: Scope::all()
            }
        );
        match parse_request(&c, &json!({"clusters": ["prod", "dev"]})).expect("clusters") {
            Request::Manual { dry_run, scope } => {
                assert!(!dry_run);
                let names: Vec<String> = scope
                    .clusters
                    .expect("limited")
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                assert_eq!(names, ["dev", "prod"]);
                assert!(!scope.skip_trust_policy);
            }
            other => panic!("unexpected {other:?}"),
        }
        let err = parse_request(&c, &json!({"dryrun": true})).expect_err("unknown field");
        assert!(err.to_string().contains("dryrun"), "{err}");
        assert!(parse_request(&c, &json!({"clusters": ["not a name!"]})).is_err());
        assert!(parse_request(&c, &json!({"dryRun": "yes"})).is_err());
    }

    #[test]
    fn scheduled_event_is_a_full_run() {
        let ev = json!({
            "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-11-28T12:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/eks-access-sync-schedule"],
            "detail": {}
        });
        assert_eq!(
            parse_request(&config(), &ev).expect("schedule"),
            Request::Scheduled
        );
    }

    fn sample(name: &str) -> Value {
        let path = format!("{}/../../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn only(scope: &Scope) -> Vec<String> {
        scope
            .clusters
            .as_ref()
            .map(|s| s.iter().map(ToString::to_string).collect())
            .unwrap_or_default()
    }

    #[test]
    fn sample_events_are_served_as_documented() {
        let c = config();
        assert_eq!(
            parse_request(&c, &sample("reconcile-apply")).expect("apply"),
            Request::Manual {
                dry_run: false,
                scope: Scope::all()
            }
        );
        assert_eq!(
            parse_request(&c, &sample("reconcile-dry-run")).expect("dry run"),
            Request::Manual {
                dry_run: true,
                scope: Scope::all()
            }
        );
        match parse_request(&c, &sample("reconcile-cluster")).expect("cluster") {
            Request::Manual {
                dry_run: false,
                scope,
            } => assert_eq!(only(&scope), ["prod"]),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            parse_request(&c, &sample("schedule")).expect("schedule"),
            Request::Scheduled
        );
        for (name, cluster) in [("eks-tag-resource", "legacy"), ("eks-create-cluster", "")] {
            match parse_request(&c, &sample(name)).expect(name) {
                Request::Eks(scope) => {
                    assert!(scope.skip_trust_policy, "{name}");
                    assert_eq!(only(&scope).len(), 1, "{name}: one cluster");
                    if !cluster.is_empty() {
                        assert_eq!(only(&scope), [cluster]);
                    }
                }
                other => panic!("{name}: unexpected {other:?}"),
            }
        }
        for name in [
            "iam-create-user-tagged",
            "iam-create-user-untagged",
            "iam-create-user-failed",
            "iam-tag-user",
            "iam-untag-user",
            "iam-delete-user",
        ] {
            assert!(
                matches!(
                    parse_request(&c, &sample(name)).expect(name),
                    Request::Ignored(_)
                ),
                "{name} is left to iam-events"
            );
        }
    }

    /// The request is logged as plain words, not its `Debug` form
    /// (`Eks(Scope { clusters: Some({ClusterName("legacy")}), … })`).
    #[test]
    fn requests_display_as_plain_words() {
        let c = config();
        let shown = |name: &str| {
            parse_request(&c, &sample(name))
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .to_string()
        };
        assert_eq!(
            shown("eks-tag-resource"),
            "EKS event: clusters legacy (event in us-east-1), trust policy untouched"
        );
        assert_eq!(
            shown("reconcile-dry-run"),
            "manual dry run: every tagged cluster"
        );
        assert_eq!(shown("reconcile-cluster"), "manual run: clusters prod");
        assert_eq!(shown("schedule"), "scheduled run: every tagged cluster");
        for name in ["eks-create-cluster", "iam-tag-user", "reconcile-apply"] {
            let text = shown(name);
            for form in ["Some(", "ClusterName(", "Scope {", "{"] {
                assert!(!text.contains(form), "{name}: {text}");
            }
        }
    }

    #[test]
    fn summary_names_each_failure() {
        let mut r = RunReport::new(false, "eks-admin", 2048);
        r.trust_policy.error = Some("LimitExceeded".into());
        assert!(r.failure_summary().contains("trust policy: LimitExceeded"));
    }
}

#[cfg(test)]
mod handle_tests {
    use super::*;
    use eks_access_sync::model::cluster::AuthMode;
    use eks_access_sync::testing::*;

    struct World {
        iam: FakeIam,
        kube: FakeKube,
        engine: Engine<FakeIam, FakeEks, FakeKube>,
    }

    /// dave (tagged admin); one tagged CONFIG_MAP cluster without the admin mapping.
    fn world() -> World {
        let iam = FakeIam::new(vec![user("dave", true)], EMPTY_TRUST);
        let eks = FakeEks::new(vec![cluster("c1", "us-east-1", true, AuthMode::ConfigMap)]);
        let kube = FakeKube::default();
        kube.set("c1", aws_auth(NODE_ROLES, None));
        let cfg = test_config(&[("CLUSTER_REGIONS", "us-east-1")]);
        let engine = Engine::new(cfg, iam.clone(), eks, kube.clone());
        World { iam, kube, engine }
    }

    #[tokio::test]
    async fn bad_request_is_an_error_with_its_type() {
        let w = world();
        let err = handle(&w.engine, json!({"dryRun": "yes"}))
            .await
            .expect_err("bad request");
        assert!(matches!(err, ReconcileError::BadRequest(_)), "{err:?}");
        assert_eq!(
            lambda_runtime::Diagnostic::from(err).error_type,
            "BadRequest"
        );
        assert_eq!(w.iam.writes() + w.kube.total_writes(), 0);
    }

    #[tokio::test]
    async fn dry_run_writes_nothing_and_returns_the_plan() {
        let w = world();
        let out = handle(&w.engine, json!({"dryRun": true}))
            .await
            .expect("report");
        assert!(out["plan"].is_object(), "{out}");
        assert_eq!(out["trustPolicy"]["changed"], json!(true));
        assert_eq!(w.iam.writes(), 0);
        assert_eq!(w.kube.total_writes(), 0);
    }

    #[tokio::test]
    async fn access_audits_and_writes_nothing() {
        let w = world();
        // The admin role is mapped by a first reconcile; dave is in its trust policy.
        handle(&w.engine, json!({})).await.expect("reconcile");
        let writes = w.iam.writes() + w.kube.total_writes();
        let out = handle(&w.engine, json!({"access": true}))
            .await
            .expect("audit");
        assert_eq!(w.iam.writes() + w.kube.total_writes(), writes, "read-only");
        let c1 = &out["clusters"][0];
        assert_eq!(c1["name"], "c1");
        let grants = c1["grants"].as_array().expect("grants");
        let admin = grants
            .iter()
            .find(|g| g["reason"] == "tier admin")
            .expect("the admin role's grant");
        assert_eq!(admin["via"], "mapRoles");
        assert!(
            admin["trusted"]
                .as_array()
                .expect("trusted")
                .iter()
                .any(|t| t.as_str().is_some_and(|t| t.ends_with(":user/dave"))),
            "{admin}"
        );
        assert!(grants.iter().any(|g| g["reason"] == "node role"), "{c1}");
        let err = handle(&w.engine, json!({"access": true, "dryRun": true}))
            .await
            .expect_err("dryRun with access");
        assert!(matches!(err, ReconcileError::BadRequest(_)), "{err:?}");
    }

    #[tokio::test]
    async fn iam_event_is_ignored() {
        let w = world();
        let out = handle(&w.engine, iam_event("TagUser", "dave"))
            .await
            .expect("ignored");
        let reason = out["ignored"].as_str().expect("ignored");
        assert!(reason.contains("iam-events"), "{reason}");
        assert_eq!(w.iam.writes() + w.kube.total_writes(), 0);
    }

    #[tokio::test]
    async fn a_failed_scheduled_run_is_a_run_failed_error() {
        let w = world();
        w.iam.0.lock().expect("lock").fail_update = Some("MalformedPolicyDocument".into());
        let ev = json!({
            "version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": ACCOUNT, "time": "2026-11-28T12:00:00Z", "region": "us-east-1",
            "resources": [], "detail": {}
        });
        let err = handle(&w.engine, ev).await.expect_err("run failed");
        assert_eq!(
            lambda_runtime::Diagnostic::from(err).error_type,
            "RunFailed"
        );
    }
}

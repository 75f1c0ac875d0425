//! JSON logs through `tracing`, and CloudWatch embedded-metric-format (EMF) figures.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use regex::Regex;
use serde_json::{Value, json};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::{FilterExt, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::report::{ClusterStatus, RunReport};

/// CloudWatch namespace of every metric.
pub const METRIC_NAMESPACE: &str = "EksAccessSync";

/// The `Function` dimension of the `iam-events` Lambda's metrics.
pub const IAM_EVENTS_FUNCTION: &str = "iam-events";

/// The `Function` dimension of the `reconcile` Lambda's metrics.
pub const RECONCILE_FUNCTION: &str = "reconcile";

/// Every value the `Function` dimension takes.
pub const METRIC_FUNCTIONS: &[&str] = &[IAM_EVENTS_FUNCTION, RECONCILE_FUNCTION];

/// The dimension sets of every metric.
pub const METRIC_DIMENSIONS: &[&[&str]] = &[&["Function"]];

/// Where logs go: stderr for the CLI (stdout is for the plan), stdout for Lambda.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    Stdout,
    Stderr,
}

/// Targets that print request material (canonical requests, string to sign, presigned
/// URLs, request and response dumps with bodies, connection traces) at their most
/// verbose levels, and the most verbose level each may log at, whatever `RUST_LOG` says.
/// Found by running the end-to-end story at `RUST_LOG=trace` with session credentials
/// (tests/e2e/tests/secrets.rs): `aws_sigv4` prints the EKS token's canonical request
/// with `X-Amz-Security-Token=…` at TRACE; the orchestrator prints every response body
/// (an STS answer holds credentials) at TRACE.
pub const LOG_CEILINGS: &[(&str, LevelFilter)] = &[
    ("aws_sigv4", LevelFilter::INFO),
    (
        "aws_smithy_runtime::client::orchestrator",
        LevelFilter::DEBUG,
    ),
    (
        "aws_smithy_runtime_api::client::orchestrator",
        LevelFilter::DEBUG,
    ),
    ("aws_smithy_runtime_api::http", LevelFilter::DEBUG),
    ("aws_smithy_http_client", LevelFilter::DEBUG),
    ("aws_smithy_http", LevelFilter::DEBUG),
    ("hyper", LevelFilter::DEBUG),
    ("hyper_util", LevelFilter::DEBUG),
    ("h2", LevelFilter::DEBUG),
    ("rustls", LevelFilter::DEBUG),
    ("tower", LevelFilter::DEBUG),
    ("kube", LevelFilter::DEBUG),
    ("kube_client", LevelFilter::DEBUG),
];

/// The always-applied ceiling: [`LOG_CEILINGS`], everything else unrestricted.
/// Combined with `RUST_LOG` by AND, so no `RUST_LOG` can lift it.
pub fn log_ceiling() -> Targets {
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(LOG_CEILINGS.iter().copied())
}

/// JSON logs, filtered by `RUST_LOG` (default `info`) under [`log_ceiling`], each line
/// scrubbed by a [`Redactor`] holding the secrets of this process's environment. Safe
/// to call twice (the second call does nothing).
pub fn init_tracing(target: LogTarget) {
    let redactor = Arc::new(Redactor::from_env());
    let _ = match target {
        LogTarget::Stdout => try_init(RedactingMakeWriter::new(io::stdout, redactor)),
        LogTarget::Stderr => try_init(RedactingMakeWriter::new(io::stderr, redactor)),
    };
}

fn try_init<W>(writer: W) -> Result<(), tracing_subscriber::util::TryInitError>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::registry()
        .with(json_layer(writer))
        .try_init()
}

/// The product's log layer (JSON, `RUST_LOG` under [`log_ceiling`]) over any writer:
/// what [`init_tracing`] installs, for tests that capture the lines.
pub fn json_layer<S, W>(writer: W) -> impl Layer<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let env = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    json_layer_with(env, writer)
}

/// [`json_layer`] with the given filter in place of `RUST_LOG`'s.
pub fn json_layer_with<S, W>(env: EnvFilter, writer: W) -> impl Layer<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_writer(writer)
        .with_filter(env.and(log_ceiling()))
}

/// AWS URI encoding (SigV4): everything but unreserved characters is `%XX`.
const AWS_URI: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// What replaces a secret in a log line.
pub const REDACTED: &str = "[redacted]";

/// Scrubs secrets out of a log line: the shapes of signing material (query-string and
/// header session tokens, `X-Amz-Signature`, `Signature=` of an Authorization header,
/// EKS tokens `k8s-aws-v1.…`, `Bearer …` values) and the exact values of secrets known
/// at start-up (raw and URL-encoded).
#[derive(Debug, Clone)]
pub struct Redactor {
    /// (pattern, replacement with `$1` the kept prefix).
    shapes: Vec<(Regex, String)>,
    /// Exact secret values, longest first.
    values: Vec<String>,
}

/// (pattern, kept-prefix replacement). Patterns are fixed; compiling them cannot fail
/// (`redactor_shapes_compile` tests it), and a pattern that did fail would be skipped.
const SHAPES: &[&str] = &[
    r"(?i)(x-amz-security-token(?:=|%3D|:\s*|\\?\x22\s*:\s*\\?\x22))[^&\s\x22\\,;]+",
    r"(?i)(x-amz-signature(?:=|%3D))[0-9a-f]+",
    r"(\bSignature=)[0-9a-fA-F]+",
    r"(k8s-aws-v1\.)[A-Za-z0-9_=-]+",
    r"(?i)(\bBearer\s+)[A-Za-z0-9._~+/=-]+",
];

impl Redactor {
    /// The shapes, and the values of `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
    pub fn from_env() -> Redactor {
        let values = ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]
            .iter()
            .filter_map(|k| std::env::var(k).ok())
            .collect::<Vec<_>>();
        Redactor::new(values)
    }

    /// The shapes, and `secrets` (each also URL-encoded; values under 8 characters are
    /// ignored: they would scrub ordinary words).
    pub fn new<I, S>(secrets: I) -> Redactor
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let shapes = SHAPES
            .iter()
            .filter_map(|p| Regex::new(p).ok())
            .map(|r| (r, format!("${{1}}{REDACTED}")))
            .collect();
        let mut values: Vec<String> = Vec::new();
        for s in secrets {
            let s = s.as_ref().trim();
            if s.len() < 8 {
                continue;
            }
            values.push(s.to_owned());
            values.push(utf8_percent_encode(s, AWS_URI).to_string());
        }
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Redactor { shapes, values }
    }

    /// `line` with every secret replaced by [`REDACTED`].
    pub fn redact(&self, line: &str) -> String {
        let mut out = line.to_owned();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), REDACTED);
            }
        }
        for (re, with) in &self.shapes {
            if re.is_match(&out) {
                out = re.replace_all(&out, with.as_str()).into_owned();
            }
        }
        out
    }
}

/// A [`MakeWriter`] whose writers pass every line through a [`Redactor`].
#[derive(Debug, Clone)]
pub struct RedactingMakeWriter<M> {
    inner: M,
    redactor: Arc<Redactor>,
}

impl<M> RedactingMakeWriter<M> {
    pub fn new(inner: M, redactor: Arc<Redactor>) -> Self {
        RedactingMakeWriter { inner, redactor }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for RedactingMakeWriter<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            inner: self.inner.make_writer(),
            redactor: self.redactor.clone(),
            buf: Vec::new(),
        }
    }
}

/// Collects what one event writes and writes it redacted when flushed or dropped (the
/// formatter writes one whole line per writer).
pub struct RedactingWriter<W: Write> {
    inner: W,
    redactor: Arc<Redactor>,
    buf: Vec<u8>,
}

impl<W: Write> RedactingWriter<W> {
    fn emit(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.buf);
        let clean = self.redactor.redact(&text);
        self.buf.clear();
        self.inner.write_all(clean.as_bytes())?;
        self.inner.flush()
    }
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.emit()
    }
}

impl<W: Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        let _ = self.emit();
    }
}

/// The EMF document for one run (see "Embedded metric format specification").
pub fn emf_document(function: &str, report: &RunReport, timestamp_ms: u128) -> Value {
    let t = &report.trust_policy;
    let written = |n: usize| if report.dry_run { 0 } else { n };
    let usage = if t.max_chars == 0 {
        0.0
    } else {
        // Rounded to 0.1 %.
        ((t.size_chars as f64 / t.max_chars as f64) * 1000.0).round() / 10.0
    };
    let metrics = [
        ("AdminUsers", "Count", json!(report.admin_users)),
        (
            "ClustersUpdated",
            "Count",
            json!(report.count(ClusterStatus::Updated) + report.count(ClusterStatus::Created)),
        ),
        (
            "ClustersUnchanged",
            "Count",
            json!(report.count(ClusterStatus::Unchanged)),
        ),
        (
            "ClustersFailed",
            "Count",
            json!(report.count(ClusterStatus::Failed)),
        ),
        (
            "ClustersSkipped",
            "Count",
            json!(report.count(ClusterStatus::Skipped)),
        ),
        ("ConflictRetries", "Count", json!(report.conflict_retries)),
        ("TrustPolicySizeChars", "Count", json!(t.size_chars)),
        ("TrustPolicyMaxChars", "Count", json!(t.max_chars)),
        ("TrustPolicyUsage", "Percent", json!(usage)),
        // Grants and revocations: users written into or out of the trust policy
        // (0 on a dry run, which writes nothing).
        ("UsersAdded", "Count", json!(written(t.added.len()))),
        ("UsersRemoved", "Count", json!(written(t.removed.len()))),
        (
            "DanglingPrincipalsRemoved",
            "Count",
            json!(written(t.dangling_removed.len())),
        ),
        ("RunDurationMs", "Milliseconds", json!(report.duration_ms)),
    ];
    let mut doc = serde_json::Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms as u64,
            "CloudWatchMetrics": [{
                "Namespace": METRIC_NAMESPACE,
                "Dimensions": METRIC_DIMENSIONS,
                "Metrics": metrics.iter().map(|(n, u, _)| json!({"Name": n, "Unit": u})).collect::<Vec<_>>(),
            }],
        }),
    );
    doc.insert("Function".into(), json!(function));
    doc.insert("DryRun".into(), json!(report.dry_run));
    for (name, _, value) in metrics {
        doc.insert(name.into(), value);
    }
    Value::Object(doc)
}

/// What the functions emit, for the dashboard's check (tests/infra/emf_metrics.json,
/// kept equal to this by a test): the namespace, the dimension sets, the values of
/// the `Function` dimension, and each metric's name and unit.
pub fn emf_catalog() -> Value {
    let doc = emf_document(IAM_EVENTS_FUNCTION, &RunReport::new(false, "", 0), 0);
    let meta = &doc["_aws"]["CloudWatchMetrics"][0];
    json!({
        "namespace": meta["Namespace"],
        "dimensions": meta["Dimensions"],
        "functions": METRIC_FUNCTIONS,
        "metrics": meta["Metrics"],
    })
}

/// Prints one EMF line to stdout (Lambda ships it to CloudWatch Logs, which extracts
/// the metrics).
pub fn emit_emf(function: &str, report: &RunReport) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    println!("{}", emf_document(function, report, now));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Backend, ClusterReport};
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    const TOKEN: &str = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+abc/def=";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    #[test]
    fn redactor_shapes_compile() {
        for p in SHAPES {
            assert!(Regex::new(p).is_ok(), "{p}");
        }
        assert_eq!(Redactor::new::<_, &str>([]).shapes.len(), SHAPES.len());
    }

    #[test]
    fn redactor_scrubs_signing_material() {
        let r = Redactor::new::<_, &str>([]);
        let cases = [
            (
                "GET\\n/\\nAction=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAX%2F20261129%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date=20261129T000000Z&X-Amz-Expires=60&X-Amz-Security-Token=IQoJb3Jp%2F%2Fabc%3D&X-Amz-SignedHeaders=host\\n",
                "X-Amz-Security-Token=[redacted]&X-Amz-SignedHeaders",
            ),
            (
                "https://sts.amazonaws.com/?X-Amz-Signature=0123456789abcdef0123456789abcdef&x=1",
                "X-Amz-Signature=[redacted]&x=1",
            ),
            (
                "Authorization: AWS4-HMAC-SHA256 Credential=AKIA/x, SignedHeaders=host, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024",
                "Signature=[redacted]",
            ),
            (
                "token k8s-aws-v1.aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbS8_QWN0aW9u end",
                "token k8s-aws-v1.[redacted] end",
            ),
            (
                "authorization: Bearer eyJhbGciOi.abc-def_x",
                "Bearer [redacted]",
            ),
            (
                "x-amz-security-token:IQoJb3Jp//abc=\\nhost:sts",
                "x-amz-security-token:[redacted]\\nhost",
            ),
            (
                r#"{\"x-amz-security-token\": \"IQoJb3Jp//abc=\", "#,
                r#"{\"x-amz-security-token\": \"[redacted]\", "#,
            ),
        ];
        for (line, want) in cases {
            let out = r.redact(line);
            assert!(out.contains(want), "{line}\n -> {out}\n wanted {want}");
            assert!(!out.contains("IQoJb3Jp"), "{out}");
            assert!(!out.contains("0123456789abcdef"), "{out}");
        }
        // Ordinary lines are left alone.
        let plain = r#"{"level":"INFO","message":"trust policy updated","added":"arn:aws:iam::123456789012:user/dave"}"#;
        assert_eq!(r.redact(plain), plain);
    }

    #[test]
    fn redactor_scrubs_known_values_raw_and_url_encoded() {
        let r = Redactor::new([SECRET, TOKEN, "short"]);
        let encoded = utf8_percent_encode(TOKEN, AWS_URI).to_string();
        assert_ne!(encoded, TOKEN);
        let line = format!("a {SECRET} b {TOKEN} c {encoded} d short");
        let out = r.redact(&line);
        assert_eq!(out, "a [redacted] b [redacted] c [redacted] d short");
    }

    /// A writer the tests read back.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            if let Ok(mut b) = self.0.lock() {
                b.extend_from_slice(data);
            }
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Capture {
            self.clone()
        }
    }

    #[test]
    fn trace_filter_cannot_lift_the_ceiling_and_lines_are_redacted() {
        let cap = Capture::default();
        let redactor = Arc::new(Redactor::new([TOKEN]));
        let writer = RedactingMakeWriter::new(cap.clone(), redactor);
        // As if RUST_LOG asked for everything, and for aws_sigv4 by name.
        let env = EnvFilter::new("trace,aws_sigv4=trace,hyper=trace");
        let subscriber = tracing_subscriber::registry().with(json_layer_with(env, writer));
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "aws_sigv4::http_request::sign", canonical_request = %format!("X-Amz-Security-Token={TOKEN}"), "calculated signing parameters");
            tracing::trace!(target: "hyper::proto::h1", "a hyper trace");
            tracing::trace!(target: "eks_access_sync::engine", "our own trace");
            tracing::info!(target: "aws_sigv4::http_request::sign", "info from sigv4");
            tracing::info!(target: "eks_access_sync::engine", secret = %TOKEN, "leak attempt");
        });
        let text =
            String::from_utf8(cap.0.lock().map(|b| b.clone()).unwrap_or_default()).expect("utf-8");
        assert!(!text.contains("calculated signing parameters"), "{text}");
        assert!(!text.contains("a hyper trace"), "{text}");
        assert!(text.contains("our own trace"), "{text}");
        assert!(text.contains("info from sigv4"), "{text}");
        assert!(text.contains(r#""secret":"[redacted]""#), "{text}");
        assert!(!text.contains(TOKEN), "{text}");
        assert_eq!(text.lines().count(), 3, "{text}");
    }

    #[test]
    fn emf_shape() {
        let mut r = RunReport::new(false, "eks-admin", 2048);
        r.admin_users = 3;
        r.conflict_retries = 2;
        r.trust_policy.size_chars = 512;
        for status in [
            ClusterStatus::Updated,
            ClusterStatus::Created,
            ClusterStatus::Failed,
            ClusterStatus::Unchanged,
        ] {
            r.clusters.push(ClusterReport {
                name: "c".into(),
                region: "us-east-1".into(),
                backend: Backend::ConfigMap,
                status,
                error: None,
                changes: vec![],
            });
        }
        let d = emf_document("iam-events", &r, 1_700_000_000_000);
        let meta = &d["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(d["_aws"]["Timestamp"], 1_700_000_000_000u64);
        assert_eq!(meta["Namespace"], "EksAccessSync");
        assert_eq!(meta["Dimensions"], json!([["Function"]]));
        let names: Vec<&str> = meta["Metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .map(|m| m["Name"].as_str().expect("name"))
            .collect();
        // Every declared metric has a top-level value (EMF rejects the document otherwise).
        for n in &names {
            assert!(d.get(*n).is_some(), "{n} has no value");
        }
        // The first nine, as they always were; then the newer ones.
        assert_eq!(
            names[..9],
            [
                "AdminUsers",
                "ClustersUpdated",
                "ClustersUnchanged",
                "ClustersFailed",
                "ClustersSkipped",
                "ConflictRetries",
                "TrustPolicySizeChars",
                "TrustPolicyMaxChars",
                "TrustPolicyUsage"
            ]
        );
        assert_eq!(
            names[9..],
            [
                "UsersAdded",
                "UsersRemoved",
                "DanglingPrincipalsRemoved",
                "RunDurationMs"
            ]
        );
        assert_eq!(d["Function"], "iam-events");
        assert_eq!(d["AdminUsers"], 3);
        assert_eq!(d["ClustersUpdated"], 2);
        assert_eq!(d["ClustersFailed"], 1);
        assert_eq!(d["ClustersUnchanged"], 1);
        assert_eq!(d["ClustersSkipped"], 0);
        assert_eq!(d["ConflictRetries"], 2);
        assert_eq!(d["TrustPolicySizeChars"], 512);
        assert_eq!(d["TrustPolicyMaxChars"], 2048);
        assert_eq!(d["TrustPolicyUsage"], 25.0);
        assert_eq!(meta["Metrics"][8]["Unit"], "Percent");
    }

    fn report_with_changes(dry_run: bool) -> RunReport {
        let mut r = RunReport::new(dry_run, "eks-admin", 2048);
        r.trust_policy.changed = true;
        r.trust_policy.added = vec!["arn:aws:iam::111122223333:user/a".into(); 3];
        r.trust_policy.removed = vec!["arn:aws:iam::111122223333:user/b".into(); 2];
        r.trust_policy.dangling_removed = vec!["AIDAEXAMPLE".into()];
        r.duration_ms = 1234;
        r
    }

    #[test]
    fn emf_counts_grants_revocations_and_the_runs_duration() {
        let d = emf_document("reconcile", &report_with_changes(false), 0);
        assert_eq!(d["UsersAdded"], 3);
        assert_eq!(d["UsersRemoved"], 2);
        assert_eq!(d["DanglingPrincipalsRemoved"], 1);
        assert_eq!(d["RunDurationMs"], 1234);
        let units: BTreeMap<&str, &str> = d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .map(|m| {
                (
                    m["Name"].as_str().expect("name"),
                    m["Unit"].as_str().expect("unit"),
                )
            })
            .collect();
        assert_eq!(units["RunDurationMs"], "Milliseconds");
        assert_eq!(units["UsersAdded"], "Count");
        // A dry run grants and revokes nothing, whatever it would change.
        let d = emf_document("reconcile", &report_with_changes(true), 0);
        assert_eq!(d["UsersAdded"], 0);
        assert_eq!(d["UsersRemoved"], 0);
        assert_eq!(d["DanglingPrincipalsRemoved"], 0);
        assert_eq!(d["DryRun"], true);
        assert_eq!(d["RunDurationMs"], 1234);
    }

    /// tests/infra/emf_metrics.json is what the code emits: the template tests check
    /// the dashboard against it. `UPDATE_EMF_METRICS=1` rewrites it.
    #[test]
    fn emf_metrics_json_is_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/infra/emf_metrics.json");
        let want = format!(
            "{}\n",
            serde_json::to_string_pretty(&emf_catalog()).expect("json")
        );
        if std::env::var_os("UPDATE_EMF_METRICS").is_some() {
            std::fs::write(&path, &want).expect("write emf_metrics.json");
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} is out of date with telemetry.rs; rerun with UPDATE_EMF_METRICS=1:\n{want}",
            path.display()
        );
        let catalog = emf_catalog();
        assert_eq!(catalog["namespace"], METRIC_NAMESPACE);
        assert_eq!(catalog["functions"], json!(["iam-events", "reconcile"]));
        assert_eq!(catalog["metrics"].as_array().map(Vec::len), Some(13));
    }
}

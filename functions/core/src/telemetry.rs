//! JSON logs through `tracing`, and CloudWatch embedded-metric-format (EMF) figures.

use std::io::{self, Write};
use std::sync::{Arc, LazyLock};
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

use crate::output::report::{ClusterStatus, RunReport};

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

/// [`SHAPES`] compiled, once per process and on first use: compiling them takes about
/// a millisecond, which a Lambda's start-up would pay before its first `next` although
/// nothing is logged then (BENCHMARKS.md, section 1).
fn shapes() -> &'static [(Regex, String)] {
    static COMPILED: LazyLock<Vec<(Regex, String)>> = LazyLock::new(|| {
        SHAPES
            .iter()
            .filter_map(|p| Regex::new(p).ok())
            .map(|r| (r, format!("${{1}}{REDACTED}")))
            .collect()
    });
    &COMPILED
}

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
        Redactor { values }
    }

    /// `line` with every secret replaced by [`REDACTED`].
    pub fn redact(&self, line: &str) -> String {
        let mut out = line.to_owned();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), REDACTED);
            }
        }
        for (re, with) in shapes() {
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
mod tests;

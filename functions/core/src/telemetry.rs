//! JSON logs through `tracing`, and CloudWatch embedded-metric-format (EMF) figures.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tracing_subscriber::EnvFilter;

use crate::report::{ClusterStatus, RunReport};

/// CloudWatch namespace of every metric.
pub const METRIC_NAMESPACE: &str = "EksAccessSync";

/// Where logs go: stderr for the CLI (stdout is for the plan), stdout for Lambda.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    Stdout,
    Stderr,
}

/// JSON logs, filtered by `RUST_LOG` (default `info`). Safe to call twice (the second
/// call does nothing).
pub fn init_tracing(target: LogTarget) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(filter);
    let _ = match target {
        LogTarget::Stdout => builder.with_writer(std::io::stdout).try_init(),
        LogTarget::Stderr => builder.with_writer(std::io::stderr).try_init(),
    };
}

/// The EMF document for one run (see "Embedded metric format specification").
pub fn emf_document(function: &str, report: &RunReport, timestamp_ms: u128) -> Value {
    let t = &report.trust_policy;
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
    ];
    let mut doc = serde_json::Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms as u64,
            "CloudWatchMetrics": [{
                "Namespace": METRIC_NAMESPACE,
                "Dimensions": [["Function"]],
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
        assert_eq!(names.len(), 9);
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
}

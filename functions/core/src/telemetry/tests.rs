//! Unit tests of `telemetry`.

use super::*;
use crate::{model::cluster::Backend, output::report::ClusterReport};

use std::collections::BTreeMap;
use std::sync::Mutex;

const TOKEN: &str = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+abc/def=";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

#[test]
fn redactor_shapes_compile() {
    for p in SHAPES {
        assert!(Regex::new(p).is_ok(), "{p}");
    }
    assert_eq!(shapes().len(), SHAPES.len());
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
            account: String::new(),
            region: "us-east-1".into(),
            backend: Backend::ConfigMap,
            status,
            error: None,
            changes: vec![],
            tiers: Vec::new(),
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
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/infra/emf_metrics.json");
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

//! Never hang (issue defect 6): an endpoint that accepts connections and never answers
//! ends the run on its own, with a failed report naming the service and "timed out".
//!
//! IAM, EKS and DynamoDB: the CLI binary (the product's own SDK configuration) with one
//! `AWS_ENDPOINT_URL_<SERVICE>` pointing at a silent listener. Kubernetes: the kube
//! adapter on a cluster endpoint that is a silent listener.

use std::time::Duration;

use crate::support::{World, cli_binary, command, repo_root, run};
use base64::Engine as _;
use eks_access_sync::{
    adapters::kube::client::kube_client, adapters::kube::store::KubeAwsAuth, ports::AwsAuthStore,
};
use tokio::net::TcpListener;

/// A TCP listener that accepts every connection and never answers (holds it open).
async fn silent_listener() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    format!("127.0.0.1:{}", addr.port())
}

/// Generous: the product's own bounds end a run in about 30 s per hung call.
const GUARD: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_aws_endpoints_end_the_run_with_a_timeout() {
    let w = World::start().await;
    let table = w.sb.create_lock_table().await.expect("lease table");
    let bin = cli_binary();
    let bin = bin.to_str().expect("utf-8 path");
    let home = tempfile::tempdir().expect("tempdir");
    let silent = format!("http://{}", silent_listener().await);

    // (endpoint variable, what the report must name)
    let cases = [
        ("AWS_ENDPOINT_URL_IAM", "IAM "),
        ("AWS_ENDPOINT_URL_EKS", "EKS "),
        ("AWS_ENDPOINT_URL_DYNAMODB", "DynamoDB "),
    ];
    let runs = cases.iter().map(|(var, _)| {
        let mut c = command(&w.sb, bin, home.path());
        c.env(var, &silent)
            .env("TRUST_LOCK_TABLE", &table)
            .args(["reconcile", "--output", "json"])
            .current_dir(repo_root())
            .kill_on_drop(true);
        tokio::spawn(run(c))
    });
    let runs: Vec<_> = runs.collect();
    let results = tokio::time::timeout(GUARD, async {
        let mut out = Vec::new();
        for r in runs {
            out.push(r.await.expect("run task"));
        }
        out
    })
    .await
    .expect("run did not end");
    for ((var, service), (code, out, err)) in cases.iter().zip(results) {
        assert_eq!(code, 1, "{var}: the run fails\n{out}\n{err}");
        let report: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{var}: report: {e}\n{out}"));
        let text = report.to_string();
        let named = text
            .split('"')
            .any(|s| s.contains(service) && s.contains("timed out"));
        assert!(
            named,
            "{var}: the report names {service:?} and \"timed out\":\n{out}\n{err}"
        );
        assert!(
            !text.contains("SendRequest") && !text.contains("dispatch failure"),
            "{var}: a timeout is reported as a timeout:\n{out}"
        );
    }
    w.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_cluster_endpoint_ends_with_a_timeout() {
    let w = World::start().await;
    let (_, ca) = w.describe("prod").await;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(ca)
        .expect("CA is base64");
    let (ak, sk) = w.sb.operator_credentials();
    let creds = aws_credential_types::Credentials::new(ak, sk, None, None, "operator");
    let endpoint = format!("https://{}", silent_listener().await);
    let client = kube_client(&endpoint, &pem, &w.token(&creds, "prod")).expect("client");
    let store = KubeAwsAuth::new(client);
    let err = tokio::time::timeout(GUARD, store.read())
        .await
        .expect("run did not end")
        .expect_err("a silent API server is an error");
    let text = err.to_string();
    assert!(
        text.contains("Kubernetes") && text.contains("timed out"),
        "the error names Kubernetes and says it timed out: {text}"
    );
    w.sb.shutdown().await;
}

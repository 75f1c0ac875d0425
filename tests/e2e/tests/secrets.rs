//! No secret in any log line at any level (issue defect 4).
//!
//! The CLI binary (`eks-access-sync`, the product's own `init_tracing`) runs the
//! end-to-end story at `RUST_LOG=trace` with *session* credentials, as Lambda has them
//! (STS AssumeRole of a functions role that `bootstrap` gave access to the clusters):
//! plan, reconcile, and handle-event for create, untag, tag and delete, with the
//! clusters of a member account reached through its member role (issue 12), with the
//! DynamoDB lease on. Every line it prints (stdout and stderr) is searched for every
//! secret the sandbox handed out or holds (secret keys, session tokens raw and
//! URL-encoded) and for signatures and bearer tokens of any kind.
//!
//! Prints `secrets: lines=N scanned_secrets=K hits=H` (a soak report quotes it).
//! `SECRETS_LOG_DUMP=/path` keeps every line it scanned.

use std::collections::BTreeSet;

use crate::support::{World, cli_binary, command, repo_root, run};
use eks_sandbox::aws::lock;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use regex::Regex;

/// AWS URI encoding: everything but unreserved characters.
const AWS_URI: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

const FUNCTIONS_ROLE: &str = "eks-access-sync-functions";

/// A member account whose clusters the story reaches too.
const MEMBER: &str = "444455556666";

/// The one admin tier of the environment variables, and the member account.
const ACCESS: &str = "tiers:
  - name: admin
    role: eks-admin
    members: { tag: eks-access=admin }
    kubernetes: { policy: AmazonEKSClusterAdminPolicy, groups: [system:masters] }
accounts:
  - id: \"444455556666\"
";

/// What a log line must never hold, whatever the secret: (name, pattern). A redacted
/// value (`[redacted]`) does not match.
fn shapes() -> Vec<(&'static str, Regex)> {
    [
        ("X-Amz-Signature", r"(?i)X-Amz-Signature=[0-9a-f]{16}"),
        ("Signature", r"Signature=[0-9a-f]{16}"),
        (
            "X-Amz-Security-Token",
            r"(?i)X-Amz-Security-Token[=:]\s*[A-Za-z0-9%+/]{16}",
        ),
        ("EKS token", r"k8s-aws-v1\.[A-Za-z0-9_-]{16}"),
        ("Bearer", r"(?i)Bearer\s+[A-Za-z0-9._~+/-]{16}"),
    ]
    .into_iter()
    .map(|(n, p)| (n, Regex::new(p).expect("pattern")))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_any_trace_line() {
    let w = World::start().await;
    let table = w.sb.create_lock_table().await.expect("lease table");
    let bin = cli_binary();
    let bin = bin.to_str().expect("utf-8 path");
    let home = tempfile::tempdir().expect("tempdir");

    // The functions' role: the operator may assume it (standing in for Lambda's service
    // principal); bootstrap gives it access to the tagged clusters.
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": w.sb.operator_arn()}, "Action": "sts:AssumeRole"}]});
    let role_arn = w
        .iam
        .create_role()
        .role_name(FUNCTIONS_ROLE)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("CreateRole")
        .role
        .expect("role")
        .arn;
    // It may assume the member role of member accounts (issue 12): the reconcile reaches
    // a member account's clusters with a session of it, at trace too.
    let assume_members = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRole",
        "Resource": "arn:aws:iam::*:role/eks-access-sync-member"}]});
    w.iam
        .put_role_policy()
        .role_name(FUNCTIONS_ROLE)
        .policy_name("member-accounts")
        .policy_document(assume_members.to_string())
        .send()
        .await
        .expect("PutRolePolicy");
    w.sb.seed_member(&eks_sandbox::aws::MemberSeed {
        account_id: MEMBER.into(),
        hub_function_role_arn: Some(role_arn.clone()),
        cluster_prefix: Some("sec".into()),
        ..Default::default()
    })
    .await
    .expect("member account");
    let session = aws_sdk_sts::Client::new(&w.sdk)
        .assume_role()
        .role_arn(&role_arn)
        .role_session_name("eks-access-sync")
        .send()
        .await
        .expect("AssumeRole")
        .credentials
        .expect("credentials");

    let mut lines: Vec<String> = Vec::new();
    let mut record = |what: &str, code: i32, out: String, err: String, want: i32| {
        assert_eq!(code, want, "{what}\n{out}\n{err}");
        lines.extend(out.lines().chain(err.lines()).map(str::to_owned));
    };

    // As the operator (a cluster admin), also at trace.
    for cluster in ["prod", "staging"] {
        let mut c = command(&w.sb, bin, home.path());
        c.env("RUST_LOG", "trace").args([
            "bootstrap",
            "--cluster",
            cluster,
            "--role-arn",
            &role_arn,
        ]);
        let (code, out, err) = run(c).await;
        record("bootstrap", code, out, err, 0);
    }

    // As the functions: session credentials, the lease on, everything at trace.
    let cli = |args: &[&str]| {
        let mut c = command(&w.sb, bin, home.path());
        c.env("RUST_LOG", "trace")
            .env("TRUST_LOCK_TABLE", &table)
            .env("ACCESS_CONFIG", ACCESS)
            .env("AWS_ACCESS_KEY_ID", session.access_key_id())
            .env("AWS_SECRET_ACCESS_KEY", session.secret_access_key())
            .env("AWS_SESSION_TOKEN", session.session_token())
            .args(args)
            .current_dir(repo_root());
        run(c)
    };
    let (code, out, err) = cli(&["plan", "--exit-code"]).await;
    record("plan", code, out, err, 2);
    let (code, out, err) = cli(&["reconcile"]).await;
    record("reconcile", code, out, err, 0);

    w.create_user("dave", true).await;
    let (code, out, err) = cli(&["handle-event", "events/iam-create-user-tagged.json"]).await;
    record("CreateUser", code, out, err, 0);
    w.iam
        .untag_user()
        .user_name("dave")
        .tag_keys(crate::support::ADMIN_TAG.0)
        .send()
        .await
        .expect("UntagUser");
    let (code, out, err) = cli(&["handle-event", "events/iam-untag-user.json"]).await;
    record("UntagUser", code, out, err, 0);
    w.iam
        .tag_user()
        .user_name("dave")
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key(crate::support::ADMIN_TAG.0)
                .value(crate::support::ADMIN_TAG.1)
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("TagUser");
    let (code, out, err) = cli(&["handle-event", "events/iam-tag-user.json"]).await;
    record("TagUser", code, out, err, 0);
    w.delete_user("dave").await;
    let (code, out, err) = cli(&["handle-event", "events/iam-delete-user.json"]).await;
    record("DeleteUser", code, out, err, 0);
    let (code, out, err) = cli(&["reconcile", "--output", "json"]).await;
    // The member's tagged clusters were reached (through the member role's session).
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
    let member_ok = report["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .filter(|c| c["account"] == MEMBER && c["status"] != "failed")
        .count();
    assert_eq!(member_ok, 2, "{out}");
    record("reconcile --output json", code, out, err, 0);
    let (code, out, err) = cli(&["plan", "--exit-code"]).await;
    record("plan in step", code, out, err, 0);
    // For a look at what trace prints: SECRETS_LOG_DUMP=/path keeps every line.
    if let Ok(path) = std::env::var("SECRETS_LOG_DUMP") {
        std::fs::write(&path, lines.join("\n")).expect("log dump");
    }

    // Every secret the sandbox knows: each credential's secret key and session token,
    // raw and URL-encoded.
    let mut secrets: BTreeSet<String> = BTreeSet::new();
    {
        let shared = w.sb.shared();
        let st = lock(&shared);
        for c in st.credentials.values() {
            secrets.insert(c.secret_access_key.clone());
            if let Some(t) = &c.session_token {
                secrets.insert(t.clone());
            }
        }
    }
    secrets.insert(w.sb.operator_credentials().1);
    secrets.insert(session.secret_access_key().to_owned());
    secrets.insert(session.session_token().to_owned());
    let encoded: Vec<String> = secrets
        .iter()
        .map(|s| utf8_percent_encode(s, AWS_URI).to_string())
        .collect();
    secrets.extend(encoded);
    secrets.retain(|s| s.len() >= 8);
    assert!(
        secrets.contains(session.session_token()),
        "the session token is scanned for"
    );

    let shapes = shapes();
    let mut hits: Vec<String> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let mut what: Vec<&str> = secrets
            .iter()
            .filter(|s| line.contains(s.as_str()))
            .map(|_| "a sandbox secret")
            .collect();
        what.extend(
            shapes
                .iter()
                .filter(|(_, r)| r.is_match(line))
                .map(|(n, _)| *n),
        );
        if !what.is_empty() {
            let head: String = line.chars().take(160).collect();
            hits.push(format!("line {i}: {what:?}: {head}"));
        }
    }
    let trace_lines = lines
        .iter()
        .filter(|l| l.contains("\"level\":\"TRACE\""))
        .count();
    let summary = format!(
        "secrets: lines={} scanned_secrets={} hits={}",
        lines.len(),
        secrets.len(),
        hits.len()
    );
    println!("{summary}");
    eprintln!("{summary}");

    // Not vacuous: trace is on, the SDK and the kube client logged their requests.
    assert!(
        lines.len() >= 1000 && trace_lines >= 500,
        "too few lines to prove anything: {} lines, {trace_lines} at TRACE",
        lines.len()
    );
    for target in ["aws_smithy_runtime", "hyper", "kube"] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("\"target\":\"{target}"))),
            "no trace line from {target}"
        );
    }
    assert!(
        hits.is_empty(),
        "{} log lines hold secrets:\n{}",
        hits.len(),
        hits.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
    w.sb.shutdown().await;
}

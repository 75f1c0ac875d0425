//! The shipped binaries as Lambda runs them: each function's release `bootstrap` (a
//! process, not the handler in-process) against the local Lambda Runtime API and the
//! sandbox, every file of `events/` through the function it belongs to (as
//! `make invoke-<event>` routes it: `iam-*` to iam-events, the rest to reconcile),
//! plus payloads that must be refused with a readable `errorType`.
//!
//! The binaries: `target/release/{iam-events,reconcile}` next to this test's target
//! directory (`make test` builds them first: `cargo build --release -p iam-events -p
//! reconcile`), or `LAMBDA_BIN_DIR` (a directory holding `<name>` or, as cargo-lambda
//! lays them out, `<name>/bootstrap`). `LAMBDA_RUNNER` runs them under another program
//! (`make verify-arm64`: `qemu-aarch64-static -L /usr/aarch64-linux-gnu`).

#[path = "../../e2e/tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use eks_sandbox::aws::seed::LOCK_TABLE;
use lambda_runtime_api::{Function, Launch, Outcome, RuntimeApi};
use serde_json::{Value, json};
use support::{ADMIN_ROLE, World, managed_principals, parse_env, repo_root, role_arn, user_arn};

/// The event files each function is sent (every file of `events/` is in one list).
const IAM_EVENTS: &[&str] = &[
    "iam-create-user-failed",
    "iam-create-user-untagged",
    "iam-tag-user",
    "iam-create-user-tagged",
    "iam-untag-user",
    "iam-delete-user",
    "iam-add-user-to-group",
    "iam-remove-user-from-group",
    "iam-delete-group",
];
const RECONCILE_EVENTS: &[&str] = &[
    "reconcile-dry-run",
    "reconcile-cluster",
    "reconcile-apply",
    "schedule",
    "eks-create-cluster",
    "eks-tag-resource",
];

/// The release binary of `name` (see the module documentation).
fn binary(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("LAMBDA_BIN_DIR") {
        let dir = PathBuf::from(dir);
        let found = [dir.join(name).join("bootstrap"), dir.join(name)]
            .into_iter()
            .find(|p| p.is_file());
        return found.unwrap_or_else(|| panic!("no {name} in LAMBDA_BIN_DIR={}", dir.display()));
    }
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/<test>-<hash> -> target/release/<name>
    let bin = exe
        .ancestors()
        .nth(3)
        .expect("target dir")
        .join("release")
        .join(name);
    assert!(
        bin.is_file(),
        "{} not found: build it with `cargo build --release -p iam-events -p reconcile` (make test does)",
        bin.display()
    );
    bin
}

fn file(name: &str) -> Vec<u8> {
    let path = repo_root().join("events").join(format!("{name}.json"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// A function process against its own runtime API, with the sandbox's environment
/// and the configuration infra/template.yaml gives it.
struct Lambda {
    api: RuntimeApi,
    process: Function,
    name: &'static str,
}

impl Lambda {
    async fn start(w: &World, name: &'static str) -> Lambda {
        let api = RuntimeApi::start(name).await.expect("runtime API");
        let (mut env, _unset) = parse_env(&w.sb.env_lines());
        env.extend([
            ("ADMIN_ROLE_NAME".to_owned(), ADMIN_ROLE.to_owned()),
            ("TRUST_LOCK_TABLE".to_owned(), LOCK_TABLE.to_owned()),
            ("RUST_LOG".to_owned(), "info".to_owned()),
            ("HOME".to_owned(), "/nonexistent".to_owned()),
            (
                "AWS_CONFIG_FILE".to_owned(),
                "/nonexistent/config".to_owned(),
            ),
            (
                "AWS_SHARED_CREDENTIALS_FILE".to_owned(),
                "/nonexistent/credentials".to_owned(),
            ),
        ]);
        let runner = std::env::var("LAMBDA_RUNNER").unwrap_or_default();
        let launch = Launch::new(&binary(name), name).with_runner(&runner);
        let process = Function::spawn(&launch, &api, &env).expect("spawn the function");
        Lambda { api, process, name }
    }

    async fn send(&mut self, payload: impl Into<Vec<u8>>, what: &str) -> Outcome {
        let outcome = self
            .api
            .invoke(payload.into())
            .await
            .unwrap_or_else(|e| panic!("{} {what}: {e}\n{}", self.name, self.process.output()));
        if let Outcome::InitError { .. } = outcome {
            panic!(
                "{} did not start: {outcome:?}\n{}",
                self.name,
                self.process.output()
            );
        }
        outcome
    }

    async fn event(&mut self, name: &str) -> Outcome {
        self.send(file(name), name).await
    }

    async fn ok(&mut self, name: &str) -> Value {
        match self.event(name).await {
            Outcome::Response(v) => v,
            other => panic!("{name}: {other:?}\n{}", self.process.output()),
        }
    }

    /// The process is still serving (an error is an invocation's, not the process's)
    /// and every result went to an id the API handed out.
    fn assert_healthy(&mut self) {
        assert_eq!(self.process.exited(), None, "{} exited", self.name);
        assert_eq!(self.api.protocol_errors(), Vec::<String>::new());
    }
}

/// `errorType` is a name a person reads (and an alarm filters on), not a Rust path.
fn assert_readable(error_type: &str) {
    assert!(
        ["BadRequest", "InputRefused", "RunFailed"].contains(&error_type),
        "errorType {error_type:?} is not one of the functions' error names"
    );
}

fn cluster_names(report: &Value) -> Vec<String> {
    report["clusters"]
        .as_array()
        .unwrap_or_else(|| panic!("no clusters in {report}"))
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn status_of(report: &Value, cluster: &str) -> String {
    report["clusters"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == cluster))
        .map(|c| c["status"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_else(|| panic!("{cluster} not in {report}"))
}

#[test]
fn every_event_file_is_sent_to_its_function() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(repo_root().join("events"))
        .expect("events/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".json").map(str::to_owned))
        .collect();
    let sent: BTreeSet<String> = IAM_EVENTS
        .iter()
        .chain(RECONCILE_EVENTS)
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(sent, on_disk);
    assert!(IAM_EVENTS.iter().all(|e| e.starts_with("iam-")));
    assert!(RECONCILE_EVENTS.iter().all(|e| !e.starts_with("iam-")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_events_binary_answers_every_iam_event() {
    let w = World::start().await;
    let mut f = Lambda::start(&w, "iam-events").await;
    let dave = user_arn("dave");

    // The first invocation is the cold one: a failed CloudTrail call is ignored.
    let out = f.ok("iam-create-user-failed").await;
    let reason = out["ignored"].as_str().expect("ignored");
    assert!(reason.contains("EntityAlreadyExistsException"), "{out}");

    // An untagged user touches no tier: no role is read, no cluster visited (the
    // event pays only for the tiers it may change; full runs repair the rest).
    w.create_user("erin", false).await;
    let mapped_before = w.aws_auth_data("prod").get("mapRoles").cloned();
    let out = f.ok("iam-create-user-untagged").await;
    assert_eq!(out["trustPolicy"]["added"], json!([]), "{out}");
    assert_eq!(cluster_names(&out), Vec::<String>::new(), "{out}");
    assert_eq!(
        w.aws_auth_data("prod").get("mapRoles").cloned(),
        mapped_before
    );

    // dave carries the admin tag: TagUser puts him in the trust policy.
    w.create_user("dave", true).await;
    let out = f.ok("iam-tag-user").await;
    assert_eq!(out["trustPolicy"]["added"], json!([dave]), "{out}");
    assert_eq!(out["trustPolicy"]["roleName"], ADMIN_ROLE);
    assert!(managed_principals(&w.trust_policy().await).contains(&dave));
    // It touches the admin tier: the run also maps the admin role where it is missing.
    assert_eq!(status_of(&out, "prod"), "updated", "{out}");
    assert!(
        w.aws_auth_data("prod")["mapRoles"].contains(&role_arn()),
        "prod maps the admin role"
    );

    // The same user's CreateUser afterwards (a replay) changes nothing.
    let out = f.ok("iam-create-user-tagged").await;
    assert_eq!(out["trustPolicy"]["added"], json!([]), "{out}");
    assert_eq!(out["trustPolicy"]["changed"], false, "{out}");

    // The tag removed: UntagUser takes him out.
    w.iam
        .untag_user()
        .user_name("dave")
        .tag_keys("eks-access")
        .send()
        .await
        .expect("UntagUser");
    let out = f.ok("iam-untag-user").await;
    assert_eq!(out["trustPolicy"]["removed"], json!([dave]), "{out}");
    assert!(!managed_principals(&w.trust_policy().await).contains(&dave));

    // Tagged again, then deleted: DeleteUser takes him out.
    w.iam
        .tag_user()
        .user_name("dave")
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("eks-access")
                .value("admin")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("TagUser");
    let out = f.ok("iam-tag-user").await;
    assert_eq!(out["trustPolicy"]["added"], json!([dave]), "{out}");
    // Deleted: IAM shows the trust policy's entry as the deleted user's unique ID,
    // which DeleteUser removes as dangling.
    w.delete_user("dave").await;
    let out = f.ok("iam-delete-user").await;
    let dangling = out["trustPolicy"]["danglingRemoved"].as_array().cloned();
    assert!(
        dangling.is_some_and(|d| d.len() == 1 && d[0].as_str().is_some_and(|id| id.starts_with("AIDA"))),
        "{out}"
    );
    assert_eq!(out["trustPolicy"]["changed"], true, "{out}");
    let left = managed_principals(&w.trust_policy().await);
    assert!(
        !left.iter().any(|p| p == &dave || p.starts_with("AIDA")),
        "{left:?}"
    );

    // Group events: under the single-tier variables no tier selects by group, so
    // each is ignored with that reason (and nothing is read or written).
    for name in [
        "iam-add-user-to-group",
        "iam-remove-user-from-group",
        "iam-delete-group",
    ] {
        let out = f.ok(name).await;
        let reason = out["ignored"].as_str().unwrap_or_default();
        assert!(reason.contains("selects no tier"), "{name}: {out}");
    }

    // Not an EventBridge event: ignored (succeeds, so it is not retried).
    let out = f.send(&b"{\"dryRun\": true}"[..], "a manual payload").await;
    let reason = out.response()["ignored"].as_str().map(str::to_owned);
    assert!(
        reason.is_some_and(|r| r.contains("not an EventBridge event")),
        "manual payload to iam-events"
    );
    refusals(&mut f).await;
    f.assert_healthy();
}

/// Payloads a function must refuse with a readable `errorType` (and keep serving).
async fn refusals(f: &mut Lambda) {
    // Not JSON at all: Lambda's Invoke API refuses that, but the runtime API is the
    // function's contract and a test harness or another invoker may send it.
    let (ty, msg) = f.send(&b"{not json"[..], "not JSON").await.error();
    assert_readable(&ty);
    assert!(!msg.is_empty(), "{ty} without a message");
    // Over EventBridge's 256 KiB: refused unread.
    let big = json!({"detail": "x".repeat(300 * 1024)}).to_string();
    let (ty, msg) = f.send(big, "oversized").await.error();
    assert_eq!(ty, "InputRefused", "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_binary_answers_every_other_event() {
    let w = World::start().await;
    let mut f = Lambda::start(&w, "reconcile").await;

    // Cold: a dry run plans and writes nothing.
    let writes = w.all_writes().len();
    let out = f.ok("reconcile-dry-run").await;
    assert_eq!(out["dryRun"], true, "{out}");
    assert!(out["plan"].is_object(), "a dry run carries its plan: {out}");
    assert_eq!(w.all_writes().len(), writes, "a dry run wrote");

    // prod only; the trust policy still reconciled (the seed's tagged alice added).
    let out = f.ok("reconcile-cluster").await;
    assert_eq!(cluster_names(&out), ["prod"], "{out}");
    assert_eq!(status_of(&out, "prod"), "updated", "{out}");
    assert_eq!(
        out["trustPolicy"]["added"],
        json!([user_arn("alice")]),
        "{out}"
    );
    assert!(w.aws_auth_data("prod")["mapRoles"].contains(&role_arn()));

    let out = f.ok("reconcile-apply").await;
    assert_eq!(out["dryRun"], false, "{out}");
    let names = cluster_names(&out);
    assert!(names.contains(&"staging".to_owned()), "{out}");
    assert!(
        !names.contains(&"legacy".to_owned()),
        "untagged legacy: {out}"
    );

    let out = f.ok("schedule").await;
    assert!(
        cluster_names(&out)
            .iter()
            .all(|c| c != "legacy" && status_of(&out, c) == "unchanged"),
        "after the apply everything is in sync: {out}"
    );

    // EKS events: that cluster only.
    w.create_api_cluster("prod-2").await;
    let out = f.ok("eks-create-cluster").await;
    assert_eq!(cluster_names(&out), ["prod-2"], "{out}");
    assert_eq!(status_of(&out, "prod-2"), "created", "{out}");
    assert!(
        out["clusters"][0]["changes"][0]
            .as_str()
            .is_some_and(|c| c.contains("create access entry")),
        "{out}"
    );

    w.eks
        .tag_resource()
        .resource_arn(format!(
            "arn:aws:eks:us-east-1:{}:cluster/legacy",
            lambda_runtime_api::ACCOUNT
        ))
        .tags("eks-access-sync/managed", "true")
        .send()
        .await
        .expect("TagResource");
    let out = f.ok("eks-tag-resource").await;
    assert_eq!(cluster_names(&out), ["legacy"], "{out}");
    assert_eq!(status_of(&out, "legacy"), "updated", "{out}");
    assert!(w.aws_auth_data("legacy")["mapRoles"].contains(&role_arn()));

    // An IAM event is the other function's.
    let out = f
        .send(file("iam-tag-user"), "an IAM event")
        .await
        .response();
    let reason = out["ignored"].as_str().unwrap_or_default();
    assert!(reason.contains("iam-events"), "{out}");

    // A manual payload with a misspelt field: BadRequest, naming it.
    let (ty, msg) = f
        .send(&b"{\"dryrun\": true}"[..], "misspelt field")
        .await
        .error();
    assert_eq!(ty, "BadRequest", "{msg}");
    assert!(msg.contains("dryrun"), "{msg}");
    refusals(&mut f).await;
    f.assert_healthy();
}

//! The operator CLI (`eks-access-sync`, the built binary) with the sandbox's env file.
//!
//! The binary is another package's: it is looked up next to this test's executable
//! (`target/<profile>/`). `cargo test --workspace` (what `make test` runs) builds it;
//! on its own, run `cargo build -p eks-access-sync-cli` first.

use crate::support::{World, cli_binary, command, managed_principals, repo_root, run, user_arn};

/// The seed's lease table (the stack's `TrustLockTable`).
const LOCK_TABLE: &str = eks_sandbox::aws::seed::LOCK_TABLE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_plan_reconcile_and_handle_event() {
    let w = World::start().await;
    let bin = cli_binary();
    let bin = bin.to_str().expect("utf-8 path");
    let home = tempfile::tempdir().expect("tempdir");
    // As an operator beside a deployed stack: with the stack's lease table.
    let cli = |args: &[&str]| {
        let mut c = command(&w.sb, bin, home.path());
        c.args(args)
            .current_dir(repo_root())
            .env("TRUST_LOCK_TABLE", LOCK_TABLE);
        run(c)
    };

    // The seeded world is out of step (alice is tagged; prod and staging lack the role).
    let (code, out, err) = cli(&["plan", "--exit-code"]).await;
    assert_eq!(
        code, 2,
        "plan --exit-code with changes pending\n{out}\n{err}"
    );
    assert!(out.contains("alice"), "the plan names alice:\n{out}");
    assert_eq!(w.all_writes(), Vec::<String>::new(), "plan wrote");

    let (code, out, err) = cli(&["reconcile"]).await;
    assert_eq!(code, 0, "reconcile\n{out}\n{err}");
    let (code, out, err) = cli(&["plan", "--exit-code"]).await;
    assert_eq!(code, 0, "nothing pending after reconcile\n{out}\n{err}");

    // dave arrives (the sample events name dave) and leaves.
    w.create_user("dave", true).await;
    let (code, out, err) = cli(&["handle-event", "events/iam-create-user-tagged.json"]).await;
    assert_eq!(code, 0, "handle-event CreateUser\n{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("report JSON");
    assert_eq!(
        report["trustPolicy"]["added"],
        serde_json::json!([user_arn("dave")])
    );

    w.delete_user("dave").await;
    let (code, out, err) = cli(&["handle-event", "events/iam-delete-user.json"]).await;
    assert_eq!(code, 0, "handle-event DeleteUser\n{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("report JSON");
    assert_eq!(report["trustPolicy"]["changed"], true, "{report}");

    // An event the function ignores succeeds with its reason.
    let (code, out, err) = cli(&["handle-event", "events/iam-create-user-failed.json"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("ignored"), "{out}");

    let (code, out, err) = cli(&["plan", "--output", "json"]).await;
    assert_eq!(code, 0, "{err}");
    let plan: serde_json::Value = serde_json::from_str(&out).expect("plan --output json parses");
    assert_eq!(plan["dryRun"], true);
    assert_eq!(plan["trustPolicy"]["changed"], false, "{plan}");
    let (code, out, err) = cli(&["plan", "--exit-code"]).await;
    assert_eq!(code, 0, "in step after the events\n{out}\n{err}");

    // Secrets never reach the output or the logs.
    let (_, sk) = w.sb.operator_credentials();
    let (_, out, err) = cli(&["reconcile", "--output", "json"]).await;
    for text in [&out, &err] {
        assert!(!text.contains(&sk), "secret key leaked");
        assert!(!text.contains("k8s-aws-v1."), "token leaked");
    }
    w.sb.shutdown().await;
}

/// Issue 3: without `TRUST_LOCK_TABLE` the CLI refuses to write the trust policy
/// (two such writers lost 90 of 100 updates) unless told `--no-lease`; `plan` needs
/// no lease. An event over EventBridge's 256 KiB is refused unread, from a file or
/// from stdin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_refuses_unserialized_writes_and_oversized_events() {
    let w = World::start().await;
    let bin = cli_binary();
    let bin = bin.to_str().expect("utf-8 path");
    let home = tempfile::tempdir().expect("tempdir");
    let without_table = |args: &[&str]| {
        let mut c = command(&w.sb, bin, home.path());
        c.args(args)
            .current_dir(repo_root())
            .env_remove("TRUST_LOCK_TABLE");
        run(c)
    };
    w.create_user("dave", true).await;
    w.reset_calls().await;

    for args in [
        &["reconcile"][..],
        &["handle-event", "events/iam-create-user-tagged.json"][..],
    ] {
        let (code, out, err) = without_table(args).await;
        assert_eq!(code, 1, "{args:?} without the lease\n{out}\n{err}");
        assert!(
            err.contains("TRUST_LOCK_TABLE") && err.contains("--no-lease"),
            "{args:?}: the message says what to do:\n{err}"
        );
    }
    assert_eq!(w.all_writes(), Vec::<String>::new(), "refused, yet wrote");
    assert_eq!(w.count("iam", "GetRole"), 0, "refused before any work");
    let (code, out, err) = without_table(&["plan"]).await;
    assert_eq!(code, 0, "plan needs no lease\n{out}\n{err}");

    // Oversized: refused from a file and from stdin, before any AWS call.
    let event = std::fs::read_to_string(repo_root().join("events/iam-create-user-tagged.json"))
        .expect("sample event");
    let mut big: serde_json::Value = serde_json::from_str(&event).expect("JSON");
    big["detail"]["padding"] = serde_json::Value::String("x".repeat(300 * 1024));
    let big_file = home.path().join("big.json");
    std::fs::write(&big_file, serde_json::to_vec(&big).expect("JSON")).expect("write");
    let big_path = big_file.to_str().expect("utf-8 path");
    w.reset_calls().await;
    let (code, out, err) = without_table(&["handle-event", "--no-lease", big_path]).await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("262144 bytes") && err.contains("256 KiB"),
        "{err}"
    );
    let mut c = command(&w.sb, bin, home.path());
    c.args(["handle-event", "--no-lease", "-"])
        .current_dir(repo_root())
        .stdin(std::fs::File::open(&big_file).expect("open"));
    let (code, out, err) = run(c).await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("256 KiB"), "{err}");
    assert_eq!(
        w.all_writes(),
        Vec::<String>::new(),
        "an oversized event wrote"
    );
    assert!(
        !managed_principals(&w.trust_policy().await).contains(&user_arn("dave")),
        "an oversized event was handled"
    );

    // --no-lease: today's behaviour, one writer.
    let (code, out, err) = without_table(&[
        "handle-event",
        "--no-lease",
        "events/iam-create-user-tagged.json",
    ])
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(managed_principals(&w.trust_policy().await).contains(&user_arn("dave")));
    let (code, out, err) = without_table(&["reconcile", "--no-lease"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    w.sb.shutdown().await;
}

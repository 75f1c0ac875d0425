//! The operator CLI (`eks-access-sync`, the built binary) with the sandbox's env file.
//!
//! The binary is another package's: it is looked up next to this test's executable
//! (`target/<profile>/`). `cargo test --workspace` (what `make test` runs) builds it;
//! on its own, run `cargo build -p eks-access-sync` first.

mod support;

use support::{World, cli_binary, command, repo_root, run, user_arn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_plan_reconcile_and_handle_event() {
    let w = World::start().await;
    let bin = cli_binary();
    let bin = bin.to_str().expect("utf-8 path");
    let home = tempfile::tempdir().expect("tempdir");
    let cli = |args: &[&str]| {
        let mut c = command(&w.sb, bin, home.path());
        c.args(args).current_dir(repo_root());
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

    let keys = w
        .iam
        .list_access_keys()
        .user_name("dave")
        .send()
        .await
        .expect("ListAccessKeys");
    for k in keys.access_key_metadata() {
        w.iam
            .delete_access_key()
            .user_name("dave")
            .access_key_id(k.access_key_id().unwrap_or_default())
            .send()
            .await
            .expect("DeleteAccessKey");
    }
    w.iam
        .delete_user()
        .user_name("dave")
        .send()
        .await
        .expect("DeleteUser");
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

//! The built `eks-access-sync` binary. Also makes `cargo test --workspace` build it
//! (Cargo builds a package's binaries for its integration tests), which the
//! end-to-end `cli` tests need.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_eks-access-sync"))
}

#[test]
fn help_lists_the_commands() {
    let out = bin().arg("--help").output().expect("run the binary");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["plan", "reconcile", "handle-event", "bootstrap"] {
        assert!(text.contains(cmd), "{cmd} missing from:\n{text}");
    }
}

#[test]
fn a_usage_error_exits_2() {
    let out = bin()
        .args(["plan", "--output", "yaml"])
        .output()
        .expect("run the binary");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn an_unreadable_event_file_exits_1() {
    let out = bin()
        .args(["handle-event", "--no-lease", "/nonexistent/event.json"])
        .env("ADMIN_ROLE_NAME", "eks-admin")
        .env("CLUSTER_REGIONS", "us-east-1")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .expect("run the binary");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/event.json"), "{err}");
}

//! `config check` and the global `--config FILE`, through the built binary.

use std::path::PathBuf;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_eks-access-sync"))
}

/// The repository's sample configuration.
fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/access.yaml")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A scratch file holding `content`.
fn file(content: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(f.path(), content).expect("write");
    f
}

/// A file whose `member:` key (line 4) is unknown.
const UNKNOWN_KEY: &str = "\
tiers:
  - name: readers
    role: eks-view
    member: { tag: eks-access=view }
    kubernetes: { policy: AmazonEKSViewPolicy }
";

#[test]
fn config_check_prints_each_tier_without_env_or_credentials() {
    let out: Output = bin()
        .env_clear()
        .args(["config", "check"])
        .arg(example())
        .output()
        .expect("run the binary");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(
        lines[0].ends_with("access.yaml: 3 tier(s), 719 of 3072 bytes"),
        "{stdout}"
    );
    assert_eq!(
        &lines[1..],
        [
            "  admin: role eks-admin; members tag eks-access=admin; clusters tagged env=prod; \
             AmazonEKSClusterAdminPolicy at cluster scope",
            "  developers: role eks-edit; members groups developers, sre; every managed cluster; \
             AmazonEKSEditPolicy at namespaces team-a, team-b-*",
            "  readers: role eks-view; members tag eks-access=view or groups auditors; \
             every managed cluster; AmazonEKSViewPolicy at cluster scope",
        ]
    );
}

#[test]
fn config_check_names_the_file_the_line_and_the_unknown_key() {
    let f = file(UNKNOWN_KEY);
    let out = bin()
        .env_clear()
        .args(["config", "check"])
        .arg(f.path())
        .output()
        .expect("run the binary");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = text(&out.stderr);
    let path = f.path().display().to_string();
    assert!(
        err.starts_with(&format!("error: {path}: line 4, column 5: ")),
        "{err}"
    );
    assert!(err.contains("member"), "{err}");
    assert!(out.stdout.is_empty(), "{out:?}");
}

#[test]
fn config_check_takes_the_global_config_or_asks_for_a_file() {
    let out = bin()
        .env_clear()
        .arg("--config")
        .arg(example())
        .args(["config", "check"])
        .output()
        .expect("run the binary");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(text(&out.stdout).contains("3 tier(s)"), "{out:?}");

    let out = bin()
        .env_clear()
        .args(["config", "check"])
        .output()
        .expect("run the binary");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("FILE"), "{out:?}");
}

#[test]
fn a_missing_file_is_named() {
    let out = bin()
        .env_clear()
        .args(["config", "check", "/nonexistent/access.yaml"])
        .output()
        .expect("run the binary");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).contains("/nonexistent/access.yaml: cannot read it"),
        "{out:?}"
    );
}

/// The environment of a command that builds the engine (no AWS call is made before
/// the failure these tests look at).
fn engine_env(cmd: &mut Command) -> &mut Command {
    cmd.env_clear()
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
}

#[test]
fn a_bad_config_file_stops_any_command_before_it_starts() {
    let f = file(UNKNOWN_KEY);
    let out = engine_env(&mut bin())
        .env("ADMIN_ROLE_NAME", "eks-admin")
        .args(["reconcile", "--no-lease", "--config"])
        .arg(f.path())
        .output()
        .expect("run the binary");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("{}: line 4", f.path().display())),
        "{err}"
    );
}

#[test]
fn a_config_file_stands_in_for_admin_role_name() {
    // Without it the command stops on the missing ADMIN_ROLE_NAME ...
    let out = engine_env(&mut bin())
        .args(["handle-event", "--no-lease", "/nonexistent/event.json"])
        .output()
        .expect("run the binary");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("ADMIN_ROLE_NAME"), "{out:?}");
    // ... with it, the configuration loads and the command goes on to the event file.
    let out = engine_env(&mut bin())
        .args([
            "handle-event",
            "--no-lease",
            "/nonexistent/event.json",
            "--config",
        ])
        .arg(example())
        .output()
        .expect("run the binary");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = text(&out.stderr);
    assert!(
        err.contains("/nonexistent/event.json") && !err.contains("ADMIN_ROLE_NAME"),
        "{err}"
    );
}

//! The `eks-sandbox` binary's lifecycle, as `make sandbox-up/down` uses it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

async fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_seed_faults_and_sigterm_stops_everything() {
    let dir = tempfile::tempdir().unwrap();
    let sdir = dir.path().join(".sandbox");
    let exe = env!("CARGO_BIN_EXE_eks-sandbox");
    let mut up = tokio::process::Command::new(exe)
        .args(["up", "--dir", sdir.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let env = sdir.join("env");
    wait_for(&sdir.join("moto.pid")).await;
    wait_for(&env).await;
    let mode = std::fs::metadata(&env).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&env).unwrap();
    for key in [
        "AWS_ENDPOINT_URL_IAM=",
        "AWS_ENDPOINT_URL_STS=",
        "AWS_ENDPOINT_URL_EKS=",
        "AWS_ENDPOINT_URL_DYNAMODB=",
        "AWS_REGION=",
        "AWS_DEFAULT_REGION=",
        "AWS_ACCESS_KEY_ID=",
        "AWS_SECRET_ACCESS_KEY=",
        "unset AWS_SESSION_TOKEN",
        "unset AWS_PROFILE",
    ] {
        assert!(text.contains(key), "{key} missing from {text}");
    }
    let sandbox_pid = std::fs::read_to_string(sdir.join("sandbox.pid")).unwrap();
    assert_eq!(sandbox_pid.trim(), up.id().unwrap().to_string());
    let moto_pid = std::fs::read_to_string(sdir.join("moto.pid")).unwrap();
    let moto_proc = Path::new("/proc").join(moto_pid.trim());
    assert!(moto_proc.exists());

    assert!(
        !text.contains("TRUST_LOCK_TABLE"),
        "set before the seed: {text}"
    );
    for args in [
        vec!["seed"],
        vec!["seed"],
        vec!["faults", r#"{"latencyMs": 1}"#],
    ] {
        let out = tokio::process::Command::new(exe)
            .args(&args)
            .args(["--dir", sdir.to_str().unwrap()])
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The seed names its lease table in the env file, once however often it runs.
    let seeded = std::fs::read_to_string(&env).unwrap();
    let line = format!(
        "export TRUST_LOCK_TABLE={}\n",
        eks_sandbox::aws::seed::LOCK_TABLE
    );
    assert_eq!(seeded.matches("TRUST_LOCK_TABLE").count(), 1, "{seeded}");
    assert_eq!(seeded, format!("{text}{line}"));
    let mode = std::fs::metadata(&env).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let bad = tokio::process::Command::new(exe)
        .args(["faults", r#"{"cluster": "nope", "errors500": 1}"#])
        .args(["--dir", sdir.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(!bad.status.success());

    let kill = tokio::process::Command::new("kill")
        .args(["-TERM", sandbox_pid.trim()])
        .status()
        .await
        .unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(15), up.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(!env.exists() && !sdir.join("sandbox.pid").exists() && !sdir.join("moto.pid").exists());
    assert!(!moto_proc.exists(), "moto outlived the sandbox");
}

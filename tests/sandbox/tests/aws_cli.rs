//! The AWS CLI (v1, as a user has it) against the sandbox with `.sandbox/env`.

use eks_sandbox::aws::{Sandbox, SandboxOptions};

/// Parses `export K=V` / `unset K` lines into (set, unset).
fn parse_env(lines: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut set = Vec::new();
    let mut unset = Vec::new();
    for l in lines.lines() {
        if let Some(kv) = l.strip_prefix("export ") {
            let (k, v) = kv.split_once('=').unwrap();
            set.push((k.to_string(), v.to_string()));
        } else if let Some(k) = l.strip_prefix("unset ") {
            unset.push(k.trim().to_string());
        }
    }
    (set, unset)
}

async fn aws(
    env: &(Vec<(String, String)>, Vec<String>),
    home: &std::path::Path,
    args: &[&str],
) -> String {
    let mut cmd = tokio::process::Command::new("aws");
    cmd.args(args)
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("none"));
    for (k, v) in &env.0 {
        cmd.env(k, v);
    }
    for k in &env.1 {
        cmd.env_remove(k);
    }
    let out = cmd.output().await.unwrap_or_else(|e| {
        panic!("the AWS CLI must be installed for this test (pip install awscli): {e}")
    });
    assert!(
        out.status.success(),
        "aws {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_works_with_the_env_file() {
    let sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    sb.seed().await.unwrap();
    let env = parse_env(&sb.env_lines());
    let dir = tempfile::tempdir().unwrap();

    let who: serde_json::Value =
        serde_json::from_str(&aws(&env, dir.path(), &["sts", "get-caller-identity"]).await)
            .unwrap();
    assert_eq!(who["Arn"], sb.operator_arn());
    assert!(who["UserId"].as_str().unwrap().starts_with("AIDA"));

    let c: serde_json::Value = serde_json::from_str(
        &aws(
            &env,
            dir.path(),
            &["eks", "describe-cluster", "--name", "prod"],
        )
        .await,
    )
    .unwrap();
    let endpoint = c["cluster"]["endpoint"].as_str().unwrap().to_string();
    assert!(endpoint.starts_with("https://127.0.0.1:"));
    assert_eq!(
        c["cluster"]["accessConfig"]["authenticationMode"],
        "CONFIG_MAP"
    );

    let kubeconfig = dir.path().join("kubeconfig");
    aws(
        &env,
        dir.path(),
        &[
            "eks",
            "update-kubeconfig",
            "--name",
            "prod",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
    )
    .await;
    let kc = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(kc.contains(&endpoint), "{kc}");
    assert!(kc.contains("certificate-authority-data"), "{kc}");

    // A token the CLI makes is accepted by the cluster's API server as the operator.
    let token: serde_json::Value = serde_json::from_str(
        &aws(
            &env,
            dir.path(),
            &["eks", "get-token", "--cluster-name", "prod"],
        )
        .await,
    )
    .unwrap();
    assert!(
        token["status"]["token"]
            .as_str()
            .unwrap()
            .starts_with("k8s-aws-v1.")
    );

    // kubectl, through the kubeconfig's `aws eks get-token` exec plugin.
    let mut kubectl = tokio::process::Command::new("kubectl");
    kubectl
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "get",
            "configmap",
            "aws-auth",
            "-n",
            "kube-system",
            "-o",
            "json",
        ])
        .env("HOME", dir.path())
        .env("AWS_CONFIG_FILE", dir.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"));
    for (k, v) in &env.0 {
        kubectl.env(k, v);
    }
    for k in &env.1 {
        kubectl.env_remove(k);
    }
    let out = kubectl
        .output()
        .await
        .unwrap_or_else(|e| panic!("kubectl must be installed for this test: {e}"));
    assert!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cm: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        cm["data"]["mapRoles"]
            .as_str()
            .unwrap()
            .contains("role/eks-node-role")
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_manages_groups_and_namespace_scoped_policies() {
    let sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    sb.seed().await.unwrap();
    let env = parse_env(&sb.env_lines());
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &'static [&'static str]| {
        let env = &env;
        let home = dir.path();
        async move {
            let out = aws(env, home, args).await;
            if out.trim().is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::from_str::<serde_json::Value>(&out).unwrap()
            }
        }
    };
    run(&["iam", "create-user", "--user-name", "dana"]).await;
    let g = run(&["iam", "create-group", "--group-name", "developers"]).await;
    assert_eq!(g["Group"]["GroupName"], "developers");
    run(&[
        "iam",
        "add-user-to-group",
        "--group-name",
        "Developers",
        "--user-name",
        "DANA",
    ])
    .await;
    let details = run(&[
        "iam",
        "get-account-authorization-details",
        "--filter",
        "User",
    ])
    .await;
    let dana = details["UserDetailList"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["UserName"] == "dana")
        .unwrap()
        .clone();
    assert_eq!(dana["GroupList"], serde_json::json!(["developers"]));
    let members = run(&["iam", "get-group", "--group-name", "developers"]).await;
    assert_eq!(members["Users"][0]["UserName"], "dana");
    run(&[
        "iam",
        "remove-user-from-group",
        "--group-name",
        "developers",
        "--user-name",
        "dana",
    ])
    .await;
    run(&["iam", "delete-group", "--group-name", "developers"]).await;
    let groups = run(&["iam", "list-groups-for-user", "--user-name", "dana"]).await;
    assert_eq!(groups["Groups"], serde_json::json!([]));

    // The CLI's shorthand for a namespace scope with a pattern.
    run(&[
        "eks",
        "create-access-entry",
        "--cluster-name",
        "staging",
        "--principal-arn",
        "arn:aws:iam::123456789012:role/eks-admin",
    ])
    .await;
    let a = run(&[
        "eks",
        "associate-access-policy",
        "--cluster-name",
        "staging",
        "--principal-arn",
        "arn:aws:iam::123456789012:role/eks-admin",
        "--policy-arn",
        "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy",
        "--access-scope",
        "type=namespace,namespaces=team-a,team-b-*",
    ])
    .await;
    assert_eq!(
        a["associatedAccessPolicy"]["accessScope"],
        serde_json::json!({"type": "namespace", "namespaces": ["team-a", "team-b-*"]})
    );

    // The seed's team namespaces, through the CLI's kubeconfig and kubectl.
    for (cluster, want_teams) in [("staging", true), ("legacy", false)] {
        let kubeconfig = dir.path().join(format!("kubeconfig-{cluster}"));
        aws(
            &env,
            dir.path(),
            &[
                "eks",
                "update-kubeconfig",
                "--name",
                cluster,
                "--kubeconfig",
                kubeconfig.to_str().unwrap(),
            ],
        )
        .await;
        let mut kubectl = tokio::process::Command::new("kubectl");
        kubectl
            .args(["--kubeconfig", kubeconfig.to_str().unwrap()])
            .args(["get", "namespaces", "-o", "name"])
            .env("HOME", dir.path())
            .env("AWS_CONFIG_FILE", dir.path().join("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"));
        for (k, v) in &env.0 {
            kubectl.env(k, v);
        }
        for k in &env.1 {
            kubectl.env_remove(k);
        }
        let out = kubectl.output().await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut want = vec![
            "namespace/default",
            "namespace/kube-node-lease",
            "namespace/kube-public",
            "namespace/kube-system",
        ];
        if want_teams {
            want.extend(["namespace/team-a", "namespace/team-b-web"]);
        }
        assert_eq!(stdout.lines().collect::<Vec<_>>(), want, "{cluster}");
    }
    sb.shutdown().await;
}

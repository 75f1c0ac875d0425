//! `eks-access-sync kubeconfig` end to end (issue 11: a member learns which role to use
//! without asking anyone). The built CLI runs as each member with their own access
//! keys; the real kubectl then runs `auth whoami` through the exec plugin the file names,
//! the real AWS CLI's `aws eks get-token`, which assumes the role at the sandbox's STS and
//! presigns the token for it.
//!
//! The world: the seeded `eks-admin` (tier `admin`, the single-tier variables) trusts
//! ann after a reconcile (prod through aws-auth, staging through an access entry); a
//! shard `eks-admin-2` at `/eks-access-sync/` trusts ben and is mapped on prod by hand
//! (as the engine will map shards); `legacy` is not tagged.

use std::path::Path;

use crate::support::{World, as_member, cli_binary, run, user_arn};
use aws_credential_types::Credentials;
use eks_access_sync::engine::Scope;
use eks_sandbox::state::ACCOUNT_ID;
use serde_json::{Value, json};

const SHARD: &str = "eks-admin-2";
const SHARD_PATH: &str = "/eks-access-sync/";

fn cluster_arn(name: &str) -> String {
    format!("arn:aws:eks:us-east-1:{ACCOUNT_ID}:cluster/{name}")
}

fn shard_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:role{SHARD_PATH}{SHARD}")
}

/// `eks-access-sync kubeconfig --kubeconfig FILE` as the member: (exit, stdout, stderr).
async fn kubeconfig(
    w: &World,
    home: &Path,
    creds: &Credentials,
    file: &Path,
) -> (i32, String, String) {
    let mut c = as_member(w, &cli_binary(), home, creds);
    c.arg("kubeconfig").arg("--kubeconfig").arg(file);
    run(c).await
}

/// The real kubectl as the member with `file`.
async fn kubectl(
    w: &World,
    home: &Path,
    creds: &Credentials,
    file: &Path,
    args: &[&str],
) -> (i32, String, String) {
    let mut c = as_member(w, Path::new("kubectl"), home, creds);
    c.arg("--kubeconfig").arg(file).args(args);
    run(c).await
}

/// The file as kubectl reads it (`config view --raw -o json`).
async fn view(w: &World, home: &Path, creds: &Credentials, file: &Path) -> Value {
    let (code, out, err) = kubectl(
        w,
        home,
        creds,
        file,
        &["config", "view", "--raw", "-o", "json"],
    )
    .await;
    assert_eq!(code, 0, "kubectl config view: {err}");
    serde_json::from_str(&out).expect("config view JSON")
}

fn named<'a>(doc: &'a Value, key: &str, name: &str) -> Option<&'a Value> {
    doc[key].as_array()?.iter().find(|e| e["name"] == name)
}

/// `kubectl --context CONTEXT auth whoami` through the exec plugin: (username, groups).
async fn whoami(
    w: &World,
    home: &Path,
    creds: &Credentials,
    file: &Path,
    context: &str,
) -> (String, Vec<String>) {
    let (code, out, err) = kubectl(
        w,
        home,
        creds,
        file,
        &["--context", context, "auth", "whoami", "-o", "json"],
    )
    .await;
    assert_eq!(
        code, 0,
        "kubectl --context {context} auth whoami: {err}\n{out}"
    );
    let review: Value = serde_json::from_str(&out).expect("whoami JSON");
    let user = &review["status"]["userInfo"];
    (
        user["username"].as_str().unwrap_or_default().to_owned(),
        user["groups"]
            .as_array()
            .map(|g| {
                g.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

/// The seeded world reconciled with ann (tagged) in `eks-admin`, and the shard role
/// `eks-admin-2` trusting ben, mapped on prod as `shard2:{{SessionName}}`.
async fn world() -> (World, Credentials, Credentials) {
    let w = World::start().await;
    let ann = w.create_user("ann", true).await;
    let ben = w.create_user("ben", false).await;
    let report = w.engine.apply_full(&Scope::all()).await;
    assert!(report.succeeded(), "{report:?}");
    let shard_trust = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "EksAccessSyncAdmins",
            "Effect": "Allow",
            // A list (the sandbox, like IAM, accepts only existing principals).
            "Principal": {"AWS": [user_arn("carol"), user_arn("ben")]},
            "Action": "sts:AssumeRole"
        }]
    });
    w.iam
        .create_role()
        .role_name(SHARD)
        .path(SHARD_PATH)
        .assume_role_policy_document(shard_trust.to_string())
        .max_session_duration(3600)
        .send()
        .await
        .expect("CreateRole shard");
    let map_roles = w.aws_auth_data("prod")["mapRoles"].clone();
    w.set_aws_auth_key(
        "prod",
        "mapRoles",
        &format!(
            "{map_roles}- rolearn: arn:aws:iam::{ACCOUNT_ID}:role/{SHARD}\n  username: shard2:{{{{SessionName}}}}\n  groups:\n  - system:masters\n"
        ),
    );
    (w, ann, ben)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_member_gets_their_tier_role_and_kubectl_just_works() {
    let (w, ann, ben) = world().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path();

    // ann already has a kubeconfig with another cluster, current.
    let ann_file = home.join("ann.kubeconfig");
    let foreign = "apiVersion: v1\nkind: Config\ncurrent-context: kind-dev\npreferences: {}\nclusters:\n- name: kind-dev\n  cluster:\n    server: https://127.0.0.1:6443\n    insecure-skip-tls-verify: true\n    tls-server-name: \"yes\"\nusers:\n- name: kind-dev\n  user:\n    token: \"0123\"\ncontexts:\n- name: kind-dev\n  context:\n    cluster: kind-dev\n    user: kind-dev\n    namespace: \"on\"\n";
    std::fs::write(&ann_file, foreign).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&ann_file, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    }
    let before = view(&w, home, &ann, &ann_file).await;

    let (code, out, err) = kubeconfig(&w, home, &ann, &ann_file).await;
    assert_eq!(code, 0, "kubeconfig as ann:\n{out}\n{err}");
    assert!(
        out.contains(&format!("you are {}", user_arn("ann"))),
        "{out}"
    );
    assert!(
        out.contains("tier admin: role arn:aws:iam::123456789012:role/eks-admin"),
        "{out}"
    );
    for c in ["prod", "staging"] {
        assert!(
            out.contains(&format!("context {}", cluster_arn(c))),
            "{out}"
        );
    }
    assert!(
        !out.contains("legacy"),
        "untagged legacy is not mentioned: {out}"
    );

    let after = view(&w, home, &ann, &ann_file).await;
    // The foreign entries, as kubectl reads them, and the current context survive.
    assert_eq!(after["current-context"], "kind-dev");
    for key in ["clusters", "users", "contexts"] {
        assert_eq!(
            named(&after, key, "kind-dev"),
            named(&before, key, "kind-dev"),
            "{key}"
        );
    }
    assert!(
        named(&after, "contexts", &cluster_arn("legacy")).is_none(),
        "{after}"
    );
    // Exactly what update-kubeconfig writes (with --role-arn).
    let prod = cluster_arn("prod");
    let (endpoint, ca) = w.describe("prod").await;
    assert_eq!(
        named(&after, "clusters", &prod).expect("prod cluster")["cluster"],
        json!({"certificate-authority-data": ca, "server": endpoint})
    );
    let exec = &named(&after, "users", &prod).expect("prod user")["user"]["exec"];
    assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1beta1");
    assert_eq!(exec["command"], "aws");
    assert_eq!(
        exec["args"],
        json!([
            "--region",
            "us-east-1",
            "eks",
            "get-token",
            "--cluster-name",
            "prod",
            "--output",
            "json",
            "--role-arn",
            "arn:aws:iam::123456789012:role/eks-admin"
        ])
    );
    assert_eq!(
        named(&after, "contexts", &prod).expect("prod context")["context"],
        json!({"cluster": prod, "user": prod})
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&ann_file)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640, "an existing file keeps its mode");
    }

    // kubectl, through `aws eks get-token --role-arn eks-admin`: the admin mapping on
    // prod (aws-auth) and staging (access entry).
    for c in ["prod", "staging"] {
        let (name, _) = whoami(&w, home, &ann, &ann_file, &cluster_arn(c)).await;
        assert!(name.starts_with("admin:ASIA"), "ann on {c}: {name}");
        // Cluster admin: system:masters on prod, AmazonEKSClusterAdminPolicy on staging.
        let (code, out, err) = kubectl(
            &w,
            home,
            &ann,
            &ann_file,
            &["--context", &cluster_arn(c), "auth", "can-i", "*", "*"],
        )
        .await;
        assert_eq!(
            (code, out.trim()),
            (0, "yes"),
            "ann on {c}: can-i * *: {err}"
        );
    }

    // ben: no file yet (nor its directory); his role is the shard.
    let ben_file = home.join("ben/.kube/config");
    let (code, out, err) = kubeconfig(&w, home, &ben, &ben_file).await;
    assert_eq!(code, 0, "kubeconfig as ben:\n{out}\n{err}");
    assert!(
        out.contains(&format!("tier admin: role {}", shard_arn())),
        "{out}"
    );
    assert!(
        out.contains(&format!("current-context set to {prod}")),
        "{out}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&ben_file)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "a new kubeconfig is private");
    }
    let bens = view(&w, home, &ben, &ben_file).await;
    assert_eq!(bens["current-context"], prod.as_str());
    let args = named(&bens, "users", &prod).expect("prod user")["user"]["exec"]["args"].clone();
    assert_eq!(args[9], shard_arn().as_str(), "{args}");
    let (name, groups) = whoami(&w, home, &ben, &ben_file, &prod).await;
    assert!(name.starts_with("shard2:"), "ben on prod: {name}");
    assert!(groups.iter().any(|g| g == "system:masters"), "{groups:?}");
    // Without --context: the current one.
    let (code, out, err) =
        kubectl(&w, home, &ben, &ben_file, &["auth", "whoami", "-o", "json"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("shard2:"), "{out}");

    // ann's file again: the same document (nothing duplicated).
    let text = std::fs::read_to_string(&ann_file).expect("read");
    let (code, _, err) = kubeconfig(&w, home, &ann, &ann_file).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(&ann_file).expect("read"), text);
    w.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_in_no_tier_and_an_assumed_role_are_told_what_to_do() {
    let (w, ann, _ben) = world().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path();
    let eve = w.create_user("eve", false).await;
    let file = home.join("eve.kubeconfig");
    let (code, out, err) = kubeconfig(&w, home, &eve, &file).await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("are in no tier"), "{err}");
    assert!(err.contains(&user_arn("eve")), "{err}");
    assert!(
        err.contains("admin (role eks-admin, and eks-admin-<k> at /eks-access-sync/)"),
        "{err}"
    );
    assert!(!file.exists(), "nothing written");

    // A session of the role (not an IAM user): refused, saying what to use instead.
    let session = w.assume_admin(&ann, "ann").await.expect("AssumeRole");
    let (code, out, err) = kubeconfig(&w, home, &session, &file).await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("not an IAM user"), "{err}");
    assert!(err.contains("assumed-role/eks-admin/ann"), "{err}");
    assert!(!file.exists(), "nothing written");
    w.sb.shutdown().await;
}

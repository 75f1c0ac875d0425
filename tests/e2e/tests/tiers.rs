//! Access tiers end to end (issue 10): `examples/access.yaml` on a `CONFIG_MAP`
//! cluster (`prod`: aws-auth `mapRoles` plus the tool's RBAC bindings) and an `API`
//! cluster (`apionly`: an access entry per tier role), both tagged `env=prod` so the
//! admin tier applies to them. Rights are asked of the clusters with the real
//! `kubectl auth can-i`, as a user who assumed a tier role; IAM changes are made with
//! the real IAM API and their events go through the real handlers (or the CLI).

use std::path::{Path, PathBuf};

use crate::support::{
    World, cli_binary, command, config_with, event, managed_principals, repo_root, run, user_arn,
};
use aws_credential_types::Credentials;
use eks_access_sync::adapters::SdkEngine;
use eks_sandbox::state::ACCOUNT_ID;
use serde_json::{Value, json};

/// The example configuration: admin (tag, env=prod clusters), developers (groups
/// developers/sre, edit in team-a and team-b-*), readers (tag or group auditors, view).
const EXAMPLE: &str = include_str!("../../../examples/access.yaml");
const API: &str = "apionly";
const CLUSTERS: [&str; 2] = ["prod", API];
const EDIT: &str = "eks-edit";
const VIEW: &str = "eks-view";

/// The example without the developers tier.
fn without_developers() -> String {
    let start = EXAMPLE
        .find("  - name: developers")
        .expect("developers tier");
    let end = EXAMPLE.find("  - name: readers").expect("readers tier");
    format!("{}{}", &EXAMPLE[..start], &EXAMPLE[end..])
}

fn engine(w: &World, access_config: &str) -> SdkEngine {
    SdkEngine::from_sdk(config_with(&[("ACCESS_CONFIG", access_config)]), &w.sdk)
}

/// The seeded world plus what the example needs: the tier roles eks-edit and eks-view
/// (trusting like eks-admin), the IAM groups developers and auditors, and an API
/// cluster; prod and the API cluster are tagged env=prod.
async fn tier_world() -> World {
    let w = World::start().await;
    for role in [EDIT, VIEW] {
        w.iam
            .create_role()
            .role_name(role)
            .assume_role_policy_document(eks_sandbox::aws::seed::admin_trust_policy())
            .send()
            .await
            .expect("CreateRole");
    }
    for group in ["developers", "auditors"] {
        w.iam
            .create_group()
            .group_name(group)
            .send()
            .await
            .expect("CreateGroup");
    }
    w.create_api_cluster(API).await;
    for cluster in CLUSTERS {
        w.eks
            .tag_resource()
            .resource_arn(format!(
                "arn:aws:eks:us-east-1:{ACCOUNT_ID}:cluster/{cluster}"
            ))
            .tags("env", "prod")
            .send()
            .await
            .expect("TagResource");
    }
    w
}

/// Creates `name` with the tag `eks-access=<tag>` (if any) in `groups`; their key.
async fn member(w: &World, name: &str, tag: Option<&str>, groups: &[&str]) -> Credentials {
    let mut req = w.iam.create_user().user_name(name);
    if let Some(value) = tag {
        req = req.tags(
            aws_sdk_iam::types::Tag::builder()
                .key("eks-access")
                .value(value)
                .build()
                .expect("tag"),
        );
    }
    req.send().await.expect("CreateUser");
    for group in groups {
        w.iam
            .add_user_to_group()
            .user_name(name)
            .group_name(*group)
            .send()
            .await
            .expect("AddUserToGroup");
    }
    w.access_key(name).await
}

async fn reconcile(engine: &SdkEngine) -> Value {
    reconcile::handle(engine, json!({}))
        .await
        .expect("a manual reconcile returns its report")
}

fn cluster<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in the report: {report}"))
}

fn tier<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["tiers"]
        .as_array()
        .expect("tiers")
        .iter()
        .find(|t| t["tier"] == name)
        .unwrap_or_else(|| panic!("tier {name} not in the report: {report}"))
}

async fn trusted(w: &World, role: &str) -> Vec<String> {
    managed_principals(&w.role_trust_policy(role).await)
}

/// A kubeconfig for `cluster` with a static EKS token signed with `creds` (what
/// `aws eks get-token` would give kubectl).
async fn kubeconfig(w: &World, dir: &Path, creds: &Credentials, cluster: &str) -> PathBuf {
    let (endpoint, ca) = w.describe(cluster).await;
    let token = w.token(creds, cluster);
    let path = dir.join(format!("{cluster}-{}.kubeconfig", creds.access_key_id()));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {endpoint}\n    certificate-authority-data: {ca}\nusers:\n- name: u\n  user:\n    token: {}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n",
            token.expose()
        ),
    )
    .expect("write kubeconfig");
    path
}

/// The real kubectl with `kubeconfig`: (exit code, stdout, stderr).
async fn kubectl(w: &World, kubeconfig: &Path, args: &[&str]) -> (i32, String, String) {
    let home = kubeconfig.parent().expect("dir");
    let mut c = command(&w.sb, "kubectl", home);
    c.arg("--kubeconfig").arg(kubeconfig).args(args);
    run(c).await
}

/// `kubectl auth can-i ARGS` as the session `creds` on `cluster`: true for "yes",
/// false for "no"; anything else (an error) fails the test.
async fn can_i(w: &World, dir: &Path, creds: &Credentials, cluster: &str, args: &str) -> bool {
    let kc = kubeconfig(w, dir, creds, cluster).await;
    let mut argv = vec!["auth", "can-i"];
    argv.extend(args.split_whitespace());
    let (code, out, err) = kubectl(w, &kc, &argv).await;
    match (code, out.trim()) {
        (0, "yes") => true,
        (1, "no") => false,
        _ => panic!("kubectl auth can-i {args} on {cluster}: exit {code}\n{out}\n{err}"),
    }
}

/// Asserts each (question, answer) on both clusters.
async fn assert_rights(
    w: &World,
    dir: &Path,
    who: &str,
    creds: &Credentials,
    rights: &[(&str, bool)],
) {
    for c in CLUSTERS {
        for (question, want) in rights {
            assert_eq!(
                can_i(w, dir, creds, c, question).await,
                *want,
                "{who} on {c}: can-i {question}"
            );
        }
    }
}

async fn assume(w: &World, creds: &Credentials, role: &str, session: &str) -> Credentials {
    w.assume(creds, role, session)
        .await
        .unwrap_or_else(|e| panic!("{session} assumes {role}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_can_get_pods_but_not_create_them_on_both_clusters() {
    let w = tier_world().await;
    let rita = member(&w, "rita", Some("view"), &[]).await;
    let report = reconcile(&engine(&w, EXAMPLE)).await;
    // prod had aws-auth (the node role): updated; the API cluster had no entry.
    assert_eq!(cluster(&report, "prod")["status"], "updated", "{report}");
    assert_eq!(cluster(&report, API)["status"], "created", "{report}");
    let tiers: Vec<(&str, u64)> = report["tiers"]
        .as_array()
        .expect("tiers")
        .iter()
        .map(|t| {
            (
                t["tier"].as_str().unwrap_or_default(),
                t["members"].as_u64().unwrap_or(99),
            )
        })
        .collect();
    // alice (seeded, tagged admin); nobody in developers; rita.
    assert_eq!(
        tiers,
        [("admin", 1), ("developers", 0), ("readers", 1)],
        "{report}"
    );
    assert_eq!(trusted(&w, VIEW).await, [user_arn("rita")]);
    assert_eq!(
        w.assume(&rita, EDIT, "rita").await.err().as_deref(),
        Some("AccessDenied"),
        "a reader is not a developer"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let session = assume(&w, &rita, VIEW, "rita").await;
    assert_rights(
        &w,
        dir.path(),
        "rita (readers)",
        &session,
        &[
            ("get pods", true),
            ("list deployments -n team-a", true),
            ("get pods -n kube-system", true),
            ("create pods", false),
            ("create deployments -n team-a", false),
            ("get secrets -n team-a", false),
        ],
    )
    .await;
    w.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_developer_writes_in_team_a_but_not_in_kube_system_on_both_clusters() {
    let w = tier_world().await;
    let dave = member(&w, "dave", None, &["developers"]).await;
    let report = reconcile(&engine(&w, EXAMPLE)).await;
    assert_eq!(tier(&report, "developers")["members"], 1, "{report}");
    assert_eq!(trusted(&w, EDIT).await, [user_arn("dave")]);
    assert_eq!(
        w.assume(&dave, VIEW, "dave").await.err().as_deref(),
        Some("AccessDenied"),
        "a developer is not a reader"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let session = assume(&w, &dave, EDIT, "dave").await;
    assert_rights(
        &w,
        dir.path(),
        "dave (developers)",
        &session,
        &[
            ("create deployments -n team-a", true),
            ("delete pods -n team-a", true),
            // team-b-* is a pattern: team-b-web matches.
            ("create deployments -n team-b-web", true),
            ("create deployments -n kube-system", false),
            ("create deployments -n default", false),
            ("get pods -n kube-system", false),
            ("create rolebindings -n team-a", false),
        ],
    )
    .await;
    w.sb.shutdown().await;
}

/// RemoveUserFromGroup, through the CLI with `--config`: out of eks-edit's trust
/// policy (STS refuses), still a reader through the auditors group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_user_from_group_takes_one_tier_away_and_keeps_the_other() {
    let w = tier_world().await;
    let dave = member(&w, "dave", None, &["developers", "auditors"]).await;
    reconcile(&engine(&w, EXAMPLE)).await;
    assert_eq!(trusted(&w, EDIT).await, [user_arn("dave")]);
    assert_eq!(trusted(&w, VIEW).await, [user_arn("dave")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let edit = assume(&w, &dave, EDIT, "dave").await;
    assert!(
        can_i(
            &w,
            dir.path(),
            &edit,
            "prod",
            "create deployments -n team-a"
        )
        .await
    );

    w.iam
        .remove_user_from_group()
        .user_name("dave")
        .group_name("developers")
        .send()
        .await
        .expect("RemoveUserFromGroup");
    let event_file = dir.path().join("remove-user-from-group.json");
    std::fs::write(
        &event_file,
        event("iam-remove-user-from-group", "dave").to_string(),
    )
    .expect("write event");
    let bin = cli_binary();
    let mut cli = command(&w.sb, bin.to_str().expect("utf-8"), dir.path());
    cli.current_dir(repo_root())
        .env("TRUST_LOCK_TABLE", eks_sandbox::aws::seed::LOCK_TABLE)
        .arg("--config")
        .arg(repo_root().join("examples/access.yaml"))
        .arg("handle-event")
        .arg(&event_file);
    let (code, out, err) = run(cli).await;
    assert_eq!(code, 0, "handle-event RemoveUserFromGroup\n{out}\n{err}");
    let report: Value = serde_json::from_str(&out).expect("report JSON");
    assert_eq!(
        tier(&report, "developers")["trustPolicy"]["removed"],
        json!([user_arn("dave")]),
        "{report}"
    );
    assert_eq!(
        tier(&report, "readers")["trustPolicy"]["changed"],
        false,
        "{report}"
    );

    assert_eq!(trusted(&w, EDIT).await, Vec::<String>::new());
    assert_eq!(trusted(&w, VIEW).await, [user_arn("dave")]);
    assert_eq!(
        w.assume(&dave, EDIT, "dave").await.err().as_deref(),
        Some("AccessDenied"),
        "STS refuses eks-edit once dave left developers"
    );
    let view = assume(&w, &dave, VIEW, "dave").await;
    assert_rights(
        &w,
        dir.path(),
        "dave (readers only)",
        &view,
        &[
            ("get pods -n team-a", true),
            ("create deployments -n team-a", false),
        ],
    )
    .await;
    w.sb.shutdown().await;
}

const FOREIGN_BINDING: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: eks-access-sync:readers
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: view
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: platform-auditors
";

/// A ClusterRoleBinding named like the readers' one but made by someone else (no
/// managed-by label) is left exactly as it is; prod is reported failed, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_without_our_label_survives_a_reconcile() {
    let w = tier_world().await;
    let rita = member(&w, "rita", Some("view"), &[]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (ak, sk) = w.sb.operator_credentials();
    let operator = Credentials::new(ak, sk, None, None, "operator");
    let admin_kc = kubeconfig(&w, dir.path(), &operator, "prod").await;
    let file = dir.path().join("binding.yaml");
    std::fs::write(&file, FOREIGN_BINDING).expect("write binding");
    let (code, out, err) = kubectl(
        &w,
        &admin_kc,
        &["apply", "-f", file.to_str().expect("utf-8")],
    )
    .await;
    assert_eq!(code, 0, "kubectl apply\n{out}\n{err}");
    let get = [
        "get",
        "clusterrolebinding",
        "eks-access-sync:readers",
        "-o",
        "json",
    ];
    let (code, before, err) = kubectl(&w, &admin_kc, &get).await;
    assert_eq!(code, 0, "{err}");

    let report = reconcile(&engine(&w, EXAMPLE)).await;
    let prod = cluster(&report, "prod");
    assert_eq!(prod["status"], "failed", "{report}");
    let error = prod["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("eks-access-sync:readers")
            && error.contains("not labelled app.kubernetes.io/managed-by=eks-access-sync"),
        "a clear message: {error}"
    );
    assert_eq!(cluster(&report, API)["status"], "created", "{report}");

    let (code, after, err) = kubectl(&w, &admin_kc, &get).await;
    assert_eq!(code, 0, "{err}");
    let (before, after): (Value, Value) = (
        serde_json::from_str(&before).expect("JSON"),
        serde_json::from_str(&after).expect("JSON"),
    );
    assert_eq!(after, before, "the foreign binding is unchanged");
    assert_eq!(after["subjects"][0]["name"], "platform-auditors");
    assert!(after["metadata"]["labels"].is_null(), "{after}");

    // The rest of prod was still done: the tier roles are mapped and the developers'
    // RoleBindings made; the readers' rights are not granted there (their binding
    // is not ours), while the API cluster grants them.
    let roles = w.aws_auth_data("prod")["mapRoles"].clone();
    assert!(
        roles.contains("role/eks-view") && roles.contains("role/eks-edit"),
        "{roles}"
    );
    let (code, _, err) = kubectl(
        &w,
        &admin_kc,
        &[
            "get",
            "rolebinding",
            "-n",
            "team-a",
            "eks-access-sync:developers",
        ],
    )
    .await;
    assert_eq!(code, 0, "the developers' RoleBinding in team-a: {err}");
    let session = assume(&w, &rita, VIEW, "rita").await;
    assert!(!can_i(&w, dir.path(), &session, "prod", "get pods").await);
    assert!(can_i(&w, dir.path(), &session, API, "get pods").await);

    // Again: still refused, still untouched.
    let again = reconcile(&engine(&w, EXAMPLE)).await;
    assert_eq!(cluster(&again, "prod")["status"], "failed", "{again}");
    let (_, last, _) = kubectl(&w, &admin_kc, &get).await;
    assert_eq!(serde_json::from_str::<Value>(&last).expect("JSON"), before);
    w.sb.shutdown().await;
}

/// Run with three tiers, then with two: the developers' mapRoles entry, RoleBindings
/// and access entries are gone, and the next run writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tier_removed_from_the_configuration_leaves_nothing_behind() {
    let w = tier_world().await;
    let dave = member(&w, "dave", None, &["developers"]).await;
    let report = reconcile(&engine(&w, EXAMPLE)).await;
    assert_eq!(cluster(&report, "prod")["status"], "updated", "{report}");
    let dir = tempfile::tempdir().expect("tempdir");
    let (ak, sk) = w.sb.operator_credentials();
    let operator = Credentials::new(ak, sk, None, None, "operator");
    let admin_kc = kubeconfig(&w, dir.path(), &operator, "prod").await;
    let bindings = [
        "get",
        "rolebindings,clusterrolebindings",
        "-A",
        "-l",
        "app.kubernetes.io/managed-by=eks-access-sync",
        "-o",
        "jsonpath={range .items[*]}{.kind} {.metadata.namespace}/{.metadata.name}{\"\\n\"}{end}",
    ];
    let (code, out, err) = kubectl(&w, &admin_kc, &bindings).await;
    assert_eq!(code, 0, "{err}");
    let mut listed: Vec<&str> = out.lines().collect();
    listed.sort_unstable();
    assert_eq!(
        listed,
        [
            "ClusterRoleBinding /eks-access-sync:admin",
            "ClusterRoleBinding /eks-access-sync:readers",
            "RoleBinding team-a/eks-access-sync:developers",
            "RoleBinding team-b-web/eks-access-sync:developers",
        ]
    );
    let edit_arn = format!("arn:aws:iam::{ACCOUNT_ID}:role/{EDIT}");
    let entry = |cluster: &'static str| {
        let eks = w.eks.clone();
        let arn = edit_arn.clone();
        async move {
            eks.describe_access_entry()
                .cluster_name(cluster)
                .principal_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    use aws_sdk_eks::error::ProvideErrorMetadata as _;
                    e.code().unwrap_or_default().to_owned()
                })
        }
    };
    entry(API)
        .await
        .expect("the developers' access entry on the API cluster");
    entry("staging").await.expect("and on staging");
    let session = assume(&w, &dave, EDIT, "dave").await;
    assert!(
        can_i(
            &w,
            dir.path(),
            &session,
            "prod",
            "create deployments -n team-a"
        )
        .await
    );

    let two = engine(&w, &without_developers());
    let report = reconcile(&two).await;
    for c in ["prod", "staging", API] {
        let r = cluster(&report, c);
        assert_eq!(r["status"], "updated", "{report}");
        let changes = r["changes"].to_string();
        assert!(changes.contains("role/eks-edit"), "{c}: {r}");
    }
    assert!(
        cluster(&report, "prod")["changes"]
            .to_string()
            .contains("retired tier"),
        "{report}"
    );
    let roles = w.aws_auth_data("prod")["mapRoles"].clone();
    assert!(!roles.contains("role/eks-edit"), "{roles}");
    assert!(
        roles.contains("role/eks-view") && roles.contains("role/eks-admin"),
        "{roles}"
    );
    let (code, out, err) = kubectl(&w, &admin_kc, &bindings).await;
    assert_eq!(code, 0, "{err}");
    let mut listed: Vec<&str> = out.lines().collect();
    listed.sort_unstable();
    assert_eq!(
        listed,
        [
            "ClusterRoleBinding /eks-access-sync:admin",
            "ClusterRoleBinding /eks-access-sync:readers",
        ]
    );
    for c in [API, "staging"] {
        assert_eq!(
            entry(c).await.err().as_deref(),
            Some("ResourceNotFoundException"),
            "{c}: the retired tier's access entry is deleted"
        );
    }
    // dave can still assume eks-edit (its trust policy is no longer managed), but
    // neither cluster knows the role any more.
    let session = assume(&w, &dave, EDIT, "dave").await;
    for c in CLUSTERS {
        let kc = kubeconfig(&w, dir.path(), &session, c).await;
        let (code, out, err) =
            kubectl(&w, &kc, &["auth", "can-i", "get", "pods", "-n", "team-a"]).await;
        assert!(
            code != 0 && err.contains("Unauthorized"),
            "{c}: exit {code}\n{out}\n{err}"
        );
    }

    w.reset_calls().await;
    let again = reconcile(&two).await;
    for c in ["prod", "staging", API] {
        assert_eq!(cluster(&again, c)["status"], "unchanged", "{again}");
    }
    assert_eq!(w.all_writes(), Vec::<String>::new(), "a second run wrote");
    w.sb.shutdown().await;
}

/// A user in two tiers (developers and auditors), offboarded as a runbook does
/// (out of the groups: IAM refuses DeleteUser otherwise, keys, user): the DeleteUser
/// event alone takes them out of both trust policies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_tier_user_deleted_is_in_neither_trust_policy() {
    let w = tier_world().await;
    let olga = member(&w, "olga", None, &["developers", "auditors"]).await;
    let dave = member(&w, "dave", None, &["developers"]).await;
    let engine = engine(&w, EXAMPLE);
    reconcile(&engine).await;
    assert_eq!(
        trusted(&w, EDIT).await,
        [user_arn("dave"), user_arn("olga")]
    );
    assert_eq!(trusted(&w, VIEW).await, [user_arn("olga")]);
    for role in [EDIT, VIEW] {
        assume(&w, &olga, role, "olga").await;
    }

    for group in ["developers", "auditors"] {
        w.iam
            .remove_user_from_group()
            .user_name("olga")
            .group_name(group)
            .send()
            .await
            .expect("RemoveUserFromGroup");
    }
    w.delete_user("olga").await;
    let report = iam_events::handle(&engine, event("iam-delete-user", "olga"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for t in ["developers", "readers"] {
        assert_eq!(
            tier(&report, t)["trustPolicy"]["changed"],
            true,
            "{t}: {report}"
        );
    }
    for role in [EDIT, VIEW] {
        let left = trusted(&w, role).await;
        assert!(
            left.iter()
                .all(|p| !p.ends_with("user/olga") && !p.starts_with("AIDA")),
            "{role}: olga (or her dangling id) is gone: {left:?}"
        );
        assert_eq!(
            w.assume(&olga, role, "olga").await.err().as_deref(),
            Some("InvalidClientTokenId"),
            "a deleted user's key is refused"
        );
    }
    assert_eq!(trusted(&w, EDIT).await, [user_arn("dave")], "dave stays");
    assume(&w, &dave, EDIT, "dave").await;

    // A user re-created under the name, in no group, gets neither role.
    let again = w.create_user("olga", false).await;
    for role in [EDIT, VIEW] {
        assert_eq!(
            w.assume(&again, role, "olga").await.err().as_deref(),
            Some("AccessDenied")
        );
    }
    w.sb.shutdown().await;
}

/// The functions run as their own role, which `bootstrap` (run by a cluster admin)
/// gives access to a cluster. On an aws-auth cluster the tiers need more than aws-auth:
/// namespaces to expand patterns, the bindings, and `bind` on the four ClusterRoles
/// (Kubernetes refuses a binding to rights its writer lacks otherwise). Exactly that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_grants_the_functions_what_tiers_need_and_no_more() {
    let w = tier_world().await;
    let dave = member(&w, "dave", None, &["developers"]).await;
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": w.sb.operator_arn()}, "Action": "sts:AssumeRole"}]});
    let role_arn = w
        .iam
        .create_role()
        .role_name("eks-access-sync-functions")
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("CreateRole")
        .role
        .expect("role")
        .arn;
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = cli_binary();
    let bootstrap = || {
        let mut c = command(&w.sb, bin.to_str().expect("utf-8"), dir.path());
        c.args(["bootstrap", "--cluster", "prod", "--role-arn", &role_arn]);
        run(c)
    };
    let (code, out, err) = bootstrap().await;
    assert_eq!(code, 0, "bootstrap\n{out}\n{err}");
    assert!(
        out.contains("ClusterRole eks-access-sync:functions-rbac: created")
            && out.contains("ClusterRoleBinding eks-access-sync:functions-rbac: created"),
        "bootstrap says what it granted:\n{out}"
    );

    // As Lambda runs: the functions' role's session.
    let functions = w
        .assume(
            &Credentials::new(
                w.sb.operator_credentials().0,
                w.sb.operator_credentials().1,
                None,
                None,
                "operator",
            ),
            "eks-access-sync-functions",
            "eks-access-sync",
        )
        .await
        .expect("AssumeRole of the functions' role");
    let sdk = crate::support::sdk_config(&w.sb, functions.clone()).await;
    let engine = SdkEngine::from_sdk(config_with(&[("ACCESS_CONFIG", EXAMPLE)]), &sdk);
    let report = reconcile::handle(&engine, json!({"clusters": ["prod"]}))
        .await
        .expect("report");
    let prod = cluster(&report, "prod");
    assert_eq!(prod["status"], "updated", "{report}");
    assert!(prod["error"].is_null(), "{report}");
    let session = assume(&w, &dave, EDIT, "dave").await;
    assert!(
        can_i(
            &w,
            dir.path(),
            &session,
            "prod",
            "create deployments -n team-a"
        )
        .await
    );

    // The functions' identity may do what the tiers need, and nothing more.
    let rights = [
        ("list namespaces", true),
        ("list rolebindings -A", true),
        ("create rolebindings -n team-a", true),
        ("delete rolebindings -n team-b-web", true),
        ("update clusterrolebindings", true),
        ("delete clusterrolebindings", true),
        ("update configmaps/aws-auth -n kube-system", true),
        ("bind clusterroles/cluster-admin", true),
        ("bind clusterroles/admin", true),
        ("bind clusterroles/edit", true),
        ("bind clusterroles/view", true),
        ("create pods -n team-a", false),
        ("get secrets -n kube-system", false),
        ("update clusterroles/view", false),
        ("create clusterroles", false),
        ("delete namespaces", false),
        ("bind clusterroles/eks-access-sync:functions-rbac", false),
    ];
    for (question, want) in rights {
        assert_eq!(
            can_i(&w, dir.path(), &functions, "prod", question).await,
            want,
            "the functions' role: can-i {question}"
        );
    }

    // The functions' own RBAC (labelled managed-by, like the tiers' bindings) is not
    // a retired tier's: the tiers' runs leave it, and the next run is still allowed.
    let again = reconcile::handle(&engine, json!({"clusters": ["prod"]}))
        .await
        .expect("report");
    assert_eq!(cluster(&again, "prod")["status"], "unchanged", "{again}");
    let (code, out, err) = bootstrap().await;
    assert_eq!(code, 0, "bootstrap again\n{out}\n{err}");
    assert!(
        out.contains("RoleBinding kube-system/eks-access-sync: unchanged")
            && out.contains("ClusterRole eks-access-sync:functions-rbac: unchanged")
            && out.contains("ClusterRoleBinding eks-access-sync:functions-rbac: unchanged"),
        "{out}"
    );
    w.sb.shutdown().await;
}

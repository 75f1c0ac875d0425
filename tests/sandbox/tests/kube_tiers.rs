//! Access tiers on the sandbox's Kubernetes API, asked through the real kubectl
//! (`kubectl auth can-i`) and the kube crate: the default ClusterRoles bound by
//! RoleBindings/ClusterRoleBindings on an aws-auth cluster, EKS access policies
//! at cluster and namespace scope on an API cluster, namespaces, binding CRUD
//! with a label selector, and RBAC's escalation check.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_credential_types::Credentials;
use base64::Engine as _;
use eks_access_sync::adapters::kube::token::eks_token;
use eks_sandbox::kube::{ClusterServer, start_cluster_server};
use eks_sandbox::state::{
    AccessEntry, AuthMode, Cluster, ClusterFaults, Credential, PolicyAssociation, Principal,
    Shared, SharedState,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, Role, RoleBinding, RoleRef, Subject};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

const ACCT: &str = "123456789012";
const REGION: &str = "us-east-1";
const MANAGED: &str = "app.kubernetes.io/managed-by";

fn user_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCT}:user/{name}")
}

fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCT}:role/{name}")
}

fn add_user(shared: &Shared, name: &str) -> Credentials {
    let akid = format!("AKIA{:0>16}", name.to_uppercase().replace('-', ""));
    let secret = format!("secret-of-{name}");
    shared.lock().unwrap().credentials.insert(
        akid.clone(),
        Credential {
            access_key_id: akid.clone(),
            secret_access_key: secret.clone(),
            session_token: None,
            expires_at: None,
            principal: Principal::User {
                arn: user_arn(name),
                user_id: format!("AIDA{:0>17}", name.to_uppercase().replace('-', "")),
            },
        },
    );
    Credentials::new(akid, secret, None, None, "test")
}

/// A session of role `role` for `session` (its access key differs per role).
fn add_session(shared: &Shared, role: &str, session: &str) -> Credentials {
    let akid = format!("ASIA{:0>16}", role.to_uppercase().replace('-', ""));
    let token = format!("token-of-{role}");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    shared.lock().unwrap().credentials.insert(
        akid.clone(),
        Credential {
            access_key_id: akid.clone(),
            secret_access_key: "session-secret".into(),
            session_token: Some(token.clone()),
            expires_at: Some(now + 3600),
            principal: Principal::AssumedRole {
                role_arn: role_arn(role),
                role_id: format!("AROA{:0>17}", role.to_uppercase().replace('-', "")),
                session_name: session.to_string(),
            },
        },
    );
    Credentials::new(akid, "session-secret", Some(token), None, "test")
}

async fn cluster(shared: &Shared, name: &str, mode: AuthMode) -> ClusterServer {
    shared.lock().unwrap().clusters.insert(
        name.to_string(),
        Cluster {
            name: name.to_string(),
            arn: format!("arn:aws:eks:{REGION}:{ACCT}:cluster/{name}"),
            region: REGION.to_string(),
            version: "1.33".to_string(),
            created_at: 0,
            tags: BTreeMap::new(),
            auth_mode: mode,
            creator_arn: user_arn("creator"),
            endpoint: String::new(),
            ca_data_b64: String::new(),
            access_entries: BTreeMap::new(),
            objects: BTreeMap::new(),
            resource_version: 0,
            faults: ClusterFaults::default(),
            aws_auth_read: Default::default(),
        },
    );
    start_cluster_server(
        shared.clone(),
        name,
        vec!["sts.us-east-1.amazonaws.com".into()],
    )
    .await
    .expect("server starts")
}

fn token(creds: &Credentials, cluster: &str) -> String {
    eks_token(creds, REGION, cluster, None, SystemTime::now())
        .expect("token")
        .expose()
        .to_string()
}

fn kubeconfig_yaml(server: &ClusterServer, token: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(&server.ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n    namespace: default\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: {token}\n",
        server.endpoint
    )
}

async fn client(server: &ClusterServer, token: &str) -> kube::Client {
    let kc = Kubeconfig::from_yaml(&kubeconfig_yaml(server, token)).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    kube::Client::try_from(cfg).expect("client")
}

fn api_status(err: kube::Error) -> (u16, String, String) {
    match err {
        kube::Error::Api(s) => (s.code, s.reason.clone(), s.message.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Runs kubectl as the holder of `token`: (success, stdout, stderr).
async fn kubectl(server: &ClusterServer, token: &str, args: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, kubeconfig_yaml(server, token)).expect("write");
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("kubectl")
            .env("KUBECONFIG", &kc)
            .env("HOME", dir.path())
            .args(&args)
            .output()
            .expect("kubectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("join")
}

/// `kubectl auth can-i VERB RESOURCE -n NS` as `token`: true for "yes".
async fn can_i(server: &ClusterServer, token: &str, verb: &str, resource: &str, ns: &str) -> bool {
    let scope: &[&str] = if ns.is_empty() { &["-A"] } else { &["-n", ns] };
    let args: Vec<&str> = ["auth", "can-i", verb, resource]
        .into_iter()
        .chain(scope.iter().copied())
        .collect();
    let (ok, out, err) = kubectl(server, token, &args).await;
    assert!(
        !err.contains("doesn't have a resource type"),
        "kubectl could not resolve {resource}: {err}"
    );
    match out.trim() {
        "yes" => {
            assert!(ok, "{err}");
            true
        }
        "no" => false,
        other => panic!("can-i {verb} {resource} -n {ns}: {other:?} {err}"),
    }
}

fn binding(name: &str, ns: Option<&str>, cluster_role: &str, group: &str) -> RoleBinding {
    RoleBinding {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: ns.map(str::to_string),
            labels: Some(BTreeMap::from([(
                MANAGED.to_string(),
                "eks-access-sync".to_string(),
            )])),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: cluster_role.into(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Group".into(),
            name: group.into(),
            ..Default::default()
        }]),
    }
}

fn cluster_binding(name: &str, cluster_role: &str, group: &str) -> ClusterRoleBinding {
    let b = binding(name, None, cluster_role, group);
    ClusterRoleBinding {
        metadata: b.metadata,
        role_ref: b.role_ref,
        subjects: b.subjects,
    }
}

const TIER_MAP_ROLES: &str = "- rolearn: arn:aws:iam::123456789012:role/eks-view\n  username: eks-view:{{SessionName}}\n  groups:\n  - eks-access-sync:readers\n- rolearn: arn:aws:iam::123456789012:role/eks-edit\n  username: eks-edit:{{SessionName}}\n  groups:\n  - eks-access-sync:developers\n- rolearn: arn:aws:iam::123456789012:role/eks-admin\n  username: eks-admin:{{SessionName}}\n  groups:\n  - eks-access-sync:admins\n- rolearn: arn:aws:iam::123456789012:role/eks-none\n  username: eks-none:{{SessionName}}\n";

/// A CONFIG_MAP cluster with aws-auth mapping three tier roles to their groups
/// and one role to no group, and namespaces team-a and team-b-web made by kubectl.
async fn config_map_world() -> (Shared, ClusterServer, String) {
    let shared: Shared = Arc::new(Mutex::new(SharedState::default()));
    let creator = add_user(&shared, "creator");
    let server = cluster(&shared, "prod", AuthMode::ConfigMap).await;
    let admin_token = token(&creator, "prod");
    let admin = client(&server, &admin_token).await;
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("aws-auth".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "mapRoles".to_string(),
            TIER_MAP_ROLES.to_string(),
        )])),
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(admin, "kube-system")
        .create(&PostParams::default(), &cm)
        .await
        .expect("aws-auth");
    for ns in ["team-a", "team-b-web"] {
        let (ok, out, err) = kubectl(&server, &admin_token, &["create", "namespace", ns]).await;
        assert!(ok, "{out}{err}");
        assert_eq!(out.trim(), format!("namespace/{ns} created"));
    }
    (shared, server, admin_token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_can_i_tells_the_default_cluster_roles_apart() {
    let (shared, server, admin_token) = config_map_world().await;
    let admin = client(&server, &admin_token).await;
    // The tool's bindings: readers cluster-wide, developers and admins in team-a.
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(
            &PostParams::default(),
            &cluster_binding("eks-access-sync:readers", "view", "eks-access-sync:readers"),
        )
        .await
        .expect("crb");
    let in_team_a = Api::<RoleBinding>::namespaced(admin, "team-a");
    for (name, role, group) in [
        (
            "eks-access-sync:developers",
            "edit",
            "eks-access-sync:developers",
        ),
        ("eks-access-sync:admins", "admin", "eks-access-sync:admins"),
    ] {
        in_team_a
            .create(&PostParams::default(), &binding(name, None, role, group))
            .await
            .expect("rb");
    }
    let t = |role: &str| token(&add_session(&shared, role, "casey@example.com"), "prod");
    let (reader, developer, tier_admin, none) =
        (t("eks-view"), t("eks-edit"), t("eks-admin"), t("eks-none"));

    // view, cluster-wide: reads pods everywhere, never secrets, never writes.
    assert!(can_i(&server, &reader, "get", "pods", "team-a").await);
    assert!(can_i(&server, &reader, "list", "deployments", "kube-system").await);
    assert!(!can_i(&server, &reader, "create", "pods", "team-a").await);
    assert!(!can_i(&server, &reader, "get", "secrets", "team-a").await);
    let (ok, out, err) = kubectl(&server, &reader, &["get", "pods", "-n", "team-a"]).await;
    assert!(ok, "{out}{err}");
    let (ok, _, err) = kubectl(
        &server,
        &reader,
        &["create", "configmap", "x", "-n", "team-a"],
    )
    .await;
    assert!(!ok && err.contains("forbidden"), "{err}");

    // edit in team-a only: workloads, secrets; not roles or bindings; nothing elsewhere.
    assert!(can_i(&server, &developer, "create", "deployments", "team-a").await);
    assert!(can_i(&server, &developer, "get", "secrets", "team-a").await);
    assert!(can_i(&server, &developer, "create", "secrets", "team-a").await);
    assert!(can_i(&server, &developer, "create", "pods/exec", "team-a").await);
    assert!(!can_i(&server, &developer, "create", "rolebindings", "team-a").await);
    assert!(!can_i(&server, &developer, "create", "deployments", "kube-system").await);
    assert!(!can_i(&server, &developer, "get", "pods", "team-b-web").await);
    let (ok, out, err) = kubectl(
        &server,
        &developer,
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "-n",
            "team-a",
        ],
    )
    .await;
    assert!(ok, "{out}{err}");
    let (ok, _, err) = kubectl(
        &server,
        &developer,
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "-n",
            "kube-system",
        ],
    )
    .await;
    assert!(!ok && err.contains("forbidden"), "{err}");

    // `can-i --list` shows the bound rules of a namespace.
    let listed = |ns: &'static str| {
        let developer = developer.clone();
        let server = &server;
        async move {
            let (ok, out, err) =
                kubectl(server, &developer, &["auth", "can-i", "--list", "-n", ns]).await;
            assert!(ok, "{err}");
            out
        }
    };
    let team_a = listed("team-a").await;
    assert!(
        team_a
            .lines()
            .any(|l| l.starts_with("deployments.apps ") && l.contains("create")),
        "{team_a}"
    );
    assert!(
        team_a.contains("selfsubjectaccessreviews.authorization.k8s.io"),
        "{team_a}"
    );
    assert!(!team_a.contains("rolebindings.rbac"), "{team_a}");
    let kube_system = listed("kube-system").await;
    assert!(!kube_system.contains("deployments.apps"), "{kube_system}");

    // admin in team-a: roles and bindings there too, not cluster-wide.
    assert!(can_i(&server, &tier_admin, "create", "rolebindings", "team-a").await);
    assert!(can_i(&server, &tier_admin, "delete", "roles", "team-a").await);
    assert!(
        !can_i(
            &server,
            &tier_admin,
            "create",
            "rolebindings",
            "kube-system"
        )
        .await
    );
    assert!(
        !can_i(
            &server,
            &tier_admin,
            "create",
            "clusterrolebindings",
            "team-a"
        )
        .await
    );
    assert!(!can_i(&server, &tier_admin, "delete", "namespaces", "team-a").await);

    // Mapped without a group: discovery and self-review only.
    assert!(!can_i(&server, &none, "get", "pods", "default").await);
    let (ok, out, err) = kubectl(&server, &none, &["auth", "whoami", "-o", "json"]).await;
    assert!(
        ok && out.contains("eks-none:casey-example.com"),
        "{out}{err}"
    );
    let (ok, out, err) = kubectl(
        &server,
        &none,
        &["api-resources", "--api-group=rbac.authorization.k8s.io"],
    )
    .await;
    assert!(ok && out.contains("rolebindings"), "{out}{err}");
    let (ok, _, err) = kubectl(&server, &none, &["get", "configmaps", "-n", "default"]).await;
    assert!(!ok && err.contains("forbidden"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eks_access_policies_at_cluster_and_namespace_scope() {
    let shared: Shared = Arc::new(Mutex::new(SharedState::default()));
    let server = cluster(&shared, "api", AuthMode::Api).await;
    let policy = |name: &str, namespaces: &[&str]| PolicyAssociation {
        policy_arn: format!("arn:aws:eks::aws:cluster-access-policy/{name}"),
        scope_type: if namespaces.is_empty() {
            "cluster"
        } else {
            "namespace"
        }
        .into(),
        namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
        associated_at: 0,
        modified_at: 0,
    };
    {
        let mut st = shared.lock().unwrap();
        let c = st.clusters.get_mut("api").expect("cluster");
        for (role, p) in [
            ("eks-view", policy("AmazonEKSViewPolicy", &[])),
            (
                "eks-edit",
                policy("AmazonEKSEditPolicy", &["team-a", "team-b-*"]),
            ),
            ("eks-admin", policy("AmazonEKSAdminPolicy", &["team-a"])),
            ("eks-root", policy("AmazonEKSClusterAdminPolicy", &[])),
        ] {
            c.access_entries.insert(
                role_arn(role),
                AccessEntry {
                    principal_arn: role_arn(role),
                    username: String::new(),
                    kubernetes_groups: vec![],
                    entry_type: "STANDARD".into(),
                    policies: vec![p],
                    created_at_ms: 0,
                    modified_at: 0,
                    principal_id: None,
                },
            );
        }
    }
    let t = |role: &str| token(&add_session(&shared, role, "casey"), "api");
    let (reader, developer, ns_admin, root) =
        (t("eks-view"), t("eks-edit"), t("eks-admin"), t("eks-root"));

    assert!(can_i(&server, &reader, "get", "pods", "team-a").await);
    assert!(can_i(&server, &reader, "get", "pods", "kube-system").await);
    assert!(!can_i(&server, &reader, "create", "pods", "team-a").await);
    assert!(!can_i(&server, &reader, "get", "secrets", "team-a").await);

    // Namespace scope with a pattern: team-a and team-b-* but not team-b.
    assert!(can_i(&server, &developer, "create", "deployments", "team-a").await);
    assert!(can_i(&server, &developer, "create", "deployments", "team-b-web").await);
    assert!(!can_i(&server, &developer, "create", "deployments", "team-b").await);
    assert!(!can_i(&server, &developer, "get", "pods", "kube-system").await);
    assert!(!can_i(&server, &developer, "create", "rolebindings", "team-a").await);

    assert!(can_i(&server, &ns_admin, "create", "rolebindings", "team-a").await);
    assert!(!can_i(&server, &ns_admin, "create", "rolebindings", "team-b-web").await);
    assert!(!can_i(&server, &ns_admin, "list", "namespaces", "").await);

    assert!(can_i(&server, &root, "create", "clusterrolebindings", "").await);
    assert!(can_i(&server, &root, "delete", "namespaces", "").await);

    // As on EKS, `can-i --list` does not show what access policies grant.
    let (ok, out, err) = kubectl(
        &server,
        &developer,
        &["auth", "can-i", "--list", "-n", "team-a"],
    )
    .await;
    assert!(ok, "{err}");
    assert!(!out.contains("deployments.apps"), "{out}");
    assert!(
        out.contains("selfsubjectreviews.authentication.k8s.io"),
        "{out}"
    );

    // A namespace-scoped entry writes in its namespace through the API.
    let (ok, out, err) = kubectl(&server, &root, &["create", "namespace", "team-b-web"]).await;
    assert!(ok, "{out}{err}");
    let cms = Api::<ConfigMap>::namespaced(client(&server, &developer).await, "team-b-web");
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("app".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    cms.create(&PostParams::default(), &cm)
        .await
        .expect("edit writes in team-b-web");
    let kube_system =
        Api::<ConfigMap>::namespaced(client(&server, &developer).await, "kube-system");
    let (code, _, message) = api_status(
        kube_system
            .create(&PostParams::default(), &cm)
            .await
            .expect_err("not in scope"),
    );
    assert_eq!(code, 403, "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_are_listed_created_and_deleted() {
    let (_shared, server, admin_token) = config_map_world().await;
    let (ok, out, err) = kubectl(&server, &admin_token, &["get", "namespaces", "-o", "name"]).await;
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec![
            "namespace/default",
            "namespace/kube-node-lease",
            "namespace/kube-public",
            "namespace/kube-system",
            "namespace/team-a",
            "namespace/team-b-web",
        ]
    );
    let admin = client(&server, &admin_token).await;
    let nss = Api::<Namespace>::all(admin.clone());
    let team_a = nss.get("team-a").await.expect("get");
    assert_eq!(
        team_a.status.and_then(|s| s.phase).as_deref(),
        Some("Active")
    );
    assert_eq!(
        team_a.metadata.labels.unwrap_or_default()["kubernetes.io/metadata.name"],
        "team-a"
    );
    // Invalid names and existing ones are refused as Kubernetes does.
    let (ok, _, err) = kubectl(&server, &admin_token, &["create", "namespace", "team.a"]).await;
    assert!(!ok && err.contains("RFC 1123 label"), "{err}");
    let (ok, _, err) = kubectl(&server, &admin_token, &["create", "namespace", "team-a"]).await;
    assert!(!ok && err.contains("already exists"), "{err}");

    // Deleting a namespace removes what was in it; default cannot be deleted.
    Api::<RoleBinding>::namespaced(admin.clone(), "team-a")
        .create(&PostParams::default(), &binding("b", None, "view", "g"))
        .await
        .expect("rb");
    let (ok, out, err) = kubectl(&server, &admin_token, &["delete", "namespace", "team-a"]).await;
    assert!(ok, "{out}{err}");
    assert_eq!(
        api_status(nss.get("team-a").await.expect_err("gone")).0,
        404
    );
    let (ok, _, err) = kubectl(&server, &admin_token, &["create", "namespace", "team-a"]).await;
    assert!(ok, "{err}");
    let left = Api::<RoleBinding>::namespaced(admin, "team-a")
        .list(&ListParams::default())
        .await
        .expect("list");
    assert!(left.items.is_empty(), "{:?}", left.items);
    let (ok, _, err) = kubectl(&server, &admin_token, &["delete", "namespace", "default"]).await;
    assert!(
        !ok && err.contains("this namespace may not be deleted"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_crud_with_a_label_selector() {
    let (_shared, server, admin_token) = config_map_world().await;
    let admin = client(&server, &admin_token).await;
    let rbs = Api::<RoleBinding>::namespaced(admin.clone(), "team-a");
    let ours = binding(
        "eks-access-sync:developers",
        None,
        "edit",
        "eks-access-sync:developers",
    );
    let mut theirs = binding("hand-made", None, "view", "auditors");
    theirs.metadata.labels = None;
    rbs.create(&PostParams::default(), &ours)
        .await
        .expect("ours");
    rbs.create(&PostParams::default(), &theirs)
        .await
        .expect("theirs");
    let selected = rbs
        .list(&ListParams::default().labels(&format!("{MANAGED}=eks-access-sync")))
        .await
        .expect("list");
    let names: Vec<String> = selected
        .items
        .iter()
        .filter_map(|b| b.metadata.name.clone())
        .collect();
    assert_eq!(names, vec!["eks-access-sync:developers"]);
    assert_eq!(
        rbs.list(&ListParams::default())
            .await
            .expect("all")
            .items
            .len(),
        2
    );
    // Across namespaces: ours in team-b-web too, found by the same selector.
    Api::<RoleBinding>::namespaced(admin.clone(), "team-b-web")
        .create(&PostParams::default(), &ours)
        .await
        .expect("ours in team-b-web");
    let everywhere = Api::<RoleBinding>::all(admin.clone())
        .list(&ListParams::default().labels(&format!("{MANAGED}=eks-access-sync")))
        .await
        .expect("list all namespaces");
    let found: Vec<(String, String)> = everywhere
        .items
        .iter()
        .map(|b| {
            (
                b.metadata.namespace.clone().unwrap_or_default(),
                b.metadata.name.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                "team-a".to_string(),
                "eks-access-sync:developers".to_string()
            ),
            (
                "team-b-web".to_string(),
                "eks-access-sync:developers".to_string()
            ),
        ]
    );

    // Replace: new subjects are fine; a different roleRef is refused (422).
    let mut current = rbs.get("eks-access-sync:developers").await.expect("get");
    current.subjects.get_or_insert_default().push(Subject {
        kind: "Group".into(),
        name: "sre".into(),
        api_group: Some("rbac.authorization.k8s.io".into()),
        ..Default::default()
    });
    let replaced = rbs
        .replace(
            "eks-access-sync:developers",
            &PostParams::default(),
            &current,
        )
        .await
        .expect("replace");
    assert_eq!(replaced.subjects.unwrap_or_default().len(), 2);
    let mut changed = rbs.get("eks-access-sync:developers").await.expect("get");
    changed.role_ref.name = "admin".into();
    let (code, reason, message) = api_status(
        rbs.replace(
            "eks-access-sync:developers",
            &PostParams::default(),
            &changed,
        )
        .await
        .expect_err("roleRef is immutable"),
    );
    assert_eq!((code, reason.as_str()), (422, "Invalid"), "{message}");
    assert!(message.contains("cannot change roleRef"), "{message}");

    // ClusterRoleBindings: only to a ClusterRole; the selector finds only ours
    // among the defaults.
    let crbs = Api::<ClusterRoleBinding>::all(admin);
    let mut to_role = cluster_binding("to-a-role", "view", "g");
    to_role.role_ref.kind = "Role".into();
    let (code, _, message) = api_status(
        crbs.create(&PostParams::default(), &to_role)
            .await
            .expect_err("a Role cannot be bound cluster-wide"),
    );
    assert_eq!(code, 422, "{message}");
    assert!(
        message.contains("roleRef.kind: Unsupported value: \"Role\""),
        "{message}"
    );
    crbs.create(
        &PostParams::default(),
        &cluster_binding("eks-access-sync:readers", "view", "eks-access-sync:readers"),
    )
    .await
    .expect("crb");
    let all = crbs.list(&ListParams::default()).await.expect("all");
    assert!(all.items.len() > 1, "defaults are there too");
    let ours = crbs
        .list(&ListParams::default().labels(&format!("{MANAGED}=eks-access-sync")))
        .await
        .expect("selected");
    assert_eq!(ours.items.len(), 1);
    crbs.delete("eks-access-sync:readers", &DeleteParams::default())
        .await
        .expect("delete");
    rbs.delete("eks-access-sync:developers", &DeleteParams::default())
        .await
        .expect("delete");
    assert_eq!(
        api_status(crbs.get("eks-access-sync:readers").await.expect_err("gone")).0,
        404
    );
    let (ok, out, err) = kubectl(
        &server,
        &admin_token,
        &[
            "get",
            "rolebindings",
            "-n",
            "team-a",
            "-l",
            "app.kubernetes.io/managed-by=eks-access-sync",
            "-o",
            "name",
        ],
    )
    .await;
    assert!(ok && out.trim().is_empty(), "{out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_a_role_needs_bind_or_its_rules() {
    let (shared, server, admin_token) = config_map_world().await;
    let admin = client(&server, &admin_token).await;
    // The "none" role gets a binder Role in team-a: manage rolebindings only.
    let rule = |resources: &[&str], verbs: &[&str], names: &[&str]| PolicyRule {
        api_groups: Some(vec!["rbac.authorization.k8s.io".into()]),
        resources: Some(resources.iter().map(|s| s.to_string()).collect()),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        resource_names: (!names.is_empty()).then(|| names.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    };
    Api::<Role>::namespaced(admin.clone(), "team-a")
        .create(
            &PostParams::default(),
            &Role {
                metadata: ObjectMeta {
                    name: Some("binder".into()),
                    ..Default::default()
                },
                rules: Some(vec![rule(
                    &["rolebindings"],
                    &["create", "get", "list"],
                    &[],
                )]),
            },
        )
        .await
        .expect("role");
    let mut rb = binding("binder", None, "binder", "unused");
    rb.role_ref.kind = "Role".into();
    rb.subjects = Some(vec![Subject {
        kind: "User".into(),
        name: "eks-none:casey".into(),
        ..Default::default()
    }]);
    Api::<RoleBinding>::namespaced(admin.clone(), "team-a")
        .create(&PostParams::default(), &rb)
        .await
        .expect("binder binding");

    let none = client(
        &server,
        &token(&add_session(&shared, "eks-none", "casey"), "prod"),
    )
    .await;
    let rbs = Api::<RoleBinding>::namespaced(none, "team-a");
    let want = binding("devs", None, "edit", "eks-access-sync:developers");
    let (code, _, message) = api_status(
        rbs.create(&PostParams::default(), &want)
            .await
            .expect_err("escalation"),
    );
    assert_eq!(code, 403, "{message}");
    assert!(
        message.starts_with(
            "rolebindings.rbac.authorization.k8s.io \"devs\" is forbidden: user \"eks-none:casey\""
        ) && message.contains("is attempting to grant RBAC permissions not currently held"),
        "{message}"
    );

    // `bind` on exactly that ClusterRole lets it through (as bootstrap would grant).
    Api::<ClusterRole>::all(admin.clone())
        .create(
            &PostParams::default(),
            &ClusterRole {
                metadata: ObjectMeta {
                    name: Some("bind-tier-roles".into()),
                    ..Default::default()
                },
                rules: Some(vec![rule(&["clusterroles"], &["bind"], &["edit", "view"])]),
                ..Default::default()
            },
        )
        .await
        .expect("bind role");
    let mut crb = cluster_binding("bind-tier-roles", "bind-tier-roles", "unused");
    crb.subjects = Some(vec![Subject {
        kind: "User".into(),
        name: "eks-none:casey".into(),
        ..Default::default()
    }]);
    Api::<ClusterRoleBinding>::all(admin)
        .create(&PostParams::default(), &crb)
        .await
        .expect("crb");
    rbs.create(&PostParams::default(), &want)
        .await
        .expect("bind allows edit");
    let (code, _, message) = api_status(
        rbs.create(
            &PostParams::default(),
            &binding("ghost", None, "no-such-role", "g"),
        )
        .await
        .expect_err("no such role"),
    );
    assert_eq!(
        (code, message.as_str()),
        (
            404,
            "clusterroles.rbac.authorization.k8s.io \"no-such-role\" not found"
        )
    );
    let mut admin_binding = binding("admins", None, "admin", "eks-access-sync:admins");
    admin_binding.metadata.labels = None;
    assert_eq!(
        api_status(
            rbs.create(&PostParams::default(), &admin_binding)
                .await
                .expect_err("admin is not in resourceNames")
        )
        .0,
        403
    );
}

//! The per-cluster Kubernetes API server, driven by the real kube client and
//! kubectl with tokens from the production presigner
//! (`eks_access_sync::adapters::kube::token::eks_token`). No AWS front door needed: the
//! shared state is built by hand.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use base64::Engine as _;
use eks_access_sync::adapters::kube::token::eks_token;
use eks_sandbox::kube::{ClusterServer, start_cluster_server};
use eks_sandbox::state::{
    AccessEntry, AuthMode, Cluster, ClusterFaults, Credential, PolicyAssociation, Principal,
    Shared, SharedState,
};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

const ACCT: &str = "123456789012";
const REGION: &str = "us-east-1";
const STS_HOSTS: [&str; 3] = [
    "sts.amazonaws.com",
    "sts.us-east-1.amazonaws.com",
    "127.0.0.1:4566",
];

fn user_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCT}:user/{name}")
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

fn add_session(shared: &Shared, role_arn: &str, session: &str, expires_in: i64) -> Credentials {
    let akid = format!("ASIA{:0>16}", session.len());
    let secret = "session-secret".to_string();
    let token = "FwoGZXIvYXdzEJr//////////wEaDKe+token==".to_string();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    shared.lock().unwrap().credentials.insert(
        akid.clone(),
        Credential {
            access_key_id: akid.clone(),
            secret_access_key: secret.clone(),
            session_token: Some(token.clone()),
            expires_at: Some(now + expires_in),
            principal: Principal::AssumedRole {
                role_arn: role_arn.to_string(),
                role_id: "AROAEXAMPLEROLEID0001".to_string(),
                session_name: session.to_string(),
            },
        },
    );
    Credentials::new(akid, secret, Some(token), None, "test")
}

fn add_cluster(shared: &Shared, name: &str, mode: AuthMode, creator: &str) {
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
            creator_arn: creator.to_string(),
            endpoint: String::new(),
            ca_data_b64: String::new(),
            access_entries: BTreeMap::new(),
            objects: BTreeMap::new(),
            resource_version: 0,
            faults: ClusterFaults::default(),
            aws_auth_read: Default::default(),
        },
    );
}

async fn start(shared: &Shared, name: &str) -> ClusterServer {
    let server = start_cluster_server(
        shared.clone(),
        name,
        STS_HOSTS.iter().map(|s| s.to_string()).collect(),
    )
    .await
    .expect("server starts");
    let mut st = shared.lock().unwrap();
    let c = st.clusters.get_mut(name).expect("cluster");
    c.endpoint = server.endpoint.clone();
    c.ca_data_b64 = base64::engine::general_purpose::STANDARD.encode(&server.ca_pem);
    server
}

fn token_at(creds: &Credentials, cluster: &str, at: SystemTime) -> String {
    eks_token(creds, REGION, cluster, None, at)
        .expect("token")
        .expose()
        .to_string()
}

fn token(creds: &Credentials, cluster: &str) -> String {
    token_at(creds, cluster, SystemTime::now())
}

fn kubeconfig_yaml(server: &ClusterServer, token: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(&server.ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n    namespace: kube-system\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: {token}\n",
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

async fn whoami(c: &kube::Client) -> Result<SelfSubjectReview, kube::Error> {
    Api::<SelfSubjectReview>::all(c.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
}

const DEPLOYER_ROLE: &str = "arn:aws:iam::123456789012:role/ops/Deployer";

fn aws_auth(map_roles: &str, map_users: &str, map_accounts: Option<&str>) -> ConfigMap {
    let mut data = BTreeMap::new();
    data.insert("mapRoles".to_string(), map_roles.to_string());
    data.insert("mapUsers".to_string(), map_users.to_string());
    if let Some(a) = map_accounts {
        data.insert("mapAccounts".to_string(), a.to_string());
    }
    ConfigMap {
        metadata: ObjectMeta {
            name: Some("aws-auth".into()),
            namespace: Some("kube-system".into()),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    }
}

const MAP_ROLES: &str = "- rolearn: arn:aws:iam::123456789012:role/Deployer\n  username: deployer:{{SessionName}}\n  groups:\n  - ops\n- rolearn: arn:aws:iam::123456789012:role/NodeRole\n  username: system:node:{{EC2PrivateDNSName}}\n  groups:\n  - system:bootstrappers\n  - system:nodes\n";
const MAP_USERS: &str = "- userarn: arn:aws:iam::123456789012:user/alice\n  username: alice\n  groups:\n  - system:masters\n- userarn: arn:aws:iam::123456789012:user/reader\n  username: reader\n- userarn: arn:aws:iam::123456789012:user/bootstrap\n  username: eks-access-sync\n";

struct World {
    shared: Shared,
    server: ClusterServer,
    creator: Credentials,
}

/// A CONFIG_MAP cluster "prod" whose aws-auth (written by the creator)
/// maps a role, three users, and nothing else.
async fn world() -> World {
    let shared: Shared = Arc::new(Mutex::new(SharedState::default()));
    let creator = add_user(&shared, "creator");
    add_cluster(&shared, "prod", AuthMode::ConfigMap, &user_arn("creator"));
    let server = start(&shared, "prod").await;
    let c = client(&server, &token(&creator, "prod")).await;
    Api::<ConfigMap>::namespaced(c, "kube-system")
        .create(
            &PostParams::default(),
            &aws_auth(MAP_ROLES, MAP_USERS, None),
        )
        .await
        .expect("creator writes aws-auth");
    World {
        shared,
        server,
        creator,
    }
}

#[tokio::test]
async fn role_session_is_mapped_with_templates_and_extra() {
    let w = world().await;
    let session = add_session(&w.shared, DEPLOYER_ROLE, "alice@example.com", 3600);
    let c = client(&w.server, &token(&session, "prod")).await;
    let review = whoami(&c).await.expect("whoami");
    let ui = review.status.and_then(|s| s.user_info).expect("user info");
    assert_eq!(ui.username.as_deref(), Some("deployer:alice-example.com"));
    let groups = ui.groups.unwrap_or_default();
    assert!(groups.contains(&"ops".to_string()), "{groups:?}");
    assert!(groups.contains(&"system:authenticated".to_string()));
    let extra = ui.extra.unwrap_or_default();
    assert_eq!(
        extra["arn"],
        vec!["arn:aws:sts::123456789012:assumed-role/Deployer/alice@example.com".to_string()]
    );
    assert_eq!(
        extra["canonicalArn"],
        vec!["arn:aws:iam::123456789012:role/Deployer".to_string()]
    );
    assert_eq!(extra["sessionName"], vec!["alice@example.com".to_string()]);
    assert_eq!(
        extra["principalId"],
        vec!["AROAEXAMPLEROLEID0001:alice@example.com".to_string()]
    );
    assert!(extra["accessKeyId"][0].starts_with("ASIA"));
}

#[tokio::test]
async fn creator_is_admin_even_without_a_mapping() {
    let w = world().await;
    let c = client(&w.server, &token(&w.creator, "prod")).await;
    let ui = whoami(&c)
        .await
        .expect("whoami")
        .status
        .and_then(|s| s.user_info)
        .expect("ui");
    assert_eq!(ui.username.as_deref(), Some("kubernetes-admin"));
    assert!(
        ui.groups
            .unwrap_or_default()
            .contains(&"system:masters".to_string())
    );
    let ns: Vec<String> = Api::<Namespace>::all(c)
        .list(&ListParams::default())
        .await
        .expect("list namespaces")
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert_eq!(
        ns,
        vec!["default", "kube-node-lease", "kube-public", "kube-system"]
    );
}

async fn refused(w: &World, token: &str) -> String {
    let c = client(&w.server, token).await;
    let (code, reason, message) = api_status(whoami(&c).await.expect_err("refused"));
    assert_eq!((code, reason.as_str()), (401, "Unauthorized"), "{message}");
    assert!(message.starts_with("Unauthorized: "), "{message}");
    message
}

#[tokio::test]
async fn bad_tokens_get_401_saying_why() {
    let w = world().await;
    let alice = add_user(&w.shared, "alice");

    let old = token_at(
        &alice,
        "prod",
        SystemTime::now() - Duration::from_secs(16 * 60),
    );
    assert!(refused(&w, &old).await.contains("expired"));

    add_cluster(
        &w.shared,
        "other",
        AuthMode::ConfigMap,
        &user_arn("creator"),
    );
    let other = token(&alice, "other");
    let msg = refused(&w, &other).await;
    assert!(msg.contains("issued for cluster \"other\""), "{msg}");

    let good = token(&alice, "prod");
    let b64 = good.trim_start_matches("k8s-aws-v1.");
    let url = String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .expect("b64"),
    )
    .expect("utf8");
    let sig_at = url.find("X-Amz-Signature=").expect("sig") + "X-Amz-Signature=".len();
    let mut tampered = url.clone().into_bytes();
    tampered[sig_at] = if tampered[sig_at] == b'0' { b'1' } else { b'0' };
    let tampered = format!(
        "k8s-aws-v1.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tampered)
    );
    assert!(
        refused(&w, &tampered)
            .await
            .contains("SignatureDoesNotMatch")
    );

    let padded = format!(
        "k8s-aws-v1.{}",
        base64::engine::general_purpose::URL_SAFE.encode(url.as_bytes())
    );
    if padded.ends_with('=') {
        assert!(refused(&w, &padded).await.contains("padd"));
    }
    let std_alphabet = format!(
        "k8s-aws-v1.{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(url.as_bytes())
    );
    if std_alphabet != good {
        assert!(refused(&w, &std_alphabet).await.contains("base64url"));
    }

    let stranger = Credentials::new("AKIAUNKNOWN000000000", "x", None, None, "t");
    assert!(
        refused(&w, &token(&stranger, "prod"))
            .await
            .contains("InvalidClientTokenId")
    );

    let evil_host = eks_token(
        &alice,
        REGION,
        "prod",
        Some("https://sts.evil.example"),
        SystemTime::now(),
    )
    .expect("token");
    assert!(
        refused(&w, evil_host.expose())
            .await
            .contains("unexpected hostname")
    );

    // http is allowed only for the sandbox's own front door.
    let http_aws = eks_token(
        &alice,
        REGION,
        "prod",
        Some("http://sts.us-east-1.amazonaws.com"),
        SystemTime::now(),
    )
    .expect("token");
    assert!(refused(&w, http_aws.expose()).await.contains("scheme"));
    let front_door = eks_token(
        &alice,
        REGION,
        "prod",
        Some("http://127.0.0.1:4566"),
        SystemTime::now(),
    )
    .expect("token");
    let c = client(&w.server, front_door.expose()).await;
    whoami(&c).await.expect("front door token accepted");

    let nobody = add_user(&w.shared, "nobody");
    assert!(
        refused(&w, &token(&nobody, "prod"))
            .await
            .contains("not mapped")
    );

    let expired_session = add_session(&w.shared, DEPLOYER_ROLE, "late", -10);
    assert!(
        refused(&w, &token(&expired_session, "prod"))
            .await
            .contains("ExpiredToken")
    );
    let mut wrong_token = add_session(&w.shared, DEPLOYER_ROLE, "ok-session", 3600);
    wrong_token = Credentials::new(
        wrong_token.access_key_id(),
        wrong_token.secret_access_key(),
        Some("not-the-session-token".into()),
        None,
        "t",
    );
    assert!(
        refused(&w, &token(&wrong_token, "prod"))
            .await
            .contains("InvalidClientTokenId")
    );

    // No token at all.
    let c = client(&w.server, "").await;
    let (code, _, _) = api_status(
        Api::<ConfigMap>::namespaced(c, "kube-system")
            .get("aws-auth")
            .await
            .expect_err("anonymous refused"),
    );
    assert_eq!(code, 401);
}

#[tokio::test]
async fn read_only_identity_gets_403_on_write() {
    let w = world().await;
    let reader = add_user(&w.shared, "reader");
    let cms = Api::<ConfigMap>::namespaced(
        client(&w.server, &token(&reader, "prod")).await,
        "kube-system",
    );
    // Mapped without groups: as on EKS, nothing is readable until bound.
    let (code, _, message) = api_status(cms.get("aws-auth").await.expect_err("no binding yet"));
    assert_eq!(code, 403, "{message}");
    // The creator binds the reader to the default ClusterRole `view` in kube-system.
    let admin = client(&w.server, &token(&w.creator, "prod")).await;
    Api::<RoleBinding>::namespaced(admin, "kube-system")
        .create(
            &PostParams::default(),
            &RoleBinding {
                metadata: ObjectMeta {
                    name: Some("reader-view".into()),
                    ..Default::default()
                },
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "ClusterRole".into(),
                    name: "view".into(),
                },
                subjects: Some(vec![Subject {
                    kind: "User".into(),
                    name: "reader".into(),
                    ..Default::default()
                }]),
            },
        )
        .await
        .expect("binding");
    let mut cm = cms.get("aws-auth").await.expect("reader can read");
    cm.data
        .get_or_insert_default()
        .insert("x".into(), "y".into());
    let (code, reason, message) = api_status(
        cms.replace("aws-auth", &PostParams::default(), &cm)
            .await
            .expect_err("403"),
    );
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        message,
        "configmaps \"aws-auth\" is forbidden: User \"reader\" cannot update resource \"configmaps\" in API group \"\" in the namespace \"kube-system\""
    );
}

#[tokio::test]
async fn rbac_narrowed_identity_updates_aws_auth_only() {
    let w = world().await;
    let admin = client(&w.server, &token(&w.creator, "prod")).await;
    let role = Role {
        metadata: ObjectMeta {
            name: Some("aws-auth-editor".into()),
            ..Default::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec!["".into()]),
            resources: Some(vec!["configmaps".into()]),
            resource_names: Some(vec!["aws-auth".into()]),
            verbs: vec!["get".into(), "update".into(), "patch".into()],
            ..Default::default()
        }]),
    };
    Api::<Role>::namespaced(admin.clone(), "kube-system")
        .create(&PostParams::default(), &role)
        .await
        .expect("role");
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("aws-auth-editor".into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: "aws-auth-editor".into(),
        },
        subjects: Some(vec![Subject {
            kind: "User".into(),
            name: "eks-access-sync".into(),
            ..Default::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(admin.clone(), "kube-system")
        .create(&PostParams::default(), &binding)
        .await
        .expect("binding");
    let other = ConfigMap {
        metadata: ObjectMeta {
            name: Some("other".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(admin, "kube-system")
        .create(&PostParams::default(), &other)
        .await
        .expect("other cm");

    let bootstrap = add_user(&w.shared, "bootstrap");
    let cms = Api::<ConfigMap>::namespaced(
        client(&w.server, &token(&bootstrap, "prod")).await,
        "kube-system",
    );
    let mut cm = cms.get("aws-auth").await.expect("get");
    cm.data
        .get_or_insert_default()
        .insert("note".into(), "hi".into());
    let updated = cms
        .replace("aws-auth", &PostParams::default(), &cm)
        .await
        .expect("update allowed");
    assert_eq!(updated.data.unwrap_or_default()["note"], "hi");

    // Only aws-auth is readable: `other` is read by the admin.
    let (code, _, _) = api_status(cms.get("other").await.expect_err("403 on get other"));
    assert_eq!(code, 403);
    let mut o = Api::<ConfigMap>::namespaced(
        client(&w.server, &token(&w.creator, "prod")).await,
        "kube-system",
    )
    .get("other")
    .await
    .expect("admin gets other");
    o.data = Some(BTreeMap::from([("a".to_string(), "b".to_string())]));
    let (code, _, message) = api_status(
        cms.replace("other", &PostParams::default(), &o)
            .await
            .expect_err("403"),
    );
    assert_eq!(code, 403, "{message}");
    let (code, _, _) = api_status(
        cms.create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some("new".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect_err("403 on create"),
    );
    assert_eq!(code, 403);

    // can-i agrees.
    let ssar = |name: &str| SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some("kube-system".into()),
                verb: Some("update".into()),
                resource: Some("configmaps".into()),
                name: Some(name.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let reviews =
        Api::<SelfSubjectAccessReview>::all(client(&w.server, &token(&bootstrap, "prod")).await);
    let yes = reviews
        .create(&PostParams::default(), &ssar("aws-auth"))
        .await
        .expect("ssar");
    assert!(yes.status.expect("status").allowed);
    let no = reviews
        .create(&PostParams::default(), &ssar("other"))
        .await
        .expect("ssar");
    assert!(!no.status.expect("status").allowed);
}

#[tokio::test]
async fn crud_conflicts_and_patches() {
    let w = world().await;
    let cms = Api::<ConfigMap>::namespaced(
        client(&w.server, &token(&w.creator, "prod")).await,
        "kube-system",
    );
    let first = cms.get("aws-auth").await.expect("get");
    let mut a = first.clone();
    a.data
        .get_or_insert_default()
        .insert("k".into(), "1".into());
    let after = cms
        .replace("aws-auth", &PostParams::default(), &a)
        .await
        .expect("update");
    assert_ne!(
        after.metadata.resource_version,
        first.metadata.resource_version
    );
    assert_eq!(after.metadata.uid, first.metadata.uid);

    // Stale resourceVersion.
    let mut stale = first.clone();
    stale
        .data
        .get_or_insert_default()
        .insert("k".into(), "2".into());
    let (code, reason, message) = api_status(
        cms.replace("aws-auth", &PostParams::default(), &stale)
            .await
            .expect_err("409"),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert_eq!(
        message,
        "Operation cannot be fulfilled on configmaps \"aws-auth\": the object has been modified; please apply your changes to the latest version and try again"
    );

    // Create twice, 404, name mismatch, invalid data.
    let cm = |name: &str| ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("a".to_string(), "b".to_string())])),
        ..Default::default()
    };
    cms.create(&PostParams::default(), &cm("x"))
        .await
        .expect("create");
    let (code, reason, _) = api_status(
        cms.create(&PostParams::default(), &cm("x"))
            .await
            .expect_err("exists"),
    );
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));
    let (code, reason, message) = api_status(cms.get("nope").await.expect_err("404"));
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (404, "NotFound", "configmaps \"nope\" not found")
    );
    let (code, reason, _) = api_status(
        cms.replace("x", &PostParams::default(), &cm("y"))
            .await
            .expect_err("422"),
    );
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    let (code, _, _) = api_status(
        cms.create(&PostParams::default(), &cm("Bad_Name"))
            .await
            .expect_err("422"),
    );
    assert_eq!(code, 422);

    // Merge patch, strategic merge patch (with a directive), JSON patch.
    let merged = cms
        .patch(
            "x",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"a": null, "m": "1"}})),
        )
        .await
        .expect("merge");
    assert_eq!(
        merged.data.clone().unwrap_or_default(),
        BTreeMap::from([("m".to_string(), "1".to_string())])
    );
    let strategic = cms
        .patch(
            "x",
            &PatchParams::default(),
            &Patch::Strategic(serde_json::json!({"$setElementOrder/x": [], "data": {"s": "2"}})),
        )
        .await
        .expect("strategic");
    assert_eq!(strategic.data.unwrap_or_default().len(), 2);
    let stale_rv = first.metadata.resource_version.clone().expect("rv");
    let (code, _, _) = api_status(
        cms.patch(
            "x",
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"metadata": {"resourceVersion": stale_rv}, "data": {"z": "1"}}),
            ),
        )
        .await
        .expect_err("precondition"),
    );
    assert_eq!(code, 409);
    let c = client(&w.server, &token(&w.creator, "prod")).await;
    let req = http::Request::patch("/api/v1/namespaces/kube-system/configmaps/x")
        .header("content-type", "application/json-patch+json")
        .body(
            br#"[{"op":"add","path":"/data/j","value":"3"},{"op":"remove","path":"/data/m"}]"#
                .to_vec(),
        )
        .expect("req");
    let patched: ConfigMap = c.request(req).await.expect("json patch");
    let d = patched.data.unwrap_or_default();
    assert_eq!(
        (d.get("j").map(String::as_str), d.contains_key("m")),
        (Some("3"), false)
    );

    // List carries a resourceVersion; delete works.
    let list = cms.list(&ListParams::default()).await.expect("list");
    assert!(list.metadata.resource_version.is_some());
    assert_eq!(list.items.len(), 2);
    cms.delete("x", &DeleteParams::default())
        .await
        .expect("delete");
    assert_eq!(api_status(cms.get("x").await.expect_err("gone")).0, 404);

    // Counters.
    let st = w.shared.lock().unwrap();
    assert!(st.calls[&("k8s:prod".to_string(), "PUT configmaps".to_string())] >= 3);
    assert!(st.calls[&("k8s:prod".to_string(), "PATCH configmaps".to_string())] >= 3);
}

#[tokio::test]
async fn conflict_fault_keeps_the_other_writers_entry() {
    let w = world().await;
    w.shared
        .lock()
        .unwrap()
        .clusters
        .get_mut("prod")
        .expect("c")
        .faults
        .aws_auth_conflicts = 1;
    let cms = Api::<ConfigMap>::namespaced(
        client(&w.server, &token(&w.creator, "prod")).await,
        "kube-system",
    );
    let mut cm = cms.get("aws-auth").await.expect("get");
    let add = "- rolearn: arn:aws:iam::123456789012:role/Admins\n  username: admin\n  groups:\n  - system:masters\n";
    let roles = cm
        .data
        .get_or_insert_default()
        .get_mut("mapRoles")
        .expect("mapRoles");
    roles.push_str(add);
    let (code, _, _) = api_status(
        cms.replace("aws-auth", &PostParams::default(), &cm)
            .await
            .expect_err("raced"),
    );
    assert_eq!(code, 409);
    // Re-read, re-apply: both entries survive.
    let mut cm = cms.get("aws-auth").await.expect("get");
    let roles = cm
        .data
        .get_or_insert_default()
        .get_mut("mapRoles")
        .expect("mapRoles");
    assert!(roles.contains("race-node-"), "{roles}");
    assert!(
        roles.contains("system:node:{{EC2PrivateDNSName}}"),
        "{roles}"
    );
    roles.push_str(add);
    let done = cms
        .replace("aws-auth", &PostParams::default(), &cm)
        .await
        .expect("second try");
    let roles = &done.data.unwrap_or_default()["mapRoles"];
    assert!(
        roles.contains("race-node-") && roles.contains("role/Admins"),
        "{roles}"
    );
    assert!(roles.contains("role/Deployer"), "{roles}");
}

#[tokio::test]
async fn injected_500_then_recovery() {
    let w = world().await;
    w.shared
        .lock()
        .unwrap()
        .clusters
        .get_mut("prod")
        .expect("c")
        .faults
        .errors_500 = 1;
    let cms = Api::<ConfigMap>::namespaced(
        client(&w.server, &token(&w.creator, "prod")).await,
        "kube-system",
    );
    let (code, reason, _) = api_status(cms.get("aws-auth").await.expect_err("500"));
    assert_eq!((code, reason.as_str()), (500, "InternalError"));
    cms.get("aws-auth").await.expect("next call works");
}

#[tokio::test]
async fn map_users_and_map_accounts() {
    let shared: Shared = Arc::new(Mutex::new(SharedState::default()));
    let creator = add_user(&shared, "creator");
    add_cluster(&shared, "acc", AuthMode::ConfigMap, &user_arn("creator"));
    let server = start(&shared, "acc").await;
    let c = client(&server, &token(&creator, "acc")).await;
    Api::<ConfigMap>::namespaced(c, "kube-system")
        .create(
            &PostParams::default(),
            &aws_auth("", MAP_USERS, Some("- \"123456789012\"\n")),
        )
        .await
        .expect("aws-auth");
    let alice = add_user(&shared, "alice");
    let ui = whoami(&client(&server, &token(&alice, "acc")).await)
        .await
        .expect("alice")
        .status
        .and_then(|s| s.user_info)
        .expect("ui");
    assert_eq!(ui.username.as_deref(), Some("alice"));
    assert!(
        ui.groups
            .unwrap_or_default()
            .contains(&"system:masters".to_string())
    );
    // Any identity of the account maps through mapAccounts, username = ARN.
    let carol = add_user(&shared, "carol");
    let ui = whoami(&client(&server, &token(&carol, "acc")).await)
        .await
        .expect("carol")
        .status
        .and_then(|s| s.user_info)
        .expect("ui");
    assert_eq!(ui.username.as_deref(), Some(user_arn("carol").as_str()));
    assert_eq!(
        ui.groups.unwrap_or_default(),
        vec!["system:authenticated".to_string()]
    );
}

#[tokio::test]
async fn broken_map_roles_key_still_maps_users() {
    let w = world().await;
    let cms = Api::<ConfigMap>::namespaced(
        client(&w.server, &token(&w.creator, "prod")).await,
        "kube-system",
    );
    cms.patch(
        "aws-auth",
        &PatchParams::default(),
        &Patch::Merge(
            serde_json::json!({"data": {"mapRoles": "- rolearn: [broken\n  username: x\n"}}),
        ),
    )
    .await
    .expect("patch");
    let alice = add_user(&w.shared, "alice");
    whoami(&client(&w.server, &token(&alice, "prod")).await)
        .await
        .expect("mapUsers still works");
    let session = add_session(&w.shared, DEPLOYER_ROLE, "s1", 3600);
    let msg = refused(&w, &token(&session, "prod")).await;
    assert!(msg.contains("not mapped"), "{msg}");
}

#[tokio::test]
async fn api_mode_uses_access_entries_only() {
    let shared: Shared = Arc::new(Mutex::new(SharedState::default()));
    let creator = add_user(&shared, "creator");
    add_cluster(&shared, "api", AuthMode::Api, &user_arn("creator"));
    let server = start(&shared, "api").await;
    // aws-auth mapping alice is ignored in API mode.
    Api::<ConfigMap>::namespaced(
        client(&server, &token(&creator, "api")).await,
        "kube-system",
    )
    .create(&PostParams::default(), &aws_auth("", MAP_USERS, None))
    .await
    .expect("aws-auth");
    let alice = add_user(&shared, "alice");
    let c = client(&server, &token(&alice, "api")).await;
    assert_eq!(api_status(whoami(&c).await.expect_err("401")).0, 401);

    let viewer_role = "arn:aws:iam::123456789012:role/Viewer";
    {
        let mut st = shared.lock().unwrap();
        let cl = st.clusters.get_mut("api").expect("c");
        let policy = |p: &str| PolicyAssociation {
            policy_arn: format!("arn:aws:eks::aws:cluster-access-policy/{p}"),
            scope_type: "cluster".into(),
            namespaces: vec![],
            associated_at: 0,
            modified_at: 0,
        };
        cl.access_entries.insert(
            viewer_role.into(),
            AccessEntry {
                principal_arn: viewer_role.into(),
                username: String::new(),
                kubernetes_groups: vec!["viewers".into()],
                entry_type: "STANDARD".into(),
                policies: vec![policy("AmazonEKSViewPolicy")],
                created_at_ms: 0,
                modified_at: 0,
                principal_id: None,
            },
        );
        cl.access_entries.insert(
            user_arn("alice"),
            AccessEntry {
                principal_arn: user_arn("alice"),
                username: String::new(),
                kubernetes_groups: vec![],
                entry_type: "STANDARD".into(),
                policies: vec![policy("AmazonEKSClusterAdminPolicy")],
                created_at_ms: 0,
                modified_at: 0,
                principal_id: None,
            },
        );
    }
    let c = client(&server, &token(&alice, "api")).await;
    let ui = whoami(&c)
        .await
        .expect("alice")
        .status
        .and_then(|s| s.user_info)
        .expect("ui");
    assert_eq!(ui.username.as_deref(), Some(user_arn("alice").as_str()));
    let mut cm = Api::<ConfigMap>::namespaced(c.clone(), "kube-system")
        .get("aws-auth")
        .await
        .expect("get");
    cm.data
        .get_or_insert_default()
        .insert("k".into(), "v".into());
    Api::<ConfigMap>::namespaced(c, "kube-system")
        .replace("aws-auth", &PostParams::default(), &cm)
        .await
        .expect("cluster admin policy writes");

    let viewer = add_session(&shared, viewer_role, "v@x", 3600);
    let c = client(&server, &token(&viewer, "api")).await;
    let ui = whoami(&c)
        .await
        .expect("viewer")
        .status
        .and_then(|s| s.user_info)
        .expect("ui");
    assert_eq!(
        ui.username.as_deref(),
        Some("arn:aws:sts::123456789012:assumed-role/Viewer/v-x")
    );
    let cms = Api::<ConfigMap>::namespaced(c, "kube-system");
    let cm = cms.get("aws-auth").await.expect("view reads");
    assert_eq!(
        api_status(
            cms.replace("aws-auth", &PostParams::default(), &cm)
                .await
                .expect_err("403")
        )
        .0,
        403
    );
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let w = world().await;
    let endpoint = w.server.endpoint.clone();
    let c = client(&w.server, &token(&w.creator, "prod")).await;
    whoami(&c).await.expect("up");
    let World { mut server, .. } = w;
    server.shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let port = endpoint.rsplit(':').next().expect("port");
    assert!(
        tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
            .await
            .is_err()
    );
}

// ------------------------------------------------------------------ kubectl

fn kubectl(
    kubeconfig: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (bool, String, String) {
    let mut cmd = std::process::Command::new("/usr/bin/kubectl");
    cmd.env("KUBECONFIG", kubeconfig)
        .env("HOME", kubeconfig.parent().expect("dir"))
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("kubectl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_whoami_can_i_apply_and_edit() {
    let w = world().await;
    let alice = add_user(&w.shared, "alice");
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, kubeconfig_yaml(&w.server, &token(&alice, "prod"))).expect("write");
    let kc2 = kc.clone();
    let run = move |args: Vec<String>, env: Vec<(&'static str, String)>| {
        let kc = kc2.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                kubectl(&kc, &args, &env)
            })
            .await
            .expect("join")
        }
    };

    let (ok, out, err) = run(
        sv(&[
            "get",
            "configmap",
            "aws-auth",
            "-n",
            "kube-system",
            "-o",
            "yaml",
        ]),
        vec![],
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("role/Deployer") && out.contains("resourceVersion"),
        "{out}"
    );

    let (ok, out, err) = run(sv(&["auth", "whoami", "-o", "json"]), vec![]).await;
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["status"]["userInfo"]["username"], "alice");

    let (ok, out, err) = run(sv(&["auth", "can-i", "update", "configmaps"]), vec![]).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "yes");

    let (ok, out, err) = run(sv(&["get", "cm", "-n", "kube-system"]), vec![]).await;
    assert!(ok, "{err}");
    assert!(out.contains("aws-auth"), "{out}");

    let manifest = dir.path().join("cm.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  namespace: kube-system\ndata:\n  a: \"1\"\n",
    )
    .expect("write");
    let m = manifest.to_string_lossy().into_owned();
    let (ok, out, err) = run(sv(&["apply", "-f", &m]), vec![]).await;
    assert!(ok, "{out}{err}");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  namespace: kube-system\ndata:\n  a: \"2\"\n  b: \"3\"\n",
    )
    .expect("write");
    let (ok, out, err) = run(sv(&["apply", "-f", &m]), vec![]).await;
    assert!(ok, "{out}{err}");
    let cms = Api::<ConfigMap>::namespaced(
        client(&w.server, &token(&alice, "prod")).await,
        "kube-system",
    );
    let applied = cms.get("applied").await.expect("applied");
    let d = applied.data.unwrap_or_default();
    assert_eq!((d["a"].as_str(), d["b"].as_str()), ("2", "3"));

    let editor = dir.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/username: deployer:/username: deploy:/' \"$1\"\n",
    )
    .expect("write");
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&editor)
        .status()
        .expect("chmod");
    let (ok, out, err) = run(
        sv(&["edit", "configmap", "aws-auth", "-n", "kube-system"]),
        vec![("EDITOR", editor.to_string_lossy().into_owned())],
    )
    .await;
    assert!(ok, "{out}{err}");
    let cm = cms.get("aws-auth").await.expect("get");
    let roles = &cm.data.unwrap_or_default()["mapRoles"];
    assert!(
        roles.contains("username: deploy:{{SessionName}}"),
        "{roles}"
    );
    assert!(roles.contains("NodeRole"), "{roles}");
}

fn sv(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn latency_fault_delays_every_call() {
    let w = world().await;
    w.shared.lock().unwrap().global_faults.latency_ms = 300;
    let cms = Api::<ConfigMap>::namespaced(
        client(&w.server, &token(&w.creator, "prod")).await,
        "kube-system",
    );
    let started = std::time::Instant::now();
    cms.get("aws-auth").await.expect("get");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let st = w.shared.lock().unwrap();
    assert!(st.calls[&("k8s:prod".to_string(), "GET configmaps".to_string())] >= 1);
    assert!(st.calls[&("k8s:prod".to_string(), "POST configmaps".to_string())] >= 1);
}

#[tokio::test]
async fn cluster_role_binding_to_a_group_grants_writes() {
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    let w = world().await;
    let admin = client(&w.server, &token(&w.creator, "prod")).await;
    let session = add_session(&w.shared, DEPLOYER_ROLE, "ci", 3600);
    let ops =
        Api::<ConfigMap>::namespaced(client(&w.server, &token(&session, "prod")).await, "default");
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("from-ops".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let (code, _, message) = api_status(
        ops.create(&PostParams::default(), &cm)
            .await
            .expect_err("not yet"),
    );
    assert_eq!(code, 403);
    assert_eq!(
        message,
        "configmaps is forbidden: User \"deployer:ci\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"default\""
    );
    Api::<ClusterRole>::all(admin.clone())
        .create(
            &PostParams::default(),
            &ClusterRole {
                metadata: ObjectMeta {
                    name: Some("cm-writer".into()),
                    ..Default::default()
                },
                rules: Some(vec![PolicyRule {
                    api_groups: Some(vec!["".into()]),
                    resources: Some(vec!["configmaps".into()]),
                    verbs: vec!["create".into()],
                    ..Default::default()
                }]),
                ..Default::default()
            },
        )
        .await
        .expect("cluster role");
    Api::<ClusterRoleBinding>::all(admin)
        .create(
            &PostParams::default(),
            &ClusterRoleBinding {
                metadata: ObjectMeta {
                    name: Some("ops-cm-writer".into()),
                    ..Default::default()
                },
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "ClusterRole".into(),
                    name: "cm-writer".into(),
                },
                subjects: Some(vec![Subject {
                    kind: "Group".into(),
                    name: "ops".into(),
                    ..Default::default()
                }]),
            },
        )
        .await
        .expect("binding");
    let created = ops
        .create(&PostParams::default(), &cm)
        .await
        .expect("now allowed");
    assert_eq!(created.metadata.namespace.as_deref(), Some("default"));
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    // create only: no delete.
    assert_eq!(
        api_status(
            ops.delete("from-ops", &DeleteParams::default())
                .await
                .expect_err("403")
        )
        .0,
        403
    );
}

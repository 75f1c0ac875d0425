//! Several AWS accounts (issue 12): member accounts made by `POST /_sandbox/accounts`
//! and `seed-member`, each with its own IAM and EKS clusters; cross-account
//! AssumeRole as IAM judges it; member clusters admitting hub identities they map.
//! Everything through the real wire protocol (AWS SDK, kube client, AWS CLI).

use std::time::SystemTime;

use crate::aws_support::*;
use aws_credential_types::Credentials;
use aws_sdk_eks::types::{AccessScope, AccessScopeType, AuthenticationMode};
use base64::Engine;
use eks_sandbox::aws::{MemberSeed, Sandbox, lock};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};

const HUB: &str = "123456789012";
const MEMBER: &str = "111111111111";
const OTHER: &str = "222222222222";
const ADMIN_POLICY: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy";

fn creds_of(ak: &str, sk: &str, token: Option<String>) -> Credentials {
    Credentials::new(ak, sk, token, None, "test")
}

async fn conf(sb: &Sandbox, c: &Credentials) -> aws_config::SdkConfig {
    config_for(
        sb,
        &sb.region(),
        c.access_key_id(),
        c.secret_access_key(),
        c.session_token().map(str::to_string),
    )
    .await
}

async fn iam(sb: &Sandbox, c: &Credentials) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&conf(sb, c).await)
}

async fn eks(sb: &Sandbox, c: &Credentials) -> aws_sdk_eks::Client {
    aws_sdk_eks::Client::new(&conf(sb, c).await)
}

async fn sts(sb: &Sandbox, c: &Credentials) -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::new(&conf(sb, c).await)
}

fn hub_operator(sb: &Sandbox) -> Credentials {
    let (ak, sk) = sb.operator_credentials();
    creds_of(&ak, &sk, None)
}

/// A member account's administrator, made through the control endpoint.
async fn member_admin(sb: &Sandbox, account: &str) -> Credentials {
    let (status, body) = control(
        sb,
        "/_sandbox/accounts",
        &json!({"accountId": account}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    creds_of(
        v["accessKeyId"].as_str().unwrap(),
        v["secretAccessKey"].as_str().unwrap(),
        None,
    )
}

/// (Account, Arn) of GetCallerIdentity.
async fn who(sb: &Sandbox, c: &Credentials) -> (String, String) {
    let out = sts(sb, c).await.get_caller_identity().send().await.unwrap();
    (
        out.account().unwrap().to_string(),
        out.arn().unwrap().to_string(),
    )
}

/// AssumeRole: the session's credentials, or (code, message).
async fn assume(
    sb: &Sandbox,
    c: &Credentials,
    role_arn: &str,
    session: &str,
) -> Result<Credentials, (String, String)> {
    sts(sb, c)
        .await
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(session)
        .send()
        .await
        .map(|o| {
            let k = o.credentials.unwrap();
            creds_of(
                &k.access_key_id,
                &k.secret_access_key,
                Some(k.session_token),
            )
        })
        .map_err(|e| code_and_message(&e))
}

fn denied(caller: &str, role: &str) -> (String, String) {
    (
        "AccessDenied".to_string(),
        format!("User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role}"),
    )
}

async fn create_role(iam: &aws_sdk_iam::Client, name: &str, trust: Value) -> String {
    iam.create_role()
        .role_name(name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap()
        .role
        .unwrap()
        .arn
}

fn trusting(principal: &str, condition: Option<Value>) -> Value {
    let mut stmt =
        json!({"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"});
    if let Some(c) = condition {
        stmt["Condition"] = c;
    }
    json!({"Version": "2012-10-17", "Statement": [stmt]})
}

async fn put_user_policy(iam: &aws_sdk_iam::Client, user: &str, resource: &str) {
    let doc = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "sts:AssumeRole", "Resource": resource}]});
    iam.put_user_policy()
        .user_name(user)
        .policy_name("assume")
        .policy_document(doc.to_string())
        .send()
        .await
        .unwrap();
}

/// A user of the account `iam` acts in, with an access key.
async fn user(iam: &aws_sdk_iam::Client, name: &str) -> (Credentials, String) {
    let arn = iam
        .create_user()
        .user_name(name)
        .send()
        .await
        .unwrap()
        .user
        .unwrap()
        .arn;
    let k = iam
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap();
    (creds_of(&k.access_key_id, &k.secret_access_key, None), arn)
}

async fn create_cluster(eks: &aws_sdk_eks::Client, name: &str, mode: AuthenticationMode) -> String {
    eks.create_cluster()
        .name(name)
        .role_arn("arn:aws:iam::111111111111:role/cluster")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-1")
                .build(),
        )
        .access_config(
            aws_sdk_eks::types::CreateAccessConfigRequest::builder()
                .authentication_mode(mode)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .cluster
        .unwrap()
        .arn
        .unwrap()
}

async fn cluster_names(eks: &aws_sdk_eks::Client) -> Vec<String> {
    eks.list_clusters()
        .send()
        .await
        .unwrap()
        .clusters()
        .to_vec()
}

/// A kube client on `cluster` (described by `describer`, of the cluster's account),
/// authenticated as `creds` (of any account).
async fn kube_as(
    sb: &Sandbox,
    describer: &Credentials,
    creds: &Credentials,
    cluster: &str,
) -> kube::Client {
    let c = eks(sb, describer)
        .await
        .describe_cluster()
        .name(cluster)
        .send()
        .await
        .unwrap()
        .cluster
        .unwrap();
    let pem = base64::engine::general_purpose::STANDARD
        .decode(c.certificate_authority.and_then(|a| a.data).unwrap())
        .unwrap();
    let token = eks_access_sync::adapters::kube::token::eks_token(
        creds,
        &sb.region(),
        cluster,
        Some(&sb.aws_endpoint()),
        SystemTime::now(),
    )
    .unwrap();
    eks_access_sync::adapters::kube::client::kube_client(&c.endpoint.unwrap(), &pem, &token)
        .unwrap()
}

/// SelfSubjectReview: (username, groups), or the HTTP status of the refusal.
async fn whoami(
    sb: &Sandbox,
    describer: &Credentials,
    creds: &Credentials,
    cluster: &str,
) -> Result<(String, Vec<String>), u16> {
    let client = kube_as(sb, describer, creds, cluster).await;
    match Api::<SelfSubjectReview>::all(client)
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
    {
        Ok(r) => {
            let u = r.status.unwrap().user_info.unwrap();
            Ok((u.username.unwrap(), u.groups.unwrap()))
        }
        Err(kube::Error::Api(s)) => Err(s.code),
        Err(e) => panic!("not an API error: {e}"),
    }
}

/// The seeded hub and the member account [`MEMBER`] seeded with its defaults.
async fn seeded_member() -> (Sandbox, eks_sandbox::aws::MemberSeedReport) {
    let sb = start().await;
    sb.seed().await.unwrap();
    let report = sb
        .seed_member(&MemberSeed {
            account_id: MEMBER.to_string(),
            ..MemberSeed::default()
        })
        .await
        .unwrap();
    (sb, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_accounts_are_made_by_the_control_endpoint_and_keep_their_own_iam() {
    let sb = start().await;
    // Not 12 digits, or not JSON of the shape: 400.
    for bad in [
        json!({"accountId": "11111111111"}).to_string(),
        json!({"accountId": "11111111111x"}).to_string(),
        json!({"account": MEMBER}).to_string(),
    ] {
        let (status, body) = control(&sb, "/_sandbox/accounts", &bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, body) = control(
        &sb,
        "/_sandbox/accounts",
        &json!({"accountId": MEMBER}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let first: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(first["accountId"], MEMBER);
    assert_eq!(
        first["userArn"],
        format!("arn:aws:iam::{MEMBER}:user/sandbox-operator")
    );
    // Idempotent: the same account, a working key (the HTTP and the Rust way).
    let (_, again) = control(
        &sb,
        "/_sandbox/accounts",
        &json!({"accountId": MEMBER}).to_string(),
    )
    .await;
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["accessKeyId"], first["accessKeyId"]);
    let rust = sb.create_account(MEMBER).await.unwrap();
    assert_eq!(rust.access_key_id, first["accessKeyId"].as_str().unwrap());
    assert!(sb.create_account("1234").await.is_err());

    let member = member_admin(&sb, MEMBER).await;
    let hub = hub_operator(&sb);
    assert_eq!(
        who(&sb, &member).await,
        (
            MEMBER.to_string(),
            format!("arn:aws:iam::{MEMBER}:user/sandbox-operator")
        )
    );
    assert_eq!(who(&sb, &hub).await.0, HUB);

    // Each account has its own users, even of one name.
    let (m_iam, h_iam) = (iam(&sb, &member).await, iam(&sb, &hub).await);
    let (dana_m, m_arn) = user(&m_iam, "dana").await;
    let (dana_h, h_arn) = user(&h_iam, "dana").await;
    assert_eq!(m_arn, format!("arn:aws:iam::{MEMBER}:user/dana"));
    assert_eq!(h_arn, format!("arn:aws:iam::{HUB}:user/dana"));
    assert_eq!(who(&sb, &dana_m).await.1, m_arn);
    assert_eq!(who(&sb, &dana_h).await.1, h_arn);
    user(&h_iam, "hub-only").await;
    let names = |out: aws_sdk_iam::operation::list_users::ListUsersOutput| -> Vec<String> {
        out.users()
            .iter()
            .map(|u| u.user_name().to_string())
            .collect()
    };
    let m_users = names(m_iam.list_users().send().await.unwrap());
    assert!(m_users.contains(&"dana".to_string()), "{m_users:?}");
    assert!(!m_users.contains(&"hub-only".to_string()), "{m_users:?}");
    let err = m_iam
        .get_user()
        .user_name("hub-only")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_message(&err).0, "NoSuchEntity");
    // A role of one account is unknown in another.
    create_role(
        &h_iam,
        "hub-role",
        trusting(&format!("arn:aws:iam::{HUB}:root"), None),
    )
    .await;
    assert!(m_iam.get_role().role_name("hub-role").send().await.is_err());

    // The organization: every account, one ID.
    let (status, body) = control(&sb, "/_sandbox/organization", "").await;
    assert_eq!(status, 200, "{body}");
    let org: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(org["organizationId"], sb.organization_id());
    assert_eq!(org["accounts"], json!([HUB, MEMBER]));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_account_has_its_own_clusters_even_of_one_name() {
    let sb = start().await;
    sb.seed().await.unwrap();
    let hub = hub_operator(&sb);
    let member = member_admin(&sb, MEMBER).await;
    let other = member_admin(&sb, OTHER).await;
    let (h_eks, m_eks, o_eks) = (
        eks(&sb, &hub).await,
        eks(&sb, &member).await,
        eks(&sb, &other).await,
    );
    // "prod" exists in the hub (seed); a member may have its own.
    let m_arn = create_cluster(&m_eks, "prod", AuthenticationMode::Api).await;
    assert_eq!(
        m_arn,
        format!("arn:aws:eks:us-east-1:{MEMBER}:cluster/prod")
    );
    create_cluster(&o_eks, "prod", AuthenticationMode::Api).await;
    create_cluster(&m_eks, "only-member", AuthenticationMode::Api).await;
    assert_eq!(cluster_names(&m_eks).await, ["only-member", "prod"]);
    assert_eq!(cluster_names(&o_eks).await, ["prod"]);
    assert_eq!(cluster_names(&h_eks).await, ["legacy", "prod", "staging"]);

    let describe = |e: aws_sdk_eks::Client, n: &'static str| async move {
        e.describe_cluster()
            .name(n)
            .send()
            .await
            .map(|o| o.cluster.unwrap())
    };
    let h_prod = describe(h_eks.clone(), "prod").await.unwrap();
    let m_prod = describe(m_eks.clone(), "prod").await.unwrap();
    assert_eq!(
        h_prod.arn(),
        Some("arn:aws:eks:us-east-1:123456789012:cluster/prod")
    );
    assert_eq!(m_prod.arn(), Some(m_arn.as_str()));
    assert_ne!(h_prod.endpoint(), m_prod.endpoint());
    assert_eq!(
        m_prod.access_config().and_then(|a| a.authentication_mode()),
        Some(&AuthenticationMode::Api)
    );
    // Another account's clusters are not found, whichever the name.
    let err = describe(h_eks.clone(), "only-member").await.unwrap_err();
    assert_eq!(code_and_message(&err).0, "ResourceNotFoundException");
    let err = describe(o_eks.clone(), "legacy").await.unwrap_err();
    assert_eq!(code_and_message(&err).0, "ResourceNotFoundException");
    // Nor tagged through their ARN.
    assert!(
        h_eks
            .tag_resource()
            .resource_arn(&m_arn)
            .tags("k", "v")
            .send()
            .await
            .is_err()
    );
    // The hub's keep their place: keyed by name alone, as the e2e helpers read them.
    {
        let shared = sb.shared();
        let st = lock(&shared);
        assert_eq!(st.clusters["prod"].account(), HUB);
        assert_eq!(st.clusters[&format!("{MEMBER}/prod")].account(), MEMBER);
        assert_eq!(st.clusters[&format!("{OTHER}/prod")].account(), OTHER);
    }

    // The member's creator is cluster-admin on its cluster; its access entry's ARN
    // names the member account.
    let (user, groups) = whoami(&sb, &member, &member, "prod").await.unwrap();
    assert!(
        groups.contains(&"system:masters".to_string()),
        "{user} {groups:?}"
    );
    let creator = format!("arn:aws:iam::{MEMBER}:user/sandbox-operator");
    let entry = m_eks
        .describe_access_entry()
        .cluster_name("prod")
        .principal_arn(&creator)
        .send()
        .await
        .unwrap()
        .access_entry
        .unwrap();
    assert!(
        entry.access_entry_arn().unwrap().starts_with(&format!(
            "arn:aws:eks:us-east-1:{MEMBER}:access-entry/prod/standard/{MEMBER}/"
        )),
        "{entry:?}"
    );
    // The other account's creator is nobody on the member's "prod"; the hub
    // operator is not either (its own "prod" is another cluster).
    assert_eq!(whoami(&sb, &member, &other, "prod").await, Err(401));
    assert_eq!(whoami(&sb, &member, &hub, "prod").await, Err(401));
    // Deleting the member's "prod" leaves the hub's.
    m_eks.delete_cluster().name("prod").send().await.unwrap();
    assert!(describe(h_eks.clone(), "prod").await.is_ok());
    assert_eq!(cluster_names(&m_eks).await, ["only-member"]);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_account_assume_role_needs_the_trust_and_an_identity_allow() {
    let sb = start().await;
    let hub = hub_operator(&sb);
    let member = member_admin(&sb, MEMBER).await;
    let (h_iam, m_iam) = (iam(&sb, &hub).await, iam(&sb, &member).await);
    let (erin, erin_arn) = user(&h_iam, "erin").await;

    // The member role trusts erin by ARN; erin's own policies allow nothing yet.
    let by_arn = create_role(&m_iam, "by-arn", trusting(&erin_arn, None)).await;
    assert_eq!(by_arn, format!("arn:aws:iam::{MEMBER}:role/by-arn"));
    assert_eq!(
        assume(&sb, &erin, &by_arn, "s1").await.err(),
        Some(denied(&erin_arn, &by_arn))
    );
    // A wildcard allow in erin's policies, as the hub's function role has it.
    put_user_policy(&h_iam, "erin", "arn:aws:iam::*:role/by-*").await;
    let session = assume(&sb, &erin, &by_arn, "erin-session").await.unwrap();
    // The credentials act in the member account.
    assert_eq!(
        who(&sb, &session).await,
        (
            MEMBER.to_string(),
            format!("arn:aws:sts::{MEMBER}:assumed-role/by-arn/erin-session")
        )
    );
    let roles: Vec<String> = iam(&sb, &session)
        .await
        .list_roles()
        .send()
        .await
        .unwrap()
        .roles()
        .iter()
        .map(|r| r.role_name().to_string())
        .collect();
    assert!(roles.contains(&"by-arn".to_string()), "{roles:?}");

    // Trusting the hub account's root: the same two conditions.
    let by_root = create_role(
        &m_iam,
        "by-root",
        trusting(&format!("arn:aws:iam::{HUB}:root"), None),
    )
    .await;
    assert!(assume(&sb, &erin, &by_root, "s1").await.is_ok());
    let by_account = create_role(&m_iam, "by-account", trusting(HUB, None)).await;
    assert!(assume(&sb, &erin, &by_account, "s1").await.is_ok());
    // A role whose trust does not name the hub (only the member itself): refused,
    // whatever erin's policies allow.
    let own = create_role(
        &m_iam,
        "by-own",
        trusting(&format!("arn:aws:iam::{MEMBER}:root"), None),
    )
    .await;
    assert_eq!(
        assume(&sb, &erin, &own, "s1").await.err(),
        Some(denied(&erin_arn, &own))
    );
    // A role the identity policy does not cover: refused though the trust names erin.
    let not_covered = create_role(&m_iam, "other-name", trusting(&erin_arn, None)).await;
    assert_eq!(
        assume(&sb, &erin, &not_covered, "s1").await.err(),
        Some(denied(&erin_arn, &not_covered))
    );
    // Inside the member account the old rule holds: naming the user is enough.
    let (frank, frank_arn) = user(&m_iam, "frank").await;
    let local = create_role(&m_iam, "local", trusting(&frank_arn, None)).await;
    assert!(assume(&sb, &frank, &local, "s1").await.is_ok());
    // A session of the member role (chained) is the role to another account's trust.
    let hub_target = create_role(
        &h_iam,
        "from-member",
        trusting(&format!("arn:aws:iam::{MEMBER}:role/by-arn"), None),
    )
    .await;
    let (code, msg) = assume(&sb, &session, &hub_target, "s1").await.unwrap_err();
    assert_eq!(code, "AccessDenied");
    assert!(
        msg.starts_with(&format!(
            "User: arn:aws:sts::{MEMBER}:assumed-role/by-arn/erin-session is not authorized"
        )),
        "{msg}"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_role_trusts_the_hub_function_role_inside_the_organization() {
    let (sb, report) = seeded_member().await;
    assert_eq!(report.organization_id, "o-sandbox0001");
    assert_eq!(
        report.hub_function_role_arn,
        format!("arn:aws:iam::{HUB}:role/eks-access-sync-function")
    );
    assert_eq!(
        report.member_role_arn,
        format!("arn:aws:iam::{MEMBER}:role/eks-access-sync-member")
    );
    let hub = hub_operator(&sb);
    // The operator reaches the function role (trust: the hub's root; its `*` allows)...
    let function = assume(&sb, &hub, &report.hub_function_role_arn, "reconcile")
        .await
        .unwrap();
    // ...whose session reaches the member role (trust: it, in the organization).
    let member_session = assume(&sb, &function, &report.member_role_arn, "hub")
        .await
        .unwrap();
    assert_eq!(
        who(&sb, &member_session).await,
        (
            MEMBER.to_string(),
            format!("arn:aws:sts::{MEMBER}:assumed-role/eks-access-sync-member/hub")
        )
    );
    // The operator itself is not the function role: refused by the trust.
    assert_eq!(
        assume(&sb, &hub, &report.member_role_arn, "s1").await.err(),
        Some(denied(&sb.operator_arn(), &report.member_role_arn))
    );
    // A member role requiring another organization refuses the function role.
    let member = sb.create_account(MEMBER).await.unwrap();
    let m_iam = iam(
        &sb,
        &creds_of(&member.access_key_id, &member.secret_access_key, None),
    )
    .await;
    let org = |id: &str| Some(json!({"StringEquals": {"aws:PrincipalOrgID": id}}));
    let wrong = create_role(
        &m_iam,
        "eks-access-sync-member-wrong-org",
        trusting(&report.hub_function_role_arn, org("o-elsewhere01")),
    )
    .await;
    // (the function role's own policy names `arn:aws:iam::*:role/eks-access-sync-member`
    // only: give it a wildcard this role matches, so the organization alone decides)
    h_role_policy(
        &sb,
        "eks-access-sync-function",
        "arn:aws:iam::*:role/eks-access-sync-member*",
    )
    .await;
    let function = assume(&sb, &hub, &report.hub_function_role_arn, "again")
        .await
        .unwrap();
    let caller = format!("arn:aws:sts::{HUB}:assumed-role/eks-access-sync-function/again");
    assert_eq!(
        assume(&sb, &function, &wrong, "s1").await.err(),
        Some(denied(&caller, &wrong))
    );
    let right = create_role(
        &m_iam,
        "eks-access-sync-member-org",
        trusting(&report.hub_function_role_arn, org(sb.organization_id())),
    )
    .await;
    assert!(assume(&sb, &function, &right, "s1").await.is_ok());
    // Seeding twice is not an error and changes nothing the tests rely on.
    let again = sb
        .seed_member(&MemberSeed {
            account_id: MEMBER.to_string(),
            ..MemberSeed::default()
        })
        .await
        .unwrap();
    assert_eq!(again, report);
    sb.shutdown().await;
}

/// Replaces the hub function role's AssumeRole grant by one on `resource`.
async fn h_role_policy(sb: &Sandbox, role: &str, resource: &str) {
    let doc = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": resource}]});
    iam(sb, &hub_operator(sb))
        .await
        .put_role_policy()
        .role_name(role)
        .policy_name("eks-access-sync-function")
        .policy_document(doc.to_string())
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_tier_role_session_reaches_member_clusters_that_map_it() {
    let sb = start().await;
    sb.seed().await.unwrap();
    let report = sb
        .seed_member(&MemberSeed {
            account_id: MEMBER.to_string(),
            cluster_prefix: Some("m1".to_string()),
            ..MemberSeed::default()
        })
        .await
        .unwrap();
    assert_eq!(report.managed_clusters, ["m1-prod", "m1-api"]);
    assert_eq!(report.unmanaged_clusters, ["m1-untagged"]);
    let hub = hub_operator(&sb);
    let admin = creds_of(
        &report.admin.access_key_id,
        &report.admin.secret_access_key,
        None,
    );
    let h_iam = iam(&sb, &hub).await;
    let tier = create_role(
        &h_iam,
        "eks-tier-admin",
        trusting(&format!("arn:aws:iam::{HUB}:root"), None),
    )
    .await;
    let tier_session = assume(&sb, &hub, &tier, "alice").await.unwrap();

    // Unmapped: refused on every member cluster.
    for c in ["m1-prod", "m1-api", "m1-untagged"] {
        assert_eq!(whoami(&sb, &admin, &tier_session, c).await, Err(401), "{c}");
    }

    // aws-auth (CONFIG_MAP): the member's admin maps the hub's role.
    let cms: Api<ConfigMap> =
        Api::namespaced(kube_as(&sb, &admin, &admin, "m1-prod").await, "kube-system");
    let mut cm = cms.get("aws-auth").await.unwrap();
    let data = cm.data.get_or_insert_default();
    let roles = data.get("mapRoles").cloned().unwrap_or_default();
    assert!(
        roles.contains(&format!("arn:aws:iam::{MEMBER}:role/eks-node-role")),
        "{roles}"
    );
    assert!(roles.contains(&report.member_role_arn), "{roles}");
    data.insert(
        "mapRoles".into(),
        format!("{roles}- rolearn: {tier}\n  username: hub:{{{{AccountID}}}}:{{{{SessionName}}}}\n  groups:\n  - tier-admins\n"),
    );
    cms.replace("aws-auth", &PostParams::default(), &cm)
        .await
        .unwrap();
    let (name, groups) = whoami(&sb, &admin, &tier_session, "m1-prod").await.unwrap();
    assert_eq!(name, format!("hub:{HUB}:alice"));
    assert!(groups.contains(&"tier-admins".to_string()), "{groups:?}");

    // Access entry (API): the member role (as the hub's engine would) grants the
    // hub's role; EKS accepts the principal of another account.
    let function = assume(&sb, &hub, &report.hub_function_role_arn, "reconcile")
        .await
        .unwrap();
    let member_session = assume(&sb, &function, &report.member_role_arn, "hub")
        .await
        .unwrap();
    let m_eks = eks(&sb, &member_session).await;
    let entry = m_eks
        .create_access_entry()
        .cluster_name("m1-api")
        .principal_arn(&tier)
        .send()
        .await
        .unwrap()
        .access_entry
        .unwrap();
    assert!(
        entry.access_entry_arn().unwrap().starts_with(&format!(
            "arn:aws:eks:us-east-1:{MEMBER}:access-entry/m1-api/standard/{HUB}/"
        )),
        "{entry:?}"
    );
    assert_eq!(
        entry.username(),
        Some(
            format!("arn:aws:sts::{HUB}:assumed-role/eks-tier-admin/{{{{SessionName}}}}").as_str()
        )
    );
    m_eks
        .associate_access_policy()
        .cluster_name("m1-api")
        .principal_arn(&tier)
        .policy_arn(ADMIN_POLICY)
        .access_scope(
            AccessScope::builder()
                .r#type(AccessScopeType::Cluster)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let (name, _) = whoami(&sb, &admin, &tier_session, "m1-api").await.unwrap();
    assert_eq!(
        name,
        format!("arn:aws:sts::{HUB}:assumed-role/eks-tier-admin/alice")
    );
    // Still nobody on the cluster that does not map it.
    assert_eq!(
        whoami(&sb, &admin, &tier_session, "m1-untagged").await,
        Err(401)
    );
    // A member role of the same name as the hub's is another principal.
    let m_iam = iam(&sb, &admin).await;
    let lookalike = create_role(
        &m_iam,
        "eks-tier-admin",
        trusting(&format!("arn:aws:iam::{MEMBER}:root"), None),
    )
    .await;
    let lookalike_session = assume(&sb, &admin, &lookalike, "alice").await.unwrap();
    assert_eq!(
        whoami(&sb, &admin, &lookalike_session, "m1-api").await,
        Err(401)
    );
    assert_eq!(
        whoami(&sb, &admin, &lookalike_session, "m1-prod").await,
        Err(401)
    );
    // An entry for a principal that exists in no account is refused.
    let err = m_eks
        .create_access_entry()
        .cluster_name("m1-api")
        .principal_arn(format!("arn:aws:iam::{OTHER}:role/eks-tier-admin"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_message(&err).0, "InvalidParameterException");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_role_session_reaches_a_member_cluster_once_bootstrapped() {
    let sb = start().await;
    let (status, body) = control(
        &sb,
        "/_sandbox/seed-member",
        &json!({"accountId": MEMBER, "clusterPrefix": "m"}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    let (status, _) = control(
        &sb,
        "/_sandbox/seed-member",
        &json!({"accountId": HUB}).to_string(),
    )
    .await;
    assert_eq!(status, 400);
    let admin = creds_of(
        report["admin"]["accessKeyId"].as_str().unwrap(),
        report["admin"]["secretAccessKey"].as_str().unwrap(),
        None,
    );
    let member_role = report["memberRoleArn"].as_str().unwrap().to_string();
    let function_role = report["hubFunctionRoleArn"].as_str().unwrap().to_string();
    let hub = hub_operator(&sb);
    let function = assume(&sb, &hub, &function_role, "reconcile")
        .await
        .unwrap();
    let session = assume(&sb, &function, &member_role, "hub").await.unwrap();

    // The seed's grants: cluster-admin on both tagged clusters.
    let (name, groups) = whoami(&sb, &admin, &session, "m-prod").await.unwrap();
    assert_eq!(name, "eks-access-sync");
    assert!(groups.contains(&"system:masters".to_string()), "{groups:?}");
    let (name, _) = whoami(&sb, &admin, &session, "m-api").await.unwrap();
    assert_eq!(name, "eks-access-sync");
    // The member role sees its account's clusters, tags included.
    let m_eks = eks(&sb, &session).await;
    assert_eq!(
        cluster_names(&m_eks).await,
        ["m-api", "m-prod", "m-untagged"]
    );
    let untagged = m_eks
        .describe_cluster()
        .name("m-untagged")
        .send()
        .await
        .unwrap()
        .cluster
        .unwrap();
    assert!(untagged.tags().is_none_or(|t| t.is_empty()));
    // The member's own entry on the API cluster (its admin, the creator) is there.
    let entries = m_eks
        .list_access_entries()
        .cluster_name("m-api")
        .send()
        .await
        .unwrap();
    assert!(
        entries
            .access_entries()
            .contains(&format!("arn:aws:iam::{MEMBER}:user/sandbox-operator")),
        "{entries:?}"
    );

    // Not yet on the untagged cluster; the member's admin bootstraps it.
    assert_eq!(whoami(&sb, &admin, &session, "m-untagged").await, Err(401));
    let a_eks = eks(&sb, &admin).await;
    a_eks
        .create_access_entry()
        .cluster_name("m-untagged")
        .principal_arn(&member_role)
        .kubernetes_groups("eks-access-sync")
        .username("eks-access-sync")
        .send()
        .await
        .unwrap();
    a_eks
        .associate_access_policy()
        .cluster_name("m-untagged")
        .principal_arn(&member_role)
        .policy_arn(ADMIN_POLICY)
        .access_scope(
            AccessScope::builder()
                .r#type(AccessScopeType::Cluster)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let (name, groups) = whoami(&sb, &admin, &session, "m-untagged").await.unwrap();
    assert_eq!(name, "eks-access-sync");
    assert!(
        groups.contains(&"eks-access-sync".to_string()),
        "{groups:?}"
    );
    sb.shutdown().await;
}

/// The AWS CLI with a member account's keys: its identity, its clusters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_acts_in_the_member_account() {
    let (sb, report) = seeded_member().await;
    let home = tempfile::tempdir().unwrap();
    let aws = |args: &[&str]| {
        let mut cmd = std::process::Command::new("aws");
        cmd.args(args)
            .env("HOME", home.path())
            .env("AWS_CONFIG_FILE", home.path().join("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.path().join("none"))
            .env("AWS_ENDPOINT_URL_STS", sb.aws_endpoint())
            .env("AWS_ENDPOINT_URL_EKS", sb.aws_endpoint())
            .env("AWS_ENDPOINT_URL_IAM", sb.aws_endpoint())
            .env("AWS_DEFAULT_REGION", sb.region())
            .env("AWS_ACCESS_KEY_ID", &report.admin.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &report.admin.secret_access_key)
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE");
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("the AWS CLI must be installed (pip install awscli): {e}"));
        assert!(
            out.status.success(),
            "aws {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let who = aws(&["sts", "get-caller-identity"]);
    assert_eq!(who["Account"], MEMBER);
    assert_eq!(who["Arn"], report.admin.user_arn);
    let clusters = aws(&["eks", "list-clusters"]);
    assert_eq!(
        clusters["clusters"],
        json!(["member-api", "member-prod", "member-untagged"])
    );
    let role = aws(&["iam", "get-role", "--role-name", "eks-access-sync-member"]);
    assert_eq!(role["Role"]["Arn"], report.member_role_arn);
    sb.shutdown().await;
}

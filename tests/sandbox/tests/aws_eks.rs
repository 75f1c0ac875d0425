//! The EKS control plane through the real AWS SDK.

use crate::aws_support::*;
use aws_sdk_eks::types::{
    AccessScope, AccessScopeType, AuthenticationMode,
    UpdateAccessConfigRequest as AccessConfigRequest,
};
use base64::Engine;

const ACCT: &str = "123456789012";
const ADMIN_POLICY: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy";

fn vpc() -> aws_sdk_eks::types::VpcConfigRequest {
    aws_sdk_eks::types::VpcConfigRequest::builder()
        .subnet_ids("subnet-1")
        .build()
}

async fn create(eks: &aws_sdk_eks::Client, name: &str, mode: Option<AuthenticationMode>) {
    let mut req = eks
        .create_cluster()
        .name(name)
        .role_arn(format!("arn:aws:iam::{ACCT}:role/cluster"))
        .resources_vpc_config(vpc())
        .tags("eks-access-sync/managed", "true");
    if let Some(m) = mode {
        req = req.access_config(
            aws_sdk_eks::types::CreateAccessConfigRequest::builder()
                .authentication_mode(m)
                .build(),
        );
    }
    req.send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_crud_pagination_and_tags() {
    let sb = start().await;
    let eks = aws_sdk_eks::Client::new(&operator_config(&sb).await);
    for n in ["c1", "c2", "c3", "c4", "c5"] {
        create(&eks, n, None).await;
    }
    let err = eks
        .create_cluster()
        .name("c1")
        .role_arn("arn:aws:iam::123456789012:role/cluster")
        .resources_vpc_config(vpc())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_message(&err).0, "ResourceInUseException");

    // Pagination: pages of 2 cover all five exactly once.
    let mut seen = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = eks
            .list_clusters()
            .max_results(2)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        pages += 1;
        assert!(page.clusters().len() <= 2);
        seen.extend(page.clusters().iter().cloned());
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(
        (pages, seen),
        (
            3,
            vec!["c1", "c2", "c3", "c4", "c5"]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
        )
    );

    // DescribeCluster: a real endpoint and CA, the mode, the tags.
    let c = eks
        .describe_cluster()
        .name("c1")
        .send()
        .await
        .unwrap()
        .cluster
        .unwrap();
    assert_eq!(
        c.arn(),
        Some(format!("arn:aws:eks:us-east-1:{ACCT}:cluster/c1").as_str())
    );
    assert!(c.endpoint().unwrap().starts_with("https://127.0.0.1:"));
    let ca = base64::engine::general_purpose::STANDARD
        .decode(c.certificate_authority().unwrap().data().unwrap())
        .unwrap();
    assert!(
        String::from_utf8(ca)
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert_eq!(
        c.access_config().unwrap().authentication_mode(),
        Some(&AuthenticationMode::ConfigMap)
    );
    assert_eq!(c.status(), Some(&aws_sdk_eks::types::ClusterStatus::Active));
    assert_eq!(
        c.tags()
            .unwrap()
            .get("eks-access-sync/managed")
            .map(String::as_str),
        Some("true")
    );
    // Each cluster has its own API server.
    let c2 = eks
        .describe_cluster()
        .name("c2")
        .send()
        .await
        .unwrap()
        .cluster
        .unwrap();
    assert_ne!(c.endpoint(), c2.endpoint());

    // Tags.
    let arn = c.arn().unwrap().to_string();
    eks.tag_resource()
        .resource_arn(&arn)
        .tags("team", "data")
        .send()
        .await
        .unwrap();
    eks.untag_resource()
        .resource_arn(&arn)
        .tag_keys("eks-access-sync/managed")
        .send()
        .await
        .unwrap();
    let tags = eks
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags.tags().unwrap().clone(),
        std::collections::HashMap::from([("team".to_string(), "data".to_string())])
    );
    let err = eks
        .list_tags_for_resource()
        .resource_arn(format!("arn:aws:eks:us-east-1:{ACCT}:cluster/nope"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_message(&err).0, "NotFoundException");

    // Clusters are per region.
    let (ak, sk) = sb.operator_credentials();
    let west = aws_sdk_eks::Client::new(&config_for(&sb, "us-west-2", &ak, &sk, None).await);
    assert!(
        west.list_clusters()
            .send()
            .await
            .unwrap()
            .clusters()
            .is_empty()
    );
    let err = west.describe_cluster().name("c1").send().await.unwrap_err();
    assert_eq!(code_and_message(&err).0, "ResourceNotFoundException");

    // Delete.
    eks.delete_cluster().name("c5").send().await.unwrap();
    let err = eks.describe_cluster().name("c5").send().await.unwrap_err();
    assert_eq!(code_and_message(&err).0, "ResourceNotFoundException");
    assert_eq!(
        eks.list_clusters().send().await.unwrap().clusters().len(),
        4
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_mode_only_moves_forward() {
    let sb = start().await;
    let eks = aws_sdk_eks::Client::new(&operator_config(&sb).await);
    create(&eks, "m", None).await;
    let to = |m: AuthenticationMode| {
        eks.update_cluster_config()
            .name("m")
            .access_config(
                AccessConfigRequest::builder()
                    .authentication_mode(m)
                    .build(),
            )
            .send()
    };
    let up = to(AuthenticationMode::ApiAndConfigMap).await.unwrap();
    assert_eq!(
        up.update().unwrap().r#type(),
        Some(&aws_sdk_eks::types::UpdateType::AccessConfigUpdate)
    );
    let err = to(AuthenticationMode::ConfigMap).await.unwrap_err();
    assert_eq!(code_and_message(&err).0, "InvalidParameterException");
    to(AuthenticationMode::Api).await.unwrap();
    let err = to(AuthenticationMode::ApiAndConfigMap).await.unwrap_err();
    assert_eq!(code_and_message(&err).0, "InvalidParameterException");
    let c = eks
        .describe_cluster()
        .name("m")
        .send()
        .await
        .unwrap()
        .cluster
        .unwrap();
    assert_eq!(
        c.access_config().unwrap().authentication_mode(),
        Some(&AuthenticationMode::Api)
    );
    // Moving to an API mode gave the creator its access entry.
    let entries = eks
        .list_access_entries()
        .cluster_name("m")
        .send()
        .await
        .unwrap();
    assert_eq!(entries.access_entries(), [sb.operator_arn()]);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_entries_with_aws_validation() {
    let sb = start().await;
    sb.seed().await.unwrap();
    let eks = aws_sdk_eks::Client::new(&operator_config(&sb).await);
    let role = format!("arn:aws:iam::{ACCT}:role/eks-admin");

    // CONFIG_MAP clusters have no access entries.
    let err = eks
        .create_access_entry()
        .cluster_name("prod")
        .principal_arn(&role)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_message(&err).0, "InvalidRequestException");

    // staging (API_AND_CONFIG_MAP): the creator is there with the admin policy.
    let entries = eks
        .list_access_entries()
        .cluster_name("staging")
        .send()
        .await
        .unwrap();
    assert_eq!(entries.access_entries(), [sb.operator_arn()]);
    let assoc = eks
        .list_associated_access_policies()
        .cluster_name("staging")
        .principal_arn(sb.operator_arn())
        .send()
        .await
        .unwrap();
    assert_eq!(
        assoc.associated_access_policies()[0].policy_arn(),
        Some(ADMIN_POLICY)
    );

    let created = eks
        .create_access_entry()
        .cluster_name("staging")
        .principal_arn(&role)
        .send()
        .await
        .unwrap()
        .access_entry
        .unwrap();
    assert_eq!(
        created.username(),
        Some(format!("arn:aws:sts::{ACCT}:assumed-role/eks-admin/{{{{SessionName}}}}").as_str())
    );
    let err = eks
        .create_access_entry()
        .cluster_name("staging")
        .principal_arn(&role)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_message(&err).0, "ResourceInUseException");

    for (groups, username) in [
        (vec!["system:masters"], None),
        (vec!["system:anything"], None),
        (vec![], Some("system:admin")),
        (vec![], Some("eks:x")),
        (vec![], Some("aws:x")),
        (vec![], Some("amazon:x")),
        (vec![], Some("iam:x")),
    ] {
        let err = eks
            .create_access_entry()
            .cluster_name("staging")
            .principal_arn(format!("arn:aws:iam::{ACCT}:user/alice"))
            .set_kubernetes_groups(Some(groups.iter().map(|g| g.to_string()).collect()))
            .set_username(username.map(str::to_string))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            code_and_message(&err).0,
            "InvalidParameterException",
            "{groups:?} {username:?}"
        );
    }
    let err = eks
        .create_access_entry()
        .cluster_name("staging")
        .principal_arn(format!("arn:aws:iam::{ACCT}:user/nobody"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_message(&err).0, "InvalidParameterException");

    // Associate, list by policy, disassociate, delete.
    let scope = AccessScope::builder()
        .r#type(AccessScopeType::Cluster)
        .build();
    eks.associate_access_policy()
        .cluster_name("staging")
        .principal_arn(&role)
        .policy_arn(ADMIN_POLICY)
        .access_scope(scope)
        .send()
        .await
        .unwrap();
    let with_policy = eks
        .list_access_entries()
        .cluster_name("staging")
        .associated_policy_arn(ADMIN_POLICY)
        .send()
        .await
        .unwrap();
    assert_eq!(with_policy.access_entries().len(), 2);
    let d = eks
        .describe_access_entry()
        .cluster_name("staging")
        .principal_arn(&role)
        .send()
        .await
        .unwrap();
    assert_eq!(d.access_entry().unwrap().r#type(), Some("STANDARD"));
    eks.disassociate_access_policy()
        .cluster_name("staging")
        .principal_arn(&role)
        .policy_arn(ADMIN_POLICY)
        .send()
        .await
        .unwrap();
    let assoc = eks
        .list_associated_access_policies()
        .cluster_name("staging")
        .principal_arn(&role)
        .send()
        .await
        .unwrap();
    assert!(assoc.associated_access_policies().is_empty());
    eks.delete_access_entry()
        .cluster_name("staging")
        .principal_arn(&role)
        .send()
        .await
        .unwrap();
    let err = eks
        .describe_access_entry()
        .cluster_name("staging")
        .principal_arn(&role)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_message(&err).0, "ResourceNotFoundException");
    // Seeding again is fine and changes nothing.
    sb.seed().await.unwrap();
    assert_eq!(
        eks.list_clusters().send().await.unwrap().clusters().len(),
        3
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_policy_scopes_validate_and_reassociating_replaces() {
    let sb = start().await;
    sb.seed().await.unwrap();
    let eks = aws_sdk_eks::Client::new(&operator_config(&sb).await);
    let role = format!("arn:aws:iam::{ACCT}:role/eks-admin");
    let edit = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy";
    eks.create_access_entry()
        .cluster_name("staging")
        .principal_arn(&role)
        .send()
        .await
        .unwrap();
    let scope = |t: AccessScopeType, namespaces: &[&str]| {
        AccessScope::builder()
            .r#type(t)
            .set_namespaces(
                (!namespaces.is_empty())
                    .then(|| namespaces.iter().map(|n| n.to_string()).collect()),
            )
            .build()
    };
    let associate = |s: AccessScope| {
        eks.associate_access_policy()
            .cluster_name("staging")
            .principal_arn(&role)
            .policy_arn(edit)
            .access_scope(s)
            .send()
    };
    let listed = || async {
        eks.list_associated_access_policies()
            .cluster_name("staging")
            .principal_arn(&role)
            .send()
            .await
            .unwrap()
            .associated_access_policies()
            .to_vec()
    };

    // Refused scopes, in EKS's exception.
    for (s, says) in [
        (
            scope(AccessScopeType::Namespace, &[]),
            "namespaces are required",
        ),
        (
            scope(AccessScopeType::Cluster, &["team-a"]),
            "namespaces must be empty",
        ),
        (
            scope(AccessScopeType::Namespace, &["Team_A"]),
            "The namespace Team_A is invalid",
        ),
        (
            scope(AccessScopeType::Namespace, &["te*am"]),
            "The namespace te*am is invalid",
        ),
        (
            scope(AccessScopeType::from("everywhere"), &[]),
            "The access scope type everywhere is invalid.",
        ),
    ] {
        let err = associate(s).await.unwrap_err();
        let (code, message) = code_and_message(&err);
        assert_eq!(code, "InvalidParameterException", "{message}");
        assert!(message.contains(says), "{message}");
    }
    assert!(listed().await.is_empty());

    // Namespace scope with a pattern, kept as given.
    let first = associate(scope(AccessScopeType::Namespace, &["team-a", "team-b-*"]))
        .await
        .unwrap();
    let a = first.associated_access_policy().unwrap();
    assert_eq!(
        a.access_scope().unwrap().namespaces(),
        ["team-a", "team-b-*"]
    );
    let now = listed().await;
    assert_eq!(now.len(), 1);
    assert_eq!(
        now[0].access_scope().unwrap().r#type(),
        Some(&AccessScopeType::Namespace)
    );

    // Associating the same policy again replaces its scope: still one association.
    associate(scope(AccessScopeType::Namespace, &["team-a"]))
        .await
        .unwrap();
    associate(scope(AccessScopeType::Cluster, &[]))
        .await
        .unwrap();
    let now = listed().await;
    assert_eq!(now.len(), 1, "{now:?}");
    let s = now[0].access_scope().unwrap();
    assert_eq!(s.r#type(), Some(&AccessScopeType::Cluster));
    assert!(s.namespaces().is_empty());
    assert_eq!(now[0].associated_at(), a.associated_at());
    assert!(now[0].modified_at().unwrap().secs() >= a.associated_at().unwrap().secs());

    // A second policy is a second association; disassociating one keeps the other.
    eks.associate_access_policy()
        .cluster_name("staging")
        .principal_arn(&role)
        .policy_arn("arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy")
        .access_scope(scope(AccessScopeType::Namespace, &["team-b-*"]))
        .send()
        .await
        .unwrap();
    assert_eq!(listed().await.len(), 2);
    eks.disassociate_access_policy()
        .cluster_name("staging")
        .principal_arn(&role)
        .policy_arn(edit)
        .send()
        .await
        .unwrap();
    let left = listed().await;
    assert_eq!(
        (left.len(), left[0].policy_arn()),
        (
            1,
            Some("arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy")
        )
    );
    sb.shutdown().await;
}

//! Cluster-side behaviour end to end: races on aws-auth, a broken aws-auth on one
//! cluster, API-mode clusters, and the `reconcile` function's payloads.

use crate::support::{World, event, role_arn};
use serde_json::{Value, json};

fn cluster<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in the report: {report}"))
}

fn names(report: &Value) -> Vec<String> {
    report["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .map(|c| c["name"].as_str().expect("name").to_owned())
        .collect()
}

fn map_roles(w: &World, cluster: &str) -> String {
    w.aws_auth_data(cluster)
        .get("mapRoles")
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_loses_a_race_keeps_the_other_writers_entry() {
    let w = World::start().await;
    let legacy_rv = w.resource_version("legacy").expect("legacy rv");
    let (status, body) = w
        .control(
            "/_sandbox/faults",
            r#"{"cluster":"prod","awsAuthConflicts":2}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let report = reconcile::handle(&w.engine, json!({"clusters": ["prod"]}))
        .await
        .expect("reconcile");
    assert_eq!(report["conflictRetries"], 2, "{report}");
    assert_eq!(cluster(&report, "prod")["status"], "updated", "{report}");
    assert_eq!(
        w.count("k8s:prod", "PUT configmaps"),
        3,
        "two lost races, one win"
    );

    let roles = map_roles(&w, "prod");
    assert_eq!(
        roles.matches("role/race-node-").count(),
        2,
        "both racing writers' entries kept:\n{roles}"
    );
    assert!(roles.contains(&role_arn()), "admin role mapped:\n{roles}");
    w.assert_invariants(&Default::default(), &legacy_rv);
    w.sb.shutdown().await;
}

/// A Kubernetes 500 is retried like a conflict and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_api_errors_are_retried_and_counted() {
    let w = World::start().await;
    let legacy_rv = w.resource_version("legacy").expect("legacy rv");
    let (status, body) = w
        .control("/_sandbox/faults", r#"{"cluster":"prod","errors500":2}"#)
        .await;
    assert_eq!(status, 200, "{body}");
    let report = reconcile::handle(&w.engine, json!({"clusters": ["prod"]}))
        .await
        .expect("reconcile");
    assert_eq!(report["conflictRetries"], 2, "{report}");
    assert_eq!(cluster(&report, "prod")["status"], "updated", "{report}");
    assert!(map_roles(&w, "prod").contains(&role_arn()));
    w.assert_invariants(&Default::default(), &legacy_rv);

    // Errors that do not stop: the cluster fails after the capped attempts, saying
    // how many and why, and the retries are still counted.
    let max = eks_access_sync::engine::MAX_WRITE_ATTEMPTS;
    let (status, body) = w
        .control(
            "/_sandbox/faults",
            &format!(r#"{{"cluster":"prod","errors500":{max}}}"#),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    w.reset_calls().await;
    let report = reconcile::handle(&w.engine, json!({"clusters": ["prod"]}))
        .await
        .expect("a manual run answers its report");
    let prod = cluster(&report, "prod");
    assert_eq!(prod["status"], "failed", "{report}");
    let error = prod["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("{max} attempt")) && error.contains("500"),
        "{report}"
    );
    assert_eq!(report["conflictRetries"], max - 1, "{report}");
    assert_eq!(
        w.count("k8s:prod", "GET configmaps"),
        u64::from(max),
        "capped: {max} reads"
    );
    w.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_map_roles_fails_that_cluster_only() {
    let w = World::start().await;
    let broken =
        "- rolearn: arn:aws:iam::123456789012:role/eks-node-role\n  groups: [system:nodes\n";
    w.set_aws_auth_key("prod", "mapRoles", broken);
    let prod_rv = w.resource_version("prod").expect("prod rv");
    let dave = w.create_user("dave", true).await;

    // The iam-events function fails the run (so Lambda retries) but did the rest.
    let err = iam_events::handle(&w.engine, event("iam-create-user-tagged", "dave"))
        .await
        .expect_err("the run fails on prod");
    assert!(err.to_string().contains("prod"), "{err}");
    assert!(err.to_string().contains("mapRoles"), "{err}");
    let report = serde_json::to_value(&*err.report).expect("report JSON");
    assert_eq!(report["trustPolicy"]["changed"], true, "{report}");
    let prod = cluster(&report, "prod");
    assert_eq!(prod["status"], "failed");
    assert!(
        prod["error"].as_str().expect("error").contains("mapRoles"),
        "{prod}"
    );
    assert_eq!(cluster(&report, "staging")["status"], "created", "{report}");
    w.assume_admin(&dave, "dave")
        .await
        .expect("trust policy written despite prod");

    // Nothing was written to prod; its aws-auth is as the other writer left it.
    assert_eq!(w.k8s_writes("prod"), Vec::<String>::new());
    assert_eq!(
        w.resource_version("prod").as_deref(),
        Some(prod_rv.as_str())
    );
    assert_eq!(map_roles(&w, "prod"), broken);

    // A manual reconcile reports the same, and still returns the report.
    let report = reconcile::handle(&w.engine, json!({}))
        .await
        .expect("manual runs return the report");
    assert_eq!(cluster(&report, "prod")["status"], "failed");
    assert_eq!(cluster(&report, "staging")["status"], "unchanged");
    assert_eq!(w.k8s_writes("prod"), Vec::<String>::new());
    w.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_mode_clusters_get_an_access_entry() {
    let w = World::start().await;
    // A cluster in API mode (no aws-auth at all), tagged for eks-access-sync.
    w.create_api_cluster("apionly").await;
    let dave = w.create_user("dave", true).await;
    let report = iam_events::handle(&w.engine, event("iam-create-user-tagged", "dave"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for name in ["staging", "apionly"] {
        let c = cluster(&report, name);
        assert_eq!(c["backend"], "accessEntries", "{c}");
        assert_eq!(c["status"], "created", "{c}");

        let entry = w
            .eks
            .describe_access_entry()
            .cluster_name(name)
            .principal_arn(role_arn())
            .send()
            .await
            .expect("DescribeAccessEntry")
            .access_entry
            .expect("entry");
        assert_eq!(
            entry.username.as_deref(),
            Some(eks_access_sync::model::config::DEFAULT_K8S_USERNAME)
        );
        let policies = w
            .eks
            .list_associated_access_policies()
            .cluster_name(name)
            .principal_arn(role_arn())
            .send()
            .await
            .expect("ListAssociatedAccessPolicies")
            .associated_access_policies
            .unwrap_or_default();
        assert_eq!(policies.len(), 1, "{policies:?}");
        assert_eq!(
            policies[0].policy_arn.as_deref(),
            Some(eks_access_sync::policy::accessentry::CLUSTER_ADMIN_POLICY)
        );
        assert_eq!(
            policies[0]
                .access_scope
                .as_ref()
                .map(|s| s.r#type().cloned()),
            Some(Some(aws_sdk_eks::types::AccessScopeType::Cluster))
        );
    }
    assert!(
        w.aws_auth("staging").is_none(),
        "no aws-auth created on staging"
    );

    let session = w.assume_admin(&dave, "dave").await.expect("AssumeRole");
    let key = session.access_key_id().to_owned();
    for name in ["staging", "apionly"] {
        let me = w.whoami(&session, name).await.expect("whoami");
        assert_eq!(me.username, format!("admin:{key}:dave"), "{name}");
    }

    // A full reconcile (alice, tagged by the seed, joins the trust policy) leaves the
    // entries alone, and a second one writes nothing at all.
    reconcile::handle(&w.engine, json!({}))
        .await
        .expect("reconcile");
    assert_eq!(w.count("eks", "CreateAccessEntry"), 2);
    w.reset_calls().await;
    let again = reconcile::handle(&w.engine, json!({}))
        .await
        .expect("reconcile");
    for name in ["staging", "apionly"] {
        assert_eq!(cluster(&again, name)["status"], "unchanged", "{again}");
    }
    assert_eq!(w.all_writes(), Vec::<String>::new());
    w.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_dry_run_apply_scope_and_eks_events() {
    let w = World::start().await;
    let legacy_rv = w.resource_version("legacy").expect("legacy rv");

    // Dry run: a plan, nothing written.
    let plan = reconcile::handle(&w.engine, event("reconcile-dry-run", ""))
        .await
        .expect("dry run");
    assert_eq!(plan["dryRun"], true);
    assert!(plan["plan"].is_object(), "{plan}");
    assert_eq!(
        plan["trustPolicy"]["changed"], true,
        "alice would be added: {plan}"
    );
    assert_eq!(cluster(&plan, "prod")["status"], "updated", "{plan}");
    assert_eq!(cluster(&plan, "staging")["status"], "created", "{plan}");
    assert_eq!(w.all_writes(), Vec::<String>::new(), "dry run wrote");

    // Only prod.
    let report = reconcile::handle(&w.engine, json!({"clusters": ["prod"]}))
        .await
        .expect("prod only");
    assert_eq!(names(&report), ["prod"]);
    assert_eq!(cluster(&report, "prod")["status"], "updated");
    assert_eq!(w.count("eks", "CreateAccessEntry"), 0, "staging untouched");
    assert_eq!(w.k8s_writes("staging"), Vec::<String>::new());
    assert!(map_roles(&w, "prod").contains(&role_arn()));

    // Everything.
    let report = reconcile::handle(&w.engine, json!({}))
        .await
        .expect("apply");
    assert_eq!(report["dryRun"], false);
    assert_eq!(cluster(&report, "prod")["status"], "unchanged", "{report}");
    assert_eq!(cluster(&report, "staging")["status"], "created", "{report}");
    assert!(!names(&report).contains(&"legacy".to_owned()));
    w.assert_invariants(&Default::default(), &legacy_rv);

    // legacy gets tagged; the TagResource event brings it in at once.
    w.eks
        .tag_resource()
        .resource_arn("arn:aws:eks:us-east-1:123456789012:cluster/legacy")
        .tags("eks-access-sync/managed", "true")
        .send()
        .await
        .expect("TagResource");
    let report = reconcile::handle(&w.engine, event("eks-tag-resource", ""))
        .await
        .expect("EKS event");
    assert_eq!(names(&report), ["legacy"], "{report}");
    assert_eq!(cluster(&report, "legacy")["status"], "updated", "{report}");
    let data = w.aws_auth_data("legacy");
    assert!(data["mapRoles"].contains(&role_arn()), "{data:?}");
    assert!(
        data["mapRoles"].contains("role/eks-node-role"),
        "legacy's node role kept: {data:?}"
    );
    assert!(data["mapUsers"].contains("user/carol"), "{data:?}");
    w.sb.shutdown().await;
}

#[tokio::test]
async fn a_warm_engine_reuses_its_cluster_clients() {
    use eks_access_sync::{
        adapters::kube::client::EksKubeConnector,
        model::cluster::ClusterEndpoint,
        ports::{AwsAuthStore as _, KubeConnector as _},
    };
    let w = World::start().await;
    let (endpoint, ca) = w.describe("prod").await;
    let prod = ClusterEndpoint {
        member: None,
        region: "us-east-1".into(),
        name: "prod".into(),
        endpoint,
        ca_pem: base64::Engine::decode(&base64::engine::general_purpose::STANDARD, ca)
            .expect("CA is base64"),
    };
    let warm = EksKubeConnector::new(w.sdk.clone());
    let first = warm.connect(&prod).await.expect("connect").read().await;
    assert!(first.expect("read").is_some(), "prod has aws-auth");
    assert_eq!(warm.cached_clients(), 1);
    // The second store rides on the same client (and token), and still works.
    let second = warm
        .connect(&prod)
        .await
        .expect("connect again")
        .read()
        .await;
    assert!(second.expect("read again").is_some());
    assert_eq!(warm.cached_clients(), 1);

    let cold = EksKubeConnector::new(w.sdk.clone()).with_reuse(std::time::Duration::ZERO);
    let read = cold.connect(&prod).await.expect("connect").read().await;
    assert!(read.expect("read").is_some());
    assert_eq!(cold.cached_clients(), 0, "no reuse: nothing held");
}

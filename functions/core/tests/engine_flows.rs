//! The engine on in-memory fakes of IAM, EKS and aws-auth.

use crate::flows_support::*;
use eks_access_sync::engine::{Engine, EventResult, RunMode, Scope};
use eks_access_sync::model::cluster::AuthMode;
use eks_access_sync::model::config::Config;
use eks_access_sync::output::report::ClusterStatus;
use serde_json::json;

#[tokio::test]
async fn full_run_maps_admins_keeps_node_role_and_leaves_untagged_alone() {
    let w = world();
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(r.admin_users, 1);
    assert!(r.trust_policy.changed);
    assert_eq!(
        r.trust_policy.added,
        vec![format!("arn:aws:iam::{ACCOUNT}:user/alice")]
    );
    let policy = w.iam.policy();
    assert!(policy.contains("user/alice"));
    assert!(!policy.contains("user/bob"));
    assert!(
        policy.contains("ec2.amazonaws.com"),
        "foreign statement kept"
    );

    // c1: node role kept (same fields, first place), admin role added without its path.
    assert_eq!(status(&r, "c1"), ClusterStatus::Updated);
    let d1 = w.kube.data("c1").expect("c1 data");
    let entries = map_roles_entries(&d1);
    assert_eq!(entries[0], node_entry());
    assert!(
        d1["mapRoles"].contains(&format!("arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}")),
        "{}",
        d1["mapRoles"]
    );
    assert!(!d1["mapRoles"].contains("role/ops/"), "path stripped");
    assert_eq!(
        d1["mapAccounts"], "- \"111122223333\"\n",
        "other keys byte-for-byte"
    );

    // c2 is not tagged: never connected to, never in the report.
    assert_eq!(w.kube.state("c2").lock().expect("lock").connects, 0);
    assert_eq!(w.kube.data("c2"), aws_auth(NODE_ROLES, None));
    assert!(r.clusters.iter().all(|c| c.name != "c2"));

    // c3 had no aws-auth: created.
    assert_eq!(status(&r, "c3"), ClusterStatus::Created);
    assert!(w.kube.data("c3").is_some());

    // c4 (API): an access entry with the cluster-admin policy.
    assert_eq!(status(&r, "c4"), ClusterStatus::Created);
    let entries = w.eks.entries("c4");
    let admin = entries
        .values()
        .find(|e| {
            e.principal_arn.ends_with(&format!("role/ops/{ROLE_NAME}"))
                || e.principal_arn.ends_with(&format!("role/{ROLE_NAME}"))
        })
        .expect("admin access entry");
    assert!(
        admin
            .kubernetes_groups
            .iter()
            .all(|g| !g.starts_with("system:"))
    );
    assert!(
        admin
            .policies
            .iter()
            .any(|(p, _)| p.ends_with("AmazonEKSClusterAdminPolicy"))
    );

    // Report is sorted by region then name.
    let order: Vec<(&str, &str)> = r
        .clusters
        .iter()
        .map(|c| (c.region.as_str(), c.name.as_str()))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);

    // A second run changes nothing and writes nothing; the node role stays byte-for-byte.
    let before = total_writes(&w);
    let roles_before = w.kube.data("c1").expect("c1")["mapRoles"].clone();
    let r2 = w.engine.apply_full(&Scope::all()).await;
    assert!(r2.succeeded(), "{r2:#?}");
    assert!(!r2.changed_anything(), "{r2:#?}");
    assert_eq!(total_writes(&w), before);
    assert_eq!(w.kube.data("c1").expect("c1")["mapRoles"], roles_before);
}

#[tokio::test]
async fn conflict_is_retried_and_keeps_the_other_writers_entry() {
    let w = world();
    let other = format!(
        "{NODE_ROLES}- rolearn: arn:aws:iam::{ACCOUNT}:role/fargate\n  username: system:node:{{{{SessionName}}}}\n  groups:\n    - system:nodes\n"
    );
    w.kube.state("c1").lock().expect("lock").race = Some(("mapRoles".to_owned(), other));
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(r.conflict_retries, 1);
    let d1 = w.kube.data("c1").expect("c1");
    assert!(
        d1["mapRoles"].contains("role/fargate"),
        "{}",
        d1["mapRoles"]
    );
    assert!(d1["mapRoles"].contains(&format!("role/{ROLE_NAME}")));
    assert_eq!(map_roles_entries(&d1)[0], node_entry());
}

#[tokio::test]
async fn broken_map_roles_fails_that_cluster_only_and_writes_nothing_there() {
    let w = world();
    w.kube.set(
        "c1",
        aws_auth("- rolearn: [unclosed\n  username: x\n", None),
    );
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(!r.succeeded());
    assert_eq!(status(&r, "c1"), ClusterStatus::Failed);
    let err = r
        .clusters
        .iter()
        .find(|c| c.name == "c1")
        .and_then(|c| c.error.clone())
        .expect("error");
    assert!(err.contains("mapRoles"), "{err}");
    assert_eq!(w.kube.writes("c1"), 0);
    assert_eq!(status(&r, "c3"), ClusterStatus::Created);
    assert_eq!(status(&r, "c4"), ClusterStatus::Created);
    assert!(r.trust_policy.changed);
}

#[tokio::test]
async fn a_failing_cluster_does_not_stop_the_others() {
    let w = world();
    w.eks
        .0
        .lock()
        .expect("lock")
        .fail_describe
        .push("c1".into());
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(!r.succeeded());
    assert_eq!(status(&r, "c1"), ClusterStatus::Failed);
    assert_eq!(status(&r, "c3"), ClusterStatus::Created);
    assert_eq!(status(&r, "c4"), ClusterStatus::Created);
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let w = world();
    let out = w.engine.run_full(&Scope::all(), RunMode::DryRun).await;
    assert_eq!(total_writes(&w), 0);
    assert!(out.plan.has_changes());
    assert!(out.report.dry_run);
    assert!(out.report.plan.is_some());
    assert_eq!(status(&out.report, "c1"), ClusterStatus::Updated);
    assert!(out.plan.render_text().contains("alice"));
    assert_eq!(w.iam.policy(), EMPTY_TRUST);
}

#[tokio::test]
async fn scope_limits_clusters() {
    let w = world();
    let r = w
        .engine
        .apply_full(&Scope::clusters([
            "c3".parse().expect("name"),
            "nope".parse().expect("name"),
        ]))
        .await;
    assert_eq!(status(&r, "c3"), ClusterStatus::Created);
    assert_eq!(status(&r, "nope"), ClusterStatus::Skipped);
    assert!(r.clusters.iter().all(|c| c.name != "c1"));
    assert_eq!(w.kube.writes("c1"), 0);
}

#[tokio::test]
async fn event_adds_then_replay_changes_nothing() {
    let w = world();
    let ev = iam_event("TagUser", "alice");
    let EventResult::Ran(r) = w
        .engine
        .handle_iam_events_payload(&ev, RunMode::Apply)
        .await
    else {
        panic!("event should run");
    };
    assert!(r.succeeded(), "{r:#?}");
    assert!(w.iam.policy().contains("user/alice"));
    let writes = total_writes(&w);
    assert!(writes > 0);
    let EventResult::Ran(r2) = w
        .engine
        .handle_iam_events_payload(&ev, RunMode::Apply)
        .await
    else {
        panic!("event should run");
    };
    assert!(r2.succeeded());
    assert!(!r2.changed_anything(), "{r2:#?}");
    assert_eq!(total_writes(&w), writes, "replay writes nothing");
}

#[tokio::test]
async fn event_is_not_trusted_the_user_is_re_read() {
    let w = world();
    // The event says bob was tagged, but IAM says he is not an admin.
    let r = match w
        .engine
        .handle_iam_events_payload(&iam_event("TagUser", "bob"), RunMode::Apply)
        .await
    {
        EventResult::Ran(r) => r,
        EventResult::Ignored(reason) => panic!("ignored: {reason}"),
    };
    assert!(r.succeeded());
    assert!(!w.iam.policy().contains("user/bob"));
}

#[tokio::test]
async fn delete_event_removes_user_from_policy_and_direct_mappings() {
    let w = world();
    let users = format!(
        "- userarn: arn:aws:iam::{ACCOUNT}:user/alice\n  username: alice\n  groups:\n    - system:masters\n- userarn: arn:aws:iam::{ACCOUNT}:user/bob\n  username: bob\n  groups:\n    - viewers\n"
    );
    w.kube.set("c1", aws_auth(NODE_ROLES, Some(&users)));
    w.eks.put_entry(
        "c4",
        eks_access_sync::policy::accessentry::AccessEntryView {
            principal_arn: format!("arn:aws:iam::{ACCOUNT}:user/alice"),
            username: Some("alice".into()),
            kubernetes_groups: vec![],
            policies: vec![],
            policy_namespaces: Default::default(),
            created_at: None,
        },
    );
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    assert!(w.iam.policy().contains("user/alice"));

    w.iam.set_users(vec![user("bob", false)]);
    let r = match w
        .engine
        .handle_iam_events_payload(&iam_event("DeleteUser", "alice"), RunMode::Apply)
        .await
    {
        EventResult::Ran(r) => r,
        EventResult::Ignored(reason) => panic!("ignored: {reason}"),
    };
    assert!(r.succeeded(), "{r:#?}");
    assert!(!w.iam.policy().contains("user/alice"));
    let d1 = w.kube.data("c1").expect("c1");
    assert!(!d1["mapUsers"].contains("user/alice"), "{}", d1["mapUsers"]);
    assert!(d1["mapUsers"].contains("user/bob"), "others kept");
    assert_eq!(map_roles_entries(&d1)[0], node_entry());
    assert!(
        !w.eks
            .entries("c4")
            .keys()
            .any(|k| k.ends_with("user/alice")),
        "access entry of the deleted user removed"
    );
}

#[tokio::test]
async fn full_run_removes_stale_direct_mappings_of_this_account_only() {
    let w = world();
    let users = format!(
        "- userarn: arn:aws:iam::{ACCOUNT}:user/carol\n  username: carol\n  groups:\n    - system:masters\n- userarn: arn:aws:iam::999988887777:user/dave\n  username: dave\n  groups:\n    - viewers\n- userarn: arn:aws:iam::{ACCOUNT}:user/bob\n  username: bob\n  groups:\n    - viewers\n"
    );
    w.kube.set("c1", aws_auth(NODE_ROLES, Some(&users)));
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    let d1 = w.kube.data("c1").expect("c1");
    assert!(
        !d1["mapUsers"].contains("user/carol"),
        "deleted user removed"
    );
    assert!(d1["mapUsers"].contains("user/dave"), "other account kept");
    assert!(d1["mapUsers"].contains("user/bob"), "existing user kept");
}

#[tokio::test]
async fn ignored_events_do_nothing() {
    let w = world();
    let mut ev = iam_event("CreateUser", "alice");
    ev["detail"]["errorCode"] = json!("EntityAlreadyExists");
    ev["detail"]["errorMessage"] = json!("User with name alice already exists.");
    match w
        .engine
        .handle_iam_events_payload(&ev, RunMode::Apply)
        .await
    {
        EventResult::Ignored(reason) => assert!(reason.contains("EntityAlreadyExists"), "{reason}"),
        EventResult::Ran(r) => panic!("should be ignored: {r:#?}"),
    }
    assert_eq!(total_writes(&w), 0);
}

#[tokio::test]
async fn listing_failure_still_maps_the_role_but_fails_the_run() {
    let w = world();
    w.iam.0.lock().expect("lock").fail_list = true;
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(!r.succeeded());
    assert!(r.trust_policy.error.is_some());
    assert_eq!(w.iam.writes(), 0);
    assert_eq!(status(&r, "c1"), ClusterStatus::Updated);
}

#[tokio::test]
async fn api_and_config_map_uses_access_entries_and_only_offboards_in_aws_auth() {
    let w = world();
    w.eks.0.lock().expect("lock").clusters.push(cluster(
        "c5",
        "us-east-1",
        true,
        AuthMode::ApiAndConfigMap,
    ));
    w.kube.set("c5", aws_auth(NODE_ROLES, None));
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(status(&r, "c5"), ClusterStatus::Created);
    assert!(!w.eks.entries("c5").is_empty(), "admin access entry");
    assert_eq!(
        w.kube.writes("c5"),
        0,
        "aws-auth not edited without a reason"
    );
    assert_eq!(w.kube.data("c5"), aws_auth(NODE_ROLES, None));

    // A deleted user still mapped in aws-auth is taken out.
    let users = format!(
        "- userarn: arn:aws:iam::{ACCOUNT}:user/carol\n  username: carol\n  groups:\n    - system:masters\n"
    );
    w.kube.set("c5", aws_auth(NODE_ROLES, Some(&users)));
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(status(&r, "c5"), ClusterStatus::Updated);
    assert_eq!(w.kube.writes("c5"), 1);
    let d5 = w.kube.data("c5").expect("c5");
    assert!(!d5.get("mapUsers").is_some_and(|u| u.contains("carol")));
    assert_eq!(map_roles_entries(&d5)[0], node_entry());
}

fn sample(name: &str) -> serde_json::Value {
    let path = format!("{}/../../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The sample events of `events/`, in the order a user's life produces them, with the
/// default tag (`eks-access=admin`).
#[tokio::test]
async fn sample_events_in_sequence() {
    let cfg = Config::from_lookup(|k| {
        match k {
            "ADMIN_ROLE_NAME" => Some("eks-admin"),
            "CLUSTER_TAG" => Some("eks-access-sync=enabled"),
            "CLUSTER_REGIONS" => Some("us-east-1"),
            _ => None,
        }
        .map(str::to_owned)
    })
    .expect("config");
    let mut dave = user("dave", false);
    dave.tags = vec![("eks-access".to_owned(), "admin".to_owned())];
    let iam = FakeIam::new(vec![dave.clone(), user("erin", false)], EMPTY_TRUST);
    let eks = FakeEks::new(vec![cluster("c1", "us-east-1", true, AuthMode::ConfigMap)]);
    let kube = FakeKube::default();
    kube.set("c1", aws_auth(NODE_ROLES, None));
    let engine = Engine::new(cfg, iam.clone(), eks.clone(), kube.clone());

    // A failed call is ignored, with its error code as the reason.
    match engine
        .handle_iam_events_payload(&sample("iam-create-user-failed"), RunMode::Apply)
        .await
    {
        EventResult::Ignored(reason) => assert!(reason.contains("EntityAlreadyExists"), "{reason}"),
        EventResult::Ran(r) => panic!("should be ignored: {r:#?}"),
    }
    assert_eq!(iam.writes(), 0);

    let r = ran(engine
        .handle_iam_events_payload(&sample("iam-create-user-tagged"), RunMode::Apply)
        .await);
    assert!(r.succeeded(), "{r:#?}");
    assert!(iam.policy().contains("user/dave"));
    assert_eq!(kube.writes("c1"), 1, "admin role mapped");
    let r = ran(engine
        .handle_iam_events_payload(&sample("iam-tag-user"), RunMode::Apply)
        .await);
    assert!(!r.changed_anything(), "replayed tag: {r:#?}");
    assert_eq!(iam.writes(), 1);

    // An untagged new user changes nothing.
    let r = ran(engine
        .handle_iam_events_payload(&sample("iam-create-user-untagged"), RunMode::Apply)
        .await);
    assert!(!r.changed_anything(), "{r:#?}");

    // Untag: IAM now says dave is not an admin.
    dave.tags.clear();
    iam.set_users(vec![dave, user("erin", false)]);
    let r = ran(engine
        .handle_iam_events_payload(&sample("iam-untag-user"), RunMode::Apply)
        .await);
    assert!(r.succeeded(), "{r:#?}");
    assert!(!iam.policy().contains("user/dave"));
    assert_eq!(r.trust_policy.removed.len(), 1);

    // Delete: nothing left to do.
    iam.set_users(vec![user("erin", false)]);
    let writes = iam.writes() + kube.writes("c1");
    let r = ran(engine
        .handle_iam_events_payload(&sample("iam-delete-user"), RunMode::Apply)
        .await);
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(iam.writes() + kube.writes("c1"), writes);

    // EKS and schedule events are not for iam-events.
    for name in ["eks-create-cluster", "eks-tag-resource", "schedule"] {
        assert!(
            matches!(
                engine
                    .handle_iam_events_payload(&sample(name), RunMode::Apply)
                    .await,
                EventResult::Ignored(_)
            ),
            "{name}"
        );
    }
}

// ------------------------------------------------------- who gets offboarded

//! A warm engine remembers which aws-auth documents it found in sync (they are not
//! parsed again while nothing changes); anything that changes the edit's inputs (the
//! document, the cluster's tags, the goal: a deleted user, a tier's roles) is still
//! acted on at once.

use crate::flows_support::*;
use eks_access_sync::engine::{RunMode, Scope};
use eks_access_sync::model::cluster::AuthMode;
use eks_access_sync::output::report::ClusterStatus;

/// Full runs until nothing changes: the documents are then remembered in sync.
async fn settle(w: &World) {
    for _ in 0..2 {
        let r = w.engine.apply_full(&Scope::all()).await;
        assert!(r.succeeded(), "{r:#?}");
    }
    let before = w.kube.total_writes();
    let r = w.engine.apply_full(&Scope::all()).await;
    assert_eq!(status(&r, "c1"), ClusterStatus::Unchanged);
    assert_eq!(w.kube.total_writes(), before);
}

fn map_roles(w: &World, c: &str) -> String {
    w.kube.data(c).expect("aws-auth")["mapRoles"].clone()
}

#[tokio::test]
async fn a_document_changed_by_someone_else_is_repaired_by_the_next_run() {
    let w = world();
    settle(&w).await;
    let ours = map_roles(&w, "c1");
    assert!(ours.contains(":role/eks-admin"), "{ours}");
    // Someone drops the tier role's mapping (the node role stays).
    w.kube.set("c1", aws_auth(NODE_ROLES, None));
    let r = w.engine.apply_full(&Scope::all()).await;
    assert_eq!(status(&r, "c1"), ClusterStatus::Updated, "{r:#?}");
    assert_eq!(map_roles(&w, "c1"), ours);
    // And an event on the warm engine sees it too.
    w.kube.set("c1", aws_auth(NODE_ROLES, None));
    let r = w
        .engine
        .handle_iam_events_payload(&iam_event("TagUser", "alice"), RunMode::Apply)
        .await;
    let r = ran(r);
    assert_eq!(status(&r, "c1"), ClusterStatus::Updated, "{r:#?}");
    assert_eq!(map_roles(&w, "c1"), ours);
}

#[tokio::test]
async fn a_deleted_users_direct_mapping_goes_although_the_document_did_not_change() {
    let w = world();
    let carol = "- userarn: arn:aws:iam::111122223333:user/carol\n  username: carol\n  groups:\n    - system:masters\n";
    w.iam.set_users(vec![
        user("alice", true),
        user("bob", false),
        user("carol", false),
    ]);
    w.kube.set("c1", aws_auth(NODE_ROLES, Some(carol)));
    settle(&w).await;
    assert!(
        w.kube
            .data("c1")
            .expect("aws-auth")
            .contains_key("mapUsers")
    );
    // carol is deleted: same document, new goal (the listing lacks her).
    w.iam
        .set_users(vec![user("alice", true), user("bob", false)]);
    let r = w.engine.apply_full(&Scope::all()).await;
    assert_eq!(status(&r, "c1"), ClusterStatus::Updated, "{r:#?}");
    let users = w
        .kube
        .data("c1")
        .expect("aws-auth")
        .get("mapUsers")
        .cloned()
        .unwrap_or_default();
    assert!(!users.contains("carol"), "{users}");
}

#[tokio::test]
async fn a_cluster_that_loses_its_tier_selector_tag_loses_the_tier_on_a_warm_engine() {
    let w = tiers_world();
    settle_tiers(&w).await;
    assert!(map_roles_of(&w, "c1").contains(":role/eks-view"));
    // c1 loses env=prod: the readers tier (clusters: env=prod) no longer applies.
    {
        let mut s = w.eks.0.lock().expect("lock");
        let c = s
            .clusters
            .iter_mut()
            .find(|c| c.name.as_str() == "c1")
            .expect("c1");
        c.tags.remove("env");
    }
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    assert!(!map_roles_of(&w, "c1").contains(":role/eks-view"));
}

// The tiers world: admin everywhere, readers only on env=prod clusters.
const TIERS: &str = "tiers:
  - name: admin
    role: eks-admin
    members: { tag: eks-admin=true }
    kubernetes: { policy: AmazonEKSClusterAdminPolicy }
  - name: readers
    role: eks-view
    members: { tag: team=x }
    clusters: { tag: env=prod }
    kubernetes: { policy: AmazonEKSViewPolicy }
";

fn tiers_world() -> World {
    let iam = FakeIam::new(vec![user("alice", true)], EMPTY_TRUST);
    iam.add_role("eks-view", EMPTY_TRUST);
    let mut c1 = cluster("c1", "us-east-1", true, AuthMode::ConfigMap);
    c1.tags.insert("env".into(), "prod".into());
    let eks = FakeEks::new(vec![c1]);
    let kube = FakeKube::default();
    kube.set("c1", aws_auth(NODE_ROLES, None));
    let cfg = test_config(&[("CLUSTER_REGIONS", "us-east-1"), ("ACCESS_CONFIG", TIERS)]);
    let engine = eks_access_sync::engine::Engine::new(cfg, iam.clone(), eks.clone(), kube.clone());
    World {
        iam,
        eks,
        kube,
        engine,
    }
}

async fn settle_tiers(w: &World) {
    for _ in 0..3 {
        let r = w.engine.apply_full(&Scope::all()).await;
        assert!(r.succeeded(), "{r:#?}");
    }
}

fn map_roles_of(w: &World, c: &str) -> String {
    map_roles(w, c)
}

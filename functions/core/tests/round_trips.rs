//! How many sequential round trips a run takes, counted on tokio's paused clock with
//! fakes that add one round trip time (`RTT`) to every call. The fewest the APIs
//! allow: the event's user (GetUser), the admin role (GetRole) and ListClusters at
//! once; then UpdateAssumeRolePolicy beside each cluster's DescribeCluster → GET
//! aws-auth (→ PUT aws-auth). So an event that changes no cluster takes 3 RTTs at any
//! cluster count, and 4 when every cluster needs a write; with the lease (one RTT to
//! take, one to give back) the clusters are listed while it is taken and described
//! beside the reads under it, and an event that writes everything still takes 4.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;

use crate::engine_support::*;
use eks_access_sync::engine::{Engine, EventResult, RunMode, Scope};
use eks_access_sync::model::cluster::AuthMode;
use eks_access_sync::model::config::Config;
use eks_access_sync::{
    adapters::aws::lock::{LockError, NoLock},
    ports::{Lease, TrustLock},
};
use serde_json::json;

const RTT: Duration = Duration::from_millis(20);
const CLUSTERS: usize = 100;

fn config(concurrency: Option<&str>) -> Config {
    let mut extra = vec![("CLUSTER_REGIONS", "us-east-1")];
    extra.extend(concurrency.map(|c| ("CLUSTER_CONCURRENCY", c)));
    test_config(&extra)
}

/// `CLUSTERS` tagged CONFIG_MAP clusters in us-east-1, each holding only the node role.
fn node_role_clusters() -> (FakeEks, FakeKube) {
    node_role_clusters_in(&["us-east-1"])
}

/// [`node_role_clusters`], spread over `regions` in turn.
fn node_role_clusters_in(regions: &[&str]) -> (FakeEks, FakeKube) {
    let eks = FakeEks::new(
        (0..CLUSTERS)
            .map(|i| {
                let region = regions[i % regions.len()];
                cluster(&format!("c{i:03}"), region, true, AuthMode::ConfigMap)
            })
            .collect(),
    );
    let kube = FakeKube::default();
    for i in 0..CLUSTERS {
        kube.set(&format!("c{i:03}"), aws_auth(NODE_ROLES, None));
    }
    (eks, kube)
}

/// Every call of every fake takes `RTT` from now on.
fn slow_down(iam: &FakeIam, eks: &FakeEks, kube: &FakeKube) {
    iam.0.lock().expect("lock").rtt = RTT;
    eks.0.lock().expect("lock").rtt = RTT;
    for i in 0..CLUSTERS {
        kube.state(&format!("c{i:03}")).lock().expect("lock").rtt = RTT;
    }
}

struct World {
    iam: FakeIam,
    kube: FakeKube,
    engine: Engine<FakeIam, FakeEks, FakeKube>,
}

/// `CLUSTERS` tagged CONFIG_MAP clusters; with `mapped`, each already maps the admin
/// role (as a previous run left it), else each holds only the node role.
async fn world(concurrency: Option<&str>, mapped: bool) -> World {
    let iam = FakeIam::new(
        vec![user("alice", true), user("bob", false), user("carol", true)],
        EMPTY_TRUST,
    );
    let (eks, kube) = node_role_clusters();
    let engine = Engine::new(config(concurrency), iam.clone(), eks.clone(), kube.clone());
    if mapped {
        // A first full run maps the role everywhere (clock not yet slowed).
        let r = engine.apply_full(&Scope::all()).await;
        assert!(r.succeeded(), "{r:?}");
        // carol is an admin in IAM but not yet in the trust policy: the event adds her.
        iam.0.lock().expect("lock").policy = {
            let mut v: serde_json::Value =
                serde_json::from_str(&iam.policy()).expect("policy json");
            for s in v["Statement"].as_array_mut().expect("statements") {
                if s["Sid"] == "EksAccessSyncAdmins" {
                    s["Principal"]["AWS"] = json!(format!("arn:aws:iam::{ACCOUNT}:user/alice"));
                }
            }
            v.to_string()
        };
    }
    slow_down(&iam, &eks, &kube);
    World { iam, kube, engine }
}

fn tag_user(name: &str) -> serde_json::Value {
    let mut ev: serde_json::Value =
        serde_json::from_str(include_str!("../../../events/iam-tag-user.json")).expect("event");
    ev["detail"]["requestParameters"]["userName"] = json!(name);
    ev["detail"]["requestParameters"]["tags"] = json!([{"key": "eks-admin", "value": "true"}]);
    ev
}

async fn rtts_of<F: Future>(f: F) -> (F::Output, f64) {
    let start = tokio::time::Instant::now();
    let out = f.await;
    (out, start.elapsed().as_secs_f64() / RTT.as_secs_f64())
}

#[tokio::test(start_paused = true)]
async fn an_event_takes_three_round_trips_at_a_hundred_clusters() {
    let w = world(None, true).await;
    let writes_before = w.iam.writes();
    let (r, rtts) = rtts_of(
        w.engine
            .handle_iam_events_payload(&tag_user("carol"), RunMode::Apply),
    )
    .await;
    let r = ran(r);
    assert!(r.succeeded(), "{r:?}");
    assert!(r.trust_policy.changed);
    assert_eq!(w.iam.writes(), writes_before + 1);
    assert_eq!(r.clusters.len(), CLUSTERS);
    assert_eq!(
        w.kube.total_writes(),
        CLUSTERS,
        "only the first run wrote aws-auth"
    );
    assert_eq!(
        rtts, 3.0,
        "GetUser ∥ GetRole ∥ ListClusters → DescribeCluster → GET aws-auth"
    );
}

#[tokio::test(start_paused = true)]
async fn a_bounded_concurrency_takes_waves() {
    let w = world(Some("10"), true).await;
    let (r, rtts) = rtts_of(
        w.engine
            .handle_iam_events_payload(&tag_user("carol"), RunMode::Apply),
    )
    .await;
    assert!(matches!(r, EventResult::Ran(r) if r.succeeded()));
    // ListClusters, then 10 waves of DescribeCluster → GET.
    assert_eq!(rtts, 1.0 + 10.0 * 2.0);
}

#[tokio::test(start_paused = true)]
async fn a_full_run_that_writes_everywhere_takes_four_round_trips() {
    let w = world(None, false).await;
    let (r, rtts) = rtts_of(w.engine.apply_full(&Scope::all())).await;
    assert!(r.succeeded(), "{r:?}");
    assert!(r.trust_policy.changed);
    assert_eq!(w.kube.total_writes(), CLUSTERS);
    assert_eq!(
        rtts, 4.0,
        "ListUsers ∥ GetRole ∥ ListClusters → DescribeCluster → GET → PUT aws-auth"
    );
    // In sync: reads only, one fewer round trip, nothing written.
    let (r, rtts) = rtts_of(w.engine.apply_full(&Scope::all())).await;
    assert!(r.succeeded(), "{r:?}");
    assert!(!r.trust_policy.changed);
    assert_eq!(w.kube.total_writes(), CLUSTERS);
    assert_eq!(rtts, 3.0);
}

/// A lease that costs one round trip to take and one to give back (DynamoDB's
/// `PutItem` and `DeleteItem`), never contended.
#[derive(Debug)]
struct SlowLock;

impl TrustLock for SlowLock {
    fn acquire<'a>(
        &'a self,
        lock_id: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Lease, LockError>> {
        Box::pin(async move {
            tokio::time::sleep(RTT).await;
            NoLock.acquire(lock_id, owner, ttl).await
        })
    }

    fn release<'a>(&'a self, _lease: &'a Lease) -> BoxFuture<'a, Result<(), LockError>> {
        Box::pin(tokio::time::sleep(RTT).map(Ok))
    }
}

#[tokio::test(start_paused = true)]
async fn with_the_lease_an_event_that_writes_every_cluster_takes_four_round_trips() {
    let w = world(None, false).await;
    let engine = w.engine.with_trust_lock(Arc::new(SlowLock));
    let (r, rtts) =
        rtts_of(engine.handle_iam_events_payload(&tag_user("carol"), RunMode::Apply)).await;
    let r = ran(r);
    assert!(r.succeeded(), "{r:?}");
    assert!(r.trust_policy.changed);
    assert_eq!(w.kube.total_writes(), CLUSTERS);
    // PutItem → GetUser ∥ GetRole → UpdateAssumeRolePolicy → DeleteItem, beside
    // ListClusters → DescribeCluster → (the role known) GET → PUT aws-auth.
    assert_eq!(rtts, 4.0);
}

/// The report says how long the run took: on the paused clock, exactly its round trips.
#[tokio::test(start_paused = true)]
async fn the_report_gives_the_runs_duration() {
    let w = world(None, true).await;
    let (r, rtts) = rtts_of(
        w.engine
            .handle_iam_events_payload(&tag_user("carol"), RunMode::Apply),
    )
    .await;
    let r = ran(r);
    assert_eq!(rtts, 3.0);
    assert_eq!(u128::from(r.duration_ms), 3 * RTT.as_millis());
    let (r, rtts) = rtts_of(w.engine.apply_full(&Scope::all())).await;
    assert_eq!(
        u128::from(r.duration_ms),
        (rtts * RTT.as_millis() as f64) as u128
    );
    assert!(r.duration_ms > 0);
}

/// A group event under tiers (issue 10's mark): `AddUserToGroup` of a developer at 100
/// clusters takes the same 3 round trips as a TagUser: GetUser ∥ ListGroupsForUser ∥
/// GetRole ∥ ListRoles ∥ ListClusters → DescribeCluster → GET aws-auth.
#[tokio::test(start_paused = true)]
async fn a_group_event_takes_three_round_trips_at_a_hundred_clusters() {
    use eks_access_sync::model::tiers::AccessConfig;
    let tiers = r#"
tiers:
  - name: admin
    role: eks-admin
    members: { tag: eks-admin=true }
    kubernetes: { policy: AmazonEKSClusterAdminPolicy, groups: ["system:masters"] }
  - name: developers
    role: eks-edit
    members: { groups: [developers] }
    kubernetes: { policy: AmazonEKSEditPolicy, namespaces: [team-a] }
"#;
    let dev = |name: &str| {
        let mut u = user(name, false);
        u.groups = vec!["developers".into()];
        u
    };
    let iam = FakeIam::new(vec![user("alice", true), dev("dave")], EMPTY_TRUST);
    iam.add_role("eks-edit", EMPTY_TRUST);
    let (eks, kube) = node_role_clusters();
    let mut cfg = config(None);
    cfg.access = AccessConfig::from_yaml(tiers).expect("tiers");
    let engine = Engine::new(cfg, iam.clone(), eks.clone(), kube.clone());
    let r = engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:?}");
    // erin joins developers after that run: the event adds her.
    iam.set_users(vec![user("alice", true), dev("dave"), dev("erin")]);
    slow_down(&iam, &eks, &kube);
    let mut ev = iam_event("TagUser", "erin");
    ev["detail"]["eventName"] = json!("AddUserToGroup");
    ev["detail"]["requestParameters"] = json!({ "userName": "erin", "groupName": "developers" });
    let writes_before = iam.writes();
    let (r, rtts) = rtts_of(engine.handle_iam_events_payload(&ev, RunMode::Apply)).await;
    let r = ran(r);
    assert!(r.succeeded(), "{r:?}");
    assert!(r.tiers[1].trust_policy.changed, "{r:?}");
    assert_eq!(iam.writes(), writes_before, "the admin role is not written");
    assert_eq!(r.clusters.len(), CLUSTERS);
    assert_eq!(
        rtts, 3.0,
        "GetUser ∥ ListGroupsForUser ∥ GetRole → … → GET aws-auth"
    );
}

/// `CLUSTER_CONCURRENCY` bounds each account and region on its own (EKS's quotas and
/// throttling are per account and region): 50 clusters in each of two regions at a
/// bound of 50 take the round trips of one region, not two waves.
#[tokio::test(start_paused = true)]
async fn the_concurrency_bound_is_per_region() {
    let iam = FakeIam::new(vec![user("alice", true), user("erin", true)], EMPTY_TRUST);
    let (eks, kube) = node_role_clusters_in(&["us-east-1", "eu-west-1"]);
    let cfg = test_config(&[
        ("CLUSTER_REGIONS", "us-east-1,eu-west-1"),
        ("CLUSTER_CONCURRENCY", "50"),
    ]);
    let engine = Engine::new(cfg, iam.clone(), eks.clone(), kube.clone());
    let r = engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:?}");
    slow_down(&iam, &eks, &kube);
    let (r, rtts) =
        rtts_of(engine.handle_iam_events_payload(&tag_user("erin"), RunMode::Apply)).await;
    let r = ran(r);
    assert!(r.succeeded(), "{r:?}");
    assert_eq!(r.clusters.len(), CLUSTERS);
    assert_eq!(
        rtts, 3.0,
        "ListClusters ∥ … → DescribeCluster ∥ … → GET aws-auth ∥ …, 50 at once per region"
    );
}

//! Clusters in member accounts (issue 12) on in-memory fakes: every tagged cluster of
//! every configured account maps the hub's tier role by its ARN; an account that
//! cannot be reached is reported and never stops the others; untagged member clusters
//! and a member account's own access entries are left alone; the report names each
//! cluster's account and the plan groups by account.

use eks_access_sync::engine::{Engine, RunMode, Scope};
use eks_access_sync::model::cluster::{AuthMode, Place};
use eks_access_sync::output::report::{ClusterStatus, RunReport};
use eks_access_sync::policy::accessentry::AccessEntryView;
use eks_access_sync::testing::*;

const HUB: &str = ACCOUNT;
const A: &str = "444455556666";
const B: &str = "777788889999";

/// One admin tier; member account A in two regions, B in the hub's region.
const CONFIG: &str = "tiers:
  - name: admin
    role: eks-admin
    members: { tag: eks-admin=true }
    kubernetes: { policy: AmazonEKSClusterAdminPolicy }
accounts:
  - id: \"444455556666\"
    regions: [us-east-1, eu-west-1]
  - { id: \"777788889999\" }
";

const A1_USERS: &str = "- userarn: arn:aws:iam::444455556666:user/ghost\n  username: ghost\n  groups:\n    - system:masters\n";

struct World {
    iam: FakeIam,
    eks: FakeEks,
    kube: FakeKube,
    engine: Engine<FakeIam, FakeEks, FakeKube>,
}

/// dave (tagged); hub `h1`; A: `a1` (aws-auth), `a2` (API, with the member's own
/// entry), `a3` (untagged); B: `b1` (aws-auth).
fn world() -> World {
    let iam = FakeIam::new(vec![user("dave", true)], EMPTY_TRUST);
    let eks = FakeEks::new(vec![
        cluster("h1", "us-east-1", true, AuthMode::ConfigMap),
        member_cluster(A, "a1", "us-east-1", true, AuthMode::ConfigMap),
        member_cluster(A, "a2", "eu-west-1", true, AuthMode::Api),
        member_cluster(A, "a3", "eu-west-1", false, AuthMode::ConfigMap),
        member_cluster(B, "b1", "us-east-1", true, AuthMode::ConfigMap),
    ]);
    eks.put_entry("a2", own_entry());
    let kube = FakeKube::default();
    for c in ["h1", "a3", "b1"] {
        kube.set(c, aws_auth(NODE_ROLES, None));
    }
    // A user of account A mapped directly on A's cluster: not the hub's to offboard.
    kube.set("a1", aws_auth(NODE_ROLES, Some(A1_USERS)));
    let cfg = test_config(&[("CLUSTER_REGIONS", "us-east-1"), ("ACCESS_CONFIG", CONFIG)]);
    let engine = Engine::new(cfg, iam.clone(), eks.clone(), kube.clone());
    World {
        iam,
        eks,
        kube,
        engine,
    }
}

/// Account A's own administrator, given access by A's team.
fn own_entry() -> AccessEntryView {
    AccessEntryView {
        principal_arn: format!("arn:aws:iam::{A}:role/platform-admin"),
        username: None,
        kubernetes_groups: vec![],
        policies: vec![(
            "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy".into(),
            "cluster".into(),
        )],
        policy_namespaces: Default::default(),
        created_at: None,
    }
}

/// The tier role as aws-auth maps it (no path).
fn hub_role() -> String {
    format!("arn:aws:iam::{HUB}:role/eks-admin")
}

/// The tier role as an access entry names it (with its path).
fn hub_entry() -> String {
    role_arn().to_string()
}

fn clusters(r: &RunReport) -> Vec<(String, String, String, ClusterStatus)> {
    r.clusters
        .iter()
        .map(|c| {
            (
                c.account.clone(),
                c.region.clone(),
                c.name.clone(),
                c.status,
            )
        })
        .collect()
}

#[tokio::test]
async fn every_tagged_cluster_of_every_account_maps_the_hub_role() {
    let w = world();
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    let s =
        |a: &str, region: &str, n: &str, st| (a.to_owned(), region.to_owned(), n.to_owned(), st);
    // Sorted by account, region, name; the untagged a3 is not reported.
    assert_eq!(
        clusters(&r),
        [
            s(HUB, "us-east-1", "h1", ClusterStatus::Updated),
            s(A, "eu-west-1", "a2", ClusterStatus::Created),
            s(A, "us-east-1", "a1", ClusterStatus::Updated),
            s(B, "us-east-1", "b1", ClusterStatus::Updated),
        ]
    );
    for c in ["h1", "a1", "b1"] {
        let roles = w.kube.data(c).expect("aws-auth")["mapRoles"].clone();
        assert!(roles.contains(&hub_role()), "{c}: {roles}");
    }
    // The member's API cluster: an entry for the hub role beside the member's own.
    let entries = w.eks.entries("a2");
    assert!(entries.contains_key(&hub_entry()), "{entries:#?}");
    assert_eq!(entries[&own_entry().principal_arn], own_entry());
    // A member's own user, though no hub user of that name exists: kept.
    assert_eq!(w.kube.data("a1").expect("aws-auth")["mapUsers"], A1_USERS);
    // The untagged member cluster: not touched.
    assert_eq!(w.kube.writes("a3"), 0);
    assert_eq!(w.kube.data("a3"), aws_auth(NODE_ROLES, None));
    // Every place listed once: the hub's region, A's two, B's (the hub's region).
    let mut lists: Vec<String> = w
        .eks
        .reads()
        .into_iter()
        .filter(|r| r.starts_with("list "))
        .collect();
    lists.sort();
    assert_eq!(
        lists,
        [
            format!("list {A}/eu-west-1"),
            format!("list {A}/us-east-1"),
            format!("list {B}/us-east-1"),
            "list us-east-1".to_owned(),
        ]
    );
    // Again: nothing to write anywhere.
    let (iam_writes, eks_writes) = (w.iam.writes(), w.eks.writes());
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    assert!(
        r.clusters
            .iter()
            .all(|c| c.status == ClusterStatus::Unchanged),
        "{r:#?}"
    );
    assert_eq!((w.iam.writes(), w.eks.writes()), (iam_writes, eks_writes));
}

#[tokio::test]
async fn an_account_that_cannot_be_reached_is_reported_and_the_others_go_on() {
    let w = world();
    w.eks
        .0
        .lock()
        .expect("lock")
        .fail_accounts
        .push(B.to_owned());
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(!r.succeeded());
    let failed: Vec<_> = r
        .clusters
        .iter()
        .filter(|c| c.status == ClusterStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{r:#?}");
    let (f, error) = (failed[0], failed[0].error.clone().unwrap_or_default());
    assert_eq!((f.account.as_str(), f.name.as_str()), (B, "*"));
    assert!(
        error.contains(&format!("arn:aws:iam::{B}:role/eks-access-sync-member"))
            && error.contains("member stack"),
        "{error}"
    );
    for c in ["h1", "a1"] {
        assert!(
            w.kube.data(c).expect("aws-auth")["mapRoles"].contains(&hub_role()),
            "{c}"
        );
    }
    assert!(w.eks.entries("a2").contains_key(&hub_entry()));
    assert_eq!(w.kube.writes("b1"), 0);
    assert!(r.failure_summary().contains(B), "{}", r.failure_summary());
}

#[tokio::test]
async fn the_plan_groups_the_clusters_by_account() {
    let w = world();
    let out = w.engine.run_full(&Scope::all(), RunMode::DryRun).await;
    let text = out.plan.render_text();
    let at = |s: &str| {
        text.find(s)
            .unwrap_or_else(|| panic!("no {s:?} in\n{text}"))
    };
    assert!(at(&format!("== Account {HUB} ==")) < at("Cluster h1 "));
    assert!(at("Cluster h1 ") < at(&format!("== Account {A} ==")));
    assert!(at(&format!("== Account {A} ==")) < at("Cluster a2 "));
    assert!(at("Cluster a1 ") < at(&format!("== Account {B} ==")));
    assert!(at(&format!("== Account {B} ==")) < at("Cluster b1 "));
    assert_eq!(w.kube.total_writes() + w.eks.writes() + w.iam.writes(), 0);
    // The JSON plan and report carry each cluster's account.
    let json = serde_json::to_value(&out.plan).expect("json");
    let accounts: Vec<&str> = json["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .filter_map(|c| c["account"].as_str())
        .collect();
    assert_eq!(accounts, [HUB, A, A, B]);
    assert!(
        out.report
            .render_text()
            .contains(&format!("cluster {A}/eu-west-1/a2"))
    );
}

#[tokio::test]
async fn a_single_account_report_reads_as_before() {
    let iam = FakeIam::new(vec![user("dave", true)], EMPTY_TRUST);
    let eks = FakeEks::new(vec![cluster("h1", "us-east-1", true, AuthMode::ConfigMap)]);
    let kube = FakeKube::default();
    kube.set("h1", aws_auth(NODE_ROLES, None));
    let cfg = test_config(&[("CLUSTER_REGIONS", "us-east-1")]);
    assert_eq!(cfg.places(), [Place::hub("us-east-1")]);
    let engine = Engine::new(cfg, iam, eks, kube);
    let out = engine.run_full(&Scope::all(), RunMode::DryRun).await;
    assert!(!out.plan.render_text().contains("== Account"));
    assert!(out.report.render_text().contains("cluster us-east-1/h1:"));
    assert_eq!(out.report.clusters[0].account, HUB);
}

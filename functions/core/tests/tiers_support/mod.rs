//! Helpers of the access-tier tests (engine_tiers.rs, engine_tiers_clusters.rs): a
//! world of fakes with three tiers, and readers of its state.
#![allow(dead_code)]

use std::time::Duration;

use eks_access_sync::engine::Engine;
use eks_access_sync::model::cluster::AuthMode;
use eks_access_sync::model::tiers::AccessConfig;
use eks_access_sync::policy::desired::IamUser;
use serde_json::json;

use crate::flows_support::*;

pub const TIERS: &str = r#"
tiers:
  - name: admin
    role: eks-admin
    members: { tag: eks-admin=true }
    kubernetes: { policy: AmazonEKSClusterAdminPolicy, groups: ["system:masters"] }
  - name: developers
    role: eks-edit
    members: { groups: [developers, sre] }
    kubernetes: { policy: AmazonEKSEditPolicy, namespaces: [team-a, "team-b-*"] }
  - name: readers
    role: eks-view
    members: { tag: eks-access=view, groups: [auditors] }
    clusters: { tag: env=prod }
    kubernetes: { policy: AmazonEKSViewPolicy }
"#;

pub fn member(name: &str, tags: &[(&str, &str)], groups: &[&str]) -> IamUser {
    let mut u = user(name, false);
    u.tags = tags
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    u.groups = groups.iter().map(|g| g.to_string()).collect();
    u
}

pub fn arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:user/{name}")
}

/// alice: admin tag; dave: developers; erin: view tag; frank: auditors and sre (two
/// tiers); bob: nothing. c1 (CONFIG_MAP, env=prod), c3 (CONFIG_MAP, no env), c4 (API,
/// env=prod).
pub fn tier_world() -> World {
    let iam = FakeIam::new(
        vec![
            member("alice", &[("eks-admin", "true")], &[]),
            member("bob", &[("team", "x")], &[]),
            member("dave", &[], &["developers"]),
            member("erin", &[("eks-access", "view")], &[]),
            member("frank", &[], &["Auditors", "sre"]),
        ],
        EMPTY_TRUST,
    );
    iam.add_role("eks-edit", EMPTY_TRUST);
    iam.add_role("eks-view", EMPTY_TRUST);
    let prod = |name: &str, mode| {
        let mut c = cluster(name, "us-east-1", true, mode);
        c.tags.insert("env".into(), "prod".into());
        c
    };
    let eks = FakeEks::new(vec![
        prod("c1", AuthMode::ConfigMap),
        cluster("c3", "eu-west-1", true, AuthMode::ConfigMap),
        prod("c4", AuthMode::Api),
    ]);
    let kube = FakeKube::default();
    kube.set("c1", aws_auth(NODE_ROLES, None));
    kube.set("c3", aws_auth(NODE_ROLES, None));
    let mut cfg = config();
    cfg.access = AccessConfig::from_yaml(TIERS).expect("tiers");
    let engine = Engine::new(cfg, iam.clone(), eks.clone(), kube.clone())
        .with_conflict_backoff(Duration::from_millis(1));
    World {
        iam,
        eks,
        kube,
        engine,
    }
}

pub fn trusted(policy: &str) -> Vec<String> {
    let mut names: Vec<String> = ["alice", "bob", "dave", "erin", "frank"]
        .iter()
        .filter(|n| policy.contains(&arn(n)))
        .map(|n| n.to_string())
        .collect();
    names.sort();
    names
}

pub fn group_event(name: &str, user: &str, group: &str) -> serde_json::Value {
    let mut ev = iam_event("TagUser", user);
    ev["detail"]["eventName"] = json!(name);
    ev["detail"]["requestParameters"] = json!({ "userName": user, "groupName": group });
    ev
}

pub fn binding_names(w: &World, cluster: &str) -> Vec<String> {
    w.kube
        .bindings(cluster)
        .values()
        .map(|b| format!("{} -> {}", b.at, b.role_ref.1))
        .collect()
}

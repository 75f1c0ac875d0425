//! Helpers of the engine flow tests (engine_flows.rs, engine_offboard.rs): a world of
//! fakes with clusters c1–c4, and small readers of its state.
#![allow(dead_code)]

use std::time::Duration;

use eks_access_sync::engine::Engine;
use eks_access_sync::model::cluster::AuthMode;
use eks_access_sync::model::config::Config;
use eks_access_sync::output::report::{ClusterStatus, RunReport};

pub use crate::engine_support::*;

pub type TestEngine = Engine<FakeIam, FakeEks, FakeKube>;

pub fn config() -> Config {
    test_config(&[
        ("CLUSTER_REGIONS", "us-east-1,eu-west-1"),
        ("CLUSTER_CONCURRENCY", "2"),
    ])
}

pub struct World {
    pub iam: FakeIam,
    pub eks: FakeEks,
    pub kube: FakeKube,
    pub engine: TestEngine,
}

/// alice is an admin, bob is not. c1 (us-east-1, tagged, CONFIG_MAP, node role
/// mapped), c2 (eu-west-1, untagged), c3 (eu-west-1, tagged, no aws-auth yet),
/// c4 (us-east-1, tagged, API).
pub fn world() -> World {
    let iam = FakeIam::new(vec![user("alice", true), user("bob", false)], EMPTY_TRUST);
    let eks = FakeEks::new(vec![
        cluster("c1", "us-east-1", true, AuthMode::ConfigMap),
        cluster("c2", "eu-west-1", false, AuthMode::ConfigMap),
        cluster("c3", "eu-west-1", true, AuthMode::ConfigMap),
        cluster("c4", "us-east-1", true, AuthMode::Api),
    ]);
    let kube = FakeKube::default();
    kube.set("c1", aws_auth(NODE_ROLES, None));
    kube.set("c2", aws_auth(NODE_ROLES, None));
    kube.set("c3", None);
    let engine = Engine::new(config(), iam.clone(), eks.clone(), kube.clone())
        .with_conflict_backoff(Duration::from_millis(1));
    World {
        iam,
        eks,
        kube,
        engine,
    }
}

pub fn status(r: &RunReport, name: &str) -> ClusterStatus {
    r.clusters
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("{name} not in report: {r:#?}"))
        .status
}

pub fn map_roles_entries(
    data: &std::collections::BTreeMap<String, String>,
) -> Vec<serde_json::Value> {
    serde_saphyr::from_str(&data["mapRoles"]).expect("mapRoles parses")
}

pub fn node_entry() -> serde_json::Value {
    let v: Vec<serde_json::Value> = serde_saphyr::from_str(NODE_ROLES).expect("node yaml");
    v[0].clone()
}

pub fn total_writes(w: &World) -> usize {
    w.iam.writes() + w.eks.writes() + w.kube.total_writes()
}

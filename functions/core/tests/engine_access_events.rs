//! Access events from the engine: every grant of a run is published, a bounded number at
//! a time, and none are made when no bus is configured.

use std::sync::{Arc, Mutex};

use crate::flows_support::*;
use eks_access_sync::engine::{Engine, Scope};
use eks_access_sync::model::cluster::AuthMode;
use eks_access_sync::output::events::{ACCESS_GRANTED, AccessEvent};
use eks_access_sync::ports::{AccessEventSink, EventsError};
use futures::future::BoxFuture;

/// Records the size of every `put`.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Vec<AccessEvent>>>);

impl AccessEventSink for Recorder {
    fn put<'a>(&'a self, events: &'a [AccessEvent]) -> BoxFuture<'a, Result<(), EventsError>> {
        self.0.lock().expect("lock").push(events.to_vec());
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn a_run_granting_thousands_publishes_every_grant_a_thousand_at_a_time() {
    let n = 2_500;
    let users: Vec<_> = (0..n).map(|i| user(&format!("u{i:04}"), true)).collect();
    let iam = FakeIam::new(users, EMPTY_TRUST);
    let eks = FakeEks::new(vec![cluster("c1", "us-east-1", true, AuthMode::ConfigMap)]);
    let kube = FakeKube::default();
    kube.set("c1", aws_auth(NODE_ROLES, None));
    let cfg = test_config(&[("CLUSTER_REGIONS", "us-east-1")]);
    let sink = Arc::new(Recorder::default());
    let engine = Engine::new(cfg, iam, eks, kube).with_access_events(sink.clone());
    let r = engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    let puts = sink.0.lock().expect("lock").clone();
    let sizes: Vec<usize> = puts.iter().map(Vec::len).collect();
    assert_eq!(sizes, [1000, 1000, 500]);
    let granted: std::collections::BTreeSet<String> = puts
        .iter()
        .flatten()
        .filter(|e| e.detail_type == ACCESS_GRANTED)
        .map(|e| e.detail["user"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(granted.len(), n);
    assert_eq!(
        puts[0][0].detail["clusters"],
        serde_json::json!(["us-east-1/c1"])
    );
}

//! Access events end to end: the iam-events handler, on the sandbox, puts one
//! `Access Granted` event for a grant and one `Access Revoked` for a revocation on the
//! default bus (the sandbox's EventBridge front records `PutEvents`), and nothing for
//! an event that changes nothing.

use crate::support::{ADMIN_ROLE, World, config_with, event};
use eks_access_sync::adapters::SdkEngine;
use serde_json::Value;

fn put_events(w: &World) -> Vec<Value> {
    w.put_events()
}

fn detail(e: &Value) -> Value {
    serde_json::from_str(e["Detail"].as_str().expect("Detail is a string")).expect("Detail is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_and_a_revocation_each_put_one_event() {
    let w = World::start().await;
    let engine = SdkEngine::from_sdk(config_with(&[("ACCESS_EVENT_BUS", "default")]), &w.sdk);
    w.create_user("dave", true).await;

    let report = iam_events::handle(&engine, event("iam-create-user-tagged", "dave"))
        .await
        .expect("grant");
    assert!(report["trustPolicy"]["changed"].as_bool().unwrap_or(false));
    let events = put_events(&w);
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["Source"], "eks-access-sync");
    assert_eq!(events[0]["DetailType"], "Access Granted");
    let d = detail(&events[0]);
    assert_eq!(d["user"], "dave");
    assert_eq!(d["tier"], "admin");
    assert_eq!(d["role"], ADMIN_ROLE);
    assert_eq!(d["cause"]["eventName"], "CreateUser");
    let clusters: Vec<&str> = d["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        clusters.iter().any(|c| c.ends_with("/prod")),
        "{clusters:?}"
    );

    // The same event again changes nothing and says nothing.
    iam_events::handle(&engine, event("iam-create-user-tagged", "dave"))
        .await
        .expect("replay");
    assert_eq!(put_events(&w).len(), 1);

    w.iam
        .untag_user()
        .user_name("dave")
        .tag_keys("eks-access")
        .send()
        .await
        .expect("UntagUser");
    iam_events::handle(&engine, event("iam-untag-user", "dave"))
        .await
        .expect("revocation");
    let events = put_events(&w);
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(events[1]["DetailType"], "Access Revoked");
    let d = detail(&events[1]);
    assert_eq!(d["user"], "dave");
    assert_eq!(d["cause"]["eventName"], "UntagUser");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_bus_no_event_is_put() {
    let w = World::start().await;
    w.create_user("dave", true).await;
    iam_events::handle(&w.engine, event("iam-create-user-tagged", "dave"))
        .await
        .expect("grant");
    assert!(put_events(&w).is_empty());
    assert_eq!(w.count("events", "PutEvents"), 0);
}

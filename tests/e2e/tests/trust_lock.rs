//! The trust-policy lease end to end: the real handlers, the AWS SDK's DynamoDB client
//! and the sandbox (DynamoDB is moto's, behind the SigV4-checking front door).
//!
//! Every sandbox request is slowed to 50 ms (`/_sandbox/faults`), which widens the
//! window between a writer's GetRole and its UpdateAssumeRolePolicy to well over
//! 100 ms: two writers started together both read the trust policy before either
//! writes it.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::{World, config, config_with, event, managed_principals, user_arn};
use aws_sdk_dynamodb::types::AttributeValue;
use eks_access_sync::adapters::SdkEngine;
use eks_access_sync::{
    adapters::aws::lock::{DynamoDbLock, LockError, LockWait},
    ports::TrustLock,
};
use serde_json::json;

/// The seed's lease table (shaped as the template's `TrustLockTable`).
const TABLE: &str = eks_sandbox::aws::seed::LOCK_TABLE;
const LOCK_ID: &str = "trust-policy/eks-admin";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

async fn slow_down(w: &World) {
    let (status, body) = w.control("/_sandbox/faults", r#"{"latencyMs": 50}"#).await;
    assert_eq!(status, 200, "{body}");
}

/// An engine as a function builds it from its environment with `TRUST_LOCK_TABLE`.
fn locked_engine(w: &World) -> SdkEngine {
    SdkEngine::from_sdk(config_with(&[("TRUST_LOCK_TABLE", TABLE)]), &w.sdk)
}

/// Someone else's lease, written directly.
async fn put_lease(w: &World, owner: &str, expires_at: i64) {
    aws_sdk_dynamodb::Client::new(&w.sdk)
        .put_item()
        .table_name(TABLE)
        .item("lockId", AttributeValue::S(LOCK_ID.into()))
        .item("owner", AttributeValue::S(owner.into()))
        .item("expiresAt", AttributeValue::N(expires_at.to_string()))
        .send()
        .await
        .expect("PutItem");
}

/// The lease's owner, if any.
async fn lease_owner(w: &World) -> Option<String> {
    aws_sdk_dynamodb::Client::new(&w.sdk)
        .get_item()
        .table_name(TABLE)
        .key("lockId", AttributeValue::S(LOCK_ID.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item
        .and_then(|i| i.get("owner").and_then(|o| o.as_s().ok().cloned()))
}

/// Two writers at once, each adding its own user: (the users now in the trust
/// policy, which of the two are missing).
async fn two_writers(w: &World, e1: &SdkEngine, e2: &SdkEngine, a: &str, b: &str) -> Vec<String> {
    w.create_user(a, true).await;
    w.create_user(b, true).await;
    let (ra, rb) = tokio::join!(
        iam_events::handle(e1, event("iam-tag-user", a)),
        iam_events::handle(e2, event("iam-tag-user", b)),
    );
    ra.unwrap_or_else(|e| panic!("writer for {a}: {e}"));
    rb.unwrap_or_else(|e| panic!("writer for {b}: {e}"));
    let policy = managed_principals(&w.trust_policy().await);
    [a, b]
        .into_iter()
        .filter(|u| !policy.contains(&user_arn(u)))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_keep_every_update_with_the_lease_and_lose_one_without() {
    let w = World::start().await;
    slow_down(&w).await;

    // With the lease: iam-events for ann, a second iam-events writer for ben and a
    // full reconcile, all at once, each with its own engine (its own process in
    // Lambda).
    let (e1, e2, e3) = (locked_engine(&w), locked_engine(&w), locked_engine(&w));
    w.create_user("ann", true).await;
    w.create_user("ben", true).await;
    w.reset_calls().await;
    let start = Instant::now();
    let (ra, rb, rc) = tokio::join!(
        iam_events::handle(&e1, event("iam-tag-user", "ann")),
        iam_events::handle(&e2, event("iam-tag-user", "ben")),
        reconcile::handle(&e3, json!({})),
    );
    let took = start.elapsed();
    ra.unwrap_or_else(|e| panic!("ann: {e}"));
    rb.unwrap_or_else(|e| panic!("ben: {e}"));
    let rc = rc.unwrap_or_else(|e| panic!("reconcile: {e}"));
    assert!(rc["trustPolicy"].get("error").is_none(), "{rc}");
    let policy = managed_principals(&w.trust_policy().await);
    for u in ["alice", "ann", "ben"] {
        assert!(policy.contains(&user_arn(u)), "{u} missing: {policy:?}");
    }
    let puts = w.count("dynamodb", "PutItem");
    assert!(
        puts > 3,
        "three writers, at least one waited: {puts} PutItem"
    );
    assert_eq!(w.count("dynamodb", "DeleteItem"), 3, "every lease released");
    assert_eq!(lease_owner(&w).await, None);
    eprintln!(
        "with the lease: 3 writers in {} ms, {puts} PutItem, {} UpdateAssumeRolePolicy",
        took.as_millis(),
        w.count("iam", "UpdateAssumeRolePolicy")
    );

    // A second pair with the lease: both kept again.
    let missing = two_writers(&w, &e1, &e2, "cat", "dan").await;
    assert_eq!(missing, Vec::<String>::new(), "lost with the lease");

    // Without TRUST_LOCK_TABLE the same race loses an update: both writers read the
    // trust policy before either writes it, and the second write drops the first's
    // user. (Tried up to three times so that a scheduling hiccup cannot fail the
    // test; it loses on the first try in practice.)
    let (u1, u2) = (
        SdkEngine::from_sdk(config(), &w.sdk),
        SdkEngine::from_sdk(config(), &w.sdk),
    );
    let mut lost = Vec::new();
    for i in 0..3 {
        let missing = two_writers(&w, &u1, &u2, &format!("eve{i}"), &format!("fay{i}")).await;
        lost.push(missing.clone());
        if !missing.is_empty() {
            break;
        }
    }
    eprintln!("without the lease, users lost per try: {lost:?}");
    assert!(
        lost.iter().any(|m| m.len() == 1),
        "without the lease an update should be lost: {lost:?}"
    );
    w.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lease_makes_a_writer_wait_and_an_expired_one_is_taken_over() {
    let w = World::start().await;
    let engine = locked_engine(&w);
    w.create_user("gus", true).await;

    // Expired a minute ago (a writer that crashed): taken over at once.
    put_lease(&w, "crashed-writer", now() - 60).await;
    let start = Instant::now();
    iam_events::handle(&engine, event("iam-tag-user", "gus"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(managed_principals(&w.trust_policy().await).contains(&user_arn("gus")));
    assert_eq!(lease_owner(&w).await, None, "released");

    // Held for two more seconds: the writer waits until it has expired, then writes.
    w.create_user("hal", true).await;
    w.reset_calls().await;
    put_lease(&w, "busy-writer", now() + 2).await;
    let start = Instant::now();
    iam_events::handle(&engine, event("iam-tag-user", "hal"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let waited = start.elapsed();
    eprintln!(
        "waited {} ms for a lease expiring in 2 s ({} PutItem)",
        waited.as_millis(),
        w.count("dynamodb", "PutItem")
    );
    assert!(waited >= Duration::from_secs(2), "{waited:?}");
    assert!(waited < Duration::from_secs(8), "{waited:?}");
    assert!(w.count("dynamodb", "PutItem") > 2);
    assert!(managed_principals(&w.trust_policy().await).contains(&user_arn("hal")));
    assert_eq!(lease_owner(&w).await, None, "released");
    w.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_gives_up_on_a_lease_that_outlasts_its_wait_and_writes_nothing() {
    let w = World::start().await;
    let short = LockWait {
        max_wait: Duration::from_secs(1),
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(400),
    };
    let lock = DynamoDbLock::new(aws_sdk_dynamodb::Client::new(&w.sdk), TABLE).with_wait(short);
    let engine = locked_engine(&w).with_trust_lock(Arc::new(lock.clone()));
    w.create_user("ivy", true).await;
    put_lease(&w, "other-writer", now() + 300).await;
    w.reset_calls().await;

    let err = iam_events::handle(&engine, event("iam-tag-user", "ivy"))
        .await
        .expect_err("the run fails");
    assert!(err.to_string().contains("held by another writer"), "{err}");
    assert_eq!(w.count("iam", "UpdateAssumeRolePolicy"), 0);
    assert!(!managed_principals(&w.trust_policy().await).contains(&user_arn("ivy")));
    assert_eq!(lease_owner(&w).await.as_deref(), Some("other-writer"));

    // A lease that outlived its TTL and was taken over is not deleted by its old
    // owner: release reports it lost.
    put_lease(&w, "other-writer", now() - 1).await;
    let mine = lock
        .acquire(LOCK_ID, "me", Duration::from_secs(1))
        .await
        .expect("expired lease taken over");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let theirs = lock
        .acquire(LOCK_ID, "them", Duration::from_secs(60))
        .await
        .expect("my expired lease taken over");
    assert!(matches!(
        lock.release(&mine).await,
        Err(LockError::Lost { .. })
    ));
    assert_eq!(lease_owner(&w).await.as_deref(), Some("them"));
    lock.release(&theirs).await.expect("released");
    assert_eq!(lease_owner(&w).await, None);
    w.sb.shutdown().await;
}

/// Issue 3 §7: a lease item that cannot be a live lease (no `expiresAt`, a string
/// one, or one far beyond any TTL a writer sets) is taken over at once instead of
/// blocking every writer forever; a valid, live lease is still waited for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_lease_is_taken_over_and_a_live_one_is_not() {
    let w = World::start().await;
    let short = LockWait {
        max_wait: Duration::from_secs(1),
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(400),
    };
    let lock = DynamoDbLock::new(aws_sdk_dynamodb::Client::new(&w.sdk), TABLE).with_wait(short);
    let client = aws_sdk_dynamodb::Client::new(&w.sdk);
    let ten_years = now() + 10 * 365 * 24 * 3600;
    for (what, expires_at) in [
        ("no expiresAt", None),
        (
            "a string expiresAt",
            Some(AttributeValue::S("tomorrow".into())),
        ),
        (
            "an expiresAt ten years ahead",
            Some(AttributeValue::N(ten_years.to_string())),
        ),
    ] {
        let mut put = client
            .put_item()
            .table_name(TABLE)
            .item("lockId", AttributeValue::S(LOCK_ID.into()))
            .item("owner", AttributeValue::S("broken-writer".into()));
        if let Some(v) = expires_at {
            put = put.item("expiresAt", v);
        }
        put.send().await.expect("PutItem");
        let lease = lock
            .acquire(
                LOCK_ID,
                "me",
                eks_access_sync::adapters::aws::lock::TRUST_LOCK_TTL,
            )
            .await
            .unwrap_or_else(|e| panic!("{what}: not taken over: {e}"));
        assert_eq!(lease_owner(&w).await.as_deref(), Some("me"), "{what}");
        lock.release(&lease).await.expect("released");
    }
    // A live lease (as long as the TTL) is still respected.
    put_lease(&w, "live-writer", now() + 120).await;
    let err = lock
        .acquire(
            LOCK_ID,
            "me",
            eks_access_sync::adapters::aws::lock::TRUST_LOCK_TTL,
        )
        .await
        .expect_err("a live lease is waited for");
    assert!(matches!(err, LockError::Busy { .. }), "{err}");
    assert_eq!(lease_owner(&w).await.as_deref(), Some("live-writer"));
    w.sb.shutdown().await;
}

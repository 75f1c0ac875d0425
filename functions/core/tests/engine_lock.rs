//! The trust-policy lease in the engine, on in-memory fakes: held around the whole
//! read-modify-write (the desired state included, read beside the role), released on
//! every path, never taken by a dry run or a run that leaves the trust policy alone.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::engine_support::*;
use eks_access_sync::engine::{Engine, RunMode, Scope};
use eks_access_sync::model::arn::{RoleName, UserName};
use eks_access_sync::model::cluster::AuthMode;
use eks_access_sync::model::config::Config;
use eks_access_sync::output::report::ClusterStatus;
use eks_access_sync::policy::desired::IamUser;
use eks_access_sync::policy::event::EksClusterEvent;
use eks_access_sync::{
    adapters::aws::iam::IamError,
    ports::{IamApi, RoleInfo},
};
use eks_access_sync::{
    adapters::aws::lock::{LockError, TRUST_LOCK_TTL},
    ports::{Lease, TrustLock},
};
use futures::future::BoxFuture;
use serde_json::json;

fn config() -> Config {
    test_config(&[("TRUST_LOCK_TABLE", "trust-lock")])
}

// ------------------------------------------------------------------ the fakes

#[derive(Debug, Default)]
struct LockState {
    holder: Option<String>,
    /// What happened, in order: lock calls and IAM calls (marked with whether the
    /// lease was held at the time).
    log: Vec<String>,
    /// The next acquisitions fail as if another writer held the lease.
    busy: bool,
    /// Leases granted with this much time left instead of the requested TTL.
    lease_len: Option<Duration>,
    ttls: Vec<Duration>,
}

#[derive(Debug, Clone, Default)]
struct FakeLock(Arc<Mutex<LockState>>);

impl FakeLock {
    fn log(&self) -> Vec<String> {
        self.0.lock().expect("lock").log.clone()
    }
    fn note(&self, what: &str) {
        let mut s = self.0.lock().expect("lock");
        let held = if s.holder.is_some() { "held" } else { "free" };
        s.log.push(format!("{what} ({held})"));
    }
    fn held(&self) -> bool {
        self.0.lock().expect("lock").holder.is_some()
    }
}

impl TrustLock for FakeLock {
    fn acquire<'a>(
        &'a self,
        lock_id: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Lease, LockError>> {
        Box::pin(async move {
            let mut s = self.0.lock().expect("lock");
            s.log.push(format!("acquire {lock_id}"));
            s.ttls.push(ttl);
            if s.busy {
                return Err(LockError::Busy {
                    lock_id: lock_id.to_owned(),
                    waited_secs: 130,
                    ttl_secs: ttl.as_secs(),
                });
            }
            assert!(s.holder.is_none(), "acquired twice: {:?}", s.log);
            s.holder = Some(owner.to_owned());
            Ok(Lease {
                lock_id: lock_id.to_owned(),
                owner: owner.to_owned(),
                expires_at: Some(0),
                deadline: Some(Instant::now() + s.lease_len.unwrap_or(ttl)),
            })
        })
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), LockError>> {
        Box::pin(async move {
            let mut s = self.0.lock().expect("lock");
            s.log.push(format!("release {}", lease.lock_id));
            assert_eq!(
                s.holder.as_deref(),
                Some(lease.owner.as_str()),
                "released a lease not held"
            );
            s.holder = None;
            Ok(())
        })
    }
}

/// IAM that records, in the lock's log, each call and whether the lease was held.
#[derive(Clone)]
struct LoggingIam {
    inner: FakeIam,
    lock: FakeLock,
    fail_get_role: bool,
    fail_get_user: bool,
    fail_update: bool,
}

fn boom(operation: &'static str) -> IamError {
    IamError::Service {
        operation,
        code: "ServiceFailure".into(),
        message: "boom".into(),
    }
}

impl IamApi for LoggingIam {
    async fn list_users(&self) -> Result<Vec<IamUser>, IamError> {
        self.lock.note("list_users");
        self.inner.list_users().await
    }
    async fn get_user(&self, name: &UserName) -> Result<Option<IamUser>, IamError> {
        self.lock.note("get_user");
        if self.fail_get_user {
            return Err(boom("GetUser"));
        }
        self.inner.get_user(name).await
    }
    async fn list_roles(&self) -> Result<Vec<RoleInfo>, IamError> {
        self.inner.list_roles().await
    }
    async fn user_groups(&self, name: &UserName) -> Result<Option<Vec<String>>, IamError> {
        self.lock.note("user_groups");
        self.inner.user_groups(name).await
    }
    async fn get_role(&self, name: &RoleName) -> Result<RoleInfo, IamError> {
        self.lock.note("get_role");
        if self.fail_get_role {
            return Err(boom("GetRole"));
        }
        self.inner.get_role(name).await
    }
    async fn list_shard_roles(&self) -> Result<Vec<RoleInfo>, IamError> {
        self.lock.note("list_shard_roles");
        self.inner.list_shard_roles().await
    }
    async fn create_shard_role(
        &self,
        name: &RoleName,
        document: &str,
        boundary: Option<&str>,
    ) -> Result<RoleInfo, IamError> {
        self.lock.note("create_shard_role");
        self.inner.create_shard_role(name, document, boundary).await
    }
    async fn update_trust_policy(&self, name: &RoleName, document: &str) -> Result<(), IamError> {
        self.lock.note("update_trust_policy");
        if self.fail_update {
            return Err(boom("UpdateAssumeRolePolicy"));
        }
        self.inner.update_trust_policy(name, document).await
    }
}

struct World {
    iam: LoggingIam,
    kube: FakeKube,
    lock: FakeLock,
}

impl World {
    fn new() -> World {
        let lock = FakeLock::default();
        let kube = FakeKube::default();
        kube.set("c1", aws_auth(NODE_ROLES, None));
        World {
            iam: LoggingIam {
                inner: FakeIam::new(vec![user("alice", true), user("bob", false)], EMPTY_TRUST),
                lock: lock.clone(),
                fail_get_role: false,
                fail_get_user: false,
                fail_update: false,
            },
            kube,
            lock,
        }
    }

    fn engine(&self) -> Engine<LoggingIam, FakeEks, FakeKube> {
        let eks = FakeEks::new(vec![cluster("c1", "us-east-1", true, AuthMode::ConfigMap)]);
        Engine::new(config(), self.iam.clone(), eks, self.kube.clone())
            .with_conflict_backoff(Duration::from_millis(1))
            .with_trust_lock(Arc::new(self.lock.clone()))
    }
}

const LOCK_ID: &str = "trust-policy/eks-admin";

fn tag_event(user: &str) -> serde_json::Value {
    json!({
        "version": "0",
        "id": "6f1b3b0e-0000-0000-0000-000000000001",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.iam",
        "account": ACCOUNT,
        "time": "2026-11-28T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventSource": "iam.amazonaws.com",
            "eventName": "TagUser",
            "awsRegion": "us-east-1",
            "requestParameters": {
                "userName": user,
                "tags": [{ "key": "eks-admin", "value": "true" }]
            },
            "responseElements": null,
            "eventID": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
        }
    })
}

// ------------------------------------------------------------------ the tests

#[tokio::test]
async fn full_run_holds_the_lease_from_the_user_listing_to_the_write() {
    let w = World::new();
    let r = w.engine().apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    assert!(r.trust_policy.changed);
    assert_eq!(
        w.lock.log(),
        vec![
            format!("acquire {LOCK_ID}"),
            "list_users (held)".into(),
            "get_role (held)".into(),
            "list_shard_roles (held)".into(),
            "update_trust_policy (held)".into(),
            format!("release {LOCK_ID}"),
        ]
    );
    assert_eq!(w.lock.0.lock().expect("lock").ttls, vec![TRUST_LOCK_TTL]);
    // The clusters are reconciled after the lease is given back.
    assert!(!w.lock.held());
    assert_eq!(w.kube.writes("c1"), 1);
}

#[tokio::test]
async fn event_holds_the_lease_from_the_user_re_read_to_the_write() {
    let w = World::new();
    let r = ran(w
        .engine()
        .handle_iam_events_payload(&tag_event("alice"), RunMode::Apply)
        .await);
    assert!(r.succeeded(), "{r:#?}");
    assert!(r.trust_policy.changed);
    assert_eq!(
        w.lock.log(),
        vec![
            format!("acquire {LOCK_ID}"),
            "get_user (held)".into(),
            "get_role (held)".into(),
            "list_shard_roles (held)".into(),
            "update_trust_policy (held)".into(),
            format!("release {LOCK_ID}"),
        ]
    );
}

#[tokio::test]
async fn a_no_op_run_still_releases_the_lease() {
    let w = World::new();
    let e = w.engine();
    assert!(e.apply_full(&Scope::all()).await.succeeded());
    let before = w.lock.log().len();
    let r = e.apply_full(&Scope::all()).await;
    assert!(r.succeeded() && !r.trust_policy.changed, "{r:#?}");
    assert_eq!(
        w.lock.log()[before..],
        [
            format!("acquire {LOCK_ID}"),
            "list_users (held)".into(),
            "get_role (held)".into(),
            "list_shard_roles (held)".into(),
            format!("release {LOCK_ID}"),
        ]
    );
}

#[tokio::test]
async fn the_lease_is_released_when_the_write_fails() {
    let mut w = World::new();
    w.iam.fail_update = true;
    let r = w.engine().apply_full(&Scope::all()).await;
    assert!(!r.succeeded());
    assert!(!r.trust_policy.changed);
    assert!(
        r.trust_policy
            .error
            .as_deref()
            .is_some_and(|e| e.contains("UpdateAssumeRolePolicy")),
        "{r:#?}"
    );
    assert_eq!(
        w.lock.log().last().map(String::as_str),
        Some("release trust-policy/eks-admin")
    );
    assert!(!w.lock.held());
}

#[tokio::test]
async fn the_lease_is_released_when_the_role_or_the_user_cannot_be_read() {
    let mut w = World::new();
    w.iam.fail_get_role = true;
    let r = w.engine().apply_full(&Scope::all()).await;
    assert!(!r.succeeded());
    assert_eq!(
        w.lock.log(),
        vec![
            format!("acquire {LOCK_ID}"),
            "list_users (held)".into(),
            "get_role (held)".into(),
            "list_shard_roles (held)".into(),
            format!("release {LOCK_ID}"),
        ]
    );

    let mut w = World::new();
    w.iam.fail_get_user = true;
    let r = ran(w
        .engine()
        .handle_iam_events_payload(&tag_event("alice"), RunMode::Apply)
        .await);
    assert!(!r.succeeded());
    // (The role is read beside the user.)
    assert_eq!(
        w.lock.log(),
        vec![
            format!("acquire {LOCK_ID}"),
            "get_user (held)".into(),
            "get_role (held)".into(),
            "list_shard_roles (held)".into(),
            format!("release {LOCK_ID}"),
        ]
    );
}

#[tokio::test]
async fn dry_runs_take_no_lease() {
    let w = World::new();
    let e = w.engine();
    let plan = e.plan_full(&Scope::all()).await;
    assert!(plan.trust_policy.after.is_some(), "a change was planned");
    let r = ran(e
        .handle_iam_events_payload(&tag_event("alice"), RunMode::DryRun)
        .await);
    assert!(r.dry_run && r.trust_policy.changed, "{r:#?}");
    assert!(w.lock.log().iter().all(|l| !l.starts_with("acquire")));
    assert_eq!(w.iam.inner.writes(), 0);
}

#[tokio::test]
async fn a_run_that_leaves_the_trust_policy_alone_takes_no_lease() {
    let w = World::new();
    let r = w
        .engine()
        .handle_eks_event(&EksClusterEvent {
            kind: "CreateCluster".into(),
            cluster: "c1".parse().expect("name"),
            resource_arn: None,
            region: None,
        })
        .await;
    assert!(r.succeeded(), "{r:#?}");
    assert!(w.lock.log().iter().all(|l| !l.starts_with("acquire")));
    assert_eq!(w.kube.writes("c1"), 1, "the cluster is still reconciled");
}

#[tokio::test]
async fn without_the_lease_the_trust_policy_is_left_alone_and_the_run_fails() {
    let w = World::new();
    w.lock.0.lock().expect("lock").busy = true;
    let r = w.engine().apply_full(&Scope::all()).await;
    assert!(!r.succeeded());
    let err = r.trust_policy.error.clone().unwrap_or_default();
    assert!(err.contains("held by another writer"), "{err}");
    assert!(!r.trust_policy.changed);
    assert_eq!(w.iam.inner.writes(), 0);
    assert!(
        !w.lock
            .log()
            .iter()
            .any(|l| l.starts_with("update_trust_policy") || l.starts_with("release"))
    );
    // The clusters are still reconciled (the admin role's mapping needs no lease).
    assert_eq!(
        r.clusters.iter().find(|c| c.name == "c1").map(|c| c.status),
        Some(ClusterStatus::Updated)
    );
}

#[tokio::test]
async fn a_lease_too_short_for_the_write_is_not_written_under() {
    let w = World::new();
    w.lock.0.lock().expect("lock").lease_len = Some(Duration::from_secs(5));
    let r = w.engine().apply_full(&Scope::all()).await;
    assert!(!r.succeeded());
    let err = r.trust_policy.error.clone().unwrap_or_default();
    assert!(err.contains("lease has"), "{err}");
    assert_eq!(w.iam.inner.writes(), 0);
    assert!(!w.lock.held(), "released");
}

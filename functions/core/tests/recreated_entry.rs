//! The engine on fakes: an admin access entry older than the admin role (the role
//! was deleted and re-created under the same name) is deleted, made again and given
//! the policy, in that order; a dry run only reports it.

use crate::engine_support::*;
use eks_access_sync::engine::{Engine, Scope};
use eks_access_sync::model::cluster::AuthMode;
use eks_access_sync::output::report::ClusterStatus;
use eks_access_sync::policy::accessentry::{AccessEntryView, CLUSTER_ADMIN_POLICY, Timestamp};

fn at(s: &str) -> Option<Timestamp> {
    Some(s.parse().expect("timestamp"))
}

#[tokio::test]
async fn an_entry_older_than_the_role_is_deleted_made_again_and_given_the_policy() {
    let iam = FakeIam::new(vec![user("alice", true)], EMPTY_TRUST);
    iam.0.lock().expect("lock").role_created = at("2026-02-01T09:00:00Z");
    let eks = FakeEks::new(vec![cluster("c4", "us-east-1", true, AuthMode::Api)]);
    // Made (without the path) for the role that was deleted since.
    let old = format!("arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}");
    eks.put_entry(
        "c4",
        AccessEntryView {
            principal_arn: old.clone(),
            username: Some(eks_access_sync::model::config::DEFAULT_K8S_USERNAME.into()),
            kubernetes_groups: vec![],
            policies: vec![(CLUSTER_ADMIN_POLICY.into(), "cluster".into())],
            policy_namespaces: Default::default(),
            created_at: at("2026-01-15T12:00:00.123Z"),
        },
    );
    eks.0.lock().expect("lock").now = at("2026-02-01T09:00:05.500Z");
    let engine = Engine::new(
        test_config(&[]),
        iam.clone(),
        eks.clone(),
        FakeKube::default(),
    );

    let expected = format!(
        "re-create access entry of {old}: the role was re-created after the entry \
         (entry 2026-01-15T12:00:00.123Z < role 2026-02-01T09:00:00Z)"
    );
    let dry = engine.plan_full(&Scope::all()).await;
    assert!(dry.has_changes());
    let text = dry.render_text();
    assert!(
        text.contains(&format!("  - access entry {old} ({expected})")),
        "{text}"
    );
    assert!(
        eks.0.lock().expect("lock").writes.is_empty(),
        "dry run wrote"
    );

    let r = engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    let c4 = &r.clusters[0];
    assert_eq!(c4.status, ClusterStatus::Updated, "{c4:#?}");
    assert_eq!(c4.changes[0], expected);
    let full = role_arn().to_string();
    assert_eq!(
        eks.0.lock().expect("lock").writes,
        vec![
            format!("delete c4 {old}"),
            format!("create c4 {full}"),
            format!("associate c4 {full}"),
        ]
    );
    let entry = eks.entries("c4").remove(&full).expect("made again");
    assert_eq!(entry.created_at, at("2026-02-01T09:00:05.500Z"));

    // The new entry is younger than the role: nothing more to do.
    let again = engine.apply_full(&Scope::all()).await;
    assert_eq!(
        again.clusters[0].status,
        ClusterStatus::Unchanged,
        "{again:#?}"
    );
    assert_eq!(eks.writes(), 3);
}

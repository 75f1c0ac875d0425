//! The engine on in-memory fakes of IAM, EKS and aws-auth.

mod engine_support;

use std::time::Duration;

use eks_access_sync::config::Config;
use eks_access_sync::eks::AuthMode;
use eks_access_sync::engine::{Engine, EventResult, Scope};
use eks_access_sync::report::{ClusterStatus, RunReport};
use engine_support::*;
use serde_json::json;

type TestEngine = Engine<FakeIam, FakeEks, FakeKube>;

fn config() -> Config {
    test_config(&[
        ("CLUSTER_REGIONS", "us-east-1,eu-west-1"),
        ("CLUSTER_CONCURRENCY", "2"),
    ])
}

struct World {
    iam: FakeIam,
    eks: FakeEks,
    kube: FakeKube,
    engine: TestEngine,
}

/// alice is an admin, bob is not. c1 (us-east-1, tagged, CONFIG_MAP, node role
/// mapped), c2 (eu-west-1, untagged), c3 (eu-west-1, tagged, no aws-auth yet),
/// c4 (us-east-1, tagged, API).
fn world() -> World {
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

fn status(r: &RunReport, name: &str) -> ClusterStatus {
    r.clusters
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("{name} not in report: {r:#?}"))
        .status
}

fn map_roles_entries(data: &std::collections::BTreeMap<String, String>) -> Vec<serde_json::Value> {
    serde_saphyr::from_str(&data["mapRoles"]).expect("mapRoles parses")
}

fn node_entry() -> serde_json::Value {
    let v: Vec<serde_json::Value> = serde_saphyr::from_str(NODE_ROLES).expect("node yaml");
    v[0].clone()
}

fn total_writes(w: &World) -> usize {
    w.iam.writes() + w.eks.writes() + w.kube.total_writes()
}

fn iam_event(name: &str, user_name: &str) -> serde_json::Value {
    let mut params = json!({ "userName": user_name });
    if name == "TagUser" {
        params["tags"] = json!([{ "key": "eks-admin", "value": "true" }]);
    }
    if name == "UntagUser" {
        params["tagKeys"] = json!(["eks-admin"]);
    }
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
            "eventVersion": "1.09",
            "userIdentity": { "type": "IAMUser", "arn": format!("arn:aws:iam::{ACCOUNT}:user/ops"), "accountId": ACCOUNT },
            "eventTime": "2026-11-28T12:00:00Z",
            "eventSource": "iam.amazonaws.com",
            "eventName": name,
            "awsRegion": "us-east-1",
            "sourceIPAddress": "192.0.2.1",
            "userAgent": "aws-cli/2",
            "requestParameters": params,
            "responseElements": null,
            "requestID": "11111111-2222-3333-4444-555555555555",
            "eventID": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
            "readOnly": false,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": ACCOUNT,
            "eventCategory": "Management"
        }
    })
}

#[tokio::test]
async fn full_run_maps_admins_keeps_node_role_and_leaves_untagged_alone() {
    let w = world();
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(r.admin_users, 1);
    assert!(r.trust_policy.changed);
    assert_eq!(
        r.trust_policy.added,
        vec![format!("arn:aws:iam::{ACCOUNT}:user/alice")]
    );
    let policy = w.iam.policy();
    assert!(policy.contains("user/alice"));
    assert!(!policy.contains("user/bob"));
    assert!(
        policy.contains("ec2.amazonaws.com"),
        "foreign statement kept"
    );

    // c1: node role kept (same fields, first place), admin role added without its path.
    assert_eq!(status(&r, "c1"), ClusterStatus::Updated);
    let d1 = w.kube.data("c1").expect("c1 data");
    let entries = map_roles_entries(&d1);
    assert_eq!(entries[0], node_entry());
    assert!(
        d1["mapRoles"].contains(&format!("arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}")),
        "{}",
        d1["mapRoles"]
    );
    assert!(!d1["mapRoles"].contains("role/ops/"), "path stripped");
    assert_eq!(
        d1["mapAccounts"], "- \"111122223333\"\n",
        "other keys byte-for-byte"
    );

    // c2 is not tagged: never connected to, never in the report.
    assert_eq!(w.kube.state("c2").lock().expect("lock").connects, 0);
    assert_eq!(w.kube.data("c2"), aws_auth(NODE_ROLES, None));
    assert!(r.clusters.iter().all(|c| c.name != "c2"));

    // c3 had no aws-auth: created.
    assert_eq!(status(&r, "c3"), ClusterStatus::Created);
    assert!(w.kube.data("c3").is_some());

    // c4 (API): an access entry with the cluster-admin policy.
    assert_eq!(status(&r, "c4"), ClusterStatus::Created);
    let entries = w.eks.entries("c4");
    let admin = entries
        .values()
        .find(|e| {
            e.principal_arn.ends_with(&format!("role/ops/{ROLE_NAME}"))
                || e.principal_arn.ends_with(&format!("role/{ROLE_NAME}"))
        })
        .expect("admin access entry");
    assert!(
        admin
            .kubernetes_groups
            .iter()
            .all(|g| !g.starts_with("system:"))
    );
    assert!(
        admin
            .policies
            .iter()
            .any(|(p, _)| p.ends_with("AmazonEKSClusterAdminPolicy"))
    );

    // Report is sorted by region then name.
    let order: Vec<(&str, &str)> = r
        .clusters
        .iter()
        .map(|c| (c.region.as_str(), c.name.as_str()))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);

    // A second run changes nothing and writes nothing; the node role stays byte-for-byte.
    let before = total_writes(&w);
    let roles_before = w.kube.data("c1").expect("c1")["mapRoles"].clone();
    let r2 = w.engine.apply_full(&Scope::all()).await;
    assert!(r2.succeeded(), "{r2:#?}");
    assert!(!r2.changed_anything(), "{r2:#?}");
    assert_eq!(total_writes(&w), before);
    assert_eq!(w.kube.data("c1").expect("c1")["mapRoles"], roles_before);
}

#[tokio::test]
async fn conflict_is_retried_and_keeps_the_other_writers_entry() {
    let w = world();
    let other = format!(
        "{NODE_ROLES}- rolearn: arn:aws:iam::{ACCOUNT}:role/fargate\n  username: system:node:{{{{SessionName}}}}\n  groups:\n    - system:nodes\n"
    );
    w.kube.state("c1").lock().expect("lock").race = Some(("mapRoles".to_owned(), other));
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(r.conflict_retries, 1);
    let d1 = w.kube.data("c1").expect("c1");
    assert!(
        d1["mapRoles"].contains("role/fargate"),
        "{}",
        d1["mapRoles"]
    );
    assert!(d1["mapRoles"].contains(&format!("role/{ROLE_NAME}")));
    assert_eq!(map_roles_entries(&d1)[0], node_entry());
}

#[tokio::test]
async fn broken_map_roles_fails_that_cluster_only_and_writes_nothing_there() {
    let w = world();
    w.kube.set(
        "c1",
        aws_auth("- rolearn: [unclosed\n  username: x\n", None),
    );
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(!r.succeeded());
    assert_eq!(status(&r, "c1"), ClusterStatus::Failed);
    let err = r
        .clusters
        .iter()
        .find(|c| c.name == "c1")
        .and_then(|c| c.error.clone())
        .expect("error");
    assert!(err.contains("mapRoles"), "{err}");
    assert_eq!(w.kube.writes("c1"), 0);
    assert_eq!(status(&r, "c3"), ClusterStatus::Created);
    assert_eq!(status(&r, "c4"), ClusterStatus::Created);
    assert!(r.trust_policy.changed);
}

#[tokio::test]
async fn a_failing_cluster_does_not_stop_the_others() {
    let w = world();
    w.eks
        .0
        .lock()
        .expect("lock")
        .fail_describe
        .push("c1".into());
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(!r.succeeded());
    assert_eq!(status(&r, "c1"), ClusterStatus::Failed);
    assert_eq!(status(&r, "c3"), ClusterStatus::Created);
    assert_eq!(status(&r, "c4"), ClusterStatus::Created);
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let w = world();
    let out = w.engine.run_full(&Scope::all(), true).await;
    assert_eq!(total_writes(&w), 0);
    assert!(out.plan.has_changes());
    assert!(out.report.dry_run);
    assert!(out.report.plan.is_some());
    assert_eq!(status(&out.report, "c1"), ClusterStatus::Updated);
    assert!(out.plan.render_text().contains("alice"));
    assert_eq!(w.iam.policy(), EMPTY_TRUST);
}

#[tokio::test]
async fn scope_limits_clusters() {
    let w = world();
    let r = w
        .engine
        .apply_full(&Scope::clusters([
            "c3".parse().expect("name"),
            "nope".parse().expect("name"),
        ]))
        .await;
    assert_eq!(status(&r, "c3"), ClusterStatus::Created);
    assert_eq!(status(&r, "nope"), ClusterStatus::Skipped);
    assert!(r.clusters.iter().all(|c| c.name != "c1"));
    assert_eq!(w.kube.writes("c1"), 0);
}

#[tokio::test]
async fn event_adds_then_replay_changes_nothing() {
    let w = world();
    let ev = iam_event("TagUser", "alice");
    let EventResult::Ran(r) = w.engine.handle_iam_events_payload(&ev, false).await else {
        panic!("event should run");
    };
    assert!(r.succeeded(), "{r:#?}");
    assert!(w.iam.policy().contains("user/alice"));
    let writes = total_writes(&w);
    assert!(writes > 0);
    let EventResult::Ran(r2) = w.engine.handle_iam_events_payload(&ev, false).await else {
        panic!("event should run");
    };
    assert!(r2.succeeded());
    assert!(!r2.changed_anything(), "{r2:#?}");
    assert_eq!(total_writes(&w), writes, "replay writes nothing");
}

#[tokio::test]
async fn event_is_not_trusted_the_user_is_re_read() {
    let w = world();
    // The event says bob was tagged, but IAM says he is not an admin.
    let r = match w
        .engine
        .handle_iam_events_payload(&iam_event("TagUser", "bob"), false)
        .await
    {
        EventResult::Ran(r) => r,
        EventResult::Ignored(reason) => panic!("ignored: {reason}"),
    };
    assert!(r.succeeded());
    assert!(!w.iam.policy().contains("user/bob"));
}

#[tokio::test]
async fn delete_event_removes_user_from_policy_and_direct_mappings() {
    let w = world();
    let users = format!(
        "- userarn: arn:aws:iam::{ACCOUNT}:user/alice\n  username: alice\n  groups:\n    - system:masters\n- userarn: arn:aws:iam::{ACCOUNT}:user/bob\n  username: bob\n  groups:\n    - viewers\n"
    );
    w.kube.set("c1", aws_auth(NODE_ROLES, Some(&users)));
    w.eks.put_entry(
        "c4",
        eks_access_sync::accessentry::AccessEntryView {
            principal_arn: format!("arn:aws:iam::{ACCOUNT}:user/alice"),
            username: Some("alice".into()),
            kubernetes_groups: vec![],
            policies: vec![],
            created_at: None,
        },
    );
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    assert!(w.iam.policy().contains("user/alice"));

    w.iam.set_users(vec![user("bob", false)]);
    let r = match w
        .engine
        .handle_iam_events_payload(&iam_event("DeleteUser", "alice"), false)
        .await
    {
        EventResult::Ran(r) => r,
        EventResult::Ignored(reason) => panic!("ignored: {reason}"),
    };
    assert!(r.succeeded(), "{r:#?}");
    assert!(!w.iam.policy().contains("user/alice"));
    let d1 = w.kube.data("c1").expect("c1");
    assert!(!d1["mapUsers"].contains("user/alice"), "{}", d1["mapUsers"]);
    assert!(d1["mapUsers"].contains("user/bob"), "others kept");
    assert_eq!(map_roles_entries(&d1)[0], node_entry());
    assert!(
        !w.eks
            .entries("c4")
            .keys()
            .any(|k| k.ends_with("user/alice")),
        "access entry of the deleted user removed"
    );
}

#[tokio::test]
async fn full_run_removes_stale_direct_mappings_of_this_account_only() {
    let w = world();
    let users = format!(
        "- userarn: arn:aws:iam::{ACCOUNT}:user/carol\n  username: carol\n  groups:\n    - system:masters\n- userarn: arn:aws:iam::999988887777:user/dave\n  username: dave\n  groups:\n    - viewers\n- userarn: arn:aws:iam::{ACCOUNT}:user/bob\n  username: bob\n  groups:\n    - viewers\n"
    );
    w.kube.set("c1", aws_auth(NODE_ROLES, Some(&users)));
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    let d1 = w.kube.data("c1").expect("c1");
    assert!(
        !d1["mapUsers"].contains("user/carol"),
        "deleted user removed"
    );
    assert!(d1["mapUsers"].contains("user/dave"), "other account kept");
    assert!(d1["mapUsers"].contains("user/bob"), "existing user kept");
}

#[tokio::test]
async fn ignored_events_do_nothing() {
    let w = world();
    let mut ev = iam_event("CreateUser", "alice");
    ev["detail"]["errorCode"] = json!("EntityAlreadyExists");
    ev["detail"]["errorMessage"] = json!("User with name alice already exists.");
    match w.engine.handle_iam_events_payload(&ev, false).await {
        EventResult::Ignored(reason) => assert!(reason.contains("EntityAlreadyExists"), "{reason}"),
        EventResult::Ran(r) => panic!("should be ignored: {r:#?}"),
    }
    assert_eq!(total_writes(&w), 0);
}

#[tokio::test]
async fn listing_failure_still_maps_the_role_but_fails_the_run() {
    let w = world();
    w.iam.0.lock().expect("lock").fail_list = true;
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(!r.succeeded());
    assert!(r.trust_policy.error.is_some());
    assert_eq!(w.iam.writes(), 0);
    assert_eq!(status(&r, "c1"), ClusterStatus::Updated);
}

#[tokio::test]
async fn api_and_config_map_uses_access_entries_and_only_offboards_in_aws_auth() {
    let w = world();
    w.eks.0.lock().expect("lock").clusters.push(cluster(
        "c5",
        "us-east-1",
        true,
        AuthMode::ApiAndConfigMap,
    ));
    w.kube.set("c5", aws_auth(NODE_ROLES, None));
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(status(&r, "c5"), ClusterStatus::Created);
    assert!(!w.eks.entries("c5").is_empty(), "admin access entry");
    assert_eq!(
        w.kube.writes("c5"),
        0,
        "aws-auth not edited without a reason"
    );
    assert_eq!(w.kube.data("c5"), aws_auth(NODE_ROLES, None));

    // A deleted user still mapped in aws-auth is taken out.
    let users = format!(
        "- userarn: arn:aws:iam::{ACCOUNT}:user/carol\n  username: carol\n  groups:\n    - system:masters\n"
    );
    w.kube.set("c5", aws_auth(NODE_ROLES, Some(&users)));
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(status(&r, "c5"), ClusterStatus::Updated);
    assert_eq!(w.kube.writes("c5"), 1);
    let d5 = w.kube.data("c5").expect("c5");
    assert!(!d5.get("mapUsers").is_some_and(|u| u.contains("carol")));
    assert_eq!(map_roles_entries(&d5)[0], node_entry());
}

fn sample(name: &str) -> serde_json::Value {
    let path = format!("{}/../../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The sample events of `events/`, in the order a user's life produces them, with the
/// default tag (`eks-access=admin`).
#[tokio::test]
async fn sample_events_in_sequence() {
    let cfg = Config::from_lookup(|k| {
        match k {
            "ADMIN_ROLE_NAME" => Some("eks-admin"),
            "CLUSTER_TAG" => Some("eks-access-sync=enabled"),
            "CLUSTER_REGIONS" => Some("us-east-1"),
            _ => None,
        }
        .map(str::to_owned)
    })
    .expect("config");
    let mut dave = user("dave", false);
    dave.tags = vec![("eks-access".to_owned(), "admin".to_owned())];
    let iam = FakeIam::new(vec![dave.clone(), user("erin", false)], EMPTY_TRUST);
    let eks = FakeEks::new(vec![cluster("c1", "us-east-1", true, AuthMode::ConfigMap)]);
    let kube = FakeKube::default();
    kube.set("c1", aws_auth(NODE_ROLES, None));
    let engine = Engine::new(cfg, iam.clone(), eks.clone(), kube.clone());

    // A failed call is ignored, with its error code as the reason.
    match engine
        .handle_iam_events_payload(&sample("iam-create-user-failed"), false)
        .await
    {
        EventResult::Ignored(reason) => assert!(reason.contains("EntityAlreadyExists"), "{reason}"),
        EventResult::Ran(r) => panic!("should be ignored: {r:#?}"),
    }
    assert_eq!(iam.writes(), 0);

    let r = ran(engine
        .handle_iam_events_payload(&sample("iam-create-user-tagged"), false)
        .await);
    assert!(r.succeeded(), "{r:#?}");
    assert!(iam.policy().contains("user/dave"));
    assert_eq!(kube.writes("c1"), 1, "admin role mapped");
    let r = ran(engine
        .handle_iam_events_payload(&sample("iam-tag-user"), false)
        .await);
    assert!(!r.changed_anything(), "replayed tag: {r:#?}");
    assert_eq!(iam.writes(), 1);

    // An untagged new user changes nothing.
    let r = ran(engine
        .handle_iam_events_payload(&sample("iam-create-user-untagged"), false)
        .await);
    assert!(!r.changed_anything(), "{r:#?}");

    // Untag: IAM now says dave is not an admin.
    dave.tags.clear();
    iam.set_users(vec![dave, user("erin", false)]);
    let r = ran(engine
        .handle_iam_events_payload(&sample("iam-untag-user"), false)
        .await);
    assert!(r.succeeded(), "{r:#?}");
    assert!(!iam.policy().contains("user/dave"));
    assert_eq!(r.trust_policy.removed.len(), 1);

    // Delete: nothing left to do.
    iam.set_users(vec![user("erin", false)]);
    let writes = iam.writes() + kube.writes("c1");
    let r = ran(engine
        .handle_iam_events_payload(&sample("iam-delete-user"), false)
        .await);
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(iam.writes() + kube.writes("c1"), writes);

    // EKS and schedule events are not for iam-events.
    for name in ["eks-create-cluster", "eks-tag-resource", "schedule"] {
        assert!(
            matches!(
                engine.handle_iam_events_payload(&sample(name), false).await,
                EventResult::Ignored(_)
            ),
            "{name}"
        );
    }
}

// ------------------------------------------------------- who gets offboarded

const OTHER_ACCOUNT: &str = "999988887777";

fn user_arn_in(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:user/{name}")
}

/// A direct `mapUsers` entry per ARN (read-only `viewers`).
fn map_users_yaml(arns: &[String]) -> String {
    arns.iter()
        .map(|a| format!("- userarn: {a}\n  username: direct\n  groups:\n    - viewers\n"))
        .collect()
}

fn user_entry(arn: &str) -> eks_access_sync::accessentry::AccessEntryView {
    eks_access_sync::accessentry::AccessEntryView {
        principal_arn: arn.to_owned(),
        username: None,
        kubernetes_groups: vec![],
        policies: vec![],
        created_at: None,
    }
}

/// The world, with c1's `mapUsers` and c4's user access entries holding `arns`, and
/// the trust policy's managed statement trusting `trusted`.
fn world_with_direct(arns: &[String], trusted: &[String]) -> World {
    let w = world();
    w.kube
        .set("c1", aws_auth(NODE_ROLES, Some(&map_users_yaml(arns))));
    for a in arns {
        w.eks.put_entry("c4", user_entry(a));
    }
    if !trusted.is_empty() {
        let set = trusted.iter().map(|a| a.parse().expect("arn")).collect();
        let opts = eks_access_sync::trust::TrustOptions::from(&config()).with_role(&role_arn());
        let edit = eks_access_sync::trust::edit_trust_policy(
            EMPTY_TRUST,
            &eks_access_sync::trust::PrincipalChange::Set(set),
            &opts,
        )
        .expect("seed trust policy");
        w.iam.0.lock().expect("lock").policy = edit.after.expect("policy changed");
    }
    w
}

fn map_users_of(w: &World, cluster: &str) -> String {
    w.kube
        .data(cluster)
        .and_then(|d| d.get("mapUsers").cloned())
        .unwrap_or_default()
}

fn entry_keys(w: &World, cluster: &str) -> Vec<String> {
    w.eks.entries(cluster).into_keys().collect()
}

async fn event_report(w: &World, ev: &serde_json::Value) -> RunReport {
    ran(w.engine.handle_iam_events_payload(ev, false).await)
}

/// Defect 1: a reader (never an admin) with their own mapping and access entry is
/// untagged, or re-tagged to another value: their direct access stays.
#[tokio::test]
async fn untag_or_retag_of_a_reader_keeps_their_direct_access() {
    let bob = user_arn_in(ACCOUNT, "bob");
    let w = world_with_direct(std::slice::from_ref(&bob), &[]);
    let mut retag = iam_event("TagUser", "bob");
    retag["detail"]["requestParameters"]["tags"] = json!([{ "key": "eks-admin", "value": "no" }]);
    for ev in [
        iam_event("UntagUser", "bob"),
        retag,
        iam_event("CreateUser", "bob"),
    ] {
        let r = event_report(&w, &ev).await;
        assert!(r.succeeded(), "{r:#?}");
        let users = map_users_of(&w, "c1");
        assert!(users.contains(&bob), "bob's mapping stays: {users}\n{r:#?}");
        assert!(
            entry_keys(&w, "c4").contains(&bob),
            "bob's access entry stays: {r:#?}"
        );
        assert!(
            r.clusters
                .iter()
                .all(|c| c.changes.iter().all(|ch| !ch.contains("user/bob"))),
            "{r:#?}"
        );
    }
}

/// Defect 1 on a full run: an admin untagged (still existing) leaves the trust policy
/// but keeps their own direct mapping and access entry.
#[tokio::test]
async fn full_run_takes_an_untagged_user_out_of_the_trust_policy_only() {
    let bob = user_arn_in(ACCOUNT, "bob");
    let w = world_with_direct(std::slice::from_ref(&bob), std::slice::from_ref(&bob));
    assert!(w.iam.policy().contains("user/bob"));
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(r.trust_policy.removed, vec![bob.clone()], "{r:#?}");
    assert!(!w.iam.policy().contains("user/bob"));
    assert!(map_users_of(&w, "c1").contains(&bob), "{r:#?}");
    assert!(entry_keys(&w, "c4").contains(&bob), "{r:#?}");
}

/// Defect 1, the event side: untagging an admin takes them out of the trust policy
/// and nothing else.
#[tokio::test]
async fn untag_event_of_an_admin_only_touches_the_trust_policy() {
    let bob = user_arn_in(ACCOUNT, "bob");
    let w = world_with_direct(std::slice::from_ref(&bob), std::slice::from_ref(&bob));
    let r = event_report(&w, &iam_event("UntagUser", "bob")).await;
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(r.trust_policy.removed, vec![bob.clone()]);
    assert!(map_users_of(&w, "c1").contains(&bob), "{r:#?}");
    assert!(entry_keys(&w, "c4").contains(&bob), "{r:#?}");
}

/// Defect 2 (and case): `DeleteUser` of `FZ9` in this account offboards this
/// account's `fz9` only; account B's `fz9` keeps its mapping, access entry and trust.
#[tokio::test]
async fn delete_event_offboards_only_the_event_accounts_user() {
    let ours = user_arn_in(ACCOUNT, "fz9");
    let theirs = user_arn_in(OTHER_ACCOUNT, "fz9");
    let both = [ours.clone(), theirs.clone()];
    let w = world_with_direct(&both, &both);
    let r = event_report(&w, &iam_event("DeleteUser", "FZ9")).await;
    assert!(r.succeeded(), "{r:#?}");
    let users = map_users_of(&w, "c1");
    assert!(!users.contains(&ours), "ours offboarded: {users}");
    assert!(users.contains(&theirs), "account B's fz9 stays: {users}");
    let keys = entry_keys(&w, "c4");
    assert!(!keys.contains(&ours), "{keys:?}");
    assert!(keys.contains(&theirs), "{keys:?}");
    let policy = w.iam.policy();
    assert!(!policy.contains(&ours), "{policy}");
    assert!(policy.contains(&theirs), "{policy}");
    assert_eq!(r.trust_policy.removed, vec![ours.clone()]);
}

/// A late `DeleteUser` for a user that exists again offboards nobody.
#[tokio::test]
async fn delete_event_for_a_re_created_user_offboards_nobody() {
    let bob = user_arn_in(ACCOUNT, "bob");
    let w = world_with_direct(std::slice::from_ref(&bob), &[]);
    let r = event_report(&w, &iam_event("DeleteUser", "bob")).await;
    assert!(r.succeeded(), "{r:#?}");
    assert!(map_users_of(&w, "c1").contains(&bob), "{r:#?}");
    assert!(entry_keys(&w, "c4").contains(&bob), "{r:#?}");
}

/// Defect 3: a lookup that misses (IAM resolves `ALICE`; a lagging or differently-
/// cased read may not) on an event other than `DeleteUser` removes nobody.
#[tokio::test]
async fn a_missed_lookup_on_a_tag_event_removes_nobody() {
    let alice = user_arn_in(ACCOUNT, "alice");
    let w = world_with_direct(std::slice::from_ref(&alice), std::slice::from_ref(&alice));
    let policy = w.iam.policy();
    for name in ["TagUser", "UntagUser", "CreateUser"] {
        let r = event_report(&w, &iam_event(name, "ALICE")).await;
        assert!(r.succeeded(), "{r:#?}");
        assert!(r.trust_policy.removed.is_empty(), "{name}: {r:#?}");
        assert_eq!(w.iam.policy(), policy, "{name}");
        assert!(map_users_of(&w, "c1").contains(&alice), "{name}: {r:#?}");
        assert!(entry_keys(&w, "c4").contains(&alice), "{name}: {r:#?}");
    }
}

// ------------------------------------------------------- Kubernetes retries

fn cluster_error(r: &RunReport, name: &str) -> String {
    r.clusters
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.error.clone())
        .unwrap_or_default()
}

/// Transient statuses on the aws-auth read and write are retried like a conflict,
/// and every retry is counted.
#[tokio::test]
async fn transient_kube_errors_are_retried_and_counted() {
    let w = world();
    w.kube.state("c1").lock().expect("lock").faults = [500, 503, 429, 502].into();
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(status(&r, "c1"), ClusterStatus::Updated);
    assert_eq!(r.conflict_retries, 4, "{r:#?}");
    assert_eq!(w.kube.writes("c1"), 1);
}

/// A status that keeps coming fails the cluster after its capped attempts
/// (`MAX_WRITE_ATTEMPTS` for 5xx/429, `MAX_CONFLICT_ATTEMPTS` for 409), saying how
/// many attempts and why; the retries are still counted.
#[tokio::test]
async fn persistent_kube_errors_fail_the_cluster_after_the_capped_attempts() {
    use eks_access_sync::engine::{MAX_CONFLICT_ATTEMPTS, MAX_WRITE_ATTEMPTS};
    for code in [500u16, 504, 409] {
        let attempts = if code == 409 {
            MAX_CONFLICT_ATTEMPTS
        } else {
            MAX_WRITE_ATTEMPTS
        };
        let w = world();
        // Every read passes (0); every write answers `code`.
        w.kube.state("c1").lock().expect("lock").faults =
            (0..attempts).flat_map(|_| [0, code]).collect();
        let r = w.engine.apply_full(&Scope::all()).await;
        assert_eq!(status(&r, "c1"), ClusterStatus::Failed, "{code}: {r:#?}");
        let err = cluster_error(&r, "c1");
        let why = if code == 409 {
            "conflict".to_owned()
        } else {
            code.to_string()
        };
        assert!(
            err.contains(&format!("{attempts} attempt")) && err.contains(&why),
            "{code}: {err}"
        );
        assert_eq!(r.conflict_retries, attempts - 1, "{code}: {r:#?}");
        assert_eq!(
            w.kube.state("c1").lock().expect("lock").calls,
            2 * attempts as usize,
            "{code}: capped"
        );
        assert_eq!(w.kube.writes("c1"), 0);
        assert_eq!(
            status(&r, "c3"),
            ClusterStatus::Created,
            "other clusters go on"
        );
    }
}

/// A reset connection is retried like a 5xx; a timeout once only, so a server that
/// stopped answering fails the cluster quickly.
#[tokio::test]
async fn network_failures_are_retried_and_timeouts_only_once() {
    use eks_access_sync::engine::MAX_TIMEOUT_ATTEMPTS;
    use engine_support::{RESET, TIMEOUT};
    let w = world();
    w.kube.state("c1").lock().expect("lock").faults = [RESET, 0, RESET, TIMEOUT].into();
    let r = w.engine.apply_full(&Scope::all()).await;
    assert_eq!(status(&r, "c1"), ClusterStatus::Updated, "{r:#?}");
    assert_eq!(r.conflict_retries, 3, "{r:#?}");
    assert_eq!(w.kube.writes("c1"), 1);

    let w = world();
    w.kube.state("c1").lock().expect("lock").faults =
        (0..MAX_TIMEOUT_ATTEMPTS).map(|_| TIMEOUT).collect();
    let r = w.engine.apply_full(&Scope::all()).await;
    assert_eq!(status(&r, "c1"), ClusterStatus::Failed, "{r:#?}");
    let err = cluster_error(&r, "c1");
    assert!(
        err.contains(&format!("{MAX_TIMEOUT_ATTEMPTS} attempt")) && err.contains("timed out"),
        "{err}"
    );
    assert_eq!(
        w.kube.state("c1").lock().expect("lock").calls,
        MAX_TIMEOUT_ATTEMPTS as usize,
        "one retry only"
    );

    // A call that used up its 30 s bound (the kube client's own 429 retries) is not
    // tried again: a throttling server fails the cluster in 30 s.
    let w = world();
    w.kube.state("c1").lock().expect("lock").faults = [engine_support::CALL_TIMEOUT].into();
    let r = w.engine.apply_full(&Scope::all()).await;
    assert_eq!(status(&r, "c1"), ClusterStatus::Failed, "{r:#?}");
    assert!(
        cluster_error(&r, "c1").contains("timed out after 30 s"),
        "{r:#?}"
    );
    assert_eq!(w.kube.state("c1").lock().expect("lock").calls, 1);
}

/// Conflicts and transient errors have budgets of their own: four 503s do not use up
/// the conflicts' budget, and nine conflicts do not use up the transient one.
#[tokio::test]
async fn conflicts_and_transient_errors_have_their_own_budgets() {
    use eks_access_sync::engine::{MAX_CONFLICT_ATTEMPTS, MAX_WRITE_ATTEMPTS};
    let w = world();
    let mut faults: Vec<u16> = (1..MAX_WRITE_ATTEMPTS).flat_map(|_| [0, 503]).collect();
    faults.extend((1..MAX_CONFLICT_ATTEMPTS).flat_map(|_| [0, 409]));
    w.kube.state("c1").lock().expect("lock").faults = faults.into_iter().collect();
    let r = w.engine.apply_full(&Scope::all()).await;
    assert_eq!(status(&r, "c1"), ClusterStatus::Updated, "{r:#?}");
    assert_eq!(
        r.conflict_retries,
        MAX_WRITE_ATTEMPTS - 1 + MAX_CONFLICT_ATTEMPTS - 1,
        "{r:#?}"
    );
    assert_eq!(w.kube.writes("c1"), 1);
}

/// A read that keeps failing fails the cluster after the same capped attempts.
#[tokio::test]
async fn persistent_read_errors_fail_the_cluster_after_the_capped_attempts() {
    use eks_access_sync::engine::MAX_WRITE_ATTEMPTS;
    let w = world();
    w.kube.state("c1").lock().expect("lock").faults =
        (0..MAX_WRITE_ATTEMPTS).map(|_| 503).collect();
    let r = w.engine.apply_full(&Scope::all()).await;
    assert_eq!(status(&r, "c1"), ClusterStatus::Failed, "{r:#?}");
    let err = cluster_error(&r, "c1");
    assert!(
        err.contains(&format!("{MAX_WRITE_ATTEMPTS} attempt")) && err.contains("503"),
        "{err}"
    );
    assert_eq!(r.conflict_retries, MAX_WRITE_ATTEMPTS - 1, "{r:#?}");
    assert_eq!(
        w.kube.state("c1").lock().expect("lock").calls,
        MAX_WRITE_ATTEMPTS as usize
    );
}

/// Issue 3 §5: a refused write must not be reported as users added or removed.
#[tokio::test]
async fn a_refused_trust_policy_write_reports_nothing_as_done() {
    let w = world();
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"EksAccessSyncAdmins","Effect":"Allow","Principal":{{"AWS":["AIDAXQJ2KXNMDAVE7EXMP","arn:aws:iam::{ACCOUNT}:user/bob"]}},"Action":"sts:AssumeRole"}}]}}"#
    );
    {
        let mut s = w.iam.0.lock().expect("lock");
        s.policy = policy.clone();
        s.fail_update = Some("LimitExceeded".into());
    }
    // The plan (a dry run) says what would change ...
    let plan = w.engine.run_full(&Scope::all(), true).await.report;
    assert_eq!(plan.trust_policy.added.len(), 1, "{plan:#?}");
    assert_eq!(plan.trust_policy.removed.len(), 1);
    assert_eq!(plan.trust_policy.dangling_removed.len(), 1);
    // ... the refused apply says none of it happened.
    let r = w.engine.apply_full(&Scope::all()).await;
    let t = &r.trust_policy;
    assert!(!r.succeeded());
    assert!(
        t.error.as_deref().unwrap_or("").contains("LimitExceeded"),
        "{t:#?}"
    );
    assert!(!t.changed);
    assert!(
        t.added.is_empty(),
        "not trusted, yet reported added: {t:#?}"
    );
    assert!(t.removed.is_empty(), "{t:#?}");
    assert!(t.dangling_removed.is_empty(), "{t:#?}");
    assert_eq!(
        t.size_chars,
        eks_access_sync::trust::policy_size_chars(&policy),
        "the size is the policy's as it stands"
    );
    assert_eq!(w.iam.policy(), policy);
    assert!(
        r.render_text().contains("0 added, 0 removed"),
        "{}",
        r.render_text()
    );
}

/// A CloudTrail `TagResource` on the cluster `name`, as EventBridge delivers it from
/// `region` (the envelope's `region` and the record's `awsRegion`).
fn eks_tag_event(region: &str, name: &str) -> serde_json::Value {
    json!({
        "version": "0",
        "id": "6f1b3b0e-0000-0000-0000-000000000002",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.eks",
        "account": ACCOUNT,
        "time": "2026-11-28T12:00:00Z",
        "region": region,
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "eventSource": "eks.amazonaws.com",
            "eventName": "TagResource",
            "awsRegion": region,
            "requestParameters": {
                "resourceArn": format!("arn:aws:eks:{region}:{ACCOUNT}:cluster/{name}"),
                "tags": { "eks-access-sync/managed": "true" }
            },
            "responseElements": null,
            "recipientAccountId": ACCOUNT
        }
    })
}

async fn eks_event_report(w: &World, ev: &serde_json::Value) -> RunReport {
    match eks_access_sync::event::classify_event(ev, w.engine.config()) {
        eks_access_sync::event::EventClass::Eks(ev) => w.engine.handle_eks_event(&ev).await,
        other => panic!("not an EKS event: {other:?}"),
    }
}

/// An EKS event for a cluster that is not managed (c2 is untagged; "ghost" does not
/// exist): the report names the event's region, not `""`.
#[tokio::test]
async fn an_eks_event_for_an_unmanaged_cluster_reports_the_events_region() {
    let w = world();
    for name in ["c2", "ghost"] {
        let r = eks_event_report(&w, &eks_tag_event("eu-west-1", name)).await;
        assert_eq!(r.clusters.len(), 1, "{r:#?}");
        let c = &r.clusters[0];
        assert_eq!(c.name, name);
        assert_eq!(c.status, ClusterStatus::Skipped, "{r:#?}");
        assert_eq!(c.region, "eu-west-1", "{r:#?}");
    }
    // No envelope region: CloudTrail's awsRegion says where the call was made.
    let mut ev = eks_tag_event("eu-west-1", "c2");
    ev.as_object_mut().expect("object").remove("region");
    let r = eks_event_report(&w, &ev).await;
    assert_eq!(r.clusters[0].region, "eu-west-1", "{r:#?}");
    assert_eq!(
        total_writes(&w),
        0,
        "nothing is written for an unmanaged cluster"
    );
}

/// A writer the log tests read back.
#[derive(Clone, Default)]
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture").extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

/// Log fields are plain values: no `Debug` forms of options, enums or newtypes
/// (`"change":"Some(Add(UserArn(\"arn:…\")))"`).
#[tokio::test]
async fn event_runs_log_plain_values() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let w = world();
    let cap = Capture::default();
    let subscriber =
        tracing_subscriber::registry().with(eks_access_sync::telemetry::json_layer_with(
            tracing_subscriber::EnvFilter::new("trace"),
            cap.clone(),
        ));
    let _guard = tracing::subscriber::set_default(subscriber);
    for ev in [
        iam_event("TagUser", "alice"),
        iam_event("UntagUser", "alice"),
        iam_event("DeleteUser", "bob"),
    ] {
        let _ = w.engine.handle_iam_events_payload(&ev, false).await;
    }
    let _ = eks_event_report(&w, &eks_tag_event("us-east-1", "c1")).await;
    let text = String::from_utf8(cap.0.lock().expect("capture").clone()).expect("utf-8");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let reread: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["message"] == "event re-read")
        .collect();
    assert_eq!(reread.len(), 3, "{text}");
    assert_eq!(
        reread[0]["change"],
        format!("add arn:aws:iam::{ACCOUNT}:user/alice"),
        "{text}"
    );
    for form in [
        "Some(",
        "None",
        "UserArn(",
        "UserName(",
        "AccountId(",
        "ClusterName(",
        "Add(",
        "RemoveName",
    ] {
        assert!(
            !text.contains(form),
            "a Debug form {form:?} in the logs:\n{text}"
        );
    }
}

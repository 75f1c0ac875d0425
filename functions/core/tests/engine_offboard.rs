//! The engine on fakes: offboarding (direct mappings, delete events) and the retries
//! of aws-auth writes.

use crate::flows_support::*;
use eks_access_sync::engine::{RunMode, Scope};
use eks_access_sync::model::cluster::AuthMode;
use eks_access_sync::output::report::{ClusterStatus, RunReport};
use serde_json::json;

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

fn user_entry(arn: &str) -> eks_access_sync::policy::accessentry::AccessEntryView {
    eks_access_sync::policy::accessentry::AccessEntryView {
        principal_arn: arn.to_owned(),
        username: None,
        kubernetes_groups: vec![],
        policies: vec![],
        policy_namespaces: Default::default(),
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
        let opts =
            eks_access_sync::policy::trust::TrustOptions::from(&config()).with_role(&role_arn());
        let edit = eks_access_sync::policy::trust::edit_trust_policy(
            EMPTY_TRUST,
            &eks_access_sync::policy::trust::PrincipalChange::Set(set),
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
    ran(w.engine.handle_iam_events_payload(ev, RunMode::Apply).await)
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
    use crate::engine_support::{RESET, TIMEOUT};
    use eks_access_sync::engine::MAX_TIMEOUT_ATTEMPTS;
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
    w.kube.state("c1").lock().expect("lock").faults = [crate::engine_support::CALL_TIMEOUT].into();
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
    let plan = w
        .engine
        .run_full(&Scope::all(), RunMode::DryRun)
        .await
        .report;
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
        eks_access_sync::policy::trust::policy_size_chars(&policy),
        "the size is the policy's as it stands"
    );
    assert_eq!(w.iam.policy(), policy);
    assert!(
        r.render_text().contains("0 added, 0 removed"),
        "{}",
        r.render_text()
    );
}

/// API_AND_CONFIG_MAP: offboarding edits only `mapUsers` (`remove_users`), so a
/// `mapRoles` that does not parse neither blocks it nor is rewritten.
#[tokio::test]
async fn api_and_config_map_offboards_despite_a_broken_map_roles() {
    let w = world();
    w.eks.0.lock().expect("lock").clusters.push(cluster(
        "c5",
        "us-east-1",
        true,
        AuthMode::ApiAndConfigMap,
    ));
    let broken = "- not a mapping\n";
    let users = format!(
        "- userarn: arn:aws:iam::{ACCOUNT}:user/carol\n  username: carol\n  groups:\n    - system:masters\n"
    );
    w.kube.set("c5", aws_auth(broken, Some(&users)));
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(status(&r, "c5"), ClusterStatus::Created);
    assert_eq!(w.kube.writes("c5"), 1);
    let d5 = w.kube.data("c5").expect("c5");
    assert_eq!(d5.get("mapRoles").map(String::as_str), Some(broken));
    assert!(!d5.get("mapUsers").is_some_and(|u| u.contains("carol")));
}

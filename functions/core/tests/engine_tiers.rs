//! Access tiers on in-memory fakes, the trust side: each tier role's trust policy
//! holds its members (by tag or IAM group), and group events move users between tiers.

use crate::flows_support::*;
use crate::tiers_support::*;
use eks_access_sync::engine::{RunMode, Scope};
use eks_access_sync::model::tiers::AccessConfig;
use eks_access_sync::policy::event::{EventClass, classify_event};
use serde_json::json;

#[tokio::test]
async fn full_run_puts_each_tiers_members_in_its_roles_trust_policy() {
    let w = tier_world();
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(trusted(&w.iam.policy()), ["alice"]);
    assert_eq!(trusted(&w.iam.role_policy("eks-edit")), ["dave", "frank"]);
    // Group names compare without case (frank is in "Auditors").
    assert_eq!(trusted(&w.iam.role_policy("eks-view")), ["erin", "frank"]);
    let tiers: Vec<(&str, usize, bool)> = r
        .tiers
        .iter()
        .map(|t| (t.tier.as_str(), t.members, t.trust_policy.changed))
        .collect();
    assert_eq!(
        tiers,
        [
            ("admin", 1, true),
            ("developers", 2, true),
            ("readers", 2, true)
        ]
    );
    // The first tier is also where the single-tier report had it.
    assert_eq!(r.trust_policy, r.tiers[0].trust_policy);
    assert_eq!(r.admin_users, 1);

    // A second run writes nothing.
    let writes = total_writes(&w) + w.iam.other_writes().len();
    let again = w.engine.apply_full(&Scope::all()).await;
    assert!(again.succeeded(), "{again:#?}");
    assert_eq!(total_writes(&w) + w.iam.other_writes().len(), writes);
}

#[tokio::test]
async fn leaving_a_group_removes_the_user_from_that_tier_only() {
    let w = tier_world();
    assert!(w.engine.apply_full(&Scope::all()).await.succeeded());
    let before_admin = w.iam.writes();
    // frank leaves sre: still an auditor (readers), no longer a developer.
    let mut users = vec![];
    for mut u in [
        member("alice", &[("eks-admin", "true")], &[]),
        member("dave", &[], &["developers"]),
        member("erin", &[("eks-access", "view")], &[]),
        member("frank", &[], &["Auditors"]),
    ] {
        u.groups.sort();
        users.push(u);
    }
    w.iam.set_users(users);
    let written_before = w.iam.other_writes().len();
    let r = ran(w
        .engine
        .handle_iam_events_payload(
            &group_event("RemoveUserFromGroup", "frank", "sre"),
            RunMode::Apply,
        )
        .await);
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(trusted(&w.iam.role_policy("eks-edit")), ["dave"]);
    assert_eq!(trusted(&w.iam.role_policy("eks-view")), ["erin", "frank"]);
    // Only the developers' role was written; the others were not even edited.
    assert_eq!(
        w.iam.other_writes()[written_before..],
        ["eks-edit".to_owned()]
    );
    assert_eq!(w.iam.writes(), before_admin);
    assert_eq!(r.tiers[1].trust_policy.removed, [arn("frank")]);
    assert!(!r.tiers[0].trust_policy.changed && !r.tiers[2].trust_policy.changed);
}

#[tokio::test]
async fn joining_a_group_adds_the_user_to_that_tier() {
    let w = tier_world();
    assert!(w.engine.apply_full(&Scope::all()).await.succeeded());
    w.iam.set_users(vec![
        member("alice", &[("eks-admin", "true")], &[]),
        member("bob", &[("team", "x")], &["SRE"]),
    ]);
    let r = ran(w
        .engine
        .handle_iam_events_payload(&group_event("AddUserToGroup", "bob", "SRE"), RunMode::Apply)
        .await);
    assert!(r.succeeded(), "{r:#?}");
    assert!(trusted(&w.iam.role_policy("eks-edit")).contains(&"bob".to_owned()));
    assert!(!trusted(&w.iam.role_policy("eks-view")).contains(&"bob".to_owned()));
    assert!(!trusted(&w.iam.policy()).contains(&"bob".to_owned()));
}

#[tokio::test]
async fn delete_user_removes_a_two_tier_member_from_both() {
    let w = tier_world();
    assert!(w.engine.apply_full(&Scope::all()).await.succeeded());
    w.iam.set_users(vec![
        member("alice", &[("eks-admin", "true")], &[]),
        member("dave", &[], &["developers"]),
        member("erin", &[("eks-access", "view")], &[]),
    ]);
    let r = ran(w
        .engine
        .handle_iam_events_payload(&iam_event("DeleteUser", "frank"), RunMode::Apply)
        .await);
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(trusted(&w.iam.role_policy("eks-edit")), ["dave"]);
    assert_eq!(trusted(&w.iam.role_policy("eks-view")), ["erin"]);
    assert_eq!(trusted(&w.iam.policy()), ["alice"]);
}

#[test]
fn a_group_event_of_a_group_no_tier_uses_is_ignored() {
    let mut cfg = config();
    cfg.access = AccessConfig::from_yaml(TIERS).expect("tiers");
    for name in ["AddUserToGroup", "RemoveUserFromGroup"] {
        match classify_event(&group_event(name, "bob", "finance"), &cfg) {
            EventClass::Ignored { reason } => {
                assert!(reason.contains("selects no tier"), "{reason}")
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    let mut del = group_event("DeleteGroup", "bob", "finance");
    del["detail"]["requestParameters"] = json!({ "groupName": "finance" });
    assert!(matches!(
        classify_event(&del, &cfg),
        EventClass::Ignored { .. }
    ));
    del["detail"]["requestParameters"] = json!({ "groupName": "SRE" });
    assert_eq!(
        classify_event(&del, &cfg),
        EventClass::IamGroupDeleted {
            group: "SRE".into()
        }
    );
}

#[tokio::test]
async fn an_event_that_touches_no_tier_reads_no_role_and_visits_no_cluster() {
    let w = tier_world();
    let iam_writes = w.iam.writes();
    // bob was created with no tag a tier selects on, and is in no group.
    let r = ran(w
        .engine
        .handle_iam_events_payload(&iam_event("CreateUser", "bob"), RunMode::Apply)
        .await);
    assert!(r.succeeded(), "{r:#?}");
    assert!(r.clusters.is_empty(), "{:#?}", r.clusters);
    assert!(
        r.tiers
            .iter()
            .all(|t| !t.trust_policy.changed && t.roles.is_empty())
    );
    assert_eq!(w.iam.writes(), iam_writes);
    assert_eq!(w.eks.writes(), 0);
    assert_eq!(w.eks.reads(), Vec::<String>::new());
}

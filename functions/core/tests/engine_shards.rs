//! Any team size (issue 11) on in-memory fakes: a tier past one trust policy is
//! spread over shard roles, each within the quota, stable, mapped on every cluster of
//! the tier; events touch only the role that changes; non-members are never trusted.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::flows_support::*;
use eks_access_sync::engine::{Engine, RunMode, Scope};
use eks_access_sync::model::cluster::AuthMode;
use eks_access_sync::policy::desired::IamUser;
use eks_access_sync::policy::trust::{managed_principals, policy_size_chars};

const SID: &str = "EksAccessSyncAdmins";
const BOUNDARY: &str = "arn:aws:iam::111122223333:policy/eks-access-sync-shard-boundary";

fn name(i: usize) -> String {
    format!("engineer-{i:04}")
}

/// `n` admins (engineer-0000…) and bob (not one).
fn members(n: usize) -> Vec<IamUser> {
    let mut users: Vec<_> = (0..n).map(|i| user(&name(i), true)).collect();
    users.push(user("bob", false));
    users
}

/// `n` admins and bob; c1 CONFIG_MAP, c4 API.
fn shard_world(n: usize) -> World {
    shard_world_trusting(n, EMPTY_TRUST)
}

/// As [`shard_world`], the tier role's trust policy `trust` to begin with.
fn shard_world_trusting(n: usize, trust: &str) -> World {
    let iam = FakeIam::new(members(n), trust);
    let eks = FakeEks::new(vec![
        cluster("c1", "us-east-1", true, AuthMode::ConfigMap),
        cluster("c4", "us-east-1", true, AuthMode::Api),
    ]);
    let kube = FakeKube::default();
    kube.set("c1", aws_auth(NODE_ROLES, None));
    let cfg = test_config(&[
        ("CLUSTER_REGIONS", "us-east-1"),
        ("SHARD_PERMISSIONS_BOUNDARY", BOUNDARY),
    ]);
    let engine = Engine::new(cfg, iam.clone(), eks.clone(), kube.clone())
        .with_conflict_backoff(Duration::from_millis(1));
    World {
        iam,
        eks,
        kube,
        engine,
    }
}

/// Every role of the tier (the tier role first) with the users it trusts.
fn roles(w: &World) -> Vec<(String, BTreeSet<String>, usize)> {
    let base = w.iam.policy();
    let mut out = vec![(
        ROLE_NAME.to_owned(),
        managed_principals(&base, SID).expect("base"),
        policy_size_chars(&base),
    )];
    let mut shards: Vec<(u32, String, String)> = w
        .iam
        .shards()
        .into_iter()
        .map(|(n, doc)| {
            let k = n
                .rsplit('-')
                .next()
                .and_then(|k| k.parse().ok())
                .expect("k");
            (k, n, doc)
        })
        .collect();
    shards.sort();
    for (_, n, doc) in shards {
        let size = policy_size_chars(&doc);
        out.push((n, managed_principals(&doc, SID).expect("shard"), size));
    }
    out
}

fn holder(w: &World, user: &str) -> Vec<String> {
    let arn = format!("arn:aws:iam::{ACCOUNT}:user/{user}");
    roles(w)
        .into_iter()
        .filter(|(_, m, _)| m.contains(&arn))
        .map(|(n, _, _)| n)
        .collect()
}

#[tokio::test]
async fn a_tier_past_the_quota_is_spread_over_shards_mapped_on_every_cluster() {
    let w = shard_world(200);
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    let all = roles(&w);
    assert!(
        all.len() >= 5,
        "200 users need several roles: {}",
        all.len()
    );
    let mut seen = BTreeSet::new();
    for (n, members, size) in &all {
        assert!(*size <= 2048, "{n}: {size}");
        for m in members {
            assert!(seen.insert(m.clone()), "{m} in two roles");
        }
    }
    let want: BTreeSet<String> = (0..200)
        .map(|i| format!("arn:aws:iam::{ACCOUNT}:user/{}", name(i)))
        .collect();
    assert_eq!(seen, want, "every member exactly once, bob nowhere");
    // Created with the boundary, at the shard path, named <role>-k.
    let created = w.iam.created();
    assert_eq!(created.len(), all.len() - 1);
    for (i, (n, b)) in created.iter().enumerate() {
        assert_eq!(n, &format!("{ROLE_NAME}-{}", i + 2));
        assert_eq!(b.as_deref(), Some(BOUNDARY));
    }
    // The report: every role with its size against the quota.
    let t = &r.tiers[0];
    assert_eq!(t.members, 200);
    assert_eq!(t.roles.len(), all.len());
    assert_eq!(t.trust_policy.added.len(), 200);
    assert!(
        t.roles
            .iter()
            .skip(1)
            .all(|u| u.created && u.max_chars == 2048)
    );
    // Every role mapped: aws-auth (without path) and access entries (with it).
    let map_roles = &w.kube.data("c1").expect("aws-auth")["mapRoles"];
    let entries = w.eks.entries("c4");
    for (n, _, _) in &all {
        assert!(
            map_roles.contains(&format!(":role/{n}\"")),
            "{n} not in aws-auth:\n{map_roles}"
        );
        if n != ROLE_NAME {
            let arn = format!("arn:aws:iam::{ACCOUNT}:role/eks-access-sync/{n}");
            assert!(
                entries.contains_key(&arn),
                "{arn} has no access entry: {entries:?}"
            );
        }
    }
    assert!(
        !map_roles.contains("/eks-access-sync/"),
        "aws-auth rolearn carries no path"
    );

    // In sync: a second run writes and creates nothing.
    let writes = total_writes(&w) + w.iam.shard_writes().len();
    let again = w.engine.apply_full(&Scope::all()).await;
    assert!(again.succeeded(), "{again:#?}");
    assert_eq!(total_writes(&w) + w.iam.shard_writes().len(), writes);
    assert_eq!(w.iam.created().len(), created.len());
}

#[tokio::test]
async fn offboarding_one_member_deep_in_the_shards_touches_their_role_only() {
    let w = shard_world(200);
    assert!(w.engine.apply_full(&Scope::all()).await.succeeded());
    let before = roles(&w);
    let victim = name(150);
    let at = holder(&w, &victim);
    assert_eq!(at.len(), 1);
    w.iam.set_users(
        (0..200)
            .filter(|i| *i != 150)
            .map(|i| user(&name(i), true))
            .collect(),
    );
    let (admin_writes, shard_writes) = (w.iam.writes(), w.iam.shard_writes().len());
    let r = ran(w
        .engine
        .handle_iam_events_payload(&iam_event("DeleteUser", &victim), RunMode::Apply)
        .await);
    assert!(r.succeeded(), "{r:#?}");
    assert!(holder(&w, &victim).is_empty());
    assert_eq!(w.iam.writes(), admin_writes, "the tier role is not written");
    assert_eq!(w.iam.shard_writes()[shard_writes..], at[..]);
    let after = roles(&w);
    for ((n, b, _), (_, a, _)) in before.iter().zip(&after) {
        if n == &at[0] {
            assert_eq!(b.len() - 1, a.len());
        } else {
            assert_eq!(b, a, "{n} unchanged");
        }
    }
    assert_eq!(r.tiers[0].trust_policy.removed.len(), 1, "{r:#?}");
}

#[tokio::test]
async fn a_new_member_takes_the_first_hole_then_a_new_shard_when_all_are_full() {
    let w = shard_world(200);
    assert!(w.engine.apply_full(&Scope::all()).await.succeeded());
    let n_roles = roles(&w).len();
    // The full run left a spare: the last shard trusts no one and is mapped already.
    let spare = format!("{ROLE_NAME}-{n_roles}");
    assert!(
        roles(&w)
            .last()
            .is_some_and(|(n, m, _)| *n == spare && m.is_empty()),
        "{:?}",
        roles(&w).last()
    );
    let mapped = w.kube.data("c1").expect("aws-auth")["mapRoles"].clone();
    assert!(mapped.contains(&format!(":role/{spare}\"")));
    // Fill the last shard and the spare up with newcomers by events until one more
    // role appears; until then no event writes aws-auth.
    let mut i = 200;
    loop {
        let mut users: Vec<_> = (0..=i).map(|j| user(&name(j), true)).collect();
        users.push(user("bob", false));
        w.iam.set_users(users);
        let r = ran(w
            .engine
            .handle_iam_events_payload(&iam_event("TagUser", &name(i)), RunMode::Apply)
            .await);
        assert!(r.succeeded(), "{r:#?}");
        assert_eq!(holder(&w, &name(i)).len(), 1);
        if roles(&w).len() > n_roles {
            break;
        }
        assert_eq!(
            w.kube.data("c1").expect("aws-auth")["mapRoles"],
            mapped,
            "{} went to a role already mapped",
            name(i)
        );
        i += 1;
        assert!(i < 300, "no new shard after 100 events");
    }
    let all = roles(&w);
    assert_eq!(all.len(), n_roles + 1);
    assert!(!all[n_roles - 1].1.is_empty(), "the spare took newcomers");
    assert!(all.iter().all(|(_, _, s)| *s <= 2048));
    assert_eq!(
        holder(&w, &name(i)),
        [format!("{ROLE_NAME}-{}", n_roles + 1)]
    );
    // The new shard is mapped on the clusters by the same event.
    let map_roles = &w.kube.data("c1").expect("aws-auth")["mapRoles"];
    assert!(map_roles.contains(&format!(":role/{ROLE_NAME}-{}\"", n_roles + 1)));
    // A member who leaves frees a place the next newcomer takes.
    let gone = name(3);
    let hole = holder(&w, &gone);
    let mut users: Vec<_> = (0..=i + 1)
        .filter(|j| *j != 3)
        .map(|j| user(&name(j), true))
        .collect();
    users.push(user("bob", false));
    w.iam.set_users(users);
    let r = ran(w
        .engine
        .handle_iam_events_payload(&iam_event("DeleteUser", &gone), RunMode::Apply)
        .await);
    assert!(r.succeeded(), "{r:#?}");
    let r = ran(w
        .engine
        .handle_iam_events_payload(&iam_event("TagUser", &name(i + 1)), RunMode::Apply)
        .await);
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(holder(&w, &name(i + 1)), hole);
    // bob, never a member, is in no role.
    assert!(holder(&w, "bob").is_empty());
}

#[tokio::test]
async fn a_dry_run_creates_nothing_and_shows_the_shards() {
    let w = shard_world(120);
    let plan = w.engine.plan_full(&Scope::all()).await;
    assert!(w.iam.created().is_empty());
    assert_eq!(w.iam.writes(), 0);
    assert!(!plan.tiers[0].shards.is_empty(), "{plan:#?}");
    assert!(
        plan.tiers[0]
            .shards
            .iter()
            .all(|s| s.before.is_empty() && s.after.is_some())
    );
}

/// The tier role's managed statement with an MFA condition (the administrator's).
fn mfa_trust() -> String {
    serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Ec2", "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
         "Action": "sts:AssumeRole"},
        {"Sid": SID, "Effect": "Allow",
         "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:user/{}", name(0))},
         "Action": "sts:AssumeRole",
         "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}
    ]})
    .to_string()
}

/// Whether every Allow statement of `doc` that trusts someone requires MFA.
fn every_allow_requires_mfa(doc: &str) -> bool {
    let v: serde_json::Value = serde_json::from_str(doc).expect("json");
    let stmts = match &v["Statement"] {
        serde_json::Value::Array(a) => a.clone(),
        o => vec![o.clone()],
    };
    stmts
        .iter()
        .filter(|s| s["Effect"] == "Allow" && s["Principal"]["AWS"] != serde_json::Value::Null)
        .all(|s| s["Condition"]["Bool"]["aws:MultiFactorAuthPresent"] == "true")
}

#[tokio::test]
async fn a_newcomer_in_the_spare_is_bound_by_the_tier_statements_conditions() {
    // Regression: an event adding the first member to the spare (the deny
    // placeholder) built a bare statement, without the tier role's conditions: until
    // the next full run, that member could assume the role without MFA.
    let w = shard_world_trusting(120, &mfa_trust());
    assert!(w.engine.apply_full(&Scope::all()).await.succeeded());
    let shards = w.iam.shards();
    assert!(shards.len() >= 2, "{shards:?}");
    let (spare, doc) = shards
        .iter()
        .find(|(_, d)| managed_principals(d, SID).is_ok_and(|m| m.is_empty()))
        .expect("a spare");
    assert!(shards.values().all(|d| every_allow_requires_mfa(d)));
    assert!(!doc.contains(":user/"), "{doc}");
    // Newcomers by events until one lands in the spare.
    let mut i = 120;
    while !w
        .iam
        .shard_policy(spare)
        .is_some_and(|d| d.contains(":user/"))
    {
        i += 1;
        w.iam.set_users(members(i));
        let r = ran(w
            .engine
            .handle_iam_events_payload(&iam_event("TagUser", &name(i - 1)), RunMode::Apply)
            .await);
        assert!(r.succeeded(), "{r:#?}");
        assert!(i < 220, "the spare took no one");
    }
    let doc = w.iam.shard_policy(spare).expect("spare");
    assert!(every_allow_requires_mfa(&doc), "{doc}");
    assert!(every_allow_requires_mfa(&w.iam.policy()));
}

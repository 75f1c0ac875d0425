use super::*;
use crate::policy::trust::{managed_principals, policy_size_chars};

const SID: &str = "EksAccessSyncAdmins";

fn opts(max: usize) -> TrustOptions {
    TrustOptions {
        sid: SID.into(),
        max_chars: max,
        require_session_name: true,
        account_fallback: Some(("aws".into(), "123456789012".into())),
    }
}

fn user(i: usize) -> UserArn {
    format!("arn:aws:iam::123456789012:user/team/engineer-{i:05}")
        .parse()
        .expect("arn")
}

fn users(range: std::ops::Range<usize>) -> BTreeSet<UserArn> {
    range.map(user).collect()
}

/// A tier role with a foreign statement (a CI role) beside ours, which holds
/// an MFA condition an administrator added.
fn base_doc(members: &[UserArn]) -> String {
    let aws: Vec<&str> = members.iter().map(UserArn::as_str).collect();
    json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "CiDeploys", "Effect": "Allow",
         "Principal": {"AWS": "arn:aws:iam::123456789012:role/ci"}, "Action": "sts:AssumeRole"},
        {"Sid": SID, "Effect": "Allow", "Principal": {"AWS": aws}, "Action": "sts:AssumeRole",
         "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"},
                       "StringEquals": {"sts:RoleSessionName": "${aws:username}"}}}
    ]})
    .to_string()
}

fn principals(doc: &str) -> BTreeSet<String> {
    managed_principals(doc, SID).expect("readable")
}

/// Every role's final document, built by the editor that writes.
fn finals(docs: &[&str], d: &Distribution, skeleton: &str, o: &TrustOptions) -> Vec<String> {
    let mut out: Vec<String> = docs
        .iter()
        .zip(&d.roles)
        .map(|(doc, m)| {
            let e = edit_trust_policy(doc, &PrincipalChange::Set(m.clone()), o).expect("fits");
            e.after.unwrap_or(e.before)
        })
        .collect();
    out.extend(
        d.new_shards
            .iter()
            .map(|m| shard_document(skeleton, m, o).expect("fits")),
    );
    out
}

/// `n` members laid out by a first full run on an empty tier role: the options, the
/// skeleton, the distribution, every role's final document and its principals.
struct Laid {
    o: TrustOptions,
    sk: String,
    d: Distribution,
    all: Vec<String>,
    current: Vec<BTreeSet<String>>,
}

fn laid_out(n: usize) -> Laid {
    let o = opts(2048);
    let doc = base_doc(&[]);
    let sk = shard_skeleton(&doc, SID);
    let d = distribute(&[&doc], &[BTreeSet::new()], &users(0..n), &sk, &o).expect("plan");
    let all = finals(&[&doc], &d, &sk, &o);
    let current = all.iter().map(|f| principals(f)).collect();
    Laid {
        o,
        sk,
        d,
        all,
        current,
    }
}

#[test]
fn shard_names_and_indexes() {
    let base: RoleName = "eks-view".parse().expect("name");
    assert_eq!(shard_index(&base, "eks-view"), Some(1));
    assert_eq!(shard_index(&base, "EKS-View"), Some(1));
    assert_eq!(shard_index(&base, "eks-view-2"), Some(2));
    assert_eq!(shard_index(&base, "eks-VIEW-140"), Some(140));
    for other in [
        "eks-view-1",
        "eks-view-02",
        "eks-view-",
        "eks-view-x",
        "eks-view-2a",
        "eks-viewer-2",
        "eks-vie",
    ] {
        assert_eq!(shard_index(&base, other), None, "{other}");
    }
    assert_eq!(
        shard_name(&base, 7).map(|n| n.to_string()).as_deref(),
        Some("eks-view-7")
    );
    let long: RoleName = "r".repeat(62).parse().expect("name");
    assert!(shard_name(&long, 9).is_some());
    assert!(
        shard_name(&long, 10).is_none(),
        "65 characters is not a role name"
    );
}

#[test]
fn the_skeleton_keeps_our_statement_and_its_conditions_only() {
    let sk = shard_skeleton(&base_doc(&[user(1)]), SID);
    let v: Value = serde_json::from_str(&sk).expect("json");
    let stmts = v["Statement"].as_array().expect("list");
    assert_eq!(stmts.len(), 1, "the CI statement is not copied: {sk}");
    assert_eq!(
        stmts[0]["Condition"]["Bool"]["aws:MultiFactorAuthPresent"],
        "true"
    );
    let doc = shard_document(&sk, &users(5..7), &opts(2048)).expect("doc");
    assert_eq!(
        principals(&doc),
        users(5..7).iter().map(|u| u.to_string()).collect()
    );
    assert!(doc.contains("aws:MultiFactorAuthPresent"), "{doc}");
    assert!(!doc.contains("role/ci"), "{doc}");
    // No managed statement in the tier role: a shard still gets exactly its members.
    let bare = shard_skeleton(r#"{"Version":"2012-10-17","Statement":[]}"#, SID);
    let doc = shard_document(&bare, &users(0..1), &opts(2048)).expect("doc");
    assert_eq!(principals(&doc).len(), 1);
}

#[test]
fn a_tier_within_the_quota_keeps_one_role() {
    let o = opts(2048);
    let doc = base_doc(&[]);
    let sk = shard_skeleton(&doc, SID);
    let d = distribute(&[&doc], &[BTreeSet::new()], &users(0..10), &sk, &o).expect("plan");
    assert_eq!(d.roles, vec![users(0..10)]);
    assert!(d.new_shards.is_empty());
}

#[test]
fn five_thousand_members_fill_shards_within_the_quota_exactly_once_each() {
    for max in [2048, 4096] {
        let o = opts(max);
        let doc = base_doc(&[]);
        let sk = shard_skeleton(&doc, SID);
        let desired = users(0..5000);
        let d = distribute(&[&doc], &[BTreeSet::new()], &desired, &sk, &o).expect("plan");
        let all = finals(&[&doc], &d, &sk, &o);
        let mut seen = BTreeSet::new();
        for f in &all {
            let size = policy_size_chars(f);
            assert!(size <= max, "{size} > {max}");
            for p in principals(f) {
                assert!(seen.insert(p.clone()), "{p} in two roles");
            }
        }
        let want: BTreeSet<String> = desired.iter().map(ToString::to_string).collect();
        assert_eq!(seen, want, "every member in exactly one role");
        // The spare: the last shard is empty, the one before it is not.
        let roles: Vec<&BTreeSet<UserArn>> = d.roles.iter().chain(&d.new_shards).collect();
        assert!(
            roles.last().is_some_and(|m| m.is_empty()),
            "a spare at {max}"
        );
        assert!(
            roles.iter().rev().skip(1).all(|m| !m.is_empty()),
            "one spare"
        );
        // Full: the estimate leaves no role with room for one more member (but the
        // last one filled, and the spare).
        let next = user(99_999);
        for (i, m) in roles.iter().enumerate().skip(1) {
            let mut more = (*m).clone();
            more.insert(next.clone());
            if i + 2 < all.len() {
                assert!(
                    shard_document(&sk, &more, &o).is_err(),
                    "shard {i} had room"
                );
            }
        }
        assert!(
            all.len() > 5000 / (max / 40),
            "{} roles at {max}",
            all.len()
        );
    }
}

#[test]
fn members_stay_where_they_are_and_newcomers_fill_the_holes() {
    let Laid {
        o,
        sk,
        all,
        current,
        ..
    } = laid_out(100);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    // Members 10 and 60 leave, 100 and 101 arrive.
    let mut desired = users(0..102);
    desired.remove(&user(10));
    desired.remove(&user(60));
    let again = distribute(&refs, &current, &desired, &sk, &o).expect("plan");
    assert!(again.new_shards.is_empty(), "the holes take the newcomers");
    for (i, (before, after)) in current.iter().zip(&again.roles).enumerate() {
        for p in before {
            let stays = desired.iter().any(|d| d.as_str() == p);
            assert_eq!(
                after.iter().any(|a| a.as_str() == p),
                stays,
                "role {i}: {p}"
            );
        }
    }
    let holder = |u: &UserArn| again.roles.iter().position(|m| m.contains(u));
    let was = |u: &UserArn| current.iter().position(|m| m.contains(u.as_str()));
    assert_eq!(
        holder(&user(100)),
        was(&user(10)),
        "the first hole is refilled first"
    );
    assert_eq!(holder(&user(101)), was(&user(60)));
    // And in sync: the same input plans the same roles.
    let finals2 = finals(&refs, &again, &sk, &o);
    let refs2: Vec<&str> = finals2.iter().map(String::as_str).collect();
    let cur2: Vec<BTreeSet<String>> = finals2.iter().map(|f| principals(f)).collect();
    let third = distribute(&refs2, &cur2, &desired, &sk, &o).expect("plan");
    assert_eq!(third.roles, again.roles);
}

#[test]
fn a_member_named_by_two_roles_is_kept_by_the_first_only_and_case_is_ignored() {
    let o = opts(2048);
    let a = base_doc(&[user(1), user(2)]);
    let b = shard_document(&shard_skeleton(&a, SID), &users(2..4), &o).expect("doc");
    let upper = a.replace("engineer-00001", "ENGINEER-00001");
    let current = vec![principals(&upper), principals(&b)];
    let sk = shard_skeleton(&a, SID);
    let d = distribute(&[&upper, &b], &current, &users(1..4), &sk, &o).expect("plan");
    assert_eq!(d.roles[0], users(1..3));
    assert_eq!(d.roles[1], users(3..4));
}

#[test]
fn non_members_are_never_placed() {
    let o = opts(2048);
    let doc = base_doc(&[user(1), user(2)]);
    let sk = shard_skeleton(&doc, SID);
    let d = distribute(&[&doc], &[principals(&doc)], &users(2..3), &sk, &o).expect("plan");
    assert_eq!(d.roles, vec![users(2..3)]);
    let d = distribute(&[&doc], &[principals(&doc)], &BTreeSet::new(), &sk, &o).expect("plan");
    assert_eq!(d.roles, vec![BTreeSet::new()]);
}

#[test]
fn one_event_goes_to_the_first_role_with_room() {
    let Laid {
        o,
        sk,
        all,
        mut current,
        ..
    } = laid_out(200);
    let base = all[0].clone();
    assert_eq!(
        place_one(&base, &current, &sk, &user(5), &o).expect("ok"),
        Placement::Trusted,
        "already in"
    );
    let upper: UserArn = user(5)
        .as_str()
        .replace("engineer", "ENGINEER")
        .parse()
        .expect("arn");
    assert_eq!(
        place_one(&base, &current, &sk, &upper, &o).expect("ok"),
        Placement::Trusted,
        "case ignored"
    );
    // Newcomers go to the last shard filled (the first with room), then to the spare,
    // until it is full too; each placement's members, built, is within the quota.
    let spare = current.len() - 2;
    assert!(current[spare + 1].is_empty(), "the spare is empty");
    let mut j = 900;
    let mut last = spare - 1;
    loop {
        let at = match place_one(&base, &current, &sk, &user(j), &o).expect("ok") {
            Placement::NewShard => break,
            Placement::Shard { index, members } => {
                let doc = shard_document(&sk, &members, &o).expect("within the quota");
                assert!(policy_size_chars(&doc) <= 2048);
                assert_eq!(
                    principals(&doc).len(),
                    current[index + 1].len() + 1,
                    "the shard's members and the newcomer"
                );
                index
            }
            other => panic!("user {j}: {other:?}"),
        };
        if at == spare {
            last = spare;
        }
        assert_eq!(at, last, "user {j}");
        current[at + 1].insert(user(j).to_string());
        j += 1;
    }
    assert!(j > 900, "the last shard had room");
    assert_eq!(
        last, spare,
        "the spare took the newcomers past the last shard"
    );
    // The shard full: one more member would not fit it.
    let mut over: BTreeSet<UserArn> = current[spare + 1]
        .iter()
        .map(|p| p.parse().expect("arn"))
        .collect();
    over.insert(user(j));
    assert!(shard_document(&sk, &over, &o).is_err(), "full");
    // A member leaving shard 2 frees the first place.
    let victim = current[2]
        .iter()
        .next()
        .cloned()
        .expect("shard 2 has members");
    current[2].remove(&victim);
    assert!(matches!(
        place_one(&base, &current, &sk, &user(j), &o).expect("ok"),
        Placement::Shard { index: 1, .. }
    ));
}

#[test]
fn the_tier_role_with_room_takes_the_newcomer_first() {
    let o = opts(2048);
    let base = base_doc(&[user(1)]);
    let sk = shard_skeleton(&base, SID);
    let current = vec![principals(&base), BTreeSet::new()];
    assert_eq!(
        place_one(&base, &current, &sk, &user(2), &o).expect("ok"),
        Placement::TierRole
    );
}

#[test]
fn shard_sizes_are_the_sizes_of_the_documents_built() {
    // With and without the session-name condition, on a skeleton with an MFA
    // condition, for 0 to 40 members of varied lengths.
    for require in [true, false] {
        let o = TrustOptions {
            require_session_name: require,
            ..opts(usize::MAX)
        };
        let sk = shard_skeleton(&base_doc(&[]), SID);
        let sizes = ShardSizes::new(&sk, &user(0), &o).expect("sizes");
        let mut members = BTreeSet::new();
        for i in 0..40 {
            let built = shard_document(&sk, &members, &o).expect("doc");
            let chars = members.iter().map(|m: &UserArn| m.as_str().len()).sum();
            assert_eq!(
                sizes.size(members.len(), chars),
                policy_size_chars(&built),
                "{built}"
            );
            let name = format!(
                "arn:aws:iam::123456789012:user/{}/u{i}",
                "p".repeat(i % 7 + 1)
            );
            members.insert(name.parse().expect("arn"));
        }
    }
}

#[test]
fn a_quota_too_small_for_one_member_is_an_error_not_a_loop() {
    let o = opts(150);
    let doc = base_doc(&[]);
    let sk = shard_skeleton(&doc, SID);
    let e = distribute(&[&doc], &[BTreeSet::new()], &users(0..3), &sk, &o).expect_err("too small");
    assert!(
        matches!(
            e,
            TrustPolicyError::QuotaExceeded {
                users_that_fit: 0,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn a_sharded_tier_keeps_one_empty_spare_and_no_more() {
    let Laid {
        o,
        sk,
        d,
        all,
        mut current,
    } = laid_out(100);
    assert_eq!(d.new_shards.last(), Some(&BTreeSet::new()), "a spare");
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    // Nothing changed: the spare is kept, no second one is made.
    let again = distribute(&refs, &current, &users(0..100), &sk, &o).expect("plan");
    assert!(again.new_shards.is_empty(), "{:?}", again.new_shards);
    assert!(again.roles.last().is_some_and(BTreeSet::is_empty));
    // A newcomer took the spare: the next full run makes another one.
    let spare = current.len() - 1;
    current[spare].insert(user(500).to_string());
    let mut docs = all.clone();
    docs[spare] = shard_document(&sk, &users(500..501), &o).expect("doc");
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let mut desired = users(0..100);
    desired.insert(user(500));
    let next = distribute(&refs, &current, &desired, &sk, &o).expect("plan");
    assert_eq!(next.new_shards, vec![BTreeSet::new()], "a new spare");
    assert_eq!(next.roles[spare], users(500..501), "the newcomer stays");
}

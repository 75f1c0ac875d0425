//! Unit tests of `accessentry`.

use super::*;

fn admin() -> AdminMapping {
    AdminMapping {
        role_arn: "arn:aws:iam::123456789012:role/teams/EksAdmin"
            .parse()
            .unwrap(),
        username: "admin:{{AccessKeyID}}:{{SessionName}}".into(),
        groups: vec!["system:masters".into(), "eks-admins".into()],
    }
}

fn entry(arn: &str, groups: &[&str], policies: &[(&str, &str)]) -> AccessEntryView {
    AccessEntryView {
        principal_arn: arn.into(),
        username: Some("admin:{{AccessKeyID}}:{{SessionName}}".into()),
        kubernetes_groups: groups.iter().map(|s| s.to_string()).collect(),
        policies: policies
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        policy_namespaces: Default::default(),
        created_at: None,
    }
}

fn at(s: &str) -> Option<Timestamp> {
    Some(s.parse().unwrap())
}

#[test]
fn creates_entry_with_full_arn_and_no_reserved_groups() {
    let p = plan_access_entries(&[], &admin(), &[], None);
    let c = p.create_admin_entry.clone().unwrap();
    assert_eq!(
        c.principal_arn,
        "arn:aws:iam::123456789012:role/teams/EksAdmin"
    );
    assert_eq!(c.kubernetes_groups, vec!["eks-admins"]);
    assert_eq!(
        c.username.as_deref(),
        Some("admin:{{AccessKeyID}}:{{SessionName}}")
    );
    assert!(p.associate_admin_policy);
    assert!(!p.is_empty());
}

#[test]
fn existing_entry_in_order_is_a_no_op() {
    let cur = [entry(
        "arn:aws:iam::123456789012:role/teams/EksAdmin",
        &["eks-admins"],
        &[(CLUSTER_ADMIN_POLICY, "cluster")],
    )];
    let p = plan_access_entries(&cur, &admin(), &[], None);
    assert!(p.is_empty(), "{p:?}");
}

#[test]
fn matches_without_path_and_updates_groups_and_policy() {
    let cur = [entry(
        "arn:aws:iam::123456789012:role/EKSADMIN",
        &["old"],
        &[(CLUSTER_ADMIN_POLICY, "namespace")],
    )];
    let p = plan_access_entries(&cur, &admin(), &[], None);
    assert!(p.create_admin_entry.is_none());
    let u = p.update_admin_entry.unwrap();
    assert_eq!(u.principal_arn, "arn:aws:iam::123456789012:role/EKSADMIN");
    assert_eq!(u.kubernetes_groups, vec!["eks-admins"]);
    assert!(u.username.is_none());
    assert!(p.associate_admin_policy);
}

#[test]
fn reserved_username_is_dropped() {
    let mut a = admin();
    a.username = "system:admin".into();
    a.groups = vec!["system:masters".into()];
    let p = plan_access_entries(&[], &a, &[], None);
    let c = p.create_admin_entry.unwrap();
    assert_eq!(c.username, None);
    assert!(c.kubernetes_groups.is_empty());
    for r in ["system:x", "EKS:x", "aws:x", "amazon:x", "iam:x"] {
        assert!(is_reserved(r));
    }
    assert!(!is_reserved("admin:x"));
}

#[test]
fn deletes_offboarded_user_entries() {
    let cur = [
        entry(
            "arn:aws:iam::123456789012:role/teams/EksAdmin",
            &["eks-admins"],
            &[(CLUSTER_ADMIN_POLICY, "cluster")],
        ),
        entry("arn:aws:iam::123456789012:user/eng/dave", &[], &[]),
        entry("arn:aws:iam::123456789012:user/erin", &[], &[]),
        entry("arn:aws:iam::123456789012:role/dave", &[], &[]),
    ];
    let off = [Offboarded::Name {
        account: "123456789012".parse().unwrap(),
        name: "Dave".parse().unwrap(),
    }];
    let p = plan_access_entries(&cur, &admin(), &off, None);
    assert_eq!(
        p.delete_entries,
        vec!["arn:aws:iam::123456789012:user/eng/dave"]
    );
    let off = [Offboarded::Arn(
        "arn:aws:iam::123456789012:user/erin".parse().unwrap(),
    )];
    let p = plan_access_entries(&cur, &admin(), &off, None);
    assert_eq!(
        p.delete_entries,
        vec!["arn:aws:iam::123456789012:user/erin"]
    );
}

#[test]
fn an_entry_older_than_the_role_is_deleted_and_made_again() {
    // Made without the path, before the role was deleted and re-created.
    let mut old = entry(
        "arn:aws:iam::123456789012:role/EksAdmin",
        &["eks-admins"],
        &[(CLUSTER_ADMIN_POLICY, "cluster")],
    );
    old.created_at = at("2026-03-01T10:00:00.250Z");
    let user = entry("arn:aws:iam::123456789012:user/dave", &[], &[]);
    let cur = [old, user];
    let off = [Offboarded::Name {
        account: "123456789012".parse().unwrap(),
        name: "dave".parse().unwrap(),
    }];
    let p = plan_access_entries(&cur, &admin(), &off, at("2026-03-02T08:00:00Z"));
    let stale = p.recreate_admin_entry.clone().expect("stale entry");
    assert_eq!(
        stale.principal_arn,
        "arn:aws:iam::123456789012:role/EksAdmin"
    );
    assert_eq!(
        stale.to_string(),
        "re-create access entry of arn:aws:iam::123456789012:role/EksAdmin: the role was \
         re-created after the entry (entry 2026-03-01T10:00:00.25Z < role 2026-03-02T08:00:00Z)"
    );
    let c = p.create_admin_entry.clone().expect("made again");
    assert_eq!(
        c.principal_arn,
        "arn:aws:iam::123456789012:role/teams/EksAdmin"
    );
    assert_eq!(c.kubernetes_groups, vec!["eks-admins"]);
    assert_eq!(
        c.username.as_deref(),
        Some("admin:{{AccessKeyID}}:{{SessionName}}")
    );
    assert!(p.associate_admin_policy, "the new entry has no policy");
    assert!(p.update_admin_entry.is_none());
    assert_eq!(
        p.delete_entries,
        vec!["arn:aws:iam::123456789012:user/dave"]
    );
    assert!(!p.is_empty());
    // The plan as JSON names both times.
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(
        json["recreateAdminEntry"]["roleCreatedAt"],
        "2026-03-02T08:00:00Z"
    );
    let back: AccessEntryPlan = serde_json::from_value(json).unwrap();
    assert_eq!(back, p);
}

#[test]
fn an_entry_made_for_the_role_or_of_unknown_age_is_kept() {
    let mut e = entry(
        "arn:aws:iam::123456789012:role/teams/EksAdmin",
        &["eks-admins"],
        &[(CLUSTER_ADMIN_POLICY, "cluster")],
    );
    // IAM reports whole seconds: a role made at 08:00:00.9 reads 08:00:00, and an
    // entry made 50 ms later (same second) is the role's.
    e.created_at = at("2026-03-02T08:00:00.950Z");
    let role = at("2026-03-02T08:00:00Z");
    assert!(plan_access_entries(&[e.clone()], &admin(), &[], role).is_empty());
    // Exactly the same time is not earlier.
    e.created_at = role;
    assert!(plan_access_entries(&[e.clone()], &admin(), &[], role).is_empty());
    // One millisecond earlier is.
    e.created_at = at("2026-03-01T23:59:59.999Z");
    let p = plan_access_entries(&[e.clone()], &admin(), &[], at("2026-03-02T00:00:00Z"));
    assert!(p.recreate_admin_entry.is_some(), "{p:?}");
    // Unknown times never trigger it.
    assert!(plan_access_entries(&[e.clone()], &admin(), &[], None).is_empty());
    e.created_at = None;
    assert!(plan_access_entries(&[e], &admin(), &[], role).is_empty());
}

#[test]
fn timestamps_parse_order_and_print_as_rfc3339() {
    let a: Timestamp = "2026-11-29T20:29:15.516319Z".parse().unwrap();
    let b = Timestamp::from_unix_nanos(a.unix_nanos() + 1).unwrap();
    assert!(a < b);
    assert_eq!(a.to_string(), "2026-11-29T20:29:15.516319Z");
    assert!("yesterday".parse::<Timestamp>().is_err());
    assert!(serde_json::from_str::<Timestamp>("\"2026-13-01T00:00:00Z\"").is_err());
}

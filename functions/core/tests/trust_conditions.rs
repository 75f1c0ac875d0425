//! The trust-policy editor: the administrator's conditions, actions, other principals
//! and wildcards in our statement.

use std::collections::BTreeSet;

use eks_access_sync::policy::trust::{PrincipalChange, TrustPolicyError, edit_trust_policy};
use pretty_assertions::assert_eq;
use serde_json::json;

use crate::trust_support::*;

/// Issue 3 §5: the administrator's conditions, actions and other fields in our
/// statement are theirs; only `Principal.AWS` is ours.
#[test]
fn conditions_actions_and_other_fields_of_our_statement_are_kept() {
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Sid":"EksAccessSyncAdmins","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":["sts:AssumeRole","sts:TagSession"],"Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"},"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}},"X-Note":"ask platform"}]}"#;
    let kept = |after: &str| {
        let s = ours(after);
        assert_eq!(s["Action"], json!(["sts:AssumeRole", "sts:TagSession"]));
        assert_eq!(
            s["Condition"]["Bool"],
            json!({"aws:MultiFactorAuthPresent": "true"})
        );
        assert_eq!(
            s["Condition"]["IpAddress"],
            json!({"aws:SourceIp": "203.0.113.0/24"})
        );
        assert_eq!(s["X-Note"], "ask platform");
        s
    };
    // Nothing to do: nothing written (the conditions are not "changes").
    let same =
        edit_trust_policy(doc, &PrincipalChange::Set([user("alice")].into()), &opts()).unwrap();
    assert_eq!(
        same.after, None,
        "a document with our principals is left alone"
    );
    // A new user: only the principals change.
    let e = edit_trust_policy(doc, &PrincipalChange::Add(user("bob")), &opts()).unwrap();
    let after = e.after.unwrap();
    let s = kept(&after);
    assert_eq!(
        s["Principal"]["AWS"],
        json!([
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:iam::123456789012:user/bob"
        ])
    );
    let keys: Vec<&String> = s.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "Sid",
            "Effect",
            "Principal",
            "Action",
            "Condition",
            "X-Note"
        ]
    );
    // The session-name condition joins theirs, and leaves again without touching them.
    let mut on = opts();
    on.require_session_name = true;
    let e = edit_trust_policy(&after, &PrincipalChange::Add(user("bob")), &on).unwrap();
    let with = e.after.unwrap();
    let s = kept(&with);
    assert_eq!(
        s["Condition"]["StringEquals"],
        json!({"sts:RoleSessionName": "${aws:username}"})
    );
    let e = edit_trust_policy(&with, &PrincipalChange::Add(user("bob")), &opts()).unwrap();
    let without = e.after.unwrap();
    let s = kept(&without);
    assert_eq!(s["Condition"].as_object().unwrap().len(), 2, "{s}");
    assert_eq!(
        without, after,
        "off again: back to the administrator's statement"
    );
}

#[test]
fn session_name_condition_shares_string_equals_with_other_keys() {
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Sid":"EksAccessSyncAdmins","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:PrincipalTag/team":"platform"}}}]}"#;
    let mut on = opts();
    on.require_session_name = true;
    let e = edit_trust_policy(doc, &PrincipalChange::Add(user("alice")), &on).unwrap();
    let after = e.after.unwrap();
    assert_eq!(
        ours(&after)["Condition"],
        json!({"StringEquals": {"aws:PrincipalTag/team": "platform",
                                "sts:RoleSessionName": "${aws:username}"}})
    );
    let e = edit_trust_policy(&after, &PrincipalChange::Add(user("alice")), &opts()).unwrap();
    assert_eq!(e.after.as_deref(), Some(doc));
}

#[test]
fn service_and_federated_principals_in_our_statement_are_kept() {
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Sid":"EksAccessSyncAdmins","Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com","AWS":"arn:aws:iam::123456789012:user/alice","Federated":"cognito-identity.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let e = edit_trust_policy(doc, &PrincipalChange::Add(user("bob")), &opts()).unwrap();
    let p = ours(&e.after.unwrap())["Principal"].clone();
    assert_eq!(p["Service"], "ec2.amazonaws.com");
    assert_eq!(p["Federated"], "cognito-identity.amazonaws.com");
    assert_eq!(p["AWS"].as_array().unwrap().len(), 2);
    let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["Service", "AWS", "Federated"]);
    // No user left: our statement stays for the other principals, without `AWS`.
    let e = edit_trust_policy(doc, &PrincipalChange::Set(BTreeSet::new()), &opts()).unwrap();
    let s = ours(&e.after.unwrap());
    assert_eq!(
        s["Principal"],
        json!({"Service": "ec2.amazonaws.com", "Federated": "cognito-identity.amazonaws.com"})
    );
    assert_eq!(s["Effect"], "Allow");
    assert_eq!(e.removed, vec!["arn:aws:iam::123456789012:user/alice"]);
}

#[test]
fn a_wildcard_in_our_statement_is_removed_and_reported() {
    let alice = r#""arn:aws:iam::123456789012:user/alice""#;
    for principal in [
        r#""*""#.to_owned(),
        r#"{"AWS":"*"}"#.to_owned(),
        format!(r#"{{"AWS":["*",{alice}]}}"#),
    ] {
        let doc = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"EksAccessSyncAdmins","Effect":"Allow","Principal":{principal},"Action":"sts:AssumeRole"}}]}}"#
        );
        for change in [
            PrincipalChange::Add(user("bob")),
            PrincipalChange::Set([user("bob")].into()),
        ] {
            let e = edit_trust_policy(&doc, &change, &opts()).unwrap();
            assert!(e.wildcard_removed, "{principal} {change:?}");
            assert!(
                e.removed.iter().any(|r| r == "*"),
                "{principal}: {:?}",
                e.removed
            );
            let after = e.after.expect("the wildcard must go");
            assert!(!after.contains(r#""*""#), "{after}");
            assert!(
                ours(&after)["Principal"]["AWS"]
                    .to_string()
                    .contains("user/bob"),
                "{after}"
            );
        }
    }
    let clean = edit_trust_policy(
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"EksAccessSyncAdmins","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/bob"},"Action":"sts:AssumeRole"}]}"#,
        &PrincipalChange::Add(user("bob")),
        &opts(),
    )
    .unwrap();
    assert!(!clean.wildcard_removed);
}

#[test]
fn not_principal_in_our_statement_is_refused() {
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Sid":"EksAccessSyncAdmins","Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::123456789012:user/mallory"},"Action":"sts:AssumeRole"}]}"#;
    let err = edit_trust_policy(doc, &PrincipalChange::Add(user("bob")), &opts()).unwrap_err();
    assert!(
        matches!(&err, TrustPolicyError::NotPrincipalInManaged { sid } if sid == SID),
        "{err:?}"
    );
    assert!(err.to_string().contains("NotPrincipal"), "{err}");
}

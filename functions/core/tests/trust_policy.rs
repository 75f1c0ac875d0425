//! Table-driven tests of the trust-policy editor (issue 2 §2).

use std::collections::BTreeSet;

use eks_access_sync::model::arn::UserArn;
use eks_access_sync::policy::trust::{
    PrincipalChange, TrustOptions, TrustPolicyError, decode_policy_document, edit_trust_policy,
    managed_principals, policy_size_chars, trusted_user_count,
};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::trust_support::*;

#[test]
fn foreign_statements_survive_and_ours_is_appended() {
    let doc = foreign_doc();
    let e = edit_trust_policy(&doc, &PrincipalChange::Add(user("dave")), &opts()).unwrap();
    let after = e.after.clone().expect("must write");
    let (before_s, after_s) = (statements(&doc), statements(&after));
    assert_eq!(after_s.len(), 5);
    assert_eq!(&after_s[..4], &before_s[..]);
    // Key order kept too.
    let keys: Vec<&String> = after_s[1].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["Effect", "Principal", "Action", "Condition", "X-Unknown"]
    );
    assert_eq!(
        after_s[4],
        json!({"Sid": SID, "Effect": "Allow",
               "Principal": {"AWS": "arn:aws:iam::123456789012:user/dave"},
               "Action": "sts:AssumeRole"})
    );
    assert_eq!(e.added, vec![user("dave")]);
    assert_eq!(e.foreign_dangling, vec!["AIDAOLDFOREIGNUSER123"]);
    assert!(e.dangling_removed.is_empty());
    assert_eq!(e.size_after, policy_size_chars(&after));
    assert!(e.size_after > e.size_before);
    // Doing it again changes nothing.
    let again = edit_trust_policy(&after, &PrincipalChange::Add(user("dave")), &opts()).unwrap();
    assert_eq!(again.after, None);
    assert!(!again.changed());
    assert_eq!(again.foreign_dangling, vec!["AIDAOLDFOREIGNUSER123"]);
}

#[test]
fn single_string_principal_becomes_sorted_list_and_back() {
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Sid":"EksAccessSyncAdmins","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/zed"},"Action":"sts:AssumeRole"}]}"#;
    let e = edit_trust_policy(doc, &PrincipalChange::Add(user("alice")), &opts()).unwrap();
    let after = e.after.unwrap();
    assert_eq!(
        ours(&after)["Principal"]["AWS"],
        json!([
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:iam::123456789012:user/zed"
        ])
    );
    let e = edit_trust_policy(&after, &PrincipalChange::RemoveArn(user("alice")), &opts()).unwrap();
    assert_eq!(e.after.as_deref(), Some(doc));
    assert_eq!(e.removed, vec!["arn:aws:iam::123456789012:user/alice"]);
}

#[test]
fn canonical_document_is_not_rewritten_even_with_other_whitespace() {
    let set: BTreeSet<UserArn> = [user("bob"), user("alice")].into();
    let doc = r#"{
        "Version": "2012-10-17",
        "Statement": [ { "Sid": "EksAccessSyncAdmins", "Effect": "Allow",
            "Principal": { "AWS": [ "arn:aws:iam::123456789012:user/alice",
                                    "arn:aws:iam::123456789012:user/bob" ] },
            "Action": "sts:AssumeRole" } ]
    }"#;
    let e = edit_trust_policy(doc, &PrincipalChange::Set(set.clone()), &opts()).unwrap();
    assert_eq!(e.after, None);
    assert!(e.added.is_empty() && e.removed.is_empty());
    // Unsorted principals are a change (to the sorted form).
    let unsorted = doc
        .replace("user/alice", "user/TMP")
        .replace("user/bob", "user/alice")
        .replace("user/TMP", "user/bob");
    let e = edit_trust_policy(&unsorted, &PrincipalChange::Set(set), &opts()).unwrap();
    assert!(e.changed());
    assert!(e.added.is_empty() && e.removed.is_empty());
}

#[test]
fn dangling_ids_dropped_from_ours_reported_in_foreign() {
    let doc = r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"Legacy","Effect":"Allow","Principal":{"AWS":["AIDAXQJ2KXNMOLDUSER1","arn:aws:iam::123456789012:role/ci"]},"Action":"sts:AssumeRole"},
        {"Sid":"EksAccessSyncAdmins","Effect":"Allow","Principal":{"AWS":["AIDAXQJ2KXNMDAVE7EXMP","arn:aws:iam::123456789012:user/alice"]},"Action":"sts:AssumeRole"}]}"#;
    let e = edit_trust_policy(doc, &PrincipalChange::Set([user("alice")].into()), &opts()).unwrap();
    assert_eq!(e.dangling_removed, vec!["AIDAXQJ2KXNMDAVE7EXMP"]);
    assert_eq!(e.foreign_dangling, vec!["AIDAXQJ2KXNMOLDUSER1"]);
    assert!(e.removed.is_empty());
    let after = e.after.unwrap();
    assert_eq!(statements(&after)[0], statements(doc)[0]);
    assert_eq!(
        ours(&after)["Principal"]["AWS"],
        json!("arn:aws:iam::123456789012:user/alice")
    );
}

#[test]
fn remove_by_name_in_any_path_and_case() {
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Sid":"EksAccessSyncAdmins","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:user/eng/Dave","arn:aws:iam::123456789012:user/alice","arn:aws:iam::123456789012:user/davey"]},"Action":"sts:AssumeRole"}]}"#;
    let e = edit_trust_policy(
        doc,
        &PrincipalChange::RemoveName {
            account: "123456789012".parse().unwrap(),
            name: "dave".parse().unwrap(),
        },
        &opts(),
    )
    .unwrap();
    assert_eq!(e.removed, vec!["arn:aws:iam::123456789012:user/eng/Dave"]);
    let after = e.after.unwrap();
    // Removing someone absent from a canonical document is a no-op.
    let noop = edit_trust_policy(
        &after,
        &PrincipalChange::RemoveName {
            account: "123456789012".parse().unwrap(),
            name: "zoe".parse().unwrap(),
        },
        &opts(),
    )
    .unwrap();
    assert_eq!(noop.after, None);
    assert_eq!(
        managed_principals(&after, SID).unwrap(),
        [
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:iam::123456789012:user/davey"
        ]
        .map(String::from)
        .into()
    );
    let e = edit_trust_policy(
        doc,
        &PrincipalChange::RemoveArn("arn:aws:iam::123456789012:user/ALICE".parse().unwrap()),
        &opts(),
    )
    .unwrap();
    assert_eq!(e.removed, vec!["arn:aws:iam::123456789012:user/alice"]);
}

/// Defect 2: `DeleteUser` of `fz9` in one account leaves another account's `fz9`.
#[test]
fn remove_by_name_keeps_another_accounts_user_of_that_name() {
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Sid":"EksAccessSyncAdmins","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:user/fz9","arn:aws:iam::999988887777:user/fz9"]},"Action":"sts:AssumeRole"}]}"#;
    let e = edit_trust_policy(
        doc,
        &PrincipalChange::RemoveName {
            account: "123456789012".parse().unwrap(),
            name: "FZ9".parse().unwrap(),
        },
        &opts(),
    )
    .unwrap();
    assert_eq!(e.removed, vec!["arn:aws:iam::123456789012:user/fz9"]);
    assert_eq!(
        managed_principals(&e.after.unwrap(), SID).unwrap(),
        ["arn:aws:iam::999988887777:user/fz9"]
            .map(String::from)
            .into()
    );
}

#[test]
fn empty_set_removes_our_statement_or_leaves_a_deny_placeholder() {
    let with_foreign = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"},{"Sid":"EksAccessSyncAdmins","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"sts:AssumeRole"}]}"#;
    let e = edit_trust_policy(
        with_foreign,
        &PrincipalChange::Set(BTreeSet::new()),
        &opts(),
    )
    .unwrap();
    let after = e.after.unwrap();
    assert_eq!(statements(&after), statements(with_foreign)[..1].to_vec());

    let only_ours = r#"{"Version":"2012-10-17","Statement":[{"Sid":"EksAccessSyncAdmins","Effect":"Allow","Principal":{"AWS":"arn:aws-cn:iam::210987654321:user/alice"},"Action":"sts:AssumeRole"}]}"#;
    let e = edit_trust_policy(
        only_ours,
        &PrincipalChange::RemoveName {
            account: "210987654321".parse().unwrap(),
            name: "alice".parse().unwrap(),
        },
        &opts(),
    )
    .unwrap();
    let after = e.after.unwrap();
    assert_eq!(
        statements(&after),
        vec![json!({"Sid": SID, "Effect": "Deny",
                    "Principal": {"AWS": "arn:aws-cn:iam::210987654321:root"},
                    "Action": "sts:AssumeRole"})]
    );
    // The placeholder is stable, and replaced once someone is added.
    let again = edit_trust_policy(&after, &PrincipalChange::Set(BTreeSet::new()), &opts()).unwrap();
    assert_eq!(again.after, None);
    let back = edit_trust_policy(&after, &PrincipalChange::Add(user("bob")), &opts()).unwrap();
    let back = back.after.unwrap();
    assert_eq!(ours(&back)["Effect"], "Allow");
    assert_eq!(
        ours(&back)["Principal"]["AWS"],
        "arn:aws:iam::123456789012:user/bob"
    );
    assert!(managed_principals(&after, SID).unwrap().is_empty());

    // Only dangling IDs: no ARN to take the account from.
    let dangling_only = r#"{"Version":"2012-10-17","Statement":[{"Sid":"EksAccessSyncAdmins","Effect":"Allow","Principal":{"AWS":"AIDAXQJ2KXNMDAVE7EXMP"},"Action":"sts:AssumeRole"}]}"#;
    let err = edit_trust_policy(
        dangling_only,
        &PrincipalChange::Set(BTreeSet::new()),
        &opts(),
    )
    .unwrap_err();
    assert_eq!(err, TrustPolicyError::NoAccount);
    let role = "arn:aws:iam::123456789012:role/EksAdmin".parse().unwrap();
    let e = edit_trust_policy(
        dangling_only,
        &PrincipalChange::Set(BTreeSet::new()),
        &opts().with_role(&role),
    )
    .unwrap();
    assert_eq!(
        ours(&e.after.unwrap())["Principal"]["AWS"],
        "arn:aws:iam::123456789012:root"
    );
    assert_eq!(e.dangling_removed, vec!["AIDAXQJ2KXNMDAVE7EXMP"]);
}

#[test]
fn session_name_condition_follows_the_option() {
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Sid":"EksAccessSyncAdmins","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"sts:AssumeRole","Condition":{"StringLike":{"sts:RoleSessionName":"*"}}}]}"#;
    let mut o = opts();
    o.require_session_name = true;
    let e = edit_trust_policy(doc, &PrincipalChange::Add(user("alice")), &o).unwrap();
    let after = e.after.unwrap();
    assert_eq!(
        ours(&after)["Condition"],
        json!({"StringEquals": {"sts:RoleSessionName": "${aws:username}"}})
    );
    assert_eq!(
        edit_trust_policy(&after, &PrincipalChange::Add(user("alice")), &o)
            .unwrap()
            .after,
        None
    );
    let off = edit_trust_policy(&after, &PrincipalChange::Add(user("alice")), &opts()).unwrap();
    assert_eq!(ours(&off.after.unwrap()).get("Condition"), None);
}

fn users(n: usize) -> BTreeSet<UserArn> {
    (0..n).map(|i| user(&format!("engineer{i:03}"))).collect()
}

#[test]
fn quota_one_short_and_one_past() {
    let base = foreign_doc();
    for n in [1usize, 5, 30] {
        let unlimited = TrustOptions {
            max_chars: usize::MAX,
            ..opts()
        };
        let fit = edit_trust_policy(&base, &PrincipalChange::Set(users(n)), &unlimited).unwrap();
        let size_n = fit.size_after;
        // Exactly at the quota: allowed.
        let at = TrustOptions {
            max_chars: size_n,
            ..opts()
        };
        let e = edit_trust_policy(&base, &PrincipalChange::Set(users(n)), &at).unwrap();
        assert!(e.size_after <= at.max_chars);
        // One user more: refused, and it says how many fit.
        let err = edit_trust_policy(&base, &PrincipalChange::Set(users(n + 1)), &at).unwrap_err();
        match &err {
            TrustPolicyError::QuotaExceeded {
                size,
                max,
                users,
                users_that_fit,
            } => {
                assert!(size > max);
                assert_eq!(*max, size_n);
                assert_eq!(*users, n + 1);
                assert_eq!(*users_that_fit, n);
            }
            other => panic!("{other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(&format!("{n} would fit")), "{msg}");
        assert!(
            msg.contains("L-C07B4B0D") && msg.contains("TRUST_POLICY_MAX_CHARS"),
            "{msg}"
        );
    }
}

#[test]
fn size_counts_no_whitespace_outside_strings() {
    assert_eq!(policy_size_chars(r#"{ "a" : "b c" }"#), 11);
    assert_eq!(policy_size_chars(r#"{"a":"b\" c"}"#), 13);
    let doc = foreign_doc();
    let minified = serde_json::to_string(&serde_json::from_str::<Value>(&doc).unwrap()).unwrap();
    assert_eq!(policy_size_chars(&doc), minified.chars().count());
}

#[test]
fn url_encoded_input_and_bad_documents() {
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let encoded: String =
        percent_encoding::utf8_percent_encode(doc, percent_encoding::NON_ALPHANUMERIC).to_string();
    assert_eq!(decode_policy_document(&encoded).unwrap(), doc);
    assert_eq!(decode_policy_document(doc).unwrap(), doc);
    let e = edit_trust_policy(&encoded, &PrincipalChange::Add(user("a")), &opts()).unwrap();
    assert_eq!(e.before, doc);

    for (bad, want) in [
        ("{not json", "not valid JSON"),
        ("[1]", "not a policy"),
        (r#"{"Version":"2012-10-17"}"#, "Statement"),
        (r#"{"Statement":"x"}"#, "neither a list"),
        (r#"{"Statement":[1]}"#, "statement 0"),
        ("hello", "not a policy"),
    ] {
        let err = edit_trust_policy(bad, &PrincipalChange::Add(user("a")), &opts()).unwrap_err();
        assert!(err.to_string().contains(want), "{bad}: {err}");
    }
}

#[test]
fn single_statement_object_is_kept_as_object_when_unchanged() {
    let doc = r#"{"Version":"2012-10-17","Statement":{"Sid":"EksAccessSyncAdmins","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"sts:AssumeRole"}}"#;
    let e = edit_trust_policy(doc, &PrincipalChange::Add(user("alice")), &opts()).unwrap();
    assert_eq!(e.after, None);
    let e = edit_trust_policy(doc, &PrincipalChange::Add(user("bob")), &opts()).unwrap();
    let v: Value = serde_json::from_str(&e.after.unwrap()).unwrap();
    assert!(v["Statement"]["Principal"]["AWS"].is_array());
}

#[test]
fn duplicate_own_statements_are_merged() {
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Sid":"EksAccessSyncAdmins","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"sts:AssumeRole"},{"Sid":"Other","Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"},{"Sid":"EksAccessSyncAdmins","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/bob"},"Action":"sts:AssumeRole"}]}"#;
    assert_eq!(managed_principals(doc, SID).unwrap().len(), 2);
    let e = edit_trust_policy(doc, &PrincipalChange::Add(user("carol")), &opts()).unwrap();
    let s = statements(&e.after.unwrap());
    assert_eq!(s.len(), 2);
    assert_eq!(s[0]["Principal"]["AWS"].as_array().unwrap().len(), 3);
    assert_eq!(s[1]["Sid"], "Other");
}

#[test]
fn trusted_user_count_counts_the_managed_users() {
    let e =
        edit_trust_policy(&foreign_doc(), &PrincipalChange::Set(users(3)), &opts()).expect("edit");
    let after = e.after.expect("changed");
    assert_eq!(trusted_user_count(&after, SID), Some(3));
    assert_eq!(trusted_user_count(&foreign_doc(), SID), Some(0));
    assert_eq!(trusted_user_count("not json", SID), None);
}

//! Table-driven tests of the trust-policy editor (issue 2 §2).

use std::collections::BTreeSet;

use eks_access_sync::model::arn::UserArn;
use eks_access_sync::policy::trust::{
    PrincipalChange, TrustOptions, TrustPolicyError, decode_policy_document, edit_trust_policy,
    managed_principals, policy_size_chars,
};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

const SID: &str = "EksAccessSyncAdmins";

fn opts() -> TrustOptions {
    TrustOptions {
        sid: SID.into(),
        max_chars: 2048,
        require_session_name: false,
        account_fallback: None,
    }
}

fn user(name: &str) -> UserArn {
    format!("arn:aws:iam::123456789012:user/{name}")
        .parse()
        .unwrap()
}

fn statements(doc: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(doc).unwrap();
    match &v["Statement"] {
        Value::Array(a) => a.clone(),
        o => vec![o.clone()],
    }
}

fn ours(doc: &str) -> Value {
    statements(doc)
        .into_iter()
        .find(|s| s["Sid"] == SID)
        .unwrap_or(Value::Null)
}

/// Pretty-printed, as a person (or the console) writes it.
fn foreign_doc() -> String {
    serde_json::to_string_pretty(&json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Ec2",
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole"
            },
            {
                "Effect": "Allow",
                "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/*:ref:refs/heads/main"}},
                "X-Unknown": [1, {"b": null}]
            },
            {
                "Sid": "Anyone",
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}
            },
            {
                "Sid": "NotThem",
                "Effect": "Deny",
                "NotPrincipal": {"AWS": ["arn:aws:iam::123456789012:root", "AIDAOLDFOREIGNUSER123"]},
                "Action": "sts:AssumeRole"
            }
        ]
    }))
    .unwrap()
}

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
            msg.contains("L-C07B4B0D") && msg.contains("aws:PrincipalTag"),
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

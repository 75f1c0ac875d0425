//! Property tests on generated documents:
//! - every statement / entry we do not own survives any operation, with the
//!   same values in the same relative order;
//! - edit then edit again is a no-op;
//! - a written trust policy never exceeds the quota.

use std::collections::{BTreeMap, BTreeSet};

use eks_access_sync::model::arn::{RoleArn, UserArn, UserName};
use eks_access_sync::policy::trust::{
    PrincipalChange, TrustOptions, TrustPolicyError, edit_trust_policy, policy_size_chars,
};
use eks_access_sync::{
    model::mapping::{AdminMapping, Offboarded},
    policy::awsauth::{edit_aws_auth, parse_entries, render_yaml_list},
};
use proptest::prelude::*;
use serde_json::{Value, json};

const SID: &str = "EksAccessSyncAdmins";
const ACCT: &str = "123456789012";

fn user_names() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "alice", "bob", "carol", "dave", "Dave", "erin", "frank", "grace.h", "ivan+ops",
    ])
    .prop_map(str::to_string)
}

fn user_arn() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["/", "/eng/", "/eng/sre/"]),
        user_names(),
    )
        .prop_map(|(p, n)| format!("arn:aws:iam::{ACCT}:user{p}{n}"))
}

fn dangling() -> impl Strategy<Value = String> {
    "A(IDA|ROA)[A-Z0-9]{16}"
}

fn principal_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("*")),
        user_arn().prop_map(|a| json!({"AWS": a})),
        prop::collection::vec(
            prop_oneof![
                user_arn(),
                dangling(),
                Just(format!("arn:aws:iam::{ACCT}:root"))
            ],
            1..4
        )
        .prop_map(|v| json!({"AWS": v})),
        prop::sample::select(vec!["ec2.amazonaws.com", "lambda.amazonaws.com"])
            .prop_map(|s| json!({"Service": s})),
        Just(json!({"Federated": format!("arn:aws:iam::{ACCT}:saml-provider/Okta")})),
    ]
}

fn foreign_statement() -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop::sample::select(vec![
            "Ec2", "Ci", "Legacy", "Sso", "Other1",
        ])),
        prop::bool::ANY,
        principal_value(),
        prop::bool::ANY,
        prop::option::of(Just(
            json!({"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}),
        )),
        prop::option::of(any::<u8>()),
    )
        .prop_map(|(sid, allow, principal, not, cond, extra)| {
            let mut m = serde_json::Map::new();
            if let Some(s) = sid {
                m.insert("Sid".into(), json!(s));
            }
            m.insert("Effect".into(), json!(if allow { "Allow" } else { "Deny" }));
            m.insert(
                if not { "NotPrincipal" } else { "Principal" }.into(),
                principal,
            );
            m.insert("Action".into(), json!(["sts:AssumeRole", "sts:TagSession"]));
            if let Some(c) = cond {
                m.insert("Condition".into(), c);
            }
            if let Some(x) = extra {
                m.insert("X-Extra".into(), json!(x));
            }
            Value::Object(m)
        })
}

fn our_statement() -> impl Strategy<Value = Value> {
    prop::collection::vec(prop_oneof![3 => user_arn(), 1 => dangling()], 1..6).prop_map(|v| {
        let aws = if v.len() == 1 { json!(v[0]) } else { json!(v) };
        json!({"Sid": SID, "Effect": "Allow", "Principal": {"AWS": aws}, "Action": "sts:AssumeRole"})
    })
}

fn trust_doc() -> impl Strategy<Value = Value> {
    (prop::collection::vec(foreign_statement(), 0..4), prop::option::of((our_statement(), any::<prop::sample::Index>())))
        .prop_map(|(mut stmts, ours)| {
            if let Some((o, idx)) = ours {
                let at = idx.index(stmts.len() + 1);
                stmts.insert(at, o);
            }
            if stmts.is_empty() {
                stmts.push(json!({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}));
            }
            json!({"Version": "2012-10-17", "Statement": stmts})
        })
}

fn change() -> impl Strategy<Value = PrincipalChange> {
    let ua = || user_arn().prop_map(|a| a.parse::<UserArn>().unwrap());
    prop_oneof![
        prop::collection::btree_set(ua(), 0..8).prop_map(PrincipalChange::Set),
        ua().prop_map(PrincipalChange::Add),
        ua().prop_map(PrincipalChange::RemoveArn),
        user_names().prop_map(|n| PrincipalChange::RemoveName {
            account: ACCT.parse().unwrap(),
            name: n.parse::<UserName>().unwrap(),
        }),
    ]
}

fn foreign(doc: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(doc).unwrap();
    let stmts = match &v["Statement"] {
        Value::Array(a) => a.clone(),
        o => vec![o.clone()],
    };
    stmts.into_iter().filter(|s| s["Sid"] != SID).collect()
}

fn admin() -> AdminMapping {
    AdminMapping {
        role_arn: "arn:aws:iam::123456789012:role/teams/EksAdmin"
            .parse()
            .unwrap(),
        username: "admin:{{AccessKeyID}}:{{SessionName}}".into(),
        groups: vec!["system:masters".into()],
    }
}

fn is_admin(e: &Value) -> bool {
    let arn = e
        .as_object()
        .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case("rolearn")))
        .and_then(|(_, v)| v.as_str())
        .and_then(|s| s.parse::<RoleArn>().ok());
    arn.is_some_and(|a| a.eq_ignoring_path_and_case(&admin().role_arn))
}

fn role_entry() -> impl Strategy<Value = Value> {
    let foreign = (
        prop::sample::select(vec!["node", "ci", "EksAdminX", "ops", "windows-node"]),
        prop::sample::select(vec![
            "system:node:{{EC2PrivateDNSName}}",
            "ci",
            "yes",
            "{{SessionName}}",
            "a: b",
        ]),
        prop::collection::vec(
            prop::sample::select(vec![
                "system:nodes",
                "system:bootstrappers",
                "eks:kube-proxy-windows",
                "view",
                "123",
            ]),
            0..3,
        ),
        prop::option::of(any::<i32>()),
    )
        .prop_map(|(r, u, g, extra)| {
            let mut m = serde_json::Map::new();
            m.insert(
                "rolearn".into(),
                json!(format!("arn:aws:iam::{ACCT}:role/{r}")),
            );
            m.insert("username".into(), json!(u));
            m.insert("groups".into(), json!(g));
            if let Some(x) = extra {
                m.insert("x-extra".into(), json!(x));
            }
            Value::Object(m)
        });
    let sso = Just(
        json!({"sso": {"permissionSetName": "ReadOnly", "accountID": ACCT}, "username": "sso", "groups": ["view"]}),
    );
    let admin_variant = (
        prop::sample::select(vec!["EksAdmin", "eksadmin", "teams/EksAdmin", "x/EKSADMIN"]),
        prop::sample::select(vec!["rolearn", "RoleArn"]),
        prop::sample::select(vec!["admin:{{AccessKeyID}}:{{SessionName}}", "old"]),
    )
        .prop_map(|(n, key, u)| json!({key: format!("arn:aws:iam::{ACCT}:role/{n}"), "username": u, "groups": ["system:masters"]}));
    prop_oneof![4 => foreign, 1 => sso, 2 => admin_variant]
}

fn user_entry() -> impl Strategy<Value = Value> {
    (user_arn(), prop::option::of(any::<bool>())).prop_map(|(a, extra)| {
        let mut v = json!({"userarn": a, "username": "u", "groups": ["view"]});
        if let Some(x) = extra {
            v["x-extra"] = json!(x);
        }
        v
    })
}

fn offboarded() -> impl Strategy<Value = Vec<Offboarded>> {
    prop::collection::vec(
        prop_oneof![
            user_arn().prop_map(|a| Offboarded::Arn(a.parse().unwrap())),
            user_names().prop_map(|n| Offboarded::Name {
                account: ACCT.parse().unwrap(),
                name: n.parse().unwrap(),
            }),
        ],
        0..3,
    )
}

fn matches_any(off: &[Offboarded], e: &Value) -> bool {
    e["userarn"]
        .as_str()
        .is_some_and(|a| off.iter().any(|o| o.matches(a)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn trust_edit_keeps_foreign_is_idempotent_and_within_quota(
        doc in trust_doc(),
        change in change(),
        max in 250usize..1500,
        require in any::<bool>(),
        pretty in any::<bool>(),
    ) {
        let text = if pretty { serde_json::to_string_pretty(&doc).unwrap() } else { doc.to_string() };
        let role: RoleArn = "arn:aws:iam::123456789012:role/EksAdmin".parse().unwrap();
        let opts = TrustOptions { sid: SID.into(), max_chars: max, require_session_name: require, account_fallback: None }.with_role(&role);
        match edit_trust_policy(&text, &change, &opts) {
            Ok(e) => {
                let result = e.after.clone().unwrap_or_else(|| e.before.clone());
                prop_assert_eq!(foreign(&result), foreign(&text));
                if let Some(after) = &e.after {
                    prop_assert!(policy_size_chars(after) <= max);
                    prop_assert_eq!(policy_size_chars(after), e.size_after);
                }
                let again = edit_trust_policy(&result, &change, &opts).unwrap();
                prop_assert_eq!(again.after, None);
                prop_assert!(again.added.is_empty() && again.removed.is_empty() && again.dangling_removed.is_empty());
            }
            Err(TrustPolicyError::QuotaExceeded { size, max: m, users, users_that_fit }) => {
                prop_assert!(size > m);
                // With no managed users left, the statements we do not own are
                // what exceeds the quota: nothing would fit.
                prop_assert!(users_that_fit < users || (users == 0 && users_that_fit == 0));
            }
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }

    #[test]
    fn aws_auth_edit_keeps_foreign_and_is_idempotent(
        roles in prop::collection::vec(role_entry(), 0..6),
        users in prop::option::of(prop::collection::vec(user_entry(), 0..5)),
        off in offboarded(),
        json_roles in any::<bool>(),
    ) {
        let mut data = BTreeMap::new();
        let roles_text = if json_roles { serde_json::to_string(&roles).unwrap() } else { render_yaml_list("mapRoles", &roles).unwrap() };
        data.insert("mapRoles".to_string(), roles_text);
        if let Some(u) = &users {
            data.insert("mapUsers".to_string(), render_yaml_list("mapUsers", u).unwrap());
        }
        data.insert("mapAccounts".to_string(), "- \"123456789012\"\n".to_string());
        let e = edit_aws_auth(Some(&data), &admin(), &off).unwrap();

        let after_roles = parse_entries("mapRoles", &e.data["mapRoles"]).unwrap();
        let keep = |v: &Vec<Value>| v.iter().filter(|x| !is_admin(x)).cloned().collect::<Vec<_>>();
        prop_assert_eq!(keep(&after_roles), keep(&roles));
        let admins: Vec<&Value> = after_roles.iter().filter(|x| is_admin(x)).collect();
        prop_assert_eq!(admins.len(), 1);
        // Field names match case-insensitively (Go's encoding/json); the key's spelling is kept.
        let arn = admins[0].as_object().unwrap().iter().find(|(k, _)| k.eq_ignore_ascii_case("rolearn")).map(|(_, v)| v.clone());
        prop_assert_eq!(arn, Some(json!("arn:aws:iam::123456789012:role/EksAdmin")));
        // The admin entry sits where the first admin entry was.
        if let Some(first) = roles.iter().position(is_admin) {
            prop_assert!(is_admin(&after_roles[first]));
        }
        prop_assert_eq!(&e.data["mapAccounts"], &data["mapAccounts"]);
        if let Some(u) = &users {
            let after_users = parse_entries("mapUsers", &e.data["mapUsers"]).unwrap();
            let want: Vec<Value> = u.iter().filter(|x| !matches_any(&off, x)).cloned().collect();
            prop_assert_eq!(after_users, want);
        }
        let keys: BTreeSet<&String> = e.data.keys().collect();
        prop_assert_eq!(keys, data.keys().collect::<BTreeSet<_>>());
        if !e.changed() {
            prop_assert_eq!(&e.data, &data);
        }
        let again = edit_aws_auth(Some(&e.data), &admin(), &off).unwrap();
        prop_assert!(!again.changed(), "{:?}", again.changes);
        prop_assert_eq!(again.data, e.data);
    }
}

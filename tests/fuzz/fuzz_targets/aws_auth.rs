//! Arbitrary `mapRoles`/`mapUsers`/`mapAccounts` text -> `edit_aws_auth`.
//!
//! Input: one control byte, then the values of `mapRoles`, `mapUsers`,
//! `mapAccounts` and an unrelated key, separated by NUL bytes. The control byte
//! picks which keys exist (or no ConfigMap at all), the admin role (with or
//! without a path) and the offboarded users.
//!
//! Invariants when the edit succeeds:
//! - every key but `mapRoles`/`mapUsers` is byte-for-byte unchanged, no key is
//!   lost, and only `mapRoles` may be added; a key is rewritten only with a change;
//! - the admin mapping (rolearn without path, username, groups) is present exactly
//!   once, and the sandbox's model of aws-iam-authenticator maps the admin role to
//!   it; no offboarded user is left in `mapUsers`;
//! - a second edit of the output is a no-op.
#![no_main]

use std::collections::BTreeMap;

use eks_access_sync::model::arn::RoleArn;
use eks_access_sync::{model::mapping::{AdminMapping, Offboarded}, policy::awsauth::{MAP_ROLES, MAP_USERS, edit_aws_auth, parse_entries}};
use eks_access_sync_fuzz::{nul_fields, role_arn, user_arn, user_name};
use eks_sandbox::kube::parse_aws_auth;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const KEYS: [&str; 4] = [MAP_ROLES, MAP_USERS, "mapAccounts", "other"];

fn field<'a>(entry: &'a Value, name: &str) -> Option<&'a Value> {
    entry
        .as_object()?
        .iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn is_admin(entry: &Value, admin: &RoleArn) -> bool {
    let Some(arn) = field(entry, "rolearn").and_then(Value::as_str) else {
        return false;
    };
    let arn = arn.trim();
    match arn.parse::<RoleArn>() {
        Ok(r) => r.eq_ignoring_path_and_case(admin),
        Err(_) => arn.eq_ignore_ascii_case(admin.without_path().as_str()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctrl, rest)) = data.split_first() else {
        return;
    };
    let fields = nul_fields(rest, KEYS.len());
    let mut map = BTreeMap::new();
    for (i, (k, v)) in KEYS.iter().zip(&fields).enumerate() {
        // Bits 1..=4: key i absent.
        if ctrl & (2 << i) == 0 {
            map.insert((*k).to_string(), v.clone());
        }
    }
    let data = (ctrl & 1 == 0).then_some(&map);
    let pick = rest.len();
    let admin = AdminMapping {
        role_arn: role_arn(usize::from(ctrl >> 5) % 2 + (pick % 3) * 2),
        username: "admin:{{AccessKeyID}}:{{SessionName}}".into(),
        groups: vec!["system:masters".into()],
    };
    let offboarded: Vec<Offboarded> = match ctrl >> 6 {
        0 => vec![],
        1 => vec![Offboarded::Arn(user_arn(pick))],
        2 => vec![Offboarded::Name {
                account: "123456789012".parse().expect("account"),
                name: user_name(pick),
            }],
        _ => vec![
            Offboarded::Arn(user_arn(pick)),
            Offboarded::Name {
                account: "123456789012".parse().expect("account"),
                name: user_name(pick / 8),
            },
        ],
    };
    let Ok(edit) = edit_aws_auth(data, &admin, &offboarded) else {
        return;
    };
    let input = data.cloned().unwrap_or_default();

    // Untouched keys, byte for byte.
    for (k, v) in &input {
        let out = edit.data.get(k).unwrap_or_else(|| panic!("key {k} lost"));
        if (k != MAP_ROLES && k != MAP_USERS) || !edit.changed() {
            assert_eq!(out, v, "key {k} changed");
        }
    }
    for k in edit.data.keys() {
        assert!(input.contains_key(k) || k == MAP_ROLES, "key {k} added");
    }
    if offboarded.is_empty() {
        assert_eq!(
            edit.data.get(MAP_USERS),
            input.get(MAP_USERS),
            "mapUsers changed"
        );
    }

    // The admin mapping, exactly once, as configured.
    let roles_text = edit.data.get(MAP_ROLES).cloned().unwrap_or_default();
    let roles = parse_entries(MAP_ROLES, &roles_text)
        .unwrap_or_else(|e| panic!("rewritten mapRoles does not parse: {e}\n{roles_text}"));
    let admins: Vec<&Value> = roles
        .iter()
        .filter(|e| is_admin(e, &admin.role_arn))
        .collect();
    assert_eq!(
        admins.len(),
        1,
        "admin mapping not exactly once:\n{roles_text}"
    );
    let want_arn = admin.role_arn.without_path().to_string();
    assert_eq!(
        field(admins[0], "rolearn").and_then(Value::as_str),
        Some(want_arn.as_str())
    );
    assert_eq!(
        field(admins[0], "username").and_then(Value::as_str),
        Some(admin.username.as_str())
    );
    let groups: Option<Vec<&str>> = field(admins[0], "groups")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect());
    assert_eq!(groups, Some(vec!["system:masters"]));

    // What aws-iam-authenticator (the sandbox's model of it) reads.
    let auth = parse_aws_auth(&edit.data);
    let mapped = auth.roles.get(&want_arn.to_ascii_lowercase());
    assert!(
        mapped.is_some_and(|m| m.username == admin.username && m.groups == admin.groups),
        "the authenticator does not map the admin role as configured: {mapped:?}\n{roles_text}\nproblems: {:?}",
        auth.problems
    );

    // Offboarded users are gone from mapUsers.
    if !offboarded.is_empty()
        && let Some(text) = edit.data.get(MAP_USERS)
        && let Ok(users) = parse_entries(MAP_USERS, text)
    {
        for u in &users {
            if let Some(a) = field(u, "userarn").and_then(Value::as_str) {
                assert!(
                    !offboarded.iter().any(|o| o.matches(a)),
                    "offboarded {a} still mapped"
                );
            }
        }
    }

    // A second edit is a no-op.
    let again = edit_aws_auth(Some(&edit.data), &admin, &offboarded)
        .unwrap_or_else(|e| panic!("second edit failed: {e}"));
    assert!(
        !again.changed(),
        "second edit not a no-op: {:?}\n{roles_text}",
        again.changes
    );
    assert_eq!(again.data, edit.data);
});

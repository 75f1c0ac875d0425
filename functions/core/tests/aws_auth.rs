//! Table-driven tests of the aws-auth editor (issue 2 §3), on documents as
//! EKS, eksctl and people actually write them.

use eks_access_sync::{
    model::mapping::Offboarded,
    policy::awsauth::{AwsAuthChange, AwsAuthError, edit_aws_auth, render_yaml_list},
};
use pretty_assertions::assert_eq;
use serde_json::json;

use crate::aws_auth_support::*;

#[test]
fn admin_added_others_untouched_then_no_op() {
    for roles in [NODE_ROLES, MIXED_ROLES] {
        let input = data(&[
            ("mapRoles", roles),
            ("mapUsers", MAP_USERS),
            ("mapAccounts", MAP_ACCOUNTS),
            ("other", "  free text: [\n"),
        ]);
        let e = edit_aws_auth(Some(&input), &admin(), &[]).unwrap();
        assert!(!e.created);
        assert_eq!(
            e.changes,
            vec![AwsAuthChange::AdminRoleAdded {
                rolearn: "arn:aws:iam::123456789012:role/EksAdmin".into()
            }]
        );
        for k in ["mapUsers", "mapAccounts", "other"] {
            assert_eq!(e.data[k], input[k], "{k} must stay byte-for-byte");
        }
        let before = entries(roles);
        let after = entries(&e.data["mapRoles"]);
        assert_eq!(&after[..before.len()], &before[..]);
        assert_eq!(after[before.len()], canonical_admin());
        // Field order of entries we do not own is kept.
        let keys: Vec<&String> = after[before.len() - 1]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        let want: Vec<&String> = before[before.len() - 1]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(keys, want);
        // Second run: nothing to do, data equal to the input exactly.
        let again = edit_aws_auth(Some(&e.data), &admin(), &[]).unwrap();
        assert!(!again.changed(), "{:?}", again.changes);
        assert_eq!(again.data, e.data);
    }
}

#[test]
fn emitted_yaml_parses_back_to_the_same_entries() {
    let tricky = json!([
        {"rolearn": "arn:aws:iam::123456789012:role/x", "username": "{{SessionName}}", "groups": ["yes", "no", "null", "123"]},
        {"sso": {"permissionSetName": "A", "accountID": "123456789012"}, "username": "true", "groups": []},
        {"rolearn": "arn:aws:iam::123456789012:role/y", "username": "a: b # c", "extra": 7, "flag": true, "empty": ""},
    ]);
    let list = tricky.as_array().unwrap().clone();
    let text = render_yaml_list("mapRoles", &list).unwrap();
    assert!(text.ends_with('\n'));
    assert!(!text.starts_with("---"));
    assert_eq!(entries(&text), list, "rendered:\n{text}");
    assert_eq!(render_yaml_list("mapUsers", &[]).unwrap(), "[]\n");
    // The admin entry in the block style eksctl writes.
    assert_eq!(
        render_yaml_list("mapRoles", &[canonical_admin()]).unwrap(),
        "- rolearn: arn:aws:iam::123456789012:role/EksAdmin\n  username: admin:{{AccessKeyID}}:{{SessionName}}\n  groups:\n  - system:masters\n"
    );
    assert!(entries("[]\n").is_empty());
}

#[test]
fn already_canonical_is_byte_for_byte() {
    let roles = format!(
        "{NODE_ROLES}- rolearn: arn:aws:iam::123456789012:role/EksAdmin\n  username: admin:{{{{AccessKeyID}}}}:{{{{SessionName}}}}\n  groups:\n    - system:masters\n"
    );
    let input = data(&[("mapRoles", &roles), ("mapUsers", MAP_USERS)]);
    let e = edit_aws_auth(
        Some(&input),
        &admin(),
        &[Offboarded::Name {
            account: "123456789012".parse().unwrap(),
            name: "zoe".parse().unwrap(),
        }],
    )
    .unwrap();
    assert!(!e.changed(), "{:?}", e.changes);
    assert_eq!(e.data, input);
}

#[test]
fn duplicates_path_and_case_collapse_into_first_position() {
    let roles = "- rolearn: arn:aws:iam::123456789012:role/teams/EKSADMIN
  username: old
  groups:
    - system:masters
  userid: AROAXQJ2KXNMADMIN001
- rolearn: arn:aws:iam::123456789012:role/prod-ng-NodeInstanceRole-1GLZL5HOE7H2
  username: system:node:{{EC2PrivateDNSName}}
  groups:
    - system:bootstrappers
    - system:nodes
- RoleARN: arn:aws:iam::123456789012:role/EksAdmin
  username: admin:{{AccessKeyID}}:{{SessionName}}
  groups:
    - system:masters
";
    let mut a = admin();
    a.role_arn = "arn:aws:iam::123456789012:role/teams/EksAdmin"
        .parse()
        .unwrap();
    let e = edit_aws_auth(Some(&data(&[("mapRoles", roles)])), &a, &[]).unwrap();
    let after = entries(&e.data["mapRoles"]);
    assert_eq!(after.len(), 2);
    assert_eq!(
        after[0],
        json!({"rolearn": "arn:aws:iam::123456789012:role/EksAdmin",
               "username": "admin:{{AccessKeyID}}:{{SessionName}}",
               "groups": ["system:masters"],
               "userid": "AROAXQJ2KXNMADMIN001"})
    );
    assert_eq!(after[1], entries(roles)[1]);
    let lines: Vec<String> = e.changes.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        lines,
        vec![
            "mapRoles: tier role rolearn: arn:aws:iam::123456789012:role/teams/EKSADMIN -> arn:aws:iam::123456789012:role/EksAdmin",
            "mapRoles: tier role username: old -> admin:{{AccessKeyID}}:{{SessionName}}",
            "mapRoles: remove 1 duplicate tier role mapping(s)",
        ]
    );
    let again = edit_aws_auth(Some(&e.data), &a, &[]).unwrap();
    assert!(!again.changed());
}

#[test]
fn json_map_roles_is_accepted() {
    let roles = r#"[{"rolearn":"arn:aws:iam::123456789012:role/ci","username":"ci","groups":["deployers"]}]"#;
    let e = edit_aws_auth(Some(&data(&[("mapRoles", roles)])), &admin(), &[]).unwrap();
    let after = entries(&e.data["mapRoles"]);
    assert_eq!(after, vec![entries(roles)[0].clone(), canonical_admin()]);
    // JSON that already holds the admin: left exactly as is.
    let full = r#"[{"rolearn":"arn:aws:iam::123456789012:role/EksAdmin","username":"admin:{{AccessKeyID}}:{{SessionName}}","groups":["system:masters"]}]"#;
    let input = data(&[("mapRoles", full)]);
    let e = edit_aws_auth(Some(&input), &admin(), &[]).unwrap();
    assert_eq!(e.data, input);
}

#[test]
fn broken_keys_are_refused() {
    let cases = [
        (
            "mapRoles",
            "- rolearn: arn:aws:iam::123456789012:role/x\n  groups: [\n",
        ),
        ("mapRoles", "rolearn: arn:aws:iam::123456789012:role/x\n"),
        ("mapRoles", "- a\n b: c\n"),
        (
            "mapRoles",
            "- rolearn: arn:aws:iam::123456789012:role/x\n- just a string\n",
        ),
        ("mapUsers", "- userarn: [unterminated\n"),
    ];
    for (key, text) in cases {
        let input = data(&[("mapRoles", NODE_ROLES), (key, text)]);
        let off = [Offboarded::Name {
            account: "123456789012".parse().unwrap(),
            name: "dave".parse().unwrap(),
        }];
        match edit_aws_auth(Some(&input), &admin(), &off) {
            Err(AwsAuthError::Parse { key: k, message }) => {
                assert_eq!(k, key);
                assert!(!message.is_empty());
            }
            other => panic!("{key} {text:?}: expected a parse error, got {other:?}"),
        }
    }
    // A broken mapUsers is not touched (nor refused) when nobody is offboarded.
    let input = data(&[("mapRoles", NODE_ROLES), ("mapUsers", "- [broken\n")]);
    let e = edit_aws_auth(Some(&input), &admin(), &[]).unwrap();
    assert_eq!(e.data["mapUsers"], "- [broken\n");
}

#[test]
fn absent_configmap_or_key_is_created() {
    let e = edit_aws_auth(
        None,
        &admin(),
        &[Offboarded::Name {
            account: "123456789012".parse().unwrap(),
            name: "dave".parse().unwrap(),
        }],
    )
    .unwrap();
    assert!(e.created && e.changed());
    assert_eq!(e.data.keys().collect::<Vec<_>>(), vec!["mapRoles"]);
    assert_eq!(entries(&e.data["mapRoles"]), vec![canonical_admin()]);

    let input = data(&[("mapAccounts", MAP_ACCOUNTS)]);
    let e = edit_aws_auth(Some(&input), &admin(), &[]).unwrap();
    assert!(e.created);
    assert_eq!(e.data["mapAccounts"], MAP_ACCOUNTS);
    assert_eq!(entries(&e.data["mapRoles"]), vec![canonical_admin()]);

    let empty = data(&[("mapRoles", "")]);
    let e = edit_aws_auth(Some(&empty), &admin(), &[]).unwrap();
    assert!(!e.created);
    assert_eq!(entries(&e.data["mapRoles"]), vec![canonical_admin()]);
}

/// Defect 2: offboarding `fz9` of one account leaves another account's `fz9`.
#[test]
fn offboarded_by_name_only_in_its_account() {
    let users = "- userarn: arn:aws:iam::123456789012:user/fz9\n  username: a\n  groups:\n    - view\n- userarn: arn:aws:iam::999988887777:user/eng/fz9\n  username: b\n  groups:\n    - view\n";
    let input = data(&[("mapRoles", NODE_ROLES), ("mapUsers", users)]);
    let off = [Offboarded::Name {
        account: "123456789012".parse().unwrap(),
        name: "FZ9".parse().unwrap(),
    }];
    let e = edit_aws_auth(Some(&input), &admin(), &off).unwrap();
    let left: Vec<String> = entries(&e.data["mapUsers"])
        .iter()
        .map(|u| u["userarn"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left, vec!["arn:aws:iam::999988887777:user/eng/fz9"]);
    assert!(!off[0].matches("arn:aws:iam::999988887777:user/fz9"));
    assert!(off[0].matches("arn:aws:iam::123456789012:user/eng/Fz9"));
}

#[test]
fn offboarded_users_removed_by_arn_or_name() {
    let roles = render_yaml_list("mapRoles", &[canonical_admin()]).unwrap();
    let input = data(&[
        ("mapRoles", &roles),
        ("mapUsers", MAP_USERS),
        ("mapAccounts", MAP_ACCOUNTS),
    ]);
    let cases: Vec<(Vec<Offboarded>, Vec<&str>)> = vec![
        (
            vec![Offboarded::Name {
                account: "123456789012".parse().unwrap(),
                name: "DAVE".parse().unwrap(),
            }],
            vec!["alice", "davey"],
        ),
        (
            vec![Offboarded::Arn(
                "arn:aws:iam::123456789012:user/ALICE".parse().unwrap(),
            )],
            vec!["dave", "alice", "davey"][..]
                .iter()
                .filter(|u| **u != "alice")
                .copied()
                .collect(),
        ),
        (
            vec![
                Offboarded::Arn("arn:aws:iam::123456789012:user/alice".parse().unwrap()),
                Offboarded::Name {
                    account: "123456789012".parse().unwrap(),
                    name: "davey".parse().unwrap(),
                },
                Offboarded::Name {
                    account: "123456789012".parse().unwrap(),
                    name: "dave".parse().unwrap(),
                },
            ],
            vec![],
        ),
        (
            vec![Offboarded::Arn(
                "arn:aws:iam::123456789012:user/dave".parse().unwrap(),
            )],
            vec!["dave", "alice", "davey"],
        ),
    ];
    for (off, left) in cases {
        let e = edit_aws_auth(Some(&input), &admin(), &off).unwrap();
        let users = entries(&e.data["mapUsers"]);
        let names: Vec<&str> = users
            .iter()
            .map(|u| u["username"].as_str().unwrap())
            .collect();
        assert_eq!(names, left, "{off:?}");
        assert_eq!(e.data["mapRoles"], input["mapRoles"]);
        assert_eq!(e.data["mapAccounts"], MAP_ACCOUNTS);
        let removed = e
            .changes
            .iter()
            .filter(|c| matches!(c, AwsAuthChange::UserMappingRemoved { .. }))
            .count();
        assert_eq!(removed, 3 - left.len());
        if removed == 0 {
            assert_eq!(e.data, input);
        } else {
            // Kept entries are exactly the originals.
            let orig = entries(MAP_USERS);
            for u in &users {
                assert!(orig.contains(u));
            }
            assert!(e.changes.iter().any(|c| {
                c.to_string()
                    .starts_with("mapUsers: remove arn:aws:iam::123456789012:user/")
            }));
        }
    }
}

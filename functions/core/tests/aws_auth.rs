//! Table-driven tests of the aws-auth editor (issue 2 §3), on documents as
//! EKS, eksctl and people actually write them.

use std::collections::BTreeMap;

use eks_access_sync::{
    model::mapping::{AdminMapping, Offboarded},
    policy::awsauth::{
        AwsAuth, AwsAuthChange, AwsAuthError, edit_aws_auth, parse_entries, render_yaml_list,
    },
};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

fn admin() -> AdminMapping {
    AdminMapping {
        role_arn: "arn:aws:iam::123456789012:role/EksAdmin".parse().unwrap(),
        username: "admin:{{AccessKeyID}}:{{SessionName}}".into(),
        groups: vec!["system:masters".into()],
    }
}

/// What EKS writes for a managed node group (2-space, block style).
const NODE_ROLES: &str = "- groups:
  - system:bootstrappers
  - system:nodes
  rolearn: arn:aws:iam::123456789012:role/prod-ng-NodeInstanceRole-1GLZL5HOE7H2
  username: system:node:{{EC2PrivateDNSName}}
- groups:
  - system:bootstrappers
  - system:nodes
  - eks:kube-proxy-windows
  rolearn: arn:aws:iam::123456789012:role/prod-windows-NodeInstanceRole
  username: system:node:{{EC2PrivateDNSName}}
";

/// Hand-edited with 4-space nested indents, an SSO entry and extra fields.
const MIXED_ROLES: &str =
    "- rolearn: arn:aws:iam::123456789012:role/prod-ng-NodeInstanceRole-1GLZL5HOE7H2
  username: system:node:{{EC2PrivateDNSName}}
  groups:
      - system:bootstrappers
      - system:nodes
- sso:
      permissionSetName: ReadOnly
      accountID: \"123456789012\"
  username: sso-{{SessionName}}
  groups:
      - view
- rolearn: arn:aws:iam::123456789012:role/ci-deployer
  userid: AROAXQJ2KXNMCIDEPLOY1
  username: ci
  groups: [deployers]
  x-owner: \"platform\"
  note: 'yes'
";

const MAP_USERS: &str = "- userarn: arn:aws:iam::123456789012:user/eng/Dave
  username: dave
  groups:
    - system:masters
- userarn: arn:aws:iam::123456789012:user/alice
  username: alice
  groups:
    - view
- userarn: arn:aws:iam::123456789012:user/davey
  username: davey
  groups:
    - view
";

const MAP_ACCOUNTS: &str = "- \"123456789012\"\n- \"210987654321\"\n";

fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn entries(text: &str) -> Vec<Value> {
    parse_entries("test", text).unwrap()
}

fn canonical_admin() -> Value {
    json!({"rolearn": "arn:aws:iam::123456789012:role/EksAdmin",
           "username": "admin:{{AccessKeyID}}:{{SessionName}}",
           "groups": ["system:masters"]})
}

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
            "mapRoles: admin role rolearn: arn:aws:iam::123456789012:role/teams/EKSADMIN -> arn:aws:iam::123456789012:role/EksAdmin",
            "mapRoles: admin role username: old -> admin:{{AccessKeyID}}:{{SessionName}}",
            "mapRoles: remove 1 duplicate admin role mapping(s)",
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

// ---- Defect 8: entries we do not own keep their text (YAML 1.1 readers) ----

/// A node role whose groups hold scalars YAML 1.1 and 1.2 resolve differently,
/// with comments, as people write them.
const YAML11_ROLES: &str = "# managed by eksctl
- rolearn: arn:aws:iam::123456789012:role/prod-ng-NodeInstanceRole-1GLZL5HOE7H2
  username: system:node:{{EC2PrivateDNSName}}
  groups:   # odd ones
    - system:bootstrappers
    - 0o12
    - 012
    - 1e3
    - yes
    - on   # a comment
- rolearn: arn:aws:iam::123456789012:role/ci
  username: ci
  groups: [deployers, 0x1F, 1_000, 12:30, ~]
";

/// The admin entry as we write it: every value quoted, so YAML 1.1 and 1.2
/// readers both read strings.
const OURS_BLOCK: &str = "- rolearn: \"arn:aws:iam::123456789012:role/EksAdmin\"
  username: \"admin:{{AccessKeyID}}:{{SessionName}}\"
  groups:
  - \"system:masters\"
";

#[test]
fn yaml11_scalars_of_foreign_entries_keep_their_text_when_admin_is_added() {
    let input = data(&[
        ("mapRoles", YAML11_ROLES),
        (
            "mapUsers",
            "- userarn: arn:aws:iam::123456789012:user/x\n  groups: [012]\n",
        ),
        ("other", "  free text: [\n"),
    ]);
    let e = edit_aws_auth(Some(&input), &admin(), &[]).unwrap();
    // Foreign entries (and the comments) are kept as written; ours is appended.
    assert_eq!(e.data["mapRoles"], format!("{YAML11_ROLES}{OURS_BLOCK}"));
    assert_eq!(e.data["mapUsers"], input["mapUsers"]);
    assert_eq!(e.data["other"], input["other"]);
    let again = edit_aws_auth(Some(&e.data), &admin(), &[]).unwrap();
    assert!(!again.changed(), "{:?}", again.changes);
}

#[test]
fn duplicate_admin_lines_are_removed_and_nothing_else_changes() {
    let roles = format!(
        "{YAML11_ROLES}- rolearn: arn:aws:iam::123456789012:role/teams/EksAdmin
  username: old
  groups:
    - system:masters
  userid: AROAXQJ2KXNMADMIN001
# the node role again
- rolearn: arn:aws:iam::123456789012:role/windows
  username: system:node:{{{{EC2PrivateDNSName}}}}
  groups: [system:bootstrappers, system:nodes, eks:kube-proxy-windows, 012]
- RoleARN: arn:aws:iam::123456789012:role/EKSADMIN
  username: x
  groups: [on]
- rolearn: arn:aws:iam::123456789012:role/last
  username: last
  groups: [yes]
"
    );
    let e = edit_aws_auth(Some(&data(&[("mapRoles", &roles)])), &admin(), &[]).unwrap();
    let want = format!(
        "{YAML11_ROLES}- rolearn: \"arn:aws:iam::123456789012:role/EksAdmin\"
  username: \"admin:{{{{AccessKeyID}}}}:{{{{SessionName}}}}\"
  groups:
    - system:masters
  userid: AROAXQJ2KXNMADMIN001
# the node role again
- rolearn: arn:aws:iam::123456789012:role/windows
  username: system:node:{{{{EC2PrivateDNSName}}}}
  groups: [system:bootstrappers, system:nodes, eks:kube-proxy-windows, 012]
- rolearn: arn:aws:iam::123456789012:role/last
  username: last
  groups: [yes]
"
    );
    assert_eq!(e.data["mapRoles"], want);
    let again = edit_aws_auth(Some(&e.data), &admin(), &[]).unwrap();
    assert!(!again.changed(), "{:?}", again.changes);
}

#[test]
fn offboarding_removes_only_the_users_lines() {
    let users = "- userarn: arn:aws:iam::123456789012:user/keep1
  username: keep1
  groups: [0o12, 1e3]
- userarn: arn:aws:iam::123456789012:user/eng/Dave
  username: dave
  groups:
    - system:masters
# keep2 below
- userarn: arn:aws:iam::123456789012:user/keep2
  username: on
  groups:
  - 012
";
    let input = data(&[("mapRoles", OURS_BLOCK), ("mapUsers", users)]);
    let off = [Offboarded::Name {
        account: "123456789012".parse().unwrap(),
        name: "dave".parse().unwrap(),
    }];
    let e = edit_aws_auth(Some(&input), &admin(), &off).unwrap();
    assert_eq!(e.data["mapRoles"], OURS_BLOCK);
    assert_eq!(
        e.data["mapUsers"],
        "- userarn: arn:aws:iam::123456789012:user/keep1
  username: keep1
  groups: [0o12, 1e3]
# keep2 below
- userarn: arn:aws:iam::123456789012:user/keep2
  username: on
  groups:
  - 012
"
    );
}

#[test]
fn json_form_keeps_foreign_entries_text_and_crlf_is_kept() {
    let roles = "[\r\n  {\"rolearn\": \"arn:aws:iam::123456789012:role/a\", \"groups\": [012, yes]},\r\n  {\"rolearn\": \"arn:aws:iam::123456789012:role/x/EksAdmin\", \"username\": \"admin:{{AccessKeyID}}:{{SessionName}}\", \"groups\": [\"system:masters\"]},\r\n  {\"RoleArn\": \"arn:aws:iam::123456789012:role/b\", \"groups\": [1e3]}\r\n]\r\n";
    let e = edit_aws_auth(Some(&data(&[("mapRoles", roles)])), &admin(), &[]).unwrap();
    assert_eq!(
        e.data["mapRoles"],
        "[\r\n  {\"rolearn\": \"arn:aws:iam::123456789012:role/a\", \"groups\": [012, yes]},\r\n  {\"rolearn\": \"arn:aws:iam::123456789012:role/EksAdmin\", \"username\": \"admin:{{AccessKeyID}}:{{SessionName}}\", \"groups\": [\"system:masters\"]},\r\n  {\"RoleArn\": \"arn:aws:iam::123456789012:role/b\", \"groups\": [1e3]}\r\n]\r\n"
    );
    // CRLF block list: our entry uses CRLF too, the rest is kept.
    let crlf = YAML11_ROLES.replace('\n', "\r\n");
    let e = edit_aws_auth(Some(&data(&[("mapRoles", &crlf)])), &admin(), &[]).unwrap();
    assert_eq!(
        e.data["mapRoles"],
        format!("{crlf}{}", OURS_BLOCK.replace('\n', "\r\n"))
    );
}

#[test]
fn our_entry_is_quoted_when_yaml11_would_read_a_non_string() {
    // YAML 1.2 reads `yes` as the string we want; go-yaml (YAML 1.1) reads a
    // boolean and drops the whole key: the value is rewritten quoted.
    let mut a = admin();
    a.groups = vec!["yes".into(), "012".into()];
    let roles = "- rolearn: arn:aws:iam::123456789012:role/EksAdmin\n  username: admin:{{AccessKeyID}}:{{SessionName}}\n  groups: [yes, \"012\"]\n";
    let e = edit_aws_auth(Some(&data(&[("mapRoles", roles)])), &a, &[]).unwrap();
    assert!(e.changed());
    assert_eq!(
        e.data["mapRoles"],
        "- rolearn: arn:aws:iam::123456789012:role/EksAdmin\n  username: admin:{{AccessKeyID}}:{{SessionName}}\n  groups: [\"yes\", \"012\"]\n"
    );
    let again = edit_aws_auth(Some(&e.data), &a, &[]).unwrap();
    assert!(!again.changed(), "{:?}", again.changes);
}

#[test]
fn each_verb_touches_only_its_own_key() {
    let broken_roles = "- rolearn: [unclosed\n  username: x\n";
    let input = data(&[("mapRoles", broken_roles), ("mapUsers", MAP_USERS)]);
    let mut doc = AwsAuth::parse(Some(&input));
    assert_eq!(
        doc.user_arns().unwrap(),
        vec![
            "arn:aws:iam::123456789012:user/eng/Dave",
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:iam::123456789012:user/davey"
        ]
    );
    // A broken mapRoles does not block offboarding from mapUsers...
    let removed = doc
        .remove_users(&[Offboarded::Name {
            account: "123456789012".parse().unwrap(),
            name: "alice".parse().unwrap(),
        }])
        .unwrap();
    assert_eq!(removed.len(), 1);
    // ...and still blocks ensuring the admin role, with the parse refusal.
    match doc.ensure_role(&admin()) {
        Err(AwsAuthError::Parse { key, .. }) => assert_eq!(key, "mapRoles"),
        other => panic!("expected a mapRoles parse error, got {other:?}"),
    }
    assert!(!doc.created());
    assert_eq!(doc.changes(), &removed[..]);
    let out = doc.into_data();
    assert_eq!(out["mapRoles"], broken_roles);
    assert_eq!(
        out["mapUsers"],
        MAP_USERS.replace(
            "- userarn: arn:aws:iam::123456789012:user/alice\n  username: alice\n  groups:\n    - view\n",
            ""
        )
    );
}

#[test]
fn unusual_layouts_are_refused_not_reserialised() {
    // An alias into an entry we would drop: refusing beats breaking it.
    let roles = "- &dup\n  rolearn: arn:aws:iam::123456789012:role/EksAdmin\n  username: x\n- rolearn: arn:aws:iam::123456789012:role/EksAdmin\n  username: y\n";
    match edit_aws_auth(Some(&data(&[("mapRoles", roles)])), &admin(), &[]) {
        Err(AwsAuthError::Locate { key, message }) => {
            assert_eq!(key, "mapRoles");
            assert!(message.contains("anchors"), "{message}");
        }
        other => panic!("expected a locate refusal, got {other:?}"),
    }
}

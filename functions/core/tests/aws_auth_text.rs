//! The aws-auth editor keeps the text of entries it does not own (Defect 8: YAML 1.1
//! readers), and each verb touches only its own key.

use eks_access_sync::{
    model::mapping::Offboarded,
    policy::awsauth::{AwsAuth, AwsAuthError, edit_aws_auth},
};
use pretty_assertions::assert_eq;

use crate::aws_auth_support::*;

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

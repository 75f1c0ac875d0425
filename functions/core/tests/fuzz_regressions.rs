//! Regression tests for what `make fuzz` (tests/fuzz) found. Each test holds the
//! minimised input, also kept under `tests/fuzz/regressions/<target>/`.

use std::collections::BTreeMap;

use eks_access_sync::{
    model::mapping::AdminMapping,
    policy::awsauth::{edit_aws_auth, parse_entries},
};
use serde_json::Value;

fn admin() -> AdminMapping {
    AdminMapping {
        role_arn: "arn:aws:iam::123456789012:role/EksAdmin".parse().unwrap(),
        username: "admin:{{AccessKeyID}}:{{SessionName}}".into(),
        groups: vec!["system:masters".into()],
    }
}

/// An entry as aws-iam-authenticator reads it: field names match case-insensitively
/// (Go `encoding/json` after `sigs.k8s.io/yaml`), and of two spellings of one field the
/// last one wins.
fn as_authenticator_reads(entry: &Value) -> BTreeMap<String, Value> {
    entry
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect()
}

/// aws_auth target, `regressions/aws_auth/case-variant-rolearn-keys`: an entry with
/// `rolearn` (the admin role) and `ROLEARN` (another role). The editor took it for the
/// admin mapping by its first spelling and kept the second, so the authenticator,
/// which reads the last one, mapped another role with our username and groups and
/// did not map the admin role at all. Fixed by reading entries as the authenticator
/// does (the last spelling wins): that entry maps `role/x`, ours is appended. Failed
/// before the fix with
/// `the authenticator maps [] to the admin role`.
#[test]
fn admin_entry_with_a_second_spelling_of_rolearn_is_made_unambiguous() {
    let roles = "- rolearn: arn:aws:iam::123456789012:role/EksAdmin
  ROLEARN: arn:aws:iam::123456789012:role/x
  username: u
  groups: [a]
";
    let data: BTreeMap<String, String> = [("mapRoles".to_string(), roles.to_string())].into();
    let edit = edit_aws_auth(Some(&data), &admin(), &[]).unwrap();
    let entries = parse_entries("mapRoles", &edit.data["mapRoles"]).unwrap();
    let read: Vec<BTreeMap<String, Value>> = entries.iter().map(as_authenticator_reads).collect();
    let admin_arn = "arn:aws:iam::123456789012:role/EksAdmin";
    let mapped: Vec<&BTreeMap<String, Value>> = read
        .iter()
        .filter(|e| e.get("rolearn").and_then(Value::as_str) == Some(admin_arn))
        .collect();
    assert_eq!(
        mapped.len(),
        1,
        "the authenticator maps {mapped:?} to the admin role:\n{}",
        edit.data["mapRoles"]
    );
    assert_eq!(mapped[0]["username"], admin().username.as_str());
    assert_eq!(mapped[0]["groups"], serde_json::json!(["system:masters"]));
    // And the fixed output is stable.
    let again = edit_aws_auth(Some(&edit.data), &admin(), &[]).unwrap();
    assert!(!again.changed(), "{:?}", again.changes);
}

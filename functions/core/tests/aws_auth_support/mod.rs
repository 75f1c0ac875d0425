//! Documents and helpers of the aws-auth editor tests (aws_auth.rs, aws_auth_text.rs).
#![allow(dead_code, unused_imports)]

use std::collections::BTreeMap;

use eks_access_sync::{
    model::mapping::{AdminMapping, Offboarded},
    policy::awsauth::{
        AwsAuth, AwsAuthChange, AwsAuthError, edit_aws_auth, parse_entries, render_yaml_list,
    },
};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

pub fn admin() -> AdminMapping {
    AdminMapping {
        role_arn: "arn:aws:iam::123456789012:role/EksAdmin".parse().unwrap(),
        username: "admin:{{AccessKeyID}}:{{SessionName}}".into(),
        groups: vec!["system:masters".into()],
    }
}

/// What EKS writes for a managed node group (2-space, block style).
pub const NODE_ROLES: &str = "- groups:
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
pub const MIXED_ROLES: &str =
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

pub const MAP_USERS: &str = "- userarn: arn:aws:iam::123456789012:user/eng/Dave
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

pub const MAP_ACCOUNTS: &str = "- \"123456789012\"\n- \"210987654321\"\n";

pub fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn entries(text: &str) -> Vec<Value> {
    parse_entries("test", text).unwrap()
}

pub fn canonical_admin() -> Value {
    json!({"rolearn": "arn:aws:iam::123456789012:role/EksAdmin",
           "username": "admin:{{AccessKeyID}}:{{SessionName}}",
           "groups": ["system:masters"]})
}

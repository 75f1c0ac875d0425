//! Helpers of the trust-policy editor tests (trust_policy.rs, trust_conditions.rs).
#![allow(dead_code, unused_imports)]

use std::collections::BTreeSet;

use eks_access_sync::model::arn::UserArn;
use eks_access_sync::policy::trust::{
    PrincipalChange, TrustOptions, TrustPolicyError, decode_policy_document, edit_trust_policy,
    managed_principals, policy_size_chars,
};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

pub const SID: &str = "EksAccessSyncAdmins";

pub fn opts() -> TrustOptions {
    TrustOptions {
        sid: SID.into(),
        max_chars: 2048,
        require_session_name: false,
        account_fallback: None,
    }
}

pub fn user(name: &str) -> UserArn {
    format!("arn:aws:iam::123456789012:user/{name}")
        .parse()
        .unwrap()
}

pub fn statements(doc: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(doc).unwrap();
    match &v["Statement"] {
        Value::Array(a) => a.clone(),
        o => vec![o.clone()],
    }
}

pub fn ours(doc: &str) -> Value {
    statements(doc)
        .into_iter()
        .find(|s| s["Sid"] == SID)
        .unwrap_or(Value::Null)
}

/// Pretty-printed, as a person (or the console) writes it.
pub fn foreign_doc() -> String {
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

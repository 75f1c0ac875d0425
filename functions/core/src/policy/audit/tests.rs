//! Unit tests of `audit`.

use super::*;
use crate::model::tiers::AccessConfig;

const ACCOUNT: &str = "111122223333";

fn user(name: &str) -> IamUser {
    IamUser {
        arn: format!("arn:aws:iam::{ACCOUNT}:user/{name}")
            .parse()
            .unwrap(),
        name: name.parse().unwrap(),
        user_id: "AIDAEXAMPLE".into(),
        tags: Vec::new(),
        groups: Vec::new(),
    }
}

fn role(path_name: &str, trusted: &[&str]) -> (RoleArn, String) {
    let principals: Vec<Value> = trusted.iter().map(|t| Value::from(*t)).collect();
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "EksAccessSyncAdmins", "Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"AWS": principals}},
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ec2.amazonaws.com"}},
            {"Effect": "Deny", "Action": "sts:AssumeRole", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}}
        ]
    });
    (
        format!("arn:aws:iam::{ACCOUNT}:role/{path_name}")
            .parse()
            .unwrap(),
        policy.to_string(),
    )
}

fn tiers() -> Vec<Tier> {
    AccessConfig::from_yaml(
        "tiers:\n  - name: readers\n    role: eks-view\n    members: { tag: eks-access=view }\n    kubernetes: { policy: AmazonEKSViewPolicy }\n",
    )
    .unwrap()
    .tiers
}

#[test]
fn trust_policies_admit_the_allowed_aws_principals_only() {
    let (_, p) = role(
        "x",
        &[
            "arn:aws:iam::111122223333:user/erin",
            "arn:aws:iam::111122223333:root",
        ],
    );
    assert_eq!(
        trusted_principals(&p),
        [
            "arn:aws:iam::111122223333:user/erin",
            "arn:aws:iam::111122223333:root"
        ]
    );
    assert_eq!(
        trusted_principals(
            r#"{"Statement":{"Effect":"Allow","Action":["sts:*"],"Principal":"*"}}"#
        ),
        ["*"]
    );
    assert!(trusted_principals("not json").is_empty());
}

#[test]
fn aws_auth_entries_are_explained_and_dangling_ones_flagged() {
    let users = [user("erin")];
    let roles = [
        role("eks-view", &["arn:aws:iam::111122223333:user/erin"]),
        role("node-group-1", &[]),
        role(
            "aws-reserved/sso.amazonaws.com/AWSReservedSSO_PlatformAdmin_0123456789abcdef",
            &[],
        ),
    ];
    let tiers = tiers();
    let dir = Directory {
        users: &users,
        roles: &roles,
        tiers: &tiers,
    };
    let data = BTreeMap::from([
        (
            "mapRoles".to_owned(),
            format!(
                "- rolearn: arn:aws:iam::{ACCOUNT}:role/eks-view\n  username: eks-access-sync:readers:{{{{SessionName}}}}\n  groups: [eks-access-sync:readers]\n\
                 - rolearn: arn:aws:iam::{ACCOUNT}:role/node-group-1\n  username: system:node:{{{{EC2PrivateDNSName}}}}\n  groups: [system:bootstrappers, system:nodes]\n\
                 - rolearn: arn:aws:iam::{ACCOUNT}:role/AWSReservedSSO_PlatformAdmin_0123456789abcdef\n  username: sso\n  groups: [platform]\n\
                 - rolearn: arn:aws:iam::{ACCOUNT}:role/gone\n  groups: [x]\n"
            ),
        ),
        (
            "mapUsers".to_owned(),
            format!(
                "- userarn: arn:aws:iam::{ACCOUNT}:user/erin\n  groups: [viewers]\n- userarn: arn:aws:iam::{ACCOUNT}:user/left\n  groups: [viewers]\n"
            ),
        ),
        ("mapAccounts".to_owned(), "- \"444455556666\"\n".to_owned()),
    ]);
    let (grants, problems) = aws_auth_grants(&dir, &data);
    assert!(problems.is_empty(), "{problems:?}");
    let summary: Vec<(&str, &str, bool)> = grants
        .iter()
        .map(|g| {
            (
                g.principal.rsplit(['/', ':']).next().unwrap_or(""),
                g.reason.as_str(),
                g.dangling,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("eks-view", "tier readers", false),
            ("node-group-1", "node role", false),
            (
                "AWSReservedSSO_PlatformAdmin_0123456789abcdef",
                "SSO permission set PlatformAdmin",
                false
            ),
            ("gone", "role mapping", true),
            ("erin", "direct user mapping", false),
            ("left", "direct user mapping", true),
            (
                "444455556666",
                "account mapping (every principal of the account)",
                false
            ),
        ]
    );
    assert_eq!(
        grants[0].trusted,
        [format!("arn:aws:iam::{ACCOUNT}:user/erin")]
    );
    assert_eq!(grants[0].groups, ["eks-access-sync:readers"]);
}

#[test]
fn a_broken_key_is_reported_not_guessed() {
    let dir = Directory {
        users: &[],
        roles: &[],
        tiers: &[],
    };
    let data = BTreeMap::from([("mapRoles".to_owned(), "- rolearn: [unclosed\n".to_owned())]);
    let (grants, problems) = aws_auth_grants(&dir, &data);
    assert!(grants.is_empty());
    assert_eq!(problems.len(), 1, "{problems:?}");
}

#[test]
fn access_entries_show_their_policies_and_scopes() {
    let users = [user("erin")];
    let roles = [role(
        "team/eks-edit",
        &["arn:aws:iam::111122223333:user/dave"],
    )];
    let dir = Directory {
        users: &users,
        roles: &roles,
        tiers: &[],
    };
    let edit = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy".to_owned();
    let entries = [
        AccessEntryView {
            principal_arn: format!("arn:aws:iam::{ACCOUNT}:role/team/eks-edit"),
            username: None,
            kubernetes_groups: vec![],
            policies: vec![(edit.clone(), "namespace".into())],
            policy_namespaces: BTreeMap::from([(edit, vec!["team-a".into()])]),
            created_at: None,
        },
        AccessEntryView {
            principal_arn: format!("arn:aws:iam::{ACCOUNT}:user/gone"),
            username: Some("gone".into()),
            kubernetes_groups: vec![],
            policies: vec![],
            policy_namespaces: BTreeMap::new(),
            created_at: None,
        },
    ];
    let grants = access_entry_grants(&dir, &entries);
    assert_eq!(
        grants[0].policies,
        ["AmazonEKSEditPolicy (namespaces team-a)"]
    );
    assert_eq!(
        grants[0].trusted,
        [format!("arn:aws:iam::{ACCOUNT}:user/dave")]
    );
    assert!(!grants[0].dangling);
    assert!(grants[1].dangling && grants[1].reason == "direct user entry");
}

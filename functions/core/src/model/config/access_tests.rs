//! `Config` with and without `ACCESS_CONFIG`.

use super::*;
use crate::model::tiers::AccessPolicy;
use std::collections::HashMap;

fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let m: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|k| m.get(k).cloned())
}

#[test]
fn without_access_config_the_variables_make_one_admin_tier() {
    let c = cfg(&[
        ("ADMIN_ROLE_NAME", "EksAdmin"),
        ("ADMIN_USER_TAG", "team=sre"),
        ("K8S_USERNAME", "ops:{{SessionName}}"),
        ("K8S_GROUPS", "system:masters,ops"),
        ("AWS_REGION", "us-east-1"),
    ])
    .unwrap();
    let want = Tier::legacy_admin(
        "EksAdmin".parse().unwrap(),
        "team=sre".parse().unwrap(),
        "ops:{{SessionName}}".into(),
        vec!["system:masters".into(), "ops".into()],
    );
    assert_eq!(c.access.tiers, vec![want]);
    let t = &c.access.tiers[0];
    assert_eq!(t.name.as_str(), "admin");
    assert_eq!(t.members.tag.as_ref(), Some(&c.admin_user_tag));
    assert_eq!(t.clusters, None);
    assert!(t.kubernetes.is_cluster_scope() && !t.manages_bindings());
    assert_eq!(t.kubernetes.policy, AccessPolicy::ClusterAdmin);
    // defaults: today's values
    let c = cfg(&[("ADMIN_ROLE_NAME", "EksAdmin"), ("AWS_REGION", "us-east-1")]).unwrap();
    let t = &c.access.tiers[0];
    assert_eq!(t.username, DEFAULT_K8S_USERNAME);
    assert_eq!(t.groups, vec!["system:masters"]);
    assert_eq!(t.members.tag, Some(DEFAULT_ADMIN_USER_TAG.parse().unwrap()));
}

const TWO_TIERS: &str = "\
tiers:
  - name: developers
    role: eks-edit
    members: { groups: [developers] }
    kubernetes: { policy: AmazonEKSEditPolicy, namespaces: [team-a] }
  - name: readers
    role: eks-view
    members: { tag: eks-access=view }
    kubernetes: { policy: AmazonEKSViewPolicy }
";

#[test]
fn access_config_gives_the_tiers_and_needs_no_admin_role_name() {
    let c = cfg(&[("ACCESS_CONFIG", TWO_TIERS), ("AWS_REGION", "us-east-1")]).unwrap();
    let names: Vec<&str> = c.access.tiers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["developers", "readers"]);
    // the transitional fields follow the first tier
    assert_eq!(c.admin_role_name.as_str(), "eks-edit");
    assert_eq!(c.k8s_username, "eks-access-sync:developers:{{SessionName}}");
    assert_eq!(c.k8s_groups, vec!["eks-access-sync:developers"]);
    // it selects by group only: the tag stays ADMIN_USER_TAG's
    assert_eq!(c.admin_user_tag, DEFAULT_ADMIN_USER_TAG.parse().unwrap());
    // the single-tier variables are not read
    let c2 = cfg(&[
        ("ACCESS_CONFIG", TWO_TIERS),
        ("ADMIN_ROLE_NAME", "arn:aws:iam::123456789012:role/not-read"),
        ("K8S_GROUPS", " , "),
        ("AWS_REGION", "us-east-1"),
    ])
    .unwrap();
    assert_eq!(c2.access, c.access);
    // a blank ACCESS_CONFIG counts as unset
    let c3 = cfg(&[
        ("ACCESS_CONFIG", " \n"),
        ("ADMIN_ROLE_NAME", "EksAdmin"),
        ("AWS_REGION", "us-east-1"),
    ])
    .unwrap();
    assert_eq!(c3.access.tiers[0].role.as_str(), "EksAdmin");
}

#[test]
fn a_bad_access_config_names_the_variable_and_the_line() {
    let bad = TWO_TIERS.replace("AmazonEKSViewPolicy", "AmazonEKSReadPolicy");
    let err = cfg(&[("ACCESS_CONFIG", &bad), ("AWS_REGION", "us-east-1")]).unwrap_err();
    assert!(matches!(err, ConfigError::Access(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("ACCESS_CONFIG is invalid: line 9, column 27: tiers[1].kubernetes.policy"),
        "{msg}"
    );
    let unknown = TWO_TIERS.replace("members: { tag", "member: { tag");
    let msg = cfg(&[("ACCESS_CONFIG", &unknown), ("AWS_REGION", "us-east-1")])
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("ACCESS_CONFIG is invalid: line 8") && msg.contains("member"),
        "{msg}"
    );
}

#[test]
fn accounts_are_listed_with_their_regions_and_the_member_role() {
    let text = format!(
        "{TWO_TIERS}accounts:\n  - id: \"012345678901\"\n    regions: [eu-west-1, us-east-1, eu-west-1]\n  - {{ id: '210987654321' }}\n"
    );
    let c = cfg(&[
        ("ACCESS_CONFIG", text.as_str()),
        ("CLUSTER_REGIONS", "us-east-1,us-west-2"),
    ])
    .unwrap();
    let ids: Vec<&str> = c.access.accounts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["012345678901", "210987654321"]);
    assert_eq!(c.access.accounts[0].regions, ["eu-west-1", "us-east-1"]);
    assert_eq!(c.member_role.as_str(), DEFAULT_MEMBER_ROLE_NAME);
    let places: Vec<String> = c.places().iter().map(ToString::to_string).collect();
    assert_eq!(
        places,
        [
            "us-east-1",
            "us-west-2",
            "012345678901/eu-west-1",
            "012345678901/us-east-1",
            // No regions of its own: the hub's.
            "210987654321/us-east-1",
            "210987654321/us-west-2",
        ]
    );
    let c = cfg(&[
        ("ACCESS_CONFIG", text.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("MEMBER_ROLE_NAME", "org-eks-access"),
    ])
    .unwrap();
    assert_eq!(c.member_role.as_str(), "org-eks-access");
    // Without `accounts`: the hub's regions only.
    let c = cfg(&[("ACCESS_CONFIG", TWO_TIERS), ("AWS_REGION", "us-east-1")]).unwrap();
    assert!(c.access.accounts.is_empty());
    assert_eq!(c.places().len(), 1);
}

#[test]
fn a_bad_account_entry_is_refused_naming_its_line() {
    let bad = |accounts: &str| {
        let text = format!("{TWO_TIERS}accounts:\n{accounts}");
        cfg(&[
            ("ACCESS_CONFIG", text.as_str()),
            ("AWS_REGION", "us-east-1"),
        ])
        .expect_err(accounts)
        .to_string()
    };
    // TWO_TIERS is 9 lines: the first account is on line 11.
    let e = bad("  - id: \"12345\"\n");
    assert!(
        e.contains("line 11") && e.contains("accounts[0].id") && e.contains("12 digits"),
        "{e}"
    );
    let e = bad("  - id: \"111122223333\"\n  - id: \"111122223333\"\n");
    assert!(
        e.contains("line 12") && e.contains("also accounts[0]"),
        "{e}"
    );
    let e = bad("  - id: \"111122223333\"\n    regions: [Europe]\n");
    assert!(
        e.contains("line 12") && e.contains("not an AWS region"),
        "{e}"
    );
    let e = bad("  - id: \"111122223333\"\n    role: x\n");
    assert!(e.contains("role"), "{e}");
    let e = bad("  - \"111122223333\"\n");
    assert!(e.contains("line 11"), "{e}");
    let e = cfg(&[
        ("ACCESS_CONFIG", TWO_TIERS),
        ("AWS_REGION", "us-east-1"),
        ("MEMBER_ROLE_NAME", "arn:aws:iam::111122223333:role/x"),
    ])
    .expect_err("an ARN")
    .to_string();
    assert!(
        e.contains("MEMBER_ROLE_NAME") && e.contains("not its ARN"),
        "{e}"
    );
}

#[test]
fn an_unquoted_account_id_keeps_its_digits_or_is_refused() {
    // YAML reads 012345678901 as a number: the ID must not silently lose its zero.
    for id in ["012345678901", "111122223333"] {
        let text = format!("{TWO_TIERS}accounts:\n  - id: {id}\n");
        match cfg(&[
            ("ACCESS_CONFIG", text.as_str()),
            ("AWS_REGION", "us-east-1"),
        ]) {
            Ok(c) => assert_eq!(c.access.accounts[0].id.as_str(), id),
            Err(e) => assert!(e.to_string().contains("quoted"), "{e}"),
        }
    }
}

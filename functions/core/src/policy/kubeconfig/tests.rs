use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::model::cluster::AuthMode;
use crate::model::tiers::AccessConfig;

const SID: &str = "EksAccessSyncAdmins";
const ACCOUNT: &str = "123456789012";

fn user(name: &str) -> UserArn {
    format!("arn:aws:iam::{ACCOUNT}:user/{name}")
        .parse()
        .expect("user ARN")
}

fn role(path: &str, name: &str) -> RoleArn {
    format!("arn:aws:iam::{ACCOUNT}:role{path}{name}")
        .parse()
        .expect("role ARN")
}

fn name(s: &str) -> RoleName {
    s.parse().expect("role name")
}

/// A trust policy: a foreign statement, then the managed one with `aws` as
/// `Principal.AWS` and `effect`.
fn doc(sid: &str, effect: &str, aws: serde_json::Value) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "BreakGlass", "Effect": "Allow",
             "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:user/breakglass")},
             "Action": "sts:AssumeRole"},
            {"Sid": sid, "Effect": effect, "Principal": {"AWS": aws}, "Action": "sts:AssumeRole"}
        ]
    })
    .to_string()
}

fn encoded(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[test]
fn which_documents_admit_a_user() {
    let ann = user("ann");
    let ann_arn = ann.as_str();
    let cases: &[(&str, String, bool)] = &[
        (
            "a string principal",
            doc(SID, "Allow", json!(ann_arn)),
            true,
        ),
        (
            "a list principal",
            doc(SID, "Allow", json!([user("bob").as_str(), ann_arn])),
            true,
        ),
        (
            "the ARN in another case",
            doc(
                SID,
                "Allow",
                json!(ann_arn.to_uppercase().replace("ARN:AWS:IAM", "arn:aws:iam")),
            ),
            true,
        ),
        (
            "URL-encoded, as GetRole returns it",
            encoded(&doc(SID, "Allow", json!([ann_arn]))),
            true,
        ),
        (
            "someone else",
            doc(SID, "Allow", json!(user("bob").as_str())),
            false,
        ),
        (
            "a user whose name starts alike",
            doc(SID, "Allow", json!(user("anne").as_str())),
            false,
        ),
        (
            "only in a statement the tool does not own",
            doc("Other", "Allow", json!(ann_arn)),
            false,
        ),
        (
            "the managed statement denies",
            doc(SID, "Deny", json!(ann_arn)),
            false,
        ),
        ("not JSON", "{not json".to_owned(), false),
        (
            "the account root",
            doc(SID, "Allow", json!(format!("arn:aws:iam::{ACCOUNT}:root"))),
            false,
        ),
    ];
    for (what, policy, want) in cases {
        assert_eq!(admits(policy, SID, &ann), *want, "{what}");
    }
    // Another configured Sid.
    assert!(admits(
        &doc("Mine1", "Allow", json!(ann_arn)),
        "Mine1",
        &ann
    ));
    assert!(!admits(&doc(SID, "Allow", json!(ann_arn)), "Mine1", &ann));
}

#[test]
fn shard_numbers_follow_the_convention() {
    let base = name("eks-edit");
    let cases: &[(&str, &str, Option<u32>)] = &[
        (SHARD_PATH, "eks-edit-2", Some(2)),
        (SHARD_PATH, "EKS-Edit-12", Some(12)),
        (SHARD_PATH, "eks-edit-02", Some(2)),
        (SHARD_PATH, "eks-edit", None),
        (SHARD_PATH, "eks-edit-", None),
        (SHARD_PATH, "eks-edit-2a", None),
        (SHARD_PATH, "eks-edit-x", None),
        (SHARD_PATH, "eks-edits-2", None),
        (SHARD_PATH, "eks-edit-2-3", None),
        (SHARD_PATH, "eks-edit-99999999999999", None),
        (SHARD_PATH, "eks", None),
        ("/", "eks-edit-2", None),
        ("/eks-access-sync/other/", "eks-edit-2", None),
    ];
    for (path, n, want) in cases {
        assert_eq!(shard_number(&base, &role(path, n)), *want, "{path}{n}");
    }
}

#[test]
fn the_tier_role_or_the_lowest_shard_naming_the_user() {
    let base_name = name("eks-view");
    let view = |path: &str, n: &str, who: &[&str]| RoleView {
        arn: role(path, n),
        trust_policy: encoded(&doc(
            SID,
            "Allow",
            json!(who.iter().map(|w| user(w).to_string()).collect::<Vec<_>>()),
        )),
    };
    let base_with_ann = view("/", "eks-view", &["ann", "bob"]);
    let base_without = view("/", "eks-view", &["bob"]);
    let listed = vec![
        view(SHARD_PATH, "eks-view-3", &["ann"]),
        view(SHARD_PATH, "eks-edit-2", &["ann"]),
        view(SHARD_PATH, "eks-view-2", &["cid", "ANN"]),
        view(SHARD_PATH, "eks-view-4", &["dee"]),
    ];
    let pick = |base: Option<&RoleView>, listed: &[RoleView], who: &str| {
        role_for_user(&base_name, base, listed, SID, &user(who)).map(|r| r.arn.name().to_string())
    };
    // The base role admits her: shard 1 wins.
    assert_eq!(
        pick(Some(&base_with_ann), &listed, "ann").as_deref(),
        Some("eks-view")
    );
    // Not the base: the lowest shard naming her (2, though 3 names her too; the
    // eks-edit shard is another tier's).
    assert_eq!(
        pick(Some(&base_without), &listed, "ann").as_deref(),
        Some("eks-view-2")
    );
    assert_eq!(pick(None, &listed, "ann").as_deref(), Some("eks-view-2"));
    assert_eq!(pick(None, &listed, "dee").as_deref(), Some("eks-view-4"));
    // In no role of the tier.
    assert_eq!(pick(Some(&base_without), &listed, "eve"), None);
    assert_eq!(pick(None, &[], "ann"), None);
}

fn config() -> AccessConfig {
    AccessConfig::from_yaml(
        "tiers:
  - name: readers
    role: eks-view
    members: { tag: eks-access=view }
    kubernetes: { policy: AmazonEKSViewPolicy }
  - name: developers
    role: eks-edit
    members: { groups: [developers] }
    kubernetes: { policy: AmazonEKSEditPolicy, namespaces: [\"team-b-*\", team-a] }
  - name: ops
    role: eks-ops
    members: { groups: [ops] }
    kubernetes: { policy: AmazonEKSEditPolicy }
  - name: admin
    role: eks-admin
    members: { tag: eks-access=admin }
    clusters: { tag: env=prod }
    kubernetes: { policy: AmazonEKSClusterAdminPolicy }
  - name: ns-admin
    role: eks-ns-admin
    members: { groups: [leads] }
    kubernetes: { policy: AmazonEKSAdminPolicy, namespaces: [team-a] }
",
    )
    .expect("configuration")
}

fn member<'a>(cfg: &'a AccessConfig, tier: &str) -> MemberTier<'a> {
    let tier = cfg.tier(tier).expect("tier");
    MemberTier {
        tier,
        role: role("/", tier.role.as_str()),
    }
}

#[test]
fn the_widest_tier_wins() {
    let cfg = config();
    let widest = |names: &[&str]| {
        let tiers: Vec<MemberTier<'_>> = names.iter().map(|n| member(&cfg, n)).collect();
        let refs: Vec<&MemberTier<'_>> = tiers.iter().collect();
        widest_tier(&refs).map(|t| t.tier.name.to_string())
    };
    assert_eq!(widest(&[]), None);
    assert_eq!(widest(&["readers"]).as_deref(), Some("readers"));
    assert_eq!(
        widest(&["readers", "developers"]).as_deref(),
        Some("developers")
    );
    // Same policy: cluster scope beats namespaces, whatever the order.
    assert_eq!(widest(&["developers", "ops"]).as_deref(), Some("ops"));
    assert_eq!(widest(&["ops", "developers"]).as_deref(), Some("ops"));
    // The policy before the scope: admin in one namespace beats edit everywhere.
    assert_eq!(widest(&["ops", "ns-admin"]).as_deref(), Some("ns-admin"));
    assert_eq!(
        widest(&["ns-admin", "admin", "readers"]).as_deref(),
        Some("admin")
    );
    // A tie goes to the first in the configuration's order.
    let cfg2 = AccessConfig::from_yaml(
        "tiers:
  - { name: one, role: r1, members: { tag: a=b }, kubernetes: { policy: AmazonEKSViewPolicy } }
  - { name: two, role: r2, members: { tag: a=c }, kubernetes: { policy: AmazonEKSViewPolicy } }
",
    )
    .expect("configuration");
    let tiers = [member(&cfg2, "one"), member(&cfg2, "two")];
    let refs: Vec<&MemberTier<'_>> = tiers.iter().collect();
    assert_eq!(
        widest_tier(&refs).map(|t| t.tier.name.as_str()),
        Some("one")
    );
}

fn cluster(n: &str, tags: &[(&str, &str)], status: &str, endpoint: Option<&str>) -> ClusterInfo {
    ClusterInfo {
        member: None,
        name: n.parse().expect("cluster name"),
        region: "eu-west-1".into(),
        arn: format!("arn:aws:eks:eu-west-1:{ACCOUNT}:cluster/{n}"),
        endpoint: endpoint.map(str::to_owned),
        ca_pem: b"-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n".to_vec(),
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        auth_mode: AuthMode::Api,
        status: status.into(),
    }
}

#[test]
fn one_context_per_managed_cluster_with_the_widest_applying_tier() {
    let cfg = config();
    let managed = ("eks-access-sync/managed", "true");
    let clusters = vec![
        cluster(
            "prod",
            &[managed, ("env", "prod")],
            "ACTIVE",
            Some("https://prod"),
        ),
        cluster("dev", &[managed], "ACTIVE", Some("https://dev")),
        cluster("untagged", &[("env", "prod")], "ACTIVE", Some("https://u")),
        cluster("new", &[managed, ("env", "prod")], "CREATING", None),
        cluster("odd", &[managed], "ACTIVE", None),
    ];
    let tag: TagSpec = "eks-access-sync/managed=true".parse().expect("tag");
    let tiers = [member(&cfg, "developers"), member(&cfg, "admin")];
    let (planned, skipped) = plan_contexts(&clusters, &tag, &tiers);
    let got: Vec<(&str, &str, Option<&str>)> = planned
        .iter()
        .map(|p| (p.cluster.as_str(), p.tier.as_str(), p.namespace.as_deref()))
        .collect();
    // prod: admin (cluster-admin, env=prod) beats developers; dev: only developers
    // applies, starting in its first namespace that is not a wildcard.
    assert_eq!(
        got,
        vec![
            ("prod", "admin", None),
            ("dev", "developers", Some("team-a"))
        ]
    );
    let prod = &planned[0];
    assert_eq!(
        prod.name,
        format!("arn:aws:eks:eu-west-1:{ACCOUNT}:cluster/prod")
    );
    assert_eq!(prod.server, "https://prod");
    assert_eq!(prod.region, "eu-west-1");
    assert_eq!(
        prod.role.as_str(),
        format!("arn:aws:iam::{ACCOUNT}:role/eks-admin")
    );
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(&prod.ca_data)
            .expect("base64"),
        clusters[0].ca_pem
    );
    // The untagged cluster is not mentioned; the others say why.
    let reasons: Vec<(&str, &str)> = skipped
        .iter()
        .map(|s| (s.cluster.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        vec![("new", "not ACTIVE (CREATING)"), ("odd", "no endpoint yet")]
    );

    // Only the prod-only tier: dev is managed but none of the member's tiers applies.
    let (planned, skipped) = plan_contexts(&clusters, &tag, &[member(&cfg, "admin")]);
    assert_eq!(planned.len(), 1);
    assert!(
        skipped
            .iter()
            .any(|s| s.cluster.as_str() == "dev" && s.reason.contains("none of your tiers")),
        "{skipped:?}"
    );
}

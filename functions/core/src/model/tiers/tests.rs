use super::*;

/// The sample of the repository (the three tiers of the README).
const EXAMPLE: &str = include_str!("../../../../../examples/access.yaml");

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_example_file_validates_into_the_three_tiers() {
    let c = AccessConfig::from_yaml(EXAMPLE).unwrap();
    let names: Vec<&str> = c.tiers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["admin", "developers", "readers"]);
    let roles: Vec<&str> = c.roles().iter().map(|r| r.as_str()).collect();
    assert_eq!(roles, ["eks-admin", "eks-edit", "eks-view"]);

    let admin = c.tier("admin").unwrap();
    assert_eq!(admin.members.tag, Some("eks-access=admin".parse().unwrap()));
    assert!(admin.members.groups.is_empty());
    assert_eq!(admin.clusters, Some("env=prod".parse().unwrap()));
    assert_eq!(admin.kubernetes.policy, AccessPolicy::ClusterAdmin);
    assert!(admin.kubernetes.is_cluster_scope());
    assert_eq!(admin.username, "eks-access-sync:admin:{{SessionName}}");
    assert_eq!(admin.groups, ["eks-access-sync:admin"]);
    assert!(admin.manages_bindings());

    let dev = c.tier("developers").unwrap();
    assert_eq!(dev.members.tag, None);
    let groups: Vec<&str> = dev.members.groups.iter().map(|g| g.as_str()).collect();
    assert_eq!(groups, ["developers", "sre"]);
    assert_eq!(dev.clusters, None);
    assert_eq!(dev.kubernetes.policy, AccessPolicy::Edit);
    let ns: Vec<&str> = dev
        .kubernetes
        .namespaces
        .iter()
        .map(|n| n.as_str())
        .collect();
    assert_eq!(ns, ["team-a", "team-b-*"]);

    let readers = c.tier("readers").unwrap();
    assert_eq!(readers.kubernetes.policy, AccessPolicy::View);
    assert!(readers.members.tag.is_some() && readers.members.groups.len() == 1);
    assert!(c.tier("nobody").is_none());
}

#[test]
fn summaries_name_role_members_clusters_policy_and_scope() {
    let c = AccessConfig::from_yaml(EXAMPLE).unwrap();
    let lines: Vec<String> = c.tiers.iter().map(Tier::summary).collect();
    assert_eq!(
        lines,
        [
            "admin: role eks-admin; members tag eks-access=admin; clusters tagged env=prod; \
             AmazonEKSClusterAdminPolicy at cluster scope",
            "developers: role eks-edit; members groups developers, sre; every managed cluster; \
             AmazonEKSEditPolicy at namespaces team-a, team-b-*",
            "readers: role eks-view; members tag eks-access=view or groups auditors; \
             every managed cluster; AmazonEKSViewPolicy at cluster scope",
        ]
    );
}

#[test]
fn optional_keys_block_style_and_policy_arns() {
    let doc = "\
tiers:
  - name: ops
    role: Ops-Role
    members:
      tag: team=ops
    kubernetes:
      policy: arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminPolicy
      namespaces: []
      username: ops:{{SessionName}}
      groups: [system:masters, ops]
";
    let c = AccessConfig::from_yaml(doc).unwrap();
    let t = &c.tiers[0];
    assert_eq!(t.kubernetes.policy, AccessPolicy::Admin);
    assert!(t.kubernetes.is_cluster_scope());
    assert_eq!(t.username, "ops:{{SessionName}}");
    assert_eq!(t.groups, ["system:masters", "ops"]);
    assert!(!t.manages_bindings(), "the own group is not in the mapping");
    assert_eq!(t.own_group(), "eks-access-sync:ops");
}

/// Each bad document: what is wrong, the document, the line its error must name, and
/// the words the message must contain (the key, and what is wrong).
const BAD_DOCUMENTS: &[(&str, &str, u64, &[&str])] = &[
    (
        "unknown key in a tier",
        "tiers:\n  - name: a\n    role: r\n    member: { tag: k=v }\n",
        4,
        &["member"],
    ),
    (
        "unknown key in kubernetes",
        "tiers:\n  - name: a\n    role: r\n    members: { tag: k=v }\n    kubernetes: { policy: AmazonEKSViewPolicy, namespace: [x] }\n",
        5,
        &["namespace"],
    ),
    (
        "unknown top-level key",
        "tiers:\n  - name: a\n    role: r\n    members: { tag: k=v }\n    kubernetes: { policy: AmazonEKSViewPolicy }\nextra: 1\n",
        6,
        &["extra"],
    ),
    (
        "unknown policy",
        "tiers:\n  - name: a\n    role: r\n    members: { tag: k=v }\n    kubernetes:\n      policy: AmazonEKSReadPolicy\n",
        6,
        &[
            "tiers[0].kubernetes.policy",
            "AmazonEKSReadPolicy",
            "AmazonEKSViewPolicy",
        ],
    ),
    (
        "duplicate role, other case",
        "tiers:\n  - name: a\n    role: eks-view\n    members: { tag: k=v }\n    kubernetes: { policy: AmazonEKSViewPolicy }\n  - name: b\n    role: EKS-View\n    members: { tag: k=w }\n    kubernetes: { policy: AmazonEKSEditPolicy }\n",
        7,
        &["tiers[1].role", "EKS-View", "tiers[0]"],
    ),
    (
        "duplicate tier name",
        "tiers:\n  - name: a\n    role: r1\n    members: { tag: k=v }\n    kubernetes: { policy: AmazonEKSViewPolicy }\n  - name: a\n    role: r2\n    members: { tag: k=w }\n    kubernetes: { policy: AmazonEKSEditPolicy }\n",
        6,
        &["tiers[1].name", "\"a\""],
    ),
    (
        "no members selector",
        "tiers:\n  - name: a\n    role: r\n    members: {}\n    kubernetes: { policy: AmazonEKSViewPolicy }\n",
        4,
        &["tiers[0].members", "no members selector"],
    ),
    (
        "upper-case namespace",
        "tiers:\n  - name: a\n    role: r\n    members: { tag: k=v }\n    kubernetes:\n      policy: AmazonEKSViewPolicy\n      namespaces:\n        - ok\n        - Team-A\n",
        9,
        &["kubernetes.namespaces", "Team-A", "upper-case"],
    ),
    (
        "star not at the end",
        "tiers:\n  - name: a\n    role: r\n    members: { tag: k=v }\n    kubernetes: { policy: AmazonEKSViewPolicy, namespaces: [\"team-*-a\"] }\n",
        5,
        &["kubernetes.namespaces", "team-*-a", "'*'"],
    ),
    (
        "two stars",
        "tiers:\n  - name: a\n    role: r\n    members: { tag: k=v }\n    kubernetes: { policy: AmazonEKSViewPolicy, namespaces: [\"team**\"] }\n",
        5,
        &["kubernetes.namespaces", "only once"],
    ),
    (
        "namespace too long",
        concat!(
            "tiers:\n  - name: a\n    role: r\n    members: { tag: k=v }\n",
            "    kubernetes: { policy: AmazonEKSViewPolicy, namespaces: [",
            "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn", // 64
            "] }\n"
        ),
        5,
        &["kubernetes.namespaces", "1 to 63"],
    ),
    (
        "tier name not a DNS label",
        "tiers:\n  - name: Dev_Team\n    role: r\n    members: { tag: k=v }\n    kubernetes: { policy: AmazonEKSViewPolicy }\n",
        2,
        &["tiers[0].name", "Dev_Team", "tier name"],
    ),
    (
        "role given as an ARN",
        "tiers:\n  - name: a\n    role: arn:aws:iam::123456789012:role/r\n    members: { tag: k=v }\n    kubernetes: { policy: AmazonEKSViewPolicy }\n",
        3,
        &["tiers[0].role", "IAM role name"],
    ),
    (
        "members tag without '='",
        "tiers:\n  - name: a\n    role: r\n    members: { tag: admin }\n    kubernetes: { policy: AmazonEKSViewPolicy }\n",
        4,
        &[
            "tiers[0].members.tag",
            "\"admin\" is not a valid tag: expected key=value",
        ],
    ),
    (
        "bad IAM group name",
        "tiers:\n  - name: a\n    role: r\n    members:\n      groups:\n        - ok\n        - \"dev team\"\n    kubernetes: { policy: AmazonEKSViewPolicy }\n",
        7,
        &["tiers[0].members.groups", "dev team"],
    ),
    (
        "clusters without a tag",
        "tiers:\n  - name: a\n    role: r\n    members: { tag: k=v }\n    clusters: { tag: prod }\n    kubernetes: { policy: AmazonEKSViewPolicy }\n",
        5,
        &["tiers[0].clusters.tag", "\"prod\"", "key=value"],
    ),
    (
        "empty kubernetes groups",
        "tiers:\n  - name: a\n    role: r\n    members: { tag: k=v }\n    kubernetes: { policy: AmazonEKSViewPolicy, groups: [] }\n",
        5,
        &["tiers[0].kubernetes.groups", "at least one"],
    ),
    (
        "no tiers",
        "# nothing yet\ntiers: []\n",
        2,
        &["tiers", "at least one tier"],
    ),
    (
        "missing policy",
        "tiers:\n  - name: a\n    role: r\n    members: { tag: k=v }\n    kubernetes: { namespaces: [x] }\n",
        5,
        &["policy"],
    ),
    (
        "a list where a string goes",
        "tiers:\n  - name: a\n    role: [r]\n    members: { tag: k=v }\n    kubernetes: { policy: AmazonEKSViewPolicy }\n",
        3,
        &["role: "],
    ),
    (
        "a string where a list goes, in flow style",
        "tiers:\n  - name: a\n    role: r\n    members: { groups: developers }\n    kubernetes: { policy: AmazonEKSViewPolicy }\n",
        4,
        &["groups: "],
    ),
    ("no list of tiers", "tiers:\n", 1, &["tiers: "]),
    (
        "a YAML syntax error",
        "tiers:\n  - name: a\n    role: r\n    members: { tag: k=v\n    kubernetes: { policy: AmazonEKSViewPolicy }\n",
        5,
        &[],
    ),
];

#[test]
fn bad_documents_name_the_line_and_the_key() {
    for (what, doc, line, words) in BAD_DOCUMENTS {
        let err = AccessConfig::from_yaml(doc).expect_err(what);
        let msg = err.to_string();
        assert_eq!(err.line(), *line, "{what}: {msg}");
        assert!(msg.starts_with(&format!("line {line}")), "{what}: {msg}");
        for w in *words {
            assert!(msg.contains(w), "{what}: {w:?} missing from {msg}");
        }
    }
}

#[test]
fn a_configuration_over_3072_bytes_is_refused_with_advice() {
    let padding = format!("# {}\n", "x".repeat(3100));
    let err = AccessConfig::from_yaml(&format!("{padding}{EXAMPLE}")).unwrap_err();
    assert!(
        matches!(err, AccessConfigError::TooLarge { max: 3072, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("3072") && msg.contains("flow style"), "{msg}");
    // exactly at the limit: accepted
    let pad = MAX_ACCESS_CONFIG_BYTES - EXAMPLE.len() - 2;
    let at_limit = format!("#{}\n{EXAMPLE}", "x".repeat(pad));
    assert_eq!(at_limit.len(), MAX_ACCESS_CONFIG_BYTES);
    assert!(AccessConfig::from_yaml(&at_limit).is_ok());
}

#[test]
fn tier_names() {
    for good in ["admin", "a", "team-1", &"a".repeat(63)] {
        assert!(good.parse::<TierName>().is_ok(), "{good}");
    }
    for bad in [
        "",
        "-a",
        "a-",
        "Admin",
        "a_b",
        "a.b",
        "a:b",
        &"a".repeat(64),
    ] {
        assert!(bad.parse::<TierName>().is_err(), "{bad}");
    }
}

#[test]
fn group_names() {
    let g: GroupName = "Dev+Ops=1,a.b@c_d-e".parse().unwrap();
    assert!(g.eq_ignore_case("dev+ops=1,A.B@C_D-E"));
    assert!(!g.eq_ignore_case("dev+ops"));
    assert!("a".repeat(128).parse::<GroupName>().is_ok());
    for bad in ["", "dev team", "a/b", "é", &"a".repeat(129)] {
        assert!(bad.parse::<GroupName>().is_err(), "{bad}");
    }
}

#[test]
fn access_policies() {
    let expected = [
        (
            AccessPolicy::ClusterAdmin,
            "AmazonEKSClusterAdminPolicy",
            "cluster-admin",
        ),
        (AccessPolicy::Admin, "AmazonEKSAdminPolicy", "admin"),
        (AccessPolicy::Edit, "AmazonEKSEditPolicy", "edit"),
        (AccessPolicy::View, "AmazonEKSViewPolicy", "view"),
    ];
    for (p, name, role) in expected {
        assert_eq!(p.name(), name);
        assert_eq!(p.cluster_role(), role);
        assert_eq!(
            p.arn(),
            format!("arn:aws:eks::aws:cluster-access-policy/{name}")
        );
        assert_eq!(name.parse::<AccessPolicy>().unwrap(), p);
        assert_eq!(p.arn().parse::<AccessPolicy>().unwrap(), p);
        assert_eq!(
            p.arn_in_partition("aws-cn")
                .parse::<AccessPolicy>()
                .unwrap(),
            p
        );
    }
    for bad in [
        "AmazonEKSAdminViewPolicy",
        "amazoneksviewpolicy",
        "view",
        "arn:aws:iam::aws:policy/AmazonEKSViewPolicy",
        "arn::eks::aws:cluster-access-policy/AmazonEKSViewPolicy",
    ] {
        let err = bad.parse::<AccessPolicy>().unwrap_err().to_string();
        assert!(
            err.contains("AmazonEKSClusterAdminPolicy, AmazonEKSAdminPolicy"),
            "{err}"
        );
    }
}

#[test]
fn namespace_patterns() {
    let p = |s: &str| s.parse::<NamespacePattern>().unwrap();
    assert!(p("team-a").matches("team-a"));
    assert!(!p("team-a").matches("team-ab"));
    assert!(!p("team-a").is_wildcard());
    let w = p("team-b-*");
    assert!(w.is_wildcard());
    assert!(w.matches("team-b-x") && w.matches("team-b-"));
    assert!(!w.matches("team-a") && !w.matches("team-b"));
    assert!(p("t*").matches("t"));
    assert!("a".repeat(63).parse::<NamespacePattern>().is_ok());
    assert!(
        format!("{}*", "a".repeat(62))
            .parse::<NamespacePattern>()
            .is_ok()
    );
    for bad in [
        "",
        "*",
        "Team",
        "team-",
        "-team",
        "te*am",
        "**",
        "a**",
        "*a",
        "team_a",
        "team.a",
        &"a".repeat(64),
        &format!("{}*", "a".repeat(63)),
    ] {
        assert!(bad.parse::<NamespacePattern>().is_err(), "{bad}");
    }
}

#[test]
fn membership_by_tag_or_group() {
    let c = AccessConfig::from_yaml(EXAMPLE).unwrap();
    let admin = c.tier("admin").unwrap();
    let dev = c.tier("developers").unwrap();
    let readers = c.tier("readers").unwrap();
    let none: Vec<String> = Vec::new();

    let tagged = tags(&[("team", "x"), ("eks-access", "admin")]);
    assert!(admin.is_member(&tagged, &none));
    assert!(!dev.is_member(&tagged, &none));
    assert!(
        !admin.is_member(&tags(&[("eks-access", "Admin")]), &none),
        "values compare exactly"
    );

    assert!(
        dev.is_member(&[], &strings(&["SRE"])),
        "group names ignore case"
    );
    assert!(!dev.is_member(&[], &strings(&["auditors"])));
    assert!(readers.is_member(&[], &strings(&["auditors"])));
    assert!(readers.is_member(&tags(&[("eks-access", "view")]), &none));
    assert!(!readers.is_member(&[], &none));
}

#[test]
fn the_legacy_tier_is_today_s_admin() {
    let t = Tier::legacy_admin(
        "EksAdmin".parse().unwrap(),
        "eks-access=admin".parse().unwrap(),
        "admin:{{AccessKeyID}}:{{SessionName}}".into(),
        strings(&["system:masters"]),
    );
    assert_eq!(t.name.as_str(), "admin");
    assert_eq!(t.kubernetes.policy, AccessPolicy::ClusterAdmin);
    assert!(t.kubernetes.is_cluster_scope());
    assert_eq!(t.clusters, None);
    assert!(t.members.groups.is_empty());
    assert!(!t.manages_bindings());
    assert!(t.is_member(&tags(&[("eks-access", "admin")]), &[]));
}

#[test]
fn the_readme_migration_file_is_the_legacy_tier() {
    let doc = r#"
tiers:
  - name: admin
    role: eks-admin                       # ADMIN_ROLE_NAME
    members: { tag: eks-access=admin }    # ADMIN_USER_TAG
    kubernetes:
      policy: AmazonEKSClusterAdminPolicy
      username: "admin:{{AccessKeyID}}:{{SessionName}}"   # K8S_USERNAME
      groups: [system:masters]                            # K8S_GROUPS
"#;
    let c = AccessConfig::from_yaml(doc).unwrap();
    let legacy = Tier::legacy_admin(
        "eks-admin".parse().unwrap(),
        crate::model::config::DEFAULT_ADMIN_USER_TAG
            .parse()
            .unwrap(),
        crate::model::config::DEFAULT_K8S_USERNAME.into(),
        strings(&[crate::model::config::DEFAULT_K8S_GROUPS]),
    );
    assert_eq!(c.tiers, vec![legacy]);
}

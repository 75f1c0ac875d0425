//! `Config::from_lookup` over arbitrary variable values.
//!
//! Input: the values of the variables below, in order, separated by NUL bytes
//! (a missing or empty value is unset).
//!
//! Invariants: never panics; an accepted configuration satisfies what the rest of
//! the code relies on (valid role name, non-empty trimmed lists without empty
//! items, unique valid regions, positive numbers, an alphanumeric Sid, a tag key
//! of 1..=128 characters); it round-trips through JSON; and writing it back out as
//! variables and reading those gives the same configuration.
#![no_main]

use std::collections::BTreeMap;

use eks_access_sync::model::arn::RoleName;
use eks_access_sync::model::config::Config;
use eks_access_sync_fuzz::nul_fields;
use libfuzzer_sys::fuzz_target;

const VARS: [&str; 13] = [
    "ADMIN_ROLE_NAME",
    "ADMIN_USER_TAG",
    "CLUSTER_TAG",
    "K8S_USERNAME",
    "K8S_GROUPS",
    "TRUST_STATEMENT_SID",
    "TRUST_POLICY_MAX_CHARS",
    "REQUIRE_SESSION_NAME",
    "CLUSTER_REGIONS",
    "CLUSTER_CONCURRENCY",
    "TRUST_LOCK_TABLE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
];

fn env_of(c: &Config) -> BTreeMap<&'static str, String> {
    let mut m = BTreeMap::new();
    m.insert("ADMIN_ROLE_NAME", c.admin_role_name.to_string());
    m.insert("ADMIN_USER_TAG", c.admin_user_tag.to_string());
    m.insert("CLUSTER_TAG", c.cluster_tag.to_string());
    m.insert("K8S_USERNAME", c.k8s_username.clone());
    m.insert("K8S_GROUPS", c.k8s_groups.join(","));
    m.insert("TRUST_STATEMENT_SID", c.trust_statement_sid.clone());
    m.insert(
        "TRUST_POLICY_MAX_CHARS",
        c.trust_policy_max_chars.to_string(),
    );
    m.insert("REQUIRE_SESSION_NAME", c.require_session_name.to_string());
    m.insert("CLUSTER_REGIONS", c.cluster_regions.join(","));
    m.insert("CLUSTER_CONCURRENCY", c.cluster_concurrency.to_string());
    if let Some(t) = &c.trust_lock_table {
        m.insert("TRUST_LOCK_TABLE", t.clone());
    }
    m
}

fuzz_target!(|data: &[u8]| {
    let values = nul_fields(data, VARS.len());
    let env: BTreeMap<&str, String> = VARS.iter().copied().zip(values).collect();
    let Ok(c) = Config::from_lookup(|k| env.get(k).cloned()) else {
        return;
    };
    assert!(c.admin_role_name.as_str().parse::<RoleName>().is_ok());
    for list in [&c.k8s_groups, &c.cluster_regions] {
        assert!(!list.is_empty(), "empty list accepted");
        assert!(
            list.iter()
                .all(|g| !g.is_empty() && g.trim() == g && !g.contains(',')),
            "bad list item in {list:?}"
        );
    }
    let mut regions = c.cluster_regions.clone();
    regions.sort();
    regions.dedup();
    assert_eq!(regions.len(), c.cluster_regions.len(), "duplicate regions");
    assert!(c.cluster_regions.iter().all(|r| {
        r.split('-').count() >= 3
            && r.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
    }));
    assert!(c.trust_policy_max_chars >= 1 && c.cluster_concurrency >= 1);
    assert!(
        !c.trust_statement_sid.is_empty()
            && c.trust_statement_sid
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric()),
        "bad sid {:?}",
        c.trust_statement_sid
    );
    for t in [&c.admin_user_tag, &c.cluster_tag] {
        assert!((1..=128).contains(&t.key.len()) && t.value.len() <= 256);
    }
    assert!(!c.k8s_username.is_empty() && c.k8s_username.trim() == c.k8s_username);

    let json = serde_json::to_string(&c).unwrap_or_else(|e| panic!("serialize: {e}"));
    let back: Config = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(back, c, "configuration does not round-trip through JSON");

    let written = env_of(&c);
    let again = Config::from_lookup(|k| written.get(k).cloned())
        .unwrap_or_else(|e| panic!("written-back configuration refused: {e}\n{written:?}"));
    assert_eq!(again, c, "written-back configuration differs");
});

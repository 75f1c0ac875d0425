use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;

fn planned(cluster: &str, role: &str, namespace: Option<&str>) -> PlannedContext {
    PlannedContext {
        name: format!("arn:aws:eks:eu-west-1:123456789012:cluster/{cluster}"),
        cluster: cluster.parse().expect("cluster"),
        region: "eu-west-1".into(),
        server: format!("https://{cluster}.example"),
        ca_data: "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==".into(),
        tier: "admin".parse().expect("tier"),
        role: format!("arn:aws:iam::123456789012:role/{role}")
            .parse()
            .expect("role"),
        namespace: namespace.map(str::to_owned),
    }
}

/// A kubeconfig someone already has: another cluster, a stale entry of ours, and
/// values a careless writer would retype.
const EXISTING: &str = r#"apiVersion: v1
kind: Config
current-context: kind-dev
preferences:
  colors: true
clusters:
- name: kind-dev
  cluster:
    server: https://127.0.0.1:6443
    insecure-skip-tls-verify: true
    tls-server-name: "yes"
    proxy-url: 'http://proxy:3128'
- name: arn:aws:eks:eu-west-1:123456789012:cluster/prod
  cluster:
    server: https://old.example
    certificate-authority-data: b2xk
users:
- name: kind-dev
  user:
    token: "0123"
    username: "on"
    password: 'null'
    exec:
      command: helper
      args: ["--a", "1e3", "~", ""]
      env: null
      interactiveMode: Never
contexts:
- name: kind-dev
  context:
    cluster: kind-dev
    user: kind-dev
    namespace: "012"
extensions:
- name: x
  extension:
    note: "multi\nline: text # not a comment"
    n: 12
    f: 1.5
"#;

fn parse(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("YAML")
}

fn named<'a>(doc: &'a Value, key: &str, name: &str) -> &'a Value {
    doc[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} list"))
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("{key} {name}"))
}

#[test]
fn the_entries_are_update_kubeconfigs() {
    let c = planned("prod", "eks-admin-2", None);
    assert_eq!(
        cluster_entry(&c),
        json!({"cluster": {"certificate-authority-data": c.ca_data, "server": "https://prod.example"},
               "name": "arn:aws:eks:eu-west-1:123456789012:cluster/prod"})
    );
    assert_eq!(
        user_entry(&c),
        json!({"name": c.name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "args": ["--region", "eu-west-1", "eks", "get-token", "--cluster-name", "prod",
                     "--output", "json", "--role-arn",
                     "arn:aws:iam::123456789012:role/eks-admin-2"],
            "command": "aws"}}})
    );
    assert_eq!(
        context_entry(&c),
        json!({"context": {"cluster": c.name, "user": c.name}, "name": c.name})
    );
    let ns = planned("dev", "eks-edit", Some("team-a"));
    assert_eq!(context_entry(&ns)["context"]["namespace"], "team-a");
}

#[test]
fn merge_replaces_ours_and_keeps_every_foreign_value() {
    let before = parse(EXISTING);
    let contexts = [
        planned("prod", "eks-admin", None),
        planned("dev", "eks-edit", Some("team-a")),
    ];
    let merged = merge_kubeconfig(Some(EXISTING), &contexts).expect("merge");
    assert_eq!(merged.current_context_set, None, "the file had one");
    let after = parse(&merged.text);

    // Foreign entries and keys: the same values.
    for key in [
        "apiVersion",
        "kind",
        "current-context",
        "preferences",
        "extensions",
    ] {
        assert_eq!(after[key], before[key], "{key}");
    }
    for key in ["clusters", "users", "contexts"] {
        assert_eq!(
            named(&after, key, "kind-dev"),
            named(&before, key, "kind-dev"),
            "{key}"
        );
    }
    // Strings that a YAML 1.1 reader would take for bools, numbers or null stay quoted.
    for quoted in ["'yes'", "'0123'", "'on'", "'null'", "'1e3'", "'~'", "'012'"] {
        let double = quoted.replace('\'', "\"");
        assert!(
            merged.text.contains(quoted) || merged.text.contains(&double),
            "{quoted} not quoted in\n{}",
            merged.text
        );
    }
    // Ours: the stale prod entries replaced in place (still second), dev appended.
    let prod = &contexts[0];
    assert_eq!(after["clusters"][1], cluster_entry(prod));
    assert_eq!(named(&after, "users", &prod.name), &user_entry(prod));
    assert_eq!(named(&after, "contexts", &prod.name), &context_entry(prod));
    assert_eq!(after["clusters"].as_array().map(Vec::len), Some(3));
    assert_eq!(after["users"].as_array().map(Vec::len), Some(3));
    assert_eq!(after["contexts"].as_array().map(Vec::len), Some(3));
    assert_eq!(after["contexts"][2], context_entry(&contexts[1]));

    // Merging again changes nothing.
    let again = merge_kubeconfig(Some(&merged.text), &contexts).expect("merge again");
    assert_eq!(again.text, merged.text);
}

#[test]
fn a_new_file_gets_the_first_context_as_current() {
    let contexts = [
        planned("prod", "eks-admin", None),
        planned("dev", "eks-edit", None),
    ];
    for existing in [None, Some(""), Some("\n"), Some("current-context: \"\"\n")] {
        let merged = merge_kubeconfig(existing, &contexts).expect("merge");
        assert_eq!(
            merged.current_context_set.as_deref(),
            Some(contexts[0].name.as_str()),
            "{existing:?}"
        );
        let doc = parse(&merged.text);
        assert_eq!(doc["current-context"], contexts[0].name.as_str());
        assert_eq!(doc["users"][1], user_entry(&contexts[1]));
    }
    let new = parse(&merge_kubeconfig(None, &contexts).expect("merge").text);
    assert_eq!(new["apiVersion"], "v1");
    assert_eq!(new["kind"], "Config");
    assert_eq!(new["preferences"], json!({}));
    // Nothing to write: no current context is invented.
    assert_eq!(
        merge_kubeconfig(None, &[])
            .expect("merge")
            .current_context_set,
        None
    );
}

#[test]
fn long_values_stay_on_one_line() {
    let mut c = planned("prod", "eks-admin", None);
    c.ca_data = "QUJD".repeat(400);
    let text = merge_kubeconfig(None, &[c.clone()]).expect("merge").text;
    assert!(
        text.lines()
            .any(|l| l.trim() == format!("certificate-authority-data: {}", c.ca_data)),
        "{text}"
    );
}

#[test]
fn files_that_are_not_kubeconfigs_are_refused() {
    let c = [planned("prod", "eks-admin", None)];
    for (text, want) in [
        ("- a\n- b\n", "not a mapping"),
        ("clusters: {a: 1}\n", "`clusters` is not a list"),
        ("users: text\n", "`users` is not a list"),
        ("clusters: [\n", "not valid YAML"),
    ] {
        let err = merge_kubeconfig(Some(text), &c)
            .expect_err(text)
            .to_string();
        assert!(err.contains(want), "{text}: {err}");
    }
    // Lists left empty (null) are fine.
    let merged =
        merge_kubeconfig(Some("clusters:\nusers: null\ncontexts: []\n"), &c).expect("merge");
    assert_eq!(parse(&merged.text)["clusters"][0], cluster_entry(&c[0]));
}

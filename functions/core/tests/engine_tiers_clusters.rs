//! Access tiers on in-memory fakes, the cluster side: each cluster maps every tier
//! role that applies to it (aws-auth with RBAC bindings, access entries with the tier's
//! policy and scope), and nothing of a retired tier stays.

use crate::flows_support::*;
use crate::tiers_support::*;
use eks_access_sync::engine::{Engine, Scope};
use eks_access_sync::model::tiers::AccessConfig;
use eks_access_sync::output::report::ClusterStatus;
use eks_access_sync::policy::rbac::{BindingRef, BindingView};

#[tokio::test]
async fn each_cluster_maps_the_tier_roles_that_apply_to_it() {
    let w = tier_world();
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    let roles = |c: &str| -> Vec<(String, Vec<String>)> {
        map_roles_entries(&w.kube.data(c).expect("aws-auth"))
            .iter()
            .skip(1) // the node role, kept first
            .map(|e| {
                let groups = e["groups"]
                    .as_array()
                    .map(|g| {
                        g.iter()
                            .filter_map(|g| g.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                (e["rolearn"].as_str().unwrap_or_default().to_owned(), groups)
            })
            .collect()
    };
    let role = |n: &str| format!("arn:aws:iam::{ACCOUNT}:role/{n}");
    // c1 is env=prod: all three tiers, each with its own group.
    assert_eq!(
        roles("c1"),
        [
            (role("eks-admin"), vec!["system:masters".to_owned()]),
            (
                role("eks-edit"),
                vec!["eks-access-sync:developers".to_owned()]
            ),
            (role("eks-view"), vec!["eks-access-sync:readers".to_owned()]),
        ]
    );
    // c3 is not env=prod: the readers tier does not apply.
    let c3: Vec<String> = roles("c3").into_iter().map(|(r, _)| r).collect();
    assert_eq!(c3, [role("eks-admin"), role("eks-edit")]);

    // c4 (API): an entry per tier role, with the tier's policy and scope.
    assert_eq!(status(&r, "c4"), ClusterStatus::Created);
    let entries = w.eks.entries("c4");
    let policy_of = |role_name: &str| {
        let e = entries
            .values()
            .find(|e| e.principal_arn.ends_with(&format!("/{role_name}")))
            .unwrap_or_else(|| panic!("no entry for {role_name}: {entries:#?}"));
        (e.policies.clone(), e.policy_namespaces.clone())
    };
    let (p, ns) = policy_of("eks-edit");
    assert_eq!(
        p,
        [(
            "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy".to_owned(),
            "namespace".to_owned()
        )]
    );
    assert_eq!(
        ns.values().next().cloned().unwrap_or_default(),
        ["team-a", "team-b-*"]
    );
    let (p, ns) = policy_of("eks-view");
    assert_eq!(
        p[0].0,
        "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
    );
    assert_eq!(p[0].1, "cluster");
    assert!(ns.is_empty());
}

#[tokio::test]
async fn a_changed_scope_is_associated_again_in_place() {
    let w = tier_world();
    assert!(w.engine.apply_full(&Scope::all()).await.succeeded());
    let mut cfg = w.engine.config().clone();
    cfg.access = AccessConfig::from_yaml(&TIERS.replace("[team-a, \"team-b-*\"]", "[team-c]"))
        .expect("tiers");
    let engine = Engine::new(cfg, w.iam.clone(), w.eks.clone(), w.kube.clone());
    let r = engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    let c4 = r.clusters.iter().find(|c| c.name == "c4").expect("c4");
    assert_eq!(c4.status, ClusterStatus::Updated, "{c4:#?}");
    let entries = w.eks.entries("c4");
    let edit = entries
        .values()
        .find(|e| e.principal_arn.ends_with("/eks-edit"))
        .expect("edit entry");
    assert_eq!(edit.policies.len(), 1, "{edit:#?}");
    assert_eq!(
        edit.policy_namespaces
            .values()
            .next()
            .cloned()
            .unwrap_or_default(),
        ["team-c"]
    );
}

#[tokio::test]
async fn a_tier_removed_from_the_configuration_leaves_no_mapping_or_entry() {
    let w = tier_world();
    assert!(w.engine.apply_full(&Scope::all()).await.succeeded());
    assert_eq!(
        binding_names(&w, "c1"),
        ["ClusterRoleBinding eks-access-sync:readers -> view"]
    );
    // A hand-made entry naming a tier group beside another group is not ours.
    let mut d1 = w.kube.data("c1").expect("c1");
    let mixed = "- rolearn: arn:aws:iam::111122223333:role/mixed\n  username: mixed\n  groups:\n    - eks-access-sync:readers\n    - ops\n";
    d1.insert("mapRoles".into(), format!("{}{mixed}", d1["mapRoles"]));
    w.kube.set("c1", Some(d1));
    let mut cfg = w.engine.config().clone();
    let text = TIERS.split("  - name: readers").next().expect("two tiers");
    cfg.access = AccessConfig::from_yaml(text).expect("tiers");
    let engine = Engine::new(cfg, w.iam.clone(), w.eks.clone(), w.kube.clone());
    let r = engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    let roles = w.kube.data("c1").expect("c1")["mapRoles"].clone();
    assert!(!roles.contains("role/eks-view"), "{roles}");
    assert!(roles.contains("role/mixed"), "{roles}");
    assert!(roles.contains("role/eks-edit"), "{roles}");
    let c1 = r.clusters.iter().find(|c| c.name == "c1").expect("c1");
    assert!(
        c1.changes.iter().any(|l| l.contains("retired tier")),
        "{c1:#?}"
    );
    let entries = w.eks.entries("c4");
    assert!(
        entries.keys().all(|p| !p.ends_with("/eks-view")),
        "{entries:#?}"
    );
    assert!(entries.keys().any(|p| p.ends_with("/eks-edit")));
    assert!(
        binding_names(&w, "c1").is_empty(),
        "the readers' ClusterRoleBinding is gone: {:?}",
        binding_names(&w, "c1")
    );
    // And nothing more on the next run.
    let again = engine.apply_full(&Scope::all()).await;
    assert!(
        again
            .clusters
            .iter()
            .all(|c| c.status == ClusterStatus::Unchanged),
        "{again:#?}"
    );
}

#[tokio::test]
async fn aws_auth_clusters_get_bindings_for_each_tier_group() {
    let w = tier_world();
    w.kube.set_namespaces(
        "c1",
        &["default", "kube-system", "team-a", "team-b-web", "team-c"],
    );
    let r = w.engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(
        binding_names(&w, "c1"),
        [
            "ClusterRoleBinding eks-access-sync:readers -> view",
            "RoleBinding team-a/eks-access-sync:developers -> edit",
            "RoleBinding team-b-web/eks-access-sync:developers -> edit",
        ]
    );
    let c1 = r.clusters.iter().find(|c| c.name == "c1").expect("c1");
    assert!(
        c1.changes
            .iter()
            .any(|l| l.starts_with("bind RoleBinding team-a/")),
        "{c1:#?}"
    );
    // Nothing more next time; a new namespace matching a pattern gets its binding.
    let again = w.engine.apply_full(&Scope::all()).await;
    assert_eq!(status(&again, "c1"), ClusterStatus::Unchanged, "{again:#?}");
    w.kube.set_namespaces(
        "c1",
        &[
            "default",
            "kube-system",
            "team-a",
            "team-b-web",
            "team-b-api",
        ],
    );
    let third = w.engine.apply_full(&Scope::all()).await;
    assert_eq!(status(&third, "c1"), ClusterStatus::Updated);
    assert!(
        binding_names(&w, "c1")
            .contains(&"RoleBinding team-b-api/eks-access-sync:developers -> edit".to_owned())
    );
}

#[tokio::test]
async fn a_binding_without_our_label_survives_and_is_reported() {
    let w = tier_world();
    w.kube.set_namespaces("c1", &["default", "team-a"]);
    let foreign = BindingView {
        at: BindingRef {
            namespace: None,
            name: "eks-access-sync:readers".into(),
        },
        managed: false,
        role_ref: ("ClusterRole".into(), "cluster-admin".into()),
        groups: vec!["someone-else".into()],
    };
    w.kube.put_binding("c1", foreign.clone());
    let mut stale = foreign.clone();
    stale.at = BindingRef {
        namespace: Some("team-a".into()),
        name: "eks-access-sync:retired".into(),
    };
    stale.managed = true;
    w.kube.put_binding("c1", stale.clone());
    let mut theirs = stale.clone();
    theirs.at.name = "platform-admins".into();
    theirs.managed = false;
    w.kube.put_binding("c1", theirs.clone());

    let r = w.engine.apply_full(&Scope::all()).await;
    let c1 = r.clusters.iter().find(|c| c.name == "c1").expect("c1");
    assert_eq!(c1.status, ClusterStatus::Failed, "{c1:#?}");
    assert!(
        c1.error
            .as_deref()
            .unwrap_or_default()
            .contains("not labelled"),
        "{c1:#?}"
    );
    let bindings = w.kube.bindings("c1");
    assert_eq!(bindings.get(&foreign.at), Some(&foreign), "left as it was");
    assert_eq!(
        bindings.get(&theirs.at),
        Some(&theirs),
        "not ours, untouched"
    );
    assert!(!bindings.contains_key(&stale.at), "ours, retired: deleted");
    // The developers' binding was still made.
    assert!(
        bindings
            .keys()
            .any(|b| b.name == "eks-access-sync:developers")
    );
}

#[tokio::test]
async fn a_changed_policy_replaces_the_old_one_on_the_entry() {
    let w = tier_world();
    assert!(w.engine.apply_full(&Scope::all()).await.succeeded());
    let mut cfg = w.engine.config().clone();
    cfg.access = AccessConfig::from_yaml(&TIERS.replace(
        "policy: AmazonEKSEditPolicy, namespaces: [team-a, \"team-b-*\"]",
        "policy: AmazonEKSViewPolicy",
    ))
    .expect("tiers");
    let engine = Engine::new(cfg, w.iam.clone(), w.eks.clone(), w.kube.clone());
    let r = engine.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    let entries = w.eks.entries("c4");
    let edit = entries
        .values()
        .find(|e| e.principal_arn.ends_with("/eks-edit"))
        .expect("entry");
    assert_eq!(
        edit.policies,
        [(
            "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy".to_owned(),
            "cluster".to_owned()
        )],
        "only the tier's policy is left"
    );
    let c4 = r.clusters.iter().find(|c| c.name == "c4").expect("c4");
    assert!(
        c4.changes
            .iter()
            .any(|l| l.starts_with("disassociate") && l.ends_with("AmazonEKSEditPolicy")),
        "{c4:#?}"
    );
}

#[tokio::test]
async fn a_tier_narrowed_to_fewer_clusters_leaves_the_others() {
    // The admin tier (its own groups: system:masters, so no tier group tells its
    // entries apart) first applies to every cluster...
    let w = tier_world();
    assert!(w.engine.apply_full(&Scope::all()).await.succeeded());
    assert!(w.kube.data("c3").expect("c3")["mapRoles"].contains("role/eks-admin"));
    // ... then it is narrowed to env=prod: c3 (not prod) loses it, c1 and c4 keep it.
    let mut cfg = w.engine.config().clone();
    cfg.access = AccessConfig::from_yaml(&TIERS.replace(
        "    members: { tag: eks-admin=true }\n",
        "    members: { tag: eks-admin=true }\n    clusters: { tag: env=prod }\n",
    ))
    .expect("tiers");
    let narrow = Engine::new(cfg, w.iam.clone(), w.eks.clone(), w.kube.clone());
    let r = narrow.apply_full(&Scope::all()).await;
    assert!(r.succeeded(), "{r:#?}");
    let c3 = w.kube.data("c3").expect("c3")["mapRoles"].clone();
    assert!(!c3.contains("role/eks-admin"), "{c3}");
    assert!(
        c3.contains("role/eks-edit") && c3.contains("node-group-1"),
        "{c3}"
    );
    assert!(w.kube.data("c1").expect("c1")["mapRoles"].contains("role/eks-admin"));
    assert!(
        w.eks
            .entries("c4")
            .keys()
            .any(|p| p.ends_with("/eks-admin")),
        "c4 is prod: kept"
    );
    let c3_report = r.clusters.iter().find(|c| c.name == "c3").expect("c3");
    assert!(
        c3_report
            .changes
            .iter()
            .any(|l| l.contains("does not apply")),
        "{c3_report:#?}"
    );
    let again = narrow.apply_full(&Scope::all()).await;
    assert_eq!(status(&again, "c3"), ClusterStatus::Unchanged);
}

#[tokio::test]
async fn iam_events_leave_bindings_to_full_runs() {
    let w = tier_world();
    w.kube.set_namespaces("c1", &["default", "team-a"]);
    assert!(w.engine.apply_full(&Scope::all()).await.succeeded());
    let made = w.kube.bindings("c1");
    assert!(!made.is_empty());
    // Someone deletes a binding; an IAM event (a membership, not the configuration,
    // changed) does not look at bindings; the next full run repairs it.
    let st = w.kube.state("c1");
    let gone = made.keys().next().cloned().expect("a binding");
    st.lock().expect("lock").bindings.remove(&gone);
    let writes = st.lock().expect("lock").rbac_writes;
    let mut ev = iam_event("TagUser", "alice");
    ev["detail"]["eventName"] = serde_json::json!("AddUserToGroup");
    ev["detail"]["requestParameters"] =
        serde_json::json!({ "userName": "alice", "groupName": "developers" });
    let r = ran(w
        .engine
        .handle_iam_events_payload(&ev, eks_access_sync::engine::RunMode::Apply)
        .await);
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(st.lock().expect("lock").rbac_writes, writes);
    assert!(!w.kube.bindings("c1").contains_key(&gone));
    assert!(w.engine.apply_full(&Scope::all()).await.succeeded());
    assert!(w.kube.bindings("c1").contains_key(&gone));
}

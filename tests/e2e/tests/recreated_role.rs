//! A tier role deleted and re-created under the same name: EKS keeps the old role's
//! unique ID in its access entries, which then refuse everyone (containers-roadmap
//! #2441). The sandbox refuses the same way; a reconcile spots the entry older than
//! the role and makes it again.

use crate::support::{ADMIN_ROLE, World, event, percent_decode, role_arn};
use serde_json::{Value, json};

fn cluster<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in the report: {report}"))
}

/// GetRole's unique ID and trust policy (decoded) of the admin role.
async fn admin_role(w: &World) -> (String, String) {
    let role = w
        .iam
        .get_role()
        .role_name(ADMIN_ROLE)
        .send()
        .await
        .expect("GetRole")
        .role
        .expect("role");
    let doc = role.assume_role_policy_document.expect("trust policy");
    (role.role_id, percent_decode(&doc))
}

/// DeleteRole, then CreateRole under the same name with the same trust policy.
async fn recreate_admin_role(w: &World) {
    let (old_id, trust) = admin_role(w).await;
    w.iam
        .delete_role()
        .role_name(ADMIN_ROLE)
        .send()
        .await
        .expect("DeleteRole");
    w.iam
        .create_role()
        .role_name(ADMIN_ROLE)
        .assume_role_policy_document(&trust)
        .max_session_duration(3600)
        .send()
        .await
        .expect("CreateRole");
    let (new_id, new_trust) = admin_role(w).await;
    assert!(new_id.starts_with("AROA"), "{new_id}");
    assert_ne!(new_id, old_id, "a re-created role has a new unique ID");
    assert_eq!(new_trust, trust);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_created_admin_role_gets_its_access_entries_made_again() {
    let w = World::start().await;
    // An API-mode cluster beside the seeded staging (API_AND_CONFIG_MAP, no aws-auth).
    w.create_api_cluster("apionly").await;
    let dave = w.create_user("dave", true).await;
    iam_events::handle(&w.engine, event("iam-create-user-tagged", "dave"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    reconcile::handle(&w.engine, json!({}))
        .await
        .expect("settles the seed's users");
    let session = w.assume_admin(&dave, "dave").await.expect("AssumeRole");
    for name in ["apionly", "staging"] {
        let me = w.whoami(&session, name).await.expect("admitted");
        assert!(me.username.ends_with(":dave"), "{name}: {me:?}");
    }

    recreate_admin_role(&w).await;

    // A session of the new role is refused by the clusters, as EKS refuses it.
    let session = w
        .assume_admin(&dave, "dave")
        .await
        .expect("AssumeRole on the re-created role");
    for name in ["apionly", "staging"] {
        let err = w
            .whoami(&session, name)
            .await
            .expect_err("the entry holds the old role's ID");
        assert!(
            err.contains("Unauthorized") || err.contains("401"),
            "{name}: {err}"
        );
    }

    // The reconcile sees each entry older than the role and makes it again.
    let report = reconcile::handle(&w.engine, json!({}))
        .await
        .expect("reconcile");
    let expected = format!(
        "re-create access entry of {}: the role was re-created after the entry (entry ",
        role_arn()
    );
    for name in ["apionly", "staging"] {
        let c = cluster(&report, name);
        assert_eq!(c["status"], "updated", "{c}");
        let changes: Vec<&str> = c["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            changes.iter().any(|ch| ch.starts_with(&expected)),
            "{name}: {changes:?}"
        );
    }
    assert_eq!(w.count("eks", "DeleteAccessEntry"), 2, "{:?}", w.calls());
    for name in ["apionly", "staging"] {
        let me = w.whoami(&session, name).await.expect("admitted again");
        assert!(me.username.ends_with(":dave"), "{name}: {me:?}");
        let policies = w
            .eks
            .list_associated_access_policies()
            .cluster_name(name)
            .principal_arn(role_arn())
            .send()
            .await
            .expect("ListAssociatedAccessPolicies")
            .associated_access_policies
            .unwrap_or_default();
        assert_eq!(
            policies
                .iter()
                .filter_map(|p| p.policy_arn.as_deref())
                .collect::<Vec<_>>(),
            [eks_access_sync::policy::accessentry::CLUSTER_ADMIN_POLICY],
            "{name}"
        );
    }

    // The new entries are younger than the role: the next run writes nothing.
    w.reset_calls().await;
    let again = reconcile::handle(&w.engine, json!({}))
        .await
        .expect("reconcile");
    for name in ["apionly", "staging"] {
        assert_eq!(cluster(&again, name)["status"], "unchanged", "{again}");
    }
    assert_eq!(w.all_writes(), Vec::<String>::new());
    w.sb.shutdown().await;
}

//! Clusters in member accounts, end to end on the sandbox (issue 12): the engine runs
//! as the hub's function role, assumes each member account's member role once, and
//! maps the hub's tier role on every tagged member cluster; a hub user then reaches
//! those clusters through the tier role, and loses them on DeleteUser. A member
//! account without its member stack is reported failed while the others succeed; an
//! untagged member cluster and a member account's own access entries are left alone.
//! The members' clusters are bootstrapped for the member role by each member's
//! administrator (`eks-access-sync bootstrap`), as the README says.

use crate::support::*;
use aws_credential_types::Credentials;
use eks_access_sync::adapters::SdkEngine;
use eks_access_sync::engine::{RunMode, Scope};
use eks_access_sync::output::report::{ClusterStatus, RunReport};
use eks_sandbox::aws::lock;
use eks_sandbox::aws::seed::MemberSeed;
use eks_sandbox::state::cluster_key;

const M1: &str = "111111111111";
const M2: &str = "222222222222";
/// An account of the organization with no member stack.
const M3: &str = "333333333333";

const ACCESS: &str = "tiers:
  - name: admin
    role: eks-admin
    members: { tag: eks-access=admin }
    kubernetes: { policy: AmazonEKSClusterAdminPolicy }
accounts:
  - id: \"111111111111\"
  - id: \"222222222222\"
  - id: \"333333333333\"
";

struct Org {
    w: World,
    /// Per member account (M1, M2): its administrator's SDK configuration.
    members: Vec<(String, aws_config::SdkConfig)>,
    engine: SdkEngine,
}

/// The seeded hub, two member accounts with their member stack (`m1-…`, `m2-…`
/// clusters), M3 without one, and the engine as the hub's function role.
async fn org() -> Org {
    let w = World::start().await;
    let mut members = Vec::new();
    let mut function_role = String::new();
    for (account, prefix) in [(M1, "m1"), (M2, "m2")] {
        let seeded =
            w.sb.seed_member(&MemberSeed {
                account_id: account.into(),
                cluster_prefix: Some(prefix.into()),
                ..MemberSeed::default()
            })
            .await
            .expect("member seed");
        let admin = Credentials::new(
            seeded.admin.access_key_id,
            seeded.admin.secret_access_key,
            None,
            None,
            "member-admin",
        );
        let member_sdk = sdk_config(&w.sb, admin).await;
        // `bootstrap` on the member's clusters by the member's administrator, for the
        // member role: the engine then works with what it grants there.
        for cluster in &seeded.managed_clusters {
            let lines = eks_access_sync::bootstrap::bootstrap(
                &member_sdk,
                "us-east-1",
                &cluster.parse().expect("name"),
                &seeded.member_role_arn.parse().expect("role ARN"),
            )
            .await
            .expect("bootstrap of a member cluster for the member role");
            assert!(!lines.is_empty());
        }
        members.push((account.to_owned(), member_sdk));
        function_role = seeded.hub_function_role_arn;
    }
    w.sb.create_account(M3)
        .await
        .expect("account without a member stack");
    // The hub's clusters: bootstrapped for the function role, as `make bootstrap`
    // does (the member seed grants the member role on the members' clusters).
    for cluster in ["prod", "staging"] {
        eks_access_sync::bootstrap::bootstrap(
            &w.sdk,
            "us-east-1",
            &cluster.parse().expect("name"),
            &function_role.parse().expect("role ARN"),
        )
        .await
        .expect("bootstrap");
    }
    let (ak, sk) = w.sb.operator_credentials();
    let operator = Credentials::new(ak, sk, None, None, "operator");
    let session = w
        .assume_arn(&operator, &function_role, "eks-access-sync")
        .await
        .expect("the operator may assume the function role");
    let sdk = sdk_config(&w.sb, session).await;
    let engine = SdkEngine::from_sdk(config_with(&[("ACCESS_CONFIG", ACCESS)]), &sdk);
    w.reset_calls().await;
    Org { w, members, engine }
}

impl Org {
    fn member_sdk(&self, account: &str) -> &aws_config::SdkConfig {
        &self
            .members
            .iter()
            .find(|(a, _)| a == account)
            .expect("member account")
            .1
    }

    /// `kubectl auth whoami` on a member cluster, as `creds`: the username.
    async fn whoami(
        &self,
        account: &str,
        cluster: &str,
        creds: &Credentials,
    ) -> Result<String, String> {
        let eks = aws_sdk_eks::Client::new(self.member_sdk(account));
        Ok(self.w.whoami_in(&eks, creds, cluster).await?.username)
    }

    /// The principals of a member cluster's access entries.
    async fn entries(&self, account: &str, cluster: &str) -> Vec<String> {
        let mut out: Vec<String> = aws_sdk_eks::Client::new(self.member_sdk(account))
            .list_access_entries()
            .cluster_name(cluster)
            .send()
            .await
            .expect("ListAccessEntries")
            .access_entries
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Objects and access entries of a member cluster, as the sandbox stores them.
    fn stored(&self, account: &str, cluster: &str) -> String {
        let shared = self.w.sb.shared();
        let st = lock(&shared);
        let c = st
            .clusters
            .get(&cluster_key(account, cluster))
            .expect("member cluster");
        format!("{:?}{:?}", c.objects, c.access_entries)
    }
}

fn status_of(r: &RunReport, account: &str, name: &str) -> Option<ClusterStatus> {
    r.clusters
        .iter()
        .find(|c| c.account == account && c.name == name)
        .map(|c| c.status)
}

#[tokio::test]
async fn member_clusters_map_the_hub_role_and_a_member_without_its_stack_fails_alone() {
    let o = org().await;
    let untagged_before = o.stored(M1, "m1-untagged");
    let own_before = o.entries(M1, "m1-api").await;
    assert!(
        !own_before.is_empty(),
        "the member's own entry (its creator's)"
    );

    let r = o.engine.apply_full(&Scope::all()).await;
    let hub = o.w.sb.hub_account_id();
    for (account, name) in [
        (hub, "prod"),
        (hub, "staging"),
        (M1, "m1-prod"),
        (M1, "m1-api"),
        (M2, "m2-prod"),
        (M2, "m2-api"),
    ] {
        let s = status_of(&r, account, name);
        assert!(
            matches!(s, Some(ClusterStatus::Updated | ClusterStatus::Created)),
            "{account}/{name}: {s:?}\n{}",
            r.render_text()
        );
    }
    // M3: one failure, naming the role and the missing member stack.
    let failed: Vec<_> = r
        .clusters
        .iter()
        .filter(|c| c.status == ClusterStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{}", r.render_text());
    assert_eq!(
        (failed[0].account.as_str(), failed[0].name.as_str()),
        (M3, "*")
    );
    let error = failed[0].error.clone().unwrap_or_default();
    assert!(
        error.contains(&format!("arn:aws:iam::{M3}:role/eks-access-sync-member"))
            && error.contains("AccessDenied")
            && error.contains("member stack"),
        "{error}"
    );
    // Untagged member clusters are neither reported nor touched.
    assert!(r.clusters.iter().all(|c| !c.name.ends_with("-untagged")));
    assert_eq!(o.stored(M1, "m1-untagged"), untagged_before);
    // The member's own entries stay; the hub role's is added beside them.
    let hub_role = format!("arn:aws:iam::{hub}:role/eks-admin");
    let after = o.entries(M1, "m1-api").await;
    for own in &own_before {
        assert!(after.contains(own), "{own} lost: {after:?}");
    }
    assert!(after.contains(&hub_role), "{after:?}");
    // One AssumeRole per member account (M3's refused).
    assert_eq!(o.w.count("sts", "AssumeRole"), 3);

    // A hub user with the tier's tag reaches a cluster in each member account.
    let alice = o.w.access_key("alice").await;
    let session =
        o.w.assume_admin(&alice, "alice")
            .await
            .expect("alice assumes");
    for (account, cluster) in [(M1, "m1-prod"), (M2, "m2-api")] {
        let who = o.whoami(account, cluster, &session).await;
        assert!(
            who.as_deref().is_ok_and(|u| u.ends_with(":alice")),
            "{cluster}: {who:?}"
        );
    }
    assert!(o.whoami(M1, "m1-untagged", &session).await.is_err());

    // Again on the warm engine: nothing written, no new AssumeRole for M1 and M2.
    o.w.reset_calls().await;
    let r = o.engine.apply_full(&Scope::all()).await;
    let changed: Vec<_> = r
        .clusters
        .iter()
        .filter(|c| !matches!(c.status, ClusterStatus::Unchanged | ClusterStatus::Failed))
        .collect();
    assert!(changed.is_empty(), "{}", r.render_text());
    assert!(o.w.all_writes().is_empty(), "{:?}", o.w.all_writes());
    assert_eq!(
        o.w.count("sts", "AssumeRole"),
        1,
        "only M3's, still refused"
    );

    // DeleteUser: alice can no longer assume the role that reaches the members.
    o.w.delete_user("alice").await;
    let r = o
        .engine
        .handle_iam_events_payload(&event("iam-delete-user", "alice"), RunMode::Apply)
        .await;
    let eks_access_sync::engine::EventResult::Ran(r) = r else {
        panic!("DeleteUser ignored: {r:?}");
    };
    // Her ARN turned into her unique ID in the trust policy when she was deleted.
    let t = &r.trust_policy;
    assert!(
        t.changed
            && (t.removed.iter().any(|p| p.contains("alice")) || !t.dangling_removed.is_empty()),
        "{r:#?}"
    );
    assert!(o.w.assume_admin(&alice, "alice-again").await.is_err());
}

#[tokio::test]
async fn the_plan_groups_the_member_clusters_by_account() {
    let o = org().await;
    let out = o.engine.run_full(&Scope::all(), RunMode::DryRun).await;
    let text = out.plan.render_text();
    for a in [M1, M2] {
        assert!(text.contains(&format!("== Account {a} ==")), "{text}");
    }
    // M3 could not be listed: no cluster to plan, a failure in the report.
    assert!(
        out.report.failure_summary().contains(M3),
        "{}",
        out.report.failure_summary()
    );
    assert!(o.w.all_writes().is_empty(), "{:?}", o.w.all_writes());
}

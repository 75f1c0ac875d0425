//! The access audit end to end: what `eks-access-sync access` lists is compared with
//! what the clusters' API servers say (`kubectl auth whoami`'s SelfSubjectReview) for
//! a sample of the principals it lists; it writes nothing; the CLI's CSV and text.

use crate::support::{World, cli_binary, command, repo_root, run, user_arn};
use eks_access_sync::engine::{AuditClusters, Scope};
use eks_access_sync::output::access::AccessReport;
use eks_access_sync::policy::audit::{Grant, Via};

fn grant<'a>(r: &'a AccessReport, cluster: &str, pred: impl Fn(&Grant) -> bool) -> &'a Grant {
    let c = r
        .clusters
        .iter()
        .find(|c| c.name == cluster)
        .unwrap_or_else(|| panic!("{cluster} not audited: {r:#?}"));
    c.grants
        .iter()
        .find(|g| pred(g))
        .unwrap_or_else(|| panic!("no such grant on {cluster}: {:#?}", c.grants))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_agrees_with_the_api_servers() {
    let w = World::start().await;
    let dave = w.create_user("dave", true).await;
    assert!(w.engine.apply_full(&Scope::all()).await.succeeded());
    w.set_aws_auth_key(
        "prod",
        "mapUsers",
        &format!(
            "- userarn: {}\n  username: gone\n  groups:\n  - viewers\n",
            user_arn("gone")
        ),
    );
    let writes = w.all_writes();

    let report = w
        .engine
        .audit(&Scope::all(), AuditClusters::All)
        .await
        .expect("audit");
    assert_eq!(w.all_writes(), writes, "the audit wrote");
    assert!(report.unreadable.is_empty(), "{:#?}", report.unreadable);
    let names: Vec<&str> = report.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["legacy", "prod", "staging"]);

    // dave, through the admin role, on prod (aws-auth) as the API server sees him.
    let admin = grant(&report, "prod", |g| g.reason == "tier admin");
    assert_eq!(admin.via, Via::MapRoles);
    assert!(admin.trusted.contains(&user_arn("dave")), "{admin:#?}");
    let session = w.assume_admin(&dave, "dave").await.expect("assume");
    let seen = w.whoami(&session, "prod").await.expect("whoami prod");
    for g in &admin.groups {
        assert!(
            seen.groups.contains(g),
            "audit says {g}; API server: {seen:?}"
        );
    }
    // ... and on staging (access entry).
    let entry = grant(&report, "staging", |g| g.reason == "tier admin");
    assert_eq!(entry.via, Via::AccessEntry);
    assert_eq!(
        entry.policies,
        ["AmazonEKSClusterAdminPolicy (cluster scope)"]
    );
    assert!(w.whoami(&session, "staging").await.is_ok());

    // carol, mapped directly on the untagged legacy cluster.
    let carol = grant(&report, "legacy", |g| g.principal == user_arn("carol"));
    assert_eq!(carol.reason, "direct user mapping");
    let seen = w
        .whoami(&w.access_key("carol").await, "legacy")
        .await
        .expect("whoami legacy");
    assert_eq!(Some(seen.username.as_str()), carol.username.as_deref());
    assert!(
        seen.groups.contains(&"legacy-viewers".to_owned()),
        "{seen:?}"
    );

    // The node role is marked; the deleted user's mapping is flagged.
    assert_eq!(
        grant(&report, "prod", |g| g.principal.ends_with("/eks-node-role")).reason,
        "node role"
    );
    assert!(grant(&report, "prod", |g| g.principal == user_arn("gone")).dangling);
    // bob has no grant anywhere: the API server refuses him.
    assert!(w.whoami(&w.access_key("bob").await, "prod").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_prints_csv_and_text() {
    let w = World::start().await;
    w.create_user("dave", true).await;
    assert!(w.engine.apply_full(&Scope::all()).await.succeeded());
    let bin = cli_binary();
    let home = tempfile::tempdir().expect("tempdir");
    let cli = |args: &[&str]| {
        let mut c = command(&w.sb, bin.to_str().expect("utf-8"), home.path());
        c.args(args).current_dir(repo_root());
        run(c)
    };
    let (code, out, err) = cli(&["access", "--output", "csv", "--user", "DAVE"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("cluster,region,who,principal,via"),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("prod,") && l.contains(&user_arn("dave"))),
        "{out}"
    );
    assert!(
        lines.iter().all(|l| !l.contains("eks-node-role")),
        "--user filters:\n{out}"
    );
    let (code, out, err) = cli(&["access"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("cluster us-east-1/prod (CONFIG_MAP, managed)"),
        "{out}"
    );
    assert!(
        !out.contains("/legacy"),
        "untagged clusters only with --all-clusters:\n{out}"
    );
    assert!(out.lines().all(|l| l.chars().count() <= 80), "{out}");
}

//! Any team size end to end (issue 11): a `readers` tier of 5,000 members, far past
//! one trust policy (`ACLSizePerRole` 2,048), on a `CONFIG_MAP` cluster (`prod`) and an
//! `API` cluster. The engine spreads the tier over shard roles; a random sample of 50
//! members (and the first and the last) assume their role with the real AWS CLI and
//! ask both clusters who they are with the real `kubectl auth whoami`; a non-member
//! whose own policy allows `sts:AssumeRole` on `*` is refused by every role of the
//! tier; offboarding the member at position 4,000 revokes them and no one else. The
//! first and the last member also find their role with `eks-access-sync kubeconfig`
//! and reach both clusters through the contexts it writes.
//!
//! The sample's seed is printed; `TEAM_SIZE_SEED=<n>` replays it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::{
    World, as_member, cli_binary, command, config_with, event, managed_principals, percent_decode,
    run,
};
use aws_credential_types::Credentials;
use eks_access_sync::adapters::SdkEngine;
use eks_access_sync::engine::Scope;
use eks_sandbox::state::ACCOUNT_ID;
use futures::StreamExt;
use serde_json::Value;

const MEMBERS: usize = 5_000;
const SAMPLE: usize = 50;
const ROLE: &str = "eks-view";
const API: &str = "apionly";
const CLUSTERS: [&str; 2] = ["prod", API];
const BOUNDARY: &str = "eks-access-sync-shard-boundary";
const TIER: &str = r#"
tiers:
  - name: readers
    role: eks-view
    members: { tag: eks-access=view }
    kubernetes: { policy: AmazonEKSViewPolicy }
"#;

fn member(i: usize) -> String {
    format!("reader-{i:04}")
}

fn boundary_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:policy/{BOUNDARY}")
}

fn engine(w: &World) -> SdkEngine {
    SdkEngine::from_sdk(
        config_with(&[
            ("ACCESS_CONFIG", TIER),
            ("SHARD_PERMISSIONS_BOUNDARY", &boundary_arn()),
        ]),
        &w.sdk,
    )
}

/// The tier role, the shards' boundary, an API cluster, and 5,000 members created in
/// bulk (32 at a time) with the tier's tag.
async fn world() -> World {
    let w = World::start().await;
    w.iam
        .create_role()
        .role_name(ROLE)
        .assume_role_policy_document(eks_sandbox::aws::seed::admin_trust_policy())
        .send()
        .await
        .expect("CreateRole");
    w.iam
        .create_policy()
        .policy_name(BOUNDARY)
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#)
        .send()
        .await
        .expect("CreatePolicy");
    w.create_api_cluster(API).await;
    let tag = aws_sdk_iam::types::Tag::builder()
        .key("eks-access")
        .value("view")
        .build()
        .expect("tag");
    let created: Vec<()> = futures::stream::iter(0..MEMBERS)
        .map(|i| {
            let (iam, tag) = (w.iam.clone(), tag.clone());
            async move {
                iam.create_user()
                    .user_name(member(i))
                    .tags(tag)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("CreateUser {}: {e:?}", member(i)));
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert_eq!(created.len(), MEMBERS);
    w
}

/// Every role of the tier (the tier role, then the shards by number): name, ARN and
/// the principals of its managed statement.
async fn tier_roles(w: &World) -> Vec<(String, String, BTreeSet<String>)> {
    let mut out = Vec::new();
    let base = w
        .iam
        .get_role()
        .role_name(ROLE)
        .send()
        .await
        .expect("GetRole");
    let base = base.role.expect("role");
    let doc: Value = serde_json::from_str(&percent_decode(
        base.assume_role_policy_document().unwrap_or_default(),
    ))
    .expect("json");
    out.push((
        ROLE.to_owned(),
        base.arn,
        managed_principals(&doc).into_iter().collect(),
    ));
    let mut shards = Vec::new();
    let mut pages = w
        .iam
        .list_roles()
        .path_prefix("/eks-access-sync/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for r in page.expect("ListRoles").roles {
            let k: u32 = r
                .role_name
                .strip_prefix(&format!("{ROLE}-"))
                .and_then(|k| k.parse().ok())
                .unwrap_or_else(|| panic!("{} is not a shard of {ROLE}", r.role_name));
            let doc: Value = serde_json::from_str(&percent_decode(
                r.assume_role_policy_document().unwrap_or_default(),
            ))
            .expect("json");
            let members = managed_principals(&doc).into_iter().collect();
            shards.push((k, r.role_name, r.arn, members));
        }
    }
    shards.sort();
    out.extend(shards.into_iter().map(|(_, n, a, m)| (n, a, m)));
    out
}

/// Which role trusts each member (by ARN).
fn holders(roles: &[(String, String, BTreeSet<String>)]) -> BTreeMap<String, String> {
    let mut by_user = BTreeMap::new();
    for (_, arn, members) in roles {
        for m in members {
            let before = by_user.insert(m.clone(), arn.clone());
            assert!(
                before.is_none(),
                "{m} is trusted by two roles: {before:?} and {arn}"
            );
        }
    }
    by_user
}

/// A small xorshift: the sample is random, its seed printed and replayable.
fn sample(seed: u64) -> Vec<usize> {
    let mut x = seed | 1;
    let mut picked = BTreeSet::from([0, MEMBERS - 1]);
    while picked.len() < SAMPLE + 2 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        picked.insert(usize::try_from(x % MEMBERS as u64).expect("fits"));
    }
    picked.into_iter().collect()
}

/// `aws sts assume-role` (the real AWS CLI) as `user`: the session, or the CLI's error.
async fn cli_assume(
    w: &World,
    dir: &Path,
    user: &Credentials,
    role_arn: &str,
    session: &str,
) -> Result<Credentials, String> {
    let mut c = command(&w.sb, "aws", dir);
    c.env("AWS_ACCESS_KEY_ID", user.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", user.secret_access_key())
        .env_remove("AWS_SESSION_TOKEN")
        .args([
            "sts",
            "assume-role",
            "--role-arn",
            role_arn,
            "--role-session-name",
            session,
            "--output",
            "json",
        ]);
    let (code, out, err) = run(c).await;
    if code != 0 {
        return Err(err);
    }
    let v: Value = serde_json::from_str(&out).expect("assume-role JSON");
    let c = &v["Credentials"];
    Ok(Credentials::new(
        c["AccessKeyId"].as_str().expect("key"),
        c["SecretAccessKey"].as_str().expect("secret"),
        c["SessionToken"].as_str().map(str::to_owned),
        None,
        "assumed",
    ))
}

/// `kubectl auth whoami -o json` on `cluster` as the session `creds` (a kubeconfig with
/// the EKS token `aws eks get-token` would give): the review's user info.
async fn whoami(w: &World, dir: &Path, creds: &Credentials, cluster: &str) -> Value {
    let (endpoint, ca) = w.describe(cluster).await;
    let token = w.token(creds, cluster);
    let kc: PathBuf = dir.join(format!("{cluster}-{}.kubeconfig", creds.access_key_id()));
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {endpoint}\n    certificate-authority-data: {ca}\nusers:\n- name: u\n  user:\n    token: {}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n",
            token.expose()
        ),
    )
    .expect("write kubeconfig");
    let mut c = command(&w.sb, "kubectl", dir);
    c.arg("--kubeconfig")
        .arg(&kc)
        .args(["auth", "whoami", "-o", "json"]);
    let (code, out, err) = run(c).await;
    assert_eq!(code, 0, "kubectl auth whoami on {cluster}: {out}\n{err}");
    let v: Value = serde_json::from_str(&out).expect("whoami JSON");
    v["status"]["userInfo"].clone()
}

fn without_path(role_arn: &str) -> String {
    let (head, name) = role_arn.rsplit_once('/').expect("role arn");
    let head = head.split(":role").next().expect("head");
    format!("{head}:role/{name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_readers_reach_both_clusters_and_no_one_else_does() {
    let w = world().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = engine(&w);
    let report = engine.apply_full(&Scope::all()).await;
    assert!(report.succeeded(), "{report:#?}");

    // 1. Every member in exactly one role, each within the quota, created with the
    // boundary; nobody else.
    let roles = tier_roles(&w).await;
    let by_user = holders(&roles);
    let want: BTreeSet<String> = (0..MEMBERS)
        .map(|i| format!("arn:aws:iam::{ACCOUNT_ID}:user/{}", member(i)))
        .collect();
    assert_eq!(by_user.keys().cloned().collect::<BTreeSet<_>>(), want);
    let tier = &report.tiers[0];
    assert_eq!(tier.members, MEMBERS);
    assert_eq!(tier.roles.len(), roles.len());
    for u in &tier.roles {
        assert!(u.size_chars <= 2048 && u.max_chars == 2048, "{u:?}");
    }
    assert!(roles.len() > MEMBERS / 60, "{} roles", roles.len());
    // The spare: the last shard trusts no one, and is mapped (below) like the others.
    assert!(
        roles.last().is_some_and(|(_, _, m)| m.is_empty()),
        "the last role is the spare"
    );
    assert!(roles.iter().rev().skip(1).all(|(_, _, m)| !m.is_empty()));
    for (name, _, _) in roles.iter().skip(1) {
        let r = w
            .iam
            .get_role()
            .role_name(name)
            .send()
            .await
            .expect("GetRole");
        let b = r
            .role
            .and_then(|r| r.permissions_boundary)
            .expect("boundary");
        assert_eq!(
            b.permissions_boundary_arn.as_deref(),
            Some(boundary_arn().as_str())
        );
    }
    // Each role mapped on both clusters: aws-auth on prod, an access entry on the
    // API cluster.
    let map_roles = &w.aws_auth_data("prod")["mapRoles"];
    let mut entries = BTreeSet::new();
    let mut pages = w
        .eks
        .list_access_entries()
        .cluster_name(API)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        entries.extend(
            page.expect("ListAccessEntries")
                .access_entries
                .unwrap_or_default(),
        );
    }
    for (name, arn, _) in &roles {
        assert!(
            map_roles.contains(&format!(":role/{name}")),
            "{name} not in aws-auth"
        );
        assert!(entries.contains(arn), "{arn} has no access entry");
    }

    // 2. The sample assumes its role with the AWS CLI and asks both clusters.
    let seed = std::env::var("TEAM_SIZE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock")
                .as_nanos() as u64
        });
    eprintln!("team-size sample: TEAM_SIZE_SEED={seed}");
    let picked = sample(seed);
    let checked: Vec<usize> = futures::stream::iter(picked.clone())
        .map(|i| {
            let (w, dir, by_user) = (&w, dir.path(), &by_user);
            async move {
                let name = member(i);
                let key = w.access_key(&name).await;
                let role = &by_user[&format!("arn:aws:iam::{ACCOUNT_ID}:user/{name}")];
                let session = cli_assume(w, dir, &key, role, &name)
                    .await
                    .unwrap_or_else(|e| panic!("{name} assumes {role}: {e}"));
                for cluster in CLUSTERS {
                    let who = whoami(w, dir, &session, cluster).await;
                    assert_eq!(
                        who["extra"]["canonicalArn"][0].as_str(),
                        Some(without_path(role).as_str()),
                        "{name} on {cluster}: {who}"
                    );
                }
                i
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    assert_eq!(checked.len(), picked.len());

    // The first and the last member learn their role with `eks-access-sync
    // kubeconfig` (their own keys) and reach both clusters through the contexts it
    // writes: kubectl's exec plugin runs the real `aws eks get-token --role-arn`.
    for i in [0, MEMBERS - 1] {
        let name = member(i);
        let role = &by_user[&format!("arn:aws:iam::{ACCOUNT_ID}:user/{name}")];
        let key = w.access_key(&name).await;
        let file = dir.path().join(format!("{name}.kubeconfig"));
        let mut c = as_member(&w, &cli_binary(), dir.path(), &key);
        c.env("ACCESS_CONFIG", TIER)
            .arg("kubeconfig")
            .arg("--kubeconfig")
            .arg(&file);
        let (code, out, err) = run(c).await;
        assert_eq!(code, 0, "{name}: eks-access-sync kubeconfig: {out}\n{err}");
        for cluster in CLUSTERS {
            let context = format!("arn:aws:eks:us-east-1:{ACCOUNT_ID}:cluster/{cluster}");
            let mut c = as_member(&w, Path::new("kubectl"), dir.path(), &key);
            c.arg("--kubeconfig").arg(&file).args([
                "--context",
                &context,
                "auth",
                "whoami",
                "-o",
                "json",
            ]);
            let (code, out, err) = run(c).await;
            assert_eq!(code, 0, "{name} on {cluster}: {out}\n{err}");
            let who: Value = serde_json::from_str(&out).expect("whoami JSON");
            assert_eq!(
                who["status"]["userInfo"]["extra"]["canonicalArn"][0].as_str(),
                Some(without_path(role).as_str()),
                "{name} on {cluster} through the context: {who}"
            );
        }
    }

    // 3. A non-member allowed sts:AssumeRole on * by their own policy: refused by
    // every role of the tier (the AWS CLI on the tier role and the last shard).
    w.iam
        .create_user()
        .user_name("outsider")
        .send()
        .await
        .expect("CreateUser");
    w.iam
        .put_user_policy()
        .user_name("outsider")
        .policy_name("assume-anything")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#)
        .send()
        .await
        .expect("PutUserPolicy");
    let outsider = w.access_key("outsider").await;
    for (_, arn, _) in &roles {
        let role_name = arn.rsplit('/').next().expect("name");
        let got = w.assume_arn(&outsider, arn, "outsider").await;
        assert_eq!(
            got.err().as_deref(),
            Some("AccessDenied"),
            "outsider assumed {role_name}"
        );
    }
    for (_, arn, _) in [&roles[0], &roles[roles.len() - 1]] {
        let err = cli_assume(&w, dir.path(), &outsider, arn, "outsider")
            .await
            .expect_err("refused");
        assert!(err.contains("AccessDenied"), "{err}");
    }

    // 4. Offboarding the member at position 4,000 revokes them and no one else.
    let gone = member(3_999);
    let gone_arn = format!("arn:aws:iam::{ACCOUNT_ID}:user/{gone}");
    let their_role = by_user[&gone_arn].clone();
    let writes_before = w.count("iam", "UpdateAssumeRolePolicy");
    w.delete_user(&gone).await;
    iam_events::handle(&engine, event("iam-delete-user", &gone))
        .await
        .expect("the DeleteUser event succeeds");
    let after = tier_roles(&w).await;
    assert_eq!(after.len(), roles.len());
    for ((name, arn, before), (_, _, now)) in roles.iter().zip(&after) {
        if *arn == their_role {
            let mut expected = before.clone();
            expected.remove(&gone_arn);
            assert_eq!(
                now, &expected,
                "{name}: only {gone} removed (and no dangling ID left)"
            );
        } else {
            assert_eq!(now, before, "{name} unchanged");
        }
    }
    assert_eq!(
        w.count("iam", "UpdateAssumeRolePolicy") - writes_before,
        1,
        "one write: the role that trusted {gone}"
    );
    assert_eq!(holders(&after).len(), MEMBERS - 1);
}

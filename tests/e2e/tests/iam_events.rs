//! The `iam-events` function end to end: IAM user events through the real handler,
//! checked through the real SDK (AssumeRole), the real kube client (SelfSubjectReview),
//! kubectl and the AWS CLI.

use std::collections::BTreeMap;

use crate::support::{World, command, event, managed_principals, role_arn, run, user_arn};

/// prod's aws-auth gets keys eks-access-sync must leave alone and a direct mapUsers
/// entry for `user`; returns (the keys that must stay byte-for-byte, legacy's rv).
fn prepare_prod(w: &World, user: &str) -> (BTreeMap<String, String>, String) {
    let accounts = "- \"123456789012\"\n".to_owned();
    let other = "# kept as is\nsome: value\n".to_owned();
    w.set_aws_auth_key("prod", "mapAccounts", &accounts);
    w.set_aws_auth_key("prod", "other", &other);
    w.set_aws_auth_key(
        "prod",
        "mapUsers",
        &format!(
            "- userarn: {}\n  username: {user}\n  groups:\n  - system:masters\n- userarn: {}\n  username: carol\n  groups:\n  - viewers\n",
            user_arn(user),
            user_arn("carol")
        ),
    );
    let untouched = BTreeMap::from([
        ("mapAccounts".to_owned(), accounts),
        ("other".to_owned(), other),
    ]);
    let legacy_rv = w.resource_version("legacy").expect("legacy has aws-auth");
    (untouched, legacy_rv)
}

fn ok(result: Result<serde_json::Value, iam_events::RunFailed>) -> serde_json::Value {
    result.unwrap_or_else(|e| panic!("handler failed: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagged_user_becomes_cluster_admin_and_a_replay_changes_nothing() {
    let w = World::start().await;
    let (untouched, legacy_rv) = prepare_prod(&w, "zed");
    let dave = w.create_user("dave", true).await;

    // Not yet in the trust policy: refused.
    assert_eq!(
        w.assume_admin(&dave, "dave").await.err().as_deref(),
        Some("AccessDenied")
    );

    let report = ok(iam_events::handle(&w.engine, event("iam-create-user-tagged", "dave")).await);
    assert_eq!(
        report["trustPolicy"]["added"],
        serde_json::json!([user_arn("dave")])
    );
    assert!(managed_principals(&w.trust_policy().await).contains(&user_arn("dave")));
    let prod = report["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .find(|c| c["name"] == "prod")
        .expect("prod reported");
    assert_eq!(prod["status"], "updated", "{report}");
    assert!(
        report["clusters"]
            .as_array()
            .expect("clusters")
            .iter()
            .all(|c| c["name"] != "legacy"),
        "untagged legacy is not in the report: {report}"
    );
    w.assert_invariants(&untouched, &legacy_rv);

    // The user assumes the role; prod says who they are.
    let session = w.assume_admin(&dave, "dave").await.expect("AssumeRole");
    let key = session.access_key_id().to_owned();
    assert!(key.starts_with("ASIA"), "{key}");
    let me = w.whoami(&session, "prod").await.expect("whoami on prod");
    assert_eq!(me.username, format!("admin:{key}:dave"));
    assert!(me.groups.iter().any(|g| g == "system:masters"), "{me:?}");

    // The same event again: nothing is written anywhere.
    w.reset_calls().await;
    let again = ok(iam_events::handle(&w.engine, event("iam-create-user-tagged", "dave")).await);
    assert_eq!(again["trustPolicy"]["changed"], false, "{again}");
    assert_eq!(w.count("iam", "UpdateAssumeRolePolicy"), 0);
    assert_eq!(w.all_writes(), Vec::<String>::new(), "replay wrote");
    assert!(
        again["clusters"]
            .as_array()
            .expect("clusters")
            .iter()
            .all(|c| c["status"] == "unchanged"),
        "{again}"
    );
    // A TagUser event for the same (already added) user is a no-op as well.
    ok(iam_events::handle(&w.engine, event("iam-tag-user", "dave")).await);
    assert_eq!(w.all_writes(), Vec::<String>::new(), "TagUser replay wrote");
    w.assert_invariants(&untouched, &legacy_rv);

    // kubectl auth whoami with a static token in a kubeconfig we write.
    let dir = tempfile::tempdir().expect("tempdir");
    let (endpoint, ca) = w.describe("prod").await;
    let token = w.token(&session, "prod");
    let kubeconfig = dir.path().join("static.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    server: {endpoint}\n    certificate-authority-data: {ca}\nusers:\n- name: dave\n  user:\n    token: {}\ncontexts:\n- name: prod\n  context:\n    cluster: prod\n    user: dave\ncurrent-context: prod\n",
            token.expose()
        ),
    )
    .expect("write kubeconfig");
    let mut kubectl = command(&w.sb, "kubectl", dir.path());
    kubectl.args([
        "--kubeconfig",
        kubeconfig.to_str().expect("utf-8"),
        "auth",
        "whoami",
        "-o",
        "json",
    ]);
    let (code, out, err) = run(kubectl).await;
    assert_eq!(code, 0, "kubectl auth whoami: {err}");
    let review: serde_json::Value = serde_json::from_str(&out).expect("whoami JSON");
    assert_eq!(
        review["status"]["userInfo"]["username"],
        format!("admin:{key}:dave")
    );
    assert!(
        review["status"]["userInfo"]["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .any(|g| g == "system:masters"),
        "{review}"
    );

    // The AWS CLI's way: update-kubeconfig with --role-arn, kubectl runs
    // `aws eks get-token` (exec plugin), which assumes the role as dave.
    let cli_kubeconfig = dir.path().join("aws.kubeconfig");
    let as_dave = |program: &str| {
        let mut c = command(&w.sb, program, dir.path());
        c.env("AWS_ACCESS_KEY_ID", dave.access_key_id())
            .env("AWS_SECRET_ACCESS_KEY", dave.secret_access_key())
            .env("KUBECONFIG", &cli_kubeconfig);
        c
    };
    let mut update = as_dave("aws");
    update.args([
        "eks",
        "update-kubeconfig",
        "--name",
        "prod",
        "--role-arn",
        &role_arn(),
    ]);
    let (code, _, err) = run(update).await;
    assert_eq!(code, 0, "aws eks update-kubeconfig: {err}");
    let mut kubectl = as_dave("kubectl");
    kubectl.args(["auth", "whoami", "-o", "json"]);
    let (code, out, err) = run(kubectl).await;
    assert_eq!(code, 0, "kubectl auth whoami via aws eks get-token: {err}");
    let review: serde_json::Value = serde_json::from_str(&out).expect("whoami JSON");
    let name = review["status"]["userInfo"]["username"]
        .as_str()
        .expect("username");
    assert!(name.starts_with("admin:ASIA"), "{review}");
    assert!(
        review["status"]["userInfo"]["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .any(|g| g == "system:masters"),
        "{review}"
    );
    w.sb.shutdown().await;
}

/// Makes `name` an admin through a CreateUser event; returns their key.
async fn onboard(w: &World, name: &str) -> aws_credential_types::Credentials {
    let creds = w.create_user(name, true).await;
    ok(iam_events::handle(&w.engine, event("iam-create-user-tagged", name)).await);
    w.assume_admin(&creds, name)
        .await
        .expect("AssumeRole after onboarding");
    creds
}

fn map_users(w: &World) -> String {
    w.aws_auth_data("prod")
        .get("mapUsers")
        .cloned()
        .unwrap_or_default()
}

/// Losing the tag takes a user out of the trust policy only: their own direct
/// mapping (granted apart from this tool) stays; only deletion offboards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untag_user_revokes_the_role_but_keeps_direct_mappings() {
    let w = World::start().await;
    let (untouched, legacy_rv) = prepare_prod(&w, "erin");
    let erin = onboard(&w, "erin").await;
    w.assert_invariants(&untouched, &legacy_rv);
    assert!(
        map_users(&w).contains(&user_arn("erin")),
        "onboarding kept the mapping"
    );

    w.iam
        .untag_user()
        .user_name("erin")
        .tag_keys("eks-access")
        .send()
        .await
        .expect("UntagUser");
    let report = ok(iam_events::handle(&w.engine, event("iam-untag-user", "erin")).await);
    assert_eq!(
        report["trustPolicy"]["removed"],
        serde_json::json!([user_arn("erin")]),
        "{report}"
    );
    assert!(!managed_principals(&w.trust_policy().await).contains(&user_arn("erin")));
    assert_eq!(
        w.assume_admin(&erin, "erin").await.err().as_deref(),
        Some("AccessDenied")
    );
    let users = map_users(&w);
    assert!(
        users.contains(&user_arn("erin")),
        "erin's own direct mapping stays (untagging is not offboarding):\n{users}"
    );
    assert!(
        users.contains(&user_arn("carol")),
        "carol's mapping stays:\n{users}"
    );
    w.assert_invariants(&untouched, &legacy_rv);

    // Replay: nothing to do.
    w.reset_calls().await;
    ok(iam_events::handle(&w.engine, event("iam-untag-user", "erin")).await);
    assert_eq!(w.count("iam", "UpdateAssumeRolePolicy"), 0);
    assert_eq!(w.all_writes(), Vec::<String>::new(), "replay wrote");
    w.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_user_revokes_the_role_and_direct_mappings() {
    let w = World::start().await;
    let (untouched, legacy_rv) = prepare_prod(&w, "frank");
    // Another account's frank, mapped directly, is not this account's frank.
    let other_frank = "arn:aws:iam::210987654321:user/frank";
    let mut users = map_users(&w);
    users.push_str(&format!(
        "- userarn: {other_frank}\n  username: other-frank\n  groups:\n  - viewers\n"
    ));
    w.set_aws_auth_key("prod", "mapUsers", &users);
    let frank = onboard(&w, "frank").await;

    // As an offboarding runbook does: keys first, then the user.
    w.iam
        .delete_access_key()
        .user_name("frank")
        .access_key_id(frank.access_key_id())
        .send()
        .await
        .expect("DeleteAccessKey");
    w.iam
        .delete_user()
        .user_name("frank")
        .send()
        .await
        .expect("DeleteUser");
    let report = ok(iam_events::handle(&w.engine, event("iam-delete-user", "frank")).await);
    let policy = w.trust_policy().await;
    let managed = managed_principals(&policy);
    assert!(
        managed
            .iter()
            .all(|p| !p.ends_with("user/frank") && !p.starts_with("AIDA")),
        "frank (or his dangling id) is gone: {managed:?} ({report})"
    );
    assert_eq!(
        w.assume_admin(&frank, "frank").await.err().as_deref(),
        Some("InvalidClientTokenId"),
        "a deleted user's key is refused outright"
    );
    let users = map_users(&w);
    assert!(
        !users.contains(&user_arn("frank")),
        "frank's direct mapping is gone:\n{users}"
    );
    assert!(
        users.contains(other_frank),
        "the other account's frank stays:\n{users}"
    );
    assert!(users.contains(&user_arn("carol")), "{users}");
    w.assert_invariants(&untouched, &legacy_rv);

    // A user re-created with the same name does not get access back.
    let again = w.create_user("frank", false).await;
    assert_eq!(
        w.assume_admin(&again, "frank").await.err().as_deref(),
        Some("AccessDenied")
    );

    w.reset_calls().await;
    ok(iam_events::handle(&w.engine, event("iam-delete-user", "frank")).await);
    assert_eq!(w.count("iam", "UpdateAssumeRolePolicy"), 0);
    assert_eq!(w.all_writes(), Vec::<String>::new(), "replay wrote");
    w.sb.shutdown().await;
}

/// IAM resolves `CASEY` to `casey`: a TagUser event naming `CASEY` while `casey` is
/// an admin leaves `casey` trusted and mapped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_variant_in_an_event_keeps_the_admin() {
    let w = World::start().await;
    let (untouched, legacy_rv) = prepare_prod(&w, "casey");
    let casey = onboard(&w, "casey").await;
    w.iam
        .tag_user()
        .user_name("CASEY")
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("team")
                .value("sre")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("TagUser by another spelling");
    let report = ok(iam_events::handle(&w.engine, event("iam-tag-user", "CASEY")).await);
    assert!(
        managed_principals(&w.trust_policy().await).contains(&user_arn("casey")),
        "casey stays trusted: {report}"
    );
    assert_eq!(
        report["trustPolicy"]["removed"],
        serde_json::json!([]),
        "{report}"
    );
    let users = map_users(&w);
    assert!(
        users.contains(&user_arn("casey")),
        "casey's mapping stays:\n{users}"
    );
    w.assume_admin(&casey, "casey")
        .await
        .expect("casey still assumes the role");
    w.assert_invariants(&untouched, &legacy_rv);
    w.sb.shutdown().await;
}

/// Issue 3: an event over EventBridge's 256 KiB is refused by both handlers, as the
/// Lambda runtime hands it over (unparsed), with a clear error; nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_events_are_refused_by_both_handlers_and_write_nothing() {
    let w = World::start().await;
    w.create_user("dave", true).await;
    w.reset_calls().await;
    let padded = |mut ev: serde_json::Value| {
        ev["detail"]["padding"] = serde_json::Value::String("x".repeat(300 * 1024));
        serde_json::value::RawValue::from_string(serde_json::to_string(&ev).expect("JSON"))
            .expect("raw")
    };
    let raw = padded(event("iam-tag-user", "dave"));
    let err = iam_events::handle_raw(&w.engine, &raw)
        .await
        .expect_err("an oversized IAM event is refused");
    assert!(err.to_string().contains("256 KiB"), "{err}");
    let raw = padded(event("schedule", ""));
    let err = reconcile::handle_raw(&w.engine, &raw)
        .await
        .expect_err("an oversized scheduled event is refused");
    assert!(err.to_string().contains("256 KiB"), "{err}");
    assert_eq!(
        w.all_writes(),
        Vec::<String>::new(),
        "an oversized event wrote"
    );
    assert_eq!(w.count("iam", "GetRole"), 0, "refused before any work");
    assert!(!managed_principals(&w.trust_policy().await).contains(&user_arn("dave")));
    // At the cap's side of the line, the same events are served.
    let raw = serde_json::value::RawValue::from_string(
        serde_json::to_string(&event("iam-tag-user", "dave")).expect("JSON"),
    )
    .expect("raw");
    iam_events::handle_raw(&w.engine, &raw)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(managed_principals(&w.trust_policy().await).contains(&user_arn("dave")));
    w.sb.shutdown().await;
}

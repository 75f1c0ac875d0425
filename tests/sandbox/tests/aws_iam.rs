//! IAM and STS through the real AWS SDK against an in-process sandbox.

use crate::aws_support::*;
use serde_json::json;

const ACCT: &str = "123456789012";

fn decode(doc: &str) -> serde_json::Value {
    let d = percent_encoding::percent_decode_str(doc)
        .decode_utf8()
        .unwrap();
    serde_json::from_str(&d).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assume_role_honours_the_trust_policy() {
    let sb = start().await;
    sb.seed().await.unwrap();
    let op = operator_config(&sb).await;
    let iam = aws_sdk_iam::Client::new(&op);
    let (dak, dsk, _) = user_with_key(&iam, "dave", &[("eks-access", "admin")]).await;
    let (eak, esk, _) = user_with_key(&iam, "erin", &[]).await;
    let role = format!("arn:aws:iam::{ACCT}:role/eks-admin");

    // Seeded policy: only the MFA-guarded break-glass statement. Nobody gets in.
    let dave = aws_sdk_sts::Client::new(&config_for(&sb, "us-east-1", &dak, &dsk, None).await);
    let err = dave
        .assume_role()
        .role_arn(&role)
        .role_session_name("dave")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_message(&err),
        (
            "AccessDenied".to_string(),
            format!(
                "User: arn:aws:iam::{ACCT}:user/dave is not authorized to perform: sts:AssumeRole on resource: {role}"
            )
        )
    );

    // Dave by ARN, with the session name forced to his user name; anyone
    // in the account carrying the admin tag.
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Users", "Effect": "Allow", "Principal": {"AWS": [format!("arn:aws:iam::{ACCT}:user/dave")]},
         "Action": "sts:AssumeRole",
         "Condition": {"StringEquals": {"sts:RoleSessionName": "${aws:username}"}}},
        {"Sid": "Tagged", "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCT}:root")},
         "Action": "sts:AssumeRole",
         "Condition": {"StringEquals": {"aws:PrincipalTag/eks-access": "admin"}}}]});
    iam.update_assume_role_policy()
        .role_name("eks-admin")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap();

    let creds = dave
        .assume_role()
        .role_arn(&role)
        .role_session_name("dave")
        .send()
        .await
        .unwrap()
        .credentials
        .unwrap();
    let session = aws_sdk_sts::Client::new(
        &config_for(
            &sb,
            "us-east-1",
            &creds.access_key_id,
            &creds.secret_access_key,
            Some(creds.session_token.clone()),
        )
        .await,
    );
    let who = session.get_caller_identity().send().await.unwrap();
    assert_eq!(
        who.arn(),
        Some(format!("arn:aws:sts::{ACCT}:assumed-role/eks-admin/dave").as_str())
    );
    // The session's credentials are verified: a missing session token is refused.
    let no_token = aws_sdk_sts::Client::new(
        &config_for(
            &sb,
            "us-east-1",
            &creds.access_key_id,
            &creds.secret_access_key,
            None,
        )
        .await,
    );
    let err = no_token.get_caller_identity().send().await.unwrap_err();
    assert_eq!(code_and_message(&err).0, "InvalidClientTokenId");

    // The tag statement names the account: it admits Dave only once his own
    // policies allow the role too; then whatever the session name.
    // Erin has neither the ARN nor the tag.
    let err = dave
        .assume_role()
        .role_arn(&role)
        .role_session_name("other-name")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_message(&err).0, "AccessDenied");
    put_user_policy(&iam, "dave", &allow_assume(&role)).await;
    dave.assume_role()
        .role_arn(&role)
        .role_session_name("other-name")
        .send()
        .await
        .unwrap();
    let erin = aws_sdk_sts::Client::new(&config_for(&sb, "us-east-1", &eak, &esk, None).await);
    let err = erin
        .assume_role()
        .role_arn(&role)
        .role_session_name("erin")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_message(&err).0, "AccessDenied");

    // Without the tag statement, the session-name condition decides.
    let only_users =
        json!({"Version": "2012-10-17", "Statement": [policy["Statement"][0].clone()]});
    iam.update_assume_role_policy()
        .role_name("eks-admin")
        .policy_document(only_users.to_string())
        .send()
        .await
        .unwrap();
    let err = dave
        .assume_role()
        .role_arn(&role)
        .role_session_name("mallory")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_message(&err).0, "AccessDenied");

    // Tagging Erin later does not help her against this policy either.
    iam.tag_user()
        .user_name("erin")
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("eks-access")
                .value("admin")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert!(
        erin.assume_role()
            .role_arn(&role)
            .role_session_name("erin")
            .send()
            .await
            .is_err()
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_user_leaves_its_unique_id_in_trust_policies() {
    let sb = start().await;
    let iam = aws_sdk_iam::Client::new(&operator_config(&sb).await);
    let (_, _, user_id) = user_with_key(&iam, "frank", &[]).await;
    assert!(
        user_id.starts_with("AIDA") && user_id.len() == 21,
        "{user_id}"
    );
    let frank = format!("arn:aws:iam::{ACCT}:user/frank");
    let keep = format!("arn:aws:iam::{ACCT}:user/sandbox-operator");
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": [&frank, &keep]}, "Action": "sts:AssumeRole"}]});
    iam.create_role()
        .role_name("r1")
        .assume_role_policy_document(policy.to_string())
        .send()
        .await
        .unwrap();
    // GetUser agrees with CreateUser on the id.
    let got = iam
        .get_user()
        .user_name("frank")
        .send()
        .await
        .unwrap()
        .user
        .unwrap();
    assert_eq!(got.user_id, user_id);

    let keys = iam
        .list_access_keys()
        .user_name("frank")
        .send()
        .await
        .unwrap();
    for k in keys.access_key_metadata() {
        iam.delete_access_key()
            .user_name("frank")
            .access_key_id(k.access_key_id().unwrap())
            .send()
            .await
            .unwrap();
    }
    iam.delete_user().user_name("frank").send().await.unwrap();
    let doc = iam
        .get_role()
        .role_name("r1")
        .send()
        .await
        .unwrap()
        .role
        .unwrap();
    let doc = decode(doc.assume_role_policy_document().unwrap());
    assert_eq!(
        doc["Statement"][0]["Principal"]["AWS"],
        json!([user_id, keep]),
        "{doc}"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_policy_quota_and_principal_validation() {
    let sb = start().await;
    let iam = aws_sdk_iam::Client::new(&operator_config(&sb).await);
    let ok = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{ACCT}:root")}, "Action": "sts:AssumeRole"}]});
    iam.create_role()
        .role_name("r2")
        .assume_role_policy_document(ok.to_string())
        .send()
        .await
        .unwrap();

    // 60 user ARNs ≈ 2,700 characters: over the 2,048 default quota.
    let many: Vec<String> = (0..60)
        .map(|i| format!("arn:aws:iam::{ACCT}:user/user-{i:03}"))
        .collect();
    let big = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": many}, "Action": "sts:AssumeRole"}]});
    let err = iam
        .update_assume_role_policy()
        .role_name("r2")
        .policy_document(serde_json::to_string_pretty(&big).unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_message(&err),
        (
            "LimitExceeded".to_string(),
            "Cannot exceed quota for ACLSizePerRole: 2048".to_string()
        )
    );

    // A user that does not exist.
    let ghost = format!("arn:aws:iam::{ACCT}:user/ghost");
    let bad = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": &ghost}, "Action": "sts:AssumeRole"}]});
    let err = iam
        .update_assume_role_policy()
        .role_name("r2")
        .policy_document(bad.to_string())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_message(&err),
        (
            "MalformedPolicyDocument".to_string(),
            format!("Invalid principal in policy: \"AWS\":\"{ghost}\"")
        )
    );

    // Eventual consistency fault: a user created a moment ago is refused
    // until the window has passed.
    let (status, _) = control(
        &sb,
        "/_sandbox/faults",
        r#"{"iam": {"invalidPrincipalWindowMs": 1500}}"#,
    )
    .await;
    assert_eq!(status, 200);
    user_with_key(&iam, "gina", &[]).await;
    let gina = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{ACCT}:user/gina")}, "Action": "sts:AssumeRole"}]});
    let err = iam
        .update_assume_role_policy()
        .role_name("r2")
        .policy_document(gina.to_string())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_message(&err).0, "MalformedPolicyDocument");
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    iam.update_assume_role_policy()
        .role_name("r2")
        .policy_document(gina.to_string())
        .send()
        .await
        .unwrap();
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_fault_and_call_counters() {
    let sb = start().await;
    let iam = aws_sdk_iam::Client::new(&operator_config(&sb).await);
    let (status, _) = control(&sb, "/_sandbox/calls/reset", "").await;
    assert_eq!(status, 200);
    let (status, _) = control(&sb, "/_sandbox/faults", r#"{"iam": {"throttle": 2}}"#).await;
    assert_eq!(status, 200);
    for _ in 0..2 {
        let err = iam.list_users().send().await.unwrap_err();
        assert_eq!(
            code_and_message(&err),
            ("Throttling".to_string(), "Rate exceeded".to_string())
        );
    }
    iam.list_users().send().await.unwrap();
    let (_, calls) = control(&sb, "/_sandbox/calls", "").await;
    let calls: serde_json::Value = serde_json::from_str(&calls).unwrap();
    assert!(
        calls
            .as_array()
            .unwrap()
            .contains(&json!({"service": "iam", "operation": "ListUsers", "count": 3})),
        "{calls}"
    );
    let (status, body) = control(
        &sb,
        "/_sandbox/faults",
        r#"{"cluster": "nope", "errors500": 1}"#,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_and_unknown_keys_are_refused() {
    let sb = start().await;
    let (ak, sk) = sb.operator_credentials();
    let wrong =
        aws_sdk_sts::Client::new(&config_for(&sb, "us-east-1", &ak, &format!("{sk}x"), None).await);
    let err = wrong.get_caller_identity().send().await.unwrap_err();
    assert_eq!(code_and_message(&err).0, "SignatureDoesNotMatch");
    let unknown = aws_sdk_iam::Client::new(
        &config_for(&sb, "us-east-1", "AKIAUNKNOWNUNKNOWN00", "secret", None).await,
    );
    let err = unknown.list_users().send().await.unwrap_err();
    assert_eq!(code_and_message(&err).0, "InvalidClientTokenId");
    let eks = aws_sdk_eks::Client::new(&config_for(&sb, "us-east-1", &ak, "nope", None).await);
    let err = eks.list_clusters().send().await.unwrap_err();
    assert_eq!(code_and_message(&err).0, "InvalidSignatureException");
    // The right secret passes.
    let ok = aws_sdk_sts::Client::new(&operator_config(&sb).await);
    let who = ok.get_caller_identity().send().await.unwrap();
    assert_eq!(who.arn(), Some(sb.operator_arn().as_str()));
    sb.shutdown().await;
}

fn tag(k: &str, v: &str) -> aws_sdk_iam::types::Tag {
    aws_sdk_iam::types::Tag::builder()
        .key(k)
        .value(v)
        .build()
        .unwrap()
}

/// IAM user names are case-insensitive: every call naming a user by another
/// spelling resolves to the stored user (whose name and ARN keep their case).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_names_resolve_whatever_their_case() {
    let sb = start().await;
    let iam = aws_sdk_iam::Client::new(&operator_config(&sb).await);
    iam.create_user()
        .user_name("casey")
        .tags(tag("eks-access", "admin"))
        .send()
        .await
        .unwrap();
    let arn = format!("arn:aws:iam::{ACCT}:user/casey");

    // GetUser
    let got = iam.get_user().user_name("CASEY").send().await.unwrap();
    let user = got.user.unwrap();
    assert_eq!((user.user_name(), user.arn()), ("casey", arn.as_str()));
    assert_eq!(user.tags().len(), 1, "tags of the stored user");

    // TagUser / ListUserTags / UntagUser
    iam.tag_user()
        .user_name("Casey")
        .tags(tag("team", "sre"))
        .send()
        .await
        .unwrap();
    let tags = iam
        .list_user_tags()
        .user_name("cAsEy")
        .send()
        .await
        .unwrap();
    let mut keys: Vec<&str> = tags.tags().iter().map(|t| t.key()).collect();
    keys.sort();
    assert_eq!(keys, ["eks-access", "team"]);
    iam.untag_user()
        .user_name("CASEY")
        .tag_keys("eks-access")
        .send()
        .await
        .unwrap();
    let tags = iam
        .list_user_tags()
        .user_name("casey")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = tags.tags().iter().map(|t| t.key()).collect();
    assert_eq!(keys, ["team"]);

    // AddUserToGroup
    iam.create_group().group_name("ops").send().await.unwrap();
    iam.add_user_to_group()
        .group_name("ops")
        .user_name("CASEY")
        .send()
        .await
        .unwrap();
    let groups = iam
        .list_groups_for_user()
        .user_name("Casey")
        .send()
        .await
        .unwrap();
    assert_eq!(
        groups
            .groups()
            .iter()
            .map(|g| g.group_name())
            .collect::<Vec<_>>(),
        ["ops"]
    );
    iam.remove_user_from_group()
        .group_name("ops")
        .user_name("casEY")
        .send()
        .await
        .unwrap();

    // A name nobody holds in any case is still NoSuchEntity.
    let err = iam.get_user().user_name("caseyy").send().await.unwrap_err();
    assert_eq!(code_and_message(&err).0, "NoSuchEntity");

    // DeleteUser by another spelling deletes the user.
    iam.delete_user().user_name("CASEY").send().await.unwrap();
    let err = iam.get_user().user_name("casey").send().await.unwrap_err();
    assert_eq!(code_and_message(&err).0, "NoSuchEntity");
    sb.shutdown().await;
}

/// `CreateUser` of a case variant of an existing user is refused as IAM does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_user_refuses_a_case_variant() {
    let sb = start().await;
    let iam = aws_sdk_iam::Client::new(&operator_config(&sb).await);
    iam.create_user().user_name("casey").send().await.unwrap();
    let err = iam
        .create_user()
        .user_name("CASEY")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_message(&err),
        (
            "EntityAlreadyExists".to_string(),
            "User with name CASEY already exists.".to_string()
        )
    );
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(409));
    let users = iam.list_users().send().await.unwrap();
    assert_eq!(
        users
            .users()
            .iter()
            .filter(|u| u.user_name().eq_ignore_ascii_case("casey"))
            .count(),
        1
    );
    sb.shutdown().await;
}

/// IAM groups through moto: membership, case-insensitive names, the
/// `GroupList` of `GetAccountAuthorizationDetails`, and IAM's DeleteConflicts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_membership_and_authorization_details() {
    let sb = start().await;
    let iam = aws_sdk_iam::Client::new(&operator_config(&sb).await);
    for u in ["alice", "bob"] {
        iam.create_user().user_name(u).send().await.unwrap();
    }
    let created = iam
        .create_group()
        .group_name("Developers")
        .send()
        .await
        .unwrap();
    let group = created.group().unwrap();
    assert_eq!(group.arn(), format!("arn:aws:iam::{ACCT}:group/Developers"));
    assert!(group.group_id().starts_with("AGPA"), "{}", group.group_id());
    iam.create_group()
        .group_name("auditors")
        .send()
        .await
        .unwrap();

    // A case variant is the same group: refused on create, resolved elsewhere.
    let err = iam
        .create_group()
        .group_name("developers")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_message(&err),
        (
            "EntityAlreadyExists".to_string(),
            "Group with name developers already exists.".to_string()
        )
    );
    iam.add_user_to_group()
        .group_name("DEVELOPERS")
        .user_name("alice")
        .send()
        .await
        .unwrap();
    for g in ["developers", "auditors"] {
        iam.add_user_to_group()
            .group_name(g)
            .user_name("Bob")
            .send()
            .await
            .unwrap();
    }
    let err = iam
        .add_user_to_group()
        .group_name("nope")
        .user_name("alice")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_message(&err),
        (
            "NoSuchEntity".to_string(),
            "The group with name nope cannot be found.".to_string()
        )
    );

    let members = iam
        .get_group()
        .group_name("developers")
        .send()
        .await
        .unwrap();
    assert_eq!(members.group().unwrap().group_name(), "Developers");
    let mut names: Vec<&str> = members.users().iter().map(|u| u.user_name()).collect();
    names.sort();
    assert_eq!(names, ["alice", "bob"]);
    let of_bob = iam
        .list_groups_for_user()
        .user_name("bob")
        .send()
        .await
        .unwrap();
    let mut groups: Vec<&str> = of_bob.groups().iter().map(|g| g.group_name()).collect();
    groups.sort();
    assert_eq!(groups, ["Developers", "auditors"]);

    // One GetAccountAuthorizationDetails(Filter=User) gives each user's groups.
    let details = iam
        .get_account_authorization_details()
        .filter(aws_sdk_iam::types::EntityType::User)
        .send()
        .await
        .unwrap();
    let group_list = |user: &str| {
        let mut g: Vec<String> = details
            .user_detail_list()
            .iter()
            .find(|u| u.user_name() == Some(user))
            .map(|u| u.group_list().to_vec())
            .unwrap_or_default();
        g.sort();
        g
    };
    assert_eq!(group_list("alice"), ["Developers"]);
    assert_eq!(group_list("bob"), ["Developers", "auditors"]);

    // IAM refuses to delete a group with members, or a user still in a group.
    let err = iam
        .delete_group()
        .group_name("auditors")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_message(&err),
        (
            "DeleteConflict".to_string(),
            "Cannot delete entity, must remove users from group first.".to_string()
        )
    );
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(409));
    let err = iam.delete_user().user_name("bob").send().await.unwrap_err();
    assert_eq!(
        code_and_message(&err),
        (
            "DeleteConflict".to_string(),
            "Cannot delete entity, must remove user from all groups first.".to_string()
        )
    );
    for g in ["auditors", "Developers"] {
        iam.remove_user_from_group()
            .group_name(g)
            .user_name("bob")
            .send()
            .await
            .unwrap();
    }
    iam.delete_group()
        .group_name("AUDITORS")
        .send()
        .await
        .unwrap();
    iam.delete_user().user_name("bob").send().await.unwrap();
    let err = iam
        .get_group()
        .group_name("auditors")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_message(&err).0, "NoSuchEntity");
    let details = iam
        .get_account_authorization_details()
        .filter(aws_sdk_iam::types::EntityType::User)
        .send()
        .await
        .unwrap();
    let alice = details
        .user_detail_list()
        .iter()
        .find(|u| u.user_name() == Some("alice"))
        .unwrap();
    assert_eq!(alice.group_list(), ["Developers"]);
    sb.shutdown().await;
}

/// An identity-policy document with one statement.
fn one_statement(effect: &str, resource: &str) -> String {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": effect,
        "Action": "sts:AssumeRole", "Resource": resource}]})
    .to_string()
}

fn allow_assume(resource: &str) -> String {
    one_statement("Allow", resource)
}

async fn put_user_policy(iam: &aws_sdk_iam::Client, user: &str, doc: &str) {
    iam.put_user_policy()
        .user_name(user)
        .policy_name("assume")
        .policy_document(doc)
        .send()
        .await
        .unwrap();
}

async fn role_trusting(
    iam: &aws_sdk_iam::Client,
    name: &str,
    principal: serde_json::Value,
) -> String {
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}]});
    iam.create_role()
        .role_name(name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap()
        .role
        .unwrap()
        .arn
}

/// An STS client for a user's access key.
async fn sts_for(sb: &eks_sandbox::aws::Sandbox, ak: &str, sk: &str) -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::new(&config_for(sb, "us-east-1", ak, sk, None).await)
}

/// AssumeRole's outcome: Ok, or the error code and message.
async fn assume(
    sts: &aws_sdk_sts::Client,
    role: &str,
    session: &str,
) -> Result<(), (String, String)> {
    sts.assume_role()
        .role_arn(role)
        .role_session_name(session)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| code_and_message(&e))
}

fn refused(user: &str, role: &str) -> Result<(), (String, String)> {
    Err((
        "AccessDenied".to_string(),
        format!(
            "User: arn:aws:iam::{ACCT}:user/{user} is not authorized to perform: sts:AssumeRole on resource: {role}"
        ),
    ))
}

/// A trust statement naming the account (root or bare id) admits a user of
/// the account only when the user's identity policies (its own, inline or
/// managed, or its groups') also allow sts:AssumeRole on that role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_trust_needs_an_identity_allow() {
    let sb = start().await;
    let iam = aws_sdk_iam::Client::new(&operator_config(&sb).await);
    let (ak, sk, _) = user_with_key(&iam, "ivy", &[]).await;
    let ivy = sts_for(&sb, &ak, &sk).await;
    let role = role_trusting(
        &iam,
        "by-account",
        json!(format!("arn:aws:iam::{ACCT}:root")),
    )
    .await;
    let bare = role_trusting(&iam, "by-account-id", json!(ACCT)).await;
    let other = role_trusting(&iam, "elsewhere", json!(ACCT)).await;

    // No identity policy: the trust alone does not let her in.
    assert_eq!(assume(&ivy, &role, "ivy").await, refused("ivy", &role));
    assert_eq!(assume(&ivy, &bare, "ivy").await, refused("ivy", &bare));

    // An inline allow of sts:AssumeRole on "*".
    put_user_policy(&iam, "ivy", &allow_assume("*")).await;
    assert_eq!(assume(&ivy, &role, "ivy").await, Ok(()));
    assert_eq!(assume(&ivy, &bare, "ivy").await, Ok(()));
    iam.delete_user_policy()
        .user_name("ivy")
        .policy_name("assume")
        .send()
        .await
        .unwrap();
    assert_eq!(assume(&ivy, &role, "ivy").await, refused("ivy", &role));

    // A managed policy attached to a group she is in.
    let managed = iam
        .create_policy()
        .policy_name("assume-anything")
        .policy_document(allow_assume("arn:aws:iam::*:role/by-*"))
        .send()
        .await
        .unwrap()
        .policy
        .unwrap()
        .arn
        .unwrap();
    iam.create_group()
        .group_name("assumers")
        .send()
        .await
        .unwrap();
    iam.attach_group_policy()
        .group_name("assumers")
        .policy_arn(&managed)
        .send()
        .await
        .unwrap();
    assert_eq!(assume(&ivy, &role, "ivy").await, refused("ivy", &role));
    iam.add_user_to_group()
        .group_name("assumers")
        .user_name("ivy")
        .send()
        .await
        .unwrap();
    assert_eq!(assume(&ivy, &role, "ivy").await, Ok(()));
    // The group's policy names roles `by-*`: not `elsewhere`.
    assert_eq!(assume(&ivy, &other, "ivy").await, refused("ivy", &other));
    iam.remove_user_from_group()
        .group_name("assumers")
        .user_name("ivy")
        .send()
        .await
        .unwrap();
    assert_eq!(assume(&ivy, &role, "ivy").await, refused("ivy", &role));

    // An allow naming a different role only.
    put_user_policy(&iam, "ivy", &allow_assume(&other)).await;
    assert_eq!(assume(&ivy, &role, "ivy").await, refused("ivy", &role));
    assert_eq!(assume(&ivy, &other, "ivy").await, Ok(()));
    sb.shutdown().await;
}

/// A trust statement naming the user is enough on its own; an explicit deny in
/// the user's identity policies still refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_named_in_the_trust_needs_no_allow_but_yields_to_a_deny() {
    let sb = start().await;
    let iam = aws_sdk_iam::Client::new(&operator_config(&sb).await);
    let (ak, sk, _) = user_with_key(&iam, "jack", &[]).await;
    let jack = sts_for(&sb, &ak, &sk).await;
    let role = role_trusting(
        &iam,
        "named",
        json!(format!("arn:aws:iam::{ACCT}:user/jack")),
    )
    .await;

    assert_eq!(assume(&jack, &role, "jack").await, Ok(()));
    // A deny of another role changes nothing.
    put_user_policy(
        &iam,
        "jack",
        &one_statement("Deny", &format!("arn:aws:iam::{ACCT}:role/other")),
    )
    .await;
    assert_eq!(assume(&jack, &role, "jack").await, Ok(()));
    // A deny of this one wins over the trust policy.
    put_user_policy(&iam, "jack", &one_statement("Deny", &role)).await;
    assert_eq!(assume(&jack, &role, "jack").await, refused("jack", &role));
    // Even beside an allow, and through a wildcard action.
    let both = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "sts:*", "Resource": "arn:aws:iam::*:role/nam*"}]});
    put_user_policy(&iam, "jack", &both.to_string()).await;
    assert_eq!(assume(&jack, &role, "jack").await, refused("jack", &role));
    sb.shutdown().await;
}

/// The property eks-access-sync's "never widen access" test relies on: a user
/// allowed sts:AssumeRole on everything still cannot assume a role whose trust
/// policy names only other users.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_member_allowed_assume_role_everywhere_is_refused() {
    let sb = start().await;
    let iam = aws_sdk_iam::Client::new(&operator_config(&sb).await);
    let (aak, ask, _) = user_with_key(&iam, "amy", &[]).await;
    user_with_key(&iam, "ben", &[]).await;
    let (cak, csk, _) = user_with_key(&iam, "cal", &[]).await;
    let role = role_trusting(
        &iam,
        "members",
        json!([
            format!("arn:aws:iam::{ACCT}:user/amy"),
            format!("arn:aws:iam::{ACCT}:user/ben")
        ]),
    )
    .await;
    put_user_policy(&iam, "cal", &allow_assume("*")).await;
    let cal = sts_for(&sb, &cak, &csk).await;
    assert_eq!(assume(&cal, &role, "cal").await, refused("cal", &role));
    // A member gets in, without any identity policy.
    let amy = sts_for(&sb, &aak, &ask).await;
    assert_eq!(assume(&amy, &role, "amy").await, Ok(()));
    sb.shutdown().await;
}

/// A statement naming the account under an `aws:PrincipalTag` condition needs
/// both: the tag, and the user's own allow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_condition_on_the_account_needs_the_tag_and_an_allow() {
    let sb = start().await;
    let iam = aws_sdk_iam::Client::new(&operator_config(&sb).await);
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{ACCT}:root")}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:PrincipalTag/team": "x"}}}]});
    let role = iam
        .create_role()
        .role_name("team-x")
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap()
        .role
        .unwrap()
        .arn;
    let (kak, ksk, _) = user_with_key(&iam, "kim", &[("team", "x")]).await;
    let (lak, lsk, _) = user_with_key(&iam, "lee", &[("team", "x")]).await;
    let (mak, msk, _) = user_with_key(&iam, "max", &[("team", "y")]).await;
    put_user_policy(&iam, "kim", &allow_assume(&role)).await;
    put_user_policy(&iam, "max", &allow_assume(&role)).await;

    let kim = sts_for(&sb, &kak, &ksk).await;
    assert_eq!(assume(&kim, &role, "kim").await, Ok(()));
    let lee = sts_for(&sb, &lak, &lsk).await;
    assert_eq!(assume(&lee, &role, "lee").await, refused("lee", &role));
    let max = sts_for(&sb, &mak, &msk).await;
    assert_eq!(assume(&max, &role, "max").await, refused("max", &role));
    sb.shutdown().await;
}

/// A role session is judged by its role's policies (inline or attached) and
/// the role's permissions boundary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_session_is_judged_by_its_roles_policies_and_boundary() {
    let sb = start().await;
    let iam = aws_sdk_iam::Client::new(&operator_config(&sb).await);
    let (ak, sk, _) = user_with_key(&iam, "nia", &[]).await;
    let hop = role_trusting(&iam, "hop", json!(format!("arn:aws:iam::{ACCT}:user/nia"))).await;
    let dest = role_trusting(&iam, "dest", json!(ACCT)).await;
    let creds = sts_for(&sb, &ak, &sk)
        .await
        .assume_role()
        .role_arn(&hop)
        .role_session_name("nia")
        .send()
        .await
        .unwrap()
        .credentials
        .unwrap();
    let session = aws_sdk_sts::Client::new(
        &config_for(
            &sb,
            "us-east-1",
            &creds.access_key_id,
            &creds.secret_access_key,
            Some(creds.session_token.clone()),
        )
        .await,
    );
    let session_refused = Err((
        "AccessDenied".to_string(),
        format!(
            "User: arn:aws:sts::{ACCT}:assumed-role/hop/nia is not authorized to perform: sts:AssumeRole on resource: {dest}"
        ),
    ));
    assert_eq!(assume(&session, &dest, "hop-s").await, session_refused);

    let managed = iam
        .create_policy()
        .policy_name("to-dest")
        .policy_document(allow_assume(&dest))
        .send()
        .await
        .unwrap()
        .policy
        .unwrap()
        .arn
        .unwrap();
    iam.attach_role_policy()
        .role_name("hop")
        .policy_arn(&managed)
        .send()
        .await
        .unwrap();
    assert_eq!(assume(&session, &dest, "hop-s").await, Ok(()));

    // A boundary that allows only another role limits the account's grant.
    let narrow = iam
        .create_policy()
        .policy_name("boundary")
        .policy_document(allow_assume(&hop))
        .send()
        .await
        .unwrap()
        .policy
        .unwrap()
        .arn
        .unwrap();
    iam.put_role_permissions_boundary()
        .role_name("hop")
        .permissions_boundary(&narrow)
        .send()
        .await
        .unwrap();
    assert_eq!(assume(&session, &dest, "hop-s").await, session_refused);
    iam.delete_role_permissions_boundary()
        .role_name("hop")
        .send()
        .await
        .unwrap();
    assert_eq!(assume(&session, &dest, "hop-s").await, Ok(()));

    // An inline deny on the role refuses.
    iam.put_role_policy()
        .role_name("hop")
        .policy_name("no")
        .policy_document(one_statement("Deny", &dest))
        .send()
        .await
        .unwrap();
    assert_eq!(assume(&session, &dest, "hop-s").await, session_refused);
    sb.shutdown().await;
}

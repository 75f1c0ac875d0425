//! Unit tests of `event`.

use super::*;
use serde_json::json;

fn cfg() -> Config {
    Config::from_lookup(|k| match k {
        "ADMIN_ROLE_NAME" => Some("EksAdmin".into()),
        "AWS_REGION" => Some("us-east-1".into()),
        _ => None,
    })
    .unwrap()
}

fn trail(source: &str, event_source: &str, name: &str, params: Value) -> Value {
    json!({
        "version": "0", "id": "env-1", "detail-type": "AWS API Call via CloudTrail",
        "source": source, "account": "123456789012", "time": "2026-11-29T03:39:04Z",
        "region": "us-east-1", "resources": [],
        "detail": {"eventSource": event_source, "eventName": name, "eventID": "ev-1",
                   "eventTime": "2026-11-29T03:39:04Z", "requestParameters": params}
    })
}

fn iam(name: &str, params: Value) -> EventClass {
    classify_event(&trail("aws.iam", "iam.amazonaws.com", name, params), &cfg())
}

fn hint(c: EventClass) -> (IamEventKind, TagHint) {
    match c {
        EventClass::Iam(e) => {
            assert_eq!(e.user_name.as_str(), "dave");
            assert_eq!(e.event_id.as_deref(), Some("ev-1"));
            (e.kind, e.hints[0])
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn iam_hints() {
    use IamEventKind::*;
    let t = |k: &str, v: &str| json!([{"key": k, "value": v}]);
    let cases = [
        (
            "CreateUser",
            json!({"userName": "dave", "tags": t("eks-access", "admin")}),
            CreateUser,
            TagHint::Added,
        ),
        (
            "CreateUser",
            json!({"userName": "dave"}),
            CreateUser,
            TagHint::Unchanged,
        ),
        (
            "CreateUser",
            json!({"userName": "dave", "tags": t("eks-access", "Admin")}),
            CreateUser,
            TagHint::Unchanged,
        ),
        (
            "TagUser",
            json!({"userName": "dave", "tags": t("eks-access", "admin")}),
            TagUser,
            TagHint::Added,
        ),
        (
            "TagUser",
            json!({"userName": "dave", "tags": t("eks-access", "none")}),
            TagUser,
            TagHint::Removed,
        ),
        (
            "TagUser",
            json!({"userName": "dave", "tags": t("team", "x")}),
            TagUser,
            TagHint::Unchanged,
        ),
        (
            "TagUser",
            json!({"userName": "dave"}),
            TagUser,
            TagHint::Unknown,
        ),
        (
            "UntagUser",
            json!({"userName": "dave", "tagKeys": ["eks-access"]}),
            UntagUser,
            TagHint::Removed,
        ),
        (
            "UntagUser",
            json!({"userName": "dave", "tagKeys": ["team"]}),
            UntagUser,
            TagHint::Unchanged,
        ),
        (
            "DeleteUser",
            json!({"userName": "dave"}),
            DeleteUser,
            TagHint::Removed,
        ),
    ];
    for (name, params, kind, h) in cases {
        assert_eq!(
            hint(iam(name, params.clone())),
            (kind, h),
            "{name} {params}"
        );
    }
}

#[test]
fn iam_event_account_from_recipient_then_caller_then_envelope() {
    let account = |ev: &Value| match classify_event(ev, &cfg()) {
        EventClass::Iam(e) => e.account.to_string(),
        other => panic!("{other:?}"),
    };
    let mut ev = trail(
        "aws.iam",
        "iam.amazonaws.com",
        "DeleteUser",
        json!({"userName": "dave"}),
    );
    assert_eq!(account(&ev), "123456789012", "the envelope's");
    ev["detail"]["userIdentity"] = json!({"accountId": "222222222222"});
    assert_eq!(account(&ev), "222222222222", "the caller's");
    ev["detail"]["recipientAccountId"] = json!("333333333333");
    assert_eq!(account(&ev), "333333333333", "the recipient's");
    ev["detail"]["recipientAccountId"] = json!("12");
    assert!(reason(classify_event(&ev, &cfg())).contains("account"));
    let mut none = trail(
        "aws.iam",
        "iam.amazonaws.com",
        "DeleteUser",
        json!({"userName": "dave"}),
    );
    none.as_object_mut().unwrap().remove("account");
    assert!(reason(classify_event(&none, &cfg())).contains("without an account"));
}

fn reason(c: EventClass) -> String {
    match c {
        EventClass::Ignored { reason } => reason,
        other => panic!("expected Ignored, got {other:?}"),
    }
}

#[test]
fn ignored_with_reasons() {
    let mut failed = trail(
        "aws.iam",
        "iam.amazonaws.com",
        "CreateUser",
        json!({"userName": "dave"}),
    );
    failed["detail"]["errorCode"] = json!("EntityAlreadyExistsException");
    failed["detail"]["errorMessage"] = json!("User with name dave already exists.");
    let r = reason(classify_event(&failed, &cfg()));
    assert!(
        r.contains("EntityAlreadyExistsException") && r.contains("already exists"),
        "{r}"
    );

    assert!(reason(iam("CreateRole", json!({"roleName": "x"}))).contains("CreateRole"));
    assert!(reason(iam("DeleteUser", json!({}))).contains("userName"));
    assert!(reason(iam("DeleteUser", Value::Null)).contains("requestParameters"));
    assert!(reason(iam("DeleteUser", json!({"userName": "bad name"}))).contains("userName"));
    assert!(reason(classify_event(&json!({}), &cfg())).contains("detail-type"));
    assert!(reason(classify_event(&json!({"dryRun": true}), &cfg())).contains("EventBridge"));
    assert!(reason(classify_event(&json!([1, 2]), &cfg())).contains("EventBridge"));
    let other = json!({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {}});
    assert!(reason(classify_event(&other, &cfg())).contains("EC2"));
    let mut no_name = trail("aws.iam", "iam.amazonaws.com", "x", json!({}));
    no_name["detail"]
        .as_object_mut()
        .unwrap()
        .remove("eventName");
    assert!(reason(classify_event(&no_name, &cfg())).contains("eventName"));
    let s3 = trail("aws.s3", "s3.amazonaws.com", "PutObject", json!({}));
    assert!(reason(classify_event(&s3, &cfg())).contains("PutObject"));
}

#[test]
fn schedule_and_eks() {
    let s = json!({"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
                   "account": "123456789012", "time": "2026-11-29T03:00:00Z", "region": "us-east-1",
                   "resources": ["arn:aws:events:us-east-1:123456789012:rule/r"], "detail": {}});
    assert_eq!(classify_event(&s, &cfg()), EventClass::Schedule);

    let c = classify_event(
        &trail(
            "aws.eks",
            "eks.amazonaws.com",
            "CreateCluster",
            json!({"name": "prod-2"}),
        ),
        &cfg(),
    );
    match c {
        EventClass::Eks(e) => {
            assert_eq!(e.cluster.as_str(), "prod-2");
            assert_eq!(e.kind, "CreateCluster");
        }
        other => panic!("{other:?}"),
    }
    let arn = "arn:aws:eks:us-east-1:123456789012:cluster/legacy";
    match classify_event(
        &trail(
            "aws.eks",
            "eks.amazonaws.com",
            "TagResource",
            json!({"resourceArn": arn}),
        ),
        &cfg(),
    ) {
        EventClass::Eks(e) => {
            assert_eq!(e.cluster.as_str(), "legacy");
            assert_eq!(e.resource_arn.as_deref(), Some(arn));
        }
        other => panic!("{other:?}"),
    }
    let ng = "arn:aws:eks:us-east-1:123456789012:nodegroup/legacy/ng/abc";
    let r = reason(classify_event(
        &trail(
            "aws.eks",
            "eks.amazonaws.com",
            "TagResource",
            json!({"resourceArn": ng}),
        ),
        &cfg(),
    ));
    assert!(r.contains("not an EKS cluster"), "{r}");
}

/// An EKS event carries its region: the envelope's, else CloudTrail's
/// `awsRegion`, else the cluster ARN's.
#[test]
fn eks_events_carry_their_region() {
    let region_of = |ev: &Value| match classify_event(ev, &cfg()) {
        EventClass::Eks(e) => e.region,
        other => panic!("{other:?}"),
    };
    let arn = "arn:aws:eks:ap-south-1:123456789012:cluster/legacy";
    let mut ev = trail(
        "aws.eks",
        "eks.amazonaws.com",
        "TagResource",
        json!({"resourceArn": arn}),
    );
    ev["region"] = json!("eu-west-1");
    ev["detail"]["awsRegion"] = json!("eu-central-1");
    assert_eq!(region_of(&ev).as_deref(), Some("eu-west-1"));
    ev.as_object_mut().unwrap().remove("region");
    assert_eq!(region_of(&ev).as_deref(), Some("eu-central-1"));
    ev["detail"].as_object_mut().unwrap().remove("awsRegion");
    assert_eq!(region_of(&ev).as_deref(), Some("ap-south-1"));
    let create = trail(
        "aws.eks",
        "eks.amazonaws.com",
        "CreateCluster",
        json!({"name": "prod-2"}),
    );
    assert_eq!(region_of(&create).as_deref(), Some("us-east-1"));
    assert_eq!(IamEventKind::DeleteUser.to_string(), "DeleteUser");
}

//! Arbitrary bytes -> JSON -> `classify_event`.
//!
//! Invariants: never panics; an IAM event's user name is a valid IAM name and is
//! the `detail.requestParameters.userName` of the payload; an EKS event's cluster
//! is a valid cluster name; the classification serializes and deserializes back
//! to itself (what the iam-events function logs and the tests read); classifying
//! is deterministic.
#![no_main]

use std::sync::OnceLock;

use eks_access_sync::model::arn::{ClusterName, UserName};
use eks_access_sync::model::config::Config;
use eks_access_sync::policy::event::{EventClass, IamEventKind, TagHint, classify_event};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

static CONFIG: OnceLock<Config> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let cfg = CONFIG.get_or_init(eks_access_sync_fuzz::config);
    let class = classify_event(&value, cfg);
    match &class {
        EventClass::Iam(e) => {
            assert!(
                e.user_name.as_str().parse::<UserName>().is_ok(),
                "invalid IAM user name {:?} classified",
                e.user_name.as_str()
            );
            let raw = value
                .pointer("/detail/requestParameters/userName")
                .and_then(Value::as_str);
            assert_eq!(
                raw,
                Some(e.user_name.as_str()),
                "user name not from the payload"
            );
            let name = value.pointer("/detail/eventName").and_then(Value::as_str);
            let want = match e.kind {
                IamEventKind::CreateUser => "CreateUser",
                IamEventKind::TagUser => "TagUser",
                IamEventKind::UntagUser => "UntagUser",
                IamEventKind::DeleteUser => "DeleteUser",
                IamEventKind::AddUserToGroup => "AddUserToGroup",
                IamEventKind::RemoveUserFromGroup => "RemoveUserFromGroup",
            };
            assert_eq!(name, Some(want));
            if e.hints.first() == Some(&TagHint::Added) {
                // Only CreateUser/TagUser can add the tag, and only with key and value.
                assert!(matches!(
                    e.kind,
                    IamEventKind::CreateUser | IamEventKind::TagUser
                ));
                let tags = value.pointer("/detail/requestParameters/tags");
                let text = tags.map(Value::to_string).unwrap_or_default();
                assert!(
                    text.contains(
                        &serde_json::to_string(&cfg.admin_user_tag.key).unwrap_or_default()
                    ),
                    "TagHint::Added without the admin tag key in {text}"
                );
            }
            assert!(
                value
                    .pointer("/detail/errorCode")
                    .is_none_or(Value::is_null)
            );
        }
        EventClass::Eks(e) => {
            let c = &e.cluster;
            assert!(c.as_str().parse::<ClusterName>().is_ok(), "bad cluster {c}");
            assert!(
                value
                    .pointer("/detail/errorCode")
                    .is_none_or(Value::is_null)
            );
        }
        EventClass::IamGroupDeleted { group } => {
            // Only a successful DeleteGroup naming that group.
            assert_eq!(
                value.pointer("/detail/eventName").and_then(Value::as_str),
                Some("DeleteGroup")
            );
            assert_eq!(
                value
                    .pointer("/detail/requestParameters/groupName")
                    .and_then(Value::as_str),
                Some(group.as_str())
            );
            assert!(
                value
                    .pointer("/detail/errorCode")
                    .is_none_or(Value::is_null)
            );
        }
        EventClass::Schedule | EventClass::Ignored { .. } => {}
    }
    let json = serde_json::to_string(&class).unwrap_or_else(|e| panic!("serialize: {e}"));
    let back: EventClass =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("deserialize {json}: {e}"));
    assert_eq!(
        back, class,
        "classification does not round-trip through JSON"
    );
    assert_eq!(classify_event(&value, cfg), class, "not deterministic");
});

//! Classifies every sample payload in `events/*.json` and checks the class
//! expected from its file name.

use std::path::PathBuf;

use eks_access_sync::model::config::Config;
use eks_access_sync::policy::event::{EventClass, IamEventKind, TagHint, classify_event};
use serde_json::Value;

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

/// The example configuration's three tiers (admin by tag `eks-access=admin`,
/// developers by group `developers`/`sre`, readers by tag or group `auditors`).
fn cfg() -> Config {
    let example = std::fs::read_to_string(events_dir().join("../examples/access.yaml"))
        .expect("examples/access.yaml");
    Config::from_lookup(|k| match k {
        "ACCESS_CONFIG" => Some(example.clone()),
        "AWS_REGION" => Some("us-east-1".into()),
        _ => None,
    })
    .unwrap()
}

fn load(name: &str) -> Value {
    let path = events_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Debug)]
enum Want {
    Iam(IamEventKind, TagHint, &'static str),
    Eks(&'static str, &'static str),
    Schedule,
    Ignored(&'static str),
    GroupDeleted(&'static str),
}

fn expected(name: &str) -> Option<Want> {
    use IamEventKind::*;
    Some(match name {
        "iam-create-user-tagged.json" => Want::Iam(CreateUser, TagHint::Added, "dave"),
        "iam-create-user-untagged.json" => Want::Iam(CreateUser, TagHint::Unchanged, "erin"),
        "iam-tag-user.json" => Want::Iam(TagUser, TagHint::Added, "dave"),
        "iam-untag-user.json" => Want::Iam(UntagUser, TagHint::Removed, "dave"),
        "iam-delete-user.json" => Want::Iam(DeleteUser, TagHint::Removed, "dave"),
        "iam-create-user-failed.json" => Want::Ignored("EntityAlreadyExists"),
        "iam-add-user-to-group.json" => Want::Iam(AddUserToGroup, TagHint::Unknown, "dave"),
        "iam-remove-user-from-group.json" => {
            Want::Iam(RemoveUserFromGroup, TagHint::Unknown, "dave")
        }
        "iam-delete-group.json" => Want::GroupDeleted("developers"),
        "eks-create-cluster.json" => Want::Eks("CreateCluster", "prod-2"),
        "eks-tag-resource.json" => Want::Eks("TagResource", "legacy"),
        "schedule.json" => Want::Schedule,
        // Direct invocations of the reconcile function, not EventBridge events.
        n if n.starts_with("reconcile-") => Want::Ignored("not an EventBridge event"),
        _ => return None,
    })
}

#[test]
fn every_sample_event_is_classified_as_its_name_says() {
    let mut names: Vec<String> = std::fs::read_dir(events_dir())
        .expect("events/ exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    for required in [
        "iam-create-user-tagged.json",
        "iam-create-user-untagged.json",
        "iam-tag-user.json",
        "iam-untag-user.json",
        "iam-delete-user.json",
        "iam-create-user-failed.json",
        "eks-create-cluster.json",
        "eks-tag-resource.json",
        "schedule.json",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "events/{required} is missing"
        );
    }
    let cfg = cfg();
    for name in &names {
        let want =
            expected(name).unwrap_or_else(|| panic!("no expectation for events/{name}: add one"));
        let got = classify_event(&load(name), &cfg);
        match (&want, &got) {
            (Want::Iam(kind, hint, user), EventClass::Iam(e)) => {
                // The hint of the tier the event touches (admin's tag, or the
                // developers' group), Unchanged when it touches none.
                let touched = e
                    .hints
                    .iter()
                    .copied()
                    .find(|h| *h != TagHint::Unchanged)
                    .unwrap_or(TagHint::Unchanged);
                assert_eq!(
                    (e.kind, touched, e.user_name.as_str()),
                    (*kind, *hint, *user),
                    "{name}"
                );
                assert!(e.event_id.is_some() && e.event_time.is_some(), "{name}");
            }
            (Want::Eks(kind, cluster), EventClass::Eks(e)) => {
                assert_eq!(e.kind, *kind, "{name}");
                assert_eq!(e.cluster.as_str(), *cluster, "{name}");
            }
            (Want::Schedule, EventClass::Schedule) => {}
            (Want::GroupDeleted(g), EventClass::IamGroupDeleted { group }) => {
                assert_eq!(group, g, "{name}")
            }
            (Want::Ignored(text), EventClass::Ignored { reason }) => {
                assert!(reason.contains(text), "{name}: {reason}");
            }
            _ => panic!("{name}: expected {want:?}, got {got:?}"),
        }
    }
}

//! Classifying the EventBridge events the functions receive.
//!
//! The envelope is parsed with `aws_lambda_events`'
//! `EventBridgeEvent<serde_json::Value>`; the CloudTrail `detail` is read
//! leniently from the JSON (the crate's `AWSAPICall` type insists on fields a
//! hand-made or trimmed record may lack), and only the fields we use are
//! required. Nothing here panics: a failed call (`errorCode`), another event
//! or a malformed one becomes [`EventClass::Ignored`] with a reason naming
//! what was missing or why.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::arn::{AccountId, ClusterName, UserName};
use crate::model::config::{Config, TagSpec};
use crate::model::tiers::Tier;

/// The IAM API calls we react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IamEventKind {
    CreateUser,
    TagUser,
    UntagUser,
    DeleteUser,
    AddUserToGroup,
    RemoveUserFromGroup,
}

/// The CloudTrail event name (`CreateUser`, …).
impl std::fmt::Display for IamEventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IamEventKind::CreateUser => "CreateUser",
            IamEventKind::TagUser => "TagUser",
            IamEventKind::UntagUser => "UntagUser",
            IamEventKind::DeleteUser => "DeleteUser",
            IamEventKind::AddUserToGroup => "AddUserToGroup",
            IamEventKind::RemoveUserFromGroup => "RemoveUserFromGroup",
        })
    }
}

/// What the event itself says about a tier's membership tag (or group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TagHint {
    /// The admin tag (key and value) was set.
    Added,
    /// The admin tag was removed, overwritten with another value, or the user
    /// deleted.
    Removed,
    /// The event does not touch the admin tag.
    Unchanged,
    /// The event does not say.
    Unknown,
}

/// An IAM user event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IamUserEvent {
    pub kind: IamEventKind,
    pub user_name: UserName,
    /// The account the user lives in (CloudTrail `recipientAccountId`, else the
    /// caller's `userIdentity.accountId`, else the envelope's `account`): only this
    /// account's users are ever offboarded by the event.
    pub account: AccountId,
    pub event_id: Option<String>,
    pub event_time: Option<String>,
    /// What the event says about each tier's selector, in the configuration's order
    /// ([`TagHint::Unchanged`]: the event does not touch that tier).
    pub hints: Vec<TagHint>,
    /// The group of an `AddUserToGroup`/`RemoveUserFromGroup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl IamUserEvent {
    /// Whether the event may change tier `index`'s members.
    pub fn touches(&self, index: usize) -> bool {
        self.hints
            .get(index)
            .is_some_and(|h| *h != TagHint::Unchanged)
    }
}

/// An EKS cluster event (creation, tagging, auth-mode change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EksClusterEvent {
    pub cluster: ClusterName,
    pub resource_arn: Option<String>,
    /// The CloudTrail event name.
    pub kind: String,
    /// The region the call was made in (the envelope's `region`, else CloudTrail's
    /// `awsRegion`, else the cluster ARN's): reported for a cluster that is not managed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// What an incoming event asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EventClass {
    Iam(IamUserEvent),
    /// A `DeleteGroup` of a group that selects tiers: IAM deletes only empty groups,
    /// so the members already left; the tiers' trust policies are reconciled in full.
    IamGroupDeleted {
        group: String,
    },
    Eks(EksClusterEvent),
    Schedule,
    Ignored {
        reason: String,
    },
}

fn ignored(reason: impl Into<String>) -> EventClass {
    EventClass::Ignored {
        reason: reason.into(),
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

/// Tags as CloudTrail writes them for IAM: `[{"key","value"}]` (either case).
fn iam_tags(v: Option<&Value>) -> Vec<(String, String)> {
    let Some(Value::Array(a)) = v else {
        return Vec::new();
    };
    a.iter()
        .filter_map(|t| {
            let k = t.get("key").or_else(|| t.get("Key"))?.as_str()?;
            let val = t
                .get("value")
                .or_else(|| t.get("Value"))
                .and_then(Value::as_str)
                .unwrap_or("");
            Some((k.to_string(), val.to_string()))
        })
        .collect()
}

/// Classifies a raw Lambda payload.
pub fn classify_event(raw: &Value, cfg: &Config) -> EventClass {
    let env: EventBridgeEvent<Value> = match serde_json::from_value(raw.clone()) {
        Ok(e) => e,
        Err(e) => return ignored(format!("not an EventBridge event: {e}")),
    };
    let dt = env.detail_type.as_str();
    let src = env.source.as_str();
    if dt == "Scheduled Event" && src == "aws.events" {
        return EventClass::Schedule;
    }
    if dt != "AWS API Call via CloudTrail" {
        return ignored(format!("detail-type {dt:?} from {src:?} is not handled"));
    }
    let d = &env.detail;
    if !d.is_object() {
        return ignored("CloudTrail event without a detail object");
    }
    let Some(name) = str_at(d, &["eventName"]) else {
        return ignored("CloudTrail event without detail.eventName");
    };
    if let Some(code) = d.get("errorCode").filter(|c| !c.is_null()) {
        let code = code
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| code.to_string());
        let msg = str_at(d, &["errorMessage"]).unwrap_or("no message");
        return ignored(format!("{name} failed with {code}: {msg}"));
    }
    let event_source = str_at(d, &["eventSource"]).unwrap_or("");
    match (src, event_source) {
        ("aws.iam", "iam.amazonaws.com" | "") => classify_iam(name, d, &env, cfg),
        ("aws.eks", "eks.amazonaws.com" | "") => classify_eks(name, d, &env),
        _ => ignored(format!(
            "event {name} from {src:?} (eventSource {event_source:?}) is not handled"
        )),
    }
}

/// What the event's own parameters say about the admin tag `tag`.
fn tag_hint(kind: IamEventKind, params: &Value, tag: &TagSpec) -> TagHint {
    match kind {
        IamEventKind::CreateUser => {
            if iam_tags(params.get("tags"))
                .iter()
                .any(|(k, v)| tag.matches(k, v))
            {
                TagHint::Added
            } else {
                TagHint::Unchanged
            }
        }
        IamEventKind::TagUser => match params.get("tags") {
            None => TagHint::Unknown,
            Some(t) => match iam_tags(Some(t)).iter().find(|(k, _)| *k == tag.key) {
                Some((_, v)) if *v == tag.value => TagHint::Added,
                Some(_) => TagHint::Removed,
                None => TagHint::Unchanged,
            },
        },
        IamEventKind::UntagUser => match params.get("tagKeys") {
            Some(Value::Array(keys)) => {
                if keys.iter().any(|k| k.as_str() == Some(tag.key.as_str())) {
                    TagHint::Removed
                } else {
                    TagHint::Unchanged
                }
            }
            _ => TagHint::Unknown,
        },
        IamEventKind::DeleteUser => TagHint::Removed,
        IamEventKind::AddUserToGroup | IamEventKind::RemoveUserFromGroup => TagHint::Unchanged,
    }
}

/// What the event says about `tier`'s members: its tag's hint, `Unknown` for a
/// membership change of one of its groups, `Removed` for a deletion.
fn tier_hint(kind: IamEventKind, params: &Value, group: Option<&str>, tier: &Tier) -> TagHint {
    let by_group = |g: &str| tier.members.groups.iter().any(|t| t.eq_ignore_case(g));
    match (kind, group) {
        (IamEventKind::DeleteUser, _) => TagHint::Removed,
        (IamEventKind::AddUserToGroup | IamEventKind::RemoveUserFromGroup, Some(g)) => {
            if by_group(g) {
                TagHint::Unknown
            } else {
                TagHint::Unchanged
            }
        }
        (IamEventKind::AddUserToGroup | IamEventKind::RemoveUserFromGroup, None) => {
            TagHint::Unknown
        }
        (_, _) => match &tier.members.tag {
            Some(tag) => tag_hint(kind, params, tag),
            None => TagHint::Unchanged,
        },
    }
}

fn classify_iam(name: &str, d: &Value, env: &EventBridgeEvent<Value>, cfg: &Config) -> EventClass {
    let kind = match name {
        "CreateUser" => IamEventKind::CreateUser,
        "TagUser" => IamEventKind::TagUser,
        "UntagUser" => IamEventKind::UntagUser,
        "DeleteUser" => IamEventKind::DeleteUser,
        "AddUserToGroup" => IamEventKind::AddUserToGroup,
        "RemoveUserFromGroup" => IamEventKind::RemoveUserFromGroup,
        "DeleteGroup" => return classify_delete_group(d, cfg),
        other => return ignored(format!("IAM event {other} is not handled")),
    };
    let Some(params) = d.get("requestParameters").filter(|p| p.is_object()) else {
        return ignored(format!("{name} event without detail.requestParameters"));
    };
    let Some(raw_name) = params.get("userName").and_then(Value::as_str) else {
        return ignored(format!(
            "{name} event without detail.requestParameters.userName"
        ));
    };
    let user_name: UserName = match raw_name.parse() {
        Ok(u) => u,
        Err(e) => return ignored(format!("{name} event with a bad userName: {e}")),
    };
    let account = match [
        str_at(d, &["recipientAccountId"]),
        str_at(d, &["userIdentity", "accountId"]),
        env.account.as_deref(),
    ]
    .into_iter()
    .flatten()
    .find(|a| !a.is_empty())
    {
        None => {
            return ignored(format!(
                "{name} event without an account (detail.recipientAccountId, \
                 detail.userIdentity.accountId or account)"
            ));
        }
        Some(a) => match a.parse::<AccountId>() {
            Ok(a) => a,
            Err(e) => return ignored(format!("{name} event with a bad account: {e}")),
        },
    };
    let group = params.get("groupName").and_then(Value::as_str);
    let is_group_event = matches!(
        kind,
        IamEventKind::AddUserToGroup | IamEventKind::RemoveUserFromGroup
    );
    if is_group_event && group.is_none() {
        return ignored(format!(
            "{name} event without detail.requestParameters.groupName"
        ));
    }
    let hints: Vec<TagHint> = cfg
        .access
        .tiers
        .iter()
        .map(|t| tier_hint(kind, params, group, t))
        .collect();
    if is_group_event && hints.iter().all(|h| *h == TagHint::Unchanged) {
        return ignored(format!(
            "{name}: group {:?} selects no tier",
            group.unwrap_or_default()
        ));
    }
    EventClass::Iam(IamUserEvent {
        kind,
        user_name,
        account,
        event_id: str_at(d, &["eventID"])
            .map(str::to_string)
            .or_else(|| env.id.clone()),
        event_time: str_at(d, &["eventTime"]).map(str::to_string),
        hints,
        group: group.map(str::to_string),
    })
}

/// `DeleteGroup`: a full trust-side reconcile if the group selects a tier.
fn classify_delete_group(d: &Value, cfg: &Config) -> EventClass {
    let Some(group) = str_at(d, &["requestParameters", "groupName"]) else {
        return ignored("DeleteGroup event without detail.requestParameters.groupName");
    };
    let selects = cfg
        .access
        .tiers
        .iter()
        .any(|t| t.members.groups.iter().any(|g| g.eq_ignore_case(group)));
    if selects {
        EventClass::IamGroupDeleted {
            group: group.to_owned(),
        }
    } else {
        ignored(format!("DeleteGroup: group {group:?} selects no tier"))
    }
}

/// The cluster name in `arn:<p>:eks:<region>:<account>:cluster/<name>`.
pub fn cluster_name_from_arn(arn: &str) -> Option<ClusterName> {
    let resource = arn.splitn(6, ':').nth(5)?;
    if !arn.starts_with("arn:") || arn.split(':').nth(2) != Some("eks") {
        return None;
    }
    resource.strip_prefix("cluster/")?.parse().ok()
}

/// The region an EKS call was made in: the envelope's `region`, else CloudTrail's
/// `awsRegion`, else the region of the ARN the call names.
fn eks_event_region(d: &Value, env: &EventBridgeEvent<Value>) -> Option<String> {
    let from_arn = str_at(d, &["requestParameters", "resourceArn"])
        .or_else(|| str_at(d, &["responseElements", "cluster", "arn"]))
        .and_then(|arn| arn.split(':').nth(3));
    [env.region.as_deref(), str_at(d, &["awsRegion"]), from_arn]
        .into_iter()
        .flatten()
        .find(|r| !r.is_empty())
        .map(str::to_string)
}

fn classify_eks(name: &str, d: &Value, env: &EventBridgeEvent<Value>) -> EventClass {
    let params = d.get("requestParameters");
    let region = eks_event_region(d, env);
    match name {
        "CreateCluster" => {
            let Some(n) = params.and_then(|p| p.get("name")).and_then(Value::as_str) else {
                return ignored("CreateCluster event without detail.requestParameters.name");
            };
            match n.parse::<ClusterName>() {
                Ok(c) => EventClass::Eks(EksClusterEvent {
                    cluster: c,
                    resource_arn: str_at(d, &["responseElements", "cluster", "arn"])
                        .map(str::to_string),
                    kind: name.to_string(),
                    region,
                }),
                Err(e) => ignored(format!("CreateCluster event with a bad name: {e}")),
            }
        }
        "TagResource" | "UntagResource" => {
            let Some(arn) = params
                .and_then(|p| p.get("resourceArn"))
                .and_then(Value::as_str)
            else {
                return ignored(format!(
                    "{name} event without detail.requestParameters.resourceArn"
                ));
            };
            match cluster_name_from_arn(arn) {
                Some(c) => EventClass::Eks(EksClusterEvent {
                    cluster: c,
                    resource_arn: Some(arn.to_string()),
                    kind: name.to_string(),
                    region,
                }),
                None => ignored(format!("{name} on {arn}, which is not an EKS cluster")),
            }
        }
        "UpdateClusterConfig" => {
            // Only an authentication-mode change matters to us.
            let Some(p) = params.filter(|p| p.get("accessConfig").is_some()) else {
                return ignored("UpdateClusterConfig without accessConfig is not handled");
            };
            let Some(cluster) = p
                .get("name")
                .and_then(Value::as_str)
                .and_then(|n| n.parse().ok())
            else {
                return ignored("UpdateClusterConfig event without requestParameters.name");
            };
            EventClass::Eks(EksClusterEvent {
                cluster,
                resource_arn: None,
                kind: name.to_string(),
                region,
            })
        }
        other => ignored(format!("EKS event {other} is not handled")),
    }
}

#[cfg(test)]
mod tests;

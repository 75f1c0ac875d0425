//! Desired state: which IAM users are admins, and what an IAM event asks for.
//!
//! Tag matching: the key is compared exactly (IAM tag keys are
//! case-sensitive), and so is the value (see [`TagSpec::matches`]): a user
//! tagged `eks-access=Admin` is **not** an admin when the configured tag is
//! `eks-access=admin`. Granting cluster-admin on a near match is the worse
//! failure.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::model::arn::{UserArn, UserName};
use crate::model::config::TagSpec;
use crate::model::mapping::Offboarded;
use crate::model::tiers::Tier;
use crate::policy::event::{IamEventKind, IamUserEvent, TagHint};
use crate::policy::trust::PrincipalChange;

/// An IAM user as `GetAccountAuthorizationDetails` (filter `User`) returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IamUser {
    pub arn: UserArn,
    pub name: UserName,
    pub user_id: String,
    pub tags: Vec<(String, String)>,
    /// The IAM groups the user is in (`GroupList` of the listing, or
    /// `ListGroupsForUser` on an event when a tier selects by group).
    #[serde(default)]
    pub groups: Vec<String>,
}

impl IamUser {
    /// Whether the user carries the admin tag.
    pub fn has_tag(&self, tag: &TagSpec) -> bool {
        self.tags.iter().any(|(k, v)| tag.matches(k, v))
    }
}

impl IamUser {
    /// Whether the user belongs to `tier` (its tag, or one of its groups).
    pub fn is_member(&self, tier: &Tier) -> bool {
        tier.is_member(&self.tags, &self.groups)
    }
}

/// The ARNs of every member of `tier`.
pub fn tier_members(users: &[IamUser], tier: &Tier) -> BTreeSet<UserArn> {
    users
        .iter()
        .filter(|u| u.is_member(tier))
        .map(|u| u.arn.clone())
        .collect()
}

/// The ARNs of every user carrying `tag`.
pub fn admin_arns(users: &[IamUser], tag: &TagSpec) -> BTreeSet<UserArn> {
    users
        .iter()
        .filter(|u| u.has_tag(tag))
        .map(|u| u.arn.clone())
        .collect()
}

/// The targeted trust-policy change for an IAM event.
///
/// `current` is the user as IAM holds it now (re-read after the event, since
/// events arrive late and unordered), or `None` when the lookup missed. The
/// current state wins over the event's hint. A missed lookup removes someone only
/// on `DeleteUser` (every ARN of that name in the event's account, case ignored);
/// on any other event it may be eventual consistency or a spelling IAM resolves
/// but the read did not, so nobody is removed and the next full run decides.
/// Returns `None` when nothing is to change.
pub fn change_for_event(
    event: &IamUserEvent,
    current: Option<&IamUser>,
    tier: &Tier,
    hint: TagHint,
) -> Option<PrincipalChange> {
    match (event.kind, current) {
        (IamEventKind::DeleteUser, None) => Some(PrincipalChange::RemoveName {
            account: event.account.clone(),
            name: event.user_name.clone(),
        }),
        (_, None) => None,
        // A late DeleteUser for a user re-created since: its current tags decide.
        (_, Some(u)) if u.is_member(tier) => Some(PrincipalChange::Add(u.arn.clone())),
        (IamEventKind::DeleteUser, Some(u)) => Some(PrincipalChange::RemoveArn(u.arn.clone())),
        (_, Some(u)) => match hint {
            // Not tagged now: make sure the user is not trusted.
            TagHint::Removed | TagHint::Unknown | TagHint::Added => {
                Some(PrincipalChange::RemoveArn(u.arn.clone()))
            }
            TagHint::Unchanged => None,
        },
    }
}

/// Whom an IAM event offboards (their `mapUsers` entries and user access entries
/// go): only a `DeleteUser` whose user, re-read, no longer exists, matched by name
/// (case ignored) within the event's account. Losing the admin tag only takes a
/// user out of the trust policy; a re-created user is not offboarded.
pub fn offboarded_for_event(event: &IamUserEvent, current: Option<&IamUser>) -> Vec<Offboarded> {
    match (event.kind, current) {
        (IamEventKind::DeleteUser, None) => vec![Offboarded::Name {
            account: event.account.clone(),
            name: event.user_name.clone(),
        }],
        _ => Vec::new(),
    }
}

/// The directly mapped users (`mapUsers` ARNs, or user access entries) of `account`
/// who are missing from `existing`, the complete listing of its users (names in
/// lower case: IAM names ignore case): they no longer exist, and their mappings go.
/// Another account's users and entries that are not user ARNs are never stale.
pub fn stale_direct_users(
    user_arns: &[String],
    account: &str,
    existing: &BTreeSet<String>,
) -> Vec<UserArn> {
    user_arns
        .iter()
        .filter_map(|raw| raw.parse::<UserArn>().ok())
        .filter(|arn| {
            arn.account() == account
                && !existing.contains(&arn.name().as_str().to_ascii_lowercase())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_direct_users_are_this_accounts_missing_users_only() {
        let existing = BTreeSet::from(["alice".to_string()]);
        let mapped = [
            "arn:aws:iam::123456789012:user/Alice".to_string(),
            "arn:aws:iam::123456789012:user/team/bob".to_string(),
            "arn:aws:iam::210987654321:user/carol".to_string(),
            "arn:aws:iam::123456789012:role/node".to_string(),
            "not an arn".to_string(),
        ];
        let stale = stale_direct_users(&mapped, "123456789012", &existing);
        let names: Vec<String> = stale.iter().map(|a| a.name().to_string()).collect();
        assert_eq!(names, ["bob"]);
    }

    fn user(name: &str, tags: &[(&str, &str)]) -> IamUser {
        IamUser {
            arn: format!("arn:aws:iam::123456789012:user/{name}")
                .parse()
                .unwrap(),
            name: name.parse().unwrap(),
            user_id: "AIDAXQJ2KXNMEXAMPLE1".into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            groups: Vec::new(),
        }
    }

    #[test]
    fn admin_set_matches_key_and_value_exactly() {
        let tag: TagSpec = "eks-access=admin".parse().unwrap();
        let users = [
            user("alice", &[("eks-access", "admin")]),
            user("bob", &[("eks-access", "Admin")]),
            user("carol", &[("EKS-ACCESS", "admin")]),
            user("dave", &[("team", "x"), ("eks-access", "admin")]),
            user("erin", &[]),
        ];
        let got: Vec<String> = admin_arns(&users, &tag)
            .iter()
            .map(|a| a.name().to_string())
            .collect();
        assert_eq!(got, vec!["alice", "dave"]);
    }

    #[test]
    fn event_changes() {
        let tier = Tier::legacy_admin(
            "eks-admin".parse().unwrap(),
            "eks-access=admin".parse().unwrap(),
            String::new(),
            vec!["system:masters".into()],
        );
        let ev = |kind, hint| IamUserEvent {
            kind,
            user_name: "dave".parse().unwrap(),
            account: "123456789012".parse().unwrap(),
            event_id: None,
            event_time: None,
            hints: vec![hint],
            group: None,
        };
        let tagged = user("dave", &[("eks-access", "admin")]);
        let plain = user("dave", &[]);
        use IamEventKind::*;
        let cases = [
            (
                ev(CreateUser, TagHint::Added),
                Some(&tagged),
                Some(PrincipalChange::Add(tagged.arn.clone())),
            ),
            (ev(CreateUser, TagHint::Unchanged), Some(&plain), None),
            (
                ev(TagUser, TagHint::Added),
                Some(&plain),
                Some(PrincipalChange::RemoveArn(plain.arn.clone())),
            ),
            (
                ev(UntagUser, TagHint::Removed),
                Some(&plain),
                Some(PrincipalChange::RemoveArn(plain.arn.clone())),
            ),
            (
                ev(UntagUser, TagHint::Removed),
                Some(&tagged),
                Some(PrincipalChange::Add(tagged.arn.clone())),
            ),
            // A missed lookup on anything but DeleteUser removes nobody.
            (ev(TagUser, TagHint::Added), None, None),
            (ev(UntagUser, TagHint::Removed), None, None),
            (ev(CreateUser, TagHint::Added), None, None),
            (
                ev(DeleteUser, TagHint::Removed),
                None,
                Some(PrincipalChange::RemoveName {
                    account: "123456789012".parse().unwrap(),
                    name: "dave".parse().unwrap(),
                }),
            ),
            (
                ev(DeleteUser, TagHint::Removed),
                Some(&tagged),
                Some(PrincipalChange::Add(tagged.arn.clone())),
            ),
        ];
        for (e, cur, want) in cases {
            assert_eq!(change_for_event(&e, cur, &tier, e.hints[0]), want, "{e:?}");
        }
        // Only a DeleteUser whose user is gone offboards, in its own account.
        for (e, cur) in [
            (ev(DeleteUser, TagHint::Removed), None),
            (ev(DeleteUser, TagHint::Removed), Some(&plain)),
            (ev(UntagUser, TagHint::Removed), None),
            (ev(UntagUser, TagHint::Removed), Some(&plain)),
            (ev(TagUser, TagHint::Removed), Some(&plain)),
            (ev(CreateUser, TagHint::Unchanged), None),
        ] {
            let want = match (e.kind, cur) {
                (DeleteUser, None) => vec![Offboarded::Name {
                    account: "123456789012".parse().unwrap(),
                    name: "dave".parse().unwrap(),
                }],
                _ => Vec::new(),
            };
            assert_eq!(offboarded_for_event(&e, cur), want, "{e:?} {cur:?}");
        }
    }
}

//! Who can reach a cluster, with which rights, and why: the pure derivation of the
//! access audit from what a cluster holds (aws-auth, access entries) and what IAM
//! holds (users, roles and their trust policies, the tiers).
//!
//! Every principal that can authenticate is a [`Grant`]: the `mapRoles`, `mapUsers` and
//! `mapAccounts` entries of aws-auth (when the cluster reads it) and the access
//! entries (when it has them). A role's grant lists the principals its trust policy
//! admits (`trusted`: users by ARN, accounts, `*`), so that a tier role shows the
//! people behind it. Principals that no longer exist are flagged `dangling`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::arn::RoleArn;
use crate::model::tiers::Tier;
use crate::policy::accessentry::AccessEntryView;
use crate::policy::awsauth::{MAP_ROLES, MAP_USERS, parse_entries};
use crate::policy::desired::IamUser;
use crate::policy::shards::{SHARD_PATH, shard_index};

/// How a principal reaches the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Via {
    MapRoles,
    MapUsers,
    MapAccounts,
    AccessEntry,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::MapRoles => "aws-auth mapRoles",
            Via::MapUsers => "aws-auth mapUsers",
            Via::MapAccounts => "aws-auth mapAccounts",
            Via::AccessEntry => "access entry",
        }
    }
}

/// One principal's access to one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    /// The ARN (or account ID) the cluster matches callers against.
    pub principal: String,
    pub via: Via,
    /// What it gets: the Kubernetes username and groups (aws-auth, access entries) or
    /// the access policies with their scope (access entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub policies: Vec<String>,
    /// Why it is there: `tier <name>`, `node role`, `SSO permission set <name>`,
    /// `role mapping`, `direct user mapping`, `account mapping`.
    pub reason: String,
    /// For a role: the principals its trust policy admits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted: Vec<String>,
    /// The principal no longer exists (a deleted user or role): it grants nobody, and
    /// a new principal of the same name would not get it either (access entries) or
    /// would (aws-auth): clean it up.
    #[serde(default)]
    pub dangling: bool,
}

/// What IAM holds, read once per audit.
pub struct Directory<'a> {
    pub users: &'a [IamUser],
    /// Every role: its ARN and trust policy.
    pub roles: &'a [(RoleArn, String)],
    pub tiers: &'a [Tier],
}

/// The principals a trust policy admits to `sts:AssumeRole` (Allow statements; `AWS`
/// principals: user and role ARNs, account roots, `*`).
pub fn trusted_principals(policy: &str) -> Vec<String> {
    let Ok(doc) = serde_json::from_str::<Value>(policy) else {
        return Vec::new();
    };
    let statements = match doc.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(s @ Value::Object(_)) => vec![s.clone()],
        _ => Vec::new(),
    };
    let strings = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut out = Vec::new();
    for s in &statements {
        let allows = s.get("Effect").and_then(Value::as_str) == Some("Allow");
        let assumes = strings(s.get("Action")).iter().any(|a| {
            matches!(
                a.to_ascii_lowercase().as_str(),
                "sts:assumerole" | "sts:*" | "*"
            )
        });
        if !(allows && assumes) {
            continue;
        }
        let principals = match s.get("Principal") {
            Some(Value::String(p)) if p == "*" => vec!["*".to_owned()],
            Some(p) => strings(p.get("AWS")),
            None => Vec::new(),
        };
        for p in principals {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// The role of `arn` in the listing (path and case ignored: aws-auth drops paths).
fn find_role<'a>(dir: &'a Directory<'_>, arn: &str) -> Option<&'a (RoleArn, String)> {
    let arn: RoleArn = arn.parse().ok()?;
    dir.roles
        .iter()
        .find(|(r, _)| r.eq_ignoring_path_and_case(&arn))
}

fn user_exists(dir: &Directory<'_>, arn: &str) -> bool {
    dir.users
        .iter()
        .any(|u| u.arn.as_str().eq_ignore_ascii_case(arn))
}

/// Why a role is mapped.
fn role_reason(dir: &Directory<'_>, arn: &str, groups: &[String]) -> String {
    let name = arn.rsplit('/').next().unwrap_or(arn);
    // The tier role itself, or one of its shards (`<role>-k` at the shard path).
    let shard_path = arn.contains(&format!(":role{SHARD_PATH}"));
    for t in dir.tiers {
        match shard_index(&t.role, name) {
            Some(1) => return format!("tier {}", t.name),
            Some(k)
                if shard_path
                    || find_role(dir, arn).is_some_and(|(a, _)| a.path() == SHARD_PATH) =>
            {
                return format!("tier {} (shard {k})", t.name);
            }
            _ => {}
        }
    }
    if groups.iter().any(|g| g == "system:nodes") {
        return "node role".to_owned();
    }
    if let Some(rest) = name.strip_prefix("AWSReservedSSO_") {
        // AWSReservedSSO_<permission set>_<16 hex>
        let set = rest.rsplit_once('_').map_or(rest, |(s, _)| s);
        return format!("SSO permission set {set}");
    }
    "role mapping".to_owned()
}

fn role_grant(
    dir: &Directory<'_>,
    via: Via,
    arn: &str,
    username: Option<String>,
    groups: Vec<String>,
    policies: Vec<String>,
) -> Grant {
    let role = find_role(dir, arn);
    Grant {
        principal: arn.to_owned(),
        via,
        username,
        reason: role_reason(dir, arn, &groups),
        groups,
        policies,
        trusted: role.map(|(_, p)| trusted_principals(p)).unwrap_or_default(),
        dangling: role.is_none(),
    }
}

fn str_field(e: &Value, k: &str) -> Option<String> {
    e.get(k).and_then(Value::as_str).map(str::to_owned)
}

fn groups_field(e: &Value) -> Vec<String> {
    e.get("groups")
        .and_then(Value::as_array)
        .map(|g| {
            g.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The grants of aws-auth's `data`; a key that does not parse is reported, not guessed.
pub fn aws_auth_grants(
    dir: &Directory<'_>,
    data: &BTreeMap<String, String>,
) -> (Vec<Grant>, Vec<String>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    if let Some(text) = data.get(MAP_ROLES) {
        match parse_entries(MAP_ROLES, text) {
            Ok(entries) => out.extend(entries.iter().filter_map(|e| {
                let arn = str_field(e, "rolearn")?;
                Some(role_grant(
                    dir,
                    Via::MapRoles,
                    &arn,
                    str_field(e, "username"),
                    groups_field(e),
                    Vec::new(),
                ))
            })),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if let Some(text) = data.get(MAP_USERS) {
        match parse_entries(MAP_USERS, text) {
            Ok(entries) => out.extend(entries.iter().filter_map(|e| {
                let arn = str_field(e, "userarn")?;
                Some(Grant {
                    dangling: !user_exists(dir, &arn),
                    principal: arn,
                    via: Via::MapUsers,
                    username: str_field(e, "username"),
                    groups: groups_field(e),
                    policies: Vec::new(),
                    reason: "direct user mapping".to_owned(),
                    trusted: Vec::new(),
                })
            })),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if let Some(text) = data.get("mapAccounts") {
        match serde_saphyr::from_str::<Vec<Value>>(text) {
            Ok(accounts) => out.extend(accounts.iter().map(|a| Grant {
                principal: a.as_str().map_or_else(|| a.to_string(), str::to_owned),
                via: Via::MapAccounts,
                username: None,
                groups: Vec::new(),
                policies: Vec::new(),
                reason: "account mapping (every principal of the account)".to_owned(),
                trusted: Vec::new(),
                dangling: false,
            })),
            Err(e) => problems.push(format!("mapAccounts: {e}")),
        }
    }
    (out, problems)
}

/// The grants of a cluster's access entries (described).
pub fn access_entry_grants(dir: &Directory<'_>, entries: &[AccessEntryView]) -> Vec<Grant> {
    entries
        .iter()
        .map(|e| {
            let policies = e
                .policies
                .iter()
                .map(|(arn, scope)| {
                    let name = arn.rsplit('/').next().unwrap_or(arn);
                    match e.policy_namespaces.get(arn) {
                        Some(ns) => format!("{name} (namespaces {})", ns.join(", ")),
                        None => format!("{name} ({scope} scope)"),
                    }
                })
                .collect();
            if e.principal_arn.contains(":user/") {
                Grant {
                    principal: e.principal_arn.clone(),
                    via: Via::AccessEntry,
                    username: e.username.clone(),
                    groups: e.kubernetes_groups.clone(),
                    policies,
                    reason: "direct user entry".to_owned(),
                    trusted: Vec::new(),
                    dangling: !user_exists(dir, &e.principal_arn),
                }
            } else {
                role_grant(
                    dir,
                    Via::AccessEntry,
                    &e.principal_arn,
                    e.username.clone(),
                    e.kubernetes_groups.clone(),
                    policies,
                )
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;

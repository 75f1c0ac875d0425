//! Access tiers: which IAM users get which role, on which clusters, with which
//! Kubernetes rights. The validated model of the access configuration (a YAML document:
//! the `ACCESS_CONFIG` environment variable or the CLI's `--config FILE`); the parser is
//! in `parse`.
//!
//! Without a configuration, today's environment variables make one tier, `admin`
//! ([`Tier::legacy_admin`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::model::arn::{AccountId, RoleName};
use crate::model::config::TagSpec;

mod error;
mod parse;
#[cfg(test)]
mod tests;

pub use error::{AccessConfigError, Position};

/// The largest accepted configuration, in bytes. It travels in the `ACCESS_CONFIG`
/// environment variable, and Lambda allows 4 KB for all of a function's variables
/// together; the rest is left to the other variables.
pub const MAX_ACCESS_CONFIG_BYTES: usize = 3072;

/// The prefix of a tier's own Kubernetes group (`eks-access-sync:<tier>`).
pub const OWN_GROUP_PREFIX: &str = "eks-access-sync:";

/// Whether a mapping or access entry with these Kubernetes groups is a retired tier's:
/// it has groups, every one a tier group, none of them in `live` (the groups of the
/// configured tiers that apply). An entry mixing in any other group is not the tool's.
pub fn is_retired_tier(groups: &[String], live: &[String]) -> bool {
    !groups.is_empty()
        && groups
            .iter()
            .all(|g| g.starts_with(OWN_GROUP_PREFIX) && !live.contains(g))
}

/// A name, pattern or policy that breaks its rules; the parser adds the location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {kind}: {reason}")]
pub struct NameError {
    pub value: String,
    pub kind: &'static str,
    pub reason: String,
}

fn name_error(value: &str, kind: &'static str, reason: impl Into<String>) -> NameError {
    NameError {
        value: value.to_string(),
        kind,
        reason: reason.into(),
    }
}

/// Implements `as_str`, `Display`, `TryFrom<String>` and `From<T> for String` of a
/// validated string newtype (serde goes through the last two).
macro_rules! validated_string {
    ($ty:ident) => {
        impl $ty {
            /// The value as given.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl TryFrom<String> for $ty {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                s.parse()
            }
        }
        impl From<$ty> for String {
            fn from(v: $ty) -> String {
                v.0
            }
        }
    };
}

/// Whether `s` is `[a-z0-9-]*`, starting with a letter or digit.
fn is_lower_dns_prefix(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A DNS-1123 label: 1 to 63 of `[a-z0-9-]`, starting and ending with a letter or digit.
/// The reason it is not one, if it is not.
fn dns_label_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() || s.len() > 63 {
        Some("must be 1 to 63 characters")
    } else if s.chars().any(|c| c.is_ascii_uppercase()) {
        Some("upper-case letters are not allowed (lower case a-z, digits and '-' only)")
    } else if !is_lower_dns_prefix(s) {
        Some("lower case a-z, digits and '-' only, starting with a letter or digit")
    } else if s.ends_with('-') {
        Some("must end with a letter or digit")
    } else {
        None
    }
}

/// A tier's name: a DNS-1123 label (1 to 63 of `[a-z0-9-]`, starting and ending with
/// a letter or digit), since it becomes part of a Kubernetes group and binding names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TierName(String);
validated_string!(TierName);

impl FromStr for TierName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        match dns_label_problem(s) {
            Some(reason) => Err(name_error(s, "tier name", reason)),
            None => Ok(Self(s.to_string())),
        }
    }
}

/// An IAM group name: 1 to 128 of `[A-Za-z0-9+=,.@_-]`. IAM compares group names
/// without regard to case ([`GroupName::eq_ignore_case`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GroupName(String);
validated_string!(GroupName);

impl GroupName {
    /// Whether `other` names the same IAM group (IAM names are case-insensitive).
    pub fn eq_ignore_case(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

impl FromStr for GroupName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        if s.is_empty() || s.len() > 128 {
            return Err(name_error(
                s,
                "IAM group name",
                "must be 1 to 128 characters",
            ));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "+=,.@_-".contains(*c)))
        {
            return Err(name_error(
                s,
                "IAM group name",
                format!("character {c:?} is not allowed (letters, digits and +=,.@_- only)"),
            ));
        }
        Ok(Self(s.to_string()))
    }
}

/// An EKS access policy a tier grants, and the Kubernetes ClusterRole of the same
/// rights (what the tool binds on `aws-auth` clusters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum AccessPolicy {
    ClusterAdmin,
    Admin,
    Edit,
    View,
}

impl AccessPolicy {
    /// Every policy, most rights first.
    pub const ALL: [AccessPolicy; 4] = [Self::ClusterAdmin, Self::Admin, Self::Edit, Self::View];

    /// The EKS policy name, e.g. `AmazonEKSEditPolicy`.
    pub fn name(self) -> &'static str {
        match self {
            Self::ClusterAdmin => "AmazonEKSClusterAdminPolicy",
            Self::Admin => "AmazonEKSAdminPolicy",
            Self::Edit => "AmazonEKSEditPolicy",
            Self::View => "AmazonEKSViewPolicy",
        }
    }

    /// The policy ARN in the `aws` partition.
    pub fn arn(self) -> String {
        self.arn_in_partition("aws")
    }

    /// The policy ARN in `partition` (`aws`, `aws-cn`, `aws-us-gov`, …).
    pub fn arn_in_partition(self, partition: &str) -> String {
        format!(
            "arn:{partition}:eks::aws:cluster-access-policy/{}",
            self.name()
        )
    }

    /// The Kubernetes ClusterRole that grants the same rights.
    pub fn cluster_role(self) -> &'static str {
        match self {
            Self::ClusterAdmin => "cluster-admin",
            Self::Admin => "admin",
            Self::Edit => "edit",
            Self::View => "view",
        }
    }
}

impl fmt::Display for AccessPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AccessPolicy {
    type Err = NameError;
    /// A policy name, or its full ARN (any partition).
    fn from_str(s: &str) -> Result<Self, NameError> {
        let name = match s.strip_prefix("arn:") {
            Some(rest) => match rest.split_once(":eks::aws:cluster-access-policy/") {
                Some((partition, name)) if !partition.is_empty() => name,
                _ => s,
            },
            None => s,
        };
        Self::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|p| p.name()).collect();
                name_error(
                    s,
                    "access policy",
                    format!("expected one of {}", names.join(", ")),
                )
            })
    }
}

impl TryFrom<String> for AccessPolicy {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        s.parse()
    }
}

impl From<AccessPolicy> for String {
    fn from(p: AccessPolicy) -> String {
        p.name().to_string()
    }
}

/// A namespace an access policy is scoped to, as EKS accepts it: a Kubernetes
/// namespace name (DNS-1123 label), or a prefix of one followed by a single trailing
/// `*` (`team-b-*`: every namespace whose name starts with `team-b-`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NamespacePattern(String);
validated_string!(NamespacePattern);

impl NamespacePattern {
    /// Whether the pattern ends in `*`.
    pub fn is_wildcard(&self) -> bool {
        self.0.ends_with('*')
    }

    /// Whether namespace `ns` is covered: the same name, or for a wildcard, a name
    /// starting with the text before the `*`.
    pub fn matches(&self, ns: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => ns.starts_with(prefix),
            None => self.0 == ns,
        }
    }
}

impl FromStr for NamespacePattern {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let bad = |reason: &str| Err(name_error(s, "namespace pattern", reason));
        let Some(prefix) = s.strip_suffix('*') else {
            if s.contains('*') {
                return bad("'*' is allowed only once, as the last character");
            }
            return match dns_label_problem(s) {
                Some(reason) => bad(reason),
                None => Ok(Self(s.to_string())),
            };
        };
        if prefix.contains('*') {
            return bad("'*' is allowed only once, as the last character");
        }
        if prefix.is_empty() {
            return bad("'*' alone is not a namespace: omit `namespaces` for cluster scope");
        }
        if prefix.len() > 62 {
            return bad("the text before '*' must be at most 62 characters");
        }
        if prefix.chars().any(|c| c.is_ascii_uppercase()) {
            return bad("upper-case letters are not allowed (lower case a-z, digits and '-' only)");
        }
        if !is_lower_dns_prefix(prefix) {
            return bad("lower case a-z, digits and '-' only, starting with a letter or digit");
        }
        Ok(Self(s.to_string()))
    }
}

/// Who belongs to a tier: users carrying a tag, members of IAM groups, or both
/// (at least one of the two is set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Members {
    pub tag: Option<TagSpec>,
    pub groups: Vec<GroupName>,
}

/// The Kubernetes rights of a tier: an EKS access policy at cluster scope (no
/// namespaces) or in the namespaces matching the patterns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeAccess {
    pub policy: AccessPolicy,
    pub namespaces: Vec<NamespacePattern>,
}

impl KubeAccess {
    /// Whether the policy applies to the whole cluster.
    pub fn is_cluster_scope(&self) -> bool {
        self.namespaces.is_empty()
    }
}

/// One access tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    pub name: TierName,
    /// The role whose trust policy lists the members.
    pub role: RoleName,
    pub members: Members,
    /// The managed clusters this tier applies to; `None`: every managed cluster.
    pub clusters: Option<TagSpec>,
    pub kubernetes: KubeAccess,
    /// The `aws-auth` `mapRoles` username template of the role.
    pub username: String,
    /// The `aws-auth` `mapRoles` groups of the role.
    pub groups: Vec<String>,
}

impl Tier {
    /// The tier made from the single-tier environment variables: `admin`, cluster
    /// admin on every managed cluster, members by tag only.
    pub fn legacy_admin(
        role: RoleName,
        tag: TagSpec,
        username: String,
        groups: Vec<String>,
    ) -> Tier {
        Tier {
            name: TierName("admin".to_string()),
            role,
            members: Members {
                tag: Some(tag),
                groups: Vec::new(),
            },
            clusters: None,
            kubernetes: KubeAccess {
                policy: AccessPolicy::ClusterAdmin,
                namespaces: Vec::new(),
            },
            username,
            groups,
        }
    }

    /// The tier's own Kubernetes group, `eks-access-sync:<name>`.
    pub fn own_group(&self) -> String {
        format!("{OWN_GROUP_PREFIX}{}", self.name)
    }

    /// Whether the role is mapped to the tier's own group, so that the tool owns the
    /// RBAC bindings granting that group the policy's ClusterRole.
    pub fn manages_bindings(&self) -> bool {
        self.groups.contains(&self.own_group())
    }

    /// Whether a user with these tags and IAM groups belongs to the tier.
    pub fn is_member(&self, user_tags: &[(String, String)], user_groups: &[String]) -> bool {
        let by_tag = self
            .members
            .tag
            .as_ref()
            .is_some_and(|t| user_tags.iter().any(|(k, v)| t.matches(k, v)));
        by_tag
            || self
                .members
                .groups
                .iter()
                .any(|g| user_groups.iter().any(|ug| g.eq_ignore_case(ug)))
    }

    /// One line for `config check`: name, role, members, clusters, policy and scope.
    pub fn summary(&self) -> String {
        let mut members = Vec::new();
        if let Some(tag) = &self.members.tag {
            members.push(format!("tag {tag}"));
        }
        if !self.members.groups.is_empty() {
            let groups: Vec<&str> = self.members.groups.iter().map(GroupName::as_str).collect();
            members.push(format!("groups {}", groups.join(", ")));
        }
        let clusters = match &self.clusters {
            Some(tag) => format!("clusters tagged {tag}"),
            None => "every managed cluster".to_string(),
        };
        let scope = if self.kubernetes.is_cluster_scope() {
            "cluster scope".to_string()
        } else {
            let ns: Vec<&str> = self
                .kubernetes
                .namespaces
                .iter()
                .map(NamespacePattern::as_str)
                .collect();
            format!("namespaces {}", ns.join(", "))
        };
        format!(
            "{}: role {}; members {}; {}; {} at {}",
            self.name,
            self.role,
            members.join(" or "),
            clusters,
            self.kubernetes.policy,
            scope
        )
    }
}

/// A member account whose clusters the tiers reach (issue 12), through its member
/// role (`infra/member.yaml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAccount {
    pub id: AccountId,
    /// Where its clusters are; empty: the hub's `CLUSTER_REGIONS`.
    pub regions: Vec<String>,
}

/// The access configuration: at least one tier; names unique, roles unique (ignoring
/// case, as IAM does); the member accounts, each once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessConfig {
    pub tiers: Vec<Tier>,
    #[serde(default)]
    pub accounts: Vec<MemberAccount>,
}

impl AccessConfig {
    /// Parses and validates a YAML document (at most [`MAX_ACCESS_CONFIG_BYTES`]).
    pub fn from_yaml(text: &str) -> Result<AccessConfig, AccessConfigError> {
        parse::from_yaml(text)
    }

    /// The tier of that name.
    pub fn tier(&self, name: &str) -> Option<&Tier> {
        self.tiers.iter().find(|t| t.name.as_str() == name)
    }

    /// Every tier's role, in the order of the tiers.
    pub fn roles(&self) -> Vec<&RoleName> {
        self.tiers.iter().map(|t| &t.role).collect()
    }
}

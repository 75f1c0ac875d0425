//! Configuration shared by the Lambdas and the CLI, read from the environment
//! and validated once at start.
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `ACCESS_CONFIG` | (none) | the access configuration, YAML ([`AccessConfig`]); replaces the four tier variables below |
//! | `ADMIN_ROLE_NAME` | (required without `ACCESS_CONFIG`) | the admin role whose trust policy we manage |
//! | `ADMIN_USER_TAG` | `eks-access=admin` | IAM users with this tag are admins |
//! | `CLUSTER_TAG` | `eks-access-sync/managed=true` | EKS clusters with this tag are managed |
//! | `K8S_USERNAME` | `admin:{{AccessKeyID}}:{{SessionName}}` | Kubernetes username of the mapping |
//! | `K8S_GROUPS` | `system:masters` | comma list of Kubernetes groups |
//! | `TRUST_STATEMENT_SID` | `EksAccessSyncAdmins` | Sid of the statement we own |
//! | `TRUST_POLICY_MAX_CHARS` | `2048` | trust-policy size quota (IAM `ACLSizePerRole`) |
//! | `REQUIRE_SESSION_NAME` | `false` | require `sts:RoleSessionName` = `${aws:username}` |
//! | `CLUSTER_REGIONS` | `AWS_REGION`, else `AWS_DEFAULT_REGION` | comma list of regions |
//! | `CLUSTER_CONCURRENCY` | `100` | clusters handled at once (≥ 1) |
//! | `TRUST_LOCK_TABLE` | (none: no lock) | DynamoDB table of the lease that serializes trust-policy writers |
//! | `ACCESS_EVENT_BUS` | (none: no events) | EventBridge bus the access events go to (the stack: `default`) |
//! | `SHARD_PERMISSIONS_BOUNDARY` | (none) | ARN of the permissions boundary given to the shard roles the tool creates (the stack: its deny-all policy) |
//! | `MEMBER_ROLE_NAME` | `eks-access-sync-member` | the role each member account's stack creates (`infra/member.yaml`); assumed for the `accounts` of the access configuration |
//!
//! Empty values count as unset. Every error names the variable, the bad value
//! and what was expected.
//!
//! Without `ACCESS_CONFIG`, `ADMIN_ROLE_NAME`, `ADMIN_USER_TAG`, `K8S_USERNAME` and
//! `K8S_GROUPS` make the one tier `admin` ([`Tier::legacy_admin`]); with it they are
//! not read (`ADMIN_USER_TAG` only fills the transitional field when the first tier
//! selects by group alone).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::model::arn::{ArnError, RoleName};
use crate::model::cluster::Place;
use crate::model::tiers::{AccessConfig, AccessConfigError, Tier};

/// A configuration value is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{var} is not set; expected {expected}")]
    Missing {
        var: &'static str,
        expected: &'static str,
    },
    /// A variable is set to a value we cannot use.
    #[error("{var}={value:?} is invalid: expected {expected}")]
    Invalid {
        var: &'static str,
        value: String,
        expected: String,
    },
    /// `ACCESS_CONFIG` is not a valid access configuration (the message names the line).
    #[error("ACCESS_CONFIG is invalid: {0}")]
    Access(#[source] AccessConfigError),
}

/// A `key=value` tag filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagSpec {
    pub key: String,
    pub value: String,
}

impl TagSpec {
    /// Whether an IAM/EKS tag matches: key and value compared exactly (IAM tag
    /// keys are case-sensitive; the value is compared exactly too, so that
    /// `Admin` does not silently grant what `admin` grants).
    pub fn matches(&self, key: &str, value: &str) -> bool {
        self.key == key && self.value == value
    }
}

/// A tag specification that is not `key=value` within IAM's limits; the text says
/// what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{expected}")]
pub struct TagSpecError {
    pub expected: &'static str,
}

impl FromStr for TagSpec {
    type Err = TagSpecError;
    fn from_str(s: &str) -> Result<Self, TagSpecError> {
        let bad = |expected| Err(TagSpecError { expected });
        let Some((k, v)) = s.split_once('=') else {
            return bad("key=value");
        };
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() || k.len() > 128 {
            return bad("key=value with a key of 1 to 128 characters");
        }
        if v.len() > 256 {
            return bad("key=value with a value of at most 256 characters");
        }
        Ok(TagSpec {
            key: k.to_string(),
            value: v.to_string(),
        })
    }
}

impl fmt::Display for TagSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The access tiers (never empty): `ACCESS_CONFIG`, else the one tier `admin` of
    /// the single-tier variables.
    pub access: AccessConfig,
    /// Transitional (until the engine runs per tier): the first tier's role.
    pub admin_role_name: RoleName,
    /// Transitional: the first tier's member tag (`ADMIN_USER_TAG` if it has none).
    pub admin_user_tag: TagSpec,
    pub cluster_tag: TagSpec,
    /// Transitional: the first tier's `aws-auth` username.
    pub k8s_username: String,
    /// Transitional: the first tier's `aws-auth` groups.
    pub k8s_groups: Vec<String>,
    pub trust_statement_sid: String,
    pub trust_policy_max_chars: usize,
    pub require_session_name: bool,
    pub cluster_regions: Vec<String>,
    /// Clusters handled at once in each account and region.
    pub cluster_concurrency: usize,
    /// DynamoDB table holding the trust-policy lease; `None`: writes are not
    /// serialized (one writer, e.g. the CLI on a laptop).
    #[serde(default)]
    pub trust_lock_table: Option<String>,
    /// EventBridge bus of the access events; `None`: none are put.
    #[serde(default)]
    pub access_event_bus: Option<String>,
    /// Permissions boundary of the shard roles the tool creates
    /// ([`crate::policy::shards`]); `None`: created without one.
    #[serde(default)]
    pub shard_permissions_boundary: Option<String>,
    /// The member accounts' role (`MEMBER_ROLE_NAME`), assumed to reach the clusters of
    /// `access.accounts`.
    #[serde(default = "default_member_role")]
    pub member_role: RoleName,
}

/// The default of `MEMBER_ROLE_NAME` (also `infra/member.yaml`'s).
pub const DEFAULT_MEMBER_ROLE_NAME: &str = "eks-access-sync-member";

fn default_member_role() -> RoleName {
    RoleName::constant(DEFAULT_MEMBER_ROLE_NAME)
}

impl Config {
    /// Where the clusters are listed: the hub's regions, then each member account's
    /// (its own regions, else the hub's).
    pub fn places(&self) -> Vec<Place> {
        let mut out: Vec<Place> = self.cluster_regions.iter().map(Place::hub).collect();
        for a in &self.access.accounts {
            let regions = if a.regions.is_empty() {
                &self.cluster_regions
            } else {
                &a.regions
            };
            out.extend(
                regions
                    .iter()
                    .map(|r| Place::member(a.id.clone(), r.clone())),
            );
        }
        out
    }
}

/// Default values.
pub const DEFAULT_ADMIN_USER_TAG: &str = "eks-access=admin";
pub const DEFAULT_CLUSTER_TAG: &str = "eks-access-sync/managed=true";
pub const DEFAULT_K8S_USERNAME: &str = "admin:{{AccessKeyID}}:{{SessionName}}";
pub const DEFAULT_K8S_GROUPS: &str = "system:masters";
pub const DEFAULT_TRUST_STATEMENT_SID: &str = "EksAccessSyncAdmins";
pub const DEFAULT_TRUST_POLICY_MAX_CHARS: usize = 2048;
/// The EKS quota of clusters per region: by default every cluster of a region is
/// handled at once, so a run takes the same few round trips at 1 or 100 clusters.
pub const DEFAULT_CLUSTER_CONCURRENCY: usize = 100;

fn parse_bool(var: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ConfigError::Invalid {
            var,
            value: v.to_string(),
            expected: "true/false/1/0/yes/no".into(),
        }),
    }
}

fn parse_positive(var: &'static str, v: &str) -> Result<usize, ConfigError> {
    match v.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(ConfigError::Invalid {
            var,
            value: v.to_string(),
            expected: "a positive integer".into(),
        }),
    }
}

fn comma_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A DynamoDB table name: 3 to 255 of `[A-Za-z0-9_.-]`.
fn is_table_name(t: &str) -> bool {
    (3..=255).contains(&t.len())
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// An AWS region name: lower-case letters, digits and at least two `-`.
pub(crate) fn is_region(r: &str) -> bool {
    !r.is_empty()
        && r.split('-').count() >= 3
        && r.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads through `get` (a test passes a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());

        let tag = |var: &'static str, default: &str| -> Result<TagSpec, ConfigError> {
            let v = get(var).unwrap_or_else(|| default.to_string());
            v.parse().map_err(|e: TagSpecError| ConfigError::Invalid {
                var,
                value: v.clone(),
                expected: e.to_string(),
            })
        };
        let admin_user_tag = tag("ADMIN_USER_TAG", DEFAULT_ADMIN_USER_TAG)?;
        let cluster_tag = tag("CLUSTER_TAG", DEFAULT_CLUSTER_TAG)?;

        let access = match get("ACCESS_CONFIG") {
            Some(text) => AccessConfig::from_yaml(&text).map_err(ConfigError::Access)?,
            None => AccessConfig {
                tiers: vec![legacy_tier(&get, admin_user_tag.clone())?],
                accounts: Vec::new(),
            },
        };
        let first = access.tiers.first().ok_or(ConfigError::Missing {
            var: "ACCESS_CONFIG",
            expected: "at least one tier",
        })?;
        let admin_role_name = first.role.clone();
        let admin_user_tag = first.members.tag.clone().unwrap_or(admin_user_tag);
        let k8s_username = first.username.clone();
        let k8s_groups = first.groups.clone();

        let sid = get("TRUST_STATEMENT_SID")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| DEFAULT_TRUST_STATEMENT_SID.to_string());
        if !sid.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ConfigError::Invalid {
                var: "TRUST_STATEMENT_SID",
                value: sid,
                expected: "letters and digits only ([A-Za-z0-9]+)".into(),
            });
        }

        let trust_policy_max_chars = match get("TRUST_POLICY_MAX_CHARS") {
            Some(v) => parse_positive("TRUST_POLICY_MAX_CHARS", &v)?,
            None => DEFAULT_TRUST_POLICY_MAX_CHARS,
        };
        let require_session_name = match get("REQUIRE_SESSION_NAME") {
            Some(v) => parse_bool("REQUIRE_SESSION_NAME", &v)?,
            None => false,
        };
        let cluster_concurrency = match get("CLUSTER_CONCURRENCY") {
            Some(v) => parse_positive("CLUSTER_CONCURRENCY", &v)?,
            None => DEFAULT_CLUSTER_CONCURRENCY,
        };

        let trust_lock_table = lookup_trust_lock_table(&get)?;
        let access_event_bus = lookup_event_bus(&get)?;
        let cluster_regions = lookup_regions(&get)?;
        let shard_permissions_boundary = lookup_boundary(&get)?;
        let member_role = match get("MEMBER_ROLE_NAME") {
            Some(v) => v
                .trim()
                .parse()
                .map_err(|e: ArnError| ConfigError::Invalid {
                    var: "MEMBER_ROLE_NAME",
                    value: v.clone(),
                    expected: format!("the name of the member accounts' role, not its ARN ({e})"),
                })?,
            None => default_member_role(),
        };

        Ok(Config {
            access,
            admin_role_name,
            admin_user_tag,
            cluster_tag,
            k8s_username,
            k8s_groups,
            trust_statement_sid: sid,
            trust_policy_max_chars,
            require_session_name,
            cluster_regions,
            cluster_concurrency,
            trust_lock_table,
            access_event_bus,
            shard_permissions_boundary,
            member_role,
        })
    }
}

/// `SHARD_PERMISSIONS_BOUNDARY`: an IAM managed policy ARN.
fn lookup_boundary(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(v) = get("SHARD_PERMISSIONS_BOUNDARY") else {
        return Ok(None);
    };
    let arn = v.trim();
    let ok =
        arn.starts_with("arn:") && arn.split(':').nth(2) == Some("iam") && arn.contains(":policy/");
    if ok {
        Ok(Some(arn.to_owned()))
    } else {
        Err(ConfigError::Invalid {
            var: "SHARD_PERMISSIONS_BOUNDARY",
            value: v.clone(),
            expected: "the ARN of an IAM managed policy (arn:aws:iam::123456789012:policy/name)"
                .into(),
        })
    }
}

/// `ACCESS_EVENT_BUS`: an event bus name (1 to 256 of `A-Z a-z 0-9 . _ - /`) or ARN.
fn lookup_event_bus(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(v) = get("ACCESS_EVENT_BUS") else {
        return Ok(None);
    };
    let bus = v.trim();
    let name_ok = (1..=256).contains(&bus.len())
        && bus
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
    if name_ok || (bus.starts_with("arn:") && bus.contains(":event-bus/")) {
        Ok(Some(bus.to_owned()))
    } else {
        Err(ConfigError::Invalid {
            var: "ACCESS_EVENT_BUS",
            value: v.clone(),
            expected: "an EventBridge event bus name (e.g. default) or ARN".into(),
        })
    }
}

/// The tier `admin` of the single-tier variables: `ADMIN_ROLE_NAME` (required),
/// the member tag `ADMIN_USER_TAG`, `K8S_USERNAME` and `K8S_GROUPS`.
fn legacy_tier(get: &dyn Fn(&str) -> Option<String>, tag: TagSpec) -> Result<Tier, ConfigError> {
    let role = get("ADMIN_ROLE_NAME").ok_or(ConfigError::Missing {
        var: "ADMIN_ROLE_NAME",
        expected: "the name of the admin IAM role (not its ARN), or ACCESS_CONFIG",
    })?;
    let role_name = role
        .trim()
        .parse::<RoleName>()
        .map_err(|e| ConfigError::Invalid {
            var: "ADMIN_ROLE_NAME",
            value: role.clone(),
            expected: format!("an IAM role name, not an ARN ({e})"),
        })?;
    let username = get("K8S_USERNAME")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| DEFAULT_K8S_USERNAME.to_string());
    let groups_raw = get("K8S_GROUPS").unwrap_or_else(|| DEFAULT_K8S_GROUPS.to_string());
    let groups = comma_list(&groups_raw);
    if groups.is_empty() {
        return Err(ConfigError::Invalid {
            var: "K8S_GROUPS",
            value: groups_raw,
            expected: "a comma-separated list of at least one Kubernetes group".into(),
        });
    }
    Ok(Tier::legacy_admin(role_name, tag, username, groups))
}

/// `TRUST_LOCK_TABLE`: a DynamoDB table name, if set.
fn lookup_trust_lock_table(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, ConfigError> {
    Ok(match get("TRUST_LOCK_TABLE") {
        Some(v) if is_table_name(v.trim()) => Some(v.trim().to_string()),
        Some(v) => {
            return Err(ConfigError::Invalid {
                var: "TRUST_LOCK_TABLE",
                value: v,
                expected: "a DynamoDB table name (3 to 255 of A-Z a-z 0-9 _ . -), not an ARN"
                    .into(),
            });
        }
        None => None,
    })
}

/// `CLUSTER_REGIONS` (else `AWS_REGION`, else `AWS_DEFAULT_REGION`), deduplicated.
fn lookup_regions(get: &dyn Fn(&str) -> Option<String>) -> Result<Vec<String>, ConfigError> {
    let (regions_var, regions_raw) = match get("CLUSTER_REGIONS") {
        Some(v) => ("CLUSTER_REGIONS", v),
        None => match get("AWS_REGION") {
            Some(v) => ("AWS_REGION", v),
            None => match get("AWS_DEFAULT_REGION") {
                Some(v) => ("AWS_DEFAULT_REGION", v),
                None => {
                    return Err(ConfigError::Missing {
                        var: "CLUSTER_REGIONS",
                        expected: "a comma list of regions (e.g. us-east-1,eu-west-1); \
                                   it defaults to AWS_REGION or AWS_DEFAULT_REGION, \
                                   and neither is set",
                    });
                }
            },
        },
    };
    let mut cluster_regions = comma_list(&regions_raw);
    let mut seen = std::collections::BTreeSet::new();
    cluster_regions.retain(|r| seen.insert(r.clone()));
    if cluster_regions.is_empty() || !cluster_regions.iter().all(|r| is_region(r)) {
        return Err(ConfigError::Invalid {
            var: regions_var,
            value: regions_raw,
            expected: "a comma list of AWS regions such as us-east-1,eu-west-1".into(),
        });
    }
    Ok(cluster_regions)
}

#[cfg(test)]
mod access_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = cfg(&[("ADMIN_ROLE_NAME", "EksAdmin"), ("AWS_REGION", "us-east-1")]).unwrap();
        assert_eq!(c.admin_role_name.as_str(), "EksAdmin");
        assert_eq!(c.admin_user_tag, "eks-access=admin".parse().unwrap());
        assert_eq!(c.cluster_tag.key, "eks-access-sync/managed");
        assert_eq!(c.cluster_tag.value, "true");
        assert_eq!(c.k8s_username, DEFAULT_K8S_USERNAME);
        assert_eq!(c.k8s_groups, vec!["system:masters"]);
        assert_eq!(c.trust_statement_sid, "EksAccessSyncAdmins");
        assert_eq!(c.trust_policy_max_chars, 2048);
        assert!(!c.require_session_name);
        assert_eq!(c.cluster_regions, vec!["us-east-1"]);
        assert_eq!(c.cluster_concurrency, 100);
        assert_eq!(c.trust_lock_table, None);
    }

    #[test]
    fn overrides() {
        let c = cfg(&[
            ("ADMIN_ROLE_NAME", "EksAdmin"),
            ("ADMIN_USER_TAG", "team = sre"),
            ("K8S_GROUPS", "eks-admins, ops ,"),
            ("TRUST_STATEMENT_SID", "Mine1"),
            ("TRUST_POLICY_MAX_CHARS", "4096"),
            ("REQUIRE_SESSION_NAME", "YES"),
            ("CLUSTER_REGIONS", "eu-west-1,us-east-2,eu-west-1"),
            ("AWS_REGION", "us-east-1"),
            ("CLUSTER_CONCURRENCY", "2"),
            ("TRUST_LOCK_TABLE", " eks-access-sync-TrustLock-1A2B "),
        ])
        .unwrap();
        assert_eq!(
            c.trust_lock_table.as_deref(),
            Some("eks-access-sync-TrustLock-1A2B")
        );
        assert_eq!(c.admin_user_tag.to_string(), "team=sre");
        assert_eq!(c.k8s_groups, vec!["eks-admins", "ops"]);
        assert_eq!(c.trust_statement_sid, "Mine1");
        assert_eq!(c.trust_policy_max_chars, 4096);
        assert!(c.require_session_name);
        assert_eq!(c.cluster_regions, vec!["eu-west-1", "us-east-2"]);
        assert_eq!(c.cluster_concurrency, 2);
        let c = cfg(&[
            ("ADMIN_ROLE_NAME", "r"),
            ("AWS_DEFAULT_REGION", "eu-central-1"),
        ])
        .unwrap();
        assert_eq!(c.cluster_regions, vec!["eu-central-1"]);
    }

    #[test]
    fn errors_name_variable_value_and_expectation() {
        let base = [("ADMIN_ROLE_NAME", "EksAdmin"), ("AWS_REGION", "us-east-1")];
        let cases: &[(&str, &str, &str)] = &[
            ("ADMIN_USER_TAG", "admin", "key=value"),
            ("CLUSTER_TAG", "=true", "key=value"),
            ("K8S_GROUPS", " , ", "at least one"),
            ("TRUST_STATEMENT_SID", "my-sid", "[A-Za-z0-9]+"),
            ("TRUST_POLICY_MAX_CHARS", "0", "positive integer"),
            ("TRUST_POLICY_MAX_CHARS", "lots", "positive integer"),
            ("REQUIRE_SESSION_NAME", "maybe", "true/false"),
            ("CLUSTER_CONCURRENCY", "0", "positive integer"),
            ("CLUSTER_REGIONS", "mars", "regions"),
            ("TRUST_LOCK_TABLE", "ab", "DynamoDB table name"),
            (
                "TRUST_LOCK_TABLE",
                "arn:aws:dynamodb:us-east-1:123456789012:table/locks",
                "not an ARN",
            ),
            (
                "ADMIN_ROLE_NAME",
                "arn:aws:iam::123456789012:role/x",
                "role name",
            ),
        ];
        for (var, value, expected) in cases {
            let mut vars: Vec<(&str, &str)> =
                base.iter().filter(|(k, _)| k != var).copied().collect();
            vars.push((var, value));
            let err = cfg(&vars).unwrap_err().to_string();
            assert!(err.contains(var), "{err}");
            assert!(err.contains(value.trim()), "{err}");
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn missing_values() {
        let err = cfg(&[("AWS_REGION", "us-east-1")]).unwrap_err();
        assert!(err.to_string().contains("ADMIN_ROLE_NAME"));
        let err = cfg(&[("ADMIN_ROLE_NAME", "r")]).unwrap_err().to_string();
        assert!(
            err.contains("CLUSTER_REGIONS") && err.contains("AWS_REGION"),
            "{err}"
        );
    }
}

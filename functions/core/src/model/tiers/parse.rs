//! The access configuration parser: serde-saphyr reads the document into raw types
//! that keep every value's location ([`Spanned`]; unknown keys refused by
//! `deny_unknown_fields`), then each value is validated into the model, an error
//! naming the line and the key.

use serde::Deserialize;
use serde_saphyr::{Location, MessageFormatter, Spanned, UserMessageFormatter};

use super::{
    AccessConfig, AccessConfigError, AccessPolicy, GroupName, KubeAccess, MAX_ACCESS_CONFIG_BYTES,
    MemberAccount, Members, NamespacePattern, Position, Tier, TierName,
};
use crate::model::arn::{AccountId, RoleName};
use crate::model::config::TagSpec;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDoc {
    tiers: Spanned<Vec<RawTier>>,
    #[serde(default)]
    accounts: Vec<Spanned<RawAccount>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    id: Spanned<String>,
    #[serde(default)]
    regions: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    name: Spanned<String>,
    role: Spanned<String>,
    members: Spanned<RawMembers>,
    #[serde(default)]
    clusters: Option<Spanned<RawClusters>>,
    kubernetes: Spanned<RawKube>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMembers {
    #[serde(default)]
    tag: Option<Spanned<String>>,
    #[serde(default)]
    groups: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClusters {
    tag: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKube {
    policy: Spanned<String>,
    #[serde(default)]
    namespaces: Vec<Spanned<String>>,
    #[serde(default)]
    username: Option<Spanned<String>>,
    #[serde(default)]
    groups: Option<Spanned<Vec<Spanned<String>>>>,
}

fn position(loc: &Location) -> Position {
    Position {
        line: loc.line(),
        column: loc.column(),
    }
}

fn yaml_error(text: &str, e: &serde_saphyr::Error) -> AccessConfigError {
    let mut message: String = UserMessageFormatter
        .format_message(e)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let at = e
        .location()
        .map_or(Position { line: 0, column: 0 }, |l| position(&l));
    // serde-saphyr names unknown, missing and duplicate keys (in backticks) but not the
    // key of a value of the wrong type: take it from the text.
    if !message.contains('`')
        && let Some(key) = key_before(text, at)
    {
        message = format!("{key}: {message}");
    }
    AccessConfigError::Yaml { at, message }
}

/// The mapping key whose value is at `at`: the last `key:` on that line up to the column.
fn key_before(text: &str, at: Position) -> Option<String> {
    let line = text
        .lines()
        .nth(usize::try_from(at.line).ok()?.checked_sub(1)?)?;
    let upto: String = line
        .chars()
        .take(usize::try_from(at.column).ok()?)
        .collect();
    let colon = upto
        .char_indices()
        .filter(|&(i, c)| {
            c == ':' && (i + 1 == upto.len() || upto[i + 1..].starts_with([' ', '\t']))
        })
        .map(|(i, _)| i)
        .next_back()?;
    let key: String = upto[..colon]
        .trim_end()
        .chars()
        .rev()
        .take_while(|c| !(c.is_whitespace() || matches!(c, '{' | '[' | ',')))
        .collect::<Vec<char>>()
        .into_iter()
        .rev()
        .collect();
    let key = key.trim_matches(|c| c == '"' || c == '\'');
    (!key.is_empty()).then(|| key.to_string())
}

/// Validates the values of tier `index`, naming keys as `tiers[index].…`.
struct TierCheck {
    index: usize,
}

impl TierCheck {
    fn invalid<T>(
        &self,
        at: &Location,
        key: &str,
        reason: impl ToString,
    ) -> Result<T, AccessConfigError> {
        Err(AccessConfigError::Invalid {
            at: position(at),
            key: format!("tiers[{}].{key}", self.index),
            reason: reason.to_string(),
        })
    }

    fn parse<T: std::str::FromStr>(
        &self,
        v: &Spanned<String>,
        key: &str,
    ) -> Result<T, AccessConfigError>
    where
        T::Err: ToString,
    {
        match v.value.trim().parse::<T>() {
            Ok(t) => Ok(t),
            Err(e) => self.invalid(&v.referenced, key, e),
        }
    }

    fn tag(&self, v: &Spanned<String>, key: &str) -> Result<TagSpec, AccessConfigError> {
        match v.value.parse::<TagSpec>() {
            Ok(t) => Ok(t),
            Err(e) => self.invalid(
                &v.referenced,
                key,
                format!("{:?} is not a valid tag: expected {e}", v.value),
            ),
        }
    }

    fn members(&self, raw: &Spanned<RawMembers>) -> Result<Members, AccessConfigError> {
        let m = &raw.value;
        if m.tag.is_none() && m.groups.is_empty() {
            return self.invalid(
                &raw.referenced,
                "members",
                "no members selector: set `tag: key=value`, `groups: [..]` or both",
            );
        }
        let tag = match &m.tag {
            Some(t) => Some(self.tag(t, "members.tag")?),
            None => None,
        };
        let mut groups: Vec<GroupName> = Vec::new();
        for g in &m.groups {
            let group: GroupName = self.parse(g, "members.groups")?;
            if groups.iter().any(|p| p.eq_ignore_case(group.as_str())) {
                return self.invalid(
                    &g.referenced,
                    "members.groups",
                    format!("group {group:?} is listed twice (IAM group names ignore case)"),
                );
            }
            groups.push(group);
        }
        Ok(Members { tag, groups })
    }

    fn kubernetes(
        &self,
        name: &TierName,
        raw: &RawKube,
    ) -> Result<(KubeAccess, String, Vec<String>), AccessConfigError> {
        let policy: AccessPolicy = self.parse(&raw.policy, "kubernetes.policy")?;
        let mut namespaces: Vec<NamespacePattern> = Vec::new();
        for ns in &raw.namespaces {
            let pattern: NamespacePattern = self.parse(ns, "kubernetes.namespaces")?;
            if namespaces.contains(&pattern) {
                return self.invalid(
                    &ns.referenced,
                    "kubernetes.namespaces",
                    format!("namespace {pattern:?} is listed twice"),
                );
            }
            namespaces.push(pattern);
        }
        let username = match &raw.username {
            Some(u) if u.value.trim().is_empty() => {
                return self.invalid(&u.referenced, "kubernetes.username", "must not be empty");
            }
            Some(u) => u.value.trim().to_string(),
            None => format!("{}{name}:{{{{SessionName}}}}", super::OWN_GROUP_PREFIX),
        };
        let groups = match &raw.groups {
            Some(list) => self.kube_groups(list)?,
            None => vec![format!("{}{name}", super::OWN_GROUP_PREFIX)],
        };
        Ok((KubeAccess { policy, namespaces }, username, groups))
    }

    fn kube_groups(
        &self,
        list: &Spanned<Vec<Spanned<String>>>,
    ) -> Result<Vec<String>, AccessConfigError> {
        if list.value.is_empty() {
            return self.invalid(
                &list.referenced,
                "kubernetes.groups",
                "must list at least one Kubernetes group (omit the key for the tier's own group)",
            );
        }
        let mut groups: Vec<String> = Vec::new();
        for g in &list.value {
            let group = g.value.trim();
            if group.is_empty() {
                return self.invalid(
                    &g.referenced,
                    "kubernetes.groups",
                    "a group must not be empty",
                );
            }
            if groups.iter().any(|p| p == group) {
                return self.invalid(
                    &g.referenced,
                    "kubernetes.groups",
                    format!("group {group:?} is listed twice"),
                );
            }
            groups.push(group.to_string());
        }
        Ok(groups)
    }

    fn tier(&self, raw: &RawTier) -> Result<Tier, AccessConfigError> {
        let name: TierName = self.parse(&raw.name, "name")?;
        let role: RoleName = self.parse(&raw.role, "role")?;
        let members = self.members(&raw.members)?;
        let clusters = match &raw.clusters {
            Some(c) => Some(self.tag(&c.value.tag, "clusters.tag")?),
            None => None,
        };
        let (kubernetes, username, groups) = self.kubernetes(&name, &raw.kubernetes.value)?;
        Ok(Tier {
            name,
            role,
            members,
            clusters,
            kubernetes,
            username,
            groups,
        })
    }
}

/// See [`AccessConfig::from_yaml`].
pub(super) fn from_yaml(text: &str) -> Result<AccessConfig, AccessConfigError> {
    if text.len() > MAX_ACCESS_CONFIG_BYTES {
        return Err(AccessConfigError::TooLarge {
            len: text.len(),
            max: MAX_ACCESS_CONFIG_BYTES,
        });
    }
    let options = serde_saphyr::options! { with_snippet: false };
    let doc: RawDoc =
        serde_saphyr::from_str_with_options(text, options).map_err(|e| yaml_error(text, &e))?;
    if doc.tiers.value.is_empty() {
        return Err(AccessConfigError::Invalid {
            at: position(&doc.tiers.referenced),
            key: "tiers".into(),
            reason: "at least one tier is required".into(),
        });
    }
    let mut tiers: Vec<Tier> = Vec::with_capacity(doc.tiers.value.len());
    for (index, raw) in doc.tiers.value.iter().enumerate() {
        let check = TierCheck { index };
        let tier = check.tier(raw)?;
        if let Some(i) = tiers.iter().position(|t| t.name == tier.name) {
            return check.invalid(
                &raw.name.referenced,
                "name",
                format!(
                    "tier name {:?} is also the name of tiers[{i}]",
                    tier.name.as_str()
                ),
            );
        }
        if let Some(i) = tiers
            .iter()
            .position(|t| t.role.as_str().eq_ignore_ascii_case(tier.role.as_str()))
        {
            return check.invalid(
                &raw.role.referenced,
                "role",
                format!(
                    "role {:?} is also the role of tiers[{i}] ({}); each tier needs its own role \
                     (IAM role names ignore case)",
                    tier.role.as_str(),
                    tiers[i].name
                ),
            );
        }
        tiers.push(tier);
    }
    let accounts = member_accounts(&doc.accounts)?;
    Ok(AccessConfig { tiers, accounts })
}

/// The `accounts` list: 12-digit IDs, each once, with valid regions.
fn member_accounts(raw: &[Spanned<RawAccount>]) -> Result<Vec<MemberAccount>, AccessConfigError> {
    let mut out: Vec<MemberAccount> = Vec::with_capacity(raw.len());
    for (i, a) in raw.iter().enumerate() {
        let invalid = |at: &Location, key: &str, reason: String| AccessConfigError::Invalid {
            at: position(at),
            key: format!("accounts[{i}].{key}"),
            reason,
        };
        let id: AccountId = a.value.id.value.trim().parse().map_err(|_| {
            invalid(
                &a.value.id.referenced,
                "id",
                format!(
                    "{:?} is not an AWS account ID: expected 12 digits, quoted (\"012345678901\":                      unquoted, YAML may read it as a number)",
                    a.value.id.value
                ),
            )
        })?;
        if let Some(j) = out.iter().position(|m| m.id == id) {
            return Err(invalid(
                &a.value.id.referenced,
                "id",
                format!("account {id} is also accounts[{j}]"),
            ));
        }
        let mut regions = Vec::with_capacity(a.value.regions.len());
        for r in &a.value.regions {
            let region = r.value.trim();
            if !crate::model::config::is_region(region) {
                return Err(invalid(
                    &r.referenced,
                    "regions",
                    format!("{:?} is not an AWS region (e.g. eu-west-1)", r.value),
                ));
            }
            if !regions.iter().any(|x: &String| x == region) {
                regions.push(region.to_owned());
            }
        }
        out.push(MemberAccount { id, regions });
    }
    Ok(out)
}

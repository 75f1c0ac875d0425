//! Validated identifiers: IAM user and role ARNs, IAM user/role names and EKS
//! cluster names.
//!
//! Every type here is a newtype over the string it was parsed from: it can only
//! be built through a validating constructor (`FromStr`, `TryFrom<String>`,
//! [`RoleArn::from_parts`]), serializes as that string and orders by it, so a
//! `BTreeSet<UserArn>` is sorted exactly as the trust policy will list it.
//!
//! Naming rules follow IAM (`[\w+=,.@-]{1,64}` for user and role names, paths
//! `/…/` of the same characters) and EKS (`^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a string is not the identifier it was supposed to be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArnError {
    /// Not of the form `arn:<partition>:iam::<account>:<kind>/<path/>name`.
    #[error("{value:?} is not an IAM {kind} ARN: {reason}")]
    InvalidArn {
        value: String,
        kind: &'static str,
        reason: String,
    },
    /// The name breaks the IAM or EKS naming rules.
    #[error("{value:?} is not a valid {kind}: {reason}")]
    InvalidName {
        value: String,
        kind: &'static str,
        reason: String,
    },
}

/// `^A[A-Z0-9]{15,}$` without an `arn:` prefix: the unique ID IAM shows in a
/// policy in place of a principal that was deleted (`AIDA…`, `AROA…`).
pub fn is_unique_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 16
        && b[0] == b'A'
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

fn is_iam_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

fn check_iam_name(value: &str, kind: &'static str) -> Result<(), ArnError> {
    let bad = |reason: String| ArnError::InvalidName {
        value: value.to_string(),
        kind,
        reason,
    };
    if value.is_empty() || value.len() > 64 {
        return Err(bad("must be 1 to 64 characters".into()));
    }
    if let Some(c) = value.chars().find(|c| !is_iam_name_char(*c)) {
        return Err(bad(format!(
            "character {c:?} is not allowed (letters, digits and _+=,.@- only)"
        )));
    }
    Ok(())
}

/// Why an IAM path is invalid (wrapped into [`ArnError`] by the ARN parser).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
struct PathError(String);

fn check_path(path: &str) -> Result<(), PathError> {
    if !path.starts_with('/') || !path.ends_with('/') {
        return Err(PathError(format!(
            "path {path:?} must start and end with '/'"
        )));
    }
    if path.len() > 512 {
        return Err(PathError("path is longer than 512 characters".into()));
    }
    if path.contains("//") {
        return Err(PathError(format!("path {path:?} has an empty segment")));
    }
    if let Some(c) = path.chars().find(|c| *c != '/' && !is_iam_name_char(*c)) {
        return Err(PathError(format!(
            "character {c:?} is not allowed in a path"
        )));
    }
    Ok(())
}

/// Parsed pieces of an IAM ARN (`arn:<partition>:iam::<account>:<kind>/<path>name`).
struct Parts<'a> {
    partition: &'a str,
    account: &'a str,
    path: &'a str,
    name: &'a str,
}

fn parse_iam_arn<'a>(s: &'a str, kind: &'static str) -> Result<Parts<'a>, ArnError> {
    let bad = |reason: String| ArnError::InvalidArn {
        value: s.to_string(),
        kind,
        reason,
    };
    let mut it = s.splitn(6, ':');
    let (Some(arn), Some(partition), Some(service), Some(region), Some(account), Some(resource)) = (
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
    ) else {
        return Err(bad("expected 6 ':'-separated fields".into()));
    };
    if arn != "arn" {
        return Err(bad("must start with \"arn:\"".into()));
    }
    if partition.is_empty()
        || !partition
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '-')
    {
        return Err(bad(format!("partition {partition:?} is not valid")));
    }
    if service != "iam" {
        return Err(bad(format!("service is {service:?}, expected \"iam\"")));
    }
    if !region.is_empty() {
        return Err(bad("IAM ARNs have an empty region".into()));
    }
    if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad(format!("account {account:?} is not 12 digits")));
    }
    let Some(rest) = resource
        .strip_prefix(kind)
        .and_then(|r| r.strip_prefix('/'))
    else {
        return Err(bad(format!("resource must start with \"{kind}/\"")));
    };
    let (path, name) = match rest.rfind('/') {
        Some(i) => (
            &resource[kind.len()..kind.len() + 1 + i + 1],
            &rest[i + 1..],
        ),
        None => ("/", rest),
    };
    check_path(path).map_err(|e| bad(e.0))?;
    check_iam_name(
        name,
        if kind == "user" {
            "IAM user name"
        } else {
            "IAM role name"
        },
    )
    .map_err(|e| bad(e.to_string()))?;
    Ok(Parts {
        partition,
        account,
        path,
        name,
    })
}

macro_rules! string_newtype {
    ($ty:ident) => {
        impl $ty {
            /// The identifier as given.
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
            type Error = ArnError;
            fn try_from(s: String) -> Result<Self, ArnError> {
                s.parse()
            }
        }
        impl TryFrom<&str> for $ty {
            type Error = ArnError;
            fn try_from(s: &str) -> Result<Self, ArnError> {
                s.parse()
            }
        }
        impl From<$ty> for String {
            fn from(v: $ty) -> String {
                v.0
            }
        }
        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// An IAM user name (`[\w+=,.@-]{1,64}`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserName(String);
string_newtype!(UserName);

impl FromStr for UserName {
    type Err = ArnError;
    fn from_str(s: &str) -> Result<Self, ArnError> {
        check_iam_name(s, "IAM user name")?;
        Ok(Self(s.to_string()))
    }
}

impl UserName {
    /// IAM user names are unique regardless of case.
    pub fn eq_ignore_case(&self, other: &UserName) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

/// An AWS account ID (12 digits).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);
string_newtype!(AccountId);

impl FromStr for AccountId {
    type Err = ArnError;
    fn from_str(s: &str) -> Result<Self, ArnError> {
        if s.len() != 12 || !s.chars().all(|c| c.is_ascii_digit()) {
            return Err(ArnError::InvalidName {
                value: s.to_string(),
                kind: "AWS account ID",
                reason: "must be 12 digits".into(),
            });
        }
        Ok(Self(s.to_string()))
    }
}

/// An IAM role name (`[\w+=,.@-]{1,64}`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoleName(String);

impl RoleName {
    /// A name this crate spells as a constant (a test checks each parses).
    pub(crate) fn constant(name: &'static str) -> Self {
        RoleName(name.to_owned())
    }
}
string_newtype!(RoleName);

impl FromStr for RoleName {
    type Err = ArnError;
    fn from_str(s: &str) -> Result<Self, ArnError> {
        check_iam_name(s, "IAM role name")?;
        Ok(Self(s.to_string()))
    }
}

/// An EKS cluster name (`^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClusterName(String);
string_newtype!(ClusterName);

impl FromStr for ClusterName {
    type Err = ArnError;
    fn from_str(s: &str) -> Result<Self, ArnError> {
        let bad = |reason: &str| ArnError::InvalidName {
            value: s.to_string(),
            kind: "EKS cluster name",
            reason: reason.to_string(),
        };
        if s.is_empty() || s.len() > 100 {
            return Err(bad("must be 1 to 100 characters"));
        }
        if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(bad("must start with a letter or digit"));
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad("letters, digits, '-' and '_' only"));
        }
        Ok(Self(s.to_string()))
    }
}

/// `arn:<partition>:iam::<account>:user/<optional/path/>name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserArn(String);
string_newtype!(UserArn);

impl FromStr for UserArn {
    type Err = ArnError;
    fn from_str(s: &str) -> Result<Self, ArnError> {
        parse_iam_arn(s, "user")?;
        Ok(Self(s.to_string()))
    }
}

// The string was validated at construction, so re-parsing cannot fail; the
// fallbacks below are never taken but keep the accessors panic-free.
fn parts_or_empty<'a>(s: &'a str, kind: &'static str) -> Parts<'a> {
    parse_iam_arn(s, kind).unwrap_or(Parts {
        partition: "",
        account: "",
        path: "/",
        name: s,
    })
}

impl UserArn {
    /// Whether `s` is a user ARN ([`UserArn::from_str`] would take it), without
    /// making one.
    pub fn is_valid(s: &str) -> bool {
        parse_iam_arn(s, "user").is_ok()
    }

    /// The user name (last path segment).
    pub fn name(&self) -> UserName {
        UserName(parts_or_empty(&self.0, "user").name.to_string())
    }
    /// The path, `/` when there is none, else `/a/b/`.
    pub fn path(&self) -> &str {
        parts_or_empty(&self.0, "user").path
    }
    /// The 12-digit account ID.
    pub fn account(&self) -> &str {
        parts_or_empty(&self.0, "user").account
    }
    /// Whether this is user `name` (case ignored, as IAM does) of `account`, in
    /// any path.
    pub fn is_user_of(&self, account: &AccountId, name: &UserName) -> bool {
        self.account() == account.as_str() && self.name().eq_ignore_case(name)
    }
    /// `aws`, `aws-cn`, `aws-us-gov`, …
    pub fn partition(&self) -> &str {
        parts_or_empty(&self.0, "user").partition
    }
    /// Same user regardless of case (IAM names are case-insensitively unique).
    pub fn eq_ignore_case(&self, other: &UserArn) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

/// `arn:<partition>:iam::<account>:role/<optional/path/>name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoleArn(String);
string_newtype!(RoleArn);

impl FromStr for RoleArn {
    type Err = ArnError;
    fn from_str(s: &str) -> Result<Self, ArnError> {
        parse_iam_arn(s, "role")?;
        Ok(Self(s.to_string()))
    }
}

impl RoleArn {
    /// Builds `arn:<partition>:iam::<account>:role<path><name>`; `path` may be
    /// empty or `/` for no path.
    pub fn from_parts(
        partition: &str,
        account: &str,
        path: &str,
        name: &RoleName,
    ) -> Result<RoleArn, ArnError> {
        let path = if path.is_empty() { "/" } else { path };
        format!("arn:{partition}:iam::{account}:role{path}{name}").parse()
    }
    /// The role name (last path segment).
    pub fn name(&self) -> RoleName {
        RoleName(parts_or_empty(&self.0, "role").name.to_string())
    }
    /// The path, `/` when there is none.
    pub fn path(&self) -> &str {
        parts_or_empty(&self.0, "role").path
    }
    /// The 12-digit account ID.
    pub fn account(&self) -> &str {
        parts_or_empty(&self.0, "role").account
    }
    /// `aws`, `aws-cn`, `aws-us-gov`, …
    pub fn partition(&self) -> &str {
        parts_or_empty(&self.0, "role").partition
    }
    /// The ARN as aws-iam-authenticator canonicalises assumed roles: no path.
    pub fn without_path(&self) -> RoleArn {
        let p = parts_or_empty(&self.0, "role");
        if p.path == "/" {
            return self.clone();
        }
        RoleArn(format!(
            "arn:{}:iam::{}:role/{}",
            p.partition, p.account, p.name
        ))
    }
    /// Whether both ARNs name the same role for aws-auth purposes: compared
    /// without path and ignoring ASCII case (the authenticator lower-cases).
    pub fn eq_ignoring_path_and_case(&self, other: &RoleArn) -> bool {
        self.without_path()
            .0
            .eq_ignore_ascii_case(&other.without_path().0)
    }
}

#[cfg(test)]
mod tests;

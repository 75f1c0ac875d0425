//! The `aws-auth` ConfigMap editor.
//!
//! Works on the ConfigMap's `data` (string keys to YAML strings), as
//! aws-iam-authenticator (`pkg/mapper/configmap`) and eksctl
//! (`pkg/authconfigmap`) read it:
//!
//! - `mapRoles` and `mapUsers` are parsed as YAML sequences (JSON is accepted,
//!   being YAML) with `serde-saphyr` into `serde_json::Value`s to decide which
//!   entries are ours; the text is then edited surgically (`text`): the lines
//!   of the entries we drop are removed, our values are replaced, our entry
//!   appended. An entry we do not own is never re-serialised: the
//!   authenticator reads aws-auth with go-yaml (YAML 1.1), which resolves
//!   plain scalars (`yes`, `012`, `0o12`, `1e3`) by other rules than YAML 1.2,
//!   and one non-string where a string is expected loses the whole key.
//! - We own one `mapRoles` entry: the one whose `rolearn` names the admin role,
//!   compared case-insensitively **without the role's path** (the
//!   authenticator canonicalises assumed roles without path, so a `rolearn`
//!   with a path never matches). Its `rolearn` (without the path),
//!   `username` and `groups` are written as double-quoted strings, which YAML
//!   1.1 and 1.2 readers both read as strings (a value right for YAML 1.2 but
//!   not for 1.1 is re-quoted); its other fields keep their text. Duplicates
//!   are removed, the first one's position is kept.
//! - `mapUsers` entries of offboarded users are removed (by ARN, ignoring
//!   ASCII case, or by user name in any path).
//! - Everything else stays byte-for-byte: entries we do not own (as written,
//!   even when YAML 1.1 would read them badly: the operator's to fix),
//!   comments, blank lines, a key we do not change, `mapAccounts` and every
//!   other key. When nothing changes, the output equals the input.
//! - A key that does not parse is never rewritten: the edit is refused with
//!   [`AwsAuthError::Parse`] (the authenticator would drop the whole key); one
//!   whose entries cannot be located in the text, with [`AwsAuthError::Locate`].
//!   Each verb of [`AwsAuth`] reads only its own key: a broken `mapRoles`
//!   does not block removing users from `mapUsers`.
//! - An absent ConfigMap or `mapRoles` key is created.
//!
//! Field names inside entries match case-insensitively, as in the
//! authenticator; the spelling found is kept.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::arn::RoleArn;
pub use crate::model::mapping::{AdminMapping, Offboarded};

mod doc;
mod text;

pub use doc::AwsAuth;

/// `data` key holding role mappings.
pub const MAP_ROLES: &str = "mapRoles";
/// `data` key holding user mappings.
pub const MAP_USERS: &str = "mapUsers";

/// The edit cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsAuthError {
    /// A key we must edit does not parse; we refuse to touch it.
    #[error("aws-auth data.{key} does not parse, refusing to edit it: {message}")]
    Parse { key: String, message: String },
    /// Rendering failed (should not happen for parsed values).
    #[error("cannot render aws-auth data.{key}: {message}")]
    Render { key: String, message: String },
    /// The key parses, but its entries cannot be located reliably in its
    /// text (anchors, several documents, an unusual layout): we refuse to
    /// edit it rather than re-serialise entries we do not own.
    #[error(
        "aws-auth data.{key}: cannot edit its text surgically, refusing to rewrite it: {message}"
    )]
    Locate { key: String, message: String },
}

/// One change, for people and for the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum AwsAuthChange {
    /// The admin role mapping was missing and was appended.
    AdminRoleAdded { rolearn: String },
    /// A field of the admin role mapping was changed.
    AdminRoleUpdated {
        field: String,
        from: Option<String>,
        to: String,
    },
    /// A field of the admin role mapping had the right value for YAML 1.2
    /// but not for YAML 1.1 (go-yaml in the authenticator); it is now quoted.
    AdminRoleRequoted { field: String },
    /// Extra entries for the admin role were removed.
    AdminDuplicatesRemoved { count: usize },
    /// A mapUsers entry of an offboarded user was removed.
    UserMappingRemoved {
        userarn: String,
        username: Option<String>,
    },
    /// The mapping of a tier no longer configured (all its groups were tier groups
    /// `eks-access-sync:<tier>` of retired tiers) was removed.
    RetiredTierRoleRemoved {
        rolearn: String,
        groups: Vec<String>,
    },
    /// The mapping of a configured tier's role on a cluster its tier does not apply
    /// to (its `clusters` selector) was removed.
    TierRoleOutOfScope { rolearn: String },
}

impl fmt::Display for AwsAuthChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AwsAuthChange::AdminRoleAdded { rolearn } => {
                write!(f, "mapRoles: add tier role mapping {rolearn}")
            }
            AwsAuthChange::AdminRoleUpdated { field, from, to } => match from {
                Some(from) => write!(f, "mapRoles: tier role {field}: {from} -> {to}"),
                None => write!(f, "mapRoles: tier role {field}: (absent) -> {to}"),
            },
            AwsAuthChange::AdminRoleRequoted { field } => write!(
                f,
                "mapRoles: tier role {field}: quoted so YAML 1.1 reads it as a string"
            ),
            AwsAuthChange::RetiredTierRoleRemoved { rolearn, groups } => write!(
                f,
                "mapRoles: remove {rolearn} (retired tier group {})",
                groups.join(", ")
            ),
            AwsAuthChange::TierRoleOutOfScope { rolearn } => write!(
                f,
                "mapRoles: remove {rolearn} (its tier does not apply to this cluster)"
            ),
            AwsAuthChange::AdminDuplicatesRemoved { count } => {
                write!(f, "mapRoles: remove {count} duplicate tier role mapping(s)")
            }
            AwsAuthChange::UserMappingRemoved { userarn, username } => match username {
                Some(u) => write!(f, "mapUsers: remove {userarn} (username {u})"),
                None => write!(f, "mapUsers: remove {userarn}"),
            },
        }
    }
}

/// The edited data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsAuthEdit {
    pub data: BTreeMap<String, String>,
    pub changes: Vec<AwsAuthChange>,
    /// The ConfigMap or its `mapRoles` key was absent.
    pub created: bool,
}

impl AwsAuthEdit {
    /// Whether anything must be written.
    pub fn changed(&self) -> bool {
        !self.changes.is_empty() || self.created
    }
}

/// Parses a `mapRoles`/`mapUsers` string as a list (empty text = empty list).
pub fn parse_entries(key: &str, text: &str) -> Result<Vec<Value>, AwsAuthError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let v: Value = serde_saphyr::from_str(text).map_err(|e| AwsAuthError::Parse {
        key: key.to_string(),
        message: e.to_string(),
    })?;
    match v {
        Value::Array(a) => {
            // The authenticator unmarshals the whole key into a list of
            // structs: one entry that is not a mapping loses the whole key.
            if let Some(i) = a.iter().position(|e| !e.is_object()) {
                return Err(AwsAuthError::Parse {
                    key: key.to_string(),
                    message: format!("entry {i} is not a mapping"),
                });
            }
            Ok(a)
        }
        Value::Null => Ok(Vec::new()),
        other => Err(AwsAuthError::Parse {
            key: key.to_string(),
            message: format!(
                "expected a list of entries, found {}",
                match other {
                    Value::Object(_) => "a mapping",
                    Value::String(_) => "a string",
                    _ => "a scalar",
                }
            ),
        }),
    }
}

/// Renders entries as block-style YAML the authenticator reads back.
pub fn render_yaml_list(key: &str, entries: &[Value]) -> Result<String, AwsAuthError> {
    if entries.is_empty() {
        return Ok("[]\n".to_string());
    }
    let mut opts = serde_saphyr::SerializerOptions::default();
    opts.prefer_block_scalars = false;
    let mut s =
        serde_saphyr::to_string_with_options(&entries, opts).map_err(|e| AwsAuthError::Render {
            key: key.to_string(),
            message: e.to_string(),
        })?;
    if let Some(rest) = s.strip_prefix("---\n") {
        s = rest.to_string();
    }
    if !s.ends_with('\n') {
        s.push('\n');
    }
    Ok(s)
}

/// The value of a field matched case-insensitively, with its real key.
/// Field `name` of an entry as the authenticator reads it: names match ignoring ASCII
/// case and, of two spellings (`rolearn`, `ROLEARN`), the last one wins (Go's
/// `encoding/json` behind `sigs.k8s.io/yaml`).
fn field<'a>(m: &'a Map<String, Value>, name: &str) -> Option<(&'a String, &'a Value)> {
    m.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(name))
}

fn field_str(m: &Map<String, Value>, name: &str) -> Option<String> {
    field(m, name).and_then(|(_, v)| v.as_str().map(|s| s.trim().to_string()))
}

/// The form two role ARNs are compared in for aws-auth (no path, lower case): what
/// [`is_admin_entry`] compares, computed once per role.
fn role_key(role: &RoleArn) -> String {
    role.without_path().as_str().to_ascii_lowercase()
}

/// [`role_key`] of an entry's `rolearn` (an ARN that does not parse: itself, lower
/// case); `None` without one.
fn entry_role_key(entry: &Value) -> Option<String> {
    let arn = field_str(entry.as_object()?, "rolearn")?;
    Some(match arn.parse::<RoleArn>() {
        Ok(r) => role_key(&r),
        Err(_) => arn.to_ascii_lowercase(),
    })
}

fn is_admin_entry(entry: &Value, admin: &RoleArn) -> bool {
    let Some(m) = entry.as_object() else {
        return false;
    };
    let Some(arn) = field_str(m, "rolearn") else {
        return false;
    };
    match arn.parse::<RoleArn>() {
        Ok(r) => r.eq_ignoring_path_and_case(admin),
        Err(_) => arn.eq_ignore_ascii_case(admin.without_path().as_str()),
    }
}

fn set_field(
    m: &mut Map<String, Value>,
    name: &str,
    want: Value,
    changes: &mut Vec<AwsAuthChange>,
) {
    let shown = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    let existing = field(m, name).map(|(k, v)| (k.clone(), v.clone()));
    match existing {
        Some((_, v)) if v == want => {}
        Some((k, v)) => {
            changes.push(AwsAuthChange::AdminRoleUpdated {
                field: name.to_string(),
                from: Some(shown(&v)),
                to: shown(&want),
            });
            m.insert(k, want);
        }
        None => {
            changes.push(AwsAuthChange::AdminRoleUpdated {
                field: name.to_string(),
                from: None,
                to: shown(&want),
            });
            m.insert(name.to_string(), want);
        }
    }
}

fn admin_entry_value(admin: &AdminMapping) -> Value {
    let mut m = Map::new();
    m.insert(
        "rolearn".into(),
        Value::String(admin.role_arn.without_path().to_string()),
    );
    m.insert("username".into(), Value::String(admin.username.clone()));
    m.insert(
        "groups".into(),
        Value::Array(admin.groups.iter().cloned().map(Value::String).collect()),
    );
    Value::Object(m)
}

/// Ensures the admin role mapping and removes offboarded users' mappings
/// (`mapUsers` is only read when someone must go). A thin wrapper over
/// [`AwsAuth::ensure_role`] and [`AwsAuth::remove_users`].
pub fn edit_aws_auth(
    data: Option<&BTreeMap<String, String>>,
    admin: &AdminMapping,
    offboarded: &[Offboarded],
) -> Result<AwsAuthEdit, AwsAuthError> {
    let mut doc = AwsAuth::parse(data);
    doc.ensure_role(admin)?;
    doc.remove_users(offboarded)?;
    Ok(AwsAuthEdit {
        created: doc.created(),
        changes: doc.changes().to_vec(),
        data: doc.into_data(),
    })
}

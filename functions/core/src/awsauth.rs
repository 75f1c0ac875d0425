//! The `aws-auth` ConfigMap editor.
//!
//! Works on the ConfigMap's `data` (string keys to YAML strings), as
//! aws-iam-authenticator (`pkg/mapper/configmap`) and eksctl
//! (`pkg/authconfigmap`) read it:
//!
//! - `mapRoles` and `mapUsers` are parsed as YAML sequences (JSON is accepted,
//!   being YAML) with `serde-saphyr` into `serde_json::Value`s, which keep
//!   every field of every entry, unknown ones included, in their order.
//! - We own one `mapRoles` entry: the one whose `rolearn` names the admin role,
//!   compared case-insensitively **without the role's path** (the
//!   authenticator canonicalises assumed roles without path, so a `rolearn`
//!   with a path never matches). It is written without the path, with the
//!   configured `username` and `groups`; its other fields are kept. Duplicates
//!   are collapsed into the first one's position.
//! - `mapUsers` entries of offboarded users are removed (by ARN, ignoring
//!   ASCII case, or by user name in any path).
//! - Everything else stays: entries we do not own keep their place and all
//!   their fields; a key we do not change (and `mapAccounts`, and every other
//!   key) stays byte-for-byte; when nothing changes, the output equals the
//!   input.
//! - A key that does not parse is never rewritten: the edit is refused with
//!   [`AwsAuthError::Parse`] (the authenticator would drop the whole key).
//! - An absent ConfigMap or `mapRoles` key is created.
//!
//! Field names inside entries match case-insensitively, as in the
//! authenticator. A rewritten key is emitted as block-style YAML that parses
//! back to the same entries. YAML comments inside a key we rewrite are lost
//! (they carry no mapping); a key we leave alone keeps them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::arn::{RoleArn, UserArn, UserName};

/// `data` key holding role mappings.
pub const MAP_ROLES: &str = "mapRoles";
/// `data` key holding user mappings.
pub const MAP_USERS: &str = "mapUsers";

/// The mapping we own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminMapping {
    /// The admin role's full ARN (with its path, as access entries want it);
    /// aws-auth gets it without the path.
    pub role_arn: RoleArn,
    pub username: String,
    pub groups: Vec<String>,
}

/// A user whose mappings must go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Offboarded {
    /// Exactly this user (ASCII case ignored).
    Arn(UserArn),
    /// Any user ARN with this name, whatever its path (case ignored).
    Name(UserName),
}

impl Offboarded {
    /// Whether `arn` (a `userarn` value or an access-entry principal) names
    /// this user.
    pub fn matches(&self, arn: &str) -> bool {
        match self {
            Offboarded::Arn(a) => a.as_str().eq_ignore_ascii_case(arn.trim()),
            Offboarded::Name(n) => arn
                .trim()
                .parse::<UserArn>()
                .map(|u| u.name().eq_ignore_case(n))
                .unwrap_or(false),
        }
    }
}

/// The edit cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsAuthError {
    /// A key we must edit does not parse; we refuse to touch it.
    #[error("aws-auth data.{key} does not parse, refusing to edit it: {message}")]
    Parse { key: String, message: String },
    /// Rendering failed (should not happen for parsed values).
    #[error("cannot render aws-auth data.{key}: {message}")]
    Render { key: String, message: String },
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
    /// Extra entries for the admin role were removed.
    AdminDuplicatesRemoved { count: usize },
    /// A mapUsers entry of an offboarded user was removed.
    UserMappingRemoved {
        userarn: String,
        username: Option<String>,
    },
}

impl fmt::Display for AwsAuthChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AwsAuthChange::AdminRoleAdded { rolearn } => {
                write!(f, "mapRoles: add admin role mapping {rolearn}")
            }
            AwsAuthChange::AdminRoleUpdated { field, from, to } => match from {
                Some(from) => write!(f, "mapRoles: admin role {field}: {from} -> {to}"),
                None => write!(f, "mapRoles: admin role {field}: (absent) -> {to}"),
            },
            AwsAuthChange::AdminDuplicatesRemoved { count } => {
                write!(
                    f,
                    "mapRoles: remove {count} duplicate admin role mapping(s)"
                )
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
fn field<'a>(m: &'a Map<String, Value>, name: &str) -> Option<(&'a String, &'a Value)> {
    m.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))
}

fn field_str(m: &Map<String, Value>, name: &str) -> Option<String> {
    field(m, name).and_then(|(_, v)| v.as_str().map(|s| s.trim().to_string()))
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
    // Another spelling of the same field (`ROLEARN` beside `rolearn`): the
    // authenticator reads the last one, so keep only the one we set.
    if let Some((kept, _)) = &existing {
        let before = m.len();
        m.retain(|k, _| k == kept || !k.eq_ignore_ascii_case(name));
        if m.len() < before {
            changes.push(AwsAuthChange::AdminRoleUpdated {
                field: name.to_string(),
                from: Some("several spellings".into()),
                to: kept.clone(),
            });
        }
    }
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

/// Ensures the admin role mapping and removes offboarded users' mappings.
pub fn edit_aws_auth(
    data: Option<&BTreeMap<String, String>>,
    admin: &AdminMapping,
    offboarded: &[Offboarded],
) -> Result<AwsAuthEdit, AwsAuthError> {
    let mut out = data.cloned().unwrap_or_default();
    let created = data.is_none_or(|d| !d.contains_key(MAP_ROLES));
    let mut changes = Vec::new();

    // mapRoles
    let roles_text = out.get(MAP_ROLES).cloned().unwrap_or_default();
    let roles = parse_entries(MAP_ROLES, &roles_text)?;
    let users_text = out.get(MAP_USERS).cloned();
    // mapUsers is only parsed (and so can only refuse) when someone must go.
    let users = match &users_text {
        Some(t) if !offboarded.is_empty() => Some(parse_entries(MAP_USERS, t)?),
        _ => None,
    };

    let mut new_roles: Vec<Value> = Vec::with_capacity(roles.len() + 1);
    let mut seen_admin = false;
    let mut duplicates = 0;
    let want_arn = Value::String(admin.role_arn.without_path().to_string());
    let want_user = Value::String(admin.username.clone());
    let want_groups = Value::Array(admin.groups.iter().cloned().map(Value::String).collect());
    for entry in roles {
        if !is_admin_entry(&entry, &admin.role_arn) {
            new_roles.push(entry);
            continue;
        }
        if seen_admin {
            duplicates += 1;
            continue;
        }
        seen_admin = true;
        let mut m = entry.as_object().cloned().unwrap_or_default();
        set_field(&mut m, "rolearn", want_arn.clone(), &mut changes);
        set_field(&mut m, "username", want_user.clone(), &mut changes);
        set_field(&mut m, "groups", want_groups.clone(), &mut changes);
        new_roles.push(Value::Object(m));
    }
    if !seen_admin {
        changes.push(AwsAuthChange::AdminRoleAdded {
            rolearn: admin.role_arn.without_path().to_string(),
        });
        new_roles.push(admin_entry_value(admin));
    }
    if duplicates > 0 {
        changes.push(AwsAuthChange::AdminDuplicatesRemoved { count: duplicates });
    }
    if !changes.is_empty() || created {
        out.insert(
            MAP_ROLES.to_string(),
            render_yaml_list(MAP_ROLES, &new_roles)?,
        );
    }

    // mapUsers
    if let Some(users) = users {
        let before = changes.len();
        let mut kept = Vec::with_capacity(users.len());
        for entry in users {
            let arn = entry.as_object().and_then(|m| field_str(m, "userarn"));
            match arn {
                Some(a) if offboarded.iter().any(|o| o.matches(&a)) => {
                    changes.push(AwsAuthChange::UserMappingRemoved {
                        userarn: a,
                        username: entry.as_object().and_then(|m| field_str(m, "username")),
                    });
                }
                _ => kept.push(entry),
            }
        }
        if changes.len() > before {
            out.insert(MAP_USERS.to_string(), render_yaml_list(MAP_USERS, &kept)?);
        }
    }

    Ok(AwsAuthEdit {
        data: out,
        changes,
        created,
    })
}

//! [`AwsAuth`]: the aws-auth `data` with one verb per job, each touching only
//! its own key, through the span editor (`text`): entries we do not own keep
//! their text; ours is written with quoted values.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;

use crate::model::arn::RoleArn;
use crate::model::tiers::is_retired_tier;
use serde_json::{Map, Value};

use super::text::{
    Entry, Fate, Kind, Located, NewEntry, Node, column, locate, locate_error, quoted, quoted_list,
};
use super::{
    AdminMapping, AwsAuthChange, AwsAuthError, MAP_ROLES, MAP_USERS, Offboarded, admin_entry_value,
    entry_role_key, field_str, is_admin_entry, parse_entries, role_key, set_field,
};

/// The aws-auth ConfigMap's `data`, edited one key at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsAuth {
    data: BTreeMap<String, String>,
    created: bool,
    changes: Vec<AwsAuthChange>,
    /// The last key parsed, its text and its entries: the verbs of one edit read a
    /// document once, not once each (a 118-entry `mapRoles` is most of an event's work
    /// on a cluster).
    read: Option<(String, String, Vec<Value>)>,
}

/// Plain scalars every YAML 1.1 reader (go-yaml v2, PyYAML) resolves to
/// something other than a string, whatever their case variant.
const YAML11_WORDS: &[&str] = &[
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
    "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~", "", "<<",
    "=",
];

/// Whether a plain (unquoted, untagged) scalar surely reads as a string under
/// YAML 1.1 and 1.2: not a boolean/null word, and not starting like a number
/// (`012`, `0o12`, `1e3`, `0x1F`, `1_000`, `12:30`, `.5`, `.inf`, `-1`, `+1`).
pub(super) fn plain_reads_as_string(s: &str) -> bool {
    if YAML11_WORDS.contains(&s) {
        return false;
    }
    !s.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
}

/// Whether every scalar of `node` reads as a string under YAML 1.1 and 1.2.
fn reads_as_strings(node: &Node) -> bool {
    match &node.kind {
        Kind::Scalar {
            value,
            plain_untagged,
        } => !plain_untagged || plain_reads_as_string(value),
        Kind::Seq { items } => items.iter().all(reads_as_strings),
        Kind::Map { .. } => false,
    }
}

/// Our three fields: name, wanted value, and that value as quoted YAML.
fn wanted(admin: &AdminMapping) -> [(&'static str, Value, String); 3] {
    let arn = admin.role_arn.without_path().to_string();
    [
        ("rolearn", Value::String(arn.clone()), quoted(&arn)),
        (
            "username",
            Value::String(admin.username.clone()),
            quoted(&admin.username),
        ),
        (
            "groups",
            Value::Array(admin.groups.iter().cloned().map(Value::String).collect()),
            quoted_list(&admin.groups),
        ),
    ]
}

fn new_entry(admin: &AdminMapping) -> NewEntry {
    NewEntry {
        rolearn: admin.role_arn.without_path().to_string(),
        username: admin.username.clone(),
        groups: admin.groups.clone(),
    }
}

/// The edit of one field of our entry: its value replaced (from the end of
/// the key, so a block value on the next lines goes too), or the field added.
fn field_edit(
    text: &str,
    entry: &Entry,
    name: &str,
    rendered: &str,
    nl: &str,
) -> Result<(Range<usize>, String), AwsAuthError> {
    let Kind::Map { flow, pairs } = &entry.node.kind else {
        return Err(locate_error(MAP_ROLES, "the admin entry is not a mapping"));
    };
    let is_name = |k: &Node| matches!(&k.kind, Kind::Scalar { value, .. } if value.eq_ignore_ascii_case(name));
    let found: Vec<&(Node, Node)> = pairs.iter().filter(|(k, _)| is_name(k)).collect();
    if let [(k, v)] = found[..] {
        let rest = &text[k.end..];
        let colon = k.end + rest.len() - rest.trim_start_matches([' ', '\t']).len();
        if text.as_bytes().get(colon) != Some(&b':') {
            return Err(locate_error(
                MAP_ROLES,
                format!("cannot find the `:` after the admin entry's {name}"),
            ));
        }
        let end = if v.end > v.start { v.end } else { colon + 1 };
        return Ok((k.end..end, format!(": {rendered}")));
    }
    if found.len() > 1 {
        return Err(locate_error(
            MAP_ROLES,
            format!("the admin entry has {name} more than once"),
        ));
    }
    let Some((first_key, _)) = pairs.first() else {
        return Err(locate_error(MAP_ROLES, "the admin entry is empty"));
    };
    if *flow {
        let at = pairs
            .iter()
            .map(|(k, v)| k.end.max(v.end))
            .max()
            .unwrap_or(first_key.end);
        return Ok((at..at, format!(", {}: {rendered}", quoted(name))));
    }
    let pad = " ".repeat(column(text, first_key.start));
    let at = entry.span.end;
    let line = format!("{pad}{name}: {rendered}");
    Ok(if text[..at].ends_with('\n') {
        (at..at, format!("{line}{nl}"))
    } else {
        (at..at, format!("{nl}{line}"))
    })
}

impl AwsAuth {
    /// Takes the ConfigMap's `data` (`None`: no ConfigMap). Keys are parsed
    /// by the verbs that need them, so a broken key only blocks those.
    pub fn parse(data: Option<&BTreeMap<String, String>>) -> AwsAuth {
        AwsAuth {
            created: data.is_none_or(|d| !d.contains_key(MAP_ROLES)),
            data: data.cloned().unwrap_or_default(),
            changes: Vec::new(),
            read: None,
        }
    }

    /// The entries of `key`'s `text` ([`parse_entries`]), read once while the text
    /// stays the same.
    fn entries(&mut self, key: &str, text: &str) -> Result<Vec<Value>, AwsAuthError> {
        Ok(self.read_entries(key, text)?.to_vec())
    }

    /// [`AwsAuth::entries`], borrowed.
    fn read_entries(&mut self, key: &str, text: &str) -> Result<&[Value], AwsAuthError> {
        let kept = matches!(&self.read, Some((k, t, _)) if k == key && t == text);
        if !kept {
            let entries = parse_entries(key, text)?;
            self.read = Some((key.to_owned(), text.to_owned(), entries));
        }
        Ok(self.read.as_ref().map_or(&[], |(_, _, e)| e.as_slice()))
    }

    /// The ConfigMap or its `mapRoles` key was absent.
    pub fn created(&self) -> bool {
        self.created
    }

    /// Every change made so far.
    pub fn changes(&self) -> &[AwsAuthChange] {
        &self.changes
    }

    /// The data, edited.
    pub fn into_data(self) -> BTreeMap<String, String> {
        self.data
    }

    /// `userarn` of every `mapUsers` entry (empty when the key is absent).
    pub fn user_arns(&self) -> Result<Vec<String>, AwsAuthError> {
        let Some(text) = self.data.get(MAP_USERS) else {
            return Ok(Vec::new());
        };
        Ok(parse_entries(MAP_USERS, text)?
            .iter()
            .filter_map(|e| e.as_object().and_then(|m| field_str(m, "userarn")))
            .collect())
    }

    /// [`AwsAuth::ensure_role`] for each of `mappings`, with the text parsed and
    /// located once: the mappings already in place (one entry, our values, safely
    /// quoted) are checked against that one read; a mapping whose entry needs an edit
    /// goes through `ensure_role` on its own, then the missing ones are appended in
    /// one rewrite (in order). A tier spread over a hundred shard roles is then one
    /// pass over the key per cluster, not one per role.
    pub fn ensure_roles(
        &mut self,
        mappings: &[AdminMapping],
    ) -> Result<Vec<AwsAuthChange>, AwsAuthError> {
        let text = self.data.get(MAP_ROLES).cloned().unwrap_or_default();
        let entries = self.entries(MAP_ROLES, &text)?;
        let keys: Vec<Option<String>> = entries.iter().map(entry_role_key).collect();
        // Only for the quoting check of entries in place; a key that cannot be
        // located leaves that check to `ensure_role`, as it would be alone.
        let located = locate(MAP_ROLES, &text)
            .ok()
            .filter(|l| l.entries.len() == entries.len());
        // Each role's entries, found by key in one pass (not one scan per role).
        let mut at_key: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            if let Some(k) = k {
                at_key.entry(k.as_str()).or_default().push(i);
            }
        }
        let mut missing: Vec<&AdminMapping> = Vec::new();
        let mut missing_keys: HashSet<String> = HashSet::new();
        let mut to_edit: Vec<&AdminMapping> = Vec::new();
        for m in mappings {
            let key = role_key(&m.role_arn);
            let at = at_key.get(key.as_str()).map_or(&[][..], Vec::as_slice);
            match at {
                [] if missing_keys.insert(key) => missing.push(m),
                [] => {}
                &[i] if in_place(
                    &text,
                    &entries[i],
                    located.as_ref().map(|l| &l.entries[i]),
                    located.as_ref().map_or("\n", |l| l.newline),
                    m,
                ) => {}
                _ => to_edit.push(m),
            }
        }
        // Edits first (rare: each alone, re-reading the key), then the missing
        // roles, appended after every entry in one rewrite of the edited text.
        let mut changes = Vec::new();
        for m in to_edit {
            changes.extend(self.ensure_role(m)?);
        }
        if !missing.is_empty() {
            let now = self.data.get(MAP_ROLES).cloned().unwrap_or_default();
            // Unless an edit changed the text, what was read and located still holds.
            let (entries, located) = if now == text {
                (entries, located)
            } else {
                (self.entries(MAP_ROLES, &now)?, None)
            };
            changes.extend(self.append_roles(&now, entries, &missing, located)?);
        }
        Ok(changes)
    }

    /// Appends the mappings of `roles` after every entry of `text` (`entries`, as
    /// read; `located`, when already located), in one rewrite.
    fn append_roles(
        &mut self,
        text: &str,
        entries: Vec<Value>,
        roles: &[&AdminMapping],
        located: Option<Located>,
    ) -> Result<Vec<AwsAuthChange>, AwsAuthError> {
        let located = match located {
            Some(l) => l,
            None => locate(MAP_ROLES, text)?,
        };
        let appended: Vec<NewEntry> = roles.iter().map(|m| new_entry(m)).collect();
        let new = located.rewrite(text, &vec![Fate::Keep; entries.len()], &appended);
        let mut expected = entries;
        expected.extend(roles.iter().map(|m| admin_entry_value(m)));
        let added = roles
            .iter()
            .map(|m| AwsAuthChange::AdminRoleAdded {
                rolearn: m.role_arn.without_path().to_string(),
            })
            .collect();
        self.store(MAP_ROLES, new, &expected, added)
    }

    /// Ensures the admin role mapping in `mapRoles` (one entry, first
    /// position of any existing one, values quoted), touching nothing else.
    pub fn ensure_role(
        &mut self,
        admin: &AdminMapping,
    ) -> Result<Vec<AwsAuthChange>, AwsAuthError> {
        let text = self.data.get(MAP_ROLES).cloned().unwrap_or_default();
        let entries = self.entries(MAP_ROLES, &text)?;
        let admins: Vec<usize> = (0..entries.len())
            .filter(|&i| is_admin_entry(&entries[i], &admin.role_arn))
            .collect();
        let Some(&first) = admins.first() else {
            return self.append_roles(&text, entries, &[admin], None);
        };
        let mut changes = Vec::new();
        let mut ours: Map<String, Value> = entries[first].as_object().cloned().unwrap_or_default();
        let before = ours.clone();
        for (name, want, _) in wanted(admin) {
            set_field(&mut ours, name, want, &mut changes);
        }
        let located = match locate(MAP_ROLES, &text) {
            Ok(l) if l.entries.len() == entries.len() => l,
            Ok(_) => {
                return Err(locate_error(
                    MAP_ROLES,
                    "entries located do not match entries read",
                ));
            }
            // Nothing to change: the quoting of our entry cannot be checked, nothing is written.
            Err(_) if changes.is_empty() && admins.len() == 1 => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let edits = our_entry_edits(
            &text,
            &located.entries[first],
            located.newline,
            &before,
            admin,
            &mut changes,
        )?;
        let mut fates = vec![Fate::Keep; entries.len()];
        if !edits.is_empty() {
            fates[first] = Fate::Edit(edits);
        }
        for &d in &admins[1..] {
            fates[d] = Fate::Drop;
        }
        if admins.len() > 1 {
            changes.push(AwsAuthChange::AdminDuplicatesRemoved {
                count: admins.len() - 1,
            });
        }
        if changes.is_empty() {
            return Ok(changes);
        }
        let expected: Vec<Value> = (0..entries.len())
            .filter(|i| !admins[1..].contains(i))
            .map(|i| {
                if i == first {
                    Value::Object(ours.clone())
                } else {
                    entries[i].clone()
                }
            })
            .collect();
        let new = located.rewrite(&text, &fates, &[]);
        self.store(MAP_ROLES, new, &expected, changes)
    }

    /// Removes the `mapUsers` entries of offboarded users (their lines only).
    pub fn remove_users(
        &mut self,
        offboarded: &[Offboarded],
    ) -> Result<Vec<AwsAuthChange>, AwsAuthError> {
        let Some(text) = self.data.get(MAP_USERS).cloned() else {
            return Ok(Vec::new());
        };
        if offboarded.is_empty() {
            return Ok(Vec::new());
        }
        let entries = self.entries(MAP_USERS, &text)?;
        let mut changes = Vec::new();
        let mut fates = Vec::with_capacity(entries.len());
        let mut expected = Vec::with_capacity(entries.len());
        for entry in &entries {
            let m = entry.as_object();
            match m.and_then(|m| field_str(m, "userarn")) {
                Some(a) if offboarded.iter().any(|o| o.matches(&a)) => {
                    let username = m.and_then(|m| field_str(m, "username"));
                    changes.push(AwsAuthChange::UserMappingRemoved {
                        userarn: a,
                        username,
                    });
                    fates.push(Fate::Drop);
                }
                _ => {
                    fates.push(Fate::Keep);
                    expected.push(entry.clone());
                }
            }
        }
        if changes.is_empty() {
            return Ok(changes);
        }
        let located = locate(MAP_USERS, &text)?;
        if located.entries.len() != entries.len() {
            return Err(locate_error(
                MAP_USERS,
                "entries located do not match entries read",
            ));
        }
        let new = located.rewrite(&text, &fates, &[]);
        self.store(MAP_USERS, new, &expected, changes)
    }

    /// Removes the `mapRoles` entries of retired tiers: entries whose groups are all
    /// tier groups (`eks-access-sync:<tier>`) and none of them in `current` (the
    /// configured tiers' groups). Any other entry stays as written.
    pub fn remove_retired_tiers(
        &mut self,
        current: &[String],
    ) -> Result<Vec<AwsAuthChange>, AwsAuthError> {
        self.remove_roles_where(|m| {
            let groups: Vec<String> = m
                .get("groups")?
                .as_array()?
                .iter()
                .map(|g| g.as_str().map(str::to_owned))
                .collect::<Option<_>>()?;
            let all_retired = is_retired_tier(&groups, current);
            let rolearn = field_str(m, "rolearn").unwrap_or_default();
            all_retired.then_some(AwsAuthChange::RetiredTierRoleRemoved { rolearn, groups })
        })
    }

    /// Removes the `mapRoles` entries of `roles` (tier roles whose tier does not apply
    /// to this cluster), matched ignoring path and case.
    pub fn remove_roles(&mut self, roles: &[RoleArn]) -> Result<Vec<AwsAuthChange>, AwsAuthError> {
        if roles.is_empty() {
            return Ok(Vec::new());
        }
        self.remove_roles_where(|m| {
            let rolearn = field_str(m, "rolearn")?;
            let arn: RoleArn = rolearn.parse().ok()?;
            roles
                .iter()
                .any(|r| r.eq_ignoring_path_and_case(&arn))
                .then_some(AwsAuthChange::TierRoleOutOfScope { rolearn })
        })
    }

    /// Drops the `mapRoles` entries `gone` returns a change for (their lines only).
    fn remove_roles_where(
        &mut self,
        gone: impl Fn(&Map<String, Value>) -> Option<AwsAuthChange>,
    ) -> Result<Vec<AwsAuthChange>, AwsAuthError> {
        let Some(text) = self.data.get(MAP_ROLES).cloned() else {
            return Ok(Vec::new());
        };
        // Borrowed: most runs remove nothing, and copy nothing.
        let entries = self.read_entries(MAP_ROLES, &text)?;
        let mut changes = Vec::new();
        let mut fates = Vec::with_capacity(entries.len());
        for entry in entries {
            if let Some(change) = entry.as_object().and_then(&gone) {
                changes.push(change);
                fates.push(Fate::Drop);
            } else {
                fates.push(Fate::Keep);
            }
        }
        if changes.is_empty() {
            return Ok(changes);
        }
        let expected: Vec<Value> = entries
            .iter()
            .zip(&fates)
            .filter(|(_, f)| matches!(f, Fate::Keep))
            .map(|(e, _)| e.clone())
            .collect();
        let located = locate(MAP_ROLES, &text)?;
        if located.entries.len() != fates.len() {
            return Err(locate_error(
                MAP_ROLES,
                "entries located do not match entries read",
            ));
        }
        let new = located.rewrite(&text, &fates, &[]);
        self.store(MAP_ROLES, new, &expected, changes)
    }

    /// Checks that `new` reads back as `expected`, then keeps it.
    fn store(
        &mut self,
        key: &str,
        new: String,
        expected: &[Value],
        changes: Vec<AwsAuthChange>,
    ) -> Result<Vec<AwsAuthChange>, AwsAuthError> {
        let back = parse_entries(key, &new)
            .map_err(|e| locate_error(key, format!("the edited text would not parse: {e}")))?;
        if back != expected {
            return Err(locate_error(
                key,
                "the edited text would not read back as intended",
            ));
        }
        self.read = Some((key.to_owned(), new.clone(), back));
        self.data.insert(key.to_string(), new);
        self.changes.extend(changes.iter().cloned());
        Ok(changes)
    }
}

/// Whether `entry` (the only one of `m`'s role) is `m`'s mapping as `ensure_role`
/// would leave it: our values, and (when its text is `located`) each of our fields
/// reading as strings under YAML 1.1 too.
fn in_place(
    text: &str,
    entry: &Value,
    located: Option<&Entry>,
    nl: &str,
    m: &AdminMapping,
) -> bool {
    let before = entry.as_object().cloned().unwrap_or_default();
    let mut ours = before.clone();
    let mut changes = Vec::new();
    for (name, want, _) in wanted(m) {
        set_field(&mut ours, name, want, &mut changes);
    }
    if !changes.is_empty() {
        return false;
    }
    located.is_none_or(|e| {
        our_entry_edits(text, e, nl, &before, m, &mut changes)
            .is_ok_and(|edits| edits.is_empty() && changes.is_empty())
    })
}

/// The edits of our entry: a field whose value is wrong, or right only for
/// YAML 1.2 (a plain `yes`), is written quoted; the rest of the entry stays.
fn our_entry_edits(
    text: &str,
    entry: &Entry,
    nl: &str,
    before: &Map<String, Value>,
    admin: &AdminMapping,
    changes: &mut Vec<AwsAuthChange>,
) -> Result<Vec<(Range<usize>, String)>, AwsAuthError> {
    let mut edits = Vec::new();
    for (name, want, rendered) in wanted(admin) {
        let current = super::field(before, name).map(|(_, v)| v);
        let unsafe_text = pair_value(&entry.node, name).is_some_and(|n| !reads_as_strings(n));
        if current != Some(&want) || unsafe_text {
            edits.push(field_edit(text, entry, name, &rendered, nl)?);
        }
        if current == Some(&want) && unsafe_text {
            changes.push(AwsAuthChange::AdminRoleRequoted {
                field: name.to_string(),
            });
        }
    }
    Ok(edits)
}

/// The value node of field `name` (case ignored; the last spelling wins, as in the
/// authenticator) of an entry mapping.
fn pair_value<'n>(entry: &'n Node, name: &str) -> Option<&'n Node> {
    let Kind::Map { pairs, .. } = &entry.kind else {
        return None;
    };
    pairs
        .iter()
        .rev()
        .find(|(k, _)| matches!(&k.kind, Kind::Scalar { value, .. } if value.eq_ignore_ascii_case(name)))
        .map(|(_, v)| v)
}

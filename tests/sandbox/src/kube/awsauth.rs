//! Reading `kube-system/aws-auth` the way aws-iam-authenticator does
//! (`pkg/mapper/configmap`): lenient per entry (an invalid entry is skipped),
//! a YAML error in one key loses that key only, entry field names match
//! case-insensitively, ARNs are keyed lower-cased and the last duplicate wins.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

/// One `mapRoles`/`mapUsers` entry after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub arn: String,
    pub username: String,
    pub groups: Vec<String>,
}

/// The parsed mappings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsAuth {
    /// lower-cased role ARN -> mapping.
    pub roles: BTreeMap<String, Mapping>,
    /// lower-cased user ARN -> mapping.
    pub users: BTreeMap<String, Mapping>,
    pub accounts: BTreeSet<String>,
    /// Why keys or entries were ignored (for diagnostics).
    pub problems: Vec<String>,
}

fn lower_keys(entry: &Value) -> Option<BTreeMap<String, Value>> {
    entry.as_object().map(|o| {
        o.iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect()
    })
}

fn parse_entries(key: &str, arn_field: &str, yaml: &str, out: &mut AwsAuth) -> Vec<Mapping> {
    let entries: Vec<Value> = match serde_saphyr::from_str::<Option<Vec<Value>>>(yaml) {
        Ok(v) => v.unwrap_or_default(),
        Err(e) => {
            out.problems.push(format!("{key}: {e}"));
            return Vec::new();
        }
    };
    let mut mappings = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let Some(fields) = lower_keys(entry) else {
            out.problems.push(format!("{key}[{i}]: not a mapping"));
            continue;
        };
        let Some(arn) = fields.get(arn_field).and_then(Value::as_str) else {
            out.problems
                .push(format!("{key}[{i}]: {arn_field} missing"));
            continue;
        };
        if !arn.starts_with("arn:") {
            out.problems
                .push(format!("{key}[{i}]: {arn_field} {arn:?} is not an ARN"));
            continue;
        }
        let username = match fields.get("username") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                out.problems
                    .push(format!("{key}[{i}]: username is not a string"));
                continue;
            }
        };
        let groups = match fields.get("groups") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => {
                let g: Option<Vec<String>> =
                    a.iter().map(|v| v.as_str().map(str::to_string)).collect();
                match g {
                    Some(g) => g,
                    None => {
                        out.problems
                            .push(format!("{key}[{i}]: groups must be strings"));
                        continue;
                    }
                }
            }
            Some(_) => {
                out.problems
                    .push(format!("{key}[{i}]: groups is not a list"));
                continue;
            }
        };
        mappings.push(Mapping {
            arn: arn.to_string(),
            username,
            groups,
        });
    }
    mappings
}

/// Parses the `data` of an aws-auth ConfigMap.
pub fn parse_aws_auth(data: &BTreeMap<String, String>) -> AwsAuth {
    let mut out = AwsAuth::default();
    if let Some(y) = data.get("mapRoles") {
        for m in parse_entries("mapRoles", "rolearn", y, &mut out) {
            out.roles.insert(m.arn.to_ascii_lowercase(), m);
        }
    }
    if let Some(y) = data.get("mapUsers") {
        for m in parse_entries("mapUsers", "userarn", y, &mut out) {
            out.users.insert(m.arn.to_ascii_lowercase(), m);
        }
    }
    if let Some(y) = data.get("mapAccounts") {
        match serde_saphyr::from_str::<Option<Vec<Value>>>(y) {
            Ok(v) => {
                for a in v.unwrap_or_default() {
                    match a {
                        Value::String(s) => {
                            out.accounts.insert(s);
                        }
                        Value::Number(n) => {
                            out.accounts.insert(n.to_string());
                        }
                        other => out
                            .problems
                            .push(format!("mapAccounts: {other} is not an account id")),
                    }
                }
            }
            Err(e) => out.problems.push(format!("mapAccounts: {e}")),
        }
    }
    out
}

/// aws-auth's data as last parsed, and what it parsed to. The authenticator keeps
/// the parsed mappings between requests (it watches the ConfigMap) and parses
/// again only when the document changed; so does the sandbox, which otherwise
/// parsed every request's aws-auth anew, under the state's lock.
#[derive(Debug, Default)]
pub struct ParsedAwsAuth(Mutex<Option<(Data, Arc<AwsAuth>)>>);

/// A ConfigMap's `data`.
type Data = BTreeMap<String, String>;

impl ParsedAwsAuth {
    /// The mappings of `data`: the last parse when it was of the same data.
    pub fn of(&self, data: Data) -> Arc<AwsAuth> {
        let mut last = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((read, auth)) = last.as_ref()
            && *read == data
        {
            return auth.clone();
        }
        let auth = Arc::new(parse_aws_auth(&data));
        *last = Some((data, auth.clone()));
        auth
    }
}

/// Extracts `data` from a stored ConfigMap JSON.
pub fn configmap_data(obj: &Value) -> BTreeMap<String, String> {
    obj.get("data")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_all_three_keys_case_insensitively() {
        let d = data(&[
            (
                "mapRoles",
                "- RoleArn: arn:aws:iam::123456789012:role/Admin\n  UserName: admin:{{SessionName}}\n  Groups: [system:masters]\n",
            ),
            (
                "mapUsers",
                "- userarn: arn:aws:iam::123456789012:user/alice\n  username: alice\n",
            ),
            ("mapAccounts", "- \"123456789012\"\n- 210987654321\n"),
        ]);
        let a = parse_aws_auth(&d);
        let r = &a.roles["arn:aws:iam::123456789012:role/admin"];
        assert_eq!(r.username, "admin:{{SessionName}}");
        assert_eq!(r.groups, vec!["system:masters"]);
        assert_eq!(
            a.users["arn:aws:iam::123456789012:user/alice"].username,
            "alice"
        );
        assert!(a.accounts.contains("123456789012"));
        assert!(a.accounts.contains("210987654321"));
    }

    #[test]
    fn broken_key_and_bad_entries_are_skipped() {
        let d = data(&[
            ("mapRoles", "- rolearn: [unclosed\n"),
            (
                "mapUsers",
                "- userarn: not-an-arn\n  username: x\n- userarn: arn:aws:iam::1:user/a\n  username: first\n- userarn: arn:aws:iam::1:user/A\n  username: last\n- userarn: arn:aws:iam::1:user/b\n  groups: oops\n",
            ),
        ]);
        let a = parse_aws_auth(&d);
        assert!(a.roles.is_empty());
        assert_eq!(a.users.len(), 1);
        assert_eq!(a.users["arn:aws:iam::1:user/a"].username, "last");
        assert_eq!(a.problems.len(), 3, "{:?}", a.problems);
    }

    #[test]
    fn a_parse_is_kept_until_the_document_changes() {
        let kept = ParsedAwsAuth::default();
        let admin = |name: &str| {
            data(&[(
                "mapRoles",
                &format!("- rolearn: arn:aws:iam::1:role/a\n  username: {name}\n"),
            )])
        };
        let first = kept.of(admin("one"));
        assert!(
            Arc::ptr_eq(&first, &kept.of(admin("one"))),
            "same data, same parse"
        );
        let changed = kept.of(admin("two"));
        assert_eq!(changed.roles["arn:aws:iam::1:role/a"].username, "two");
        assert!(
            kept.of(BTreeMap::new()).roles.is_empty(),
            "aws-auth emptied"
        );
    }
}

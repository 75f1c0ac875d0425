//! The trust-policy editor.
//!
//! We own the principals of one statement of the admin role's trust policy, found by its
//! `Sid`. Every other statement is kept exactly as it was: same position, same
//! keys in the same order, same values (`serde_json` with `preserve_order`).
//!
//! In our statement we own `Principal.AWS` (the users), its `Effect` (`Allow`) and,
//! with `require_session_name`, the session-name condition
//! `StringEquals {"sts:RoleSessionName": "${aws:username}"}`. Everything else an
//! administrator put there is kept as written, in place: other condition operators
//! and keys (also other keys under `StringEquals`), the `Action` (a second action
//! such as `sts:TagSession`), `Service`/`Federated` principals beside `AWS`, unknown
//! fields. A statement we create is
//!
//! ```json
//! {"Sid":"<sid>","Effect":"Allow","Principal":{"AWS":<sorted user ARNs>},
//!  "Action":"sts:AssumeRole"[,"Condition":{"StringEquals":{"sts:RoleSessionName":"${aws:username}"}}]}
//! ```
//!
//! with a single string instead of a list when there is one principal, and the
//! `Condition` only when `require_session_name` is on. Several statements with
//! our Sid are merged into one at the place of the first (the first `Allow` one
//! gives the fields kept, so its conditions then apply to all the users).
//!
//! The session-name condition: with the option on, `sts:RoleSessionName` is ours
//! under every operator of our statement (another rule on that key would contradict
//! ours) and is set under `StringEquals`, beside the keys already there. With it off,
//! only the exact entry we add is removed; an operator or `Condition` left empty by
//! that goes too.
//! Decisions where IAM leaves a choice:
//! - Dangling unique IDs (`AIDA…`, `AROA…`) are dropped from our statement and
//!   only reported when found in statements we do not own.
//! - A wildcard principal in our statement (`"Principal": "*"`, `"*"` under
//!   `Principal.AWS`) would open the role to everyone: it is removed on every edit
//!   and reported ([`TrustEdit::wildcard_removed`], and `*` in
//!   [`TrustEdit::removed`]).
//! - `NotPrincipal` in our statement cannot be combined with the principals we
//!   manage: the edit is refused with [`TrustPolicyError::NotPrincipalInManaged`]
//!   rather than dropping it.
//! - A managed statement whose `Effect` is not `Allow` is our deny placeholder and
//!   is rebuilt when users are added.
//! - An empty managed set removes our statement (kept, without `AWS`, when it also
//!   names `Service` or `Federated` principals). If that would leave no
//!   statement at all (IAM rejects an empty `Statement`), we write a
//!   placeholder statement with our Sid that **denies** `sts:AssumeRole` to the
//!   account root, `arn:<partition>:iam::<account>:root`. The account is taken
//!   from the first ARN found in the current document, else from
//!   [`TrustOptions::account_fallback`]; if neither exists the edit is refused
//!   with [`TrustPolicyError::NoAccount`].
//! - Sizes are counted as IAM does (no whitespace outside strings), on the
//!   minified document. A write whose result exceeds `max_chars` is refused,
//!   even if it shrinks the policy, so nothing we write can exceed the quota.
//! - A document that is already canonical produces no write (`after == None`),
//!   even when its whitespace differs.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::model::arn::{AccountId, RoleArn, UserArn, UserName, is_unique_id};
use crate::model::config::Config;

mod build;
use build::{build, has_wildcard};

/// How to edit the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustOptions {
    /// Sid of the statement we own.
    pub sid: String,
    /// Size quota in characters (`ACLSizePerRole`).
    pub max_chars: usize,
    /// Add the `sts:RoleSessionName = ${aws:username}` condition.
    pub require_session_name: bool,
    /// `(partition, account)` for the deny placeholder when the document holds
    /// no ARN to take them from; set it with [`TrustOptions::with_role`].
    pub account_fallback: Option<(String, String)>,
}

impl TrustOptions {
    /// Uses the role's partition and account for the placeholder statement.
    pub fn with_role(mut self, role: &RoleArn) -> Self {
        self.account_fallback = Some((role.partition().to_string(), role.account().to_string()));
        self
    }
}

impl From<&Config> for TrustOptions {
    fn from(c: &Config) -> Self {
        TrustOptions {
            sid: c.trust_statement_sid.clone(),
            max_chars: c.trust_policy_max_chars,
            require_session_name: c.require_session_name,
            account_fallback: None,
        }
    }
}

/// The change to the managed principals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalChange {
    /// Exactly these users (full reconcile).
    Set(BTreeSet<UserArn>),
    /// Add one user.
    Add(UserArn),
    /// Remove one user by ARN (ASCII case ignored).
    RemoveArn(UserArn),
    /// Remove every user ARN of `account` with this name, in any path (DeleteUser
    /// records carry only the name); case ignored as IAM names are
    /// case-insensitive. Another account's user of that name stays.
    RemoveName { account: AccountId, name: UserName },
}

/// For logs: `add <arn>`, `remove <arn>`, `remove user <name> of account <id>`,
/// `set <n> users`.
impl std::fmt::Display for PrincipalChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrincipalChange::Set(users) => write!(f, "set {} users", users.len()),
            PrincipalChange::Add(arn) => write!(f, "add {arn}"),
            PrincipalChange::RemoveArn(arn) => write!(f, "remove {arn}"),
            PrincipalChange::RemoveName { account, name } => {
                write!(f, "remove user {name} of account {account}")
            }
        }
    }
}

/// The trust policy cannot be edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustPolicyError {
    #[error("trust policy is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("trust policy is not a policy document: {0}")]
    NotAPolicy(String),
    #[error("trust policy is URL-encoded but does not decode as UTF-8")]
    BadEncoding,
    #[error(
        "trust policy would be {size} characters, over the limit of {max} \
         ({users} managed users; {users_that_fit} would fit). Raise the IAM quota \
         \"Role trust policy length\" (Service Quotas code L-C07B4B0D) and set \
         TRUST_POLICY_MAX_CHARS to match"
    )]
    QuotaExceeded {
        size: usize,
        max: usize,
        users: usize,
        users_that_fit: usize,
    },
    #[error(
        "statement {sid} (managed by eks-access-sync) uses NotPrincipal, which cannot \
         be combined with the principals it manages; edit it by hand: give it a \
         Principal, or another Sid if it is not meant for eks-access-sync"
    )]
    NotPrincipalInManaged { sid: String },
    #[error(
        "the tier would need more than {max} roles; raise the trust-policy quota \
         (Service Quotas code L-C07B4B0D) and TRUST_POLICY_MAX_CHARS to match"
    )]
    TooManyShards { max: u32 },
    #[error(
        "removing the last managed principal would leave no statement, and the \
         document has no ARN to take the account from for the placeholder"
    )]
    NoAccount,
}

/// The result of an edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustEdit {
    /// Users newly trusted.
    pub added: Vec<UserArn>,
    /// Principals removed from our statement (not counting dangling IDs).
    pub removed: Vec<String>,
    /// A wildcard principal (`"*"`, `{"AWS": "*"}`) was found in our statement and
    /// removed; it is also listed in `removed` as `*`.
    pub wildcard_removed: bool,
    /// Dangling unique IDs dropped from our statement.
    pub dangling_removed: Vec<String>,
    /// Dangling unique IDs seen in statements we do not own (left alone).
    pub foreign_dangling: Vec<String>,
    pub size_before: usize,
    pub size_after: usize,
    pub max_chars: usize,
    /// The current document, minified.
    pub before: String,
    /// The new minified document, only when it must be written.
    pub after: Option<String>,
}

impl TrustEdit {
    /// Whether a write is needed.
    pub fn changed(&self) -> bool {
        self.after.is_some()
    }
}

/// Percent-decodes a document as `GetRole` returns it; JSON passes through.
pub fn decode_policy_document(s: &str) -> Result<String, TrustPolicyError> {
    let t = s.trim_start();
    if t.starts_with('{') {
        return Ok(s.to_string());
    }
    let decoded = percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map_err(|_| TrustPolicyError::BadEncoding)?;
    if decoded.trim_start().starts_with('{') {
        Ok(decoded.into_owned())
    } else {
        Err(TrustPolicyError::NotAPolicy(
            "expected a JSON object (or its URL encoding)".into(),
        ))
    }
}

/// Size as IAM counts it: characters, not counting whitespace outside strings.
pub fn policy_size_chars(minified: &str) -> usize {
    let mut in_str = false;
    let mut escaped = false;
    let mut n = 0;
    for c in minified.chars() {
        if in_str {
            n += 1;
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if !c.is_whitespace() {
            n += 1;
            if c == '"' {
                in_str = true;
            }
        }
    }
    n
}

/// A document as read: the statements moved out of `root`, whose `Statement` key
/// stays in place (as `null`) so that the document is written back in its order.
struct Parsed {
    root: Map<String, Value>,
    statements: Vec<Value>,
    was_single: bool,
}

impl Parsed {
    /// The document as it was read, compact (key order kept).
    fn compact(&mut self) -> Result<String, TrustPolicyError> {
        let statements = std::mem::take(&mut self.statements);
        let value = if self.was_single {
            statements.into_iter().next().unwrap_or(Value::Null)
        } else {
            Value::Array(statements)
        };
        self.root.insert("Statement".into(), value);
        let json = serde_json::to_string(&self.root)
            .map_err(|e| TrustPolicyError::InvalidJson(e.to_string()));
        self.statements = match self.root.get_mut("Statement").map(Value::take) {
            Some(Value::Array(a)) => a,
            Some(o @ Value::Object(_)) => vec![o],
            _ => Vec::new(),
        };
        json
    }
}

fn parse(doc: &str) -> Result<Parsed, TrustPolicyError> {
    let v: Value =
        serde_json::from_str(doc).map_err(|e| TrustPolicyError::InvalidJson(e.to_string()))?;
    let Value::Object(mut root) = v else {
        return Err(TrustPolicyError::NotAPolicy(
            "top level is not an object".into(),
        ));
    };
    let (statements, was_single) = match root.get_mut("Statement").map(Value::take) {
        Some(Value::Array(a)) => (a, false),
        Some(o @ Value::Object(_)) => (vec![o], true),
        Some(_) => {
            return Err(TrustPolicyError::NotAPolicy(
                "\"Statement\" is neither a list nor an object".into(),
            ));
        }
        None => return Err(TrustPolicyError::NotAPolicy("no \"Statement\"".into())),
    };
    if let Some(bad) = statements.iter().position(|s| !s.is_object()) {
        return Err(TrustPolicyError::NotAPolicy(format!(
            "statement {bad} is not an object"
        )));
    }
    Ok(Parsed {
        root,
        statements,
        was_single,
    })
}

fn is_ours(stmt: &Value, sid: &str) -> bool {
    stmt.get("Sid").and_then(Value::as_str) == Some(sid)
}

/// The AWS principals of an Allow statement (string or list under
/// `Principal.AWS`). Our deny placeholder (account root) yields none, so the
/// root never ends up trusted by our statement.
fn aws_principals(stmt: &Value) -> Vec<String> {
    if stmt.get("Effect").and_then(Value::as_str) != Some("Allow") {
        return Vec::new();
    }
    match stmt.get("Principal").and_then(|p| p.get("AWS")) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

/// The principals in our statement(s), including dangling IDs.
pub fn managed_principals(doc: &str, sid: &str) -> Result<BTreeSet<String>, TrustPolicyError> {
    let p = parse(doc)?;
    Ok(p.statements
        .iter()
        .filter(|s| is_ours(s, sid))
        .flat_map(aws_principals)
        .collect())
}

/// How many users (ARNs) the managed statement trusts; `None` if it cannot be read.
pub fn trusted_user_count(doc: &str, sid: &str) -> Option<usize> {
    managed_principals(doc, sid)
        .ok()
        .map(|set| user_count(&set))
}

/// How many of `principals` (a managed statement's, [`managed_principals`]) are ARNs,
/// not the unique IDs of deleted users.
pub fn user_count(principals: &BTreeSet<String>) -> usize {
    principals.iter().filter(|p| p.starts_with("arn:")).count()
}

/// The managed principals after `change` (ARNs as text).
fn apply_change(live: &BTreeSet<String>, change: &PrincipalChange) -> BTreeSet<String> {
    match change {
        PrincipalChange::Set(set) => set.iter().map(|a| a.to_string()).collect(),
        PrincipalChange::Add(a) => {
            let mut n = live.clone();
            if !n.iter().any(|x| x.eq_ignore_ascii_case(a.as_str())) {
                n.insert(a.to_string());
            }
            n
        }
        PrincipalChange::RemoveArn(a) => live
            .iter()
            .filter(|x| !x.eq_ignore_ascii_case(a.as_str()))
            .cloned()
            .collect(),
        PrincipalChange::RemoveName { account, name } => live
            .iter()
            .filter(|x| {
                !x.parse::<UserArn>()
                    .is_ok_and(|u| u.is_user_of(account, name))
            })
            .cloned()
            .collect(),
    }
}

/// How many of `new` (its sorted prefix) fit in `opts.max_chars`.
fn users_that_fit(p: &Parsed, new: &BTreeSet<String>, opts: &TrustOptions) -> usize {
    let all: Vec<&String> = new.iter().collect();
    for k in (0..all.len()).rev() {
        let subset: BTreeSet<String> = all[..k].iter().map(|s| (*s).clone()).collect();
        if build(p, &subset, opts)
            .map(|d| policy_size_chars(&d) <= opts.max_chars)
            .unwrap_or(false)
        {
            return k;
        }
    }
    0
}

/// Applies `change` to the managed statement of `current`.
pub fn edit_trust_policy(
    current: &str,
    change: &PrincipalChange,
    opts: &TrustOptions,
) -> Result<TrustEdit, TrustPolicyError> {
    let decoded = decode_policy_document(current)?;
    let mut p = parse(&decoded)?;
    let before = p.compact()?;

    let mut foreign_dangling = Vec::new();
    let mut old: Vec<String> = Vec::new();
    let mut wildcard_removed = false;
    for s in &p.statements {
        if is_ours(s, &opts.sid) {
            if s.get("NotPrincipal").is_some() {
                return Err(TrustPolicyError::NotPrincipalInManaged {
                    sid: opts.sid.clone(),
                });
            }
            wildcard_removed |= has_wildcard(s);
            old.extend(aws_principals(s).into_iter().filter(|x| x != "*"));
        } else {
            let mut strs = Vec::new();
            for k in ["Principal", "NotPrincipal"] {
                if let Some(v) = s.get(k) {
                    collect_strings(v, &mut strs);
                }
            }
            foreign_dangling.extend(strs.into_iter().filter(|x| is_unique_id(x)));
        }
    }
    let (dangling, live): (Vec<String>, Vec<String>) =
        old.into_iter().partition(|x| is_unique_id(x));
    let dangling_removed: Vec<String> = dangling
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let live: BTreeSet<String> = live.into_iter().collect();

    let new = apply_change(&live, change);

    let added: Vec<UserArn> = new
        .difference(&live)
        .filter_map(|s| s.parse().ok())
        .collect();
    let mut removed: Vec<String> = live.difference(&new).cloned().collect();
    if wildcard_removed {
        removed.insert(0, "*".to_owned());
    }

    let after_doc = build(&p, &new, opts)?;
    let size_before = policy_size_chars(&before);
    let size_after = policy_size_chars(&after_doc);
    let after = (after_doc != before).then_some(after_doc);

    if after.is_some() && size_after > opts.max_chars {
        return Err(TrustPolicyError::QuotaExceeded {
            size: size_after,
            max: opts.max_chars,
            users: new.len(),
            users_that_fit: users_that_fit(&p, &new, opts),
        });
    }

    Ok(TrustEdit {
        added,
        removed,
        wildcard_removed,
        dangling_removed,
        foreign_dangling,
        size_before,
        size_after,
        max_chars: opts.max_chars,
        before,
        after,
    })
}

//! Trust-policy evaluation for `sts:AssumeRole`: the subset of IAM's policy
//! language role trust policies use (principals, `StringEquals`,
//! `StringLike`, their negations and `Bool`, policy variables).
//!
//! A statement can admit the caller two ways, and IAM treats them apart
//! (IAM User Guide, "Policy evaluation logic": role trust policies are an
//! exception among resource-based policies):
//! * naming the caller: its user ARN, its role ARN or its session ARN, or
//!   `*`. That is enough on its own ([`Decision::Allow`]);
//! * naming the caller's account (`123456789012` or
//!   `arn:aws:iam::123456789012:root`: the account of the caller's ARN, or
//!   its `aws:PrincipalAccount`). That only delegates to the account:
//!   the caller's identity-based policies must also allow `sts:AssumeRole` on
//!   the role ([`Decision::AllowForAccount`], settled in
//!   [`super::identity`]).
//!
//! A `Deny` statement refuses whichever way it names the caller.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::state::{ACCOUNT_ID, arn_account};

/// What is known about the caller of AssumeRole.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// ARNs the caller may be named by: the user ARN, or the role ARN and
    /// the assumed-role session ARN.
    pub arns: Vec<String>,
    /// Condition context: lower-cased key → value
    /// (`sts:rolesessionname`, `aws:username`, `aws:principaltag/<k>`…).
    pub context: BTreeMap<String, String>,
}

impl Caller {
    /// The caller's account: `aws:PrincipalAccount` when set, else its first
    /// ARN's, else the hub.
    pub fn account(&self) -> &str {
        self.context
            .get("aws:principalaccount")
            .map(String::as_str)
            .or_else(|| self.arns.first().and_then(|a| arn_account(a)))
            .unwrap_or(ACCOUNT_ID)
    }
}

/// The verdict of the trust policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// An `Allow` statement names the caller itself (or `*`).
    Allow,
    /// The only `Allow` statements that apply name the caller's account: the
    /// caller's own identity-based policies must also allow the call.
    AllowForAccount,
    ExplicitDeny,
    ImplicitDeny,
}

/// How a statement's `Principal` names the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PrincipalMatch {
    No,
    /// Through the caller's account.
    Account,
    /// The caller's own ARN, or `*`.
    Caller,
}

/// A scalar or a list, as IAM accepts for most elements.
pub(crate) fn as_list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn action_matches(stmt: &Value) -> bool {
    let Some(actions) = stmt.get("Action") else {
        return false;
    };
    as_list(actions)
        .iter()
        .filter_map(|a| a.as_str())
        .any(|a| glob_match(&a.to_ascii_lowercase(), "sts:assumerole"))
}

fn principal_match(stmt: &Value, caller: &Caller) -> PrincipalMatch {
    let Some(p) = stmt.get("Principal") else {
        return PrincipalMatch::No;
    };
    if p.as_str() == Some("*") {
        return PrincipalMatch::Caller;
    }
    let Some(aws) = p.get("AWS") else {
        return PrincipalMatch::No;
    };
    let account = caller.account();
    let root = format!("arn:aws:iam::{account}:root");
    let mut best = PrincipalMatch::No;
    for a in as_list(aws).iter().filter_map(|a| a.as_str()) {
        if a == "*" || caller.arns.iter().any(|c| c == a) {
            return PrincipalMatch::Caller;
        }
        if a == account || a == root {
            best = PrincipalMatch::Account;
        }
    }
    best
}

/// Replaces `${aws:username}`-style policy variables from the context.
pub(crate) fn substitute(value: &str, caller: &Caller) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(j) => {
                let key = after[..j].to_ascii_lowercase();
                match key.as_str() {
                    "*" => out.push('*'),
                    "?" => out.push('?'),
                    "$" => out.push('$'),
                    _ => {
                        // An unresolvable variable makes the comparison fail.
                        out.push_str(caller.context.get(&key).map_or("\u{0}", |v| v));
                    }
                }
                rest = &after[j + 1..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// `*` and `?` wildcards, case-sensitive.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = s.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// The outcome of a statement's `Condition` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conditions {
    /// Every condition holds (or there are none).
    Hold,
    /// A condition with an operator this emulator knows does not hold.
    Fail,
    /// None fails, but one uses an operator (or a shape) this emulator does
    /// not know: the caller decides which way that falls.
    Unsupported,
}

/// One operator's comparison of a key's value; `None` for an operator this
/// emulator does not know.
fn compare(op: &str, actual: Option<&String>, wanted: &[String]) -> Option<bool> {
    Some(match op {
        "StringEquals" => actual.is_some_and(|a| wanted.iter().any(|w| w == a)),
        "StringEqualsIgnoreCase" => {
            actual.is_some_and(|a| wanted.iter().any(|w| w.eq_ignore_ascii_case(a)))
        }
        "StringLike" => actual.is_some_and(|a| wanted.iter().any(|w| glob_match(w, a))),
        "StringNotEquals" => actual.is_none_or(|a| wanted.iter().all(|w| w != a)),
        "StringNotLike" => actual.is_none_or(|a| wanted.iter().all(|w| !glob_match(w, a))),
        "Bool" => actual.is_some_and(|a| wanted.iter().any(|w| w.eq_ignore_ascii_case(a))),
        _ => return None,
    })
}

/// Evaluates `stmt`'s `Condition` block against the caller's context.
pub(crate) fn conditions(stmt: &Value, caller: &Caller) -> Conditions {
    let Some(cond) = stmt.get("Condition") else {
        return Conditions::Hold;
    };
    let Some(cond) = cond.as_object() else {
        return Conditions::Unsupported;
    };
    let mut unsupported = false;
    for (op, block) in cond {
        let Some(block) = block.as_object() else {
            unsupported = true;
            continue;
        };
        for (key, wanted) in block {
            let actual = caller.context.get(&key.to_ascii_lowercase());
            let wanted: Vec<String> = as_list(wanted)
                .iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(substitute(s, caller)),
                    Value::Bool(b) => Some(b.to_string()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect();
            match compare(op, actual, &wanted) {
                Some(true) => {}
                Some(false) => return Conditions::Fail,
                None => unsupported = true,
            }
        }
    }
    if unsupported {
        Conditions::Unsupported
    } else {
        Conditions::Hold
    }
}

/// Evaluates `policy` (a trust policy document) for `sts:AssumeRole` by `caller`.
pub fn evaluate(policy: &Value, caller: &Caller) -> Decision {
    let stmts = policy.get("Statement").map(as_list).unwrap_or_default();
    let mut allowed = PrincipalMatch::No;
    for stmt in stmts {
        if !action_matches(stmt) {
            continue;
        }
        let named = principal_match(stmt, caller);
        // Operators this emulator does not know never match (either effect).
        if named == PrincipalMatch::No || conditions(stmt, caller) != Conditions::Hold {
            continue;
        }
        match stmt.get("Effect").and_then(Value::as_str) {
            Some("Deny") => return Decision::ExplicitDeny,
            Some("Allow") if named == PrincipalMatch::Caller => allowed = PrincipalMatch::Caller,
            Some("Allow") if allowed == PrincipalMatch::No => allowed = PrincipalMatch::Account,
            _ => {}
        }
    }
    match allowed {
        PrincipalMatch::Caller => Decision::Allow,
        PrincipalMatch::Account => Decision::AllowForAccount,
        PrincipalMatch::No => Decision::ImplicitDeny,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alice(session: &str) -> Caller {
        let mut c = Caller {
            arns: vec!["arn:aws:iam::123456789012:user/alice".into()],
            ..Caller::default()
        };
        c.context.insert("aws:username".into(), "alice".into());
        c.context
            .insert("sts:rolesessionname".into(), session.into());
        c.context
            .insert("aws:principaltag/eks-access".into(), "admin".into());
        c
    }

    #[test]
    fn principal_forms() {
        for p in [
            json!({"AWS": "arn:aws:iam::123456789012:user/alice"}),
            json!({"AWS": ["arn:aws:iam::123456789012:user/x", "arn:aws:iam::123456789012:user/alice"]}),
            json!({"AWS": ["arn:aws:iam::123456789012:root", "arn:aws:iam::123456789012:user/alice"]}),
            json!({"AWS": "*"}),
            json!("*"),
        ] {
            let pol = json!({"Statement": [{"Effect": "Allow", "Principal": p, "Action": "sts:AssumeRole"}]});
            assert_eq!(evaluate(&pol, &alice("s")), Decision::Allow, "{pol}");
        }
        // Naming the account only delegates to it.
        for p in [
            json!({"AWS": "123456789012"}),
            json!({"AWS": "arn:aws:iam::123456789012:root"}),
            json!({"AWS": ["arn:aws:iam::123456789012:user/bob", "123456789012"]}),
        ] {
            let pol = json!({"Statement": [{"Effect": "Allow", "Principal": p, "Action": "sts:AssumeRole"}]});
            assert_eq!(
                evaluate(&pol, &alice("s")),
                Decision::AllowForAccount,
                "{pol}"
            );
        }
        // One statement naming the caller is enough, wherever it stands.
        let both = json!({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "123456789012"}, "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/alice"}, "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"AWS": "123456789012"}, "Action": "sts:AssumeRole"}]});
        assert_eq!(evaluate(&both, &alice("s")), Decision::Allow);
        let pol = json!({"Statement": {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/bob"}, "Action": "sts:AssumeRole"}});
        assert_eq!(evaluate(&pol, &alice("s")), Decision::ImplicitDeny);
        let pol = json!({"Statement": {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}});
        assert_eq!(evaluate(&pol, &alice("s")), Decision::ImplicitDeny);
    }

    #[test]
    fn conditions_and_variables() {
        let pol = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "123456789012"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:RoleSessionName": "${aws:username}",
                                           "aws:PrincipalTag/eks-access": "admin"}}}]});
        assert_eq!(evaluate(&pol, &alice("alice")), Decision::AllowForAccount);
        assert_eq!(evaluate(&pol, &alice("mallory")), Decision::ImplicitDeny);
        let like = json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": ["sts:*"],
            "Condition": {"StringLike": {"sts:RoleSessionName": "ali*"}}}]});
        assert_eq!(evaluate(&like, &alice("alice-1")), Decision::Allow);
        assert_eq!(evaluate(&like, &alice("bob")), Decision::ImplicitDeny);
        let mfa = json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole",
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}]});
        assert_eq!(evaluate(&mfa, &alice("a")), Decision::ImplicitDeny);
    }

    #[test]
    fn condition_outcomes() {
        let stmt = |c: serde_json::Value| json!({"Condition": c});
        let a = alice("alice");
        assert_eq!(conditions(&json!({}), &a), Conditions::Hold);
        let tag = json!({"StringEquals": {"aws:PrincipalTag/eks-access": "admin"}});
        assert_eq!(conditions(&stmt(tag), &a), Conditions::Hold);
        let unknown = json!({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}});
        assert_eq!(conditions(&stmt(unknown), &a), Conditions::Unsupported);
        // A known operator that fails decides, whatever else the block holds.
        let mixed = json!({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"},
                           "StringEquals": {"aws:username": "bob"}});
        assert_eq!(conditions(&stmt(mixed), &a), Conditions::Fail);
        assert_eq!(conditions(&stmt(json!("x")), &a), Conditions::Unsupported);
    }

    #[test]
    fn the_account_is_the_callers() {
        let member = Caller {
            arns: vec!["arn:aws:iam::111111111111:role/r".into()],
            ..Caller::default()
        };
        let naming = |p: &str| json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": p}, "Action": "sts:AssumeRole"}]});
        assert_eq!(
            evaluate(&naming("111111111111"), &member),
            Decision::AllowForAccount
        );
        assert_eq!(
            evaluate(&naming("arn:aws:iam::123456789012:root"), &member),
            Decision::ImplicitDeny
        );
        let org = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:role/r"},
            "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-sandbox0001"}}}]});
        let mut in_org = member.clone();
        in_org
            .context
            .insert("aws:principalorgid".into(), "o-sandbox0001".into());
        assert_eq!(evaluate(&org, &in_org), Decision::Allow);
        assert_eq!(evaluate(&org, &member), Decision::ImplicitDeny);
    }

    #[test]
    fn explicit_deny_wins() {
        let pol = json!({"Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"},
            {"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::123456789012:user/alice"}, "Action": "sts:AssumeRole"}]});
        assert_eq!(evaluate(&pol, &alice("a")), Decision::ExplicitDeny);
    }

    #[test]
    fn globbing() {
        assert!(glob_match("a*c", "abbbc"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "abbc"));
        assert!(glob_match("*", ""));
    }
}

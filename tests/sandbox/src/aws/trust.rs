//! Trust-policy evaluation for `sts:AssumeRole`: the subset of IAM's policy
//! language role trust policies use (principals, `StringEquals`,
//! `StringLike`, their negations and `Bool`, policy variables).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::state::ACCOUNT_ID;

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

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
}

fn as_list(v: &Value) -> Vec<&Value> {
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

fn principal_matches(stmt: &Value, caller: &Caller) -> bool {
    let Some(p) = stmt.get("Principal") else {
        return false;
    };
    if p.as_str() == Some("*") {
        return true;
    }
    let Some(aws) = p.get("AWS") else {
        return false;
    };
    as_list(aws).iter().filter_map(|a| a.as_str()).any(|a| {
        a == "*"
            || a == ACCOUNT_ID
            || a == format!("arn:aws:iam::{ACCOUNT_ID}:root")
            || caller.arns.iter().any(|c| c == a)
    })
}

/// Replaces `${aws:username}`-style policy variables from the context.
fn substitute(value: &str, caller: &Caller) -> String {
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

fn conditions_hold(stmt: &Value, caller: &Caller) -> bool {
    let Some(cond) = stmt.get("Condition").and_then(Value::as_object) else {
        return true;
    };
    cond.iter().all(|(op, block)| {
        let Some(block) = block.as_object() else {
            return false;
        };
        block.iter().all(|(key, wanted)| {
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
            match op.as_str() {
                "StringEquals" => actual.is_some_and(|a| wanted.iter().any(|w| w == a)),
                "StringEqualsIgnoreCase" => {
                    actual.is_some_and(|a| wanted.iter().any(|w| w.eq_ignore_ascii_case(a)))
                }
                "StringLike" => actual.is_some_and(|a| wanted.iter().any(|w| glob_match(w, a))),
                "StringNotEquals" => actual.is_none_or(|a| wanted.iter().all(|w| w != a)),
                "StringNotLike" => actual.is_none_or(|a| wanted.iter().all(|w| !glob_match(w, a))),
                "Bool" => actual.is_some_and(|a| wanted.iter().any(|w| w.eq_ignore_ascii_case(a))),
                // Operators this emulator does not know never match.
                _ => false,
            }
        })
    })
}

/// Evaluates `policy` (a trust policy document) for `sts:AssumeRole` by `caller`.
pub fn evaluate(policy: &Value, caller: &Caller) -> Decision {
    let stmts = policy.get("Statement").map(as_list).unwrap_or_default();
    let mut allowed = false;
    for stmt in stmts {
        if !action_matches(stmt) || !principal_matches(stmt, caller) {
            continue;
        }
        if !conditions_hold(stmt, caller) {
            continue;
        }
        match stmt.get("Effect").and_then(Value::as_str) {
            Some("Deny") => return Decision::ExplicitDeny,
            Some("Allow") => allowed = true,
            _ => {}
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
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
            json!({"AWS": "123456789012"}),
            json!({"AWS": "arn:aws:iam::123456789012:root"}),
            json!("*"),
        ] {
            let pol = json!({"Statement": [{"Effect": "Allow", "Principal": p, "Action": "sts:AssumeRole"}]});
            assert_eq!(evaluate(&pol, &alice("s")), Decision::Allow, "{pol}");
        }
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
        assert_eq!(evaluate(&pol, &alice("alice")), Decision::Allow);
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

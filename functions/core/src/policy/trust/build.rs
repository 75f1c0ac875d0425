//! Building the new trust policy: our statement (principals, session-name
//! condition) and the placeholder that keeps the document valid.

use super::*;

/// The session-name condition we add with `require_session_name`.
const SESSION_OPERATOR: &str = "StringEquals";
const SESSION_KEY: &str = "sts:RoleSessionName";
const SESSION_VALUE: &str = "${aws:username}";

/// A wildcard principal: `"Principal": "*"` or `"*"` under `Principal.AWS`.
pub(super) fn has_wildcard(stmt: &Value) -> bool {
    if stmt.get("Effect").and_then(Value::as_str) != Some("Allow") {
        return false;
    }
    match stmt.get("Principal") {
        Some(Value::String(s)) => s == "*",
        Some(_) => aws_principals(stmt).iter().any(|x| x == "*"),
        None => false,
    }
}

/// Whether a condition value is exactly our `${aws:username}` (string or one-item list).
fn is_session_value(v: &Value) -> bool {
    match v {
        Value::String(s) => s == SESSION_VALUE,
        Value::Array(a) => a.len() == 1 && a[0].as_str() == Some(SESSION_VALUE),
        _ => false,
    }
}

/// Adds or removes our session-name condition in `stmt`, leaving every other
/// operator and key as it was. With the option on, `sts:RoleSessionName` is ours
/// under every operator (another rule on it would contradict ours); with it off,
/// only our exact entry is removed.
fn set_session_condition(stmt: &mut Map<String, Value>, require: bool) {
    let mut cond = match stmt.get("Condition") {
        Some(Value::Object(c)) => c.clone(),
        // Not an object: not ours to repair; IAM would have refused it anyway.
        Some(_) => return,
        None => Map::new(),
    };
    let mut emptied = Vec::new();
    for (op, keys) in cond.iter_mut() {
        let Value::Object(keys) = keys else { continue };
        let ours: Vec<String> = keys
            .iter()
            .filter(|(k, v)| {
                k.eq_ignore_ascii_case(SESSION_KEY)
                    && (require || (op == SESSION_OPERATOR && is_session_value(v)))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in &ours {
            keys.shift_remove(k);
        }
        if !ours.is_empty() && keys.is_empty() {
            emptied.push(op.clone());
        }
    }
    if require {
        // A malformed (non-object) `StringEquals` is the administrator's: left alone.
        if let Value::Object(keys) = cond
            .entry(SESSION_OPERATOR)
            .or_insert_with(|| Value::Object(Map::new()))
        {
            keys.insert(SESSION_KEY.into(), Value::String(SESSION_VALUE.into()));
            emptied.retain(|op| op != SESSION_OPERATOR);
        }
    }
    for op in emptied {
        cond.shift_remove(&op);
    }
    if cond.is_empty() {
        stmt.shift_remove("Condition");
    } else {
        stmt.insert("Condition".into(), Value::Object(cond));
    }
}

/// Our statement for `principals`, built on `template` (the first managed Allow
/// statement) so that everything but `Effect`, `Principal.AWS` and the
/// session-name condition stays as the administrator wrote it. `None` when nothing
/// would be left to trust (no users and no other principal).
fn our_statement(
    template: Option<&Map<String, Value>>,
    principals: &BTreeSet<String>,
    opts: &TrustOptions,
) -> Option<Value> {
    let mut m = match template {
        Some(t) => t.clone(),
        None => {
            let mut m = Map::new();
            m.insert("Sid".into(), Value::String(opts.sid.clone()));
            m.insert("Effect".into(), json!("Allow"));
            m.insert("Principal".into(), json!({}));
            m.insert("Action".into(), json!("sts:AssumeRole"));
            m
        }
    };
    m.insert("Effect".into(), json!("Allow"));
    // A string principal (only `"*"` is valid) is the wildcard: dropped.
    let mut principal = match m.get("Principal") {
        Some(Value::Object(p)) => p.clone(),
        _ => Map::new(),
    };
    if principals.is_empty() {
        principal.shift_remove("AWS");
    } else {
        let aws = if principals.len() == 1 {
            Value::String(principals.iter().next().cloned().unwrap_or_default())
        } else {
            Value::Array(principals.iter().cloned().map(Value::String).collect())
        };
        principal.insert("AWS".into(), aws);
    }
    if principal.is_empty() {
        return None;
    }
    m.insert("Principal".into(), Value::Object(principal));
    if !m.contains_key("Action") && !m.contains_key("NotAction") {
        m.insert("Action".into(), json!("sts:AssumeRole"));
    }
    set_session_condition(&mut m, opts.require_session_name);
    Some(Value::Object(m))
}

fn placeholder(sid: &str, partition: &str, account: &str) -> Value {
    json!({
        "Sid": sid,
        "Effect": "Deny",
        "Principal": {"AWS": format!("arn:{partition}:iam::{account}:root")},
        "Action": "sts:AssumeRole"
    })
}

/// First `(partition, account)` of any IAM/STS ARN in the document.
fn account_in(statements: &[Value]) -> Option<(String, String)> {
    let mut all = Vec::new();
    for s in statements {
        collect_strings(s, &mut all);
    }
    all.iter().find_map(|s| {
        let f: Vec<&str> = s.splitn(6, ':').collect();
        (f.len() == 6
            && f[0] == "arn"
            && (f[2] == "iam" || f[2] == "sts")
            && f[4].len() == 12
            && f[4].chars().all(|c| c.is_ascii_digit()))
        .then(|| (f[1].to_string(), f[4].to_string()))
    })
}

/// Builds the new document with `principals` as the managed set.
pub(super) fn build(
    p: &Parsed,
    principals: &BTreeSet<String>,
    opts: &TrustOptions,
) -> Result<String, TrustPolicyError> {
    let mut out: Vec<Value> = Vec::with_capacity(p.statements.len() + 1);
    // The first managed Allow statement carries the administrator's fields; a
    // managed Deny is our placeholder and is rebuilt.
    let template = p
        .statements
        .iter()
        .filter(|s| is_ours(s, &opts.sid))
        .find(|s| s.get("Effect").and_then(Value::as_str) == Some("Allow"))
        .and_then(Value::as_object);
    let mut placed = false;
    for s in &p.statements {
        if is_ours(s, &opts.sid) {
            if !placed && let Some(ours) = our_statement(template, principals, opts) {
                out.push(ours);
            }
            placed = true;
        } else {
            out.push(s.clone());
        }
    }
    if !placed && let Some(ours) = our_statement(template, principals, opts) {
        out.push(ours);
    }
    if out.is_empty() {
        let (part, acct) = account_in(&p.statements)
            .or_else(|| opts.account_fallback.clone())
            .ok_or(TrustPolicyError::NoAccount)?;
        out.push(placeholder(&opts.sid, &part, &acct));
    }
    let mut root = p.root.clone();
    let stmt = if p.was_single && out.len() == 1 {
        out.pop().unwrap_or(Value::Null)
    } else {
        Value::Array(out)
    };
    root.insert("Statement".into(), stmt);
    serde_json::to_string(&Value::Object(root))
        .map_err(|e| TrustPolicyError::InvalidJson(e.to_string()))
}

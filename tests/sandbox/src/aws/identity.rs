//! Identity-based policy evaluation for `sts:AssumeRole`: what the caller's
//! own policies (inline, attached managed, its groups'; for a role session,
//! the role's) and its permissions boundary say about assuming one role, and
//! how that combines with the trust policy's [`Decision`].
//!
//! IAM's rules for a caller in the role's own account (IAM User Guide,
//! "Policy evaluation logic", "How IAM roles differ from resource-based
//! policies"; STS API reference, `AssumeRole`):
//! * an explicit `Deny` of `sts:AssumeRole` on the role in any identity
//!   policy or in the boundary refuses, whatever the trust policy says;
//! * a trust statement naming the caller itself admits it on its own;
//! * a trust statement naming only the caller's account admits it when an
//!   identity policy also allows `sts:AssumeRole` on the role, and the
//!   permissions boundary (when there is one) allows it too.
//!
//! For a caller of another account than the role's ("Cross account resource
//! access in IAM"), the trust policy only lets the caller in: a statement
//! naming the caller or naming its account, and in both cases the caller's
//! identity-based policies must allow `sts:AssumeRole` on the role (and its
//! boundary too, when it has one).
//!
//! Simplification: a trust statement naming a role session's role ARN counts
//! as naming the caller, so the session's boundary only refuses it by an
//! explicit deny (IAM lets the boundary's implicit deny limit a grant to the
//! role ARN, and not one to the session ARN).
//!
//! The statement language read here: `Effect`; `Action` or `NotAction`
//! (string or list; `*` and `?` wildcards; case-insensitive); `Resource` or
//! `NotResource` (string or list; wildcards and policy variables;
//! case-sensitive); `Condition` through the trust evaluator's operators
//! ([`trust::conditions`]). A condition this emulator cannot evaluate fails
//! closed both ways: an `Allow` statement with one does not apply, a `Deny`
//! statement with one does. A statement without an action or a resource
//! element never applies.

use serde_json::Value;

use super::trust::{self, Caller, Conditions, Decision, as_list, glob_match, substitute};

/// The action this module evaluates.
pub const ASSUME_ROLE: &str = "sts:AssumeRole";

/// A caller's identity-based policy documents.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// Inline and attached managed policies of the principal (and, for a
    /// user, of each of its groups).
    pub policies: Vec<Value>,
    /// The permissions boundary's document, when one is set.
    pub boundary: Option<Value>,
}

/// What a set of policies says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
}

fn element_matches(stmt: &Value, key: &str, not_key: &str, m: impl Fn(&str) -> bool) -> bool {
    let any = |v: &Value| as_list(v).iter().filter_map(|x| x.as_str()).any(&m);
    match (stmt.get(key), stmt.get(not_key)) {
        (Some(v), _) => any(v),
        (None, Some(v)) => !any(v),
        (None, None) => false,
    }
}

/// Whether `stmt` applies to `action` on `resource` (conditions aside).
fn statement_matches(stmt: &Value, action: &str, resource: &str, caller: &Caller) -> bool {
    let action = action.to_ascii_lowercase();
    element_matches(stmt, "Action", "NotAction", |a| {
        glob_match(&a.to_ascii_lowercase(), &action)
    }) && element_matches(stmt, "Resource", "NotResource", |r| {
        glob_match(&substitute(r, caller), resource)
    })
}

/// Evaluates `policies` (identity-based policy documents) for `action` on
/// `resource` by `caller`: an applicable `Deny` anywhere wins, then any
/// applicable `Allow`.
pub fn evaluate(policies: &[Value], action: &str, resource: &str, caller: &Caller) -> Verdict {
    let mut allowed = false;
    for stmt in policies
        .iter()
        .flat_map(|p| p.get("Statement").map(as_list).unwrap_or_default())
    {
        if !statement_matches(stmt, action, resource, caller) {
            continue;
        }
        let cond = trust::conditions(stmt, caller);
        match stmt.get("Effect").and_then(Value::as_str) {
            // Fail closed: a condition we cannot evaluate keeps a Deny...
            Some("Deny") if cond != Conditions::Fail => return Verdict::ExplicitDeny,
            // ...and drops an Allow.
            Some("Allow") if cond == Conditions::Hold => allowed = true,
            _ => {}
        }
    }
    if allowed {
        Verdict::Allow
    } else {
        Verdict::ImplicitDeny
    }
}

/// Whether IAM lets `caller` assume `role_arn`, given the trust policy's
/// decision and the caller's identity policies; `cross_account` when the role
/// is in another account than the caller.
pub fn admits(
    trust: Decision,
    identity: &Identity,
    role_arn: &str,
    caller: &Caller,
    cross_account: bool,
) -> bool {
    let own = evaluate(&identity.policies, ASSUME_ROLE, role_arn, caller);
    let boundary = identity
        .boundary
        .as_ref()
        .map(|b| evaluate(std::slice::from_ref(b), ASSUME_ROLE, role_arn, caller));
    if own == Verdict::ExplicitDeny || boundary == Some(Verdict::ExplicitDeny) {
        return false;
    }
    let identity_allows = own == Verdict::Allow && boundary.is_none_or(|b| b == Verdict::Allow);
    match trust {
        Decision::Allow if cross_account => identity_allows,
        Decision::Allow => true,
        Decision::AllowForAccount => identity_allows,
        Decision::ExplicitDeny | Decision::ImplicitDeny => false,
    }
}

/// Whether `trust` alone settles the call: then no identity policy need be
/// read, because nothing in one could admit the caller.
pub fn trust_refuses(trust: Decision) -> bool {
    matches!(trust, Decision::ExplicitDeny | Decision::ImplicitDeny)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROLE: &str = "arn:aws:iam::123456789012:role/eks-admin";

    fn alice() -> Caller {
        let mut c = Caller {
            arns: vec!["arn:aws:iam::123456789012:user/alice".into()],
            ..Caller::default()
        };
        c.context.insert("aws:username".into(), "alice".into());
        c.context.insert("aws:principaltag/team".into(), "x".into());
        c
    }

    fn policy(stmt: Value) -> Value {
        json!({"Version": "2012-10-17", "Statement": stmt})
    }

    fn verdict(stmt: Value) -> Verdict {
        evaluate(&[policy(stmt)], ASSUME_ROLE, ROLE, &alice())
    }

    #[test]
    fn actions_match_case_insensitively_with_wildcards() {
        for a in [
            json!("sts:AssumeRole"),
            json!("STS:assumerole"),
            json!("sts:*"),
            json!("*"),
            json!("sts:Assume?ole"),
            json!(["iam:GetRole", "sts:Assume*"]),
        ] {
            let s = json!({"Effect": "Allow", "Action": a, "Resource": "*"});
            assert_eq!(verdict(s.clone()), Verdict::Allow, "{s}");
        }
        for a in [
            json!("sts:AssumeRoleWithSAML"),
            json!("iam:*"),
            json!([]),
            json!("sts:Get*"),
        ] {
            let s = json!({"Effect": "Allow", "Action": a, "Resource": "*"});
            assert_eq!(verdict(s.clone()), Verdict::ImplicitDeny, "{s}");
        }
    }

    #[test]
    fn not_action_and_not_resource_invert() {
        let s = json!({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"});
        assert_eq!(verdict(s), Verdict::Allow);
        let s = json!({"Effect": "Allow", "NotAction": ["sts:*"], "Resource": "*"});
        assert_eq!(verdict(s), Verdict::ImplicitDeny);
        let s = json!({"Effect": "Allow", "Action": "sts:AssumeRole",
            "NotResource": "arn:aws:iam::123456789012:role/other"});
        assert_eq!(verdict(s), Verdict::Allow);
        let s = json!({"Effect": "Deny", "Action": "sts:AssumeRole", "NotResource": ROLE});
        assert_eq!(verdict(s), Verdict::ImplicitDeny);
        let s = json!({"Effect": "Deny", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::*"});
        assert_eq!(verdict(s), Verdict::ExplicitDeny);
    }

    #[test]
    fn resources_match_case_sensitively_with_wildcards_and_variables() {
        for r in [
            json!("*"),
            json!(ROLE),
            json!("arn:aws:iam::*:role/eks-*"),
            json!(["arn:aws:iam::123456789012:role/x", ROLE]),
        ] {
            let s = json!({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": r});
            assert_eq!(verdict(s.clone()), Verdict::Allow, "{s}");
        }
        for r in [
            json!("arn:aws:iam::123456789012:role/EKS-ADMIN"),
            json!("arn:aws:iam::123456789012:role/other"),
            json!("arn:aws:iam::123456789012:role/eks-admin-2"),
            json!([]),
        ] {
            let s = json!({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": r});
            assert_eq!(verdict(s.clone()), Verdict::ImplicitDeny, "{s}");
        }
        let own = |name: &str| {
            json!({"Effect": "Allow", "Action": "sts:AssumeRole",
                "Resource": format!("arn:aws:iam::123456789012:role/{name}")})
        };
        let role_of = |user: &str| format!("arn:aws:iam::123456789012:role/{user}-admin");
        let p = [policy(own("${aws:username}-admin"))];
        assert_eq!(
            evaluate(&p, ASSUME_ROLE, &role_of("alice"), &alice()),
            Verdict::Allow
        );
        assert_eq!(
            evaluate(&p, ASSUME_ROLE, &role_of("bob"), &alice()),
            Verdict::ImplicitDeny
        );
        // A variable with no value matches nothing.
        let p = [policy(own("${aws:PrincipalTag/none}*"))];
        assert_eq!(
            evaluate(&p, ASSUME_ROLE, ROLE, &alice()),
            Verdict::ImplicitDeny
        );
    }

    #[test]
    fn statements_missing_an_element_never_apply() {
        assert_eq!(
            verdict(json!({"Effect": "Allow", "Action": "*"})),
            Verdict::ImplicitDeny
        );
        assert_eq!(
            verdict(json!({"Effect": "Deny", "Resource": "*"})),
            Verdict::ImplicitDeny
        );
        assert_eq!(
            verdict(json!({"Effect": "allow", "Action": "*", "Resource": "*"})),
            Verdict::ImplicitDeny
        );
    }

    #[test]
    fn deny_wins_across_documents() {
        let allow = policy(json!({"Effect": "Allow", "Action": "*", "Resource": "*"}));
        let deny =
            policy(json!([{"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": ROLE}]));
        assert_eq!(
            evaluate(&[allow.clone(), deny], ASSUME_ROLE, ROLE, &alice()),
            Verdict::ExplicitDeny
        );
        assert_eq!(
            evaluate(&[allow], ASSUME_ROLE, ROLE, &alice()),
            Verdict::Allow
        );
        assert_eq!(
            evaluate(&[], ASSUME_ROLE, ROLE, &alice()),
            Verdict::ImplicitDeny
        );
    }

    #[test]
    fn conditions_fail_closed_both_ways() {
        let tag = |t: &str| json!({"StringEquals": {"aws:PrincipalTag/team": t}});
        let date = json!({"DateLessThan": {"aws:CurrentTime": "2099-01-01T00:00:00Z"}});
        let stmt = |effect: &str, c: Value| json!({"Effect": effect, "Action": "sts:AssumeRole", "Resource": "*", "Condition": c});
        assert_eq!(verdict(stmt("Allow", tag("x"))), Verdict::Allow);
        assert_eq!(verdict(stmt("Allow", tag("y"))), Verdict::ImplicitDeny);
        assert_eq!(verdict(stmt("Deny", tag("x"))), Verdict::ExplicitDeny);
        assert_eq!(verdict(stmt("Deny", tag("y"))), Verdict::ImplicitDeny);
        // Unsupported operator: the Allow is ignored, the Deny applies.
        assert_eq!(verdict(stmt("Allow", date.clone())), Verdict::ImplicitDeny);
        assert_eq!(verdict(stmt("Deny", date)), Verdict::ExplicitDeny);
    }

    #[test]
    fn admission_combines_trust_identity_and_boundary() {
        let allow = policy(json!({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}));
        let other = policy(json!({"Effect": "Allow", "Action": "sts:AssumeRole",
            "Resource": "arn:aws:iam::123456789012:role/other"}));
        let deny = policy(json!({"Effect": "Deny", "Action": "sts:*", "Resource": ROLE}));
        let id = |policies: Vec<Value>, boundary: Option<Value>| Identity { policies, boundary };
        let a = alice();
        let ok = |t, i: &Identity| admits(t, i, ROLE, &a, false);

        // Naming the caller: enough alone, but an explicit deny still refuses.
        assert!(ok(Decision::Allow, &id(vec![], None)));
        assert!(!ok(
            Decision::Allow,
            &id(vec![allow.clone(), deny.clone()], None)
        ));
        assert!(!ok(Decision::Allow, &id(vec![], Some(deny.clone()))));
        // A boundary's implicit deny does not limit a grant naming the caller.
        assert!(ok(Decision::Allow, &id(vec![], Some(other.clone()))));

        // Naming the account: the identity policies must allow.
        assert!(!ok(Decision::AllowForAccount, &id(vec![], None)));
        assert!(!ok(
            Decision::AllowForAccount,
            &id(vec![other.clone()], None)
        ));
        assert!(ok(
            Decision::AllowForAccount,
            &id(vec![allow.clone()], None)
        ));
        assert!(!ok(
            Decision::AllowForAccount,
            &id(vec![allow.clone(), deny], None)
        ));
        // ...and the boundary, when there is one.
        assert!(ok(
            Decision::AllowForAccount,
            &id(vec![allow.clone()], Some(allow.clone()))
        ));
        assert!(!ok(
            Decision::AllowForAccount,
            &id(vec![allow.clone()], Some(other.clone()))
        ));

        // A refusing trust policy is never overturned.
        assert!(!ok(Decision::ImplicitDeny, &id(vec![allow.clone()], None)));
        assert!(!ok(Decision::ExplicitDeny, &id(vec![allow.clone()], None)));
        assert!(trust_refuses(Decision::ImplicitDeny));

        // Another account's role: the trust policy and the identity policies both.
        let cross = |t, i: &Identity| admits(t, i, ROLE, &a, true);
        assert!(!cross(Decision::Allow, &id(vec![], None)));
        assert!(!cross(Decision::Allow, &id(vec![other.clone()], None)));
        assert!(cross(Decision::Allow, &id(vec![allow.clone()], None)));
        assert!(cross(
            Decision::AllowForAccount,
            &id(vec![allow.clone()], None)
        ));
        assert!(!cross(Decision::ImplicitDeny, &id(vec![allow], None)));
        assert!(!trust_refuses(Decision::AllowForAccount));
    }
}

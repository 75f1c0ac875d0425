//! A trust-policy document and a change -> `edit_trust_policy`.
//!
//! Input: a document starting with `{`, `%` or whitespace is taken as is (the seeds:
//! real and hand-made policies), with the change and options picked from a hash of
//! the bytes; anything else is decoded with `arbitrary` into a structured policy
//! (statements with and without our Sid, principals from a pool, unique IDs, odd
//! shapes) and a change.
//!
//! Invariants when the edit succeeds, on the resulting document (the written one,
//! or the current one when nothing is written):
//! - it is valid JSON, a policy, and within the quota (`size_after` is its size);
//! - every statement without our Sid is unchanged and in the same order (compared
//!   as `serde_json::Value`), and every top-level key but `Statement` too;
//! - at most one statement has our Sid, and its principals are what the change asks;
//! - editing it again with the same change writes nothing.
#![no_main]

use std::collections::BTreeSet;

use arbitrary::{Arbitrary, Unstructured};
use eks_access_sync::model::arn::{UserArn, is_unique_id};
use eks_access_sync::policy::trust::{PrincipalChange, TrustOptions, TrustPolicyError, decode_policy_document, edit_trust_policy, managed_principals, policy_size_chars};
use eks_access_sync_fuzz::{USER_ARNS, user_arn, user_name};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

const SID: &str = "EksAccessSyncAdmins";

#[derive(Arbitrary, Debug)]
enum Leaf {
    Null,
    Bool(bool),
    Num(i32),
    Str(String),
    List(Vec<String>),
}

impl Leaf {
    fn value(&self) -> Value {
        match self {
            Leaf::Null => Value::Null,
            Leaf::Bool(b) => json!(b),
            Leaf::Num(n) => json!(n),
            Leaf::Str(s) => json!(s),
            Leaf::List(l) => json!(l),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Princ {
    Pool(u8),
    Upper(u8),
    UniqueId(u64),
    Root(bool),
    Raw(String),
}

impl Princ {
    fn value(&self) -> Value {
        match self {
            Princ::Pool(i) => json!(USER_ARNS[*i as usize % USER_ARNS.len()]),
            Princ::Upper(i) => json!(USER_ARNS[*i as usize % USER_ARNS.len()].to_ascii_uppercase()),
            Princ::UniqueId(n) => json!(format!("AIDA{n:016X}")),
            Princ::Root(cn) => json!(if *cn {
                "arn:aws-cn:iam::123456789012:root"
            } else {
                "arn:aws:iam::123456789012:root"
            }),
            Princ::Raw(s) => json!(s),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum PrincipalShape {
    Absent,
    AwsOne(Princ),
    AwsList(Vec<Princ>),
    Service(String),
    Star,
    Odd(Leaf),
}

#[derive(Arbitrary, Debug)]
enum SidShape {
    Absent,
    Ours,
    OursOtherCase,
    Other(String),
    NotAString(i32),
}

#[derive(Arbitrary, Debug)]
struct Stmt {
    sid: SidShape,
    effect: u8,
    principal: PrincipalShape,
    not_principal: bool,
    action: u8,
    condition: bool,
    extra: Vec<(String, Leaf)>,
}

impl Stmt {
    fn value(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.value());
        }
        match &self.sid {
            SidShape::Absent => {}
            SidShape::Ours => drop(m.insert("Sid".into(), json!(SID))),
            SidShape::OursOtherCase => drop(m.insert("Sid".into(), json!(SID.to_lowercase()))),
            SidShape::Other(s) => drop(m.insert("Sid".into(), json!(s))),
            SidShape::NotAString(n) => drop(m.insert("Sid".into(), json!(n))),
        }
        let effect = match self.effect % 4 {
            0 | 1 => json!("Allow"),
            2 => json!("Deny"),
            _ => json!("allow"),
        };
        m.insert("Effect".into(), effect);
        let key = if self.not_principal {
            "NotPrincipal"
        } else {
            "Principal"
        };
        match &self.principal {
            PrincipalShape::Absent => {}
            PrincipalShape::AwsOne(p) => drop(m.insert(key.into(), json!({"AWS": p.value()}))),
            PrincipalShape::AwsList(ps) => {
                let l: Vec<Value> = ps.iter().map(Princ::value).collect();
                m.insert(key.into(), json!({ "AWS": l }));
            }
            PrincipalShape::Service(s) => drop(m.insert(key.into(), json!({"Service": s}))),
            PrincipalShape::Star => drop(m.insert(key.into(), json!("*"))),
            PrincipalShape::Odd(l) => drop(m.insert(key.into(), l.value())),
        }
        let action = match self.action % 3 {
            0 => json!("sts:AssumeRole"),
            1 => json!(["sts:AssumeRole", "sts:TagSession"]),
            _ => json!("sts:AssumeRoleWithWebIdentity"),
        };
        m.insert("Action".into(), action);
        if self.condition {
            m.insert(
                "Condition".into(),
                json!({"StringEquals": {"sts:RoleSessionName": "${aws:username}"}}),
            );
        }
        Value::Object(m)
    }
}

#[derive(Arbitrary, Debug)]
struct Doc {
    version: bool,
    single: bool,
    statements: Vec<Stmt>,
    extra: Vec<(String, Leaf)>,
    url_encode: bool,
}

impl Doc {
    fn text(&self) -> String {
        let mut root = Map::new();
        if self.version {
            root.insert("Version".into(), json!("2012-10-17"));
        }
        for (k, v) in &self.extra {
            root.insert(k.clone(), v.value());
        }
        let stmts: Vec<Value> = self.statements.iter().map(Stmt::value).collect();
        let stmt = if self.single && stmts.len() == 1 {
            stmts.into_iter().next().unwrap_or(Value::Null)
        } else {
            Value::Array(stmts)
        };
        root.insert("Statement".into(), stmt);
        let s = Value::Object(root).to_string();
        if self.url_encode {
            s.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        } else {
            s
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Edit {
    change: u8,
    picks: Vec<u8>,
    require_session_name: bool,
    max_chars: u16,
    fallback: bool,
}

fn options(e: &Edit) -> TrustOptions {
    TrustOptions {
        sid: SID.into(),
        // Mostly the default quota; sometimes a small one to hit QuotaExceeded.
        max_chars: if e.max_chars % 4 == 0 {
            e.max_chars as usize
        } else {
            2048
        },
        require_session_name: e.require_session_name,
        account_fallback: e
            .fallback
            .then(|| ("aws".to_string(), "123456789012".to_string())),
    }
}

fn change(e: &Edit) -> PrincipalChange {
    let pick = |i: usize| e.picks.get(i).copied().unwrap_or(0) as usize;
    match e.change % 4 {
        0 => PrincipalChange::Set(e.picks.iter().map(|p| user_arn(*p as usize)).collect()),
        1 => PrincipalChange::Add(user_arn(pick(0))),
        2 => PrincipalChange::RemoveArn(user_arn(pick(0))),
        _ => PrincipalChange::RemoveName {
            account: user_arn(pick(0)).account().parse().expect("account"),
            name: user_name(pick(0)),
        },
    }
}

fn statements(doc: &Value) -> Vec<Value> {
    match doc.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(o @ Value::Object(_)) => vec![o.clone()],
        other => panic!("result has no Statement list: {other:?}"),
    }
}

fn is_ours(s: &Value) -> bool {
    s.get("Sid").and_then(Value::as_str) == Some(SID)
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fuzz_target!(|data: &[u8]| {
    let (doc, edit) = match data.first() {
        Some(b'{' | b'%' | b' ' | b'\n' | b'\t' | b'\r') => {
            let h = fnv(data).to_le_bytes();
            let edit = Edit {
                change: h[0],
                picks: vec![h[1], h[2], (h[3] % 2).wrapping_add(h[1])],
                require_session_name: h[4] & 1 == 1,
                max_chars: if h[5] < 16 { u16::from(h[6]) * 4 } else { 1 },
                fallback: h[7] & 1 == 1,
            };
            (String::from_utf8_lossy(data).into_owned(), edit)
        }
        _ => {
            let mut u = Unstructured::new(data.get(1..).unwrap_or_default());
            let (Ok(doc), Ok(edit)) = (Doc::arbitrary(&mut u), Edit::arbitrary(&mut u)) else {
                return;
            };
            (doc.text(), edit)
        }
    };
    check(&doc, &change(&edit), &options(&edit));
});

fn check(doc: &str, change: &PrincipalChange, opts: &TrustOptions) {
    let result = match edit_trust_policy(doc, change, opts) {
        Ok(r) => r,
        Err(TrustPolicyError::QuotaExceeded {
            size,
            max,
            users,
            users_that_fit,
        }) => {
            assert!(size > max, "QuotaExceeded at {size} <= {max}");
            assert!(users_that_fit <= users);
            return;
        }
        Err(_) => return,
    };
    let decoded = decode_policy_document(doc).unwrap_or_else(|e| panic!("decoded before: {e}"));
    let input: Value = serde_json::from_str(&decoded).unwrap_or_else(|e| panic!("input: {e}"));
    let out_text = result
        .after
        .clone()
        .unwrap_or_else(|| result.before.clone());
    let out: Value = serde_json::from_str(&out_text)
        .unwrap_or_else(|e| panic!("edited document is not JSON ({e}): {out_text}"));
    if result.after.is_some() {
        assert!(
            policy_size_chars(&out_text) <= opts.max_chars,
            "written document over the quota"
        );
    }
    assert_eq!(result.size_after, policy_size_chars(&out_text));

    // Foreign statements and other top-level keys are unchanged.
    let foreign =
        |v: &Value| -> Vec<Value> { statements(v).into_iter().filter(|s| !is_ours(s)).collect() };
    assert_eq!(
        foreign(&input),
        foreign(&out),
        "a statement we do not own changed"
    );
    let others = |v: &Value| -> Vec<(String, Value)> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| k.as_str() != "Statement")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(others(&input), others(&out), "a top-level key changed");

    // Our statement: at most one, with what the change asks for.
    let ours: Vec<Value> = statements(&out).into_iter().filter(is_ours).collect();
    assert!(
        ours.len() <= 1,
        "several statements with our Sid: {out_text}"
    );
    {
        let managed = managed_principals(&out_text, SID).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            managed.iter().all(|p| !is_unique_id(p)),
            "dangling id kept in our statement"
        );
        let has = |a: &UserArn| managed.iter().any(|m| m.eq_ignore_ascii_case(a.as_str()));
        match change {
            PrincipalChange::Set(s) => {
                let want: BTreeSet<String> = s.iter().map(ToString::to_string).collect();
                assert_eq!(managed, want, "Set not applied");
            }
            PrincipalChange::Add(a) => assert!(has(a), "Add not applied"),
            PrincipalChange::RemoveArn(a) => assert!(!has(a), "RemoveArn not applied"),
            PrincipalChange::RemoveName { account, name } => assert!(
                !managed.iter().any(|m| m
                    .parse::<UserArn>()
                    .is_ok_and(|u| u.is_user_of(account, name))),
                "RemoveName not applied"
            ),
        }
    }

    // A second edit with the same change is a no-op.
    match edit_trust_policy(&out_text, change, opts) {
        Ok(again) => assert_eq!(
            again.after, None,
            "second edit not a no-op:\n first: {out_text}\nsecond: {:?}",
            again.after
        ),
        Err(e) => panic!("second edit failed: {e}\n on: {out_text}"),
    }
}

//! The identifier and token parsers.
//!
//! Input: one byte choosing the parser, then the text (UTF-8, lossy).
//! - `UserArn`/`RoleArn`: accepted ARNs print as given, their parts rebuild
//!   them, the name parses as a name, `without_path` is idempotent and equal
//!   ignoring path and case;
//! - `UserName`/`RoleName`/`ClusterName`: accepted names print as given and
//!   round-trip through JSON;
//! - `cluster_name_from_arn`: a found name is the end of an `eks` `cluster/` ARN;
//! - `decode_policy_document`: a result is a JSON-object-looking text, and JSON
//!   input passes through unchanged;
//! - the sandbox's `canonicalize` is idempotent and `parse_amz_date` never panics;
//! - the sandbox's `verify_token` (aws-iam-authenticator's checks) never accepts
//!   an arbitrary token;
//! - a token built by the core's `eks_token` from fuzzed credentials, region,
//!   cluster and time is accepted by the sandbox for that cluster, with the
//!   right identity, and refused for another cluster and after 15 minutes.
#![no_main]

use std::time::{Duration, SystemTime};

use arbitrary::{Arbitrary, Unstructured};
use aws_credential_types::Credentials;
use eks_access_sync::model::arn::{ClusterName, RoleArn, RoleName, UserArn, UserName};
use eks_access_sync::policy::event::cluster_name_from_arn;
use eks_access_sync::adapters::kube::token::eks_token;
use eks_access_sync::policy::trust::decode_policy_document;
use eks_sandbox::kube::auth::{canonicalize, verify_token};
use eks_sandbox::sigv4::parse_amz_date;
use eks_sandbox::state::{Credential, Principal, SharedState};
use libfuzzer_sys::fuzz_target;

const USER: &str = "arn:aws:iam::123456789012:user/dave";
const STS_HOSTS: [&str; 2] = ["sts.us-east-1.amazonaws.com", "127.0.0.1:4566"];
const REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1"];
/// 2026-01-01T00:00:00Z.
const EPOCH: u64 = 1_767_225_600;

fn state(akid: &str, secret: &str, session: Option<String>) -> SharedState {
    let mut st = SharedState::default();
    st.credentials.insert(
        akid.to_string(),
        Credential {
            access_key_id: akid.to_string(),
            secret_access_key: secret.to_string(),
            session_token: session,
            expires_at: None,
            principal: Principal::User {
                arn: USER.into(),
                user_id: "AIDAXQJ2KXNMDAVE7EXMP".into(),
            },
        },
    );
    st
}

fn check_user_arn(s: &str) {
    let Ok(a) = s.parse::<UserArn>() else { return };
    assert_eq!(a.as_str(), s);
    let rebuilt = format!(
        "arn:{}:iam::{}:user{}{}",
        a.partition(),
        a.account(),
        a.path(),
        a.name()
    );
    assert_eq!(rebuilt, s, "parts do not rebuild the ARN");
    assert!(a.name().as_str().parse::<UserName>().is_ok());
    assert!(a.path().starts_with('/') && a.path().ends_with('/'));
    let json = serde_json::to_string(&a).unwrap_or_default();
    assert_eq!(serde_json::from_str::<UserArn>(&json).ok(), Some(a));
}

fn check_role_arn(s: &str) {
    let Ok(a) = s.parse::<RoleArn>() else { return };
    assert_eq!(a.as_str(), s);
    let name: RoleName = a.name().as_str().parse().unwrap_or_else(|e| panic!("{e}"));
    let rebuilt = RoleArn::from_parts(a.partition(), a.account(), a.path(), &name)
        .unwrap_or_else(|e| panic!("from_parts refused the parts of {s}: {e}"));
    assert_eq!(rebuilt, a);
    let np = a.without_path();
    assert_eq!(np.path(), "/");
    assert_eq!(np.without_path(), np);
    assert!(a.eq_ignoring_path_and_case(&np) && np.eq_ignoring_path_and_case(&a));
    assert_eq!(np.as_str().parse::<RoleArn>().ok(), Some(np.clone()));
}

fn check_names(s: &str) {
    if let Ok(n) = s.parse::<UserName>() {
        assert_eq!(n.as_str(), s);
        assert!(
            s.parse::<RoleName>().is_ok(),
            "user and role names follow one rule"
        );
        let json = serde_json::to_string(&n).unwrap_or_default();
        assert_eq!(serde_json::from_str::<UserName>(&json).ok(), Some(n));
    }
    if let Ok(c) = s.parse::<ClusterName>() {
        assert_eq!(c.as_str(), s);
        let json = serde_json::to_string(&c).unwrap_or_default();
        assert_eq!(serde_json::from_str::<ClusterName>(&json).ok(), Some(c));
    }
    if let Some(c) = cluster_name_from_arn(s) {
        assert!(s.starts_with("arn:") && s.split(':').nth(2) == Some("eks"));
        assert!(
            s.ends_with(&format!(":cluster/{c}")),
            "{c} is not the end of {s}"
        );
    }
}

fn check_policy_document(s: &str) {
    if let Ok(d) = decode_policy_document(s) {
        assert!(d.trim_start().starts_with('{'));
        if s.trim_start().starts_with('{') {
            assert_eq!(d, s);
        }
    }
}

fn check_sandbox_parsers(s: &str) {
    let c = canonicalize(s);
    assert_eq!(canonicalize(&c), c, "canonicalize is not idempotent on {s}");
    let _ = parse_amz_date(s);
}

fn check_raw_token(s: &str) {
    let st = state("AKIDEXAMPLE", "secret", None);
    let hosts: Vec<String> = STS_HOSTS.iter().map(|h| h.to_string()).collect();
    let now = EPOCH as i64;
    assert!(
        verify_token(&st, "prod", &hosts, s, now).is_err(),
        "an arbitrary token was accepted: {s}"
    );
}

/// A valid cluster name made of the characters of `s` that may appear in one.
fn valid_cluster(s: &str) -> String {
    let mut c: String = s
        .chars()
        .filter(|ch| ch.is_ascii_alphanumeric() || *ch == '-' || *ch == '_')
        .take(99)
        .collect();
    if !c.starts_with(|ch: char| ch.is_ascii_alphanumeric()) {
        c.insert(0, 'c');
    }
    c
}

#[derive(Arbitrary, Debug)]
struct TokenCase {
    akid: u64,
    secret: String,
    session: Option<String>,
    region: u8,
    cluster: String,
    other_cluster: String,
    secs: u32,
    local_endpoint: bool,
}

fn check_token_round_trip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(t) = TokenCase::arbitrary(&mut u) else {
        return;
    };
    let Ok(cluster) = valid_cluster(&t.cluster).parse::<ClusterName>() else {
        panic!("valid_cluster made an invalid name from {:?}", t.cluster)
    };
    let akid = format!("AKIA{:016X}", t.akid);
    // Session tokens are printable ASCII (base64 from STS); empty means none.
    let session = t
        .session
        .as_deref()
        .map(|s| {
            s.chars()
                .filter(|c| c.is_ascii_graphic())
                .collect::<String>()
        })
        .filter(|s| !s.is_empty());
    let creds = Credentials::new(&akid, &t.secret, session.clone(), None, "fuzz");
    let region = REGIONS[usize::from(t.region) % REGIONS.len()];
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH + u64::from(t.secs));
    let endpoint = t.local_endpoint.then_some("http://127.0.0.1:4566");
    let hosts: Vec<String> = match endpoint {
        Some(_) => vec!["127.0.0.1:4566".into()],
        None => vec![
            format!("sts.{region}.amazonaws.com"),
            format!("sts.{region}.amazonaws.com.cn"),
        ],
    };
    let token = match eks_token(&creds, region, cluster.as_str(), endpoint, now) {
        Ok(t) => t,
        Err(e) => panic!("eks_token refused valid inputs: {e}"),
    };
    let st = state(&akid, &t.secret, session);
    let secs = (EPOCH + u64::from(t.secs)) as i64;
    match verify_token(&st, cluster.as_str(), &hosts, token.expose(), secs) {
        Ok(id) => {
            assert_eq!(id.access_key_id, akid);
            assert_eq!(id.arn, USER);
        }
        Err(e) => panic!("the sandbox refused a token built by eks_token: {e}\n{t:?}"),
    }
    let other = valid_cluster(&t.other_cluster);
    if other != cluster.as_str() {
        assert!(
            verify_token(&st, &other, &hosts, token.expose(), secs).is_err(),
            "a token for {cluster} was accepted for {other}"
        );
    }
    assert!(
        verify_token(
            &st,
            cluster.as_str(),
            &hosts,
            token.expose(),
            secs + 15 * 60 + 1
        )
        .is_err(),
        "an expired token was accepted"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 8 == 7 {
        check_token_round_trip(rest);
        return;
    }
    let s = String::from_utf8_lossy(rest);
    match mode % 8 {
        0 => check_user_arn(&s),
        1 => check_role_arn(&s),
        2 => check_names(&s),
        3 => check_policy_document(&s),
        4 => check_sandbox_parsers(&s),
        5 => check_raw_token(&s),
        _ => {
            check_user_arn(&s);
            check_role_arn(&s);
            check_names(&s);
            check_policy_document(&s);
            check_sandbox_parsers(&s);
        }
    }
});

//! Shared pieces of the fuzz targets: the configuration they run with and small
//! pools of realistic identifiers the fuzzer picks from (so that edits hit the
//! entries a seed contains instead of random ARNs that match nothing).

use eks_access_sync::model::arn::{RoleArn, UserArn, UserName};
use eks_access_sync::model::config::Config;

/// The configuration of the sample events and fixtures (default tag `eks-access=admin`).
pub fn config() -> Config {
    match Config::from_lookup(|k| match k {
        "ADMIN_ROLE_NAME" => Some("EksAdmin".into()),
        "AWS_REGION" => Some("us-east-1".into()),
        _ => None,
    }) {
        Ok(c) => c,
        Err(e) => panic!("the fuzz configuration is invalid: {e}"),
    }
}

/// User ARNs found in the seeds (paths, case variants, another partition).
pub const USER_ARNS: [&str; 8] = [
    "arn:aws:iam::123456789012:user/dave",
    "arn:aws:iam::123456789012:user/alice",
    "arn:aws:iam::123456789012:user/eng/ops/erin",
    "arn:aws:iam::123456789012:user/Dave",
    "arn:aws:iam::210987654321:user/bob",
    "arn:aws-cn:iam::123456789012:user/carol",
    "arn:aws:iam::123456789012:user/a/b/dave",
    "arn:aws:iam::123456789012:user/x.y+z=w,v@u-t_s",
];

/// Admin role ARNs (with and without a path, another case).
pub const ROLE_ARNS: [&str; 4] = [
    "arn:aws:iam::123456789012:role/EksAdmin",
    "arn:aws:iam::123456789012:role/teams/eks/EksAdmin",
    "arn:aws:iam::123456789012:role/eksadmin",
    "arn:aws:iam::123456789012:role/NodeInstanceRole",
];

/// `USER_ARNS[i % len]`, parsed.
pub fn user_arn(i: usize) -> UserArn {
    parse_or_panic(USER_ARNS[i % USER_ARNS.len()])
}

/// The user name of `USER_ARNS[i % len]`.
pub fn user_name(i: usize) -> UserName {
    user_arn(i).name()
}

/// `ROLE_ARNS[i % len]`, parsed.
pub fn role_arn(i: usize) -> RoleArn {
    parse_or_panic(ROLE_ARNS[i % ROLE_ARNS.len()])
}

fn parse_or_panic<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Display,
{
    match s.parse() {
        Ok(v) => v,
        Err(e) => panic!("pool entry {s} does not parse: {e}"),
    }
}

/// Splits `data` on NUL into at most `n` UTF-8 (lossy) parts.
pub fn nul_fields(data: &[u8], n: usize) -> Vec<String> {
    data.splitn(n, |b| *b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect()
}

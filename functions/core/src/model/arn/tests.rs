//! Unit tests of `arn`.

use super::*;

#[test]
fn user_arn_parts() {
    let cases = [
        ("arn:aws:iam::123456789012:user/dave", "aws", "/", "dave"),
        (
            "arn:aws-cn:iam::123456789012:user/eng/ops/erin.x@y",
            "aws-cn",
            "/eng/ops/",
            "erin.x@y",
        ),
    ];
    for (s, part, path, name) in cases {
        let a: UserArn = s.parse().unwrap();
        assert_eq!(a.partition(), part);
        assert_eq!(a.account(), "123456789012");
        assert_eq!(a.path(), path);
        assert_eq!(a.name().as_str(), name);
        assert_eq!(a.to_string(), s);
    }
}

#[test]
fn invalid_arns_rejected() {
    for s in [
        "",
        "dave",
        "arn:aws:iam::123456789012:role/dave",
        "arn:aws:iam::12345678901:user/dave",
        "arn:aws:iam:us-east-1:123456789012:user/dave",
        "arn:aws:sts::123456789012:user/dave",
        "arn:aws:iam::123456789012:user/",
        "arn:aws:iam::123456789012:user/a//b",
        "arn:aws:iam::123456789012:user/da ve",
        "AIDAXQJ2KXNMDAVE7EXMP",
    ] {
        assert!(s.parse::<UserArn>().is_err(), "{s} accepted");
    }
}

#[test]
fn role_arn_path_handling() {
    let a: RoleArn = "arn:aws:iam::123456789012:role/teams/eks/EksAdmin"
        .parse()
        .unwrap();
    assert_eq!(a.path(), "/teams/eks/");
    assert_eq!(a.name().as_str(), "EksAdmin");
    assert_eq!(
        a.without_path().as_str(),
        "arn:aws:iam::123456789012:role/EksAdmin"
    );
    let b: RoleArn = "arn:aws:iam::123456789012:role/eksadmin".parse().unwrap();
    assert!(a.eq_ignoring_path_and_case(&b));
    let c: RoleArn = "arn:aws:iam::123456789012:role/other".parse().unwrap();
    assert!(!a.eq_ignoring_path_and_case(&c));
    let name: RoleName = "EksAdmin".parse().unwrap();
    let d = RoleArn::from_parts("aws", "123456789012", "/teams/eks/", &name).unwrap();
    assert_eq!(d, a);
    let e = RoleArn::from_parts("aws", "123456789012", "", &name).unwrap();
    assert_eq!(e.as_str(), "arn:aws:iam::123456789012:role/EksAdmin");
}

#[test]
fn unique_ids() {
    assert!(is_unique_id("AIDAXQJ2KXNMDAVE7EXMP"));
    assert!(is_unique_id("AROAXQJ2KXNMP4EXAMPLE"));
    assert!(!is_unique_id("AIDA123"));
    assert!(!is_unique_id(
        "arn:aws:iam::123456789012:user/AIDAXQJ2KXNMDAVE7"
    ));
    assert!(!is_unique_id("aidaxqj2kxnmdave7exmp"));
    assert!(!is_unique_id("BIDAXQJ2KXNMDAVE7EXMP"));
}

#[test]
fn names() {
    assert!("ok_name+=,.@-1".parse::<UserName>().is_ok());
    assert!("".parse::<UserName>().is_err());
    assert!("a".repeat(65).parse::<RoleName>().is_err());
    assert!("prod-2".parse::<ClusterName>().is_ok());
    assert!("-prod".parse::<ClusterName>().is_err());
    assert!("prod.2".parse::<ClusterName>().is_err());
}

#[test]
fn serde_as_string() {
    let a: UserArn = serde_json::from_str("\"arn:aws:iam::123456789012:user/dave\"").unwrap();
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        "\"arn:aws:iam::123456789012:user/dave\""
    );
    assert!(serde_json::from_str::<UserArn>("\"nope\"").is_err());
}

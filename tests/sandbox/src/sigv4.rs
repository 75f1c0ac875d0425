//! AWS Signature Version 4 verification (the server side of SigV4).
//!
//! Written over `sha2` + `hmac` on purpose: production code signs with the
//! `aws-sigv4` crate, so a bug shared by signer and verifier cannot hide.
//!
//! Canonicalisation follows the SigV4 spec for non-S3 services: every path
//! segment is URI-encoded again (as the client encoded it), query parameters
//! are sorted by encoded key then value, header names are lower-cased and
//! values trimmed with inner runs of spaces collapsed.

use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};
use time::PrimitiveDateTime;
use time::macros::format_description;

type HmacSha256 = Hmac<Sha256>;

/// The only algorithm SigV4 knows.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Payload marker for presigned URLs.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// How far a header-signed request's date may be from `now`, in seconds.
pub const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;

/// Characters SigV4 leaves unencoded: `A-Z a-z 0-9 - _ . ~`.
const SIGV4_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
    #[error("the security token included in the request is invalid: unknown access key {0}")]
    UnknownAccessKey(String),
    #[error("signed header {0} is not present in the request")]
    MissingSignedHeader(String),
    #[error("credential scope date {scope} does not match request date {date}")]
    ScopeDateMismatch { scope: String, date: String },
    #[error("request date {0} is too far from the server's time")]
    ClockSkew(String),
    #[error("the request signature we calculated does not match the signature you provided")]
    SignatureMismatch,
}

/// What a verified presigned URL carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedInfo {
    pub access_key_id: String,
    /// `X-Amz-Date` as sent, `YYYYMMDDTHHMMSSZ`.
    pub amz_date: String,
    /// `X-Amz-Date` as Unix seconds.
    pub timestamp: i64,
    pub region: String,
    pub service: String,
    /// Lower-case signed header names, in the order signed.
    pub signed_headers: Vec<String>,
    /// `X-Amz-Expires`, seconds.
    pub expires_secs: i64,
    /// `X-Amz-Security-Token` when present.
    pub security_token: Option<String>,
}

/// What a verified `Authorization` header carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderSigInfo {
    pub access_key_id: String,
    pub amz_date: String,
    pub timestamp: i64,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    /// `x-amz-security-token` header when present.
    pub security_token: Option<String>,
}

/// Parses `YYYYMMDDTHHMMSSZ` to Unix seconds.
pub fn parse_amz_date(s: &str) -> Result<i64, SigV4Error> {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(s, fmt)
        .map(|t| t.assume_utc().unix_timestamp())
        .map_err(|_| SigV4Error::Malformed("X-Amz-Date"))
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn encode(s: &str) -> String {
    utf8_percent_encode(s, SIGV4_ENCODE).to_string()
}

/// Canonical URI for non-S3 services: each segment (as the client sent it,
/// i.e. already encoded once) encoded again.
fn canonical_uri(raw_path: &str) -> String {
    if raw_path.is_empty() {
        return "/".to_string();
    }
    raw_path
        .split('/')
        .map(encode)
        .collect::<Vec<_>>()
        .join("/")
}

/// Decodes the raw query into (key, value) pairs, percent-decoding only.
fn raw_query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode_str(k).decode_utf8_lossy().into_owned(),
                percent_decode_str(v).decode_utf8_lossy().into_owned(),
            )
        })
        .collect()
}

fn canonical_query(pairs: &[(String, String)], skip: Option<&str>) -> String {
    let mut enc: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| Some(k.as_str()) != skip)
        .map(|(k, v)| (encode(k), encode(v)))
        .collect();
    enc.sort();
    enc.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn trim_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct Scope {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
}

fn parse_credential(cred: &str) -> Result<Scope, SigV4Error> {
    let parts: Vec<&str> = cred.split('/').collect();
    match parts.as_slice() {
        [akid, date, region, service, "aws4_request"]
            if !akid.is_empty() && date.len() == 8 && !region.is_empty() =>
        {
            Ok(Scope {
                access_key_id: (*akid).to_string(),
                date: (*date).to_string(),
                region: (*region).to_string(),
                service: (*service).to_string(),
            })
        }
        _ => Err(SigV4Error::Malformed("Credential")),
    }
}

fn string_to_sign(amz_date: &str, scope: &Scope, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{}/{}/{}/aws4_request\n{}",
        scope.date,
        scope.region,
        scope.service,
        sha256_hex(canonical_request.as_bytes())
    )
}

fn host_of(url: &url::Url) -> Result<String, SigV4Error> {
    let host = url.host_str().ok_or(SigV4Error::Missing("host"))?;
    Ok(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    })
}

/// Verifies a presigned URL (as used for EKS tokens and S3-style GETs).
///
/// `extra_signed_headers` supplies the values of signed headers other than
/// `host` (for EKS tokens: `("x-k8s-aws-id", cluster_name)`). `now` is Unix
/// seconds; a URL dated more than [`MAX_CLOCK_SKEW_SECS`] in the future is
/// refused. Expiry is *not* decided here: the caller compares
/// [`PresignedInfo::timestamp`] and `expires_secs` with its own policy
/// (EKS accepts tokens for 15 minutes after `X-Amz-Date`).
pub fn verify_presigned(
    url: &url::Url,
    extra_signed_headers: &[(&str, &str)],
    secret: &str,
    now: i64,
) -> Result<PresignedInfo, SigV4Error> {
    let pairs = raw_query_pairs(url.query().unwrap_or(""));
    let get = |name: &'static str| -> Result<String, SigV4Error> {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or(SigV4Error::Missing(name))
    };
    let algorithm = get("X-Amz-Algorithm")?;
    if algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm(algorithm));
    }
    let scope = parse_credential(&get("X-Amz-Credential")?)?;
    let amz_date = get("X-Amz-Date")?;
    let timestamp = parse_amz_date(&amz_date)?;
    if !amz_date.starts_with(&scope.date) {
        return Err(SigV4Error::ScopeDateMismatch {
            scope: scope.date,
            date: amz_date,
        });
    }
    let expires_secs: i64 = get("X-Amz-Expires")?
        .parse()
        .map_err(|_| SigV4Error::Malformed("X-Amz-Expires"))?;
    let signed_headers_raw = get("X-Amz-SignedHeaders")?;
    let signature = get("X-Amz-Signature")?;
    let security_token = get("X-Amz-Security-Token").ok();
    if timestamp - now > MAX_CLOCK_SKEW_SECS {
        return Err(SigV4Error::ClockSkew(amz_date));
    }
    let signed_headers: Vec<String> = signed_headers_raw.split(';').map(str::to_string).collect();
    let host = host_of(url)?;
    let mut canonical_headers = String::new();
    for name in &signed_headers {
        let value = if name == "host" {
            host.clone()
        } else {
            extra_signed_headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| trim_value(v))
                .ok_or_else(|| SigV4Error::MissingSignedHeader(name.clone()))?
        };
        canonical_headers.push_str(&format!("{name}:{value}\n"));
    }
    let query = canonical_query(&pairs, Some("X-Amz-Signature"));
    let uri = canonical_uri(url.path());
    let key = signing_key(secret, &scope.date, &scope.region, &scope.service);
    let empty_hash = sha256_hex(b"");
    let ok = [empty_hash.as_str(), UNSIGNED_PAYLOAD]
        .iter()
        .any(|payload| {
            let creq = format!(
                "GET\n{uri}\n{query}\n{canonical_headers}\n{signed_headers_raw}\n{payload}"
            );
            let sts = string_to_sign(&amz_date, &scope, &creq);
            let expected = hex::encode(hmac(&key, sts.as_bytes()));
            constant_time_eq(expected.as_bytes(), signature.as_bytes())
        });
    if !ok {
        return Err(SigV4Error::SignatureMismatch);
    }
    Ok(PresignedInfo {
        access_key_id: scope.access_key_id,
        amz_date,
        timestamp,
        region: scope.region,
        service: scope.service,
        signed_headers,
        expires_secs,
        security_token,
    })
}

/// Verifies a request signed with an `Authorization: AWS4-HMAC-SHA256 ...`
/// header. `path_and_query` is the request target as received. The date
/// (`x-amz-date`) must be within [`MAX_CLOCK_SKEW_SECS`] of `now`.
pub fn verify_authorization_header(
    method: &str,
    path_and_query: &str,
    headers: &http::HeaderMap,
    body: &[u8],
    secret_lookup: impl Fn(&str) -> Option<String>,
    now: i64,
) -> Result<HeaderSigInfo, SigV4Error> {
    let auth = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(SigV4Error::Missing("Authorization"))?
        .to_str()
        .map_err(|_| SigV4Error::Malformed("Authorization"))?;
    let (algorithm, rest) = auth
        .trim()
        .split_once(' ')
        .ok_or(SigV4Error::Malformed("Authorization"))?;
    if algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm(algorithm.to_string()));
    }
    let mut credential = None;
    let mut signed_headers_raw = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed_headers_raw = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let scope = parse_credential(credential.ok_or(SigV4Error::Missing("Credential"))?)?;
    let signed_headers_raw = signed_headers_raw.ok_or(SigV4Error::Missing("SignedHeaders"))?;
    let signature = signature.ok_or(SigV4Error::Missing("Signature"))?;
    let header_str = |name: &str| -> Option<String> {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(trim_value)
            .collect();
        if values.is_empty() {
            None
        } else {
            Some(values.join(","))
        }
    };
    let amz_date = header_str("x-amz-date").ok_or(SigV4Error::Missing("X-Amz-Date"))?;
    let timestamp = parse_amz_date(&amz_date)?;
    if !amz_date.starts_with(&scope.date) {
        return Err(SigV4Error::ScopeDateMismatch {
            scope: scope.date,
            date: amz_date,
        });
    }
    if (timestamp - now).abs() > MAX_CLOCK_SKEW_SECS {
        return Err(SigV4Error::ClockSkew(amz_date));
    }
    let secret = secret_lookup(&scope.access_key_id)
        .ok_or_else(|| SigV4Error::UnknownAccessKey(scope.access_key_id.clone()))?;
    let signed_headers: Vec<String> = signed_headers_raw.split(';').map(str::to_string).collect();
    let mut canonical_headers = String::new();
    for name in &signed_headers {
        let value =
            header_str(name).ok_or_else(|| SigV4Error::MissingSignedHeader(name.clone()))?;
        canonical_headers.push_str(&format!("{name}:{value}\n"));
    }
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let pairs = raw_query_pairs(query);
    let payload = header_str("x-amz-content-sha256").unwrap_or_else(|| sha256_hex(body));
    let creq = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{signed_headers_raw}\n{payload}",
        canonical_uri(path),
        canonical_query(&pairs, None)
    );
    let key = signing_key(&secret, &scope.date, &scope.region, &scope.service);
    let expected = hex::encode(hmac(
        &key,
        string_to_sign(&amz_date, &scope, &creq).as_bytes(),
    ));
    if !constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
        return Err(SigV4Error::SignatureMismatch);
    }
    Ok(HeaderSigInfo {
        access_key_id: scope.access_key_id,
        amz_date,
        timestamp,
        region: scope.region,
        service: scope.service,
        signed_headers,
        security_token: header_str("x-amz-security-token"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{
        SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
    };
    use aws_sigv4::sign::v4;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    const AKID: &str = "AKIAEXAMPLE123456789";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const NOW: i64 = 1_780_000_000;

    fn identity(token: Option<&str>) -> aws_smithy_runtime_api::client::identity::Identity {
        Credentials::new(AKID, SECRET, token.map(str::to_string), None, "test").into()
    }

    fn presign(url: &str, cluster: &str, token: Option<&str>) -> url::Url {
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(60));
        let identity = identity(token);
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("sts")
            .time(UNIX_EPOCH + Duration::from_secs(NOW as u64))
            .settings(settings)
            .build()
            .expect("params")
            .into();
        let headers = [("x-k8s-aws-id", cluster)];
        let req = SignableRequest::new(
            "GET",
            url,
            headers.iter().copied(),
            SignableBody::Bytes(&[]),
        )
        .expect("signable");
        let (instructions, _) = sign(req, &params).expect("sign").into_parts();
        let mut u = url::Url::parse(url).expect("url");
        for (k, v) in instructions.params() {
            u.query_pairs_mut().append_pair(k, v);
        }
        u
    }

    const STS_URL: &str =
        "https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15";

    #[test]
    fn presigned_by_aws_sigv4_verifies() {
        let u = presign(STS_URL, "prod", None);
        let info =
            verify_presigned(&u, &[("x-k8s-aws-id", "prod")], SECRET, NOW + 5).expect("verifies");
        assert_eq!(info.access_key_id, AKID);
        assert_eq!(info.region, "us-east-1");
        assert_eq!(info.service, "sts");
        assert_eq!(info.timestamp, NOW);
        assert_eq!(info.expires_secs, 60);
        assert!(info.signed_headers.contains(&"x-k8s-aws-id".to_string()));
        assert!(info.signed_headers.contains(&"host".to_string()));
    }

    #[test]
    fn presigned_with_session_token_and_port_verifies() {
        let token = "FwoGZXIvYXdzE+/abc==";
        let u = presign(
            "http://127.0.0.1:4566/?Action=GetCallerIdentity&Version=2011-06-15",
            "c1",
            Some(token),
        );
        let info = verify_presigned(&u, &[("x-k8s-aws-id", "c1")], SECRET, NOW).expect("verifies");
        assert_eq!(info.security_token.as_deref(), Some(token));
    }

    #[test]
    fn presigned_refusals() {
        let u = presign(STS_URL, "prod", None);
        // Wrong cluster name in the signed header.
        assert_eq!(
            verify_presigned(&u, &[("x-k8s-aws-id", "other")], SECRET, NOW),
            Err(SigV4Error::SignatureMismatch)
        );
        // Wrong secret.
        assert_eq!(
            verify_presigned(&u, &[("x-k8s-aws-id", "prod")], "nope", NOW),
            Err(SigV4Error::SignatureMismatch)
        );
        // Missing header value.
        assert!(matches!(
            verify_presigned(&u, &[], SECRET, NOW),
            Err(SigV4Error::MissingSignedHeader(_))
        ));
        // Tampered signature.
        let mut t = u.clone();
        let q: Vec<(String, String)> = t
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "X-Amz-Signature" {
                    let mut s = v.into_owned();
                    let last = if s.ends_with('0') { '1' } else { '0' };
                    s.pop();
                    s.push(last);
                    s
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        t.query_pairs_mut().clear().extend_pairs(q);
        assert_eq!(
            verify_presigned(&t, &[("x-k8s-aws-id", "prod")], SECRET, NOW),
            Err(SigV4Error::SignatureMismatch)
        );
        // Tampered query (extra param).
        let mut t2 = u.clone();
        t2.query_pairs_mut().append_pair("Foo", "bar");
        assert_eq!(
            verify_presigned(&t2, &[("x-k8s-aws-id", "prod")], SECRET, NOW),
            Err(SigV4Error::SignatureMismatch)
        );
        // Dated far in the future.
        assert!(matches!(
            verify_presigned(&u, &[("x-k8s-aws-id", "prod")], SECRET, NOW - 3600),
            Err(SigV4Error::ClockSkew(_))
        ));
    }

    fn header_signed(body: &[u8]) -> http::Request<Vec<u8>> {
        let settings = SigningSettings::default();
        let identity = identity(Some("sessiontoken"));
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("iam")
            .time(SystemTime::UNIX_EPOCH + Duration::from_secs(NOW as u64))
            .settings(settings)
            .build()
            .expect("params")
            .into();
        let uri = "http://127.0.0.1:5000/some%20path/x?b=2&a=1%2F&a=0";
        let headers = [
            ("host", "127.0.0.1:5000"),
            ("content-type", "application/x-www-form-urlencoded"),
        ];
        let req = SignableRequest::new(
            "POST",
            uri,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .expect("signable");
        let (instructions, _) = sign(req, &params).expect("sign").into_parts();
        let mut b = http::Request::builder().method("POST").uri(uri);
        for (k, v) in headers {
            b = b.header(k, v);
        }
        for (k, v) in instructions.headers() {
            b = b.header(k, v);
        }
        b.body(body.to_vec()).expect("request")
    }

    fn lookup(k: &str) -> Option<String> {
        (k == AKID).then(|| SECRET.to_string())
    }

    #[test]
    fn header_signed_by_aws_sigv4_verifies() {
        let body = b"Action=GetUser&Version=2010-05-08";
        let req = header_signed(body);
        let pq = req.uri().path_and_query().expect("pq").as_str().to_string();
        let info = verify_authorization_header("POST", &pq, req.headers(), body, lookup, NOW)
            .expect("verifies");
        assert_eq!(info.access_key_id, AKID);
        assert_eq!(info.service, "iam");
        assert_eq!(info.security_token.as_deref(), Some("sessiontoken"));
    }

    #[test]
    fn header_signed_refusals() {
        let body = b"Action=GetUser&Version=2010-05-08";
        let req = header_signed(body);
        let pq = req.uri().path_and_query().expect("pq").as_str().to_string();
        // Tampered body.
        assert_eq!(
            verify_authorization_header(
                "POST",
                &pq,
                req.headers(),
                b"Action=DeleteUser&Version=2010-05-08",
                lookup,
                NOW
            ),
            Err(SigV4Error::SignatureMismatch)
        );
        // Tampered path.
        assert_eq!(
            verify_authorization_header(
                "POST",
                "/other?b=2&a=1%2F&a=0",
                req.headers(),
                body,
                lookup,
                NOW
            ),
            Err(SigV4Error::SignatureMismatch)
        );
        // Unknown key.
        assert!(matches!(
            verify_authorization_header("POST", &pq, req.headers(), body, |_| None, NOW),
            Err(SigV4Error::UnknownAccessKey(_))
        ));
        // Clock skew.
        assert!(matches!(
            verify_authorization_header("POST", &pq, req.headers(), body, lookup, NOW + 3600),
            Err(SigV4Error::ClockSkew(_))
        ));
    }

    #[test]
    fn canonical_uri_double_encodes() {
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("/a%20b/c"), "/a%2520b/c");
    }
}

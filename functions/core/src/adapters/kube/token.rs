//! The EKS bearer token (what `aws eks get-token` prints), built with `aws-sigv4`.
//!
//! Format (aws-iam-authenticator `pkg/token/token.go`): `k8s-aws-v1.` followed by the
//! base64url encoding, without padding, of a presigned
//! `GET <sts>/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-…` URL whose signed
//! headers are `host` and `x-k8s-aws-id: <cluster name>`. The URL is valid for 60 s
//! (`X-Amz-Expires=60`); the server accepts the token for 15 minutes after `X-Amz-Date`.
//!
//! The token is a credential: [`EksToken`]'s `Debug` never shows it.

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_types::SdkConfig;
use aws_types::service_config::ServiceConfigKey;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Prefix of every EKS token.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The header that binds a token to one cluster.
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";
/// How long the presigned URL is valid (what the AWS CLI and the authenticator use).
pub const PRESIGN_EXPIRES: Duration = Duration::from_secs(60);
/// The server accepts a token for 15 minutes after signing; refresh one minute early
/// (the authenticator's client does the same).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(14 * 60);

/// SigV4 query encoding: everything except the unreserved set `A-Z a-z 0-9 - _ . ~`.
const QUERY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Errors building a token. Never carries credential material.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("invalid STS endpoint {endpoint:?}: {reason}")]
    Endpoint { endpoint: String, reason: String },
    #[error("cannot sign the EKS token request: {0}")]
    Signing(String),
    #[error("no AWS credentials available: {0}")]
    Credentials(String),
    #[error("no AWS region configured")]
    NoRegion,
}

/// A bearer token for one EKS cluster. `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct EksToken {
    token: String,
    expires_at: SystemTime,
}

impl EksToken {
    /// The token itself, to put in an `Authorization: Bearer` header. Never log it.
    pub fn expose(&self) -> &str {
        &self.token
    }

    /// When the token should no longer be used.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

impl fmt::Debug for EksToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EksToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The default STS endpoint of a region.
pub fn default_sts_endpoint(region: &str) -> String {
    if region.starts_with("cn-") {
        format!("https://sts.{region}.amazonaws.com.cn")
    } else {
        format!("https://sts.{region}.amazonaws.com")
    }
}

/// The STS endpoint configured in an `SdkConfig`, the way the STS client resolves it:
/// `AWS_ENDPOINT_URL_STS` (or the profile's `sts` `endpoint_url`), else the global
/// `AWS_ENDPOINT_URL` / `endpoint_url`. `None` means the regional default.
pub fn configured_sts_endpoint(sdk: &SdkConfig) -> Option<String> {
    let key = ServiceConfigKey::builder()
        .service_id("STS")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok();
    key.and_then(|key| sdk.service_config().and_then(|c| c.load_config(key)))
        .or_else(|| sdk.endpoint_url().map(str::to_owned))
}

/// Builds a token for `cluster` from the credentials and endpoint of an `SdkConfig`.
pub async fn eks_token_from_sdk(
    sdk: &SdkConfig,
    region: &str,
    cluster: &str,
) -> Result<EksToken, TokenError> {
    use aws_credential_types::provider::ProvideCredentials as _;
    let provider = sdk
        .credentials_provider()
        .ok_or_else(|| TokenError::Credentials("no credentials provider configured".into()))?;
    let creds = provider
        .provide_credentials()
        .await
        .map_err(|e| TokenError::Credentials(e.to_string()))?;
    let endpoint = configured_sts_endpoint(sdk);
    eks_token(
        &creds,
        region,
        cluster,
        endpoint.as_deref(),
        SystemTime::now(),
    )
}

/// Builds the EKS bearer token for `cluster`, signed for `region` at `now`.
///
/// `sts_endpoint` overrides `https://sts.<region>.amazonaws.com` (a trailing `/` is
/// ignored). The session token is included (and signed) when the credentials have one.
pub fn eks_token(
    creds: &Credentials,
    region: &str,
    cluster: &str,
    sts_endpoint: Option<&str>,
    now: SystemTime,
) -> Result<EksToken, TokenError> {
    let endpoint = sts_endpoint
        .map(|e| e.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| default_sts_endpoint(region));
    let parsed = url::Url::parse(&endpoint).map_err(|e| TokenError::Endpoint {
        endpoint: endpoint.clone(),
        reason: e.to_string(),
    })?;
    if parsed.host_str().is_none() || !matches!(parsed.scheme(), "http" | "https") {
        return Err(TokenError::Endpoint {
            endpoint,
            reason: "expected an http(s) URL with a host".into(),
        });
    }
    let base = format!("{endpoint}/?Action=GetCallerIdentity&Version=2011-06-15");

    let identity = creds.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(PRESIGN_EXPIRES);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| TokenError::Signing(e.to_string()))?
        .into();
    let request = SignableRequest::new(
        "GET",
        base.as_str(),
        [(CLUSTER_ID_HEADER, cluster)].into_iter(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| TokenError::Signing(e.to_string()))?;
    let (instructions, _signature) = sign(request, &params)
        .map_err(|e| TokenError::Signing(e.to_string()))?
        .into_parts();

    let mut url = base;
    for (name, value) in instructions.params() {
        url.push('&');
        url.push_str(name);
        url.push('=');
        url.extend(utf8_percent_encode(value, QUERY_ENCODE));
    }
    Ok(EksToken {
        token: format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(url.as_bytes())),
        expires_at: now + TOKEN_LIFETIME,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};
    use std::collections::BTreeMap;

    const AKID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn fixed_time() -> SystemTime {
        // 2026-11-28T12:34:56Z
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_869_296)
    }

    fn creds(session: Option<&str>) -> Credentials {
        Credentials::new(AKID, SECRET, session.map(str::to_owned), None, "test")
    }

    fn decode(token: &EksToken) -> url::Url {
        let body = token
            .expose()
            .strip_prefix(TOKEN_PREFIX)
            .expect("token prefix");
        assert!(!body.contains('='), "base64 must not be padded");
        assert!(!body.contains('+') && !body.contains('/'), "base64url");
        let bytes = URL_SAFE_NO_PAD.decode(body).expect("base64url");
        url::Url::parse(std::str::from_utf8(&bytes).expect("utf8")).expect("url")
    }

    fn query(url: &url::Url) -> BTreeMap<String, String> {
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn hmac(key: &[u8], data: &str) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("hmac key");
        mac.update(data.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    fn enc(s: &str) -> String {
        utf8_percent_encode(s, QUERY_ENCODE).to_string()
    }

    /// SigV4 by hand (AWS "Create a signed AWS API request"), independent of aws-sigv4.
    fn expected_signature(url: &url::Url, cluster: &str) -> String {
        let q = query(url);
        let mut canon_q: Vec<(String, String)> = q
            .iter()
            .filter(|(k, _)| k.as_str() != "X-Amz-Signature")
            .map(|(k, v)| (enc(k), enc(v)))
            .collect();
        canon_q.sort();
        let canon_q = canon_q
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().expect("host")),
            None => url.host_str().expect("host").to_owned(),
        };
        let creq = format!(
            "GET\n/\n{canon_q}\nhost:{host}\nx-k8s-aws-id:{cluster}\n\nhost;x-k8s-aws-id\n{}",
            hex::encode(Sha256::digest(b""))
        );
        let date = &q["X-Amz-Date"];
        let day = &date[..8];
        let region = q["X-Amz-Credential"].split('/').nth(2).expect("region");
        let scope = format!("{day}/{region}/sts/aws4_request");
        let sts = format!(
            "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
            hex::encode(Sha256::digest(creq.as_bytes()))
        );
        let k = hmac(format!("AWS4{SECRET}").as_bytes(), day);
        let k = hmac(&k, region);
        let k = hmac(&k, "sts");
        let k = hmac(&k, "aws4_request");
        hex::encode(hmac(&k, &sts))
    }

    #[test]
    fn token_is_a_presigned_get_caller_identity_url() {
        let t = eks_token(&creds(None), "eu-west-1", "prod", None, fixed_time()).expect("token");
        let url = decode(&t);
        assert_eq!(url.scheme(), "https");
        assert_eq!(url.host_str(), Some("sts.eu-west-1.amazonaws.com"));
        assert_eq!(url.path(), "/");
        let q = query(&url);
        assert_eq!(q["Action"], "GetCallerIdentity");
        assert_eq!(q["Version"], "2011-06-15");
        assert_eq!(q["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
        assert_eq!(q["X-Amz-Expires"], "60");
        assert_eq!(q["X-Amz-Date"], "20261128T123456Z");
        assert_eq!(
            q["X-Amz-Credential"],
            "AKIDEXAMPLE/20261128/eu-west-1/sts/aws4_request"
        );
        assert_eq!(q["X-Amz-SignedHeaders"], "host;x-k8s-aws-id");
        assert!(!q.contains_key("X-Amz-Security-Token"));
        assert_eq!(q["X-Amz-Signature"], expected_signature(&url, "prod"));
        assert_eq!(t.expires_at(), fixed_time() + TOKEN_LIFETIME);
    }

    #[test]
    fn session_token_is_included_and_signed() {
        let t = eks_token(
            &creds(Some("FQoGZXIvYXdzE+/session==")),
            "us-east-1",
            "c1",
            None,
            fixed_time(),
        )
        .expect("token");
        let url = decode(&t);
        let q = query(&url);
        assert_eq!(q["X-Amz-Security-Token"], "FQoGZXIvYXdzE+/session==");
        assert_eq!(q["X-Amz-Signature"], expected_signature(&url, "c1"));
    }

    #[test]
    fn endpoint_override_is_used_and_signature_covers_the_port() {
        let t = eks_token(
            &creds(None),
            "us-east-1",
            "dev",
            Some("http://127.0.0.1:4566/"),
            fixed_time(),
        )
        .expect("token");
        let url = decode(&t);
        assert_eq!(url.scheme(), "http");
        assert_eq!(url.host_str(), Some("127.0.0.1"));
        assert_eq!(url.port(), Some(4566));
        assert_eq!(
            query(&url)["X-Amz-Signature"],
            expected_signature(&url, "dev")
        );
    }

    #[test]
    fn deterministic_and_bound_to_the_cluster() {
        let a = eks_token(&creds(None), "us-east-1", "a", None, fixed_time()).expect("token");
        let a2 = eks_token(&creds(None), "us-east-1", "a", None, fixed_time()).expect("token");
        let b = eks_token(&creds(None), "us-east-1", "b", None, fixed_time()).expect("token");
        assert_eq!(a.expose(), a2.expose());
        assert_ne!(a.expose(), b.expose());
        let later = eks_token(
            &creds(None),
            "us-east-1",
            "a",
            None,
            fixed_time() + Duration::from_secs(1),
        )
        .expect("token");
        assert_ne!(a.expose(), later.expose());
    }

    #[test]
    fn debug_is_redacted() {
        let t =
            eks_token(&creds(Some("sess")), "us-east-1", "a", None, fixed_time()).expect("token");
        let dbg = format!("{t:?}");
        assert!(dbg.contains("<redacted>"));
        assert!(!dbg.contains(TOKEN_PREFIX));
        assert!(!dbg.contains(&t.expose()[TOKEN_PREFIX.len()..TOKEN_PREFIX.len() + 10]));
    }

    #[test]
    fn bad_endpoint_is_an_error() {
        let err = eks_token(
            &creds(None),
            "us-east-1",
            "a",
            Some("not a url"),
            fixed_time(),
        )
        .expect_err("bad endpoint");
        assert!(matches!(err, TokenError::Endpoint { .. }));
    }

    #[test]
    fn sdk_config_endpoint_is_read() {
        let sdk = SdkConfig::builder()
            .endpoint_url("http://localhost:9999")
            .build();
        assert_eq!(
            configured_sts_endpoint(&sdk).as_deref(),
            Some("http://localhost:9999")
        );
        assert_eq!(configured_sts_endpoint(&SdkConfig::builder().build()), None);
    }
}

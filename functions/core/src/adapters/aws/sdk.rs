//! The AWS SDK configuration every client is built from (IAM, EKS, STS, DynamoDB):
//! the standard chain plus timeouts, which roots its HTTPS client trusts
//! ([`TrustRoots`]), and how an SDK transport error is worded.
//!
//! Timeouts (a run that cannot reach a service ends on its own, well within a minute):
//! - connect 3 s: a TCP + TLS handshake to a regional AWS endpoint takes milliseconds;
//!   3 s (the SDK's own default is 3.1 s) rides out a lost SYN and retransmit.
//! - read 10 s: the longest wait for the first byte of an answer. IAM, EKS and
//!   DynamoDB answer the calls made here (one page of a list, one item) in well under
//!   a second.
//! - operation attempt 10 s: one attempt, end to end.
//! - operation 30 s: all attempts (the standard retry strategy makes 3) and their
//!   back-off; the bound a caller sees.

use std::sync::LazyLock;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_sdk_iam::error::{DisplayErrorContext, SdkError};
use aws_smithy_http_client::Connector;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_types::SdkConfig;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The timeouts of every AWS call (see the module documentation).
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The standard chain (environment, profile, container and instance credentials,
/// `AWS_ENDPOINT_URL_*`) with [`timeout_config`], trusting the host's roots (the CLI).
pub async fn load_sdk_config() -> SdkConfig {
    load_sdk_config_with(TrustRoots::Host).await
}

/// [`load_sdk_config`] with the given roots (the Lambdas: [`TrustRoots::Compiled`]).
pub async fn load_sdk_config_with(roots: TrustRoots) -> SdkConfig {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeout_config());
    match roots {
        TrustRoots::Compiled => loader.http_client(compiled_roots_https_client()),
        TrustRoots::Host => loader,
    }
    .load()
    .await
}

/// Which certificate authorities the AWS SDK's HTTPS client trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustRoots {
    /// Compiled into the binary ([`compiled_roots_pem`]: Mozilla's CA set from
    /// `webpki-root-certs`, the version pinned in Cargo.lock): nothing is read from
    /// disk at start-up. The two Lambdas (README, "TLS roots").
    Compiled,
    /// The host's trust store, read when the first client is built (the SDK's
    /// default: `SSL_CERT_FILE`, `SSL_CERT_DIR` or the system bundle). The CLI: an
    /// operator's machine may trust a corporate CA that Mozilla's set lacks.
    Host,
}

/// Mozilla's CA set (`webpki_root_certs::TLS_SERVER_ROOT_CERTS`) as one PEM bundle,
/// made once: what the SDK's trust store takes.
pub fn compiled_roots_pem() -> &'static [u8] {
    static PEM: LazyLock<Vec<u8>> = LazyLock::new(|| {
        let certs: Vec<pem::Pem> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|der| pem::Pem::new("CERTIFICATE", der.as_ref().to_vec()))
            .collect();
        pem::encode_many(&certs).into_bytes()
    });
    &PEM
}

/// The SDK's own HTTPS connector (hyper, rustls over aws-lc-rs, its timeouts and
/// connection pool) trusting only [`compiled_roots_pem`], built when the first request
/// needs it: the roots are parsed then, once per connector settings (the SDK caches the
/// connector), not at start-up.
///
/// The SDK also calls the connector function once per client it builds, with neither
/// settings nor runtime components, only to load the trusted roots early; it drops what
/// it gets. That probe gets a plain-HTTP connector (which could not carry an `https`
/// request: hyper's refuses the scheme), so building a client costs no root parsing.
/// `compiled_roots_still_verify_the_server` checks that requests get the verifying one.
pub fn compiled_roots_https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().build_with_connector_fn(|settings, components| {
        if settings.is_none() && components.is_none() {
            return Connector::builder().build_http();
        }
        let trust = TrustStore::empty()
            .with_native_roots(false)
            .with_pem_certificate(compiled_roots_pem());
        // Building a TlsContext does not fail (it only stores the trust store); were it
        // to, the SDK's default context (the host's roots) trusts no less.
        let tls = TlsContext::builder()
            .with_trust_store(trust)
            .build()
            .unwrap_or_default();
        let mut builder = Connector::builder()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(tls);
        builder.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            builder.set_sleep_impl(components.sleep_impl());
        }
        builder.build()
    })
}

/// `sdk` with [`timeout_config`] unless it already sets an operation timeout (a
/// caller that chose its own bounds keeps them).
pub fn with_timeouts(sdk: &SdkConfig) -> SdkConfig {
    if sdk
        .timeout_config()
        .is_some_and(|t| t.operation_timeout().is_some())
    {
        sdk.clone()
    } else {
        sdk.to_builder().timeout_config(timeout_config()).build()
    }
}

/// What went wrong with a call that got no answer from the service: a timeout as a
/// timeout (with the bound), a refused or reset connection as such, else the SDK's
/// error with its causes. Never holds a secret (no request is rendered).
pub fn transport_message<E, R>(err: &SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::TimeoutError(_) => format!(
            "timed out after {} s (no answer within {} s per attempt)",
            OPERATION_TIMEOUT.as_secs(),
            ATTEMPT_TIMEOUT.as_secs()
        ),
        SdkError::DispatchFailure(f) if f.is_timeout() => format!(
            "timed out (no connection within {} s or no answer within {} s)",
            CONNECT_TIMEOUT.as_secs(),
            READ_TIMEOUT.as_secs()
        ),
        SdkError::DispatchFailure(f) if f.is_io() => {
            format!(
                "connection failed (refused, reset or unreachable): {}",
                DisplayErrorContext(err)
            )
        }
        _ => DisplayErrorContext(err).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::error::ConnectorError;
    use aws_sdk_iam::operation::get_role::GetRoleError;

    type Err = SdkError<GetRoleError, ()>;

    #[test]
    fn timeouts_are_set_and_kept() {
        let t = timeout_config();
        assert_eq!(t.connect_timeout(), Some(CONNECT_TIMEOUT));
        assert_eq!(t.read_timeout(), Some(READ_TIMEOUT));
        assert_eq!(t.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert_eq!(t.operation_timeout(), Some(OPERATION_TIMEOUT));
        // Bounded well within a minute.
        assert!(OPERATION_TIMEOUT < Duration::from_secs(60));

        let bare = SdkConfig::builder().build();
        let with = with_timeouts(&bare);
        assert_eq!(
            with.timeout_config().and_then(|t| t.operation_timeout()),
            Some(OPERATION_TIMEOUT)
        );
        let own = SdkConfig::builder()
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(2))
                    .build(),
            )
            .build();
        assert_eq!(
            with_timeouts(&own)
                .timeout_config()
                .and_then(|t| t.operation_timeout()),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn timeouts_and_connection_failures_say_so() {
        let timeout: Err = SdkError::timeout_error("elapsed");
        assert_eq!(
            transport_message(&timeout),
            "timed out after 30 s (no answer within 10 s per attempt)"
        );
        let read: Err = SdkError::dispatch_failure(ConnectorError::timeout("read".into()));
        assert!(transport_message(&read).starts_with("timed out"));
        let refused: Err = SdkError::dispatch_failure(ConnectorError::io(Box::new(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        )));
        let m = transport_message(&refused);
        assert!(m.starts_with("connection failed"), "{m}");
        assert!(m.to_lowercase().contains("refused"), "{m}");
    }
    #[test]
    fn compiled_roots_are_mozillas_set_with_amazons_roots() {
        let pem = pem::parse_many(compiled_roots_pem()).expect("PEM");
        assert_eq!(pem.len(), webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        assert!(pem.len() > 100, "{} roots", pem.len());
        // AWS endpoints chain to Amazon Trust Services (Amazon Root CA 1–4, and
        // Starfield Services Root G2, which cross-signs them).
        let has = |name: &str| {
            pem.iter().any(|p| {
                p.contents()
                    .windows(name.len())
                    .any(|w| w == name.as_bytes())
            })
        };
        for root in [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ] {
            assert!(has(root), "{root} missing");
        }
    }

    /// A TLS server on 127.0.0.1 with a self-signed certificate for `localhost`.
    async fn self_signed_server() -> u16 {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("self-signed");
        let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key der"),
        )
        .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = acceptor.accept(s).await;
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn compiled_roots_still_verify_the_server() {
        let port = self_signed_server().await;
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(compiled_roots_https_client())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(format!("https://localhost:{port}"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                None,
                None,
                "test",
            ))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await;
        let err = aws_sdk_iam::Client::new(&sdk)
            .get_user()
            .send()
            .await
            .expect_err("a self-signed certificate is not trusted");
        let text = DisplayErrorContext(&err).to_string();
        assert!(
            text.contains("UnknownIssuer") || text.contains("invalid peer certificate"),
            "{text}"
        );
    }
}

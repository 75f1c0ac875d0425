//! Helpers shared by the `aws_*` tests: an in-process sandbox and SDK configs.
#![allow(dead_code)]

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use eks_sandbox::aws::{Sandbox, SandboxOptions};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub async fn start() -> Sandbox {
    Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox starts (needs moto_server: pip install 'moto[server]')")
}

pub async fn config_for(
    sb: &Sandbox,
    region: &str,
    ak: &str,
    sk: &str,
    token: Option<String>,
) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(sb.aws_endpoint())
        .retry_config(RetryConfig::disabled())
        .credentials_provider(Credentials::new(ak, sk, token, None, "test"))
        .load()
        .await
}

pub async fn operator_config(sb: &Sandbox) -> SdkConfig {
    let (ak, sk) = sb.operator_credentials();
    config_for(sb, &sb.region(), &ak, &sk, None).await
}

/// Creates a user (optionally tagged) with an access key; returns (ak, sk, user id).
pub async fn user_with_key(
    iam: &aws_sdk_iam::Client,
    name: &str,
    tags: &[(&str, &str)],
) -> (String, String, String) {
    let mut req = iam.create_user().user_name(name);
    for (k, v) in tags {
        req = req.tags(
            aws_sdk_iam::types::Tag::builder()
                .key(*k)
                .value(*v)
                .build()
                .unwrap(),
        );
    }
    let user = req.send().await.unwrap().user.unwrap();
    let key = iam
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap();
    (key.access_key_id, key.secret_access_key, user.user_id)
}

/// POSTs JSON to a control endpoint; returns (status, body).
pub async fn control(sb: &Sandbox, path: &str, body: &str) -> (u16, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let method = if body.is_empty() && !path.ends_with("reset") && !path.ends_with("seed") {
        "GET"
    } else {
        "POST"
    };
    let req = http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", sb.aws_endpoint()))
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// The error code and message of an SDK error.
pub fn code_and_message<E, R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> (String, String)
where
    E: aws_sdk_iam::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    let meta = e.as_service_error().map(|s| {
        (
            s.code().map(str::to_string),
            s.message().map(str::to_string),
        )
    });
    match meta {
        Some((c, m)) => (c.unwrap_or_default(), m.unwrap_or_default()),
        None => (format!("{e:?}"), String::new()),
    }
}

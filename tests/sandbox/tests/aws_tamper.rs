//! A request signed correctly by `aws-sigv4` and then tampered with is refused.

use std::time::SystemTime;

use crate::aws_support::start;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

async fn send_signed(
    endpoint: &str,
    ak: &str,
    sk: &str,
    signed_body: &str,
    sent_body: &str,
) -> (u16, String) {
    let identity: Identity = Credentials::new(ak, sk, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("sts")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let host = endpoint.trim_start_matches("http://");
    let uri = format!("{endpoint}/");
    let headers = [
        ("host", host),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let req = SignableRequest::new(
        "POST",
        &uri,
        headers.iter().copied(),
        SignableBody::Bytes(signed_body.as_bytes()),
    )
    .unwrap();
    let (instructions, _) = sign(req, &params).unwrap().into_parts();
    let mut b = http::Request::builder().method("POST").uri(&uri);
    for (k, v) in headers {
        b = b.header(k, v);
    }
    for (k, v) in instructions.headers() {
        b = b.header(k, v);
    }
    let req = b
        .body(Full::new(Bytes::from(sent_body.to_string())))
        .unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_body_is_refused_and_the_original_passes() {
    let sb = start().await;
    let (ak, sk) = sb.operator_credentials();
    let good = "Action=GetCallerIdentity&Version=2011-06-15";
    let (status, body) = send_signed(&sb.aws_endpoint(), &ak, &sk, good, good).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&sb.operator_arn()), "{body}");

    let tampered = "Action=GetCallerIdentity&Version=2011-06-15&x=1";
    let (status, body) = send_signed(&sb.aws_endpoint(), &ak, &sk, good, tampered).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{body}"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn a_missing_moto_says_how_to_install_it() {
    let err = eks_sandbox::aws::Sandbox::start(eks_sandbox::aws::SandboxOptions {
        moto_command: "/nonexistent/moto_server".to_string(),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("pip install 'moto[server]'"),
        "{err}"
    );
}

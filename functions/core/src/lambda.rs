//! What the two Lambda entry points share with `lambda_runtime` (feature `lambda`).
//!
//! [`RawPayloadLayer`]: `lambda_runtime` parses the invocation's body into the
//! handler's payload type before the handler runs, and reports a body that does not
//! parse with the Rust path of its own error as `errorType`
//! (`&lambda_runtime::deserializer::DeserializeError`), whatever the payload type (even
//! a `RawValue`). The layer hands every body on as one JSON string holding its text, so
//! the handler takes a `String`, reads the event itself ([`crate::intake::parse_event`]:
//! the size first, then the JSON) and refuses what it cannot read with its own error
//! (`InputRefused`). A body that is not UTF-8 (which `lambda_runtime` would not
//! even log) is read with replacement characters, and refused as JSON or not.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use lambda_runtime::layers::TracingLayer;
use lambda_runtime::{LambdaEvent, LambdaInvocation, Runtime, service_fn};

use tokio::sync::OnceCell;

use crate::adapters::SdkEngine;
use crate::model::config::Config;
use crate::telemetry::{LogTarget, init_tracing};
use lambda_runtime::tower::{Layer, Service};

/// See the module documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawPayloadLayer;

impl<S> Layer<S> for RawPayloadLayer {
    type Service = RawPayload<S>;

    fn layer(&self, inner: S) -> RawPayload<S> {
        RawPayload { inner }
    }
}

/// The service [`RawPayloadLayer`] puts in front of `lambda_runtime`'s own.
#[derive(Debug, Clone)]
pub struct RawPayload<S> {
    inner: S,
}

/// `body` as one JSON string literal (its text, lossily decoded).
pub fn quote_body(body: &[u8]) -> Vec<u8> {
    // Serializing a `str` to a Vec cannot fail.
    serde_json::to_vec(&String::from_utf8_lossy(body)).unwrap_or_default()
}

impl<S: Service<LambdaInvocation>> Service<LambdaInvocation> for RawPayload<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: LambdaInvocation) -> S::Future {
        req.body = quote_body(&req.body).into();
        self.inner.call(req)
    }
}

/// The entry point both functions share: tracing to stdout and the configuration read
/// and checked at start (a bad one fails the start: the function never half-applies),
/// then each invocation's payload text ([`RawPayloadLayer`]) to `handler`. The AWS SDK
/// configuration and clients are built once, by the first invocation (README,
/// "Performance": the init phase stays at the floor; the first invocation pays it).
pub async fn serve<F, Fut, E>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Arc<SdkEngine>, String) -> Fut,
    Fut: Future<Output = Result<serde_json::Value, E>>,
    E: Into<lambda_runtime::Diagnostic> + std::fmt::Debug,
{
    init_tracing(LogTarget::Stdout);
    let config = Config::from_env().inspect_err(|e| {
        tracing::error!(error = %e, "cannot start");
    })?;
    let engine: OnceCell<Arc<SdkEngine>> = OnceCell::new();
    let (handler, engine, config) = (&handler, &engine, &config);
    Runtime::new(service_fn(move |ev: LambdaEvent<String>| async move {
        let engine = engine
            .get_or_init(|| async { Arc::new(SdkEngine::from_config(config.clone()).await.0) })
            .await;
        handler(Arc::clone(engine), ev.payload).await
    }))
    .layer(RawPayloadLayer)
    .layer(TracingLayer::new())
    .run()
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_body_becomes_the_string_of_its_text() {
        for body in [
            &b"{\"a\": [1, \"\\u00e9\"]}"[..],
            b"{not json",
            b"",
            b"\xff\xfe",
        ] {
            let quoted = quote_body(body);
            let back: String = serde_json::from_slice(&quoted).expect("a JSON string");
            assert_eq!(back, String::from_utf8_lossy(body));
        }
    }
}

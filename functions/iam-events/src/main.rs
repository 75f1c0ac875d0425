//! Lambda entry point of `iam-events`. Configuration and the AWS SDK configuration are
//! read once, at cold start.
//! The payload is taken as its text ([`RawPayloadLayer`]) so that an oversized event
//! is refused before it is built into a tree, and one that is not JSON is refused
//! with the function's own `errorType` (`InputRefused`).
#![warn(clippy::too_many_lines)]

use eks_access_sync::adapters::SdkEngine;
use eks_access_sync::lambda::RawPayloadLayer;
use eks_access_sync::telemetry::{LogTarget, init_tracing};
use lambda_runtime::{Error, LambdaEvent, Runtime, layers::TracingLayer, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing(LogTarget::Stdout);
    let (engine, _sdk) = SdkEngine::from_env().await.inspect_err(|e| {
        tracing::error!(error = %e, "cannot start");
    })?;
    let engine = &engine;
    Runtime::new(service_fn(move |ev: LambdaEvent<String>| async move {
        iam_events::handle_text(engine, &ev.payload).await
    }))
    .layer(RawPayloadLayer)
    .layer(TracingLayer::new())
    .run()
    .await
}

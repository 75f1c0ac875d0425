//! Lambda entry point of `reconcile`. Configuration and the AWS SDK configuration are
//! read once, at cold start.
//! The payload is taken unparsed (a `RawValue`, its JSON text) so that an oversized
//! event is refused before it is built into a tree.
#![warn(clippy::too_many_lines)]

use eks_access_sync::adapters::SdkEngine;
use eks_access_sync::telemetry::{LogTarget, init_tracing};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::value::RawValue;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing(LogTarget::Stdout);
    let (engine, _sdk) = SdkEngine::from_env().await.inspect_err(|e| {
        tracing::error!(error = %e, "cannot start");
    })?;
    let engine = &engine;
    lambda_runtime::run(service_fn(
        move |ev: LambdaEvent<Box<RawValue>>| async move {
            reconcile::handle_raw(engine, &ev.payload).await
        },
    ))
    .await
}

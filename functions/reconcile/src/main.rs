//! Lambda entry point of `reconcile`. Configuration and the AWS SDK configuration are
//! read once, at cold start.
//! The payload is taken as its text (`eks_access_sync::lambda::serve`) so that an oversized event
//! is refused before it is built into a tree, and one that is not JSON is refused
//! with the function's own `errorType` (`InputRefused`).
#![warn(clippy::too_many_lines)]

use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    eks_access_sync::lambda::serve(|engine, payload| async move {
        reconcile::handle_text(&engine, &payload).await
    })
    .await
}

//! `bench-hello`: the smallest useful Lambda function, the floor the bench compares
//! the real functions' cold start, size and memory against.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn hello(ev: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(json!({ "hello": ev.payload }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(hello)).await
}

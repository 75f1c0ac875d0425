//! DynamoDB, proxied to moto as it is (moto implements DynamoDB, conditional writes
//! and reserved-word checks included). The sandbox only authenticates the caller and
//! counts the calls, by operation (`X-Amz-Target: DynamoDB_20120810.PutItem` →
//! `PutItem`). The functions use it for the trust-policy lease (`TRUST_LOCK_TABLE`).

use axum::response::{IntoResponse, Response};
use http::request::Parts;
use hyper::body::Bytes;

use super::{AwsError, FrontDoor};

/// The operation named by `X-Amz-Target`.
pub fn operation(parts: &Parts) -> String {
    parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or_default()
        .to_string()
}

/// Handles one DynamoDB call, in the caller's `account` (moto keeps tables per account).
pub async fn handle(
    fd: &FrontDoor,
    account: &str,
    parts: &Parts,
    body: Bytes,
) -> Result<Response, AwsError> {
    let op = operation(parts);
    fd.count("dynamodb", &op);
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let r = fd
        .moto
        .forward(account, &parts.method, pq, &parts.headers, body)
        .await
        .map_err(|e| AwsError::internal(e.to_string()))?;
    let mut resp = (r.status, r.body).into_response();
    // The JSON protocol's content type, error type, request id and CRC32 of the body
    // (which the SDK checks when present) pass through unchanged.
    for name in [
        "content-type",
        "x-amzn-errortype",
        "x-amzn-requestid",
        "x-amz-crc32",
    ] {
        if let Some(v) = r.headers.get(name) {
            resp.headers_mut().insert(name, v.clone());
        }
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_from_target() {
        let (parts, ()) = http::Request::post("/")
            .header("x-amz-target", "DynamoDB_20120810.PutItem")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(operation(&parts), "PutItem");
        let (parts, ()) = http::Request::post("/").body(()).unwrap().into_parts();
        assert_eq!(operation(&parts), "");
    }
}

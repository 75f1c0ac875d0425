//! EventBridge `PutEvents` (JSON 1.1, `X-Amz-Target: AWSEvents.PutEvents`) on the
//! default bus, recorded for the tests (`GET /_sandbox/events`). moto is not involved:
//! only what the functions send (their access events) is emulated, with EventBridge's
//! validation of each entry: 1 to 10 entries; `Source`, `DetailType` and a `Detail`
//! that is a JSON object; the default bus only (by name or ARN); 256 KB in all.

use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use http::request::Parts;
use serde_json::{Value, json};

use super::{AwsError, FrontDoor, dynamodb::operation, lock};

/// EventBridge's limit on one `PutEvents` request.
const MAX_ENTRIES: usize = 10;
const MAX_BYTES: usize = 256 * 1024;

fn bad(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ValidationException", message.into())
}

/// Why an entry is refused, as EventBridge says it (per entry, not for the request).
fn entry_error(e: &Value) -> Option<(&'static str, String)> {
    let text = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default();
    if text("Source").is_empty() {
        return Some(("InvalidArgument", "Parameter Source is not valid.".into()));
    }
    if text("DetailType").is_empty() {
        return Some((
            "InvalidArgument",
            "Parameter DetailType is not valid.".into(),
        ));
    }
    match serde_json::from_str::<Value>(text("Detail")) {
        Ok(Value::Object(_)) => {}
        _ => {
            return Some(("MalformedDetail", "Detail is malformed.".into()));
        }
    }
    let bus = text("EventBusName");
    if !(bus.is_empty() || bus == "default" || bus.ends_with(":event-bus/default")) {
        return Some((
            "InvalidArgument",
            format!("Event bus {bus} does not exist."),
        ));
    }
    None
}

/// Handles one EventBridge call.
pub fn handle(fd: &FrontDoor, parts: &Parts, body: &[u8]) -> Result<Response, AwsError> {
    let op = operation(parts);
    fd.count("events", &op);
    if op != "PutEvents" {
        return Err(AwsError::new(
            400,
            "UnknownOperationException",
            format!("the sandbox emulates only PutEvents, not {op}"),
        ));
    }
    if body.len() > MAX_BYTES {
        return Err(bad(
            "Total size of the entries in the request is over the limit.",
        ));
    }
    let req: Value = serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let entries = req
        .get("Entries")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("1 validation error detected: Value null at 'entries' failed to satisfy constraint: Member must not be null"))?;
    if entries.is_empty() || entries.len() > MAX_ENTRIES {
        return Err(bad(format!(
            "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length less than or equal to {MAX_ENTRIES} and greater than or equal to 1"
        )));
    }
    let mut out = Vec::new();
    let mut failed = 0;
    let mut shared = lock(&fd.shared);
    for e in entries {
        match entry_error(e) {
            Some((code, message)) => {
                failed += 1;
                out.push(json!({ "ErrorCode": code, "ErrorMessage": message }));
            }
            None => {
                let id = format!("{:08x}-sandbox-{}", shared.put_events.len(), out.len());
                let mut recorded = e.clone();
                recorded["EventId"] = json!(id);
                shared.put_events.push(recorded);
                out.push(json!({ "EventId": id }));
            }
        }
    }
    let mut resp = json!({ "FailedEntryCount": failed, "Entries": out })
        .to_string()
        .into_response();
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    Ok(resp)
}

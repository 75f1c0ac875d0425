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

use std::task::{Context, Poll};

use lambda_runtime::LambdaInvocation;
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

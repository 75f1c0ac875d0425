//! Event intake: every entry point that reads an event (the two Lambda handlers, the
//! CLI's `handle-event`) refuses one larger than [`MAX_EVENT_BYTES`] before parsing
//! it into a tree, so an oversized payload costs no more memory than its bytes (a
//! 50 MB event once took 2.5 GB as a `serde_json::Value`).
//!
//! EventBridge delivers events of at most 256 KiB, and a manual `reconcile` payload is
//! a few bytes, so nothing legitimate is refused.

use std::io::Read;

use serde_json::Value;
use serde_json::value::RawValue;

/// The largest event accepted, in bytes: EventBridge's maximum event size (256 KiB).
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// Why an event was refused unread, or could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(
        "event refused: {size} bytes, over the limit of {max} bytes (256 KiB, the most \
         EventBridge delivers); it was not processed"
    )]
    TooLarge {
        /// The size seen: the whole event, or (reading a stream) the limit + 1.
        size: usize,
        max: usize,
    },
    #[error("cannot read the event: {0}")]
    Read(#[from] std::io::Error),
    #[error("event is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
}

fn check(size: usize) -> Result<(), IntakeError> {
    if size > MAX_EVENT_BYTES {
        Err(IntakeError::TooLarge {
            size,
            max: MAX_EVENT_BYTES,
        })
    } else {
        Ok(())
    }
}

/// Reads an event from `reader`, at most [`MAX_EVENT_BYTES`] + 1 bytes of it: a
/// larger one is refused without reading the rest.
pub fn read_event(reader: impl Read) -> Result<Vec<u8>, IntakeError> {
    let limit = u64::try_from(MAX_EVENT_BYTES)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut bytes = Vec::new();
    reader.take(limit).read_to_end(&mut bytes)?;
    check(bytes.len())?;
    Ok(bytes)
}

/// Parses an event's bytes, refusing an oversized one first.
pub fn parse_event(bytes: &[u8]) -> Result<Value, IntakeError> {
    check(bytes.len())?;
    Ok(serde_json::from_slice(bytes)?)
}

/// Parses an event as the Lambda runtime hands it over unparsed (a [`RawValue`]: the
/// payload's JSON text, checked but not built into a tree), refusing an oversized one
/// first.
pub fn parse_raw_event(raw: &RawValue) -> Result<Value, IntakeError> {
    parse_event(raw.get().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_eventbridges_and_applies_to_every_reader() {
        assert_eq!(MAX_EVENT_BYTES, 262_144);
        let at_cap = format!("\"{}\"", "x".repeat(MAX_EVENT_BYTES - 2));
        assert!(parse_event(at_cap.as_bytes()).is_ok());
        assert!(read_event(at_cap.as_bytes()).is_ok());
        let over = format!("\"{}\"", "x".repeat(MAX_EVENT_BYTES));
        let err = parse_event(over.as_bytes()).expect_err("over the cap");
        assert!(err.to_string().contains("256 KiB"), "{err}");
        assert!(matches!(
            read_event(over.as_bytes()),
            Err(IntakeError::TooLarge { size, .. }) if size == MAX_EVENT_BYTES + 1
        ));
        let raw = RawValue::from_string(over).expect("raw");
        assert!(matches!(
            parse_raw_event(&raw),
            Err(IntakeError::TooLarge { .. })
        ));
        assert!(matches!(parse_event(b"{"), Err(IntakeError::NotJson(_))));
    }
}

//! Access events on an EventBridge bus (`PutEvents`, at most 10 entries a call, the
//! calls made at once).

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use futures::future::BoxFuture;

use crate::output::events::{AccessEvent, SOURCE};
use crate::ports::{AccessEventSink, EventsError};

/// EventBridge's limit on entries per `PutEvents`.
const MAX_ENTRIES: usize = 10;

/// Puts access events on `bus` (the stack: `default`).
#[derive(Debug, Clone)]
pub struct EventBridgeSink {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeSink {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: String) -> Self {
        EventBridgeSink { client, bus }
    }

    async fn put_batch(&self, batch: &[AccessEvent]) -> Result<(), EventsError> {
        let entries = batch.iter().map(|e| {
            PutEventsRequestEntry::builder()
                .source(SOURCE)
                .detail_type(e.detail_type)
                .detail(e.detail.to_string())
                .event_bus_name(&self.bus)
                .build()
        });
        let out = self
            .client
            .put_events()
            .set_entries(Some(entries.collect()))
            .send()
            .await
            .map_err(|e| {
                EventsError(aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string())
            })?;
        match out.failed_entry_count() {
            0 => Ok(()),
            n => {
                let first = out
                    .entries()
                    .iter()
                    .find_map(|e| e.error_message())
                    .unwrap_or("no message");
                Err(EventsError(format!(
                    "{n} of {} entries refused: {first}",
                    batch.len()
                )))
            }
        }
    }
}

impl AccessEventSink for EventBridgeSink {
    fn put<'a>(&'a self, events: &'a [AccessEvent]) -> BoxFuture<'a, Result<(), EventsError>> {
        Box::pin(async move {
            let calls = events.chunks(MAX_ENTRIES).map(|b| self.put_batch(b));
            futures::future::try_join_all(calls).await.map(drop)
        })
    }
}

//! For where logged requests go in 1.x, see [`OtlpSink`].

use std::sync::{Arc, Mutex};

use super::{
    encode::Encoder,
    spool::{Queue, Spool},
};
use crate::{request_log::RequestLogItem, util::lock};

/// Where logged requests go in 1.x: encoded as spans and log records into the spool.
#[derive(Debug)]
pub(crate) struct OtlpSink {
    pub(crate) spool: Arc<Spool>,
    pub(crate) encoder: Encoder,
    /// The resource, encoded once.
    resource: Vec<u8>,
    /// The scope of SERVER spans: the adapter's crate and version (`apitally-actix`).
    scope: (String, String),
    /// The buffers messages are written into, reused (only the logger's writer uses them).
    scratch: Mutex<(Vec<u8>, Vec<u8>)>,
}

impl OtlpSink {
    pub(crate) fn new(spool: Arc<Spool>, encoder: Encoder, scope: (String, String)) -> Self {
        let resource = encoder.resource_bytes();
        Self {
            spool,
            encoder,
            resource,
            scope,
            scratch: Mutex::default(),
        }
    }

    /// Items per message: a logged request holds at most two 50,000-byte bodies, headers and
    /// 1,000 spans and records, so that a message stays well under the spool's 4,000,000-byte
    /// file cap.
    const ITEMS_PER_MESSAGE: usize = 16;
}

impl crate::backend::LogSink for OtlpSink {
    /// Encodes logged requests (already masked and kept) and appends them to the spool.
    fn write(&self, items: &[&RequestLogItem]) -> u64 {
        let mut scratch = lock(&self.scratch);
        let (traces, logs) = &mut *scratch;
        let mut written = 0;
        for chunk in items.chunks(Self::ITEMS_PER_MESSAGE) {
            traces.clear();
            logs.clear();
            let scope = (self.scope.0.as_str(), self.scope.1.as_str());
            super::wire::write_requests(&self.resource, scope, chunk, traces, logs);
            if !traces.is_empty() {
                // Those without a trace id (only tests build such items) make no span.
                let requests = chunk.iter().filter(|i| i.trace_context.is_some()).count() as u64;
                self.spool.append(Queue::Traces, traces, requests);
                written += requests;
            }
            if !logs.is_empty() {
                let records: usize = chunk
                    .iter()
                    .filter(|i| i.trace_context.is_some())
                    .map(|i| i.logs.len())
                    .sum();
                self.spool.append(Queue::Logs, logs, records as u64);
            }
        }
        // A burst's larger buffers are not kept.
        traces.shrink_to(1 << 20);
        logs.shrink_to(1 << 20);
        written
    }

    fn lost(&self) -> u64 {
        self.spool.lost_items(Queue::Traces)
    }

    fn masked(&self) -> &'static str {
        super::wire::REDACTED
    }
}

//! Everything recorded between two syncs: requests, validation errors, server errors and the
//! consumers seen.

mod errors;
mod histogram;
mod requests;

pub(crate) use errors::{traceback_fingerprint, ServerErrorItem, ValidationErrorItem};
pub use errors::{MAX_MSG_CHARS, MAX_TRACEBACK_CHARS};
pub(crate) use requests::{RequestItem, RequestOverflow};

use self::{
    errors::{
        truncate_msg, truncate_traceback, ErrorOrigin, KeyedCounter, ServerErrorKey, ValidationKey,
        MAX_LOC_SEGMENTS, MAX_LOC_SEGMENT_CHARS, MAX_SERVER_ERROR_BYTES, MAX_TYPE_CHARS,
        MAX_VALIDATION_ERROR_BYTES,
    },
    requests::RequestCounter,
};
use super::consumers::{ConsumerItem, ConsumerRegistry};
use crate::{util::truncate_chars, Consumer, RequestRecord, ServerError, ValidationError};

/// Caps on what one sync window holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) request_keys: usize,
    pub(crate) validation_error_keys: usize,
    pub(crate) server_error_keys: usize,
    pub(crate) consumers: usize,
}

/// The contents of one sync window, swapped out of [`Metrics`].
#[derive(Debug)]
pub(crate) struct Window {
    pub(crate) requests: Vec<RequestItem>,
    pub(crate) validation_errors: Vec<ValidationErrorItem>,
    pub(crate) server_errors: Vec<ServerErrorItem>,
    pub(crate) consumers: Vec<ConsumerItem>,
    pub(crate) overflow: Overflow,
}

/// What did not fit into a window, reported once per window.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overflow {
    pub(crate) requests: RequestOverflow,
    pub(crate) validation_errors: u64,
    pub(crate) server_errors: u64,
    pub(crate) consumers: u64,
}

impl Overflow {
    pub(crate) fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// All counters of the client.
#[derive(Debug)]
pub(crate) struct Metrics {
    requests: RequestCounter,
    validation_errors: KeyedCounter<ValidationKey, ()>,
    server_errors: KeyedCounter<ServerErrorKey, String>,
    consumers: ConsumerRegistry,
}

impl Metrics {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            requests: RequestCounter::new(limits.request_keys),
            validation_errors: KeyedCounter::new(
                limits.validation_error_keys,
                MAX_VALIDATION_ERROR_BYTES,
            ),
            server_errors: KeyedCounter::new(limits.server_error_keys, MAX_SERVER_ERROR_BYTES),
            consumers: ConsumerRegistry::new(limits.consumers),
        }
    }

    #[inline]
    pub(crate) fn record_request(&self, record: &RequestRecord<'_>) {
        self.requests.record(record);
        if let Some(consumer) = record.consumer {
            if consumer.get_name().is_some() || consumer.get_group().is_some() {
                self.consumers.observe(consumer);
            }
        }
    }

    pub(crate) fn record_validation_error(
        &self,
        method: &str,
        route: &str,
        consumer: Option<&Consumer>,
        error: &ValidationError,
    ) {
        // Every string is bounded: messages, types and locations can carry client input.
        let loc: Vec<String> = error
            .loc
            .iter()
            .take(MAX_LOC_SEGMENTS)
            .map(|s| truncate_chars(s, MAX_LOC_SEGMENT_CHARS).to_owned())
            .collect();
        let msg = truncate_msg(&error.msg);
        let error_type = truncate_chars(error.error_type.trim(), MAX_TYPE_CHARS).to_owned();
        let origin = origin(method, route, consumer);
        let bytes = origin.bytes()
            + loc.iter().map(String::len).sum::<usize>()
            + msg.len()
            + error_type.len();
        self.validation_errors
            .add((origin, loc, msg, error_type), bytes, || ());
    }

    pub(crate) fn record_server_error(
        &self,
        method: &str,
        route: &str,
        consumer: Option<&Consumer>,
        error: &ServerError,
    ) {
        let full = error.traceback();
        // Grouped by a fingerprint of the traceback without its addresses; the text itself is
        // cut and copied only for a new group.
        let fingerprint = traceback_fingerprint(full);
        let origin = origin(method, route, consumer);
        let error_type = truncate_chars(&error.error_type, MAX_SERVER_ERROR_TYPE_CHARS).to_owned();
        let msg = truncate_msg(&error.msg);
        let bytes =
            origin.bytes() + error_type.len() + msg.len() + full.len().min(MAX_TRACEBACK_CHARS * 4);
        self.server_errors
            .add((origin, error_type, msg, fingerprint), bytes, || {
                truncate_traceback(full)
            });
    }

    /// Swaps the current window out.
    pub(crate) fn drain(&self) -> Window {
        let (requests, request_overflow) = self.requests.drain();
        let (validation, validation_overflow) = self.validation_errors.drain();
        let mut validation_errors: Vec<_> = validation
            .into_iter()
            .map(|((o, loc, msg, error_type), (), n)| ValidationErrorItem {
                consumer: o.consumer,
                method: o.method,
                path: o.path,
                loc,
                msg,
                error_type,
                error_count: n,
            })
            .collect();
        validation_errors.sort();
        let (server, server_overflow) = self.server_errors.drain();
        let mut server_errors: Vec<_> = server
            .into_iter()
            .map(|((o, error_type, msg, _), traceback, n)| ServerErrorItem {
                consumer: o.consumer,
                method: o.method,
                path: o.path,
                error_type,
                msg,
                traceback,
                sentry_event_id: None,
                error_count: n,
            })
            .collect();
        server_errors.sort();
        let (consumers, consumer_overflow) = self.consumers.drain_updated();
        Window {
            requests,
            validation_errors,
            server_errors,
            consumers,
            overflow: Overflow {
                requests: request_overflow,
                validation_errors: validation_overflow,
                server_errors: server_overflow,
                consumers: consumer_overflow,
            },
        }
    }
}

/// Longest server-error type, in characters (protocol-v1.md §4.6).
const MAX_SERVER_ERROR_TYPE_CHARS: usize = 256;

fn origin(method: &str, route: &str, consumer: Option<&Consumer>) -> ErrorOrigin {
    ErrorOrigin {
        consumer: consumer
            .filter(|c| !c.is_anonymous())
            .map(|c| c.get_identifier().into()),
        method: method.into(),
        path: route.into(),
    }
}

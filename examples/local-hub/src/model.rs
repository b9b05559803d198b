//! What the hub understands, whatever the wire protocol: each protocol's receiver
//! ([`crate::v2`] for hub v2, [`crate::v1`] for OTLP 1.x) converts its payloads into these
//! values and hands them to [`State`](crate::state::State). Nothing here knows about field
//! names of a protocol.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// A response-time range and how many requests fell into it. Hub v2 sends 10 ms bins
/// (`[0, 10)`, `[10, 20)`, ...); an exponential histogram maps onto narrower ranges.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Bucket {
    pub(crate) lower_ms: f64,
    pub(crate) upper_ms: f64,
    pub(crate) count: u64,
}

/// What an app says about itself when it starts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Startup {
    pub(crate) instance: Option<String>,
    /// Such as `rust:actix`.
    pub(crate) client: Option<String>,
    pub(crate) versions: BTreeMap<String, String>,
    /// The routes the app serves, known before any traffic.
    pub(crate) endpoints: Vec<(String, String)>,
}

/// Requests sharing method, route, status and consumer, counted over some interval.
#[derive(Debug, Clone)]
pub(crate) struct RequestCounts {
    pub(crate) method: String,
    pub(crate) route: String,
    pub(crate) status: u16,
    pub(crate) consumer: Option<String>,
    pub(crate) count: u64,
    pub(crate) request_size_sum: u64,
    pub(crate) response_size_sum: u64,
    pub(crate) response_times: Vec<Bucket>,
}

/// A request the app rejected as invalid, counted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ValidationError {
    pub(crate) consumer: Option<String>,
    pub(crate) method: String,
    pub(crate) route: String,
    /// Where in the request, e.g. `["body", "name"]`.
    pub(crate) location: Vec<String>,
    pub(crate) message: String,
    pub(crate) kind: String,
}

/// An error or panic that ended a request with a server error.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ServerError {
    pub(crate) consumer: Option<String>,
    pub(crate) method: String,
    pub(crate) route: String,
    pub(crate) kind: String,
    pub(crate) message: String,
    pub(crate) traceback: String,
}

/// A consumer's display data.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct ConsumerInfo {
    pub(crate) identifier: String,
    pub(crate) name: Option<String>,
    pub(crate) group: Option<String>,
}

/// The app process's resource use.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Resources {
    pub(crate) cpu_percent: f64,
    pub(crate) memory_bytes: u64,
}

/// One batch of metrics (a hub v2 sync, an OTLP metrics export).
#[derive(Debug, Clone, Default)]
pub(crate) struct Metrics {
    /// When the data was collected, Unix seconds.
    pub(crate) at: f64,
    pub(crate) instance: Option<String>,
    pub(crate) requests: Vec<RequestCounts>,
    pub(crate) validation_errors: Vec<(ValidationError, u64)>,
    pub(crate) server_errors: Vec<(ServerError, u64)>,
    pub(crate) consumers: Vec<ConsumerInfo>,
    pub(crate) resources: Option<Resources>,
}

/// A request or response body, decoded for reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Body {
    /// UTF-8 text (JSON pretty-printed), or a note saying the bytes are binary.
    pub(crate) text: String,
    /// Whether `text` describes binary bytes rather than showing them.
    pub(crate) binary: bool,
    /// Whether `text` was cut short.
    pub(crate) truncated: bool,
    /// Bytes received (after any capture limit of the SDK).
    pub(crate) bytes: usize,
}

/// The request or the response half of a request log.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Message {
    pub(crate) headers: Vec<(String, String)>,
    /// Size in bytes, when known.
    pub(crate) size: Option<u64>,
    pub(crate) body: Option<Body>,
}

/// The error a request ended with.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Exception {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) message: String,
    pub(crate) traceback: Option<String>,
}

/// An application log record emitted while handling a request.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LogRecord {
    /// Unix seconds.
    pub(crate) time: Option<f64>,
    pub(crate) level: String,
    pub(crate) logger: Option<String>,
    pub(crate) message: String,
    /// `file:line`, when known.
    pub(crate) location: Option<String>,
}

/// A span of the request's trace.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Span {
    pub(crate) id: String,
    pub(crate) parent_id: Option<String>,
    pub(crate) name: String,
    pub(crate) kind: Option<String>,
    /// Unix seconds.
    pub(crate) start: f64,
    /// Unix seconds.
    pub(crate) end: f64,
    pub(crate) status: Option<String>,
    /// Attribute values as text.
    pub(crate) attributes: Vec<(String, String)>,
}

/// One logged request.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RequestLog {
    /// Unique per request.
    pub(crate) id: String,
    /// When the request started, Unix seconds.
    pub(crate) time: f64,
    pub(crate) method: String,
    /// The URL as logged (after masking).
    pub(crate) url: String,
    /// The URL's path and query.
    pub(crate) path: String,
    /// The route template, when a route matched.
    pub(crate) route: Option<String>,
    pub(crate) status: u16,
    pub(crate) duration_ms: f64,
    pub(crate) consumer: Option<String>,
    pub(crate) request: Message,
    pub(crate) response: Message,
    pub(crate) exception: Option<Exception>,
    pub(crate) logs: Vec<LogRecord>,
    pub(crate) spans: Vec<Span>,
    pub(crate) trace_id: Option<String>,
    /// The record as the SDK sent it; only `/api/summary` shows it.
    #[serde(skip)]
    pub(crate) original: Value,
}

/// A span or log record that belongs to a request log but may arrive apart from it (OTLP sends
/// spans and logs in separate exports): the state attaches it to its request log, or keeps it
/// until that arrives.
#[derive(Debug, Clone)]
pub(crate) struct Attachment {
    pub(crate) trace_id: String,
    /// The id of the request log it belongs to, when the item names it.
    pub(crate) request_id: Option<String>,
    /// A span of the request it is near: a span's parent, a log record's span.
    pub(crate) near_span: Option<String>,
    pub(crate) item: Attached,
}

/// What an [`Attachment`] adds to its request log.
#[derive(Debug, Clone)]
pub(crate) enum Attached {
    Span(Span),
    Log(LogRecord),
}

/// A message as it arrived, for seeing exactly what left the app.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    /// Unix seconds.
    pub(crate) at: f64,
    /// Such as `startup`, `sync` or `traces`.
    pub(crate) kind: &'static str,
    /// `hub v2` or `OTLP 1.x`.
    pub(crate) protocol: &'static str,
    pub(crate) body: Value,
}

/// What request logging did with an app process's requests since it started, as the SDK
/// reports it with each sync or export in the `Apitally-Request-Logs` request header:
/// `logged=120, sampled-out=12, excluded=3, dropped=0`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct RequestLogTotals {
    /// Written for delivery.
    pub(crate) logged: u64,
    /// Left out by sampling.
    pub(crate) sampled_out: u64,
    /// Left out by exclusions (health checks, `exclude_paths`, ...).
    pub(crate) excluded: u64,
    /// Not logged because the SDK's buffer was full.
    pub(crate) dropped: u64,
}

/// The request header that carries [`RequestLogTotals`].
pub(crate) const REQUEST_LOGS_HEADER: &str = "apitally-request-logs";

impl RequestLogTotals {
    /// Parses the header's value: comma-separated `name=count` pairs, in any order; names it
    /// does not know are skipped, a missing name counts 0. `None` when no known name has a
    /// count.
    pub(crate) fn parse(value: &str) -> Option<Self> {
        let mut totals = Self::default();
        let mut any = false;
        for pair in value.split(',') {
            let Some((name, count)) = pair.split_once('=') else {
                continue;
            };
            let Ok(count) = count.trim().parse::<u64>() else {
                continue;
            };
            let field = match name.trim() {
                "logged" => &mut totals.logged,
                "sampled-out" => &mut totals.sampled_out,
                "excluded" => &mut totals.excluded,
                "dropped" => &mut totals.dropped,
                _ => continue,
            };
            *field = count;
            any = true;
        }
        any.then_some(totals)
    }

    /// The header of a request, parsed.
    pub(crate) fn of(req: &actix_web::HttpRequest) -> Option<Self> {
        Self::parse(req.headers().get(REQUEST_LOGS_HEADER)?.to_str().ok()?)
    }

    /// Each count the larger of the two: a process's totals only grow, so an older post that
    /// arrives late (a retry) lowers nothing.
    pub(crate) fn merge(&mut self, other: Self) {
        self.logged = self.logged.max(other.logged);
        self.sampled_out = self.sampled_out.max(other.sampled_out);
        self.excluded = self.excluded.max(other.excluded);
        self.dropped = self.dropped.max(other.dropped);
    }

    /// The sum over processes.
    pub(crate) fn add(&mut self, other: &Self) {
        self.logged += other.logged;
        self.sampled_out += other.sampled_out;
        self.excluded += other.excluded;
        self.dropped += other.dropped;
    }
}

#[cfg(test)]
mod tests {
    use super::RequestLogTotals;

    #[test]
    fn request_log_totals_header() {
        let t = |logged, sampled_out, excluded, dropped| RequestLogTotals {
            logged,
            sampled_out,
            excluded,
            dropped,
        };
        assert_eq!(
            RequestLogTotals::parse("logged=120, sampled-out=12, excluded=3, dropped=0"),
            Some(t(120, 12, 3, 0))
        );
        // Any order, unknown names and spacing tolerated, missing names 0.
        assert_eq!(
            RequestLogTotals::parse("dropped=2,future=9 ,  sampled-out = 5"),
            Some(t(0, 5, 0, 2))
        );
        for nothing in ["", "logged", "logged=-1", "logged=x, excluded=", "other=3"] {
            assert_eq!(RequestLogTotals::parse(nothing), None, "{nothing:?}");
        }
        let mut merged = t(10, 5, 1, 0);
        merged.merge(t(8, 6, 1, 0));
        assert_eq!(merged, t(10, 6, 1, 0));
    }
}

//! One logged request, as the adapter captures it and as it is written (protocol.md §9.7).

use serde::Serialize;

pub use self::headers::Headers;

/// The request side of a logged request. The adapter fills it; callbacks read it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoggedRequest {
    /// Start of the request, Unix epoch seconds.
    pub timestamp: f64,
    /// Uppercase method.
    pub method: String,
    /// The route template, when a route matched.
    pub path: Option<String>,
    /// The full URL, `scheme://host[:port]/path?query`.
    pub url: String,
    /// Headers as received (names lowercase), empty unless request headers are logged.
    pub headers: Headers,
    /// Body size in bytes, if known.
    pub size: Option<u64>,
    /// The consumer's identifier.
    pub consumer: Option<String>,
    /// The captured body (or the `<body too large>` marker), if captured.
    pub body: Option<Vec<u8>>,
    /// The attributes the app set on the request (`set_request_attribute`), values of
    /// sensitive-looking keys masked. Sent in Apitally 1.x as SERVER span attributes; hub v2
    /// has no field for them.
    pub attributes: Vec<(String, crate::AttributeValue)>,
}

/// The response side of a logged request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoggedResponse {
    /// Status code.
    pub status_code: u16,
    /// Response time in seconds.
    pub response_time: f64,
    /// Headers (names lowercase), empty unless response headers are logged.
    pub headers: Headers,
    /// Body size in bytes, if known.
    pub size: Option<u64>,
    /// The captured body (or a marker), if captured.
    pub body: Option<Vec<u8>>,
}

/// A server error attached to a logged request.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LoggedException {
    /// The error's type name.
    #[serde(rename = "type")]
    pub error_type: String,
    /// The message.
    pub message: String,
    /// The stack or source chain.
    pub traceback: String,
    /// The error, when its traceback is a backtrace still to symbolise (the request logger's
    /// thread does it, before masking).
    #[serde(skip)]
    pub(crate) pending: Option<crate::ServerError>,
}

impl LoggedException {
    /// Fills in the traceback of an error captured with an unresolved backtrace.
    pub(crate) fn resolve(&mut self) {
        if let Some(error) = self.pending.take() {
            self.traceback = error.traceback().to_owned();
        }
    }
}

/// An application log record emitted while a request was handled (protocol.md §10).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CapturedLog {
    /// Unix epoch seconds.
    pub timestamp: f64,
    /// The logger: the event's target (module path).
    pub logger: String,
    /// `TRACE`, `DEBUG`, `INFO`, `WARN` or `ERROR`.
    pub level: String,
    /// The message; once the record leaves the process, with [`fields`](Self::fields)
    /// appended as ` key=value`, at most 2048 characters.
    pub message: String,
    /// The event's other fields (name, value as text), at most [`MAX_FIELDS`] of at most
    /// [`MAX_FIELD_CHARS`] characters each. Those whose name matches the masking patterns of
    /// headers and body fields are masked before `mask_log_record` sees the record; after it,
    /// they are appended to the message.
    #[serde(skip)]
    pub fields: Vec<(String, String)>,
    /// The source file, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The source line, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

impl CapturedLog {
    /// Bytes it holds, roughly.
    fn weight(&self) -> usize {
        96 + self.message.len()
            + self
                .fields
                .iter()
                .map(|(k, v)| 16 + k.len() + v.len())
                .sum::<usize>()
    }
}

impl CapturedSpan {
    /// Bytes it holds, roughly.
    fn weight(&self) -> usize {
        160 + self.name.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| {
                    48 + k.len()
                        + match v {
                            serde_json::Value::String(s) => s.len(),
                            _ => 8,
                        }
                })
                .sum::<usize>()
    }
}

/// A span of the request's trace (protocol.md §11).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CapturedSpan {
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// The parent's id; `None` for the request's root span.
    pub parent_span_id: Option<String>,
    /// The name (the root span's is `METHOD /route`).
    pub name: String,
    /// `INTERNAL`, `SERVER`, `CLIENT`, `PRODUCER` or `CONSUMER`.
    pub kind: String,
    /// Unix epoch nanoseconds.
    pub start_time: u64,
    /// Unix epoch nanoseconds.
    pub end_time: u64,
    /// `OK` or `ERROR` when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Attributes (the span's fields): at most [`MAX_FIELDS`], strings of at most
    /// [`MAX_FIELD_CHARS`] characters. Those whose name matches the masking patterns of headers
    /// and body fields are masked before the span leaves the process.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// The value that replaces a masked value (hub v2; 1.x writes `[REDACTED]`).
pub(crate) const MASKED: &str = "******";

/// Longest captured log message, in characters.
pub const MAX_LOG_MESSAGE_CHARS: usize = 2048;
/// Most fields kept per captured log record or span (OpenTelemetry's default attribute limit).
pub const MAX_FIELDS: usize = 128;
/// Longest text of a captured field or span attribute, in characters.
pub const MAX_FIELD_CHARS: usize = 2048;
/// Most log records (and spans) kept per request.
pub const MAX_CAPTURED_PER_REQUEST: usize = 1000;

/// Cuts a log message to 2048 characters: the first 2033 and `... (truncated)`.
pub fn truncate_log_message(message: &mut String) {
    const SUFFIX: &str = "... (truncated)";
    if message.chars().count() > MAX_LOG_MESSAGE_CHARS {
        let keep = crate::util::truncate_chars(message, MAX_LOG_MESSAGE_CHARS - SUFFIX.len()).len();
        message.truncate(keep);
        message.push_str(SUFFIX);
    }
}

/// A request to log, built by the adapter on the request path.
#[derive(Debug, Clone, Default)]
pub struct RequestLogItem {
    /// The request.
    pub request: LoggedRequest,
    /// The response.
    pub response: LoggedResponse,
    /// The server error, if any.
    pub exception: Option<LoggedException>,
    /// The request's `Content-Type`, to decide how to mask its body.
    pub request_content_type: Option<String>,
    /// The response's `Content-Type`.
    pub response_content_type: Option<String>,
    /// The request's `Content-Encoding`, when its body is logged: a `gzip` or `deflate` body
    /// is decoded before it is masked.
    pub request_content_encoding: Option<String>,
    /// The response's `Content-Encoding`, when its body is logged.
    pub response_content_encoding: Option<String>,
    /// The request's `User-Agent`, for the user-agent exclusions.
    pub user_agent: Option<String>,
    /// Application log records captured while the request was handled.
    pub logs: Vec<CapturedLog>,
    /// Spans of the request's trace.
    pub spans: Vec<CapturedSpan>,
    /// The trace id, 32 lowercase hex digits, when traces are captured.
    pub trace_id: Option<String>,
    /// The request's W3C trace context (Apitally 1.x exports the request as a span of it).
    pub trace_context: Option<TraceIds>,
    /// The client's address (the peer, or what a trusted proxy says), for Apitally 1.x.
    pub client_address: Option<std::net::IpAddr>,
    /// Time from the request to the response's last byte, for Apitally 1.x.
    pub duration: Option<std::time::Duration>,
}

/// A request's place in a W3C trace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceIds {
    /// The trace id (the incoming `traceparent`'s, else random).
    pub trace_id: u128,
    /// The request's own span id.
    pub span_id: u64,
    /// The caller's span id, from an incoming `traceparent`.
    pub parent_span_id: Option<u64>,
}

/// Buffers larger than these are released rather than kept in a recycled item.
const MAX_KEPT_URL_BYTES: usize = 2048;
const MAX_KEPT_HEADER_BYTES: usize = 8192;
const MAX_KEPT_HEADERS: usize = 128;

impl RequestLogItem {
    /// Empties the item for the next request: every field is empty or `None` (the item equals
    /// a default one), and the buffers that every logged request fills (method, URL, headers)
    /// keep their memory unless a large request made them grow. Everything else (path,
    /// consumer, bodies, content types, exception, logs, spans) is freed: those are built per
    /// request anyway.
    pub(crate) fn clear_for_reuse(&mut self) {
        // Destructured in full, so that a new field cannot be forgotten (and leak into the
        // next request's line).
        let RequestLogItem {
            request,
            response,
            exception,
            request_content_type,
            response_content_type,
            request_content_encoding,
            response_content_encoding,
            user_agent,
            logs,
            spans,
            trace_id,
            trace_context,
            client_address,
            duration,
        } = self;
        let LoggedRequest {
            timestamp,
            method,
            path,
            url,
            headers,
            size,
            consumer,
            body,
            attributes,
        } = request;
        *timestamp = 0.0;
        method.clear();
        *path = None;
        if url.capacity() > MAX_KEPT_URL_BYTES {
            *url = String::new();
        } else {
            url.clear();
        }
        headers.clear_for_reuse();
        *size = None;
        *consumer = None;
        *body = None;
        attributes.clear();
        let LoggedResponse {
            status_code,
            response_time,
            headers,
            size,
            body,
        } = response;
        *status_code = 0;
        *response_time = 0.0;
        headers.clear_for_reuse();
        *size = None;
        *body = None;
        *exception = None;
        *request_content_type = None;
        *response_content_type = None;
        *request_content_encoding = None;
        *response_content_encoding = None;
        *user_agent = None;
        // Captured logs and spans arrive as whole vectors (the trace's), so theirs are freed.
        *logs = Vec::new();
        *spans = Vec::new();
        *trace_id = None;
        *trace_context = None;
        *client_address = None;
        *duration = None;
    }

    /// The memory an emptied item holds (its box and kept buffers), for the bound on spares.
    pub(crate) fn spare_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.reused_bytes()
    }

    /// The capacity of the buffers [`clear_for_reuse`](Self::clear_for_reuse) keeps.
    fn reused_bytes(&self) -> usize {
        self.request.method.capacity()
            + self.request.url.capacity()
            + self.request.headers.capacity_bytes()
            + self.response.headers.capacity_bytes()
    }

    /// Roughly the memory the item holds, for the buffer bound.
    pub(crate) fn weight(&self) -> usize {
        // The reused buffers count with their capacity: a recycled item may hold more than
        // its request filled.
        256 + self.reused_bytes()
            + self.request.body.as_ref().map_or(0, Vec::len)
            + self.response.body.as_ref().map_or(0, Vec::len)
            + self
                .exception
                .as_ref()
                .map_or(0, |e| e.message.len() + e.traceback.len())
            + self.logs.iter().map(CapturedLog::weight).sum::<usize>()
            + self.spans.iter().map(CapturedSpan::weight).sum::<usize>()
    }
}

mod headers;
mod line;

pub(crate) use self::line::to_line;
#[cfg(test)]
use self::line::{
    random_u128, write_base64, write_f64, write_log, write_span, write_str, write_u64,
};

#[cfg(test)]
mod tests;

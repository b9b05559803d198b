//! One logged request, as the adapter captures it and as it is written (protocol.md §9.7).

use base64::Engine;
use serde::{Serialize, Serializer};

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
    pub headers: Vec<(String, String)>,
    /// Body size in bytes, if known.
    pub size: Option<u64>,
    /// The consumer's identifier.
    pub consumer: Option<String>,
    /// The captured body (or the `<body too large>` marker), if captured.
    pub body: Option<Vec<u8>>,
}

/// The response side of a logged request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoggedResponse {
    /// Status code.
    pub status_code: u16,
    /// Response time in seconds.
    pub response_time: f64,
    /// Headers (names lowercase), empty unless response headers are logged.
    pub headers: Vec<(String, String)>,
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
    /// The message, with the other fields appended as `key=value`; at most 2048 characters.
    pub message: String,
    /// The source file, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The source line, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
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
    /// Attributes (the span's fields).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// Longest captured log message, in characters.
pub const MAX_LOG_MESSAGE_CHARS: usize = 2048;
/// Most log records (and spans) kept per request.
pub const MAX_CAPTURED_PER_REQUEST: usize = 1000;

/// Cuts a log message to 2048 characters: the first 2033 and `... (truncated)`.
pub fn truncate_log_message(message: &mut String) {
    const SUFFIX: &str = "... (truncated)";
    if message.chars().count() > MAX_LOG_MESSAGE_CHARS {
        let keep =
            crate::consumer::truncate_chars(message, MAX_LOG_MESSAGE_CHARS - SUFFIX.len()).len();
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
    /// The request's `User-Agent`, for the user-agent exclusions.
    pub user_agent: Option<String>,
    /// Application log records captured while the request was handled.
    pub logs: Vec<CapturedLog>,
    /// Spans of the request's trace.
    pub spans: Vec<CapturedSpan>,
    /// The trace id, 32 lowercase hex digits, when traces are captured.
    pub trace_id: Option<String>,
}

impl RequestLogItem {
    /// Roughly the memory the item holds, for the buffer bound.
    pub(crate) fn weight(&self) -> usize {
        let headers =
            |h: &[(String, String)]| h.iter().map(|(n, v)| n.len() + v.len() + 48).sum::<usize>();
        256 + self.request.url.len()
            + headers(&self.request.headers)
            + headers(&self.response.headers)
            + self.request.body.as_ref().map_or(0, Vec::len)
            + self.response.body.as_ref().map_or(0, Vec::len)
            + self
                .exception
                .as_ref()
                .map_or(0, |e| e.message.len() + e.traceback.len())
            + self
                .logs
                .iter()
                .map(|l| l.message.len() + 96)
                .sum::<usize>()
            + self.spans.len() * 160
    }
}

fn base64<S: Serializer>(body: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match body {
        Some(bytes) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes)),
        None => s.serialize_none(),
    }
}

fn empty_str(v: &Option<String>) -> bool {
    v.as_deref().is_none_or(str::is_empty)
}

fn empty_body(v: &Option<Vec<u8>>) -> bool {
    v.as_deref().is_none_or(<[u8]>::is_empty)
}

#[derive(Serialize)]
struct RequestLine<'a> {
    timestamp: f64,
    method: &'a str,
    #[serde(skip_serializing_if = "empty_str")]
    path: &'a Option<String>,
    url: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    headers: &'a [(String, String)],
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "empty_str")]
    consumer: &'a Option<String>,
    #[serde(skip_serializing_if = "empty_body", serialize_with = "base64")]
    body: &'a Option<Vec<u8>>,
}

#[derive(Serialize)]
struct ResponseLine<'a> {
    status_code: u16,
    response_time: f64,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    headers: &'a [(String, String)],
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "empty_body", serialize_with = "base64")]
    body: &'a Option<Vec<u8>>,
}

#[derive(Serialize)]
struct Line<'a> {
    uuid: uuid::Uuid,
    request: RequestLine<'a>,
    response: ResponseLine<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exception: Option<&'a LoggedException>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    logs: &'a [CapturedLog],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    spans: &'a [CapturedSpan],
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<&'a str>,
}

/// Serialises one item as a compact JSON line with a fresh UUID, applying the empty-value rule
/// (null and empty values are left out of `request` and `response`; zero sizes are kept).
pub(crate) fn to_line(item: &RequestLogItem, out: &mut Vec<u8>) -> serde_json::Result<()> {
    let r = &item.request;
    let s = &item.response;
    let line = Line {
        uuid: uuid::Uuid::new_v4(),
        request: RequestLine {
            timestamp: r.timestamp,
            method: &r.method,
            path: &r.path,
            url: &r.url,
            headers: &r.headers,
            size: r.size,
            consumer: &r.consumer,
            body: &r.body,
        },
        response: ResponseLine {
            status_code: s.status_code,
            response_time: s.response_time,
            headers: &s.headers,
            size: s.size,
            body: &s.body,
        },
        exception: item.exception.as_ref(),
        logs: &item.logs,
        spans: &item.spans,
        trace_id: item.trace_id.as_deref(),
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.push(b'\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_messages_are_cut_at_2048_chars() {
        let mut short = "ok".to_owned();
        truncate_log_message(&mut short);
        assert_eq!(short, "ok");
        let mut long = "ü".repeat(3000);
        truncate_log_message(&mut long);
        assert_eq!(long.chars().count(), 2048);
        assert!(long.ends_with("ü... (truncated)"));
    }
}

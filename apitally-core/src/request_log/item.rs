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
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.push(b'\n');
    Ok(())
}

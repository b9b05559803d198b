//! For the start of a logged request, see [`LogStart`]: what request logging takes from the
//! request when it starts, filled in as it goes, and turned into the item the request logger
//! gets ([`build_item`]).

use std::{
    net::IpAddr,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use super::sampling::{Decision, TraceContext};
use crate::{
    request_log::{
        is_supported_content_type, LoggedException, RequestLogItem, TraceIds, BODY_TOO_LARGE,
        MAX_BODY_SIZE,
    },
    RequestLoggingConfig, ServerError,
};

/// A body captured up to [`MAX_BODY_SIZE`]; past it, the buffer is freed and only the fact is
/// kept.
#[derive(Debug, Default)]
pub struct BodyCapture {
    buf: Vec<u8>,
    too_large: bool,
}

impl BodyCapture {
    /// A body over the limit, not read.
    pub fn too_large() -> Self {
        Self {
            buf: Vec::new(),
            too_large: true,
        }
    }

    /// Appends a chunk of the body as it streams.
    #[inline]
    pub fn push(&mut self, chunk: &[u8]) {
        if self.too_large {
            return;
        }
        if self.buf.len() + chunk.len() > MAX_BODY_SIZE {
            self.buf = Vec::new();
            self.too_large = true;
        } else {
            self.buf.extend_from_slice(chunk);
        }
    }

    fn into_body(self) -> Vec<u8> {
        if self.too_large {
            BODY_TOO_LARGE.to_vec()
        } else {
            self.buf
        }
    }
}

/// How the request body is logged.
pub enum RequestBody {
    /// Not logged.
    None,
    /// Captured as the handler reads it (shared with the adapter's body wrapper, which may
    /// run on another thread).
    Captured(Arc<Mutex<BodyCapture>>),
    /// `Content-Length` says it is over the limit: not read, logged as the marker.
    TooLarge,
}

#[cfg(feature = "tracing")]
pub(crate) use super::capture::RequestTrace as Trace;

/// Without the `tracing` feature there is nothing to capture.
#[cfg(not(feature = "tracing"))]
pub(crate) enum Trace {}

#[cfg(not(feature = "tracing"))]
impl Trace {
    pub(crate) fn start(
        _logs: bool,
        _traces: bool,
        _trace_id: u128,
        _span_id: u64,
    ) -> Option<Self> {
        None
    }

    pub(crate) fn finish(
        self,
        _root_name: String,
    ) -> (
        Vec<crate::CapturedLog>,
        Vec<crate::request_log::CapturedSpan>,
        Option<String>,
    ) {
        match self {}
    }
}

/// What [`Pipeline::start_log`](super::Pipeline::start_log) decides on, read from the
/// framework's request.
pub struct LogRequest<'a> {
    /// The method, as sent.
    pub method: &'a str,
    /// The path, as sent.
    pub path: &'a str,
    /// The request's headers.
    pub headers: &'a dyn super::sampling::RequestHeaders,
    /// `Content-Length`, when sent and a number.
    pub content_length: Option<u64>,
    /// Whether the request has a body the handler may read.
    pub has_body: bool,
    /// The consumer an outer middleware set, for `sample_on_request`.
    pub consumer: &'a dyn Fn() -> Option<crate::Consumer>,
}

/// A log that started: the log, and the capture of the request body the adapter's body
/// wrapper feeds, when the body is logged.
pub struct StartedLog {
    /// The log.
    pub log: Box<LogStart>,
    /// The request body's capture.
    pub capture: Option<Arc<Mutex<BodyCapture>>>,
}

thread_local! {
    /// Emptied log items with their buffers, taken from the logger a few at a time (one lock
    /// per 32 logged requests on a thread, rather than one per request).
    #[allow(clippy::vec_box, reason = "spares go back to the logger in their own allocation")]
    static SPARES: std::cell::RefCell<Vec<Box<RequestLogItem>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// An empty log item to fill: a spare with its buffers when the logger has one.
pub(crate) fn spare_item(logger: &crate::request_log::RequestLogger) -> Box<RequestLogItem> {
    const SPARES_PER_TAKE: usize = 32;
    SPARES
        .try_with(|spares| {
            let mut spares = spares.borrow_mut();
            if spares.is_empty() {
                logger.take_spares(&mut spares, SPARES_PER_TAKE);
            }
            spares.pop()
        })
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// What the pipeline reads of a request when its log starts; the adapter fills it from its
/// framework's request (having copied the headers into the item).
#[derive(Debug, Clone, Copy)]
pub struct LogFacts<'a> {
    /// Whether the request came over HTTPS (the listener's TLS, or proxy headers that say so).
    pub https: bool,
    /// The host (`Host`, or a proxy's `X-Forwarded-Host` or `Forwarded: host=`), as sent.
    pub host: &'a str,
    /// The request target's path and query, as sent.
    pub path_and_query: &'a str,
    /// The client's address (1.x `client.address`).
    pub client: Option<IpAddr>,
}

/// What the pipeline read of a request itself when its log started (each header looked up
/// once, and the body's only when the body is logged), and what it decided for the body.
pub(crate) struct OwnFacts<'a> {
    pub(crate) request_body: RequestBody,
    pub(crate) user_agent: Option<&'a str>,
    /// `Content-Type` and `Content-Encoding`, for a body that is captured.
    pub(crate) content_type: Option<&'a str>,
    pub(crate) content_encoding: Option<&'a str>,
}

/// What request logging takes from the request when it starts (so that a request whose
/// `HttpRequest` is gone, after a panic, can still be logged).
pub struct LogStart {
    pub(crate) request_body: RequestBody,
    /// The item, filled as the request goes: the request side (timestamp, URL, headers,
    /// content type, user agent) now, the response head's headers and content type at the
    /// head, the rest when the request completes. Reused from an item already written when
    /// the logger has one (its buffers are then already allocated).
    pub item: Box<RequestLogItem>,
    /// The request's root span, when logs or traces are captured.
    pub(crate) trace: Option<Trace>,
    /// The response body as the body wrapper captures it, when it is logged.
    pub response_body: Option<BodyCapture>,
    /// The request's trace context, which sampling decided on.
    pub trace_context: TraceContext,
    /// What sampling's request stage decided.
    pub decision: Decision,
    /// The response is an actix error's (`error_response()`): its text is the error's message,
    /// which may quote the client's input (`Json deserialize error: invalid type: string
    /// "..."`), so the values it quotes are left out as in validation errors.
    pub error_response: bool,
}

impl LogStart {
    /// Starts the log of a request: its root span (when logs or traces are captured), its ids,
    /// its URL (scheme and host bounded and escaped), and what the body's masking needs.
    pub(crate) fn new(
        facts: &LogFacts<'_>,
        own: OwnFacts<'_>,
        config: &RequestLoggingConfig,
        mut item: Box<RequestLogItem>,
        trace_context: TraceContext,
        decision: Decision,
        otlp: bool,
    ) -> Self {
        let request_body = own.request_body;
        // The request's own span id: the root of its captured spans, and in Apitally 1.x the
        // SERVER span's.
        let span_id = fastrand::u64(1..);
        let trace = if config.get_capture_logs() || config.get_capture_traces() {
            Trace::start(
                config.get_capture_logs(),
                config.get_capture_traces(),
                trace_context.trace_id,
                span_id,
            )
        } else {
            None
        };
        item.trace_context = Some(TraceIds {
            trace_id: trace_context.trace_id,
            span_id,
            parent_span_id: trace_context.parent_span_id,
        });
        if otlp {
            item.client_address = facts.client;
        }
        {
            // Scheme and host may come from the client (`Host`, proxy headers): the scheme is
            // one of two words, and the host cannot reach into the path or the query.
            let scheme = if facts.https { "https" } else { "http" };
            let url = &mut item.request.url;
            url.clear();
            url.reserve(scheme.len() + 3 + facts.host.len() + facts.path_and_query.len());
            url.push_str(scheme);
            url.push_str("://");
            push_host(url, facts.host);
            url.push_str(facts.path_and_query);
        }
        // The content type and coding only matter for a body that is logged.
        (item.request_content_type, item.request_content_encoding) = match request_body {
            RequestBody::None => (None, None),
            _ => (
                own.content_type.map(str::to_owned),
                own.content_encoding.map(str::to_owned),
            ),
        };
        item.user_agent = own
            .user_agent
            .map(|ua| crate::util::truncate_chars(ua, MAX_USER_AGENT_CHARS).to_owned());
        item.request.timestamp = unix_now();
        Self {
            request_body,
            item,
            trace,
            response_body: None,
            trace_context,
            decision,
            error_response: false,
        }
    }

    /// Enters the request's root span while its handler runs, when logs or traces are
    /// captured, so that its events and spans are attributed to it.
    #[cfg(feature = "tracing")]
    pub fn enter(&self) -> Option<tracing::span::Entered<'_>> {
        self.trace.as_ref().map(|t| t.span().enter())
    }
}

/// The longest user agent logged, in characters.
const MAX_USER_AGENT_CHARS: usize = 1_024;

/// The longest host written into a logged URL.
const MAX_HOST_LEN: usize = 255;

/// Appends `host` to a URL: bytes that cannot be part of a host and port (`?`, `#`, `/`, `@`,
/// `%`, spaces, anything not ASCII, ...) are percent-encoded, so that a crafted `Host` or
/// `X-Forwarded-Host` cannot turn the query into a fragment or into part of the host; at most
/// 255 bytes of it are kept.
pub fn push_host(url: &mut String, host: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let host = &host.as_bytes()[..host.len().min(MAX_HOST_LEN)];
    if host.iter().all(|&b| {
        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_' | b'~')
    }) {
        // The common case: nothing to encode (and `host` is ASCII, so the cut is a boundary).
        url.push_str(std::str::from_utf8(host).unwrap_or_default());
        return;
    }
    for &b in host {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_' | b'~')
        {
            url.push(char::from(b));
        } else {
            url.push('%');
            url.push(char::from(HEX[usize::from(b >> 4)]));
            url.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

pub(crate) fn unix_now() -> f64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    ms as f64 / 1000.0
}

/// The response body capture for a response with this content type and size (`None`: not
/// known up front): `None` when it is not logged.
pub fn response_capture(
    log_body: bool,
    content_type: Option<&str>,
    size: Option<u64>,
) -> Option<BodyCapture> {
    if !log_body || !content_type.is_some_and(is_supported_content_type) {
        return None;
    }
    match size {
        Some(n) if n > MAX_BODY_SIZE as u64 => Some(BodyCapture::too_large()),
        _ => Some(BodyCapture::default()),
    }
}

/// The longest method written into a log line.
const MAX_METHOD_LEN: usize = 32;

/// Everything else the log item needs, known when the request completes.
pub(crate) struct LogEnd<'a> {
    pub(crate) method: &'a str,
    pub(crate) route: Option<&'a str>,
    pub(crate) status: u16,
    pub(crate) elapsed: Duration,
    /// To the last byte sent, when Apitally 1.x measures it.
    pub(crate) duration: Option<Duration>,
    pub(crate) consumer: Option<&'a str>,
    pub(crate) request_size: Option<u64>,
    pub(crate) response_size: Option<u64>,
    pub(crate) server_error: Option<&'a ServerError>,
    pub(crate) attributes: Option<&'a super::attributes::RequestAttributes>,
}

pub(crate) fn build_item(start: LogStart, end: LogEnd<'_>) -> Box<RequestLogItem> {
    let LogStart {
        request_body,
        mut item,
        trace,
        response_body,
        error_response,
        trace_context: _,
        decision: _,
    } = start;
    // Methods are client-chosen tokens: a long one is cut (they are ASCII), everywhere it is
    // written (the root span's name and the logged request).
    let method = end.method.get(..MAX_METHOD_LEN).unwrap_or(end.method);
    if let Some(attributes) = end.attributes {
        item.request
            .attributes
            .extend_from_slice(attributes.as_slice());
    }
    if let Some(trace) = trace {
        // `METHOD /route`, or the method alone for a request that matched no route (a raw
        // path would give scanners unbounded span names).
        let root_name = match end.route {
            Some(route) => {
                let mut name = String::with_capacity(method.len() + 1 + route.len());
                name.push_str(method);
                name.push(' ');
                name.push_str(route);
                name
            }
            None => method.to_owned(),
        };
        let (logs, spans, trace_id) = trace.finish(root_name);
        item.logs = logs;
        item.spans = spans;
        // With the `opentelemetry` feature the trace id is the app's OTel pipeline's: Apitally
        // 1.x exports the request under it too, so both agree.
        if let (Some(ids), Some(id)) = (
            item.trace_context.as_mut(),
            trace_id
                .as_deref()
                .and_then(|hex| u128::from_str_radix(hex, 16).ok()),
        ) {
            ids.trace_id = id;
        }
        item.trace_id = trace_id;
    }
    let request = &mut item.request;
    request.method.clear();
    request.method.push_str(method);
    request.path = end.route.map(str::to_owned);
    request.size = end.request_size;
    request.consumer = end.consumer.map(str::to_owned);
    request.body = match request_body {
        RequestBody::None => None,
        RequestBody::TooLarge => Some(BODY_TOO_LARGE.to_vec()),
        RequestBody::Captured(capture) => Some(
            std::mem::take(&mut *capture.lock().unwrap_or_else(|e| e.into_inner())).into_body(),
        ),
    };
    let response = &mut item.response;
    response.status_code = end.status;
    response.response_time = end.elapsed.as_secs_f64();
    item.duration = end.duration;
    response.size = end.response_size;
    response.body = response_body.map(BodyCapture::into_body);
    let text = item.response_content_type.as_deref().is_some_and(|ct| {
        ct.trim_start()
            .get(..5)
            .is_some_and(|t| t.eq_ignore_ascii_case("text/"))
    });
    if error_response && text {
        if let Some(body) = response
            .body
            .as_mut()
            .filter(|b| b.as_slice() != BODY_TOO_LARGE)
        {
            *body = super::scrub::without_values(&String::from_utf8_lossy(body)).into_bytes();
        }
    }
    item.exception = end.server_error.map(|e| {
        // A backtrace is symbolised by the request logger's thread, not here.
        let pending = e.is_deferred();
        LoggedException {
            error_type: e.error_type().to_owned(),
            message: e.msg().to_owned(),
            traceback: if pending {
                String::new()
            } else {
                e.traceback().to_owned()
            },
            pending: pending.then(|| e.clone()),
        }
    });
    item
}

#[cfg(test)]
mod tests;

//! Request logging in the middleware: what is captured on the request path (bounded bodies,
//! headers) and the item handed to the core's request logger.

use std::{
    cell::{Cell, RefCell},
    pin::Pin,
    rc::Rc,
    task::{Context, Poll},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use actix_web::{
    dev::Payload,
    error::PayloadError,
    http::header::{self, HeaderMap},
    web::Bytes,
};
use apitally_core::{
    adapter::{
        forwarded_https, is_supported_content_type, LoggedException, RequestLogItem,
        BODY_TOO_LARGE, MAX_BODY_SIZE,
    },
    Headers, ServerError,
};
use futures_core::Stream;
use pin_project_lite::pin_project;

use crate::sampling::{Decision, TraceContext};

/// A body captured up to [`MAX_BODY_SIZE`]; past it, the buffer is freed and only the fact is
/// kept.
#[derive(Debug, Default)]
pub(crate) struct BodyCapture {
    buf: Vec<u8>,
    too_large: bool,
}

impl BodyCapture {
    pub(crate) fn too_large() -> Self {
        Self {
            buf: Vec::new(),
            too_large: true,
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, chunk: &[u8]) {
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

pin_project! {
    /// The request payload as the handler reads it, counted (chunked bodies) and copied into a
    /// bounded capture (logged bodies) on the way.
    pub(crate) struct ObservedPayload {
        #[pin]
        pub(crate) inner: Payload,
        pub(crate) counter: Option<Rc<Cell<u64>>>,
        pub(crate) capture: Option<Rc<RefCell<BodyCapture>>>,
    }
}

impl Stream for ObservedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let item = std::task::ready!(this.inner.poll_next(cx));
        if let Some(Ok(chunk)) = &item {
            if let Some(counter) = this.counter {
                counter.set(counter.get() + chunk.len() as u64);
            }
            if let Some(capture) = this.capture {
                capture.borrow_mut().push(chunk);
            }
        }
        Poll::Ready(item)
    }
}

/// How the request body is logged.
pub(crate) enum RequestBody {
    /// Not logged.
    None,
    /// Captured as the handler reads it.
    Captured(Rc<RefCell<BodyCapture>>),
    /// `Content-Length` says it is over the limit: not read, logged as the marker.
    TooLarge,
}

#[cfg(feature = "tracing")]
pub(crate) use crate::capture::RequestTrace as Trace;

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
        Vec<apitally_core::CapturedLog>,
        Vec<apitally_core::adapter::CapturedSpan>,
        Option<String>,
    ) {
        match self {}
    }
}

/// What request logging takes from the request when it starts (so that a request whose
/// `HttpRequest` is gone, after a panic, can still be logged).
pub(crate) struct LogStart {
    pub(crate) request_body: RequestBody,
    /// The item, filled as the request goes: the request side (timestamp, URL, headers,
    /// content type, user agent) now, the response head's headers and content type at the
    /// head, the rest when the request completes. Reused from an item already written when
    /// the logger has one (its buffers are then already allocated).
    pub(crate) item: Box<RequestLogItem>,
    /// The request's root span, when logs or traces are captured.
    pub(crate) trace: Option<Trace>,
    /// The response body as the body wrapper captures it, when it is logged.
    pub(crate) response_body: Option<BodyCapture>,
    /// The request's trace context, which sampling decided on.
    pub(crate) trace_context: TraceContext,
    /// What sampling's request stage decided.
    pub(crate) decision: Decision,
    /// The response is an actix error's (`error_response()`): its text is the error's message,
    /// which may quote the client's input (`Json deserialize error: invalid type: string
    /// "..."`), so the values it quotes are left out as in validation errors.
    pub(crate) error_response: bool,
}

impl LogStart {
    pub(crate) fn new(
        req: &actix_web::dev::ServiceRequest,
        request_body: RequestBody,
        config: &apitally_core::RequestLoggingConfig,
        mut item: Box<RequestLogItem>,
        trace_context: TraceContext,
        decision: Decision,
        otlp: bool,
    ) -> Self {
        let log_headers = config.get_log_request_headers();
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
        item.trace_context = Some(apitally_core::adapter::TraceIds {
            trace_id: trace_context.trace_id,
            span_id,
            parent_span_id: trace_context.parent_span_id,
        });
        if otlp {
            item.client_address = req.peer_addr().map(|addr| addr.ip());
        }
        let headers = req.headers();
        // One pass over the headers: copied when logged, and checked for proxy headers (most
        // requests carry none, which saves a dozen lookups).
        let proxied = copy_headers(headers, log_headers, &mut item.request.headers);
        {
            let (scheme, host) = scheme_and_host(req, proxied);
            // Scheme and host may come from the client (`Host`, proxy headers): the scheme is
            // one of two words, and the host cannot reach into the path or the query.
            let scheme = if scheme.eq_ignore_ascii_case("https")
                || (proxied && forwarded_https(|name| forwarded_header(headers, name)))
            {
                "https"
            } else {
                "http"
            };
            let path_and_query = req
                .uri()
                .path_and_query()
                .map_or_else(|| req.path(), |pq| pq.as_str());
            let url = &mut item.request.url;
            url.clear();
            url.reserve(scheme.len() + 3 + host.len() + path_and_query.len());
            url.push_str(scheme);
            url.push_str("://");
            push_host(url, host);
            url.push_str(path_and_query);
        }
        // The content type and coding only matter for a body that is logged.
        (item.request_content_type, item.request_content_encoding) = match request_body {
            RequestBody::None => (None, None),
            _ => (
                header_str(headers, header::CONTENT_TYPE).map(str::to_owned),
                header_str(headers, header::CONTENT_ENCODING).map(str::to_owned),
            ),
        };
        item.user_agent = header_str(headers, header::USER_AGENT).map(str::to_owned);
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
}

/// The longest host written into a logged URL.
const MAX_HOST_LEN: usize = 255;

/// Appends `host` to a URL: bytes that cannot be part of a host and port (`?`, `#`, `/`, `@`,
/// `%`, spaces, anything not ASCII, ...) are percent-encoded, so that a crafted `Host` or
/// `X-Forwarded-Host` cannot turn the query into a fragment or into part of the host; at most
/// [`MAX_HOST_LEN`] bytes of it are kept.
pub(crate) fn push_host(url: &mut String, host: &str) {
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

pub(crate) fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Copies the headers into `out` (when `copy`), and tells whether any of [`PROXY_HEADERS`]
/// is there.
pub(crate) fn copy_headers(headers: &HeaderMap, copy: bool, out: &mut Headers) -> bool {
    out.clear();
    if copy {
        // A guess that fits most requests without growing (a reused buffer has room already).
        // (`len_keys` is O(1); `len` counts every value.)
        let guess = headers.len_keys();
        out.reserve(guess, guess * 48);
    }
    let mut proxied = false;
    for (name, value) in headers.iter() {
        let name = name.as_str();
        proxied = proxied
            || (matches!(name.as_bytes().first(), Some(b'x' | b'f'))
                && PROXY_HEADERS.iter().any(|p| p.as_str() == name));
        if copy {
            match std::str::from_utf8(value.as_bytes()) {
                Ok(value) => out.push(name, value),
                Err(_) => out.push(name, &String::from_utf8_lossy(value.as_bytes())),
            }
        }
    }
    proxied
}

/// The scheme and host of the request as actix-web's `ConnectionInfo` gives them (`Forwarded`
/// `proto`/`host`, then `X-Forwarded-Proto`/`X-Forwarded-Host`, then the `Host` header, the
/// URI, and the app's configuration), without building a `ConnectionInfo` (which allocates
/// and is stored in the request's extensions).
fn scheme_and_host(req: &actix_web::dev::ServiceRequest, proxied: bool) -> (&str, &str) {
    const X_FORWARDED_PROTO: header::HeaderName =
        header::HeaderName::from_static("x-forwarded-proto");
    const X_FORWARDED_HOST: header::HeaderName =
        header::HeaderName::from_static("x-forwarded-host");
    let headers = req.headers();
    let mut scheme = None;
    let mut host = None;
    for pair in headers
        .get_all(header::FORWARDED)
        .filter(|_| proxied)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .flat_map(|v| v.split(','))
    {
        let Some((name, value)) = pair.trim().split_once('=') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("proto") {
            scheme.get_or_insert_with(|| unquote(value));
        } else if name.eq_ignore_ascii_case("host") {
            host.get_or_insert_with(|| unquote(value));
        }
    }
    let first = |name: &header::HeaderName| {
        if !proxied {
            return None;
        }
        let value = headers.get(name)?.to_str().ok()?;
        Some(value.split(',').next()?.trim())
    };
    let config = req.app_config();
    let scheme = scheme
        .or_else(|| first(&X_FORWARDED_PROTO))
        .or_else(|| req.uri().scheme_str())
        .unwrap_or(if config.secure() { "https" } else { "http" });
    let host = host
        .or_else(|| first(&X_FORWARDED_HOST))
        .or_else(|| headers.get(header::HOST)?.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or_else(|| config.host());
    (scheme, host)
}

fn unquote(value: &str) -> &str {
    value.trim().trim_start_matches('"').trim_end_matches('"')
}

/// Looks up one of the proxy headers [`forwarded_https`] asks for by a constant name (looking
/// a header up by `&str` parses and allocates a `HeaderName` each time).
fn forwarded_header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    match PROXY_HEADERS.iter().find(|n| n.as_str() == name) {
        Some(known) => header_str(headers, known),
        None => header_str(headers, name),
    }
}

/// The headers a proxy may set that change the logged URL's scheme or host.
static PROXY_HEADERS: [header::HeaderName; 9] = [
    header::HeaderName::from_static("x-forwarded-proto"),
    header::HeaderName::from_static("x-forwarded-protocol"),
    header::HeaderName::from_static("x-forwarded-scheme"),
    header::HeaderName::from_static("x-url-scheme"),
    header::HeaderName::from_static("x-scheme"),
    header::FORWARDED,
    header::HeaderName::from_static("front-end-https"),
    header::HeaderName::from_static("x-forwarded-ssl"),
    header::HeaderName::from_static("x-forwarded-host"),
];

/// The response body capture for a response with this content type and size: `None` when it
/// is not logged.
pub(crate) fn response_capture(
    log_body: bool,
    content_type: Option<&str>,
    size: actix_web::body::BodySize,
) -> Option<BodyCapture> {
    if !log_body || !content_type.is_some_and(is_supported_content_type) {
        return None;
    }
    match size {
        actix_web::body::BodySize::Sized(n) if n > MAX_BODY_SIZE as u64 => {
            Some(BodyCapture::too_large())
        }
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
        RequestBody::Captured(capture) => Some(capture.take().into_body()),
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
            *body =
                apitally_core::adapter::without_values(&String::from_utf8_lossy(body)).into_bytes();
        }
    }
    item.exception = end.server_error.map(|e| LoggedException {
        error_type: e.error_type().to_owned(),
        message: e.msg().to_owned(),
        traceback: e.traceback().to_owned(),
    });
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_stops_at_the_limit() {
        let mut c = BodyCapture::default();
        c.push(&[b'a'; 30_000]);
        c.push(&[b'b'; 20_000]);
        assert_eq!(c.buf.len(), 50_000);
        c.push(b"c");
        assert!(c.too_large);
        assert!(c.buf.capacity() == 0);
        assert_eq!(c.into_body(), BODY_TOO_LARGE);
    }

    #[test]
    fn hosts_cannot_reach_into_the_path_or_query() {
        let url = |host: &str| {
            let mut url = String::from("http://");
            push_host(&mut url, host);
            url.push_str("/p?token=t");
            url
        };
        assert_eq!(
            url("api.example.com:8443"),
            "http://api.example.com:8443/p?token=t"
        );
        assert_eq!(url("[::1]:80"), "http://[::1]:80/p?token=t");
        assert_eq!(url("127.0.0.1#"), "http://127.0.0.1%23/p?token=t");
        assert_eq!(url("127.0.0.1?x=1"), "http://127.0.0.1%3Fx%3D1/p?token=t");
        assert_eq!(
            url("evil.example/a b@c"),
            "http://evil.example%2Fa%20b%40c/p?token=t"
        );
        assert_eq!(url("h\u{e9}"), "http://h%C3%A9/p?token=t");
        assert_eq!(
            url(&"a".repeat(1000)).len(),
            "http:///p?token=t".len() + MAX_HOST_LEN
        );
        assert_eq!(apitally_core::adapter::url_path(&url("x#?y")), "/p");
    }

    /// The URL's scheme and host are read without building actix-web's `ConnectionInfo`, so
    /// they must agree with it for every combination of proxy headers.
    #[test]
    fn scheme_and_host_agree_with_connection_info() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("/", &[]),
            ("/", &[("host", "api.example.com")]),
            ("/", &[("host", "api.example.com:8443")]),
            ("http://other.example/x", &[("host", "api.example.com")]),
            ("/", &[("host", "a"), ("x-forwarded-host", "b, c")]),
            ("/", &[("host", "a"), ("x-forwarded-proto", "https, http")]),
            (
                "/",
                &[
                    ("host", "a"),
                    ("forwarded", "for=1.2.3.4; proto=https; host=\"fw.example\""),
                ],
            ),
            (
                "/",
                &[
                    ("host", "a"),
                    ("forwarded", "Proto=HTTP;Host=x, proto=https"),
                    ("x-forwarded-host", "b"),
                ],
            ),
            (
                "/",
                &[
                    ("host", "a"),
                    ("forwarded", "for=1.2.3.4"),
                    ("x-forwarded-proto", "https"),
                ],
            ),
            (
                "/",
                &[
                    ("host", "a"),
                    ("forwarded", "garbage"),
                    ("x-forwarded-host", " spaced "),
                ],
            ),
            ("/", &[("x-forwarded-proto", "wss")]),
        ];
        for (uri, headers) in cases {
            let mut req = actix_web::test::TestRequest::get().uri(uri);
            for &(name, value) in *headers {
                req = req.insert_header((name, value));
            }
            let req = req.to_srv_request();
            let mut copy = Headers::new();
            let proxied = copy_headers(req.headers(), true, &mut copy);
            assert_eq!(copy.len(), req.headers().len());
            let (scheme, host) = scheme_and_host(&req, proxied);
            let info = req.connection_info().clone();
            assert_eq!(
                (scheme, host),
                (info.scheme(), info.host()),
                "{uri} {headers:?}"
            );
        }
    }
}

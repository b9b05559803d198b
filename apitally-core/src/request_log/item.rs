//! One logged request, as the adapter captures it and as it is written (protocol.md §9.7).

use serde::Serialize;

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

/// The headers of a logged request or response: names and values in order, duplicates kept.
///
/// Stored in one buffer (two allocations however many headers there are), since they are
/// copied on the request path of every logged request.
///
/// ```
/// # use apitally_core as apitally;
/// use apitally::Headers;
///
/// let mut headers = Headers::new();
/// headers.push("content-type", "application/json");
/// headers.push("x-request-id", "42");
/// assert_eq!(headers.get("Content-Type"), Some("application/json"));
/// assert_eq!(headers.iter().collect::<Vec<_>>(), [("content-type", "application/json"), ("x-request-id", "42")]);
/// assert_eq!(headers.len(), 2);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    buf: String,
    /// Per header, where its name and its value end in `buf`, and whether its value is masked.
    ends: Vec<(usize, usize, bool)>,
}

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// No headers, with room for `headers` headers of `bytes` bytes in all (names and values).
    pub fn with_capacity(headers: usize, bytes: usize) -> Self {
        Self {
            buf: String::with_capacity(bytes),
            ends: Vec::with_capacity(headers),
        }
    }

    /// Makes room for `headers` more headers of `bytes` bytes in all.
    ///
    /// ```
    /// # use apitally_core as apitally;
    /// let mut headers = apitally::Headers::new();
    /// headers.reserve(2, 64);
    /// headers.push("accept", "*/*");
    /// assert_eq!(headers.len(), 1);
    /// ```
    pub fn reserve(&mut self, headers: usize, bytes: usize) {
        self.buf.reserve(bytes);
        self.ends.reserve(headers);
    }

    /// Appends a header.
    pub fn push(&mut self, name: &str, value: &str) {
        self.buf.push_str(name);
        let name_end = self.buf.len();
        self.buf.push_str(value);
        self.ends.push((name_end, self.buf.len(), false));
    }

    /// The headers, in order (a masked value reads `******`).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&(name_end, end, masked)| {
            let name = self.buf.get(start..name_end).unwrap_or_default();
            let value = if masked {
                MASKED
            } else {
                self.buf.get(name_end..end).unwrap_or_default()
            };
            start = end;
            (name, value)
        })
    }

    /// The first value of the header `name` (compared case-insensitively).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Removes every header.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    /// Removes every header, keeping the buffers for the next request unless a large one made
    /// them grow.
    fn clear_for_reuse(&mut self) {
        if self.buf.capacity() > MAX_KEPT_HEADER_BYTES || self.ends.capacity() > MAX_KEPT_HEADERS {
            *self = Self::new();
        } else {
            self.clear();
        }
    }

    /// The bytes its buffers hold.
    fn capacity_bytes(&self) -> usize {
        self.buf.capacity() + self.ends.capacity() * std::mem::size_of::<(usize, usize, bool)>()
    }

    /// Replaces the value of every (unmasked) header for which `f` gives a new one. Rare (a
    /// URL header with a secret in its query), so the buffer is rebuilt only then.
    pub(crate) fn rewrite(&mut self, f: impl Fn(&str, &str) -> Option<String>) {
        let mut changed: Vec<(usize, String)> = Vec::new();
        let mut start = 0;
        for (i, &(name_end, end, masked)) in self.ends.iter().enumerate() {
            if !masked {
                let name = self.buf.get(start..name_end).unwrap_or_default();
                let value = self.buf.get(name_end..end).unwrap_or_default();
                if let Some(new) = f(name, value) {
                    changed.push((i, new));
                }
            }
            start = end;
        }
        if changed.is_empty() {
            return;
        }
        let mut rebuilt = Self::with_capacity(self.ends.len(), self.buf.len());
        let mut start = 0;
        let mut changed = changed.into_iter().peekable();
        for (i, &(name_end, end, masked)) in self.ends.iter().enumerate() {
            let name = self.buf.get(start..name_end).unwrap_or_default();
            let value = match changed.next_if(|(j, _)| *j == i) {
                Some((_, new)) => std::borrow::Cow::Owned(new),
                None => std::borrow::Cow::Borrowed(self.buf.get(name_end..end).unwrap_or_default()),
            };
            rebuilt.push(name, &value);
            if let Some(last) = rebuilt.ends.last_mut() {
                last.2 = masked;
            }
            start = end;
        }
        *self = rebuilt;
    }

    /// Masks the value of every header whose name `sensitive` accepts: it then reads, and is
    /// written, as `******`.
    pub(crate) fn mask(&mut self, sensitive: impl Fn(&str) -> bool) {
        let mut start = 0;
        for (name_end, end, masked) in &mut self.ends {
            if sensitive(self.buf.get(start..*name_end).unwrap_or_default()) {
                *masked = true;
            }
            start = *end;
        }
    }
}

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut headers = Self::new();
        for (name, value) in iter {
            headers.push(name.as_ref(), value.as_ref());
        }
        headers
    }
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

fn empty_str(v: &Option<String>) -> bool {
    v.as_deref().is_none_or(str::is_empty)
}

fn empty_body(v: &Option<Vec<u8>>) -> bool {
    v.as_deref().is_none_or(<[u8]>::is_empty)
}

/// Serialises one item as a compact JSON line with a fresh UUID, applying the empty-value rule
/// (null and empty values are left out of `request` and `response`; zero sizes are kept).
///
/// Written by hand rather than through serde: this runs once per logged request, and a direct
/// writer (word-at-a-time string escaping, base64 straight into the line, no intermediate
/// strings) costs a fraction of the serde path. The output is what `serde_json` would write for
/// the same fields (pinned by a test).
pub(crate) fn to_line(item: &RequestLogItem, out: &mut Vec<u8>) -> serde_json::Result<()> {
    let r = &item.request;
    let s = &item.response;
    let mut uuid = uuid::Uuid::encode_buffer();
    let uuid = uuid::Builder::from_random_bytes(random_u128().to_le_bytes())
        .into_uuid()
        .hyphenated()
        .encode_lower(&mut uuid);
    out.extend_from_slice(b"{\"uuid\":\"");
    out.extend_from_slice(uuid.as_bytes());
    out.extend_from_slice(b"\",\"request\":{\"timestamp\":");
    write_f64(out, r.timestamp)?;
    out.extend_from_slice(b",\"method\":");
    write_str(out, &r.method);
    if !empty_str(&r.path) {
        out.extend_from_slice(b",\"path\":");
        write_str(out, r.path.as_deref().unwrap_or_default());
    }
    out.extend_from_slice(b",\"url\":");
    write_str(out, &r.url);
    write_headers(out, &r.headers);
    if let Some(size) = r.size {
        out.extend_from_slice(b",\"size\":");
        write_u64(out, size);
    }
    if !empty_str(&r.consumer) {
        out.extend_from_slice(b",\"consumer\":");
        write_str(out, r.consumer.as_deref().unwrap_or_default());
    }
    write_body(out, &r.body);
    out.extend_from_slice(b"},\"response\":{\"status_code\":");
    write_u64(out, u64::from(s.status_code));
    out.extend_from_slice(b",\"response_time\":");
    write_f64(out, s.response_time)?;
    write_headers(out, &s.headers);
    if let Some(size) = s.size {
        out.extend_from_slice(b",\"size\":");
        write_u64(out, size);
    }
    write_body(out, &s.body);
    out.push(b'}');
    if let Some(e) = &item.exception {
        out.extend_from_slice(b",\"exception\":{\"type\":");
        write_str(out, &e.error_type);
        out.extend_from_slice(b",\"message\":");
        write_str(out, &e.message);
        out.extend_from_slice(b",\"traceback\":");
        write_str(out, &e.traceback);
        out.push(b'}');
    }
    if !item.logs.is_empty() {
        out.extend_from_slice(b",\"logs\":[");
        for (i, log) in item.logs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_log(out, log)?;
        }
        out.push(b']');
    }
    if !item.spans.is_empty() {
        out.extend_from_slice(b",\"spans\":[");
        for (i, span) in item.spans.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_span(out, span)?;
        }
        out.push(b']');
    }
    if let Some(trace_id) = &item.trace_id {
        out.extend_from_slice(b",\"trace_id\":");
        write_str(out, trace_id);
    }
    out.extend_from_slice(b"}\n");
    Ok(())
}

/// A log record, as `serde_json` writes [`CapturedLog`] (pinned by a test).
fn write_log(out: &mut Vec<u8>, log: &CapturedLog) -> serde_json::Result<()> {
    out.extend_from_slice(b"{\"timestamp\":");
    write_f64(out, log.timestamp)?;
    out.extend_from_slice(b",\"logger\":");
    write_str(out, &log.logger);
    out.extend_from_slice(b",\"level\":");
    write_str(out, &log.level);
    out.extend_from_slice(b",\"message\":");
    write_str(out, &log.message);
    if let Some(file) = &log.file {
        out.extend_from_slice(b",\"file\":");
        write_str(out, file);
    }
    if let Some(line) = log.line {
        out.extend_from_slice(b",\"line\":");
        write_u64(out, u64::from(line));
    }
    out.push(b'}');
    Ok(())
}

/// A span, as `serde_json` writes [`CapturedSpan`] (pinned by a test).
fn write_span(out: &mut Vec<u8>, span: &CapturedSpan) -> serde_json::Result<()> {
    out.extend_from_slice(b"{\"span_id\":");
    write_str(out, &span.span_id);
    out.extend_from_slice(b",\"parent_span_id\":");
    match &span.parent_span_id {
        Some(parent) => write_str(out, parent),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"name\":");
    write_str(out, &span.name);
    out.extend_from_slice(b",\"kind\":");
    write_str(out, &span.kind);
    out.extend_from_slice(b",\"start_time\":");
    write_u64(out, span.start_time);
    out.extend_from_slice(b",\"end_time\":");
    write_u64(out, span.end_time);
    if let Some(status) = &span.status {
        out.extend_from_slice(b",\"status\":");
        write_str(out, status);
    }
    if !span.attributes.is_empty() {
        out.extend_from_slice(b",\"attributes\":");
        serde_json::to_writer(&mut *out, &span.attributes)?;
    }
    out.push(b'}');
    Ok(())
}

/// 128 random bits for a line's UUID without a system call per line: two generators per
/// thread, each with 64 bits of state seeded from the OS (through `Uuid::new_v4`), so that a
/// UUID depends on 128 bits of seed, as one from `Uuid::new_v4` would.
fn random_u128() -> u128 {
    thread_local! {
        static RNGS: std::cell::RefCell<(fastrand::Rng, fastrand::Rng)> = {
            let (a, b) = uuid::Uuid::new_v4().as_u64_pair();
            std::cell::RefCell::new((fastrand::Rng::with_seed(a), fastrand::Rng::with_seed(b)))
        };
    }
    RNGS.with(|rngs| {
        let (hi, lo) = &mut *rngs.borrow_mut();
        u128::from(hi.u64(..)) << 64 | u128::from(lo.u64(..))
    })
}

fn write_headers(out: &mut Vec<u8>, headers: &Headers) {
    if headers.is_empty() {
        return;
    }
    out.extend_from_slice(b",\"headers\":[");
    for (i, (name, value)) in headers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        write_str(out, name);
        out.push(b',');
        write_str(out, value);
        out.push(b']');
    }
    out.push(b']');
}

fn write_body(out: &mut Vec<u8>, body: &Option<Vec<u8>>) {
    if empty_body(body) {
        return;
    }
    let body = body.as_deref().unwrap_or_default();
    out.extend_from_slice(b",\"body\":\"");
    // Base64 needs no JSON escaping.
    write_base64(out, body);
    out.push(b'"');
}

/// Appends `input` in standard, padded base64 (the `base64` crate's `STANDARD` output), with
/// SIMD where the CPU has it (detected at run time): bodies are the bulk of a logged request's
/// line, and this is about a sixth of the cost of a scalar table encoder.
fn write_base64(out: &mut Vec<u8>, input: &[u8]) {
    base64_simd::STANDARD.encode_append(input, out);
}

/// Writes a number as `serde_json` does (the shortest form that reads back as the same `f64`).
///
/// Timestamps are whole milliseconds: for those, that form is the decimal itself (`s.mmm`
/// without trailing zeros, `s.0` for whole seconds), written with integer formatting.
fn write_f64(out: &mut Vec<u8>, value: f64) -> serde_json::Result<()> {
    // Below 10^15 ms (10^12 s) the decimal has at most 15 significant digits, so it reads back
    // as the same f64, and no shorter decimal does (those differ by at least 1 ms, more than
    // the f64 spacing there).
    const MAX_MS: f64 = 1e15;
    let ms = value * 1000.0;
    if value.is_sign_positive() && ms < MAX_MS {
        let whole = ms.round() as u64;
        if whole as f64 / 1000.0 == value {
            write_u64(out, whole / 1000);
            let frac = (whole % 1000) as u32;
            if frac == 0 {
                out.extend_from_slice(b".0");
            } else {
                let digits = [
                    b'.',
                    b'0' + (frac / 100) as u8,
                    b'0' + (frac / 10 % 10) as u8,
                    b'0' + (frac % 10) as u8,
                ];
                let len = if !frac.is_multiple_of(10) {
                    4
                } else if !frac.is_multiple_of(100) {
                    3
                } else {
                    2
                };
                out.extend_from_slice(&digits[..len]);
            }
            return Ok(());
        }
    }
    serde_json::to_writer(out, &value)
}

fn write_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Whether any byte of the word is `"`, `\\` or a control character (below 0x20).
#[inline]
fn word_needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    (below_space
        | has_zero(word ^ (ONES * u64::from(b'"')))
        | has_zero(word ^ (ONES * u64::from(b'\\'))))
        != 0
}

/// Whether `bytes` holds a byte that JSON strings escape, checked eight bytes at a time.
#[inline]
fn needs_escape(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        if word_needs_escape(u64::from_le_bytes(word.try_into().unwrap_or_default())) {
            return true;
        }
    }
    let rest = words.remainder();
    if rest.is_empty() {
        return false;
    }
    // Padded with spaces, which need no escaping.
    let mut last = [b' '; 8];
    last[..rest.len()].copy_from_slice(rest);
    word_needs_escape(u64::from_le_bytes(last))
}

/// Writes `value` as a JSON string, escaped as `serde_json` escapes it.
fn write_str(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if !needs_escape(bytes) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut clean = 0; // bytes[..clean] are written
    for (at, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[clean..at]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        clean = at + 1;
    }
    out.extend_from_slice(&bytes[clean..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests;

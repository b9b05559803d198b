//! Logged requests written straight into OTLP protobuf bytes: the SERVER span with its child
//! spans (`ExportTraceServiceRequest`) and the application log records
//! (`ExportLogsServiceRequest`), without building the intermediate span values and prost
//! messages that [`super::encode`] builds for everything else.
//!
//! Every logged request goes through here, on the logger's background thread: built through
//! prost, a span with its strings copied twice and its lengths computed at every level cost
//! about 20,000 instructions; written here, about a tenth. The output decodes to the same
//! messages as [`super::encode::Encoder`] makes of the same request (tested).

use std::borrow::Cow;

use self::proto::{
    bytes_field, fixed64_field, kv_attribute, kv_int, kv_str, kv_value, message, tag, varint,
    varint_field, WIRE_FIXED32, WIRE_LEN,
};
use super::{
    encode::MAX_SPAN_VALUE_CHARS,
    events::{
        MAX_CONSUMER_IDENTIFIER_CHARS, MAX_EXCEPTION_MESSAGE_CHARS, MAX_EXCEPTION_TYPE_CHARS,
        MAX_STACKTRACE_CHARS,
    },
};
use crate::{
    request_log::{mask::MASKED, CapturedLog, CapturedSpan, Headers, RequestLogItem},
    util::truncate_chars,
};

mod proto;

pub(crate) const REDACTED: &str = "[REDACTED]";
/// The scope of the SERVER spans: this SDK's HTTP instrumentation (§3.2).
#[cfg(test)]
pub(crate) const SERVER_SPAN_SCOPE: &str = "apitally-actix";

/// A masked value of the shared masker in 1.x's words: `******` (in JSON `"******"`,
/// percent-encoded in a query) becomes `[REDACTED]`. Borrowed when there is none.
pub(crate) fn redacted(text: &str) -> Cow<'_, str> {
    // Most text has neither a `*` nor a `%`: one vectorised scan says so.
    if memchr::memchr2(b'*', b'%', text.as_bytes()).is_none()
        || (memchr::memmem::find(text.as_bytes(), b"******").is_none()
            && memchr::memmem::find(text.as_bytes(), b"%2A%2A%2A%2A%2A%2A").is_none())
    {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.replace("\"******\"", "\"[REDACTED]\"")
            .replace("%2A%2A%2A%2A%2A%2A", REDACTED),
    )
}

/// `http.request.header.<name>` (or response): one attribute per name (lowercase, as the
/// adapter copies them), its values in order, a masked value as `[REDACTED]`.
fn headers(buf: &mut Vec<u8>, prefix: &str, headers: &Headers) {
    for (i, (name, _)) in headers.iter().enumerate() {
        // (Names are lowercase: the adapter copies them from parsed header names.)
        if headers.iter().take(i).any(|(n, _)| n == name) {
            continue;
        }
        message(buf, 9, |buf| {
            tag(buf, 1, WIRE_LEN);
            varint(buf, (prefix.len() + name.len()) as u64);
            buf.extend_from_slice(prefix.as_bytes());
            buf.extend_from_slice(name.as_bytes());
            message(buf, 2, |buf| {
                message(buf, 5, |buf| {
                    for (n, value) in headers.iter().skip(i) {
                        if n == name {
                            // A masked value, or a URL whose query had secrets masked.
                            let value = if value == MASKED {
                                Cow::Borrowed(REDACTED)
                            } else {
                                redacted(value)
                            };
                            message(buf, 1, |buf| bytes_field(buf, 1, value.as_bytes()));
                        }
                    }
                });
            });
        });
    }
}

/// A logged body: the markers in 1.x's words, text as a string, other bytes as bytes.
fn body(buf: &mut Vec<u8>, key: &str, body: &[u8]) {
    message(buf, 9, |buf| {
        bytes_field(buf, 1, key.as_bytes());
        message(buf, 2, |buf| {
            if body == crate::request_log::BODY_TOO_LARGE {
                bytes_field(buf, 1, b"[BODY_TOO_LARGE]");
            } else if body == crate::request_log::BODY_MASKED {
                bytes_field(buf, 1, REDACTED.as_bytes());
            } else {
                match std::str::from_utf8(body) {
                    Ok(text) => bytes_field(buf, 1, redacted(text).as_bytes()),
                    Err(_) => bytes_field(buf, 7, body),
                }
            }
        });
    });
}

/// An IP address as text in `buf`; IPv4 without the formatting machinery.
fn ip_text(ip: std::net::IpAddr, buf: &mut [u8; 45]) -> &str {
    use std::io::Write as _;
    let len = match ip {
        std::net::IpAddr::V4(v4) => {
            let mut len = 0;
            let mut digits = itoa::Buffer::new();
            for (i, octet) in v4.octets().iter().enumerate() {
                if i > 0 {
                    buf[len] = b'.';
                    len += 1;
                }
                let d = digits.format(*octet).as_bytes();
                buf[len..len + d.len()].copy_from_slice(d);
                len += d.len();
            }
            len
        }
        std::net::IpAddr::V6(v6) => {
            let mut cursor = std::io::Cursor::new(&mut buf[..]);
            let _ = write!(cursor, "{v6}");
            cursor.position() as usize
        }
    };
    std::str::from_utf8(&buf[..len]).unwrap_or_default()
}

pub(crate) fn seconds_to_nanos(seconds: f64) -> u64 {
    (seconds * 1e9).max(0.0) as u64
}

/// The pieces of a logged URL, `scheme://host[:port]/path[?query]`.
pub(crate) struct UrlParts<'a> {
    pub(crate) scheme: &'a str,
    pub(crate) address: &'a str,
    pub(crate) port: Option<i64>,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
}

pub(crate) fn url_parts(url: &str) -> UrlParts<'_> {
    // Byte searches (the `str` pattern searchers cost several hundred instructions per URL).
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
        ("https", rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        ("http", rest)
    } else {
        match memchr::memmem::find(url.as_bytes(), b"://") {
            Some(i) => (&url[..i], &url[i + 3..]),
            None => ("http", url),
        }
    };
    // Hosts and paths are short: a plain scan beats setting up a vector search.
    let (host, target) = match rest.bytes().position(|b| b == b'/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (path, query) = match memchr::memchr(b'?', target.as_bytes()) {
        Some(i) => (&target[..i], Some(&target[i + 1..])),
        None => (target, None),
    };
    let (address, port) = match host.bytes().rposition(|b| b == b':') {
        Some(i)
            if i + 1 < host.len()
                && host.as_bytes()[i + 1..].iter().all(u8::is_ascii_digit)
                && !host[..i].ends_with(':') =>
        {
            (&host[..i], host[i + 1..].parse().ok())
        }
        _ => (host, None),
    };
    UrlParts {
        scheme,
        address,
        port,
        path,
        query: query.filter(|q| !q.is_empty()),
    }
}

/// The status of a span: ERROR (code 2) or nothing.
fn status(buf: &mut Vec<u8>, error: bool) {
    message(buf, 15, |buf| {
        if error {
            varint_field(buf, 3, 2);
        }
    });
}

fn span_kind(kind: &str) -> u64 {
    match kind {
        "SERVER" => 2,
        "CLIENT" => 3,
        "PRODUCER" => 4,
        "CONSUMER" => 5,
        _ => 1,
    }
}

/// Writes one SERVER span (field 2 of a `ScopeSpans`).
fn server_span(buf: &mut Vec<u8>, item: &RequestLogItem) {
    let Some(ids) = item.trace_context else {
        return;
    };
    let request = &item.request;
    let response = &item.response;
    let start = seconds_to_nanos(request.timestamp);
    let duration = item.duration.map_or_else(
        || seconds_to_nanos(response.response_time),
        |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
    );
    let end = start.saturating_add(duration);
    let url = url_parts(&request.url);
    message(buf, 2, |buf| {
        bytes_field(buf, 1, &ids.trace_id.to_be_bytes());
        bytes_field(buf, 2, &ids.span_id.to_be_bytes());
        if let Some(parent) = ids.parent_span_id {
            bytes_field(buf, 4, &parent.to_be_bytes());
        }
        tag(buf, 16, WIRE_FIXED32);
        let flags: u32 = if ids.parent_span_id.is_some() {
            0x300
        } else {
            0x100
        };
        buf.extend_from_slice(&flags.to_le_bytes());
        tag(buf, 5, WIRE_LEN);
        match &request.path {
            Some(route) => {
                varint(buf, (request.method.len() + 1 + route.len()) as u64);
                buf.extend_from_slice(request.method.as_bytes());
                buf.push(b' ');
                buf.extend_from_slice(route.as_bytes());
            }
            None => {
                varint(buf, request.method.len() as u64);
                buf.extend_from_slice(request.method.as_bytes());
            }
        }
        varint_field(buf, 6, 2);
        fixed64_field(buf, 7, start);
        fixed64_field(buf, 8, end);
        kv_str(buf, 9, "http.request.method", &request.method);
        kv_str(buf, 9, "url.scheme", url.scheme);
        kv_str(buf, 9, "url.path", url.path);
        if let Some(query) = url.query {
            kv_str(buf, 9, "url.query", &redacted(query));
        }
        if !url.address.is_empty() {
            kv_str(buf, 9, "server.address", url.address);
        }
        if let Some(port) = url.port {
            kv_int(buf, 9, "server.port", port);
        }
        if let Some(ua) = &item.user_agent {
            kv_str(buf, 9, "user_agent.original", ua);
        }
        if let Some(client) = item.client_address {
            let mut text = [0u8; 45];
            kv_str(buf, 9, "client.address", ip_text(client, &mut text));
        }
        kv_int(
            buf,
            9,
            "http.response.status_code",
            i64::from(response.status_code),
        );
        if let Some(route) = &request.path {
            kv_str(buf, 9, "http.route", route);
        }
        if let Some(size) = request.size {
            kv_int(buf, 9, "http.request.body.size", size as i64);
        }
        if let Some(size) = response.size {
            kv_int(buf, 9, "http.response.body.size", size as i64);
        }
        if let Some(consumer) = &request.consumer {
            kv_str(
                buf,
                9,
                "apitally.consumer.identifier",
                truncate_chars(consumer, MAX_CONSUMER_IDENTIFIER_CHARS),
            );
        }
        if !request.attributes.is_empty() {
            for (key, value) in &request.attributes {
                kv_attribute(buf, key, value);
            }
            // The keys the app set, in first-set order (py 1.0.0, §3.3).
            message(buf, 9, |buf| {
                bytes_field(buf, 1, b"apitally.request.custom_attribute_keys");
                message(buf, 2, |buf| {
                    message(buf, 5, |buf| {
                        for (key, _) in &request.attributes {
                            message(buf, 1, |buf| bytes_field(buf, 1, key.as_bytes()));
                        }
                    });
                });
            });
        }
        headers(buf, "http.request.header.", &request.headers);
        headers(buf, "http.response.header.", &response.headers);
        if let Some(b) = request.body.as_deref().filter(|b| !b.is_empty()) {
            body(buf, "apitally.request.body", b);
        }
        if let Some(b) = response.body.as_deref().filter(|b| !b.is_empty()) {
            body(buf, "apitally.response.body", b);
        }
        if let Some(exception) = &item.exception {
            message(buf, 11, |buf| {
                fixed64_field(buf, 1, end);
                bytes_field(buf, 2, b"exception");
                kv_str(
                    buf,
                    3,
                    "exception.type",
                    truncate_chars(&exception.error_type, MAX_EXCEPTION_TYPE_CHARS),
                );
                kv_str(
                    buf,
                    3,
                    "exception.message",
                    truncate_chars(&exception.message, MAX_EXCEPTION_MESSAGE_CHARS),
                );
                kv_str(
                    buf,
                    3,
                    "exception.stacktrace",
                    truncate_chars(&exception.traceback, MAX_STACKTRACE_CHARS),
                );
            });
        }
        status(buf, response.status_code >= 500);
    });
}

fn hex_u64(hex: &str) -> Option<u64> {
    u64::from_str_radix(hex, 16).ok()
}

/// Writes one child span (field 2 of a `ScopeSpans`).
fn child_span(buf: &mut Vec<u8>, span: &CapturedSpan, trace_id: u128) {
    let (Some(span_id), Some(parent)) = (
        hex_u64(&span.span_id),
        span.parent_span_id.as_deref().and_then(hex_u64),
    ) else {
        return;
    };
    message(buf, 2, |buf| {
        bytes_field(buf, 1, &trace_id.to_be_bytes());
        bytes_field(buf, 2, &span_id.to_be_bytes());
        bytes_field(buf, 4, &parent.to_be_bytes());
        tag(buf, 16, WIRE_FIXED32);
        buf.extend_from_slice(&0x100u32.to_le_bytes());
        bytes_field(
            buf,
            5,
            truncate_chars(&span.name, MAX_SPAN_VALUE_CHARS).as_bytes(),
        );
        varint_field(buf, 6, span_kind(&span.kind));
        fixed64_field(buf, 7, span.start_time);
        fixed64_field(buf, 8, span.end_time.max(span.start_time));
        for (key, value) in &span.attributes {
            kv_value(buf, 9, key, value);
        }
        status(buf, span.status.as_deref() == Some("ERROR"));
    });
}

/// `(severity number, text)` of a `tracing` level (OpenTelemetry's mapping).
pub(crate) fn severity(level: &str) -> (u64, &'static str) {
    match level {
        "TRACE" => (1, "TRACE"),
        "DEBUG" => (5, "DEBUG"),
        "WARN" => (13, "WARN"),
        "ERROR" => (17, "ERROR"),
        _ => (9, "INFO"),
    }
}

/// Writes one application log record (field 2 of a `ScopeLogs`).
fn log_record(buf: &mut Vec<u8>, log: &CapturedLog, trace_id: u128, span_id: u64) {
    let (number, text) = severity(&log.level);
    let time = seconds_to_nanos(log.timestamp);
    message(buf, 2, |buf| {
        fixed64_field(buf, 1, time);
        varint_field(buf, 2, number);
        bytes_field(buf, 3, text.as_bytes());
        message(buf, 5, |buf| {
            bytes_field(buf, 1, log.message.as_bytes());
        });
        let mut hex = [0u8; 16];
        for (i, byte) in hex.iter_mut().enumerate() {
            *byte = b"0123456789abcdef"[((span_id >> (60 - 4 * i)) & 0xf) as usize];
        }
        kv_str(
            buf,
            6,
            "apitally.request.server_span_id",
            std::str::from_utf8(&hex).unwrap_or_default(),
        );
        if let Some(file) = &log.file {
            kv_str(buf, 6, "code.file.path", file);
        }
        if let Some(line) = log.line {
            kv_int(buf, 6, "code.line.number", i64::from(line));
        }
        tag(buf, 8, WIRE_FIXED32);
        buf.extend_from_slice(&1u32.to_le_bytes());
        bytes_field(buf, 9, &trace_id.to_be_bytes());
        bytes_field(buf, 10, &span_id.to_be_bytes());
        fixed64_field(buf, 11, time);
    });
}

/// Writes logged requests as OTLP: `traces` gets one `ExportTraceServiceRequest` (a resource,
/// the SERVER spans under this SDK's scope, the child spans under `apitally`), `logs` one
/// `ExportLogsServiceRequest` with the application log records (a scope per logger). Both
/// are left empty when there is nothing to export. `resource` is the encoded `Resource`.
pub(crate) fn write_requests(
    resource: &[u8],
    scope: (&str, &str),
    items: &[&RequestLogItem],
    traces: &mut Vec<u8>,
    logs: &mut Vec<u8>,
) {
    let with_ids = || items.iter().filter(|i| i.trace_context.is_some());
    if with_ids().next().is_some() {
        message(traces, 1, |buf| {
            bytes_field(buf, 1, resource);
            message(buf, 2, |buf| {
                message(buf, 1, |buf| {
                    bytes_field(buf, 1, scope.0.as_bytes());
                    bytes_field(buf, 2, scope.1.as_bytes());
                });
                for item in with_ids() {
                    server_span(buf, item);
                }
            });
            let children = with_ids().any(|i| i.spans.iter().any(|s| s.parent_span_id.is_some()));
            if children {
                message(buf, 2, |buf| {
                    message(buf, 1, |buf| bytes_field(buf, 1, b"apitally"));
                    for item in with_ids() {
                        let trace_id = item.trace_context.map_or(0, |t| t.trace_id);
                        for span in item.spans.iter().filter(|s| s.parent_span_id.is_some()) {
                            child_span(buf, span, trace_id);
                        }
                    }
                });
            }
        });
    }
    if with_ids().any(|i| !i.logs.is_empty()) {
        message(logs, 1, |buf| {
            bytes_field(buf, 1, resource);
            // One scope per logger, in order of first appearance.
            let mut loggers: Vec<&str> = Vec::new();
            for item in with_ids() {
                for log in &item.logs {
                    if !loggers.contains(&log.logger.as_str()) {
                        loggers.push(&log.logger);
                    }
                }
            }
            for logger in loggers {
                message(buf, 2, |buf| {
                    message(buf, 1, |buf| bytes_field(buf, 1, logger.as_bytes()));
                    for item in with_ids() {
                        let ids = item.trace_context.unwrap_or_default();
                        for log in item.logs.iter().filter(|l| l.logger == logger) {
                            log_record(buf, log, ids.trace_id, ids.span_id);
                        }
                    }
                });
            }
        });
    }
}

#[cfg(test)]
mod tests;

//! The same export through the span values and prost messages of [`super::encode`]: the
//! reference [`super::wire`]'s output is tested against (tests only).

/// reference [`super::wire`]'s output is tested against.
use std::time::Duration;

use super::wire::SERVER_SPAN_SCOPE;
use super::{
    events,
    model::{
        AttrValue, Attribute, LogRecordData, Parent, Scope, SpanData, SpanEvent, SpanKind,
        SpanStatus,
    },
};
use crate::{
    request_log::{CapturedLog, CapturedSpan, RequestLogItem},
    util::truncate_chars,
};

const REDACTED: &str = "[REDACTED]";

/// A masked value of the shared masker in 1.x's words: `******` (in JSON: `"******"`;
/// percent-encoded in a query) becomes `[REDACTED]`.
fn redacted(text: &str) -> String {
    text.replace("\"******\"", "\"[REDACTED]\"")
        .replace("%2A%2A%2A%2A%2A%2A", REDACTED)
}

/// A logged body as a 1.x attribute value: the markers in 1.x's words, text as a string,
/// other bytes as bytes.
fn body_value(body: &[u8]) -> AttrValue {
    if body == crate::request_log::BODY_TOO_LARGE {
        return AttrValue::String("[BODY_TOO_LARGE]".into());
    }
    if body == crate::request_log::BODY_MASKED {
        return AttrValue::String(REDACTED.into());
    }
    match std::str::from_utf8(body) {
        Ok(text) => AttrValue::String(redacted(text)),
        Err(_) => AttrValue::Bytes(body.to_vec()),
    }
}

fn header_attributes(prefix: &'static str, headers: &crate::Headers, out: &mut Vec<Attribute>) {
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for (name, value) in headers.iter() {
        let name = name.to_ascii_lowercase();
        let value = if value == crate::request_log::mask::MASKED {
            REDACTED.to_owned()
        } else {
            redacted(value)
        };
        match grouped.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => grouped.push((name, vec![value])),
        }
    }
    for (name, values) in grouped {
        out.push(Attribute::new(
            format!("{prefix}{name}"),
            AttrValue::strings(values),
        ));
    }
}

fn seconds_to_nanos(seconds: f64) -> u64 {
    (seconds * 1e9).max(0.0) as u64
}

fn span_kind(kind: &str) -> SpanKind {
    match kind {
        "SERVER" => SpanKind::Server,
        "CLIENT" => SpanKind::Client,
        "PRODUCER" => SpanKind::Producer,
        "CONSUMER" => SpanKind::Consumer,
        _ => SpanKind::Internal,
    }
}

fn json_attribute(key: &str, value: &serde_json::Value) -> Attribute {
    let value = match value {
        serde_json::Value::String(s) => AttrValue::String(s.clone()),
        serde_json::Value::Bool(b) => AttrValue::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => AttrValue::Int(i),
            None => AttrValue::Double(n.as_f64().unwrap_or_default()),
        },
        serde_json::Value::Null => AttrValue::None,
        other => AttrValue::String(other.to_string()),
    };
    Attribute::new(key.to_owned(), value)
}

fn hex_u64(hex: &str) -> Option<u64> {
    u64::from_str_radix(hex, 16).ok()
}

/// `(severity number, text)` of a `tracing` level (OpenTelemetry's mapping).
fn severity(level: &str) -> (i32, &'static str) {
    match level {
        "TRACE" => (1, "TRACE"),
        "DEBUG" => (5, "DEBUG"),
        "INFO" => (9, "INFO"),
        "WARN" => (13, "WARN"),
        "ERROR" => (17, "ERROR"),
        _ => (9, "INFO"),
    }
}

/// The SERVER span of a logged request (§3.2-§3.7), its child spans (§3.8) and its log records
/// (§4.3).
pub(crate) fn telemetry(
    item: &RequestLogItem,
    spans: &mut Vec<SpanData>,
    logs: &mut Vec<LogRecordData>,
) {
    let Some(ids) = item.trace_context else {
        return;
    };
    let trace_id = ids.trace_id.to_be_bytes();
    let span_id = ids.span_id.to_be_bytes();
    let request = &item.request;
    let response = &item.response;
    let start = seconds_to_nanos(request.timestamp);
    let duration = item
        .duration
        .unwrap_or_else(|| Duration::from_secs_f64(response.response_time.max(0.0)));
    let end = start + u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
    // `scheme://host/path?query`
    let (scheme, rest) = request
        .url
        .split_once("://")
        .unwrap_or(("http", &request.url));
    let (host, target) = rest
        .find('/')
        .map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let (path, query) = target
        .split_once('?')
        .map_or((target, None), |(p, q)| (p, Some(q)));
    let mut attributes = vec![
        Attribute::new("http.request.method", request.method.as_str()),
        Attribute::new("url.scheme", scheme),
        Attribute::new("url.path", path),
    ];
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        attributes.push(Attribute::new("url.query", redacted(query)));
    }
    let (address, port) = match host
        .rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
    {
        Some((address, port)) if !address.ends_with(']') || host.starts_with('[') => {
            (address, port.parse::<i64>().ok())
        }
        _ => (host, None),
    };
    if !address.is_empty() {
        attributes.push(Attribute::new("server.address", address));
    }
    if let Some(port) = port {
        attributes.push(Attribute::new("server.port", port));
    }
    if let Some(ua) = &item.user_agent {
        attributes.push(Attribute::new("user_agent.original", ua.as_str()));
    }
    if let Some(client) = &item.client_address {
        attributes.push(Attribute::new("client.address", client.to_string()));
    }
    attributes.push(Attribute::new(
        "http.response.status_code",
        i64::from(response.status_code),
    ));
    if let Some(route) = &request.path {
        attributes.push(Attribute::new("http.route", route.as_str()));
    }
    if let Some(size) = request.size {
        attributes.push(Attribute::new("http.request.body.size", size as i64));
    }
    if let Some(size) = response.size {
        attributes.push(Attribute::new("http.response.body.size", size as i64));
    }
    if let Some(consumer) = &request.consumer {
        attributes.push(Attribute::new(
            "apitally.consumer.identifier",
            truncate_chars(consumer, events::MAX_CONSUMER_IDENTIFIER_CHARS),
        ));
    }
    if !request.attributes.is_empty() {
        for (key, value) in &request.attributes {
            let value = match value {
                crate::AttributeValue::String(s) => AttrValue::String(s.clone()),
                crate::AttributeValue::Int(i) => AttrValue::Int(*i),
                crate::AttributeValue::Float(x) => AttrValue::Double(*x),
                crate::AttributeValue::Bool(b) => AttrValue::Bool(*b),
                _ => AttrValue::None,
            };
            attributes.push(Attribute {
                key: key.clone().into(),
                value,
            });
        }
        attributes.push(Attribute::new(
            "apitally.request.custom_attribute_keys",
            AttrValue::strings(request.attributes.iter().map(|(k, _)| k.as_str())),
        ));
    }
    header_attributes("http.request.header.", &request.headers, &mut attributes);
    header_attributes("http.response.header.", &response.headers, &mut attributes);
    if let Some(body) = request.body.as_deref().filter(|b| !b.is_empty()) {
        attributes.push(Attribute::new("apitally.request.body", body_value(body)));
    }
    if let Some(body) = response.body.as_deref().filter(|b| !b.is_empty()) {
        attributes.push(Attribute::new("apitally.response.body", body_value(body)));
    }
    let mut events = Vec::new();
    if let Some(exception) = &item.exception {
        events.push(SpanEvent {
            name: "exception".into(),
            time_unix_nano: end,
            attributes: vec![
                Attribute::new(
                    "exception.type",
                    truncate_chars(&exception.error_type, events::MAX_EXCEPTION_TYPE_CHARS),
                ),
                Attribute::new(
                    "exception.message",
                    truncate_chars(&exception.message, events::MAX_EXCEPTION_MESSAGE_CHARS),
                ),
                Attribute::new(
                    "exception.stacktrace",
                    truncate_chars(&exception.traceback, events::MAX_STACKTRACE_CHARS),
                ),
            ],
        });
    }
    let name = match &request.path {
        Some(route) => format!("{} {route}", request.method),
        None => request.method.clone(),
    };
    let scope = Scope::new(SERVER_SPAN_SCOPE, env!("CARGO_PKG_VERSION"));
    // Child spans first, then the SERVER span (§3.1).
    for child in item.spans.iter().filter(|s| s.parent_span_id.is_some()) {
        if let Some(span) = child_span(child, trace_id) {
            spans.push(span);
        }
    }
    spans.push(SpanData {
        scope,
        trace_id,
        span_id,
        parent: ids.parent_span_id.map(|p| Parent {
            span_id: p.to_be_bytes(),
            remote: true,
        }),
        trace_state: String::new(),
        name,
        kind: SpanKind::Server,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        status: if response.status_code >= 500 {
            SpanStatus::Error {
                message: String::new(),
            }
        } else {
            SpanStatus::Unset
        },
        attributes,
        events,
        dropped_attributes_count: 0,
        dropped_events_count: 0,
    });
    for log in &item.logs {
        logs.push(log_record(log, trace_id, span_id, ids.span_id));
    }
}

fn child_span(span: &CapturedSpan, trace_id: [u8; 16]) -> Option<SpanData> {
    let span_id = hex_u64(&span.span_id)?.to_be_bytes();
    let parent = span.parent_span_id.as_deref().and_then(hex_u64)?;
    Some(SpanData {
        scope: Scope::new("apitally", ""),
        trace_id,
        span_id,
        parent: Some(Parent {
            span_id: parent.to_be_bytes(),
            remote: false,
        }),
        trace_state: String::new(),
        name: span.name.clone(),
        kind: span_kind(&span.kind),
        start_time_unix_nano: span.start_time,
        end_time_unix_nano: span.end_time.max(span.start_time),
        status: if span.status.as_deref() == Some("ERROR") {
            SpanStatus::Error {
                message: String::new(),
            }
        } else {
            SpanStatus::Unset
        },
        attributes: span
            .attributes
            .iter()
            .map(|(k, v)| json_attribute(k, v))
            .collect(),
        events: Vec::new(),
        dropped_attributes_count: 0,
        dropped_events_count: 0,
    })
}

fn log_record(
    log: &CapturedLog,
    trace_id: [u8; 16],
    span_id: [u8; 8],
    server_span_id: u64,
) -> LogRecordData {
    let (number, text) = severity(&log.level);
    let time = seconds_to_nanos(log.timestamp);
    let mut attributes = vec![Attribute::new(
        "apitally.request.server_span_id",
        format!("{server_span_id:016x}"),
    )];
    if let Some(file) = &log.file {
        attributes.push(Attribute::new("code.file.path", file.as_str()));
    }
    if let Some(line) = log.line {
        attributes.push(Attribute::new("code.line.number", i64::from(line)));
    }
    LogRecordData {
        scope: Scope::new(log.logger.clone(), ""),
        time_unix_nano: time,
        observed_time_unix_nano: time,
        severity_number: number,
        severity_text: text.into(),
        body: Some(AttrValue::String(log.message.clone())),
        trace_id: Some(trace_id),
        span_id: Some(span_id),
        flags: 1,
        event_name: None,
        attributes,
    }
}

#[cfg(test)]
mod tests;

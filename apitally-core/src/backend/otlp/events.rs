//! The internal `apitally.*` log events (protocol-v1.md §4.2, §4.4-§4.6), built from plain
//! inputs with the protocol's bounds applied.

use serde::Serialize;

use super::model::{AttrValue, Attribute, LogRecordData};
use crate::{util::truncate_chars, PathItem};

pub(crate) const STARTUP_EVENT: &str = "apitally.app.startup";
pub(crate) const CONSUMER_UPDATE_EVENT: &str = "apitally.consumer.update";
pub(crate) const VALIDATION_ERROR_EVENT: &str = "apitally.request.validation_error";
pub(crate) const SERVER_ERROR_EVENT: &str = "apitally.request.server_error";

/// The largest OpenAPI document sent with the startup event, in UTF-8 bytes (§4.2).
pub(crate) const MAX_OPENAPI_BYTES: usize = 4_000_000;

/// Consumer limits (§3.6), in characters.
pub(crate) const MAX_CONSUMER_IDENTIFIER_CHARS: usize = 128;
pub(crate) const MAX_CONSUMER_NAME_CHARS: usize = 64;
pub(crate) const MAX_CONSUMER_ATTRIBUTE_KEY_CHARS: usize = 64;
pub(crate) const MAX_CONSUMER_ATTRIBUTE_VALUE_CHARS: usize = 1_024;
pub(crate) const MAX_CONSUMER_ATTRIBUTES: usize = 10;

/// Error group limits (§4.5, §4.6), in characters.
pub(crate) const MAX_ERROR_PATH_CHARS: usize = 2_000;
pub(crate) const MAX_VALIDATION_SOURCE_CHARS: usize = 32;
pub(crate) const MAX_VALIDATION_FIELD_CHARS: usize = 2_048;
pub(crate) const MAX_VALIDATION_MESSAGE_CHARS: usize = 2_048;
pub(crate) const MAX_VALIDATION_TYPE_CHARS: usize = 128;
pub(crate) const MAX_EXCEPTION_TYPE_CHARS: usize = 256;
pub(crate) const MAX_EXCEPTION_MESSAGE_CHARS: usize = 2_048;
pub(crate) const MAX_STACKTRACE_CHARS: usize = 65_536;
const MESSAGE_TRUNCATION_SUFFIX: &str = "... (truncated)";

/// What the startup event says about the app (§4.2).
#[derive(Debug, Clone, Copy)]
pub(crate) struct StartupInfo<'a> {
    /// `actix-web`.
    pub(crate) framework: &'a str,
    /// In order, e.g. `rust`, `actix-web`, `app`; a repeated key is sent once (the first).
    pub(crate) versions: &'a [(String, String)],
    /// The configuration as snake_case keys in declaration order, without `write_token`,
    /// `otlp_endpoint`, `env`, `disabled` and unset values; callbacks as `true`.
    pub(crate) config: &'a [(String, serde_json::Value)],
    /// Routes; `HEAD` and `OPTIONS` ones and repeated (method, path) pairs are left out.
    pub(crate) paths: &'a [PathItem],
    /// The OpenAPI document as JSON text; left out above [`MAX_OPENAPI_BYTES`].
    pub(crate) openapi: Option<&'a str>,
}

/// `apitally.app.startup`: the body is a compact JSON **string** with the keys `framework`,
/// `versions`, `config`, `paths` and `openapi`, in that order.
pub(crate) fn startup_event(time_unix_nano: u64, info: &StartupInfo<'_>) -> LogRecordData {
    fn json<T: Serialize + ?Sized>(out: &mut String, value: &T) {
        // Strings, JSON values and paths always serialise.
        out.push_str(&serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned()));
    }
    let mut body = String::from("{\"framework\":");
    json(&mut body, info.framework);
    body.push_str(",\"versions\":{");
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in info.versions {
        if seen.contains(&key.as_str()) {
            continue;
        }
        if !seen.is_empty() {
            body.push(',');
        }
        seen.push(key);
        json(&mut body, key);
        body.push(':');
        json(&mut body, value);
    }
    body.push_str("},\"config\":{");
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in info.config {
        if seen.contains(&key.as_str()) {
            continue;
        }
        if !seen.is_empty() {
            body.push(',');
        }
        seen.push(key);
        json(&mut body, key);
        body.push(':');
        json(&mut body, value);
    }
    body.push_str("},\"paths\":[");
    let mut sent: Vec<(&str, &str)> = Vec::new();
    for path in info.paths {
        let method = path.get_method();
        if method.eq_ignore_ascii_case("HEAD")
            || method.eq_ignore_ascii_case("OPTIONS")
            || sent.contains(&(method, path.get_path()))
        {
            continue;
        }
        if !sent.is_empty() {
            body.push(',');
        }
        sent.push((method, path.get_path()));
        json(&mut body, path);
    }
    body.push(']');
    if let Some(openapi) = info.openapi.filter(|o| !o.is_empty()) {
        if openapi.len() <= MAX_OPENAPI_BYTES {
            body.push_str(",\"openapi\":");
            json(&mut body, openapi);
        }
    }
    body.push('}');
    LogRecordData::event(STARTUP_EVENT, time_unix_nano, AttrValue::String(body))
}

/// What a request said about its consumer (§3.6, §4.4).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConsumerUpdate<'a> {
    pub(crate) identifier: &'a str,
    pub(crate) name: Option<&'a str>,
    pub(crate) group: Option<&'a str>,
    /// In the order set; `None` deletes the key. A repeated key updates the earlier one.
    pub(crate) attributes: &'a [(String, Option<String>)],
}

/// `apitally.consumer.update`: a kvlist body `{identifier, name?, group?, attributes?}` where a
/// deleted attribute is a null value. `None` when there is nothing to send: an empty
/// identifier, or no name, group or attribute (deciding whether it changed since the last
/// update of that identifier is the caller's: the 10,000-entry LRU of §4.4).
///
/// Bounds as py applies them: identifier trimmed and cut to 128 characters; name and group
/// trimmed, cut to 64, empty is none; attribute keys trimmed, 1 to 64 characters, values
/// trimmed (empty is a deletion) and at most 1,024 characters (a longer one is not sent); at
/// most 10 keys.
pub(crate) fn consumer_update_event(
    time_unix_nano: u64,
    update: &ConsumerUpdate<'_>,
) -> Option<LogRecordData> {
    let identifier = truncate_chars(update.identifier.trim(), MAX_CONSUMER_IDENTIFIER_CHARS);
    if identifier.is_empty() {
        return None;
    }
    fn bounded(s: Option<&str>) -> Option<&str> {
        s.map(|s| truncate_chars(s.trim(), MAX_CONSUMER_NAME_CHARS))
            .filter(|s| !s.is_empty())
    }
    let name = bounded(update.name);
    let group = bounded(update.group);
    let mut attributes: Vec<(&str, Option<&str>)> = Vec::new();
    for (key, value) in update.attributes {
        let key = key.trim();
        let value = value.as_deref().map(str::trim).filter(|v| !v.is_empty());
        if key.is_empty()
            || key.chars().count() > MAX_CONSUMER_ATTRIBUTE_KEY_CHARS
            || value.is_some_and(|v| v.chars().count() > MAX_CONSUMER_ATTRIBUTE_VALUE_CHARS)
        {
            continue;
        }
        if let Some(existing) = attributes.iter_mut().find(|(k, _)| *k == key) {
            existing.1 = value;
        } else if attributes.len() < MAX_CONSUMER_ATTRIBUTES {
            attributes.push((key, value));
        }
    }
    if name.is_none() && group.is_none() && attributes.is_empty() {
        return None;
    }
    let mut body = vec![Attribute::new("identifier", identifier)];
    if let Some(name) = name {
        body.push(Attribute::new("name", name));
    }
    if let Some(group) = group {
        body.push(Attribute::new("group", group));
    }
    if !attributes.is_empty() {
        let values = attributes
            .into_iter()
            .map(|(k, v)| Attribute {
                key: k.to_owned().into(),
                value: v.map_or(AttrValue::None, AttrValue::from),
            })
            .collect();
        body.push(Attribute::new("attributes", AttrValue::KvList(values)));
    }
    Some(LogRecordData::event(
        CONSUMER_UPDATE_EVENT,
        time_unix_nano,
        AttrValue::KvList(body),
    ))
}

/// How many requests of one consumer (`None`: anonymous) had an error of a group.
pub(crate) type ErrorCount = (Option<String>, u64);

/// One validation error group of a drain interval (§4.5).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ValidationErrorGroup<'a> {
    pub(crate) method: &'a str,
    /// The route template.
    pub(crate) path: &'a str,
    /// `body`, `query`, `path`, `header`, `cookie` or empty (see [`validation_source`]).
    pub(crate) source: &'a str,
    /// Dotted location after the source, e.g. `items.0.name`.
    pub(crate) field: &'a str,
    pub(crate) message: &'a str,
    pub(crate) error_type: &'a str,
    pub(crate) counts: &'a [ErrorCount],
}

/// `apitally.request.validation_error`: a kvlist body `{method, path, source, field, message,
/// type, counts: [{consumer?, count}]}`. `None` when the method is not 2 to 12 uppercase
/// letters or hyphens (the server's rule) or no request was counted.
pub(crate) fn validation_error_event(
    time_unix_nano: u64,
    group: &ValidationErrorGroup<'_>,
) -> Option<LogRecordData> {
    let counts = counts_value(group.counts)?;
    if !is_valid_error_method(group.method) {
        return None;
    }
    let body = vec![
        Attribute::new("method", group.method),
        Attribute::new("path", truncate_chars(group.path, MAX_ERROR_PATH_CHARS)),
        Attribute::new(
            "source",
            truncate_chars(group.source, MAX_VALIDATION_SOURCE_CHARS),
        ),
        Attribute::new(
            "field",
            truncate_chars(group.field, MAX_VALIDATION_FIELD_CHARS),
        ),
        Attribute::new(
            "message",
            truncate_chars(group.message, MAX_VALIDATION_MESSAGE_CHARS),
        ),
        Attribute::new(
            "type",
            truncate_chars(group.error_type, MAX_VALIDATION_TYPE_CHARS),
        ),
        Attribute::new("counts", counts),
    ];
    Some(LogRecordData::event(
        VALIDATION_ERROR_EVENT,
        time_unix_nano,
        AttrValue::KvList(body),
    ))
}

/// One server error group of a drain interval (§4.6).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerErrorGroup<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) error_type: &'a str,
    pub(crate) message: &'a str,
    /// Deterministic frames, most recent first, without addresses (go's rule).
    pub(crate) stacktrace: &'a str,
    pub(crate) counts: &'a [ErrorCount],
}

/// `apitally.request.server_error`: a kvlist body `{method, path, type, message, stacktrace,
/// counts: [{consumer?, count}]}` (no `sentry_event_id`, §10). `None` when the method is not
/// 2 to 12 uppercase letters or hyphens or no request was counted.
pub(crate) fn server_error_event(
    time_unix_nano: u64,
    group: &ServerErrorGroup<'_>,
) -> Option<LogRecordData> {
    let counts = counts_value(group.counts)?;
    if !is_valid_error_method(group.method) {
        return None;
    }
    let body = vec![
        Attribute::new("method", group.method),
        Attribute::new("path", truncate_chars(group.path, MAX_ERROR_PATH_CHARS)),
        Attribute::new(
            "type",
            truncate_chars(group.error_type, MAX_EXCEPTION_TYPE_CHARS),
        ),
        Attribute::new("message", exception_message(group.message)),
        Attribute::new("stacktrace", truncate_stacktrace(group.stacktrace)),
        Attribute::new("counts", counts),
    ];
    Some(LogRecordData::event(
        SERVER_ERROR_EVENT,
        time_unix_nano,
        AttrValue::KvList(body),
    ))
}

/// `[{consumer?, count}]`, anonymous requests without `consumer`; counts capped at 2^32 - 1
/// (go). `None` when nothing was counted.
fn counts_value(counts: &[ErrorCount]) -> Option<AttrValue> {
    let entries: Vec<AttrValue> = counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(consumer, n)| {
            let mut entry = Vec::with_capacity(2);
            let consumer = consumer
                .as_deref()
                .map(|c| truncate_chars(c.trim(), MAX_CONSUMER_IDENTIFIER_CHARS))
                .filter(|c| !c.is_empty());
            if let Some(consumer) = consumer {
                entry.push(Attribute::new("consumer", consumer));
            }
            entry.push(Attribute::new(
                "count",
                (*n).min(u64::from(u32::MAX)) as i64,
            ));
            AttrValue::KvList(entry)
        })
        .collect();
    (!entries.is_empty()).then_some(AttrValue::Array(entries))
}

/// The server's rule for error methods: 2 to 12 uppercase ASCII letters or hyphens.
pub(crate) fn is_valid_error_method(method: &str) -> bool {
    (2..=12).contains(&method.len()) && method.bytes().all(|b| b.is_ascii_uppercase() || b == b'-')
}

/// The source of a validation error from the first segment of its location, as py maps it:
/// `body`, `query`, `path`, `header`, `cookie` and the aliases `querystring`, `params`,
/// `path_params`, `headers`, `cookies` (any case); anything else is unknown (`""`), in which
/// case the segment belongs to the field.
pub(crate) fn validation_source(segment: &str) -> &'static str {
    match segment.to_ascii_lowercase().as_str() {
        "body" => "body",
        "query" | "querystring" => "query",
        "path" | "params" | "path_params" => "path",
        "header" | "headers" => "header",
        "cookie" | "cookies" => "cookie",
        _ => "",
    }
}

/// Trimmed; above 2,048 characters, the first 2,033 and `... (truncated)` (§4.6).
pub(crate) fn exception_message(message: &str) -> String {
    let message = message.trim();
    if message.len() <= MAX_EXCEPTION_MESSAGE_CHARS
        || message.chars().count() <= MAX_EXCEPTION_MESSAGE_CHARS
    {
        return message.to_owned();
    }
    let mut out = truncate_chars(
        message,
        MAX_EXCEPTION_MESSAGE_CHARS - MESSAGE_TRUNCATION_SUFFIX.len(),
    )
    .to_owned();
    out.push_str(MESSAGE_TRUNCATION_SUFFIX);
    out
}

/// At most 65,536 characters, keeping whole lines from the head (go: whole frames, most
/// recent first, no marker); a single over-long line is cut.
pub(crate) fn truncate_stacktrace(stacktrace: &str) -> String {
    let stacktrace = stacktrace.trim_end();
    let head = truncate_chars(stacktrace, MAX_STACKTRACE_CHARS);
    if head.len() == stacktrace.len() {
        return head.to_owned();
    }
    let cut = match head.rfind('\n') {
        Some(newline) if newline > 0 => &head[..newline],
        _ => head,
    };
    cut.trim_end().to_owned()
}

#[cfg(test)]
mod tests;

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
mod tests {
    use super::*;

    fn kv(value: &AttrValue) -> Vec<(&str, &AttrValue)> {
        match value {
            AttrValue::KvList(values) => values.iter().map(|a| (&*a.key, &a.value)).collect(),
            other => panic!("{other:?}"),
        }
    }

    fn s(value: &str) -> AttrValue {
        AttrValue::String(value.to_owned())
    }

    #[test]
    fn startup_body_is_compact_json_in_py_key_order() {
        let versions = vec![
            ("rust".to_owned(), "1.89.0".to_owned()),
            ("actix-web".to_owned(), "4.18.1".to_owned()),
            ("rust".to_owned(), "again".to_owned()),
            ("app".to_owned(), "1.2.3".to_owned()),
        ];
        let config = vec![
            ("capture_logs".to_owned(), serde_json::json!(true)),
            ("mask_headers".to_owned(), serde_json::json!([])),
            ("sample_rate".to_owned(), serde_json::json!(1.0)),
            ("sample_on_request".to_owned(), serde_json::json!(true)),
        ];
        let paths = vec![
            PathItem::new("get", "/hello"),
            PathItem::new("GET", "/items/{item_id}").summary("Item"),
            PathItem::new("HEAD", "/hello"),
            PathItem::new("OPTIONS", "/hello"),
            PathItem::new("GET", "/hello"),
            PathItem::new("POST", "/echo"),
        ];
        let record = startup_event(
            7,
            &StartupInfo {
                framework: "actix-web",
                versions: &versions,
                config: &config,
                paths: &paths,
                openapi: Some("{\"openapi\": \"3.1.0\"}"),
            },
        );
        assert_eq!(record.event_name.as_deref(), Some("apitally.app.startup"));
        assert_eq!(record.scope.name, "apitally");
        assert_eq!(record.scope.version, "");
        assert_eq!(
            (record.time_unix_nano, record.observed_time_unix_nano),
            (7, 7)
        );
        assert_eq!((record.severity_number, record.flags), (0, 0));
        assert_eq!((record.trace_id, record.span_id), (None, None));
        let Some(AttrValue::String(body)) = &record.body else {
            panic!("{:?}", record.body)
        };
        assert_eq!(
            body,
            "{\"framework\":\"actix-web\",\"versions\":{\"rust\":\"1.89.0\",\"actix-web\":\
             \"4.18.1\",\"app\":\"1.2.3\"},\"config\":{\"capture_logs\":true,\"mask_headers\":[],\
             \"sample_rate\":1.0,\"sample_on_request\":true},\"paths\":[{\"method\":\"GET\",\
             \"path\":\"/hello\"},{\"method\":\"GET\",\"path\":\"/items/{item_id}\",\"summary\":\
             \"Item\"},{\"method\":\"POST\",\"path\":\"/echo\"}],\"openapi\":\
             \"{\\\"openapi\\\": \\\"3.1.0\\\"}\"}"
        );
        let parsed: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(parsed["paths"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn startup_openapi_is_left_out_above_four_million_bytes() {
        let at_limit = "x".repeat(MAX_OPENAPI_BYTES);
        let above = "é".repeat(MAX_OPENAPI_BYTES / 2 + 1);
        for (openapi, included) in [(&at_limit, true), (&above, false)] {
            let record = startup_event(
                0,
                &StartupInfo {
                    framework: "actix-web",
                    versions: &[],
                    config: &[],
                    paths: &[],
                    openapi: Some(openapi),
                },
            );
            let Some(AttrValue::String(body)) = record.body else {
                panic!()
            };
            assert_eq!(body.contains("\"openapi\""), included);
            if !included {
                assert_eq!(
                    body,
                    "{\"framework\":\"actix-web\",\"versions\":{},\"config\":{},\"paths\":[]}"
                );
            }
        }
    }

    #[test]
    fn consumer_update_body_with_null_for_deleted_attributes() {
        let attributes = vec![
            ("plan".to_owned(), Some(" pro ".to_owned())),
            ("old_key".to_owned(), None),
            ("  ".to_owned(), Some("x".to_owned())),
            ("k".repeat(65), Some("x".to_owned())),
            ("long".to_owned(), Some("v".repeat(1_025))),
            ("empty".to_owned(), Some("   ".to_owned())),
            ("plan".to_owned(), Some("enterprise".to_owned())),
        ];
        let record = consumer_update_event(
            9,
            &ConsumerUpdate {
                identifier: " customer-42 ",
                name: Some("Customer 42"),
                group: Some("  "),
                attributes: &attributes,
            },
        )
        .unwrap();
        assert_eq!(
            record.event_name.as_deref(),
            Some("apitally.consumer.update")
        );
        let body = record.body.unwrap();
        let fields = kv(&body);
        assert_eq!(fields[0], ("identifier", &s("customer-42")));
        assert_eq!(fields[1], ("name", &s("Customer 42")));
        assert_eq!(fields[2].0, "attributes");
        assert_eq!(fields.len(), 3);
        assert_eq!(
            kv(fields[2].1),
            vec![
                ("plan", &s("enterprise")),
                ("old_key", &AttrValue::None),
                ("empty", &AttrValue::None),
            ]
        );
    }

    #[test]
    fn consumer_update_bounds_and_nothing_to_say() {
        let none = |identifier, name| {
            consumer_update_event(
                0,
                &ConsumerUpdate {
                    identifier,
                    name,
                    group: None,
                    attributes: &[],
                },
            )
        };
        assert!(none("   ", Some("name")).is_none());
        assert!(none("id", None).is_none());
        assert!(none("id", Some("  ")).is_none());
        let long_id = "i".repeat(200);
        let long_name = "n".repeat(100);
        let record = none(&long_id, Some(&long_name)).unwrap();
        let body = record.body.unwrap();
        let fields = kv(&body);
        assert_eq!(fields[0].1, &s(&"i".repeat(128)));
        assert_eq!(fields[1].1, &s(&"n".repeat(64)));
        // At most 10 keys; existing keys can still be updated.
        let attributes: Vec<_> = (0..12)
            .map(|i| (format!("k{i}"), Some("v".to_owned())))
            .chain([("k0".to_owned(), Some("w".to_owned()))])
            .collect();
        let record = consumer_update_event(
            0,
            &ConsumerUpdate {
                identifier: "id",
                name: None,
                group: None,
                attributes: &attributes,
            },
        )
        .unwrap();
        let body = record.body.unwrap();
        let attrs = kv(kv(&body)[1].1);
        assert_eq!(attrs.len(), 10);
        assert_eq!(attrs[0], ("k0", &s("w")));
    }

    #[test]
    fn validation_error_body_and_bounds() {
        let counts = vec![
            (Some("customer-42".to_owned()), 3),
            (None, 2),
            (Some(String::new()), 1),
            (Some("zero".to_owned()), 0),
            (Some("huge".to_owned()), u64::MAX),
        ];
        let long = "f".repeat(3_000);
        let record = validation_error_event(
            5,
            &ValidationErrorGroup {
                method: "POST",
                path: &"/p".repeat(1_500),
                source: &"s".repeat(40),
                field: &long,
                message: &long,
                error_type: &long,
                counts: &counts,
            },
        )
        .unwrap();
        assert_eq!(
            record.event_name.as_deref(),
            Some("apitally.request.validation_error")
        );
        let body = record.body.unwrap();
        let fields = kv(&body);
        let keys: Vec<_> = fields.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            ["method", "path", "source", "field", "message", "type", "counts"]
        );
        let len = |v: &AttrValue| match v {
            AttrValue::String(s) => s.chars().count(),
            other => panic!("{other:?}"),
        };
        assert_eq!(len(fields[1].1), 2_000);
        assert_eq!(len(fields[2].1), 32);
        assert_eq!(len(fields[3].1), 2_048);
        assert_eq!(len(fields[4].1), 2_048);
        assert_eq!(len(fields[5].1), 128);
        let AttrValue::Array(entries) = fields[6].1 else {
            panic!()
        };
        let entries: Vec<_> = entries.iter().map(kv).collect();
        assert_eq!(
            entries,
            vec![
                vec![
                    ("consumer", &s("customer-42")),
                    ("count", &AttrValue::Int(3))
                ],
                vec![("count", &AttrValue::Int(2))],
                vec![("count", &AttrValue::Int(1))],
                vec![
                    ("consumer", &s("huge")),
                    ("count", &AttrValue::Int(i64::from(u32::MAX)))
                ],
            ]
        );
    }

    #[test]
    fn error_methods_must_be_2_to_12_uppercase_letters_or_hyphens() {
        for valid in [
            "GET",
            "POST",
            "PROPFIND",
            "MKCALENDAR",
            "UPDATEREDIR-",
            "AB",
        ] {
            assert!(is_valid_error_method(valid), "{valid}");
        }
        for invalid in [
            "",
            "G",
            "get",
            "GET1",
            "TOOLONGMETHOD",
            "VERSION-CONTROL",
            "GÉT",
            "GE T",
            "G_T",
        ] {
            assert!(!is_valid_error_method(invalid), "{invalid}");
        }
        let group = |method| ValidationErrorGroup {
            method,
            path: "/a",
            source: "body",
            field: "name",
            message: "m",
            error_type: "t",
            counts: &[(None, 1)],
        };
        assert!(validation_error_event(0, &group("get")).is_none());
        assert!(validation_error_event(0, &group("GET")).is_some());
        let server = |method| ServerErrorGroup {
            method,
            path: "/a",
            error_type: "t",
            message: "m",
            stacktrace: "s",
            counts: &[(None, 1)],
        };
        assert!(server_error_event(0, &server("G3T")).is_none());
        assert!(server_error_event(0, &server("GET")).is_some());
        let no_counts = ServerErrorGroup {
            counts: &[(None, 0)],
            ..server("GET")
        };
        assert!(server_error_event(0, &no_counts).is_none());
    }

    #[test]
    fn server_error_body_and_bounds() {
        let message = format!("  {}  ", "m".repeat(3_000));
        let frames: String = (0..10_000).map(|i| format!("frame{i:05}\n")).collect();
        let record = server_error_event(
            1,
            &ServerErrorGroup {
                method: "GET",
                path: "/items/{id}",
                error_type: &"T".repeat(300),
                message: &message,
                stacktrace: &frames,
                counts: &[(None, 4)],
            },
        )
        .unwrap();
        assert_eq!(
            record.event_name.as_deref(),
            Some("apitally.request.server_error")
        );
        let body = record.body.unwrap();
        let fields = kv(&body);
        let keys: Vec<_> = fields.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            ["method", "path", "type", "message", "stacktrace", "counts"]
        );
        let AttrValue::String(error_type) = fields[2].1 else {
            panic!()
        };
        assert_eq!(error_type.len(), 256);
        let AttrValue::String(message) = fields[3].1 else {
            panic!()
        };
        assert_eq!(message.chars().count(), 2_048);
        assert!(message.starts_with("mmm") && message.ends_with("m... (truncated)"));
        let AttrValue::String(stacktrace) = fields[4].1 else {
            panic!()
        };
        assert!(stacktrace.len() <= 65_536);
        // Whole frames from the head.
        assert!(stacktrace.starts_with("frame00000\n"));
        assert!(stacktrace.ends_with(&format!("frame{:05}", 65_536 / 11 - 1)));
    }

    #[test]
    fn message_and_stacktrace_rules() {
        assert_eq!(exception_message("  short \n"), "short");
        let exact = "é".repeat(2_048);
        assert_eq!(exception_message(&exact), exact);
        let over = "é".repeat(2_049);
        let cut = exception_message(&over);
        assert_eq!(cut.chars().count(), 2_048);
        assert!(cut.ends_with("é... (truncated)"));
        let one_line = "x".repeat(70_000);
        assert_eq!(truncate_stacktrace(&one_line).len(), 65_536);
        assert_eq!(truncate_stacktrace("a\nb\n"), "a\nb");
        assert_eq!(validation_source("QueryString"), "query");
        assert_eq!(validation_source("path_params"), "path");
        assert_eq!(validation_source("cookies"), "cookie");
        assert_eq!(validation_source("items"), "");
    }
}

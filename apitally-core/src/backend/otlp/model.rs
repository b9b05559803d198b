//! Neutral values for what the SDK exports: spans, log records and their attributes
//! (protocol-v1.md §3, §4). [`super::encode`] turns them into OTLP messages.

// Span values are built in production for events and log records only: spans of logged requests are written
// by `wire`, and these types are the reference its output is tested against.

use std::borrow::Cow;

/// An attribute or log body value (§3.12).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AttrValue {
    /// Present without a value: OTLP's null (a deleted consumer attribute, §4.4).
    None,
    String(String),
    Int(i64),
    Double(f64),
    Bool(bool),
    /// Only for captured bodies that are not UTF-8 (§3.5; the reference span encoding).
    #[cfg(test)]
    Bytes(Vec<u8>),
    Array(Vec<AttrValue>),
    KvList(Vec<Attribute>),
}

impl AttrValue {
    /// An array of strings, such as captured header values (§3.4).
    #[cfg(test)]
    pub(crate) fn strings<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        AttrValue::Array(
            values
                .into_iter()
                .map(|s| AttrValue::String(s.into()))
                .collect(),
        )
    }
}

impl From<&str> for AttrValue {
    fn from(s: &str) -> Self {
        AttrValue::String(s.to_owned())
    }
}

impl From<String> for AttrValue {
    fn from(s: String) -> Self {
        AttrValue::String(s)
    }
}

impl From<i64> for AttrValue {
    fn from(n: i64) -> Self {
        AttrValue::Int(n)
    }
}

impl From<f64> for AttrValue {
    fn from(n: f64) -> Self {
        AttrValue::Double(n)
    }
}

impl From<bool> for AttrValue {
    fn from(b: bool) -> Self {
        AttrValue::Bool(b)
    }
}

/// A key and its value. Keys known at compile time are borrowed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Attribute {
    pub(crate) key: Cow<'static, str>,
    pub(crate) value: AttrValue,
}

impl Attribute {
    pub(crate) fn new(key: impl Into<Cow<'static, str>>, value: impl Into<AttrValue>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// An instrumentation scope: `apitally-actix` + crate version for SERVER spans (§3.2), the
/// tracing target for app logs (§4.3), `apitally` without version for events and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Scope {
    pub(crate) name: Cow<'static, str>,
    /// Empty for none.
    pub(crate) version: Cow<'static, str>,
}

impl Scope {
    #[cfg(test)]
    pub(crate) fn new(
        name: impl Into<Cow<'static, str>>,
        version: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
        }
    }

    /// The `apitally` scope of internal events and metrics (§4.2, §5.4): no version.
    pub(crate) const fn apitally() -> Self {
        Self {
            name: Cow::Borrowed(super::APITALLY_SCOPE),
            version: Cow::Borrowed(""),
        }
    }
}

#[cfg(test)]
/// OTLP span kinds (`Span.SpanKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpanKind {
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

#[cfg(test)]
/// A span's status: unset below 500, error from 500 on or for an escaped panic (§3.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum SpanStatus {
    #[default]
    Unset,
    Error {
        /// Empty for none (go); `"<Type>: <message>"` for an escaped error (py).
        message: String,
    },
}

#[cfg(test)]
/// The parent of a span: a local span, or the remote caller of a continued W3C trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parent {
    pub(crate) span_id: [u8; 8],
    pub(crate) remote: bool,
}

#[cfg(test)]
/// A span event, such as `exception` (§3.7).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpanEvent {
    pub(crate) name: Cow<'static, str>,
    pub(crate) time_unix_nano: u64,
    pub(crate) attributes: Vec<Attribute>,
}

#[cfg(test)]
/// One finished span, ready to encode.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpanData {
    pub(crate) scope: Scope,
    pub(crate) trace_id: [u8; 16],
    pub(crate) span_id: [u8; 8],
    pub(crate) parent: Option<Parent>,
    /// The W3C `tracestate` of the trace, usually empty.
    pub(crate) trace_state: String,
    pub(crate) name: String,
    pub(crate) kind: SpanKind,
    pub(crate) start_time_unix_nano: u64,
    pub(crate) end_time_unix_nano: u64,
    pub(crate) status: SpanStatus,
    pub(crate) attributes: Vec<Attribute>,
    pub(crate) events: Vec<SpanEvent>,
    pub(crate) dropped_attributes_count: u32,
    pub(crate) dropped_events_count: u32,
}

#[cfg(test)]
impl SpanData {
    /// `Span.flags` as py 1.0.0 sends them: `SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK` (0x100), plus
    /// `SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK` (0x200) when the parent is remote; no trace flags
    /// (§3.2: what the server is known to accept).
    pub(crate) fn flags(&self) -> u32 {
        match self.parent {
            Some(Parent { remote: true, .. }) => 0x300,
            _ => 0x100,
        }
    }
}

/// A log record: an application log of a kept request (§4.3) or an internal event (§4.2-4.6).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LogRecordData {
    pub(crate) scope: Scope,
    pub(crate) time_unix_nano: u64,
    pub(crate) observed_time_unix_nano: u64,
    /// OTel severity number (DEBUG 5, INFO 9, WARN 13, ERROR 17, FATAL 21, TRACE 1); 0 for none.
    pub(crate) severity_number: i32,
    /// Empty for none.
    pub(crate) severity_text: Cow<'static, str>,
    pub(crate) body: Option<AttrValue>,
    pub(crate) trace_id: Option<[u8; 16]>,
    pub(crate) span_id: Option<[u8; 8]>,
    /// The W3C trace flags of the span the record was emitted in; 0 without span.
    pub(crate) flags: u32,
    /// Only for internal `apitally.*` events; application records never carry one.
    pub(crate) event_name: Option<Cow<'static, str>>,
    pub(crate) attributes: Vec<Attribute>,
}

impl LogRecordData {
    /// An internal event: scope `apitally`, no trace context, no severity (§4.1).
    pub(crate) fn event(name: &'static str, time_unix_nano: u64, body: AttrValue) -> Self {
        Self {
            scope: Scope::apitally(),
            time_unix_nano,
            observed_time_unix_nano: time_unix_nano,
            severity_number: 0,
            severity_text: Cow::Borrowed(""),
            body: Some(body),
            trace_id: None,
            span_id: None,
            flags: 0,
            event_name: Some(Cow::Borrowed(name)),
            attributes: Vec::new(),
        }
    }

    /// Whether this is an internal event (which the encoder leaves untruncated, as py does).
    pub(crate) fn is_internal_event(&self) -> bool {
        self.scope.name == super::APITALLY_SCOPE
    }
}

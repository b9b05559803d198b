//! The fields of a captured event or span, bounded: the message, the others as text (events)
//! or JSON attributes (spans), and the `otel.*` kind and status.

use std::fmt::Write as _;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};

use crate::request_log::{MAX_FIELDS, MAX_FIELD_CHARS, MAX_LOG_MESSAGE_CHARS};

/// Collects fields, bounded: the message, the others as text (events) or JSON attributes
/// (spans), at most [`MAX_FIELDS`] of at most [`MAX_FIELD_CHARS`] characters. Values are
/// formatted into a bounded writer: a huge `Debug` value costs its first bytes, not all of them.
#[derive(Default)]
pub(super) struct Fields {
    pub(super) message: String,
    pub(super) fields: Vec<(String, String)>,
    pub(super) attributes: Map<String, Value>,
    pub(super) kind: Option<String>,
    pub(super) status: Option<String>,
    /// Whether the other fields are kept as text (events) or as attributes (spans).
    pub(super) as_text: bool,
}

/// A `fmt::Write` that keeps at most `max` characters and then stops the formatting.
struct Bounded<'a> {
    out: &'a mut String,
    chars: usize,
    max: usize,
}

impl std::fmt::Write for Bounded<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self.max - self.chars;
        match s.char_indices().nth(room) {
            None => {
                self.chars += s.chars().count();
                self.out.push_str(s);
                Ok(())
            }
            Some((at, _)) => {
                self.out.push_str(&s[..at]);
                self.chars = self.max;
                Err(std::fmt::Error)
            }
        }
    }
}

/// `value` as text, at most `max` characters.
fn bounded_text_of(value: &dyn std::fmt::Display, max: usize) -> String {
    let mut out = String::new();
    let _ = write!(
        Bounded {
            out: &mut out,
            chars: 0,
            max,
        },
        "{value}"
    );
    out
}

/// `value` as text, at most [`MAX_FIELD_CHARS`] characters.
fn bounded_text(value: &dyn std::fmt::Display) -> String {
    bounded_text_of(value, MAX_FIELD_CHARS)
}

/// The span kinds and statuses OpenTelemetry knows, from the text of an `otel.*` field.
fn known(text: &str, words: &[&'static str]) -> Option<String> {
    words
        .iter()
        .find(|w| w.eq_ignore_ascii_case(text.trim()))
        .map(|w| (*w).to_owned())
}

impl Fields {
    pub(super) fn for_event() -> Self {
        Self {
            as_text: true,
            ..Self::default()
        }
    }

    fn put(&mut self, field: &Field, value: impl FnOnce() -> Value, text: &dyn std::fmt::Display) {
        let name = field.name();
        match name {
            // One character more than a message keeps, so that cutting it is seen (and marked).
            "message" => self.message = bounded_text_of(text, MAX_LOG_MESSAGE_CHARS + 1),
            "otel.kind" => {
                self.kind = known(
                    &bounded_text(text),
                    &["INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"],
                );
            }
            "otel.status_code" => {
                self.status = known(&bounded_text(text), &["OK", "ERROR", "UNSET"]);
            }
            n if n.starts_with("log.") || n.starts_with("otel.") => {}
            _ if self.as_text => {
                if self.fields.len() < MAX_FIELDS {
                    self.fields.push((name.to_owned(), bounded_text(text)));
                }
            }
            _ => {
                if self.attributes.len() < MAX_FIELDS || self.attributes.contains_key(name) {
                    self.attributes.insert(name.to_owned(), value());
                }
            }
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        struct AsDisplay<'a>(&'a dyn std::fmt::Debug);
        impl std::fmt::Display for AsDisplay<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
        let text = AsDisplay(value);
        self.put(field, || Value::String(bounded_text(&text)), &text);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, || Value::String(bounded_text(&value)), &value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, || value.into(), &value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, || value.into(), &value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, || value.into(), &value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, || value.into(), &value);
    }
}

//! For the attributes an app sets on a request, see [`RequestAttributes`].

use crate::AttributeValue;

/// Most attributes one request keeps; a key past it is not kept (existing keys update).
pub const MAX_REQUEST_ATTRIBUTES: usize = 32;
/// Longest key kept, in `char`s; a longer key is not kept.
pub const MAX_REQUEST_ATTRIBUTE_KEY_CHARS: usize = 128;
/// Longest text value kept, in `char`s; a longer one is cut.
pub const MAX_REQUEST_ATTRIBUTE_VALUE_CHARS: usize = 4096;

/// Key prefixes of the attributes Apitally writes itself (and OpenTelemetry's semantic
/// conventions for a server span): an app's attribute cannot replace them.
const RESERVED: [&str; 9] = [
    "apitally.",
    "http.",
    "url.",
    "client.",
    "server.",
    "user_agent.",
    "network.",
    "exception.",
    "otel.",
];

/// The attributes an app set on one request (`set_request_attribute` on an adapter's request
/// extension trait), in the order first set: written on the request's SERVER span in Apitally
/// 1.x (with `apitally.request.custom_attribute_keys`), and shown to `sample_on_response` and
/// the masking callbacks. Hub v2 has no field for them.
///
/// Bounded as they are set: keys are trimmed and 1 to 128 characters, not in a namespace
/// Apitally writes itself (`http.`, `url.`, `client.`, `apitally.`, ...); at most 32 keys;
/// text values cut to 4,096 characters. [`AttributeValue::None`] removes a key. Values whose
/// key looks sensitive (`password`, `token`, ...) are masked before they leave the app, like
/// headers and body fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestAttributes(Vec<(String, AttributeValue)>);

impl RequestAttributes {
    /// Sets `key` to `value` within the bounds above; tells whether it was kept.
    pub fn set(&mut self, key: &str, value: AttributeValue) -> bool {
        let key = key.trim();
        if key.is_empty()
            || key.chars().count() > MAX_REQUEST_ATTRIBUTE_KEY_CHARS
            || RESERVED.iter().any(|prefix| key.starts_with(prefix))
        {
            return false;
        }
        let value = match value {
            AttributeValue::String(mut text) => {
                let cut =
                    crate::util::truncate_chars(&text, MAX_REQUEST_ATTRIBUTE_VALUE_CHARS).len();
                text.truncate(cut);
                AttributeValue::String(text)
            }
            AttributeValue::Float(x) if !x.is_finite() => AttributeValue::String(x.to_string()),
            other => other,
        };
        let at = self.0.iter().position(|(k, _)| k == key);
        match (at, value) {
            (Some(at), AttributeValue::None) => {
                self.0.remove(at);
            }
            (None, AttributeValue::None) => {}
            (Some(at), value) => self.0[at].1 = value,
            (None, value) if self.0.len() < MAX_REQUEST_ATTRIBUTES => {
                self.0.push((key.to_owned(), value));
            }
            (None, _) => return false,
        }
        true
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&AttributeValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The attributes, in the order first set.
    pub fn as_slice(&self) -> &[(String, AttributeValue)] {
        &self.0
    }

    /// Whether none is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_are_bounded_and_reserved_names_refused() {
        let mut attrs = RequestAttributes::default();
        assert!(attrs.set(" tenant ", "acme".into()));
        assert!(attrs.set("rows", 12.into()));
        assert!(!attrs.set("http.route", "/x".into()));
        assert!(!attrs.set("apitally.consumer.identifier", "x".into()));
        assert!(!attrs.set("", "x".into()));
        assert!(!attrs.set(&"k".repeat(129), "x".into()));
        assert!(attrs.set("note", "n".repeat(5_000).into()));
        assert_eq!(
            attrs.get("note"),
            Some(&AttributeValue::String("n".repeat(4_096)))
        );
        assert!(attrs.set("rows", 13.into()));
        assert_eq!(attrs.get("rows"), Some(&AttributeValue::Int(13)));
        assert!(attrs.set("note", AttributeValue::None));
        assert_eq!(attrs.get("note"), None);
        assert_eq!(attrs.as_slice()[0].0, "tenant");
        for i in 0..40 {
            attrs.set(&format!("k{i}"), true.into());
        }
        assert_eq!(attrs.as_slice().len(), MAX_REQUEST_ATTRIBUTES);
        assert!(
            attrs.set("tenant", "other".into()),
            "an existing key updates"
        );
    }
}

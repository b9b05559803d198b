//! For consumer documentation, see [`Consumer`].

/// Longest identifier kept, in `char`s (protocol.md §8).
pub const MAX_IDENTIFIER_CHARS: usize = 128;
/// Longest name or group kept, in `char`s (protocol.md §8).
pub const MAX_NAME_CHARS: usize = 64;
/// Most attributes a consumer has (protocol-v1.md §3.6).
pub(crate) const MAX_ATTRIBUTES: usize = 10;
/// Longest attribute key, in `char`s.
pub(crate) const MAX_ATTRIBUTE_KEY_CHARS: usize = 64;
/// Longest attribute value, in `char`s; a longer value is not kept.
pub(crate) const MAX_ATTRIBUTE_VALUE_CHARS: usize = 1024;

/// The API consumer a request is attributed to: an identifier, and optionally a display name and
/// a group.
///
/// Values are normalised as the official SDKs do: surrounding white space is trimmed, the
/// identifier is cut to 128 characters and the name and group to 64 (at `char` boundaries, never
/// inside a UTF-8 sequence), and an empty name or group is no name or group. A consumer whose
/// identifier is empty after trimming counts as no consumer: the request stays anonymous.
///
/// ```
/// # use apitally_core as apitally;
/// use apitally::Consumer;
///
/// let consumer = Consumer::new("  customer-42 ").name("Customer 42").group("Enterprise");
/// assert_eq!(consumer.get_identifier(), "customer-42");
/// assert_eq!(consumer.get_name(), Some("Customer 42"));
/// assert_eq!(consumer.get_group(), Some("Enterprise"));
///
/// // A plain string is an identifier only.
/// let anonymous: Consumer = "   ".into();
/// assert!(anonymous.is_anonymous());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Consumer {
    identifier: String,
    name: Option<String>,
    group: Option<String>,
    /// In the order first set; `None` deletes the key at Apitally.
    attributes: Vec<(String, Option<String>)>,
}

impl Consumer {
    /// Creates a consumer with the given identifier, trimmed and cut to 128 characters.
    pub fn new(identifier: impl Into<String>) -> Self {
        Self {
            identifier: normalise(identifier.into(), MAX_IDENTIFIER_CHARS),
            name: None,
            group: None,
            attributes: Vec::new(),
        }
    }

    /// Sets the display name, trimmed and cut to 64 characters; an empty name is no name.
    ///
    /// Defaults to no name.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(normalise(name.into(), MAX_NAME_CHARS)).filter(|n| !n.is_empty());
        self
    }

    /// Sets the group, trimmed and cut to 64 characters; an empty group is no group.
    ///
    /// Defaults to no group.
    #[must_use]
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(normalise(group.into(), MAX_NAME_CHARS)).filter(|g| !g.is_empty());
        self
    }

    /// Sets an attribute of the consumer, such as its plan or its region, shown with the
    /// consumer in Apitally 1.x (sent in the `apitally.consumer.update` event when it changes;
    /// hub v2 has no field for them, and ignores them).
    ///
    /// As the official SDKs take them: the key is trimmed and must be 1 to 64 characters; the
    /// value is a string (trimmed), a number or a bool (as its text, `true`/`false`), and an
    /// empty value or `None` deletes the attribute at Apitally; a value longer than 1,024
    /// characters, or an 11th key, is not kept. Setting a key again replaces its value.
    ///
    /// ```
    /// # use apitally_core as apitally;
    /// use apitally::Consumer;
    ///
    /// let consumer = Consumer::new("customer-42")
    ///     .attribute("plan", "enterprise")
    ///     .attribute("seats", 250)
    ///     .attribute("trial", false)
    ///     .attribute("region", None::<&str>); // deleted
    /// assert_eq!(
    ///     consumer.get_attributes(),
    ///     [
    ///         ("plan".to_owned(), Some("enterprise".to_owned())),
    ///         ("seats".to_owned(), Some("250".to_owned())),
    ///         ("trial".to_owned(), Some("false".to_owned())),
    ///         ("region".to_owned(), None),
    ///     ]
    /// );
    /// ```
    #[must_use]
    pub fn attribute(mut self, key: impl Into<String>, value: impl Into<AttributeValue>) -> Self {
        let key = key.into();
        let key = key.trim();
        let value = value.into().into_text();
        let value = value.as_deref().map(str::trim).filter(|v| !v.is_empty());
        if key.is_empty()
            || key.chars().count() > MAX_ATTRIBUTE_KEY_CHARS
            || value.is_some_and(|v| v.chars().count() > MAX_ATTRIBUTE_VALUE_CHARS)
        {
            return self;
        }
        let value = value.map(str::to_owned);
        if let Some(existing) = self.attributes.iter_mut().find(|(k, _)| k == key) {
            existing.1 = value;
        } else if self.attributes.len() < MAX_ATTRIBUTES {
            self.attributes.push((key.to_owned(), value));
        }
        self
    }

    /// The attributes, in the order first set (`None`: deleted).
    pub fn get_attributes(&self) -> &[(String, Option<String>)] {
        &self.attributes
    }

    /// Whether there is anything to tell Apitally about the consumer beyond its identifier.
    pub(crate) fn has_details(&self) -> bool {
        self.name.is_some() || self.group.is_some() || !self.attributes.is_empty()
    }

    /// The normalised identifier (empty for an anonymous consumer).
    pub fn get_identifier(&self) -> &str {
        &self.identifier
    }

    /// The normalised display name, if any.
    pub fn get_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The normalised group, if any.
    pub fn get_group(&self) -> Option<&str> {
        self.group.as_deref()
    }

    /// Whether the identifier is empty, in which case requests are recorded without consumer.
    pub fn is_anonymous(&self) -> bool {
        self.identifier.is_empty()
    }
}

impl From<&str> for Consumer {
    fn from(identifier: &str) -> Self {
        Consumer::new(identifier)
    }
}

impl From<String> for Consumer {
    fn from(identifier: String) -> Self {
        Consumer::new(identifier)
    }
}

/// Trims `value` and cuts it to at most `max_chars` characters, reusing the allocation when the
/// value is already clean.
fn normalise(mut value: String, max_chars: usize) -> String {
    let trimmed = crate::util::truncate_chars(value.trim(), max_chars);
    if trimmed.len() == value.len() {
        return value;
    }
    let start = trimmed.as_ptr() as usize - value.as_ptr() as usize;
    let end = start + trimmed.len();
    value.truncate(end);
    value.drain(..start);
    value
}

/// The value of a consumer attribute or a request attribute: text, a number, a bool, or
/// nothing (which deletes the attribute). Made from the usual types with `From`, so that
/// `.attribute("seats", 250)` and `.attribute("plan", "pro")` read as they should.
///
/// ```
/// # use apitally_core as apitally;
/// use apitally::AttributeValue;
///
/// assert_eq!(AttributeValue::from("pro"), AttributeValue::String("pro".into()));
/// assert_eq!(AttributeValue::from(250), AttributeValue::Int(250));
/// assert_eq!(AttributeValue::from(None::<String>), AttributeValue::None);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AttributeValue {
    /// Text.
    String(String),
    /// A whole number.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// No value: deletes the attribute.
    None,
}

impl AttributeValue {
    /// The value as text, as Apitally keeps consumer attributes (`None` for no value).
    pub(crate) fn into_text(self) -> Option<String> {
        match self {
            Self::String(s) => Some(s),
            Self::Int(n) => Some(n.to_string()),
            Self::Float(x) => Some(x.to_string().to_ascii_lowercase()),
            Self::Bool(b) => Some(b.to_string()),
            Self::None => None,
        }
    }
}

impl From<String> for AttributeValue {
    fn from(value: String) -> Self {
        Self::String(value)
    }
}

impl From<&str> for AttributeValue {
    fn from(value: &str) -> Self {
        Self::String(value.to_owned())
    }
}

impl From<&String> for AttributeValue {
    fn from(value: &String) -> Self {
        Self::String(value.clone())
    }
}

impl From<bool> for AttributeValue {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

impl From<f64> for AttributeValue {
    fn from(value: f64) -> Self {
        Self::Float(value)
    }
}

impl From<f32> for AttributeValue {
    fn from(value: f32) -> Self {
        Self::Float(f64::from(value))
    }
}

macro_rules! from_int {
    ($($ty:ty),*) => {$(
        impl From<$ty> for AttributeValue {
            fn from(value: $ty) -> Self {
                Self::Int(i64::from(value))
            }
        }
    )*};
}

from_int!(i8, i16, i32, i64, u8, u16, u32);

impl From<u64> for AttributeValue {
    fn from(value: u64) -> Self {
        i64::try_from(value).map_or_else(|_| Self::String(value.to_string()), Self::Int)
    }
}

impl From<usize> for AttributeValue {
    fn from(value: usize) -> Self {
        Self::from(value as u64)
    }
}

impl<T: Into<AttributeValue>> From<Option<T>> for AttributeValue {
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::None, Into::into)
    }
}

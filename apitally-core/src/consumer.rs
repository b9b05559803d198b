//! For consumer documentation, see [`Consumer`].

/// Longest identifier kept, in `char`s (protocol.md §8).
pub const MAX_IDENTIFIER_CHARS: usize = 128;
/// Longest name or group kept, in `char`s (protocol.md §8).
pub const MAX_NAME_CHARS: usize = 64;

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
}

impl Consumer {
    /// Creates a consumer with the given identifier, trimmed and cut to 128 characters.
    pub fn new(identifier: impl Into<String>) -> Self {
        Self {
            identifier: normalise(identifier.into(), MAX_IDENTIFIER_CHARS),
            name: None,
            group: None,
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

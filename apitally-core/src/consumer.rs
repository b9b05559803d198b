//! For consumer documentation, see [`Consumer`].

use std::sync::Mutex;

use hashbrown::HashMap;

use serde::Serialize;

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
    let trimmed = truncate_chars(value.trim(), max_chars);
    if trimmed.len() == value.len() {
        return value;
    }
    let start = trimmed.as_ptr() as usize - value.as_ptr() as usize;
    let end = start + trimmed.len();
    value.truncate(end);
    value.drain(..start);
    value
}

/// The longest prefix of `s` with at most `max_chars` characters.
pub(crate) fn truncate_chars(s: &str, max_chars: usize) -> &str {
    // No more bytes than the limit means no more characters either.
    if s.len() <= max_chars {
        return s;
    }
    match s.char_indices().nth(max_chars) {
        Some((idx, _)) => &s[..idx],
        None => s,
    }
}

/// One item of the `consumers` list of a sync payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ConsumerItem {
    pub(crate) identifier: String,
    pub(crate) name: Option<String>,
    pub(crate) group: Option<String>,
}

#[derive(Debug, Default)]
struct RegistryEntry {
    name: Option<String>,
    group: Option<String>,
    updated: bool,
}

/// Remembers consumers that have a name or group and emits the new or changed ones at each sync
/// (protocol.md §8).
///
/// Sharded by thread, like the request counter, so that workers recording at once never meet on
/// one lock: a consumer seen by several threads is kept once per thread and reported once. Bounded
/// in size: past `capacity` entries, new consumers are counted and not registered (their
/// requests are still counted under their identifier).
#[derive(Debug)]
pub(crate) struct ConsumerRegistry {
    shards: crate::metrics::Shards<HashMap<Box<str>, RegistryEntry>>,
    len: std::sync::atomic::AtomicUsize,
    capacity: usize,
    overflow: std::sync::atomic::AtomicU64,
}

impl ConsumerRegistry {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            shards: std::array::from_fn(|_| crate::metrics::Padded(Mutex::new(HashMap::new()))),
            len: Default::default(),
            capacity,
            overflow: Default::default(),
        }
    }

    /// Notes a consumer seen on a request. Consumers without name and group are not registered.
    pub(crate) fn observe(&self, consumer: &Consumer) {
        use std::sync::atomic::Ordering;
        if consumer.is_anonymous() || (consumer.name.is_none() && consumer.group.is_none()) {
            return;
        }
        let shard = &self.shards[crate::metrics::thread_shard()];
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(consumer.identifier.as_str()) {
            Some(entry) => {
                // An empty value never erases a stored one.
                if let Some(name) = &consumer.name {
                    if entry.name.as_ref() != Some(name) {
                        entry.name = Some(name.clone());
                        entry.updated = true;
                    }
                }
                if let Some(group) = &consumer.group {
                    if entry.group.as_ref() != Some(group) {
                        entry.group = Some(group.clone());
                        entry.updated = true;
                    }
                }
            }
            None => {
                if self.len.load(Ordering::Relaxed) >= self.capacity {
                    self.overflow.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                self.len.fetch_add(1, Ordering::Relaxed);
                map.insert(
                    consumer.identifier.as_str().into(),
                    RegistryEntry {
                        name: consumer.name.clone(),
                        group: consumer.group.clone(),
                        updated: true,
                    },
                );
            }
        }
    }

    /// The consumers that are new or changed since the last call, and the number of consumers
    /// that could not be registered because the registry was full.
    pub(crate) fn drain_updated(&self) -> (Vec<ConsumerItem>, u64) {
        let mut items = Vec::new();
        for shard in &self.shards {
            let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
            for (identifier, entry) in map.iter_mut().filter(|(_, e)| e.updated) {
                entry.updated = false;
                items.push(ConsumerItem {
                    identifier: identifier.to_string(),
                    name: entry.name.clone(),
                    group: entry.group.clone(),
                });
            }
        }
        items.sort_by(|a, b| a.identifier.cmp(&b.identifier));
        items.dedup_by(|later, earlier| later.identifier == earlier.identifier);
        let overflow = self.overflow.swap(0, std::sync::atomic::Ordering::Relaxed);
        (items, overflow)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_identifier_name_and_group() {
        let c = Consumer::new("\t id-1 \n").name("  ").group(" Group ");
        assert_eq!(c.get_identifier(), "id-1");
        assert_eq!(c.get_name(), None);
        assert_eq!(c.get_group(), Some("Group"));
    }

    #[test]
    fn cuts_at_char_boundaries() {
        let long = "é".repeat(200);
        let c = Consumer::new(long.clone())
            .name(long.clone())
            .group("ü".repeat(65));
        assert_eq!(c.get_identifier().chars().count(), 128);
        assert_eq!(c.get_identifier().len(), 256);
        assert_eq!(c.get_name().unwrap().chars().count(), 64);
        assert_eq!(c.get_group().unwrap().chars().count(), 64);
        let exact = "a".repeat(128);
        assert_eq!(Consumer::new(exact.clone()).get_identifier(), exact);
        // Trimming happens before cutting.
        let padded = format!("   {}", "b".repeat(130));
        assert_eq!(Consumer::new(padded).get_identifier(), "b".repeat(128));
    }

    #[test]
    fn empty_identifier_is_anonymous() {
        assert!(Consumer::new("").is_anonymous());
        assert!(Consumer::from(" \t ").is_anonymous());
        assert!(!Consumer::from(String::from("x")).is_anonymous());
    }

    #[test]
    fn registry_emits_new_and_changed_only() {
        let registry = ConsumerRegistry::new(10);
        // No name and no group: not registered.
        registry.observe(&Consumer::new("plain"));
        assert_eq!(registry.drain_updated().0, vec![]);

        let c = Consumer::new("c1").name("One");
        registry.observe(&c);
        registry.observe(&c);
        let (items, _) = registry.drain_updated();
        assert_eq!(
            items,
            vec![ConsumerItem {
                identifier: "c1".into(),
                name: Some("One".into()),
                group: None
            }]
        );
        // Same again: nothing new.
        registry.observe(&c);
        assert!(registry.drain_updated().0.is_empty());
        // A group appears, the name is omitted: the stored name is kept.
        registry.observe(&Consumer::new("c1").group("G"));
        let (items, _) = registry.drain_updated();
        assert_eq!(items[0].name.as_deref(), Some("One"));
        assert_eq!(items[0].group.as_deref(), Some("G"));
        // A changed name is re-sent.
        registry.observe(&Consumer::new("c1").name("Uno"));
        assert_eq!(registry.drain_updated().0[0].name.as_deref(), Some("Uno"));
    }

    #[test]
    fn registry_is_bounded() {
        let registry = ConsumerRegistry::new(3);
        for i in 0..10u64 {
            registry.observe(&Consumer::new(format!("c{i}")).name("n"));
        }
        assert_eq!(registry.len(), 3);
        let (items, overflow) = registry.drain_updated();
        assert_eq!(items.len(), 3);
        assert_eq!(overflow, 7);
    }
}

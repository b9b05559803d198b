//! The consumers a sync window names (hub v2 `consumers`): see [`ConsumerRegistry`].

use hashbrown::HashMap;
use serde::Serialize;

use crate::Consumer;

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
    shards: crate::util::Shards<HashMap<Box<str>, RegistryEntry>>,
    len: std::sync::atomic::AtomicUsize,
    capacity: usize,
    overflow: std::sync::atomic::AtomicU64,
}

impl ConsumerRegistry {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            shards: std::array::from_fn(|_| {
                crate::util::Padded(std::sync::Mutex::new(HashMap::new()))
            }),
            len: Default::default(),
            capacity,
            overflow: Default::default(),
        }
    }

    /// Notes a consumer seen on a request. Consumers without name and group are not registered.
    pub(crate) fn observe(&self, consumer: &Consumer) {
        use std::sync::atomic::Ordering;
        if consumer.is_anonymous()
            || (consumer.get_name().is_none() && consumer.get_group().is_none())
        {
            return;
        }
        let shard = &self.shards[crate::util::thread_shard()];
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(consumer.get_identifier()) {
            Some(entry) => {
                // An empty value never erases a stored one.
                if let Some(name) = consumer.get_name() {
                    if entry.name.as_deref() != Some(name) {
                        entry.name = Some(name.to_owned());
                        entry.updated = true;
                    }
                }
                if let Some(group) = consumer.get_group() {
                    if entry.group.as_deref() != Some(group) {
                        entry.group = Some(group.to_owned());
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
                    consumer.get_identifier().into(),
                    RegistryEntry {
                        name: consumer.get_name().map(str::to_owned),
                        group: consumer.get_group().map(str::to_owned),
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

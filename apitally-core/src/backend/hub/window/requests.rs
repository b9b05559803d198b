//! The request counter: one entry per (consumer, method, route, status) and sync window.

use std::{
    hash::{BuildHasher, Hash, Hasher},
    sync::atomic::{AtomicU64, AtomicUsize, Ordering},
};

use hashbrown::{DefaultHashBuilder, HashTable};
use serde::Serialize;

use super::histogram::{response_time_bin, size_bin, Histogram};
use crate::{
    util::{lock, thread_shard, Shards},
    RequestRecord,
};

/// Extra keys allowed, past the cap, for requests without consumer: when a flood of distinct
/// consumers fills the window, their requests are folded into these per-endpoint keys so that
/// endpoint totals stay exact.
const ANONYMOUS_RESERVE: usize = 1_024;

#[derive(Debug, Default)]
struct RequestStats {
    count: u64,
    request_size_sum: u64,
    response_size_sum: u64,
    response_times: Histogram,
    request_sizes: Histogram,
    response_sizes: Histogram,
}

impl RequestStats {
    /// (Always inlined: called out of line, saving and restoring registers cost a fifth of it.)
    #[inline(always)]
    fn add(&mut self, record: &RequestRecord<'_>) {
        self.count += 1;
        self.response_times
            .add(response_time_bin(record.response_time));
        if let Some(size) = record.request_size {
            self.request_size_sum = self.request_size_sum.saturating_add(size);
            self.request_sizes.add(size_bin(size));
        }
        if let Some(size) = record.response_size {
            self.response_size_sum = self.response_size_sum.saturating_add(size);
            self.response_sizes.add(size_bin(size));
        }
    }
}

#[derive(Debug)]
struct RequestEntry {
    hash: u64,
    consumer: Option<Box<str>>,
    method: Box<str>,
    route: Box<str>,
    status: u16,
    stats: RequestStats,
}

impl RequestEntry {
    #[inline]
    fn matches(&self, consumer: Option<&str>, record: &RequestRecord<'_>) -> bool {
        self.status == record.status
            && *self.route == *record.route
            && *self.method == *record.method
            && self.consumer.as_deref() == consumer
    }
}

/// One item of the `requests` list of a sync payload (protocol.md §4.3).
#[derive(Debug, Serialize)]
pub(crate) struct RequestItem {
    pub(crate) consumer: Option<Box<str>>,
    pub(crate) method: Box<str>,
    pub(crate) path: Box<str>,
    pub(crate) status_code: u16,
    pub(crate) request_count: u64,
    pub(crate) request_size_sum: u64,
    pub(crate) response_size_sum: u64,
    pub(crate) response_times: Histogram,
    pub(crate) request_sizes: Histogram,
    pub(crate) response_sizes: Histogram,
}

impl RequestItem {
    fn key(&self) -> (&str, &str, u16, Option<&str>) {
        (
            &self.path,
            &self.method,
            self.status_code,
            self.consumer.as_deref(),
        )
    }

    fn merge(&mut self, other: RequestItem) {
        self.request_count += other.request_count;
        self.request_size_sum = self.request_size_sum.saturating_add(other.request_size_sum);
        self.response_size_sum = self
            .response_size_sum
            .saturating_add(other.response_size_sum);
        self.response_times.merge(other.response_times);
        self.request_sizes.merge(other.request_sizes);
        self.response_sizes.merge(other.response_sizes);
    }
}

/// What happened to requests that did not fit into a full window.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestOverflow {
    /// Requests counted without their consumer because the window was full.
    pub(crate) folded: u64,
    /// Requests not counted at all because even the anonymous keys were full.
    pub(crate) dropped: u64,
}

/// Aggregates requests per (consumer, method, route, status) for the current sync window.
///
/// Sharded by thread: a record locks its thread's shard (uncontended unless more than 16
/// threads record) for a lookup and a few additions, and allocates only when a key is first
/// seen in that shard in the window. A key can sit in several shards; the drain merges them. Swapping the window out takes each
/// shard's lock just long enough to move its table; serialisation happens afterwards, unlocked.
#[derive(Debug)]
pub(crate) struct RequestCounter {
    shards: Shards<HashTable<RequestEntry>>,
    hasher: DefaultHashBuilder,
    len: AtomicUsize,
    max_keys: usize,
    folded: AtomicU64,
    dropped: AtomicU64,
}

impl RequestCounter {
    pub(crate) fn new(max_keys: usize) -> Self {
        Self {
            shards: std::array::from_fn(|_| Default::default()),
            hasher: DefaultHashBuilder::default(),
            len: AtomicUsize::new(0),
            max_keys,
            folded: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    #[inline]
    fn hash(&self, consumer: Option<&str>, record: &RequestRecord<'_>) -> u64 {
        let mut h = self.hasher.build_hasher();
        consumer.hash(&mut h);
        record.method.hash(&mut h);
        record.route.hash(&mut h);
        record.status.hash(&mut h);
        h.finish()
    }

    /// Adds one request to the window.
    pub(crate) fn record(&self, record: &RequestRecord<'_>) {
        let consumer = record.consumer.map(|c| c.get_identifier());
        if self.add(consumer, record) {
            return;
        }
        if consumer.is_some() && self.add(None, record) {
            self.folded.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts the request under the key with `consumer`; false when the key is new and there is
    /// no room for it.
    #[inline]
    fn add(&self, consumer: Option<&str>, record: &RequestRecord<'_>) -> bool {
        let hash = self.hash(consumer, record);
        let mut table = lock(&self.shards[thread_shard()]);
        if let Some(entry) = table.find_mut(hash, |e| e.matches(consumer, record)) {
            entry.stats.add(record);
            return true;
        }
        let limit = if consumer.is_some() {
            self.max_keys
        } else {
            self.max_keys + ANONYMOUS_RESERVE
        };
        if self.len.fetch_add(1, Ordering::Relaxed) >= limit {
            self.len.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        let mut stats = RequestStats::default();
        stats.add(record);
        table.insert_unique(
            hash,
            RequestEntry {
                hash,
                consumer: consumer.map(Into::into),
                method: record.method.into(),
                route: record.route.into(),
                status: record.status,
                stats,
            },
            |e| e.hash,
        );
        true
    }

    /// Swaps the window out and returns its items, sorted for stable payloads, with what
    /// overflowed since the last drain.
    pub(crate) fn drain(&self) -> (Vec<RequestItem>, RequestOverflow) {
        let mut items = Vec::new();
        for shard in &self.shards {
            let table = std::mem::take(&mut *lock(shard));
            self.len.fetch_sub(table.len(), Ordering::Relaxed);
            items.extend(table.into_iter().map(|e| RequestItem {
                consumer: e.consumer,
                method: e.method,
                path: e.route,
                status_code: e.status,
                request_count: e.stats.count,
                request_size_sum: e.stats.request_size_sum,
                response_size_sum: e.stats.response_size_sum,
                response_times: e.stats.response_times,
                request_sizes: e.stats.request_sizes,
                response_sizes: e.stats.response_sizes,
            }));
        }
        items.sort_unstable_by(|a, b| a.key().cmp(&b.key()));
        // Merge the copies of a key that several threads recorded.
        let mut merged: Vec<RequestItem> = Vec::with_capacity(items.len());
        for item in items {
            match merged.last_mut() {
                Some(last) if last.key() == item.key() => last.merge(item),
                _ => merged.push(item),
            }
        }
        let items = merged;
        let overflow = RequestOverflow {
            folded: self.folded.swap(0, Ordering::Relaxed),
            dropped: self.dropped.swap(0, Ordering::Relaxed),
        };
        (items, overflow)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::Consumer;

    fn rec(route: &str, status: u16, ms: u64) -> RequestRecord<'_> {
        RequestRecord::new("GET", route, status, Duration::from_millis(ms))
    }

    #[test]
    fn aggregates_per_key_and_sums_known_sizes_only() {
        let counter = RequestCounter::new(100);
        let c = Consumer::new("c1");
        counter.record(
            &rec("/a", 200, 9)
                .request_size(Some(999))
                .response_size(Some(1000)),
        );
        counter.record(
            &rec("/a", 200, 10)
                .request_size(None)
                .response_size(Some(1999)),
        );
        counter.record(&rec("/a", 200, 19).consumer(Some(&c)));
        counter.record(&rec("/a", 404, 1));
        let (items, overflow) = counter.drain();
        assert_eq!(overflow, RequestOverflow::default());
        assert_eq!(items.len(), 3);
        let a = &items[0];
        assert_eq!((a.consumer.as_deref(), a.status_code), (None, 200));
        assert_eq!(a.request_count, 2);
        assert_eq!(a.request_size_sum, 999);
        assert_eq!(a.response_size_sum, 2999);
        assert_eq!(a.response_times.get(0), 1);
        assert_eq!(a.response_times.get(10), 1);
        assert_eq!(a.request_sizes.total(), 1);
        assert_eq!(a.request_sizes.get(0), 1);
        assert_eq!(a.response_sizes.get(1), 2);
        let with_consumer = &items[1];
        assert_eq!(with_consumer.consumer.as_deref(), Some("c1"));
        assert_eq!(with_consumer.request_sizes.total(), 0);
        assert_eq!(items[2].status_code, 404);
        // The window is empty after the drain.
        assert!(counter.drain().0.is_empty());
    }

    #[test]
    fn keys_recorded_by_several_threads_are_merged() {
        let counter = std::sync::Arc::new(RequestCounter::new(100));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let counter = std::sync::Arc::clone(&counter);
                std::thread::spawn(move || {
                    for i in 0..100u64 {
                        counter.record(
                            &rec("/m", 200, (t * 10 + i) % 30).response_size(Some(i * 100)),
                        );
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let (items, _) = counter.drain();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].request_count, 400);
        assert_eq!(items[0].response_times.total(), 400);
        assert_eq!(items[0].response_sizes.total(), 400);
        assert_eq!(
            items[0].response_size_sum,
            4 * (0..100).map(|i| i * 100).sum::<u64>()
        );
        assert_eq!(items[0].response_sizes.get(9), 40);
    }

    #[test]
    fn full_window_folds_consumers_then_drops() {
        let counter = RequestCounter::new(2);
        let consumers: Vec<_> = (0..5).map(|i| Consumer::new(format!("c{i}"))).collect();
        for c in &consumers {
            counter.record(&rec("/a", 200, 1).consumer(Some(c)));
        }
        let (items, overflow) = counter.drain();
        // Two consumer keys, then three requests folded into the anonymous key.
        assert_eq!(items.len(), 3);
        assert_eq!(overflow.folded, 3);
        assert_eq!(items.iter().map(|i| i.request_count).sum::<u64>(), 5);

        let counter = RequestCounter::new(0);
        let routes: Vec<String> = (0..(ANONYMOUS_RESERVE + 5))
            .map(|i| format!("/r{i}"))
            .collect();
        for r in &routes {
            counter.record(&rec(r, 200, 1));
        }
        let (items, overflow) = counter.drain();
        assert_eq!(items.len(), ANONYMOUS_RESERVE);
        assert_eq!(overflow.dropped, 5);
    }
}

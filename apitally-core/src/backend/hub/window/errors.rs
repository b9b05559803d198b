//! Validation-error and server-error counters (protocol.md §4.3 and §4.5).

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hash},
    sync::atomic::{AtomicU64, AtomicUsize, Ordering},
};

use hashbrown::DefaultHashBuilder;
use serde::Serialize;

use crate::util::truncate_chars;
use crate::util::{lock, shard_of, Shards};

/// Longest server-error message, in characters.
pub const MAX_MSG_CHARS: usize = 2048;
/// Longest server-error traceback, in characters.
pub const MAX_TRACEBACK_CHARS: usize = 65536;
/// Longest validation-error type, in characters (protocol-v1.md §4.5).
pub(crate) const MAX_TYPE_CHARS: usize = 128;
/// Most `loc` segments of a validation error, and the longest segment, in characters.
pub(crate) const MAX_LOC_SEGMENTS: usize = 16;
pub(crate) const MAX_LOC_SEGMENT_CHARS: usize = 128;
/// What one sync window's distinct validation errors may hold, in bytes of their strings.
pub(crate) const MAX_VALIDATION_ERROR_BYTES: usize = 1 << 20;
/// What one sync window's distinct server errors may hold (tracebacks included).
pub(crate) const MAX_SERVER_ERROR_BYTES: usize = 4 << 20;
const MSG_SUFFIX: &str = "... (truncated)";
const TRACEBACK_SUFFIX: &str = "... (truncated) ...";

/// Trims a message and cuts it to 2048 characters: the first 2033 and `... (truncated)`.
pub(crate) fn truncate_msg(msg: &str) -> String {
    let msg = msg.trim();
    if msg.chars().count() <= MAX_MSG_CHARS {
        return msg.to_owned();
    }
    let mut out = truncate_chars(msg, MAX_MSG_CHARS - MSG_SUFFIX.len()).to_owned();
    out.push_str(MSG_SUFFIX);
    out
}

/// Cuts a most-recent-first traceback to 65536 characters by keeping whole leading lines and
/// appending a `... (truncated) ...` line (the go rule of protocol.md §4.5).
pub(crate) fn truncate_traceback(traceback: &str) -> String {
    // (No more bytes than the limit: no more characters either, and no count to take.)
    if traceback.len() <= MAX_TRACEBACK_CHARS || traceback.chars().count() <= MAX_TRACEBACK_CHARS {
        return traceback.to_owned();
    }
    let budget = MAX_TRACEBACK_CHARS - TRACEBACK_SUFFIX.len();
    let mut kept = Vec::new();
    let mut length = 0;
    for line in traceback.split('\n') {
        let line_len = line.chars().count();
        if length + line_len + 1 > budget {
            break;
        }
        kept.push(line);
        length += line_len + 1;
    }
    kept.push(TRACEBACK_SUFFIX);
    kept.join("\n")
}

/// A fingerprint of `strip_addresses`'s output, computed without building it: tracebacks
/// that differ only in addresses have the same one. Server errors are grouped by it, so a
/// handler that fails the same way on every request (a panic, with a traceback of kilobytes)
/// costs one pass over its traceback, not copies of it. Fixed seed: the same in every window.
pub(crate) fn traceback_fingerprint(traceback: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = foldhash::fast::FixedState::with_seed(0x4170_6974_616c_6c79).build_hasher();
    let bytes = traceback.as_bytes();
    let mut copied = 0;
    let mut from = 0;
    // The same segments `strip_addresses` copies, and `0x0` for each address: two
    // tracebacks feed the same sequence exactly when their stripped texts are equal.
    while let Some(at) = memchr::memmem::find(&bytes[from..], b"0x").map(|i| from + i) {
        if bytes.get(at + 2).is_some_and(u8::is_ascii_hexdigit) {
            let mut end = at + 2;
            while end < bytes.len() && bytes[end].is_ascii_hexdigit() {
                end += 1;
            }
            hasher.write(&bytes[copied..at]);
            hasher.write(b"0x0");
            copied = end;
            from = end;
        } else {
            from = at + 2;
        }
    }
    hasher.write(&bytes[copied..]);
    hasher.finish()
}

/// Replaces every `0x` followed by hex digits with `0x0`, so that tracebacks differing only in
/// addresses group together: the text [`traceback_fingerprint`] stands for (the tests' reference).
#[cfg(test)]
pub(crate) fn strip_addresses(traceback: &str) -> String {
    let bytes = traceback.as_bytes();
    let mut out = String::with_capacity(traceback.len());
    let mut copied = 0;
    let mut from = 0;
    // Each `0x` found by a vectorised search (most tracebacks, Rust's among them, have none).
    while let Some(at) = memchr::memmem::find(&bytes[from..], b"0x").map(|i| from + i) {
        if bytes.get(at + 2).is_some_and(u8::is_ascii_hexdigit) {
            let mut end = at + 2;
            while end < bytes.len() && bytes[end].is_ascii_hexdigit() {
                end += 1;
            }
            out.push_str(&traceback[copied..at]);
            out.push_str("0x0");
            copied = end;
            from = end;
        } else {
            from = at + 2;
        }
    }
    out.push_str(&traceback[copied..]);
    out
}

/// Where an error happened: the request's consumer, method and route.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub(crate) struct ErrorOrigin {
    pub(crate) consumer: Option<Box<str>>,
    pub(crate) method: Box<str>,
    pub(crate) path: Box<str>,
}

impl ErrorOrigin {
    /// The bytes its strings hold.
    pub(crate) fn bytes(&self) -> usize {
        self.consumer.as_deref().map_or(0, str::len) + self.method.len() + self.path.len()
    }
}

/// A counter of distinct keys per sync window, sharded, with caps on distinct keys and on the
/// bytes their strings hold (so that what the window keeps, and the payload it becomes, is
/// bounded whatever the keys are).
#[derive(Debug)]
pub(crate) struct KeyedCounter<K, V> {
    shards: Shards<HashMap<K, (V, u64), DefaultHashBuilder>>,
    hasher: DefaultHashBuilder,
    len: AtomicUsize,
    max_keys: usize,
    bytes: AtomicUsize,
    max_bytes: usize,
    dropped: AtomicU64,
}

impl<K: Hash + Eq, V> KeyedCounter<K, V> {
    pub(crate) fn new(max_keys: usize, max_bytes: usize) -> Self {
        let hasher = DefaultHashBuilder::default();
        Self {
            shards: std::array::from_fn(|_| {
                crate::util::Padded(std::sync::Mutex::new(HashMap::with_hasher(hasher.clone())))
            }),
            hasher,
            len: AtomicUsize::new(0),
            max_keys,
            bytes: AtomicUsize::new(0),
            max_bytes,
            dropped: AtomicU64::new(0),
        }
    }

    /// Counts one occurrence of `key`, whose strings (with the value's) hold `bytes`; `value`
    /// is kept from the first occurrence in the window. A new key that would pass either cap is
    /// not kept, and counted as dropped.
    pub(crate) fn add(&self, key: K, bytes: usize, value: impl FnOnce() -> V) {
        let hash = self.hasher.hash_one(&key);
        let mut map = lock(&self.shards[shard_of(hash)]);
        if let Some((_, count)) = map.get_mut(&key) {
            *count += 1;
            return;
        }
        if self.len.fetch_add(1, Ordering::Relaxed) >= self.max_keys {
            self.len.fetch_sub(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes > self.max_bytes {
            self.bytes.fetch_sub(bytes, Ordering::Relaxed);
            self.len.fetch_sub(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        map.insert(key, (value(), 1));
    }

    /// Swaps the window out; returns its entries and how many occurrences did not fit.
    pub(crate) fn drain(&self) -> (Vec<(K, V, u64)>, u64) {
        let mut out = Vec::new();
        for shard in &self.shards {
            let map =
                std::mem::replace(&mut *lock(shard), HashMap::with_hasher(self.hasher.clone()));
            self.len.fetch_sub(map.len(), Ordering::Relaxed);
            out.extend(map.into_iter().map(|(k, (v, n))| (k, v, n)));
        }
        // Keys of the next window that were added while the shards were swapped out are
        // counted in the next window's bytes: close enough for a bound.
        self.bytes.store(0, Ordering::Relaxed);
        (out, self.dropped.swap(0, Ordering::Relaxed))
    }
}

/// Validation-error key: origin plus `loc`, `msg`, `type`.
pub(crate) type ValidationKey = (ErrorOrigin, Vec<String>, String, String);

/// Server-error key: origin, type, truncated message and address-stripped traceback. The value
/// kept is the first traceback seen, as sent.
/// (origin, type, message, [`traceback_fingerprint`]).
pub(crate) type ServerErrorKey = (ErrorOrigin, String, String, u64);

/// One item of the `validation_errors` list of a sync payload.
#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ValidationErrorItem {
    pub(crate) consumer: Option<Box<str>>,
    pub(crate) method: Box<str>,
    pub(crate) path: Box<str>,
    pub(crate) loc: Vec<String>,
    pub(crate) msg: String,
    #[serde(rename = "type")]
    pub(crate) error_type: String,
    pub(crate) error_count: u64,
}

/// One item of the `server_errors` list of a sync payload.
#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ServerErrorItem {
    pub(crate) consumer: Option<Box<str>>,
    pub(crate) method: Box<str>,
    pub(crate) path: Box<str>,
    #[serde(rename = "type")]
    pub(crate) error_type: String,
    pub(crate) msg: String,
    pub(crate) traceback: String,
    pub(crate) sentry_event_id: Option<String>,
    pub(crate) error_count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_is_trimmed_and_cut_to_2048_chars() {
        assert_eq!(truncate_msg("  boom \n"), "boom");
        let exact = "x".repeat(2048);
        assert_eq!(truncate_msg(&exact), exact);
        let long = "é".repeat(3000);
        let cut = truncate_msg(&long);
        assert_eq!(cut.chars().count(), 2048);
        assert!(cut.ends_with("é... (truncated)"));
        assert_eq!(cut.chars().filter(|&c| c == 'é').count(), 2033);
    }

    #[test]
    fn traceback_keeps_leading_whole_lines() {
        let short = "a\nb";
        assert_eq!(truncate_traceback(short), short);
        let line = "y".repeat(99); // 100 chars with its newline
        let long = vec![line.as_str(); 1000].join("\n");
        let cut = truncate_traceback(&long);
        assert!(cut.chars().count() <= MAX_TRACEBACK_CHARS);
        let lines: Vec<&str> = cut.split('\n').collect();
        // (65536 - 19) / 100 = 655 whole lines fit.
        assert_eq!(lines.len(), 656);
        assert_eq!(lines[654], line);
        assert_eq!(lines[655], "... (truncated) ...");
    }

    #[test]
    fn addresses_are_stripped_for_grouping() {
        assert_eq!(
            strip_addresses("at 0x7ffd1234ABcd in f, 0x, 0xg, end 0x1"),
            "at 0x0 in f, 0x, 0xg, end 0x0"
        );
        assert_eq!(strip_addresses(""), "");
        assert_eq!(strip_addresses("0"), "0");
        assert_eq!(strip_addresses("é0x1é"), "é0x0é");
        // Fingerprints agree exactly where the stripped texts do.
        let fp = traceback_fingerprint;
        assert_eq!(fp("at 0x7ffd in f"), fp("at 0x1 in f"));
        assert_eq!(fp("at 0x0 in f"), fp("at 0xABC in f"));
        assert_ne!(fp("at 0x1 in f"), fp("at 0x1 in g"));
        assert_ne!(fp("ab0x1"), fp("a0x1b"));
        assert_ne!(fp("0x"), fp("0x0"));
        for text in ["", "0x", "x0x1y0xz", "é0x1é"] {
            assert_eq!(fp(text), fp(&strip_addresses(text)), "{text}");
        }
    }

    #[test]
    fn keyed_counter_caps_distinct_keys() {
        let counter: KeyedCounter<u32, &str> = KeyedCounter::new(2, 1_000);
        for k in [1, 1, 2, 3, 3, 1] {
            counter.add(k, 10, || "first");
        }
        let (mut entries, dropped) = counter.drain();
        entries.sort();
        assert_eq!(entries, vec![(1, "first", 3), (2, "first", 1)]);
        assert_eq!(dropped, 2);
        assert!(counter.drain().0.is_empty());
        // And on their bytes: a key whose strings would pass the budget is not kept.
        let counter: KeyedCounter<u32, ()> = KeyedCounter::new(100, 1_000);
        counter.add(1, 600, || ());
        counter.add(2, 600, || ());
        counter.add(3, 400, || ());
        counter.add(1, 600, || ());
        let (mut entries, dropped) = counter.drain();
        entries.sort();
        assert_eq!(entries, vec![(1, (), 2), (3, (), 1)]);
        assert_eq!(dropped, 1);
        // The budget starts again with the next window.
        counter.add(2, 600, || ());
        assert_eq!(counter.drain().0.len(), 1);
    }
}

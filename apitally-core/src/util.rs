//! Small pieces both backends and the pipeline share: per-thread shards and their locks, and
//! cutting text at a character boundary.

use std::sync::{Mutex, MutexGuard};

pub(crate) const SHARDS: usize = 16;
pub(crate) type Shards<T> = [Padded<Mutex<T>>; SHARDS];

/// Keeps each shard on cache lines of its own, so that threads writing neighbouring shards do
/// not slow each other down (false sharing).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

#[inline]
pub(crate) fn shard_of(hash: u64) -> usize {
    (hash >> 59) as usize % SHARDS
}

/// The shard of the calling thread: each thread (each actix worker) records into a shard of
/// its own while there are no more threads than shards, so workers never wait on each other.
#[inline]
pub(crate) fn thread_shard() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

/// Locks a shard; a panic while it was held (which our code does not do) leaves plain counters
/// that are still valid, so poisoning is ignored.
#[inline]
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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

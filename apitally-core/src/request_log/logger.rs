//! For the request logger, see [`RequestLogger`].

// Items travel between the queue, the writer and the spares as boxes: a `RequestLogItem` is a
// few hundred bytes, and a spare is handed back to the request path in the same allocation.
#![allow(clippy::vec_box)]

use std::{
    borrow::Cow,
    collections::VecDeque,
    panic::{catch_unwind, AssertUnwindSafe},
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Condvar, Mutex,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use super::{
    body::{self, body_kind, BodyKind, Undecodable},
    config::RequestLoggingConfig,
    exclude::Exclusions,
    item::RequestLogItem,
    mask::{self, Patterns},
};
use crate::{backend::LogSink, util::lock};

mod process;
mod totals;

use self::totals::Reported;
pub(crate) use self::totals::{Cleared, LeftOut, Totals, REQUEST_LOGS_HEADER};

/// The largest body logged, in bytes; larger bodies are logged as [`BODY_TOO_LARGE`].
pub const MAX_BODY_SIZE: usize = 50_000;
/// The body logged in place of one over [`MAX_BODY_SIZE`].
pub const BODY_TOO_LARGE: &[u8] = b"<body too large>";
/// The body logged when a mask callback returns `None` (or panics).
pub const BODY_MASKED: &[u8] = b"<masked>";
/// Queued bytes past which the request path wakes the writer early.
const WAKE_BYTES: usize = 1 << 20;
/// How often the writer drains the queue.
const WRITE_INTERVAL: Duration = Duration::from_millis(100);

/// Buffers the writer reuses: the batch taken from the queue (swapped with the queue, so
/// neither reallocates as traffic goes on), and the items written, emptied for reuse.
#[derive(Default)]
struct Writing {
    batch: VecDeque<Box<RequestLogItem>>,
    written: Vec<Box<RequestLogItem>>,
}

/// Items already written, emptied, for the request path to fill again (see
/// [`RequestLogger::take_spares`]): their buffers were allocated on a worker thread and freed
/// on the writer's, which costs the allocator more than the rest of the item's bookkeeping.
#[derive(Default)]
struct Spares {
    items: Vec<Box<RequestLogItem>>,
    /// What they hold ([`RequestLogItem::spare_bytes`]).
    bytes: usize,
}

impl Spares {
    /// Spares kept whatever the traffic (an idle app holds no more than these).
    const MIN_KEPT: usize = 64;

    fn pop(&mut self) -> Option<Box<RequestLogItem>> {
        let item = self.items.pop()?;
        self.bytes -= item.spare_bytes();
        Some(item)
    }
}

impl Writing {
    /// Capacity kept between batches; a burst's larger buffers are released.
    const KEEP_ITEMS: usize = 4_096;
}

struct Masks {
    query: Patterns,
    headers: Patterns,
    body: Patterns,
    /// Names of captured log fields and span attributes: the header and body-field patterns.
    fields: Patterns,
    exclusions: Exclusions,
}

/// The request logger: a bounded queue filled on the request path, and a background thread
/// that decides what is logged, masks it and hands it to the protocol's `LogSink` (hub v2:
/// gzip NDJSON files the sync loop uploads; 1.x: spans in the spool).
pub struct RequestLogger {
    config: RequestLoggingConfig,
    masks: Masks,
    queue: Mutex<VecDeque<Box<RequestLogItem>>>,
    spares: Mutex<Spares>,
    /// Held while a batch taken from the queue is being written, so that a flush (before an
    /// upload or at shutdown) waits for items the writer thread already took. Holds the
    /// buffers reused from batch to batch.
    writing: Mutex<Writing>,
    queued_bytes: AtomicUsize,
    wake: Condvar,
    /// Requests written for delivery, not queued (buffer full), left out by sampling and by
    /// exclusions, since the process started ([`Totals`]); the sync reports the differences
    /// to [`reported`](Self::reported) once per cycle. Written requests that the sink then
    /// dropped undelivered ([`LogSink::lost`]) move from `logged` to `dropped` in the totals.
    logged: AtomicU64,
    dropped: AtomicU64,
    /// Requests queued but deleted before they were written (at shutdown, on suspension).
    discarded: AtomicU64,
    sampled_out: AtomicU64,
    excluded: AtomicU64,
    reported: Mutex<Reported>,
    /// Captured log records dropped by `mask_log_record` since the last sync.
    log_records_dropped: AtomicU64,
    /// Unix milliseconds until which logging is suspended (402 from the hub); 0 when not.
    suspended_until: AtomicU64,
    stop: AtomicBool,
    /// Where the kept items go.
    sink: Arc<dyn LogSink>,
}

impl std::fmt::Debug for RequestLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLogger")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl RequestLogger {
    /// Compiles the patterns; kept items go to `sink`.
    pub(crate) fn new(
        config: RequestLoggingConfig,
        sink: Arc<dyn LogSink>,
    ) -> Result<Self, String> {
        let compile = |defaults: &[&str], extra: &[String], what: &str| {
            Patterns::new(defaults, extra).map_err(|e| format!("invalid {what} pattern: {e}"))
        };
        let masks = Masks {
            query: compile(
                &mask::QUERY_PARAM_PATTERNS,
                &config.mask_query_params,
                "mask_query_params",
            )?,
            headers: compile(&mask::HEADER_PATTERNS, &config.mask_headers, "mask_headers")?,
            body: compile(
                &mask::BODY_FIELD_PATTERNS,
                &config.mask_body_fields,
                "mask_body_fields",
            )?,
            fields: compile(
                &[&mask::HEADER_PATTERNS[..], &mask::BODY_FIELD_PATTERNS[..]].concat(),
                &[&config.mask_headers[..], &config.mask_body_fields[..]].concat(),
                "mask_headers or mask_body_fields",
            )?,
            exclusions: Exclusions::new(&config.exclude_paths)?,
        };
        Ok(Self {
            config,
            masks,
            queue: Mutex::new(VecDeque::new()),
            spares: Mutex::default(),
            writing: Mutex::default(),
            queued_bytes: AtomicUsize::new(0),
            wake: Condvar::new(),
            logged: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            discarded: AtomicU64::new(0),
            sampled_out: AtomicU64::new(0),
            excluded: AtomicU64::new(0),
            reported: Mutex::default(),
            log_records_dropped: AtomicU64::new(0),
            suspended_until: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            sink,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RequestLoggingConfig {
        &self.config
    }

    /// Whether requests are logged now (false while the hub has suspended logging).
    #[inline]
    pub fn is_logging(&self) -> bool {
        let until = self.suspended_until.load(Ordering::Relaxed);
        until == 0 || now_ms() >= until
    }

    /// Queues an item. Never blocks on I/O; past the buffer bound the item is dropped and
    /// counted.
    ///
    /// A boxed item (one from [`take_spares`](Self::take_spares), filled) is queued as it is.
    pub fn log(&self, item: impl Into<Box<RequestLogItem>>) {
        if !self.is_logging() {
            return;
        }
        let item = item.into();
        let weight = item.weight();
        if self.queued_bytes.fetch_add(weight, Ordering::Relaxed) + weight
            > self.config.max_buffer_bytes
        {
            self.queued_bytes.fetch_sub(weight, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        lock(&self.queue).push_back(item);
        // The writer wakes every 100 ms on its own, so the request path makes no wake-up
        // system call; only a large backlog wakes it early.
        if self.queued_bytes.load(Ordering::Relaxed) > WAKE_BYTES {
            self.wake.notify_one();
        }
    }

    /// Moves up to `n` empty items into `into`, each equal to `RequestLogItem::default()` but
    /// with the memory of an item already written (URL, headers, method): filling one and
    /// passing it to [`log`](Self::log) allocates nothing for those. Takes none when there are
    /// none (then build a default item). The spares are bounded: at most as many as the last
    /// batch the writer wrote (at least 64), holding at most half the log buffer's bytes.
    ///
    /// ```
    /// # fn fill(logger: &apitally_core::adapter::RequestLogger) {
    /// let mut stash = Vec::new();
    /// logger.take_spares(&mut stash, 32);
    /// let mut item = stash.pop().unwrap_or_default();
    /// item.request.method.push_str("GET");
    /// item.request.url.push_str("https://example.com/items");
    /// logger.log(item);
    /// # }
    /// ```
    pub fn take_spares(&self, into: &mut Vec<Box<RequestLogItem>>, n: usize) {
        let mut spares = lock(&self.spares);
        for _ in 0..n {
            match spares.pop() {
                Some(item) => into.push(item),
                None => break,
            }
        }
    }

    /// Requests not queued because the buffer was full, since the last call (reported once per
    /// cycle).
    pub(crate) fn take_dropped(&self) -> u64 {
        let dropped = self.dropped.load(Ordering::Relaxed);
        dropped - std::mem::replace(&mut lock(&self.reported).dropped, dropped)
    }

    /// Whether a request to `path` from `user_agent` is excluded from logging (the default and
    /// configured `exclude_paths`, health-check user agents), counted as excluded when it is.
    /// Asked at the request's start, before sampling, so that an excluded request is never
    /// counted as sampled out nor shown to the sampling callbacks (protocol-v1.md §3.9).
    pub fn excludes(&self, path: &str, user_agent: Option<&str>) -> bool {
        let excluded = self.masks.exclusions.path(path)
            || user_agent.is_some_and(|ua| self.masks.exclusions.user_agent(ua));
        if excluded {
            self.excluded.fetch_add(1, Ordering::Relaxed);
        }
        excluded
    }

    /// Counts a request that sampling left out of request logs (on the request path: one
    /// atomic add).
    #[inline]
    pub fn note_sampled_out(&self) {
        self.sampled_out.fetch_add(1, Ordering::Relaxed);
    }

    /// What was left out of request logs since the last call, and why.
    pub(crate) fn take_left_out(&self) -> LeftOut {
        let mut reported = lock(&self.reported);
        let sampled_out = self.sampled_out.load(Ordering::Relaxed);
        let excluded = self.excluded.load(Ordering::Relaxed);
        LeftOut {
            sampled_out: sampled_out - std::mem::replace(&mut reported.sampled_out, sampled_out),
            excluded: excluded - std::mem::replace(&mut reported.excluded, excluded),
            log_records_dropped: self.log_records_dropped.swap(0, Ordering::Relaxed),
        }
    }

    /// What request logging did with this process's requests so far (sent to the hub in the
    /// [`REQUEST_LOGS_HEADER`]): `logged` counts what was written and not (yet) lost, `dropped`
    /// what the full buffer refused plus what was written and then deleted undelivered (in
    /// 1.x, the spans the spool dropped).
    pub(crate) fn totals(&self) -> Totals {
        let lost = self.sink.lost();
        Totals {
            logged: self.logged.load(Ordering::Relaxed).saturating_sub(lost),
            sampled_out: self.sampled_out.load(Ordering::Relaxed),
            excluded: self.excluded.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed)
                + self.discarded.load(Ordering::Relaxed)
                + lost,
        }
    }

    /// Whether nothing waits to be written or delivered: no queued item (nor a batch the
    /// writer thread is writing), nothing in the sink.
    pub(crate) fn is_idle(&self) -> bool {
        let _writing = lock(&self.writing);
        lock(&self.queue).is_empty() && self.sink.is_empty()
    }

    /// The writer thread: drains the queue as items arrive (at least every second).
    pub(crate) fn run_writer(&self) {
        loop {
            {
                let queue = lock(&self.queue);
                let stopping = self.stop.load(Ordering::Relaxed);
                if queue.is_empty() && stopping {
                    return;
                }
                if !stopping {
                    // Batches of up to 100 ms: fewer, larger writes into the compressor.
                    drop(
                        self.wake
                            .wait_timeout(queue, WRITE_INTERVAL)
                            .unwrap_or_else(|e| e.into_inner()),
                    );
                }
            }
            self.flush();
        }
    }

    /// Ends the writer thread once the queue is empty.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake.notify_all();
    }

    /// Writes everything queued now, on the calling thread.
    pub(crate) fn flush(&self) {
        let mut writing = lock(&self.writing);
        let Writing { batch, written } = &mut *writing;
        std::mem::swap(batch, &mut *lock(&self.queue));
        let count = batch.len();
        self.write_batch(batch, written);
        self.keep_spares(written, count);
        batch.shrink_to(Writing::KEEP_ITEMS);
        written.shrink_to(Writing::KEEP_ITEMS);
    }

    /// Offers the items just written as spares, keeping at most as many as the batch had
    /// (so that spares follow the traffic down) and at most half the buffer's bytes; the rest
    /// are freed, outside the lock.
    fn keep_spares(&self, written: &mut Vec<Box<RequestLogItem>>, batch: usize) {
        let max_items = batch.max(Spares::MIN_KEPT);
        let max_bytes = self.config.max_buffer_bytes / 2;
        {
            let mut spares = lock(&self.spares);
            while spares.items.len() > max_items {
                if let Some(item) = spares.pop() {
                    written.push(item);
                }
            }
            while spares.items.len() < max_items {
                let Some(item) = written.pop() else { break };
                let bytes = item.spare_bytes();
                if spares.bytes + bytes > max_bytes {
                    written.push(item);
                    break;
                }
                spares.bytes += bytes;
                spares.items.push(item);
            }
        }
        written.clear();
    }

    fn write_batch(
        &self,
        batch: &mut VecDeque<Box<RequestLogItem>>,
        written: &mut Vec<Box<RequestLogItem>>,
    ) {
        if batch.is_empty() {
            return;
        }
        let weight: usize = batch.iter().map(|item| item.weight()).sum();
        let kept: Vec<bool> = batch.iter_mut().map(|item| self.process(item)).collect();
        if self.is_logging() {
            let items: Vec<&RequestLogItem> = batch
                .iter()
                .zip(&kept)
                .filter(|(_, kept)| **kept)
                .map(|(item, _)| &**item)
                .collect();
            let count = self.sink.write(&items);
            self.logged.fetch_add(count, Ordering::Relaxed);
        }
        for mut item in batch.drain(..) {
            item.clear_for_reuse();
            written.push(item);
        }
        self.queued_bytes.fetch_sub(weight, Ordering::Relaxed);
    }

    /// Suspends logging for `seconds` (the hub answered 402) and deletes everything buffered.
    pub(crate) fn suspend(&self, seconds: u64) {
        self.suspended_until
            .store(now_ms() + seconds.saturating_mul(1000), Ordering::Relaxed);
        let _ = self.clear();
        log::warn!(
            target: "apitally",
            "apitally: the hub does not accept more request logs (HTTP 402); request logging is suspended for {seconds} s"
        );
    }

    /// Unix milliseconds until which logging is suspended; 0 when it never was.
    #[cfg(test)]
    pub(crate) fn suspended_until_ms(&self) -> u64 {
        self.suspended_until.load(Ordering::Relaxed)
    }

    /// Deletes pending items and whatever waits in the sink for delivery, and says how many;
    /// all of them count as dropped in the totals. Waits for a batch the writer thread is
    /// writing, so that its items are counted (in the sink) rather than written after the
    /// count.
    pub(crate) fn clear(&self) -> Cleared {
        let _writing = lock(&self.writing);
        let pending = std::mem::take(&mut *lock(&self.queue));
        self.queued_bytes.fetch_sub(
            pending.iter().map(|item| item.weight()).sum(),
            Ordering::Relaxed,
        );
        self.discarded
            .fetch_add(pending.len() as u64, Ordering::Relaxed);
        let (files, lines) = self.sink.clear();
        Cleared {
            files,
            lines,
            pending: pending.len(),
        }
    }
}

/// Starts the writer thread of `logger` (`apitally-log`); without it (a thread that cannot be
/// spawned), items are written at each sync or export.
pub(crate) fn spawn_writer(logger: Arc<RequestLogger>) -> Arc<RequestLogger> {
    let writer = Arc::clone(&logger);
    let spawned = std::thread::Builder::new()
        .name("apitally-log".into())
        .spawn(move || writer.run_writer());
    if let Err(err) = spawned {
        log::error!(
            target: "apitally",
            "apitally: cannot start the request log thread ({err}); logs are written at each sync"
        );
    }
    logger
}

#[cfg(test)]
mod tests;

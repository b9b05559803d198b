//! For the request histograms, see [`RequestMetrics`]; for the process gauges,
//! [`ProcessMonitor`] (protocol-v1.md §5).

use std::{
    hash::{BuildHasher, Hash},
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use hashbrown::{DefaultHashBuilder, HashTable};

use super::histogram::ExpHistogram;
use crate::{
    util::truncate_chars,
    util::{lock, thread_shard, Shards},
    MAX_IDENTIFIER_CHARS,
};

/// Distinct (method, route, status, scheme, consumer) combinations kept per interval (§5.4).
pub(crate) const MAX_COMBINATIONS: usize = 50_000;
/// Longest route template kept, in characters (the error events' path limit, §4.5).
pub(crate) const MAX_ROUTE_CHARS: usize = 2_000;
/// Longest method kept, in bytes.
pub(crate) const MAX_METHOD_BYTES: usize = 32;

/// One finished request, as the metrics need it. Borrowed: recording an existing combination
/// allocates nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestSample<'a> {
    /// The method; uppercased (ASCII) and cut to 32 bytes when recorded.
    pub(crate) method: &'a str,
    /// The route template; requests without one are not recorded (§5.1).
    pub(crate) route: &'a str,
    pub(crate) status: u16,
    /// `url.scheme`: `https` when true, else `http` (go forces anything else to `http`).
    pub(crate) https: bool,
    /// The consumer identifier; trimmed and cut to 128 characters, empty is none.
    pub(crate) consumer: Option<&'a str>,
    /// Middleware entry to response completion.
    pub(crate) duration: Duration,
    /// Request body bytes, when known.
    pub(crate) request_size: Option<u64>,
    /// Response body bytes, when known.
    pub(crate) response_size: Option<u64>,
}

#[derive(Debug)]
struct Entry {
    hash: u64,
    method: Box<str>,
    route: Box<str>,
    status: u16,
    https: bool,
    consumer: Option<Box<str>>,
    /// Boxed: the table and the drained points hold 50,000 of these at most, and inline the
    /// histograms would make each slot 330 bytes (with many consumers, most keys see a request
    /// or two an interval).
    histograms: Box<Histograms>,
}

/// The three histograms of one attribute combination (§5.1).
#[derive(Debug, Clone)]
pub(crate) struct Histograms {
    /// `http.server.request.duration`, seconds.
    pub(crate) duration: ExpHistogram,
    /// `http.server.request.body.size`, bytes (count 0 when no size was known).
    pub(crate) request_size: ExpHistogram,
    /// `http.server.response.body.size`, bytes (count 0 when no size was known).
    pub(crate) response_size: ExpHistogram,
}

impl Histograms {
    fn new() -> Self {
        Self {
            duration: ExpHistogram::for_durations(),
            request_size: ExpHistogram::for_sizes(),
            response_size: ExpHistogram::for_sizes(),
        }
    }

    #[inline]
    fn add(&mut self, sample: &RequestSample<'_>) {
        self.duration.record(sample.duration.as_secs_f64());
        if let Some(size) = sample.request_size {
            self.request_size.record(size as f64);
        }
        if let Some(size) = sample.response_size {
            self.response_size.record(size as f64);
        }
    }
}

/// The normalised key of a sample, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key<'a> {
    method: &'a str,
    route: &'a str,
    status: u16,
    https: bool,
    consumer: Option<&'a str>,
}

impl Entry {
    #[inline]
    fn matches(&self, key: &Key<'_>) -> bool {
        self.status == key.status
            && self.https == key.https
            && *self.route == *key.route
            && *self.method == *key.method
            && self.consumer.as_deref() == key.consumer
    }
}

/// One attribute combination of an interval, with its three histograms (§5.1).
#[derive(Debug, Clone)]
pub(crate) struct RequestPoint {
    pub(crate) method: Box<str>,
    pub(crate) route: Box<str>,
    pub(crate) status: u16,
    pub(crate) https: bool,
    pub(crate) consumer: Option<Box<str>>,
    /// Its histograms, boxed as in the table (moved, never copied).
    pub(crate) histograms: Box<Histograms>,
}

impl RequestPoint {
    fn key(&self) -> (&str, &str, u16, bool, Option<&str>) {
        (
            &self.route,
            &self.method,
            self.status,
            self.https,
            self.consumer.as_deref(),
        )
    }
}

/// The request histograms of one collection interval.
#[derive(Debug, Clone)]
pub(crate) struct RequestWindow {
    /// End of the previous collection (or construction): the points' `start_time_unix_nano`.
    pub(crate) start_unix_nano: u64,
    /// This collection: the points' `time_unix_nano`.
    pub(crate) end_unix_nano: u64,
    /// Merged across threads, sorted by (route, method, status, scheme, consumer).
    pub(crate) points: Vec<RequestPoint>,
    /// Requests not recorded because their combination was new and the interval was full.
    pub(crate) dropped: u64,
}

/// Delta aggregation of the three request histograms per (method, route, status, scheme,
/// consumer), swapped out at each collection (§5.1, §5.4).
///
/// Sharded by thread like the v2 request counter: a record locks its thread's shard (no
/// contention while there are no more recording threads than shards), looks its key up without
/// allocating, and allocates only when the key is new in the interval (and, rarely, when a value
/// lands more than a few octaves away from the key's earlier values). At most
/// [`MAX_COMBINATIONS`] entries per interval: a key recorded by several threads takes one entry
/// per thread, so the distinct combinations exported never exceed the cap. Requests of new keys
/// past it are counted and dropped, with one warning per process.
#[derive(Debug)]
pub(crate) struct RequestMetrics {
    shards: Shards<HashTable<Entry>>,
    hasher: DefaultHashBuilder,
    len: AtomicUsize,
    max_keys: usize,
    dropped: AtomicU64,
    warned: AtomicBool,
    interval_start: Mutex<u64>,
}

impl RequestMetrics {
    /// Empty metrics whose first interval starts at `start_unix_nano` (setup time).
    pub(crate) fn new(start_unix_nano: u64) -> Self {
        Self::with_capacity(start_unix_nano, MAX_COMBINATIONS)
    }

    fn with_capacity(start_unix_nano: u64, max_keys: usize) -> Self {
        Self {
            shards: std::array::from_fn(|_| Default::default()),
            hasher: DefaultHashBuilder::default(),
            len: AtomicUsize::new(0),
            max_keys,
            dropped: AtomicU64::new(0),
            warned: AtomicBool::new(false),
            interval_start: Mutex::new(start_unix_nano),
        }
    }

    /// Records one finished request: every routed request except `OPTIONS`, including excluded
    /// and sampled-out ones (§5.1, §5.5).
    #[inline]
    pub(crate) fn record(&self, sample: &RequestSample<'_>) {
        let mut method_buf = [0u8; MAX_METHOD_BYTES];
        let method = normalise_method(sample.method, &mut method_buf);
        let route = truncate_chars(sample.route, MAX_ROUTE_CHARS);
        if route.is_empty() || method == "OPTIONS" {
            return;
        }
        let consumer = sample
            .consumer
            .map(|c| truncate_chars(c.trim(), MAX_IDENTIFIER_CHARS))
            .filter(|c| !c.is_empty());
        let key = Key {
            method,
            route,
            status: sample.status,
            https: sample.https,
            consumer,
        };
        let hash = self.hasher.hash_one(key);

        let mut table = lock(&self.shards[thread_shard()]);
        if let Some(entry) = table.find_mut(hash, |e| e.matches(&key)) {
            entry.histograms.add(sample);
            return;
        }
        if self.len.fetch_add(1, Ordering::Relaxed) >= self.max_keys {
            self.len.fetch_sub(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut histograms = Box::new(Histograms::new());
        histograms.add(sample);
        table.insert_unique(
            hash,
            Entry {
                hash,
                method: key.method.into(),
                route: key.route.into(),
                status: key.status,
                https: key.https,
                consumer: key.consumer.map(Into::into),
                histograms,
            },
            |e| e.hash,
        );
    }

    /// Swaps the interval out at `now_unix_nano` and returns its points, merged across threads;
    /// the next interval starts at `now_unix_nano`.
    pub(crate) fn drain(&self, now_unix_nano: u64) -> RequestWindow {
        let start_unix_nano = std::mem::replace(&mut *lock(&self.interval_start), now_unix_nano);
        let mut points = Vec::new();
        for shard in &self.shards {
            let table = std::mem::take(&mut *lock(shard));
            self.len.fetch_sub(table.len(), Ordering::Relaxed);
            points.extend(table.into_iter().map(|e| RequestPoint {
                method: e.method,
                route: e.route,
                status: e.status,
                https: e.https,
                consumer: e.consumer,
                histograms: e.histograms,
            }));
        }
        points.sort_unstable_by(|a, b| a.key().cmp(&b.key()));
        let mut merged: Vec<RequestPoint> = Vec::with_capacity(points.len());
        for point in points {
            match merged.last_mut() {
                Some(last) if last.key() == point.key() => {
                    let (into, from) = (&mut last.histograms, &point.histograms);
                    into.duration.merge(&from.duration);
                    into.request_size.merge(&from.request_size);
                    into.response_size.merge(&from.response_size);
                }
                _ => merged.push(point),
            }
        }
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 && !self.warned.swap(true, Ordering::Relaxed) {
            log::warn!(
                target: "apitally",
                "Apitally request metrics exceeded the capacity of 50,000 distinct attribute \
                 combinations per collection interval, so some request metrics are missing. See \
                 https://docs.apitally.io or contact support if this persists."
            );
        }
        RequestWindow {
            start_unix_nano,
            end_unix_nano: now_unix_nano,
            points: merged,
            dropped,
        }
    }
}

/// Uppercases (ASCII) and bounds a method, in `buf` when it has to change.
#[inline]
fn normalise_method<'a>(method: &'a str, buf: &'a mut [u8; MAX_METHOD_BYTES]) -> &'a str {
    let mut end = method.len().min(MAX_METHOD_BYTES);
    while !method.is_char_boundary(end) {
        end -= 1;
    }
    let method = &method[..end];
    if !method.bytes().any(|b| b.is_ascii_lowercase()) {
        return method;
    }
    let out = &mut buf[..method.len()];
    out.copy_from_slice(method.as_bytes());
    out.make_ascii_uppercase();
    // Changing the case of ASCII bytes keeps UTF-8 valid.
    std::str::from_utf8(&buf[..method.len()]).unwrap_or("")
}

/// The process gauges of one collection (§5.3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ProcessGauges {
    /// `process.uptime`, seconds since the process started.
    pub(crate) uptime: f64,
    /// `process.cpu.utilization`: CPU time since the previous sample / wall time / CPUs, in
    /// [0, 1]; `None` where the platform does not tell.
    pub(crate) cpu_utilization: Option<f64>,
    /// `process.memory.usage`: resident set size in bytes; `None` where the platform does not
    /// tell.
    pub(crate) memory_usage: Option<u64>,
}

/// Samples the process gauges at each collection.
#[derive(Debug)]
pub(crate) struct ProcessMonitor {
    created: Instant,
    uptime_at_creation: Duration,
    last_cpu: Option<(Instant, f64)>,
    cpus: usize,
}

impl ProcessMonitor {
    /// Takes the CPU baseline, so that the first sample already has a utilisation. The uptime
    /// counts from the process start where the platform tells it (Linux), else from here.
    pub(crate) fn new() -> Self {
        let created = Instant::now();
        Self {
            created,
            uptime_at_creation: crate::process::process_uptime().unwrap_or_default(),
            last_cpu: crate::process::cpu_seconds().map(|c| (created, c)),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    pub(crate) fn sample(&mut self) -> ProcessGauges {
        let now = Instant::now();
        let cpu = crate::process::cpu_seconds();
        let previous = std::mem::replace(&mut self.last_cpu, cpu.map(|c| (now, c)));
        let cpu_utilization = match (previous, cpu) {
            (Some((then, cpu_then)), Some(cpu_now)) => cpu_utilization(
                cpu_now - cpu_then,
                now.duration_since(then).as_secs_f64(),
                self.cpus,
            ),
            _ => None,
        };
        ProcessGauges {
            uptime: (self.uptime_at_creation + now.duration_since(self.created)).as_secs_f64(),
            cpu_utilization,
            memory_usage: crate::process::rss_bytes(),
        }
    }
}

/// CPU seconds used over `wall` seconds, as a share of all `cpus`, clamped to [0, 1].
pub(crate) fn cpu_utilization(cpu: f64, wall: f64, cpus: usize) -> Option<f64> {
    if wall.is_nan() || wall <= 0.0 || !cpu.is_finite() {
        return None;
    }
    Some((cpu / wall / cpus.max(1) as f64).clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests;

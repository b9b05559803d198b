//! For the export worker, see [`ExportWorker`] (protocol-v1.md §1.3, §1.6-§1.8, §1.11).

use std::{
    cell::{Cell, RefCell},
    collections::HashSet,
    fmt,
    future::Future,
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;

use self::send::Round;

use super::spool::{
    DropReason, Losses, PendingFile, Queue, ReadError, Signal, Spool, SpoolContents,
};
use crate::{
    diag::debug,
    request_log::{RequestLogger, REQUEST_LOGS_HEADER},
    transport::{Response, Transport, TransportError},
};

/// The first cycle runs this long after the worker starts.
pub(crate) const INITIAL_DELAY: Duration = Duration::from_secs(2);
/// The interval until a server answer says otherwise.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);
/// Bounds of a server-set interval, seconds.
pub(crate) const MIN_INTERVAL_SECS: u64 = 5;
pub(crate) const MAX_INTERVAL_SECS: u64 = 60;
/// Total time of one POST.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Files sent per ordinary cycle, plus those closed since the previous cycle.
pub(crate) const MAX_BACKLOG_SENDS_PER_CYCLE: usize = 10;
/// `User-Agent` of every POST.
pub(crate) const USER_AGENT: &str = concat!("apitally-rs/", env!("CARGO_PKG_VERSION"));

/// The request headers of every POST (§1.3): `Authorization`, `Apitally-Env`, `Content-Type`,
/// `Content-Encoding` and `User-Agent`; with request logging, `Apitally-Request-Logs` (the
/// process's request-log totals, which the real server ignores and the local hub shows).
/// `Debug` does not show the token.
#[derive(Clone)]
pub(crate) struct ExportHeaders {
    authorization: String,
    env: String,
    request_logs: Option<String>,
}

impl ExportHeaders {
    pub(crate) fn new(write_token: &str, env: &str) -> Self {
        Self {
            authorization: format!("Bearer {write_token}"),
            env: env.to_owned(),
            request_logs: None,
        }
    }

    /// The headers, names as the protocol spells them.
    pub(crate) fn pairs(&self) -> Vec<(&'static str, &str)> {
        let mut pairs = vec![
            ("Authorization", self.authorization.as_str()),
            ("Apitally-Env", &self.env),
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "gzip"),
            ("User-Agent", USER_AGENT),
        ];
        pairs.extend(
            self.request_logs
                .as_deref()
                .map(|totals| (REQUEST_LOGS_HEADER, totals)),
        );
        pairs
    }
}

impl fmt::Debug for ExportHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportHeaders")
            .field("authorization", &"Bearer [REDACTED]")
            .field("env", &self.env)
            .field("request_logs", &self.request_logs)
            .finish()
    }
}

/// The wiring's part of a cycle: append this cycle's encoded traces, logs and metrics to the
/// spool, in the order of §1.7 steps 2-5 (span batches; validation-error and server-error
/// events; log batches; metrics). Synchronous, so a shutdown never interrupts it halfway.
pub(crate) trait Collect {
    fn collect(&mut self, spool: &Spool);
}

impl<F: FnMut(&Spool)> Collect for F {
    fn collect(&mut self, spool: &Spool) {
        self(spool);
    }
}

/// Where and as whom to export.
#[derive(Clone)]
pub(crate) struct ExportSettings {
    /// Base URL, validated (`http://` or `https://`); trailing `/` allowed.
    pub(crate) endpoint: String,
    pub(crate) write_token: String,
    pub(crate) env: String,
    /// A fixed interval instead of 15 s and the server's (tests; `test_sync_interval`).
    pub(crate) fixed_interval: Option<Duration>,
}

impl fmt::Debug for ExportSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportSettings")
            .field("endpoint", &self.endpoint)
            .field("write_token", &"[REDACTED]")
            .field("env", &self.env)
            .finish()
    }
}

/// Why sending a queue stopped before it was empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// 408, 429 or 5xx: the file stays for the next cycle.
    Status(u16),
    /// No answer (after the retry, for a connection error).
    Transport(String),
    /// The shutdown budget ran out.
    Budget,
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Status(status) => write!(f, "HTTP {status}"),
            Stop::Transport(reason) => f.write_str(reason),
            Stop::Budget => f.write_str("the shutdown budget ran out"),
        }
    }
}

/// What the final drain delivered and what it could not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DrainReport {
    /// Files the server accepted (2xx).
    pub(crate) delivered: usize,
    /// What was left unsent (deleted afterwards: no process sends it later).
    pub(crate) undelivered: SpoolContents,
    /// Why sending stopped early, per queue that stopped.
    pub(crate) stopped: Vec<(Queue, Stop)>,
    /// Everything dropped unsent since the last cycle's report: rejected by the server,
    /// evicted, and what was left.
    pub(crate) losses: Losses,
}

impl DrainReport {
    /// Whether everything recorded reached Apitally: nothing left, nothing rejected or
    /// dropped.
    pub(crate) fn is_complete(&self) -> bool {
        self.stopped.is_empty() && self.losses.is_empty()
    }
}

/// The export worker: one cycle every interval, never overlapping (§1.6-§1.8), and the queues
/// delivered independently ([`Queue`]).
///
/// A cycle runs the [`Collect`] hook, rotates the spool (closing each queue's file unless one
/// is already waiting; evicting), refreshes the files' mtimes, reports what was dropped since
/// the last cycle (one warning), then POSTs closed files verbatim, oldest first within each
/// queue, at most 10 plus the files closed since the previous cycle per queue, pausing
/// U(0.1 s, 0.5 s) between two sends. The product (metrics, then events) is sent by the cycle
/// itself; the samples (traces, then application logs) by a second lane that the cycle wakes
/// and that runs beside it, so that a slow or failing trace intake never delays the next
/// cycle's metrics. A file first attempted over 59 minutes ago is dropped unsent. 2xx deletes
/// the file; 408, 429, 5xx and transport errors keep it and stop that queue for the cycle (one
/// probe per queue and cycle during an outage); any other status deletes it with one warning
/// per status and process. Each POST is bounded by 10 s; a connection error is retried once at
/// once. Every answer may set the interval (`Apitally-Export-Interval`, clamped to 5-60 s).
pub(crate) struct ExportWorker<T, C> {
    spool: Arc<Spool>,
    transport: T,
    collect: RefCell<C>,
    urls: [String; 3],
    headers: ExportHeaders,
    /// Whose totals each POST carries (`Apitally-Request-Logs`), when request logging is on.
    request_logs: Option<Arc<RequestLogger>>,
    interval: Cell<Duration>,
    /// Whether the interval is fixed by the config (tests), whatever the server says.
    fixed_interval: bool,
    rng: RefCell<fastrand::Rng>,
    warned_statuses: RefCell<HashSet<u16>>,
    /// Sends left in the current round, per queue.
    budgets: Cell<[usize; 4]>,
    /// Wakes the samples' lane after a cycle rotated.
    rotated: tokio::sync::Notify,
    #[cfg(test)]
    warnings: RefCell<Vec<String>>,
}

impl<T, C> fmt::Debug for ExportWorker<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportWorker")
            .field("urls", &self.urls)
            .field("headers", &self.headers)
            .field("interval", &self.interval.get())
            .finish_non_exhaustive()
    }
}

/// The product's queues, sent by the cycle.
const PRODUCT: [Queue; 2] = [Queue::Metrics, Queue::Events];
/// The samples' queues, sent by their own lane.
const SAMPLES: [Queue; 2] = [Queue::Traces, Queue::Logs];

impl<T: Transport, C: Collect> ExportWorker<T, C> {
    pub(crate) fn new(
        spool: Arc<Spool>,
        transport: T,
        collect: C,
        settings: &ExportSettings,
    ) -> Self {
        let base = settings.endpoint.trim_end_matches('/');
        Self {
            spool,
            transport,
            collect: RefCell::new(collect),
            urls: [Signal::Traces, Signal::Logs, Signal::Metrics]
                .map(|s| format!("{base}/v1/{}", s.as_str())),
            headers: ExportHeaders::new(&settings.write_token, &settings.env),
            request_logs: None,
            interval: Cell::new(settings.fixed_interval.unwrap_or(DEFAULT_INTERVAL)),
            fixed_interval: settings.fixed_interval.is_some(),
            rng: RefCell::new(fastrand::Rng::new()),
            warned_statuses: RefCell::default(),
            budgets: Cell::new([0; 4]),
            rotated: tokio::sync::Notify::new(),
            #[cfg(test)]
            warnings: RefCell::default(),
        }
    }

    /// Sends this logger's totals with each POST (`Apitally-Request-Logs`).
    pub(crate) fn report_request_logs(&mut self, logger: Option<Arc<RequestLogger>>) {
        self.request_logs = logger;
    }

    /// The current interval (15 s until the server sets another).
    #[cfg(test)]
    pub(crate) fn interval(&self) -> Duration {
        self.interval.get()
    }

    #[cfg(test)]
    pub(crate) fn set_rng(&self, rng: fastrand::Rng) {
        *self.rng.borrow_mut() = rng;
    }

    /// Runs cycles until `stop` resolves: the first 2 s after the call, each next one
    /// `interval × U(0.9, 1.1)` after the previous one's product was sent; the samples' lane
    /// runs beside them. `stop` also interrupts a send at its next await (a pause or a POST;
    /// never the collection): files leave the spool only once answered, so nothing is lost.
    /// Call [`final_drain`](Self::final_drain) next.
    pub(crate) async fn run(&self, stop: impl Future<Output = ()>) {
        let cycles = async {
            let mut delay = INITIAL_DELAY.min(self.interval.get());
            loop {
                tokio::time::sleep(delay).await;
                self.prepare();
                self.send_queues(&PRODUCT, true).await;
                self.rotated.notify_one();
                // Jitter desynchronises processes that started together.
                let jitter = 0.9 + 0.2 * self.rng.borrow_mut().f64();
                delay = self.interval.get().mul_f64(jitter);
            }
        };
        let samples = async {
            loop {
                self.rotated.notified().await;
                self.send_queues(&SAMPLES, true).await;
            }
        };
        tokio::select! {
            biased;
            () = stop => {}
            ((), ()) = async { tokio::join!(cycles, samples) } => {}
        }
    }

    /// One ordinary cycle (§1.7), every queue in turn (the run loop sends the samples on their
    /// own lane instead).
    #[cfg(test)]
    pub(crate) async fn cycle(&self) {
        self.prepare();
        self.send_queues(&Queue::ALL, true).await;
    }

    /// A cycle's work before sending: collects, rotates (setting each queue's send budget),
    /// refreshes the files' mtimes and reports what was dropped since the last cycle.
    fn prepare(&self) {
        self.collect.borrow_mut().collect(&self.spool);
        let closed = self.spool.rotate_for_export();
        self.budgets
            .set(closed.map(|closed| MAX_BACKLOG_SENDS_PER_CYCLE + closed));
        self.spool.touch_files();
        let losses = self.spool.take_losses();
        if !losses.is_empty() {
            self.warn(format!(
                "apitally: telemetry dropped since the last export: {}",
                losses.describe()
            ));
        }
    }

    /// The final cycle (§1.11): collects, closes every current file and sends everything,
    /// the product first, without pauses or cap, each queue until its first retryable failure,
    /// all within `budget`. Then the spool is cleared; the report says what was not delivered
    /// and why.
    pub(crate) async fn final_drain(&self, budget: Duration) -> DrainReport {
        self.collect.borrow_mut().collect(&self.spool);
        self.spool.close_current_files();
        let round = Round::default();
        let stopped = RefCell::new(Vec::new());
        let drained = tokio::time::timeout(budget, async {
            for queue in Queue::ALL {
                if let Some(stop) = self.send_queue(queue, None, false, &round).await {
                    stopped.borrow_mut().push((queue, stop));
                }
            }
        })
        .await;
        let mut stopped = stopped.into_inner();
        if drained.is_err() {
            let contents = self.spool.contents();
            for queue in Queue::ALL {
                let left = contents.files[queue.index()] > 0;
                if left && !stopped.iter().any(|(q, _)| *q == queue) {
                    stopped.push((queue, Stop::Budget));
                }
            }
        }
        let undelivered = self.spool.contents();
        self.spool.clear();
        DrainReport {
            delivered: round.delivered.get(),
            undelivered,
            stopped,
            losses: self.spool.take_losses(),
        }
    }

    fn warn(&self, message: String) {
        log::warn!(target: "apitally", "{message}");
        #[cfg(test)]
        self.warnings.borrow_mut().push(message);
    }

    #[cfg(test)]
    pub(crate) fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut self.warnings.borrow_mut())
    }
}

/// `Apitally-Export-Interval`: an integer number of seconds (sign and surrounding white space
/// allowed, as py's `int()`), clamped to [5, 60]; anything else is ignored.
pub(crate) fn parse_export_interval(value: &str) -> Option<Duration> {
    let value = value.trim();
    let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds = if value.starts_with('-') {
        MIN_INTERVAL_SECS
    } else {
        // Too many digits for a u64 is far above the maximum.
        digits
            .parse::<u64>()
            .unwrap_or(u64::MAX)
            .clamp(MIN_INTERVAL_SECS, MAX_INTERVAL_SECS)
    };
    Some(Duration::from_secs(seconds))
}

mod send;

#[cfg(test)]
mod tests;

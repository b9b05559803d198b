//! The background loop: startup data, sync payloads, the retry queue and the final flush.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use bytes::Bytes;
use tokio::sync::watch;
// Tokio's clock, not std's: queue ages, the cadence and the shutdown deadline follow tokio's
// paused time in tests (it is std's clock otherwise).
use tokio::time::Instant;

use self::{send::Outcome, uploads::Unreadable};
use super::{
    files::MAX_FILES_PER_CYCLE,
    payload::{unix_timestamp, SyncPayload},
    HubBackend,
};
use crate::{
    backend::LocalFuture,
    config::Tuning,
    diag::debug,
    process::ResourceMonitor,
    request_log::{Cleared, REQUEST_LOGS_HEADER},
    transport::Transport,
    util::lock,
};

/// Sync interval during the first hour after start.
pub(crate) const INITIAL_SYNC_INTERVAL: Duration = Duration::from_secs(10);
/// How long the initial interval applies.
pub(crate) const INITIAL_SYNC_INTERVAL_DURATION: Duration = Duration::from_secs(3600);
/// Sync interval after the first hour.
pub(crate) const SYNC_INTERVAL: Duration = Duration::from_secs(60);
/// HTTP attempts per call to the hub.
pub(crate) const MAX_ATTEMPTS: u32 = 3;
/// The headers of a startup or sync post: JSON, and the request-log totals when request
/// logging is on (`totals`, see [`SyncLoop::request_log_totals`]).
fn json_headers(totals: Option<&str>) -> Vec<(&'static str, &str)> {
    let mut headers = vec![("content-type", "application/json")];
    headers.extend(totals.map(|t| (REQUEST_LOGS_HEADER, t)));
    headers
}

/// A serialised sync payload waiting for delivery; re-sent byte for byte.
#[derive(Debug)]
struct Queued {
    created: Instant,
    /// The order of creation: a failed payload goes to the back of the queue (§3.7), so the
    /// queue is not in this order.
    seq: u64,
    body: Bytes,
}

pub(crate) struct SyncLoop<T> {
    hub: Arc<HubBackend>,
    transport: T,
    startup_url: String,
    sync_url: String,
    log_url: String,
    tuning: Tuning,
    shutdown_timeout: Duration,
    queue: VecDeque<Queued>,
    /// The `seq` of the next payload queued.
    next_seq: u64,
    monitor: ResourceMonitor,
    hub_ok: bool,
    stopped: bool,
    /// Set when a shutdown arrives during a cycle: the cycle lets the request in flight finish,
    /// then returns without starting another (see [`run`](Self::run)).
    interrupt: watch::Receiver<bool>,
    unreadable: Unreadable,
}

impl<T: Transport> SyncLoop<T> {
    pub(crate) fn new(
        hub: Arc<HubBackend>,
        transport: T,
        hub_url: &str,
        tuning: Tuning,
        shutdown_timeout: Duration,
    ) -> Self {
        Self {
            hub,
            transport,
            startup_url: format!("{hub_url}/startup"),
            sync_url: format!("{hub_url}/sync"),
            log_url: format!("{hub_url}/log"),
            tuning,
            shutdown_timeout,
            queue: VecDeque::new(),
            next_seq: 0,
            monitor: ResourceMonitor::default(),
            hub_ok: true,
            stopped: false,
            // Replaced by `run`; a receiver whose sender is gone never interrupts.
            interrupt: watch::channel(false).1,
            unreadable: Unreadable::default(),
        }
    }

    fn interval(&self, started: Instant) -> Duration {
        match self.tuning.sync_interval {
            Some(interval) => interval,
            None if started.elapsed() < INITIAL_SYNC_INTERVAL_DURATION => INITIAL_SYNC_INTERVAL,
            None => SYNC_INTERVAL,
        }
    }

    /// Runs until `stop` resolves (a shutdown, or every client handle gone) or until the hub
    /// disables the client, then makes the final flush within the shutdown budget. The first
    /// cycle runs at once. Resolves to whether everything recorded was delivered.
    pub(crate) async fn run(mut self, stop: LocalFuture<()>) -> bool {
        let started = Instant::now();
        let (interrupt, interrupted) = watch::channel(false);
        self.interrupt = interrupted;
        let budget = self.shutdown_timeout;
        let mut stop = stop;
        loop {
            let cycle_start = Instant::now();
            let shutdown = {
                let cycle = self.cycle();
                tokio::pin!(cycle);
                tokio::select! {
                    () = &mut cycle => None,
                    () = &mut stop => {
                        // A shutdown during a cycle does not drop the cycle where it is: a log
                        // upload cut off mid-request may well have reached the hub, and the
                        // final flush would send the same file again (a sync payload too,
                        // though the hub de-duplicates those by `message_uuid`). The cycle is
                        // told to stop instead: the request in flight finishes (bounded by its
                        // own timeout and by the shutdown budget, which starts now), backoff and
                        // jitter waits end at once, and nothing new starts; its file is then
                        // deleted (sent) or back at the front of the queue (failed), so the
                        // final flush sends each file once.
                        let deadline = Instant::now() + budget;
                        interrupt.send_replace(true);
                        if tokio::time::timeout_at(deadline, &mut cycle).await.is_err() {
                            debug!("the shutdown budget ran out during a sync cycle");
                        }
                        Some(deadline)
                    }
                }
            };
            if let Some(deadline) = shutdown {
                return self.stop(deadline).await;
            }
            if self.stopped {
                return false;
            }
            let next = cycle_start + self.interval(started);
            tokio::select! {
                () = &mut stop => return self.stop(Instant::now() + budget).await,
                () = tokio::time::sleep_until(next) => {}
            }
        }
    }

    /// Whether a shutdown asked the running cycle to stop.
    fn interrupted(&self) -> bool {
        *self.interrupt.borrow()
    }

    /// Sleeps for `wait`, or until a shutdown interrupts the cycle; false when interrupted.
    async fn pause(&self, wait: Duration) -> bool {
        let mut interrupt = self.interrupt.clone();
        tokio::select! {
            () = tokio::time::sleep(wait) => true,
            Ok(_) = interrupt.wait_for(|set| *set) => false,
        }
    }

    /// One sync cycle: startup data if not yet delivered, then this window's payload and
    /// whatever is queued, then up to [`MAX_FILES_PER_CYCLE`] request-log files. Dropping it at
    /// any await loses nothing: payloads leave the queue only once the hub has answered for
    /// them, and a file being uploaded goes back to the front of its queue.
    async fn cycle(&mut self) {
        self.send_startup(MAX_ATTEMPTS).await;
        if self.stopped || self.interrupted() {
            return;
        }
        self.enqueue_window();
        self.drain_queue(true, MAX_ATTEMPTS).await;
        if !self.stopped {
            self.upload_logs(Some(MAX_FILES_PER_CYCLE), true, MAX_ATTEMPTS)
                .await;
        }
        self.report_losses();
    }

    /// Final sync: one attempt per payload and file, until `deadline` (the shutdown budget).
    /// What is left then is deleted and named in one warning. Whether everything was
    /// delivered.
    async fn stop(mut self, deadline: Instant) -> bool {
        // The final flush is not interrupted (a receiver whose sender is gone never is).
        self.interrupt = watch::channel(false).1;
        let timed_out = if Instant::now() >= deadline {
            // The budget went on the cycle that the shutdown interrupted. Nothing new starts: a
            // POST begun now would be dropped at its first await, perhaps after the hub got it.
            // The last window is still counted in what was not delivered.
            if !self.stopped {
                self.enqueue_window();
            }
            true
        } else {
            tokio::time::timeout_at(deadline, async {
                self.send_startup(1).await;
                if self.stopped {
                    return;
                }
                self.enqueue_window();
                self.drain_queue(false, 1).await;
                if !self.stopped {
                    self.flush_logs().await;
                }
            })
            .await
            .is_err()
        };
        self.hub.disable();
        let cleared = match &self.hub.logger {
            Some(logger) => {
                logger.stop();
                logger.clear()
            }
            None => Cleared::default(),
        };
        self.report_losses();
        let startup = lock(&self.hub.startup).is_some();
        let mut left = Vec::new();
        if startup {
            left.push("the startup data".to_owned());
        }
        if !self.queue.is_empty() {
            left.push(format!("{} sync payload(s)", self.queue.len()));
        }
        if cleared.files > 0 {
            left.push(format!(
                "{} request-log file(s) ({} requests)",
                cleared.files, cleared.lines
            ));
        }
        if cleared.pending > 0 {
            left.push(format!(
                "{} logged request(s) still queued in memory",
                cleared.pending
            ));
        }
        let flushed = left.is_empty() && !self.stopped;
        if flushed {
            debug!("final sync delivered");
        } else if !self.stopped {
            let why = if timed_out {
                format!("the shutdown budget of {:?} ran out", self.shutdown_timeout)
            } else {
                "the hub did not take them".to_owned()
            };
            log::warn!(
                target: "apitally",
                "apitally: shutdown: not delivered ({why}): {}",
                left.join(", ")
            );
        }
        flushed
    }

    async fn send_startup(&mut self, attempts: u32) {
        let Some(body) = lock(&self.hub.startup).clone() else {
            return;
        };
        let totals = self.request_log_totals();
        match self
            .send(
                &self.startup_url.clone(),
                &json_headers(totals.as_deref()),
                body.clone(),
                attempts,
                "the startup data",
            )
            .await
        {
            Outcome::Sent | Outcome::Rejected => {
                let mut pending = lock(&self.hub.startup);
                // Unless new startup data was set meanwhile.
                if pending.as_ref() == Some(&body) {
                    *pending = None;
                }
                debug!("startup data delivered");
            }
            Outcome::Disable => self.disable(),
            Outcome::PaymentRequired(_) => self.note_failure("startup", "HTTP 402"),
            Outcome::Retry(reason) => self.note_failure("startup", &reason),
        }
    }

    /// Swaps the window out, serialises it and appends it to the queue.
    fn enqueue_window(&mut self) {
        // Writes the requests queued for logging (the upload that follows would), so that the
        // request-log totals sent with this payload count the window's requests.
        if let Some(logger) = &self.hub.logger {
            logger.flush();
        }
        let window = self.hub.metrics.drain();
        let o = window.overflow;
        if !o.is_empty() {
            log::warn!(
                target: "apitally",
                "apitally: this sync window was full: {} request(s) counted without consumer, \
                 {} request(s), {} validation error(s) and {} server error(s) not counted, \
                 {} consumer(s) not registered; raise max_request_keys or max_consumers if this \
                 is legitimate traffic",
                o.requests.folded,
                o.requests.dropped,
                o.validation_errors,
                o.server_errors,
                o.consumers
            );
        }
        let payload = SyncPayload {
            timestamp: unix_timestamp(),
            instance_uuid: self.hub.instance.uuid,
            message_uuid: uuid::Uuid::new_v4(),
            requests: window.requests,
            validation_errors: window.validation_errors,
            server_errors: window.server_errors,
            consumers: window.consumers,
            resources: self.monitor.sample(),
        };
        let body = match serde_json::to_vec(&payload) {
            Ok(body) => body,
            Err(err) => {
                log::error!(target: "apitally", "apitally: cannot serialise sync payload: {err}");
                return;
            }
        };
        while self.queue.len() >= self.tuning.max_queue_len.max(1) {
            // The oldest, which need not be the front: a failed payload goes to the back.
            let oldest = (0..self.queue.len())
                .min_by_key(|&i| self.queue[i].seq)
                .unwrap_or(0);
            self.queue.remove(oldest);
            log::warn!(
                target: "apitally",
                "apitally: sync queue full ({} payloads); dropped the oldest",
                self.tuning.max_queue_len
            );
        }
        self.queue.push_back(Queued {
            created: Instant::now(),
            seq: self.next_seq,
            body: Bytes::from(body),
        });
        self.next_seq += 1;
    }

    /// Sends queued payloads front to back; true when the queue was emptied.
    async fn drain_queue(&mut self, jitter: bool, attempts: u32) -> bool {
        let mut first = true;
        while let Some(front) = self.queue.front() {
            if self.interrupted() {
                return false;
            }
            if front.created.elapsed() > self.tuning.max_queue_age {
                self.queue.pop_front();
                log::warn!(
                    target: "apitally",
                    "apitally: dropped a sync payload older than {:?} that the hub never accepted",
                    self.tuning.max_queue_age
                );
                continue;
            }
            let body = front.body.clone();
            if !first && jitter {
                let wait = Duration::from_millis(fastrand::u64(100..=500));
                if !self.pause(wait).await {
                    return false;
                }
            }
            first = false;
            let totals = self.request_log_totals();
            match self
                .send(
                    &self.sync_url.clone(),
                    &json_headers(totals.as_deref()),
                    body,
                    attempts,
                    "a sync payload",
                )
                .await
            {
                Outcome::Sent | Outcome::Rejected => {
                    self.queue.pop_front();
                }
                Outcome::Disable => {
                    self.disable();
                    return false;
                }
                outcome @ (Outcome::PaymentRequired(_) | Outcome::Retry(_)) => {
                    let reason = match outcome {
                        Outcome::Retry(reason) => reason,
                        _ => "HTTP 402".to_owned(),
                    };
                    if let Some(payload) = self.queue.pop_front() {
                        self.queue.push_back(payload);
                    }
                    self.note_failure("sync", &reason);
                    return false;
                }
            }
        }
        true
    }

    /// The value of the `Apitally-Request-Logs` header: what request logging did with this
    /// process's requests so far; `None` when request logging is off.
    fn request_log_totals(&self) -> Option<String> {
        let logger = self.hub.logger.as_ref()?;
        Some(logger.totals().header_value())
    }
}

mod send;
mod uploads;

#[cfg(test)]
mod tests;

//! The background loop: startup data, sync payloads, the retry queue and the final flush.

use std::{
    collections::VecDeque,
    sync::{atomic::Ordering, Arc, Weak},
    time::{Duration, Instant},
};

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedReceiver;

use super::{
    payload::{unix_timestamp, SyncPayload},
    transport::HubTransport,
    Command, Inner, Shared,
};
use crate::{config::Tuning, diag::debug, metrics::lock, resources::ResourceMonitor};

/// Sync interval during the first hour after start.
pub(crate) const INITIAL_SYNC_INTERVAL: Duration = Duration::from_secs(10);
/// How long the initial interval applies.
pub(crate) const INITIAL_SYNC_INTERVAL_DURATION: Duration = Duration::from_secs(3600);
/// Sync interval after the first hour.
pub(crate) const SYNC_INTERVAL: Duration = Duration::from_secs(60);
/// HTTP attempts per call to the hub.
pub(crate) const MAX_ATTEMPTS: u32 = 3;
/// The longest `Retry-After` honoured between two attempts.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

const JSON: Option<&str> = Some("application/json");

/// A serialised sync payload waiting for delivery; re-sent byte for byte.
#[derive(Debug)]
struct Queued {
    created: Instant,
    body: Bytes,
}

/// How one call to the hub ended, after its retries.
#[derive(Debug)]
enum Outcome {
    /// 2xx.
    Sent,
    /// 422: the hub will never take this payload; it is dropped.
    Rejected,
    /// 404: the client id is unknown; everything stops.
    Disable,
    /// 402: for log uploads, the quota is used up; `Retry-After` seconds if given.
    PaymentRequired(Option<u64>),
    /// Anything else: keep the payload and try again next cycle.
    Retry(String),
}

pub(crate) struct SyncLoop<T> {
    shared: Arc<Shared>,
    transport: T,
    startup_url: String,
    sync_url: String,
    log_url: String,
    tuning: Tuning,
    shutdown_timeout: Duration,
    queue: VecDeque<Queued>,
    monitor: ResourceMonitor,
    hub_ok: bool,
    stopped: bool,
}

impl<T: HubTransport> SyncLoop<T> {
    pub(crate) fn new(
        shared: Arc<Shared>,
        transport: T,
        hub_url: &str,
        tuning: Tuning,
        shutdown_timeout: Duration,
    ) -> Self {
        Self {
            shared,
            transport,
            startup_url: format!("{hub_url}/startup"),
            sync_url: format!("{hub_url}/sync"),
            log_url: format!("{hub_url}/log"),
            tuning,
            shutdown_timeout,
            queue: VecDeque::new(),
            monitor: ResourceMonitor::default(),
            hub_ok: true,
            stopped: false,
        }
    }

    fn interval(&self, started: Instant) -> Duration {
        match self.tuning.sync_interval {
            Some(interval) => interval,
            None if started.elapsed() < INITIAL_SYNC_INTERVAL_DURATION => INITIAL_SYNC_INTERVAL,
            None => SYNC_INTERVAL,
        }
    }

    /// Runs until shutdown, until every client handle is gone, or until the hub disables the
    /// client. The first cycle runs at once.
    pub(crate) async fn run(
        mut self,
        mut commands: UnboundedReceiver<Command>,
        handle: Weak<Inner>,
    ) {
        let started = Instant::now();
        let mut orphaned_since: Option<Instant> = None;
        loop {
            let cycle_start = Instant::now();
            let interrupted = {
                let cycle = self.cycle();
                tokio::pin!(cycle);
                tokio::select! {
                    () = &mut cycle => None,
                    command = commands.recv() => Some(command),
                }
            };
            if let Some(command) = interrupted {
                return self.stop(command).await;
            }
            if self.stopped {
                return;
            }
            let next = cycle_start + self.interval(started);
            // Tick every second until the next cycle, to notice when every handle is gone.
            while Instant::now() < next {
                let tick = next.min(Instant::now() + Duration::from_secs(1));
                tokio::select! {
                    command = commands.recv() => return self.stop(command).await,
                    () = tokio::time::sleep_until(tick.into()) => {}
                }
                if super::is_orphaned(&handle) {
                    let since = *orphaned_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= super::ORPHAN_GRACE && super::release_if_orphaned(&handle)
                    {
                        debug!("every client handle is gone; final sync");
                        return self.stop(None).await;
                    }
                } else {
                    orphaned_since = None;
                }
            }
        }
    }

    /// One sync cycle: startup data if not yet delivered, then this window's payload and
    /// whatever is queued. Dropping it at any await loses nothing: payloads leave the queue only
    /// once the hub has answered for them.
    async fn cycle(&mut self) {
        self.send_startup(MAX_ATTEMPTS).await;
        if self.stopped {
            return;
        }
        self.enqueue_window();
        self.drain_queue(true, MAX_ATTEMPTS).await;
        if !self.stopped {
            self.upload_logs(true, MAX_ATTEMPTS).await;
        }
    }

    /// Writes what is queued, closes the current file, and uploads up to 10 files (§3.9).
    async fn upload_logs(&mut self, jitter: bool, attempts: u32) -> bool {
        let Some(logger) = self.shared.logger.clone() else {
            return true;
        };
        logger.flush();
        let left_out = logger.take_left_out();
        if left_out.buffer_full > 0 {
            log::warn!(
                target: "apitally",
                "apitally: {} request(s) were not logged because the request log buffer was full",
                left_out.buffer_full
            );
        }
        debug!(
            "request logs since the last sync: {} sampled out, {} excluded, {} dropped (buffer \
             full), {} log record(s) dropped by mask_log_record",
            left_out.sampled_out,
            left_out.excluded,
            left_out.buffer_full,
            left_out.log_records_dropped
        );
        logger.rotate();
        for i in 0..crate::request_log::MAX_FILES_PER_CYCLE {
            let Some(file) = logger.next_file() else {
                return true;
            };
            if i > 0 && jitter {
                let ms = fastrand::u64(100..=500);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            let body = match std::fs::read(&file.path) {
                Ok(body) => body,
                Err(err) => {
                    log::warn!(target: "apitally", "apitally: cannot read request log file {}: {err}", file.path.display());
                    logger.uploaded(&file);
                    continue;
                }
            };
            let url = format!("{}?uuid={}", self.log_url, file.uuid);
            match self.send(&url, None, Bytes::from(body), attempts).await {
                Outcome::Sent | Outcome::Rejected => logger.uploaded(&file),
                Outcome::Disable => {
                    self.disable();
                    return false;
                }
                Outcome::PaymentRequired(retry_after) => {
                    logger.suspend(retry_after.filter(|s| *s > 0).unwrap_or(3600));
                    return false;
                }
                Outcome::Retry(reason) => {
                    self.note_failure("request log upload", &reason);
                    return false;
                }
            }
        }
        logger.next_file().is_none()
    }

    /// Final sync, on shutdown (`Some`) or when every handle is gone (`None`): one attempt per
    /// payload, within the shutdown budget.
    async fn stop(mut self, command: Option<Command>) {
        let budget = self.shutdown_timeout;
        let flushed = tokio::time::timeout(budget, async {
            self.send_startup(1).await;
            if self.stopped {
                return false;
            }
            self.enqueue_window();
            let synced = self.drain_queue(false, 1).await;
            // Write what is pending, close the file, and upload until nothing is left (10
            // files per round) or an upload fails.
            let mut logs = self.upload_logs(false, 1).await;
            while logs
                && self
                    .shared
                    .logger
                    .as_ref()
                    .is_some_and(|l| l.next_file().is_some() || !l.is_empty())
            {
                logs = self.upload_logs(false, 1).await;
            }
            synced && logs
        })
        .await
        .unwrap_or(false);
        if let Some(logger) = &self.shared.logger {
            logger.stop();
            logger.clear();
        }
        self.shared.enabled.store(false, Ordering::Relaxed);
        if flushed {
            debug!("final sync delivered");
        } else if !self.stopped {
            log::warn!(
                target: "apitally",
                "apitally: shutdown: {} sync payload(s) could not be delivered within {:?}",
                self.queue.len().max(1),
                budget
            );
        }
        if let Some(Command::Shutdown(reply)) = command {
            reply.send(flushed);
        }
    }

    async fn send_startup(&mut self, attempts: u32) {
        let Some(body) = lock(&self.shared.startup).clone() else {
            return;
        };
        match self
            .send(&self.startup_url.clone(), JSON, body.clone(), attempts)
            .await
        {
            Outcome::Sent | Outcome::Rejected => {
                let mut pending = lock(&self.shared.startup);
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
        let window = self.shared.metrics.drain();
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
            instance_uuid: self.shared.instance.uuid,
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
            self.queue.pop_front();
            log::warn!(
                target: "apitally",
                "apitally: sync queue full ({} payloads); dropped the oldest",
                self.tuning.max_queue_len
            );
        }
        self.queue.push_back(Queued {
            created: Instant::now(),
            body: Bytes::from(body),
        });
    }

    /// Sends queued payloads front to back; true when the queue was emptied.
    async fn drain_queue(&mut self, jitter: bool, attempts: u32) -> bool {
        let mut first = true;
        while let Some(front) = self.queue.front() {
            if front.created.elapsed() > self.tuning.max_queue_age {
                self.queue.pop_front();
                log::warn!(
                    target: "apitally",
                    "apitally: dropped a sync payload older than {:?} that the hub never accepted",
                    self.tuning.max_queue_age
                );
                continue;
            }
            if !first && jitter {
                let ms = fastrand::u64(100..=500);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            first = false;
            let body = front.body.clone();
            match self
                .send(&self.sync_url.clone(), JSON, body, attempts)
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

    /// One POST with up to `attempts` tries, exponential backoff with jitter between them.
    async fn send(
        &mut self,
        url: &str,
        content_type: Option<&'static str>,
        body: Bytes,
        attempts: u32,
    ) -> Outcome {
        let mut last = String::new();
        let mut retry_after = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                let base = self.tuning.retry_backoff * 2u32.pow(attempt - 1);
                let wait = base.mul_f64(0.5 + fastrand::f64() * 0.5);
                // A hub that says when to come back (429/503 with Retry-After) is believed, up
                // to a limit that keeps the cycle short.
                let wait = retry_after.map_or(wait, |secs: u64| {
                    Duration::from_secs(secs).min(MAX_RETRY_AFTER).max(wait)
                });
                tokio::time::sleep(wait).await;
            }
            match self.transport.post(url, content_type, body.clone()).await {
                Ok(r) if (200..300).contains(&r.status) => {
                    self.note_success();
                    return Outcome::Sent;
                }
                Ok(r) if r.status == 404 => return Outcome::Disable,
                Ok(r) if r.status == 402 => return Outcome::PaymentRequired(r.retry_after),
                Ok(r) if r.status == 422 => {
                    log::warn!(
                        target: "apitally",
                        "apitally: the hub rejected a payload as invalid (HTTP 422), dropping it: {}",
                        r.body.chars().take(500).collect::<String>()
                    );
                    return Outcome::Rejected;
                }
                Ok(r) if r.status == 408 || r.status == 429 || r.status >= 500 => {
                    last = format!("HTTP {}", r.status);
                    retry_after = r.retry_after.filter(|_| r.status == 429 || r.status == 503);
                }
                Ok(r) => return Outcome::Retry(format!("HTTP {}", r.status)),
                Err(err) => last = err.to_string(),
            }
            debug!(
                "POST {} failed (attempt {}): {last}",
                redact_url(url),
                attempt + 1
            );
        }
        Outcome::Retry(last)
    }

    fn disable(&mut self) {
        self.stopped = true;
        self.queue.clear();
        *lock(&self.shared.startup) = None;
        self.shared.enabled.store(false, Ordering::Relaxed);
        log::error!(
            target: "apitally",
            "apitally: the hub does not know client id {} (HTTP 404): check the client id in the \
             Apitally dashboard; Apitally is now disabled and requests pass through untouched",
            crate::config::redact(self.shared.client_id.as_str())
        );
    }

    fn note_success(&mut self) {
        if !self.hub_ok {
            log::info!(target: "apitally", "apitally: the hub is reachable again");
            self.hub_ok = true;
        }
    }

    fn note_failure(&mut self, what: &str, reason: &str) {
        if self.hub_ok {
            log::warn!(
                target: "apitally",
                "apitally: {what} failed ({reason}); data is kept and retried in the next cycles"
            );
            self.hub_ok = false;
        } else {
            debug!(
                "{what} failed again ({reason}); {} payload(s) queued",
                self.queue.len()
            );
        }
    }
}

/// The URL without the client id, for logs.
fn redact_url(url: &str) -> String {
    match url.find("/v2/") {
        Some(idx) => {
            let rest = &url[idx + 4..];
            let tail = rest.find('/').map_or("", |i| &rest[i..]);
            format!("{}/v2/…{tail}", &url[..idx])
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_in_logs_hide_the_client_id() {
        assert_eq!(
            super::redact_url(
                "https://hub.apitally.io/v2/76b5cb91-a0a4-4ea0-a894-57d2b9fcb2c9/prod/sync"
            ),
            "https://hub.apitally.io/v2/…/prod/sync"
        );
    }
}

//! How the export worker delivers the spool: each queue's closed files in turn, one POST
//! per file, and what each answer means for the file and the queue.

use super::*;

/// The sends of one round of a lane (or of the final drain).
#[derive(Default)]
pub(super) struct Round {
    pub(super) attempts: Cell<usize>,
    pub(super) delivered: Cell<usize>,
}

/// How one file went.
pub(super) enum Sent {
    /// Delivered, rejected, unreadable or gone: go on with the next file.
    Next { delivered: bool },
    /// Retryable: keep the file, stop this queue for the cycle.
    Stop(Stop),
}

impl<T: Transport, C: Collect> ExportWorker<T, C> {
    /// Sends the closed files of each queue in turn, within each queue's budget.
    pub(super) async fn send_queues(&self, queues: &[Queue], pause: bool) {
        let round = Round::default();
        for &queue in queues {
            let mut budgets = self.budgets.get();
            let budget = std::mem::take(&mut budgets[queue.index()]);
            self.budgets.set(budgets);
            let _ = self.send_queue(queue, Some(budget), pause, &round).await;
        }
    }

    /// Sends a queue's closed files oldest first, at most `max_sends`; `Some` when a retryable
    /// failure stopped it. With `pause`, waits U(0.1 s, 0.5 s) before each send but the
    /// round's first.
    pub(super) async fn send_queue(
        &self,
        queue: Queue,
        max_sends: Option<usize>,
        pause: bool,
        round: &Round,
    ) -> Option<Stop> {
        let mut sent = 0;
        for file in self.spool.pending_in(queue) {
            if max_sends.is_some_and(|max| sent >= max) {
                return None;
            }
            if round.attempts.get() > 0 && pause {
                let ms = self.rng.borrow_mut().u64(100..=500);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            if file.is_expired(tokio::time::Instant::now()) {
                // A retry landing outside the server's dedup window could double-ingest.
                self.spool.drop_file(file.id, DropReason::Expired);
                continue;
            }
            sent += 1;
            round.attempts.set(round.attempts.get() + 1);
            match self.send_file(file).await {
                Sent::Next { delivered: true } => round.delivered.set(round.delivered.get() + 1),
                Sent::Next { delivered: false } => {}
                Sent::Stop(stop) => return Some(stop),
            }
        }
        None
    }

    /// The headers of a POST now: with the request-log totals when request logging is on.
    pub(super) fn headers(&self) -> ExportHeaders {
        let mut headers = self.headers.clone();
        if let Some(logger) = &self.request_logs {
            headers.request_logs = Some(logger.totals().header_value());
        }
        headers
    }

    pub(super) async fn send_file(&self, file: PendingFile) -> Sent {
        self.spool.mark_attempt(file.id);
        let signal = file.signal().as_str();
        let body = match self.spool.read(file.id) {
            Ok(body) => body,
            Err(ReadError::Gone) => return Sent::Next { delivered: false },
            Err(ReadError::Io(err)) => {
                self.warn(format!(
                    "Error reading buffered {signal}, dropping it: {err}"
                ));
                self.spool.drop_file(file.id, DropReason::Io);
                return Sent::Next { delivered: false };
            }
        };
        let headers = self.headers();
        let url = &self.urls[file.signal() as usize];
        let mut result = self.post(url, &headers, body.clone()).await;
        if let Err(TransportError::Request(reason)) = &result {
            // The server may have closed an idle keep-alive connection: retry once.
            debug!("sending buffered {signal} failed, retrying at once: {reason}");
            result = self.post(url, &headers, body).await;
        }
        let response = match result {
            Ok(response) => response,
            Err(err) => {
                debug!("sending buffered {signal} to Apitally failed, will retry: {err}");
                return Sent::Stop(Stop::Transport(err.to_string()));
            }
        };
        if let Some(interval) = response
            .export_interval
            .as_deref()
            .and_then(parse_export_interval)
            .filter(|_| !self.fixed_interval)
        {
            self.interval.set(interval);
        }
        match response.status {
            200..=299 => {
                self.spool.delete(file.id);
                Sent::Next { delivered: true }
            }
            408 | 429 | 500.. => {
                debug!(
                    "sending buffered {signal} to Apitally failed with HTTP {}, will retry",
                    response.status
                );
                Sent::Stop(Stop::Status(response.status))
            }
            status => {
                if self.warned_statuses.borrow_mut().insert(status) {
                    self.warn(format!(
                        "Apitally rejected buffered {signal} with HTTP {status}, dropping it"
                    ));
                }
                self.spool.drop_file(file.id, DropReason::Rejected(status));
                Sent::Next { delivered: false }
            }
        }
    }

    /// One POST, bounded by [`REQUEST_TIMEOUT`] whatever the transport does.
    pub(super) async fn post(
        &self,
        url: &str,
        headers: &ExportHeaders,
        body: Bytes,
    ) -> Result<Response, TransportError> {
        let pairs = headers.pairs();
        match tokio::time::timeout(REQUEST_TIMEOUT, self.transport.post(url, &pairs, body)).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout(url.to_owned())),
        }
    }
}

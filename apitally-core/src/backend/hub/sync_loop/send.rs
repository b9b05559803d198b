//! How the sync loop talks to the hub: one POST with its retries, and what the answer means.

use std::time::Duration;

use bytes::Bytes;

use super::SyncLoop;
use crate::{diag::debug, transport::Transport, util::lock};

/// The longest `Retry-After` honoured between two attempts.
pub(super) const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// How one call to the hub ended, after its retries.
#[derive(Debug)]
pub(super) enum Outcome {
    /// 2xx.
    Sent,
    /// 422 or 413: the hub will never take this payload; it is dropped.
    Rejected,
    /// 404: the client id is unknown; everything stops.
    Disable,
    /// 402: for log uploads, the quota is used up; `Retry-After` seconds if given.
    PaymentRequired(Option<u64>),
    /// Anything else: keep the payload and try again next cycle.
    Retry(String),
}

impl<T: Transport> SyncLoop<T> {
    /// One POST with up to `attempts` tries, exponential backoff with jitter between them (no
    /// further try once a shutdown interrupted the cycle). `what` names the body in a warning.
    pub(super) async fn send(
        &mut self,
        url: &str,
        headers: &[(&'static str, &str)],
        body: Bytes,
        attempts: u32,
        what: &str,
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
                if !self.pause(wait).await {
                    break;
                }
            }
            match self.transport.post(url, headers, body.clone()).await {
                Ok(r) if (200..300).contains(&r.status) => {
                    self.note_success();
                    return Outcome::Sent;
                }
                Ok(r) if r.status == 404 => return Outcome::Disable,
                Ok(r) if r.status == 402 => return Outcome::PaymentRequired(r.retry_after),
                // Sent again, it would be refused again (and a 413 would keep a payload queued
                // until it ages out): dropped, with one warning.
                Ok(r) if r.status == 422 || r.status == 413 => {
                    let why = if r.status == 413 {
                        "as too large (HTTP 413 Payload Too Large)"
                    } else {
                        "as invalid (HTTP 422)"
                    };
                    let detail: String = r.body.trim().chars().take(500).collect();
                    log::warn!(
                        target: "apitally",
                        "apitally: the hub refused {what} ({} bytes) {why}; it is dropped{}{detail}",
                        body.len(),
                        if detail.is_empty() { "" } else { ": " }
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

    pub(super) fn disable(&mut self) {
        self.stopped = true;
        self.queue.clear();
        *lock(&self.hub.startup) = None;
        self.hub.disable();
        crate::diag::tell(
            log::Level::Error,
            format_args!(
                "apitally: the hub does not know client id {} (HTTP 404): check the client id in \
                 the Apitally dashboard; Apitally is now disabled and requests pass through \
                 untouched",
                crate::config::redact(self.hub.client_id.as_str())
            ),
        );
    }

    pub(super) fn note_success(&mut self) {
        if !self.hub_ok {
            log::info!(target: "apitally", "apitally: the hub is reachable again");
            self.hub_ok = true;
        }
    }

    pub(super) fn note_failure(&mut self, what: &str, reason: &str) {
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
pub(super) fn redact_url(url: &str) -> String {
    match url.find("/v2/") {
        Some(idx) => {
            let rest = &url[idx + 4..];
            let tail = rest.find('/').map_or("", |i| &rest[i..]);
            format!("{}/v2/…{tail}", &url[..idx])
        }
        None => url.to_owned(),
    }
}

//! The request-log part of the sync loop: uploading closed files, and reporting what request
//! logging lost.

use std::time::Duration;

use bytes::Bytes;

use super::{send::Outcome, SyncLoop};
use crate::{
    backend::hub::files::{LogFile, MAX_FILES},
    diag::debug,
    transport::Transport,
};

/// How a round of log uploads ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Uploads {
    /// No closed file is left.
    AllSent,
    /// The per-cycle limit was reached; files wait for the next cycle.
    MoreWaiting,
    /// An upload failed (the file is kept for later), the hub stopped logging (402) or the
    /// client (404), or a shutdown interrupted the cycle.
    Stopped,
}

/// Request-log files that could not be read for upload, since the last report.
#[derive(Debug, Default)]
pub(super) struct Unreadable {
    files: u64,
    lines: u64,
    last_error: String,
}

impl<T: Transport> SyncLoop<T> {
    /// Writes what is queued, closes the current file, and uploads closed files oldest first,
    /// at most `limit` of them (§3.9: 10 per cycle; no limit in the final flush), until none
    /// is left or one fails.
    pub(super) async fn upload_logs(
        &mut self,
        limit: Option<usize>,
        jitter: bool,
        attempts: u32,
    ) -> Uploads {
        let (Some(logger), Some(files)) = (self.hub.logger.clone(), self.hub.files.clone()) else {
            return Uploads::AllSent;
        };
        logger.flush();
        let left_out = logger.take_left_out();
        debug!(
            "request logs since the last sync: {} sampled out, {} excluded, {} log record(s) \
             dropped by mask_log_record",
            left_out.sampled_out, left_out.excluded, left_out.log_records_dropped
        );
        files.rotate();
        let mut sent = 0;
        loop {
            if self.interrupted() {
                return Uploads::Stopped;
            }
            if limit.is_some_and(|limit| sent >= limit) {
                return if files.has_closed_files() {
                    Uploads::MoreWaiting
                } else {
                    Uploads::AllSent
                };
            }
            // Out of the queue while it is read and sent, so that the writer thread's limit on
            // closed files cannot delete it meanwhile; dropped, it goes back to the front.
            let Some(taken) = files.take_file() else {
                return Uploads::AllSent;
            };
            if sent > 0 && jitter {
                let wait = Duration::from_millis(fastrand::u64(100..=500));
                if !self.pause(wait).await {
                    return Uploads::Stopped;
                }
            }
            let file = taken.file().clone();
            let body = match std::fs::read(&file.path) {
                Ok(body) => body,
                Err(err) => {
                    self.note_unreadable(&file, &err);
                    taken.lose();
                    continue;
                }
            };
            sent += 1;
            let url = format!("{}?uuid={}", self.log_url, file.uuid);
            let what = format!("a request log file with {} request(s)", file.lines);
            match self
                .send(&url, &[], Bytes::from(body), attempts, &what)
                .await
            {
                Outcome::Sent => taken.remove(),
                Outcome::Rejected => taken.lose(),
                Outcome::Disable => {
                    self.disable();
                    return Uploads::Stopped;
                }
                Outcome::PaymentRequired(retry_after) => {
                    taken.lose();
                    logger.suspend(retry_after.filter(|s| *s > 0).unwrap_or(3600));
                    return Uploads::Stopped;
                }
                Outcome::Retry(reason) => {
                    drop(taken);
                    self.note_failure("request log upload", &reason);
                    return Uploads::Stopped;
                }
            }
        }
    }

    /// The final flush's uploads: every closed file, one attempt each, until none is left
    /// (items written meanwhile included) or one fails; the caller bounds it by the budget.
    pub(super) async fn flush_logs(&mut self) {
        let Some(logger) = self.hub.logger.clone() else {
            return;
        };
        while self.upload_logs(None, false, 1).await == Uploads::AllSent && !logger.is_idle() {}
    }

    pub(super) fn note_unreadable(&mut self, file: &LogFile, err: &std::io::Error) {
        let u = &mut self.unreadable;
        u.files += 1;
        u.lines += file.lines as u64;
        u.last_error = format!("{}: {err}", file.path.display());
    }

    /// Logs what request logging lost since the last report, in one line: files deleted over
    /// the limit, files that could not be read, items the full buffer refused.
    pub(super) fn report_losses(&mut self) {
        let Some(logger) = &self.hub.logger else {
            return;
        };
        let dropped = logger.take_dropped();
        let (deleted_files, deleted_lines) =
            self.hub.files.as_ref().map_or((0, 0), |f| f.take_deleted());
        let unreadable = std::mem::take(&mut self.unreadable);
        let mut parts = Vec::new();
        if deleted_files > 0 {
            parts.push(format!(
                "deleted {deleted_files} request log file(s) ({deleted_lines} requests) over \
                 the limit of {MAX_FILES} files waiting for upload"
            ));
        }
        if unreadable.files > 0 {
            parts.push(format!(
                "{} request log file(s) ({} requests) could not be read (last: {})",
                unreadable.files, unreadable.lines, unreadable.last_error
            ));
        }
        if dropped > 0 {
            parts.push(format!(
                "{dropped} request(s) not logged because the request log buffer was full"
            ));
        }
        if !parts.is_empty() {
            log::warn!(
                target: "apitally",
                "apitally: request logs lost since the last sync: {}",
                parts.join("; ")
            );
        }
    }
}

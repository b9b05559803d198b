//! What the spool dropped unsent, and why: counted per queue, reported once per cycle.

use super::*;

/// Why files were dropped unsent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum DropReason {
    /// The spool's size cap was reached.
    OverCap,
    /// First attempted over 59 minutes ago.
    Expired,
    /// The server rejected it with this status (not retryable).
    Rejected(u16),
    /// It could not be written or read.
    Io,
    /// One message above the file cap.
    Oversize,
    /// Left at shutdown.
    Shutdown,
}

impl DropReason {
    pub(super) fn describe(self) -> String {
        match self {
            DropReason::OverCap => "the buffer limit was reached".to_owned(),
            DropReason::Expired => "not delivered within an hour".to_owned(),
            DropReason::Rejected(status) => format!("rejected with HTTP {status}"),
            DropReason::Io => "a disk error".to_owned(),
            DropReason::Oversize => "larger than a request may carry".to_owned(),
            DropReason::Shutdown => "not delivered at shutdown".to_owned(),
        }
    }
}

/// What was dropped unsent, per queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Losses {
    /// Files per queue (a dropped message counts as a file).
    pub(crate) files: [u64; 4],
    /// Items per queue.
    pub(crate) items: [u64; 4],
    /// The reasons, per queue, distinct and sorted.
    pub(crate) reasons: [Vec<DropReason>; 4],
}

impl Losses {
    pub(crate) fn is_empty(&self) -> bool {
        self.files.iter().all(|&f| f == 0)
    }

    pub(super) fn add(&mut self, queue: Queue, items: u64, reason: DropReason) {
        let i = queue.index();
        self.files[i] += 1;
        self.items[i] += items;
        if let Err(at) = self.reasons[i].binary_search(&reason) {
            self.reasons[i].insert(at, reason);
        }
    }

    /// `traces: 1200 requests in 3 file(s) (the buffer limit was reached); ...`.
    pub(crate) fn describe(&self) -> String {
        Queue::ALL
            .iter()
            .filter(|q| self.files[q.index()] > 0)
            .map(|q| {
                let i = q.index();
                let reasons: Vec<String> = self.reasons[i].iter().map(|r| r.describe()).collect();
                format!(
                    "{}: {} {} in {} file(s) ({})",
                    q.as_str(),
                    self.items[i],
                    q.items(),
                    self.files[i],
                    reasons.join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

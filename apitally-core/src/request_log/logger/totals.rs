//! What request logging reports of itself: the requests it left out over a sync window, and
//! its totals since the process started (the `Apitally-Request-Logs` header).

/// Requests (and log records) left out of request logs on purpose over a sync window (what was
/// lost is counted by the sinks and the spool).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LeftOut {
    /// By sampling.
    pub(crate) sampled_out: u64,
    /// By the exclusions (paths, user agents, the `exclude` callback).
    pub(crate) excluded: u64,
    /// Captured log records that `mask_log_record` dropped (or panicked on).
    pub(crate) log_records_dropped: u64,
}

/// The request header that carries [`Totals`] to the hub with each startup and sync post
/// (hub v2) and each export (1.x), so that a hub can show what request logging left out. The
/// real servers ignore it.
pub(crate) const REQUEST_LOGS_HEADER: &str = "Apitally-Request-Logs";

/// What request logging did with the requests of this process since it started.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Totals {
    /// Written for delivery (into a request-log file, or the 1.x spool).
    pub(crate) logged: u64,
    /// Left out by sampling.
    pub(crate) sampled_out: u64,
    /// Left out by the exclusions (paths, user agents, the `exclude` callback).
    pub(crate) excluded: u64,
    /// Not queued because the buffer was full.
    pub(crate) dropped: u64,
}

impl Totals {
    /// The value of [`REQUEST_LOGS_HEADER`]:
    /// `logged=120, sampled-out=12, excluded=3, dropped=0`.
    pub(crate) fn header_value(&self) -> String {
        format!(
            "logged={}, sampled-out={}, excluded={}, dropped={}",
            self.logged, self.sampled_out, self.excluded, self.dropped
        )
    }
}

/// The totals already reported by
/// [`RequestLogger::take_left_out`](super::RequestLogger::take_left_out) and
/// [`RequestLogger::take_dropped`](super::RequestLogger::take_dropped), which report
/// differences to them.
#[derive(Debug, Default)]
pub(super) struct Reported {
    pub(super) sampled_out: u64,
    pub(super) excluded: u64,
    pub(super) dropped: u64,
}

/// What [`RequestLogger::clear`](super::RequestLogger::clear) deleted: files (closed and
/// current), the requests in them, and items still queued (not yet written).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cleared {
    pub(crate) files: usize,
    pub(crate) lines: usize,
    pub(crate) pending: usize,
}

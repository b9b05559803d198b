//! The spool's queues: one per kind of data, each sent to one OTLP signal's endpoint.

/// The three OTLP signals: the endpoints `/v1/{signal}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Signal {
    Traces,
    Logs,
    Metrics,
}

impl Signal {
    /// `traces`, `logs` or `metrics`: the path segment of `/v1/{signal}` and the word in log
    /// lines.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
        }
    }
}

/// The spool's queues. Each has its own files, its own send budget per cycle and its own
/// failures, so that none waits behind another.
///
/// The first two are the product (every request's metrics; Apitally's events: errors,
/// consumers, startup): they are sent first, drained first at shutdown and evicted last. The
/// last two are samples of it (the spans and application log records of logged requests):
/// a backlog of them is what the size cap evicts first, oldest first, counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Queue {
    /// Request histograms and process gauges (`/v1/metrics`).
    Metrics,
    /// Apitally's internal events (`/v1/logs`).
    Events,
    /// Spans of logged requests (`/v1/traces`).
    Traces,
    /// Application log records of logged requests (`/v1/logs`).
    Logs,
}

impl Queue {
    /// Every queue, in the order they are sent (and kept).
    pub(crate) const ALL: [Queue; 4] = [Queue::Metrics, Queue::Events, Queue::Traces, Queue::Logs];

    /// The endpoint its files go to.
    pub(crate) fn signal(self) -> Signal {
        match self {
            Queue::Metrics => Signal::Metrics,
            Queue::Events | Queue::Logs => Signal::Logs,
            Queue::Traces => Signal::Traces,
        }
    }

    /// What an item of this queue is, in a report: `requests` (metrics and spans count the
    /// requests they describe), `events` or `log records`.
    pub(crate) fn items(self) -> &'static str {
        match self {
            Queue::Metrics | Queue::Traces => "requests",
            Queue::Events => "events",
            Queue::Logs => "log records",
        }
    }

    /// Its name in reports.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Queue::Metrics => "metrics",
            Queue::Events => "events",
            Queue::Traces => "traces",
            Queue::Logs => "application logs",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

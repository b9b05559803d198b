//! The v1 exporter's building blocks: OTLP/HTTP protobuf with a write token
//! (`shared/protocol-v1.md`). Nothing here is wired yet; this is how the pieces fit.
//!
//! ```text
//!  request path (any thread)            export worker (one task, see export.rs)
//!  ─────────────────────────            ───────────────────────────────────────
//!  RequestMetrics::record ──┐           every ~15 s (first after 2 s):
//!  span / log batches ──────┼─ Encoder ─▶ Spool::append(signal, bytes)   [Collect hook]
//!  error groups, consumer   │            Spool::rotate_for_export + eviction + touch
//!  updates → events ────────┘            POST each closed file verbatim, oldest first
//! ```
//!
//! - [`histogram`]: the exact scale-3 bucket index and [`histogram::ExpHistogram`].
//! - [`metrics`]: [`metrics::RequestMetrics`] (delta histograms per method, route, status,
//!   scheme and consumer; `record` per request, `drain` per collection) and
//!   [`metrics::ProcessMonitor`] (the three process gauges).
//! - [`model`]: neutral [`model::SpanData`], [`model::LogRecordData`], [`model::AttrValue`].
//! - [`events`]: the four `apitally.*` events from plain inputs, bounded.
//! - [`resource`]: the resource attributes (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`
//!   read through a lookup closure; one `service.instance.id` per process).
//! - [`encode`]: [`encode::Encoder`] turns the above into `Export*ServiceRequest` bytes, in
//!   batches of at most 32 spans/records and slices of at most 1,000 metric combinations.
//! - [`spool`]: [`spool::Spool`], the per-signal gzip files (in memory if the temp dir is not
//!   writable), caps, eviction, rotation.
//! - [`export`]: [`export::ExportWorker`], the cycle, the schedule, response handling and the
//!   final drain, generic over [`export::ExportTransport`] (implemented for the awc transport).
//!
//! What the wiring must provide:
//!
//! 1. One [`spool::Spool`] (`Arc`) and one [`encode::Encoder`] per process, built from
//!    [`resource::resource_attributes`] with the resolved env.
//! 2. A [`export::Collect`] implementation that, when called once per cycle, appends to the
//!    spool in the order of §1.7: the pending span batches (`Encoder::encode_spans`), then the
//!    drained validation-error and server-error groups as events (`events::*_event`), then the
//!    pending log batches including consumer updates (`Encoder::encode_logs`), then the
//!    metrics (`RequestMetrics::drain(now)` + `ProcessMonitor::sample()` →
//!    `Encoder::encode_metrics`). The startup event goes into the logs once after activation.
//! 3. The worker: `ExportWorker::new(spool, transport, collect, ExportSettings { .. })`,
//!    `run(stop)` on the client's background thread (the awc transport is not `Send`), then
//!    `final_drain(budget)` once `stop` resolved (shutdown or the last handle gone).
//! 4. Per request: `RequestMetrics::record` for every routed, non-`OPTIONS` request
//!    (sampling and exclusions do not apply to metrics).
//! 5. Not here yet: the validated endpoint and write token (§1.2, §1.4), the transport
//!    (`AwcTransport::new(export::REQUEST_TIMEOUT, &net)`), span and log capture with their
//!    batch queues, the error-group aggregation (at most 100 groups per interval, counts per
//!    consumer, §4.5-§4.6) and the consumer-update LRU of 10,000 identifiers (§4.4).

pub(crate) mod encode;
pub(crate) mod events;
pub(crate) mod export;
pub(crate) mod histogram;
pub(crate) mod metrics;
pub(crate) mod model;
pub(crate) mod resource;
pub(crate) mod runtime;
pub(crate) mod spool;
#[cfg(test)]
mod testing;
pub(crate) mod wire;

/// Scope name of the internal events and the metrics (§4.2, §5.4), sent without version.
pub(crate) const APITALLY_SCOPE: &str = "apitally";

/// Nanoseconds since the Unix epoch (0 before it).
pub(crate) fn unix_nanos(time: std::time::SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Now, in nanoseconds since the Unix epoch.
pub(crate) fn now_unix_nanos() -> u64 {
    unix_nanos(std::time::SystemTime::now())
}

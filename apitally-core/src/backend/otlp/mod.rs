//! Apitally 1.x (a write token): OTLP/HTTP protobuf (protocol-v1.md). See [`OtlpBackend`].
//!
//! ```text
//!  request path                          export thread (export.rs)
//!  ────────────                          ─────────────────────────
//!  Otlp::record_* ─ histograms, error    every ~15 s (first after 2 s):
//!                   groups, consumers ─► Otlp::collect: events, metrics ─► spool (queues)
//!  logged request ─► RequestLogger ─►    metrics and events sent by the cycle; traces and
//!     OtlpSink::write (wire.rs) ─► spool  application logs by a second lane beside it
//! ```
//!
//! - [`histogram`], [`metrics`]: the exact scale-3 delta histograms per (method, route, status,
//!   scheme, consumer) and the process gauges.
//! - [`aggregate`]: [`aggregate::Otlp`], what the request path records (histograms, error
//!   groups, consumer updates) and each cycle collects; [`sink`]: [`sink::OtlpSink`], where
//!   logged requests go.
//! - [`wire`]: logged requests written straight into OTLP protobuf (SERVER spans, child spans,
//!   log records); [`encode`]: the prost messages of events and metrics (and, in tests, the
//!   reference encoding of spans that `wire` is checked against); [`model`], [`events`],
//!   [`resource`]: their inputs.
//! - [`spool`]: the per-queue gzip spool; [`export`]: the export worker and its schedule.

pub(crate) mod aggregate;
pub(crate) mod encode;
pub(crate) mod events;
pub(crate) mod export;
pub(crate) mod histogram;
pub(crate) mod metrics;
pub(crate) mod model;
#[cfg(test)]
pub(crate) mod reference;
pub(crate) mod resource;
pub(crate) mod sink;
pub(crate) mod spool;
#[cfg(test)]
mod testing;
pub(crate) mod wire;

use std::{sync::Arc, time::Duration};

use uuid::Uuid;

use self::{
    aggregate::Otlp,
    encode::Encoder,
    export::{ExportSettings, ExportWorker},
    sink::OtlpSink,
    spool::Spool,
};
use super::{Backend, LocalFuture, Started};
use crate::{
    config::{ResolvedConfig, Target},
    request_log::RequestLogger,
    transport::{AwcTransport, NetSettings},
    Consumer, Protocol, RequestRecord, ServerError, StartupData, ValidationError,
};

/// Apitally 1.x: what the request path records, where logged requests go, and where to.
pub(crate) struct OtlpBackend {
    otlp: Arc<Otlp>,
    logger: Option<Arc<RequestLogger>>,
    settings: ExportSettings,
    instance: Uuid,
}

/// Starts 1.x: one spool and encoder per process (a random instance id), the startup event,
/// and request logging (the protocol's defaults unless the config says otherwise) with its
/// writer thread.
pub(crate) fn start(resolved: &ResolvedConfig, startup: StartupData) -> Started {
    let config = &resolved.config;
    let Target::Otlp {
        endpoint,
        write_token,
    } = &resolved.target
    else {
        unreachable!("the otlp backend starts for an otlp target");
    };
    let spool = match &config.tuning.log_dir {
        Some(dir) => Spool::new_in(dir.clone()),
        None => Spool::new(),
    };
    let sink = Arc::new(OtlpSink::new(
        Arc::new(spool),
        Encoder::new(&resource::resource_attributes(&config.env, |k| {
            std::env::var(k).ok()
        })),
        startup.adapter.clone().unwrap_or_else(|| {
            (
                env!("CARGO_PKG_NAME").to_owned(),
                env!("CARGO_PKG_VERSION").to_owned(),
            )
        }),
    ));
    let instance = resource::instance_id()
        .parse()
        .unwrap_or_else(|_| Uuid::new_v4());
    let logging = resolved.logging.clone();
    let logger = logging.as_ref().and_then(|logging| {
        let sink: Arc<dyn super::LogSink> = Arc::clone(&sink) as _;
        match crate::request_log::RequestLogger::new(logging.clone(), sink) {
            Ok(logger) => Some(crate::request_log::spawn_writer(Arc::new(logger))),
            Err(err) => {
                log::error!(target: "apitally", "apitally: request logging is off: {err}");
                None
            }
        }
    });
    let otlp = Arc::new(Otlp::new(
        sink,
        aggregate::startup_record_of(&startup, logging.as_ref(), config.app_version.as_deref()),
    ));
    let backend = Arc::new(OtlpBackend {
        otlp,
        logger: logger.clone(),
        settings: ExportSettings {
            endpoint: endpoint.clone(),
            write_token: write_token.clone(),
            env: config.env.clone(),
            fixed_interval: config.tuning.sync_interval,
        },
        instance,
    });
    Started { backend, logger }
}

impl Backend for OtlpBackend {
    #[inline]
    fn record_request(&self, record: &RequestRecord<'_>) {
        self.otlp.record_request(record);
    }

    fn record_validation_error(
        &self,
        method: &str,
        route: &str,
        consumer: Option<&Consumer>,
        error: &ValidationError,
    ) {
        self.otlp
            .record_validation_error(method, route, consumer, error);
    }

    fn record_server_error(
        &self,
        method: &str,
        route: &str,
        consumer: Option<&Consumer>,
        error: &ServerError,
    ) {
        self.otlp
            .record_server_error(method, route, consumer, error);
    }

    fn set_startup_data(&self, _startup: &StartupData) {
        // The startup event is sent once, at activation (protocol-v1.md §4.2).
    }

    fn protocol(&self) -> Protocol {
        Protocol::Otlp
    }

    fn instance_uuid(&self) -> Uuid {
        self.instance
    }

    fn deliver(
        self: Arc<Self>,
        net: NetSettings,
        stop: LocalFuture<()>,
        budget: Duration,
    ) -> LocalFuture<bool> {
        Box::pin(async move {
            let transport = AwcTransport::new(export::REQUEST_TIMEOUT, &net);
            let delivered = run(
                Arc::clone(&self.otlp),
                self.logger.clone(),
                transport,
                self.settings.clone(),
                stop,
                budget,
            )
            .await;
            if let Some(logger) = &self.logger {
                logger.clear();
            }
            delivered
        })
    }
}

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

/// The export thread: cycles until `stop` resolves, then the final drain within `budget`.
/// Returns whether everything was delivered.
async fn run(
    shared: Arc<Otlp>,
    logger: Option<Arc<RequestLogger>>,
    transport: impl crate::transport::Transport,
    settings: ExportSettings,
    stop: impl std::future::Future<Output = ()>,
    budget: Duration,
) -> bool {
    let spool = Arc::clone(&shared.sink.spool);
    let collect = {
        let shared = Arc::clone(&shared);
        let logger = logger.clone();
        move |spool: &Spool| shared.collect(logger.as_deref(), spool)
    };
    let mut worker = ExportWorker::new(spool, transport, collect, &settings);
    worker.report_request_logs(logger.clone());
    worker.run(stop).await;
    if let Some(logger) = &logger {
        logger.stop();
    }
    let report = worker.final_drain(budget).await;
    if !report.is_complete() {
        let stopped: Vec<String> = report
            .stopped
            .iter()
            .map(|(queue, stop)| format!("{}: {stop}", queue.as_str()))
            .collect();
        log::warn!(
            target: "apitally",
            "apitally: shutdown: not everything reached Apitally ({} file(s) delivered{}); \
             dropped: {}",
            report.delivered,
            if stopped.is_empty() {
                String::new()
            } else {
                format!("; sending stopped: {}", stopped.join(", "))
            },
            report.losses.describe()
        );
    }
    report.is_complete()
}

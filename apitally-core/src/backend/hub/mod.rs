//! Hub v2 (a client id): sync windows, JSON payloads, request-log files and the sync loop
//! (protocol.md). See [`HubBackend`].

pub(crate) mod consumers;
pub(crate) mod files;
pub(crate) mod instance;
pub(crate) mod payload;
pub(crate) mod sync_loop;
pub(crate) mod window;

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use bytes::Bytes;
use uuid::Uuid;

pub use self::window::{MAX_MSG_CHARS, MAX_TRACEBACK_CHARS};
use self::{
    files::LogFiles,
    instance::InstanceId,
    sync_loop::SyncLoop,
    window::{Limits, Metrics},
};
use super::{Backend, LocalFuture, Started};
use crate::{
    config::{ResolvedConfig, Tuning},
    request_log::RequestLogger,
    transport::{AwcTransport, NetSettings},
    util::lock,
    Consumer, Protocol, RequestRecord, ServerError, StartupData, ValidationError,
};

/// Hub v2: what a sync window counts, the startup data, the request-log files, and what the
/// sync loop needs to send them.
pub(crate) struct HubBackend {
    /// Turned off by a 404 (unknown client id) and at shutdown.
    pub(crate) enabled: Arc<AtomicBool>,
    pub(crate) metrics: Metrics,
    pub(crate) instance: InstanceId,
    /// The serialised startup payload until the hub has taken it.
    pub(crate) startup: Mutex<Option<Bytes>>,
    pub(crate) client_id: String,
    pub(crate) app_version: Option<String>,
    pub(crate) logger: Option<Arc<RequestLogger>>,
    /// The request logger's files, when request logging is on.
    pub(crate) files: Option<Arc<LogFiles>>,
    hub_url: String,
    tuning: Tuning,
}

/// Starts hub v2 for `hub_url` (`{base}/v2/{client_id}/{env}`): the window, the instance slot
/// and, when the config asks, request logging into files with its writer thread.
pub(crate) fn start(
    resolved: &ResolvedConfig,
    hub_url: &str,
    startup: StartupData,
    enabled: Arc<AtomicBool>,
) -> Started {
    let config = &resolved.config;
    let instance = InstanceId::acquire(&config.client_id, &config.env);
    crate::diag::debug!(
        "hub v2 instance {} (slot file: {:?})",
        instance.uuid,
        instance.path
    );
    let body = payload::startup_body(&startup, instance.uuid, config.app_version.as_deref());
    let mut files = None;
    let logger = resolved.logging.as_ref().and_then(|logging| {
        let dir = config
            .tuning
            .log_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("apitally"));
        let started = LogFiles::new(dir, logging.max_file_size).and_then(|sink| {
            let sink = Arc::new(sink);
            files = Some(Arc::clone(&sink));
            RequestLogger::new(logging.clone(), sink)
        });
        match started {
            Ok(logger) => Some(crate::request_log::spawn_writer(Arc::new(logger))),
            Err(err) => {
                log::error!(target: "apitally", "apitally: request logging is off: {err}");
                None
            }
        }
    });
    let backend = Arc::new(HubBackend {
        enabled,
        metrics: Metrics::new(Limits {
            request_keys: config.max_request_keys,
            validation_error_keys: config.tuning.max_error_keys,
            server_error_keys: config.tuning.max_error_keys,
            consumers: config.max_consumers,
        }),
        instance,
        startup: Mutex::new(Some(Bytes::from(body))),
        client_id: config.client_id.clone(),
        app_version: config.app_version.clone(),
        logger: logger.clone(),
        files,
        hub_url: hub_url.to_owned(),
        tuning: config.tuning.clone(),
    });
    Started { backend, logger }
}

impl Backend for HubBackend {
    #[inline]
    fn record_request(&self, record: &RequestRecord<'_>) {
        self.metrics.record_request(record);
    }

    fn record_validation_error(
        &self,
        method: &str,
        route: &str,
        consumer: Option<&Consumer>,
        error: &ValidationError,
    ) {
        self.metrics
            .record_validation_error(method, route, consumer, error);
    }

    fn record_server_error(
        &self,
        method: &str,
        route: &str,
        consumer: Option<&Consumer>,
        error: &ServerError,
    ) {
        self.metrics
            .record_server_error(method, route, consumer, error);
    }

    fn set_startup_data(&self, startup: &StartupData) {
        let body = payload::startup_body(startup, self.instance.uuid, self.app_version.as_deref());
        *lock(&self.startup) = Some(Bytes::from(body));
    }

    fn protocol(&self) -> Protocol {
        Protocol::Hub
    }

    fn instance_uuid(&self) -> Uuid {
        self.instance.uuid
    }

    fn deliver(
        self: Arc<Self>,
        net: NetSettings,
        stop: LocalFuture<()>,
        budget: Duration,
    ) -> LocalFuture<bool> {
        Box::pin(async move {
            let transport = AwcTransport::new(self.tuning.request_timeout, &net);
            let url = self.hub_url.clone();
            let tuning = self.tuning.clone();
            let flushed = SyncLoop::new(self, transport, &url, tuning, budget)
                .run(stop)
                .await;
            flushed
        })
    }
}

impl HubBackend {
    /// Turns the client off: the hub does not know the client id.
    pub(crate) fn disable(&self) {
        self.enabled.store(false, Ordering::Relaxed);
    }
}

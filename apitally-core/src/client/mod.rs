//! For client documentation, see [`ApitallyClient`].

mod connector;
mod payload;
pub(crate) mod proxy;
mod sync_loop;
#[cfg(feature = "rustls")]
pub(crate) mod tls;
pub(crate) mod transport;

use std::{
    fmt,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, LazyLock, Mutex, Weak,
    },
    time::Duration,
};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

pub use self::payload::{PathItem, StartupData, DEFAULT_CLIENT};
use self::{sync_loop::SyncLoop, transport::AwcTransport};
use crate::{
    config::Target,
    otlp::{
        encode::Encoder,
        export::ExportSettings,
        resource,
        runtime::{self, Otlp, OtlpSink},
        spool::Spool,
    },
};
use crate::{
    config::{redact, ResolvedConfig},
    diag::debug,
    instance::InstanceId,
    metrics::{lock, Limits, Metrics},
    request_log::RequestLogger,
    ClientConfig, ConfigError, Consumer, RequestRecord, ServerError, ValidationError,
};

/// State shared by the client handles (which record) and the sync thread (which sends).
pub(crate) struct Shared {
    pub(crate) enabled: AtomicBool,
    pub(crate) metrics: Metrics,
    pub(crate) instance: InstanceId,
    /// The serialised startup payload until the hub has taken it.
    pub(crate) startup: Mutex<Option<Bytes>>,
    pub(crate) client_id: String,
    pub(crate) app_version: Option<String>,
    pub(crate) logger: Option<Arc<RequestLogger>>,
    /// Apitally 1.x: what is recorded and exported instead of `metrics`.
    pub(crate) otlp: Option<Arc<Otlp>>,
}

pub(crate) enum Command {
    Shutdown(Reply),
}

pub(crate) enum Reply {
    Async(oneshot::Sender<bool>),
    Blocking(std::sync::mpsc::Sender<bool>),
}

impl Reply {
    pub(crate) fn send(self, flushed: bool) {
        // The caller may have stopped waiting; that is fine.
        match self {
            Reply::Async(tx) => drop(tx.send(flushed)),
            Reply::Blocking(tx) => drop(tx.send(flushed)),
        }
    }
}

pub(crate) struct Inner {
    shared: Option<Arc<Shared>>,
    commands: Option<mpsc::UnboundedSender<Command>>,
    key: Option<(String, String)>,
    shutdown_timeout: Duration,
}

/// Running clients by (client id, env), so that every worker's middleware finds the same one.
///
/// Held strongly: actix may build an `App` (and so the middleware) once and drop it before the
/// workers start, and the workers must still find the same client. The sync thread removes
/// its entry once no handle but this one has existed for [`ORPHAN_GRACE`].
static CLIENTS: LazyLock<Mutex<Vec<Running>>> = LazyLock::new(Default::default);

/// A running client and its (lowercase client id, env).
type Running = ((String, String), Arc<Inner>);

/// How long a client lives on with no handle outside the registry.
pub(crate) const ORPHAN_GRACE: Duration = Duration::from_secs(2);

/// Whether nothing but the registry holds the client.
pub(crate) fn is_orphaned(inner: &Weak<Inner>) -> bool {
    let registered = lock(&CLIENTS)
        .iter()
        .any(|(_, i)| std::ptr::eq(Arc::as_ptr(i), inner.as_ptr()));
    inner.strong_count() <= usize::from(registered)
}

/// Removes the client from the registry if nothing else holds it; true when removed (the
/// sync thread then makes its final sync and ends).
pub(crate) fn release_if_orphaned(inner: &Weak<Inner>) -> bool {
    let mut clients = lock(&CLIENTS);
    let Some(idx) = clients
        .iter()
        .position(|(_, i)| std::ptr::eq(Arc::as_ptr(i), inner.as_ptr()))
    else {
        // Not registered (shut down): orphaned once every handle is gone.
        return inner.strong_count() == 0;
    };
    if Arc::strong_count(&clients[idx].1) > 1 {
        return false;
    }
    clients.swap_remove(idx);
    true
}

/// The process-wide Apitally client: records requests cheaply on any thread and reports them
/// to the hub from one background thread.
///
/// One client runs per (client id, env) and process: [`new`](Self::new) returns the running one
/// when called again with the same ids (as happens when each actix worker builds its
/// middleware), so there is one sync thread and one instance UUID. Handles are cheap to clone;
/// the background thread ends on [`shutdown`](Self::shutdown) or when the last handle is
/// dropped, after a final sync.
///
/// An invalid configuration gives a disabled client (one error log names the bad value) whose
/// methods do nothing; use [`try_new`](Self::try_new) to get the error instead.
///
/// ```no_run
/// # use apitally_core as apitally;
/// use std::time::Duration;
/// use apitally::{ApitallyClient, ClientConfig, Consumer, RequestRecord, StartupData};
///
/// # async fn run() {
/// let config = ClientConfig::new("3cd8948c-b589-40a2-a33f-a4e604425c81", "prod");
/// let client = ApitallyClient::new(config, StartupData::new("rust:custom"));
///
/// let consumer = Consumer::new("customer-42");
/// client.record_request(
///     &RequestRecord::new("GET", "/items/{id}", 200, Duration::from_millis(12))
///         .consumer(Some(&consumer))
///         .response_size(Some(512)),
/// );
///
/// client.shutdown().await; // final sync, within the shutdown timeout
/// # }
/// ```
#[derive(Clone)]
pub struct ApitallyClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for ApitallyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApitallyClient")
            .field("enabled", &self.is_enabled())
            .field("instance_uuid", &self.instance_uuid())
            .finish_non_exhaustive()
    }
}

impl ApitallyClient {
    /// Starts the client for `config`, or returns the one already running for the same client id
    /// and env. `startup` (the app's routes and versions) is sent once, by the client that starts.
    ///
    /// Never panics: an invalid configuration, or a thread that cannot be spawned, is logged once
    /// at error level and gives a disabled client.
    pub fn new(config: ClientConfig, startup: StartupData) -> Self {
        match Self::try_new(config, startup) {
            Ok(client) => client,
            Err(err) => {
                log::error!(
                    target: "apitally",
                    "apitally: {err}; Apitally is disabled and requests pass through untouched"
                );
                Self::disabled()
            }
        }
    }

    /// Like [`new`](Self::new), but returns the configuration error instead of a disabled client.
    ///
    /// ```
    /// # use apitally_core as apitally;
    /// use apitally::{ApitallyClient, ClientConfig, ConfigError, StartupData};
    ///
    /// let err = ApitallyClient::try_new(ClientConfig::new("nope", "prod"), StartupData::default());
    /// assert!(matches!(err, Err(ConfigError::InvalidClientId { .. })));
    /// ```
    pub fn try_new(config: ClientConfig, startup: StartupData) -> Result<Self, ConfigError> {
        let resolved = config.resolve()?;
        let key = (
            resolved.config.client_id.to_ascii_lowercase(),
            resolved.config.env.clone(),
        );
        let mut clients = lock(&CLIENTS);
        if let Some(inner) = clients
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, inner)| Arc::clone(inner))
        {
            debug!(
                "reusing the running client for {} / {}",
                redact(&key.0),
                key.1
            );
            return Ok(Self { inner });
        }
        let client = Self::start(resolved, startup, key.clone());
        if client.is_enabled() {
            clients.push((key, Arc::clone(&client.inner)));
        }
        Ok(client)
    }

    /// A client that records nothing and sends nothing.
    pub fn disabled() -> Self {
        Self {
            inner: Arc::new(Inner {
                shared: None,
                commands: None,
                key: None,
                shutdown_timeout: Duration::ZERO,
            }),
        }
    }

    fn start(resolved: ResolvedConfig, startup: StartupData, key: (String, String)) -> Self {
        let config = &resolved.config;
        let (route, otlp_settings) = match &resolved.target {
            Target::Hub { hub_url } => (resolved.net.proxies.describe_route(hub_url), None),
            Target::Otlp {
                endpoint,
                write_token,
            } => (
                resolved.net.proxies.describe_route(endpoint),
                Some(ExportSettings {
                    endpoint: endpoint.clone(),
                    write_token: write_token.clone(),
                    env: config.env.clone(),
                }),
            ),
        };
        // 1.x: one spool and encoder per process; a random instance id per process.
        let sink = otlp_settings.as_ref().map(|_| {
            let spool = match &config.tuning.log_dir {
                Some(dir) => Spool::new_in(dir.clone()),
                None => Spool::new(),
            };
            Arc::new(OtlpSink::new(
                Arc::new(spool),
                Encoder::new(&resource::resource_attributes(&config.env, |k| {
                    std::env::var(k).ok()
                })),
            ))
        });
        let instance = match &sink {
            Some(_) => InstanceId::per_process(
                resource::instance_id()
                    .parse()
                    .unwrap_or_else(|_| Uuid::new_v4()),
            ),
            None => InstanceId::acquire(&config.client_id, &config.env),
        };
        let startup_body =
            payload::startup_body(&startup, instance.uuid, config.app_version.as_deref());
        // 1.x logs every request by default (traces and application logs); the hub only when
        // asked to.
        let logging = match (&config.request_logging, &sink) {
            (Some(logging), _) => Some(logging.clone()),
            (None, Some(_)) => Some(
                crate::RequestLoggingConfig::new()
                    .capture_logs(true)
                    .capture_traces(true),
            ),
            (None, None) => None,
        };
        let logging_config = logging.clone();
        let logger = logging.and_then(|logging| {
            let dir = config
                .tuning
                .log_dir
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join("apitally"));
            match RequestLogger::with_sink(logging, dir, sink.clone()) {
                Ok(logger) => Some(Arc::new(logger)),
                Err(err) => {
                    log::error!(
                        target: "apitally",
                        "apitally: request logging is off: {err}"
                    );
                    None
                }
            }
        });
        if let Some(logger) = &logger {
            let writer = Arc::clone(logger);
            let spawned = std::thread::Builder::new()
                .name("apitally-log".into())
                .spawn(move || writer.run_writer());
            if let Err(err) = spawned {
                log::error!(
                    target: "apitally",
                    "apitally: cannot start the request log thread ({err}); logs are written at each sync"
                );
            }
        }
        let otlp = sink.map(|sink| {
            let mut versions: Vec<(String, String)> = startup
                .versions
                .iter()
                .filter(|(k, _)| k.as_str() != "apitally")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let rust = env!("APITALLY_RUSTC_VERSION");
            if !rust.is_empty() && !versions.iter().any(|(k, _)| k == "rust") {
                versions.push(("rust".into(), rust.into()));
            }
            if let Some(app) = &config.app_version {
                versions.push(("app".into(), app.clone()));
            }
            let mut startup_config = logging_config
                .as_ref()
                .map(crate::RequestLoggingConfig::startup_config)
                .unwrap_or_default();
            startup_config.extend(startup.config.iter().cloned());
            let record = runtime::startup_record(
                &startup.framework_name(),
                &versions,
                &startup_config,
                &startup.paths,
                startup.openapi.as_deref(),
            );
            Arc::new(Otlp::new(sink, record))
        });
        let shared = Arc::new(Shared {
            logger,
            enabled: AtomicBool::new(true),
            metrics: Metrics::new(Limits {
                request_keys: config.max_request_keys,
                validation_error_keys: config.tuning.max_error_keys,
                server_error_keys: config.tuning.max_error_keys,
                consumers: config.max_consumers,
            }),
            instance,
            startup: Mutex::new(Some(Bytes::from(startup_body))),
            client_id: config.client_id.clone(),
            app_version: config.app_version.clone(),
            otlp,
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let thread_shared = Arc::clone(&shared);
        let tuning = config.tuning.clone();
        let shutdown_timeout = config.shutdown_timeout;
        let target = resolved.target.clone();
        let net = resolved.net;
        let inner = Arc::new(Inner {
            shared: Some(shared),
            commands: Some(tx),
            key: Some(key),
            shutdown_timeout,
        });
        let handle = Arc::downgrade(&inner);
        let spawned = std::thread::Builder::new()
            .name("apitally-sync".into())
            .spawn(move || {
                let system = actix_rt::System::new();
                system.block_on(async move {
                    match (target, otlp_settings) {
                        (_, Some(settings)) => {
                            let transport =
                                AwcTransport::new(crate::otlp::export::REQUEST_TIMEOUT, &net);
                            run_otlp(
                                thread_shared,
                                transport,
                                settings,
                                rx,
                                handle,
                                shutdown_timeout,
                            )
                            .await;
                        }
                        (Target::Hub { hub_url }, None) => {
                            let transport = AwcTransport::new(tuning.request_timeout, &net);
                            SyncLoop::new(
                                thread_shared,
                                transport,
                                &hub_url,
                                tuning,
                                shutdown_timeout,
                            )
                            .run(rx, handle)
                            .await;
                        }
                        (Target::Otlp { .. }, None) => {}
                    }
                });
            });
        if let Err(err) = spawned {
            log::error!(
                target: "apitally",
                "apitally: cannot start the sync thread: {err}; Apitally is disabled"
            );
            return Self::disabled();
        }
        if let (Some(shared), Some(key)) = (&inner.shared, &inner.key) {
            let protocol = if shared.otlp.is_some() {
                "Apitally 1.x (OTLP)"
            } else {
                "the hub"
            };
            debug!(
                "started for {} / {} as instance {} (slot file: {:?}); {protocol} reached {}",
                redact(&key.0),
                key.1,
                shared.instance.uuid,
                shared.instance.path,
                route
            );
        }
        Self { inner }
    }

    #[inline]
    fn active(&self) -> Option<&Shared> {
        self.inner
            .shared
            .as_deref()
            .filter(|s| s.enabled.load(Ordering::Relaxed))
    }

    /// Whether the client records and reports: false for an invalid configuration, after the hub
    /// answered 404 for the client id, and after shutdown.
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.active().is_some()
    }

    /// This process's instance UUID, `None` for a disabled client.
    pub fn instance_uuid(&self) -> Option<Uuid> {
        self.inner.shared.as_ref().map(|s| s.instance.uuid)
    }

    /// The app version configured, if any.
    pub fn app_version(&self) -> Option<&str> {
        self.inner.shared.as_ref()?.app_version.as_deref()
    }

    /// Replaces the startup data; it is sent again in the next cycle.
    pub fn set_startup_data(&self, startup: StartupData) {
        if let Some(shared) = self.active() {
            let body = payload::startup_body(
                &startup,
                shared.instance.uuid,
                shared.app_version.as_deref(),
            );
            *lock(&shared.startup) = Some(Bytes::from(body));
        }
    }

    /// The request logger, when request logging is on and the client enabled.
    #[inline]
    pub fn request_logger(&self) -> Option<&RequestLogger> {
        self.active()?.logger.as_deref()
    }

    /// Adds one finished request to the current window. No I/O, no waiting for a sync; it
    /// allocates only when the (consumer, method, route, status) key is new in the window.
    #[inline]
    pub fn record_request(&self, record: &RequestRecord<'_>) {
        if let Some(shared) = self.active() {
            match &shared.otlp {
                Some(otlp) => otlp.record_request(record),
                None => shared.metrics.record_request(record),
            }
        }
    }

    /// The protocol the client speaks, `None` for a disabled client.
    pub fn protocol(&self) -> Option<crate::Protocol> {
        let shared = self.inner.shared.as_ref()?;
        Some(if shared.otlp.is_some() {
            crate::Protocol::Otlp
        } else {
            crate::Protocol::Hub
        })
    }

    /// Adds a validation error seen on a request to `route`.
    pub fn record_validation_error(
        &self,
        method: &str,
        route: &str,
        consumer: Option<&Consumer>,
        error: &ValidationError,
    ) {
        if let Some(shared) = self.active() {
            match &shared.otlp {
                Some(otlp) => otlp.record_validation_error(method, route, consumer, error),
                None => shared
                    .metrics
                    .record_validation_error(method, route, consumer, error),
            }
        }
    }

    /// Adds a server error (status 500 with an error object) seen on a request to `route`.
    pub fn record_server_error(
        &self,
        method: &str,
        route: &str,
        consumer: Option<&Consumer>,
        error: &ServerError,
    ) {
        if let Some(shared) = self.active() {
            match &shared.otlp {
                Some(otlp) => otlp.record_server_error(method, route, consumer, error),
                None => shared
                    .metrics
                    .record_server_error(method, route, consumer, error),
            }
        }
    }

    fn begin_shutdown(&self, reply: Reply) -> bool {
        if let Some(key) = &self.inner.key {
            let mut clients = lock(&CLIENTS);
            clients.retain(|(k, inner)| !(k == key && Arc::ptr_eq(inner, &self.inner)));
        }
        match &self.inner.commands {
            Some(tx) => tx.send(Command::Shutdown(reply)).is_ok(),
            None => false,
        }
    }

    /// Stops the client after a final sync of everything recorded, bounded by the shutdown
    /// timeout (10 s by default): the last window, queued payloads, and every request-log file,
    /// one attempt each. What could not be delivered is named in one warning and deleted. Call
    /// it once the server has stopped:
    ///
    /// ```no_run
    /// # use apitally_core as apitally;
    /// # async fn run(client: apitally::ApitallyClient, server: actix_web::dev::Server) -> std::io::Result<()> {
    /// server.await?;
    /// client.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Works from any async runtime; later calls return at once.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.begin_shutdown(Reply::Async(tx)) {
            // The sync thread bounds the flush by the timeout and always answers (or drops
            // the sender when it ends).
            let _ = rx.await;
        }
    }

    /// Like [`shutdown`](Self::shutdown), for code outside an async runtime.
    pub fn shutdown_blocking(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        if self.begin_shutdown(Reply::Blocking(tx)) {
            let _ = rx.recv_timeout(self.inner.shutdown_timeout + Duration::from_secs(1));
        }
    }
}

/// The 1.x export thread: cycles until shutdown (or until every handle has been gone for
/// [`ORPHAN_GRACE`]), then the final drain within the shutdown budget.
async fn run_otlp(
    shared: Arc<Shared>,
    transport: AwcTransport,
    settings: ExportSettings,
    mut commands: mpsc::UnboundedReceiver<Command>,
    handle: Weak<Inner>,
    budget: Duration,
) {
    let Some(otlp) = shared.otlp.clone() else {
        return;
    };
    let reply = std::rc::Rc::new(std::cell::RefCell::new(None));
    let stop = {
        let reply = std::rc::Rc::clone(&reply);
        async move {
            let mut orphaned_since: Option<std::time::Instant> = None;
            loop {
                tokio::select! {
                    command = commands.recv() => {
                        if let Some(Command::Shutdown(r)) = command {
                            *reply.borrow_mut() = Some(r);
                        }
                        return;
                    }
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                if is_orphaned(&handle) {
                    let since = *orphaned_since.get_or_insert_with(std::time::Instant::now);
                    if since.elapsed() >= ORPHAN_GRACE && release_if_orphaned(&handle) {
                        debug!("every client handle is gone; final export");
                        return;
                    }
                } else {
                    orphaned_since = None;
                }
            }
        }
    };
    let delivered = runtime::run(
        otlp,
        shared.logger.clone(),
        transport,
        settings,
        stop,
        budget,
    )
    .await;
    if let Some(logger) = &shared.logger {
        logger.clear();
    }
    shared.enabled.store(false, Ordering::Relaxed);
    if delivered {
        debug!("final export delivered");
    }
    let reply = reply.borrow_mut().take();
    if let Some(reply) = reply {
        reply.send(delivered);
    }
}

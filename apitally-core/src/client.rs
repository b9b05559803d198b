//! For client documentation, see [`ApitallyClient`].

use std::{
    cell::RefCell,
    fmt,
    rc::Rc,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::{
    backend::{self, Backend, Started},
    config::{redact, ResolvedConfig, Target},
    diag::debug,
    request_log::RequestLogger,
    util::lock,
    ClientConfig, ConfigError, Consumer, Protocol, RequestRecord, ServerError, StartupData,
    ValidationError,
};

mod registry;

pub(crate) use self::registry::stopped;
use self::registry::CLIENTS;
#[cfg(test)]
pub(crate) use self::registry::ORPHAN_GRACE;

pub(crate) enum Command {
    Shutdown(Reply),
    /// A server error whose backtrace is symbolised here, off the request path.
    ServerError(Box<DeferredError>),
}

/// A server error of a request to `route`, recorded once its backtrace is symbolised.
pub(crate) struct DeferredError {
    method: String,
    route: String,
    consumer: Option<Consumer>,
    error: ServerError,
}

/// Server errors waiting to be symbolised at most; past it, an error is recorded at once
/// without its backtrace (a panic storm must not queue without bound).
const MAX_DEFERRED: usize = 256;

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

/// What a running client records into.
struct Active {
    /// Off after shutdown, or when the hub does not know the client id.
    enabled: Arc<AtomicBool>,
    backend: Arc<dyn Backend>,
    logger: Option<Arc<RequestLogger>>,
    app_version: Option<String>,
}

pub(crate) struct Inner {
    active: Option<Active>,
    /// Server errors sent to the background thread and not yet recorded.
    deferred: std::sync::atomic::AtomicUsize,
    commands: Option<mpsc::UnboundedSender<Command>>,
    key: Option<(String, String)>,
    shutdown_timeout: Duration,
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
/// use apitally::Consumer;
/// use apitally::adapter::{ApitallyClient, ClientConfig, RequestRecord, StartupData};
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
                crate::diag::tell(
                    log::Level::Error,
                    format_args!(
                        "apitally: {err}; Apitally is disabled and requests pass through untouched"
                    ),
                );
                Self::disabled()
            }
        }
    }

    /// Like [`new`](Self::new), but returns the configuration error instead of a disabled client.
    ///
    /// ```
    /// # use apitally_core as apitally;
    /// use apitally::ConfigError;
    /// use apitally::adapter::{ApitallyClient, ClientConfig, StartupData};
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
                active: None,
                deferred: std::sync::atomic::AtomicUsize::new(0),
                commands: None,
                key: None,
                shutdown_timeout: Duration::ZERO,
            }),
        }
    }

    fn start(resolved: ResolvedConfig, startup: StartupData, key: (String, String)) -> Self {
        let route = match &resolved.target {
            Target::Hub { hub_url } => resolved.net.proxies.describe_route(hub_url),
            Target::Otlp { endpoint, .. } => resolved.net.proxies.describe_route(endpoint),
        };
        let enabled = Arc::new(AtomicBool::new(true));
        let Started { backend, logger } = backend::start(&resolved, startup, &enabled);
        let (tx, rx) = mpsc::unbounded_channel();
        let shutdown_timeout = resolved.config.shutdown_timeout;
        let inner = Arc::new(Inner {
            deferred: std::sync::atomic::AtomicUsize::new(0),
            active: Some(Active {
                enabled: Arc::clone(&enabled),
                backend: Arc::clone(&backend),
                logger,
                app_version: resolved.config.app_version.clone(),
            }),
            commands: Some(tx),
            key: Some(key),
            shutdown_timeout,
        });
        let handle = Arc::downgrade(&inner);
        let net = resolved.net;
        let protocol = backend.protocol();
        let instance = backend.instance_uuid();
        let spawned = std::thread::Builder::new()
            .name("apitally-sync".into())
            .spawn(move || {
                let system = actix_rt::System::new();
                system.block_on(async move {
                    let reply = Rc::new(RefCell::new(None));
                    let stop = Box::pin(stopped(rx, handle, Rc::clone(&reply)));
                    let delivered = backend.deliver(net, stop, shutdown_timeout).await;
                    enabled.store(false, Ordering::Relaxed);
                    if delivered {
                        debug!("final delivery complete");
                    }
                    let reply = reply.borrow_mut().take();
                    if let Some(reply) = reply {
                        reply.send(delivered);
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
        if let Some(key) = &inner.key {
            let protocol = match protocol {
                Protocol::Otlp => "Apitally 1.x (OTLP)",
                Protocol::Hub => "the hub",
            };
            debug!(
                "started for {} / {} as instance {instance}; {protocol} reached {route}",
                redact(&key.0),
                key.1,
            );
        }
        Self { inner }
    }

    #[inline]
    fn active(&self) -> Option<&Active> {
        self.inner
            .active
            .as_ref()
            .filter(|a| a.enabled.load(Ordering::Relaxed))
    }

    /// Whether the client records and reports: false for an invalid configuration, after the hub
    /// answered 404 for the client id, and after shutdown.
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.active().is_some()
    }

    /// This process's instance UUID, `None` for a disabled client.
    pub fn instance_uuid(&self) -> Option<Uuid> {
        self.inner
            .active
            .as_ref()
            .map(|a| a.backend.instance_uuid())
    }

    /// The app version configured, if any.
    pub fn app_version(&self) -> Option<&str> {
        self.inner.active.as_ref()?.app_version.as_deref()
    }

    /// Replaces the startup data; the hub gets it again in the next cycle (Apitally 1.x sends
    /// its startup event once).
    pub fn set_startup_data(&self, startup: StartupData) {
        if let Some(active) = self.active() {
            active.backend.set_startup_data(&startup);
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
        if let Some(active) = self.active() {
            active.backend.record_request(record);
        }
    }

    /// The protocol the client speaks, `None` for a disabled client.
    pub fn protocol(&self) -> Option<Protocol> {
        Some(self.inner.active.as_ref()?.backend.protocol())
    }

    /// Adds a validation error seen on a request to `route`.
    pub fn record_validation_error(
        &self,
        method: &str,
        route: &str,
        consumer: Option<&Consumer>,
        error: &ValidationError,
    ) {
        if let Some(active) = self.active() {
            active
                .backend
                .record_validation_error(method, route, consumer, error);
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
        let Some(active) = self.active() else {
            return;
        };
        if error.is_deferred() {
            // Its backtrace is symbolised on the background thread, which then records it.
            if self.inner.deferred.fetch_add(1, Ordering::Relaxed) < MAX_DEFERRED {
                if let Some(commands) = &self.inner.commands {
                    let deferred = DeferredError {
                        method: method.to_owned(),
                        route: route.to_owned(),
                        consumer: consumer.cloned(),
                        error: error.clone(),
                    };
                    if commands
                        .send(Command::ServerError(Box::new(deferred)))
                        .is_ok()
                    {
                        return;
                    }
                }
            }
            self.inner.deferred.fetch_sub(1, Ordering::Relaxed);
            let error = error.without_backtrace();
            active
                .backend
                .record_server_error(method, route, consumer, &error);
            return;
        }
        active
            .backend
            .record_server_error(method, route, consumer, error);
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
    /// # async fn run(client: apitally::adapter::ApitallyClient, server: actix_web::dev::Server) -> std::io::Result<()> {
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

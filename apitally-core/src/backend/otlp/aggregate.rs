//! For what the 1.x request path records and each export cycle collects, see [`Otlp`].

use std::{
    collections::HashMap,
    hash::{Hash, Hasher},
    sync::{Arc, Mutex},
};

use super::{
    events::{
        self, ConsumerUpdate, ErrorCount, ServerErrorGroup, StartupInfo, ValidationErrorGroup,
    },
    metrics::{ProcessMonitor, RequestMetrics, RequestSample},
    model::LogRecordData,
    now_unix_nanos,
    sink::OtlpSink,
    spool::{Queue, Spool},
};
use crate::{
    diag::debug,
    request_log::RequestLogger,
    util::{lock, truncate_chars},
    Consumer, RequestRecord, ServerError, ValidationError,
};

/// Distinct error groups kept per interval (§4.5, §4.6).
pub(crate) const MAX_ERROR_GROUPS: usize = 100;
/// Consumers whose last update is remembered (§4.4).
pub(crate) const MAX_CONSUMER_HASHES: usize = 10_000;

type ValidationKey = (String, String, String, String, String, String);
/// (method, route, type, message, traceback fingerprint).
type ServerKey = (String, String, String, String, u64);

#[derive(Default)]
struct ErrorGroups {
    validation: HashMap<ValidationKey, HashMap<Option<String>, u64>>,
    server: HashMap<ServerKey, (String, HashMap<Option<String>, u64>)>,
    dropped: u64,
}

#[derive(Default)]
struct Consumers {
    /// The hash of the last update sent per identifier.
    sent: HashMap<Box<str>, u64>,
    pending: Vec<Consumer>,
}

/// The 1.x state the request path records into and each export cycle collects.
pub(crate) struct Otlp {
    pub(crate) metrics: RequestMetrics,
    errors: Mutex<ErrorGroups>,
    consumers: Mutex<Consumers>,
    pub(crate) sink: Arc<OtlpSink>,
    startup: Mutex<Option<LogRecordData>>,
    monitor: Mutex<ProcessMonitor>,
}

impl std::fmt::Debug for Otlp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Otlp").finish_non_exhaustive()
    }
}

impl Otlp {
    pub(crate) fn new(sink: Arc<OtlpSink>, startup: LogRecordData) -> Self {
        Self {
            metrics: RequestMetrics::new(now_unix_nanos()),
            errors: Mutex::default(),
            consumers: Mutex::default(),
            sink,
            startup: Mutex::new(Some(startup)),
            monitor: Mutex::new(ProcessMonitor::new()),
        }
    }

    /// One finished request: its histograms, and a consumer update when its name or group
    /// changed.
    #[inline]
    pub(crate) fn record_request(&self, record: &RequestRecord<'_>) {
        self.metrics.record(&RequestSample {
            method: record.method,
            route: record.route,
            status: record.status,
            https: record.https,
            consumer: record.consumer.map(Consumer::get_identifier),
            duration: record.duration.unwrap_or(record.response_time),
            request_size: record.request_size,
            response_size: record.response_size,
        });
        if let Some(consumer) = record.consumer {
            if consumer.has_details() {
                self.observe_consumer(consumer);
            }
        }
    }

    fn observe_consumer(&self, consumer: &Consumer) {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (
            consumer.get_name(),
            consumer.get_group(),
            consumer.get_attributes(),
        )
            .hash(&mut hasher);
        let hash = hasher.finish();
        let mut consumers = lock(&self.consumers);
        if consumers.sent.get(consumer.get_identifier()) == Some(&hash) {
            return;
        }
        if consumers.sent.len() >= MAX_CONSUMER_HASHES {
            // Forgotten: an update may be sent again, which the server takes as it is.
            consumers.sent.clear();
        }
        consumers
            .sent
            .insert(consumer.get_identifier().into(), hash);
        if consumers.pending.len() < MAX_CONSUMER_HASHES {
            consumers.pending.push(consumer.clone());
        }
    }

    pub(crate) fn record_validation_error(
        &self,
        method: &str,
        route: &str,
        consumer: Option<&Consumer>,
        error: &ValidationError,
    ) {
        // `loc` is `[source, field...]`; an unknown first segment belongs to the field.
        let source = error
            .loc
            .first()
            .map_or("", |first| events::validation_source(first));
        let field = if source.is_empty() {
            error.loc.join(".")
        } else {
            error.loc[1..].join(".")
        };
        let key = (
            method.to_owned(),
            route.to_owned(),
            source.to_owned(),
            truncate_chars(&field, events::MAX_VALIDATION_FIELD_CHARS).to_owned(),
            truncate_chars(&error.msg, events::MAX_VALIDATION_MESSAGE_CHARS).to_owned(),
            truncate_chars(&error.error_type, events::MAX_VALIDATION_TYPE_CHARS).to_owned(),
        );
        let consumer = consumer.map(|c| c.get_identifier().to_owned());
        let mut errors = lock(&self.errors);
        let full = errors.validation.len() >= MAX_ERROR_GROUPS;
        match errors.validation.get_mut(&key) {
            Some(counts) => *counts.entry(consumer).or_default() += 1,
            None if full => errors.dropped += 1,
            None => {
                errors
                    .validation
                    .insert(key, HashMap::from([(consumer, 1)]));
            }
        }
    }

    pub(crate) fn record_server_error(
        &self,
        method: &str,
        route: &str,
        consumer: Option<&Consumer>,
        error: &ServerError,
    ) {
        let stacktrace = truncate_chars(error.traceback(), events::MAX_STACKTRACE_CHARS);
        let key = (
            method.to_owned(),
            route.to_owned(),
            truncate_chars(&error.error_type, events::MAX_EXCEPTION_TYPE_CHARS).to_owned(),
            truncate_chars(&error.msg, events::MAX_EXCEPTION_MESSAGE_CHARS + 100).to_owned(),
            crate::backend::hub::window::traceback_fingerprint(stacktrace),
        );
        let consumer = consumer.map(|c| c.get_identifier().to_owned());
        let mut errors = lock(&self.errors);
        let full = errors.server.len() >= MAX_ERROR_GROUPS;
        match errors.server.get_mut(&key) {
            Some((_, counts)) => *counts.entry(consumer).or_default() += 1,
            None if full => errors.dropped += 1,
            None => {
                errors
                    .server
                    .insert(key, (stacktrace.to_owned(), HashMap::from([(consumer, 1)])));
            }
        }
    }

    /// One cycle's collection, in the order of §1.7: the logged requests (spans, then their
    /// log records, written by the logger), the error events, the consumer updates and the
    /// startup event, then the metrics.
    pub(crate) fn collect(&self, logger: Option<&RequestLogger>, spool: &Spool) {
        if let Some(logger) = logger {
            logger.flush();
            // As the hub's sync loop reports them, once per cycle.
            let left_out = logger.take_left_out();
            debug!(
                "request logs since the last export: {} sampled out, {} excluded, {} log \
                 record(s) dropped by mask_log_record",
                left_out.sampled_out, left_out.excluded, left_out.log_records_dropped
            );
            let dropped = logger.take_dropped();
            if dropped > 0 {
                log::warn!(
                    target: "apitally",
                    "apitally: request logs lost since the last export: {dropped} request(s) not \
                     logged because the request log buffer was full"
                );
            }
        }
        let now = now_unix_nanos();
        let mut records = Vec::new();
        if let Some(startup) = lock(&self.startup).take() {
            records.push(startup);
        }
        let errors = std::mem::take(&mut *lock(&self.errors));
        if errors.dropped > 0 {
            log::warn!(
                target: "apitally",
                "apitally: {} error(s) of new kinds were not reported this interval (at most {MAX_ERROR_GROUPS} of each kind)",
                errors.dropped
            );
        }
        let counts_of = |counts: HashMap<Option<String>, u64>| -> Vec<ErrorCount> {
            let mut counts: Vec<ErrorCount> = counts.into_iter().collect();
            counts.sort();
            counts
        };
        let mut validation: Vec<_> = errors.validation.into_iter().collect();
        validation.sort_by(|a, b| a.0.cmp(&b.0));
        for ((method, path, source, field, message, error_type), counts) in validation {
            let counts = counts_of(counts);
            records.extend(events::validation_error_event(
                now,
                &ValidationErrorGroup {
                    method: &method,
                    path: &path,
                    source: &source,
                    field: &field,
                    message: &message,
                    error_type: &error_type,
                    counts: &counts,
                },
            ));
        }
        let mut server: Vec<_> = errors.server.into_iter().collect();
        server.sort_by(|a, b| a.0.cmp(&b.0));
        for ((method, path, error_type, message, _), (stacktrace, counts)) in server {
            let counts = counts_of(counts);
            records.extend(events::server_error_event(
                now,
                &ServerErrorGroup {
                    method: &method,
                    path: &path,
                    error_type: &error_type,
                    message: &message,
                    stacktrace: &stacktrace,
                    counts: &counts,
                },
            ));
        }
        let pending = std::mem::take(&mut lock(&self.consumers).pending);
        for consumer in &pending {
            records.extend(events::consumer_update_event(
                now,
                &ConsumerUpdate {
                    identifier: consumer.get_identifier(),
                    name: consumer.get_name(),
                    group: consumer.get_group(),
                    attributes: consumer.get_attributes(),
                },
            ));
        }
        for (bytes, events) in self.sink.encoder.encode_logs(&records) {
            spool.append(Queue::Events, &bytes, events);
        }
        let window = self.metrics.drain(now_unix_nanos());
        if window.dropped > 0 {
            crate::diag::debug!(
                "{} request(s) of new (method, route, status, consumer) combinations were not \
                 counted this interval (at most 50,000)",
                window.dropped
            );
        }
        let gauges = lock(&self.monitor).sample();
        self.sink
            .encoder
            .encode_metrics(&gauges, &window, |bytes, requests| {
                spool.append(Queue::Metrics, bytes, requests);
            });
    }
}

/// The startup event of a client starting with `startup` and request logging `logging`:
/// `versions` without `apitally` (the resource says it), with `rust` and the app's version;
/// `config` the request-logging options and the app's (sampling).
pub(crate) fn startup_record_of(
    startup: &crate::StartupData,
    logging: Option<&crate::RequestLoggingConfig>,
    app_version: Option<&str>,
) -> LogRecordData {
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
    if let Some(app) = app_version {
        versions.push(("app".into(), app.to_owned()));
    }
    let mut config = logging
        .map(crate::RequestLoggingConfig::startup_config)
        .unwrap_or_default();
    config.extend(startup.config.iter().cloned());
    startup_record(
        &startup.framework_name(),
        &versions,
        &config,
        &startup.paths,
        startup.openapi.as_deref(),
    )
}

/// The startup event's inputs, owned (built once when the client starts).
pub(crate) fn startup_record(
    framework: &str,
    versions: &[(String, String)],
    config: &[(String, serde_json::Value)],
    paths: &[crate::PathItem],
    openapi: Option<&str>,
) -> LogRecordData {
    events::startup_event(
        now_unix_nanos(),
        &StartupInfo {
            framework,
            versions,
            config,
            paths,
            openapi,
        },
    )
}

//! The 1.x client at run time: what the request path records ([`Otlp`]), how a logged request
//! becomes a SERVER span with its child spans and log records ([`OtlpSink`]), and the export
//! thread's loop ([`run`]).

use std::{
    collections::HashMap,
    hash::{Hash, Hasher},
    sync::{Arc, Mutex},
    time::Duration,
};

use super::{
    encode::Encoder,
    events::{
        self, ConsumerUpdate, ErrorCount, ServerErrorGroup, StartupInfo, ValidationErrorGroup,
    },
    export::{ExportSettings, ExportWorker},
    metrics::{ProcessMonitor, RequestMetrics, RequestSample},
    model::LogRecordData,
    now_unix_nanos,
    spool::{Queue, Spool},
};
use crate::{
    diag::debug,
    request_log::{RequestLogItem, RequestLogger},
    util::lock,
    util::truncate_chars,
    Consumer, RequestRecord, ServerError, ValidationError,
};

/// Distinct error groups kept per interval (§4.5, §4.6).
pub(crate) const MAX_ERROR_GROUPS: usize = 100;
/// Consumers whose last update is remembered (§4.4).
pub(crate) const MAX_CONSUMER_HASHES: usize = 10_000;

/// The scope of the SERVER spans: this SDK's HTTP instrumentation (§3.2).
pub(crate) const SERVER_SPAN_SCOPE: &str = "apitally-actix";

type ValidationKey = (String, String, String, String, String, String);
type ServerKey = (String, String, String, String, String);

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
    pending: Vec<(String, Option<String>, Option<String>)>,
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

/// Where logged requests go in 1.x: encoded as spans and log records into the spool.
#[derive(Debug)]
pub(crate) struct OtlpSink {
    pub(crate) spool: Arc<Spool>,
    pub(crate) encoder: Encoder,
    /// The resource, encoded once.
    resource: Vec<u8>,
    /// The buffers messages are written into, reused (only the logger's writer uses them).
    scratch: Mutex<(Vec<u8>, Vec<u8>)>,
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
            if consumer.get_name().is_some() || consumer.get_group().is_some() {
                self.observe_consumer(consumer);
            }
        }
    }

    fn observe_consumer(&self, consumer: &Consumer) {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (consumer.get_name(), consumer.get_group()).hash(&mut hasher);
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
            consumers.pending.push((
                consumer.get_identifier().to_owned(),
                consumer.get_name().map(str::to_owned),
                consumer.get_group().map(str::to_owned),
            ));
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
        let stacktrace = truncate_chars(&error.traceback, events::MAX_STACKTRACE_CHARS);
        let key = (
            method.to_owned(),
            route.to_owned(),
            truncate_chars(&error.error_type, events::MAX_EXCEPTION_TYPE_CHARS).to_owned(),
            truncate_chars(&error.msg, events::MAX_EXCEPTION_MESSAGE_CHARS + 100).to_owned(),
            crate::backend::hub::window::strip_addresses(stacktrace),
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
        for (identifier, name, group) in &pending {
            records.extend(events::consumer_update_event(
                now,
                &ConsumerUpdate {
                    identifier,
                    name: name.as_deref(),
                    group: group.as_deref(),
                    attributes: &[],
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

impl OtlpSink {
    pub(crate) fn new(spool: Arc<Spool>, encoder: Encoder) -> Self {
        let resource = encoder.resource_bytes();
        Self {
            spool,
            encoder,
            resource,
            scratch: Mutex::default(),
        }
    }

    /// Items per message: a logged request holds at most two 50,000-byte bodies, headers and
    /// 1,000 spans and records, so that a message stays well under the spool's 4,000,000-byte
    /// file cap.
    const ITEMS_PER_MESSAGE: usize = 16;
}

impl crate::backend::LogSink for OtlpSink {
    /// Encodes logged requests (already masked and kept) and appends them to the spool.
    fn write(&self, items: &[&RequestLogItem]) -> u64 {
        let mut scratch = lock(&self.scratch);
        let (traces, logs) = &mut *scratch;
        let mut written = 0;
        for chunk in items.chunks(Self::ITEMS_PER_MESSAGE) {
            traces.clear();
            logs.clear();
            super::wire::write_requests(&self.resource, chunk, traces, logs);
            if !traces.is_empty() {
                // Those without a trace id (only tests build such items) make no span.
                let requests = chunk.iter().filter(|i| i.trace_context.is_some()).count() as u64;
                self.spool.append(Queue::Traces, traces, requests);
                written += requests;
            }
            if !logs.is_empty() {
                let records: usize = chunk
                    .iter()
                    .filter(|i| i.trace_context.is_some())
                    .map(|i| i.logs.len())
                    .sum();
                self.spool.append(Queue::Logs, logs, records as u64);
            }
        }
        // A burst's larger buffers are not kept.
        traces.shrink_to(1 << 20);
        logs.shrink_to(1 << 20);
        written
    }

    fn lost(&self) -> u64 {
        self.spool.lost_items(Queue::Traces)
    }

    fn masked(&self) -> &'static str {
        super::wire::REDACTED
    }
}

/// The same export through the span values and prost messages of [`super::encode`]: the
/// reference [`super::wire`]'s output is tested against.
#[cfg(test)]
pub(crate) mod reference {
    use std::time::Duration;

    use super::super::{
        events,
        model::{
            AttrValue, Attribute, LogRecordData, Parent, Scope, SpanData, SpanEvent, SpanKind,
            SpanStatus,
        },
    };
    use super::SERVER_SPAN_SCOPE;
    use crate::{
        request_log::{CapturedLog, CapturedSpan, RequestLogItem},
        util::truncate_chars,
    };

    const REDACTED: &str = "[REDACTED]";

    /// A masked value of the shared masker in 1.x's words: `******` (in JSON: `"******"`;
    /// percent-encoded in a query) becomes `[REDACTED]`.
    fn redacted(text: &str) -> String {
        text.replace("\"******\"", "\"[REDACTED]\"")
            .replace("%2A%2A%2A%2A%2A%2A", REDACTED)
    }

    /// A logged body as a 1.x attribute value: the markers in 1.x's words, text as a string,
    /// other bytes as bytes.
    fn body_value(body: &[u8]) -> AttrValue {
        if body == crate::request_log::BODY_TOO_LARGE {
            return AttrValue::String("[BODY_TOO_LARGE]".into());
        }
        if body == crate::request_log::BODY_MASKED {
            return AttrValue::String(REDACTED.into());
        }
        match std::str::from_utf8(body) {
            Ok(text) => AttrValue::String(redacted(text)),
            Err(_) => AttrValue::Bytes(body.to_vec()),
        }
    }

    fn header_attributes(prefix: &'static str, headers: &crate::Headers, out: &mut Vec<Attribute>) {
        let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
        for (name, value) in headers.iter() {
            let name = name.to_ascii_lowercase();
            let value = if value == crate::request_log::mask::MASKED {
                REDACTED.to_owned()
            } else {
                redacted(value)
            };
            match grouped.iter_mut().find(|(n, _)| *n == name) {
                Some((_, values)) => values.push(value),
                None => grouped.push((name, vec![value])),
            }
        }
        for (name, values) in grouped {
            out.push(Attribute::new(
                format!("{prefix}{name}"),
                AttrValue::strings(values),
            ));
        }
    }

    fn seconds_to_nanos(seconds: f64) -> u64 {
        (seconds * 1e9).max(0.0) as u64
    }

    fn span_kind(kind: &str) -> SpanKind {
        match kind {
            "SERVER" => SpanKind::Server,
            "CLIENT" => SpanKind::Client,
            "PRODUCER" => SpanKind::Producer,
            "CONSUMER" => SpanKind::Consumer,
            _ => SpanKind::Internal,
        }
    }

    fn json_attribute(key: &str, value: &serde_json::Value) -> Attribute {
        let value = match value {
            serde_json::Value::String(s) => AttrValue::String(s.clone()),
            serde_json::Value::Bool(b) => AttrValue::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => AttrValue::Int(i),
                None => AttrValue::Double(n.as_f64().unwrap_or_default()),
            },
            serde_json::Value::Null => AttrValue::None,
            other => AttrValue::String(other.to_string()),
        };
        Attribute::new(key.to_owned(), value)
    }

    fn hex_u64(hex: &str) -> Option<u64> {
        u64::from_str_radix(hex, 16).ok()
    }

    /// `(severity number, text)` of a `tracing` level (OpenTelemetry's mapping).
    fn severity(level: &str) -> (i32, &'static str) {
        match level {
            "TRACE" => (1, "TRACE"),
            "DEBUG" => (5, "DEBUG"),
            "INFO" => (9, "INFO"),
            "WARN" => (13, "WARN"),
            "ERROR" => (17, "ERROR"),
            _ => (9, "INFO"),
        }
    }

    /// The SERVER span of a logged request (§3.2-§3.7), its child spans (§3.8) and its log records
    /// (§4.3).
    pub(crate) fn telemetry(
        item: &RequestLogItem,
        spans: &mut Vec<SpanData>,
        logs: &mut Vec<LogRecordData>,
    ) {
        let Some(ids) = item.trace_context else {
            return;
        };
        let trace_id = ids.trace_id.to_be_bytes();
        let span_id = ids.span_id.to_be_bytes();
        let request = &item.request;
        let response = &item.response;
        let start = seconds_to_nanos(request.timestamp);
        let duration = item
            .duration
            .unwrap_or_else(|| Duration::from_secs_f64(response.response_time.max(0.0)));
        let end = start + u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        // `scheme://host/path?query`
        let (scheme, rest) = request
            .url
            .split_once("://")
            .unwrap_or(("http", &request.url));
        let (host, target) = rest
            .find('/')
            .map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
        let (path, query) = target
            .split_once('?')
            .map_or((target, None), |(p, q)| (p, Some(q)));
        let mut attributes = vec![
            Attribute::new("http.request.method", request.method.as_str()),
            Attribute::new("url.scheme", scheme),
            Attribute::new("url.path", path),
        ];
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            attributes.push(Attribute::new("url.query", redacted(query)));
        }
        let (address, port) = match host
            .rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        {
            Some((address, port)) if !address.ends_with(']') || host.starts_with('[') => {
                (address, port.parse::<i64>().ok())
            }
            _ => (host, None),
        };
        if !address.is_empty() {
            attributes.push(Attribute::new("server.address", address));
        }
        if let Some(port) = port {
            attributes.push(Attribute::new("server.port", port));
        }
        if let Some(ua) = &item.user_agent {
            attributes.push(Attribute::new("user_agent.original", ua.as_str()));
        }
        if let Some(client) = &item.client_address {
            attributes.push(Attribute::new("client.address", client.to_string()));
        }
        attributes.push(Attribute::new(
            "http.response.status_code",
            i64::from(response.status_code),
        ));
        if let Some(route) = &request.path {
            attributes.push(Attribute::new("http.route", route.as_str()));
        }
        if let Some(size) = request.size {
            attributes.push(Attribute::new("http.request.body.size", size as i64));
        }
        if let Some(size) = response.size {
            attributes.push(Attribute::new("http.response.body.size", size as i64));
        }
        if let Some(consumer) = &request.consumer {
            attributes.push(Attribute::new(
                "apitally.consumer.identifier",
                truncate_chars(consumer, events::MAX_CONSUMER_IDENTIFIER_CHARS),
            ));
        }
        header_attributes("http.request.header.", &request.headers, &mut attributes);
        header_attributes("http.response.header.", &response.headers, &mut attributes);
        if let Some(body) = request.body.as_deref().filter(|b| !b.is_empty()) {
            attributes.push(Attribute::new("apitally.request.body", body_value(body)));
        }
        if let Some(body) = response.body.as_deref().filter(|b| !b.is_empty()) {
            attributes.push(Attribute::new("apitally.response.body", body_value(body)));
        }
        let mut events = Vec::new();
        if let Some(exception) = &item.exception {
            events.push(SpanEvent {
                name: "exception".into(),
                time_unix_nano: end,
                attributes: vec![
                    Attribute::new(
                        "exception.type",
                        truncate_chars(&exception.error_type, events::MAX_EXCEPTION_TYPE_CHARS),
                    ),
                    Attribute::new(
                        "exception.message",
                        truncate_chars(&exception.message, events::MAX_EXCEPTION_MESSAGE_CHARS),
                    ),
                    Attribute::new(
                        "exception.stacktrace",
                        truncate_chars(&exception.traceback, events::MAX_STACKTRACE_CHARS),
                    ),
                ],
            });
        }
        let name = match &request.path {
            Some(route) => format!("{} {route}", request.method),
            None => request.method.clone(),
        };
        let scope = Scope::new(SERVER_SPAN_SCOPE, env!("CARGO_PKG_VERSION"));
        // Child spans first, then the SERVER span (§3.1).
        for child in item.spans.iter().filter(|s| s.parent_span_id.is_some()) {
            if let Some(span) = child_span(child, trace_id) {
                spans.push(span);
            }
        }
        spans.push(SpanData {
            scope,
            trace_id,
            span_id,
            parent: ids.parent_span_id.map(|p| Parent {
                span_id: p.to_be_bytes(),
                remote: true,
            }),
            trace_state: String::new(),
            name,
            kind: SpanKind::Server,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            status: if response.status_code >= 500 {
                SpanStatus::Error {
                    message: String::new(),
                }
            } else {
                SpanStatus::Unset
            },
            attributes,
            events,
            dropped_attributes_count: 0,
            dropped_events_count: 0,
        });
        for log in &item.logs {
            logs.push(log_record(log, trace_id, span_id, ids.span_id));
        }
    }

    fn child_span(span: &CapturedSpan, trace_id: [u8; 16]) -> Option<SpanData> {
        let span_id = hex_u64(&span.span_id)?.to_be_bytes();
        let parent = span.parent_span_id.as_deref().and_then(hex_u64)?;
        Some(SpanData {
            scope: Scope::new("apitally", ""),
            trace_id,
            span_id,
            parent: Some(Parent {
                span_id: parent.to_be_bytes(),
                remote: false,
            }),
            trace_state: String::new(),
            name: span.name.clone(),
            kind: span_kind(&span.kind),
            start_time_unix_nano: span.start_time,
            end_time_unix_nano: span.end_time.max(span.start_time),
            status: if span.status.as_deref() == Some("ERROR") {
                SpanStatus::Error {
                    message: String::new(),
                }
            } else {
                SpanStatus::Unset
            },
            attributes: span
                .attributes
                .iter()
                .map(|(k, v)| json_attribute(k, v))
                .collect(),
            events: Vec::new(),
            dropped_attributes_count: 0,
            dropped_events_count: 0,
        })
    }

    fn log_record(
        log: &CapturedLog,
        trace_id: [u8; 16],
        span_id: [u8; 8],
        server_span_id: u64,
    ) -> LogRecordData {
        let (number, text) = severity(&log.level);
        let time = seconds_to_nanos(log.timestamp);
        let mut attributes = vec![Attribute::new(
            "apitally.request.server_span_id",
            format!("{server_span_id:016x}"),
        )];
        if let Some(file) = &log.file {
            attributes.push(Attribute::new("code.file.path", file.as_str()));
        }
        if let Some(line) = log.line {
            attributes.push(Attribute::new("code.line.number", i64::from(line)));
        }
        LogRecordData {
            scope: Scope::new(log.logger.clone(), ""),
            time_unix_nano: time,
            observed_time_unix_nano: time,
            severity_number: number,
            severity_text: text.into(),
            body: Some(AttrValue::String(log.message.clone())),
            trace_id: Some(trace_id),
            span_id: Some(span_id),
            flags: 1,
            event_name: None,
            attributes,
        }
    }
}

/// The export thread: cycles until `stop` resolves, then the final drain within `budget`.
/// Returns whether everything was delivered.
pub(crate) async fn run(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn item() -> RequestLogItem {
        use crate::request_log::{CapturedLog, CapturedSpan, LoggedException, TraceIds};
        let mut item = RequestLogItem::default();
        item.request.timestamp = 1_795_735_787.437;
        item.request.method = "POST".into();
        item.request.path = Some("/items/{id}".into());
        item.request.url =
            "https://api.example.com:8443/items/42?debug=1&token=%2A%2A%2A%2A%2A%2A".into();
        item.request
            .headers
            .push("authorization", crate::request_log::mask::MASKED);
        item.request.headers.push("accept", "a");
        item.request.headers.push("accept", "b");
        item.request.size = Some(38);
        item.request.consumer = Some("customer-42".into());
        item.request.body = Some(br#"{"name":"Widget","password":"******"}"#.to_vec());
        item.response.status_code = 500;
        item.response.response_time = 0.0001;
        item.response
            .headers
            .push("content-type", "application/json");
        item.response.size = Some(25);
        item.response.body = Some(crate::request_log::BODY_TOO_LARGE.to_vec());
        item.exception = Some(LoggedException {
            error_type: "panic".into(),
            message: "boom".into(),
            traceback: "at main".into(),
        });
        item.user_agent = Some("curl/8".into());
        item.client_address = Some([203, 0, 113, 7].into());
        item.duration = Some(Duration::from_micros(181));
        item.trace_context = Some(TraceIds {
            trace_id: 0x416d693cbf2034ae0ad164fcd62b0daf,
            span_id: 0xa4410c4f4c897189,
            parent_span_id: Some(7),
        });
        let mut attributes = serde_json::Map::new();
        attributes.insert("db.system".into(), "postgresql".into());
        attributes.insert("rows".into(), 3.into());
        attributes.insert("ok".into(), true.into());
        item.spans = vec![
            CapturedSpan {
                span_id: "a4410c4f4c897189".into(),
                parent_span_id: None,
                name: "POST /items/{id}".into(),
                kind: "INTERNAL".into(),
                ..CapturedSpan::default()
            },
            CapturedSpan {
                span_id: "00000000000000aa".into(),
                parent_span_id: Some("a4410c4f4c897189".into()),
                name: "db.query".into(),
                kind: "CLIENT".into(),
                start_time: 10,
                end_time: 20,
                status: Some("ERROR".into()),
                attributes,
            },
        ];
        item.logs = vec![
            CapturedLog {
                timestamp: 1_795_735_787.5,
                logger: "app::handlers".into(),
                level: "WARN".into(),
                message: "slow".into(),
                fields: Vec::new(),
                file: Some("src/handlers.rs".into()),
                line: Some(42),
            },
            CapturedLog {
                timestamp: 1_795_735_787.6,
                logger: "sqlx".into(),
                level: "INFO".into(),
                message: "query".into(),
                fields: Vec::new(),
                file: None,
                line: None,
            },
        ];
        item
    }

    /// The bytes `wire` writes decode to the messages the prost path makes of the same
    /// request: every span, attribute, event and record.
    #[test]
    fn wire_output_is_what_the_reference_encoder_makes() {
        use opentelemetry_proto::tonic::collector::{
            logs::v1::ExportLogsServiceRequest, trace::v1::ExportTraceServiceRequest,
        };
        use prost::Message;
        let encoder = Encoder::new(&super::super::resource::resource_attributes_with(
            "prod",
            |_| None,
            "3ed003cf-f737-4a86-bd1d-5135b414263d",
        ));
        let item = item();
        let mut plain = item.clone();
        plain.request.url = "http://h/".into();
        plain.request.path = None;
        plain.trace_context = Some(crate::request_log::TraceIds {
            trace_id: 1,
            span_id: 2,
            parent_span_id: None,
        });
        plain.spans.clear();
        plain.logs.clear();
        plain.exception = None;
        let items = [&item, &plain];
        let (mut traces, mut logs) = (Vec::new(), Vec::new());
        super::super::wire::write_requests(
            &encoder.resource_bytes(),
            &items,
            &mut traces,
            &mut logs,
        );
        let (mut spans, mut records) = (Vec::new(), Vec::new());
        for item in items {
            reference::telemetry(item, &mut spans, &mut records);
        }
        let flatten = |request: ExportTraceServiceRequest| {
            let mut out = Vec::new();
            for rs in request.resource_spans {
                for ss in rs.scope_spans {
                    for span in ss.spans {
                        out.push((rs.resource.clone(), ss.scope.clone(), span));
                    }
                }
            }
            out.sort_by(|a, b| a.2.span_id.cmp(&b.2.span_id));
            out
        };
        let wire = flatten(ExportTraceServiceRequest::decode(&traces[..]).unwrap());
        let reference = flatten(encoder.trace_request(&spans));
        assert_eq!(wire.len(), 3);
        assert_eq!(wire, reference);
        let wire = ExportLogsServiceRequest::decode(&logs[..]).unwrap();
        let reference = encoder.logs_request(&records);
        assert_eq!(wire, reference);
    }

    #[test]
    fn masked_values_read_as_redacted() {
        use super::super::wire::redacted;
        assert_eq!(
            redacted(r#"{"password":"******","x":"y"}"#),
            r#"{"password":"[REDACTED]","x":"y"}"#
        );
        assert_eq!(
            redacted("token=%2A%2A%2A%2A%2A%2A&page=2"),
            "token=[REDACTED]&page=2"
        );
        assert!(matches!(
            redacted("plain"),
            std::borrow::Cow::Borrowed("plain")
        ));
    }
}

//! For the tracing layer, see [`tracing_layer`].

use std::{
    cell::RefCell,
    sync::{Arc, Mutex, MutexGuard},
    time::{SystemTime, UNIX_EPOCH},
};

use crate::{
    request_log::{truncate_log_message, CapturedSpan, MAX_CAPTURED_PER_REQUEST},
    CapturedLog,
};
use serde_json::{Map, Value};
use tracing::{
    span::{Attributes, Id, Record},
    Event, Subscriber,
};
use tracing_log::NormalizeEvent;

use self::fields::Fields;

mod fields;
use tracing_subscriber::{filter::LevelFilter, layer::Context, registry::LookupSpan, Layer};

/// Name of the root span the middleware opens for each logged request.
pub(crate) const ROOT_SPAN: &str = "apitally.request";

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// `bits` as `digits` lowercase hex digits (no formatting machinery: ids are made per span).
fn hex(bits: u128, digits: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = digits.min(32);
    let mut out = String::with_capacity(digits);
    for i in (0..digits).rev() {
        out.push(char::from(HEX[((bits >> (i * 4)) & 0xf) as usize]));
    }
    out
}

fn hex_id(bits: u64) -> String {
    hex(u128::from(bits), 16)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What one request collects: its log records and finished spans, bounded.
struct RequestCapture {
    capture_logs: bool,
    capture_traces: bool,
    /// The trace id (hex when the line is built: most requests never need it as text).
    trace_id: Mutex<u128>,
    root_id: u64,
    root_name: Mutex<String>,
    logs: Mutex<Vec<CapturedLog>>,
    spans: Mutex<Vec<CapturedSpan>>,
}

/// Whether an [`TracingLayer`] was ever added to a subscriber: without one, nothing would be
/// collected, and a request does not even open its root span.
static LAYER_ADDED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

thread_local! {
    /// Hands the capture to the layer while the root span is being created on this thread.
    static PENDING: RefCell<Option<Arc<RequestCapture>>> = const { RefCell::new(None) };
}

/// The root span of one request and what the layer collects under it.
pub(crate) struct RequestTrace {
    span: tracing::Span,
    capture: Arc<RequestCapture>,
}

impl RequestTrace {
    /// Opens the root span; `None` when no [`tracing_layer`] is installed (nothing would be
    /// collected).
    /// `trace_id` is the request's (sampling decided on it): the incoming `traceparent`'s, or a
    /// random one.
    pub(crate) fn start(
        capture_logs: bool,
        capture_traces: bool,
        trace_id: u128,
        span_id: u64,
    ) -> Option<Self> {
        if !LAYER_ADDED.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        let capture = Arc::new(RequestCapture {
            capture_logs,
            capture_traces,
            trace_id: Mutex::new(trace_id),
            root_id: span_id,
            root_name: Mutex::new(String::new()),
            logs: Mutex::new(Vec::new()),
            spans: Mutex::new(Vec::new()),
        });
        PENDING.with(|p| *p.borrow_mut() = Some(Arc::clone(&capture)));
        let span = tracing::info_span!(target: "apitally", "apitally.request");
        // The layer takes the capture in `on_new_span`; if it is still here, no layer ran.
        if PENDING.with(|p| p.borrow_mut().take()).is_some() {
            return None;
        }
        #[cfg(feature = "opentelemetry")]
        if let Some(trace_id) = otel_trace_id(&span) {
            *lock(&capture.trace_id) = trace_id;
        }
        Some(Self { span, capture })
    }

    /// The root span, entered while the request's handler runs.
    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Closes the root span (named `METHOD /route`) and returns what was collected: log
    /// records, spans and the trace id.
    pub(crate) fn finish(
        self,
        root_name: String,
    ) -> (Vec<CapturedLog>, Vec<CapturedSpan>, Option<String>) {
        *lock(&self.capture.root_name) = root_name;
        // The root closes when its last handle goes (children still open keep it open; their
        // spans are then not part of this line).
        drop(self.span);
        let logs = std::mem::take(&mut *lock(&self.capture.logs));
        let spans = std::mem::take(&mut *lock(&self.capture.spans));
        let trace_id = self
            .capture
            .capture_traces
            .then(|| hex(*lock(&self.capture.trace_id), 32));
        (logs, spans, trace_id)
    }
}

/// The OpenTelemetry trace id of the root span, when the app's subscriber has a
/// `tracing-opentelemetry` layer: the id its OTel pipeline exports this request's spans under.
#[cfg(feature = "opentelemetry")]
fn otel_trace_id(span: &tracing::Span) -> Option<u128> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| u128::from_be_bytes(span_context.trace_id().to_bytes()))
}

/// Per-span state kept in the registry's extensions for spans inside a request.
struct SpanState {
    capture: Arc<RequestCapture>,
    span_id: String,
    parent_id: Option<String>,
    name: &'static str,
    start_ns: u64,
    attributes: Map<String, Value>,
    kind: Option<String>,
    status: Option<String>,
    is_root: bool,
}

/// The [`tracing_subscriber`] layer that attaches application logs and spans to request logs;
/// see [`tracing_layer`].
#[derive(Debug, Clone, Copy)]
pub struct TracingLayer {
    max_level: LevelFilter,
}

impl Default for TracingLayer {
    fn default() -> Self {
        Self {
            max_level: LevelFilter::INFO,
        }
    }
}

impl TracingLayer {
    /// Sets the most verbose level of the log records captured. Defaults to `INFO`, whatever
    /// the app's console shows: `DEBUG` and `TRACE` events (of actix and other dependencies
    /// among them) stay out of request logs unless this is lowered. Spans are captured at
    /// every level.
    ///
    /// ```
    /// # use apitally_core as apitally;
    /// use tracing_subscriber::{filter::LevelFilter, prelude::*};
    ///
    /// let layer = apitally::tracing_layer().max_level(LevelFilter::DEBUG);
    /// # let _ = tracing_subscriber::registry().with(layer);
    /// ```
    #[must_use]
    pub fn max_level(mut self, level: LevelFilter) -> Self {
        self.max_level = level;
        self
    }
}

/// A `tracing_subscriber` layer that collects, for each logged request, the `tracing` events
/// (and `log` records bridged with `tracing_log::LogTracer`) and the spans emitted while it is
/// handled, when request logging has `capture_logs` / `capture_traces` on. Add it next to your
/// own layers; apps without it are unaffected.
///
/// ```
/// # use apitally_core as apitally;
/// use tracing_subscriber::prelude::*;
///
/// tracing_subscriber::registry()
///     .with(apitally::tracing_layer())
///     // .with(tracing_subscriber::fmt::layer())
///     .init();
/// ```
///
/// Log records of level `INFO` and above are captured by default
/// ([`max_level`](TracingLayer::max_level) lowers it), and per-target filters compose the
/// `tracing-subscriber` way, with `with_filter` (let the `apitally` target through at `INFO`:
/// the request's root span is there):
///
/// ```
/// # use apitally_core as apitally;
/// use tracing::Level;
/// use tracing_subscriber::{filter::Targets, prelude::*};
///
/// tracing_subscriber::registry()
///     .with(
///         apitally::tracing_layer().with_filter(
///             Targets::new()
///                 .with_default(Level::INFO)
///                 .with_target("apitally", Level::INFO)
///                 .with_target("sqlx", Level::WARN),
///         ),
///     )
///     .with(tracing_subscriber::fmt::layer().with_filter(Targets::new().with_default(Level::INFO)))
/// #   ;
/// ```
///
/// Each request handled with capture on runs inside a root span `apitally.request` (INFO, target
/// `apitally`), named `METHOD /route` in the request log. Events from other requests running on
/// the same worker are never mixed in: they belong to their own request's span. Work spawned with
/// `.instrument(Span::current())` stays in the request. Per request at most 1,000 log records
/// and 1,000 spans are kept, messages are cut to 2,048 characters, and nothing is retained once
/// the request's log line is built.
pub fn tracing_layer() -> TracingLayer {
    TracingLayer::default()
}

impl<S> Layer<S> for TracingLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_layer(&mut self, _subscriber: &mut S) {
        LAYER_ADDED.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let meta = attrs.metadata();
        if meta.target() == "apitally" && meta.name() == ROOT_SPAN {
            if let Some(capture) = PENDING.with(|p| p.borrow_mut().take()) {
                let span_id = hex_id(capture.root_id);
                span.extensions_mut().insert(SpanState {
                    capture,
                    span_id,
                    parent_id: None,
                    name: ROOT_SPAN,
                    start_ns: now_ns(),
                    attributes: Map::new(),
                    kind: None,
                    status: None,
                    is_root: true,
                });
            }
            return;
        }
        let Some(parent) = span.parent() else {
            return;
        };
        let inherited = parent
            .extensions()
            .get::<SpanState>()
            .map(|s| (Arc::clone(&s.capture), s.span_id.clone()));
        if let Some((capture, parent_id)) = inherited {
            let mut fields = Fields::default();
            if capture.capture_traces {
                attrs.record(&mut fields);
            }
            span.extensions_mut().insert(SpanState {
                capture,
                span_id: hex_id(fastrand::u64(1..)),
                parent_id: Some(parent_id),
                name: meta.name(),
                start_ns: now_ns(),
                attributes: fields.attributes,
                kind: fields.kind,
                status: fields.status,
                is_root: false,
            });
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut ext = span.extensions_mut();
        if let Some(state) = ext.get_mut::<SpanState>() {
            if state.capture.capture_traces {
                let mut fields = Fields {
                    attributes: std::mem::take(&mut state.attributes),
                    ..Fields::default()
                };
                values.record(&mut fields);
                state.attributes = fields.attributes;
                state.kind = fields.kind.or(state.kind.take());
                state.status = fields.status.or(state.status.take());
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let ext = span.extensions();
        let Some(state) = ext.get::<SpanState>() else {
            return;
        };
        let capture = &state.capture;
        if !capture.capture_logs {
            return;
        }
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        if *meta.level() > self.max_level {
            return;
        }
        let mut logs = lock(&capture.logs);
        if logs.len() >= MAX_CAPTURED_PER_REQUEST {
            return;
        }
        let mut fields = Fields::for_event();
        event.record(&mut fields);
        let mut message = fields.message;
        truncate_log_message(&mut message);
        logs.push(CapturedLog {
            timestamp: (now_ns() / 1_000_000) as f64 / 1000.0,
            logger: meta.target().to_owned(),
            level: meta.level().as_str().to_owned(),
            message,
            fields: fields.fields,
            file: meta.file().map(str::to_owned),
            line: meta.line(),
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(state) = span.extensions_mut().remove::<SpanState>() else {
            return;
        };
        let capture = &state.capture;
        if !capture.capture_traces {
            return;
        }
        let mut spans = lock(&capture.spans);
        if spans.len() >= MAX_CAPTURED_PER_REQUEST {
            return;
        }
        let name = if state.is_root {
            lock(&capture.root_name).clone()
        } else {
            state.name.to_owned()
        };
        spans.push(CapturedSpan {
            span_id: state.span_id,
            parent_span_id: state.parent_id,
            name,
            kind: state.kind.unwrap_or_else(|| "INTERNAL".to_owned()),
            start_time: state.start_ns,
            end_time: now_ns(),
            status: state.status,
            attributes: state.attributes,
        });
    }
}

#[cfg(test)]
mod tests;

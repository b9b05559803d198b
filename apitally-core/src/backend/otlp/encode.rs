//! For the OTLP encoder, see [`Encoder`]: model values and metric windows into
//! `Export*ServiceRequest` messages (protocol-v1.md §1.5, §3, §4, §5).

// The span path is the reference `wire` is tested against; production spans are written by `wire`.

#[cfg(test)]
use super::model::{SpanData, SpanStatus};
#[cfg(test)]
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    trace::v1::{span, status, ResourceSpans, ScopeSpans, Span, Status},
};
use opentelemetry_proto::tonic::{
    collector::{logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest},
    common::v1::{any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList},
    logs::v1::{LogRecord, ResourceLogs, ScopeLogs},
    metrics::v1::{
        metric, AggregationTemporality, ExponentialHistogram, Metric, ResourceMetrics, ScopeMetrics,
    },
    resource::v1::Resource,
};
use prost::Message;

use self::points::{gauge_metrics, histogram_point, point_attributes};
use super::{
    metrics::{ProcessGauges, RequestWindow},
    model::{AttrValue, Attribute, LogRecordData, Scope},
    spool::MAX_FILE_UNCOMPRESSED,
};
use crate::util::truncate_chars;

mod points;

/// Spans or log records per encoded message (py `BATCH_MAX_EXPORT_BATCH_SIZE`, §1.5).
pub(crate) const BATCH_SIZE: usize = 32;
/// Attribute combinations per histogram message (§5.4).
pub(crate) const COMBINATIONS_PER_MESSAGE: usize = 1_000;
/// Longest string value of a span, in characters (py pins the span attribute value length
/// limit to 65,536, §3.3).
pub(crate) const MAX_SPAN_VALUE_CHARS: usize = 65_536;
/// Longest body and string attribute of an application log record, in characters (§4.3).
pub(crate) const MAX_LOG_VALUE_CHARS: usize = 2_048;

/// The three request histograms: name, unit (§5.1).
const HISTOGRAMS: [(&str, &str); 3] = [
    ("http.server.request.duration", "s"),
    ("http.server.request.body.size", "By"),
    ("http.server.response.body.size", "By"),
];

/// Builds the OTLP messages of the three signals, each with the process's resource (§2).
#[derive(Debug, Clone)]
pub(crate) struct Encoder {
    resource: Resource,
}

impl Encoder {
    /// An encoder for the given resource attributes (see
    /// [`resource_attributes`](super::resource::resource_attributes)).
    pub(crate) fn new(resource_attributes: &[Attribute]) -> Self {
        Self {
            resource: Resource {
                attributes: resource_attributes
                    .iter()
                    .map(|a| key_value(a, usize::MAX))
                    .collect(),
                dropped_attributes_count: 0,
                entity_refs: Vec::new(),
            },
        }
    }

    /// The resource, encoded (written into every message [`super::wire`] writes).
    pub(crate) fn resource_bytes(&self) -> Vec<u8> {
        self.resource.encode_to_vec()
    }

    #[cfg(test)]
    /// One `ExportTraceServiceRequest` holding `spans`, grouped by scope in order of first
    /// appearance.
    pub(crate) fn trace_request(&self, spans: &[SpanData]) -> ExportTraceServiceRequest {
        let mut scopes: Vec<ScopeSpans> = Vec::new();
        let mut scope_keys: Vec<&Scope> = Vec::new();
        for data in spans {
            let span = encode_span(data);
            match scope_keys.iter().position(|s| **s == data.scope) {
                Some(i) => scopes[i].spans.push(span),
                None => {
                    scope_keys.push(&data.scope);
                    scopes.push(ScopeSpans {
                        scope: Some(scope(&data.scope)),
                        spans: vec![span],
                        schema_url: String::new(),
                    });
                }
            }
        }
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: scopes,
                schema_url: String::new(),
            }],
        }
    }

    #[cfg(test)]
    /// `spans` as spool appends: batches of at most 32, halved while a message would pass the
    /// 4,000,000-byte file cap; a single span above it is dropped with a warning (§1.5).
    pub(crate) fn encode_spans(&self, spans: &[SpanData]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for batch in spans.chunks(BATCH_SIZE) {
            split_encode(
                batch,
                &|b| self.trace_request(b).encode_to_vec(),
                "span",
                &mut out,
            );
        }
        out.into_iter().map(|(bytes, _)| bytes).collect()
    }

    /// One `ExportLogsServiceRequest` holding `records`, grouped by scope in order of first
    /// appearance. Application records (any scope but `apitally`) have their string body and
    /// string attributes cut to 2,048 characters; internal events are left as built (§4.3).
    pub(crate) fn logs_request(&self, records: &[LogRecordData]) -> ExportLogsServiceRequest {
        let mut scopes: Vec<ScopeLogs> = Vec::new();
        let mut scope_keys: Vec<&Scope> = Vec::new();
        for data in records {
            let record = encode_log_record(data);
            match scope_keys.iter().position(|s| **s == data.scope) {
                Some(i) => scopes[i].log_records.push(record),
                None => {
                    scope_keys.push(&data.scope);
                    scopes.push(ScopeLogs {
                        scope: Some(scope(&data.scope)),
                        log_records: vec![record],
                        schema_url: String::new(),
                    });
                }
            }
        }
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(self.resource.clone()),
                scope_logs: scopes,
                schema_url: String::new(),
            }],
        }
    }

    /// `records` as spool appends, each with the number of records it holds; batched and
    /// bounded as the spans' encoding is.
    pub(crate) fn encode_logs(&self, records: &[LogRecordData]) -> Vec<(Vec<u8>, u64)> {
        let mut out = Vec::new();
        for batch in records.chunks(BATCH_SIZE) {
            split_encode(
                batch,
                &|b| self.logs_request(b).encode_to_vec(),
                "log record",
                &mut out,
            );
        }
        out
    }

    /// One collection's metric messages (§5.4): first the three process gauges in one
    /// message, then the request histograms in slices of at most 1,000 attribute combinations,
    /// each its own message with the histograms that have data in the slice.
    #[cfg(test)]
    pub(crate) fn metrics_requests(
        &self,
        gauges: &ProcessGauges,
        window: &RequestWindow,
    ) -> Vec<ExportMetricsServiceRequest> {
        let mut requests = Vec::new();
        self.each_metrics_request(gauges, window, |request, _| requests.push(request));
        requests
    }

    /// `metrics_requests` one message at a time, each with the
    /// requests it counts: a message of 1,000 combinations is built, handed over and freed
    /// before the next (a window of 50,000 built at once took ~100 MB).
    fn each_metrics_request(
        &self,
        gauges: &ProcessGauges,
        window: &RequestWindow,
        mut emit: impl FnMut(ExportMetricsServiceRequest, u64),
    ) {
        emit(
            self.metrics_request(gauge_metrics(
                gauges,
                window.start_unix_nano,
                window.end_unix_nano,
            )),
            0,
        );
        for slice in window.points.chunks(COMBINATIONS_PER_MESSAGE) {
            let attributes: Vec<Vec<KeyValue>> = slice.iter().map(point_attributes).collect();
            let mut metrics = Vec::with_capacity(3);
            for (i, (name, unit)) in HISTOGRAMS.into_iter().enumerate() {
                let data_points: Vec<_> = slice
                    .iter()
                    .zip(&attributes)
                    .filter_map(|(point, attributes)| {
                        let histogram = match i {
                            0 => &point.histograms.duration,
                            1 => &point.histograms.request_size,
                            _ => &point.histograms.response_size,
                        };
                        (histogram.count > 0)
                            .then(|| histogram_point(histogram, attributes.clone(), window))
                    })
                    .collect();
                if data_points.is_empty() {
                    continue;
                }
                metrics.push(Metric {
                    name: name.to_owned(),
                    unit: unit.to_owned(),
                    data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
                        data_points,
                        aggregation_temporality: AggregationTemporality::Delta as i32,
                    })),
                    ..Default::default()
                });
            }
            if !metrics.is_empty() {
                let counted = slice.iter().map(|p| p.histograms.duration.count).sum();
                emit(self.metrics_request(metrics), counted);
            }
        }
    }

    /// `metrics_requests`, encoded one at a time into `buf` and
    /// handed to `emit` with the number of requests each counts (none for the gauges): the
    /// spool appends of one collection.
    pub(crate) fn encode_metrics(
        &self,
        gauges: &ProcessGauges,
        window: &RequestWindow,
        mut emit: impl FnMut(&[u8], u64),
    ) {
        let mut buf = Vec::new();
        self.each_metrics_request(gauges, window, |request, counted| {
            buf.clear();
            // Encoding into a Vec cannot fail.
            let _ = request.encode(&mut buf);
            emit(&buf, counted);
        });
    }

    fn metrics_request(&self, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(self.resource.clone()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(scope(&Scope::apitally())),
                    metrics,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }
}

/// Encodes `items` as one message, or halves until each message fits the file cap; a single
/// item that does not fit is dropped with a warning.
fn split_encode<T>(
    items: &[T],
    encode: &dyn Fn(&[T]) -> Vec<u8>,
    what: &str,
    out: &mut Vec<(Vec<u8>, u64)>,
) {
    if items.is_empty() {
        return;
    }
    let bytes = encode(items);
    if bytes.len() <= MAX_FILE_UNCOMPRESSED {
        out.push((bytes, items.len() as u64));
    } else if items.len() == 1 {
        log::warn!(
            target: "apitally",
            "Apitally dropped a {what} of {} bytes, more than the {MAX_FILE_UNCOMPRESSED} bytes a \
             request may carry",
            bytes.len()
        );
    } else {
        let (a, b) = items.split_at(items.len() / 2);
        split_encode(a, encode, what, out);
        split_encode(b, encode, what, out);
    }
}

fn scope(scope: &Scope) -> InstrumentationScope {
    InstrumentationScope {
        name: scope.name.to_string(),
        version: scope.version.to_string(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
    }
}

/// An attribute with its string values cut to `limit` characters (bytes values to `limit`
/// bytes), at every depth.
fn key_value(attribute: &Attribute, limit: usize) -> KeyValue {
    KeyValue {
        key: attribute.key.to_string(),
        value: Some(any_value(&attribute.value, limit)),
        ..Default::default()
    }
}

fn any_value(value: &AttrValue, limit: usize) -> AnyValue {
    use any_value::Value;
    let value = match value {
        AttrValue::None => None,
        AttrValue::String(s) => Some(Value::StringValue(truncate_chars(s, limit).to_owned())),
        AttrValue::Int(n) => Some(Value::IntValue(*n)),
        AttrValue::Double(n) => Some(Value::DoubleValue(*n)),
        AttrValue::Bool(b) => Some(Value::BoolValue(*b)),
        #[cfg(test)]
        AttrValue::Bytes(b) => Some(Value::BytesValue(b[..b.len().min(limit)].to_vec())),
        AttrValue::Array(values) => Some(Value::ArrayValue(ArrayValue {
            values: values.iter().map(|v| any_value(v, limit)).collect(),
        })),
        AttrValue::KvList(values) => Some(Value::KvlistValue(KeyValueList {
            values: values.iter().map(|a| key_value(a, limit)).collect(),
        })),
    };
    AnyValue { value }
}

#[cfg(test)]
fn encode_span(data: &SpanData) -> Span {
    let limit = MAX_SPAN_VALUE_CHARS;
    Span {
        trace_id: data.trace_id.to_vec(),
        span_id: data.span_id.to_vec(),
        trace_state: truncate_chars(&data.trace_state, limit).to_owned(),
        parent_span_id: data.parent.map_or_else(Vec::new, |p| p.span_id.to_vec()),
        flags: data.flags(),
        name: truncate_chars(&data.name, limit).to_owned(),
        kind: data.kind as i32,
        start_time_unix_nano: data.start_time_unix_nano,
        end_time_unix_nano: data.end_time_unix_nano,
        attributes: data
            .attributes
            .iter()
            .map(|a| key_value(a, limit))
            .collect(),
        dropped_attributes_count: data.dropped_attributes_count,
        events: data
            .events
            .iter()
            .map(|e| span::Event {
                time_unix_nano: e.time_unix_nano,
                name: truncate_chars(&e.name, limit).to_owned(),
                attributes: e.attributes.iter().map(|a| key_value(a, limit)).collect(),
                dropped_attributes_count: 0,
            })
            .collect(),
        dropped_events_count: data.dropped_events_count,
        links: Vec::new(),
        dropped_links_count: 0,
        status: Some(match &data.status {
            SpanStatus::Unset => Status::default(),
            SpanStatus::Error { message } => Status {
                message: truncate_chars(message, limit).to_owned(),
                code: status::StatusCode::Error as i32,
            },
        }),
    }
}

fn encode_log_record(data: &LogRecordData) -> LogRecord {
    // py truncates top-level strings of application records only.
    let top = |value: &AttrValue| match value {
        AttrValue::String(s) if !data.is_internal_event() => AnyValue {
            value: Some(any_value::Value::StringValue(
                truncate_chars(s, MAX_LOG_VALUE_CHARS).to_owned(),
            )),
        },
        other => any_value(other, usize::MAX),
    };
    LogRecord {
        time_unix_nano: data.time_unix_nano,
        observed_time_unix_nano: data.observed_time_unix_nano,
        severity_number: data.severity_number,
        severity_text: data.severity_text.to_string(),
        body: data.body.as_ref().map(top),
        attributes: data
            .attributes
            .iter()
            .map(|a| KeyValue {
                key: a.key.to_string(),
                value: Some(top(&a.value)),
                ..Default::default()
            })
            .collect(),
        dropped_attributes_count: 0,
        flags: data.flags,
        trace_id: data.trace_id.map_or_else(Vec::new, |t| t.to_vec()),
        span_id: data.span_id.map_or_else(Vec::new, |s| s.to_vec()),
        event_name: data.event_name.as_deref().unwrap_or_default().to_owned(),
    }
}

#[cfg(test)]
mod tests;

//! OTLP messages flattened into plain values: one per span, log record or data point, each
//! with its resource and scope, attributes as JSON.

use std::collections::BTreeMap;

use base64::Engine as _;
use opentelemetry_proto::tonic::{
    common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue},
    metrics::v1::{metric, number_data_point, AggregationTemporality},
    resource::v1::Resource,
    trace::v1::{span::SpanKind, status::StatusCode},
};
use serde_json::{Map, Value};

use super::OtlpExport;

/// An OTLP `AnyValue` as JSON: strings, booleans, integers and doubles as themselves (a
/// non-finite double as its name, `"NaN"`), arrays as arrays, key-value lists as objects (the
/// last of repeated keys wins), bytes as `{"bytesValue": "<standard base64>"}` (the OTLP/JSON
/// spelling), and an empty value as `null`.
pub fn any_value_to_json(value: Option<&AnyValue>) -> Value {
    let Some(value) = value.and_then(|v| v.value.as_ref()) else {
        return Value::Null;
    };
    match value {
        any_value::Value::StringValue(s) => Value::String(s.clone()),
        any_value::Value::BoolValue(b) => Value::Bool(*b),
        any_value::Value::IntValue(i) => Value::from(*i),
        any_value::Value::DoubleValue(d) => double(*d),
        any_value::Value::ArrayValue(a) => a
            .values
            .iter()
            .map(|v| any_value_to_json(Some(v)))
            .collect(),
        any_value::Value::KvlistValue(kv) => {
            Value::Object(attributes(&kv.values).into_iter().collect())
        }
        any_value::Value::BytesValue(b) => {
            let mut map = Map::new();
            map.insert(
                "bytesValue".into(),
                base64::engine::general_purpose::STANDARD.encode(b).into(),
            );
            Value::Object(map)
        }
        any_value::Value::StringValueStrindex(i) => Value::from(*i),
    }
}

fn double(d: f64) -> Value {
    serde_json::Number::from_f64(d).map_or_else(|| Value::String(d.to_string()), Value::Number)
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, Value> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), any_value_to_json(kv.value.as_ref())))
        .collect()
}

fn resource(r: Option<&Resource>) -> BTreeMap<String, Value> {
    r.map(|r| attributes(&r.attributes)).unwrap_or_default()
}

fn scope(s: Option<&InstrumentationScope>) -> (String, String) {
    s.map(|s| (s.name.clone(), s.version.clone()))
        .unwrap_or_default()
}

/// Lowercase hex; `None` for no bytes (an absent id).
fn hex(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() {
        return None;
    }
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// An event of a span (such as `exception`).
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpEvent {
    /// Such as `exception`.
    pub name: String,
    /// Unix nanoseconds.
    pub time_unix_nano: u64,
    /// Such as `exception.type`, `exception.message`, `exception.stacktrace`.
    pub attributes: BTreeMap<String, Value>,
}

/// One span of a traces export.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpSpan {
    /// The resource attributes (`service.instance.id`, `deployment.environment.name`, ...).
    pub resource: BTreeMap<String, Value>,
    /// The instrumentation scope's name (such as `apitally-actix`).
    pub scope_name: String,
    /// The instrumentation scope's version, empty when none.
    pub scope_version: String,
    /// 32 lowercase hex digits; `None` when empty.
    pub trace_id: Option<String>,
    /// 16 lowercase hex digits; `None` when empty.
    pub span_id: Option<String>,
    /// 16 lowercase hex digits; `None` for a root span.
    pub parent_span_id: Option<String>,
    /// The W3C `tracestate`, usually empty.
    pub trace_state: String,
    /// Such as `GET /items/{id}`.
    pub name: String,
    /// `SERVER`, `INTERNAL`, `CLIENT`, `PRODUCER`, `CONSUMER` or `UNSPECIFIED`.
    pub kind: String,
    /// Unix nanoseconds.
    pub start_time_unix_nano: u64,
    /// Unix nanoseconds.
    pub end_time_unix_nano: u64,
    /// `UNSET`, `OK` or `ERROR`.
    pub status_code: String,
    /// The status message, empty when none.
    pub status_message: String,
    /// Such as `0x100` (has-is-remote) or `0x101` (and sampled).
    pub flags: u32,
    /// Attribute values as JSON ([`any_value_to_json`]).
    pub attributes: BTreeMap<String, Value>,
    /// Events in order.
    pub events: Vec<OtlpEvent>,
    /// How many links the span has (their content is not flattened).
    pub links: usize,
}

impl OtlpSpan {
    /// Whether the span is a request root (kind `SERVER`).
    pub fn is_server(&self) -> bool {
        self.kind == "SERVER"
    }

    /// A string attribute.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }

    /// An integer attribute.
    pub fn int(&self, key: &str) -> Option<i64> {
        self.attributes.get(key).and_then(Value::as_i64)
    }

    /// The first event with this name.
    pub fn event(&self, name: &str) -> Option<&OtlpEvent> {
        self.events.iter().find(|e| e.name == name)
    }
}

/// One log record of a logs export: an Apitally event (`event_name` set) or an application
/// log record.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpLogRecord {
    /// The resource attributes.
    pub resource: BTreeMap<String, Value>,
    /// The instrumentation scope's name: `apitally` for events, the logger for app logs.
    pub scope_name: String,
    /// The instrumentation scope's version, empty when none.
    pub scope_version: String,
    /// Such as `apitally.app.startup`; `None` for application log records.
    pub event_name: Option<String>,
    /// Unix nanoseconds.
    pub time_unix_nano: u64,
    /// Unix nanoseconds.
    pub observed_time_unix_nano: u64,
    /// OTLP severity number (INFO = 9, WARN = 13, ERROR = 17), 0 when unset.
    pub severity_number: i32,
    /// Such as `INFO`, empty when unset.
    pub severity_text: String,
    /// The body as JSON ([`any_value_to_json`]): a string for the startup event and app logs,
    /// an object for the kvlist events.
    pub body: Value,
    /// The body string parsed as JSON, when it is a JSON object or array (the startup event's
    /// payload).
    pub body_json: Option<Value>,
    /// 32 lowercase hex digits; `None` outside a trace.
    pub trace_id: Option<String>,
    /// 16 lowercase hex digits; `None` outside a span.
    pub span_id: Option<String>,
    /// Trace flags.
    pub flags: u32,
    /// Attribute values as JSON (such as `apitally.request.server_span_id`).
    pub attributes: BTreeMap<String, Value>,
}

impl OtlpLogRecord {
    /// A string attribute.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }
}

/// One data point of an exponential histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpHistogramPoint {
    /// The resource attributes.
    pub resource: BTreeMap<String, Value>,
    /// The instrumentation scope's name (`apitally`).
    pub scope_name: String,
    /// Such as `http.server.request.duration`.
    pub metric: String,
    /// Such as `s` or `By`.
    pub unit: String,
    /// `DELTA`, `CUMULATIVE` or `UNSPECIFIED`.
    pub temporality: String,
    /// Such as `http.request.method`, `http.route`, `http.response.status_code`,
    /// `apitally.consumer.identifier`.
    pub attributes: BTreeMap<String, Value>,
    /// Unix nanoseconds.
    pub start_time_unix_nano: u64,
    /// Unix nanoseconds.
    pub time_unix_nano: u64,
    /// Values recorded.
    pub count: u64,
    /// Their sum, when sent.
    pub sum: Option<f64>,
    /// The smallest value, when sent.
    pub min: Option<f64>,
    /// The largest value, when sent.
    pub max: Option<f64>,
    /// The scale (3 for Apitally): bucket `i` covers `(2^(i/2^scale), 2^((i+1)/2^scale)]`.
    pub scale: i32,
    /// Values that were zero.
    pub zero_count: u64,
    /// The zero bucket's threshold, 0 when unset.
    pub zero_threshold: f64,
    /// The index of the first positive bucket.
    pub positive_offset: i32,
    /// Counts of consecutive positive buckets from `positive_offset`.
    pub positive_bucket_counts: Vec<u64>,
    /// The index of the first negative bucket.
    pub negative_offset: i32,
    /// Counts of consecutive negative buckets (Apitally sends none).
    pub negative_bucket_counts: Vec<u64>,
    /// Data point flags.
    pub flags: u32,
}

impl OtlpHistogramPoint {
    /// A string attribute.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }

    /// The non-empty positive buckets as `(lower, upper, count)` in the metric's unit (lower
    /// bound exclusive, upper inclusive).
    pub fn buckets(&self) -> Vec<(f64, f64, u64)> {
        // 2^(i * 2^-scale) rather than base^i: exact at powers of two.
        let bound = |i: f64| 2f64.powf(i * 2f64.powi(-self.scale));
        self.positive_bucket_counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| {
                let i = f64::from(self.positive_offset) + k as f64;
                (bound(i), bound(i + 1.0), *n)
            })
            .collect()
    }
}

/// The bucket index of a positive `value` in an exponential histogram of `scale`: the `i` with
/// `base^i < value <= base^(i+1)`, `base = 2^(2^-scale)` (§5.2; exact powers of two go to the
/// bucket below). A reference to test an SDK's mapping against.
pub fn exponential_bucket_index(value: f64, scale: i32) -> i32 {
    debug_assert!(value > 0.0 && value.is_finite());
    let bits = value.to_bits();
    let mantissa = bits & ((1 << 52) - 1);
    let exponent = ((bits >> 52) & 0x7ff) as i32 - 1023;
    if mantissa == 0 && exponent > -1023 && scale >= 0 {
        // An exact power of two: the bucket whose upper bound it is.
        return (exponent << scale) - 1;
    }
    let scaled = value.log2() * 2f64.powi(scale);
    (scaled.ceil() as i32) - 1
}

/// One data point of a gauge (such as `process.memory.usage`).
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpGaugePoint {
    /// The resource attributes.
    pub resource: BTreeMap<String, Value>,
    /// The instrumentation scope's name (`apitally`).
    pub scope_name: String,
    /// Such as `process.uptime`, `process.cpu.utilization`, `process.memory.usage`.
    pub metric: String,
    /// Such as `s`, `1` or `By`.
    pub unit: String,
    /// The point's attributes (none for the process gauges).
    pub attributes: BTreeMap<String, Value>,
    /// Unix nanoseconds, 0 when unset.
    pub start_time_unix_nano: u64,
    /// Unix nanoseconds.
    pub time_unix_nano: u64,
    /// The value when sent as an integer (`asInt`).
    pub as_int: Option<i64>,
    /// The value when sent as a double (`asDouble`).
    pub as_double: Option<f64>,
}

impl OtlpGaugePoint {
    /// The value, whichever way it was sent (0 when none).
    pub fn value(&self) -> f64 {
        self.as_double
            .or(self.as_int.map(|i| i as f64))
            .unwrap_or(0.0)
    }
}

fn span_kind(kind: i32) -> String {
    match SpanKind::try_from(kind) {
        Ok(SpanKind::Server) => "SERVER",
        Ok(SpanKind::Internal) => "INTERNAL",
        Ok(SpanKind::Client) => "CLIENT",
        Ok(SpanKind::Producer) => "PRODUCER",
        Ok(SpanKind::Consumer) => "CONSUMER",
        _ => "UNSPECIFIED",
    }
    .to_owned()
}

fn status_code(code: i32) -> String {
    match StatusCode::try_from(code) {
        Ok(StatusCode::Ok) => "OK",
        Ok(StatusCode::Error) => "ERROR",
        _ => "UNSET",
    }
    .to_owned()
}

fn temporality(t: i32) -> String {
    match AggregationTemporality::try_from(t) {
        Ok(AggregationTemporality::Delta) => "DELTA",
        Ok(AggregationTemporality::Cumulative) => "CUMULATIVE",
        _ => "UNSPECIFIED",
    }
    .to_owned()
}

impl OtlpExport {
    /// Every span of a traces export, in order (nothing for other signals).
    pub fn spans(&self) -> Vec<OtlpSpan> {
        let OtlpExport::Traces(m) = self else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for rs in &m.resource_spans {
            let res = resource(rs.resource.as_ref());
            for ss in &rs.scope_spans {
                let (scope_name, scope_version) = scope(ss.scope.as_ref());
                for s in &ss.spans {
                    let status = s.status.clone().unwrap_or_default();
                    out.push(OtlpSpan {
                        resource: res.clone(),
                        scope_name: scope_name.clone(),
                        scope_version: scope_version.clone(),
                        trace_id: hex(&s.trace_id),
                        span_id: hex(&s.span_id),
                        parent_span_id: hex(&s.parent_span_id),
                        trace_state: s.trace_state.clone(),
                        name: s.name.clone(),
                        kind: span_kind(s.kind),
                        start_time_unix_nano: s.start_time_unix_nano,
                        end_time_unix_nano: s.end_time_unix_nano,
                        status_code: status_code(status.code),
                        status_message: status.message,
                        flags: s.flags,
                        attributes: attributes(&s.attributes),
                        events: s
                            .events
                            .iter()
                            .map(|e| OtlpEvent {
                                name: e.name.clone(),
                                time_unix_nano: e.time_unix_nano,
                                attributes: attributes(&e.attributes),
                            })
                            .collect(),
                        links: s.links.len(),
                    });
                }
            }
        }
        out
    }

    /// Every log record of a logs export, in order (nothing for other signals).
    pub fn log_records(&self) -> Vec<OtlpLogRecord> {
        let OtlpExport::Logs(m) = self else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for rl in &m.resource_logs {
            let res = resource(rl.resource.as_ref());
            for sl in &rl.scope_logs {
                let (scope_name, scope_version) = scope(sl.scope.as_ref());
                for r in &sl.log_records {
                    let body = any_value_to_json(r.body.as_ref());
                    let body_json = body
                        .as_str()
                        .and_then(|s| serde_json::from_str::<Value>(s).ok())
                        .filter(|v| v.is_object() || v.is_array());
                    out.push(OtlpLogRecord {
                        resource: res.clone(),
                        scope_name: scope_name.clone(),
                        scope_version: scope_version.clone(),
                        event_name: Some(r.event_name.clone()).filter(|n| !n.is_empty()),
                        time_unix_nano: r.time_unix_nano,
                        observed_time_unix_nano: r.observed_time_unix_nano,
                        severity_number: r.severity_number,
                        severity_text: r.severity_text.clone(),
                        body,
                        body_json,
                        trace_id: hex(&r.trace_id),
                        span_id: hex(&r.span_id),
                        flags: r.flags,
                        attributes: attributes(&r.attributes),
                    });
                }
            }
        }
        out
    }

    /// Every exponential-histogram data point of a metrics export, in order (nothing for
    /// other signals).
    pub fn histogram_points(&self) -> Vec<OtlpHistogramPoint> {
        let OtlpExport::Metrics(m) = self else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for rm in &m.resource_metrics {
            let res = resource(rm.resource.as_ref());
            for sm in &rm.scope_metrics {
                let (scope_name, _) = scope(sm.scope.as_ref());
                for metric in &sm.metrics {
                    let Some(metric::Data::ExponentialHistogram(h)) = &metric.data else {
                        continue;
                    };
                    for p in &h.data_points {
                        let positive = p.positive.clone().unwrap_or_default();
                        let negative = p.negative.clone().unwrap_or_default();
                        out.push(OtlpHistogramPoint {
                            resource: res.clone(),
                            scope_name: scope_name.clone(),
                            metric: metric.name.clone(),
                            unit: metric.unit.clone(),
                            temporality: temporality(h.aggregation_temporality),
                            attributes: attributes(&p.attributes),
                            start_time_unix_nano: p.start_time_unix_nano,
                            time_unix_nano: p.time_unix_nano,
                            count: p.count,
                            sum: p.sum,
                            min: p.min,
                            max: p.max,
                            scale: p.scale,
                            zero_count: p.zero_count,
                            zero_threshold: p.zero_threshold,
                            positive_offset: positive.offset,
                            positive_bucket_counts: positive.bucket_counts,
                            negative_offset: negative.offset,
                            negative_bucket_counts: negative.bucket_counts,
                            flags: p.flags,
                        });
                    }
                }
            }
        }
        out
    }

    /// Every gauge data point of a metrics export, in order (nothing for other signals).
    pub fn gauge_points(&self) -> Vec<OtlpGaugePoint> {
        let OtlpExport::Metrics(m) = self else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for rm in &m.resource_metrics {
            let res = resource(rm.resource.as_ref());
            for sm in &rm.scope_metrics {
                let (scope_name, _) = scope(sm.scope.as_ref());
                for metric in &sm.metrics {
                    let Some(metric::Data::Gauge(g)) = &metric.data else {
                        continue;
                    };
                    for p in &g.data_points {
                        let (as_int, as_double) = match p.value {
                            Some(number_data_point::Value::AsInt(i)) => (Some(i), None),
                            Some(number_data_point::Value::AsDouble(d)) => (None, Some(d)),
                            None => (None, None),
                        };
                        out.push(OtlpGaugePoint {
                            resource: res.clone(),
                            scope_name: scope_name.clone(),
                            metric: metric.name.clone(),
                            unit: metric.unit.clone(),
                            attributes: attributes(&p.attributes),
                            start_time_unix_nano: p.start_time_unix_nano,
                            time_unix_nano: p.time_unix_nano,
                            as_int,
                            as_double,
                        });
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::otlp::sample;

    #[test]
    fn any_values_map_to_json() {
        let export = OtlpExport::from_otlp_json(
            "logs",
            &json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"kvlistValue": {"values": [
                {"key": "s", "value": {"stringValue": "x"}},
                {"key": "i", "value": {"intValue": "-7"}},
                {"key": "d", "value": {"doubleValue": 0.5}},
                {"key": "b", "value": {"boolValue": true}},
                {"key": "a", "value": {"arrayValue": {"values": [{"stringValue": "y"}, {}]}}},
                {"key": "bytes", "value": {"bytesValue": "AAE="}},
                {"key": "null", "value": {}}
            ]}}}]}]}]}),
        )
        .unwrap();
        assert_eq!(
            export.log_records()[0].body,
            json!({"s": "x", "i": -7, "d": 0.5, "b": true, "a": ["y", null],
                   "bytes": {"bytesValue": "AAE="}, "null": null})
        );
        assert_eq!(double(f64::NAN), json!("NaN"));
    }

    #[test]
    fn sample_spans() {
        let spans = sample::traces().spans();
        assert_eq!(spans.len(), 6);
        let s = &spans[0];
        assert_eq!(s.name, "POST /echo");
        assert!(s.is_server());
        assert_eq!(
            s.trace_id.as_deref(),
            Some("416d693cbf2034ae0ad164fcd62b0daf")
        );
        assert_eq!(s.span_id.as_deref(), Some("a4410c4f4c897189"));
        assert_eq!(s.parent_span_id, None);
        assert_eq!((s.flags, s.status_code.as_str()), (256, "UNSET"));
        assert_eq!(s.scope_name, "opentelemetry.instrumentation.asgi");
        assert_eq!(s.int("http.response.status_code"), Some(200));
        assert_eq!(s.str("http.route"), Some("/echo"));
        assert_eq!(
            s.attributes["http.request.header.content-type"],
            json!(["application/json"])
        );
        assert!(s
            .str("apitally.request.body")
            .unwrap()
            .starts_with("{\"name\":\"bench\""));
        assert_eq!(s.resource["telemetry.distro.name"], "apitally-py");
        assert_eq!(
            s.end_time_unix_nano - s.start_time_unix_nano,
            1_795_735_787_437_725_490 - 1_795_735_787_437_544_171
        );
    }

    #[test]
    fn sample_startup_event() {
        let records = sample::logs().log_records();
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(r.event_name.as_deref(), Some("apitally.app.startup"));
        assert_eq!(r.scope_name, "apitally");
        assert_eq!((r.trace_id.as_ref(), r.severity_number), (None, 0));
        let startup = r.body_json.as_ref().unwrap();
        assert_eq!(startup["framework"], "litestar");
        assert_eq!(
            startup["paths"][2],
            json!({"method": "POST", "path": "/echo"})
        );
    }

    #[test]
    fn sample_metrics() {
        let export = sample::metrics();
        let gauges = export.gauge_points();
        let names: Vec<&str> = gauges.iter().map(|g| g.metric.as_str()).collect();
        assert_eq!(
            names,
            [
                "process.uptime",
                "process.cpu.utilization",
                "process.memory.usage"
            ]
        );
        assert_eq!(gauges[2].as_int, Some(60_542_976));
        assert_eq!(gauges[1].value(), 0.4915);
        let points = export.histogram_points();
        assert_eq!(points.len(), 7);
        let d = &points[0];
        assert_eq!(
            (d.metric.as_str(), d.unit.as_str()),
            ("http.server.request.duration", "s")
        );
        assert_eq!((d.temporality.as_str(), d.scale), ("DELTA", 3));
        assert_eq!(d.str("http.route"), Some("/items/{item_id}"));
        assert_eq!(d.attributes["http.response.status_code"], 200);
        assert_eq!(d.count, 6562);
        assert_eq!(d.positive_offset, -102);
        assert_eq!(
            d.positive_bucket_counts.iter().sum::<u64>() + d.zero_count,
            d.count
        );
        // The minimum lies in the first bucket.
        let (lower, upper, _) = d.buckets()[0];
        let min = d.min.unwrap();
        assert!(lower < min && min <= upper, "{lower} < {min} <= {upper}");
        // Bounds at powers of two are exact: bucket -25 ends at 2^-3.
        let p = OtlpHistogramPoint {
            positive_offset: -25,
            positive_bucket_counts: vec![1],
            ..d.clone()
        };
        assert_eq!(p.buckets()[0].1, 0.125);
        let sizes = points
            .iter()
            .find(|p| p.metric == "http.server.response.body.size")
            .unwrap();
        assert_eq!(
            (
                sizes.positive_offset,
                sizes.positive_bucket_counts.as_slice()
            ),
            (50, &[108, 6454][..])
        );
    }

    #[test]
    fn bucket_index_matches_the_protocol() {
        // §5.2's worked examples.
        assert_eq!(exponential_bucket_index(0.000_155_871, 3), -102);
        assert_eq!(exponential_bucket_index(81.0, 3), 50);
        assert_eq!(exponential_bucket_index(86.0, 3), 51);
        assert_eq!(exponential_bucket_index(87.0, 3), 51);
        // Exact powers of two are upper bounds.
        assert_eq!(exponential_bucket_index(1.0, 3), -1);
        assert_eq!(exponential_bucket_index(2.0, 3), 7);
        assert_eq!(exponential_bucket_index(0.5, 3), -9);
        assert_eq!(exponential_bucket_index(1.0001, 3), 0);
    }
}

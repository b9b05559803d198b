//! Test helpers: decoded OTLP messages in the OTLP/JSON form of the captured samples
//! (`shared/samples/v1-*.json`): 64-bit integers as strings, ids in hex, enums by name, default
//! values left out.

use opentelemetry_proto::tonic::{
    common::v1::{any_value::Value as V, AnyValue, KeyValue},
    logs::v1::LogRecord,
    metrics::v1::{metric::Data, number_data_point, ExponentialHistogramDataPoint, Metric},
    resource::v1::Resource,
    trace::v1::Span,
};
use serde_json::{json, Map, Value};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn put(map: &mut Map<String, Value>, key: &str, value: Value, default: bool) {
    if !default {
        map.insert(key.to_owned(), value);
    }
}

pub(crate) fn any_value(value: &AnyValue) -> Value {
    match &value.value {
        None => json!({}),
        Some(V::StringValue(s)) => json!({ "stringValue": s }),
        Some(V::BoolValue(b)) => json!({ "boolValue": b }),
        Some(V::IntValue(n)) => json!({ "intValue": n.to_string() }),
        Some(V::DoubleValue(n)) => json!({ "doubleValue": n }),
        Some(V::BytesValue(b)) => {
            use base64::Engine;
            json!({ "bytesValue": base64::engine::general_purpose::STANDARD.encode(b) })
        }
        Some(V::ArrayValue(a)) => {
            let values: Vec<_> = a.values.iter().map(any_value).collect();
            if values.is_empty() {
                json!({ "arrayValue": {} })
            } else {
                json!({ "arrayValue": { "values": values } })
            }
        }
        Some(V::KvlistValue(kv)) => {
            let values: Vec<_> = kv.values.iter().map(key_value).collect();
            if values.is_empty() {
                json!({ "kvlistValue": {} })
            } else {
                json!({ "kvlistValue": { "values": values } })
            }
        }
        Some(other) => panic!("unexpected value {other:?}"),
    }
}

pub(crate) fn key_value(kv: &KeyValue) -> Value {
    let mut map = Map::new();
    map.insert("key".into(), json!(kv.key));
    if let Some(value) = &kv.value {
        map.insert("value".into(), any_value(value));
    }
    Value::Object(map)
}

fn attributes(map: &mut Map<String, Value>, attributes: &[KeyValue]) {
    put(
        map,
        "attributes",
        attributes.iter().map(key_value).collect(),
        attributes.is_empty(),
    );
}

pub(crate) fn resource(resource: &Resource) -> Value {
    let mut map = Map::new();
    attributes(&mut map, &resource.attributes);
    Value::Object(map)
}

pub(crate) fn span(span: &Span) -> Value {
    let kinds = [
        "SPAN_KIND_UNSPECIFIED",
        "SPAN_KIND_INTERNAL",
        "SPAN_KIND_SERVER",
        "SPAN_KIND_CLIENT",
        "SPAN_KIND_PRODUCER",
        "SPAN_KIND_CONSUMER",
    ];
    let mut map = Map::new();
    map.insert("traceId".into(), json!(hex(&span.trace_id)));
    map.insert("spanId".into(), json!(hex(&span.span_id)));
    put(
        &mut map,
        "traceState",
        json!(span.trace_state),
        span.trace_state.is_empty(),
    );
    put(
        &mut map,
        "parentSpanId",
        json!(hex(&span.parent_span_id)),
        span.parent_span_id.is_empty(),
    );
    put(&mut map, "flags", json!(span.flags), span.flags == 0);
    map.insert("name".into(), json!(span.name));
    map.insert("kind".into(), json!(kinds[span.kind as usize]));
    map.insert(
        "startTimeUnixNano".into(),
        json!(span.start_time_unix_nano.to_string()),
    );
    map.insert(
        "endTimeUnixNano".into(),
        json!(span.end_time_unix_nano.to_string()),
    );
    attributes(&mut map, &span.attributes);
    let events: Vec<Value> = span
        .events
        .iter()
        .map(|e| {
            let mut event = Map::new();
            event.insert("timeUnixNano".into(), json!(e.time_unix_nano.to_string()));
            event.insert("name".into(), json!(e.name));
            attributes(&mut event, &e.attributes);
            Value::Object(event)
        })
        .collect();
    put(&mut map, "events", json!(events), events.is_empty());
    if let Some(status) = &span.status {
        let mut s = Map::new();
        put(
            &mut s,
            "message",
            json!(status.message),
            status.message.is_empty(),
        );
        put(
            &mut s,
            "code",
            json!(
                ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"][status.code as usize]
            ),
            status.code == 0,
        );
        map.insert("status".into(), Value::Object(s));
    }
    Value::Object(map)
}

pub(crate) fn log_record(record: &LogRecord) -> Value {
    let mut map = Map::new();
    put(
        &mut map,
        "timeUnixNano",
        json!(record.time_unix_nano.to_string()),
        record.time_unix_nano == 0,
    );
    put(
        &mut map,
        "observedTimeUnixNano",
        json!(record.observed_time_unix_nano.to_string()),
        record.observed_time_unix_nano == 0,
    );
    put(
        &mut map,
        "severityNumber",
        json!(record.severity_number),
        record.severity_number == 0,
    );
    put(
        &mut map,
        "severityText",
        json!(record.severity_text),
        record.severity_text.is_empty(),
    );
    if let Some(body) = &record.body {
        map.insert("body".into(), any_value(body));
    }
    attributes(&mut map, &record.attributes);
    put(&mut map, "flags", json!(record.flags), record.flags == 0);
    put(
        &mut map,
        "traceId",
        json!(hex(&record.trace_id)),
        record.trace_id.is_empty(),
    );
    put(
        &mut map,
        "spanId",
        json!(hex(&record.span_id)),
        record.span_id.is_empty(),
    );
    put(
        &mut map,
        "eventName",
        json!(record.event_name),
        record.event_name.is_empty(),
    );
    Value::Object(map)
}

pub(crate) fn histogram_point(point: &ExponentialHistogramDataPoint) -> Value {
    let mut map = Map::new();
    attributes(&mut map, &point.attributes);
    put(
        &mut map,
        "startTimeUnixNano",
        json!(point.start_time_unix_nano.to_string()),
        point.start_time_unix_nano == 0,
    );
    map.insert(
        "timeUnixNano".into(),
        json!(point.time_unix_nano.to_string()),
    );
    map.insert("count".into(), json!(point.count.to_string()));
    if let Some(sum) = point.sum {
        map.insert("sum".into(), json!(sum));
    }
    put(&mut map, "scale", json!(point.scale), point.scale == 0);
    put(
        &mut map,
        "zeroCount",
        json!(point.zero_count.to_string()),
        point.zero_count == 0,
    );
    if let Some(positive) = &point.positive {
        let mut p = Map::new();
        put(
            &mut p,
            "offset",
            json!(positive.offset),
            positive.offset == 0,
        );
        let counts: Vec<_> = positive
            .bucket_counts
            .iter()
            .map(|n| json!(n.to_string()))
            .collect();
        put(&mut p, "bucketCounts", json!(counts), counts.is_empty());
        map.insert("positive".into(), Value::Object(p));
    }
    assert!(point.negative.is_none() && point.exemplars.is_empty() && point.flags == 0);
    if let Some(min) = point.min {
        map.insert("min".into(), json!(min));
    }
    if let Some(max) = point.max {
        map.insert("max".into(), json!(max));
    }
    Value::Object(map)
}

pub(crate) fn metric(metric: &Metric) -> Value {
    let mut map = Map::new();
    map.insert("name".into(), json!(metric.name));
    put(&mut map, "unit", json!(metric.unit), metric.unit.is_empty());
    match &metric.data {
        Some(Data::Gauge(gauge)) => {
            let points: Vec<_> = gauge
                .data_points
                .iter()
                .map(|p| {
                    let mut point = Map::new();
                    attributes(&mut point, &p.attributes);
                    put(
                        &mut point,
                        "startTimeUnixNano",
                        json!(p.start_time_unix_nano.to_string()),
                        p.start_time_unix_nano == 0,
                    );
                    point.insert("timeUnixNano".into(), json!(p.time_unix_nano.to_string()));
                    match p.value {
                        Some(number_data_point::Value::AsDouble(d)) => {
                            point.insert("asDouble".into(), json!(d));
                        }
                        Some(number_data_point::Value::AsInt(n)) => {
                            point.insert("asInt".into(), json!(n.to_string()));
                        }
                        None => {}
                    }
                    Value::Object(point)
                })
                .collect();
            map.insert("gauge".into(), json!({ "dataPoints": points }));
        }
        Some(Data::ExponentialHistogram(h)) => {
            let points: Vec<_> = h.data_points.iter().map(histogram_point).collect();
            let temporality = [
                "AGGREGATION_TEMPORALITY_UNSPECIFIED",
                "AGGREGATION_TEMPORALITY_DELTA",
                "AGGREGATION_TEMPORALITY_CUMULATIVE",
            ][h.aggregation_temporality as usize];
            map.insert(
                "exponentialHistogram".into(),
                json!({ "dataPoints": points, "aggregationTemporality": temporality }),
            );
        }
        other => panic!("unexpected metric data {other:?}"),
    }
    Value::Object(map)
}

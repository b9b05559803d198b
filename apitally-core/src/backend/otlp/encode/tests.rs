use std::time::Duration;

use opentelemetry_proto::tonic::{
    collector::{
        logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest,
        trace::v1::ExportTraceServiceRequest,
    },
    common::v1::any_value,
};
use prost::Message;
use serde_json::{json, Value};

use super::*;
use crate::backend::otlp::{
    events::{self, ConsumerUpdate, ServerErrorGroup, StartupInfo, ValidationErrorGroup},
    metrics::{RequestMetrics, RequestSample},
    model::{Parent, SpanEvent, SpanKind},
    resource::resource_attributes_with,
    testing,
};

/// [sample] v1-traces.json, first span (`POST /echo`), verbatim.
const SAMPLE_SPAN: &str = r#"{"traceId": "416d693cbf2034ae0ad164fcd62b0daf", "spanId": "a4410c4f4c897189", "name": "POST /echo", "kind": "SPAN_KIND_SERVER", "startTimeUnixNano": "1795735787437544171", "endTimeUnixNano": "1795735787437725490", "attributes": [{"key": "url.scheme", "value": {"stringValue": "http"}}, {"key": "server.address", "value": {"stringValue": "127.0.0.1:18117"}}, {"key": "server.port", "value": {"intValue": "18117"}}, {"key": "network.protocol.version", "value": {"stringValue": "1.1"}}, {"key": "url.path", "value": {"stringValue": "/echo"}}, {"key": "http.request.method", "value": {"stringValue": "POST"}}, {"key": "client.port", "value": {"intValue": "52712"}}, {"key": "http.response.status_code", "value": {"intValue": "200"}}, {"key": "http.route", "value": {"stringValue": "/echo"}}, {"key": "client.address", "value": {"stringValue": "127.0.0.1"}}, {"key": "http.request.body.size", "value": {"intValue": "87"}}, {"key": "http.response.body.size", "value": {"intValue": "87"}}, {"key": "http.request.header.content-length", "value": {"arrayValue": {"values": [{"stringValue": "87"}]}}}, {"key": "http.request.header.content-type", "value": {"arrayValue": {"values": [{"stringValue": "application/json"}]}}}, {"key": "http.request.header.host", "value": {"arrayValue": {"values": [{"stringValue": "127.0.0.1:18117"}]}}}, {"key": "http.response.header.content-type", "value": {"arrayValue": {"values": [{"stringValue": "application/json"}]}}}, {"key": "http.response.header.content-length", "value": {"arrayValue": {"values": [{"stringValue": "87"}]}}}, {"key": "apitally.request.body", "value": {"stringValue": "{\"name\":\"bench\",\"qty\":3,\"price\":12.5,\"tags\":[\"a\",\"b\"],\"nested\":{\"ok\":true,\"ratio\":0.5}}"}}, {"key": "apitally.response.body", "value": {"stringValue": "{\"name\":\"bench\",\"qty\":3,\"price\":12.5,\"tags\":[\"a\",\"b\"],\"nested\":{\"ok\":true,\"ratio\":0.5}}"}}], "status": {}, "flags": 256}"#;

/// [sample] v1-metrics.json, `http.server.response.body.size` of `GET /items/{item_id}`.
const SAMPLE_SIZE_POINT: &str = r#"{"attributes": [{"key": "http.request.method", "value": {"stringValue": "GET"}}, {"key": "http.route", "value": {"stringValue": "/items/{item_id}"}}, {"key": "http.response.status_code", "value": {"intValue": "200"}}], "startTimeUnixNano": "1795735643473966828", "timeUnixNano": "1795735651763220578", "count": "6562", "sum": 560326.0, "scale": 3, "positive": {"offset": 50, "bucketCounts": ["108", "6454"]}, "min": 81.0, "max": 86.0}"#;

const START: u64 = 1_795_735_643_473_966_828;
const END: u64 = 1_795_735_651_763_220_578;

fn encoder() -> Encoder {
    Encoder::new(&resource_attributes_with(
        "prod",
        |_| None,
        "3ed003cf-f737-4a86-bd1d-5135b414263d",
    ))
}

fn unhex<const N: usize>(hex: &str) -> [u8; N] {
    let mut out = [0; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

fn sample_span() -> SpanData {
    let body = r#"{"name":"bench","qty":3,"price":12.5,"tags":["a","b"],"nested":{"ok":true,"ratio":0.5}}"#;
    SpanData {
        scope: Scope::new("apitally-actix", "0.1.0"),
        trace_id: unhex("416d693cbf2034ae0ad164fcd62b0daf"),
        span_id: unhex("a4410c4f4c897189"),
        parent: None,
        trace_state: String::new(),
        name: "POST /echo".into(),
        kind: SpanKind::Server,
        start_time_unix_nano: 1_795_735_787_437_544_171,
        end_time_unix_nano: 1_795_735_787_437_725_490,
        status: SpanStatus::Unset,
        attributes: vec![
            Attribute::new("url.scheme", "http"),
            Attribute::new("server.address", "127.0.0.1:18117"),
            Attribute::new("server.port", 18117),
            Attribute::new("network.protocol.version", "1.1"),
            Attribute::new("url.path", "/echo"),
            Attribute::new("http.request.method", "POST"),
            Attribute::new("client.port", 52712),
            Attribute::new("http.response.status_code", 200),
            Attribute::new("http.route", "/echo"),
            Attribute::new("client.address", "127.0.0.1"),
            Attribute::new("http.request.body.size", 87),
            Attribute::new("http.response.body.size", 87),
            Attribute::new(
                "http.request.header.content-length",
                AttrValue::strings(["87"]),
            ),
            Attribute::new(
                "http.request.header.content-type",
                AttrValue::strings(["application/json"]),
            ),
            Attribute::new(
                "http.request.header.host",
                AttrValue::strings(["127.0.0.1:18117"]),
            ),
            Attribute::new(
                "http.response.header.content-type",
                AttrValue::strings(["application/json"]),
            ),
            Attribute::new(
                "http.response.header.content-length",
                AttrValue::strings(["87"]),
            ),
            Attribute::new("apitally.request.body", body),
            Attribute::new("apitally.response.body", body),
        ],
        events: Vec::new(),
        dropped_attributes_count: 0,
        dropped_events_count: 0,
    }
}

impl From<i32> for AttrValue {
    fn from(n: i32) -> Self {
        AttrValue::Int(i64::from(n))
    }
}

fn decode_traces(bytes: &[u8]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest::decode(bytes).unwrap()
}

fn decode_logs(bytes: &[u8]) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest::decode(bytes).unwrap()
}

fn decode_metrics(bytes: &[u8]) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest::decode(bytes).unwrap()
}

fn event_json(record: LogRecordData) -> Value {
    let bytes = encoder().encode_logs(&[record]);
    assert_eq!(bytes.len(), 1);
    let request = decode_logs(&bytes[0].0);
    let scope_logs = &request.resource_logs[0].scope_logs[0];
    let scope = scope_logs.scope.as_ref().unwrap();
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("apitally", "")
    );
    testing::log_record(&scope_logs.log_records[0])
}

#[test]
fn span_matches_the_sample_field_by_field() {
    let bytes = encoder().encode_spans(&[sample_span()]);
    assert_eq!(bytes.len(), 1);
    let request = decode_traces(&bytes[0]);
    assert_eq!(request.resource_spans.len(), 1);
    let resource_spans = &request.resource_spans[0];
    assert_eq!(
        testing::resource(resource_spans.resource.as_ref().unwrap()),
        json!({"attributes": [
            {"key": "service.name", "value": {"stringValue": "unknown_service"}},
            {"key": "telemetry.sdk.language", "value": {"stringValue": "rust"}},
            {"key": "telemetry.sdk.name", "value": {"stringValue": "opentelemetry"}},
            {"key": "telemetry.sdk.version", "value": {"stringValue": "0.33.1"}},
            {"key": "service.instance.id", "value": {"stringValue": "3ed003cf-f737-4a86-bd1d-5135b414263d"}},
            {"key": "deployment.environment.name", "value": {"stringValue": "prod"}},
            {"key": "telemetry.distro.name", "value": {"stringValue": "apitally-rs"}},
            {"key": "telemetry.distro.version", "value": {"stringValue": env!("CARGO_PKG_VERSION")}},
        ]})
    );
    assert_eq!(resource_spans.schema_url, "");
    let scope_spans = &resource_spans.scope_spans[0];
    let scope = scope_spans.scope.as_ref().unwrap();
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("apitally-actix", "0.1.0")
    );
    let expected: Value = serde_json::from_str(SAMPLE_SPAN).unwrap();
    assert_eq!(testing::span(&scope_spans.spans[0]), expected);
}

#[test]
fn span_parent_flags_status_events_and_bytes() {
    let mut span = sample_span();
    span.kind = SpanKind::Internal;
    span.parent = Some(Parent {
        span_id: [1, 2, 3, 4, 5, 6, 7, 8],
        remote: true,
    });
    span.trace_state = "vendor=1".into();
    span.status = SpanStatus::Error {
        message: String::new(),
    };
    span.attributes = vec![
        Attribute::new("apitally.request.body", AttrValue::Bytes(vec![0xff, 0x00])),
        Attribute::new("nothing", AttrValue::None),
        Attribute::new("ratio", 0.5),
        Attribute::new("flag", true),
        Attribute::new("empty", AttrValue::Array(Vec::new())),
    ];
    span.events = vec![SpanEvent {
        name: "exception".into(),
        time_unix_nano: 5,
        attributes: vec![
            Attribute::new("exception.type", "std::io::Error"),
            Attribute::new("exception.message", "disk full"),
            Attribute::new("exception.stacktrace", "0: app::save"),
        ],
    }];
    let request = decode_traces(&encoder().encode_spans(&[span])[0]);
    let json = testing::span(&request.resource_spans[0].scope_spans[0].spans[0]);
    assert_eq!(json["flags"], json!(0x300));
    assert_eq!(json["kind"], "SPAN_KIND_INTERNAL");
    assert_eq!(json["parentSpanId"], "0102030405060708");
    assert_eq!(json["traceState"], "vendor=1");
    assert_eq!(json["status"], json!({"code": "STATUS_CODE_ERROR"}));
    assert_eq!(
        json["attributes"],
        json!([
            {"key": "apitally.request.body", "value": {"bytesValue": "/wA="}},
            {"key": "nothing", "value": {}},
            {"key": "ratio", "value": {"doubleValue": 0.5}},
            {"key": "flag", "value": {"boolValue": true}},
            {"key": "empty", "value": {"arrayValue": {}}},
        ])
    );
    assert_eq!(
        json["events"],
        json!([{"timeUnixNano": "5", "name": "exception", "attributes": [
            {"key": "exception.type", "value": {"stringValue": "std::io::Error"}},
            {"key": "exception.message", "value": {"stringValue": "disk full"}},
            {"key": "exception.stacktrace", "value": {"stringValue": "0: app::save"}},
        ]}])
    );
    // A local parent: 0x100 only.
    let mut local = sample_span();
    local.parent = Some(Parent {
        span_id: [9; 8],
        remote: false,
    });
    assert_eq!(local.flags(), 0x100);
    // Null is present but empty.
    let kv = &request.resource_spans[0].scope_spans[0].spans[0].attributes[1];
    assert_eq!(kv.value.as_ref().map(|v| v.value.is_none()), Some(true));
}

#[test]
fn spans_go_in_batches_of_32_grouped_by_scope_and_concatenate() {
    let mut spans: Vec<SpanData> = (0..70).map(|_| sample_span()).collect();
    spans[1].scope = Scope::new("tracing-target", "");
    let messages = encoder().encode_spans(&spans);
    assert_eq!(messages.len(), 3);
    let first = decode_traces(&messages[0]);
    let scopes: Vec<_> = first.resource_spans[0]
        .scope_spans
        .iter()
        .map(|s| (s.scope.as_ref().unwrap().name.clone(), s.spans.len()))
        .collect();
    assert_eq!(
        scopes,
        [
            ("apitally-actix".to_owned(), 31),
            ("tracing-target".to_owned(), 1)
        ]
    );
    // A spool file is the concatenation: it decodes as one request whose resource_spans
    // are the appends (§1.5).
    let concatenated = messages.concat();
    let merged = decode_traces(&concatenated);
    assert_eq!(merged.resource_spans.len(), 3);
    let count: usize = merged
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    assert_eq!(count, 70);
}

#[test]
fn oversized_batches_are_split_and_a_span_too_large_alone_is_dropped() {
    let big = |chars: usize| {
        let mut span = sample_span();
        span.attributes = (0..4)
            .map(|i| Attribute::new(format!("big.{i}"), "x".repeat(chars)))
            .collect();
        span
    };
    // 32 spans of ~260 kB: the batch is halved until each message fits.
    let spans: Vec<_> = (0..32).map(|_| big(65_000)).collect();
    let messages = encoder().encode_spans(&spans);
    assert!(messages.len() >= 3, "{}", messages.len());
    assert!(messages.iter().all(|m| m.len() <= MAX_FILE_UNCOMPRESSED));
    let count: usize = messages
        .iter()
        .map(|m| {
            decode_traces(m).resource_spans[0].scope_spans[0]
                .spans
                .len()
        })
        .sum();
    assert_eq!(count, 32);
    // String values are cut to 65,536 characters; a span of 100 such values is dropped.
    let mut huge = big(100_000);
    huge.attributes = (0..100)
        .map(|i| Attribute::new(format!("big.{i}"), "é".repeat(100_000)))
        .collect();
    let messages = encoder().encode_spans(&[huge, big(100_000)]);
    assert_eq!(messages.len(), 1);
    let request = decode_traces(&messages[0]);
    let span = &request.resource_spans[0].scope_spans[0].spans[0];
    let Some(any_value::Value::StringValue(s)) = &span.attributes[0].value.as_ref().unwrap().value
    else {
        panic!()
    };
    assert_eq!(s.len(), MAX_SPAN_VALUE_CHARS);
}

#[test]
fn startup_event_matches_the_sample_shape() {
    let record = events::startup_event(
        1_795_735_652_922_791_092,
        &StartupInfo {
            framework: "actix-web",
            versions: &[("rust".to_owned(), "1.89.0".to_owned())],
            config: &[("capture_logs".to_owned(), json!(true))],
            paths: &[crate::PathItem::new("GET", "/hello")],
            openapi: None,
        },
    );
    // [sample] v1-logs.json: timeUnixNano, observedTimeUnixNano, a string body, eventName;
    // no severity, no trace context, no flags.
    assert_eq!(
        event_json(record),
        json!({
            "timeUnixNano": "1795735652922791092",
            "observedTimeUnixNano": "1795735652922791092",
            "body": {"stringValue": "{\"framework\":\"actix-web\",\"versions\":{\"rust\":\"1.89.0\"},\"config\":{\"capture_logs\":true},\"paths\":[{\"method\":\"GET\",\"path\":\"/hello\"}]}"},
            "eventName": "apitally.app.startup",
        })
    );
}

#[test]
fn consumer_update_event_matches_appendix_a() {
    let record = events::consumer_update_event(
        1_795_735_652_922_791_092,
        &ConsumerUpdate {
            identifier: "customer-42",
            name: Some("Customer 42"),
            group: Some("Enterprise"),
            attributes: &[
                ("plan".to_owned(), Some("pro".to_owned())),
                ("old_key".to_owned(), None),
            ],
        },
    )
    .unwrap();
    assert_eq!(
        event_json(record),
        json!({
            "timeUnixNano": "1795735652922791092",
            "observedTimeUnixNano": "1795735652922791092",
            "eventName": "apitally.consumer.update",
            "body": {"kvlistValue": {"values": [
                {"key": "identifier", "value": {"stringValue": "customer-42"}},
                {"key": "name", "value": {"stringValue": "Customer 42"}},
                {"key": "group", "value": {"stringValue": "Enterprise"}},
                {"key": "attributes", "value": {"kvlistValue": {"values": [
                    {"key": "plan", "value": {"stringValue": "pro"}},
                    {"key": "old_key", "value": {}},
                ]}}},
            ]}},
        })
    );
}

#[test]
fn error_events_have_the_kvlist_bodies_of_4_5_and_4_6() {
    let counts = [(Some("customer-42".to_owned()), 3), (None, 1)];
    let counts_json = json!({"key": "counts", "value": {"arrayValue": {"values": [
        {"kvlistValue": {"values": [
            {"key": "consumer", "value": {"stringValue": "customer-42"}},
            {"key": "count", "value": {"intValue": "3"}},
        ]}},
        {"kvlistValue": {"values": [{"key": "count", "value": {"intValue": "1"}}]}},
    ]}}});
    let record = events::validation_error_event(
        2,
        &ValidationErrorGroup {
            method: "POST",
            path: "/items",
            source: "body",
            field: "tags.0",
            message: "value is not a valid string",
            error_type: "string_type",
            counts: &counts,
        },
    )
    .unwrap();
    let s = |v: &str| json!({ "stringValue": v });
    assert_eq!(
        event_json(record),
        json!({
            "timeUnixNano": "2",
            "observedTimeUnixNano": "2",
            "eventName": "apitally.request.validation_error",
            "body": {"kvlistValue": {"values": [
                {"key": "method", "value": s("POST")},
                {"key": "path", "value": s("/items")},
                {"key": "source", "value": s("body")},
                {"key": "field", "value": s("tags.0")},
                {"key": "message", "value": s("value is not a valid string")},
                {"key": "type", "value": s("string_type")},
                counts_json.clone(),
            ]}},
        })
    );
    let record = events::server_error_event(
        3,
        &ServerErrorGroup {
            method: "GET",
            path: "/items/{id}",
            error_type: "std::io::Error",
            message: "disk full",
            stacktrace: "0: app::save\n1: app::handler",
            counts: &counts,
        },
    )
    .unwrap();
    assert_eq!(
        event_json(record),
        json!({
            "timeUnixNano": "3",
            "observedTimeUnixNano": "3",
            "eventName": "apitally.request.server_error",
            "body": {"kvlistValue": {"values": [
                {"key": "method", "value": s("GET")},
                {"key": "path", "value": s("/items/{id}")},
                {"key": "type", "value": s("std::io::Error")},
                {"key": "message", "value": s("disk full")},
                {"key": "stacktrace", "value": s("0: app::save\n1: app::handler")},
                counts_json,
            ]}},
        })
    );
}

#[test]
fn application_logs_are_bounded_and_carry_trace_context() {
    let long = "é".repeat(3_000);
    let record = LogRecordData {
        scope: Scope::new("app::handlers", ""),
        time_unix_nano: 10,
        observed_time_unix_nano: 11,
        severity_number: 9,
        severity_text: "INFO".into(),
        body: Some(AttrValue::String(long.clone())),
        trace_id: Some([1; 16]),
        span_id: Some([2; 8]),
        flags: 1,
        event_name: None,
        attributes: vec![
            Attribute::new("apitally.request.server_span_id", "0202020202020202"),
            Attribute::new("extra", long.clone()),
            Attribute::new("nested", AttrValue::strings([long.clone()])),
        ],
    };
    let request = decode_logs(&encoder().encode_logs(&[record])[0].0);
    let scope_logs = &request.resource_logs[0].scope_logs[0];
    assert_eq!(scope_logs.scope.as_ref().unwrap().name, "app::handlers");
    let json = testing::log_record(&scope_logs.log_records[0]);
    let cut = "é".repeat(MAX_LOG_VALUE_CHARS);
    assert_eq!(json["body"], json!({ "stringValue": cut }));
    assert_eq!(
        json["attributes"][1]["value"],
        json!({ "stringValue": cut })
    );
    // py cuts top-level strings only.
    assert_eq!(
        json["attributes"][2]["value"]["arrayValue"]["values"][0]["stringValue"],
        json!(long)
    );
    assert_eq!(json["traceId"], "01010101010101010101010101010101");
    assert_eq!(json["spanId"], "0202020202020202");
    assert_eq!(
        (json["severityNumber"].clone(), json["flags"].clone()),
        (json!(9), json!(1))
    );
    assert_eq!(json["severityText"], "INFO");
    assert!(json.get("eventName").is_none());
    // Internal events are not cut.
    let startup = events::startup_event(
        0,
        &StartupInfo {
            framework: "actix-web",
            versions: &[],
            config: &[],
            paths: &[],
            openapi: Some(&long),
        },
    );
    let json = event_json(startup);
    assert!(json["body"]["stringValue"].as_str().unwrap().len() > 6_000);
}

fn response_size_window() -> RequestWindow {
    // The sample's point: 108 sizes in bucket 50 (77..82 B), 6,454 in bucket 51
    // (83..90 B), min 81, max 86, sum 560,326.
    let metrics = RequestMetrics::new(START);
    let record = |size: u64, times: usize| {
        for _ in 0..times {
            metrics.record(&RequestSample {
                method: "GET",
                route: "/items/{item_id}",
                status: 200,
                https: false,
                consumer: None,
                duration: Duration::from_micros(500),
                request_size: None,
                response_size: Some(size),
            });
        }
    };
    record(81, 1);
    record(82, 107);
    record(85, 3_573);
    record(86, 2_881);
    metrics.drain(END)
}

#[test]
fn histogram_point_matches_the_sample_plus_url_scheme() {
    let window = response_size_window();
    let gauges = ProcessGauges {
        uptime: 11.763_257_026_672_363,
        cpu_utilization: Some(0.4915),
        memory_usage: Some(60_542_976),
    };
    let mut messages = Vec::new();
    encoder().encode_metrics(&gauges, &window, |bytes, counted| {
        messages.push((bytes.to_vec(), counted));
    });
    assert_eq!(messages.len(), 2);
    // Gauges first, in their own message, start and time set (§10).
    let gauge_request = decode_metrics(&messages[0].0);
    let scope_metrics = &gauge_request.resource_metrics[0].scope_metrics[0];
    assert_eq!(scope_metrics.scope.as_ref().unwrap().name, "apitally");
    assert_eq!(scope_metrics.scope.as_ref().unwrap().version, "");
    let gauges_json: Vec<_> = scope_metrics.metrics.iter().map(testing::metric).collect();
    let point = |value: Value| {
        let mut p =
            json!({"startTimeUnixNano": START.to_string(), "timeUnixNano": END.to_string()});
        p.as_object_mut()
            .unwrap()
            .extend(value.as_object().unwrap().clone());
        json!({ "dataPoints": [p] })
    };
    assert_eq!(
        gauges_json,
        [
            json!({"name": "process.uptime", "unit": "s", "gauge": point(json!({"asDouble": 11.763257026672363}))}),
            json!({"name": "process.cpu.utilization", "unit": "1", "gauge": point(json!({"asDouble": 0.4915}))}),
            json!({"name": "process.memory.usage", "unit": "By", "gauge": point(json!({"asInt": "60542976"}))}),
        ]
    );
    // Then the histograms: no request sizes were known, so that metric is left out.
    let histograms = decode_metrics(&messages[1].0);
    let metrics = &histograms.resource_metrics[0].scope_metrics[0].metrics;
    let names: Vec<_> = metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "http.server.request.duration",
            "http.server.response.body.size"
        ]
    );
    let json = testing::metric(&metrics[1]);
    assert_eq!(json["unit"], "By");
    assert_eq!(
        json["exponentialHistogram"]["aggregationTemporality"],
        "AGGREGATION_TEMPORALITY_DELTA"
    );
    let mut expected: Value = serde_json::from_str(SAMPLE_SIZE_POINT).unwrap();
    expected["attributes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "url.scheme", "value": {"stringValue": "http"}}));
    assert_eq!(json["exponentialHistogram"]["dataPoints"][0], expected);
    assert_eq!(testing::metric(&metrics[0])["unit"], "s");
}

#[test]
fn metric_attributes_in_py_order_then_scheme_and_error_type() {
    let metrics = RequestMetrics::new(1);
    for (status, consumer, https) in [(503, Some("c1"), true), (200, None, false)] {
        metrics.record(&RequestSample {
            method: "POST",
            route: "/echo",
            status,
            https,
            consumer,
            duration: Duration::ZERO,
            request_size: Some(0),
            response_size: None,
        });
    }
    let window = metrics.drain(2);
    let gauges = ProcessGauges {
        uptime: 1.0,
        cpu_utilization: None,
        memory_usage: None,
    };
    let mut messages = Vec::new();
    encoder().encode_metrics(&gauges, &window, |bytes, counted| {
        messages.push((bytes.to_vec(), counted));
    });
    // Without CPU and memory readings, the uptime is still sent.
    let gauge_request = decode_metrics(&messages[0].0);
    assert_eq!(
        gauge_request.resource_metrics[0].scope_metrics[0]
            .metrics
            .len(),
        1
    );
    let request = decode_metrics(&messages[1].0);
    let duration = testing::metric(&request.resource_metrics[0].scope_metrics[0].metrics[0]);
    let points = &duration["exponentialHistogram"]["dataPoints"];
    let s = |v: &str| json!({ "stringValue": v });
    assert_eq!(
        points[0]["attributes"],
        json!([
            {"key": "http.request.method", "value": s("POST")},
            {"key": "http.route", "value": s("/echo")},
            {"key": "http.response.status_code", "value": {"intValue": "200"}},
            {"key": "url.scheme", "value": s("http")},
        ])
    );
    assert_eq!(
        points[1]["attributes"],
        json!([
            {"key": "http.request.method", "value": s("POST")},
            {"key": "http.route", "value": s("/echo")},
            {"key": "http.response.status_code", "value": {"intValue": "503"}},
            {"key": "apitally.consumer.identifier", "value": s("c1")},
            {"key": "url.scheme", "value": s("https")},
            {"key": "error.type", "value": s("503")},
        ])
    );
    // A zero duration: zero_count, no positive buckets.
    assert_eq!(points[0]["zeroCount"], "1");
    assert!(points[0].get("positive").is_none());
    assert_eq!(
        (points[0]["min"].clone(), points[0]["max"].clone()),
        (json!(0.0), json!(0.0))
    );
}

#[test]
fn histograms_go_in_slices_of_1000_combinations() {
    let metrics = RequestMetrics::new(1);
    let routes: Vec<String> = (0..2_500).map(|i| format!("/r{i}")).collect();
    for route in &routes {
        metrics.record(&RequestSample {
            method: "GET",
            route,
            status: 200,
            https: true,
            consumer: None,
            duration: Duration::from_millis(1),
            request_size: None,
            response_size: Some(1),
        });
    }
    let window = metrics.drain(2);
    let gauges = ProcessGauges {
        uptime: 1.0,
        cpu_utilization: Some(0.0),
        memory_usage: Some(1),
    };
    let requests = encoder().metrics_requests(&gauges, &window);
    assert_eq!(requests.len(), 4);
    let sizes: Vec<Vec<usize>> = requests[1..]
        .iter()
        .map(|r| {
            r.resource_metrics[0].scope_metrics[0]
                .metrics
                .iter()
                .map(|m| match &m.data {
                    Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
                    _ => 0,
                })
                .collect()
        })
        .collect();
    assert_eq!(
        sizes,
        [vec![1_000, 1_000], vec![1_000, 1_000], vec![500, 500]]
    );
    // Without traffic, only the gauges.
    let empty = RequestMetrics::new(2).drain(3);
    assert_eq!(encoder().metrics_requests(&gauges, &empty).len(), 1);
}

//! Shared by the tests: a small HTTP client and payloads shaped like the SDK's: hub v2, and the
//! same traffic as OTLP 1.x exports (`otlp_*`).

#![allow(dead_code)]

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::Engine as _;
use serde_json::{json, Value};

pub(crate) const APP: &str = "00000000-0000-4000-8000-000000000001/dev";
pub(crate) const INSTANCE: &str = "3cd8948c-b589-40a2-a33f-a4e604425c81";
/// The request log of a created item (has request and response bodies, logs and spans).
pub(crate) const CREATE_LOG: &str = "20b76fab-2878-4003-b13e-236f46e19fb7";
/// The request log of a 404 with hostile URL, header and body.
pub(crate) const HOSTILE_LOG: &str = "5f0c8e1a-9a43-4d0e-8d7e-0a3c6a1d2b11";
/// The request log of a failing request, with an exception.
pub(crate) const FAIL_LOG: &str = "0b6e4d52-7e0a-4c8e-9f43-2f1b5c7a8d90";
pub(crate) const SCRIPT: &str = "<script>alert(1)</script>";

/// A response: status and body.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: String,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&self.body));
        })
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// One HTTP/1.1 request to `base` (such as `http://127.0.0.1:1234`).
pub(crate) fn http(
    base: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> Response {
    http_with(base, method, path, &[("Content-Type", content_type)], body)
}

/// One HTTP/1.1 request with these headers.
pub(crate) fn http_with(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let addr = base.trim_start_matches("http://");
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(body).unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response");
    let headers = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = headers[9..12].parse().unwrap();
    assert!(
        !headers
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "this client reads only sized bodies"
    );
    Response {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

pub(crate) fn get(base: &str, path: &str) -> Response {
    http(base, "GET", path, "text/plain", b"")
}

/// Posts a JSON payload to `/v2/{app}/{endpoint}` and expects `202`.
pub(crate) fn post_json(base: &str, endpoint: &str, payload: &Value) {
    post_json_with(base, endpoint, payload, &[]);
}

/// [`post_json`] with more headers (such as `Apitally-Request-Logs`).
pub(crate) fn post_json_with(
    base: &str,
    endpoint: &str,
    payload: &Value,
    headers: &[(&str, &str)],
) {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    let res = http_with(
        base,
        "POST",
        &format!("/v2/{APP}/{endpoint}"),
        &all,
        payload.to_string().as_bytes(),
    );
    assert_eq!(
        res.status,
        202,
        "{endpoint}: {}",
        String::from_utf8_lossy(&res.body)
    );
}

/// Posts request-log lines as a gzip file, as the SDK uploads them, and expects `202`.
pub(crate) fn post_logs(base: &str, lines: &[Value]) {
    use flate2::{write::GzEncoder, Compression};
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    for line in lines {
        gz.write_all(line.to_string().as_bytes()).unwrap();
        gz.write_all(b"\n").unwrap();
    }
    let file = gz.finish().unwrap();
    let res = http(
        base,
        "POST",
        &format!("/v2/{APP}/log?uuid={}", uuid::Uuid::new_v4()),
        "application/gzip",
        &file,
    );
    assert_eq!(res.status, 202, "{}", String::from_utf8_lossy(&res.body));
}

pub(crate) fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

pub(crate) fn startup() -> Value {
    json!({
        "instance_uuid": INSTANCE,
        "message_uuid": uuid::Uuid::new_v4().to_string(),
        "paths": [
            {"method": "GET", "path": "/health"},
            {"method": "GET", "path": "/items"},
            {"method": "POST", "path": "/items"},
            {"method": "GET", "path": "/items/{item_id}"},
            {"method": "DELETE", "path": "/items/{item_id}"},
            {"method": "GET", "path": "/fail"}
        ],
        "versions": {"rust": "1.89.0", "actix-web": "4.11.0", "apitally": "0.1.0"},
        "client": "rust:actix"
    })
}

fn requests_item(
    consumer: Option<&str>,
    method: &str,
    path: &str,
    status: u16,
    times: Value,
) -> Value {
    let count: u64 = times
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    json!({
        "consumer": consumer, "method": method, "path": path, "status_code": status,
        "request_count": count, "request_size_sum": 0, "response_size_sum": 120 * count,
        "response_times": times, "request_sizes": {}, "response_sizes": {"0": count}
    })
}

fn sync(at: f64, requests: Vec<Value>, extra: Value) -> Value {
    let mut payload = json!({
        "timestamp": at,
        "instance_uuid": INSTANCE,
        "message_uuid": uuid::Uuid::new_v4().to_string(),
        "requests": requests,
        "validation_errors": [], "server_errors": [], "consumers": [],
        "resources": {"cpu_percent": 2.5, "memory_rss": 48_234_496}
    });
    for (k, v) in extra.as_object().unwrap() {
        payload[k] = v.clone();
    }
    payload
}

/// Three syncs, a minute apart, the last at `at`: 8, 35 and 2 requests. `GET /items/{item_id}`
/// gets 35 requests (31 of them 404s) in the 0, 10 and 120 ms bins.
pub(crate) fn syncs(at: f64) -> Vec<Value> {
    vec![
        sync(
            at - 120.0,
            vec![
                requests_item(None, "GET", "/items", 200, json!({"0": 5})),
                requests_item(
                    Some("acme"),
                    "GET",
                    "/items/{item_id}",
                    200,
                    json!({"0": 2, "10": 1}),
                ),
            ],
            json!({"consumers": [{"identifier": "acme", "name": "Acme Corp", "group": "Enterprise"}]}),
        ),
        sync(
            at - 60.0,
            vec![
                requests_item(None, "GET", "/items/{item_id}", 404, json!({"0": 31})),
                requests_item(Some("acme"), "POST", "/items", 201, json!({"10": 2})),
                requests_item(None, "POST", "/items", 422, json!({"0": 1})),
                requests_item(Some("mallory"), "GET", "/items", 200, json!({"0": 1})),
            ],
            json!({
                "validation_errors": [{"consumer": null, "method": "POST", "path": "/items",
                    "loc": ["body", "name"], "msg": "must not be blank", "type": "value_error",
                    "error_count": 1}],
                "consumers": [{"identifier": "mallory", "name": "<img src=x onerror=alert(2)>",
                    "group": null}]
            }),
        ),
        sync(
            at,
            vec![
                requests_item(None, "GET", "/items/{item_id}", 200, json!({"120": 1})),
                requests_item(None, "GET", "/fail", 500, json!({"0": 1})),
            ],
            json!({
                "server_errors": [{"consumer": null, "method": "GET", "path": "/fail",
                    "type": "DatabaseDown", "msg": "the database is not reachable",
                    "traceback": format!("   0: example_server::fail\n             at ./src/lib.rs:200:5\n   1: {SCRIPT}"),
                    "sentry_event_id": null, "error_count": 1}]
            }),
        ),
    ]
}

/// Request-log lines as the SDK writes them (§9.7), oldest first.
pub(crate) fn log_lines(at: f64) -> Vec<Value> {
    vec![
        json!({
            "uuid": CREATE_LOG,
            "request": {
                "timestamp": at - 3.0, "method": "POST", "path": "/items",
                "url": "http://127.0.0.1:8000/items",
                "headers": [["content-type", "application/json"], ["x-api-key", "******"]],
                "size": 36, "consumer": "acme",
                "body": b64(r#"{"name":"Widget","price_cents":1999}"#)
            },
            "response": {
                "status_code": 201, "response_time": 0.0123,
                "headers": [["content-type", "application/json"]], "size": 46,
                "body": b64(r#"{"id":1,"name":"Widget","price_cents":1999}"#)
            },
            "logs": [{"timestamp": at - 2.99, "logger": "example_server", "level": "INFO",
                "message": "creating item 1 name=Widget", "file": "src/lib.rs", "line": 140}],
            "spans": [
                {"span_id": "088da258bb30717c", "parent_span_id": null, "name": "POST /items",
                    "kind": "INTERNAL", "start_time": ((at - 3.0) * 1e9) as u64,
                    "end_time": ((at - 3.0 + 0.0123) * 1e9) as u64},
                {"span_id": "1f22f83258192619", "parent_span_id": "088da258bb30717c",
                    "name": "store.insert", "kind": "INTERNAL",
                    "start_time": ((at - 3.0 + 0.002) * 1e9) as u64,
                    "end_time": ((at - 3.0 + 0.009) * 1e9) as u64,
                    "attributes": {"item.name": "Widget"}}
            ],
            "trace_id": "a05fa684ea768afbdd6cbf511932aeb2"
        }),
        json!({
            "uuid": HOSTILE_LOG,
            "request": {
                "timestamp": at - 2.0, "method": "GET", "path": "/items/{item_id}",
                "url": format!("http://127.0.0.1:8000/items/42?q={SCRIPT}"),
                "headers": [["x-evil", "<img src=x onerror=alert(3)>"]]
            },
            "response": {
                "status_code": 404, "response_time": 0.0004,
                "headers": [["content-type", "text/html"]],
                "body": b64(&format!("<html><body>{SCRIPT}</body></html>"))
            }
        }),
        json!({
            "uuid": FAIL_LOG,
            "request": {"timestamp": at - 1.0, "method": "GET", "path": "/fail",
                "url": "http://127.0.0.1:8000/fail"},
            "response": {"status_code": 500, "response_time": 0.0021},
            "exception": {"type": "DatabaseDown", "message": "the database is not reachable",
                "traceback": "   0: example_server::fail"}
        }),
    ]
}

// ---- OTLP 1.x -------------------------------------------------------------------------------

/// The write token of the 1.x app.
pub(crate) const TOKEN: &str = "apt_000000000000000000000000";
/// How the hub names the 1.x app: the token's first 8 characters and the env.
pub(crate) const OTLP_APP: &str = "apt_0000…/dev";
pub(crate) const OTLP_INSTANCE: &str = "7d3b6f1e-3c52-4a8e-9a53-0f6f2b1c9e11";
/// SERVER span ids: the request logs of a created item, a hostile 404 and a failure.
pub(crate) const OTLP_CREATE_LOG: &str = "088da258bb30717c";
pub(crate) const OTLP_HOSTILE_LOG: &str = "5f0c8e1a9a434d0e";
pub(crate) const OTLP_FAIL_LOG: &str = "0b6e4d527e0a4c8e";
pub(crate) const OTLP_TRACE: &str = "a05fa684ea768afbdd6cbf511932aeb2";
/// The child span of the created item's request.
pub(crate) const OTLP_CHILD_SPAN: &str = "1f22f83258192619";

pub(crate) use apitally_test_hub::{otlp, OtlpExport};

/// Posts a body to `/v1/{signal}` as the SDK does and returns the answer.
pub(crate) fn post_otlp_body(base: &str, signal: &str, token: &str, body: &[u8]) -> Response {
    post_otlp_body_with(base, signal, token, body, &[])
}

/// [`post_otlp_body`] with more headers (such as `Apitally-Request-Logs`).
pub(crate) fn post_otlp_body_with(
    base: &str,
    signal: &str,
    token: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Response {
    let auth = format!("Bearer {token}");
    let mut all = vec![
        ("Authorization", auth.as_str()),
        ("Apitally-Env", "dev"),
        ("Content-Type", "application/x-protobuf"),
        ("Content-Encoding", "gzip"),
        ("User-Agent", "apitally-rs/0.1.0"),
    ];
    all.extend_from_slice(headers);
    http_with(base, "POST", &format!("/v1/{signal}"), &all, body)
}

/// Posts an export as the SDK does and expects `200`.
pub(crate) fn post_otlp(base: &str, export: &OtlpExport) {
    let res = post_otlp_body(base, export.signal(), TOKEN, &export.to_gzip());
    assert_eq!(
        res.status,
        200,
        "{}: {}",
        export.signal(),
        String::from_utf8_lossy(&res.body)
    );
}

/// A JSON object's entries as OTLP key-values: strings, integers, doubles, booleans, arrays
/// and objects as their `AnyValue`s, `null` as an empty one.
pub(crate) fn attrs(object: Value) -> Value {
    fn any(v: &Value) -> Value {
        match v {
            Value::String(s) => json!({"stringValue": s}),
            Value::Bool(b) => json!({"boolValue": b}),
            Value::Number(n) if n.is_i64() || n.is_u64() => json!({"intValue": n.to_string()}),
            Value::Number(n) => json!({"doubleValue": n}),
            Value::Array(a) => {
                json!({"arrayValue": {"values": a.iter().map(any).collect::<Vec<_>>()}})
            }
            Value::Object(_) => json!({"kvlistValue": {"values": attrs(v.clone())}}),
            Value::Null => json!({}),
        }
    }
    Value::Array(
        object
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| json!({"key": k, "value": any(v)}))
            .collect(),
    )
}

fn resource() -> Value {
    json!({"attributes": attrs(json!({
        "service.name": "unknown_service",
        "service.instance.id": OTLP_INSTANCE,
        "deployment.environment.name": "dev",
        "telemetry.distro.name": "apitally-rs",
        "telemetry.distro.version": "0.1.0",
    }))})
}

fn nanos(seconds: f64) -> String {
    ((seconds * 1e9) as u64).to_string()
}

/// The startup event of the 1.x app: the same routes as [`startup`].
pub(crate) fn otlp_startup(at: f64) -> OtlpExport {
    let body = json!({
        "framework": "actix-web",
        "versions": {"rust": "1.89.0", "actix-web": "4.11.0"},
        "config": {"capture_logs": true},
        "paths": startup()["paths"],
    });
    OtlpExport::from_otlp_json(
        "logs",
        &json!({"resourceLogs": [{"resource": resource(), "scopeLogs": [{"scope": {"name": "apitally"},
            "logRecords": [{"timeUnixNano": nanos(at), "observedTimeUnixNano": nanos(at),
                "eventName": "apitally.app.startup", "body": {"stringValue": body.to_string()}}]}]}]}),
    )
    .unwrap()
}

/// One `http.server.request.duration` point (and a response-size point of 120 bytes per
/// request) for these durations in seconds, bucketed at scale 3 as the SDK does.
fn request_points(
    method: &str,
    route: &str,
    status: u16,
    consumer: Option<&str>,
    durations: &[f64],
    at: f64,
) -> (Value, Value) {
    let mut a = json!({"http.request.method": method, "http.route": route,
        "http.response.status_code": status, "url.scheme": "http"});
    if let Some(c) = consumer {
        a["apitally.consumer.identifier"] = json!(c);
    }
    let indices: Vec<i32> = durations
        .iter()
        .map(|d| otlp::exponential_bucket_index(*d, 3))
        .collect();
    let (low, high) = (
        *indices.iter().min().unwrap(),
        *indices.iter().max().unwrap(),
    );
    let mut counts = vec![0u64; (high - low + 1) as usize];
    for i in indices {
        counts[(i - low) as usize] += 1;
    }
    let n = durations.len();
    let point = |sum: f64, offset: i32, counts: Vec<u64>, min: f64, max: f64| {
        json!({"attributes": attrs(a.clone()), "startTimeUnixNano": nanos(at - 60.0),
            "timeUnixNano": nanos(at), "count": n.to_string(), "sum": sum, "scale": 3,
            "zeroCount": "0", "min": min, "max": max,
            "positive": {"offset": offset,
                "bucketCounts": counts.iter().map(u64::to_string).collect::<Vec<_>>()}})
    };
    let duration = point(
        durations.iter().sum(),
        low,
        counts,
        durations.iter().copied().fold(f64::MAX, f64::min),
        durations.iter().copied().fold(0.0, f64::max),
    );
    let size = point(
        120.0 * n as f64,
        otlp::exponential_bucket_index(120.0, 3),
        vec![n as u64],
        120.0,
        120.0,
    );
    (duration, size)
}

/// One collection: the process gauges and the request histograms, as the SDK appends them.
/// Method, route, status, consumer and the requests' durations in seconds.
type Requests<'a> = (&'a str, &'a str, u16, Option<&'a str>, Vec<f64>);

fn otlp_collection(at: f64, requests: &[Requests<'_>]) -> OtlpExport {
    let (durations, sizes): (Vec<Value>, Vec<Value>) = requests
        .iter()
        .map(|(m, r, s, c, d)| request_points(m, r, *s, *c, d, at))
        .unzip();
    let gauge = |name: &str, unit: &str, value: Value| {
        let mut point = json!({"timeUnixNano": nanos(at), "startTimeUnixNano": nanos(at - 60.0)});
        for (k, v) in value.as_object().unwrap() {
            point[k] = v.clone();
        }
        json!({"name": name, "unit": unit, "gauge": {"dataPoints": [point]}})
    };
    let histogram = |name: &str, unit: &str, points: Vec<Value>| {
        json!({"name": name, "unit": unit, "exponentialHistogram": {
            "aggregationTemporality": "AGGREGATION_TEMPORALITY_DELTA", "dataPoints": points}})
    };
    OtlpExport::from_otlp_json(
        "metrics",
        &json!({"resourceMetrics": [
            {"resource": resource(), "scopeMetrics": [{"scope": {"name": "apitally"}, "metrics": [
                gauge("process.uptime", "s", json!({"asDouble": 12.5})),
                gauge("process.cpu.utilization", "1", json!({"asDouble": 0.025})),
                gauge("process.memory.usage", "By", json!({"asInt": "48234496"})),
            ]}]},
            {"resource": resource(), "scopeMetrics": [{"scope": {"name": "apitally"}, "metrics": [
                histogram("http.server.request.duration", "s", durations),
                histogram("http.server.response.body.size", "By", sizes),
            ]}]}
        ]}),
    )
    .unwrap()
}

/// The traffic of [`syncs`] as three collections a minute apart, the last at `at`: 8, 35 and
/// 2 requests; `GET /items/{item_id}` gets 35 (31 of them 404s).
pub(crate) fn otlp_collections(at: f64) -> Vec<OtlpExport> {
    vec![
        otlp_collection(
            at - 120.0,
            &[
                ("GET", "/items", 200, None, vec![0.002; 5]),
                (
                    "GET",
                    "/items/{item_id}",
                    200,
                    Some("acme"),
                    vec![0.003, 0.004, 0.015],
                ),
            ],
        ),
        otlp_collection(
            at - 60.0,
            &[
                ("GET", "/items/{item_id}", 404, None, vec![0.001; 31]),
                ("POST", "/items", 201, Some("acme"), vec![0.012; 2]),
                ("POST", "/items", 422, None, vec![0.002]),
                ("GET", "/items", 200, Some("mallory"), vec![0.002]),
            ],
        ),
        otlp_collection(
            at,
            &[
                ("GET", "/items/{item_id}", 200, None, vec![0.125]),
                ("GET", "/fail", 500, None, vec![0.002]),
            ],
        ),
    ]
}

/// The request logs of [`log_lines`] as spans: three SERVER spans and a child span.
pub(crate) fn otlp_traces(at: f64) -> OtlpExport {
    let server = |id: &str, trace: &str, start: f64, ms: f64, attributes: Value| {
        json!({"traceId": trace, "spanId": id, "name": format!("{} {}",
                attributes["http.request.method"].as_str().unwrap(),
                attributes["http.route"].as_str().unwrap()),
            "kind": "SPAN_KIND_SERVER", "startTimeUnixNano": nanos(start),
            "endTimeUnixNano": nanos(start + ms / 1000.0), "flags": 257, "status": {},
            "attributes": attrs(attributes)})
    };
    let create = server(
        OTLP_CREATE_LOG,
        OTLP_TRACE,
        at - 3.0,
        12.3,
        json!({
            "http.request.method": "POST", "url.scheme": "http", "url.path": "/items",
            "server.address": "127.0.0.1", "server.port": 8000, "client.address": "127.0.0.1",
            "http.response.status_code": 201, "http.route": "/items",
            "http.request.body.size": 36, "http.response.body.size": 46,
            "apitally.consumer.identifier": "acme",
            "http.request.header.content-type": ["application/json"],
            "http.request.header.x-api-key": ["[REDACTED]"],
            "http.response.header.content-type": ["application/json"],
            "apitally.request.body": r#"{"name":"Widget","price_cents":1999}"#,
            "apitally.response.body": r#"{"id":1,"name":"Widget","price_cents":1999}"#,
        }),
    );
    let hostile = server(
        OTLP_HOSTILE_LOG,
        "b15fa684ea768afbdd6cbf511932aeb2",
        at - 2.0,
        0.4,
        json!({
            "http.request.method": "GET", "url.scheme": "http", "url.path": "/items/42",
            "url.query": format!("q={SCRIPT}"), "server.address": "127.0.0.1", "server.port": 8000,
            "http.response.status_code": 404, "http.route": "/items/{item_id}",
            "http.request.header.x-evil": ["<img src=x onerror=alert(3)>"],
            "http.response.header.content-type": ["text/html"],
            "apitally.response.body": format!("<html><body>{SCRIPT}</body></html>"),
        }),
    );
    let mut fail = server(
        OTLP_FAIL_LOG,
        "c25fa684ea768afbdd6cbf511932aeb2",
        at - 1.0,
        2.1,
        json!({
            "http.request.method": "GET", "url.scheme": "http", "url.path": "/fail",
            "server.address": "127.0.0.1", "server.port": 8000,
            "http.response.status_code": 500, "http.route": "/fail",
        }),
    );
    fail["status"] = json!({"code": "STATUS_CODE_ERROR"});
    fail["events"] = json!([{"name": "exception", "timeUnixNano": nanos(at - 0.999),
        "attributes": attrs(json!({"exception.type": "DatabaseDown",
            "exception.message": "the database is not reachable",
            "exception.stacktrace": "   0: example_server::fail"}))}]);
    let child = json!({"traceId": OTLP_TRACE, "spanId": OTLP_CHILD_SPAN,
        "parentSpanId": OTLP_CREATE_LOG, "name": "store.insert", "kind": "SPAN_KIND_INTERNAL",
        "startTimeUnixNano": nanos(at - 3.0 + 0.002), "endTimeUnixNano": nanos(at - 3.0 + 0.009),
        "flags": 257, "status": {}, "attributes": attrs(json!({"item.name": "Widget"}))});
    OtlpExport::from_otlp_json(
        "traces",
        &json!({"resourceSpans": [{"resource": resource(), "scopeSpans": [
            {"scope": {"name": "apitally"}, "spans": [child]},
            {"scope": {"name": "apitally-actix", "version": "0.1.0"},
                "spans": [create, hostile, fail]}]}]}),
    )
    .unwrap()
}

/// The app's events and request logs of the cycle: an application log record of the created
/// item's request, consumer updates, a validation error and a server error.
pub(crate) fn otlp_logs(at: f64) -> OtlpExport {
    let event = |name: &str, body: Value| {
        json!({"timeUnixNano": nanos(at), "observedTimeUnixNano": nanos(at), "eventName": name,
            "body": {"kvlistValue": {"values": attrs(body)}}})
    };
    let app_log = json!({"timeUnixNano": nanos(at - 2.99), "observedTimeUnixNano": nanos(at - 2.99),
        "severityNumber": "SEVERITY_NUMBER_INFO", "severityText": "INFO",
        "body": {"stringValue": "creating item 1 name=Widget"},
        "traceId": OTLP_TRACE, "spanId": OTLP_CHILD_SPAN, "flags": 1,
        "attributes": attrs(json!({"apitally.request.server_span_id": OTLP_CREATE_LOG,
            "code.file.path": "src/lib.rs", "code.line.number": 140,
            "code.function.name": "create_item"}))});
    OtlpExport::from_otlp_json(
        "logs",
        &json!({"resourceLogs": [{"resource": resource(), "scopeLogs": [
            {"scope": {"name": "example_server"}, "logRecords": [app_log]},
            {"scope": {"name": "apitally"}, "logRecords": [
                event("apitally.consumer.update",
                    json!({"identifier": "acme", "name": "Acme Corp", "group": "Enterprise"})),
                event("apitally.consumer.update",
                    json!({"identifier": "mallory", "name": "<img src=x onerror=alert(2)>"})),
                event("apitally.request.validation_error", json!({"method": "POST",
                    "path": "/items", "source": "body", "field": "name",
                    "message": "must not be blank", "type": "value_error",
                    "counts": [{"count": 1}]})),
                event("apitally.request.server_error", json!({"method": "GET", "path": "/fail",
                    "type": "DatabaseDown", "message": "the database is not reachable",
                    "stacktrace": format!("   0: example_server::fail\n             at ./src/lib.rs:200:5\n   1: {SCRIPT}"),
                    "counts": [{"count": 1}]})),
            ]}]}]}),
    )
    .unwrap()
}

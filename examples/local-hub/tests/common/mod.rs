//! Shared by the tests: a small HTTP client and payloads shaped like the SDK's (hub v2).

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
    let addr = base.trim_start_matches("http://");
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
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
    let res = http(
        base,
        "POST",
        &format!("/v2/{APP}/{endpoint}"),
        "application/json",
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

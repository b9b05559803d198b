//! The hub's 1.x endpoints over HTTP: checks, scripted replies, de-duplication and the helpers.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use apitally_test_hub::{otlp, OtlpExport, OtlpRequestCount, Reply, TestHub};
use serde_json::{json, Value};

const TOKEN: &str = "apt_0123456789abcdefABCDEF01";

struct Response {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// One HTTP/1.1 POST with these headers.
fn post(hub: &TestHub, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let addr = hub.url().trim_start_matches("http://").to_owned();
    let mut conn = TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(body).unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    Response {
        status: head[9..12].parse().unwrap(),
        head,
        body: raw[split + 4..].to_vec(),
    }
}

fn sdk_headers(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Authorization", format!("Bearer {token}")),
        ("Apitally-Env", "dev".into()),
        ("Content-Type", "application/x-protobuf".into()),
        ("Content-Encoding", "gzip".into()),
        ("User-Agent", "apitally-rs/0.1.0".into()),
    ]
}

/// Posts an export the way the SDK does.
fn export(hub: &TestHub, e: &OtlpExport) -> Response {
    export_body(hub, e.signal(), &e.to_gzip())
}

fn export_body(hub: &TestHub, signal: &str, body: &[u8]) -> Response {
    let headers = sdk_headers(TOKEN);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    post(hub, &format!("/v1/{signal}"), &headers, body)
}

/// A metrics export of one request-duration point (and its two size points), in OTLP/JSON.
fn metrics(
    method: &str,
    route: &str,
    status: u16,
    consumer: Option<&str>,
    count: u64,
) -> OtlpExport {
    let mut attributes = vec![
        json!({"key": "http.request.method", "value": {"stringValue": method}}),
        json!({"key": "http.route", "value": {"stringValue": route}}),
        json!({"key": "http.response.status_code", "value": {"intValue": status.to_string()}}),
    ];
    if let Some(c) = consumer {
        attributes
            .push(json!({"key": "apitally.consumer.identifier", "value": {"stringValue": c}}));
    }
    let point = |sum: f64, offset: i32| {
        json!({"attributes": attributes, "startTimeUnixNano": "1", "timeUnixNano": "2",
               "count": count.to_string(), "sum": sum, "scale": 3,
               "positive": {"offset": offset, "bucketCounts": [count.to_string()]}})
    };
    let histogram = |name: &str, unit: &str, sum: f64, offset: i32| {
        json!({"name": name, "unit": unit, "exponentialHistogram": {
            "aggregationTemporality": "AGGREGATION_TEMPORALITY_DELTA",
            "dataPoints": [point(sum, offset)]}})
    };
    OtlpExport::from_otlp_json(
        "metrics",
        &json!({"resourceMetrics": [{"scopeMetrics": [{"scope": {"name": "apitally"}, "metrics": [
            histogram("http.server.request.duration", "s", 0.01 * count as f64, -54),
            histogram("http.server.request.body.size", "By", 10.0 * count as f64, 26),
            histogram("http.server.response.body.size", "By", 100.0 * count as f64, 53),
        ]}]}]}),
    )
    .unwrap()
}

#[test]
fn the_samples_are_accepted_and_read_back() {
    let hub = TestHub::start();
    for e in [
        otlp::sample::logs(),
        otlp::sample::traces(),
        otlp::sample::metrics(),
    ] {
        let res = export(&hub, &e);
        assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
        assert_eq!(res.header("content-type"), Some("application/x-protobuf"));
        assert!(res.body.is_empty(), "an empty Export*ServiceResponse");
    }
    assert!(hub.otlp_problems().is_empty());

    let received = hub.received_at("traces");
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert!(r.is_otlp() && r.accepted());
    assert_eq!((r.env.as_str(), r.client_id.as_str()), ("dev", ""));
    assert_eq!(r.header("user-agent"), Some("apitally-rs/0.1.0"));
    assert_eq!(r.otlp.as_ref(), Some(&otlp::sample::traces()));

    let spans = hub.otlp_spans();
    assert_eq!(spans.len(), 6);
    assert!(spans.iter().all(|s| s.is_server()));
    assert_eq!(spans[2].name, "GET /items/{item_id}");
    assert_eq!(spans[2].str("url.path"), Some("/items/98717"));

    let startup = hub.otlp_events("apitally.app.startup");
    assert_eq!(startup.len(), 1);
    assert_eq!(
        startup[0].body_json.as_ref().unwrap()["versions"]["litestar"],
        "2.25.0"
    );
    assert_eq!(hub.otlp_log_records().len(), 1);

    assert_eq!(hub.otlp_gauges().len(), 3);
    assert_eq!(hub.otlp_histograms().len(), 7);
    let counts = hub.otlp_request_counts();
    let get_item = counts
        .iter()
        .find(|c| c.route == "/items/{item_id}")
        .unwrap();
    assert_eq!(
        (get_item.method.as_str(), get_item.status, get_item.count),
        ("GET", 200, 6562)
    );
    assert_eq!(
        (get_item.request_size_sum, get_item.response_size_sum),
        (0, 560_326)
    );
    assert!((get_item.duration_sum_s - 1.637_319_639).abs() < 1e-6);
    let echo = counts.iter().find(|c| c.route == "/echo").unwrap();
    assert_eq!(
        (echo.request_size_sum, echo.response_size_sum),
        (570_894, 570_894)
    );
    assert_eq!(hub.otlp_request_count(None), 6562 + 6562 + 6560);
    assert_eq!(hub.otlp_request_count(Some("/hello")), 6560);
}

#[test]
fn counts_are_summed_per_consumer_and_a_resent_body_counts_once() {
    let hub = TestHub::start();
    let first = metrics("GET", "/items", 200, Some("acme"), 3);
    assert_eq!(export(&hub, &first).status, 200);
    // The SDK re-sends the same file after a timeout: byte-identical, counted once.
    assert_eq!(export(&hub, &first).status, 200);
    assert_eq!(
        export(&hub, &metrics("GET", "/items", 200, Some("acme"), 2)).status,
        200
    );
    assert_eq!(
        export(&hub, &metrics("GET", "/items", 200, None, 1)).status,
        200
    );
    assert_eq!(
        export(&hub, &metrics("GET", "/items", 404, None, 4)).status,
        200
    );

    assert_eq!(hub.received_at("metrics").len(), 5);
    assert_eq!(hub.accepted_otlp("metrics").len(), 4);
    let count = |consumer: Option<&str>, status, count, requests: u64| OtlpRequestCount {
        consumer: consumer.map(Into::into),
        method: "GET".into(),
        route: "/items".into(),
        status,
        count,
        duration_sum_s: 0.01 * count as f64,
        request_size_sum: 10 * requests,
        response_size_sum: 100 * requests,
    };
    let counts = hub.otlp_request_counts();
    assert_eq!(counts.len(), 3);
    assert_eq!(counts[0], count(None, 200, 1, 1));
    assert_eq!(counts[1].consumer.as_deref(), Some("acme"));
    assert_eq!((counts[1].count, counts[1].request_size_sum), (5, 50));
    assert_eq!(counts[2], count(None, 404, 4, 4));
    assert_eq!(hub.otlp_request_count(Some("/items")), 10);
}

#[test]
fn what_the_server_needs_is_checked() {
    let hub = TestHub::start();
    // Scripted replies are for exports that pass the checks: a bad one does not use them up.
    hub.script("traces", [Reply::Status(503)]);
    let body = otlp::sample::traces().to_gzip();
    let good = sdk_headers(TOKEN);
    /// What is wrong, the headers, the body, and a phrase of the problem.
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, Vec<u8>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "short token",
            sdk_headers("apt_0123"),
            body.clone(),
            "write token",
        ),
        (
            "no token",
            good[1..].to_vec(),
            body.clone(),
            "`Authorization` is missing",
        ),
        (
            "no env",
            [&good[..1], &good[2..]].concat(),
            body.clone(),
            "Apitally-Env",
        ),
        (
            "JSON",
            good.iter()
                .map(|(n, v)| {
                    (
                        *n,
                        if *n == "Content-Type" {
                            "application/json".into()
                        } else {
                            v.clone()
                        },
                    )
                })
                .collect(),
            body.clone(),
            "Content-Type",
        ),
        (
            "no encoding",
            good[..3].to_vec(),
            body.clone(),
            "Content-Encoding",
        ),
        (
            "corrupt gzip",
            good.clone(),
            body[..body.len() / 2].to_vec(),
            "not gzip",
        ),
        (
            "not protobuf",
            good.clone(),
            otlp::gzip(b"\xff\xff\xff\xff"),
            "not an OTLP traces export",
        ),
    ];
    for (what, headers, body, problem) in &cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let res = post(&hub, "/v1/traces", &headers, body);
        assert_eq!(res.status, 400, "{what}");
        let detail: Value = serde_json::from_slice(&res.body).unwrap();
        let all = detail["detail"].to_string();
        assert!(all.contains(problem), "{what}: {all}");
    }
    let received = hub.received_at("traces");
    assert_eq!(received.len(), cases.len());
    assert!(received
        .iter()
        .all(|r| r.status == 400 && r.otlp.is_none() && !r.problems.is_empty()));
    assert_eq!(hub.otlp_problems().len(), cases.len());
    assert!(hub.otlp_problems()[0].starts_with("traces: the write token"));
    assert!(hub.otlp_spans().is_empty());

    // The script is still there for the first good export.
    assert_eq!(export(&hub, &otlp::sample::traces()).status, 503);
    assert_eq!(export(&hub, &otlp::sample::traces()).status, 200);
    assert_eq!(hub.otlp_spans().len(), 6);
    // Only the three signals.
    assert_eq!(export_body(&hub, "profiles", &body).status, 404);
}

#[test]
fn scripted_replies_are_honoured() {
    let hub = TestHub::start();
    hub.script(
        "metrics",
        [
            Reply::WithHeaders(200, vec![("Apitally-Export-Interval".into(), "30".into())]),
            Reply::Status(408),
            Reply::Status(429),
            Reply::Status(503),
            Reply::WithHeaders(500, vec![("Apitally-Export-Interval".into(), "5".into())]),
            Reply::Status(413),
            Reply::Delay(Duration::from_millis(50), 202),
        ],
    );
    let answers: Vec<(u16, Option<String>)> = (0..8)
        .map(|i| {
            let res = export(&hub, &metrics("GET", "/a", 200, None, i + 1));
            (
                res.status,
                res.header("apitally-export-interval").map(Into::into),
            )
        })
        .collect();
    assert_eq!(
        answers,
        [
            (200, Some("30".into())),
            (408, None),
            (429, None),
            (503, None),
            (500, Some("5".into())),
            (413, None),
            (202, None),
            (200, None),
        ]
    );
    // Only the 2xx answers count: 1 + 7 + 8 requests.
    assert_eq!(hub.accepted_otlp("metrics").len(), 3);
    assert_eq!(hub.otlp_request_count(None), 16);
    assert!(
        hub.otlp_problems().is_empty(),
        "a scripted status is not a problem"
    );

    hub.set_default("logs", Reply::Status(401));
    assert_eq!(export(&hub, &otlp::sample::logs()).status, 401);
    assert!(hub.otlp_log_records().is_empty());
    // Scripts are per signal.
    assert_eq!(export(&hub, &otlp::sample::traces()).status, 200);
}

#[test]
fn both_protocols_on_one_server() {
    let hub = TestHub::start();
    let v2 = post(
        &hub,
        "/v2/00000000-0000-4000-8000-000000000000/dev/startup",
        &[("Content-Type", "application/json")],
        br#"{"paths": []}"#,
    );
    assert_eq!(v2.status, 202);
    assert_eq!(export(&hub, &otlp::sample::logs()).status, 200);
    let received = hub.received();
    assert_eq!(received.len(), 2);
    assert!(!received[0].is_otlp() && received[0].json.is_some());
    assert!(received[1].is_otlp());
}

#[test]
fn a_tallying_hub_counts_metrics_exports_once() {
    let hub = TestHub::start_tallying();
    let e = metrics("POST", "/items", 201, None, 7);
    for _ in 0..3 {
        assert_eq!(export(&hub, &e).status, 200);
    }
    assert_eq!(
        export(&hub, &metrics("POST", "/items", 201, None, 2)).status,
        200
    );
    assert_eq!(hub.tallied("/items"), 9);
    assert!(hub.received().is_empty(), "nothing kept");
}

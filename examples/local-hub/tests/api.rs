//! `GET /api/dashboard`, the page's data, tested like any API: shape, aggregation, change
//! detection, limits, and the data kept as data.

mod common;

use common::*;
use local_hub::LocalHub;
use serde_json::{json, Value};

fn dashboard(base: &str) -> Value {
    let res = get(base, "/api/dashboard");
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("application/json"));
    res.json()
}

fn endpoint<'a>(app: &'a Value, method: &str, route: &str) -> &'a Value {
    app["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["method"] == method && e["route"] == route)
        .unwrap_or_else(|| panic!("no {method} {route} in {:#}", app["endpoints"]))
}

#[test]
fn empty_then_startup_lists_endpoints_before_traffic() {
    let hub = LocalHub::start("127.0.0.1:0").unwrap();
    let d = dashboard(hub.url());
    assert_eq!(d["version"], 1);
    assert_eq!(d["apps"], json!([]));
    assert_eq!(d["limits"], json!({"request_logs": 200, "minutes": 120}));
    assert!(d["started_at"].as_f64().unwrap() <= d["now"].as_f64().unwrap());

    post_json(hub.url(), "startup", &startup());
    let d = dashboard(hub.url());
    let app = &d["apps"][0];
    assert_eq!(app["app"], APP);
    assert_eq!(app["client"], "rust:actix");
    assert_eq!(app["versions"]["actix-web"], "4.11.0");
    assert_eq!(app["instances"], json!([INSTANCE]));
    let routes: Vec<String> = app["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["method"].as_str().unwrap(),
                e["route"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        routes,
        [
            "GET /fail",
            "GET /health",
            "GET /items",
            "POST /items",
            "GET /items/{item_id}",
            "DELETE /items/{item_id}"
        ],
        "by route, then method"
    );
    let get_item = endpoint(app, "GET", "/items/{item_id}");
    assert_eq!(get_item["declared"], true);
    assert_eq!(get_item["requests"], 0);
    assert_eq!(get_item["p50"], Value::Null);
    assert_eq!(get_item["response_times"], json!([]));
    // One minute per minute since the hub started, all empty.
    assert!(app["minutes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["requests"] == 0));
    assert_eq!(app["received"][0]["kind"], "startup");
    assert_eq!(app["received"][0]["protocol"], "hub v2");
}

#[test]
fn traffic_is_aggregated_per_endpoint_minute_and_consumer() {
    let hub = LocalHub::start("127.0.0.1:0").unwrap();
    post_json(hub.url(), "startup", &startup());
    let at = now();
    let syncs = syncs(at);
    for s in &syncs {
        post_json(hub.url(), "sync", s);
    }
    // The SDK re-sends a payload whose answer it missed: counted once.
    post_json(hub.url(), "sync", &syncs[1]);

    let d = dashboard(hub.url());
    let app = &d["apps"][0];
    assert_eq!(
        (app["batches"].as_u64(), app["duplicates"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(app["totals"]["requests"], 45);
    assert_eq!(app["totals"]["client_errors"], 32);
    assert_eq!(app["totals"]["server_errors"], 1);
    assert_eq!(
        app["totals"]["status_codes"][0],
        json!({"code": 404, "count": 31})
    );
    assert_eq!(
        app["totals"]["p50"],
        json!({"lower_ms": 0.0, "upper_ms": 10.0})
    );
    assert_eq!(app["resources"]["memory_bytes"], 48_234_496);

    // Per minute, by each sync's timestamp.
    let busy: Vec<(i64, u64)> = app["minutes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["requests"].as_u64().unwrap() > 0)
        .map(|m| {
            (
                m["start"].as_i64().unwrap(),
                m["requests"].as_u64().unwrap(),
            )
        })
        .collect();
    let minute = |t: f64| (t / 60.0).floor() as i64 * 60;
    assert_eq!(
        busy,
        [
            (minute(at - 120.0), 8),
            (minute(at - 60.0), 35),
            (minute(at), 2)
        ]
    );
    let last = app["minutes"].as_array().unwrap().last().unwrap();
    assert_eq!(
        last["start"].as_i64(),
        Some(minute(d["now"].as_f64().unwrap()))
    );
    let m404 = app["minutes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["requests"] == 35)
        .unwrap();
    assert_eq!(
        (
            m404["client_errors"].as_u64(),
            m404["server_errors"].as_u64()
        ),
        (Some(32), Some(0))
    );

    // Per endpoint: status codes, most frequent first, and the histogram bins as ranges.
    let get_item = endpoint(app, "GET", "/items/{item_id}");
    assert_eq!(get_item["requests"], 35);
    assert_eq!(get_item["client_errors"], 31);
    assert_eq!(
        get_item["status_codes"],
        json!([{"code": 404, "count": 31}, {"code": 200, "count": 4}])
    );
    assert_eq!(
        get_item["response_times"],
        json!([
            {"lower_ms": 0.0, "upper_ms": 10.0, "count": 33},
            {"lower_ms": 10.0, "upper_ms": 20.0, "count": 1},
            {"lower_ms": 120.0, "upper_ms": 130.0, "count": 1}
        ])
    );
    assert_eq!(get_item["p50"], json!({"lower_ms": 0.0, "upper_ms": 10.0}));
    assert_eq!(get_item["p95"], json!({"lower_ms": 10.0, "upper_ms": 20.0}));
    assert_eq!(get_item["response_bytes"], 35 * 120);
    assert_eq!(endpoint(app, "GET", "/health")["requests"], 0);
    assert_eq!(endpoint(app, "GET", "/fail")["server_errors"], 1);

    let consumers = app["consumers"].as_array().unwrap();
    assert_eq!(consumers.len(), 2);
    assert_eq!(
        consumers[0],
        json!({"identifier": "acme", "name": "Acme Corp", "group": "Enterprise",
               "requests": 5, "client_errors": 0, "server_errors": 0})
    );
    assert_eq!(consumers[1]["name"], "<img src=x onerror=alert(2)>");
    assert_eq!(
        app["validation_errors"],
        json!([{"method": "POST", "route": "/items", "consumer": null, "location": ["body", "name"],
                "message": "must not be blank", "type": "value_error", "count": 1}])
    );
    let server = &app["server_errors"][0];
    assert_eq!(
        (server["type"].as_str(), server["count"].as_u64()),
        (Some("DatabaseDown"), Some(1))
    );
    assert!(server["traceback"].as_str().unwrap().contains(SCRIPT));
    // Newest first, each as received.
    assert_eq!(app["received"].as_array().unwrap().len(), 4);
    assert_eq!(app["received"][0]["kind"], "sync");
    assert!(app["received"][0]["text"]
        .as_str()
        .unwrap()
        .contains("DatabaseDown"));

    // The summary reads the same state.
    let summary = get(hub.url(), "/api/summary").json();
    let s = &summary["apps"][0];
    assert_eq!(s["syncs"], 3);
    let e = s["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "/items/{item_id}" && e["method"] == "GET")
        .unwrap();
    assert_eq!(
        (
            e["requests"].as_u64(),
            e["p50_ms"].as_u64(),
            e["p95_ms"].as_u64()
        ),
        (Some(35), Some(0), Some(10))
    );
    assert_eq!(s["startup"]["client"], "rust:actix");
    assert_eq!(hub.summary().total_requests(), 45);
    assert_eq!(hub.summary().consumer("acme").unwrap().requests, 5);
}

#[test]
fn request_logs_are_decoded_newest_first_and_bounded() {
    let hub = LocalHub::start("127.0.0.1:0").unwrap();
    let at = now();
    post_logs(hub.url(), &log_lines(at));
    let d = dashboard(hub.url());
    let app = &d["apps"][0];
    assert_eq!(app["log_batches"], 1);
    let logs = app["request_logs"].as_array().unwrap();
    let ids: Vec<&str> = logs.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [FAIL_LOG, HOSTILE_LOG, CREATE_LOG], "newest first");

    let create = &logs[2];
    assert_eq!(create["method"], "POST");
    assert_eq!(create["path"], "/items");
    assert_eq!(create["route"], "/items");
    assert_eq!(create["status"], 201);
    assert!((create["duration_ms"].as_f64().unwrap() - 12.3).abs() < 1e-9);
    assert_eq!(create["consumer"], "acme");
    assert_eq!(
        create["request"]["headers"],
        json!([
            ["content-type", "application/json"],
            ["x-api-key", "******"]
        ])
    );
    assert_eq!(
        create["request"]["body"],
        json!({"text": "{\n  \"name\": \"Widget\",\n  \"price_cents\": 1999\n}",
               "binary": false, "truncated": false, "bytes": 36})
    );
    assert_eq!(create["logs"][0]["message"], "creating item 1 name=Widget");
    assert_eq!(create["logs"][0]["location"], "src/lib.rs:140");
    assert_eq!(create["spans"][1]["name"], "store.insert");
    assert_eq!(create["spans"][1]["parent_id"], "088da258bb30717c");
    assert_eq!(
        create["spans"][1]["attributes"],
        json!([["item.name", "Widget"]])
    );
    assert_eq!(create["trace_id"], "a05fa684ea768afbdd6cbf511932aeb2");

    // Hostile values stay data: JSON strings, unchanged.
    let hostile = &logs[1];
    assert_eq!(hostile["path"], format!("/items/42?q={SCRIPT}"));
    assert_eq!(
        hostile["request"]["headers"][0][1],
        "<img src=x onerror=alert(3)>"
    );
    assert_eq!(
        hostile["response"]["body"]["text"],
        format!("<html><body>{SCRIPT}</body></html>")
    );
    assert_eq!(logs[0]["exception"]["type"], "DatabaseDown");

    // A re-uploaded file adds nothing; 210 more requests keep the newest 200.
    post_logs(hub.url(), &log_lines(at));
    let more: Vec<Value> = (0..210)
        .map(|i| {
            json!({
                "uuid": uuid::Uuid::new_v4().to_string(),
                "request": {"timestamp": at + i as f64, "method": "GET", "url": format!("http://h/n/{i}")},
                "response": {"status_code": 200, "response_time": 0.001}
            })
        })
        .collect();
    post_logs(hub.url(), &more);
    let d = dashboard(hub.url());
    let logs = d["apps"][0]["request_logs"].as_array().unwrap();
    assert_eq!(logs.len(), 200);
    assert_eq!(logs[0]["path"], "/n/209");
    assert_eq!(logs[199]["path"], "/n/10");
    // The summary still shows them as received (base64 bodies).
    let summary = hub.summary();
    assert_eq!(summary.apps[0].request_logs.len(), 200);
    assert_eq!(summary.apps[0].log_files, 3);
}

#[test]
fn since_answers_unchanged_until_something_changes() {
    let hub = LocalHub::start("127.0.0.1:0").unwrap();
    post_json(hub.url(), "startup", &startup());
    let d = dashboard(hub.url());
    let revision = d["revision"].as_str().unwrap().to_owned();
    let again = get(hub.url(), &format!("/api/dashboard?since={revision}")).json();
    // Unless the minute turned in between, which only changes the revision.
    if again["revision"] == revision.as_str() {
        assert_eq!(again["unchanged"], true);
        assert_eq!(again["apps"], json!([]));
    }
    post_json(hub.url(), "sync", &syncs(now())[0]);
    let changed = get(hub.url(), &format!("/api/dashboard?since={revision}")).json();
    assert_eq!(changed["unchanged"], false);
    assert_ne!(changed["revision"], revision.as_str());
    assert_eq!(changed["apps"][0]["totals"]["requests"], 8);
}

#[test]
fn rejected_payloads_are_listed() {
    let hub = LocalHub::start("127.0.0.1:0").unwrap();
    let mut bad = syncs(now()).remove(0);
    bad["requests"][0]["status_code"] = json!(0);
    let res = http(
        hub.url(),
        "POST",
        &format!("/v2/{APP}/sync"),
        "application/json",
        bad.to_string().as_bytes(),
    );
    assert_eq!(res.status, 422);
    let d = dashboard(hub.url());
    let rejected = &d["apps"][0]["rejected"][0];
    assert_eq!(rejected["kind"], "sync");
    assert!(rejected["problems"][0]
        .as_str()
        .unwrap()
        .contains("invalid requests item"));
    assert_eq!(d["apps"][0]["totals"]["requests"], 0);
}

#[test]
fn the_page_and_its_files_are_served_with_a_strict_policy() {
    let hub = LocalHub::start("127.0.0.1:0").unwrap();
    for (path, kind) in [
        ("/", "text/html"),
        ("/dashboard.js", "text/javascript"),
        ("/dashboard.css", "text/css"),
    ] {
        let res = get(hub.url(), path);
        assert_eq!(res.status, 200, "{path}");
        assert!(
            res.header("content-type").unwrap().starts_with(kind),
            "{path}"
        );
        let csp = res.header("content-security-policy").unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"));
    }
    let page = String::from_utf8(get(hub.url(), "/").body).unwrap();
    assert!(page.contains(r#"<script src="/dashboard.js" defer></script>"#));
    let js = String::from_utf8(get(hub.url(), "/dashboard.js").body).unwrap();
    assert!(!js.contains("innerHTML") && !js.contains("insertAdjacentHTML"));
}

fn app<'a>(d: &'a Value, name: &str) -> &'a Value {
    d["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["app"] == name)
        .unwrap_or_else(|| panic!("no app {name} in {:#}", d["apps"]))
}

#[test]
fn an_otlp_app_is_shown_like_a_v2_app() {
    let hub = LocalHub::start("127.0.0.1:0").unwrap();
    let at = now();
    // A v2 app beside it keeps its own label.
    post_json(hub.url(), "startup", &startup());
    post_otlp(hub.url(), &otlp_startup(at - 180.0));
    let d = dashboard(hub.url());
    assert_eq!(app(&d, APP)["protocol"], "hub v2");
    let a = app(&d, OTLP_APP);
    assert_eq!(a["protocol"], "OTLP 1.x");
    assert_eq!(a["client"], "actix-web");
    assert_eq!(a["versions"]["actix-web"], "4.11.0");
    assert_eq!(a["versions"]["apitally-rs"], "0.1.0");
    assert_eq!(a["instances"], json!([OTLP_INSTANCE]));
    let declared: Vec<&Value> = a["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["declared"] == true && e["requests"] == 0)
        .collect();
    assert_eq!(declared.len(), 6, "the routes before any traffic");
    // Newest first: the logs export, and the startup event it held.
    assert_eq!(a["received"][0]["kind"], "logs");
    assert_eq!(a["received"][1]["kind"], "startup");
    assert_eq!(a["received"][1]["protocol"], "OTLP 1.x");
    assert!(a["received"][1]["text"]
        .as_str()
        .unwrap()
        .contains("\"framework\": \"actix-web\""));

    // A cycle: the app's logs arrive before the spans they belong to, then the traces, then
    // the metrics: one collection, then a backlog of two in one body, then a re-send.
    post_otlp(hub.url(), &otlp_logs(at));
    post_otlp(hub.url(), &otlp_traces(at));
    let collections = otlp_collections(at);
    post_otlp(hub.url(), &collections[0]);
    let backlog =
        otlp::gzip(&[collections[1].to_protobuf(), collections[2].to_protobuf()].concat());
    assert_eq!(
        post_otlp_body(hub.url(), "metrics", TOKEN, &backlog).status,
        200
    );
    assert_eq!(
        post_otlp_body(hub.url(), "metrics", TOKEN, &backlog).status,
        200
    );

    let d = dashboard(hub.url());
    let a = app(&d, OTLP_APP);
    assert_eq!(
        (a["batches"].as_u64(), a["duplicates"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(a["totals"]["requests"], 45);
    assert_eq!(a["totals"]["client_errors"], 32);
    assert_eq!(a["totals"]["server_errors"], 1);
    assert_eq!(
        a["totals"]["status_codes"][0],
        json!({"code": 404, "count": 31})
    );
    // 1 ms falls into bucket -80 at scale 3: (2^(-80/8), 2^(-79/8)] s.
    let p50 = &a["totals"]["p50"];
    let (lower, upper) = (
        p50["lower_ms"].as_f64().unwrap(),
        p50["upper_ms"].as_f64().unwrap(),
    );
    assert!((lower - 1000.0 * 2f64.powf(-10.0)).abs() < 1e-9, "{p50}");
    assert!((upper - 1000.0 * 2f64.powf(-9.875)).abs() < 1e-9, "{p50}");
    assert_eq!(
        a["resources"],
        json!({"cpu_percent": 2.5, "memory_bytes": 48_234_496})
    );

    // Per minute, by each collection's time.
    let busy: Vec<u64> = a["minutes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["requests"].as_u64().unwrap())
        .filter(|n| *n > 0)
        .collect();
    assert_eq!(busy, [8, 35, 2]);

    let get_item = endpoint(a, "GET", "/items/{item_id}");
    assert_eq!(get_item["requests"], 35);
    assert_eq!(
        get_item["status_codes"],
        json!([{"code": 404, "count": 31}, {"code": 200, "count": 4}])
    );
    let times = get_item["response_times"].as_array().unwrap();
    let counted: u64 = times.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, 35);
    // 3, 4, 15 and 125 ms each in a bucket of its own, above the 31 at 1 ms.
    assert_eq!(times.len(), 5, "{times:#?}");
    assert_eq!(times[0]["count"], 31);
    let slowest = times.last().unwrap();
    let (l, u) = (
        slowest["lower_ms"].as_f64().unwrap(),
        slowest["upper_ms"].as_f64().unwrap(),
    );
    assert!(l < 125.0 && 125.0 <= u, "{slowest}");
    assert_eq!(get_item["response_bytes"], 35 * 120);
    assert_eq!(endpoint(a, "GET", "/fail")["server_errors"], 1);
    assert_eq!(endpoint(a, "GET", "/health")["requests"], 0);

    let consumers = a["consumers"].as_array().unwrap();
    assert_eq!(
        consumers[0],
        json!({"identifier": "acme", "name": "Acme Corp", "group": "Enterprise",
               "requests": 5, "client_errors": 0, "server_errors": 0})
    );
    assert_eq!(consumers[1]["name"], "<img src=x onerror=alert(2)>");
    assert_eq!(
        a["validation_errors"],
        json!([{"method": "POST", "route": "/items", "consumer": null, "location": ["body", "name"],
                "message": "must not be blank", "type": "value_error", "count": 1}])
    );
    assert_eq!(a["server_errors"][0]["type"], "DatabaseDown");
    assert!(a["server_errors"][0]["traceback"]
        .as_str()
        .unwrap()
        .contains(SCRIPT));

    // Request logs from the SERVER spans, newest first, with their child span and app log.
    assert_eq!(a["log_batches"], 1);
    let logs = a["request_logs"].as_array().unwrap();
    let ids: Vec<&str> = logs.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [OTLP_FAIL_LOG, OTLP_HOSTILE_LOG, OTLP_CREATE_LOG]);
    let create = &logs[2];
    assert_eq!(create["url"], "http://127.0.0.1:8000/items");
    assert_eq!(
        (create["route"].as_str(), create["status"].as_u64()),
        (Some("/items"), Some(201))
    );
    assert!((create["duration_ms"].as_f64().unwrap() - 12.3).abs() < 1e-3);
    assert_eq!(create["consumer"], "acme");
    assert_eq!(create["trace_id"], OTLP_TRACE);
    assert_eq!(
        create["request"]["headers"],
        json!([
            ["content-type", "application/json"],
            ["x-api-key", "[REDACTED]"]
        ])
    );
    assert_eq!(
        create["request"]["body"],
        json!({"text": "{\n  \"name\": \"Widget\",\n  \"price_cents\": 1999\n}",
               "binary": false, "truncated": false, "bytes": 36})
    );
    assert_eq!(create["request"]["size"], 36);
    assert_eq!(
        create["logs"].as_array().unwrap().len(),
        1,
        "attached once it arrived"
    );
    assert_eq!(
        create["logs"][0],
        json!({"time": create["logs"][0]["time"], "level": "INFO", "logger": "example_server",
               "message": "creating item 1 name=Widget", "location": "src/lib.rs:140"})
    );
    let spans: Vec<(&str, Option<&str>)> = create["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["parent_id"].as_str()))
        .collect();
    assert_eq!(
        spans,
        [
            ("POST /items", None),
            ("store.insert", Some(OTLP_CREATE_LOG))
        ]
    );
    assert_eq!(
        create["spans"][1]["attributes"],
        json!([["item.name", "Widget"]])
    );
    let hostile = &logs[1];
    assert_eq!(hostile["path"], format!("/items/42?q={SCRIPT}"));
    assert_eq!(
        hostile["request"]["headers"][0][1],
        "<img src=x onerror=alert(3)>"
    );
    let fail = &logs[0];
    assert_eq!(fail["exception"]["type"], "DatabaseDown");
    assert_eq!(fail["spans"][0]["status"], "ERROR");

    // What left the app, as OTLP/JSON; the token never shows.
    let kinds: Vec<&str> = a["received"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["metrics", "metrics", "traces", "logs", "logs", "startup"]
    );
    assert!(a["received"][2]["text"]
        .as_str()
        .unwrap()
        .contains("store.insert"));
    let everything = get(hub.url(), "/api/dashboard").body;
    assert!(!String::from_utf8_lossy(&everything).contains(TOKEN));
    assert_eq!(hub.summary().apps.len(), 2);
}

#[test]
fn otlp_exports_the_server_would_refuse_are_listed() {
    let hub = LocalHub::start("127.0.0.1:0").unwrap();
    let secret = "apt_0123456789abcdefSECRET!!";
    let res = post_otlp_body(hub.url(), "traces", secret, &otlp_traces(now()).to_gzip());
    assert_eq!(res.status, 400);
    assert!(res.json()["detail"][0]
        .as_str()
        .unwrap()
        .contains("write token"));
    let res = post_otlp_body(hub.url(), "logs", TOKEN, b"not gzip");
    assert_eq!(res.status, 400);
    assert!(res.json()["detail"][0]
        .as_str()
        .unwrap()
        .contains("not gzip"));
    assert_eq!(
        post_otlp_body(hub.url(), "profiles", TOKEN, b"").status,
        404
    );

    let d = dashboard(hub.url());
    let refused = app(&d, "apt_0123…/dev");
    assert_eq!(refused["rejected"][0]["kind"], "traces");
    assert_eq!(refused["request_logs"], json!([]));
    assert_eq!(app(&d, OTLP_APP)["rejected"][0]["kind"], "logs");
    let body = String::from_utf8(get(hub.url(), "/api/dashboard").body).unwrap();
    assert!(!body.contains("SECRET") && !body.contains(TOKEN));
}

#[test]
fn request_log_totals_from_the_header_are_summed_per_app() {
    let hub = LocalHub::start("127.0.0.1:0").unwrap();
    let at = now();
    let totals = |d: &Value, name: &str| app(d, name)["request_log_totals"].clone();
    // Without the header (request logging off, or an SDK that does not send it): null.
    post_json(hub.url(), "startup", &startup());
    assert_eq!(totals(&dashboard(hub.url()), APP), Value::Null);

    let header = |value| [("Apitally-Request-Logs", value)];
    post_json_with(
        hub.url(),
        "sync",
        &syncs(at)[0],
        &header("logged=10, sampled-out=90, excluded=2, dropped=0"),
    );
    // The same process later: its totals replace the earlier ones.
    post_json_with(
        hub.url(),
        "sync",
        &syncs(at)[1],
        &header("logged=12, sampled-out=95, excluded=3, dropped=1"),
    );
    // A second process of the app adds its own; names the hub does not know are skipped.
    let mut other = syncs(at)[2].clone();
    other["instance_uuid"] = json!("9a0f6b1e-0000-4000-8000-000000000002");
    post_json_with(
        hub.url(),
        "sync",
        &other,
        &header("logged=1, sampled-out=4, excluded=0, dropped=0, later=7"),
    );
    let d = dashboard(hub.url());
    assert_eq!(
        totals(&d, APP),
        json!({"logged": 13, "sampled_out": 99, "excluded": 3, "dropped": 1})
    );

    // An OTLP app sends it with every export.
    let res = post_otlp_body_with(
        hub.url(),
        "traces",
        TOKEN,
        &otlp_traces(at).to_gzip(),
        &header("logged=3, sampled-out=1, excluded=1, dropped=0"),
    );
    assert_eq!(res.status, 200);
    let d = dashboard(hub.url());
    assert_eq!(
        totals(&d, OTLP_APP),
        json!({"logged": 3, "sampled_out": 1, "excluded": 1, "dropped": 0})
    );
    assert_eq!(totals(&d, APP)["logged"], 13, "apps apart");
}

//! Apitally 1.x end to end: a real `HttpServer` with 4 workers, configured with a write token,
//! exports OTLP to the test hub on 127.0.0.1, which decodes every body with the protobuf types.

use crate::common;

use std::{collections::BTreeMap, time::Duration};

use actix_web::{web, App, HttpRequest, HttpResponse};
use apitally_actix::{Apitally, ApitallyConfig, Consumer, ConsumerExt, RequestLoggingConfig};
use common::TestHub;
use serde_json::json;

const TOKEN: &str = "apt_0123456789abcdefghijABCD";

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Item {
    name: String,
    price: u32,
}

fn config(hub: &TestHub) -> ApitallyConfig {
    ApitallyConfig::with_write_token(TOKEN, "staging")
        .otlp_endpoint(hub.url())
        .app_version("2.0.0")
        .route("GET", "/items/{id}")
        .request_logging(
            RequestLoggingConfig::new()
                .capture_request_headers(true)
                .capture_request_body(true)
                .capture_response_body(true),
        )
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/items/{id}",
        web::get().to(|req: HttpRequest, id: web::Path<u32>| async move {
            if id.is_multiple_of(2) {
                req.set_consumer(Consumer::new("customer-7").name("Customer 7").group("Pro"));
            }
            HttpResponse::Ok().json(json!({"id": *id, "name": "Widget"}))
        }),
    )
    .route(
        "/items",
        web::post().to(|item: web::Json<Item>| async move {
            HttpResponse::Created().json(json!({"name": item.name}))
        }),
    )
    .route(
        "/boom",
        web::get().to(|| async {
            Err::<HttpResponse, _>(actix_web::error::ErrorInternalServerError("db is down"))
        }),
    );
}

fn send(port: u16, head: &str, body: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{head}\r\nhost: api.example.com\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out);
    out[9..12].parse().unwrap()
}

#[actix_web::test]
async fn traffic_arrives_as_otlp_with_exact_counts_spans_and_events() {
    let hub = TestHub::start();
    let apitally = Apitally::try_new(config(&hub)).unwrap();
    assert_eq!(
        apitally.pipeline().client().protocol(),
        Some(apitally_core::adapter::Protocol::Otlp)
    );
    let (server, port) = spawn_server!(4, {
        let apitally = apitally.clone();
        move || App::new().wrap(apitally.clone()).configure(routes)
    });
    let statuses = actix_web::rt::task::spawn_blocking(move || {
        let mut statuses = Vec::new();
        for i in 0..40 {
            statuses.push(send(port, &format!("GET /items/{i}?token=s3cret HTTP/1.1"), ""));
        }
        for _ in 0..5 {
            statuses.push(send(
                port,
                "POST /items HTTP/1.1\r\ncontent-type: application/json\r\nauthorization: Bearer abc",
                r#"{"name":"Widget","price":12,"password":"hunter2"}"#,
            ));
        }
        for _ in 0..3 {
            statuses.push(send(
                port,
                "POST /items HTTP/1.1\r\ncontent-type: application/json",
                r#"{"name":"Widget","price":"SECRET"}"#,
            ));
        }
        for _ in 0..2 {
            statuses.push(send(port, "GET /boom HTTP/1.1", ""));
        }
        statuses
    })
    .await
    .unwrap();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 40);
    server.stop(true).await;
    apitally.shutdown().await;

    assert!(hub.otlp_problems().is_empty(), "{:?}", hub.otlp_problems());
    // Exact counts and byte sums per (consumer, method, route, status).
    let mut counts = BTreeMap::new();
    for c in hub.otlp_request_counts() {
        counts.insert(
            (
                c.consumer.clone(),
                c.method.clone(),
                c.route.clone(),
                c.status,
            ),
            (c.count, c.request_size_sum, c.response_size_sum),
        );
    }
    let body = |id: u32| format!(r#"{{"id":{id},"name":"Widget"}}"#).len() as u64;
    let even: u64 = (0..40).filter(|i| i % 2 == 0).map(body).sum();
    let odd: u64 = (0..40).filter(|i| i % 2 == 1).map(body).sum();
    assert_eq!(
        counts[&(
            Some("customer-7".into()),
            "GET".into(),
            "/items/{id}".into(),
            200
        )],
        (20, 0, even)
    );
    assert_eq!(
        counts[&(None, "GET".into(), "/items/{id}".into(), 200)],
        (20, 0, odd)
    );
    let created = r#"{"name":"Widget"}"#.len() as u64 * 5;
    let sent = r#"{"name":"Widget","price":12,"password":"hunter2"}"#.len() as u64 * 5;
    assert_eq!(
        counts[&(None, "POST".into(), "/items".into(), 201)],
        (5, sent, created)
    );
    assert_eq!(counts[&(None, "POST".into(), "/items".into(), 400)].0, 3);
    assert_eq!(counts[&(None, "GET".into(), "/boom".into(), 500)].0, 2);
    assert_eq!(counts.len(), 5);

    // One SERVER span per request, named and attributed as specified.
    let spans: Vec<_> = hub
        .otlp_spans()
        .into_iter()
        .filter(|s| s.is_server())
        .collect();
    assert_eq!(spans.len(), 50);
    let get = spans
        .iter()
        .find(|s| s.attributes.get("url.path") == Some(&json!("/items/4")))
        .unwrap();
    assert_eq!(get.name, "GET /items/{id}");
    assert_eq!(get.scope_name, "apitally-actix");
    assert_eq!(get.attributes["http.route"], "/items/{id}");
    assert_eq!(get.attributes["http.response.status_code"], 200);
    assert_eq!(get.attributes["url.query"], "token=[REDACTED]");
    assert_eq!(get.attributes["apitally.consumer.identifier"], "customer-7");
    assert_eq!(get.attributes["server.address"], "api.example.com");
    assert!(get.end_time_unix_nano >= get.start_time_unix_nano);
    let post = spans
        .iter()
        .find(|s| s.attributes.get("http.response.status_code") == Some(&json!(201)))
        .unwrap();
    assert_eq!(
        post.attributes["http.request.header.authorization"],
        json!(["[REDACTED]"])
    );
    assert_eq!(
        post.attributes["apitally.request.body"],
        r#"{"name":"Widget","price":12,"password":"[REDACTED]"}"#
    );
    assert_eq!(
        post.attributes["apitally.response.body"],
        r#"{"name":"Widget"}"#
    );
    let boom = spans.iter().find(|s| s.name == "GET /boom").unwrap();
    assert_eq!(boom.status_code, "ERROR");
    assert_eq!(boom.events[0].name, "exception");
    // One service.instance.id for the process, whatever the worker.
    let instances: std::collections::BTreeSet<String> = spans
        .iter()
        .map(|s| s.resource["service.instance.id"].to_string())
        .collect();
    assert_eq!(instances.len(), 1);
    assert_eq!(spans[0].resource["deployment.environment.name"], "staging");
    assert_eq!(spans[0].resource["telemetry.distro.name"], "apitally-rs");

    // Events.
    let startup = hub.otlp_events("apitally.app.startup");
    assert_eq!(startup.len(), 1);
    let startup = startup[0].body_json.clone().unwrap();
    assert_eq!(startup["framework"], "actix-web");
    assert_eq!(startup["versions"]["app"], "2.0.0");
    assert_eq!(startup["config"]["capture_request_body"], true);
    assert_eq!(startup["config"]["sample_rate"], 1.0);
    assert_eq!(startup["paths"][0]["path"], "/items/{id}");
    let consumers = hub.otlp_events("apitally.consumer.update");
    assert_eq!(consumers.len(), 1, "sent once while unchanged");
    assert_eq!(consumers[0].body["identifier"], "customer-7");
    assert_eq!(consumers[0].body["name"], "Customer 7");
    assert_eq!(consumers[0].body["group"], "Pro");
    let validation = hub.otlp_events("apitally.request.validation_error");
    assert_eq!(validation.len(), 1);
    let v = &validation[0].body;
    assert_eq!(
        (&v["method"], &v["path"], &v["source"]),
        (&json!("POST"), &json!("/items"), &json!("body"))
    );
    assert_eq!(v["counts"], json!([{"count": 3}]));
    assert!(!v.to_string().contains("SECRET"), "{v}");
    let server = hub.otlp_events("apitally.request.server_error");
    assert_eq!(server.len(), 1);
    assert_eq!(server[0].body["message"], "db is down");
    assert_eq!(server[0].body["counts"], json!([{"count": 2}]));

    // Every export carried the write token and env.
    for r in hub.accepted_otlp("metrics") {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(r.header("apitally-env"), Some("staging"));
        assert!(r.header("user-agent").unwrap().starts_with("apitally-rs/"));
    }
    // Process gauges ride on every metrics export.
    assert!(hub
        .otlp_gauges()
        .iter()
        .any(|g| g.metric == "process.uptime"));
}

#[actix_web::test]
async fn both_credentials_are_a_clear_error_and_a_bad_token_never_shows_whole() {
    let hub = TestHub::start();
    let err = Apitally::try_new(
        ApitallyConfig::with_write_token("apt_short", "prod").otlp_endpoint(hub.url()),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("write token") && text.contains("apt_shor"),
        "{text}"
    );
    let token = "apt_ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let err = Apitally::try_new(ApitallyConfig::with_write_token(token, "prod")).unwrap_err();
    assert!(!err.to_string().contains(token));
}

/// GETs `/items/{n}` 8 at a time for `duration` (and at most `max` requests); how many got a
/// 200.
async fn load(port: u16, duration: Duration, max: u64) -> u64 {
    use futures_util::StreamExt;
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let deadline = std::time::Instant::now() + duration;
    futures_util::stream::iter(0..max)
        .take_while(|_| std::future::ready(std::time::Instant::now() < deadline))
        .map(|i| {
            let client = client.clone();
            async move {
                let mut res = client
                    .get(format!("http://127.0.0.1:{port}/items/{}", i % 97))
                    .send()
                    .await
                    .ok()?;
                res.body().await.ok()?;
                (res.status() == 200).then_some(())
            }
        })
        .buffer_unordered(8)
        .filter(|r| std::future::ready(r.is_some()))
        .count()
        .await as u64
}

/// The 1.x defaults (a span per request) with a trace intake that takes 3 s per POST, under
/// sustained load and then at shutdown: every request is in the exported metrics, and the
/// metrics went out on their schedule throughout.
#[actix_web::test]
async fn request_counts_never_wait_behind_a_slow_trace_intake() {
    use apitally_test_hub::Reply;
    let hub = TestHub::start();
    hub.set_default("traces", Reply::Delay(Duration::from_secs(3), 200));
    let every_5s = vec![("Apitally-Export-Interval".to_owned(), "5".to_owned())];
    hub.set_default("metrics", Reply::WithHeaders(200, every_5s));
    let apitally =
        Apitally::try_new(ApitallyConfig::with_write_token(TOKEN, "prod").otlp_endpoint(hub.url()))
            .unwrap();
    let (server, port) = spawn_server!(2, {
        let apitally = apitally.clone();
        move || App::new().wrap(apitally.clone()).configure(routes)
    });
    let served = load(port, Duration::from_secs(14), 1_000_000).await;
    let load_end = std::time::Instant::now();
    server.stop(true).await;
    apitally.shutdown().await;

    assert!(hub.otlp_problems().is_empty(), "{:?}", hub.otlp_problems());
    assert!(served > 1_000, "{served}");
    assert_eq!(hub.otlp_request_count(Some("/items/{id}")), served);
    // On schedule while the traces crawled: a metrics export at most ~5 s after the other
    // (the interval the hub set, ± 10 %, and the time a collection takes).
    let metrics: Vec<_> = hub
        .accepted_otlp("metrics")
        .iter()
        .map(|r| r.at)
        .filter(|at| *at <= load_end)
        .collect();
    assert!(metrics.len() >= 3, "{}", metrics.len());
    for pair in metrics[1..].windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap <= Duration::from_millis(7_000), "{gap:?}");
    }
    // The spans: what reached the hub, with the totals the SDK sent; nothing is unaccounted.
    let spans = hub.otlp_spans().iter().filter(|s| s.is_server()).count() as u64;
    assert!(spans > 0);
    let totals = hub
        .accepted_otlp("metrics")
        .last()
        .and_then(|r| r.header("apitally-request-logs").map(str::to_owned))
        .unwrap();
    assert!(totals.starts_with("logged="), "{totals}");
}

/// A trace intake that answers 503 throughout: the counts are exact, the other signals are
/// delivered, and the shutdown says what it could not deliver instead of "delivered".
#[actix_web::test]
async fn a_trace_intake_that_is_down_costs_no_count_and_the_shutdown_says_so() {
    use apitally_test_hub::{capture_logs, Reply};
    let logs = capture_logs();
    let hub = TestHub::start();
    hub.set_default("traces", Reply::Status(503));
    let apitally = Apitally::try_new(
        ApitallyConfig::with_write_token(TOKEN, "prod")
            .otlp_endpoint(hub.url())
            .app_version(format!("down-{}", hub.port())),
    )
    .unwrap();
    let (server, port) = spawn_server!(2, {
        let apitally = apitally.clone();
        move || App::new().wrap(apitally.clone()).configure(routes)
    });
    let served = load(port, Duration::from_secs(4), 1_000_000).await;
    server.stop(true).await;
    apitally.shutdown().await;

    assert_eq!(hub.otlp_request_count(Some("/items/{id}")), served);
    assert!(!hub.otlp_events("apitally.app.startup").is_empty());
    assert!(hub.accepted_otlp("traces").is_empty());
    let warnings = logs.matching(
        log::Level::Warn,
        "shutdown: not everything reached Apitally",
    );
    let ours: Vec<_> = warnings
        .iter()
        .filter(|w| w.contains(&format!("traces: {served} requests")))
        .collect();
    assert_eq!(ours.len(), 1, "{warnings:#?}");
    assert!(
        ours[0].contains("sending stopped: traces: HTTP 503"),
        "{}",
        ours[0]
    );
}

/// The write token goes to the configured endpoint and nowhere else: URLs are parsed
/// completely at startup (a port that would wrap, a query, user-info, a broken IPv6 address
/// are refused, naming the option), and a redirect from the endpoint is not followed.
#[actix_web::test]
async fn the_write_token_goes_only_to_the_configured_endpoint() {
    use apitally_test_hub::Reply;
    for (url, reason) in [
        ("http://127.0.0.1:65616", "the port \"65616\""),
        ("http://[::1", "no closing ]"),
        ("http://127.0.0.1:4318/?x=1", "a query"),
        ("http://127.0.0.1:4318#x", "a fragment"),
        ("http://evil.example@127.0.0.1:4318", "user-info"),
    ] {
        let err =
            Apitally::try_new(ApitallyConfig::with_write_token(TOKEN, "prod").otlp_endpoint(url))
                .unwrap_err()
                .to_string();
        assert!(err.starts_with("invalid otlp_endpoint"), "{err}");
        assert!(err.contains(reason), "{err}");
        assert!(!err.contains(&TOKEN[8..]), "{err}");
    }
    // A hub that redirects every export elsewhere.
    let elsewhere = TestHub::start();
    let hub = TestHub::start();
    for signal in ["traces", "logs", "metrics"] {
        let location = format!("{}/v1/{signal}", elsewhere.url());
        hub.set_default(
            signal,
            Reply::WithHeaders(307, vec![("location".to_owned(), location)]),
        );
    }
    let apitally =
        Apitally::try_new(ApitallyConfig::with_write_token(TOKEN, "prod").otlp_endpoint(hub.url()))
            .unwrap();
    let (server, port) = spawn_server!(1, {
        let apitally = apitally.clone();
        move || App::new().wrap(apitally.clone()).configure(routes)
    });
    assert_eq!(load(port, Duration::from_secs(1), 20).await, 20);
    server.stop(true).await;
    apitally.shutdown().await;
    assert!(hub.received().iter().any(|r| r.status == 307));
    assert!(
        elsewhere.received().is_empty(),
        "{:?}",
        elsewhere.received().len()
    );
}

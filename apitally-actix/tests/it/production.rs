//! What differs between a production deployment and a test bench, end to end against a real
//! `HttpServer` and the test hub: client addresses behind proxies, WebSockets, consumer and
//! request attributes, captured exceptions, and the 1.x defaults of request logging.

use crate::common;

use std::{collections::BTreeMap, io::Read, io::Write, time::Duration};

use actix_web::{web, App, HttpResponse};
use apitally_actix::{Apitally, ApitallyConfig, RequestLoggingConfig};
use common::TestHub;

const TOKEN: &str = "apt_0123456789abcdefghijABCD";

fn otlp(hub: &TestHub) -> ApitallyConfig {
    ApitallyConfig::with_write_token(TOKEN, "test").otlp_endpoint(hub.url())
}

/// Sends `GET {path}` with extra header lines over a new connection; gives the status.
fn get(port: u16, path: &str, headers: &str) -> u16 {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: api.example.com\r\n{headers}connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out);
    out[9..12].parse().unwrap()
}

/// `client.address` of each request's SERVER span, by path.
fn client_addresses(hub: &TestHub) -> BTreeMap<String, String> {
    hub.otlp_spans()
        .iter()
        .filter(|s| s.is_server())
        .map(|s| {
            (
                s.str("url.path").unwrap().to_owned(),
                s.str("client.address").unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn the_client_address_comes_from_trusted_proxies_only() {
    let long = format!("x-forwarded-for: {}\r\n", "1.2.3.4, ".repeat(1_200));
    let cases: Vec<(&str, String, &str)> = vec![
        // (path, headers, client address with 127.0.0.1 and 10.0.0.0/8 trusted)
        ("/c/plain", String::new(), "127.0.0.1"),
        (
            "/c/xff",
            "x-forwarded-for: 203.0.113.9, 10.0.0.3\r\n".into(),
            "203.0.113.9",
        ),
        (
            "/c/xff-spoofed",
            // The client wrote the first entry; the proxy appended the client's real address.
            "x-forwarded-for: 1.1.1.1, 198.51.100.4\r\n".into(),
            "198.51.100.4",
        ),
        (
            "/c/forwarded",
            "forwarded: for=\"[2001:db8::1]:4711\";proto=https, for=10.0.0.2\r\n\
             x-forwarded-for: 192.0.2.1\r\n"
                .into(),
            "2001:db8::1",
        ),
        (
            "/c/two-lines",
            "x-forwarded-for: 192.0.2.7\r\nx-forwarded-for: 10.1.1.1\r\n".into(),
            "192.0.2.7",
        ),
        (
            "/c/hidden",
            "forwarded: for=_hidden\r\n".into(),
            "127.0.0.1",
        ),
        (
            "/c/unknown",
            "x-forwarded-for: unknown\r\n".into(),
            "127.0.0.1",
        ),
        (
            "/c/port",
            "x-forwarded-for: 192.0.2.1:99999\r\n".into(),
            "127.0.0.1",
        ),
        (
            "/c/brackets",
            "x-forwarded-for: [192.0.2.1\r\n".into(),
            "127.0.0.1",
        ),
        (
            "/c/garbage",
            "x-forwarded-for: \u{1}\u{7f}<>\r\n".into(),
            "127.0.0.1",
        ),
        ("/c/long", long, "127.0.0.1"),
        (
            "/c/all-trusted",
            "x-forwarded-for: 10.0.0.9, 10.0.0.3\r\n".into(),
            "10.0.0.9",
        ),
    ];
    for trusted in [true, false] {
        let hub = TestHub::start();
        let mut config = otlp(&hub);
        if trusted {
            config = config.trusted_proxies(["127.0.0.1", "10.0.0.0/8"]);
        }
        let apitally = Apitally::try_new(config).unwrap();
        let (server, port) = spawn_server!(1, {
            let apitally = apitally.clone();
            move || {
                App::new()
                    .wrap(apitally.clone())
                    .route("/c/{case}", web::get().to(HttpResponse::Ok))
            }
        });
        for (path, headers, _) in &cases {
            let (path, headers) = (path.to_string(), headers.clone());
            let status = web::block(move || get(port, &path, &headers))
                .await
                .unwrap();
            assert!(status == 200 || status == 400, "{status}");
        }
        server.stop(true).await;
        apitally.shutdown().await;
        let got = client_addresses(&hub);
        for (path, _, expected) in &cases {
            let Some(address) = got.get(*path) else {
                // actix refuses some header values itself (400 before any middleware).
                assert!(matches!(*path, "/c/garbage"), "{path} not logged: {got:#?}");
                continue;
            };
            // Without trusted proxies, the peer whatever the headers say.
            let expected = if trusted { expected } else { &"127.0.0.1" };
            assert_eq!(address, expected, "{path} (trusted: {trusted})");
        }
    }
}

#[actix_web::test]
async fn trusted_proxies_come_from_the_environment_too() {
    // SAFETY (edition 2024 style): nextest runs each test in its own process.
    std::env::set_var("APITALLY_TRUSTED_PROXIES", " 127.0.0.1 , fd00::/8");
    let config: ApitallyConfig = ApitallyConfig::from_env();
    std::env::remove_var("APITALLY_TRUSTED_PROXIES");
    let debug = format!("{config:?}");
    assert!(
        debug.contains("trusted_proxies: [\" 127.0.0.1 \", \" fd00::/8\"]"),
        "{debug}"
    );
    let bad: ApitallyConfig = ApitallyConfig::new("3cd8948c-b589-40a2-a33f-a4e604425c81", "t")
        .trusted_proxies(["10.0.0.0/8", "not-an-ip"]);
    let err = bad.validate().unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid trusted_proxies \"10.0.0.0/8,not-an-ip\""),
        "{err}"
    );
}

/// With a write token, a `RequestLoggingConfig` that only turns on body capture keeps the 1.x
/// defaults it does not set: application logs and child spans are captured.
#[cfg(feature = "tracing")]
#[actix_web::test]
async fn the_1x_defaults_stay_when_logging_is_configured() {
    use tracing_subscriber::prelude::*;
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::registry().with(apitally_actix::tracing_layer()),
    );
    for (logging, captured) in [
        (None, true),
        (
            Some(RequestLoggingConfig::new().capture_request_body(true)),
            true,
        ),
        (
            Some(
                RequestLoggingConfig::new()
                    .capture_logs(false)
                    .capture_traces(false),
            ),
            false,
        ),
    ] {
        let hub = TestHub::start();
        let mut config = otlp(&hub);
        if let Some(logging) = logging {
            config = config.request_logging(logging);
        }
        let apitally = Apitally::try_new(config).unwrap();
        let app = actix_web::test::init_service(App::new().wrap(apitally.clone()).route(
            "/work",
            web::get().to(|| async {
                let span = tracing::info_span!("db.query");
                let _entered = span.enter();
                tracing::info!("loaded 3 rows");
                HttpResponse::Ok().finish()
            }),
        ))
        .await;
        actix_web::test::call_and_read_body(
            &app,
            actix_web::test::TestRequest::get()
                .uri("/work")
                .to_request(),
        )
        .await;
        apitally.shutdown().await;
        let spans = hub.otlp_spans();
        assert_eq!(spans.iter().filter(|s| s.is_server()).count(), 1);
        assert_eq!(
            spans.iter().any(|s| s.name == "db.query"),
            captured,
            "{spans:#?}"
        );
        assert_eq!(
            hub.otlp_log_records()
                .iter()
                .any(|r| r.body.as_str() == Some("loaded 3 rows")),
            captured
        );
    }
}

/// A WebSocket that stays open across syncs is not an endpoint: no count, no response time,
/// no request log, no error, in either protocol; the requests around it are counted exactly.
#[actix_web::test]
async fn a_websocket_open_across_syncs_is_neither_counted_nor_logged() {
    use futures_util::{SinkExt, StreamExt};

    async fn ws(
        req: actix_web::HttpRequest,
        body: web::Payload,
    ) -> actix_web::Result<HttpResponse> {
        let (response, mut session, mut messages) = actix_ws::handle(&req, body)?;
        actix_web::rt::spawn(async move {
            while let Some(Ok(msg)) = messages.next().await {
                match msg {
                    actix_ws::Message::Text(text) if session.text(text.clone()).await.is_err() => {
                        return
                    }
                    actix_ws::Message::Close(reason) => {
                        let _ = session.close(reason).await;
                        return;
                    }
                    _ => {}
                }
            }
        });
        Ok(response)
    }

    for protocol in ["hub", "otlp"] {
        let hub = TestHub::start();
        let logging = RequestLoggingConfig::new().log_request_headers(true);
        let config = match protocol {
            "hub" => common::config(&hub)
                .request_logging(logging)
                .test_client_config(|c| c.test_sync_interval(Duration::from_millis(500))),
            _ => otlp(&hub)
                .request_logging(logging)
                .test_client_config(|c| c.test_sync_interval(Duration::from_millis(500))),
        };
        let apitally = Apitally::try_new(config).unwrap();
        let (server, port) = spawn_server!(1, {
            let apitally = apitally.clone();
            move || {
                App::new()
                    .wrap(apitally.clone())
                    .route("/ws", web::get().to(ws))
                    .route("/items", web::get().to(|| async { "[]" }))
            }
        });
        let client = awc::Client::default();
        let (_, mut socket) = client
            .ws(format!("ws://127.0.0.1:{port}/ws"))
            .connect()
            .await
            .unwrap();
        let syncs_before = hub.received().len();
        for i in 0..8 {
            socket
                .send(awc::ws::Message::Text(format!("ping {i}").into()))
                .await
                .unwrap();
            let echo = socket.next().await.unwrap().unwrap();
            assert_eq!(echo, awc::ws::Frame::Text(format!("ping {i}").into()));
            let res = client
                .get(format!("http://127.0.0.1:{port}/items"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        }
        // The socket stayed open across at least two deliveries.
        assert!(hub.received().len() >= syncs_before + 2, "{protocol}");
        socket.send(awc::ws::Message::Close(None)).await.unwrap();
        drop(socket);
        server.stop(true).await;
        apitally.shutdown().await;
        match protocol {
            "hub" => {
                assert_eq!(common::count(&hub, "GET", "/items", Some(200), None), 8);
                let paths: Vec<_> = common::requests(&hub)
                    .iter()
                    .map(|r| r["path"].as_str().unwrap().to_owned())
                    .collect();
                assert!(paths.iter().all(|p| p == "/items"), "{paths:?}");
                let urls: Vec<_> = common::log_lines(&hub)
                    .iter()
                    .map(|l| l["request"]["url"].as_str().unwrap().to_owned())
                    .collect();
                assert_eq!(urls.len(), 8, "{urls:?}");
                assert!(urls.iter().all(|u| u.ends_with("/items")), "{urls:?}");
                assert!(common::items(&hub, "server_errors").is_empty());
            }
            _ => {
                let points = hub.otlp_histograms();
                let routes: Vec<_> = points
                    .iter()
                    .filter(|p| p.metric == "http.server.request.duration")
                    .map(|p| {
                        let route = p.attributes.get("http.route").and_then(|v| v.as_str());
                        (route.unwrap_or("").to_owned(), p.count)
                    })
                    .collect();
                assert!(routes.iter().all(|(r, _)| r == "/items"), "{routes:?}");
                assert_eq!(routes.iter().map(|(_, n)| n).sum::<u64>(), 8);
                let spans = hub.otlp_spans();
                assert_eq!(spans.len(), 8);
                assert!(spans.iter().all(|s| s.str("url.path") == Some("/items")));
                assert!(hub.otlp_events("apitally.request.server_error").is_empty());
            }
        }
    }
}

#[derive(Debug)]
struct CacheMiss {
    source: std::io::Error,
}

impl std::fmt::Display for CacheMiss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "price cache unavailable for \"customer-secret-sku\"")
    }
}

impl std::error::Error for CacheMiss {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

#[derive(serde::Deserialize)]
struct Who {
    user: String,
    plan: Option<String>,
}

#[apitally_actix::consumer(q.user.clone(), name = "Macro User", attributes(plan = q.plan, seats = 3))]
async fn tagged(q: web::Query<Who>) -> HttpResponse {
    let _ = &q;
    HttpResponse::Ok().finish()
}

/// Consumer attributes (set in a handler and by the macro), request attributes (also from an
/// inner middleware that rejects with `Err`) and a captured exception on a request answered
/// 200, decoded from real OTLP exports: the consumer update events, the SERVER span's
/// attributes and exception event, the server-error event; the callbacks see the attributes.
#[actix_web::test]
async fn attributes_and_captured_exceptions_reach_apitally_1x() {
    use std::sync::{Arc, Mutex};

    use actix_web::{
        body::MessageBody,
        dev::{ServiceRequest, ServiceResponse},
        middleware::{from_fn, Next},
        HttpRequest,
    };
    use apitally_actix::{config::AttributeValue, Consumer, ConsumerExt};

    async fn guard(
        req: ServiceRequest,
        next: Next<impl MessageBody>,
    ) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
        if req.path() == "/denied" {
            req.set_request_attribute("reason", "no-key");
            req.set_consumer("customer-denied");
            return Err(actix_web::error::ErrorForbidden("no key"));
        }
        next.call(req).await
    }

    let hub = TestHub::start();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let masked_seen = Arc::new(Mutex::new(Vec::new()));
    let config = otlp(&hub)
        .sample_on_response({
            let seen = Arc::clone(&seen);
            move |res| {
                seen.lock()
                    .unwrap()
                    .push((res.path().to_owned(), res.attribute("tenant").cloned()));
                None
            }
        })
        .request_logging(
            RequestLoggingConfig::new()
                .mask_request_body({
                    let masked_seen = Arc::clone(&masked_seen);
                    move |req| {
                        masked_seen.lock().unwrap().push(req.attributes.clone());
                        None
                    }
                })
                .capture_request_body(true),
        );
    let apitally = Apitally::try_new(config).unwrap();
    let (server, port) = spawn_server!(1, {
        let apitally = apitally.clone();
        move || {
            App::new()
                .wrap(from_fn(guard))
                .wrap(apitally.clone())
                .route(
                    "/prices",
                    web::post().to(|req: HttpRequest| async move {
                        req.set_consumer(
                            Consumer::new("customer-1")
                                .name("Customer 1")
                                .attribute("plan", "enterprise")
                                .attribute("seats", 250)
                                .attribute("legacy", None::<&str>),
                        );
                        req.set_request_attribute("tenant", "acme");
                        req.set_request_attribute("rows", 12);
                        req.set_request_attribute("api_token", "tok-123");
                        req.set_request_attribute("http.route", "/spoofed");
                        let miss = CacheMiss {
                            source: std::io::Error::other("connection refused"),
                        };
                        req.capture_exception(&miss);
                        // Only the first counts.
                        req.capture_exception(&std::io::Error::other("second"));
                        HttpResponse::Ok().body("[]")
                    }),
                )
                .route("/tagged", web::get().to(tagged))
                .route("/denied", web::get().to(HttpResponse::Ok))
        }
    });
    let client = awc::Client::default();
    let res = client
        .post(format!("http://127.0.0.1:{port}/prices"))
        .content_type("application/json")
        .send_body("{}")
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    for path in ["/tagged?user=u-9&plan=pro", "/denied"] {
        client
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await
            .unwrap();
    }
    server.stop(true).await;
    apitally.shutdown().await;

    // Consumer updates carry the attributes, a deleted one as null.
    let updates: Vec<serde_json::Value> = hub
        .otlp_events("apitally.consumer.update")
        .into_iter()
        .map(|e| e.body)
        .collect();
    assert!(
        updates.contains(&serde_json::json!({
            "identifier": "customer-1",
            "name": "Customer 1",
            "attributes": {"plan": "enterprise", "seats": "250", "legacy": null},
        })),
        "{updates:#?}"
    );
    assert!(
        updates.contains(&serde_json::json!({
            "identifier": "u-9",
            "name": "Macro User",
            "attributes": {"plan": "pro", "seats": "3"},
        })),
        "{updates:#?}"
    );

    // The request's span: its attributes (typed, a sensitive one masked, a reserved one
    // refused), their keys, and the first captured exception.
    let spans = hub.otlp_spans();
    let span = spans
        .iter()
        .find(|s| s.is_server() && s.str("url.path") == Some("/prices"))
        .expect("the /prices span");
    assert_eq!(span.str("tenant"), Some("acme"));
    assert_eq!(span.int("rows"), Some(12));
    assert_eq!(span.str("api_token"), Some("[REDACTED]"));
    assert_eq!(span.str("http.route"), Some("/prices"));
    assert_eq!(
        span.attributes["apitally.request.custom_attribute_keys"],
        serde_json::json!(["tenant", "rows", "api_token"])
    );
    assert_eq!(span.int("http.response.status_code"), Some(200));
    let exception = span
        .events
        .iter()
        .find(|e| e.name == "exception")
        .expect("an exception event");
    assert_eq!(
        exception.attributes["exception.type"],
        "it::production::CacheMiss"
    );
    // Scrubbed like every server error: the quoted value is left out.
    assert_eq!(
        exception.attributes["exception.message"],
        "price cache unavailable for"
    );
    let stacktrace = exception.attributes["exception.stacktrace"]
        .as_str()
        .unwrap();
    assert!(
        stacktrace.starts_with("Caused by: connection refused\n"),
        "{stacktrace}"
    );
    assert!(stacktrace.contains("production::"), "{stacktrace}");
    // The server-error aggregate, for a request answered 200.
    let errors = hub.otlp_events("apitally.request.server_error");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].body["type"], "it::production::CacheMiss");

    // The inner middleware's Err exit keeps what the request noted.
    let denied = spans
        .iter()
        .find(|s| s.is_server() && s.str("url.path") == Some("/denied"))
        .expect("the /denied span");
    assert_eq!(denied.str("reason"), Some("no-key"));
    assert_eq!(
        denied.str("apitally.consumer.identifier"),
        Some("customer-denied")
    );

    // The callbacks saw the attributes (the masking callback, masked).
    let seen = seen.lock().unwrap().clone();
    assert!(seen.contains(&(
        "/prices".to_owned(),
        Some(AttributeValue::String("acme".into()))
    )));
    let masked_seen = masked_seen.lock().unwrap().clone();
    assert_eq!(
        masked_seen,
        [vec![
            ("tenant".to_owned(), AttributeValue::from("acme")),
            ("rows".to_owned(), AttributeValue::from(12)),
            ("api_token".to_owned(), AttributeValue::from("[REDACTED]")),
        ]]
    );
}

/// Over hub v2, a captured exception is a server error of its request (answered 200), and
/// the attributes (which the hub has no field for) are not sent.
#[actix_web::test]
async fn a_captured_exception_is_a_hub_server_error_too() {
    use actix_web::HttpRequest;
    use apitally_actix::ConsumerExt;

    let hub = TestHub::start();
    let apitally =
        Apitally::try_new(common::config(&hub).request_logging(RequestLoggingConfig::new()))
            .unwrap();
    let app = actix_web::test::init_service(App::new().wrap(apitally.clone()).route(
        "/prices",
        web::get().to(|req: HttpRequest| async move {
            req.set_request_attribute("tenant", "acme");
            req.capture_exception(&CacheMiss {
                source: std::io::Error::other("down"),
            });
            HttpResponse::Ok().finish()
        }),
    ))
    .await;
    actix_web::test::call_and_read_body(
        &app,
        actix_web::test::TestRequest::get()
            .uri("/prices")
            .to_request(),
    )
    .await;
    apitally.shutdown().await;
    let errors = common::items(&hub, "server_errors");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["type"], "it::production::CacheMiss");
    assert_eq!(errors[0]["msg"], "price cache unavailable for");
    assert!(errors[0]["traceback"]
        .as_str()
        .unwrap()
        .starts_with("Caused by: down"));
    assert_eq!(common::count(&hub, "GET", "/prices", Some(200), None), 1);
    let lines = common::log_lines(&hub);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["exception"]["type"], "it::production::CacheMiss");
    assert!(!lines[0].to_string().contains("acme"), "{}", lines[0]);
}

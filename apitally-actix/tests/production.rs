//! What differs between a production deployment and a test bench, end to end against a real
//! `HttpServer` and the test hub: client addresses behind proxies, WebSockets, consumer and
//! request attributes, captured exceptions, and the 1.x defaults of request logging.

#[macro_use]
mod common;

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
                    actix_ws::Message::Text(text) => {
                        if session.text(text).await.is_err() {
                            return;
                        }
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

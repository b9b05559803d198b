//! Request logging against the test hub: the uploaded gzip files are decoded and checked line
//! by line.

use crate::common;

use std::time::Duration;

use actix_web::{test, web, App, HttpRequest, HttpResponse};
use apitally_actix::{Apitally, ApitallyConfig, ConsumerExt, RequestLoggingConfig};
use apitally_test_hub::{capture_logs, Reply};
use base64::Engine;
use common::{count, TestHub};
use futures_util::stream;
use serde_json::Value;

fn log_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("apitally-logs-{}", uuid::Uuid::new_v4()))
}

fn with_logging(hub: &TestHub, logging: RequestLoggingConfig) -> (Apitally, std::path::PathBuf) {
    let dir = log_dir();
    let d = dir.clone();
    let config: ApitallyConfig = common::config(hub)
        .request_logging(logging)
        .test_client_config(move |c| c.test_log_dir(d));
    (Apitally::try_new(config).unwrap(), dir)
}

use common::log_lines as lines;

fn line_for<'a>(lines: &'a [Value], method: &str, url_part: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| {
            l["request"]["method"] == method
                && l["request"]["url"].as_str().unwrap().contains(url_part)
        })
        .unwrap_or_else(|| panic!("no line for {method} {url_part}: {lines:#?}"))
}

fn decode(v: &Value) -> String {
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap(),
    )
    .unwrap()
}

fn header<'a>(headers: &'a Value, name: &str) -> Option<&'a str> {
    headers
        .as_array()?
        .iter()
        .find(|h| h[0] == name)
        .and_then(|h| h[1].as_str())
}

async fn plain() -> &'static str {
    "just text"
}

async fn boom() -> actix_web::Result<HttpResponse> {
    Err(actix_web::error::ErrorInternalServerError("db down"))
}

async fn echo(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    req.set_consumer("customer-7");
    HttpResponse::Created()
        .insert_header(("set-cookie", "session=abc"))
        .insert_header(("x-request-id", "r-1"))
        .content_type("application/json")
        .body(body)
}

#[actix_web::test]
async fn lines_are_masked_and_complete() {
    let hub = TestHub::start();
    let (apitally, dir) = with_logging(
        &hub,
        RequestLoggingConfig::new()
            .log_request_headers(true)
            .log_request_body(true)
            .log_response_body(true)
            .mask_headers(["x-internal-.*"])
            .mask_body_fields(["iban"]),
    );
    let app = test::init_service(
        App::new()
            .wrap(apitally.clone())
            .route("/items/{id}", web::post().to(echo))
            .route("/plain", web::get().to(plain))
            .route("/boom", web::get().to(boom)),
    )
    .await;
    let body = r#"{"name":"Widget","password":"hunter2","nested":{"token":"t0k","list":[{"secret":"s3"}]},"iban":"DE00","count":3}"#;
    let req = test::TestRequest::post()
        .uri("/items/5?token=abc&page=2&api_key=k1")
        .insert_header(("content-type", "application/json"))
        .insert_header(("authorization", "Bearer SECRET-BEARER"))
        .insert_header(("cookie", "sid=SECRET-COOKIE"))
        .insert_header(("x-api-key", "SECRET-KEY"))
        .insert_header(("x-internal-id", "SECRET-INTERNAL"))
        .insert_header(("x-forwarded-proto", "https"))
        .insert_header(("user-agent", "curl/8.5.0"))
        .set_payload(body)
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 201);
    // The handler received the body intact.
    assert_eq!(test::read_body(res).await, body);
    test::call_and_read_body(&app, test::TestRequest::get().uri("/plain").to_request()).await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/boom").to_request()).await;
    drop(res);
    // Unmatched: logged without path, never counted.
    let res = test::call_service(&app, test::TestRequest::get().uri("/nowhere").to_request()).await;
    drop(res);
    apitally.shutdown().await;

    let lines = lines(&hub);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let raw: String = hub
        .received_at("log")
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    let all = serde_json::to_string(&lines).unwrap();
    for secret in ["SECRET-", "hunter2", "t0k", "\"s3\"", "DE00", "abc&", "k1"] {
        assert!(!all.contains(secret), "{secret} leaked: {all}");
        assert!(!raw.contains(secret));
    }
    let line = line_for(&lines, "POST", "/items/5");
    assert!(uuid::Uuid::try_parse(line["uuid"].as_str().unwrap()).is_ok());
    let r = &line["request"];
    assert_eq!(r["path"], "/items/{id}");
    assert_eq!(r["method"], "POST");
    assert_eq!(
        r["url"],
        "https://localhost:8080/items/5?token=%2A%2A%2A%2A%2A%2A&page=2&api_key=%2A%2A%2A%2A%2A%2A"
    );
    assert_eq!(r["consumer"], "customer-7");
    assert_eq!(r["size"], body.len());
    assert!(r["timestamp"].as_f64().unwrap() > 1.7e9);
    for name in ["authorization", "cookie", "x-api-key", "x-internal-id"] {
        assert_eq!(header(&r["headers"], name), Some("******"), "{name}");
    }
    assert_eq!(header(&r["headers"], "user-agent"), Some("curl/8.5.0"));
    assert_eq!(
        decode(&r["body"]),
        r#"{"name":"Widget","password":"******","nested":{"token":"******","list":[{"secret":"******"}]},"iban":"******","count":3}"#
    );
    let s = &line["response"];
    assert_eq!(s["status_code"], 201);
    assert!(s["response_time"].as_f64().unwrap() < 5.0);
    assert_eq!(s["size"], body.len());
    assert_eq!(header(&s["headers"], "set-cookie"), Some("******"));
    assert_eq!(header(&s["headers"], "x-request-id"), Some("r-1"));
    assert!(decode(&s["body"]).contains(r#""password":"******""#));
    assert!(line.get("exception").is_none());

    // Text bodies are logged as they are; a GET has no request body key at all.
    let plain = line_for(&lines, "GET", "/plain");
    assert!(plain["request"].get("body").is_none());
    assert_eq!(decode(&plain["response"]["body"]), "just text");
    let boom = line_for(&lines, "GET", "/boom");
    assert_eq!(boom["response"]["status_code"], 500);
    assert_eq!(boom["exception"]["message"], "db down");
    assert!(boom["exception"]["type"].is_string());
    assert!(boom["exception"]["traceback"].is_string());
    let nowhere = line_for(&lines, "GET", "/nowhere");
    assert!(nowhere["request"].get("path").is_none());
    assert_eq!(nowhere["response"]["status_code"], 404);
    assert_eq!(count(&hub, "GET", "/nowhere", None, None), 0);
    // Uploaded files are deleted.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir_all(dir).ok();
}

#[actix_web::test]
async fn exclusions_markers_streams_and_callbacks() {
    let hub = TestHub::start();
    let (apitally, dir) = with_logging(
        &hub,
        RequestLoggingConfig::new()
            .log_request_body(true)
            .log_response_body(true)
            .log_response_headers(false)
            .log_query_params(false)
            .exclude_paths(["/internal/.*"])
            .exclude(|req, res| req.method == "DELETE" || res.status_code == 418)
            .mask_response_body(|req, _| {
                (!req.url.contains("/masked")).then(|| b"{\"replaced\":true}".to_vec())
            }),
    );
    let big = "x".repeat(60_000);
    let app = test::init_service(
        App::new()
            .wrap(apitally.clone())
            .route("/health", web::get().to(|| async { "ok" }))
            .route("/internal/stats", web::get().to(|| async { "ok" }))
            .route("/gone", web::delete().to(HttpResponse::NoContent))
            .route(
                "/tea",
                web::get().to(|| async {
                    HttpResponse::build(actix_web::http::StatusCode::IM_A_TEAPOT).finish()
                }),
            )
            .route("/seen", web::get().to(|| async { "ok" }))
            .route(
                "/masked",
                web::get().to(|| async {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body("{\"a\":1}")
                }),
            )
            .route(
                "/upload",
                web::post().to(|body: web::Bytes| async move {
                    HttpResponse::Ok()
                        .content_type("text/plain")
                        .body(body.len().to_string())
                }),
            )
            .route(
                "/stream",
                web::get().to(|| async {
                    let chunks = (0..3).map(|i| {
                        Ok::<_, actix_web::Error>(web::Bytes::from(format!("{{\"chunk\":{i}}}\n")))
                    });
                    HttpResponse::Ok()
                        .content_type("application/x-ndjson")
                        .streaming(stream::iter(chunks))
                }),
            )
            .route(
                "/big-stream",
                web::get().to(|| async {
                    let chunks = (0..8)
                        .map(|_| Ok::<_, actix_web::Error>(web::Bytes::from(vec![b'y'; 10_000])));
                    HttpResponse::Ok()
                        .content_type("text/plain")
                        .streaming(stream::iter(chunks))
                }),
            ),
    )
    .await;
    let get = |uri: &str| test::TestRequest::get().uri(uri).to_request();
    for uri in [
        "/health",
        "/internal/stats",
        "/tea",
        "/seen?secret=1",
        "/masked",
        "/stream",
        "/big-stream",
    ] {
        test::call_and_read_body(&app, get(uri)).await;
    }
    test::call_and_read_body(&app, test::TestRequest::delete().uri("/gone").to_request()).await;
    let probe = test::TestRequest::get()
        .uri("/seen")
        .insert_header(("user-agent", "kube-probe/1.29"))
        .to_request();
    test::call_and_read_body(&app, probe).await;
    // Over the limit by Content-Length: not buffered, the handler still reads all of it.
    let res = test::call_and_read_body(
        &app,
        test::TestRequest::post()
            .uri("/upload")
            .insert_header(("content-type", "text/plain"))
            .set_payload(big.clone())
            .to_request(),
    )
    .await;
    assert_eq!(res, "60000");
    // A chunked body the handler reads intact, captured as it streams.
    let chunked = actix_web::test::TestRequest::post()
        .uri("/upload")
        .insert_header(("content-type", "application/json"))
        .insert_header(("transfer-encoding", "chunked"))
        .set_payload(r#"{"pwd":"p4ss","n":1}"#)
        .to_request();
    assert_eq!(test::call_and_read_body(&app, chunked).await, "20");
    apitally.shutdown().await;

    let lines = lines(&hub);
    let urls: Vec<&str> = lines
        .iter()
        .map(|l| l["request"]["url"].as_str().unwrap())
        .collect();
    // Excluded: default health path, user pattern, callback (DELETE, 418), probe user agent.
    assert_eq!(urls.len(), 6, "{urls:#?}");
    assert!(urls.iter().all(|u| !u.contains("/health")
        && !u.contains("/internal")
        && !u.contains("/tea")
        && !u.contains("/gone")));
    // Exclusions never touch metrics.
    assert_eq!(count(&hub, "GET", "/health", None, None), 1);
    assert_eq!(count(&hub, "GET", "/seen", None, None), 2);
    // Query strings removed.
    assert!(urls.iter().all(|u| !u.contains('?')), "{urls:?}");
    let seen = line_for(&lines, "GET", "/seen");
    assert!(seen["response"].get("headers").is_none());
    assert_eq!(decode(&seen["response"]["body"]), r#"{"replaced":true}"#);
    let masked = line_for(&lines, "GET", "/masked");
    assert_eq!(decode(&masked["response"]["body"]), "<masked>");
    assert_eq!(masked["response"]["body"], "PG1hc2tlZD4=");
    let streamed = line_for(&lines, "GET", "/stream");
    assert_eq!(
        decode(&streamed["response"]["body"]),
        r#"{"replaced":true}"#
    );
    let big_stream = line_for(&lines, "GET", "/big-stream");
    assert_eq!(big_stream["response"]["body"], "PGJvZHkgdG9vIGxhcmdlPg==");
    assert_eq!(big_stream["response"]["size"], 80_000);
    let uploads: Vec<&Value> = lines
        .iter()
        .filter(|l| l["request"]["url"].as_str().unwrap().ends_with("/upload"))
        .collect();
    assert_eq!(uploads.len(), 2);
    let too_large = uploads
        .iter()
        .find(|l| l["request"]["size"] == 60_000)
        .unwrap();
    assert_eq!(decode(&too_large["request"]["body"]), "<body too large>");
    let chunked = uploads.iter().find(|l| l["request"]["size"] == 20).unwrap();
    assert_eq!(
        decode(&chunked["request"]["body"]),
        r#"{"pwd":"******","n":1}"#
    );
    std::fs::remove_dir_all(dir).ok();
}

#[actix_web::test]
async fn payment_required_suspends_logging() {
    for (reply, seconds) in [
        (
            Reply::WithHeaders(402, vec![("retry-after".into(), "1".into())]),
            Some(1),
        ),
        (Reply::Status(402), None),
    ] {
        let hub = TestHub::start();
        let dir = log_dir();
        let d = dir.clone();
        let apitally = Apitally::try_new(
            common::config(&hub)
                .request_logging(RequestLoggingConfig::new())
                .test_client_config(move |c| {
                    c.test_log_dir(d)
                        .test_sync_interval(Duration::from_millis(200))
                }),
        )
        .unwrap();
        let app = test::init_service(
            App::new()
                .wrap(apitally.clone())
                .route("/{n}", web::get().to(|| async { "a" })),
        )
        .await;
        let suspensions = || {
            capture_logs()
                .matching(log::Level::Warn, "request logging is suspended for")
                .len()
        };
        let before = suspensions();
        hub.script("log", [reply]);
        test::call_and_read_body(&app, test::TestRequest::get().uri("/first").to_request()).await;
        // The client took the 402 (not only the hub sent it).
        assert!(hub.wait_until(Duration::from_secs(10), |_| suspensions() > before));
        // Suspended: not logged (metrics go on).
        test::call_and_read_body(&app, test::TestRequest::get().uri("/during").to_request()).await;
        if seconds.is_some() {
            // Retry-After: 1 — wait for logging to resume.
            let logging = || {
                apitally
                    .pipeline()
                    .client()
                    .request_logger()
                    .is_some_and(|l| l.is_logging())
            };
            assert!(hub.wait_until(Duration::from_secs(10), |_| logging()));
        }
        test::call_and_read_body(&app, test::TestRequest::get().uri("/after").to_request()).await;
        // The final sync writes and uploads what is logged.
        apitally.shutdown().await;
        let urls: Vec<String> = lines(&hub)
            .iter()
            .map(|l| l["request"]["url"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            urls.iter()
                .all(|u| !u.ends_with("/first") && !u.ends_with("/during")),
            "{urls:?}"
        );
        match seconds {
            // Retry-After: 1 — logging resumed.
            Some(_) => assert!(urls.iter().any(|u| u.ends_with("/after")), "{urls:?}"),
            // No Retry-After: suspended for an hour.
            None => assert!(urls.is_empty(), "{urls:?}"),
        }
        let log_posts = hub.received_at("log");
        assert!(log_posts[0].query.starts_with("uuid="));
        assert_eq!(count(&hub, "GET", "/{n}", Some(200), None), 3);
        // Nothing is left behind in the log directory.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(dir).ok();
    }
}

#[actix_web::test]
async fn files_rotate_and_are_bounded_while_the_hub_refuses_them() {
    let hub = TestHub::start();
    hub.set_default("log", Reply::Status(503));
    let dir = log_dir();
    let d = dir.clone();
    let apitally = Apitally::try_new(
        common::config(&hub)
            .request_logging(
                RequestLoggingConfig::new()
                    .log_response_body(true)
                    .test_max_file_size(200),
            )
            .test_client_config(move |c| {
                c.test_log_dir(d)
                    .test_sync_interval(Duration::from_millis(100))
                    .test_retry_backoff(Duration::from_millis(1))
            }),
    )
    .unwrap();
    let app = test::init_service(App::new().wrap(apitally.clone()).route(
        "/r/{n}",
        web::get().to(|req: HttpRequest| async move {
            // Random hex: incompressible enough that each item fills a small file.
            let text: String = (0..20)
                .map(|_| uuid::Uuid::new_v4().simple().to_string())
                .collect();
            HttpResponse::Ok()
                .content_type("text/plain")
                .body(format!("{} {text}", req.path()))
        }),
    ))
    .await;
    for n in 0..70 {
        test::call_and_read_body(
            &app,
            test::TestRequest::get()
                .uri(&format!("/r/{n}"))
                .to_request(),
        )
        .await;
        // Spaced so that the writer takes most items in a batch of their own.
        actix_rt::time::sleep(Duration::from_millis(15)).await;
    }
    let on_disk = || std::fs::read_dir(&dir).unwrap().count();
    assert!(
        hub.wait_until(Duration::from_secs(10), |_| on_disk() >= 40),
        "files rotated: {}",
        on_disk()
    );
    let on_disk = on_disk();
    // 50 closed + the one being written.
    assert!(on_disk <= 51, "{on_disk} files on disk");
    // Failed uploads keep files and retry the same UUID, at most 10 per cycle.
    let first_retried = |r: &[apitally_test_hub::Received]| {
        let mut posts = r.iter().filter(|r| r.endpoint == "log");
        posts
            .next()
            .is_some_and(|first| posts.any(|p| p.query == first.query))
    };
    assert!(hub.wait_until(Duration::from_secs(10), first_retried));
    // The hub comes back: everything kept is delivered and deleted.
    hub.set_default("log", Reply::Status(202));
    assert!(
        hub.wait_until(Duration::from_secs(20), |_| std::fs::read_dir(&dir)
            .is_ok_and(|d| d.count() == 0))
    );
    apitally.shutdown().await;
    let delivered = lines(&hub).len();
    assert!((45..=70).contains(&delivered), "{delivered}");
    std::fs::remove_dir_all(dir).ok();
}

#[actix_web::test]
async fn an_unwritable_directory_turns_logging_off_and_metrics_go_on() {
    let hub = TestHub::start();
    let file = std::env::temp_dir().join(format!("apitally-not-a-dir-{}", uuid::Uuid::new_v4()));
    std::fs::write(&file, b"x").unwrap();
    let f = file.join("sub");
    let apitally = Apitally::try_new(
        common::config(&hub)
            .request_logging(RequestLoggingConfig::new())
            .test_client_config(move |c| c.test_log_dir(f)),
    )
    .unwrap();
    assert!(apitally.pipeline().client().request_logger().is_none());
    let app = test::init_service(
        App::new()
            .wrap(apitally.clone())
            .route("/a", web::get().to(|| async { "a" })),
    )
    .await;
    test::call_and_read_body(&app, test::TestRequest::get().uri("/a").to_request()).await;
    apitally.shutdown().await;
    assert_eq!(count(&hub, "GET", "/a", Some(200), None), 1);
    assert!(hub.received_at("log").is_empty());
    std::fs::remove_file(file).ok();
}

/// Log items are reused once written (their buffers are kept): nothing of a request may show
/// in the line of a later request that reuses its item.
#[actix_web::test]
async fn reused_items_carry_nothing_over() {
    let hub = TestHub::start();
    let (apitally, dir) = with_logging(
        &hub,
        RequestLoggingConfig::new()
            .log_request_headers(true)
            .log_request_body(true)
            .log_response_body(true),
    );
    let flush =
        || apitally_core::test_util::flush(apitally.pipeline().client().request_logger().unwrap());
    let app = test::init_service(
        App::new()
            .wrap(apitally.clone())
            .route("/items/{id}", web::post().to(echo))
            .route("/plain", web::get().to(plain))
            .route("/boom", web::get().to(boom))
            .route(
                "/panic",
                web::get().to(|| async {
                    if true {
                        panic!("handler gave up");
                    }
                    HttpResponse::Ok().finish()
                }),
            ),
    )
    .await;
    let full = || {
        test::TestRequest::post()
            .uri("/items/5?page=2")
            .insert_header(("content-type", "application/json"))
            .insert_header(("x-first", "one"))
            .insert_header(("user-agent", "curl/8.5.0"))
            .set_payload(r#"{"name":"Widget"}"#)
            .to_request()
    };
    // Each round: a request that fills every field, written (its item becomes a spare), then
    // requests that fill few, which take the spares.
    for _ in 0..3 {
        test::call_and_read_body(&app, full()).await;
        let res =
            test::call_service(&app, test::TestRequest::get().uri("/boom").to_request()).await;
        drop(res);
        // A panic: the item is finished without a response head.
        let req = test::TestRequest::get().uri("/panic").to_request();
        assert!(test::try_call_service(&app, req).await.is_err());
        flush();
        for _ in 0..2 {
            let req = test::TestRequest::get()
                .uri("/plain")
                .insert_header(("x-second", "two"))
                .to_request();
            test::call_and_read_body(&app, req).await;
            let req = test::TestRequest::get().uri("/nowhere").to_request();
            drop(test::call_service(&app, req).await);
        }
        flush();
    }
    apitally.shutdown().await;

    let lines = lines(&hub);
    assert_eq!(lines.len(), 21, "{lines:#?}");
    for line in &lines {
        let r = &line["request"];
        let s = &line["response"];
        let url = r["url"].as_str().unwrap();
        if url.ends_with("/items/5?page=2") {
            assert_eq!(r["consumer"], "customer-7");
            assert_eq!(decode(&r["body"]), r#"{"name":"Widget"}"#);
            assert_eq!(header(&r["headers"], "x-first"), Some("one"));
            continue;
        }
        // Nothing of the full request (or of the error) in the others.
        assert!(r.get("consumer").is_none(), "{line}");
        assert!(r.get("body").is_none(), "{line}");
        assert!(r.get("size").is_none(), "{line}");
        assert_eq!(header(&r["headers"], "x-first"), None, "{line}");
        assert_eq!(header(&r["headers"], "user-agent"), None, "{line}");
        assert_eq!(header(&s["headers"], "set-cookie"), None, "{line}");
        assert_eq!(r["method"], "GET");
        if url.ends_with("/boom") {
            assert_eq!(s["status_code"], 500);
            assert_eq!(line["exception"]["message"], "db down");
            continue;
        }
        if url.ends_with("/panic") {
            assert_eq!(s["status_code"], 500);
            assert!(s.get("headers").is_none(), "{line}");
            assert_eq!(line["exception"]["message"], "handler gave up");
            continue;
        }
        assert!(line.get("exception").is_none(), "{line}");
        if url.ends_with("/plain") {
            assert_eq!(header(&r["headers"], "x-second"), Some("two"), "{line}");
            assert_eq!(r["path"], "/plain");
            assert_eq!(decode(&s["body"]), "just text");
        } else {
            assert!(url.ends_with("/nowhere"), "{line}");
            assert!(r.get("headers").is_none(), "{line}");
            assert!(r.get("path").is_none(), "{line}");
            assert_eq!(s["status_code"], 404);
            assert!(s.get("body").is_none(), "{line}");
        }
    }
    std::fs::remove_dir_all(dir).ok();
}

#[actix_web::test]
async fn a_request_without_a_body_has_none_to_capture_or_mask() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let hub = TestHub::start();
    let masked = Arc::new(AtomicUsize::new(0));
    let calls = Arc::clone(&masked);
    let (apitally, dir) = with_logging(
        &hub,
        RequestLoggingConfig::new()
            .log_request_body(true)
            .mask_request_body(move |req| {
                calls.fetch_add(1, Ordering::Relaxed);
                req.body.clone()
            }),
    );
    // A real server: only actix-http's parser gives a request without a body no payload at
    // all (`TestRequest` gives an empty one).
    let app = apitally.clone();
    let (server, port) = spawn_server!(1, move || {
        App::new()
            .wrap(app.clone())
            .route("/items", web::get().to(plain))
            .route("/items", web::post().to(echo))
    });
    let client = awc::Client::default();
    let url = format!("http://127.0.0.1:{port}/items");
    // Clients often send a JSON content type on every request, bodies or not.
    let mut res = client
        .get(&url)
        .insert_header(("content-type", "application/json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.body().await.unwrap(), "just text");
    let mut res = client
        .post(&url)
        .insert_header(("content-type", "application/json"))
        .send_body(r#"{"token":"t","n":2}"#)
        .await
        .unwrap();
    res.body().await.unwrap();
    server.stop(true).await;
    apitally.shutdown().await;

    let lines = lines(&hub);
    let get = line_for(&lines, "GET", "/items");
    assert!(get["request"].get("body").is_none(), "{get:#}");
    let post = line_for(&lines, "POST", "/items");
    assert_eq!(
        decode(&post["request"]["body"]),
        r#"{"token":"******","n":2}"#
    );
    // The callback only saw the request that had a body.
    assert_eq!(masked.load(Ordering::Relaxed), 1);
    std::fs::remove_dir_all(dir).ok();
}

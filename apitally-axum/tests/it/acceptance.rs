//! The acceptance suite against a real `axum::serve`, in both protocols: exact counts and byte
//! sums per (consumer, method, route, status) for the three ways of naming a consumer, nested,
//! merged and layered routes, streamed bodies, validation and server errors, panics, the
//! fallback and `405`s, a client that goes away; request logs masked.

use std::{collections::BTreeMap, time::Duration};

use apitally_axum::{
    ApitallyRequest, Consumer, ConsumerExt, RequestLoggingConfig, ServerErrorExtension,
};
use apitally_test_hub::{ErrorKey, RequestKey, Totals};
use axum::{
    body::Body,
    extract::{Path, Query, Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use futures_util::stream;

use crate::common::{self, send, TestHub, PROTOCOLS};

#[derive(serde::Deserialize)]
struct Who {
    user: Option<String>,
}

#[apitally_axum::consumer(q.user.clone(), name = "Macro")]
async fn item(Path(id): Path<u32>, q: Query<Who>) -> String {
    let _ = &q;
    format!("{{\"id\":{id}}}")
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Order {
    name: String,
    qty: u32,
    password: String,
}

async fn create(Json(order): Json<Order>) -> (StatusCode, String) {
    (StatusCode::CREATED, format!("created {}", order.name))
}

/// The app's auth layer: names the consumer from `x-user`, rejects `bad`.
async fn auth(req: Request, next: Next) -> Response {
    match req.headers().get("x-user").and_then(|v| v.to_str().ok()) {
        Some("bad") => {
            req.set_consumer("rejected-user");
            StatusCode::UNAUTHORIZED.into_response()
        }
        Some(user) => {
            req.set_consumer(Consumer::new(user));
            next.run(req).await
        }
        None => next.run(req).await,
    }
}

#[derive(Debug)]
struct DbDown;

impl std::fmt::Display for DbDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("database unavailable")
    }
}

impl std::error::Error for DbDown {}

#[derive(Clone)]
struct AppState {
    greeting: &'static str,
}

fn app(apitally: apitally_axum::ApitallyLayer) -> Router {
    let nested = Router::new().route(
        "/things/{id}",
        get(|Path(id): Path<u32>| async move { format!("thing {id}") }),
    );
    let merged = Router::new().route("/merged", get(|| async { "merged" }));
    let stateful = Router::new()
        .route(
            "/hello",
            get(|State(s): State<AppState>| async move { s.greeting }),
        )
        .with_state(AppState { greeting: "hello!" });
    Router::new()
        .route("/items/{id}", get(item))
        .route("/orders", post(create))
        .route("/tenants/{t}/report", get(|| async { "report" }))
        .route(
            "/stream",
            get(|| async {
                let chunks = ["a".repeat(1000), "b".repeat(1000), "c".repeat(500)];
                Body::from_stream(stream::iter(
                    chunks.map(|c| Ok::<_, std::io::Error>(bytes::Bytes::from(c))),
                ))
            }),
        )
        .route(
            "/upload",
            post(|body: String| async move { format!("{}", body.len()) }),
        )
        .route(
            "/boom",
            get(|| async {
                let mut res = (StatusCode::INTERNAL_SERVER_ERROR, "try later").into_response();
                res.extensions_mut()
                    .insert(ServerErrorExtension::new(&DbDown));
                res
            }),
        )
        .route(
            "/panic",
            get(|| async {
                if std::hint::black_box(true) {
                    panic!("handler bug");
                }
                "unreachable"
            }),
        )
        .route(
            "/captured",
            get(|apitally: ApitallyRequest| async move {
                apitally.capture_exception(&DbDown);
                "served from cache"
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "slow"
            }),
        )
        .route_layer(middleware::from_fn(|req: Request, next: Next| async move {
            next.run(req).await
        }))
        .nest("/api", nested)
        .merge(merged)
        .merge(stateful)
        .layer(middleware::from_fn(auth))
        .layer(apitally)
}

fn key(consumer: Option<&str>, method: &str, route: &str, status: u16) -> RequestKey {
    (
        consumer.map(str::to_owned),
        method.to_owned(),
        route.to_owned(),
        status,
    )
}

fn totals(count: u64, request_bytes: u64, response_bytes: u64) -> Totals {
    Totals {
        count,
        request_bytes,
        response_bytes,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_app_in_both_protocols_gives_the_same_exact_numbers() {
    for protocol in PROTOCOLS {
        let hub = TestHub::start();
        let config = common::config(&hub, protocol)
            .identify_consumer(|parts| {
                let tenant = parts.headers.get("x-tenant")?.to_str().ok()?;
                Some(Consumer::new(format!("tenant-{tenant}")))
            })
            .request_logging(
                RequestLoggingConfig::new()
                    .log_request_headers(true)
                    .log_request_body(true),
            );
        let apitally = common::layer(config);
        let (port, stop, task) = common::serve(app(apitally.clone())).await;
        let order = br#"{"name":"Widget","qty":2,"password":"hunter2"}"#;
        let bad_order = br#"{"name":"Widget","qty":"two","password":"hunter2"}"#;
        let upload = common::chunked(&[&[b'x'; 700], &[b'y'; 300]]);
        let replies = tokio::task::spawn_blocking(move || {
            let mut replies = BTreeMap::new();
            let mut run = |name: &str, head: &str, body: &[u8]| {
                replies.insert(name.to_owned(), send(port, head, body));
            };
            for i in 0..3 {
                run(
                    &format!("macro-{i}"),
                    &format!("GET /items/{i}?user=u-1 HTTP/1.1"),
                    b"",
                );
            }
            run("anonymous", "GET /items/9 HTTP/1.1", b"");
            run(
                "order",
                "POST /orders HTTP/1.1\r\ncontent-type: application/json\r\nx-user: alice",
                order,
            );
            run("rejected", "POST /orders HTTP/1.1\r\nx-user: bad", b"");
            run(
                "invalid-json",
                "POST /orders HTTP/1.1\r\ncontent-type: application/json\r\nx-user: alice",
                bad_order,
            );
            run("invalid-path", "GET /items/abc HTTP/1.1", b"");
            run(
                "tenant",
                "GET /tenants/7/report HTTP/1.1\r\nx-tenant: 7",
                b"",
            );
            run("nested", "GET /api/things/5 HTTP/1.1", b"");
            run("merged", "GET /merged HTTP/1.1", b"");
            run("state", "GET /hello HTTP/1.1", b"");
            run("stream", "GET /stream HTTP/1.1", b"");
            run(
                "upload",
                "POST /upload HTTP/1.1\r\ntransfer-encoding: chunked",
                &upload,
            );
            run("boom", "GET /boom HTTP/1.1", b"");
            run("panic", "GET /panic HTTP/1.1", b"");
            run("captured", "GET /captured HTTP/1.1", b"");
            run("fallback", "GET /no/such/path HTTP/1.1", b"");
            run("not-allowed", "DELETE /items/1 HTTP/1.1", b"");
            run("options", "OPTIONS /items/1 HTTP/1.1", b"");
            replies
        })
        .await
        .unwrap();
        // A client that goes away before the response.
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            stream
                .write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\nx-user: leaver\r\n\r\n")
                .unwrap();
            std::thread::sleep(Duration::from_millis(300));
            drop(stream);
        })
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        apitally.shutdown().await;

        let status = |name: &str| replies[name].status;
        let len = |name: &str| replies[name].body.len() as u64;
        assert_eq!(status("order"), 201, "{protocol}");
        assert_eq!(status("rejected"), 401);
        assert_eq!(status("invalid-json"), 422);
        assert_eq!(status("invalid-path"), 400);
        assert_eq!(status("panic"), 500);
        assert_eq!(replies["panic"].body, b"Internal Server Error");
        assert_eq!(status("fallback"), 404);
        assert_eq!(status("not-allowed"), 405);
        assert_eq!(len("stream"), 2_500);

        let mut expected = BTreeMap::new();
        expected.insert(
            key(Some("u-1"), "GET", "/items/{id}", 200),
            totals(3, 0, 3 * len("macro-0")),
        );
        expected.insert(
            key(None, "GET", "/items/{id}", 200),
            totals(1, 0, len("anonymous")),
        );
        expected.insert(
            key(None, "GET", "/items/{id}", 400),
            totals(1, 0, len("invalid-path")),
        );
        expected.insert(
            key(Some("alice"), "POST", "/orders", 201),
            totals(1, order.len() as u64, len("order")),
        );
        expected.insert(
            key(Some("rejected-user"), "POST", "/orders", 401),
            totals(1, 0, 0),
        );
        expected.insert(
            key(Some("alice"), "POST", "/orders", 422),
            totals(1, bad_order.len() as u64, len("invalid-json")),
        );
        expected.insert(
            key(Some("tenant-7"), "GET", "/tenants/{t}/report", 200),
            totals(1, 0, 6),
        );
        expected.insert(
            key(None, "GET", "/api/things/{id}", 200),
            totals(1, 0, len("nested")),
        );
        expected.insert(key(None, "GET", "/merged", 200), totals(1, 0, 6));
        expected.insert(key(None, "GET", "/hello", 200), totals(1, 0, 6));
        expected.insert(key(None, "GET", "/stream", 200), totals(1, 0, 2_500));
        expected.insert(key(None, "POST", "/upload", 200), totals(1, 1_000, 4));
        expected.insert(key(None, "GET", "/boom", 500), totals(1, 0, len("boom")));
        expected.insert(key(None, "GET", "/panic", 500), totals(1, 0, 21));
        expected.insert(
            key(None, "GET", "/captured", 200),
            totals(1, 0, len("captured")),
        );
        expected.insert(key(Some("leaver"), "GET", "/slow", 499), totals(1, 0, 0));
        assert_eq!(hub.request_totals(), expected, "{protocol}");

        let validation: BTreeMap<ErrorKey, u64> = [
            (
                (
                    Some("alice".to_owned()),
                    "POST".to_owned(),
                    "/orders".to_owned(),
                    "invalid_type".to_owned(),
                ),
                1,
            ),
            (
                (
                    None,
                    "GET".to_owned(),
                    "/items/{id}".to_owned(),
                    "type_error".to_owned(),
                ),
                1,
            ),
        ]
        .into();
        assert_eq!(hub.validation_error_totals(), validation, "{protocol}");
        let server: BTreeMap<ErrorKey, u64> = [
            (
                (
                    None,
                    "GET".to_owned(),
                    "/boom".to_owned(),
                    "it::acceptance::DbDown".to_owned(),
                ),
                1,
            ),
            (
                (
                    None,
                    "GET".to_owned(),
                    "/captured".to_owned(),
                    "it::acceptance::DbDown".to_owned(),
                ),
                1,
            ),
            (
                (
                    None,
                    "GET".to_owned(),
                    "/panic".to_owned(),
                    "panic".to_owned(),
                ),
                1,
            ),
        ]
        .into();
        assert_eq!(hub.server_error_totals(), server, "{protocol}");

        // Request logs: every request but OPTIONS, the fallback's too; secrets masked.
        let logged = hub.logged_requests();
        assert!(
            logged.contains(&("GET /no/such/path".to_owned(), 404)),
            "{logged:?}"
        );
        assert!(
            !logged.iter().any(|(r, _)| r.starts_with("OPTIONS")),
            "{logged:?}"
        );
        assert_eq!(
            logged.len(),
            expected.values().map(|t| t.count as usize).sum::<usize>() + 2,
            "{logged:?}"
        );
        let everything = format!("{:?}", hub.received());
        assert!(
            !everything.contains("hunter2"),
            "{protocol}: a password left the app"
        );
    }
}

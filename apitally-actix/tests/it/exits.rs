//! The middleware's exits (a response, a streamed response, a client that disconnects, an `Err`
//! from an inner `from_fn` layer, a handler `Err`, a panic) all record the same fields, on a
//! real server: consumer, route, status, the bytes the client got, and validation errors. And
//! nothing the middleware keeps outlives its request.

use crate::common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    get,
    middleware::{from_fn, Next},
    web, App, HttpMessage, HttpRequest, HttpResponse,
};
use apitally_actix::{Consumer, ConsumerExt, ValidationError, ValidationErrorExt};
use common::{apitally, items, requests, TestHub};
use futures_util::stream;
use serde_json::{json, Value};

/// The app's auth layer, inside Apitally: names the caller from `x-user`, reports a validation
/// error when asked to, and rejects with `403` (an `Err`) when `x-reject` is set.
async fn auth(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(user) = req.headers().get("x-user").and_then(|v| v.to_str().ok()) {
        req.set_consumer(Consumer::new(user).name("User"));
    }
    if req.headers().contains_key("x-invalid") {
        req.add_validation_error(ValidationError::new(
            ["header", "x-invalid"],
            "not allowed",
            "forbidden_header",
        ));
    }
    if req.headers().contains_key("x-reject") {
        return Err(actix_web::error::ErrorForbidden(
            "rejected by the auth layer",
        ));
    }
    next.call(req).await
}

fn stream_body(n: usize, size: usize, delay_ms: u64) -> HttpResponse {
    let body = stream::unfold(0usize, move |i| async move {
        if i == n {
            return None;
        }
        if delay_ms > 0 {
            actix_rt::time::sleep(Duration::from_millis(delay_ms)).await;
        }
        Some((
            Ok::<_, actix_web::Error>(web::Bytes::from(vec![b'x'; size])),
            i + 1,
        ))
    });
    HttpResponse::Ok().streaming(body)
}

#[get("/items/{id}")]
async fn item(id: web::Path<u32>) -> String {
    format!("item {id}")
}

fn app_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(item)
        .route(
            "/stream",
            web::get().to(|| async { stream_body(5, 100, 0) }),
        )
        .route(
            "/slow",
            web::get().to(|| async { stream_body(2_000, 1_000, 5) }),
        )
        .route(
            "/fail/{id}",
            web::post().to(|| async {
                Err::<HttpResponse, _>(actix_web::error::ErrorBadRequest("bad input"))
            }),
        )
        .route(
            "/panic/{id}",
            web::post().to(|| async {
                if std::hint::black_box(true) {
                    panic!("handler panicked");
                }
                HttpResponse::Ok().finish()
            }),
        )
        .service(web::resource("/only-get").route(web::get().to(HttpResponse::Ok)))
        .route(
            "/refuses",
            web::get().to(|| async {
                Err::<HttpResponse, _>(actix_web::error::ErrorMethodNotAllowed("use POST"))
            }),
        );
}

/// Sends a raw HTTP/1.1 request and reads the whole response (the connection is closed).
fn raw(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    response
}

/// The body bytes of a raw response (after the head; chunked framing removed).
fn body_len(response: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut rest = body;
        let mut total = 0;
        loop {
            let (size, tail) = rest.split_once("\r\n").unwrap();
            let size = u64::from_str_radix(size.trim(), 16).unwrap();
            if size == 0 {
                return total;
            }
            total += size;
            rest = &tail[size as usize + 2..];
        }
    }
    body.len() as u64
}

fn only(hub: &TestHub, method: &str, path: &str, status: Option<u16>) -> Value {
    let found: Vec<Value> = requests(hub)
        .into_iter()
        .filter(|r| r["method"] == method && r["path"] == path)
        .filter(|r| status.is_none_or(|s| r["status_code"] == s))
        .collect();
    assert_eq!(found.len(), 1, "{method} {path} {status:?}: {found:#?}");
    found.into_iter().next().unwrap()
}

#[actix_web::test]
async fn every_exit_records_consumer_route_status_sizes_and_errors() {
    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| c);
    let (server, port) = spawn_server!(2, {
        let apitally = apitally.clone();
        move || {
            App::new()
                .wrap(from_fn(auth))
                .wrap(apitally.clone())
                .configure(app_routes)
        }
    });
    let user = [("x-user", "u-1"), ("x-invalid", "1")];
    let got = actix_web::rt::task::spawn_blocking(move || {
        let reject = [("x-user", "u-1"), ("x-invalid", "1"), ("x-reject", "1")];
        let exits = [
            ("GET", "/items/7", &user[..], ""),
            ("GET", "/stream", &user[..], ""),
            ("POST", "/fail/1", &user[..], "abc"),
            ("POST", "/panic/1", &user[..], "abcd"),
            ("GET", "/items/8", &reject[..], ""),
        ];
        exits
            .iter()
            .map(|(method, path, headers, body)| {
                let response = raw(port, method, path, headers, body);
                (
                    String::from_utf8_lossy(&response[..12]).into_owned(),
                    body_len(&response),
                )
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    server.stop(true).await;
    apitally.shutdown().await;
    let statuses: Vec<&str> = got.iter().map(|(s, _)| &s[9..12]).collect();
    assert_eq!(statuses, ["200", "200", "400", "500", "403"]);
    let expect = |method: &str, route: &str, status: u16, sent: u64, request_size: u64| {
        let r = only(&hub, method, route, Some(status));
        assert_eq!(
            (
                &r["consumer"],
                &r["status_code"],
                &r["request_count"],
                &r["response_size_sum"],
                &r["request_size_sum"]
            ),
            (
                &json!("u-1"),
                &json!(status),
                &json!(1),
                &json!(sent),
                &json!(request_size)
            ),
            "{method} {route}: {r:#?}"
        );
    };
    expect("GET", "/items/{id}", 200, got[0].1, 0);
    expect("GET", "/stream", 200, got[1].1, 0);
    assert_eq!(got[1].1, 500);
    expect("POST", "/fail/{id}", 400, got[2].1, 3);
    // The panic is answered `Internal Server Error`: 21 bytes.
    assert_eq!(got[3].1, 21);
    expect("POST", "/panic/{id}", 500, 21, 4);
    // The auth layer's `Err`: the route from before routing, the consumer it named, the size
    // of the error's response.
    assert_eq!(got[4].1, "rejected by the auth layer".len() as u64);
    expect("GET", "/items/{id}", 403, got[4].1, 0);
    // Every exit reported the auth layer's validation error, with the consumer.
    // Summed over the syncs (the first one may have run between two of the requests).
    let mut validation = std::collections::BTreeMap::<(String, String), u64>::new();
    for e in items(&hub, "validation_errors")
        .iter()
        .filter(|e| e["type"] == "forbidden_header")
    {
        assert_eq!(e["consumer"], "u-1", "{e}");
        *validation
            .entry((
                e["method"].as_str().unwrap().to_owned(),
                e["path"].as_str().unwrap().to_owned(),
            ))
            .or_default() += e["error_count"].as_u64().unwrap();
    }
    let validation: Vec<(String, String, u64)> = validation
        .into_iter()
        .map(|((m, p), n)| (m, p, n))
        .collect();
    assert_eq!(
        validation,
        [
            ("GET".into(), "/items/{id}".into(), 2),
            ("GET".into(), "/stream".into(), 1),
            ("POST".into(), "/fail/{id}".into(), 1),
            ("POST".into(), "/panic/{id}".into(), 1),
        ]
    );
    // The panic is a server error of the consumer too.
    let server_errors = items(&hub, "server_errors");
    assert_eq!(server_errors.len(), 1, "{server_errors:#?}");
    assert_eq!(server_errors[0]["consumer"], "u-1");
    assert_eq!(server_errors[0]["path"], "/panic/{id}");
}

#[actix_web::test]
async fn a_client_that_disconnects_mid_body_is_recorded_with_its_consumer() {
    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| {
        c.test_client_config(|c| c.test_sync_interval(Duration::from_millis(100)))
    });
    let (server, port) = spawn_server!(1, {
        let apitally = apitally.clone();
        move || {
            App::new()
                .wrap(from_fn(auth))
                .wrap(apitally.clone())
                .configure(app_routes)
        }
    });
    actix_web::rt::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .write_all(b"GET /slow HTTP/1.1\r\nhost: localhost\r\nx-user: u-2\r\n\r\n")
            .unwrap();
        let mut buf = vec![0; 30_000];
        let mut got = 0;
        while got < 20_000 {
            got += stream.read(&mut buf).unwrap();
        }
        // Dropped here: the connection closes mid-body.
    })
    .await
    .unwrap();
    // The server notices at its next write and drops the body, which finishes the record;
    // the next sync carries it.
    assert!(hub.wait_until(Duration::from_secs(10), |_| {
        common::count(&hub, "GET", "/slow", None, None) == 1
    }));
    server.stop(false).await;
    apitally.shutdown().await;
    let r = only(&hub, "GET", "/slow", None);
    assert_eq!(r["consumer"], "u-2");
    let sent = r["response_size_sum"].as_u64().unwrap();
    assert!((15_000..2_000_000).contains(&sent), "{sent}");
}

#[actix_web::test]
async fn requests_that_match_no_route_are_not_endpoints() {
    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| c);
    let (server, port) = spawn_server!(1, {
        let apitally = apitally.clone();
        move || App::new().wrap(apitally.clone()).configure(app_routes)
    });
    let got = actix_web::rt::task::spawn_blocking(move || {
        [
            ("GET", "/items/7"),
            // `#[get]`'s resource guard does not take these: the default service answers 404.
            ("HEAD", "/items/7"),
            ("DELETE", "/items/7"),
            // A resource whose only route is GET: its default service answers 405.
            ("POST", "/only-get"),
            ("GET", "/only-get"),
            // A handler that answers 405 itself is an endpoint.
            ("GET", "/refuses"),
            // A method actix knows no route for, and no path at all.
            ("get", "/items/7"),
            ("BREW", "/items/7"),
            ("GET", "/no/such/path"),
        ]
        .iter()
        .map(|(method, path)| {
            String::from_utf8_lossy(&raw(port, method, path, &[], "")[9..12]).into_owned()
        })
        .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    server.stop(true).await;
    apitally.shutdown().await;
    assert_eq!(
        got,
        ["200", "404", "404", "405", "200", "405", "404", "404", "404"]
    );
    let mut counted: Vec<String> = requests(&hub)
        .iter()
        .map(|r| format!("{} {} {}", r["method"], r["path"], r["status_code"]))
        .collect();
    counted.sort();
    assert_eq!(
        counted,
        [
            r#""GET" "/items/{id}" 200"#,
            r#""GET" "/only-get" 200"#,
            r#""GET" "/refuses" 405"#,
        ]
    );
}

/// Values the handler keeps in its request's extensions that are still alive.
static LIVE: AtomicUsize = AtomicUsize::new(0);

struct Held;

impl Held {
    fn new() -> Self {
        LIVE.fetch_add(1, Ordering::SeqCst);
        Held
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

#[actix_web::test]
async fn values_in_request_extensions_are_dropped_when_their_request_ends() {
    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| c);
    let (server, port) = spawn_server!(4, {
        let apitally = apitally.clone();
        move || {
            App::new().wrap(apitally.clone()).route(
                "/keep/{id}",
                web::get().to(|req: HttpRequest| {
                    req.extensions_mut().insert(Held::new());
                    async { HttpResponse::Ok().body("kept") }
                }),
            )
        }
    });
    actix_web::rt::task::spawn_blocking(move || {
        for i in 0..200 {
            let response = raw(port, "GET", &format!("/keep/{i}"), &[], "");
            assert!(response.starts_with(b"HTTP/1.1 200"));
        }
    })
    .await
    .unwrap();
    // Each response was read to the end (the server closed the connection); the request is
    // released right after. A bounded wait for the last one, no timing asserted.
    let deadline = Instant::now() + Duration::from_secs(10);
    while LIVE.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(LIVE.load(Ordering::SeqCst), 0);
    server.stop(true).await;
    apitally.shutdown().await;
    assert_eq!(
        common::count(&hub, "GET", "/keep/{id}", Some(200), None),
        200
    );
}

/// On the `Err` exit (an inner middleware rejects, as the documented auth pattern does), only
/// standard methods are endpoints, as on every other exit: a route without a method guard
/// takes any method, and a client chooses it.
#[actix_web::test]
async fn the_err_exit_counts_only_standard_methods() {
    use actix_web::{
        body::MessageBody,
        dev::{ServiceRequest, ServiceResponse},
        middleware::{from_fn, Next},
    };

    async fn reject(
        _req: ServiceRequest,
        _next: Next<impl MessageBody>,
    ) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
        Err::<ServiceResponse<actix_web::body::BoxBody>, _>(actix_web::error::ErrorUnauthorized(
            "no key",
        ))
    }

    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| c);
    let (server, port) = spawn_server!(1, {
        let apitally = apitally.clone();
        move || {
            App::new()
                .wrap(from_fn(reject))
                .wrap(apitally.clone())
                .route("/any", web::to(HttpResponse::Ok))
        }
    });
    let long = "X".repeat(5_000);
    let got = actix_web::rt::task::spawn_blocking(move || {
        ["GET", "BREW", "get", long.as_str(), "POST"]
            .iter()
            .map(|method| {
                String::from_utf8_lossy(&raw(port, method, "/any", &[], "")[9..12]).into_owned()
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    server.stop(true).await;
    apitally.shutdown().await;
    assert!(got.iter().all(|s| s == "401"), "{got:?}");
    let mut counted: Vec<String> = requests(&hub)
        .iter()
        .map(|r| format!("{} {} {}", r["method"], r["path"], r["status_code"]))
        .collect();
    counted.sort();
    assert_eq!(counted, [r#""GET" "/any" 401"#, r#""POST" "/any" 401"#]);
}

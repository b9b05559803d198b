//! The layer on services other than one plain router, in both protocols: a router nested with
//! `nest_service` under a router that has the layer too (counted once, with the full template),
//! and a plain tower service that names its routes with `RouteTemplate` and answers with a body
//! type of its own.

use std::{collections::BTreeMap, convert::Infallible, time::Duration};

use apitally_axum::{ConsumerExt, RouteTemplate};
use apitally_test_hub::{RequestKey, Totals};
use axum::{
    extract::{Path, Request},
    middleware::{self, Next},
    response::Response,
    routing::get,
    Router, ServiceExt,
};
use tower::Layer;

use crate::common::{self, send, TestHub, PROTOCOLS};

fn key(consumer: Option<&str>, route: &str, status: u16) -> RequestKey {
    (
        consumer.map(str::to_owned),
        "GET".to_owned(),
        route.to_owned(),
        status,
    )
}

fn totals(count: u64, response_bytes: u64) -> Totals {
    Totals {
        count,
        request_bytes: 0,
        response_bytes,
    }
}

async fn stop(
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    apitally: &apitally_axum::ApitallyLayer,
) {
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    apitally.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_nested_with_nest_service_is_counted_once_with_its_full_template() {
    for protocol in PROTOCOLS {
        let hub = TestHub::start();
        let apitally = common::layer(common::config(&hub, protocol));
        // The inner router is a service to the outer one: its routes are hidden from the
        // outer layer, so it has the layer too.
        let inner = Router::new()
            .route(
                "/items/{id}",
                get(|Path(id): Path<u32>| async move { format!("v2 item {id}") }),
            )
            .layer(middleware::from_fn(|req: Request, next: Next| async move {
                req.set_consumer("inner-user");
                next.run(req).await
            }))
            .layer(apitally.clone());
        let app = Router::new()
            .route("/items/{id}", get(|| async { "v1" }))
            .nest_service("/v2", inner)
            .layer(apitally.clone());
        let (port, stopper, task) = common::serve(app).await;
        let replies = tokio::task::spawn_blocking(move || {
            [
                send(port, "GET /v2/items/3 HTTP/1.1", b""),
                send(port, "GET /v2/items/4 HTTP/1.1", b""),
                send(port, "GET /items/1 HTTP/1.1", b""),
                send(port, "GET /v2/nothing HTTP/1.1", b""),
            ]
        })
        .await
        .unwrap();
        stop(stopper, task, &apitally).await;

        assert_eq!(replies[0].body, b"v2 item 3", "{protocol}");
        assert_eq!(replies[3].status, 404, "{protocol}");
        let expected: BTreeMap<RequestKey, Totals> = [
            (
                key(Some("inner-user"), "/v2/items/{id}", 200),
                totals(2, 18),
            ),
            (key(None, "/items/{id}", 200), totals(1, 2)),
        ]
        .into();
        assert_eq!(hub.request_totals(), expected, "{protocol}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_tower_service_names_its_routes_with_route_template() {
    for protocol in PROTOCOLS {
        let hub = TestHub::start();
        let apitally = common::layer(common::config(&hub, protocol));
        // Not a router: a tower service answering with a `String` body.
        let service = tower::service_fn(|req: Request| async move {
            let path = req.uri().path().to_owned();
            req.set_consumer("plain-user");
            let mut res = Response::new(format!("you asked for {path}"));
            if let Some(id) = path.strip_prefix("/users/") {
                res.extensions_mut()
                    .insert(RouteTemplate::new("/users/{id}"));
                if id == "0" {
                    *res.status_mut() = axum::http::StatusCode::NOT_FOUND;
                }
            }
            Ok::<_, Infallible>(res)
        });
        let service = apitally.layer(service);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stopper, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, ServiceExt::<Request>::into_make_service(service))
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        let replies = tokio::task::spawn_blocking(move || {
            [
                send(port, "GET /users/7 HTTP/1.1", b""),
                send(port, "GET /users/0 HTTP/1.1", b""),
                send(port, "GET /elsewhere HTTP/1.1", b""),
            ]
        })
        .await
        .unwrap();
        stop(stopper, task, &apitally).await;

        assert_eq!(replies[0].body, b"you asked for /users/7", "{protocol}");
        assert_eq!(replies[2].status, 200, "{protocol}");
        // The path without a template is not an endpoint.
        let expected: BTreeMap<RequestKey, Totals> = [
            (key(Some("plain-user"), "/users/{id}", 200), totals(1, 22)),
            (key(Some("plain-user"), "/users/{id}", 404), totals(1, 22)),
        ]
        .into();
        assert_eq!(hub.request_totals(), expected, "{protocol}");
    }
}

/// The layer reuses the place where a request's consumer, attributes and errors go once the
/// request is finished: on one thread (a current-thread runtime, so that the place is reused),
/// a request that attaches nothing shows nothing of the one before.
#[tokio::test]
async fn a_request_carries_nothing_over_from_the_one_before() {
    for protocol in PROTOCOLS {
        let hub = TestHub::start();
        let apitally = common::layer(common::config(&hub, protocol));
        let app = Router::new()
            .route(
                "/items/{id}",
                get(|Path(id): Path<u32>, req: Request| async move {
                    if id == 1 {
                        req.set_consumer("first-user");
                        req.set_request_attribute("tenant", "acme");
                        req.capture_exception(&std::io::Error::other("cache miss"));
                    }
                    "item"
                }),
            )
            .layer(apitally.clone());
        let (port, stopper, task) = common::serve(app).await;
        tokio::task::spawn_blocking(move || {
            for path in ["/items/1", "/items/2", "/items/3"] {
                send(port, &format!("GET {path} HTTP/1.1"), b"");
            }
        })
        .await
        .unwrap();
        stop(stopper, task, &apitally).await;

        let expected: BTreeMap<RequestKey, Totals> = [
            (key(Some("first-user"), "/items/{id}", 200), totals(1, 4)),
            (key(None, "/items/{id}", 200), totals(2, 8)),
        ]
        .into();
        assert_eq!(hub.request_totals(), expected, "{protocol}");
        assert_eq!(
            hub.server_error_totals().values().sum::<u64>(),
            1,
            "{protocol}"
        );
    }
}

/// The logged URL's scheme: `https` when a proxy says so (`X-Forwarded-Proto`, `Forwarded`,
/// `X-Forwarded-Ssl`), `http` for a request without proxy headers, in both protocols.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_logged_scheme_follows_the_proxy_headers() {
    for protocol in PROTOCOLS {
        let hub = TestHub::start();
        let config = common::config(&hub, protocol)
            .request_logging(apitally_axum::RequestLoggingConfig::new());
        let apitally = common::layer(config);
        let app = Router::new()
            .route("/items/{id}", get(|| async { "item" }))
            .layer(apitally.clone());
        let (port, stopper, task) = common::serve(app).await;
        tokio::task::spawn_blocking(move || {
            send(
                port,
                "GET /items/1 HTTP/1.1\r\nx-forwarded-proto: https",
                b"",
            );
            send(port, "GET /items/2 HTTP/1.1", b"");
            send(
                port,
                "GET /items/3 HTTP/1.1\r\nforwarded: for=1.2.3.4;proto=https",
                b"",
            );
            send(port, "GET /items/4 HTTP/1.1\r\nx-forwarded-ssl: on", b"");
            send(
                port,
                "GET /items/5 HTTP/1.1\r\nx-forwarded-proto: http",
                b"",
            );
        })
        .await
        .unwrap();
        stop(stopper, task, &apitally).await;

        let mut schemes: Vec<(String, String)> = hub
            .received_at("log")
            .into_iter()
            .flat_map(|r| r.lines)
            .map(|line| {
                let url = line["request"]["url"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let (scheme, rest) = url.split_once("://").unwrap_or_default();
                let path = &rest[rest.find('/').unwrap_or(0)..];
                (path.to_owned(), scheme.to_owned())
            })
            .chain(
                hub.otlp_spans()
                    .into_iter()
                    .filter(|s| s.is_server())
                    .map(|s| {
                        (
                            s.str("url.path").unwrap_or_default().to_owned(),
                            s.str("url.scheme").unwrap_or_default().to_owned(),
                        )
                    }),
            )
            .collect();
        schemes.sort();
        let expected: Vec<(String, String)> = [
            ("/items/1", "https"),
            ("/items/2", "http"),
            ("/items/3", "https"),
            ("/items/4", "https"),
            ("/items/5", "http"),
        ]
        .iter()
        .map(|(p, s)| (p.to_string(), s.to_string()))
        .collect();
        assert_eq!(schemes, expected, "{protocol}");
    }
}

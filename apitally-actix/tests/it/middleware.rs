//! Counting, route templates, statuses and sizes, in full `App`s.

use crate::common;

use actix_web::{
    guard, http::StatusCode, test, web, App, HttpRequest, HttpResponse, ResponseError,
};
use apitally_actix::{Apitally, ApitallyConfig};
use common::{apitally, count, find, requests, TestHub};
use serde_json::json;

#[derive(Debug)]
struct Teapot;

#[actix_web::test]
async fn route_templates_for_scopes_guards_tails_and_regexes() {
    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| c);
    let app = test::init_service(
        App::new()
            .wrap(apitally.clone())
            .route("/", web::get().to(|| async { "root" }))
            .route(r"/items/{id:\d+}", web::get().to(|| async { "item" }))
            .service(
                web::scope("/api/{version}").service(
                    web::scope("/users")
                        .route("/{user_id}", web::get().to(|| async { "user" }))
                        .route(
                            "/{user_id}",
                            web::post()
                                .guard(guard::Header("x-admin", "1"))
                                .to(|| async { HttpResponse::Created().finish() }),
                        ),
                ),
            )
            .service(
                web::resource("/multi")
                    .route(web::get().to(|| async { "get" }))
                    .route(web::put().to(|| async { "put" })),
            )
            .route("/files/{tail}*", web::get().to(|| async { "file" })),
    )
    .await;
    // Three rounds: the worker remembers the routes of paths it has seen, and the answers
    // must not change once they come from its cache.
    for _round in 0..3 {
        for uri in [
            "/",
            "/items/1",
            "/items/22",
            "/api/v1/users/7",
            "/files/a/b/c.txt",
            "/multi",
        ] {
            let res =
                test::call_service(&app, test::TestRequest::get().uri(uri).to_request()).await;
            assert!(res.status().is_success(), "{uri}");
            test::read_body(res).await;
        }
        let post = test::TestRequest::post()
            .uri("/api/v2/users/8")
            .insert_header(("x-admin", "1"))
            .to_request();
        assert_eq!(test::call_service(&app, post).await.status(), 201);
        let put = test::TestRequest::put().uri("/multi").to_request();
        test::read_body(test::call_service(&app, put).await).await;
        // Unmatched paths (default service 404) and a regex that does not match are not counted.
        for uri in [
            "/nope",
            "/items/abc",
            "/api/v1/users",
            "/api/v1/users/7/extra",
        ] {
            let res =
                test::call_service(&app, test::TestRequest::get().uri(uri).to_request()).await;
            assert_eq!(res.status(), 404, "{uri}");
        }
    }
    apitally.shutdown().await;

    assert_eq!(count(&hub, "GET", "/", Some(200), None), 3);
    assert_eq!(count(&hub, "GET", "/items/{id}", Some(200), None), 6);
    assert_eq!(
        count(
            &hub,
            "GET",
            "/api/{version}/users/{user_id}",
            Some(200),
            None
        ),
        3
    );
    assert_eq!(
        count(
            &hub,
            "POST",
            "/api/{version}/users/{user_id}",
            Some(201),
            None
        ),
        3
    );
    assert_eq!(count(&hub, "GET", "/files/{tail}*", Some(200), None), 3);
    assert_eq!(count(&hub, "GET", "/multi", Some(200), None), 3);
    assert_eq!(count(&hub, "PUT", "/multi", Some(200), None), 3);
    let total: u64 = requests(&hub)
        .iter()
        .map(|r| r["request_count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 24, "{:#?}", requests(&hub));
}

/// The per-worker route cache answers from what it saw first; the counts must not depend on
/// which request a worker saw first (a guard that passes or fails on the same static path).
#[actix_web::test]
async fn cached_routes_do_not_depend_on_request_order() {
    let mut totals = Vec::new();
    for with_guard_first in [true, false] {
        let hub = TestHub::start();
        let apitally = apitally(&hub, |c| c);
        // A guarded dynamic resource registered first: a request no resource matches gets
        // its template from actix-web's walk of the resource map (`/{name}`), a matched one
        // its own (`/health`).
        let app = test::init_service(
            App::new()
                .wrap(apitally.clone())
                .service(
                    web::resource("/{name}")
                        .guard(guard::Header("x-admin", "1"))
                        .to(|| async { "admin" }),
                )
                .service(
                    web::resource("/health")
                        .guard(guard::Get())
                        .to(|| async { "ok" }),
                )
                .service(
                    web::resource("/guarded")
                        .guard(guard::Header("x-ok", "1"))
                        .route(web::get().to(|| async { "ok" })),
                ),
        )
        .await;
        let passing = || {
            test::TestRequest::get()
                .uri("/guarded")
                .insert_header(("x-ok", "1"))
                .to_request()
        };
        let failing = || test::TestRequest::get().uri("/guarded").to_request();
        let get_health = || test::TestRequest::get().uri("/health").to_request();
        let post_health = || test::TestRequest::post().uri("/health").to_request();
        for round in 0..4 {
            let first = (round % 2 == 0) == with_guard_first;
            let (a, b) = if first {
                (passing(), get_health())
            } else {
                (failing(), post_health())
            };
            test::read_body(test::call_service(&app, a).await).await;
            test::read_body(test::call_service(&app, b).await).await;
        }
        apitally.shutdown().await;
        // Summed over sync payloads (the first sync may carry part of them).
        let mut seen = std::collections::BTreeMap::<(String, u64), u64>::new();
        for r in requests(&hub) {
            let key = (
                r["path"].as_str().unwrap().to_owned(),
                r["status_code"].as_u64().unwrap(),
            );
            *seen.entry(key).or_default() += r["request_count"].as_u64().unwrap();
        }
        totals.push(seen);
    }
    assert_eq!(totals[0], totals[1]);
    assert_eq!(
        totals[0].get(&("/guarded".to_owned(), 200)),
        Some(&2),
        "{:?}",
        totals[0]
    );
}

#[actix_web::test]
async fn options_skipped_head_counted_and_statuses() {
    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| c);
    let app = test::init_service(
        App::new()
            .wrap(apitally.clone())
            .route("/r", web::get().to(|| async { "x" }))
            .route("/r", web::head().to(HttpResponse::Ok))
            .route(
                "/r",
                web::method(actix_web::http::Method::OPTIONS).to(HttpResponse::Ok),
            )
            .route(
                "/fail",
                web::get().to(|| async {
                    Err::<HttpResponse, _>(actix_web::error::ErrorServiceUnavailable("down"))
                }),
            )
            .route(
                "/teapot",
                web::get().to(|| async { Err::<HttpResponse, _>(Teapot) }),
            ),
    )
    .await;
    for method in ["OPTIONS", "HEAD", "GET"] {
        let req = test::TestRequest::default()
            .method(method.parse().unwrap())
            .uri("/r")
            .to_request();
        test::read_body(test::call_service(&app, req).await).await;
    }
    let res = test::call_service(&app, test::TestRequest::get().uri("/fail").to_request()).await;
    assert_eq!(res.status(), 503);
    // Recorded when the body ends or is dropped.
    drop(res);
    let res = test::call_service(&app, test::TestRequest::get().uri("/teapot").to_request()).await;
    assert_eq!(res.status(), 418);
    drop(res);
    // Wrong method on an existing resource: counted with its 404/405 under the route.
    apitally.shutdown().await;
    assert_eq!(count(&hub, "OPTIONS", "/r", None, None), 0);
    assert_eq!(count(&hub, "HEAD", "/r", Some(200), None), 1);
    assert_eq!(count(&hub, "GET", "/r", Some(200), None), 1);
    assert_eq!(
        count(&hub, "GET", "/fail", Some(503), None),
        1,
        "{:#?}",
        requests(&hub)
    );
    assert_eq!(count(&hub, "GET", "/teapot", Some(418), None), 1);
    // 503 is not a server error.
    assert_eq!(
        common::items(&hub, "server_errors"),
        Vec::<serde_json::Value>::new()
    );
}

impl std::fmt::Display for Teapot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("I'm a teapot")
    }
}

impl ResponseError for Teapot {
    fn status_code(&self) -> StatusCode {
        StatusCode::IM_A_TEAPOT
    }
}

#[actix_web::test]
async fn sizes_and_histograms() {
    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| c);
    let app = test::init_service(App::new().wrap(apitally.clone()).route(
        "/echo",
        web::post().to(|body: web::Bytes| async move { HttpResponse::Ok().body(body.repeat(2)) }),
    ))
    .await;
    for size in [0usize, 999, 1000, 1500] {
        let req = test::TestRequest::post()
            .uri("/echo")
            .set_payload(vec![b'a'; size])
            .to_request();
        let body = test::call_and_read_body(&app, req).await;
        assert_eq!(body.len(), size * 2);
    }
    apitally.shutdown().await;
    let item = find(&hub, "POST", "/echo");
    assert_eq!(item["request_count"], 4);
    assert_eq!(item["request_size_sum"], 3499);
    assert_eq!(item["response_size_sum"], 6998);
    assert_eq!(item["request_sizes"], json!({"0": 2, "1": 2}));
    assert_eq!(
        item["response_sizes"],
        json!({"0": 1, "1": 1, "2": 1, "3": 1})
    );
    // Which bin depends on the machine's load: only the count is asserted.
    let times: u64 = item["response_times"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(times, 4);
}

#[actix_web::test]
async fn response_time_is_to_the_response_head() {
    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| c);
    let app = test::init_service(App::new().wrap(apitally.clone()).route(
        "/slow",
        web::get().to(|| async {
            actix_rt::time::sleep(std::time::Duration::from_millis(35)).await;
            "done"
        }),
    ))
    .await;
    test::call_and_read_body(&app, test::TestRequest::get().uri("/slow").to_request()).await;
    apitally.shutdown().await;
    let item = find(&hub, "GET", "/slow");
    let bins: Vec<u64> = item["response_times"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.parse().unwrap())
        .collect();
    assert_eq!(bins.len(), 1);
    assert!(bins[0] >= 30, "{bins:?}");
}

#[actix_web::test]
async fn invalid_config_passes_requests_through() {
    let apitally = Apitally::new(ApitallyConfig::new("not-a-uuid", "prod"));
    assert!(!apitally.is_enabled());
    let app = test::init_service(App::new().wrap(apitally.clone()).route(
        "/",
        web::get().to(|req: HttpRequest| async move { format!("hello {}", req.path()) }),
    ))
    .await;
    let body = test::call_and_read_body(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert_eq!(body, "hello /");
    apitally.shutdown().await;
}

#[actix_web::test]
async fn malformed_headers_do_not_break_anything() {
    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| {
        c.identify_consumer(|req| {
            req.headers()
                .get("x-api-key")?
                .to_str()
                .ok()
                .map(apitally_actix::Consumer::new)
        })
    });
    let app = test::init_service(
        App::new()
            .wrap(apitally.clone())
            .route("/h", web::post().to(|| async { "ok" })),
    )
    .await;
    let bad = actix_web::http::header::HeaderValue::from_bytes(b"\xff\xfe").unwrap();
    let req = test::TestRequest::post()
        .uri("/h")
        .insert_header(("content-length", "not-a-number"))
        .insert_header(("x-api-key", bad))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 200);
    test::read_body(res).await;
    apitally.shutdown().await;
    let item = find(&hub, "POST", "/h");
    assert_eq!(item["consumer"], serde_json::Value::Null);
    // The unparsable Content-Length makes the size unknown, not zero.
    assert_eq!(item["request_sizes"], json!({}));
}

#[cfg(feature = "utoipa")]
#[actix_web::test]
async fn startup_paths_from_routes_and_utoipa() {
    use utoipa::openapi::{
        path::{HttpMethod, OperationBuilder, PathItem},
        OpenApiBuilder, PathsBuilder,
    };
    let hub = TestHub::start();
    let doc = OpenApiBuilder::new()
        .paths(PathsBuilder::new().path(
            "/items/{id}",
            PathItem::new(
                HttpMethod::Get,
                OperationBuilder::new().summary(Some("Get an item")),
            ),
        ))
        .build();
    let apitally = apitally(&hub, |c| {
        c.route("post", "/items").openapi(&doc).app_version("3.1")
    });
    assert!(hub.wait_until(std::time::Duration::from_secs(10), |r| r
        .iter()
        .any(|r| r.endpoint == "startup")));
    apitally.shutdown().await;
    let startup = hub.received_at("startup")[0].json.clone().unwrap();
    assert_eq!(
        startup["paths"],
        json!([
            {"method": "POST", "path": "/items"},
            {"method": "GET", "path": "/items/{id}", "summary": "Get an item"},
        ])
    );
    assert_eq!(startup["client"], "rust:actix");
    let doc: serde_json::Value =
        serde_json::from_str(startup["openapi"].as_str().unwrap()).unwrap();
    assert!(doc["paths"]["/items/{id}"]["get"].is_object());
    let versions = &startup["versions"];
    assert_eq!(versions["apitally"], env!("CARGO_PKG_VERSION"));
    assert_eq!(versions["app"], "3.1");
    assert!(
        versions["actix-web"].as_str().unwrap().starts_with("4."),
        "{versions}"
    );
    assert!(versions["rust"].as_str().unwrap().starts_with("1."));
}

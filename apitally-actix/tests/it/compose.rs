//! Apitally composed with actix's own middleware, in scopes, and trait assertions.

use crate::common;

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    middleware::{from_fn, Compat, Compress, Condition, Logger, Next, NormalizePath},
    test, web, App, HttpResponse,
};
use apitally_actix::Apitally;
use apitally_core::adapter::ApitallyClient;
use common::{apitally, count, find, TestHub};
use serde_json::json;

fn _assert_traits() {
    fn send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    send_sync_clone::<Apitally>();
    send_sync_clone::<ApitallyClient>();
    send_sync_clone::<apitally_actix::ApitallyConfig>();
}

async fn noop(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    next.call(req).await
}

const BIG: usize = 10_000;

#[actix_web::test]
async fn with_logger_compress_normalize_condition_and_from_fn() {
    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| c);
    let app = test::init_service(
        App::new()
            // Registered first = innermost: sees uncompressed bodies.
            .wrap(apitally.clone())
            .wrap(from_fn(noop))
            .wrap(Condition::new(true, Logger::default()))
            .wrap(Compress::default())
            .wrap(NormalizePath::trim())
            .route(
                "/big",
                web::get().to(|| async { HttpResponse::Ok().body("a".repeat(BIG)) }),
            )
            .service(
                web::scope("/scoped")
                    .wrap(Compat::new(Logger::default()))
                    .route("/x/{id}", web::get().to(|| async { "x" })),
            ),
    )
    .await;
    let req = test::TestRequest::get()
        .uri("/big/")
        .insert_header(("accept-encoding", "gzip"))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.headers().get("content-encoding").unwrap(), "gzip");
    let compressed = test::read_body(res).await;
    assert!(compressed.len() < BIG);
    test::call_and_read_body(
        &app,
        test::TestRequest::get().uri("/scoped/x/1").to_request(),
    )
    .await;
    apitally.shutdown().await;
    // NormalizePath ran first (trailing slash trimmed); the size is the uncompressed one.
    let item = find(&hub, "GET", "/big");
    assert_eq!(item["response_size_sum"], BIG);
    assert_eq!(item["response_sizes"], json!({"10": 1}));
    assert_eq!(count(&hub, "GET", "/scoped/x/{id}", Some(200), None), 1);
}

#[actix_web::test]
async fn inside_a_scope_and_outside_compression() {
    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| c);
    let app = test::init_service(
        App::new()
            .wrap(Compress::default())
            .service(web::scope("/api").wrap(apitally.clone()).route(
                "/big",
                web::get().to(|| async { HttpResponse::Ok().body("b".repeat(BIG)) }),
            ))
            .route("/outside", web::get().to(|| async { "not measured" })),
    )
    .await;
    let req = test::TestRequest::get()
        .uri("/api/big")
        .insert_header(("accept-encoding", "gzip"))
        .to_request();
    test::call_and_read_body(&app, req).await;
    test::call_and_read_body(&app, test::TestRequest::get().uri("/outside").to_request()).await;
    apitally.shutdown().await;
    // Inside a scope the full template is reported; routes outside the scope are not seen.
    assert_eq!(find(&hub, "GET", "/api/big")["response_size_sum"], BIG);
    assert_eq!(count(&hub, "GET", "/outside", None, None), 0);
}

//! Validation errors from each extractor error kind and from the app, server errors, panics,
//! and errors from inner middleware.

use crate::common;

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::StatusCode,
    middleware::{from_fn, Next},
    test, web, App, HttpRequest, HttpResponse, ResponseError,
};
use apitally_actix::{ValidationError, ValidationErrorExt};
use common::{apitally, count, items, TestHub};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[allow(dead_code)]
struct Item {
    name: String,
    qty: u32,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Page {
    page: u32,
}

#[derive(Debug)]
struct DbError {
    #[allow(dead_code)] // shown through Debug
    source: std::io::Error,
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "database unavailable")
    }
}

impl ResponseError for DbError {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

fn find_error<'a>(errors: &'a [Value], path: &str) -> &'a Value {
    errors
        .iter()
        .find(|e| e["path"] == path)
        .unwrap_or_else(|| panic!("no error for {path}: {errors:#?}"))
}

#[actix_web::test]
async fn extractor_errors_become_validation_errors() {
    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| c);
    let app = test::init_service(
        App::new()
            .wrap(apitally.clone())
            .route("/json", web::post().to(|_: web::Json<Item>| async { "ok" }))
            .route(
                "/query",
                web::get().to(|_: web::Query<Page>| async { "ok" }),
            )
            .route(
                "/path/{n}",
                web::get().to(|_: web::Path<u32>| async { "ok" }),
            )
            .route("/form", web::post().to(|_: web::Form<Item>| async { "ok" }))
            .route(
                "/own",
                web::post().to(|req: HttpRequest| async move {
                    req.add_validation_error(ValidationError::new(
                        ["body", "email"],
                        "not an email",
                        "value_error.email",
                    ));
                    HttpResponse::UnprocessableEntity().finish()
                }),
            ),
    )
    .await;
    let json_req = |body: &str| {
        test::TestRequest::post()
            .uri("/json")
            .insert_header(("content-type", "application/json"))
            .set_payload(body.to_owned())
            .to_request()
    };
    for body in [
        r#"{"qty": 1}"#,
        r#"{"qty": 2}"#,
        r#"{"name": "a", "qty": "x"}"#,
        "{not json",
    ] {
        let res = test::call_service(&app, json_req(body)).await;
        assert_eq!(res.status(), 400);
        test::read_body(res).await;
    }
    let res = test::call_service(
        &app,
        test::TestRequest::get().uri("/query?page=abc").to_request(),
    )
    .await;
    assert_eq!(res.status(), 400);
    drop(res);
    let res =
        test::call_service(&app, test::TestRequest::get().uri("/path/xyz").to_request()).await;
    assert_eq!(res.status(), 404);
    drop(res);
    let res = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/form")
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .set_payload("qty=3")
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), 400);
    drop(res);
    test::call_and_read_body(&app, test::TestRequest::post().uri("/own").to_request()).await;
    apitally.shutdown().await;

    let errors = items(&hub, "validation_errors");
    let missing = errors
        .iter()
        .find(|e| e["path"] == "/json" && e["type"] == "missing")
        .unwrap();
    assert_eq!(
        missing,
        &json!({"consumer": null, "method": "POST", "path": "/json", "loc": ["body", "name"],
                "msg": "missing field `name`", "type": "missing", "error_count": 2})
    );
    assert!(errors.iter().any(|e| e["path"] == "/json"
        && e["type"] == "invalid_type"
        && e["loc"] == json!(["body"])));
    assert!(errors
        .iter()
        .any(|e| e["path"] == "/json" && e["type"] == "json_invalid"));
    let query = find_error(&errors, "/query");
    assert_eq!(query["loc"][0], "query");
    assert_eq!(query["method"], "GET");
    let path = find_error(&errors, "/path/{n}");
    assert_eq!(path["loc"], json!(["path"]));
    let form = find_error(&errors, "/form");
    assert_eq!(form["loc"], json!(["body", "name"]));
    assert_eq!(form["type"], "missing");
    assert_eq!(
        find_error(&errors, "/own"),
        &json!({"consumer": null, "method": "POST", "path": "/own", "loc": ["body", "email"],
                "msg": "not an email", "type": "value_error.email", "error_count": 1})
    );
    assert_eq!(count(&hub, "POST", "/json", Some(400), None), 4);
}

#[actix_web::test]
async fn server_errors_and_panics() {
    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| c);
    let app = test::init_service(
        App::new()
            .wrap(apitally.clone())
            .route("/ok", web::get().to(|| async { "ok" }))
            .route(
                "/db/{id}",
                web::get().to(|| async {
                    Err::<HttpResponse, _>(DbError {
                        source: std::io::Error::other("connection refused at 0x7ffd1234"),
                    })
                }),
            )
            .route(
                "/panic",
                web::get().to(|| async {
                    if std::hint::black_box(true) {
                        panic!("handler bug: index out of range");
                    }
                    "unreachable"
                }),
            ),
    )
    .await;
    test::call_and_read_body(&app, test::TestRequest::get().uri("/ok").to_request()).await;
    for _ in 0..2 {
        let res =
            test::call_service(&app, test::TestRequest::get().uri("/db/1").to_request()).await;
        assert_eq!(res.status(), 500);
        // The response is the app's own, unchanged.
        assert_eq!(test::read_body(res).await, "database unavailable");
    }
    // A panic gives the client a 500 and the server keeps serving.
    let res =
        test::try_call_service(&app, test::TestRequest::get().uri("/panic").to_request()).await;
    let Err(err) = res else {
        panic!("the panic is answered as an error")
    };
    assert_eq!(err.as_response_error().status_code(), 500);
    let body =
        test::call_and_read_body(&app, test::TestRequest::get().uri("/ok").to_request()).await;
    assert_eq!(body, "ok");
    apitally.shutdown().await;

    let errors = items(&hub, "server_errors");
    let db = find_error(&errors, "/db/{id}");
    assert_eq!(db["type"], "DbError");
    assert_eq!(db["msg"], "database unavailable");
    assert_eq!(db["error_count"], 2);
    // The traceback is the error's structure; the text it quotes is left out, as anything a
    // client sent or a secret could be in it.
    let traceback = db["traceback"].as_str().unwrap();
    assert!(traceback.starts_with("DbError {"), "{traceback}");
    assert!(!traceback.contains("connection refused"), "{traceback}");
    assert_eq!(db["sentry_event_id"], Value::Null);
    let panic = find_error(&errors, "/panic");
    assert_eq!(panic["type"], "panic");
    assert_eq!(panic["msg"], "handler bug: index out of range");
    let traceback = panic["traceback"].as_str().unwrap();
    assert!(
        traceback.starts_with("panicked at apitally-actix/tests/it/errors.rs:"),
        "{traceback}"
    );
    // The panic machinery's frames are cut: the first frame is the handler.
    let first_frame = traceback.lines().nth(1).unwrap();
    assert!(
        first_frame.contains("errors::server_errors_and_panics"),
        "{traceback}"
    );
    assert_eq!(count(&hub, "GET", "/panic", Some(500), None), 1);
    assert_eq!(count(&hub, "GET", "/db/{id}", Some(500), None), 2);
    assert_eq!(count(&hub, "GET", "/ok", Some(200), None), 2);
}

async fn reject(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.headers().contains_key("x-reject") {
        return Err(actix_web::error::ErrorForbidden("rejected"));
    }
    next.call(req).await
}

#[actix_web::test]
async fn errors_from_inner_middleware_are_counted_with_their_status() {
    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| c);
    let app = test::init_service(
        App::new()
            .wrap(from_fn(reject))
            .wrap(apitally.clone())
            .route("/guarded/{id}", web::get().to(|| async { "ok" })),
    )
    .await;
    test::call_and_read_body(
        &app,
        test::TestRequest::get().uri("/guarded/1").to_request(),
    )
    .await;
    let res = test::try_call_service(
        &app,
        test::TestRequest::get()
            .uri("/guarded/2")
            .insert_header(("x-reject", "1"))
            .to_request(),
    )
    .await;
    assert_eq!(res.err().unwrap().as_response_error().status_code(), 403);
    apitally.shutdown().await;
    assert_eq!(count(&hub, "GET", "/guarded/{id}", Some(200), None), 1);
    assert_eq!(count(&hub, "GET", "/guarded/{id}", Some(403), None), 1);
}

#[actix_web::test]
async fn panics_propagate_when_catching_is_off() {
    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| c.catch_panics(false));
    let app = test::init_service(App::new().wrap(apitally.clone()).route(
        "/panic",
        web::get().to(|| async {
            if std::hint::black_box(true) {
                panic!("not caught");
            }
            "unreachable"
        }),
    ))
    .await;
    let caught = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(
        test::call_service(&app, test::TestRequest::get().uri("/panic").to_request()),
    ))
    .await;
    assert!(caught.is_err());
    apitally.shutdown().await;
}

#[cfg(feature = "validator")]
#[actix_web::test]
async fn validator_errors_are_mapped() {
    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| c);
    let app = test::init_service(App::new().wrap(apitally.clone()).route(
        "/signup",
        web::post().to(|req: HttpRequest| async move {
            let mut errors = validator::ValidationErrors::new();
            errors.add(
                "email",
                validator::ValidationError::new("email").with_message("invalid email".into()),
            );
            errors.add("age", validator::ValidationError::new("range"));
            req.add_validation_errors(&errors);
            HttpResponse::UnprocessableEntity().finish()
        }),
    ))
    .await;
    test::call_and_read_body(&app, test::TestRequest::post().uri("/signup").to_request()).await;
    apitally.shutdown().await;
    let mut errors = items(&hub, "validation_errors");
    errors.sort_by_key(|e| e["loc"].to_string());
    assert_eq!(
        errors,
        vec![
            json!({"consumer": null, "method": "POST", "path": "/signup", "loc": ["body", "age"],
                   "msg": "range", "type": "range", "error_count": 1}),
            json!({"consumer": null, "method": "POST", "path": "/signup", "loc": ["body", "email"],
                   "msg": "invalid email", "type": "email", "error_count": 1}),
        ]
    );
}

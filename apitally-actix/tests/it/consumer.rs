//! Every way to set the consumer, and their precedence.

use crate::common;

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    middleware::{from_fn, Next},
    test, web, App, HttpMessage, HttpRequest, HttpResponse,
};
use apitally_actix::{ApitallyConsumer, Consumer, ConsumerExt};
use common::{apitally, count, items, TestHub};
use serde_json::{json, Value};

async fn auth(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(user) = req.headers().get("x-user").and_then(|v| v.to_str().ok()) {
        req.set_consumer(Consumer::new(user).group("from-middleware"));
    }
    next.call(req).await
}

#[actix_web::test]
async fn callback_set_consumer_extractor_and_middleware() {
    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| {
        c.identify_consumer(|req| {
            req.headers()
                .get("x-api-key")?
                .to_str()
                .ok()
                .map(|key| Consumer::new(format!("key-{key}")))
        })
    });
    let app = test::init_service(
        App::new()
            .wrap(from_fn(auth))
            .wrap(apitally.clone())
            .route("/plain", web::get().to(HttpResponse::Ok))
            .route(
                "/handler",
                web::get().to(|req: HttpRequest| async move {
                    req.set_consumer(Consumer::new("handler-1").name("Handler One"));
                    HttpResponse::Ok().finish()
                }),
            )
            .route(
                "/me",
                web::get().to(|c: Option<ApitallyConsumer>| async move {
                    c.map_or("anonymous".to_owned(), |c| c.get_identifier().to_owned())
                }),
            )
            .route(
                "/reqdata",
                web::get().to(|c: Option<web::ReqData<Consumer>>| async move {
                    c.map_or("none".to_owned(), |c| c.get_identifier().to_owned())
                }),
            )
            .route(
                "/clear",
                web::get().to(|req: HttpRequest| async move {
                    req.set_consumer("   ");
                    HttpResponse::Ok().finish()
                }),
            ),
    )
    .await;
    let get = |uri: &str, headers: &[(&str, &str)]| {
        let mut req = test::TestRequest::get().uri(uri);
        for (n, v) in headers {
            req = req.insert_header((*n, *v));
        }
        req.to_request()
    };
    // Anonymous, callback, handler wins over callback, middleware wins over callback.
    test::call_and_read_body(&app, get("/plain", &[])).await;
    test::call_and_read_body(&app, get("/plain", &[("x-api-key", "abc")])).await;
    test::call_and_read_body(&app, get("/handler", &[("x-api-key", "abc")])).await;
    test::call_and_read_body(
        &app,
        get("/plain", &[("x-user", "u1"), ("x-api-key", "abc")]),
    )
    .await;
    // The extractor and ReqData see the middleware's consumer.
    let body = test::call_and_read_body(&app, get("/me", &[("x-user", "u2")])).await;
    assert_eq!(body, "u2");
    let body = test::call_and_read_body(&app, get("/me", &[])).await;
    assert_eq!(body, "anonymous");
    let body = test::call_and_read_body(&app, get("/reqdata", &[("x-user", "u3")])).await;
    assert_eq!(body, "u3");
    // An anonymous set_consumer removes the middleware's consumer; the callback then applies.
    test::call_and_read_body(&app, get("/clear", &[("x-user", "u4"), ("x-api-key", "z")])).await;
    apitally.shutdown().await;

    assert_eq!(count(&hub, "GET", "/plain", None, Some(Value::Null)), 1);
    assert_eq!(
        count(&hub, "GET", "/plain", None, Some(json!("key-abc"))),
        1
    );
    assert_eq!(count(&hub, "GET", "/plain", None, Some(json!("u1"))), 1);
    assert_eq!(
        count(&hub, "GET", "/handler", None, Some(json!("handler-1"))),
        1
    );
    assert_eq!(
        count(&hub, "GET", "/handler", None, Some(json!("key-abc"))),
        0
    );
    assert_eq!(count(&hub, "GET", "/me", None, Some(json!("u2"))), 1);
    assert_eq!(count(&hub, "GET", "/clear", None, Some(json!("key-z"))), 1);
    let mut consumers = items(&hub, "consumers");
    consumers.sort_by_key(|c| c["identifier"].as_str().unwrap().to_owned());
    assert_eq!(
        consumers,
        vec![
            json!({"identifier": "handler-1", "name": "Handler One", "group": null}),
            json!({"identifier": "u1", "name": null, "group": "from-middleware"}),
            json!({"identifier": "u2", "name": null, "group": "from-middleware"}),
            json!({"identifier": "u3", "name": null, "group": "from-middleware"}),
        ]
    );
}

#[actix_web::test]
async fn extractor_without_consumer_is_an_error() {
    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| c);
    let app =
        test::init_service(App::new().wrap(apitally.clone()).route(
            "/strict",
            web::get().to(|c: ApitallyConsumer| async move {
                c.into_inner().get_identifier().to_owned()
            }),
        ))
        .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/strict").to_request()).await;
    assert_eq!(res.status(), 500);
    let req = test::TestRequest::get().uri("/strict").to_request();
    // As an outer middleware would store it.
    req.extensions_mut().insert(Consumer::new("c-1"));
    let res = test::call_service(&app, req).await;
    assert_eq!(test::read_body(res).await, "c-1");
    apitally.shutdown().await;
}

#[actix_web::test]
async fn panicking_callback_counts_anonymously_and_keeps_serving() {
    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| c.identify_consumer(|_| panic!("callback bug")));
    let app = test::init_service(
        App::new()
            .wrap(apitally.clone())
            .route("/ok", web::get().to(|| async { "fine" })),
    )
    .await;
    for _ in 0..3 {
        let body =
            test::call_and_read_body(&app, test::TestRequest::get().uri("/ok").to_request()).await;
        assert_eq!(body, "fine");
    }
    apitally.shutdown().await;
    assert_eq!(count(&hub, "GET", "/ok", Some(200), Some(Value::Null)), 3);
}

#[actix_web::test]
async fn consumer_ext_is_available_on_both_request_types() {
    let req = test::TestRequest::default().to_http_request();
    req.set_consumer(Consumer::new("a").name("A"));
    assert_eq!(req.consumer().unwrap().get_name(), Some("A"));
    assert!(req.extensions().get::<Consumer>().is_some());
    let srv = test::TestRequest::default().to_srv_request();
    srv.set_consumer("b");
    assert_eq!(srv.consumer().unwrap().get_identifier(), "b");
}

//! Runtime behaviour of `#[apitally_actix::consumer]` (its compile errors are pinned in
//! apitally-actix-macros/tests/ui).

use crate::common;

use actix_web::{get, post, route, test, web, App, HttpResponse, Responder};
use apitally_actix::Consumer;
use common::{apitally, count, items, TestHub};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Clone)]
struct User {
    id: u64,
    name: String,
    plan: Option<&'static str>,
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
}

/// Documented, public, above the route macro.
#[apitally_actix::consumer(user.id, name = user.name, group = user.plan)]
#[get("/above")]
pub async fn above(user: web::ReqData<User>) -> impl Responder {
    // The handler still owns and uses its argument.
    format!("hello {}", user.name)
}

#[get("/below")]
#[apitally_actix::consumer(format!("u-{}", user.id))]
async fn below(user: web::ReqData<User>) -> impl Responder {
    user.id.to_string()
}

#[route("/routed", method = "POST", method = "PUT")]
#[apitally_actix::consumer("fixed-consumer", name = "Fixed")]
async fn routed() -> HttpResponse {
    HttpResponse::NoContent().finish()
}

#[apitally_actix::consumer(claims.sub)]
async fn optional(claims: web::Query<Claims>, body: String) -> String {
    format!("{}:{}", claims.sub.as_deref().unwrap_or("-"), body)
}

#[apitally_actix::consumer(id)]
async fn generic<T: std::fmt::Display + 'static>(id: web::Path<u32>) -> String {
    format!("{}", std::any::type_name::<T>().len() + *id as usize)
}

#[post("/untagged")]
async fn untagged() -> &'static str {
    "anonymous"
}

async fn add_user(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use actix_web::HttpMessage;
    req.extensions_mut().insert(User {
        id: 42,
        name: "Ada".into(),
        plan: Some("Enterprise"),
    });
    next.call(req).await
}

#[actix_web::test]
async fn tagged_handlers_set_their_consumer() {
    let hub = TestHub::start();
    // The macro's consumer wins over this callback.
    let apitally = apitally(&hub, |c| {
        c.identify_consumer(|_| Some(Consumer::new("callback")))
    });
    let app = test::init_service(
        App::new()
            .wrap(actix_web::middleware::from_fn(add_user))
            .wrap(apitally.clone())
            .service(above)
            .service(below)
            .service(routed)
            .service(untagged)
            .route("/optional", web::post().to(optional))
            .route("/generic/{id}", web::get().to(generic::<String>)),
    )
    .await;
    let call = |method: &str, uri: &str| {
        test::TestRequest::default()
            .method(method.parse().unwrap())
            .uri(uri)
            .set_payload("payload")
            .to_request()
    };
    assert_eq!(
        test::call_and_read_body(&app, call("GET", "/above")).await,
        "hello Ada"
    );
    assert_eq!(
        test::call_and_read_body(&app, call("GET", "/below")).await,
        "42"
    );
    test::call_and_read_body(&app, call("POST", "/routed")).await;
    test::call_and_read_body(&app, call("PUT", "/routed")).await;
    test::call_and_read_body(&app, call("POST", "/untagged")).await;
    let body = test::call_and_read_body(&app, call("POST", "/optional?sub=s-1")).await;
    assert_eq!(body, "s-1:payload");
    let body = test::call_and_read_body(&app, call("POST", "/optional")).await;
    assert_eq!(body, "-:payload");
    test::call_and_read_body(&app, call("GET", "/generic/3")).await;
    apitally.shutdown().await;

    assert_eq!(
        count(&hub, "GET", "/above", Some(200), Some(json!("42"))),
        1
    );
    assert_eq!(
        count(&hub, "GET", "/below", Some(200), Some(json!("u-42"))),
        1
    );
    assert_eq!(
        count(
            &hub,
            "POST",
            "/routed",
            Some(204),
            Some(json!("fixed-consumer"))
        ),
        1
    );
    assert_eq!(
        count(
            &hub,
            "PUT",
            "/routed",
            Some(204),
            Some(json!("fixed-consumer"))
        ),
        1
    );
    assert_eq!(
        count(&hub, "POST", "/optional", Some(200), Some(json!("s-1"))),
        1
    );
    assert_eq!(
        count(&hub, "GET", "/generic/{id}", Some(200), Some(json!("3"))),
        1
    );
    // Untagged handlers and a `None` identifier fall back to the callback.
    assert_eq!(
        count(
            &hub,
            "POST",
            "/untagged",
            Some(200),
            Some(json!("callback"))
        ),
        1
    );
    assert_eq!(
        count(
            &hub,
            "POST",
            "/optional",
            Some(200),
            Some(json!("callback"))
        ),
        1
    );
    let mut consumers: Vec<Value> = items(&hub, "consumers");
    consumers.sort_by_key(|c| c["identifier"].as_str().unwrap().to_owned());
    assert_eq!(
        consumers,
        vec![
            json!({"identifier": "42", "name": "Ada", "group": "Enterprise"}),
            json!({"identifier": "fixed-consumer", "name": "Fixed", "group": null}),
        ]
    );
}

#[actix_web::test]
async fn without_callback_untagged_stays_anonymous() {
    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| c);
    let app = test::init_service(
        App::new()
            .wrap(apitally.clone())
            .service(untagged)
            .route("/optional", web::post().to(optional)),
    )
    .await;
    test::call_and_read_body(
        &app,
        test::TestRequest::post().uri("/untagged").to_request(),
    )
    .await;
    test::call_and_read_body(
        &app,
        test::TestRequest::post().uri("/optional").to_request(),
    )
    .await;
    apitally.shutdown().await;
    assert_eq!(count(&hub, "POST", "/untagged", None, Some(Value::Null)), 1);
    assert_eq!(count(&hub, "POST", "/optional", None, Some(Value::Null)), 1);
}

/// The optional-authentication pattern of the macro's docs.
#[apitally_actix::consumer(user.as_ref().map(|u| u.id), name = user.as_ref().map(|u| u.name.clone()))]
#[get("/catalog")]
async fn catalog(user: Option<web::ReqData<User>>) -> HttpResponse {
    match user {
        Some(user) => HttpResponse::Ok().body(format!("prices for {}", user.name)),
        None => HttpResponse::Ok().body("list prices"),
    }
}

/// Adds the user only for requests with `x-user`.
async fn maybe_add_user(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use actix_web::HttpMessage;
    if req.headers().contains_key("x-user") {
        req.extensions_mut().insert(User {
            id: 7,
            name: "Grace".into(),
            plan: None,
        });
    }
    next.call(req).await
}

#[actix_web::test]
async fn optional_authentication_names_only_the_authenticated() {
    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| c);
    let app = test::init_service(
        App::new()
            .wrap(actix_web::middleware::from_fn(maybe_add_user))
            .wrap(apitally.clone())
            .service(catalog),
    )
    .await;
    let signed_in = test::TestRequest::get()
        .uri("/catalog")
        .insert_header(("x-user", "1"))
        .to_request();
    assert_eq!(
        test::call_and_read_body(&app, signed_in).await,
        "prices for Grace"
    );
    for _ in 0..2 {
        let anonymous = test::TestRequest::get().uri("/catalog").to_request();
        assert_eq!(
            test::call_and_read_body(&app, anonymous).await,
            "list prices"
        );
    }
    apitally.shutdown().await;
    assert_eq!(
        count(&hub, "GET", "/catalog", Some(200), Some(json!("7"))),
        1
    );
    assert_eq!(
        count(&hub, "GET", "/catalog", Some(200), Some(Value::Null)),
        2
    );
    let consumers = items(&hub, "consumers");
    assert_eq!(consumers.len(), 1, "{consumers:#?}");
    assert_eq!(consumers[0]["identifier"], "7");
    assert_eq!(consumers[0]["name"], "Grace");
}

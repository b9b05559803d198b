use actix_web::{
    guard,
    test::{self, TestRequest},
    web, App, HttpRequest, HttpResponse,
};

use super::*;

fn worker() -> Rc<Worker> {
    Rc::new(Worker::new(Arc::new(Shared {
        pipeline: apitally_core::adapter::Pipeline::disabled(),
        identify_consumer: None,
    })))
}

/// What the worker knows of a request's route to `app` before routing (the cached
/// template), and after (the matched one).
async fn routes_of(worker: &Rc<Worker>, req: TestRequest) -> (Option<String>, Option<String>) {
    let seen = Rc::new(RefCell::new((None, None)));
    let app = test::init_service(
        App::new()
            .wrap_fn({
                let worker = Rc::clone(worker);
                let seen = Rc::clone(&seen);
                move |req, srv| {
                    use actix_web::dev::Service as _;
                    let early = worker.early_route(&req);
                    seen.borrow_mut().0 = early.cached().map(|r| r.to_string());
                    let worker = Rc::clone(&worker);
                    let seen = Rc::clone(&seen);
                    let fut = srv.call(req);
                    async move {
                        let res = fut.await?;
                        seen.borrow_mut().1 = worker
                            .routes
                            .matched(res.request(), &early)
                            .map(|r| r.to_string());
                        Ok(res)
                    }
                }
            })
            .service(
                web::resource("/items/{id:\\d+}")
                    .guard(guard::Get())
                    .to(|| async { "item" }),
            )
            .route("/items/new", web::get().to(|| async { "new" }))
            .service(web::resource("/only-get").route(web::get().to(HttpResponse::Ok)))
            .service(
                web::scope("/api")
                    .route("/static", web::get().to(|| async { "s" }))
                    .route(
                        "/files/{tail}*",
                        web::get().to(|_: HttpRequest| async { "f" }),
                    ),
            ),
    )
    .await;
    let _ = test::call_service(&app, req.to_request()).await;
    let seen = seen.borrow();
    (seen.0.clone(), seen.1.clone())
}

#[actix_web::test]
async fn only_full_matches_have_a_route() {
    let worker = worker();
    let get = |uri: &str| TestRequest::get().uri(uri);
    let m = |s: &str| Some(s.to_owned());
    assert_eq!(
        routes_of(&worker, get("/items/7")).await.1,
        m("/items/{id}")
    );
    // The resource's method guard fails: routing goes on to the default service (404).
    // The request is not an endpoint.
    assert_eq!(
        routes_of(&worker, TestRequest::delete().uri("/items/7"))
            .await
            .1,
        None
    );
    let head = TestRequest::default()
        .method(actix_web::http::Method::HEAD)
        .uri("/items/7");
    assert_eq!(routes_of(&worker, head).await.1, None);
    assert_eq!(routes_of(&worker, get("/nothing/here")).await, (None, None));
    assert_eq!(
        routes_of(&worker, get("/api/files/a/b.txt")).await.1,
        m("/api/files/{tail}*")
    );
}

#[actix_web::test]
async fn static_paths_are_cached_after_a_routed_match() {
    let worker = worker();
    let get = |uri: &str| TestRequest::get().uri(uri);
    let m = |s: &str| Some(s.to_owned());
    assert_eq!(
        routes_of(&worker, get("/items/new")).await,
        (None, m("/items/new"))
    );
    // Now known before routing too.
    assert_eq!(
        routes_of(&worker, get("/items/new")).await,
        (m("/items/new"), m("/items/new"))
    );
    // Dynamic paths are not known before routing; after, they are found by their shape, one
    // entry per route whatever the values; templates are interned once.
    for id in 0..20 {
        assert_eq!(
            routes_of(&worker, get(&format!("/items/{id}"))).await,
            (None, m("/items/{id}"))
        );
        assert_eq!(
            routes_of(&worker, get(&format!("/api/files/{id}/x{id}.txt")))
                .await
                .1,
            m("/api/files/{tail}*")
        );
    }
    assert_eq!(worker.routes.by_path.borrow().len(), 1);
    assert_eq!(worker.routes.by_shape.borrow().known.len(), 2);
    assert_eq!(worker.routes.interned.borrow().len(), 3);
    // A value that looks like a template or a shape is just a value.
    assert_eq!(
        routes_of(&worker, get("/api/files/%7Bid%7D")).await.1,
        m("/api/files/{tail}*")
    );
    assert_eq!(
        routes_of(&worker, get("/items/%00")).await.1,
        None,
        "not digits: the default service"
    );
    routes_of(&worker, get("/api/static")).await;
    assert_eq!(
        routes_of(&worker, get("/api/static")).await.0,
        m("/api/static")
    );
    // Path copies are released with their request.
    let (bufs, free) = &*worker.paths.entries.borrow();
    assert_eq!(bufs.len(), free.len());
}

#[actix_web::test]
async fn routes_without_the_request_come_from_a_copy_of_the_resource_map() {
    let worker = worker();
    // Each request's early route is checked while its path copy is alive.
    let routed = |uri: &'static str| {
        let worker = Rc::clone(&worker);
        async move {
            let seen = Rc::new(RefCell::new(None));
            let app = test::init_service(
                App::new()
                    .wrap_fn({
                        let seen = Rc::clone(&seen);
                        move |req, srv| {
                            use actix_web::dev::Service as _;
                            let early = worker.early_route(&req);
                            *seen.borrow_mut() =
                                worker.route_without_request(&early).map(|r| r.to_string());
                            srv.call(req)
                        }
                    })
                    .route("/a/{id:\\d+}", web::get().to(|| async { "a" }))
                    .service(web::scope("/s").route("/t/{x}", web::get().to(|| async { "t" }))),
            )
            .await;
            let _ = test::call_service(&app, TestRequest::get().uri(uri).to_request()).await;
            seen.take()
        }
    };
    assert_eq!(routed("/a/1").await.as_deref(), Some("/a/{id}"));
    assert_eq!(routed("/s/t/9").await.as_deref(), Some("/s/t/{x}"));
    assert_eq!(routed("/a/x").await, None);
    assert_eq!(routed("/nope").await, None);
    // The copy outlives the app it came from, and still gives whole templates.
    let early = EarlyRoute::Path(PathCopy {
        worker: Rc::clone(&worker),
        index: worker.paths.store("/s/t/1"),
    });
    assert_eq!(
        worker.route_without_request(&early).as_deref(),
        Some("/s/t/{x}")
    );
}

#[test]
fn maps_are_bounded() {
    let routes = Routes::default();
    for i in 0..Routes::MAX + 10 {
        routes.intern(format!("/r/{i}"));
    }
    assert_eq!(routes.interned.borrow().len(), Routes::MAX);
    // Past the bound, templates are still given (just not shared).
    assert_eq!(&*routes.intern("/r/x".into()), "/r/x");
}

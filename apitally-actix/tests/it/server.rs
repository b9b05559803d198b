//! Real `HttpServer`s with several workers under concurrent load: exact totals at the hub, one
//! client and one instance UUID, whether the middleware is built outside or inside the
//! `HttpServer::new` closure.

use crate::common;

use std::collections::HashSet;

use actix_web::{web, App, HttpRequest, HttpResponse};
use apitally_actix::{Apitally, ApitallyConfig, Consumer};
use common::{config, count, TestHub};
use futures_util::{stream, StreamExt};
use serde_json::json;

const CONCURRENCY: usize = 16;
const REQUESTS: usize = 2_000;

fn app_config(cfg: &mut web::ServiceConfig) {
    cfg.route("/a", web::get().to(|| async { "a" }))
        .route(
            "/b/{id}",
            web::post().to(|body: web::Bytes| async move { HttpResponse::Created().body(body) }),
        )
        .service(web::scope("/s").route(
            "/c",
            web::get().to(|req: HttpRequest| async move { req.path().to_owned() }),
        ));
}

fn consumer_of(req: &HttpRequest) -> Option<Consumer> {
    req.headers()
        .get("x-api-key")?
        .to_str()
        .ok()
        .map(Consumer::new)
}

/// Sends REQUESTS requests, CONCURRENCY at a time: request i goes to one of three routes with
/// consumer `k{i % 5}` on odd i, anonymous on even i.
async fn load(port: u16) {
    let client = awc::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .finish();
    stream::iter(0..REQUESTS)
        .for_each_concurrent(CONCURRENCY, |i| {
            let client = client.clone();
            async move {
                let mut req = match i % 3 {
                    0 => client.get(format!("http://127.0.0.1:{port}/a")),
                    1 => client.post(format!("http://127.0.0.1:{port}/b/{i}")),
                    _ => client.get(format!("http://127.0.0.1:{port}/s/c")),
                };
                if i % 2 == 1 {
                    req = req.insert_header(("x-api-key", format!("k{}", i % 5)));
                }
                let mut res = if i % 3 == 1 {
                    req.send_body("0123456789").await.unwrap()
                } else {
                    req.send().await.unwrap()
                };
                assert!(res.status().is_success());
                res.body().await.unwrap();
            }
        })
        .await;
}

fn check_totals(hub: &TestHub) {
    let expect = |route: usize| (0..REQUESTS).filter(|i| i % 3 == route).count() as u64;
    assert_eq!(count(hub, "GET", "/a", Some(200), None), expect(0));
    assert_eq!(count(hub, "POST", "/b/{id}", Some(201), None), expect(1));
    assert_eq!(count(hub, "GET", "/s/c", Some(200), None), expect(2));
    for k in 0..5 {
        let expected = (0..REQUESTS).filter(|i| i % 2 == 1 && i % 5 == k).count() as u64;
        let got: u64 = ["/a", "/b/{id}", "/s/c"]
            .iter()
            .zip(["GET", "POST", "GET"])
            .map(|(path, method)| count(hub, method, path, None, Some(json!(format!("k{k}")))))
            .sum();
        assert_eq!(got, expected, "consumer k{k}");
    }
    let anonymous: u64 = ["/a", "/b/{id}", "/s/c"]
        .iter()
        .zip(["GET", "POST", "GET"])
        .map(|(path, method)| count(hub, method, path, None, Some(serde_json::Value::Null)))
        .sum();
    assert_eq!(anonymous, (REQUESTS / 2) as u64);
    let instances: HashSet<_> = hub
        .received()
        .iter()
        .filter_map(|r| r.json.as_ref().map(|j| j["instance_uuid"].clone()))
        .collect();
    assert_eq!(instances.len(), 1, "{instances:?}");
    assert_eq!(hub.received_at("startup").len(), 1);
}

#[actix_web::test]
async fn four_workers_give_exact_totals_and_one_instance() {
    let hub = TestHub::start();
    let apitally = Apitally::try_new(config(&hub).identify_consumer(consumer_of)).unwrap();
    let (handle, port) = spawn_server!(4, {
        let apitally = apitally.clone();
        move || App::new().wrap(apitally.clone()).configure(app_config)
    });
    load(port).await;
    handle.stop(true).await;
    apitally.shutdown().await;
    check_totals(&hub);
}

#[actix_web::test]
async fn the_short_form_shares_one_client_across_workers() {
    let hub = TestHub::start();
    let cfg: ApitallyConfig = config(&hub).identify_consumer(consumer_of);
    let (handle, port) = spawn_server!(4, {
        let cfg = cfg.clone();
        move || {
            App::new()
                .wrap(Apitally::new(cfg.clone()))
                .configure(app_config)
        }
    });
    load(port).await;
    handle.stop(true).await;
    // Any handle reaches the one running client.
    Apitally::new(cfg).shutdown().await;
    check_totals(&hub);
}

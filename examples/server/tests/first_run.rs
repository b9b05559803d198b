//! The example API and the local hub together, as `cargo run -p example-server` runs them
//! offline: a scripted set of requests over hub v2 (the default) and over OTLP 1.x
//! (`EXAMPLE_PROTOCOL=otlp`), then the hub's summary numbers and its dashboard's data.

use std::time::Duration;

use actix_web::{middleware, web, App, HttpServer};
use apitally::{Apitally, ApitallyConfig};
use example_server::{apitally_config, authenticate, configure, OfflineProtocol, Store};
use local_hub::LocalHub;
use serde_json::Value;

/// Apitally's tracing layer, as `main` installs it (once per test process).
fn tracing() {
    use tracing_subscriber::prelude::*;
    let _ = tracing_subscriber::registry()
        .with(apitally::tracing_layer())
        .try_init();
}

/// Serves the example with `config` (as `main` does), sends the scripted requests, then stops
/// the server and shuts Apitally down (its final sync or export). 14 requests: 3 creates (201,
/// 422 from the app, 400 from the Json extractor), 3 gets of an item (one 404), a list, a health
/// check, a streamed report, an update, `/me/orders`, a failure, a panic and a delete.
async fn serve_and_send_requests(config: ApitallyConfig) {
    let apitally = Apitally::try_new(apitally_config(config)).unwrap();
    let store = web::Data::new(Store::default());
    let server = HttpServer::new({
        let apitally = apitally.clone();
        move || {
            App::new()
                .app_data(store.clone())
                .wrap(middleware::from_fn(authenticate))
                .wrap(apitally.clone())
                .configure(configure)
        }
    })
    .workers(2)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let base = format!("http://{}", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);

    let client = awc::Client::default();
    let acme = ("x-api-key", "demo-key-acme");
    let json = ("content-type", "application/json");
    let status = |res: &awc::ClientResponse<_>| res.status().as_u16();
    let mut codes = Vec::new();
    for body in [
        r#"{"name":"Widget","price_cents":1999}"#,
        r#"{"name":"  ","price_cents":5}"#,
        r#"{"name":"Gadget"}"#,
    ] {
        let res = client
            .post(format!("{base}/items"))
            .insert_header(acme)
            .insert_header(json)
            .send_body(body)
            .await
            .unwrap();
        codes.push(status(&res));
    }
    assert_eq!(codes, [201, 422, 400]);
    for uri in [
        "/items/1",
        "/items/1",
        "/items/99",
        "/items?limit=5",
        "/health",
        "/report",
    ] {
        let mut res = client.get(format!("{base}{uri}")).send().await.unwrap();
        res.body().await.unwrap();
    }
    let res = client
        .put(format!("{base}/items/1"))
        .insert_header(json)
        .send_body(r#"{"name":"Widget 2","price_cents":2999}"#)
        .await
        .unwrap();
    assert_eq!(status(&res), 200);
    let mut res = client
        .get(format!("{base}/me/orders"))
        .insert_header(("authorization", "Bearer user-ada"))
        .send()
        .await
        .unwrap();
    assert!(!res.body().await.unwrap().is_empty());
    let res = client.get(format!("{base}/fail")).send().await.unwrap();
    assert_eq!(status(&res), 500);
    let res = client.get(format!("{base}/panic")).send().await.unwrap();
    assert_eq!(status(&res), 500);
    let res = client
        .delete(format!("{base}/items/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(status(&res), 204);
    handle.stop(true).await;
    apitally.shutdown().await;
}

/// The hub's `/api/dashboard`.
async fn dashboard(hub: &LocalHub) -> Value {
    let mut res = awc::Client::default()
        .get(format!("{}/api/dashboard", hub.url()))
        .send()
        .await
        .unwrap();
    res.json().limit(16 << 20).await.unwrap()
}

/// What both protocols show alike on the dashboard: the example's routes listed at startup
/// with their counts, consumers, server errors, the request logs (all but the health check)
/// with their captured logs and spans, and the request-log totals the SDK reported.
fn assert_dashboard(app: &Value) {
    assert!(
        app["rejected"].as_array().unwrap().is_empty(),
        "{}",
        app["rejected"]
    );
    let endpoints = app["endpoints"].as_array().unwrap();
    let endpoint = |method: &str, route: &str| {
        endpoints
            .iter()
            .find(|e| e["method"] == method && e["route"] == route)
            .unwrap_or_else(|| panic!("no {method} {route}: {endpoints:#?}"))
    };
    assert_eq!(endpoints.len(), 10, "{endpoints:#?}");
    assert!(endpoints.iter().all(|e| e["declared"] == true));
    let counts = |method, route| {
        let e = endpoint(method, route);
        (
            e["requests"].as_u64().unwrap(),
            e["client_errors"].as_u64().unwrap(),
            e["server_errors"].as_u64().unwrap(),
        )
    };
    assert_eq!(counts("POST", "/items"), (3, 2, 0));
    assert_eq!(counts("GET", "/items/{item_id}"), (3, 1, 0));
    assert_eq!(counts("GET", "/items"), (1, 0, 0));
    assert_eq!(counts("GET", "/health"), (1, 0, 0));
    assert_eq!(counts("GET", "/fail"), (1, 0, 1));
    assert_eq!(counts("GET", "/panic"), (1, 0, 1));
    assert_eq!(app["totals"]["requests"], 14);
    assert_eq!(
        endpoint("GET", "/report")["response_bytes"],
        5 * "line 0 of a streamed report\n".len()
    );
    let consumer = |id: &str| {
        app["consumers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["identifier"] == id)
            .unwrap_or_else(|| panic!("no consumer {id}: {}", app["consumers"]))
            .clone()
    };
    assert_eq!(consumer("acme")["name"], "Acme Corp");
    assert_eq!(consumer("acme")["requests"], 3);
    assert_eq!(consumer("user-ada")["group"], "Pro");
    let server_errors = app["server_errors"].as_array().unwrap();
    assert!(server_errors.iter().any(|s| s["message"]
        .as_str()
        .unwrap()
        .contains("the database is not reachable")));
    assert!(server_errors.iter().any(|s| s["message"]
        .as_str()
        .unwrap()
        .contains("index out of bounds")));
    assert!(!app["received"].as_array().unwrap().is_empty());

    // Every request but the health check (excluded by default), masked, the create request's
    // with its log record and span.
    let logs = app["request_logs"].as_array().unwrap();
    assert_eq!(logs.len(), 13, "{logs:#?}");
    assert!(logs.iter().all(|l| l["path"] != "/health"));
    let all = serde_json::to_string(logs).unwrap();
    assert!(
        !all.contains("demo-key-acme"),
        "the API key header is masked"
    );
    assert!(
        !all.contains("Bearer user-ada"),
        "the bearer token is masked"
    );
    let create = logs
        .iter()
        .find(|l| l["method"] == "POST" && l["status"] == 201)
        .unwrap();
    assert_eq!(create["logs"][0]["message"], "creating item 1 name=Widget");
    assert!(create["spans"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["name"] == "store.insert"));
    assert!(create["request"]["body"]["text"]
        .as_str()
        .unwrap()
        .contains("\"name\": \"Widget\""));
    assert_eq!(
        app["request_log_totals"],
        serde_json::json!({"logged": 13, "sampled_out": 0, "excluded": 1, "dropped": 0})
    );
}

#[actix_web::test]
async fn example_reports_to_the_local_hub_over_otlp() {
    tracing();
    let hub = LocalHub::start("127.0.0.1:0").unwrap();
    serve_and_send_requests(OfflineProtocol::Otlp.config(hub.url(), "dev")).await;
    let dashboard = dashboard(&hub).await;
    let app = &dashboard["apps"][0];
    assert_eq!(app["app"], "apt_0000…/dev");
    assert_eq!(app["protocol"], "OTLP 1.x");
    assert_dashboard(app);
}

#[actix_web::test]
async fn example_reports_to_the_local_hub() {
    tracing();
    let hub = LocalHub::start("127.0.0.1:0").unwrap();
    let log_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("apitally-example-{}", std::process::id()));
    let config = OfflineProtocol::Hub
        .config(hub.url(), "dev")
        .test_client_config(move |c| {
            c.test_sync_interval(Duration::from_secs(3600))
                .test_log_dir(log_dir)
        });
    serve_and_send_requests(config).await;
    let dashboard = dashboard(&hub).await;
    let app = &dashboard["apps"][0];
    assert_eq!(app["protocol"], "hub v2");
    assert_dashboard(app);

    // The summary of what arrived, in hub v2 shapes.
    let summary = hub.summary();
    assert_eq!(summary.apps.len(), 1);
    let app = &summary.apps[0];
    assert!(app.rejected.is_empty(), "{:?}", app.rejected);
    assert_eq!(app.instances.len(), 1);
    assert_eq!(app.startup["client"], "rust:actix");
    assert_eq!(app.startup["paths"].as_array().unwrap().len(), 10);
    let create = summary.endpoint("POST", "/items").unwrap();
    assert_eq!(create.requests, 3);
    assert!((create.error_rate - 0.667).abs() < 1e-9, "{create:?}");
    let get = summary.endpoint("GET", "/items/{item_id}").unwrap();
    assert_eq!((get.requests, get.error_rate), (3, 0.333));
    assert_eq!(summary.endpoint("GET", "/items").unwrap().requests, 1);
    assert_eq!(summary.endpoint("GET", "/health").unwrap().requests, 1);
    let report = summary.endpoint("GET", "/report").unwrap();
    assert_eq!(
        report.response_bytes,
        5 * "line 0 of a streamed report\n".len() as u64
    );
    assert_eq!(
        summary
            .endpoint("PUT", "/items/{item_id}")
            .unwrap()
            .requests,
        1
    );
    assert_eq!(
        summary
            .endpoint("DELETE", "/items/{item_id}")
            .unwrap()
            .requests,
        1
    );
    let fail = summary.endpoint("GET", "/fail").unwrap();
    assert_eq!(
        (fail.requests, fail.server_errors, fail.error_rate),
        (1, 1, 1.0)
    );
    assert_eq!(summary.endpoint("GET", "/panic").unwrap().server_errors, 1);
    assert_eq!(summary.total_requests(), 14);
    let acme = summary.consumer("acme").unwrap();
    assert_eq!(
        (acme.requests, acme.name.as_str(), acme.group.as_str()),
        (3, Some("Acme Corp"), Some("Enterprise"))
    );
    let ada = summary.consumer("user-ada").unwrap();
    assert_eq!((ada.requests, ada.group.as_str()), (1, Some("Pro")));
    let validation: Vec<_> = app
        .validation_errors
        .iter()
        .map(|v| v["type"].clone())
        .collect();
    assert!(validation.contains(&"value_error".into()), "{validation:?}");
    assert!(validation.contains(&"missing".into()), "{validation:?}");
    let types: Vec<_> = app
        .server_errors
        .iter()
        .map(|s| s["type"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        types.contains(&"DatabaseDown".to_owned()) && types.contains(&"panic".to_owned()),
        "{types:?}"
    );
    let panic = app
        .server_errors
        .iter()
        .find(|s| s["type"] == "panic")
        .unwrap();
    assert!(panic["msg"]
        .as_str()
        .unwrap()
        .contains("index out of bounds"));

    // Request logs: every request but the health check (excluded by default), masked.
    let logs = &app.request_logs;
    assert_eq!(logs.len(), 13, "{logs:#?}");
    let panic = logs
        .iter()
        .find(|l| l["request"]["url"].as_str().unwrap().ends_with("/panic"))
        .unwrap();
    assert_eq!(panic["response"]["status_code"], 500);
    assert_eq!(panic["exception"]["type"], "panic");
    assert!(logs
        .iter()
        .all(|l| !l["request"]["url"].as_str().unwrap().ends_with("/health")));
    let all = serde_json::to_string(logs).unwrap();
    assert!(
        !all.contains("demo-key-acme"),
        "the API key header is masked"
    );
    assert!(
        !all.contains("Bearer user-ada"),
        "the bearer token is masked"
    );

    // The create request's line carries its log record and spans.
    let create = logs
        .iter()
        .find(|l| l["request"]["method"] == "POST" && l["response"]["status_code"] == 201)
        .unwrap();
    assert_eq!(create["logs"][0]["message"], "creating item 1 name=Widget");
    let span_names: Vec<&str> = create["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        span_names.contains(&"POST /items") && span_names.contains(&"store.insert"),
        "{span_names:?}"
    );

    // And the page that draws it.
    let mut page = awc::Client::default()
        .get(format!("{}/", hub.url()))
        .send()
        .await
        .unwrap();
    let html = String::from_utf8(page.body().await.unwrap().to_vec()).unwrap();
    assert!(html.contains("/dashboard.js"), "{html}");
}

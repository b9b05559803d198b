//! The hub through a real `CONNECT` proxy on 127.0.0.1: startup, syncs and request-log uploads
//! all go through the tunnel (the hub sees only the proxy's connections), credentials reach the
//! proxy and never a log line, `NO_PROXY` bypasses it, and a proxy that refuses, is down or
//! never answers costs nothing but time: the app keeps serving and every request is delivered
//! once the proxy works. The environment is passed through the test hook (tests run in
//! parallel); `apitally-core/tests/proxy_env.rs` reads the real one.

use crate::common;

use std::time::Duration;

use actix_web::{test, web, App, HttpResponse};
use apitally_actix::{Apitally, ApitallyConfig, RequestLoggingConfig};
use apitally_test_hub::{capture_logs, ProxyMode, TestProxy};
use common::{count, log_lines, TestHub};
use log::Level;

const WAIT: Duration = Duration::from_secs(20);

/// A config with short cycles, request logging on, and `env` as the whole environment.
fn config(hub: &TestHub, env: &[(&str, String)]) -> ApitallyConfig {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("apitally-logs-{}", uuid::Uuid::new_v4()));
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let config = common::config(hub)
        .request_logging(RequestLoggingConfig::new().log_request_headers(true))
        .test_client_config(move |c| {
            c.test_sync_interval(Duration::from_millis(200))
                .test_request_timeout(Duration::from_millis(800))
                .test_log_dir(dir)
                .test_net_env(env)
        });
    match hub.ca_pem() {
        Some(ca) => config.ca_certificates_pem(ca),
        None => config,
    }
}

async fn serve(apitally: &Apitally, n: usize) {
    let app = test::init_service(App::new().wrap(apitally.clone()).route(
        "/items",
        web::get().to(|| async { HttpResponse::Ok().body("ok") }),
    ))
    .await;
    for _ in 0..n {
        let res =
            test::call_service(&app, test::TestRequest::get().uri("/items").to_request()).await;
        assert_eq!(res.status(), 200, "the app keeps serving");
        assert_eq!(test::read_body(res).await, "ok");
    }
}

fn wait(what: &str, pred: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    while !pred() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_no_secret_logged(secrets: &[&str]) {
    for (_, line) in capture_logs().lines() {
        for secret in secrets {
            assert!(!line.contains(secret), "{secret:?} logged: {line}");
        }
    }
}

#[actix_web::test]
async fn startup_syncs_and_log_uploads_go_through_the_tunnel() {
    let logs = capture_logs();
    let hub = TestHub::start_tls();
    let proxy = TestProxy::start(Some(("apitally", "p@ss:w0rd")));
    let env = [(
        "HTTPS_PROXY",
        format!("http://apitally:p%40ss%3Aw0rd@127.0.0.1:{}", proxy.port()),
    )];
    let apitally = Apitally::try_new(config(&hub, &env)).unwrap();
    serve(&apitally, 12).await;
    apitally.shutdown().await;

    assert_eq!(hub.received_at("startup").len(), 1);
    assert_eq!(count(&hub, "GET", "/items", Some(200), None), 12);
    assert_eq!(log_lines(&hub).len(), 12);
    // Every request the hub received came from one of the proxy's connections.
    let through = proxy.upstream_addrs();
    let received = hub.received();
    assert!(received.iter().any(|r| r.endpoint == "log"));
    for r in &received {
        assert!(
            through.contains(&r.peer.unwrap()),
            "{} not through the proxy",
            r.endpoint
        );
    }
    assert!(proxy.tunnels() >= 1 && proxy.tunnels() == through.len() as u64);
    let (up, down) = proxy.bytes();
    let bodies: usize = received.iter().map(|r| r.body.len()).sum();
    assert!(
        up as usize > bodies,
        "{up} bytes up for {bodies} bytes of bodies (TLS adds)"
    );
    assert!(down > 0);
    for head in proxy.requests() {
        assert!(
            head.starts_with(&format!("CONNECT 127.0.0.1:{} HTTP/1.1\r\n", hub.port())),
            "{head}"
        );
        assert!(
            head.contains(&format!("Host: 127.0.0.1:{}\r\n", hub.port())),
            "{head}"
        );
        // base64("apitally:p@ss:w0rd")
        assert!(
            head.contains("Proxy-Authorization: Basic YXBpdGFsbHk6cEBzczp3MHJk\r\n"),
            "{head}"
        );
    }
    let route = format!(
        "through proxy http://***@127.0.0.1:{} (from HTTPS_PROXY)",
        proxy.port()
    );
    assert_eq!(logs.matching(Level::Debug, &route).len(), 1);
    assert_no_secret_logged(&["p@ss", "p%40ss", "w0rd", "apitally:p"]);
}

#[actix_web::test]
async fn no_proxy_matching_the_hub_goes_direct() {
    let hub = TestHub::start_tls();
    let proxy = TestProxy::start(None);
    let env = [
        ("HTTPS_PROXY", proxy.url()),
        ("NO_PROXY", "other.example, 127.0.0.0/8".to_owned()),
    ];
    let apitally = Apitally::try_new(config(&hub, &env)).unwrap();
    serve(&apitally, 5).await;
    apitally.shutdown().await;
    assert_eq!(count(&hub, "GET", "/items", Some(200), None), 5);
    assert_eq!(log_lines(&hub).len(), 5);
    assert_eq!(proxy.connections(), 0);
}

#[actix_web::test]
async fn a_plain_http_hub_is_reached_through_connect_too() {
    let hub = TestHub::start();
    let proxy = TestProxy::start(None);
    let apitally = Apitally::try_new(config(&hub, &[("http_proxy", proxy.url())])).unwrap();
    serve(&apitally, 3).await;
    apitally.shutdown().await;
    assert_eq!(count(&hub, "GET", "/items", Some(200), None), 3);
    let through = proxy.upstream_addrs();
    assert!(hub
        .received()
        .iter()
        .all(|r| through.contains(&r.peer.unwrap())));
    assert!(proxy.requests()[0].starts_with(&format!("CONNECT 127.0.0.1:{} ", hub.port())));
}

#[actix_web::test]
async fn a_proxy_that_answers_407_loses_nothing() {
    let logs = capture_logs();
    let hub = TestHub::start_tls();
    // The proxy wants other credentials than the client has: 407 on every CONNECT.
    let proxy = TestProxy::start(Some(("u", "right")));
    let port = proxy.port();
    let env = [(
        "HTTPS_PROXY",
        format!("http://u:wrong-secret@127.0.0.1:{port}"),
    )];
    let apitally = Apitally::try_new(config(&hub, &env)).unwrap();
    serve(&apitally, 10).await;
    // Several cycles refused; nothing reached the hub.
    wait("refusals", || proxy.refused() >= 9);
    assert!(hub.received().is_empty());
    let needle = format!("127.0.0.1:{port}");
    let warnings = logs.matching(Level::Warn, &needle);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let warning = &warnings[0];
    assert!(
        warning.contains(&format!(
            "proxy http://***@127.0.0.1:{port} (from HTTPS_PROXY) refused the tunnel"
        )),
        "{warning}"
    );
    assert!(warning.contains("HTTP 407"), "{warning}");
    assert!(warning.contains("check the credentials"), "{warning}");

    // The proxy now takes those credentials: everything queued arrives, once.
    proxy.stop();
    let proxy = TestProxy::start_on(port, Some(("u", "wrong-secret")));
    assert!(hub.wait_until(WAIT, |_| count(&hub, "GET", "/items", None, None) == 10));
    serve(&apitally, 5).await;
    apitally.shutdown().await;
    assert_eq!(count(&hub, "GET", "/items", Some(200), None), 15);
    assert_eq!(log_lines(&hub).len(), 15);
    assert!(proxy.tunnels() >= 1);
    assert_no_secret_logged(&["wrong-secret", "u:wrong"]);
}

#[actix_web::test]
async fn a_proxy_that_is_down_then_back_loses_nothing() {
    let logs = capture_logs();
    let hub = TestHub::start_tls();
    let proxy = TestProxy::start(None);
    let port = proxy.port();
    proxy.stop();
    // The explicit option, over an environment that says otherwise.
    let env = [("HTTPS_PROXY", "http://127.0.0.1:9".to_owned())];
    let apitally =
        Apitally::try_new(config(&hub, &env).proxy(format!("http://127.0.0.1:{port}"))).unwrap();
    serve(&apitally, 8).await;
    let needle = format!("proxy http://127.0.0.1:{port} (from proxy) is unreachable");
    wait("failures", || {
        logs.matching(Level::Debug, &needle).len() >= 9
    });
    assert_eq!(logs.matching(Level::Warn, &needle).len(), 1);
    assert!(hub.received().is_empty());

    let proxy = TestProxy::start_on(port, None);
    assert!(hub.wait_until(WAIT, |_| count(&hub, "GET", "/items", None, None) == 8));
    serve(&apitally, 2).await;
    apitally.shutdown().await;
    assert_eq!(count(&hub, "GET", "/items", Some(200), None), 10);
    assert_eq!(log_lines(&hub).len(), 10);
    assert!(proxy.tunnels() >= 1);
}

#[actix_web::test]
async fn a_proxy_that_never_answers_is_bounded_by_the_request_timeout() {
    let logs = capture_logs();
    let hub = TestHub::start_tls();
    let proxy = TestProxy::start(None);
    proxy.set_mode(ProxyMode::Silent);
    let apitally = Apitally::try_new(config(&hub, &[("HTTPS_PROXY", proxy.url())])).unwrap();
    serve(&apitally, 6).await;
    // Attempts time out one after the other: the loop does not hang on the first.
    let route = format!("127.0.0.1:{} through proxy {}", hub.port(), proxy.url());
    let timeouts = || {
        logs.matching(Level::Debug, &route)
            .iter()
            .filter(|l| l.contains("failed (attempt") && l.contains("timed out waiting for"))
            .count()
    };
    wait("timeouts", || timeouts() >= 4);
    assert!(proxy.connections() >= 4);
    proxy.set_mode(ProxyMode::Tunnel);
    assert!(hub.wait_until(WAIT, |_| count(&hub, "GET", "/items", None, None) == 6));
    apitally.shutdown().await;
    assert_eq!(count(&hub, "GET", "/items", Some(200), None), 6);
}

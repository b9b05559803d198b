//! A corpus of secrets planted in every part of a request where the README promises they are
//! masked (or never sent): headers, query strings, JSON bodies valid and broken, every JSON
//! content type, compressed bodies, aborted uploads, crafted `Host` and `X-Forwarded-Host`, and
//! extractor errors of every kind. The cases are generated (proptest strategies, a fixed seed)
//! and sent to a real server over raw TCP; then every payload the test hub received (startup,
//! syncs, request-log files with their base64 bodies decoded) is searched for every secret.

use crate::common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use actix_web::{web, App, HttpResponse};
use apitally_actix::RequestLoggingConfig;
use base64::Engine;
use common::TestHub;
use proptest::{
    prelude::*,
    strategy::ValueTree,
    test_runner::{Config, TestRunner},
};

/// Fields named so that the logged request body masks them: the secret then can only leak
/// through the validation message.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Typed {
    secret_pin: Option<u32>,
    card_number_small: Option<u8>,
    token_ratio: Option<f32>,
    auth_flag: Option<bool>,
    pwd_letter: Option<char>,
    api_key_kind: Option<Kind>,
    ssn_list: Option<Vec<u32>>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
enum Kind {
    Basic,
    Pro,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Numbers {
    n: u32,
}

/// One request of the corpus: the bytes sent, and what it plants.
#[derive(Debug, Clone)]
struct Case {
    what: String,
    secret: String,
    request: Vec<u8>,
    /// Send only this many bytes, then close (an aborted upload).
    cut: Option<usize>,
}

fn request(method: &str, target: &str, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\n").into_bytes();
    let has_host = headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host"));
    if !has_host {
        out.extend_from_slice(b"host: api.example.com\r\n");
    }
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(body);
    out
}

fn h(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Sensitive names in the case a client might use.
fn sensitive_key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "password",
        "Password",
        "new_password",
        "pwd",
        "token",
        "access_token",
        "refreshToken",
        "secret",
        "client_secret",
        "auth",
        "authorization",
        "card_number",
        "cardNumber",
        "card number",
        "ccv",
        "cvv_ssn",
        "ssn",
        "api_key",
        "api-key",
        "apiKey",
        "cvv",
        "card_cvc",
        "private_key",
        "privateKey",
        "refresh",
        "signature",
        "sessionId",
    ])
    .prop_map(str::to_owned)
}

fn json_content_type() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "application/json",
        "Application/JSON; charset=utf-8",
        "application/problem+json",
        "application/vnd.api+json",
        "application/ld+json",
        "application/merge-patch+json",
    ])
    .prop_map(str::to_owned)
}

/// A JSON document with `secret` under a sensitive key at some depth, as a string or number.
fn nested(depth: usize, key: &str, value: &str) -> String {
    let mut doc = format!(r#"{{"id": 1, "{key}": {value}, "note": "plain"}}"#);
    for level in 0..depth {
        doc = if level % 2 == 0 {
            format!(r#"{{"level{level}": {doc}, "n": [1, 2]}}"#)
        } else {
            format!(r#"[{{"x": true}}, {doc}]"#)
        };
    }
    doc
}

fn cases() -> impl Strategy<Value = Case> {
    let secret = "[A-Za-z0-9]{16}".prop_map(|s| format!("S3CR3T{s}"));
    let header = (
        secret.clone(),
        prop::sample::select(vec![
            "authorization",
            "proxy-authorization",
            "x-api-key",
            "api-key",
            "x-auth-token",
            "x-client-secret",
            "cookie",
            "x-amz-security-token",
            "x-session-id",
            "x-hub-signature-256",
            "referer",
        ]),
    )
        .prop_map(|(s, name)| {
            let value = match name {
                "authorization" => format!("Bearer {s}"),
                "cookie" => format!("session={s}; theme=dark"),
                "referer" => format!("https://app.example/reset?step=2&token={s}"),
                _ => s.clone(),
            };
            Case {
                what: format!("header {name}"),
                request: request("GET", "/echo", &[h(name, &value)], b""),
                secret: s,
                cut: None,
            }
        });
    let query = (
        secret.clone(),
        prop::sample::select(vec![
            "token=SECRET",
            "api_key=SECRET&page=2",
            "page=1;password=SECRET",
            "to%6Ben=SECRET",
            "PWD=SECRET",
            "x=1&client_secret=SECRET&y=2",
            "auth=SECRET;x=1",
            "access%5Ftoken=SECRET",
            "apiKey=SECRET",
            "cvv=SECRET",
            "cvc=SECRET&x=1",
            "sig=SECRET",
            "X-Amz-Algorithm=AWS4&X-Amz-Credential=SECRET&X-Amz-Signature=SECRET",
            "X-Amz-Security-Token=SECRET",
            "refresh_token=SECRET",
            "private_key=SECRET",
            "redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Fcode%3D1%26token%3DSECRET",
        ]),
    )
        .prop_map(|(s, q)| Case {
            what: format!("query {q}"),
            request: request(
                "GET",
                &format!("/echo?{}", q.replace("SECRET", &s)),
                &[],
                b"",
            ),
            secret: s,
            cut: None,
        });
    let body = (
        secret.clone(),
        sensitive_key(),
        0usize..6,
        any::<bool>(),
        json_content_type(),
        prop::sample::select(vec!["/echo", "/echo-json"]),
    )
        .prop_map(|(s, key, depth, number, ct, path)| {
            let value = if number {
                // A secret number (a PIN); the test looks for its digits.
                format!(
                    "9{}",
                    s.bytes().map(|b| (b % 10).to_string()).collect::<String>()
                )
            } else {
                s.clone()
            };
            let secret = value.clone();
            let value = if number {
                value
            } else {
                format!("\"{value}\"")
            };
            let doc = nested(depth, &key, &value);
            Case {
                what: format!("{ct} body, {key} at depth {depth} on {path}"),
                request: request("POST", path, &[h("content-type", &ct)], doc.as_bytes()),
                secret,
                cut: None,
            }
        });
    let broken = (
        secret.clone(),
        sensitive_key(),
        prop::sample::select(vec![
            r#"{"a": 1, "KEY": "SECRET",}"#,
            "{'KEY': 'SECRET', 'b': 2}",
            "\u{feff}{\"KEY\": \"SECRET\"}",
            r#"{"KEY": "SECRET", "n": NaN}"#,
            "{\"a\": 1, /* note */ \"KEY\": \"SECRET\" // end\n}",
            "{KEY: \"SECRET\"}",
            "{\"x\": 1}\n{\"KEY\": \"SECRET\"}\n",
            r#"{"a": "unbalanced, "KEY": "SECRET", "b": 1}"#,
            r#"{"a": 1, "KEY": "SECRET"#,
            "KEY=SECRET",
        ]),
        json_content_type(),
    )
        .prop_map(|(s, key, template, ct)| {
            let doc = template.replace("KEY", &key).replace("SECRET", &s);
            Case {
                what: format!("broken {ct} body {template:?} with {key}"),
                request: request("POST", "/echo", &[h("content-type", &ct)], doc.as_bytes()),
                secret: s,
                cut: None,
            }
        });
    let lines = (
        secret.clone(),
        sensitive_key(),
        prop::sample::select(vec![
            "application/x-ndjson",
            "application/ndjson",
            "application/jsonl",
            // Not JSON, whatever they look like: not logged at all.
            "application/json5",
            "application/jsonx",
            "text/json5",
        ]),
    )
        .prop_map(|(s, key, ct)| {
            let doc = format!("{{\"a\": 1}}\n{{\"{key}\": \"{s}\"}}\n{{'{key}': '{s}',}}\n");
            Case {
                what: format!("{ct} body with {key}"),
                request: request("POST", "/echo", &[h("content-type", ct)], doc.as_bytes()),
                secret: s,
                cut: None,
            }
        });
    let compressed = (
        secret.clone(),
        sensitive_key(),
        prop::sample::select(vec!["gzip", "x-gzip", "deflate", "br", "gzip-cut"]),
    )
        .prop_map(|(s, key, coding)| {
            let doc = nested(1, &key, &format!("\"{s}\""));
            let (body, header) = match coding {
                "gzip" | "x-gzip" => (gzip(doc.as_bytes()), coding),
                "deflate" => (deflate(doc.as_bytes()), coding),
                // Not decoded here: the (really gzip) bytes are not logged.
                "br" => (gzip(doc.as_bytes()), "br"),
                _ => {
                    let full = gzip(doc.as_bytes());
                    (full[..full.len() - 10].to_vec(), "gzip")
                }
            };
            let headers = [
                h("content-type", "application/json"),
                h("content-encoding", header),
            ];
            Case {
                what: format!("{coding} JSON body with {key}"),
                request: request("POST", "/echo", &headers, &body),
                secret: s,
                cut: None,
            }
        });
    let aborted = (secret.clone(), sensitive_key(), 0usize..40).prop_map(|(s, key, keep)| {
        let doc = format!(
            "{{\"{key}\": \"{s}\", \"padding\": \"{}\"}}",
            "p".repeat(200)
        );
        let full = request(
            "POST",
            "/echo",
            &[h("content-type", "application/json")],
            doc.as_bytes(),
        );
        let head = full.len() - doc.len();
        // The client goes away somewhere after the key, inside or after the secret.
        let at = head + doc.find(&s).unwrap() + keep;
        Case {
            what: format!("aborted upload with {key} cut at {keep}"),
            request: full,
            secret: s,
            cut: Some(at),
        }
    });
    let hosts = (
        secret.clone(),
        prop::sample::select(vec![
            ("host", "127.0.0.1#"),
            ("host", "evil.example#"),
            ("host", "127.0.0.1?x=1"),
            ("host", "a/b?c"),
            ("x-forwarded-host", "evil.example#"),
            ("x-forwarded-host", "proxy?x=1&"),
        ]),
    )
        .prop_map(|(s, (name, value))| {
            let mut headers = vec![h(name, value)];
            if name != "host" {
                headers.push(h("host", "api.example.com"));
                headers.push(h("x-forwarded-proto", "https"));
            }
            Case {
                what: format!("{name}: {value}"),
                request: request("GET", &format!("/echo?token={s}&page=1"), &headers, b""),
                secret: s,
                cut: None,
            }
        });
    let extractors = (
        secret,
        prop::sample::select(vec![
            ("POST", "/typed", r#"{"secret_pin": "SECRET"}"#),
            ("POST", "/typed", r#"{"api_key_kind": "SECRET"}"#),
            ("POST", "/typed", r#"{"token_ratio": "SECRET"}"#),
            ("POST", "/typed", r#"{"auth_flag": "SECRET"}"#),
            ("POST", "/typed", r#"{"pwd_letter": "SECRET"}"#),
            ("POST", "/typed", r#"{"ssn_list": ["SECRET"]}"#),
            ("POST", "/typed", r#"{"secret_pin": SECRETNUM}"#),
            ("POST", "/typed", r#"{"card_number_small": SECRETNUM}"#),
            (
                "POST",
                "/typed",
                r#"{"token_ratio": true, "secret_pin": "SECRET"}"#,
            ),
            ("GET", "/items/SECRET", ""),
            ("GET", "/numbers?n=SECRET", ""),
            ("POST", "/form", "n=SECRET"),
        ]),
    )
        .prop_map(|(s, (method, target, body))| {
            let number: String = format!(
                "7{}",
                s.bytes().map(|b| (b % 10).to_string()).collect::<String>()
            );
            let secret = if body.contains("SECRETNUM") {
                number.clone()
            } else {
                s.clone()
            };
            let body = body.replace("SECRETNUM", &number).replace("SECRET", &s);
            let ct = if target == "/form" {
                "application/x-www-form-urlencoded"
            } else {
                "application/json"
            };
            Case {
                what: format!("extractor error {method} {target} {body}"),
                request: request(
                    method,
                    &target.replace("SECRET", &s),
                    &[h("content-type", ct)],
                    body.as_bytes(),
                ),
                secret,
                cut: None,
            }
        });
    prop_oneof![header, query, body, broken, lines, compressed, aborted, hosts, extractors]
}

fn send(port: u16, case: &Case) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let bytes = match case.cut {
        Some(cut) => &case.request[..cut.min(case.request.len())],
        None => &case.request[..],
    };
    stream.write_all(bytes).ok()?;
    if case.cut.is_some() {
        // Gone mid-body.
        return None;
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    Some(String::from_utf8_lossy(&response).into_owned())
}

/// Everything the hub received, as text: payloads as sent, OTLP exports decoded, and
/// request-log lines with their base64 bodies decoded.
fn everything_sent(hub: &TestHub) -> Vec<String> {
    let mut texts = Vec::new();
    for received in hub.received() {
        texts.push(String::from_utf8_lossy(&received.body).into_owned());
        if let Some(export) = &received.otlp {
            texts.push(format!("{export:?}"));
        }
        for line in &received.lines {
            texts.push(line.to_string());
            for side in ["request", "response"] {
                if let Some(body) = line[side]["body"].as_str() {
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(body)
                        .unwrap_or_default();
                    texts.push(String::from_utf8_lossy(&decoded).into_owned());
                }
            }
        }
    }
    texts
}

/// A secret the app itself plants for request `n` (in a span, a log field, an error, a
/// redirect): the request carries only `n`.
fn planted(n: u64) -> String {
    format!("PL4NT{}Q", n * 7_919 + 13)
}

/// What the app does with the planted secret of request `n`, and the request that makes it.
const APP_PLANTS: [(&str, &str); 5] = [
    ("a span's fields and a log event's fields", "/span/N"),
    ("a serde_json error mapped to a 500", "/fail/N"),
    ("a panic message with a database URL", "/panic/N"),
    ("a redirect's Location query", "/redirect/N"),
    ("an error event's field", "/event/N"),
];

/// Routes of the corpus app.
fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/echo", web::to(|| async { HttpResponse::Ok().body("ok") }))
        .route(
            "/echo-json",
            web::post().to(|body: web::Bytes| async move {
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body(body)
            }),
        )
        .route(
            "/typed",
            web::post().to(|_: web::Json<Typed>| async { "typed" }),
        )
        .route(
            "/items/{id}",
            web::get().to(|_: web::Path<u32>| async { "item" }),
        )
        .route(
            "/numbers",
            web::get().to(|_: web::Query<Numbers>| async { "numbers" }),
        )
        .route(
            "/form",
            web::post().to(|_: web::Form<Numbers>| async { "form" }),
        )
        .route(
            "/span/{n}",
            web::get().to(|n: web::Path<u64>| async move {
                let s = planted(*n);
                let span =
                    tracing::info_span!("db.query", password = %s, api_key = %s, table = "items");
                let _entered = span.enter();
                tracing::warn!(session_id = %s, rows = 3, "slow query");
                "ok"
            }),
        )
        .route(
            "/event/{n}",
            web::get().to(|n: web::Path<u64>| async move {
                let s = planted(*n);
                tracing::event!(tracing::Level::ERROR, secret = %s, "payment failed");
                "ok"
            }),
        )
        .route(
            "/fail/{n}",
            web::get().to(|n: web::Path<u64>| async move {
                let quoted = format!("\"{}\"", planted(*n));
                let err = serde_json::from_str::<u32>(&quoted).unwrap_err();
                Err::<HttpResponse, _>(actix_web::error::ErrorInternalServerError(err))
            }),
        )
        .route(
            "/panic/{n}",
            web::get().to(|n: web::Path<u64>| async move {
                let s = planted(*n);
                if s.is_empty() {
                    return "unreachable";
                }
                panic!("cannot reach postgres://admin:{s}@db.internal:5432/app")
            }),
        )
        .route(
            "/redirect/{n}",
            web::get().to(|n: web::Path<u64>| async move {
                let s = planted(*n);
                HttpResponse::Found()
                    .insert_header(("location", format!("/next?page=2&token={s}")))
                    .finish()
            }),
        );
}

/// The logging options of both runs: everything captured, the extractor paths excluded.
fn logging() -> RequestLoggingConfig {
    RequestLoggingConfig::new()
        .log_request_headers(true)
        .log_request_body(true)
        .log_response_body(true)
        .log_response_headers(true)
        .capture_logs(true)
        .capture_traces(true)
        // Paths are logged as they are (documented): the extractor cases that put the secret
        // in a path segment or an unmasked query parameter are checked in the sync payload's
        // validation errors only.
        .exclude_paths(["^/items/", "^/numbers"])
}

/// Sends the corpus (a fixed seed, so a failure repeats) and the app's own plants to an app
/// wrapped in `apitally`, then searches everything the hub received for every secret.
async fn no_secret_leaves(hub: &TestHub, apitally: apitally_actix::Apitally, masked: &str) {
    // (Captured logs and spans need the `tracing` feature, which the workspace's test command
    // turns on; without it the corpus still goes through everything else.)
    #[cfg(feature = "tracing")]
    {
        use tracing_subscriber::prelude::*;
        let _ = tracing_subscriber::registry()
            .with(apitally_actix::tracing_layer())
            .try_init();
    }
    let (server, port) = spawn_server!(2, {
        let apitally = apitally.clone();
        move || App::new().wrap(apitally.clone()).configure(routes)
    });
    let mut runner = TestRunner::new(Config {
        rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
        ..Config::default()
    });
    let strategy = cases();
    let mut corpus: Vec<Case> = (0..400)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect();
    for n in 0..10u64 {
        for (what, path) in APP_PLANTS {
            corpus.push(Case {
                what: format!("the app puts a secret in {what}"),
                secret: planted(n),
                request: request("GET", &path.replace('N', &n.to_string()), &[], b""),
                cut: None,
            });
        }
    }
    let sent = corpus.clone();
    let answered = actix_web::rt::task::spawn_blocking(move || {
        sent.iter().filter_map(|case| send(port, case)).count()
    })
    .await
    .unwrap();
    let aborted = corpus.iter().filter(|c| c.cut.is_some()).count();
    assert_eq!(answered, corpus.len() - aborted);
    server.stop(true).await;
    apitally.shutdown().await;

    let texts = everything_sent(hub);
    assert!(texts.iter().any(|t| t.contains(masked)));
    let mut leaks = Vec::new();
    for case in &corpus {
        if let Some(text) = texts.iter().find(|t| t.contains(&case.secret)) {
            let at = text.find(&case.secret).unwrap_or(0);
            let from = text[..at]
                .char_indices()
                .rev()
                .nth(300)
                .map_or(0, |(i, _)| i);
            let excerpt: String = text[from..].chars().take(600).collect();
            leaks.push(format!("{}: ...{excerpt}", case.what));
        }
    }
    assert!(
        leaks.is_empty(),
        "{} leaks:\n{}",
        leaks.len(),
        leaks.join("\n\n")
    );
    // The corpus covered every kind of placement.
    for kind in [
        "header",
        "query",
        "body",
        "broken",
        "ndjson",
        "gzip",
        "aborted",
        "host",
        "extractor",
        "span",
        "panic",
        "serde_json",
        "Location",
    ] {
        assert!(
            corpus.iter().any(|c| c.what.contains(kind)),
            "no {kind} case in the corpus"
        );
    }
}

#[actix_web::test]
async fn no_planted_secret_reaches_the_hub() {
    let hub = TestHub::start();
    let apitally = common::apitally(&hub, |c| c.request_logging(logging()));
    no_secret_leaves(&hub, apitally, "******").await;
    // Every request was logged (none dropped unseen), and masking did something.
    let texts = everything_sent(&hub);
    assert!(texts.iter().any(|t| t.contains("<masked>")));
    assert!(!common::items(&hub, "validation_errors").is_empty());
    // The server errors are there, scrubbed, not dropped.
    let errors = common::items(&hub, "server_errors");
    assert!(errors
        .iter()
        .any(|e| e["msg"] == "cannot reach postgres://******@db.internal:5432/app"));
    assert!(
        errors.iter().any(|e| e["msg"]
            .as_str()
            .unwrap()
            .starts_with("invalid type: string, expected u32")),
        "{errors:#?}"
    );
    let lines = common::log_lines(&hub);
    assert!(
        lines.iter().any(|l| !l["spans"].is_null()),
        "spans captured"
    );
    assert!(lines.iter().any(|l| !l["logs"].is_null()), "logs captured");
}

#[actix_web::test]
async fn no_planted_secret_reaches_apitally_1x() {
    let hub = TestHub::start();
    let apitally = apitally_actix::Apitally::try_new(
        apitally_actix::ApitallyConfig::with_write_token("apt_0123456789abcdefghijABCD", "test")
            .otlp_endpoint(hub.url())
            .request_logging(logging()),
    )
    .unwrap();
    no_secret_leaves(&hub, apitally, "[REDACTED]").await;
    assert!(hub.otlp_problems().is_empty(), "{:?}", hub.otlp_problems());
    assert!(!hub.otlp_events("apitally.request.server_error").is_empty());
    assert!(hub.otlp_spans().iter().any(|s| s.name == "db.query"));
}

//! Validation errors beyond axum's own extractors, in both protocols: axum-extra's `Query` and
//! `Form` rejections (which answer with axum's texts), and the app's own validation reported
//! with `add_validation_errors` (the `validator` feature; `add_validation_error` without it); no
//! client value leaves the app.

use std::{collections::BTreeMap, time::Duration};

#[cfg(not(feature = "validator"))]
use apitally_axum::ValidationError;
use apitally_axum::{ApitallyRequest, ConsumerExt};
use apitally_test_hub::ErrorKey;
use axum::{
    http::StatusCode,
    routing::{get, post},
    Router,
};
use axum_extra::extract::{Form, Query};

use crate::common::{self, send, TestHub, PROTOCOLS};

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Page {
    page: u32,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Signup {
    email: String,
    age: u8,
}

/// The app's own validation, as `validator` reports it (the `validator` feature), or one error
/// at a time without it: the same two errors either way.
#[cfg(feature = "validator")]
fn report_own_validation(apitally: &ApitallyRequest) {
    let mut errors = validator::ValidationErrors::new();
    let mut email = validator::ValidationError::new("email");
    email.add_param("value".into(), &"secret-address@example.com");
    errors.add("email", email);
    errors.add("age", validator::ValidationError::new("range"));
    apitally.add_validation_errors(&errors);
}

#[cfg(not(feature = "validator"))]
fn report_own_validation(apitally: &ApitallyRequest) {
    apitally.add_validation_error(ValidationError::new(["body", "email"], "invalid", "email"));
    apitally.add_validation_error(ValidationError::new(
        ["body", "age"],
        "out of range",
        "range",
    ));
}

fn error(method: &str, route: &str, kind: &str) -> ErrorKey {
    (None, method.to_owned(), route.to_owned(), kind.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_extra_rejections_and_validator_errors_are_validation_errors() {
    for protocol in PROTOCOLS {
        let hub = TestHub::start();
        let apitally = common::layer(common::config(&hub, protocol));
        let app = Router::new()
            .route(
                "/pages",
                get(|Query(p): Query<Page>| async move { format!("page {}", p.page) }),
            )
            .route(
                "/signups",
                post(|Form(s): Form<Signup>| async move { format!("{} {}", s.email, s.age) }),
            )
            .route(
                "/checked",
                post(|apitally: ApitallyRequest| async move {
                    report_own_validation(&apitally);
                    (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
                }),
            )
            .layer(apitally.clone());
        let (port, stop, task) = common::serve(app).await;
        let replies = tokio::task::spawn_blocking(move || {
            [
                send(port, "GET /pages?page=secret-page-value HTTP/1.1", b""),
                send(port, "GET /pages?page=2 HTTP/1.1", b""),
                send(
                    port,
                    "POST /signups HTTP/1.1\r\ncontent-type: application/x-www-form-urlencoded",
                    b"email=a%40b.c&age=secret-age-value",
                ),
                send(port, "POST /checked HTTP/1.1", b""),
            ]
        })
        .await
        .unwrap();
        let _ = stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        apitally.shutdown().await;

        assert_eq!(replies[0].status, 400, "{protocol}");
        assert_eq!(replies[1].status, 200, "{protocol}");
        assert!(
            matches!(replies[2].status, 400 | 422),
            "{protocol}: {}",
            replies[2].status
        );
        let expected: BTreeMap<ErrorKey, u64> = [
            (error("GET", "/pages", "value_error"), 1),
            (error("POST", "/signups", "value_error"), 1),
            (error("POST", "/checked", "email"), 1),
            (error("POST", "/checked", "range"), 1),
        ]
        .into();
        assert_eq!(hub.validation_error_totals(), expected, "{protocol}");
        // The request's URL (in 1.x spans) shows the query as sent, parameter and all: nowhere
        // else may its value appear.
        let everything = format!("{:?}", hub.received()).replace("page=secret-page-value", "");
        for secret in [
            "secret-page-value",
            "secret-age-value",
            "secret-address@example.com",
        ] {
            assert!(
                !everything.contains(secret),
                "{protocol}: {secret} left the app"
            );
        }
    }
}

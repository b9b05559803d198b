//! Every invalid option fails `Apitally::try_new` with a message naming the option, the value
//! and what is expected; `Apitally::new` with the same config logs that message once and lets
//! requests through.

use std::sync::{Mutex, OnceLock};

use actix_web::{test as actix_test, web, App};
use apitally_actix::{Apitally, ApitallyConfig, ConfigError, RequestLoggingConfig};

const CLIENT_ID: &str = "3cd8948c-b589-40a2-a33f-a4e604425c81";

fn hub_config() -> ApitallyConfig {
    ApitallyConfig::new(CLIENT_ID, "test")
}

fn logging(f: impl FnOnce(RequestLoggingConfig) -> RequestLoggingConfig) -> ApitallyConfig {
    hub_config().request_logging(f(RequestLoggingConfig::new()))
}

/// The error `try_new` returns for `config`; it must not start a client.
fn rejected(config: ApitallyConfig) -> ConfigError {
    match Apitally::try_new(config) {
        Ok(_) => panic!("try_new accepted an invalid config"),
        Err(err) => err,
    }
}

fn assert_option(err: &ConfigError, name: &str, value: &str, expected: &str) {
    let ConfigError::InvalidOption {
        option,
        value: got,
        expected: why,
    } = err
    else {
        panic!("not an InvalidOption: {err:#?}");
    };
    assert_eq!(*option, name);
    assert_eq!(got, value);
    assert!(why.contains(expected), "{why:?} lacks {expected:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("invalid {name} {value:?}: expected ")),
        "{text}"
    );
}

#[test]
fn invalid_patterns_name_the_option_and_the_pattern() {
    type SetPattern = fn(RequestLoggingConfig, &str) -> RequestLoggingConfig;
    let cases: [(&str, SetPattern); 4] = [
        ("mask_headers", |c, p| c.mask_headers(["x-ok", p])),
        ("mask_query_params", |c, p| c.mask_query_params([p])),
        ("mask_body_fields", |c, p| c.mask_body_fields(["iban", p])),
        ("exclude_paths", |c, p| c.exclude_paths([p])),
    ];
    for (option, set) in cases {
        for (pattern, reason) in [
            ("x-[a-z", "unclosed character class"),
            ("/internal/(.*", "unclosed group"),
            ("a{2,1}", "invalid repetition count range"),
            ("*token", "repetition operator missing expression"),
        ] {
            let err = rejected(logging(|c| set(c, pattern)));
            assert_option(&err, option, pattern, reason);
            let text = err.to_string();
            assert!(text.contains("regular expression"), "{text}");
            assert!(!text.contains('\n'), "one line: {text}");
        }
        // Valid patterns pass (checked without starting a client).
        logging(|c| set(c, "^x-(a|b)+$")).validate().unwrap();
    }
}

#[test]
fn a_pattern_too_large_to_compile_is_rejected() {
    let huge = "(?:a{1000}){1000}";
    let err = rejected(logging(|c| c.mask_body_fields([huge])));
    assert_option(&err, "mask_body_fields", huge, "size limit");
}

#[test]
fn patterns_of_a_disabled_request_logging_config_are_still_checked() {
    let config = hub_config().request_logging(RequestLoggingConfig::new().mask_headers(["("]));
    assert_option(&rejected(config), "mask_headers", "(", "unclosed group");
}

#[test]
fn an_openapi_document_that_is_not_json_is_rejected() {
    let doc = r#"{"openapi": "3.1.0", "paths": {"#;
    let err = rejected(hub_config().openapi_json(doc));
    assert_option(&err, "openapi_json", doc, "not JSON: EOF while parsing");
    // A long document is cut in the error.
    let long = format!("openapi: 3.1.0\n{}", "x".repeat(10_000));
    let ConfigError::InvalidOption { value, .. } = rejected(hub_config().openapi_json(long)) else {
        panic!()
    };
    assert_eq!(value.chars().count(), 203);
    assert!(value.ends_with("..."));
    // The first rejected option is reported, even if later ones are fine.
    let err = rejected(hub_config().openapi_json("nope").openapi_json("{}"));
    assert_option(&err, "openapi_json", "nope", "not JSON");
}

#[test]
fn credentials_env_and_urls_are_checked() {
    let err = rejected(ApitallyConfig::new("not-a-uuid", "prod"));
    assert_eq!(
        err,
        ConfigError::InvalidClientId {
            value: "not-a-uuid".into()
        }
    );
    assert!(err.to_string().contains("8-4-4-4-12"), "{err}");

    let err = rejected(ApitallyConfig::new(CLIENT_ID, "prod env"));
    assert_eq!(
        err,
        ConfigError::InvalidEnv {
            value: "prod env".into()
        }
    );

    let err = rejected(ApitallyConfig::new(CLIENT_ID, "prod").hub_base_url("ftp://hub"));
    assert_eq!(
        err,
        ConfigError::InvalidHubBaseUrl {
            value: "ftp://hub".into(),
            reason: "the scheme \"ftp\" is not http or https".into(),
        }
    );

    let err = rejected(ApitallyConfig::with_write_token(
        "apt_secret_but_wrong",
        "prod",
    ));
    assert_eq!(
        err,
        ConfigError::InvalidWriteToken {
            start: "apt_secr".into()
        }
    );
    assert!(!err.to_string().contains("secret_but_wrong"), "{err}");

    let token = "apt_000000000000000000000000";
    let err =
        rejected(ApitallyConfig::with_write_token(token, "prod").otlp_endpoint("otlp.example"));
    assert_option(
        &err,
        "otlp_endpoint",
        "otlp.example",
        "a plain http(s)://host[:port][/path] URL",
    );

    let err = rejected(ApitallyConfig::new(CLIENT_ID, "prod").proxy("socks5://127.0.0.1:1080"));
    assert!(matches!(err, ConfigError::InvalidProxy { .. }), "{err:#?}");

    let err = rejected(ApitallyConfig::new(CLIENT_ID, "prod").sample_rate(1.5));
    assert_option(&err, "sample_rate", "1.5", "0.0 to 1.0");
}

#[test]
fn debug_output_reads_like_the_message() {
    let err = rejected(logging(|c| c.exclude_paths(["(["])));
    assert_eq!(format!("{err:?}"), err.to_string());
    // `.expect()` prints Debug: the user reads the message, not a struct dump.
    let panic = std::panic::catch_unwind(|| {
        Apitally::try_new(ApitallyConfig::new("nope", "prod")).expect("apitally config")
    })
    .unwrap_err();
    let text = panic.downcast_ref::<String>().unwrap();
    assert!(
        text.starts_with("apitally config: invalid client id \"nope\": expected a UUID"),
        "{text}"
    );
    // `{:#?}` still shows the variant and its fields.
    assert!(format!("{err:#?}").starts_with("InvalidOption {\n    option: \"exclude_paths\","));
}

/// Records what the `log` facade receives, for the test below.
struct Capture(Mutex<Vec<(log::Level, String)>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.target() == "apitally" {
            let mut lines = self.0.lock().unwrap();
            lines.push((record.level(), record.args().to_string()));
        }
    }
    fn flush(&self) {}
}

fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture: &'static Capture = Box::leak(Box::new(Capture(Mutex::default())));
        log::set_logger(capture).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Debug);
        capture
    })
}

#[actix_web::test]
async fn new_with_an_invalid_option_logs_one_error_and_passes_requests_through() {
    let capture = capture();
    let apitally = Apitally::new(logging(|c| c.mask_headers(["x-[a-z"])));
    assert!(!apitally.is_enabled());
    let app = actix_test::init_service(
        App::new()
            .wrap(apitally)
            .route("/items", web::get().to(|| async { "[]" })),
    )
    .await;
    for _ in 0..3 {
        let res = actix_test::call_service(
            &app,
            actix_test::TestRequest::get().uri("/items").to_request(),
        )
        .await;
        assert_eq!(res.status(), 200);
        assert_eq!(actix_test::read_body(res).await, "[]");
    }
    let lines = capture.0.lock().unwrap().clone();
    let errors: Vec<_> = lines
        .iter()
        .filter(|(level, _)| *level == log::Level::Error)
        .collect();
    assert_eq!(errors.len(), 1, "{lines:#?}");
    assert_eq!(
        errors[0].1,
        "apitally: invalid mask_headers \"x-[a-z\": expected a regular expression in the regex \
         crate's syntax, but it is not one: unclosed character class; Apitally is disabled and \
         requests pass through untouched"
    );
}

//! Every invalid option fails `Apitally::try_new` with a message naming the option, the value
//! and what is expected; `Apitally::new` with the same config logs that message once and lets
//! requests through.

use std::sync::{Mutex, OnceLock};

use crate::common;

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
async fn new_with_a_bad_credential_logs_one_error_and_passes_requests_through() {
    let capture = capture();
    let apitally = Apitally::new(ApitallyConfig::with_write_token("apt_short", "prod"));
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
        "apitally: invalid write token \"apt_shor\"...: expected apt_ followed by 24 letters or \
         digits, as shown on the app's setup page in the Apitally dashboard; Apitally is \
         disabled and requests pass through untouched"
    );
}

/// `new` keeps monitoring on through every bad optional setting: each is named in one error
/// line and replaced by its default, and a real server's requests are counted exactly.
#[actix_web::test]
async fn new_replaces_each_bad_option_by_its_default_and_counts_every_request() {
    let capture = capture();
    let hub = common::TestHub::start();
    let config = common::config(&hub)
        .sample_rate(1.5)
        .openapi_json("paths: {}")
        .proxy("socks5://127.0.0.1:1080")
        .trusted_proxies(["10.0.0.0/8", "10.0.0.0/33"])
        .request_logging(
            RequestLoggingConfig::new()
                // A lookaround pasted from a Python config, beside a good pattern.
                .mask_headers(["x-(?=secret)", "x-internal"])
                .exclude_paths(["/internal/(.*"]),
        );
    // `try_new` refuses the same config.
    assert!(Apitally::try_new(config.clone()).is_err());
    let apitally = Apitally::new(config);
    assert!(apitally.is_enabled());
    let (server, port) = spawn_server!(2, {
        let apitally = apitally.clone();
        move || {
            App::new()
                .wrap(apitally.clone())
                .route("/items/{id}", web::get().to(|| async { "{}" }))
        }
    });
    let client = awc::Client::default();
    for i in 0..25 {
        let res = client
            .get(format!("http://127.0.0.1:{port}/items/{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    server.stop(true).await;
    apitally.shutdown().await;
    assert_eq!(
        common::count(&hub, "GET", "/items/{id}", Some(200), None),
        25
    );
    let lines = capture.0.lock().unwrap().clone();
    let errors: Vec<&str> = lines
        .iter()
        .filter(|(level, _)| *level == log::Level::Error)
        .map(|(_, line)| line.as_str())
        .collect();
    let expected = [
        "apitally: invalid openapi_json \"paths: {}\": expected an OpenAPI document in JSON, but it is not JSON: expected value at line 1 column 1; it is left out",
        "apitally: invalid sample_rate \"1.5\": expected a number from 0.0 to 1.0; sampling 1.0 instead",
        "apitally: invalid trusted_proxies entry \"10.0.0.0/33\": \"10.0.0.0/33\" has a prefix length that is not 0 to 32; it is left out",
        "apitally: invalid mask_headers \"x-(?=secret)\": expected a regular expression in the regex crate's syntax, but it is not one: look-around, including look-ahead and look-behind, is not supported; the pattern is left out",
        "apitally: invalid exclude_paths \"/internal/(.*\": expected a regular expression in the regex crate's syntax, but it is not one: unclosed group; the pattern is left out",
    ];
    for line in expected {
        assert_eq!(
            errors.iter().filter(|e| **e == line).count(),
            1,
            "{line}\nnot once in {errors:#?}"
        );
    }
    let proxy: Vec<_> = errors
        .iter()
        .filter(|e| e.starts_with("apitally: invalid proxy URL \"socks5://127.0.0.1:1080\""))
        .collect();
    assert_eq!(proxy.len(), 1, "{errors:#?}");
    assert!(proxy[0].ends_with("; connecting directly"), "{}", proxy[0]);
    assert_eq!(errors.len(), expected.len() + 1, "{errors:#?}");
}

/// Runs the ignored test `name` of this binary in a child process with `env`, and gives its
/// stdout and stderr.
fn child(name: &str, env: &[(&str, &str)]) -> (String, String) {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    // (Tests are named by their module in the one test binary.)
    let name = format!("config::{name}");
    command
        .args([
            name.as_str(),
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("APITALLY_CONFIG_CHILD", "1");
    for var in [
        "APITALLY_DEBUG",
        "APITALLY_DISABLED",
        "OTEL_SDK_DISABLED",
        "APITALLY_CLIENT_ID",
        "APITALLY_WRITE_TOKEN",
    ] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "child {name} failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

fn is_child() -> bool {
    std::env::var_os("APITALLY_CONFIG_CHILD").is_some()
}

/// Builds the middleware from the environment with a malformed token; with `logger`, a logger
/// that prints to stdout is installed first.
fn start_with_a_malformed_token(logger: bool) {
    struct Stdout;
    impl log::Log for Stdout {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            println!("LOG {} {}", record.level(), record.args());
        }
        fn flush(&self) {}
    }
    if logger {
        log::set_logger(&Stdout).unwrap();
        log::set_max_level(log::LevelFilter::Info);
    }
    let apitally = Apitally::new(ApitallyConfig::from_env());
    assert!(!apitally.is_enabled());
}

#[test]
#[ignore = "run by a_config_error_reaches_a_person_exactly_once"]
fn child_no_logger() {
    if is_child() {
        start_with_a_malformed_token(false);
    }
}

#[test]
#[ignore = "run by a_config_error_reaches_a_person_exactly_once"]
fn child_with_logger() {
    if is_child() {
        start_with_a_malformed_token(true);
    }
}

const MALFORMED: &str = "apitally: invalid write token \"apt_oops\"...";

#[test]
fn a_config_error_reaches_a_person_exactly_once() {
    let token = [("APITALLY_WRITE_TOKEN", "apt_oops")];
    // No logger (a new user's first app): the line is on stderr, once.
    let (stdout, stderr) = child("child_no_logger", &token);
    assert_eq!(stderr.matches(MALFORMED).count(), 1, "{stderr}");
    assert!(!stdout.contains(MALFORMED), "{stdout}");
    // A logger that shows errors: through it, and not on stderr as well.
    let (stdout, stderr) = child("child_with_logger", &token);
    assert_eq!(
        stdout.matches(&format!("LOG ERROR {MALFORMED}")).count(),
        1,
        "{stdout}"
    );
    assert!(!stderr.contains(MALFORMED), "{stderr}");
    // No credential at all says so, also without a logger.
    let (_, stderr) = child("child_no_logger", &[]);
    assert_eq!(
        stderr
            .matches("apitally: no credential: pass a write token")
            .count(),
        1,
        "{stderr}"
    );
}

#[test]
#[ignore = "run by apitally_debug_works_without_a_logger"]
fn child_debug() {
    if !is_child() {
        return;
    }
    let apitally = Apitally::new(
        ApitallyConfig::new("3cd8948c-b589-40a2-a33f-a4e604425c81", "test")
            .hub_base_url("http://127.0.0.1:9"),
    );
    assert!(apitally.is_enabled());
}

#[test]
fn apitally_debug_works_without_a_logger() {
    let (_, stderr) = child("child_debug", &[("APITALLY_DEBUG", "1")]);
    assert_eq!(
        stderr.matches("apitally: started for 3cd8948c").count(),
        1,
        "{stderr}"
    );
    let (_, stderr) = child("child_debug", &[]);
    assert!(!stderr.contains("apitally: started"), "{stderr}");
}

/// The threads of this process by name.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

#[test]
#[ignore = "run by a_disabled_sdk_starts_nothing_and_sends_nothing"]
fn child_disabled() {
    if !is_child() {
        return;
    }
    let dir = std::env::var("APITALLY_CHILD_LOG_DIR").unwrap();
    let hub = std::env::var("APITALLY_CHILD_HUB").unwrap();
    let disabled_in_config = std::env::var_os("APITALLY_CHILD_DISABLE").is_some();
    actix_web::rt::System::new().block_on(async move {
        let threads = thread_names().len();
        let apitally = Apitally::try_new(
            ApitallyConfig::with_write_token("apt_0123456789abcdefghijABCD", "test")
                .otlp_endpoint(hub)
                .disabled(disabled_in_config)
                .test_client_config(|c| c.test_log_dir(&dir)),
        )
        .unwrap();
        assert!(!apitally.is_enabled());
        let app = actix_test::init_service(
            App::new()
                .wrap(apitally.clone())
                .route("/items", web::get().to(|| async { "[]" })),
        )
        .await;
        for _ in 0..20 {
            let res = actix_test::call_service(
                &app,
                actix_test::TestRequest::get().uri("/items").to_request(),
            )
            .await;
            assert_eq!(actix_test::read_body(res).await, "[]");
        }
        apitally.shutdown().await;
        assert_eq!(thread_names().len(), threads, "{:?}", thread_names());
        assert!(!thread_names().iter().any(|t| t.starts_with("apitally")));
    });
}

#[test]
fn a_disabled_sdk_starts_nothing_and_sends_nothing() {
    let hub = common::TestHub::start();
    let dir = std::env::temp_dir().join(format!("apitally-disabled-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let dir_text = dir.to_str().unwrap().to_owned();
    let url = hub.url();
    let base = [
        ("APITALLY_CHILD_LOG_DIR", dir_text.as_str()),
        ("APITALLY_CHILD_HUB", url.as_str()),
    ];
    for switch in [
        ("APITALLY_DISABLED", "1"),
        ("OTEL_SDK_DISABLED", " TRUE "),
        ("APITALLY_CHILD_DISABLE", "yes"),
    ] {
        let mut env = base.to_vec();
        env.push(switch);
        let (_, stderr) = child("child_disabled", &env);
        assert_eq!(
            stderr.matches("apitally: switched off by ").count(),
            1,
            "{stderr}"
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(hub.received().is_empty(), "{:?}", hub.received().len());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

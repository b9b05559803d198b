//! The app's own panic hook keeps working when Apitally catches handler panics. In a binary of
//! its own, since panic hooks are process-wide.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::{test, web, App};
use common::{apitally, TestHub};

static APP_HOOK_CALLS: AtomicUsize = AtomicUsize::new(0);

#[actix_web::test]
async fn the_apps_panic_hook_still_runs() {
    std::panic::set_hook(Box::new(|info| {
        APP_HOOK_CALLS.fetch_add(1, Ordering::SeqCst);
        eprintln!("app hook: {info}");
    }));
    let hub = TestHub::start();
    let apitally = apitally(&hub, |c| c);
    let app = test::init_service(App::new().wrap(apitally.clone()).route(
        "/panic",
        web::get().to(|| async {
            if std::hint::black_box(true) {
                panic!("boom");
            }
            "unreachable"
        }),
    ))
    .await;
    let res =
        test::try_call_service(&app, test::TestRequest::get().uri("/panic").to_request()).await;
    assert!(res.is_err());
    assert_eq!(APP_HOOK_CALLS.load(Ordering::SeqCst), 1);
    apitally.shutdown().await;
    let errors = common::items(&hub, "server_errors");
    assert_eq!(errors[0]["msg"], "boom");
    // The hook saw the panic, and Apitally still got its location and backtrace.
    assert!(errors[0]["traceback"]
        .as_str()
        .unwrap()
        .starts_with("panicked at"));
}

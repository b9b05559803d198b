//! Request-log uploads against a real HTTP hub on 127.0.0.1: the final flush uploads every
//! file once, a shutdown during an upload does not send it twice, what shutdown could not
//! deliver is named exactly, what request logging lost is reported in one line, and every
//! startup, sync and export carries the process's request-log totals.

use crate::common;

use std::{collections::HashSet, time::Duration};

use apitally_core::adapter::{ApitallyClient, StartupData};
use apitally_test_hub::{capture_logs, Reply, TestHub};
use common::{files_in, log_dir, log_request, logged, logging_config, WAIT};
use log::Level;

fn start_logging(hub: &TestHub, dir: &std::path::Path, interval: Duration) -> ApitallyClient {
    ApitallyClient::try_new(
        logging_config(&hub.url(), dir)
            .test_sync_interval(interval)
            .shutdown_timeout(Duration::from_secs(30)),
        StartupData::new("rust:test"),
    )
    .unwrap()
}

/// Waits for the first cycle's sync, so that what a test logs next goes to the final flush
/// (with an hour between cycles).
fn first_sync(hub: &TestHub) {
    assert!(hub.wait_until(WAIT, |r| r.iter().any(|r| r.endpoint == "sync")));
}

/// Every file uploaded at most once (by its `uuid` query).
fn assert_each_file_once(hub: &TestHub) {
    let arrivals = hub.arrivals("log");
    let distinct: HashSet<_> = arrivals.iter().collect();
    assert_eq!(
        distinct.len(),
        arrivals.len(),
        "a file was sent twice: {arrivals:#?}"
    );
}

#[test]
fn shutdown_uploads_every_file_not_ten() {
    let hub = TestHub::start();
    let dir = log_dir();
    let client = start_logging(&hub, &dir, Duration::from_secs(3600));
    first_sync(&hub);
    // 30 files: more than the 10 an ordinary cycle uploads.
    for n in 0..30 {
        log_request(&client, n);
    }
    client.shutdown_blocking();
    assert_eq!(logged(&hub), (0..30).collect::<Vec<_>>());
    assert_each_file_once(&hub);
    assert_eq!(hub.arrivals("log").len(), 30);
    assert!(files_in(&dir).is_empty());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_shutdown_during_an_upload_lets_it_finish_and_sends_each_file_once() {
    let hub = TestHub::start();
    // The first upload takes the hub a while to answer: the shutdown arrives meanwhile.
    hub.script("log", [Reply::Delay(Duration::from_secs(2), 202)]);
    let dir = log_dir();
    let client = ApitallyClient::try_new(
        logging_config(&hub.url(), &dir)
            .test_sync_interval(Duration::from_millis(200))
            // Longer than the hub's delay: the upload does not time out.
            .test_request_timeout(Duration::from_secs(20))
            .shutdown_timeout(Duration::from_secs(30)),
        StartupData::new("rust:test"),
    )
    .unwrap();
    for n in 0..3 {
        log_request(&client, n);
    }
    assert!(hub.wait_until(WAIT, |_| !hub.arrivals("log").is_empty()));
    client.shutdown_blocking();
    assert_each_file_once(&hub);
    assert_eq!(logged(&hub), [0, 1, 2]);
    std::fs::remove_dir_all(dir).ok();
}

/// The shutdown warnings logged so far.
fn shutdown_warnings() -> Vec<String> {
    capture_logs().matching(Level::Warn, "apitally: shutdown:")
}

#[test]
fn the_shutdown_warning_names_exactly_what_was_not_delivered() {
    capture_logs();
    // Log uploads fail: the files and their requests are named, not the sync payloads.
    let hub = TestHub::start();
    hub.set_default("log", Reply::Status(500));
    let dir = log_dir();
    let client = start_logging(&hub, &dir, Duration::from_secs(3600));
    first_sync(&hub);
    for n in 0..5 {
        log_request(&client, n);
    }
    client.shutdown_blocking();
    let warnings = shutdown_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        warnings[0].ends_with("(the hub did not take them): 5 request-log file(s) (5 requests)"),
        "{}",
        warnings[0]
    );
    // The final flush stopped at the first failure, one attempt.
    assert_eq!(
        hub.received_at("sync")
            .iter()
            .filter(|r| r.accepted())
            .count(),
        2
    );
    assert!(files_in(&dir).is_empty(), "deleted at shutdown");
    std::fs::remove_dir_all(dir).ok();

    // Syncs fail, log uploads do not: only the sync payloads are named.
    let hub = TestHub::start();
    hub.set_default("sync", Reply::Status(500));
    let dir = log_dir();
    let client = start_logging(&hub, &dir, Duration::from_secs(3600));
    first_sync(&hub);
    for n in 0..2 {
        log_request(&client, n);
    }
    client.shutdown_blocking();
    assert_eq!(logged(&hub), [0, 1]);
    let warnings = shutdown_warnings();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(
        warnings[1].ends_with("(the hub did not take them): 2 sync payload(s)"),
        "{}",
        warnings[1]
    );
    std::fs::remove_dir_all(dir).ok();

    // Everything delivered: no warning.
    let hub = TestHub::start();
    let dir = log_dir();
    let client = start_logging(&hub, &dir, Duration::from_secs(3600));
    first_sync(&hub);
    log_request(&client, 7);
    client.shutdown_blocking();
    assert_eq!(logged(&hub), [7]);
    assert_eq!(shutdown_warnings().len(), 2);
    std::fs::remove_dir_all(dir).ok();
}

/// The (files, requests) of a "deleted N request log file(s) (M requests)" report.
fn deleted_counts(line: &str) -> (u64, u64) {
    let rest = line.split_once("deleted ").unwrap().1;
    let (files, rest) = rest.split_once(" request log file(s) (").unwrap();
    let requests = rest.split_once(' ').unwrap().0;
    (files.parse().unwrap(), requests.parse().unwrap())
}

#[test]
fn files_over_the_limit_are_reported_in_one_line_with_counts() {
    let logs = capture_logs();
    let hub = TestHub::start();
    let dir = log_dir();
    let client = start_logging(&hub, &dir, Duration::from_secs(3600));
    first_sync(&hub);
    // 70 files, one rotation each, while none is uploaded: at least 20 go over the limit of
    // 50 (the first cycle may still have taken up to 10).
    for n in 0..70 {
        log_request(&client, n);
    }
    client.shutdown_blocking();
    let reports = logs.matching(Level::Warn, "over the limit");
    assert_eq!(reports.len(), 1, "{reports:#?}");
    assert!(
        reports[0].starts_with("apitally: request logs lost since the last sync: deleted "),
        "{}",
        reports[0]
    );
    assert!(
        reports[0].contains("over the limit of 50 files"),
        "{}",
        reports[0]
    );
    let (files, requests) = deleted_counts(&reports[0]);
    let uploaded = logged(&hub);
    assert_eq!(files, requests);
    assert!(files >= 10, "{files}");
    assert_eq!(files + uploaded.len() as u64, 70, "{uploaded:?}");
    // The oldest went.
    assert_eq!(uploaded.last(), Some(&69));
    assert!(shutdown_warnings().is_empty());
    // And the totals the hub shows say so: the deleted requests moved from logged to dropped.
    let totals = hub
        .received_at("sync")
        .into_iter()
        .rfind(|r| r.accepted())
        .and_then(|r| r.header("apitally-request-logs").map(str::to_owned));
    assert_eq!(
        totals.as_deref(),
        Some(&*format!(
            "logged={}, sampled-out=0, excluded=0, dropped={files}",
            70 - files
        ))
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn unreadable_files_are_reported_in_one_line_with_counts() {
    let logs = capture_logs();
    let hub = TestHub::start();
    // The first cycle is held in its sync post while the files are written and two deleted:
    // once the post returns, the cycle uploads what is there, and the test would race it.
    hub.script("sync", [Reply::Delay(Duration::from_secs(5), 202)]);
    let dir = log_dir();
    let client = ApitallyClient::try_new(
        logging_config(&hub.url(), &dir)
            .test_sync_interval(Duration::from_secs(3600))
            .test_request_timeout(Duration::from_secs(20))
            .shutdown_timeout(Duration::from_secs(30)),
        StartupData::new("rust:test"),
    )
    .unwrap();
    assert!(hub.wait_until(WAIT, |_| !hub.arrivals("sync").is_empty()));
    for n in 0..4 {
        log_request(&client, n);
    }
    let deadline = std::time::Instant::now() + WAIT;
    while files_in(&dir).len() < 4 {
        assert!(std::time::Instant::now() < deadline, "files not written");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Something else deletes two of them before they are uploaded.
    for file in files_in(&dir).iter().take(2) {
        std::fs::remove_file(file).unwrap();
    }
    client.shutdown_blocking();
    assert_eq!(logged(&hub).len(), 2);
    let reports = logs.matching(Level::Warn, "apitally: request logs lost");
    assert_eq!(reports.len(), 1, "{reports:#?}");
    assert!(
        reports[0].contains(": 2 request log file(s) (2 requests) could not be read (last: "),
        "{}",
        reports[0]
    );
    assert!(logs.matching(Level::Warn, "cannot read").is_empty());
    assert!(shutdown_warnings().is_empty());
    std::fs::remove_dir_all(dir).ok();
}

/// Logs what [`totals_are_sent`] expects: 3 logged, 1 excluded (a health check), 1 dropped (over
/// the 4 KiB buffer on its own) and 2 sampled out.
fn log_for_totals(client: &ApitallyClient) {
    let logger = client.request_logger().expect("request logging is on");
    for n in 0..3 {
        let mut item = apitally_core::adapter::RequestLogItem::default();
        item.request.method.push_str("GET");
        item.request.url = format!("http://localhost/items?n={n}");
        item.response.status_code = 200;
        // As the middleware sets them (1.x makes a span of each logged request).
        item.trace_context = Some(apitally_core::adapter::TraceIds {
            trace_id: n + 1,
            span_id: 1,
            parent_span_id: None,
        });
        logger.log(item);
    }
    // Excluded at the request's start (as the middleware asks), before sampling.
    assert!(logger.excludes("/health", None));
    let mut large = apitally_core::adapter::RequestLogItem::default();
    large.request.method.push_str("POST");
    large.request.url = "http://localhost/upload".into();
    large.request.body = Some(vec![b'x'; 8192]);
    logger.log(large);
    logger.note_sampled_out();
    logger.note_sampled_out();
}

/// The process's totals, as a hub that shows them reads them from every post.
const TOTALS: &str = "logged=3, sampled-out=2, excluded=1, dropped=1";

/// The `Apitally-Request-Logs` header of the last accepted post to each endpoint.
fn totals_are_sent(hub: &TestHub, endpoints: &[&str]) {
    for endpoint in endpoints {
        let last = hub
            .received_at(endpoint)
            .into_iter()
            .rfind(|r| r.accepted())
            .unwrap_or_else(|| panic!("no {endpoint} accepted"));
        assert_eq!(
            last.header("apitally-request-logs"),
            Some(TOTALS),
            "{endpoint}"
        );
    }
}

#[test]
fn the_request_log_totals_go_with_every_sync_and_startup() {
    let hub = TestHub::start();
    let dir = log_dir();
    let client = ApitallyClient::try_new(
        common::config(&hub.url())
            .test_sync_interval(Duration::from_secs(3600))
            .test_log_dir(&dir)
            .request_logging(apitally_core::RequestLoggingConfig::new().max_buffer_bytes(4096)),
        StartupData::new("rust:test"),
    )
    .unwrap();
    first_sync(&hub);
    let first = &hub.received_at("startup")[0];
    assert_eq!(
        first.header("apitally-request-logs"),
        Some("logged=0, sampled-out=0, excluded=0, dropped=0")
    );
    log_for_totals(&client);
    client.shutdown_blocking();
    // The final sync counts what was queued for logging when it left.
    totals_are_sent(&hub, &["sync"]);
    assert_eq!(logged(&hub), [0, 1, 2]);
    std::fs::remove_dir_all(dir).ok();

    // Without request logging, no header.
    let hub = TestHub::start();
    let client = common::start(&hub);
    client.shutdown_blocking();
    assert!(hub
        .received()
        .iter()
        .all(|r| r.header("apitally-request-logs").is_none()));
}

#[test]
fn the_request_log_totals_go_with_every_otlp_export() {
    let hub = TestHub::start();
    let client = ApitallyClient::try_new(
        apitally_core::adapter::ClientConfig::with_write_token(
            "apt_0123456789abcdefghijABCD",
            "test",
        )
        .otlp_endpoint(hub.url())
        .shutdown_timeout(Duration::from_secs(10))
        .request_logging(apitally_core::RequestLoggingConfig::new().max_buffer_bytes(4096)),
        StartupData::new("rust:test"),
    )
    .unwrap();
    log_for_totals(&client);
    client.shutdown_blocking();
    assert!(hub.otlp_problems().is_empty(), "{:?}", hub.otlp_problems());
    totals_are_sent(&hub, &["traces", "logs", "metrics"]);
}

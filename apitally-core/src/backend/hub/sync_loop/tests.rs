//! The sync loop's rules against a scripted hub on tokio's paused clock: every wait is virtual,
//! so the tests assert the schedule itself (attempt times, cycle times, the shutdown budget)
//! without sleeping. The real HTTP path is tested against the loopback hub in `tests/`.

use std::{
    cell::RefCell,
    collections::{BTreeSet, HashMap},
    path::PathBuf,
    rc::Rc,
    sync::{atomic::AtomicBool, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use log::Level;
use serde_json::Value;
use tokio::sync::oneshot;

use super::{
    send::{redact_url, MAX_RETRY_AFTER},
    *,
};
use crate::{
    backend::hub::{
        files::LogFiles,
        instance::InstanceId,
        window::{Limits, Metrics},
    },
    client::ORPHAN_GRACE,
    request_log::{RequestLogItem, RequestLogger, RequestLoggingConfig},
    transport::{Response, TransportError},
    RequestRecord,
};

/// How the scripted hub answers one POST.
#[derive(Debug, Clone)]
enum Step {
    Status(u16),
    /// This status with `Retry-After: <seconds>`.
    RetryAfter(u16, u64),
    /// No answer: the connection was refused.
    Refused,
    /// No answer in time.
    TimedOut,
    /// Never answers.
    Hang,
}

use Step::{Hang, Refused, RetryAfter, Status, TimedOut};

/// One POST the loop made, and the virtual time it was made at.
#[derive(Debug, Clone)]
struct Call {
    at: Instant,
    url: String,
    body: Bytes,
}

impl Call {
    /// `startup`, `sync` or `log`.
    fn endpoint(&self) -> &str {
        endpoint(&self.url)
    }

    fn query(&self) -> &str {
        self.url.split_once('?').map_or("", |(_, q)| q)
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn message_uuid(&self) -> String {
        self.json()["message_uuid"].as_str().unwrap().to_owned()
    }

    /// The routes counted in a sync payload.
    fn routes(&self) -> Vec<String> {
        self.json()["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["path"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn endpoint(url: &str) -> &str {
    let path = url.split('?').next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or(path)
}

#[derive(Debug, Default)]
struct Script {
    /// The next answers, by endpoint.
    steps: HashMap<String, VecDeque<Step>>,
    /// The answer once the script of an endpoint is used up (202 if none).
    defaults: HashMap<String, Step>,
    calls: Vec<Call>,
}

/// A hub that answers from a script per endpoint, and records every call.
#[derive(Debug, Clone)]
struct Hub {
    script: Rc<RefCell<Script>>,
    posted: Rc<watch::Sender<usize>>,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            script: Rc::default(),
            posted: Rc::new(watch::Sender::new(0)),
        }
    }
}

impl Hub {
    /// The next answers of `endpoint`.
    fn script(&self, endpoint: &str, steps: impl IntoIterator<Item = Step>) {
        self.script
            .borrow_mut()
            .steps
            .entry(endpoint.to_owned())
            .or_default()
            .extend(steps);
    }

    /// The answer of `endpoint` once its script is used up.
    fn answer(&self, endpoint: &str, step: Step) {
        self.script
            .borrow_mut()
            .defaults
            .insert(endpoint.to_owned(), step);
    }

    fn calls(&self) -> Vec<Call> {
        self.script.borrow().calls.clone()
    }

    fn calls_to(&self, endpoint: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.endpoint() == endpoint)
            .collect()
    }

    fn endpoints(&self) -> Vec<String> {
        endpoints(&self.calls())
    }

    /// Waits until `n` POSTs were made (a condition, not a time).
    async fn posted(&self, n: usize) {
        let _ = self
            .posted
            .subscribe()
            .wait_for(|posted| *posted >= n)
            .await;
    }
}

fn endpoints(calls: &[Call]) -> Vec<String> {
    calls.iter().map(|c| c.endpoint().to_owned()).collect()
}

impl Transport for Hub {
    async fn post(
        &self,
        url: &str,
        _headers: &[(&'static str, &str)],
        body: Bytes,
    ) -> Result<Response, TransportError> {
        let step = {
            let mut script = self.script.borrow_mut();
            script.calls.push(Call {
                at: Instant::now(),
                url: url.to_owned(),
                body,
            });
            let endpoint = endpoint(url).to_owned();
            let scripted = script
                .steps
                .get_mut(&endpoint)
                .and_then(VecDeque::pop_front);
            scripted
                .or_else(|| script.defaults.get(&endpoint).cloned())
                .unwrap_or(Status(202))
        };
        self.posted.send_modify(|posted| *posted += 1);
        let answer = |status, retry_after| {
            Ok(Response {
                status,
                retry_after,
                ..Response::default()
            })
        };
        match step {
            Status(status) => answer(status, None),
            RetryAfter(status, secs) => answer(status, Some(secs)),
            Refused => Err(TransportError::Request("connection refused".into())),
            TimedOut => Err(TransportError::Timeout("the hub".into())),
            Hang => std::future::pending().await,
        }
    }
}

const HUB_URL: &str = "https://hub.test/v2/0ee479ef-2a3b-4c5d-8e9f-0123456789ab/test";
const STARTUP: &[u8] = br#"{"message_uuid":"5d0c4b43-8f4d-4d1c-a5a5-1d1e1f202122"}"#;
const BUDGET: Duration = Duration::from_secs(5);

/// The hub backend the loop sends for, with startup data waiting to be sent.
fn shared(logging: Option<Logging>) -> Arc<HubBackend> {
    Arc::new(HubBackend {
        enabled: Arc::new(AtomicBool::new(true)),
        metrics: Metrics::new(Limits {
            request_keys: 1_000,
            validation_error_keys: 1_000,
            server_error_keys: 1_000,
            consumers: 1_000,
        }),
        instance: InstanceId::per_process(uuid::Uuid::new_v4()),
        startup: Mutex::new(Some(Bytes::from_static(STARTUP))),
        client_id: "0ee479ef-2a3b-4c5d-8e9f-0123456789ab".to_owned(),
        app_version: None,
        logger: logging.as_ref().map(|l| Arc::clone(&l.logger)),
        files: logging.map(|l| l.files),
        hub_url: HUB_URL.to_owned(),
        tuning: Tuning::default(),
    })
}

/// A loop with the production timings and a shutdown budget of [`BUDGET`].
fn sync_loop(logging: Option<Logging>) -> (SyncLoop<Hub>, Hub, Arc<HubBackend>) {
    let hub = Hub::default();
    let shared = shared(logging);
    let sync_loop = SyncLoop::new(
        Arc::clone(&shared),
        hub.clone(),
        HUB_URL,
        Tuning::default(),
        BUDGET,
    );
    (sync_loop, hub, shared)
}

/// One sync POST of `{}` with the attempts of a cycle: what the retry rules act on.
async fn send_empty_sync(sync_loop: &mut SyncLoop<Hub>) -> Outcome {
    let url = sync_loop.sync_url.clone();
    sync_loop
        .send(
            &url,
            &json_headers(None),
            Bytes::from_static(b"{}"),
            MAX_ATTEMPTS,
            "x",
        )
        .await
}

/// Runs the loop until `stop` resolves; `Some(flushed)` when it ended by itself within
/// `limit` (virtual time).
async fn run_within(
    sync_loop: SyncLoop<Hub>,
    stop: impl std::future::Future<Output = ()> + 'static,
    limit: Duration,
) -> Option<bool> {
    tokio::time::timeout(limit, sync_loop.run(Box::pin(stop)))
        .await
        .ok()
}

/// A stop that never comes.
fn never() -> std::future::Pending<()> {
    std::future::pending()
}

/// A shutdown the test sends.
fn shutdown_signal() -> (oneshot::Sender<()>, impl std::future::Future<Output = ()>) {
    let (tx, rx) = oneshot::channel::<()>();
    (tx, async move {
        let _ = rx.await;
    })
}

fn record(shared: &HubBackend, route: &str) {
    shared.metrics.record_request(&RequestRecord::new(
        "GET",
        route,
        200,
        Duration::from_millis(1),
    ));
}

/// Deletes a test's log directory.
struct LogDir(PathBuf);

impl Drop for LogDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl LogDir {
    fn files(&self) -> usize {
        std::fs::read_dir(&self.0)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "gz"))
                    .count()
            })
            .unwrap_or(0)
    }
}

/// A request logger and its files.
#[derive(Clone)]
struct Logging {
    logger: Arc<RequestLogger>,
    files: Arc<LogFiles>,
}

impl std::ops::Deref for Logging {
    type Target = RequestLogger;
    fn deref(&self) -> &RequestLogger {
        &self.logger
    }
}

/// A request logger (no writer thread: the loop writes at each cycle) with every request in a
/// file of its own.
fn logger() -> (Logging, LogDir) {
    let dir = std::env::temp_dir().join(format!("apitally-sync-loop-{}", uuid::Uuid::new_v4()));
    let mut config = RequestLoggingConfig::new();
    config.max_file_size = 1;
    let (logger, files) = crate::backend::hub::files::logger(config, dir.clone()).unwrap();
    (
        Logging {
            logger: Arc::new(logger),
            files,
        },
        LogDir(dir),
    )
}

fn log_request(logger: &RequestLogger, n: u64) {
    let mut item = RequestLogItem::default();
    item.request.method.push_str("GET");
    item.request.url = format!("http://localhost/items?n={n}");
    item.response.status_code = 200;
    logger.log(item);
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Whether `wait` is in `[min, max]`; tokio's timer rounds a deadline up to the millisecond.
fn within(wait: Duration, min: Duration, max: Duration) -> bool {
    wait >= min && wait <= max + Duration::from_millis(2)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn gaps(calls: &[Call]) -> Vec<Duration> {
    calls.windows(2).map(|w| w[1].at - w[0].at).collect()
}

/// Whether not every value is the same (jitter).
fn varied(values: &[Duration]) -> bool {
    values.iter().collect::<BTreeSet<_>>().len() > 1
}

#[test]
fn urls_in_logs_hide_the_client_id() {
    assert_eq!(
        redact_url("https://hub.apitally.io/v2/76b5cb91-a0a4-4ea0-a894-57d2b9fcb2c9/prod/sync"),
        "https://hub.apitally.io/v2/…/prod/sync"
    );
}

#[tokio::test(start_paused = true)]
async fn failed_attempts_are_retried_twice_after_1_s_then_2_s_each_with_jitter_down_to_half() {
    let (mut sync_loop, hub, _) = sync_loop(None);
    let mut first_waits = Vec::new();
    for _ in 0..20 {
        hub.script("sync", [Status(500), Refused, Status(503)]);
        let before = hub.calls().len();
        let outcome = send_empty_sync(&mut sync_loop).await;
        assert!(matches!(outcome, Outcome::Retry(_)), "{outcome:?}");
        let waits = gaps(&hub.calls()[before..]);
        assert_eq!(waits.len(), 2, "three attempts");
        assert!(within(waits[0], ms(500), ms(1000)), "{waits:?}");
        assert!(within(waits[1], ms(1000), ms(2000)), "{waits:?}");
        first_waits.push(waits[0]);
    }
    assert!(varied(&first_waits), "no jitter: {first_waits:?}");
}

#[tokio::test(start_paused = true)]
async fn only_timeouts_connection_errors_408_429_and_5xx_are_retried() {
    let (mut sync_loop, hub, _) = sync_loop(None);
    let cases = [
        (Status(408), 3),
        (Status(429), 3),
        (Status(500), 3),
        (Status(502), 3),
        (Status(503), 3),
        (Status(504), 3),
        (Refused, 3),
        (TimedOut, 3),
        (Status(301), 1),
        (Status(400), 1),
        (Status(401), 1),
        (Status(402), 1),
        (Status(403), 1),
        (Status(404), 1),
        (Status(409), 1),
        (Status(413), 1),
        (Status(422), 1),
    ];
    for (step, attempts) in cases {
        hub.answer("sync", step.clone());
        let before = hub.calls().len();
        send_empty_sync(&mut sync_loop).await;
        assert_eq!(hub.calls().len() - before, attempts, "{step:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_on_429_and_503_sets_the_next_wait_up_to_30_s() {
    assert_eq!(MAX_RETRY_AFTER, Duration::from_secs(30));
    let (mut sync_loop, hub, _) = sync_loop(None);
    hub.script("sync", [RetryAfter(429, 7), RetryAfter(503, 120)]);
    let outcome = send_empty_sync(&mut sync_loop).await;
    assert!(matches!(outcome, Outcome::Sent), "{outcome:?}");
    let waits = gaps(&hub.calls());
    assert_eq!(waits, [Duration::from_secs(7), Duration::from_secs(30)]);
    // On another status it is no hint: the backoff applies.
    hub.script("sync", [RetryAfter(500, 7)]);
    send_empty_sync(&mut sync_loop).await;
    let waits = gaps(&hub.calls()[3..]);
    assert!(within(waits[0], ms(500), ms(1000)), "{waits:?}");
}

#[tokio::test(start_paused = true)]
async fn a_404_from_any_endpoint_disables_the_client_and_nothing_more_is_sent() {
    for (refused, expected) in [
        ("startup", &["startup"][..]),
        ("sync", &["startup", "sync"]),
        ("log", &["startup", "sync", "log"]),
    ] {
        let (logger, _dir) = logger();
        log_request(&logger, 1);
        let (sync_loop, hub, shared) = sync_loop(Some(logger));
        record(&shared, "/a");
        hub.script(refused, [Status(404)]);
        let ended = run_within(sync_loop, never(), Duration::from_secs(3600)).await;
        assert!(ended.is_some(), "404 on {refused}: the loop went on");
        assert_eq!(hub.endpoints(), expected, "404 on {refused}");
        assert!(!shared.enabled.load(std::sync::atomic::Ordering::Relaxed));
        assert!(lock(&shared.startup).is_none());
    }
}

#[tokio::test(start_paused = true)]
async fn a_422_or_413_drops_what_was_refused_and_it_is_never_sent_again() {
    for status in [422, 413] {
        let (logger, dir) = logger();
        let (mut sync_loop, hub, shared) = sync_loop(Some(logger.clone()));
        for endpoint in ["startup", "sync", "log"] {
            hub.script(endpoint, [Status(status)]);
        }
        record(&shared, "/refused");
        log_request(&logger, 1);
        sync_loop.cycle().await;
        let refused = hub.calls();
        assert_eq!(endpoints(&refused), ["startup", "sync", "log"], "{status}");
        record(&shared, "/next");
        log_request(&logger, 2);
        sync_loop.cycle().await;
        let next = &hub.calls()[3..];
        assert_eq!(endpoints(next), ["sync", "log"], "{status}");
        assert_eq!(next[0].routes(), ["/next"], "{status}");
        assert_ne!(next[1].query(), refused[2].query(), "{status}");
        assert_eq!(dir.files(), 0, "{status}: the refused file is deleted");
        assert!(lock(&shared.startup).is_none(), "{status}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_402_on_log_suspends_request_logging_for_retry_after_else_an_hour() {
    for (step, secs) in [
        (RetryAfter(402, 120), 120),
        (Status(402), 3600),
        (RetryAfter(402, 0), 3600),
    ] {
        let (logger, dir) = logger();
        let (mut sync_loop, hub, _) = sync_loop(Some(logger.clone()));
        for n in 0..3 {
            log_request(&logger, n);
        }
        hub.script("log", [step.clone()]);
        let before = unix_ms();
        sync_loop.cycle().await;
        let after = unix_ms();
        // One upload: the other files are not tried, and everything buffered is deleted.
        assert_eq!(hub.endpoints(), ["startup", "sync", "log"], "{step:?}");
        assert_eq!(dir.files(), 0, "{step:?}");
        let until = logger.suspended_until_ms();
        let expected = before + secs * 1000..=after + secs * 1000;
        assert!(
            expected.contains(&until),
            "{step:?}: {until} not in {expected:?}"
        );
        assert!(!logger.is_logging(), "{step:?}");
        // Nothing is logged meanwhile.
        log_request(&logger, 9);
        sync_loop.cycle().await;
        assert_eq!(hub.endpoints()[3..], ["sync"], "{step:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn other_failures_keep_the_payload_and_it_is_sent_again_byte_for_byte_next_cycle() {
    let failures = [
        ("5xx", vec![Status(500), Status(502), Status(503)]),
        ("connection refused", vec![Refused; 3]),
        ("timeout", vec![TimedOut; 3]),
        ("400", vec![Status(400)]),
        ("402", vec![Status(402)]),
    ];
    for (what, steps) in failures {
        let (mut sync_loop, hub, shared) = sync_loop(None);
        hub.script("startup", steps.clone());
        hub.script("sync", steps.clone());
        record(&shared, "/first");
        sync_loop.cycle().await;
        let n = steps.len();
        let failed = hub.calls();
        assert_eq!(failed.len(), 2 * n, "{what}");
        record(&shared, "/second");
        sync_loop.cycle().await;
        let next = &hub.calls()[2 * n..];
        assert_eq!(endpoints(next), ["startup", "sync", "sync"], "{what}");
        assert_eq!(next[0].body, failed[0].body, "{what}: startup");
        assert_eq!(next[1].body, failed[n].body, "{what}: sync");
        assert_eq!(next[1].routes(), ["/first"], "{what}");
        assert_eq!(next[2].routes(), ["/second"], "{what}");
        assert_ne!(next[1].message_uuid(), next[2].message_uuid(), "{what}");
        // Delivered, they leave: the next cycle sends only its own window.
        sync_loop.cycle().await;
        let last = &hub.calls()[2 * n + 3..];
        assert_eq!(endpoints(last), ["sync"], "{what}");
        assert!(last[0].routes().is_empty(), "{what}");
    }
}

#[tokio::test(start_paused = true)]
async fn queued_payloads_are_sent_100_to_500_ms_apart() {
    let (mut sync_loop, hub, _) = sync_loop(None);
    hub.answer("sync", Status(400));
    for _ in 0..8 {
        sync_loop.cycle().await;
    }
    hub.answer("sync", Status(202));
    let before = hub.calls().len();
    let start = Instant::now();
    sync_loop.cycle().await;
    let sent = &hub.calls()[before..];
    assert_eq!(sent.len(), 9);
    assert_eq!(sent[0].at, start, "the first at once");
    let waits = gaps(sent);
    for wait in &waits {
        assert!(within(*wait, ms(100), ms(500)), "{waits:?}");
    }
    assert!(varied(&waits), "no jitter: {waits:?}");
}

#[tokio::test(start_paused = true)]
async fn the_queue_drops_payloads_older_than_an_hour() {
    let (mut sync_loop, hub, shared) = sync_loop(None);
    hub.script("sync", [Status(400), Status(400)]);
    record(&shared, "/old");
    sync_loop.cycle().await;
    // Exactly an hour old, it is still sent (and refused again).
    tokio::time::advance(Duration::from_secs(3600)).await;
    record(&shared, "/new1");
    sync_loop.cycle().await;
    // An hour and a millisecond: dropped, while the others go.
    tokio::time::advance(ms(1)).await;
    record(&shared, "/new2");
    sync_loop.cycle().await;
    let sent: Vec<Vec<String>> = hub.calls_to("sync").iter().map(Call::routes).collect();
    assert_eq!(sent, [["/old"], ["/old"], ["/new1"], ["/new2"]]);
}

#[tokio::test(start_paused = true)]
async fn the_queue_keeps_the_newest_400_payloads() {
    let (mut sync_loop, hub, shared) = sync_loop(None);
    hub.answer("sync", Status(400));
    for i in 0..410 {
        record(&shared, &format!("/w{i}"));
        sync_loop.cycle().await;
    }
    hub.answer("sync", Status(202));
    record(&shared, "/w410");
    let before = hub.calls().len();
    sync_loop.cycle().await;
    let sent = &hub.calls()[before..];
    assert_eq!(sent.len(), 400);
    let delivered: BTreeSet<String> = sent.iter().flat_map(Call::routes).collect();
    let newest: BTreeSet<String> = (11..=410).map(|i| format!("/w{i}")).collect();
    assert_eq!(delivered, newest);
}

#[tokio::test(start_paused = true)]
async fn log_uploads_take_10_files_per_cycle_100_to_500_ms_apart_a_failed_one_first_next_time() {
    assert_eq!(MAX_FILES_PER_CYCLE, 10);
    let (logger, dir) = logger();
    let (mut sync_loop, hub, _) = sync_loop(Some(logger.clone()));
    for n in 0..13 {
        log_request(&logger, n);
    }
    sync_loop.cycle().await;
    let uploads = hub.calls_to("log");
    assert_eq!(uploads.len(), 10);
    let waits = gaps(&uploads);
    for wait in &waits {
        assert!(within(*wait, ms(100), ms(500)), "{waits:?}");
    }
    assert!(varied(&waits), "no jitter: {waits:?}");
    // The next file fails (three attempts); the two after it wait.
    hub.script("log", vec![Status(500); 3]);
    sync_loop.cycle().await;
    let failed = hub.calls_to("log")[10..].to_vec();
    assert_eq!(failed.len(), 3);
    assert!(failed.iter().all(|c| c.url == failed[0].url));
    sync_loop.cycle().await;
    let next = hub.calls_to("log")[13..].to_vec();
    assert_eq!(next.len(), 3);
    assert_eq!(next[0].url, failed[0].url);
    assert_eq!(next[0].body, failed[0].body);
    let files: BTreeSet<_> = uploads.iter().chain(&next).map(Call::query).collect();
    assert_eq!(files.len(), 13, "each file once");
    assert_eq!(dir.files(), 0);
}

#[tokio::test(start_paused = true)]
async fn cycles_run_10_s_apart_in_the_first_hour_then_60_s_apart() {
    let (sync_loop, hub, _) = sync_loop(None);
    let start = Instant::now();
    let ended = run_within(sync_loop, never(), Duration::from_secs(3750)).await;
    assert!(ended.is_none());
    let times: Vec<u64> = hub
        .calls_to("sync")
        .iter()
        .map(|c| (c.at - start).as_secs())
        .collect();
    let expected: Vec<u64> = (0..=3600).step_by(10).chain([3660, 3720]).collect();
    assert_eq!(times, expected);
    assert!(hub
        .calls_to("sync")
        .iter()
        .all(|c| (c.at - start).subsec_nanos() == 0));
}

#[tokio::test(start_paused = true)]
async fn the_final_sync_stops_at_the_shutdown_budget_and_names_what_was_not_delivered() {
    let logs = apitally_test_hub::capture_logs();
    let (sync_loop, hub, shared) = sync_loop(None);
    // The first cycle is delivered; the final sync's POST is never answered.
    hub.script("sync", [Status(202), Hang]);
    let (stop, stopped) = shutdown_signal();
    let shutdown = async {
        hub.posted(2).await;
        assert!(stop.send(()).is_ok());
        Instant::now()
    };
    let (ended, asked) = tokio::join!(
        run_within(sync_loop, stopped, Duration::from_secs(600)),
        shutdown
    );
    assert_eq!(ended, Some(false), "the final sync outlived its budget");
    assert_eq!(Instant::now() - asked, BUDGET);
    assert_eq!(hub.endpoints(), ["startup", "sync", "sync"]);
    assert!(!shared.enabled.load(std::sync::atomic::Ordering::Relaxed));
    let warning = "apitally: shutdown: not delivered (the shutdown budget of 5s ran out): 1 sync \
                   payload(s)";
    let warnings = logs.matching(Level::Warn, "apitally: shutdown:");
    assert!(warnings.iter().any(|w| w == warning), "{warnings:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_during_a_hung_post_waits_for_it_within_the_budget_then_starts_nothing() {
    let logs = apitally_test_hub::capture_logs();
    let (sync_loop, hub, _) = sync_loop(None);
    // The cycle's startup takes a retry, then its sync hangs: the shutdown arrives then, well
    // after the cycle began.
    hub.script("startup", [Status(503)]);
    hub.script("sync", [Hang]);
    let (stop, stopped) = shutdown_signal();
    let start = Instant::now();
    let shutdown = async {
        hub.posted(3).await;
        assert!(Instant::now() - start >= ms(500));
        assert!(stop.send(()).is_ok());
        Instant::now()
    };
    let (ended, asked) = tokio::join!(
        run_within(sync_loop, stopped, Duration::from_secs(600)),
        shutdown
    );
    assert_eq!(ended, Some(false));
    assert_eq!(Instant::now() - asked, BUDGET);
    assert_eq!(
        hub.endpoints(),
        ["startup", "startup", "sync"],
        "a POST after the budget"
    );
    // The hung payload and the last window.
    let warning = "apitally: shutdown: not delivered (the shutdown budget of 5s ran out): 2 sync \
                   payload(s)";
    let warnings = logs.matching(Level::Warn, "apitally: shutdown:");
    assert!(warnings.iter().any(|w| w == warning), "{warnings:#?}");
}

#[tokio::test(start_paused = true)]
async fn the_final_sync_makes_one_attempt_each_and_names_what_the_hub_did_not_take() {
    let logs = apitally_test_hub::capture_logs();
    let (logger, dir) = logger();
    let (sync_loop, hub, _) = sync_loop(Some(logger.clone()));
    hub.script("sync", [Status(202), Status(503)]);
    hub.script("log", [Status(503)]);
    let (stop, stopped) = shutdown_signal();
    let shutdown = async {
        hub.posted(2).await;
        log_request(&logger, 1);
        log_request(&logger, 2);
        assert!(stop.send(()).is_ok());
    };
    let (ended, ()) = tokio::join!(
        run_within(sync_loop, stopped, Duration::from_secs(600)),
        shutdown
    );
    assert_eq!(ended, Some(false));
    // One attempt each (a second would have been accepted); the second file is not tried.
    assert_eq!(hub.endpoints(), ["startup", "sync", "sync", "log"]);
    let warning = "apitally: shutdown: not delivered (the hub did not take them): 1 sync \
                   payload(s), 2 request-log file(s) (2 requests)";
    let warnings = logs.matching(Level::Warn, "apitally: shutdown:");
    assert!(warnings.iter().any(|w| w == warning), "{warnings:#?}");
    assert_eq!(dir.files(), 0, "deleted at shutdown");
}

#[tokio::test(start_paused = true)]
async fn with_every_handle_gone_the_loop_makes_its_final_sync_after_the_grace_and_ends() {
    let (sync_loop, hub, shared) = sync_loop(None);
    // The client's stop signal, for a client whose every handle is gone.
    let (_commands, rx) = tokio::sync::mpsc::unbounded_channel();
    let gone = std::sync::Weak::new();
    let reply = std::rc::Rc::new(std::cell::RefCell::new(None));
    let stop = crate::client::stopped(rx, gone, reply);
    let start = Instant::now();
    let ended = run_within(sync_loop, stop, Duration::from_secs(600)).await;
    assert_eq!(ended, Some(true));
    let syncs = hub.calls_to("sync");
    assert_eq!(syncs.len(), 2);
    let last = syncs[1].at - start;
    assert!(
        last >= ORPHAN_GRACE && last < INITIAL_SYNC_INTERVAL,
        "{last:?}"
    );
    assert!(!shared.enabled.load(std::sync::atomic::Ordering::Relaxed));
}

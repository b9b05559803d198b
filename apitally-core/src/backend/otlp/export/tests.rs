use std::{cell::RefCell, collections::VecDeque, rc::Rc};

use tokio::time::Instant;

use super::*;
use crate::backend::otlp::spool::MAX_RETRY_AFTER_FIRST_ATTEMPT;

/// How the scripted transport answers one POST.
#[derive(Debug, Clone)]
enum Step {
    Status(u16),
    WithInterval(u16, &'static str),
    Refused,
    TimedOut,
    /// Answers 200 after this long.
    Slow(Duration),
    /// Never answers.
    Hang,
}

#[derive(Debug, Clone)]
struct Call {
    at: Instant,
    url: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

#[derive(Debug, Default)]
struct Script {
    steps: VecDeque<Step>,
    /// How every POST to a URL ending with this answers, before the script.
    by_url: Vec<(&'static str, Step)>,
    calls: Vec<Call>,
}

/// Answers from a script (200 once it is used up), recording each call.
#[derive(Debug, Clone, Default)]
struct Scripted(Rc<RefCell<Script>>);

impl Scripted {
    fn then(&self, steps: impl IntoIterator<Item = Step>) -> &Self {
        self.0.borrow_mut().steps.extend(steps);
        self
    }

    fn calls(&self) -> Vec<Call> {
        self.0.borrow().calls.clone()
    }

    /// Every POST to a URL ending with `suffix` answers with `step`.
    fn always(&self, suffix: &'static str, step: Step) -> &Self {
        self.0.borrow_mut().by_url.push((suffix, step));
        self
    }

    fn calls_to(&self, suffix: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.url.ends_with(suffix))
            .collect()
    }
}

impl Transport for Scripted {
    async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, &str)],
        body: Bytes,
    ) -> Result<Response, TransportError> {
        let step = {
            let mut script = self.0.borrow_mut();
            script.calls.push(Call {
                at: Instant::now(),
                url: url.to_owned(),
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                body,
            });
            let by_url = script
                .by_url
                .iter()
                .find(|(suffix, _)| url.ends_with(suffix))
                .map(|(_, step)| step.clone());
            by_url
                .or_else(|| script.steps.pop_front())
                .unwrap_or(Step::Status(200))
        };
        let ok = |status| {
            Ok(Response {
                status,
                ..Response::default()
            })
        };
        match step {
            Step::Status(status) => ok(status),
            Step::WithInterval(status, interval) => Ok(Response {
                status,
                export_interval: Some(interval.to_owned()),
                ..Response::default()
            }),
            Step::Refused => Err(TransportError::Request("connection refused".into())),
            Step::TimedOut => Err(TransportError::Timeout("otlp".into())),
            Step::Slow(delay) => {
                tokio::time::sleep(delay).await;
                ok(200)
            }
            Step::Hang => std::future::pending().await,
        }
    }
}

/// A Collect hook recording when it ran and appending what a test queued.
#[derive(Debug, Clone, Default)]
struct Collector(Rc<RefCell<CollectorState>>);

/// When the hook ran, and what it appends next.
type CollectorState = (Vec<Instant>, Vec<(Queue, Vec<u8>)>);

impl Collector {
    fn queue(&self, signal: Queue, payload: &[u8]) {
        self.0.borrow_mut().1.push((signal, payload.to_vec()));
    }

    fn times(&self) -> Vec<Instant> {
        self.0.borrow().0.clone()
    }
}

impl Collect for Collector {
    fn collect(&mut self, spool: &Spool) {
        let mut inner = self.0.borrow_mut();
        inner.0.push(Instant::now());
        for (queue, payload) in inner.1.drain(..) {
            spool.append(queue, &payload, 1);
        }
    }
}

const TOKEN: &str = "apt_abcdefghijklmnopqrstuvwx";

fn worker(spool: &Arc<Spool>) -> (ExportWorker<Scripted, Collector>, Scripted, Collector) {
    let transport = Scripted::default();
    let collector = Collector::default();
    let worker = ExportWorker::new(
        Arc::clone(spool),
        transport.clone(),
        collector.clone(),
        &ExportSettings {
            endpoint: "https://otlp.example.test/".to_owned(),
            write_token: TOKEN.to_owned(),
            env: "prod".to_owned(),
            fixed_interval: None,
        },
    );
    worker.set_rng(fastrand::Rng::with_seed(7));
    (worker, transport, collector)
}

/// `n` closed files of `queue`, each with a distinct payload and one item.
fn closed_files(spool: &Spool, queue: Queue, n: usize) {
    for i in 0..n {
        spool.append(queue, format!("{} {i}", queue.as_str()).as_bytes(), 1);
        spool.close_current_files();
    }
}

fn decompressed(body: &[u8]) -> String {
    use std::io::Read;
    let mut out = String::new();
    flate2::read::GzDecoder::new(body)
        .read_to_string(&mut out)
        .unwrap();
    out
}

#[test]
fn constants_of_protocol_v1() {
    assert_eq!(INITIAL_DELAY, Duration::from_secs(2));
    assert_eq!(DEFAULT_INTERVAL, Duration::from_secs(15));
    assert_eq!((MIN_INTERVAL_SECS, MAX_INTERVAL_SECS), (5, 60));
    assert_eq!(REQUEST_TIMEOUT, Duration::from_secs(10));
    assert_eq!(MAX_BACKLOG_SENDS_PER_CYCLE, 10);
    assert_eq!(
        crate::transport::EXPORT_INTERVAL_HEADER,
        "Apitally-Export-Interval"
    );
    assert_eq!(
        USER_AGENT,
        format!("apitally-rs/{}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn headers_are_exact_and_debug_hides_the_token() {
    let headers = ExportHeaders::new(TOKEN, "prod");
    assert_eq!(
        headers.pairs(),
        [
            ("Authorization", "Bearer apt_abcdefghijklmnopqrstuvwx"),
            ("Apitally-Env", "prod"),
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "gzip"),
            ("User-Agent", USER_AGENT),
        ]
    );
    let debug = format!("{headers:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    let settings = ExportSettings {
        endpoint: "https://x".into(),
        write_token: TOKEN.into(),
        env: "dev".into(),
        fixed_interval: None,
    };
    assert!(!format!("{settings:?}").contains(TOKEN));
}

#[test]
fn export_interval_header_is_an_integer_clamped_to_5_to_60_seconds() {
    let secs = |v| parse_export_interval(v).map(|d| d.as_secs());
    assert_eq!(secs("30"), Some(30));
    assert_eq!(secs(" 30 "), Some(30));
    assert_eq!(secs("+30"), Some(30));
    assert_eq!(secs("1"), Some(5));
    assert_eq!(secs("0"), Some(5));
    assert_eq!(secs("-7"), Some(5));
    assert_eq!(secs("600"), Some(60));
    assert_eq!(secs("99999999999999999999999"), Some(60));
    for ignored in ["", " ", "abc", "1.5", "15s", "+", "--5", "5 5"] {
        assert_eq!(secs(ignored), None, "{ignored:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_cycle_collects_rotates_and_posts_each_file_verbatim_with_the_headers() {
    let spool = Arc::new(Spool::in_memory());
    let (worker, transport, collector) = worker(&spool);
    collector.queue(Queue::Traces, b"spans");
    collector.queue(Queue::Logs, b"records");
    collector.queue(Queue::Events, b"events");
    collector.queue(Queue::Metrics, b"metrics");
    worker.cycle().await;
    let calls = transport.calls();
    let urls: Vec<_> = calls.iter().map(|c| c.url.as_str()).collect();
    // The product first: metrics, events; then the samples: spans, application logs.
    assert_eq!(
        urls,
        [
            "https://otlp.example.test/v1/metrics",
            "https://otlp.example.test/v1/logs",
            "https://otlp.example.test/v1/traces",
            "https://otlp.example.test/v1/logs",
        ]
    );
    let bodies: Vec<_> = calls.iter().map(|c| decompressed(&c.body)).collect();
    assert_eq!(bodies, ["metrics", "events", "spans", "records"]);
    for call in &calls {
        let headers: Vec<_> = call
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(headers, ExportHeaders::new(TOKEN, "prod").pairs());
    }
    // Delivered files are deleted.
    assert!(spool.pending().is_empty());
    assert_eq!(spool.total_size(), 0);
}

#[tokio::test(start_paused = true)]
async fn first_cycle_after_2s_then_interval_with_jitter_after_each_cycle_completes() {
    let spool = Arc::new(Spool::in_memory());
    let (worker, transport, collector) = worker(&spool);
    // Each cycle sends one file that takes 3 s to answer.
    let start = Instant::now();
    let stop_at = start + Duration::from_secs(200);
    transport.then(std::iter::repeat_n(Step::Slow(Duration::from_secs(3)), 20));
    let collect_file = collector.clone();
    let run = async {
        loop {
            collect_file.queue(Queue::Metrics, b"m");
            tokio::task::yield_now().await;
            if Instant::now() >= stop_at {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    tokio::join!(worker.run(tokio::time::sleep_until(stop_at)), run);
    let times = collector.times();
    assert_eq!(times[0], start + INITIAL_DELAY);
    let mut delays = Vec::new();
    for pair in times.windows(2) {
        // Measured from the end of the previous cycle (its POST took 3 s).
        let delay = pair[1] - (pair[0] + Duration::from_secs(3));
        assert!(
            delay >= DEFAULT_INTERVAL.mul_f64(0.9) && delay <= DEFAULT_INTERVAL.mul_f64(1.1),
            "{delay:?}"
        );
        delays.push(delay);
    }
    assert!(delays.len() >= 8, "{}", delays.len());
    delays.dedup();
    assert!(delays.len() > 1, "no jitter");
    // Never overlapping: each cycle's POST ends before the next collection.
    let calls = transport.calls();
    for (call, next_collect) in calls.iter().zip(&times[1..]) {
        assert!(call.at + Duration::from_secs(3) <= *next_collect);
    }
}

#[tokio::test(start_paused = true)]
async fn the_server_sets_the_interval_from_every_response_clamped() {
    let spool = Arc::new(Spool::in_memory());
    let (worker, transport, collector) = worker(&spool);
    for (step, expected) in [
        (Step::WithInterval(200, "30"), 30),
        (Step::WithInterval(503, "1"), 5),
        (Step::WithInterval(400, "600"), 60),
        (Step::WithInterval(200, "soon"), 60),
        (Step::WithInterval(429, "20"), 20),
    ] {
        transport.then([step]);
        collector.queue(Queue::Metrics, b"m");
        worker.cycle().await;
        assert_eq!(worker.interval(), Duration::from_secs(expected));
        // Empty the spool for the next step.
        spool.clear();
    }
    // And the next cycle waits for it.
    transport.then([Step::WithInterval(200, "40")]);
    collector.queue(Queue::Metrics, b"m");
    let start = Instant::now();
    worker
        .run(tokio::time::sleep_until(start + Duration::from_secs(100)))
        .await;
    let times = collector.times();
    let last_two = &times[times.len() - 2..];
    let delay = last_two[1] - last_two[0];
    assert!(
        delay >= Duration::from_secs(36) && delay <= Duration::from_secs(44),
        "{delay:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn files_go_oldest_first_with_pauses_between_sends_only() {
    let spool = Arc::new(Spool::in_memory());
    closed_files(&spool, Queue::Events, 2);
    closed_files(&spool, Queue::Traces, 1);
    closed_files(&spool, Queue::Events, 1);
    let (worker, transport, collector) = worker(&spool);
    worker.cycle().await;
    let calls = transport.calls();
    let bodies: Vec<_> = calls.iter().map(|c| decompressed(&c.body)).collect();
    // Oldest first within each queue; the queues in order.
    assert_eq!(bodies, ["events 0", "events 1", "events 0", "traces 0"]);
    // No pause before the first send, U(0.1 s, 0.5 s) between two.
    assert_eq!(calls[0].at, collector.times()[0]);
    for pair in calls.windows(2) {
        let pause = pair[1].at - pair[0].at;
        assert!(
            pause >= Duration::from_millis(100) && pause <= Duration::from_millis(500),
            "{pause:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn budget_is_10_plus_the_files_closed_since_the_previous_cycle() {
    let spool = Arc::new(Spool::in_memory());
    let (worker, transport, _collector) = worker(&spool);
    // 13 files closed before the first cycle: all count as new, all are sent.
    closed_files(&spool, Queue::Events, 13);
    worker.cycle().await;
    assert_eq!(transport.calls().len(), 13);
    // An outage keeps 12 files back (one probe per cycle).
    closed_files(&spool, Queue::Events, 12);
    transport.then([Step::Status(503)]);
    worker.cycle().await;
    assert_eq!(transport.calls().len(), 14);
    assert_eq!(spool.pending().len(), 12);
    // Nothing new closed since: 10 files this cycle, the other 2 the next.
    worker.cycle().await;
    assert_eq!(transport.calls().len(), 24);
    assert_eq!(spool.pending().len(), 2);
    worker.cycle().await;
    assert!(spool.pending().is_empty());
}

#[tokio::test(start_paused = true)]
async fn retryable_answers_keep_the_file_and_end_the_cycle() {
    for step in [
        Step::Status(408),
        Step::Status(429),
        Step::Status(500),
        Step::Status(503),
        Step::Status(599),
        Step::TimedOut,
    ] {
        let spool = Arc::new(Spool::in_memory());
        closed_files(&spool, Queue::Traces, 3);
        let (worker, transport, _collector) = worker(&spool);
        transport.then([step.clone()]);
        worker.cycle().await;
        // One probe; the file stays first in line and the others wait.
        assert_eq!(transport.calls().len(), 1, "{step:?}");
        let pending = spool.pending();
        assert_eq!(pending.len(), 3, "{step:?}");
        assert!(pending[0].first_attempt.is_some());
        // Next cycle, it is sent again byte for byte.
        worker.cycle().await;
        let calls = transport.calls();
        assert_eq!(calls[1].body, calls[0].body);
        assert!(spool.pending().is_empty(), "{step:?}");
        assert!(worker.take_warnings().is_empty());
    }
}

#[tokio::test(start_paused = true)]
async fn a_connection_error_is_retried_once_at_once_and_a_timeout_never() {
    let spool = Arc::new(Spool::in_memory());
    closed_files(&spool, Queue::Events, 1);
    let (worker, transport, _collector) = worker(&spool);
    transport.then([Step::Refused, Step::Status(200)]);
    worker.cycle().await;
    let calls = transport.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].at, calls[1].at);
    assert_eq!(calls[0].body, calls[1].body);
    assert!(spool.pending().is_empty());

    // Refused twice: retryable, kept.
    closed_files(&spool, Queue::Events, 2);
    transport.then([Step::Refused, Step::Refused]);
    worker.cycle().await;
    assert_eq!(transport.calls().len(), 4);
    assert_eq!(spool.pending().len(), 2);
    spool.clear();

    // A timeout reported by the transport, or no answer within 10 s: no second try.
    for step in [Step::TimedOut, Step::Hang] {
        closed_files(&spool, Queue::Events, 1);
        let before = transport.calls().len();
        transport.then([step.clone(), Step::Status(200)]);
        let start = Instant::now();
        worker.cycle().await;
        assert_eq!(transport.calls().len(), before + 1, "{step:?}");
        assert_eq!(spool.pending().len(), 1);
        if matches!(step, Step::Hang) {
            assert_eq!(Instant::now() - start, REQUEST_TIMEOUT);
        }
        // The scripted 200 answers the next cycle.
        worker.cycle().await;
        assert!(spool.pending().is_empty());
    }
}

#[tokio::test(start_paused = true)]
async fn other_statuses_delete_the_file_with_one_warning_per_status() {
    let spool = Arc::new(Spool::in_memory());
    closed_files(&spool, Queue::Traces, 5);
    closed_files(&spool, Queue::Metrics, 1);
    let (worker, transport, _collector) = worker(&spool);
    transport.then([
        Step::Status(401),
        Step::Status(402),
        Step::Status(401),
        Step::Status(413),
        Step::Status(302),
        Step::Status(204),
    ]);
    worker.cycle().await;
    assert_eq!(transport.calls().len(), 6);
    assert!(spool.pending().is_empty());
    assert_eq!(
        worker.take_warnings(),
        [
            "Apitally rejected buffered metrics with HTTP 401, dropping it",
            "Apitally rejected buffered traces with HTTP 402, dropping it",
            "Apitally rejected buffered traces with HTTP 413, dropping it",
            "Apitally rejected buffered traces with HTTP 302, dropping it",
        ]
    );
    // Per process: a later 401 of another signal does not warn again. The next cycle
    // reports what the rejections dropped, with the items they carried.
    closed_files(&spool, Queue::Events, 1);
    transport.then([Step::Status(401)]);
    worker.cycle().await;
    assert_eq!(
        worker.take_warnings(),
        [
            "apitally: telemetry dropped since the last export: metrics: 1 requests in 1 \
             file(s) (rejected with HTTP 401); traces: 4 requests in 4 file(s) (rejected \
             with HTTP 302, rejected with HTTP 401, rejected with HTTP 402, rejected with \
             HTTP 413)"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_file_first_attempted_over_59_minutes_ago_is_dropped_unsent() {
    let spool = Arc::new(Spool::in_memory());
    closed_files(&spool, Queue::Events, 1);
    let (worker, transport, _collector) = worker(&spool);
    // Fails for 59 minutes: one probe each cycle, kept.
    let probes = 59 * 4;
    transport.then(std::iter::repeat_n(Step::Status(503), probes));
    for _ in 0..probes {
        worker.cycle().await;
        tokio::time::advance(Duration::from_secs(15)).await;
    }
    assert_eq!(transport.calls().len(), probes);
    assert_eq!(spool.pending().len(), 1);
    // 59 minutes after the first attempt, plus a little.
    let first = transport.calls()[0].at;
    tokio::time::advance(
        first + MAX_RETRY_AFTER_FIRST_ATTEMPT + Duration::from_millis(1) - Instant::now(),
    )
    .await;
    closed_files(&spool, Queue::Metrics, 1);
    worker.cycle().await;
    // Dropped without a POST; the next file goes.
    let calls = transport.calls();
    assert_eq!(calls.len(), probes + 1);
    assert!(calls[probes].url.ends_with("/v1/metrics"));
    assert!(spool.pending().is_empty());
    assert_eq!(
        worker.take_warnings(),
        [
            "apitally: telemetry dropped since the last export: events: 1 events in 1 \
             file(s) (not delivered within an hour)"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn each_ordinary_cycle_refreshes_the_mtime_of_waiting_files() {
    let dir = crate::backend::otlp::spool::tests::temp_dir("export-touch");
    let spool = Arc::new(Spool::new_in(dir.clone()));
    closed_files(&spool, Queue::Traces, 1);
    let old = std::time::SystemTime::now() - Duration::from_secs(3 * 3600);
    let path = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let (worker, transport, _collector) = worker(&spool);
    transport.then([Step::Status(503)]);
    worker.cycle().await;
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    assert!(modified > old + Duration::from_secs(3600));
    drop(worker);
    drop(spool);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_file_is_deleted_with_a_warning_and_sending_goes_on() {
    let dir = crate::backend::otlp::spool::tests::temp_dir("export-unreadable");
    let spool = Arc::new(Spool::new_in(dir.clone()));
    closed_files(&spool, Queue::Traces, 1);
    let unreadable: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    closed_files(&spool, Queue::Events, 1);
    for path in unreadable {
        std::fs::remove_file(path).unwrap();
    }
    let (worker, transport, _collector) = worker(&spool);
    worker.cycle().await;
    let calls = transport.calls();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].url.ends_with("/v1/logs"));
    assert!(spool.pending().is_empty());
    let warnings = worker.take_warnings();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].starts_with("Error reading buffered traces, dropping it"));
    // Counted, and reported with the next cycle.
    worker.cycle().await;
    assert_eq!(
        worker.take_warnings(),
        [
            "apitally: telemetry dropped since the last export: traces: 1 requests in 1 \
             file(s) (a disk error)"
        ]
    );
    drop(spool);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(start_paused = true)]
async fn ordinary_cycles_keep_a_backlog_in_one_growing_file() {
    let spool = Arc::new(Spool::in_memory());
    let (worker, transport, collector) = worker(&spool);
    transport.then([Step::Status(503), Step::Status(503), Step::Status(503)]);
    for payload in [&b"a"[..], b"b", b"c"] {
        collector.queue(Queue::Traces, payload);
        worker.cycle().await;
    }
    // The first file waits; b and c went into one current file.
    assert_eq!(spool.pending().len(), 1);
    assert_eq!(spool.contents().files, [0, 0, 2, 0]);
    worker.cycle().await;
    worker.cycle().await;
    let bodies: Vec<_> = transport
        .calls()
        .iter()
        .map(|c| decompressed(&c.body))
        .collect();
    assert_eq!(bodies, ["a", "a", "a", "a", "bc"]);
}

#[tokio::test(start_paused = true)]
async fn final_drain_sends_everything_at_once_without_cap() {
    let spool = Arc::new(Spool::in_memory());
    let (worker, transport, collector) = worker(&spool);
    closed_files(&spool, Queue::Events, 14);
    // An ordinary rotation in between: an ordinary cap would now be 10 + 2.
    assert_eq!(spool.rotate_for_export(), [0, 14, 0, 0]);
    // Collected and closed by the drain itself.
    collector.queue(Queue::Metrics, b"last metrics");
    spool.append(Queue::Traces, b"open traces", 1);
    let start = Instant::now();
    let report = worker.final_drain(Duration::from_secs(10)).await;
    let calls = transport.calls();
    assert_eq!(calls.len(), 16);
    assert!(calls.iter().all(|c| c.at == start), "paused between sends");
    // The product first.
    assert_eq!(decompressed(&calls[0].body), "last metrics");
    assert_eq!(decompressed(&calls[15].body), "open traces");
    assert_eq!(
        report,
        DrainReport {
            delivered: 16,
            undelivered: SpoolContents::default(),
            stopped: Vec::new(),
            losses: Losses::default(),
        }
    );
    assert!(report.is_complete());
}

#[tokio::test(start_paused = true)]
async fn final_drain_stops_at_the_first_retryable_failure_and_reports_the_rest() {
    let spool = Arc::new(Spool::in_memory());
    let (worker, transport, _collector) = worker(&spool);
    closed_files(&spool, Queue::Events, 2);
    closed_files(&spool, Queue::Traces, 1);
    closed_files(&spool, Queue::Metrics, 2);
    transport.then([
        Step::Status(200),
        Step::Status(400),
        Step::Status(502),
        Step::Status(200),
    ]);
    let report = worker.final_drain(Duration::from_secs(10)).await;
    // Metrics (200, 400), events (502: the queue stops), traces (200).
    assert_eq!(transport.calls().len(), 4);
    assert_eq!(report.delivered, 2);
    assert_eq!(report.stopped, [(Queue::Events, Stop::Status(502))]);
    assert_eq!(report.undelivered.files, [0, 2, 0, 0]);
    assert!(report.undelivered.bytes[1] > 0);
    assert!(!report.is_complete());
    // The rejected metrics and what was left are counted as dropped.
    assert_eq!(report.losses.files, [1, 2, 0, 0]);
    assert_eq!(
        report.losses.describe(),
        "metrics: 1 requests in 1 file(s) (rejected with HTTP 400); events: 2 events in 2 \
         file(s) (not delivered at shutdown)"
    );
    // Nothing is left behind.
    assert_eq!(spool.contents(), SpoolContents::default());
}

#[tokio::test(start_paused = true)]
async fn final_drain_is_bounded_by_the_budget() {
    let spool = Arc::new(Spool::in_memory());
    let (worker, transport, _collector) = worker(&spool);
    closed_files(&spool, Queue::Traces, 3);
    transport.then([Step::Status(200), Step::Slow(Duration::from_secs(8))]);
    let start = Instant::now();
    let report = worker.final_drain(Duration::from_secs(5)).await;
    assert_eq!(Instant::now() - start, Duration::from_secs(5));
    assert_eq!(report.delivered, 1);
    assert_eq!(report.stopped, [(Queue::Traces, Stop::Budget)]);
    assert_eq!(report.undelivered.files, [0, 0, 2, 0]);
}

#[tokio::test(start_paused = true)]
async fn run_returns_when_stopped_even_mid_cycle_and_loses_nothing() {
    let spool = Arc::new(Spool::in_memory());
    let (worker, transport, collector) = worker(&spool);
    collector.queue(Queue::Events, b"l");
    transport.then([Step::Hang]);
    let start = Instant::now();
    worker
        .run(tokio::time::sleep_until(start + Duration::from_secs(3)))
        .await;
    assert_eq!(Instant::now() - start, Duration::from_secs(3));
    // The POST in flight was abandoned; the file is still there for the final drain.
    assert_eq!(transport.calls().len(), 1);
    let report = worker.final_drain(Duration::from_secs(10)).await;
    assert_eq!(report.delivered, 1);
    assert_eq!(transport.calls()[1].body, transport.calls()[0].body);
}

/// Queues `metrics` and `traces` payloads every 500 ms until `stop_at`, as traffic would.
async fn traffic(collector: &Collector, stop_at: Instant) {
    while Instant::now() < stop_at {
        collector.queue(Queue::Metrics, b"m");
        collector.queue(Queue::Traces, b"t");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn metrics_go_out_on_schedule_while_the_trace_intake_takes_9_s_a_post() {
    let spool = Arc::new(Spool::in_memory());
    let (worker, transport, collector) = worker(&spool);
    transport.always("/v1/traces", Step::Slow(Duration::from_secs(9)));
    let start = Instant::now();
    let stop_at = start + Duration::from_secs(300);
    tokio::join!(
        worker.run(tokio::time::sleep_until(stop_at)),
        traffic(&collector, stop_at)
    );
    // Every cycle's metrics went out when the cycle ran: the first 2 s in, then one
    // interval (15 s ± 10 %) after the other, whatever the traces lane was doing.
    let metrics: Vec<_> = transport
        .calls_to("/v1/metrics")
        .iter()
        .map(|c| c.at)
        .collect();
    assert_eq!(metrics[0], start + INITIAL_DELAY);
    for pair in metrics.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= DEFAULT_INTERVAL.mul_f64(0.9) && gap <= DEFAULT_INTERVAL.mul_f64(1.1),
            "{gap:?}"
        );
    }
    assert!(metrics.len() >= 18, "{}", metrics.len());
    assert_eq!(metrics, collector.times(), "a POST per collection, at once");
    // The traces lane kept up meanwhile, a POST in flight at a time: a file per cycle
    // (the backlog grows the current file), so what is left is at most two cycles' worth.
    let traces = transport.calls_to("/v1/traces");
    assert!(traces.len() >= 18, "{}", traces.len());
    assert!(spool.contents().items[Queue::Traces.index()] <= 60);
    for pair in traces.windows(2) {
        assert!(pair[1].at >= pair[0].at + Duration::from_secs(9));
    }
    // Nothing was dropped: the backlog waits in the spool.
    assert!(spool.take_losses().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_trace_intake_that_is_down_costs_one_probe_per_cycle_and_never_the_metrics() {
    let spool = Arc::new(Spool::in_memory());
    let (worker, transport, collector) = worker(&spool);
    transport.always("/v1/traces", Step::Status(503));
    for _ in 0..5 {
        collector.queue(Queue::Metrics, b"m");
        collector.queue(Queue::Events, b"e");
        collector.queue(Queue::Traces, b"t");
        worker.cycle().await;
    }
    assert_eq!(transport.calls_to("/v1/metrics").len(), 5);
    assert_eq!(transport.calls_to("/v1/logs").len(), 5);
    assert_eq!(transport.calls_to("/v1/traces").len(), 5);
    // The traces wait in two files: the first, and the one the backlog grows.
    assert_eq!(spool.contents().files, [0, 0, 2, 0]);
    assert_eq!(spool.contents().items, [0, 0, 5, 0]);
    // The intake comes back: the backlog goes, byte for byte what was kept.
    transport.0.borrow_mut().by_url.clear();
    worker.cycle().await;
    worker.cycle().await;
    assert_eq!(spool.contents(), SpoolContents::default());
    let traces = transport.calls_to("/v1/traces");
    assert_eq!(decompressed(&traces[traces.len() - 2].body), "t");
    assert_eq!(decompressed(&traces[traces.len() - 1].body), "tttt");
}

#[tokio::test(start_paused = true)]
async fn the_final_drain_sends_the_product_first_when_the_trace_intake_is_slow() {
    let spool = Arc::new(Spool::in_memory());
    let (worker, transport, collector) = worker(&spool);
    transport.always("/v1/traces", Step::Slow(Duration::from_secs(4)));
    closed_files(&spool, Queue::Traces, 5);
    collector.queue(Queue::Traces, b"t");
    collector.queue(Queue::Events, b"e");
    collector.queue(Queue::Metrics, b"m");
    let report = worker.final_drain(Duration::from_secs(10)).await;
    let urls: Vec<_> = transport.calls().iter().map(|c| c.url.clone()).collect();
    assert!(urls[0].ends_with("/v1/metrics") && urls[1].ends_with("/v1/logs"));
    // Metrics, events and two trace files within the budget; four trace files left.
    assert_eq!(report.delivered, 4);
    assert_eq!(report.stopped, [(Queue::Traces, Stop::Budget)]);
    assert_eq!(report.undelivered.items, [0, 0, 4, 0]);
    assert_eq!(
        report.losses.describe(),
        "traces: 4 requests in 4 file(s) (not delivered at shutdown)"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rejected_export_at_shutdown_is_not_reported_as_delivered() {
    let spool = Arc::new(Spool::in_memory());
    let (worker, transport, collector) = worker(&spool);
    transport.always("", Step::Status(401));
    collector.queue(Queue::Metrics, b"m");
    collector.queue(Queue::Events, b"e");
    let report = worker.final_drain(Duration::from_secs(10)).await;
    assert_eq!(report.delivered, 0);
    assert!(report.stopped.is_empty());
    assert!(!report.is_complete());
    assert_eq!(
        report.losses.describe(),
        "metrics: 1 requests in 1 file(s) (rejected with HTTP 401); events: 1 events in 1 \
         file(s) (rejected with HTTP 401)"
    );
}

#[test]
fn awc_transport_sends_the_headers_and_reads_the_interval() {
    use std::sync::Mutex;

    use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

    type Seen = Arc<Mutex<Vec<(Vec<(String, String)>, Vec<u8>)>>>;
    let seen: Seen = Arc::default();
    let seen_server = Arc::clone(&seen);
    actix_rt::System::new().block_on(async move {
        let server = HttpServer::new(move || {
            let seen = Arc::clone(&seen_server);
            App::new().route(
                "/v1/{signal}",
                web::post().to(move |req: HttpRequest, apitally_test_hub::RawBody(body)| {
                    let seen = Arc::clone(&seen);
                    async move {
                        let headers = req
                            .headers()
                            .iter()
                            .map(|(k, v)| {
                                (k.to_string(), v.to_str().unwrap_or_default().to_owned())
                            })
                            .collect();
                        seen.lock().unwrap().push((headers, body.to_vec()));
                        HttpResponse::Accepted()
                            .insert_header(("Apitally-Export-Interval", "30"))
                            .body("ok")
                    }
                }),
            )
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        let transport = crate::transport::AwcTransport::new(
            REQUEST_TIMEOUT,
            &crate::transport::NetSettings::default(),
        );
        let headers = ExportHeaders::new(TOKEN, "prod");
        let response = Transport::post(
            &transport,
            &format!("http://127.0.0.1:{port}/v1/traces"),
            &headers.pairs(),
            Bytes::from_static(b"\x1f\x8bbody"),
        )
        .await
        .unwrap();
        assert_eq!(
            response,
            Response {
                status: 202,
                export_interval: Some("30".to_owned()),
                body: "ok".to_owned(),
                ..Response::default()
            }
        );
        handle.stop(false).await;
    });
    let seen = seen.lock().unwrap();
    let (headers, body) = &seen[0];
    assert_eq!(body, b"\x1f\x8bbody");
    let header = |name: &str| {
        let values: Vec<_> = headers.iter().filter(|(k, _)| k == name).collect();
        assert_eq!(values.len(), 1, "{name}: {values:?}");
        values[0].1.clone()
    };
    assert_eq!(header("authorization"), format!("Bearer {TOKEN}"));
    assert_eq!(header("apitally-env"), "prod");
    assert_eq!(header("content-type"), "application/x-protobuf");
    assert_eq!(header("content-encoding"), "gzip");
    assert_eq!(header("user-agent"), USER_AGENT);
    assert_eq!(header("content-length"), "6");
}

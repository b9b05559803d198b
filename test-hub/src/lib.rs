//! A hub server on 127.0.0.1 for the workspace's tests, speaking both protocols: hub v2
//! (`POST /v2/{client_id}/{env}/{startup,sync,log}`) and 1.x, OTLP/HTTP protobuf
//! (`POST /v1/{traces,logs,metrics}`).
//!
//! It runs a real actix-web `HttpServer` on its own thread, records every request it receives
//! (JSON bodies parsed, gzip log files decoded, OTLP exports checked and decoded) and answers
//! `202 Accepted` (v2) or `200 OK` (1.x), or what a test scripted for the next requests to an
//! endpoint. [`TestHub::start_tls`] serves HTTPS with a certificate signed by a CA made for the
//! test. The crate also has a real `CONNECT` proxy ([`TestProxy`]) and a capture of the SDK's
//! log lines ([`capture_logs`]).
//!
//! # 1.x (OTLP)
//!
//! Each `POST /v1/{signal}` is checked as the real server needs it ([`otlp::check_export`]:
//! write token, `Apitally-Env`, content type and encoding, a gzip'd protobuf body); a request
//! that fails is answered `400` with its problems (whatever was scripted) and recorded with
//! them in [`Received::problems`]. The helpers read what was accepted, each body once (the
//! server de-duplicates byte-identical re-sends), as plain values:
//! [`otlp_spans`](TestHub::otlp_spans), [`otlp_log_records`](TestHub::otlp_log_records),
//! [`otlp_histograms`](TestHub::otlp_histograms), [`otlp_gauges`](TestHub::otlp_gauges) and
//! [`otlp_request_counts`](TestHub::otlp_request_counts).
//!
//! ```no_run
//! use apitally_test_hub::{Reply, TestHub};
//! # use std::time::Duration;
//! let hub = TestHub::start();
//! // The app under test exports to `hub.url()` (APITALLY_OTLP_ENDPOINT).
//! hub.script("metrics", [Reply::Status(503)]); // the first metrics export fails
//! assert!(hub.wait_until(Duration::from_secs(30), |_| hub.otlp_request_count(Some("/items")) >= 3));
//! assert!(hub.otlp_problems().is_empty());
//! let server_spans: Vec<_> = hub.otlp_spans().into_iter().filter(|s| s.is_server()).collect();
//! assert_eq!(server_spans[0].str("http.route"), Some("/items"));
//! ```

mod logs;
mod normalized;
pub mod otlp;
mod proxy;
mod tls;

/// The OTLP message types the hub decodes into (prost, no tonic).
pub use opentelemetry_proto;

pub use self::normalized::{ErrorKey, RequestKey, Totals};
pub use self::{
    logs::{capture_logs, CapturedLogs},
    otlp::{OtlpEvent, OtlpExport, OtlpGaugePoint, OtlpHistogramPoint, OtlpLogRecord, OtlpSpan},
    proxy::{ProxyMode, TestProxy},
    tls::TestCa,
};

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    io::Read,
    net::{SocketAddr, TcpListener},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use actix_web::{dev::ServerHandle, web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// How the hub answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Answer with this status and an empty body.
    Status(u16),
    /// Answer with this status and these headers.
    WithHeaders(u16, Vec<(String, String)>),
    /// Answer with this status and JSON body.
    Body(u16, String),
    /// Wait, then answer with this status.
    Delay(Duration, u16),
}

impl Reply {
    fn status(&self) -> u16 {
        match self {
            Reply::Status(s)
            | Reply::WithHeaders(s, _)
            | Reply::Body(s, _)
            | Reply::Delay(_, s) => *s,
        }
    }
}

/// One request the hub received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `startup`, `sync` or `log` (hub v2); `traces`, `logs` or `metrics` (1.x).
    pub endpoint: String,
    /// The client id segment of the URL (hub v2; empty for 1.x).
    pub client_id: String,
    /// The env segment of the URL (hub v2), the `Apitally-Env` header (1.x).
    pub env: String,
    /// The query string.
    pub query: String,
    /// Request headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
    /// The body parsed as JSON (startup and sync).
    pub json: Option<Value>,
    /// The decoded lines of a gzip JSON-lines body (log).
    pub lines: Vec<Value>,
    /// The decoded export (1.x), when the request passed the checks.
    pub otlp: Option<OtlpExport>,
    /// Why the hub answered `400` (1.x); empty when the request passed the checks.
    pub problems: Vec<String>,
    /// The status the hub answered with.
    pub status: u16,
    /// The address the request came from (the proxy's, when it came through one).
    pub peer: Option<SocketAddr>,
    /// When it arrived (before a scripted [`Reply::Delay`]).
    pub at: Instant,
}

impl Received {
    /// Whether the hub accepted it (2xx).
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A header value by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether this is a 1.x export (`/v1/traces`, `/v1/logs` or `/v1/metrics`).
    pub fn is_otlp(&self) -> bool {
        otlp::SIGNALS.contains(&self.endpoint.as_str()) && self.client_id.is_empty()
    }
}

/// Requests with the same method, route, status and consumer, summed over the accepted
/// `http.server.request.duration` points (and the size histograms' points with the same
/// attributes): what a test compares with the traffic it sent.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpRequestCount {
    /// `apitally.consumer.identifier`, when set.
    pub consumer: Option<String>,
    /// `http.request.method`.
    pub method: String,
    /// `http.route`.
    pub route: String,
    /// `http.response.status_code`.
    pub status: u16,
    /// Requests: the summed `count` of the duration points.
    pub count: u64,
    /// The summed `sum` of the duration points, seconds.
    pub duration_sum_s: f64,
    /// The summed `sum` of `http.server.request.body.size`, bytes.
    pub request_size_sum: u64,
    /// The summed `sum` of `http.server.response.body.size`, bytes.
    pub response_size_sum: u64,
}

/// The request-count key of a histogram point: (method, route, status, consumer).
fn request_key(p: &OtlpHistogramPoint) -> (String, String, u16, Option<String>) {
    (
        p.str("http.request.method").unwrap_or_default().to_owned(),
        p.str("http.route").unwrap_or_default().to_owned(),
        p.attributes
            .get("http.response.status_code")
            .and_then(Value::as_u64)
            .map_or(0, |s| s.min(999) as u16),
        p.str("apitally.consumer.identifier").map(str::to_owned),
    )
}

/// Tally key: hub v2 request-log lines in accepted files (each file once).
pub const TALLY_LOG_LINES: &str = "@log-lines";
/// Tally key: SERVER spans (request logs) in accepted 1.x trace exports (each body once).
pub const TALLY_SPANS: &str = "@spans";
/// Tally key: application log records (not Apitally events) in accepted 1.x log exports.
pub const TALLY_LOG_RECORDS: &str = "@log-records";

#[derive(Default)]
struct State {
    /// When set, syncs are only tallied (request counts per path), not kept: for load tests
    /// that watch the process's memory.
    tally_only: std::sync::atomic::AtomicBool,
    tally: Mutex<HashMap<String, u64>>,
    /// SHA-256 of the 1.x metrics bodies tallied, each counted once.
    tallied_bodies: Mutex<HashSet<[u8; 32]>>,
    received: Mutex<Vec<Received>>,
    /// (endpoint, query) of every request as it arrived, before it is answered (not kept
    /// when tallying).
    arrived: Mutex<Vec<(String, String)>>,
    scripts: Mutex<HashMap<String, VecDeque<Reply>>>,
    defaults: Mutex<HashMap<String, Reply>>,
}

/// The running test hub. Stopped on drop.
pub struct TestHub {
    addr: SocketAddr,
    ca: Option<TestCa>,
    state: Arc<State>,
    handle: Option<ServerHandle>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for TestHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHub").field("addr", &self.addr).finish()
    }
}

impl TestHub {
    /// Starts a hub on a free port of 127.0.0.1.
    pub fn start() -> Self {
        Self::start_on(0)
    }

    /// Starts a hub that only tallies `request_count` per path of accepted syncs (each
    /// `message_uuid` once) and, for 1.x, the `http.server.request.duration` counts per route
    /// of accepted metrics exports (each body once), and keeps nothing else, so that its
    /// memory stays flat.
    pub fn start_tallying() -> Self {
        Self::start_tallying_on(0)
    }

    /// [`start_tallying`](Self::start_tallying) on the given port of 127.0.0.1 (0 for any).
    /// Also tallies request-log lines (hub v2), SERVER spans and application log records
    /// (1.x) delivered; scripted replies (such as a slow [`Reply::Delay`]) apply.
    pub fn start_tallying_on(port: u16) -> Self {
        let hub = Self::start_on(port);
        hub.state
            .tally_only
            .store(true, std::sync::atomic::Ordering::Relaxed);
        hub
    }

    /// The tally of a hub from [`start_tallying`](Self::start_tallying) for one path, or for
    /// [`TALLY_LOG_LINES`], [`TALLY_SPANS`] or [`TALLY_LOG_RECORDS`].
    pub fn tallied(&self, path: &str) -> u64 {
        self.state
            .tally
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Starts a hub on the given port of 127.0.0.1 (0 for any free port).
    pub fn start_on(port: u16) -> Self {
        Self::start_with(port, None)
    }

    /// Starts an HTTPS hub on a free port of 127.0.0.1, with a certificate for `127.0.0.1`
    /// and `localhost` signed by a CA made now; [`ca_pem`](Self::ca_pem) is that CA.
    pub fn start_tls() -> Self {
        Self::start_with(0, Some(TestCa::new()))
    }

    /// The PEM of the CA that signed an HTTPS hub's certificate.
    pub fn ca_pem(&self) -> Option<String> {
        self.ca.as_ref().map(TestCa::pem)
    }

    fn start_with(port: u16, ca: Option<TestCa>) -> Self {
        let tls = ca
            .as_ref()
            .map(|ca| ca.server_config(&["127.0.0.1", "localhost"]));
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind test hub");
        let addr = listener.local_addr().expect("test hub address");
        let state = Arc::new(State::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let server_state = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            let system = actix_rt::System::new();
            system.block_on(async move {
                let data = web::Data::from(server_state);
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .app_data(web::PayloadConfig::new(64 << 20))
                        .route("/v2/{client_id}/{env}/{endpoint}", web::post().to(handle))
                        .route("/v1/{signal}", web::post().to(handle_otlp))
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(1);
                let server = match tls {
                    Some(tls) => server.listen_rustls_0_23(listener, tls),
                    None => server.listen(listener),
                }
                .expect("listen")
                .run();
                tx.send(server.handle()).expect("send handle");
                let _ = server.await;
            });
        });
        let handle = rx.recv().expect("test hub started");
        Self {
            addr,
            ca,
            state,
            handle: Some(handle),
            thread: Some(thread),
        }
    }

    /// The base URL to configure the client with, e.g. `http://127.0.0.1:41234` (`https://`
    /// for a hub from [`start_tls`](Self::start_tls)).
    pub fn url(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The port the hub listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The next requests to `endpoint` (`startup`, `sync` or `log`; `traces`, `logs` or
    /// `metrics` for 1.x) get these replies, in order; after them, the default. A 1.x request
    /// that fails the checks is answered `400` and does not use up a reply.
    pub fn script(&self, endpoint: &str, replies: impl IntoIterator<Item = Reply>) {
        self.state
            .scripts
            .lock()
            .unwrap()
            .entry(endpoint.to_owned())
            .or_default()
            .extend(replies);
    }

    /// The reply for `endpoint` once its script is used up (initially `202`, `200` for 1.x).
    pub fn set_default(&self, endpoint: &str, reply: Reply) {
        self.state
            .defaults
            .lock()
            .unwrap()
            .insert(endpoint.to_owned(), reply);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// The query strings of the requests to `endpoint` in the order they arrived, recorded
    /// before the hub answers (and before a scripted [`Reply::Delay`]): a request the client
    /// stopped waiting for is here even when [`received`](Self::received) never gets it. A
    /// tallying hub keeps none.
    pub fn arrivals(&self, endpoint: &str) -> Vec<String> {
        self.state
            .arrived
            .lock()
            .unwrap()
            .iter()
            .filter(|(e, _)| e == endpoint)
            .map(|(_, q)| q.clone())
            .collect()
    }

    /// Received requests to `endpoint`.
    pub fn received_at(&self, endpoint: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.endpoint == endpoint)
            .collect()
    }

    /// The JSON of sync payloads the hub accepted, each `message_uuid` once (as the real hub
    /// de-duplicates).
    pub fn accepted_syncs(&self) -> Vec<Value> {
        let mut seen = std::collections::HashSet::new();
        self.received_at("sync")
            .into_iter()
            .filter(|r| r.accepted())
            .filter_map(|r| r.json)
            .filter(|j| seen.insert(j["message_uuid"].as_str().unwrap_or_default().to_owned()))
            .collect()
    }

    /// The sum of `request_count` over accepted syncs, optionally for one path only.
    pub fn request_count(&self, path: Option<&str>) -> u64 {
        self.accepted_syncs()
            .iter()
            .flat_map(|s| s["requests"].as_array().cloned().unwrap_or_default())
            .filter(|r| path.is_none_or(|p| r["path"] == p))
            .map(|r| r["request_count"].as_u64().unwrap_or(0))
            .sum()
    }

    /// The 1.x exports of `signal` (`traces`, `logs` or `metrics`) the hub accepted (2xx), in
    /// arrival order, each body once: a byte-identical re-send (the SDK's retry after a
    /// timeout or a lost answer) is skipped, as the real server de-duplicates retries.
    pub fn accepted_otlp(&self, signal: &str) -> Vec<Received> {
        let mut seen = HashSet::new();
        self.received_at(signal)
            .into_iter()
            .filter(|r| r.is_otlp() && r.accepted() && r.otlp.is_some())
            .filter(|r| seen.insert(<[u8; 32]>::from(Sha256::digest(&r.body))))
            .collect()
    }

    /// The problems of every 1.x request the hub answered `400`, each prefixed with its
    /// signal (`traces: ...`); empty when every export passed the checks.
    pub fn otlp_problems(&self) -> Vec<String> {
        self.received()
            .into_iter()
            .filter(Received::is_otlp)
            .flat_map(|r| {
                let signal = r.endpoint.clone();
                r.problems
                    .into_iter()
                    .map(move |p| format!("{signal}: {p}"))
            })
            .collect()
    }

    fn accepted_exports(&self, signal: &str) -> impl Iterator<Item = OtlpExport> {
        self.accepted_otlp(signal)
            .into_iter()
            .filter_map(|r| r.otlp)
    }

    /// Every span of the accepted traces exports (each body once), in arrival order.
    pub fn otlp_spans(&self) -> Vec<OtlpSpan> {
        self.accepted_exports("traces")
            .flat_map(|e| e.spans())
            .collect()
    }

    /// Every log record of the accepted logs exports (each body once): the Apitally events
    /// (`event_name` set) and application log records, in arrival order.
    pub fn otlp_log_records(&self) -> Vec<OtlpLogRecord> {
        self.accepted_exports("logs")
            .flat_map(|e| e.log_records())
            .collect()
    }

    /// The accepted log records whose event name is `name` (such as `apitally.app.startup`).
    pub fn otlp_events(&self, name: &str) -> Vec<OtlpLogRecord> {
        self.otlp_log_records()
            .into_iter()
            .filter(|r| r.event_name.as_deref() == Some(name))
            .collect()
    }

    /// Every exponential-histogram point of the accepted metrics exports (each body once), in
    /// arrival order.
    pub fn otlp_histograms(&self) -> Vec<OtlpHistogramPoint> {
        self.accepted_exports("metrics")
            .flat_map(|e| e.histogram_points())
            .collect()
    }

    /// Every gauge point of the accepted metrics exports (each body once), in arrival order.
    pub fn otlp_gauges(&self) -> Vec<OtlpGaugePoint> {
        self.accepted_exports("metrics")
            .flat_map(|e| e.gauge_points())
            .collect()
    }

    /// Per (method, route, status, consumer), the requests counted by the accepted
    /// `http.server.request.duration` points and the summed sums of the duration and the two
    /// size histograms, sorted by method, route, status and consumer.
    pub fn otlp_request_counts(&self) -> Vec<OtlpRequestCount> {
        let mut counts: BTreeMap<_, OtlpRequestCount> = BTreeMap::new();
        for p in self.otlp_histograms() {
            let key = request_key(&p);
            let entry = counts
                .entry(key.clone())
                .or_insert_with(|| OtlpRequestCount {
                    method: key.0,
                    route: key.1,
                    status: key.2,
                    consumer: key.3,
                    count: 0,
                    duration_sum_s: 0.0,
                    request_size_sum: 0,
                    response_size_sum: 0,
                });
            let sum = p.sum.unwrap_or(0.0);
            match p.metric.as_str() {
                "http.server.request.duration" => {
                    entry.count += p.count;
                    entry.duration_sum_s += sum;
                }
                "http.server.request.body.size" => entry.request_size_sum += sum.round() as u64,
                "http.server.response.body.size" => entry.response_size_sum += sum.round() as u64,
                _ => {}
            }
        }
        counts.into_values().filter(|c| c.count > 0).collect()
    }

    /// The requests counted by accepted 1.x metrics, optionally for one route only (the 1.x
    /// counterpart of [`request_count`](Self::request_count)).
    pub fn otlp_request_count(&self, route: Option<&str>) -> u64 {
        self.otlp_request_counts()
            .iter()
            .filter(|c| route.is_none_or(|r| c.route == r))
            .map(|c| c.count)
            .sum()
    }

    /// Polls until `pred` holds for what was received, or `timeout` passes; returns whether it held.
    pub fn wait_until(&self, timeout: Duration, pred: impl Fn(&[Received]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            // Copy first: `pred` may call back into the hub.
            let received = self.received();
            if pred(&received) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(handle) = self.handle.take() {
            // The stop command is sent when `stop` is called; the server's own thread then
            // ends, which `join` below waits for. (Blocking on the future here would fail
            // inside a test's runtime.)
            drop(handle.stop(false));
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn handle(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    RawBody(body): RawBody,
    state: web::Data<State>,
) -> HttpResponse {
    let at = Instant::now();
    let (client_id, env, endpoint) = path.into_inner();
    let reply = state
        .scripts
        .lock()
        .unwrap()
        .get_mut(&endpoint)
        .and_then(VecDeque::pop_front)
        .or_else(|| state.defaults.lock().unwrap().get(&endpoint).cloned())
        .unwrap_or(Reply::Status(202));
    if state.tally_only.load(std::sync::atomic::Ordering::Relaxed) {
        if let Reply::Delay(wait, _) = &reply {
            actix_rt::time::sleep(*wait).await;
        }
        if !(200..300).contains(&reply.status()) {
            return respond(reply, false);
        }
        if endpoint == "log" {
            // Request-log lines delivered, each file once (a re-sent file has the same bytes).
            let first = state
                .tallied_bodies
                .lock()
                .unwrap()
                .insert(Sha256::digest(&body).into());
            if first {
                let mut text = String::new();
                let _ = flate2::read::MultiGzDecoder::new(&body[..]).read_to_string(&mut text);
                *state
                    .tally
                    .lock()
                    .unwrap()
                    .entry(TALLY_LOG_LINES.to_owned())
                    .or_default() += text.lines().count() as u64;
            }
        } else if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) {
            let mut tally = state.tally.lock().unwrap();
            let uuid = format!("uuid:{}", json["message_uuid"].as_str().unwrap_or_default());
            if endpoint == "sync" && !tally.contains_key(&uuid) {
                tally.insert(uuid, 1);
                for r in json["requests"].as_array().into_iter().flatten() {
                    *tally
                        .entry(r["path"].as_str().unwrap_or_default().to_owned())
                        .or_default() += r["request_count"].as_u64().unwrap_or(0);
                }
            }
        }
        return respond(reply, false);
    }
    state
        .arrived
        .lock()
        .unwrap()
        .push((endpoint.clone(), req.query_string().to_owned()));
    let json = serde_json::from_slice(&body).ok();
    let lines = if endpoint == "log" {
        let mut text = String::new();
        let _ = flate2::read::MultiGzDecoder::new(&body[..]).read_to_string(&mut text);
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    } else {
        Vec::new()
    };
    if let Reply::Delay(wait, _) = &reply {
        actix_rt::time::sleep(*wait).await;
    }
    state.received.lock().unwrap().push(Received {
        endpoint,
        client_id,
        env,
        query: req.query_string().to_owned(),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        json,
        lines,
        otlp: None,
        problems: Vec::new(),
        status: reply.status(),
        peer: req.peer_addr(),
        at,
    });
    respond(reply, false)
}

/// The response for `reply`. For 1.x, a 2xx without a body of its own carries an empty
/// `Export*ServiceResponse` (zero bytes of protobuf), as OTLP/HTTP answers success.
fn respond(reply: Reply, otlp: bool) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(reply.status()).unwrap();
    let mut response = HttpResponse::build(status);
    if otlp && status.is_success() && !matches!(reply, Reply::Body(..)) {
        response.content_type("application/x-protobuf");
    }
    match reply {
        Reply::WithHeaders(_, headers) => {
            for (name, value) in headers {
                response.insert_header((name, value));
            }
            response.finish()
        }
        Reply::Body(_, body) => response.content_type("application/json").body(body),
        _ => response.finish(),
    }
}

fn headers_of(req: &HttpRequest) -> Vec<(String, String)> {
    req.headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// `POST /v1/{signal}`: checked, then answered as scripted (or `200`); `400` with the
/// problems when the checks fail.
async fn handle_otlp(
    req: HttpRequest,
    signal: web::Path<String>,
    RawBody(body): RawBody,
    state: web::Data<State>,
) -> HttpResponse {
    let at = Instant::now();
    let endpoint = signal.into_inner();
    if !otlp::SIGNALS.contains(&endpoint.as_str()) {
        return HttpResponse::NotFound().body(format!("no signal {endpoint:?}"));
    }
    let headers = headers_of(&req);
    let checked = otlp::check_export(&endpoint, &headers, &body);
    let reply = match &checked {
        Ok(_) => state
            .scripts
            .lock()
            .unwrap()
            .get_mut(&endpoint)
            .and_then(VecDeque::pop_front)
            .or_else(|| state.defaults.lock().unwrap().get(&endpoint).cloned())
            .unwrap_or(Reply::Status(200)),
        Err(problems) => Reply::Body(400, serde_json::json!({ "detail": problems }).to_string()),
    };
    if let Reply::Delay(wait, _) = &reply {
        actix_rt::time::sleep(*wait).await;
    }
    if state.tally_only.load(std::sync::atomic::Ordering::Relaxed) {
        if let (Ok(c), true) = (&checked, (200..300).contains(&reply.status())) {
            let first = state
                .tallied_bodies
                .lock()
                .unwrap()
                .insert(Sha256::digest(&body).into());
            if first {
                let mut tally = state.tally.lock().unwrap();
                for p in c.export.histogram_points() {
                    if p.metric == "http.server.request.duration" {
                        *tally.entry(request_key(&p).1).or_default() += p.count;
                    }
                }
                let spans = c.export.spans().iter().filter(|s| s.is_server()).count();
                *tally.entry(TALLY_SPANS.to_owned()).or_default() += spans as u64;
                let records = c
                    .export
                    .log_records()
                    .iter()
                    .filter(|r| r.event_name.is_none())
                    .count();
                *tally.entry(TALLY_LOG_RECORDS.to_owned()).or_default() += records as u64;
            }
        }
        return respond(reply, true);
    }
    let (otlp, problems) = match checked {
        Ok(c) => (Some(c.export), Vec::new()),
        Err(problems) => (None, problems),
    };
    state.received.lock().unwrap().push(Received {
        endpoint,
        client_id: String::new(),
        env: headers
            .iter()
            .find(|(n, _)| n == "apitally-env")
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
        query: req.query_string().to_owned(),
        headers,
        body: body.to_vec(),
        json: None,
        lines: Vec::new(),
        otlp,
        problems,
        status: reply.status(),
        peer: req.peer_addr(),
        at,
    });
    respond(reply, true)
}

/// A request body exactly as it was sent. actix-web's `Bytes` extractor decodes a
/// `Content-Encoding: gzip` body when actix-web's `compress-gzip` feature is on (and a
/// workspace-wide build turns it on for every crate): a hub must see what the client sent.
#[derive(Debug, Clone)]
pub struct RawBody(pub web::Bytes);

impl actix_web::FromRequest for RawBody {
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        // The raw stream (`web::Payload` takes it undecoded).
        let raw = <web::Payload as actix_web::FromRequest>::from_request(req, payload);
        Box::pin(async move {
            let body = raw
                .await?
                .to_bytes_limited(64 << 20)
                .await
                .map_err(|_| actix_web::error::ErrorPayloadTooLarge("over 64 MiB"))??;
            Ok(RawBody(body))
        })
    }
}

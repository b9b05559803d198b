//! What the hub received, aggregated per app (client id / env), in protocol-neutral terms.
//!
//! Every receiver calls the ingest functions here with [`crate::model`] values; the page, the
//! JSON endpoints and the terminal summary read only what is kept here. Everything is bounded:
//! apps, endpoints, consumers, distinct errors, histogram buckets, minutes, request logs and raw
//! messages.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use serde::Serialize;
use serde_json::Value;

use crate::model::{
    Attached, Attachment, Bucket, ConsumerInfo, Metrics, Received, RequestLog, RequestLogTotals,
    Resources, ServerError, Startup, ValidationError,
};

/// Request logs kept per app, the newest by request time.
pub(crate) const KEEP_LOGS: usize = 200;
/// Minutes of the per-minute series kept per app, counted back from the newest.
pub(crate) const KEEP_MINUTES: i64 = 120;
/// Raw messages kept per app for the "what left the app" view.
const KEEP_RECEIVED: usize = 10;
const KEEP_REJECTED: usize = 50;
const KEEP_MESSAGE_IDS: usize = 10_000;
const MAX_APPS: usize = 20;
const MAX_ENDPOINTS: usize = 500;
const MAX_CONSUMERS: usize = 1_000;
const MAX_DISTINCT_ERRORS: usize = 500;
const MAX_BUCKETS: usize = 2_000;
/// Spans and log records waiting for their request log, per app.
const KEEP_PENDING: usize = 2_000;
/// Spans, and log records, kept per request log (as many as the SDKs send at most).
const MAX_PER_REQUEST: usize = 1_000;

/// Where requests beyond [`MAX_ENDPOINTS`] are counted.
const OTHER_ENDPOINTS: (&str, &str) = ("*", "(more endpoints than the local hub keeps)");
/// Where consumers beyond [`MAX_CONSUMERS`] are counted.
const OTHER_CONSUMERS: &str = "(more consumers than the local hub keeps)";

/// The current time as Unix seconds.
pub(crate) fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Request counts split by outcome.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Counts {
    pub(crate) requests: u64,
    /// Status 400 to 499.
    pub(crate) client_errors: u64,
    /// Status 500 and above.
    pub(crate) server_errors: u64,
}

impl Counts {
    fn add(&mut self, status: u16, n: u64) {
        self.requests += n;
        match status {
            400..=499 => self.client_errors += n,
            500.. => self.server_errors += n,
            _ => {}
        }
    }

    pub(crate) fn errors(&self) -> u64 {
        self.client_errors + self.server_errors
    }
}

/// A response-time range, ms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Range {
    pub(crate) lower_ms: f64,
    pub(crate) upper_ms: f64,
}

/// Response-time buckets merged by their exact bounds, in order.
#[derive(Debug, Default, Clone)]
pub(crate) struct Histogram {
    /// Keyed by the bit patterns of `(lower_ms, upper_ms)`: for finite non-negative floats
    /// these order like the numbers.
    buckets: BTreeMap<(u64, u64), u64>,
}

impl Histogram {
    fn add(&mut self, b: &Bucket) {
        if !(b.lower_ms.is_finite() && b.upper_ms.is_finite()) || b.lower_ms < 0.0 {
            return;
        }
        let key = (b.lower_ms.to_bits(), b.upper_ms.max(b.lower_ms).to_bits());
        let key = if self.buckets.len() >= MAX_BUCKETS && !self.buckets.contains_key(&key) {
            // Full: count it in the nearest kept bucket below (or the first).
            match self.buckets.range(..key).next_back() {
                Some((k, _)) => *k,
                None => *self.buckets.keys().next().unwrap_or(&key),
            }
        } else {
            key
        };
        *self.buckets.entry(key).or_default() += b.count;
    }

    fn merge(&mut self, other: &Histogram) {
        for b in other.buckets() {
            self.add(&b);
        }
    }

    pub(crate) fn buckets(&self) -> impl Iterator<Item = Bucket> + '_ {
        self.buckets.iter().map(|((l, u), count)| Bucket {
            lower_ms: f64::from_bits(*l),
            upper_ms: f64::from_bits(*u),
            count: *count,
        })
    }

    /// The bucket holding the `p` quantile (0 < p ≤ 1), if any request was counted.
    pub(crate) fn percentile(&self, p: f64) -> Option<Range> {
        let total: u64 = self.buckets.values().sum();
        if total == 0 {
            return None;
        }
        let target = ((total as f64) * p).ceil().max(1.0) as u64;
        let mut seen = 0;
        self.buckets()
            .find(|b| {
                seen += b.count;
                seen >= target
            })
            .map(|b| Range {
                lower_ms: b.lower_ms,
                upper_ms: b.upper_ms,
            })
    }
}

/// One route of an app.
#[derive(Debug, Default)]
pub(crate) struct Endpoint {
    /// Listed by the app when it started.
    pub(crate) declared: bool,
    pub(crate) counts: Counts,
    pub(crate) statuses: BTreeMap<u16, u64>,
    pub(crate) response_times: Histogram,
    pub(crate) request_bytes: u64,
    pub(crate) response_bytes: u64,
}

/// One consumer of an app.
#[derive(Debug, Default)]
pub(crate) struct Consumer {
    pub(crate) name: Option<String>,
    pub(crate) group: Option<String>,
    pub(crate) counts: Counts,
}

/// A message the hub refused, with why.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Rejection {
    /// Unix seconds.
    pub(crate) at: f64,
    pub(crate) kind: String,
    pub(crate) problems: Vec<String>,
}

/// Everything kept for one app.
#[derive(Debug, Default)]
pub(crate) struct App {
    /// How the app reports: `hub v2` or `OTLP 1.x` (the latest seen).
    pub(crate) protocol: Option<&'static str>,
    pub(crate) client: Option<String>,
    pub(crate) versions: BTreeMap<String, String>,
    pub(crate) instances: BTreeSet<String>,
    message_ids: HashSet<String>,
    message_id_order: VecDeque<String>,
    /// Metrics batches accepted (hub v2: syncs; OTLP: collections).
    pub(crate) batches: u64,
    /// Messages recognised as re-sent (hub v2: syncs; OTLP: exports of any signal).
    pub(crate) duplicates: u64,
    pub(crate) endpoints: BTreeMap<(String, String), Endpoint>,
    /// Per minute (Unix seconds / 60).
    pub(crate) minutes: BTreeMap<i64, Counts>,
    pub(crate) consumers: BTreeMap<String, Consumer>,
    pub(crate) validation_errors: BTreeMap<ValidationError, u64>,
    pub(crate) server_errors: BTreeMap<ServerError, u64>,
    pub(crate) resources: Option<Resources>,
    /// Newest first by request time.
    pub(crate) request_logs: Vec<RequestLog>,
    /// Request-log batches received (hub v2: files; OTLP: traces exports).
    pub(crate) log_batches: u64,
    /// The latest request-log totals of each process (by instance id; `""` when a post named
    /// none), from the `Apitally-Request-Logs` header.
    pub(crate) log_totals: BTreeMap<String, RequestLogTotals>,
    /// Spans and log records whose request log has not arrived (yet), oldest first.
    pending: VecDeque<Attachment>,
    /// The latest raw messages, oldest first.
    pub(crate) received: VecDeque<Received>,
    /// The latest raw message of each kind.
    pub(crate) latest: BTreeMap<&'static str, Value>,
    pub(crate) rejected: VecDeque<Rejection>,
}

impl App {
    fn instance(&mut self, instance: Option<String>) {
        if let Some(id) = instance {
            if self.instances.len() < MAX_CONSUMERS {
                self.instances.insert(id);
            }
        }
    }

    fn endpoint(&mut self, method: &str, route: &str) -> &mut Endpoint {
        let key = (method.to_owned(), route.to_owned());
        // The last place is kept for all the others.
        let key = if self.endpoints.len() + 1 >= MAX_ENDPOINTS && !self.endpoints.contains_key(&key)
        {
            (OTHER_ENDPOINTS.0.to_owned(), OTHER_ENDPOINTS.1.to_owned())
        } else {
            key
        };
        self.endpoints.entry(key).or_default()
    }

    fn consumer(&mut self, identifier: &str) -> &mut Consumer {
        let id = if self.consumers.len() + 1 >= MAX_CONSUMERS
            && !self.consumers.contains_key(identifier)
        {
            OTHER_CONSUMERS
        } else {
            identifier
        };
        self.consumers.entry(id.to_owned()).or_default()
    }

    /// Whether a message with this id arrives for the first time (remembers it).
    fn first_delivery(&mut self, id: &str) -> bool {
        if !self.message_ids.insert(id.to_owned()) {
            return false;
        }
        self.message_id_order.push_back(id.to_owned());
        if self.message_id_order.len() > KEEP_MESSAGE_IDS {
            if let Some(old) = self.message_id_order.pop_front() {
                self.message_ids.remove(&old);
            }
        }
        true
    }

    /// The kept request log `a` belongs to: the one it names, else one of its trace holding
    /// the span it is near, else the first of its trace.
    fn request_log_for(&self, a: &Attachment) -> Option<usize> {
        if let Some(id) = &a.request_id {
            return self.request_logs.iter().position(|l| &l.id == id);
        }
        let same_trace = |l: &RequestLog| l.trace_id.as_deref() == Some(a.trace_id.as_str());
        a.near_span
            .as_ref()
            .and_then(|near| {
                self.request_logs
                    .iter()
                    .position(|l| same_trace(l) && l.spans.iter().any(|s| &s.id == near))
            })
            .or_else(|| self.request_logs.iter().position(same_trace))
    }

    /// Adds `a` to its request log; gives it back when that is not kept.
    fn attach(&mut self, a: Attachment) -> Option<Attachment> {
        let Some(i) = self.request_log_for(&a) else {
            return Some(a);
        };
        let log = &mut self.request_logs[i];
        match a.item {
            Attached::Span(span) => {
                if log.spans.len() < MAX_PER_REQUEST && !log.spans.iter().any(|s| s.id == span.id) {
                    let at = log.spans.partition_point(|s| s.start <= span.start);
                    log.spans.insert(at, span);
                }
            }
            Attached::Log(record) => {
                if log.logs.len() < MAX_PER_REQUEST {
                    let at = log
                        .logs
                        .partition_point(|l| l.time.unwrap_or(0.0) <= record.time.unwrap_or(0.0));
                    log.logs.insert(at, record);
                }
            }
        }
        None
    }

    /// Attaches what was waiting for request logs that arrived since.
    fn attach_pending(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for a in pending {
            if let Some(a) = self.attach(a) {
                self.pending.push_back(a);
            }
        }
    }

    /// The request-log totals summed over the app's processes; `None` when no post carried
    /// them (request logging is off, or an SDK that does not send them).
    pub(crate) fn request_log_totals(&self) -> Option<RequestLogTotals> {
        if self.log_totals.is_empty() {
            return None;
        }
        let mut sum = RequestLogTotals::default();
        for t in self.log_totals.values() {
            sum.add(t);
        }
        Some(sum)
    }

    /// All response times of the app.
    pub(crate) fn response_times(&self) -> Histogram {
        let mut all = Histogram::default();
        for e in self.endpoints.values() {
            all.merge(&e.response_times);
        }
        all
    }
}

/// Everything the hub received, per app.
#[derive(Debug)]
pub(crate) struct State {
    /// When the hub started, Unix seconds.
    pub(crate) started_at: f64,
    /// Bumped on every change, so the page can skip unchanged data.
    pub(crate) revision: u64,
    pub(crate) apps: BTreeMap<String, App>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            started_at: now(),
            revision: 0,
            apps: BTreeMap::new(),
        }
    }
}

fn add_bounded<K: Ord>(map: &mut BTreeMap<K, u64>, key: K, n: u64) {
    if map.len() < MAX_DISTINCT_ERRORS || map.contains_key(&key) {
        *map.entry(key).or_default() += n;
    }
}

impl State {
    /// The app's entry, created on first use; `None` once [`MAX_APPS`] other apps exist.
    fn app(&mut self, app: &str) -> Option<&mut App> {
        self.revision += 1;
        if self.apps.len() >= MAX_APPS && !self.apps.contains_key(app) {
            return None;
        }
        Some(self.apps.entry(app.to_owned()).or_default())
    }

    /// Notes how the app reports.
    pub(crate) fn protocol(&mut self, app: &str, protocol: &'static str) {
        if let Some(a) = self.app(app) {
            a.protocol = Some(protocol);
        }
    }

    /// Whether the message with this id (such as a hash of its body) arrives for the first
    /// time; a repeat is counted as a duplicate.
    pub(crate) fn first_delivery(&mut self, app: &str, id: &str) -> bool {
        let Some(a) = self.app(app) else { return false };
        if a.first_delivery(id) {
            return true;
        }
        a.duplicates += 1;
        false
    }

    /// An app started: who it is and which routes it serves.
    pub(crate) fn startup(&mut self, app: &str, startup: Startup) {
        let Some(a) = self.app(app) else { return };
        a.instance(startup.instance);
        if startup.client.is_some() {
            a.client = startup.client;
        }
        if !startup.versions.is_empty() {
            a.versions = startup.versions;
        }
        for (method, route) in startup.endpoints {
            a.endpoint(&method, &route).declared = true;
        }
    }

    /// Takes a batch of metrics. With a `message_id`, a batch seen before is counted as a
    /// duplicate and otherwise ignored; returns whether it was taken.
    pub(crate) fn metrics(&mut self, app: &str, message_id: Option<&str>, m: Metrics) -> bool {
        let now = now();
        let Some(a) = self.app(app) else { return false };
        if let Some(id) = message_id {
            if !a.first_delivery(id) {
                a.duplicates += 1;
                return false;
            }
        }
        a.batches += 1;
        a.instance(m.instance);
        // Timestamps from the future (clock skew) count now.
        let minute = (m.at.min(now) / 60.0).floor() as i64;
        for r in &m.requests {
            let e = a.endpoint(&r.method, &r.route);
            e.counts.add(r.status, r.count);
            *e.statuses.entry(r.status).or_default() += r.count;
            e.request_bytes += r.request_size_sum;
            e.response_bytes += r.response_size_sum;
            for b in &r.response_times {
                e.response_times.add(b);
            }
            a.minutes.entry(minute).or_default().add(r.status, r.count);
            if let Some(c) = &r.consumer {
                a.consumer(c).counts.add(r.status, r.count);
            }
        }
        if let Some(newest) = a.minutes.keys().next_back().copied() {
            a.minutes = a.minutes.split_off(&(newest - KEEP_MINUTES + 1));
        }
        if m.resources.is_some() {
            a.resources = m.resources;
        }
        self.events(app, m.validation_errors, m.server_errors, m.consumers);
        true
    }

    /// Takes counted errors and consumer data that arrive apart from request counts (OTLP
    /// sends them as log events; hub v2 inside each sync).
    pub(crate) fn events(
        &mut self,
        app: &str,
        validation_errors: Vec<(ValidationError, u64)>,
        server_errors: Vec<(ServerError, u64)>,
        consumers: Vec<ConsumerInfo>,
    ) {
        let Some(a) = self.app(app) else { return };
        for (v, n) in validation_errors {
            add_bounded(&mut a.validation_errors, v, n);
        }
        for (s, n) in server_errors {
            add_bounded(&mut a.server_errors, s, n);
        }
        for ConsumerInfo {
            identifier,
            name,
            group,
        } in consumers
        {
            let c = a.consumer(&identifier);
            c.name = name;
            c.group = group;
        }
    }

    /// Takes request logs, keeping the newest [`KEEP_LOGS`] by request time. A log whose id is
    /// already kept (a re-sent batch) is skipped.
    pub(crate) fn request_logs(&mut self, app: &str, logs: Vec<RequestLog>) {
        let Some(a) = self.app(app) else { return };
        a.log_batches += 1;
        for log in logs {
            if a.request_logs.iter().any(|l| l.id == log.id) {
                continue;
            }
            let at = a.request_logs.partition_point(|l| l.time >= log.time);
            a.request_logs.insert(at, log);
            a.request_logs.truncate(KEEP_LOGS);
        }
        if !a.pending.is_empty() {
            a.attach_pending();
        }
    }

    /// Adds spans and log records to their request logs; those whose request log is not kept
    /// wait for it (the latest [`KEEP_PENDING`]).
    pub(crate) fn attach(&mut self, app: &str, items: Vec<Attachment>) {
        let Some(a) = self.app(app) else { return };
        for item in items {
            if let Some(waiting) = a.attach(item) {
                a.pending.push_back(waiting);
                if a.pending.len() > KEEP_PENDING {
                    a.pending.pop_front();
                }
            }
        }
    }

    /// Takes a process's request-log totals, sent with a post of `instance`.
    pub(crate) fn log_totals(
        &mut self,
        app: &str,
        instance: Option<String>,
        totals: RequestLogTotals,
    ) {
        let Some(a) = self.app(app) else { return };
        let instance = instance.unwrap_or_default();
        if a.log_totals.len() >= MAX_CONSUMERS && !a.log_totals.contains_key(&instance) {
            return;
        }
        a.log_totals.entry(instance).or_default().merge(totals);
    }

    /// Keeps a message as received, for the "what left the app" view.
    pub(crate) fn received(&mut self, app: &str, message: Received) {
        let Some(a) = self.app(app) else { return };
        a.latest.insert(message.kind, message.body.clone());
        a.received.push_back(message);
        while a.received.len() > KEEP_RECEIVED {
            a.received.pop_front();
        }
    }

    /// Notes a message the hub refused.
    pub(crate) fn rejected(&mut self, app: &str, kind: &str, problems: &[String]) {
        let Some(a) = self.app(app) else { return };
        a.rejected.push_back(Rejection {
            at: now(),
            kind: kind.to_owned(),
            problems: problems.to_vec(),
        });
        while a.rejected.len() > KEEP_REJECTED {
            a.rejected.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Message, RequestCounts, Span};

    fn bucket(lower_ms: f64, upper_ms: f64, count: u64) -> Bucket {
        Bucket {
            lower_ms,
            upper_ms,
            count,
        }
    }

    fn counts(route: &str, status: u16, count: u64, consumer: Option<&str>) -> RequestCounts {
        RequestCounts {
            method: "GET".into(),
            route: route.into(),
            status,
            consumer: consumer.map(Into::into),
            count,
            request_size_sum: 0,
            response_size_sum: 10 * count,
            response_times: vec![bucket(0.0, 10.0, count)],
        }
    }

    fn log(id: &str, time: f64) -> RequestLog {
        RequestLog {
            id: id.into(),
            time,
            method: "GET".into(),
            url: "http://x/a".into(),
            path: "/a".into(),
            route: None,
            status: 200,
            duration_ms: 1.0,
            consumer: None,
            request: Message::default(),
            response: Message::default(),
            exception: None,
            logs: vec![],
            spans: vec![],
            trace_id: None,
            original: Value::Null,
        }
    }

    #[test]
    fn percentiles_name_the_bucket() {
        let mut h = Histogram::default();
        assert_eq!(h.percentile(0.5), None);
        h.add(&bucket(0.0, 10.0, 8));
        h.add(&bucket(120.0, 130.0, 2));
        h.add(&bucket(0.0, 10.0, 1));
        let r = |l, u| {
            Some(Range {
                lower_ms: l,
                upper_ms: u,
            })
        };
        assert_eq!(h.percentile(0.5), r(0.0, 10.0));
        assert_eq!(h.percentile(0.8), r(0.0, 10.0)); // 9 of 11 under 10 ms
        assert_eq!(h.percentile(0.95), r(120.0, 130.0));
        assert_eq!(h.buckets().count(), 2);
    }

    #[test]
    fn minutes_duplicates_and_consumers() {
        let mut s = State::default();
        let at = s.started_at;
        let m = |at: f64| Metrics {
            at,
            requests: vec![
                counts("/a", 200, 3, Some("c1")),
                counts("/a", 404, 2, Some("c1")),
                counts("/b", 500, 1, None),
            ],
            ..Metrics::default()
        };
        assert!(s.metrics("x/dev", Some("m1"), m(at - 60.0)));
        assert!(!s.metrics("x/dev", Some("m1"), m(at - 60.0)));
        assert!(s.metrics("x/dev", Some("m2"), m(at)));
        // From the future: counted now.
        assert!(s.metrics("x/dev", None, m(at + 3600.0)));
        let a = &s.apps["x/dev"];
        assert_eq!((a.batches, a.duplicates), (3, 1));
        assert_eq!(a.minutes.len(), 2, "{:?}", a.minutes);
        let total: u64 = a.minutes.values().map(|c| c.requests).sum();
        assert_eq!(total, 18);
        let e = &a.endpoints[&("GET".into(), "/a".into())];
        assert_eq!(
            e.counts,
            Counts {
                requests: 15,
                client_errors: 6,
                server_errors: 0
            }
        );
        assert_eq!(e.statuses[&404], 6);
        assert_eq!(a.consumers["c1"].counts.requests, 15);
    }

    fn span(id: &str, parent: Option<&str>, start: f64) -> Span {
        Span {
            id: id.into(),
            parent_id: parent.map(Into::into),
            name: id.into(),
            kind: None,
            start,
            end: start + 0.001,
            status: None,
            attributes: vec![],
        }
    }

    fn traced(id: &str, trace: &str, time: f64) -> RequestLog {
        RequestLog {
            trace_id: Some(trace.into()),
            spans: vec![span(id, None, time)],
            ..log(id, time)
        }
    }

    fn child(trace: &str, id: &str, parent: &str, start: f64) -> Attachment {
        Attachment {
            trace_id: trace.into(),
            request_id: None,
            near_span: Some(parent.into()),
            item: Attached::Span(span(id, Some(parent), start)),
        }
    }

    #[test]
    fn spans_and_logs_find_their_request_log_in_any_order() {
        use crate::model::LogRecord;
        let mut s = State::default();
        let record = |request: &str| Attachment {
            trace_id: "t1".into(),
            request_id: Some(request.into()),
            near_span: None,
            item: Attached::Log(LogRecord {
                time: Some(1.0),
                level: "INFO".into(),
                logger: None,
                message: format!("for {request}"),
                location: None,
            }),
        };
        // Before their request logs: they wait.
        s.attach("x/dev", vec![record("b"), child("t1", "b1", "b", 2.0)]);
        assert_eq!(s.apps["x/dev"].pending.len(), 2);
        // Two requests of one trace (the app called itself): each gets its own.
        s.request_logs(
            "x/dev",
            vec![traced("a", "t1", 1.0), traced("b", "t1", 2.0)],
        );
        s.attach(
            "x/dev",
            vec![
                child("t1", "a1", "a", 1.1),
                child("t1", "a2", "a1", 1.05),
                // Re-sent: kept once.
                child("t1", "a1", "a", 1.1),
                child("t9", "z", "zz", 1.0),
            ],
        );
        let a = &s.apps["x/dev"];
        let by_id = |id: &str| a.request_logs.iter().find(|l| l.id == id).unwrap();
        let names = |l: &RequestLog| l.spans.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
        assert_eq!(names(by_id("a")), ["a", "a2", "a1"], "by start time");
        assert_eq!(names(by_id("b")), ["b", "b1"]);
        assert_eq!(by_id("b").logs[0].message, "for b");
        assert!(by_id("a").logs.is_empty());
        assert_eq!(a.pending.len(), 1, "the span of an unknown trace waits");

        for i in 0..KEEP_PENDING + 5 {
            s.attach("x/dev", vec![child("t9", &i.to_string(), "zz", 1.0)]);
        }
        assert_eq!(s.apps["x/dev"].pending.len(), KEEP_PENDING);
    }

    #[test]
    fn request_log_totals_are_summed_over_processes() {
        let t = |logged, sampled_out| RequestLogTotals {
            logged,
            sampled_out,
            ..RequestLogTotals::default()
        };
        let mut s = State::default();
        s.startup("x/dev", Startup::default());
        assert_eq!(s.apps["x/dev"].request_log_totals(), None);
        s.log_totals("x/dev", Some("i1".into()), t(5, 10));
        s.log_totals("x/dev", Some("i1".into()), t(8, 12));
        // A late retry of an older post lowers nothing.
        s.log_totals("x/dev", Some("i1".into()), t(6, 11));
        s.log_totals("x/dev", Some("i2".into()), t(1, 0));
        assert_eq!(s.apps["x/dev"].request_log_totals(), Some(t(9, 12)));
    }

    #[test]
    fn bounded() {
        let mut s = State::default();
        let at = s.started_at;
        for i in 0..KEEP_MINUTES + 5 {
            s.metrics(
                "x/dev",
                None,
                Metrics {
                    at: at - 60.0 * i as f64,
                    requests: vec![counts("/a", 200, 1, None)],
                    ..Metrics::default()
                },
            );
        }
        let requests = (0..MAX_ENDPOINTS + 3)
            .map(|i| counts(&format!("/e{i}"), 200, 1, Some(&format!("c{i}"))))
            .collect();
        s.metrics(
            "x/dev",
            None,
            Metrics {
                at,
                requests,
                ..Metrics::default()
            },
        );
        s.request_logs(
            "x/dev",
            (0..KEEP_LOGS + 10)
                .map(|i| log(&i.to_string(), i as f64))
                .collect(),
        );
        // A re-sent log is not kept twice; an old one does not push out newer ones.
        s.request_logs("x/dev", vec![log("209", 209.0), log("old", 1.0)]);
        let a = &s.apps["x/dev"];
        assert_eq!(a.minutes.len() as i64, KEEP_MINUTES);
        assert_eq!(a.endpoints.len(), MAX_ENDPOINTS);
        assert_eq!(
            a.endpoints[&(OTHER_ENDPOINTS.0.into(), OTHER_ENDPOINTS.1.into())]
                .counts
                .requests,
            5
        );
        assert_eq!(a.request_logs.len(), KEEP_LOGS);
        assert_eq!(a.request_logs[0].id, "209");
        assert_eq!(a.request_logs[KEEP_LOGS - 1].id, "10");
        for i in 0..MAX_APPS + 2 {
            s.startup(&format!("app{i}"), Startup::default());
        }
        assert_eq!(s.apps.len(), MAX_APPS);
    }
}

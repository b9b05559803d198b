//! The data behind the page: `GET /api/dashboard`, version 1 (described in the README). Built
//! from the neutral [`State`] only.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    model::{Bucket, RequestLog, RequestLogTotals, Resources},
    state::{Counts, Range, Rejection, State, KEEP_LOGS, KEEP_MINUTES},
};

/// The version of the JSON shape; bumped when a field changes meaning or goes away.
const VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub(crate) struct Dashboard<'a> {
    version: u32,
    /// Changes whenever anything shown changes (data, or the current minute).
    revision: String,
    /// `true` when `revision` equals the `since` asked for: everything else is left out.
    unchanged: bool,
    /// Unix seconds.
    started_at: f64,
    /// Unix seconds.
    now: f64,
    /// How many request logs and minutes each app keeps.
    limits: Limits,
    apps: Vec<AppView<'a>>,
}

#[derive(Debug, Serialize)]
struct Limits {
    request_logs: usize,
    minutes: i64,
}

#[derive(Debug, Serialize)]
struct AppView<'a> {
    app: &'a str,
    /// `hub v2` or `OTLP 1.x`, as the app last reported.
    protocol: Option<&'a str>,
    client: Option<&'a str>,
    versions: &'a BTreeMap<String, String>,
    instances: Vec<&'a str>,
    /// Metrics batches accepted (hub v2: syncs) and re-sent ones ignored.
    batches: u64,
    duplicates: u64,
    /// Request-log batches received (hub v2: files).
    log_batches: u64,
    /// What request logging did with the app's requests, summed over its processes, as the
    /// SDK reports it (`Apitally-Request-Logs`); null when no post carried it.
    request_log_totals: Option<RequestLogTotals>,
    resources: Option<Resources>,
    totals: Totals,
    /// One entry per minute, oldest first, from the hub's start (or the first data) to now.
    minutes: Vec<Minute>,
    endpoints: Vec<EndpointView<'a>>,
    consumers: Vec<ConsumerView<'a>>,
    validation_errors: Vec<ValidationErrorView<'a>>,
    server_errors: Vec<ServerErrorView<'a>>,
    /// Newest first.
    request_logs: &'a [RequestLog],
    /// The latest messages as received, newest first.
    received: Vec<ReceivedView<'a>>,
    rejected: Vec<&'a Rejection>,
}

#[derive(Debug, Serialize)]
struct Totals {
    #[serde(flatten)]
    counts: Counts,
    status_codes: Vec<StatusCount>,
    p50: Option<Range>,
    p95: Option<Range>,
}

#[derive(Debug, Serialize)]
struct StatusCount {
    code: u16,
    count: u64,
}

#[derive(Debug, Serialize)]
struct Minute {
    /// Unix seconds.
    start: i64,
    #[serde(flatten)]
    counts: Counts,
}

#[derive(Debug, Serialize)]
struct EndpointView<'a> {
    method: &'a str,
    route: &'a str,
    /// Listed by the app at startup.
    declared: bool,
    #[serde(flatten)]
    counts: Counts,
    /// Most frequent first.
    status_codes: Vec<StatusCount>,
    /// Non-empty buckets, fastest first.
    response_times: Vec<Bucket>,
    p50: Option<Range>,
    p95: Option<Range>,
    request_bytes: u64,
    response_bytes: u64,
}

#[derive(Debug, Serialize)]
struct ConsumerView<'a> {
    identifier: &'a str,
    name: Option<&'a str>,
    group: Option<&'a str>,
    #[serde(flatten)]
    counts: Counts,
}

#[derive(Debug, Serialize)]
struct ValidationErrorView<'a> {
    method: &'a str,
    route: &'a str,
    consumer: Option<&'a str>,
    location: &'a [String],
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    count: u64,
}

#[derive(Debug, Serialize)]
struct ServerErrorView<'a> {
    method: &'a str,
    route: &'a str,
    consumer: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
    traceback: &'a str,
    count: u64,
}

#[derive(Debug, Serialize)]
struct ReceivedView<'a> {
    at: f64,
    kind: &'a str,
    protocol: &'a str,
    /// The message, pretty-printed.
    text: String,
}

fn status_counts(statuses: &BTreeMap<u16, u64>) -> Vec<StatusCount> {
    let mut list: Vec<StatusCount> = statuses
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(code, count)| StatusCount {
            code: *code,
            count: *count,
        })
        .collect();
    list.sort_by(|a, b| b.count.cmp(&a.count).then(a.code.cmp(&b.code)));
    list
}

/// Route order for display: by path, then the usual method order.
fn method_rank(method: &str) -> usize {
    ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
        .iter()
        .position(|m| *m == method)
        .unwrap_or(7)
}

impl State {
    /// The dashboard as of `now` (Unix seconds). With `since` equal to the current revision,
    /// only the envelope.
    pub(crate) fn dashboard(&self, now: f64, since: Option<&str>) -> Dashboard<'_> {
        let now_minute = (now / 60.0).floor() as i64;
        // The start time tells a restarted hub's data from the old one's.
        let revision = format!(
            "{}.{}.{now_minute}",
            (self.started_at * 1000.0) as u64,
            self.revision
        );
        let unchanged = since == Some(revision.as_str());
        let start_minute = (self.started_at / 60.0).floor() as i64;
        let apps = if unchanged {
            Vec::new()
        } else {
            self.apps
                .iter()
                .map(|(name, a)| {
                    let first = a.minutes.keys().next().map_or(start_minute, |m| *m);
                    let last = a.minutes.keys().next_back().map_or(now_minute, |m| *m);
                    let last = last.max(now_minute);
                    let first = first.min(start_minute).max(last - KEEP_MINUTES + 1);
                    let minutes = (first..=last)
                        .map(|m| Minute {
                            start: m * 60,
                            counts: a.minutes.get(&m).copied().unwrap_or_default(),
                        })
                        .collect();
                    let mut endpoints: Vec<EndpointView<'_>> = a
                        .endpoints
                        .iter()
                        .map(|((method, route), e)| EndpointView {
                            method,
                            route,
                            declared: e.declared,
                            counts: e.counts,
                            status_codes: status_counts(&e.statuses),
                            response_times: e
                                .response_times
                                .buckets()
                                .filter(|b| b.count > 0)
                                .collect(),
                            p50: e.response_times.percentile(0.5),
                            p95: e.response_times.percentile(0.95),
                            request_bytes: e.request_bytes,
                            response_bytes: e.response_bytes,
                        })
                        .collect();
                    endpoints.sort_by(|x, y| {
                        (x.route, method_rank(x.method), x.method).cmp(&(
                            y.route,
                            method_rank(y.method),
                            y.method,
                        ))
                    });
                    let mut statuses = BTreeMap::new();
                    let mut counts = Counts::default();
                    for e in a.endpoints.values() {
                        for (code, n) in &e.statuses {
                            *statuses.entry(*code).or_default() += n;
                        }
                        counts.requests += e.counts.requests;
                        counts.client_errors += e.counts.client_errors;
                        counts.server_errors += e.counts.server_errors;
                    }
                    let all_times = a.response_times();
                    AppView {
                        app: name,
                        protocol: a.protocol,
                        client: a.client.as_deref(),
                        versions: &a.versions,
                        instances: a.instances.iter().map(String::as_str).collect(),
                        batches: a.batches,
                        duplicates: a.duplicates,
                        log_batches: a.log_batches,
                        request_log_totals: a.request_log_totals(),
                        resources: a.resources,
                        totals: Totals {
                            counts,
                            status_codes: status_counts(&statuses),
                            p50: all_times.percentile(0.5),
                            p95: all_times.percentile(0.95),
                        },
                        minutes,
                        endpoints,
                        consumers: a
                            .consumers
                            .iter()
                            .map(|(id, c)| ConsumerView {
                                identifier: id,
                                name: c.name.as_deref(),
                                group: c.group.as_deref(),
                                counts: c.counts,
                            })
                            .collect(),
                        validation_errors: a
                            .validation_errors
                            .iter()
                            .map(|(v, n)| ValidationErrorView {
                                method: &v.method,
                                route: &v.route,
                                consumer: v.consumer.as_deref(),
                                location: &v.location,
                                message: &v.message,
                                kind: &v.kind,
                                count: *n,
                            })
                            .collect(),
                        server_errors: a
                            .server_errors
                            .iter()
                            .map(|(s, n)| ServerErrorView {
                                method: &s.method,
                                route: &s.route,
                                consumer: s.consumer.as_deref(),
                                kind: &s.kind,
                                message: &s.message,
                                traceback: &s.traceback,
                                count: *n,
                            })
                            .collect(),
                        request_logs: &a.request_logs,
                        received: a
                            .received
                            .iter()
                            .rev()
                            .map(|r| ReceivedView {
                                at: r.at,
                                kind: r.kind,
                                protocol: r.protocol,
                                text: serde_json::to_string_pretty(&r.body).unwrap_or_default(),
                            })
                            .collect(),
                        rejected: a.rejected.iter().rev().collect(),
                    }
                })
                .collect()
        };
        Dashboard {
            version: VERSION,
            revision,
            unchanged,
            started_at: self.started_at,
            now,
            limits: Limits {
                request_logs: KEEP_LOGS,
                minutes: KEEP_MINUTES,
            },
            apps,
        }
    }
}

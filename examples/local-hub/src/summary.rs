//! For the summary types, see [`Summary`]; also the text printed after each sync.

use serde::Serialize;
use serde_json::{json, Value};

use crate::state::{App, Counts, State};

/// Per endpoint: counts, error rates, response-time percentiles (lower edges of their
/// buckets) and sizes.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EndpointSummary {
    /// Uppercase method.
    pub method: String,
    /// Route template.
    pub path: String,
    /// Requests counted.
    pub requests: u64,
    /// Share of requests with status 400 or more.
    pub error_rate: f64,
    /// Requests with status 500 or more.
    pub server_errors: u64,
    /// Median response time, ms (lower edge of its bucket: 0 means under 10 ms with hub v2).
    pub p50_ms: u64,
    /// 95th percentile response time, ms (lower edge of its bucket).
    pub p95_ms: u64,
    /// Sum of request body sizes, bytes.
    pub request_bytes: u64,
    /// Sum of response body sizes, bytes.
    pub response_bytes: u64,
}

/// Per consumer: requests and error rate, with name and group.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConsumerSummary {
    /// The identifier.
    pub identifier: String,
    /// The name, if sent.
    pub name: Value,
    /// The group, if sent.
    pub group: Value,
    /// Requests counted.
    pub requests: u64,
    /// Share of requests with status 400 or more.
    pub error_rate: f64,
}

/// Everything received for one app.
#[derive(Debug, Clone, Serialize)]
pub struct AppSummary {
    /// `client_id/env` (hub v2), `apt_0000…/env` (OTLP: the write token's first 8 characters).
    pub app: String,
    /// The latest startup payload, as received, if any.
    pub startup: Value,
    /// Instance UUIDs seen.
    pub instances: Vec<String>,
    /// Sync payloads accepted (each message UUID once); OTLP: metrics collections.
    pub syncs: u64,
    /// Re-sent payloads recognised by their message UUID (OTLP: exports by their body).
    pub duplicates: u64,
    /// Per endpoint (including those listed at startup that had no traffic yet).
    pub endpoints: Vec<EndpointSummary>,
    /// Per consumer that made requests.
    pub consumers: Vec<ConsumerSummary>,
    /// Validation errors with their counts, in hub v2 shape.
    pub validation_errors: Vec<Value>,
    /// Server errors with their counts and tracebacks, in hub v2 shape.
    pub server_errors: Vec<Value>,
    /// The last resources sample, in hub v2 shape.
    pub resources: Value,
    /// Request-log files received (OTLP: traces exports).
    pub log_files: u64,
    /// The kept request-log lines, as received, oldest first.
    pub request_logs: Vec<Value>,
    /// The latest raw payloads, as received.
    pub payloads: Vec<Value>,
    /// Payloads rejected with their problems.
    pub rejected: Vec<String>,
}

/// What the hub received.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    /// Per app (client id / env, or write-token prefix / env).
    pub apps: Vec<AppSummary>,
}

impl Summary {
    /// Total requests counted over all apps and endpoints.
    pub fn total_requests(&self) -> u64 {
        self.apps
            .iter()
            .flat_map(|a| &a.endpoints)
            .map(|e| e.requests)
            .sum()
    }

    /// The endpoint with this method and path, in any app.
    pub fn endpoint(&self, method: &str, path: &str) -> Option<&EndpointSummary> {
        self.apps
            .iter()
            .flat_map(|a| &a.endpoints)
            .find(|e| e.method == method && e.path == path)
    }

    /// The consumer with this identifier, in any app.
    pub fn consumer(&self, identifier: &str) -> Option<&ConsumerSummary> {
        self.apps
            .iter()
            .flat_map(|a| &a.consumers)
            .find(|c| c.identifier == identifier)
    }
}

fn error_rate(c: &Counts) -> f64 {
    if c.requests == 0 {
        0.0
    } else {
        (c.errors() as f64 / c.requests as f64 * 1000.0).round() / 1000.0
    }
}

fn app_summary(name: &str, app: &App) -> AppSummary {
    AppSummary {
        app: name.to_owned(),
        startup: app.latest.get("startup").cloned().unwrap_or(Value::Null),
        instances: app.instances.iter().cloned().collect(),
        syncs: app.batches,
        duplicates: app.duplicates,
        endpoints: app
            .endpoints
            .iter()
            .map(|((method, path), e)| {
                let lower = |p| {
                    e.response_times
                        .percentile(p)
                        .map_or(0, |r| r.lower_ms as u64)
                };
                EndpointSummary {
                    method: method.clone(),
                    path: path.clone(),
                    requests: e.counts.requests,
                    error_rate: error_rate(&e.counts),
                    server_errors: e.counts.server_errors,
                    p50_ms: lower(0.5),
                    p95_ms: lower(0.95),
                    request_bytes: e.request_bytes,
                    response_bytes: e.response_bytes,
                }
            })
            .collect(),
        consumers: app
            .consumers
            .iter()
            .filter(|(_, c)| c.counts.requests > 0)
            .map(|(id, c)| ConsumerSummary {
                identifier: id.clone(),
                name: c.name.clone().into(),
                group: c.group.clone().into(),
                requests: c.counts.requests,
                error_rate: error_rate(&c.counts),
            })
            .collect(),
        validation_errors: app
            .validation_errors
            .iter()
            .map(|(v, n)| {
                json!({
                    "consumer": v.consumer, "method": v.method, "path": v.route,
                    "loc": v.location, "msg": v.message, "type": v.kind, "error_count": n,
                })
            })
            .collect(),
        server_errors: app
            .server_errors
            .iter()
            .map(|(s, n)| {
                json!({
                    "consumer": s.consumer, "method": s.method, "path": s.route,
                    "type": s.kind, "msg": s.message, "traceback": s.traceback, "error_count": n,
                })
            })
            .collect(),
        resources: app.resources.map_or(
            Value::Null,
            |r| json!({ "cpu_percent": r.cpu_percent, "memory_rss": r.memory_bytes }),
        ),
        log_files: app.log_batches,
        request_logs: app
            .request_logs
            .iter()
            .rev()
            .map(|l| l.original.clone())
            .collect(),
        payloads: app.received.iter().map(|r| r.body.clone()).collect(),
        rejected: app
            .rejected
            .iter()
            .map(|r| format!("{}: {}", r.kind, r.problems.join("; ")))
            .collect(),
    }
}

impl State {
    pub(crate) fn summary(&self) -> Summary {
        Summary {
            apps: self
                .apps
                .iter()
                .map(|(name, app)| app_summary(name, app))
                .collect(),
        }
    }

    /// A compact text summary of one app, printed after each sync.
    pub(crate) fn terminal_summary(&self, app: &str) -> String {
        let Some(a) = self.apps.get(app).map(|a| app_summary(app, a)) else {
            return String::new();
        };
        let mut out = format!(
            "── sync #{} for {} ({} instance(s))\n{:<7} {:<32} {:>8} {:>7} {:>7} {:>7} {:>10}\n",
            a.syncs,
            a.app,
            a.instances.len(),
            "METHOD",
            "PATH",
            "REQS",
            "ERR%",
            "P50ms",
            "P95ms",
            "RESP B"
        );
        for e in a.endpoints.iter().filter(|e| e.requests > 0) {
            out.push_str(&format!(
                "{:<7} {:<32} {:>8} {:>6.1}% {:>7} {:>7} {:>10}\n",
                e.method,
                e.path,
                e.requests,
                e.error_rate * 100.0,
                e.p50_ms,
                e.p95_ms,
                e.response_bytes
            ));
        }
        if !a.consumers.is_empty() {
            let list: Vec<String> = a
                .consumers
                .iter()
                .map(|c| format!("{} ({})", c.identifier, c.requests))
                .collect();
            out.push_str(&format!("consumers: {}\n", list.join(", ")));
        }
        out.push_str(&format!(
            "validation errors: {}, server errors: {}, request-log files: {}",
            a.validation_errors.len(),
            a.server_errors.len(),
            a.log_files
        ));
        if let Some(t) = self.apps.get(app).and_then(App::request_log_totals) {
            out.push_str(&format!(
                "\nrequest logs: {} logged, {} sampled out, {} excluded, {} dropped",
                t.logged, t.sampled_out, t.excluded, t.dropped
            ));
        }
        out
    }
}

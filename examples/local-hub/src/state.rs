//! What the hub received, aggregated per app (client id / env).

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use serde::Serialize;
use serde_json::Value;

const KEEP_PAYLOADS: usize = 10;
const KEEP_LOGS: usize = 500;

#[derive(Debug, Default)]
struct Endpoint {
    requests: u64,
    client_errors: u64,
    server_errors: u64,
    response_times: BTreeMap<u64, u64>,
    request_size_sum: u64,
    response_size_sum: u64,
}

#[derive(Debug, Default)]
struct ConsumerStats {
    requests: u64,
    errors: u64,
}

#[derive(Debug, Default)]
struct App {
    startup: Option<Value>,
    instances: BTreeSet<String>,
    message_uuids: HashSet<String>,
    syncs: u64,
    duplicates: u64,
    endpoints: BTreeMap<(String, String), Endpoint>,
    consumer_stats: BTreeMap<String, ConsumerStats>,
    consumers: BTreeMap<String, (Value, Value)>,
    validation_errors: BTreeMap<String, (Value, u64)>,
    server_errors: BTreeMap<String, (Value, u64)>,
    resources: Value,
    request_logs: VecDeque<Value>,
    log_files: u64,
    payloads: VecDeque<Value>,
    rejected: Vec<String>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    apps: BTreeMap<String, App>,
}

/// Per endpoint: counts, error rates, response-time percentiles (lower edges of the 10 ms
/// bins) and sizes.
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
    /// Median response time, ms (lower edge of its 10 ms bin).
    pub p50_ms: u64,
    /// 95th percentile response time, ms (lower edge of its 10 ms bin).
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
    /// `client_id/env`.
    pub app: String,
    /// The startup payload, if received.
    pub startup: Value,
    /// Instance UUIDs seen.
    pub instances: Vec<String>,
    /// Sync payloads accepted (each message UUID once).
    pub syncs: u64,
    /// Re-sent payloads recognised by their message UUID.
    pub duplicates: u64,
    /// Per endpoint.
    pub endpoints: Vec<EndpointSummary>,
    /// Per consumer.
    pub consumers: Vec<ConsumerSummary>,
    /// Validation errors with their counts.
    pub validation_errors: Vec<Value>,
    /// Server errors with their counts and tracebacks.
    pub server_errors: Vec<Value>,
    /// The last resources sample.
    pub resources: Value,
    /// Request-log files received.
    pub log_files: u64,
    /// The latest request-log lines.
    pub request_logs: Vec<Value>,
    /// The latest raw payloads, as received.
    pub payloads: Vec<Value>,
    /// Payloads rejected with their problems.
    pub rejected: Vec<String>,
}

/// What the hub received.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    /// Per app (client id / env).
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

fn percentile(hist: &BTreeMap<u64, u64>, p: f64) -> u64 {
    let total: u64 = hist.values().sum();
    if total == 0 {
        return 0;
    }
    let target = ((total as f64) * p).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (bin, count) in hist {
        seen += count;
        if seen >= target {
            return *bin;
        }
    }
    0
}

fn rate(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (part as f64 / total as f64 * 1000.0).round() / 1000.0
    }
}

fn remember<T>(queue: &mut VecDeque<T>, item: T, keep: usize) {
    queue.push_back(item);
    while queue.len() > keep {
        queue.pop_front();
    }
}

impl State {
    pub(crate) fn startup(&mut self, app: &str, payload: Value) {
        let entry = self.apps.entry(app.to_owned()).or_default();
        if let Some(uuid) = payload["instance_uuid"].as_str() {
            entry.instances.insert(uuid.to_owned());
        }
        remember(&mut entry.payloads, payload.clone(), KEEP_PAYLOADS);
        entry.startup = Some(payload);
    }

    pub(crate) fn sync(&mut self, app: &str, payload: Value) {
        let entry = self.apps.entry(app.to_owned()).or_default();
        let message = payload["message_uuid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if !entry.message_uuids.insert(message) {
            entry.duplicates += 1;
            return;
        }
        entry.syncs += 1;
        if let Some(uuid) = payload["instance_uuid"].as_str() {
            entry.instances.insert(uuid.to_owned());
        }
        for r in payload["requests"].as_array().into_iter().flatten() {
            let key = (
                r["method"].as_str().unwrap_or_default().to_owned(),
                r["path"].as_str().unwrap_or_default().to_owned(),
            );
            let count = r["request_count"].as_u64().unwrap_or(0);
            let status = r["status_code"].as_u64().unwrap_or(0);
            let e = entry.endpoints.entry(key).or_default();
            e.requests += count;
            if status >= 500 {
                e.server_errors += count;
            } else if status >= 400 {
                e.client_errors += count;
            }
            e.request_size_sum += r["request_size_sum"].as_u64().unwrap_or(0);
            e.response_size_sum += r["response_size_sum"].as_u64().unwrap_or(0);
            for (bin, n) in r["response_times"].as_object().into_iter().flatten() {
                *e.response_times
                    .entry(bin.parse().unwrap_or(0))
                    .or_default() += n.as_u64().unwrap_or(0);
            }
            if let Some(consumer) = r["consumer"].as_str() {
                let c = entry.consumer_stats.entry(consumer.to_owned()).or_default();
                c.requests += count;
                if status >= 400 {
                    c.errors += count;
                }
            }
        }
        for (key, list) in [
            ("validation_errors", &mut entry.validation_errors),
            ("server_errors", &mut entry.server_errors),
        ] {
            for item in payload[key].as_array().into_iter().flatten() {
                let mut id = item.clone();
                let count = id["error_count"].take().as_u64().unwrap_or(0);
                let slot = list.entry(id.to_string()).or_insert((id, 0));
                slot.1 += count;
            }
        }
        for c in payload["consumers"].as_array().into_iter().flatten() {
            if let Some(id) = c["identifier"].as_str() {
                entry
                    .consumers
                    .insert(id.to_owned(), (c["name"].clone(), c["group"].clone()));
            }
        }
        if !payload["resources"].is_null() {
            entry.resources = payload["resources"].clone();
        }
        remember(&mut entry.payloads, payload, KEEP_PAYLOADS);
    }

    pub(crate) fn logs(&mut self, app: &str, _query: &str, lines: Vec<Value>) {
        let entry = self.apps.entry(app.to_owned()).or_default();
        entry.log_files += 1;
        for line in lines {
            remember(&mut entry.request_logs, line, KEEP_LOGS);
        }
    }

    pub(crate) fn rejected(&mut self, app: &str, endpoint: &str, problems: &[String]) {
        let entry = self.apps.entry(app.to_owned()).or_default();
        entry
            .rejected
            .push(format!("{endpoint}: {}", problems.join("; ")));
    }

    pub(crate) fn summary(&self) -> Summary {
        let apps = self
            .apps
            .iter()
            .map(|(name, app)| AppSummary {
                app: name.clone(),
                startup: app.startup.clone().unwrap_or(Value::Null),
                instances: app.instances.iter().cloned().collect(),
                syncs: app.syncs,
                duplicates: app.duplicates,
                endpoints: app
                    .endpoints
                    .iter()
                    .map(|((method, path), e)| EndpointSummary {
                        method: method.clone(),
                        path: path.clone(),
                        requests: e.requests,
                        error_rate: rate(e.client_errors + e.server_errors, e.requests),
                        server_errors: e.server_errors,
                        p50_ms: percentile(&e.response_times, 0.5),
                        p95_ms: percentile(&e.response_times, 0.95),
                        request_bytes: e.request_size_sum,
                        response_bytes: e.response_size_sum,
                    })
                    .collect(),
                consumers: app
                    .consumer_stats
                    .iter()
                    .map(|(id, c)| {
                        let (name, group) = app
                            .consumers
                            .get(id)
                            .cloned()
                            .unwrap_or((Value::Null, Value::Null));
                        ConsumerSummary {
                            identifier: id.clone(),
                            name,
                            group,
                            requests: c.requests,
                            error_rate: rate(c.errors, c.requests),
                        }
                    })
                    .collect(),
                validation_errors: with_counts(&app.validation_errors),
                server_errors: with_counts(&app.server_errors),
                resources: app.resources.clone(),
                log_files: app.log_files,
                request_logs: app.request_logs.iter().cloned().collect(),
                payloads: app.payloads.iter().cloned().collect(),
                rejected: app.rejected.clone(),
            })
            .collect();
        Summary { apps }
    }

    /// A compact text summary of one app, printed after each sync.
    pub(crate) fn terminal_summary(&self, app: &str) -> String {
        let summary = self.summary();
        let Some(a) = summary.apps.iter().find(|a| a.app == app) else {
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
        for e in &a.endpoints {
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
        out
    }
}

fn with_counts(map: &BTreeMap<String, (Value, u64)>) -> Vec<Value> {
    map.values()
        .map(|(item, count)| {
            let mut item = item.clone();
            item["error_count"] = (*count).into();
            item
        })
        .collect()
}

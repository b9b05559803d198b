//! What the hub received, in the same shape whichever protocol delivered it: the acceptance
//! suites of the adapters assert one expected table in both protocols.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::TestHub;

/// (consumer, method, route, status) of counted requests.
pub type RequestKey = (Option<String>, String, String, u16);

/// (consumer, method, route, error type) of validation or server errors.
pub type ErrorKey = (Option<String>, String, String, String);

/// The requests of one key and the bytes of their bodies.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Requests.
    pub count: u64,
    /// Summed request body sizes.
    pub request_bytes: u64,
    /// Summed response body sizes.
    pub response_bytes: u64,
}

fn consumer_of(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

impl TestHub {
    /// Every counted request per (consumer, method, route, status), from hub v2 syncs and 1.x
    /// metrics alike.
    pub fn request_totals(&self) -> BTreeMap<RequestKey, Totals> {
        let mut out: BTreeMap<RequestKey, Totals> = BTreeMap::new();
        for sync in self.accepted_syncs() {
            for r in sync["requests"].as_array().into_iter().flatten() {
                let key = (
                    consumer_of(&r["consumer"]),
                    r["method"].as_str().unwrap_or_default().to_owned(),
                    r["path"].as_str().unwrap_or_default().to_owned(),
                    r["status_code"].as_u64().unwrap_or_default() as u16,
                );
                let totals = out.entry(key).or_default();
                totals.count += r["request_count"].as_u64().unwrap_or_default();
                totals.request_bytes += r["request_size_sum"].as_u64().unwrap_or_default();
                totals.response_bytes += r["response_size_sum"].as_u64().unwrap_or_default();
            }
        }
        for c in self.otlp_request_counts() {
            let totals = out
                .entry((c.consumer, c.method, c.route, c.status))
                .or_default();
            totals.count += c.count;
            totals.request_bytes += c.request_size_sum;
            totals.response_bytes += c.response_size_sum;
        }
        out
    }

    /// Validation errors per (consumer, method, route, type), both protocols.
    pub fn validation_error_totals(&self) -> BTreeMap<ErrorKey, u64> {
        self.error_totals("validation_errors", "apitally.request.validation_error")
    }

    /// Server errors per (consumer, method, route, type), both protocols.
    pub fn server_error_totals(&self) -> BTreeMap<ErrorKey, u64> {
        self.error_totals("server_errors", "apitally.request.server_error")
    }

    fn error_totals(&self, hub_key: &str, event: &str) -> BTreeMap<ErrorKey, u64> {
        let mut out: BTreeMap<ErrorKey, u64> = BTreeMap::new();
        for sync in self.accepted_syncs() {
            for e in sync[hub_key].as_array().into_iter().flatten() {
                let key = (
                    consumer_of(&e["consumer"]),
                    e["method"].as_str().unwrap_or_default().to_owned(),
                    e["path"].as_str().unwrap_or_default().to_owned(),
                    e["type"].as_str().unwrap_or_default().to_owned(),
                );
                *out.entry(key).or_default() += e["error_count"].as_u64().unwrap_or_default();
            }
        }
        for record in self.otlp_events(event) {
            let body = &record.body;
            for c in body["counts"].as_array().into_iter().flatten() {
                let key = (
                    consumer_of(&c["consumer"]),
                    body["method"].as_str().unwrap_or_default().to_owned(),
                    body["path"].as_str().unwrap_or_default().to_owned(),
                    body["type"].as_str().unwrap_or_default().to_owned(),
                );
                *out.entry(key).or_default() += c["count"].as_u64().unwrap_or_default();
            }
        }
        out
    }

    /// The logged requests, each as `METHOD path?query` with its status, from hub v2 request
    /// logs and 1.x SERVER spans alike (query masked as each protocol masks it), sorted.
    pub fn logged_requests(&self) -> Vec<(String, u16)> {
        let mut seen = std::collections::HashSet::new();
        let mut out: Vec<(String, u16)> = self
            .received_at("log")
            .into_iter()
            .filter(|r| r.accepted() && seen.insert(r.query.clone()))
            .flat_map(|r| r.lines)
            .map(|line| {
                let url = line["request"]["url"].as_str().unwrap_or_default();
                let path = url
                    .split_once("://")
                    .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
                    .unwrap_or("/");
                (
                    format!(
                        "{} {path}",
                        line["request"]["method"].as_str().unwrap_or_default()
                    ),
                    line["response"]["status_code"].as_u64().unwrap_or_default() as u16,
                )
            })
            .collect();
        out.extend(
            self.otlp_spans()
                .into_iter()
                .filter(|s| s.is_server())
                .map(|s| {
                    let mut target = s.str("url.path").unwrap_or_default().to_owned();
                    if let Some(query) = s.str("url.query") {
                        target.push('?');
                        target.push_str(query);
                    }
                    (
                        format!(
                            "{} {target}",
                            s.str("http.request.method").unwrap_or_default()
                        ),
                        s.int("http.response.status_code").unwrap_or_default() as u16,
                    )
                }),
        );
        out.sort();
        out
    }
}

//! The 1.x protocol: OTLP/HTTP protobuf on `POST /v1/{traces|logs|metrics}`
//! (`shared/protocol-v1.md`), checked like the test hub checks it
//! ([`apitally_test_hub::otlp::check_export`]) and converted into [`crate::model`] values.
//!
//! An app is its write token's first eight characters and its `Apitally-Env` (the whole token
//! is never kept, shown or printed). What each signal becomes:
//!
//! - logs: `apitally.app.startup` → the app's startup data; `apitally.consumer.update` →
//!   consumers; `apitally.request.validation_error` / `apitally.request.server_error` → counted
//!   errors per consumer; application log records → the logs of their request log (by
//!   `apitally.request.server_span_id`, else by trace).
//! - traces: each SERVER span → a request log; other spans → the spans of their trace's
//!   request log.
//! - metrics: `http.server.request.duration` points → request counts per method, route,
//!   status and consumer with their exponential buckets as response-time ranges; the size
//!   histograms → byte sums; the process gauges → resources. One batch per collection time.
//!
//! A byte-identical re-send of an export is recognised by its SHA-256 and counted once.

use std::{collections::BTreeMap, sync::Mutex};

use actix_web::{web, HttpRequest, HttpResponse};
use apitally_test_hub::{
    otlp::{self, CheckedExport},
    OtlpExport, OtlpGaugePoint, OtlpHistogramPoint, OtlpLogRecord, OtlpSpan,
};
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::{
    model::{
        Attached, Attachment, Bucket, ConsumerInfo, Exception, LogRecord, Message, Metrics,
        Received, RequestCounts, RequestLog, RequestLogTotals, Resources, ServerError, Span,
        Startup, ValidationError,
    },
    state::{now, State},
    v2::readable_body,
};

const PROTOCOL: &str = "OTLP 1.x";
/// Where a response time of exactly 0 is counted, ms.
const ZERO_BUCKET_MS: f64 = 0.001;
/// Longest string kept in the raw exports shown on the page.
const MAX_SHOWN_STRING: usize = 2_000;
/// Resource entries, and items per scope, kept in the raw exports shown on the page.
const MAX_SHOWN_ENTRIES: usize = 3;
const MAX_SHOWN_ITEMS: usize = 10;

/// Receives one `POST /v1/{signal}`.
pub(crate) async fn receive(
    req: HttpRequest,
    signal: web::Path<String>,
    apitally_test_hub::RawBody(body): apitally_test_hub::RawBody,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let signal = signal.into_inner();
    if !otlp::SIGNALS.contains(&signal.as_str()) {
        return HttpResponse::NotFound().body(format!("no signal {signal:?}"));
    }
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    // Decoded before taking the lock: the page keeps reading meanwhile.
    let checked = otlp::check_export(&signal, &headers, &body);
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    match checked {
        Ok(c) => {
            let app = app_key(&c.token_prefix, &c.env);
            state.protocol(&app, PROTOCOL);
            if let Some(totals) = RequestLogTotals::of(&req) {
                state.log_totals(&app, instance(&c.export), totals);
            }
            let id = format!("sha256:{:x}", Sha256::digest(&body));
            if state.first_delivery(&app, &id) {
                ingest(&mut state, &app, c);
            }
            HttpResponse::Ok()
                .content_type("application/x-protobuf")
                .finish()
        }
        Err(problems) => {
            let app = rejected_app(&headers);
            eprintln!("local hub: rejected {signal} from {app}: {problems:?}");
            state.rejected(&app, &signal, &problems);
            HttpResponse::BadRequest().json(json!({ "detail": problems }))
        }
    }
}

/// The `service.instance.id` of an export's first resource.
fn instance(export: &OtlpExport) -> Option<String> {
    let resource = match export {
        OtlpExport::Traces(_) => export.spans().into_iter().next()?.resource,
        OtlpExport::Logs(_) => export.log_records().into_iter().next()?.resource,
        OtlpExport::Metrics(_) => match export.histogram_points().into_iter().next() {
            Some(point) => point.resource,
            None => export.gauge_points().into_iter().next()?.resource,
        },
    };
    resource.get("service.instance.id").and_then(string)
}

/// `apt_0123…/dev`: the most of a token ever shown, and the env.
fn app_key(token_prefix: &str, env: &str) -> String {
    format!("{token_prefix}…/{env}")
}

/// The app a refused export is listed under, from whatever it sent.
fn rejected_app(headers: &[(String, String)]) -> String {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
    };
    let token = header("authorization")
        .and_then(|a| a.split_once(' '))
        .map(|(_, t)| otlp::token_prefix(t.trim()))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "(no token)".into());
    let env = header("apitally-env")
        .filter(|e| !e.is_empty())
        .unwrap_or("(no env)");
    app_key(&token, env)
}

fn ingest(state: &mut State, app: &str, c: CheckedExport) {
    let shown = received(c.export.signal(), shown_json(&c.export));
    match &c.export {
        OtlpExport::Traces(_) => {
            let (logs, attachments) = traces(c.export.spans());
            state.request_logs(app, logs);
            state.attach(app, attachments);
        }
        OtlpExport::Logs(_) => {
            let records = c.export.log_records();
            let mut validation_errors = Vec::new();
            let mut server_errors = Vec::new();
            let mut consumers = Vec::new();
            let mut attachments = Vec::new();
            for r in &records {
                match r.event_name.as_deref() {
                    Some("apitally.app.startup") => {
                        if let Some(body) = &r.body_json {
                            state.startup(app, startup(r, body));
                            state.received(app, received("startup", body.clone()));
                        }
                    }
                    Some("apitally.consumer.update") => consumers.extend(consumer(&r.body)),
                    Some("apitally.request.validation_error") => {
                        validation_errors.extend(validation_error(&r.body));
                    }
                    Some("apitally.request.server_error") => {
                        server_errors.extend(server_error(&r.body));
                    }
                    Some(name) if name.starts_with("apitally.") => {}
                    _ => attachments.extend(log_attachment(r)),
                }
            }
            state.events(app, validation_errors, server_errors, consumers);
            state.attach(app, attachments);
        }
        OtlpExport::Metrics(_) => {
            let batches = metrics(&c.export.histogram_points(), &c.export.gauge_points());
            for m in batches {
                state.metrics(app, None, m);
            }
            println!("{}", state.terminal_summary(app));
        }
    }
    state.received(app, shown);
}

fn received(kind: &'static str, body: Value) -> Received {
    Received {
        at: now(),
        kind,
        protocol: PROTOCOL,
        body,
    }
}

/// The export in OTLP/JSON, cut to what a page can show: the first few resource entries and
/// items, long strings shortened (with a note saying so).
fn shown_json(export: &OtlpExport) -> Value {
    fn shorten(v: &mut Value, cut: &mut bool) {
        match v {
            Value::String(s) if s.chars().count() > MAX_SHOWN_STRING => {
                let rest = s.chars().count() - MAX_SHOWN_STRING;
                *s = format!(
                    "{}… ({rest} more characters)",
                    s.chars().take(MAX_SHOWN_STRING).collect::<String>()
                );
                *cut = true;
            }
            Value::Array(items) => items.iter_mut().for_each(|i| shorten(i, cut)),
            Value::Object(map) => map.values_mut().for_each(|i| shorten(i, cut)),
            _ => {}
        }
    }
    let mut json = export.to_otlp_json();
    let mut cut = false;
    if let Value::Object(top) = &mut json {
        for entries in top.values_mut().filter_map(Value::as_array_mut) {
            cut |= entries.len() > MAX_SHOWN_ENTRIES;
            entries.truncate(MAX_SHOWN_ENTRIES);
            for scopes in entries
                .iter_mut()
                .filter_map(Value::as_object_mut)
                .flat_map(|e| e.values_mut())
                .filter_map(Value::as_array_mut)
            {
                for items in scopes
                    .iter_mut()
                    .filter_map(Value::as_object_mut)
                    .flat_map(|s| s.values_mut())
                    .filter_map(Value::as_array_mut)
                {
                    cut |= items.len() > MAX_SHOWN_ITEMS;
                    items.truncate(MAX_SHOWN_ITEMS);
                }
            }
        }
    }
    shorten(&mut json, &mut cut);
    if cut {
        json["local_hub_note"] = format!(
            "shortened for the page: at most {MAX_SHOWN_ENTRIES} resource entries of \
             {MAX_SHOWN_ITEMS} items, strings of {MAX_SHOWN_STRING} characters"
        )
        .into();
    }
    json
}

fn seconds(unix_nano: u64) -> f64 {
    unix_nano as f64 / 1e9
}

/// An attribute value as text: strings as they are, the rest as JSON.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn string(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

// ---- logs -----------------------------------------------------------------------------------

/// The startup event's payload (§4.2).
fn startup(r: &OtlpLogRecord, body: &Value) -> Startup {
    let mut versions: BTreeMap<String, String> = body["versions"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), string(v)?)))
        .collect();
    if let (Some(distro), Some(version)) = (
        r.resource
            .get("telemetry.distro.name")
            .and_then(Value::as_str),
        r.resource
            .get("telemetry.distro.version")
            .and_then(Value::as_str),
    ) {
        versions.insert(distro.to_owned(), version.to_owned());
    }
    Startup {
        instance: r.resource.get("service.instance.id").and_then(string),
        client: string(&body["framework"]),
        versions,
        endpoints: body["paths"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((string(&p["method"])?.to_uppercase(), string(&p["path"])?)))
            .collect(),
    }
}

/// `counts: [{consumer?, count}]` of an error event.
fn counts(body: &Value) -> Vec<(Option<String>, u64)> {
    body["counts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| (string(&c["consumer"]), c["count"].as_u64().unwrap_or(0)))
        .collect()
}

/// `apitally.consumer.update` (§4.4).
fn consumer(body: &Value) -> Option<ConsumerInfo> {
    Some(ConsumerInfo {
        identifier: string(&body["identifier"])?,
        name: string(&body["name"]),
        group: string(&body["group"]),
    })
}

/// `apitally.request.validation_error` (§4.5): one error per consumer count. Its location is
/// the source followed by the dotted field's parts.
fn validation_error(body: &Value) -> Vec<(ValidationError, u64)> {
    let source = string(&body["source"]).unwrap_or_default();
    let field = string(&body["field"]).unwrap_or_default();
    let location: Vec<String> = std::iter::once(source)
        .chain(field.split('.').map(str::to_owned))
        .filter(|s| !s.is_empty())
        .collect();
    counts(body)
        .into_iter()
        .map(|(consumer, n)| {
            let e = ValidationError {
                consumer,
                method: string(&body["method"]).unwrap_or_default(),
                route: string(&body["path"]).unwrap_or_default(),
                location: location.clone(),
                message: string(&body["message"]).unwrap_or_default(),
                kind: string(&body["type"]).unwrap_or_default(),
            };
            (e, n)
        })
        .collect()
}

/// `apitally.request.server_error` (§4.6): one error per consumer count.
fn server_error(body: &Value) -> Vec<(ServerError, u64)> {
    counts(body)
        .into_iter()
        .map(|(consumer, n)| {
            let e = ServerError {
                consumer,
                method: string(&body["method"]).unwrap_or_default(),
                route: string(&body["path"]).unwrap_or_default(),
                kind: string(&body["type"]).unwrap_or_default(),
                message: string(&body["message"]).unwrap_or_default(),
                traceback: string(&body["stacktrace"]).unwrap_or_default(),
            };
            (e, n)
        })
        .collect()
}

/// The level of an OTLP severity number (TRACE 1-4, DEBUG 5-8, INFO 9-12, ...).
fn level(severity_number: i32) -> &'static str {
    match severity_number {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21.. => "FATAL",
        _ => "UNSET",
    }
}

/// An application log record (§4.3), for the request log it names (or its trace's).
fn log_attachment(r: &OtlpLogRecord) -> Option<Attachment> {
    let request_id = r.str("apitally.request.server_span_id").map(str::to_owned);
    let trace_id = r.trace_id.clone()?;
    let attr = |keys: &[&str]| keys.iter().find_map(|k| r.attributes.get(*k)).map(text);
    let location = attr(&["code.file.path", "code.filepath"]).map(|file| {
        match attr(&["code.line.number", "code.lineno"]) {
            Some(line) => format!("{file}:{line}"),
            None => file,
        }
    });
    let time = if r.time_unix_nano > 0 {
        r.time_unix_nano
    } else {
        r.observed_time_unix_nano
    };
    Some(Attachment {
        trace_id,
        request_id,
        near_span: r.span_id.clone(),
        item: Attached::Log(LogRecord {
            time: (time > 0).then(|| seconds(time)),
            level: if r.severity_text.is_empty() {
                level(r.severity_number).to_owned()
            } else {
                r.severity_text.to_uppercase()
            },
            logger: Some(r.scope_name.clone()).filter(|s| !s.is_empty()),
            message: text(&r.body),
            location,
        }),
    })
}

// ---- traces ---------------------------------------------------------------------------------

/// Attributes shown elsewhere in a request log (headers, bodies) are left out of its spans.
fn shown_elsewhere(key: &str) -> bool {
    key.starts_with("http.request.header.")
        || key.starts_with("http.response.header.")
        || key == "apitally.request.body"
        || key == "apitally.response.body"
}

fn span(s: &OtlpSpan) -> Span {
    Span {
        id: s.span_id.clone().unwrap_or_default(),
        parent_id: s.parent_span_id.clone(),
        name: s.name.clone(),
        kind: Some(s.kind.clone()),
        start: seconds(s.start_time_unix_nano),
        end: seconds(s.end_time_unix_nano),
        status: (s.status_code != "UNSET").then(|| s.status_code.clone()),
        attributes: s
            .attributes
            .iter()
            .filter(|(k, _)| !shown_elsewhere(k))
            .map(|(k, v)| (k.clone(), text(v)))
            .collect(),
    }
}

/// SERVER spans become request logs, the other spans attachments of their trace.
fn traces(spans: Vec<OtlpSpan>) -> (Vec<RequestLog>, Vec<Attachment>) {
    let mut logs = Vec::new();
    let mut attachments = Vec::new();
    for s in spans {
        if s.is_server() {
            logs.push(request_log(&s));
        } else if let Some(trace_id) = s.trace_id.clone() {
            attachments.push(Attachment {
                trace_id,
                request_id: None,
                near_span: s.parent_span_id.clone(),
                item: Attached::Span(span(&s)),
            });
        }
    }
    (logs, attachments)
}

/// Captured headers (`http.request.header.<name>`: one value per occurrence).
fn headers(s: &OtlpSpan, prefix: &str) -> Vec<(String, String)> {
    s.attributes
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?, v)))
        .flat_map(|(name, v)| match v {
            Value::Array(values) => values.iter().map(|v| (name.to_owned(), text(v))).collect(),
            other => vec![(name.to_owned(), text(other))],
        })
        .collect()
}

/// A captured body: a string, or bytes as `{"bytesValue": base64}`.
fn captured_body(v: Option<&Value>) -> Option<crate::model::Body> {
    let bytes = match v? {
        Value::String(s) => s.as_bytes().to_vec(),
        other => base64::engine::general_purpose::STANDARD
            .decode(other["bytesValue"].as_str()?)
            .ok()?,
    };
    (!bytes.is_empty()).then(|| readable_body(&bytes))
}

/// A SERVER span (§3.2-3.7) as a request log: its id is the span id.
fn request_log(s: &OtlpSpan) -> RequestLog {
    let path = s.str("url.path").unwrap_or("/");
    let path = match s.str("url.query").filter(|q| !q.is_empty()) {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let scheme = s.str("url.scheme").unwrap_or("http");
    let url = match s.str("server.address") {
        Some(host) => {
            let port = s
                .int("server.port")
                .filter(|p| !host.ends_with(&format!(":{p}")))
                .filter(|p| !matches!((scheme, p), ("http", 80) | ("https", 443)));
            match port {
                Some(port) => format!("{scheme}://{host}:{port}{path}"),
                None => format!("{scheme}://{host}{path}"),
            }
        }
        None => path.clone(),
    };
    let size = |key| s.int(key).and_then(|n| u64::try_from(n).ok());
    let exception = s.event("exception").map(|e| Exception {
        kind: e
            .attributes
            .get("exception.type")
            .map(text)
            .unwrap_or_default(),
        message: e
            .attributes
            .get("exception.message")
            .map(text)
            .unwrap_or_default(),
        traceback: e.attributes.get("exception.stacktrace").map(text),
    });
    RequestLog {
        id: s.span_id.clone().unwrap_or_default(),
        time: seconds(s.start_time_unix_nano),
        method: s.str("http.request.method").unwrap_or_default().to_owned(),
        url,
        path,
        route: s
            .str("http.route")
            .filter(|r| !r.is_empty())
            .map(str::to_owned),
        status: s
            .int("http.response.status_code")
            .map_or(0, |c| c.clamp(0, 999) as u16),
        duration_ms: s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano) as f64 / 1e6,
        consumer: s.str("apitally.consumer.identifier").map(str::to_owned),
        request: Message {
            headers: headers(s, "http.request.header."),
            size: size("http.request.body.size"),
            body: captured_body(s.attributes.get("apitally.request.body")),
        },
        response: Message {
            headers: headers(s, "http.response.header."),
            size: size("http.response.body.size"),
            body: captured_body(s.attributes.get("apitally.response.body")),
        },
        exception,
        logs: Vec::new(),
        spans: vec![span(s)],
        trace_id: s.trace_id.clone(),
        original: json!({
            "trace_id": s.trace_id, "span_id": s.span_id, "parent_span_id": s.parent_span_id,
            "name": s.name, "kind": s.kind,
            "start_time_unix_nano": s.start_time_unix_nano.to_string(),
            "end_time_unix_nano": s.end_time_unix_nano.to_string(),
            "status": {"code": s.status_code, "message": s.status_message},
            "attributes": s.attributes,
            "events": s.events.iter().map(|e| json!({
                "name": e.name, "time_unix_nano": e.time_unix_nano.to_string(),
                "attributes": e.attributes,
            })).collect::<Vec<_>>(),
        }),
    }
}

// ---- metrics --------------------------------------------------------------------------------

/// The response-time ranges of a duration point: its exponential buckets in ms, zeros in
/// `[0, ZERO_BUCKET_MS]`.
fn response_times(p: &OtlpHistogramPoint) -> Vec<Bucket> {
    let zero = (p.zero_count > 0).then_some(Bucket {
        lower_ms: 0.0,
        upper_ms: ZERO_BUCKET_MS,
        count: p.zero_count,
    });
    zero.into_iter()
        .chain(p.buckets().into_iter().map(|(lower, upper, count)| Bucket {
            lower_ms: lower * 1000.0,
            upper_ms: upper * 1000.0,
            count,
        }))
        .collect()
}

type RequestKey = (String, String, u16, Option<String>);

fn request_key(p: &OtlpHistogramPoint) -> RequestKey {
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

/// The metrics of one export, one batch per collection time (a backlog holds several).
fn metrics(points: &[OtlpHistogramPoint], gauges: &[OtlpGaugePoint]) -> Vec<Metrics> {
    #[derive(Default)]
    struct Batch {
        instance: Option<String>,
        requests: BTreeMap<RequestKey, RequestCounts>,
        cpu: Option<f64>,
        memory: Option<u64>,
    }
    let mut batches: BTreeMap<u64, Batch> = BTreeMap::new();
    let instance =
        |resource: &BTreeMap<String, Value>| resource.get("service.instance.id").and_then(string);
    // Durations first: they count the requests; sizes add to those.
    for p in points
        .iter()
        .filter(|p| p.metric == "http.server.request.duration")
    {
        let b = batches.entry(p.time_unix_nano).or_default();
        b.instance = b.instance.take().or_else(|| instance(&p.resource));
        let key = request_key(p);
        let r = b
            .requests
            .entry(key.clone())
            .or_insert_with(|| RequestCounts {
                method: key.0,
                route: key.1,
                status: key.2,
                consumer: key.3,
                count: 0,
                request_size_sum: 0,
                response_size_sum: 0,
                response_times: Vec::new(),
            });
        r.count += p.count;
        r.response_times.extend(response_times(p));
    }
    for p in points {
        let Some(r) = batches
            .get_mut(&p.time_unix_nano)
            .and_then(|b| b.requests.get_mut(&request_key(p)))
        else {
            continue;
        };
        let sum = p.sum.unwrap_or(0.0).max(0.0).round() as u64;
        match p.metric.as_str() {
            "http.server.request.body.size" => r.request_size_sum += sum,
            "http.server.response.body.size" => r.response_size_sum += sum,
            _ => {}
        }
    }
    for g in gauges {
        let b = batches.entry(g.time_unix_nano).or_default();
        b.instance = b.instance.take().or_else(|| instance(&g.resource));
        match g.metric.as_str() {
            "process.cpu.utilization" => b.cpu = Some(g.value()),
            "process.memory.usage" => b.memory = Some(g.value().max(0.0) as u64),
            _ => {}
        }
    }
    batches
        .into_iter()
        .map(|(time, b)| Metrics {
            at: if time > 0 { seconds(time) } else { now() },
            instance: b.instance,
            requests: b.requests.into_values().collect(),
            // Of all CPUs (v1 sends 0..1 over all of them).
            resources: b.cpu.map(|cpu| Resources {
                cpu_percent: cpu * 100.0,
                memory_bytes: b.memory.unwrap_or(0),
            }),
            ..Metrics::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use apitally_test_hub::otlp::sample;

    use super::*;

    #[test]
    fn sample_metrics_become_counts_and_ranges() {
        let e = sample::metrics();
        let batches = metrics(&e.histogram_points(), &e.gauge_points());
        assert_eq!(batches.len(), 1, "one collection");
        let m = &batches[0];
        assert_eq!(
            m.instance.as_deref(),
            Some("b6da6e69-dc8b-4168-9fb0-1411c73792c2")
        );
        let r = m.requests.iter().find(|r| r.route == "/echo").unwrap();
        assert_eq!((r.method.as_str(), r.status, r.count), ("POST", 200, 6562));
        assert_eq!(
            (r.request_size_sum, r.response_size_sum),
            (570_894, 570_894)
        );
        assert_eq!(r.response_times.iter().map(|b| b.count).sum::<u64>(), 6562);
        // Bucket -100 at scale 3 is (2^(-100/8), 2^(-99/8)] s.
        let first = r.response_times[0];
        assert!((first.lower_ms - 1000.0 * 2f64.powf(-12.5)).abs() < 1e-9);
        assert!((first.upper_ms - 1000.0 * 2f64.powf(-12.375)).abs() < 1e-9);
        let resources = m.resources.unwrap();
        assert!((resources.cpu_percent - 49.15).abs() < 1e-9);
        assert_eq!(resources.memory_bytes, 60_542_976);
    }

    #[test]
    fn sample_spans_become_request_logs() {
        let (logs, attachments) = traces(sample::traces().spans());
        assert!(attachments.is_empty());
        assert_eq!(logs.len(), 6);
        let l = &logs[0];
        assert_eq!(l.id, "a4410c4f4c897189");
        assert_eq!(l.url, "http://127.0.0.1:18117/echo");
        assert_eq!(
            (l.path.as_str(), l.route.as_deref()),
            ("/echo", Some("/echo"))
        );
        assert_eq!((l.method.as_str(), l.status), ("POST", 200));
        assert!((l.duration_ms - 0.181_319).abs() < 1e-6);
        assert_eq!(l.request.size, Some(87));
        assert!(l
            .request
            .headers
            .contains(&("content-type".into(), "application/json".into())));
        assert!(l
            .request
            .body
            .as_ref()
            .unwrap()
            .text
            .contains("\"name\": \"bench\""));
        assert_eq!(l.spans.len(), 1);
        assert!(l.spans[0]
            .attributes
            .iter()
            .all(|(k, _)| !shown_elsewhere(k)));
        assert_eq!(l.original["attributes"]["http.route"], "/echo");
    }

    #[test]
    fn startup_event() {
        let records = sample::logs().log_records();
        let s = startup(&records[0], records[0].body_json.as_ref().unwrap());
        assert_eq!(s.client.as_deref(), Some("litestar"));
        assert_eq!(s.versions["apitally-py"], "1.0.0");
        assert_eq!(s.versions["litestar"], "2.25.0");
        assert_eq!(s.endpoints[2], ("POST".into(), "/echo".into()));
    }

    #[test]
    fn error_events_count_per_consumer() {
        let body = json!({"method": "POST", "path": "/items", "source": "body",
            "field": "items.0.name", "message": "required", "type": "missing",
            "counts": [{"count": 2}, {"consumer": "acme", "count": 1}]});
        let errors = validation_error(&body);
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].0.location, ["body", "items", "0", "name"]);
        assert_eq!((errors[0].0.consumer.as_ref(), errors[0].1), (None, 2));
        assert_eq!(
            (errors[1].0.consumer.as_deref(), errors[1].1),
            (Some("acme"), 1)
        );
        let server = server_error(&json!({"method": "GET", "path": "/fail", "type": "E",
            "message": "m", "stacktrace": "s", "counts": [{"count": 3}]}));
        assert_eq!((server[0].0.traceback.as_str(), server[0].1), ("s", 3));
    }

    #[test]
    fn shown_exports_are_shortened() {
        let e = sample::traces();
        let shown = shown_json(&e);
        let spans = shown["resourceSpans"][0]["scopeSpans"][0]["spans"]
            .as_array()
            .unwrap();
        assert_eq!(spans.len(), 6, "small exports are shown whole");
        assert!(shown.get("local_hub_note").is_none());
        let OtlpExport::Traces(mut m) = e else {
            unreachable!()
        };
        let one = m.resource_spans[0].clone();
        m.resource_spans = vec![one; 5];
        let shown = shown_json(&OtlpExport::Traces(m));
        assert_eq!(shown["resourceSpans"].as_array().unwrap().len(), 3);
        assert!(shown["local_hub_note"].is_string());
    }
}

//! The hub v2 protocol: `POST /v2/{client_id}/{env}/{startup|sync|log}`, checked by
//! [`crate::check`] and converted into [`crate::model`] values.

use std::{io::Read, sync::Mutex};

use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine as _;
use serde_json::Value;

use crate::{
    check,
    model::{
        Body, Bucket, ConsumerInfo, Exception, LogRecord, Message, Metrics, Received,
        RequestCounts, RequestLog, RequestLogTotals, Resources, ServerError, Span, Startup,
        ValidationError,
    },
    state::{now, State},
};

const PROTOCOL: &str = "hub v2";
/// Longest decoded body shown, bytes of text.
const MAX_BODY_TEXT: usize = 64 * 1024;
/// Width of the response-time bins, ms (§4.4).
const BIN_MS: f64 = 10.0;

/// Receives one hub v2 post.
pub(crate) async fn receive(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    apitally_test_hub::RawBody(body): apitally_test_hub::RawBody,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let (client_id, env, endpoint) = path.into_inner();
    let app = format!("{client_id}/{env}");
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    let problems = match endpoint.as_str() {
        "startup" | "sync" => match serde_json::from_slice::<Value>(&body) {
            Ok(json) => {
                let problems = if endpoint == "startup" {
                    check::startup(&json)
                } else {
                    check::sync(&json)
                };
                if problems.is_empty() {
                    if let Some(totals) = RequestLogTotals::of(&req) {
                        state.log_totals(&app, string(&json["instance_uuid"]), totals);
                    }
                    if endpoint == "startup" {
                        state.startup(&app, startup(&json));
                        state.received(&app, received("startup", json));
                    } else {
                        let id = json["message_uuid"].as_str().map(str::to_owned);
                        if state.metrics(&app, id.as_deref(), metrics(&json, now())) {
                            state.received(&app, received("sync", json));
                        }
                        println!("{}", state.terminal_summary(&app));
                    }
                }
                problems
            }
            Err(err) => vec![format!("body is not JSON: {err}")],
        },
        "log" => {
            let mut text = String::new();
            match flate2::read::MultiGzDecoder::new(&body[..]).read_to_string(&mut text) {
                Ok(_) => {
                    let lines: Vec<Value> = text
                        .lines()
                        .filter_map(|l| serde_json::from_str(l).ok())
                        .collect();
                    let problems = check::log_lines(&lines);
                    if problems.is_empty() {
                        state.request_logs(&app, lines.into_iter().map(request_log).collect());
                    }
                    problems
                }
                Err(err) => vec![format!("body is not a gzip file: {err}")],
            }
        }
        other => return HttpResponse::NotFound().body(format!("no endpoint {other:?}")),
    };
    if problems.is_empty() {
        state.protocol(&app, PROTOCOL);
        HttpResponse::Accepted().finish()
    } else {
        eprintln!("local hub: rejected {endpoint} from {app}: {problems:?}");
        state.rejected(&app, &endpoint, &problems);
        HttpResponse::UnprocessableEntity().json(serde_json::json!({ "detail": problems }))
    }
}

fn received(kind: &'static str, body: Value) -> Received {
    Received {
        at: now(),
        kind,
        protocol: PROTOCOL,
        body,
    }
}

fn string(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(string)
        .collect()
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((string(&p[0])?, string(&p[1])?)))
        .collect()
}

/// A startup payload (§4.2), already checked.
fn startup(p: &Value) -> Startup {
    Startup {
        instance: string(&p["instance_uuid"]),
        client: string(&p["client"]),
        versions: p["versions"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), string(v)?)))
            .collect(),
        endpoints: p["paths"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| Some((string(&i["method"])?.to_uppercase(), string(&i["path"])?)))
            .collect(),
    }
}

/// A sync payload (§4.3), already checked. Its data counts at its `timestamp` (kept on
/// re-send, so a late retry lands in the minute it was collected), else at `arrived`.
fn metrics(p: &Value, arrived: f64) -> Metrics {
    let status = |v: &Value| v.as_u64().map_or(0, |s| s.min(999) as u16);
    Metrics {
        at: p["timestamp"].as_f64().unwrap_or(arrived),
        instance: string(&p["instance_uuid"]),
        requests: p["requests"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| RequestCounts {
                method: string(&r["method"]).unwrap_or_default(),
                route: string(&r["path"]).unwrap_or_default(),
                status: status(&r["status_code"]),
                consumer: string(&r["consumer"]),
                count: r["request_count"].as_u64().unwrap_or(0),
                request_size_sum: r["request_size_sum"].as_u64().unwrap_or(0),
                response_size_sum: r["response_size_sum"].as_u64().unwrap_or(0),
                response_times: r["response_times"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(bin, n)| {
                        let lower = bin.parse::<u64>().ok()? as f64;
                        Some(Bucket {
                            lower_ms: lower,
                            upper_ms: lower + BIN_MS,
                            count: n.as_u64()?,
                        })
                    })
                    .collect(),
            })
            .collect(),
        validation_errors: p["validation_errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let v = ValidationError {
                    consumer: string(&e["consumer"]),
                    method: string(&e["method"]).unwrap_or_default(),
                    route: string(&e["path"]).unwrap_or_default(),
                    location: strings(&e["loc"]),
                    message: string(&e["msg"]).unwrap_or_default(),
                    kind: string(&e["type"]).unwrap_or_default(),
                };
                (v, e["error_count"].as_u64().unwrap_or(0))
            })
            .collect(),
        server_errors: p["server_errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let s = ServerError {
                    consumer: string(&e["consumer"]),
                    method: string(&e["method"]).unwrap_or_default(),
                    route: string(&e["path"]).unwrap_or_default(),
                    kind: string(&e["type"]).unwrap_or_default(),
                    message: string(&e["msg"]).unwrap_or_default(),
                    traceback: string(&e["traceback"]).unwrap_or_default(),
                };
                (s, e["error_count"].as_u64().unwrap_or(0))
            })
            .collect(),
        consumers: p["consumers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| {
                Some(ConsumerInfo {
                    identifier: string(&c["identifier"])?,
                    name: string(&c["name"]),
                    group: string(&c["group"]),
                })
            })
            .collect(),
        resources: p["resources"]["cpu_percent"].as_f64().map(|cpu| Resources {
            cpu_percent: cpu,
            memory_bytes: p["resources"]["memory_rss"].as_u64().unwrap_or(0),
        }),
    }
}

/// The path and query of a URL (`https://host/a?b` → `/a?b`).
fn path_of(url: &str) -> String {
    match url.split_once("://") {
        Some((_, rest)) => match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => rest[i..].to_owned(),
            Some(i) => format!("/{}", &rest[i..]),
            None => "/".to_owned(),
        },
        None => url.to_owned(),
    }
}

/// JSON text re-indented by two spaces, keeping key order and number spelling; `None` when
/// `text` is not a JSON object or array.
pub(crate) fn pretty_json(text: &str) -> Option<String> {
    let trimmed = text.trim();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return None;
    }
    serde_json::from_str::<serde::de::IgnoredAny>(trimmed).ok()?;
    let mut out = String::with_capacity(trimmed.len() * 2);
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    let mut chars = trimmed.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('}' | ']')) {
                    out.extend(chars.next());
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    Some(out)
}

/// A logged body (standard base64), decoded for reading.
fn body(base64: &str) -> Body {
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(base64) else {
        return Body {
            text: "(not valid base64)".into(),
            binary: true,
            truncated: false,
            bytes: 0,
        };
    };
    readable_body(&bytes)
}

/// Body bytes for reading: UTF-8 text (JSON indented, cut at [`MAX_BODY_TEXT`]), or a note
/// naming binary data by its size.
pub(crate) fn readable_body(bytes: &[u8]) -> Body {
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            let mut text = pretty_json(text).unwrap_or_else(|| text.to_owned());
            let truncated = text.len() > MAX_BODY_TEXT;
            if truncated {
                let mut end = MAX_BODY_TEXT;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
            }
            Body {
                text,
                binary: false,
                truncated,
                bytes: bytes.len(),
            }
        }
        Err(_) => Body {
            text: format!("({} bytes of binary data)", bytes.len()),
            binary: true,
            truncated: false,
            bytes: bytes.len(),
        },
    }
}

fn message(m: &Value) -> Message {
    Message {
        headers: pairs(&m["headers"]),
        size: m["size"].as_u64(),
        body: m["body"].as_str().filter(|b| !b.is_empty()).map(body),
    }
}

/// Unix nanoseconds, as a number or a decimal string (§11), in seconds.
fn nanos(v: &Value) -> f64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .map_or(0.0, |ns| ns as f64 / 1e9)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A request-log line (§9.7), already checked.
fn request_log(line: Value) -> RequestLog {
    let (req, res) = (&line["request"], &line["response"]);
    let url = string(&req["url"]).unwrap_or_default();
    let exception = &line["exception"];
    RequestLog {
        id: string(&line["uuid"]).unwrap_or_default(),
        time: req["timestamp"].as_f64().unwrap_or(0.0),
        method: string(&req["method"]).unwrap_or_default(),
        path: path_of(&url),
        url,
        route: string(&req["path"]),
        status: res["status_code"].as_u64().map_or(0, |s| s.min(999) as u16),
        duration_ms: res["response_time"].as_f64().unwrap_or(0.0) * 1000.0,
        consumer: string(&req["consumer"]),
        request: message(req),
        response: message(res),
        exception: exception.is_object().then(|| Exception {
            kind: string(&exception["type"]).unwrap_or_default(),
            message: string(&exception["message"]).unwrap_or_default(),
            traceback: string(&exception["traceback"]).or_else(|| string(&exception["stacktrace"])),
        }),
        logs: line["logs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| LogRecord {
                time: l["timestamp"].as_f64(),
                level: string(&l["level"]).unwrap_or_default(),
                logger: string(&l["logger"]),
                message: string(&l["message"]).unwrap_or_default(),
                location: string(&l["file"]).map(|f| match l["line"].as_u64() {
                    Some(n) => format!("{f}:{n}"),
                    None => f,
                }),
            })
            .collect(),
        spans: line["spans"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| Span {
                id: string(&s["span_id"]).unwrap_or_default(),
                parent_id: string(&s["parent_span_id"]),
                name: string(&s["name"]).unwrap_or_default(),
                kind: string(&s["kind"]),
                start: nanos(&s["start_time"]),
                end: nanos(&s["end_time"]),
                status: string(&s["status"]),
                attributes: s["attributes"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), text(v)))
                    .collect(),
            })
            .collect(),
        trace_id: string(&line["trace_id"]),
        original: line,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            path_of("https://h.example:8/items/1?x=<b>"),
            "/items/1?x=<b>"
        );
        assert_eq!(path_of("http://h?x=1"), "/?x=1");
        assert_eq!(path_of("http://h"), "/");
        assert_eq!(path_of("/raw"), "/raw");
    }

    #[test]
    fn json_bodies_are_indented_in_their_order() {
        assert_eq!(
            pretty_json(r#"{"z":1,"a":[1.0, {}],"s":"x,{\"y\":[]}"}"#).unwrap(),
            "{\n  \"z\": 1,\n  \"a\": [\n    1.0,\n    {}\n  ],\n  \"s\": \"x,{\\\"y\\\":[]}\"\n}"
        );
        assert_eq!(pretty_json("[]").unwrap(), "[]");
        assert_eq!(pretty_json("{\"a\":"), None);
        assert_eq!(pretty_json("42"), None);
    }

    #[test]
    fn bodies() {
        let b = body("eyJuYW1lIjoiV2lkZ2V0In0="); // {"name":"Widget"}
        assert_eq!(b.text, "{\n  \"name\": \"Widget\"\n}");
        assert_eq!((b.binary, b.bytes), (false, 17));
        assert_eq!(body("PHNjcmlwdD4=").text, "<script>");
        let binary = body("/wD+");
        assert!(binary.binary && binary.text.contains("3 bytes"));
        assert!(body("%%%").binary);
    }

    #[test]
    fn sync_to_metrics() {
        let m = metrics(
            &json!({
                "requests": [{"consumer": "c", "method": "GET", "path": "/a", "status_code": 404,
                    "request_count": 3, "request_size_sum": 0, "response_size_sum": 9,
                    "response_times": {"0": 2, "120": 1}, "request_sizes": {}, "response_sizes": {}}],
                "validation_errors": [], "server_errors": [],
                "consumers": [{"identifier": "c", "name": "C", "group": null}],
                "resources": null
            }),
            7.0,
        );
        assert_eq!(m.at, 7.0);
        let r = &m.requests[0];
        assert_eq!(
            (r.status, r.count, r.consumer.as_deref()),
            (404, 3, Some("c"))
        );
        assert_eq!(
            r.response_times,
            [
                Bucket {
                    lower_ms: 0.0,
                    upper_ms: 10.0,
                    count: 2
                },
                Bucket {
                    lower_ms: 120.0,
                    upper_ms: 130.0,
                    count: 1
                }
            ]
        );
        assert_eq!(m.consumers[0].name.as_deref(), Some("C"));
        assert!(m.resources.is_none());
    }

    #[test]
    fn log_line_to_request_log() {
        let l = request_log(json!({
            "uuid": "20b76fab-2878-4003-b13e-236f46e19fb7",
            "request": {"timestamp": 1.5, "method": "POST", "path": "/items",
                "url": "https://api.example.com/items?debug=1", "consumer": "c",
                "headers": [["content-type", "application/json"]], "size": 17,
                "body": "eyJuYW1lIjoiV2lkZ2V0In0="},
            "response": {"status_code": 201, "response_time": 0.042},
            "exception": {"type": "E", "message": "m", "stacktrace": "s"},
            "logs": [{"timestamp": 1.6, "logger": "app", "level": "INFO", "message": "hi",
                "file": "src/a.rs", "line": 3}],
            "spans": [{"span_id": "a", "parent_span_id": null, "name": "POST /items",
                "kind": "INTERNAL", "start_time": 1500000000, "end_time": "1542000000",
                "attributes": {"n": 1}}],
            "trace_id": "t"
        }));
        assert_eq!(l.path, "/items?debug=1");
        assert_eq!(l.route.as_deref(), Some("/items"));
        assert_eq!((l.status, l.duration_ms.round()), (201, 42.0));
        assert_eq!(l.request.headers[0].0, "content-type");
        assert!(l
            .request
            .body
            .unwrap()
            .text
            .contains("\"name\": \"Widget\""));
        assert!(l.response.body.is_none());
        assert_eq!(l.exception.unwrap().traceback.as_deref(), Some("s"));
        assert_eq!(l.logs[0].location.as_deref(), Some("src/a.rs:3"));
        assert_eq!((l.spans[0].start, l.spans[0].end), (1.5, 1.542));
        assert_eq!(l.spans[0].attributes, [("n".into(), "1".into())]);
    }
}

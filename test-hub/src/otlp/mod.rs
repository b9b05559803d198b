//! The receiving side of the 1.x protocol: OTLP/HTTP protobuf exports, gzip'd, posted to
//! `/v1/traces`, `/v1/logs` and `/v1/metrics` with a write token (`shared/protocol-v1.md` §1).
//!
//! [`check_export`] applies what the real server needs (headers, gzip, protobuf) and decodes
//! the body into an [`OtlpExport`]. Its `spans`, `log_records`, `histogram_points` and
//! `gauge_points` flatten an export into plain values ([`OtlpSpan`], [`OtlpLogRecord`],
//! [`OtlpHistogramPoint`], [`OtlpGaugePoint`]) so that tests read like the data they expect.
//! [`OtlpExport::from_otlp_json`] and [`OtlpExport::to_gzip`] go the other way, for tests that
//! post exports of their own ([`sample`] has the ones a real 1.x SDK sent).

mod values;

use std::io::{Read, Write};

use opentelemetry_proto::tonic::{
    collector::{
        logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest,
        trace::v1::ExportTraceServiceRequest,
    },
    logs::v1::SeverityNumber,
    metrics::v1::AggregationTemporality,
    trace::v1::{span::SpanKind, status::StatusCode},
};
use prost::Message as _;
use serde_json::Value;

pub use self::values::{
    any_value_to_json, exponential_bucket_index, OtlpEvent, OtlpGaugePoint, OtlpHistogramPoint,
    OtlpLogRecord, OtlpSpan,
};

/// The signals, as they appear in the URL (`/v1/{signal}`).
pub const SIGNALS: [&str; 3] = ["traces", "logs", "metrics"];

/// The largest body accepted on the wire (the real server caps payloads at 4 MiB, §1.5).
pub const MAX_WIRE_BYTES: usize = 4 << 20;
/// The largest decompressed body accepted (the real server drops larger ones, §1.5).
pub const MAX_DECODED_BYTES: usize = 16 << 20;

/// How many characters of a write token may be shown: `apt_` and four more, as the SDKs log it.
pub const TOKEN_SHOWN_CHARS: usize = 8;

/// One decoded export: the body of one POST, all appended messages merged (§1.5).
#[derive(Debug, Clone, PartialEq)]
pub enum OtlpExport {
    /// From `/v1/traces`.
    Traces(ExportTraceServiceRequest),
    /// From `/v1/logs`.
    Logs(ExportLogsServiceRequest),
    /// From `/v1/metrics`.
    Metrics(ExportMetricsServiceRequest),
}

/// An export that passed [`check_export`], with what identifies its sender.
#[derive(Debug, Clone)]
pub struct CheckedExport {
    /// The decoded body.
    pub export: OtlpExport,
    /// The `Apitally-Env` header.
    pub env: String,
    /// The first [`TOKEN_SHOWN_CHARS`] characters of the write token (never the whole of it).
    pub token_prefix: String,
}

impl OtlpExport {
    /// `traces`, `logs` or `metrics`.
    pub fn signal(&self) -> &'static str {
        match self {
            OtlpExport::Traces(_) => "traces",
            OtlpExport::Logs(_) => "logs",
            OtlpExport::Metrics(_) => "metrics",
        }
    }

    /// Decodes a decompressed body as the message of `signal`.
    ///
    /// # Errors
    ///
    /// The protobuf decoding error, or an unknown signal.
    pub fn decode(signal: &str, protobuf: &[u8]) -> Result<Self, String> {
        let err = |e: prost::DecodeError| e.to_string();
        Ok(match signal {
            "traces" => {
                OtlpExport::Traces(ExportTraceServiceRequest::decode(protobuf).map_err(err)?)
            }
            "logs" => OtlpExport::Logs(ExportLogsServiceRequest::decode(protobuf).map_err(err)?),
            "metrics" => {
                OtlpExport::Metrics(ExportMetricsServiceRequest::decode(protobuf).map_err(err)?)
            }
            other => return Err(format!("no signal {other:?}")),
        })
    }

    /// The message as protobuf bytes.
    pub fn to_protobuf(&self) -> Vec<u8> {
        match self {
            OtlpExport::Traces(m) => m.encode_to_vec(),
            OtlpExport::Logs(m) => m.encode_to_vec(),
            OtlpExport::Metrics(m) => m.encode_to_vec(),
        }
    }

    /// The message as a request body the way the SDK sends it: protobuf in one gzip member.
    pub fn to_gzip(&self) -> Vec<u8> {
        gzip(&self.to_protobuf())
    }

    /// The message in OTLP/JSON (ids in hex, 64-bit integers as strings, enums as numbers).
    pub fn to_otlp_json(&self) -> Value {
        let json = match self {
            OtlpExport::Traces(m) => serde_json::to_value(m),
            OtlpExport::Logs(m) => serde_json::to_value(m),
            OtlpExport::Metrics(m) => serde_json::to_value(m),
        };
        json.unwrap_or(Value::Null)
    }

    /// Reads an export of `signal` from OTLP/JSON, such as the samples or a `json!` literal in
    /// a test. Enum values may be numbers or their names (`"SPAN_KIND_SERVER"`,
    /// `"AGGREGATION_TEMPORALITY_DELTA"`, `"STATUS_CODE_ERROR"`, `"SEVERITY_NUMBER_INFO"`).
    ///
    /// # Errors
    ///
    /// What does not fit the message of `signal`.
    pub fn from_otlp_json(signal: &str, json: &Value) -> Result<Self, String> {
        let mut json = json.clone();
        enums_to_numbers(&mut json, None);
        let err = |e: serde_json::Error| e.to_string();
        Ok(match signal {
            "traces" => OtlpExport::Traces(serde_json::from_value(json).map_err(err)?),
            "logs" => OtlpExport::Logs(serde_json::from_value(json).map_err(err)?),
            "metrics" => OtlpExport::Metrics(serde_json::from_value(json).map_err(err)?),
            other => return Err(format!("no signal {other:?}")),
        })
    }
}

/// Replaces OTLP/JSON enum names by their numbers (the serde support of `opentelemetry-proto`
/// reads only numbers).
fn enums_to_numbers(v: &mut Value, key: Option<&str>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                enums_to_numbers(child, Some(k));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| enums_to_numbers(i, key)),
        Value::String(name) => {
            let number = match key {
                Some("kind") => SpanKind::from_str_name(name).map(|k| k as i32),
                Some("code") => StatusCode::from_str_name(name).map(|c| c as i32),
                Some("aggregationTemporality") => {
                    AggregationTemporality::from_str_name(name).map(|t| t as i32)
                }
                Some("severityNumber") => SeverityNumber::from_str_name(name).map(|s| s as i32),
                _ => None,
            };
            if let Some(n) = number {
                *v = Value::from(n);
            }
        }
        _ => {}
    }
}

/// `bytes` in one gzip member.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).expect("writing to memory");
    gz.finish().expect("writing to memory")
}

/// The captured payloads of apitally-py 1.0.0 (`fixtures/`), decoded: what a real 1.x SDK sends.
pub mod sample {
    use super::OtlpExport;

    fn load(signal: &str, json: &str) -> OtlpExport {
        let json = serde_json::from_str(json).expect("sample is JSON");
        OtlpExport::from_otlp_json(signal, &json).expect("sample is OTLP/JSON")
    }

    /// Six SERVER spans (`POST /echo`, `GET /hello`, `GET /items/{item_id}`, twice each) with
    /// captured headers and bodies.
    pub fn traces() -> OtlpExport {
        load("traces", include_str!("../../fixtures/v1-traces.json"))
    }

    /// The `apitally.app.startup` event of a Litestar app.
    pub fn logs() -> OtlpExport {
        load("logs", include_str!("../../fixtures/v1-logs.json"))
    }

    /// Two merged messages: the process gauges, then the three request histograms.
    pub fn metrics() -> OtlpExport {
        load("metrics", include_str!("../../fixtures/v1-metrics.json"))
    }
}

/// Whether `token` is a write token: `apt_` and 24 ASCII letters or digits (§1.4).
pub fn is_write_token(token: &str) -> bool {
    token.len() == 28
        && token.starts_with("apt_")
        && token[4..].bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The first [`TOKEN_SHOWN_CHARS`] characters of `token`, the most of it ever shown.
pub fn token_prefix(token: &str) -> String {
    token.chars().take(TOKEN_SHOWN_CHARS).collect()
}

/// Checks one `POST /v1/{signal}` as the real server would need it, and decodes its body.
///
/// `headers` are `(lowercase name, value)` pairs. Needed: `Authorization: Bearer <write
/// token>` (`apt_` + 24 ASCII letters or digits), a non-empty `Apitally-Env`, `Content-Type:
/// application/x-protobuf`, `Content-Encoding: gzip`, and a body of at most
/// [`MAX_WIRE_BYTES`] that gunzips (one or more members) to at most [`MAX_DECODED_BYTES`] of a
/// valid `Export*ServiceRequest` of the signal. An empty message is valid.
///
/// # Errors
///
/// Every problem found, as sentences; a token is never quoted beyond its first
/// [`TOKEN_SHOWN_CHARS`] characters.
pub fn check_export(
    signal: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<CheckedExport, Vec<String>> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
    };
    let mut problems = Vec::new();
    if !SIGNALS.contains(&signal) {
        problems.push(format!(
            "no signal {signal:?}: POST to /v1/traces, /v1/logs or /v1/metrics"
        ));
    }
    let token = match header("authorization") {
        None => {
            problems.push("`Authorization` is missing: send `Bearer <write token>`".into());
            None
        }
        Some(value) => {
            let token = value
                .split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token);
            match token {
                Some(token) if is_write_token(token) => Some(token),
                Some(token) => {
                    problems.push(format!(
                        "the write token must be `apt_` and 24 ASCII letters or digits; got `{}…` \
                         ({} characters)",
                        token_prefix(token),
                        token.chars().count()
                    ));
                    None
                }
                None => {
                    problems.push("`Authorization` must be `Bearer <write token>`".into());
                    None
                }
            }
        }
    };
    let env = header("apitally-env").filter(|e| !e.is_empty());
    if env.is_none() {
        problems.push("`Apitally-Env` is missing or empty".into());
    }
    let media_type = header("content-type").map(|t| {
        t.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    if media_type.as_deref() != Some("application/x-protobuf") {
        problems.push(format!(
            "`Content-Type` must be `application/x-protobuf`, not {:?}",
            header("content-type").unwrap_or("(none)")
        ));
    }
    if !header("content-encoding").is_some_and(|e| e.eq_ignore_ascii_case("gzip")) {
        problems.push(format!(
            "`Content-Encoding` must be `gzip`, not {:?}",
            header("content-encoding").unwrap_or("(none)")
        ));
    }
    let export = decode_body(signal, body).map_err(|p| problems.push(p)).ok();
    match (export, token, env) {
        (Some(export), Some(token), Some(env)) if problems.is_empty() => Ok(CheckedExport {
            export,
            env: env.to_owned(),
            token_prefix: token_prefix(token),
        }),
        _ => Err(problems),
    }
}

/// Gunzips and decodes a body, within the server's limits.
fn decode_body(signal: &str, body: &[u8]) -> Result<OtlpExport, String> {
    if body.is_empty() {
        return Err("the body is empty: send a gzip'd protobuf message".into());
    }
    if body.len() > MAX_WIRE_BYTES {
        return Err(format!(
            "the body has {} bytes; the server takes at most {MAX_WIRE_BYTES}",
            body.len()
        ));
    }
    let mut protobuf = Vec::new();
    flate2::read::MultiGzDecoder::new(body)
        .take(MAX_DECODED_BYTES as u64 + 1)
        .read_to_end(&mut protobuf)
        .map_err(|e| format!("the body is not gzip: {e}"))?;
    if protobuf.len() > MAX_DECODED_BYTES {
        return Err(format!(
            "the body decompresses to more than {MAX_DECODED_BYTES} bytes, which the server drops"
        ));
    }
    if !SIGNALS.contains(&signal) {
        return Err(format!("no signal {signal:?}"));
    }
    OtlpExport::decode(signal, &protobuf)
        .map_err(|e| format!("the body is not an OTLP {signal} export: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(token: &str) -> Vec<(String, String)> {
        [
            ("authorization", format!("Bearer {token}")),
            ("apitally-env", "dev".into()),
            ("content-type", "application/x-protobuf".into()),
            ("content-encoding", "gzip".into()),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v))
        .collect()
    }

    const TOKEN: &str = "apt_0123456789abcdefABCDEF01";

    #[test]
    fn write_tokens() {
        assert!(is_write_token(TOKEN));
        assert!(!is_write_token("apt_0123456789abcdefABCDEF0"));
        assert!(!is_write_token("apt_0123456789abcdefABCDEF012"));
        assert!(!is_write_token("apt_0123456789abcdefABCDEF-1"));
        assert!(!is_write_token("APT_0123456789abcdefABCDEF01"));
        // 28 bytes but not 28 ASCII characters.
        assert!(!is_write_token("apt_0123456789abcdefABCDEé"));
        assert_eq!(token_prefix(TOKEN), "apt_0123");
    }

    #[test]
    fn samples_round_trip_through_protobuf() {
        for (signal, export) in [
            ("traces", sample::traces()),
            ("logs", sample::logs()),
            ("metrics", sample::metrics()),
        ] {
            assert_eq!(export.signal(), signal);
            let checked = check_export(signal, &headers(TOKEN), &export.to_gzip()).unwrap();
            assert_eq!(checked.export, export);
            assert_eq!(
                (checked.env.as_str(), checked.token_prefix.as_str()),
                ("dev", "apt_0123")
            );
            // And back to OTLP/JSON, which reads again as the same message.
            let again = OtlpExport::from_otlp_json(signal, &export.to_otlp_json()).unwrap();
            assert_eq!(again, export);
        }
    }

    #[test]
    fn concatenated_messages_decode_as_one() {
        let OtlpExport::Traces(one) = sample::traces() else {
            unreachable!()
        };
        let mut body = one.encode_to_vec();
        body.extend(one.encode_to_vec());
        let checked = check_export("traces", &headers(TOKEN), &gzip(&body)).unwrap();
        let OtlpExport::Traces(both) = checked.export else {
            unreachable!()
        };
        assert_eq!(both.resource_spans.len(), 2 * one.resource_spans.len());
    }

    #[test]
    fn problems_are_all_listed_without_the_token() {
        let secret = "apt_0123456789abcdefSECRET!!";
        let mut h = headers(secret);
        h.retain(|(n, _)| n != "apitally-env");
        h[1].1 = "application/json".into();
        h[2].1 = "br".into();
        let problems = check_export("traces", &h, b"not gzip").unwrap_err();
        assert_eq!(problems.len(), 5, "{problems:#?}");
        let all = problems.join("\n");
        assert!(all.contains("`apt_0123…` (28 characters)"), "{all}");
        assert!(!all.contains("SECRET"));
        assert!(all.contains("Apitally-Env") && all.contains("application/json"));
        assert!(all.contains("not gzip"));

        let problems = check_export("logs", &headers(TOKEN), &gzip(b"\xff\xff\xff")).unwrap_err();
        assert!(
            problems[0].contains("not an OTLP logs export"),
            "{problems:?}"
        );
        assert!(check_export("logs", &headers(TOKEN), b"").is_err());
        let mut basic = headers(TOKEN);
        basic[0].1 = format!("Basic {TOKEN}");
        assert!(check_export("logs", &basic, &gzip(b"")).is_err());
    }

    #[test]
    fn oversized_bodies_are_refused() {
        let huge = gzip(&vec![0u8; MAX_DECODED_BYTES + 1]);
        let problems = check_export("metrics", &headers(TOKEN), &huge).unwrap_err();
        assert!(
            problems[0].contains("decompresses to more than"),
            "{problems:?}"
        );
    }
}

//! One item as a line of a hub v2 request-log file: compact JSON written by hand (see
//! [`to_line`]).

use super::{CapturedLog, CapturedSpan, Headers, RequestLogItem};

pub(super) fn empty_str(v: &Option<String>) -> bool {
    v.as_deref().is_none_or(str::is_empty)
}

pub(super) fn empty_body(v: &Option<Vec<u8>>) -> bool {
    v.as_deref().is_none_or(<[u8]>::is_empty)
}

/// Serialises one item as a compact JSON line with a fresh UUID, applying the empty-value rule
/// (null and empty values are left out of `request` and `response`; zero sizes are kept).
///
/// Written by hand rather than through serde: this runs once per logged request, and a direct
/// writer (word-at-a-time string escaping, base64 straight into the line, no intermediate
/// strings) costs a fraction of the serde path. The output is what `serde_json` would write for
/// the same fields (pinned by a test).
pub(crate) fn to_line(item: &RequestLogItem, out: &mut Vec<u8>) -> serde_json::Result<()> {
    let r = &item.request;
    let s = &item.response;
    let mut uuid = uuid::Uuid::encode_buffer();
    let uuid = uuid::Builder::from_random_bytes(random_u128().to_le_bytes())
        .into_uuid()
        .hyphenated()
        .encode_lower(&mut uuid);
    out.extend_from_slice(b"{\"uuid\":\"");
    out.extend_from_slice(uuid.as_bytes());
    out.extend_from_slice(b"\",\"request\":{\"timestamp\":");
    write_f64(out, r.timestamp)?;
    out.extend_from_slice(b",\"method\":");
    write_str(out, &r.method);
    if !empty_str(&r.path) {
        out.extend_from_slice(b",\"path\":");
        write_str(out, r.path.as_deref().unwrap_or_default());
    }
    out.extend_from_slice(b",\"url\":");
    write_str(out, &r.url);
    write_headers(out, &r.headers);
    if let Some(size) = r.size {
        out.extend_from_slice(b",\"size\":");
        write_u64(out, size);
    }
    if !empty_str(&r.consumer) {
        out.extend_from_slice(b",\"consumer\":");
        write_str(out, r.consumer.as_deref().unwrap_or_default());
    }
    write_body(out, &r.body);
    out.extend_from_slice(b"},\"response\":{\"status_code\":");
    write_u64(out, u64::from(s.status_code));
    out.extend_from_slice(b",\"response_time\":");
    write_f64(out, s.response_time)?;
    write_headers(out, &s.headers);
    if let Some(size) = s.size {
        out.extend_from_slice(b",\"size\":");
        write_u64(out, size);
    }
    write_body(out, &s.body);
    out.push(b'}');
    if let Some(e) = &item.exception {
        out.extend_from_slice(b",\"exception\":{\"type\":");
        write_str(out, &e.error_type);
        out.extend_from_slice(b",\"message\":");
        write_str(out, &e.message);
        out.extend_from_slice(b",\"traceback\":");
        write_str(out, &e.traceback);
        out.push(b'}');
    }
    if !item.logs.is_empty() {
        out.extend_from_slice(b",\"logs\":[");
        for (i, log) in item.logs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_log(out, log)?;
        }
        out.push(b']');
    }
    if !item.spans.is_empty() {
        out.extend_from_slice(b",\"spans\":[");
        for (i, span) in item.spans.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_span(out, span)?;
        }
        out.push(b']');
    }
    if let Some(trace_id) = &item.trace_id {
        out.extend_from_slice(b",\"trace_id\":");
        write_str(out, trace_id);
    }
    out.extend_from_slice(b"}\n");
    Ok(())
}

/// A log record, as `serde_json` writes [`CapturedLog`] (pinned by a test).
pub(super) fn write_log(out: &mut Vec<u8>, log: &CapturedLog) -> serde_json::Result<()> {
    out.extend_from_slice(b"{\"timestamp\":");
    write_f64(out, log.timestamp)?;
    out.extend_from_slice(b",\"logger\":");
    write_str(out, &log.logger);
    out.extend_from_slice(b",\"level\":");
    write_str(out, &log.level);
    out.extend_from_slice(b",\"message\":");
    write_str(out, &log.message);
    if let Some(file) = &log.file {
        out.extend_from_slice(b",\"file\":");
        write_str(out, file);
    }
    if let Some(line) = log.line {
        out.extend_from_slice(b",\"line\":");
        write_u64(out, u64::from(line));
    }
    out.push(b'}');
    Ok(())
}

/// A span, as `serde_json` writes [`CapturedSpan`] (pinned by a test).
pub(super) fn write_span(out: &mut Vec<u8>, span: &CapturedSpan) -> serde_json::Result<()> {
    out.extend_from_slice(b"{\"span_id\":");
    write_str(out, &span.span_id);
    out.extend_from_slice(b",\"parent_span_id\":");
    match &span.parent_span_id {
        Some(parent) => write_str(out, parent),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"name\":");
    write_str(out, &span.name);
    out.extend_from_slice(b",\"kind\":");
    write_str(out, &span.kind);
    out.extend_from_slice(b",\"start_time\":");
    write_u64(out, span.start_time);
    out.extend_from_slice(b",\"end_time\":");
    write_u64(out, span.end_time);
    if let Some(status) = &span.status {
        out.extend_from_slice(b",\"status\":");
        write_str(out, status);
    }
    if !span.attributes.is_empty() {
        out.extend_from_slice(b",\"attributes\":");
        serde_json::to_writer(&mut *out, &span.attributes)?;
    }
    out.push(b'}');
    Ok(())
}

/// 128 random bits for a line's UUID without a system call per line: two generators per
/// thread, each with 64 bits of state seeded from the OS (through `Uuid::new_v4`), so that a
/// UUID depends on 128 bits of seed, as one from `Uuid::new_v4` would.
pub(super) fn random_u128() -> u128 {
    thread_local! {
        static RNGS: std::cell::RefCell<(fastrand::Rng, fastrand::Rng)> = {
            let (a, b) = uuid::Uuid::new_v4().as_u64_pair();
            std::cell::RefCell::new((fastrand::Rng::with_seed(a), fastrand::Rng::with_seed(b)))
        };
    }
    RNGS.with(|rngs| {
        let (hi, lo) = &mut *rngs.borrow_mut();
        u128::from(hi.u64(..)) << 64 | u128::from(lo.u64(..))
    })
}

pub(super) fn write_headers(out: &mut Vec<u8>, headers: &Headers) {
    if headers.is_empty() {
        return;
    }
    out.extend_from_slice(b",\"headers\":[");
    for (i, (name, value)) in headers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        write_str(out, name);
        out.push(b',');
        write_str(out, value);
        out.push(b']');
    }
    out.push(b']');
}

pub(super) fn write_body(out: &mut Vec<u8>, body: &Option<Vec<u8>>) {
    if empty_body(body) {
        return;
    }
    let body = body.as_deref().unwrap_or_default();
    out.extend_from_slice(b",\"body\":\"");
    // Base64 needs no JSON escaping.
    write_base64(out, body);
    out.push(b'"');
}

/// Appends `input` in standard, padded base64 (the `base64` crate's `STANDARD` output), with
/// SIMD where the CPU has it (detected at run time): bodies are the bulk of a logged request's
/// line, and this is about a sixth of the cost of a scalar table encoder.
pub(super) fn write_base64(out: &mut Vec<u8>, input: &[u8]) {
    base64_simd::STANDARD.encode_append(input, out);
}

/// Writes a number as `serde_json` does (the shortest form that reads back as the same `f64`).
///
/// Timestamps are whole milliseconds: for those, that form is the decimal itself (`s.mmm`
/// without trailing zeros, `s.0` for whole seconds), written with integer formatting.
pub(super) fn write_f64(out: &mut Vec<u8>, value: f64) -> serde_json::Result<()> {
    // Below 10^15 ms (10^12 s) the decimal has at most 15 significant digits, so it reads back
    // as the same f64, and no shorter decimal does (those differ by at least 1 ms, more than
    // the f64 spacing there).
    const MAX_MS: f64 = 1e15;
    let ms = value * 1000.0;
    if value.is_sign_positive() && ms < MAX_MS {
        let whole = ms.round() as u64;
        if whole as f64 / 1000.0 == value {
            write_u64(out, whole / 1000);
            let frac = (whole % 1000) as u32;
            if frac == 0 {
                out.extend_from_slice(b".0");
            } else {
                let digits = [
                    b'.',
                    b'0' + (frac / 100) as u8,
                    b'0' + (frac / 10 % 10) as u8,
                    b'0' + (frac % 10) as u8,
                ];
                let len = if !frac.is_multiple_of(10) {
                    4
                } else if !frac.is_multiple_of(100) {
                    3
                } else {
                    2
                };
                out.extend_from_slice(&digits[..len]);
            }
            return Ok(());
        }
    }
    serde_json::to_writer(out, &value)
}

pub(super) fn write_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Whether any byte of the word is `"`, `\\` or a control character (below 0x20).
#[inline]
pub(super) fn word_needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    (below_space
        | has_zero(word ^ (ONES * u64::from(b'"')))
        | has_zero(word ^ (ONES * u64::from(b'\\'))))
        != 0
}

/// Whether `bytes` holds a byte that JSON strings escape, checked eight bytes at a time.
#[inline]
pub(super) fn needs_escape(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        if word_needs_escape(u64::from_le_bytes(word.try_into().unwrap_or_default())) {
            return true;
        }
    }
    let rest = words.remainder();
    if rest.is_empty() {
        return false;
    }
    // Padded with spaces, which need no escaping.
    let mut last = [b' '; 8];
    last[..rest.len()].copy_from_slice(rest);
    word_needs_escape(u64::from_le_bytes(last))
}

/// Writes `value` as a JSON string, escaped as `serde_json` escapes it.
pub(super) fn write_str(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if !needs_escape(bytes) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut clean = 0; // bytes[..clean] are written
    for (at, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[clean..at]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        clean = at + 1;
    }
    out.extend_from_slice(&bytes[clean..]);
    out.push(b'"');
}

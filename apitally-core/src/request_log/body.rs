//! Logged bodies: which are captured (by content type), how a compressed one is decoded, and
//! how a JSON one that does not parse is still masked.
//!
//! One predicate, [`body_kind`], decides both whether a body is captured and how it is masked,
//! so that nothing is captured that masking does not know how to read.

use std::io::Read;

use super::mask::{self, Patterns};

/// How a captured body is masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// One JSON document: values of sensitive keys masked.
    Json,
    /// JSON lines: each line masked as a document.
    Ndjson,
    /// Plain text or HTML: logged as it is (nothing in it is masked).
    Text,
}

/// Media types whose bodies are JSON lines.
const NDJSON_TYPES: [&str; 6] = [
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonl",
    "application/jsonlines",
    "application/x-jsonlines",
];

/// What a body of this content type is, `None` when such bodies are not logged.
///
/// JSON: `application/json` and every `+json` type (`application/problem+json`,
/// `application/vnd.api+json`, `application/ld+json`, ...). JSON lines: `application/x-ndjson`,
/// `application/ndjson`, `application/jsonl` (and `x-jsonl`, `jsonlines`). Text: `text/plain`
/// and `text/html`. Compared case-insensitively, parameters (`; charset=...`) ignored. Types
/// that only look like JSON (`application/json5`, `application/jsonx`) are not logged: they
/// are not JSON, and masking could not read them.
pub(crate) fn body_kind(content_type: &str) -> Option<BodyKind> {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim_matches(|c: char| c == ' ' || c == '\t');
    let (kind, subtype) = media.split_once('/')?;
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    if eq(kind, "application") {
        if eq(subtype, "json") {
            return Some(BodyKind::Json);
        }
        if NDJSON_TYPES.iter().any(|t| eq(media, t)) {
            return Some(BodyKind::Ndjson);
        }
    }
    let plus_json = subtype.len() > 5
        && subtype.is_char_boundary(subtype.len() - 5)
        && eq(&subtype[subtype.len() - 5..], "+json");
    if plus_json && (eq(kind, "application") || eq(kind, "text")) {
        return Some(BodyKind::Json);
    }
    if eq(kind, "text") && (eq(subtype, "plain") || eq(subtype, "html")) {
        return Some(BodyKind::Text);
    }
    None
}

/// Why a body cannot be logged as read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Undecodable {
    /// Decoded, it is over the size limit.
    TooLarge,
    /// Compressed in a way that is not decoded here, or corrupt or cut short.
    Opaque,
}

/// The body as the app reads it: `gzip` and `deflate` bodies decompressed (to at most `limit`
/// bytes); `None` when it was not compressed (`Content-Encoding` absent or `identity`).
pub(crate) fn decode(
    content_encoding: Option<&str>,
    body: &[u8],
    limit: usize,
) -> Result<Option<Vec<u8>>, Undecodable> {
    let Some(encoding) = content_encoding
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity"))
    else {
        return Ok(None);
    };
    let read = |mut reader: Box<dyn Read + '_>| {
        let mut out = Vec::new();
        // One byte more than the limit tells an over-long body from one of exactly the limit.
        reader
            .by_ref()
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|_| Undecodable::Opaque)?;
        if out.len() > limit {
            return Err(Undecodable::TooLarge);
        }
        Ok(out)
    };
    if encoding.eq_ignore_ascii_case("gzip") || encoding.eq_ignore_ascii_case("x-gzip") {
        return read(Box::new(flate2::read::MultiGzDecoder::new(body))).map(Some);
    }
    if encoding.eq_ignore_ascii_case("deflate") {
        // HTTP's `deflate` is zlib; some clients send raw deflate.
        return read(Box::new(flate2::read::ZlibDecoder::new(body)))
            .or_else(|err| match err {
                Undecodable::TooLarge => Err(err),
                Undecodable::Opaque => read(Box::new(flate2::read::DeflateDecoder::new(body))),
            })
            .map(Some);
    }
    Err(Undecodable::Opaque)
}

/// Masks a JSON body that does not parse (a trailing comma, single quotes, comments, `NaN`, a
/// body cut short, several documents in one): the value after every key that matches `fields`
/// becomes `"******"`, whatever is around it. Keys are double- or single-quoted strings, or bare
/// identifiers, followed by `:` (comments allowed around it). A string value is masked to its
/// end (or to the end of the body, for a string cut short); a number or a bare word up to the
/// next delimiter. Objects and arrays under such keys are masked inside, as in valid JSON.
///
/// Returns `None`, so that the body is not logged, when it does not look like JSON at all
/// (after a byte-order mark and whitespace, neither `{` nor `[`), or when a string or word that
/// is not a key matches `fields` (`password` outside a key position means the structure could
/// not be told, for example after an unbalanced quote, and the value next to it may be a
/// secret).
pub(crate) fn mask_tolerant(body: &[u8], fields: &Patterns) -> Option<Vec<u8>> {
    let start = body.strip_prefix(b"\xef\xbb\xbf").map_or(0, |_| 3);
    let first = body[start..]
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .copied();
    if !matches!(first, Some(b'{' | b'[')) {
        return None;
    }
    let mut out = Vec::with_capacity(body.len());
    let mut at = 0;
    while at < body.len() {
        // A token with quotes or a colon inside was cut from the text around it (an unbalanced
        // quote): a sensitive name in it is no key to trust.
        let mut mangled = false;
        let name = match body[at] {
            b'"' | b'\'' => {
                let end = quoted_end(body, at);
                let inner = &body[(at + 1).min(end)..end.saturating_sub(1).max(at + 1)];
                mangled = inner.iter().any(|b| matches!(b, b'"' | b'\'' | b':'));
                out.extend_from_slice(&body[at..end]);
                at = end;
                unescape_lossy(inner)
            }
            b'A'..=b'Z' | b'a'..=b'z' | b'_' | b'$' => {
                let end = body[at..]
                    .iter()
                    .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'-')))
                    .map_or(body.len(), |n| at + n);
                out.extend_from_slice(&body[at..end]);
                let name = String::from_utf8_lossy(&body[at..end]).into_owned();
                at = end;
                name
            }
            byte => {
                out.push(byte);
                at += 1;
                continue;
            }
        };
        let sensitive = fields.matches(&name);
        let colon = skip_blank(body, at);
        if body.get(colon) != Some(&b':') || mangled {
            if sensitive {
                // A sensitive name where no key can be told.
                return None;
            }
            continue;
        }
        if !sensitive {
            continue;
        }
        out.extend_from_slice(&body[at..=colon]);
        at = skip_blank(body, colon + 1);
        out.extend_from_slice(&body[colon + 1..at]);
        match body.get(at) {
            Some(b'"' | b'\'') => {
                at = quoted_end(body, at);
                out.extend_from_slice(b"\"******\"");
            }
            // An array: every string and word in it is masked, to its closing bracket.
            Some(b'[') => {
                let end = array_end(body, at);
                mask_all(&body[at..end], &mut out);
                at = end;
            }
            // An object is walked: the keys inside are checked in turn.
            Some(b'{') | None => {}
            Some(_) => {
                let end = body[at..]
                    .iter()
                    .position(|b| matches!(b, b',' | b'}' | b']' | b'\n' | b'\r'))
                    .map_or(body.len(), |n| at + n);
                // Up to the delimiter, without the blanks before it.
                let value_end = at
                    + body[at..end]
                        .iter()
                        .rposition(|b| !b.is_ascii_whitespace())
                        .map_or(0, |n| n + 1);
                if value_end > at {
                    out.extend_from_slice(b"\"******\"");
                }
                at = value_end;
            }
        }
    }
    Some(out)
}

/// The index after the array opening at `start` (brackets counted, strings skipped; the end
/// of the body when it is not closed).
fn array_end(body: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < body.len() {
        match body[i] {
            b'"' | b'\'' => {
                i = quoted_end(body, i);
                continue;
            }
            b'[' => depth += 1,
            b']' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    body.len()
}

/// Copies `part` with every string and every word or number in it replaced by `"******"`.
fn mask_all(part: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < part.len() {
        match part[i] {
            b'"' | b'\'' => {
                i = quoted_end(part, i);
                out.extend_from_slice(b"\"******\"");
            }
            b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.' | b'_') => {
                while i < part.len()
                    && (part[i].is_ascii_alphanumeric()
                        || matches!(part[i], b'-' | b'+' | b'.' | b'_'))
                {
                    i += 1;
                }
                out.extend_from_slice(b"\"******\"");
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
}

/// The index after the string opening at `start` (its quote character closes it; a backslash
/// escapes the next byte): the end of the body for a string cut short.
fn quoted_end(body: &[u8], start: usize) -> usize {
    let quote = body[start];
    let mut i = start + 1;
    while i < body.len() {
        match body[i] {
            b'\\' => i += 2,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    body.len()
}

/// The index after a `//` comment (its line) or a `/* */` comment (or the end of the body).
fn comment_end(body: &[u8], start: usize) -> usize {
    if body.get(start + 1) == Some(&b'/') {
        return memchr::memchr(b'\n', &body[start..]).map_or(body.len(), |n| start + n);
    }
    memchr::memmem::find(&body[start + 2..], b"*/").map_or(body.len(), |n| start + 2 + n + 2)
}

/// The index of the first byte at or after `at` that is not whitespace or a comment.
fn skip_blank(body: &[u8], mut at: usize) -> usize {
    loop {
        match body.get(at) {
            Some(b) if b.is_ascii_whitespace() => at += 1,
            Some(b'/') if matches!(body.get(at + 1), Some(b'/' | b'*')) => {
                at = comment_end(body, at);
            }
            _ => return at,
        }
    }
}

/// A key's text with JSON escapes resolved where they are valid (others kept as written);
/// invalid UTF-8 read lossily.
fn unescape_lossy(raw: &[u8]) -> String {
    if !raw.contains(&b'\\') {
        return String::from_utf8_lossy(raw).into_owned();
    }
    mask::unescape(raw).into_owned()
}

/// Masks a newline-delimited JSON body line by line with [`mask_json`](super::mask::mask_json).
///
/// Empty lines and the newlines are kept (a `\r` before a `\n` too). A line that is not valid
/// JSON is masked by the tolerant scan ([`mask_tolerant`]), or
/// replaced by the `<masked>` marker when no key can be told in it.
pub(crate) fn mask_ndjson(body: &[u8], fields: &Patterns) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    for (n, line) in body.split(|&b| b == b'\n').enumerate() {
        if n > 0 {
            out.push(b'\n');
        }
        let (content, cr) = match line.strip_suffix(b"\r") {
            Some(content) => (content, true),
            None => (line, false),
        };
        if content.iter().all(u8::is_ascii_whitespace) {
            out.extend_from_slice(line);
            continue;
        }
        match mask::mask_json(content, fields) {
            Some(masked) => out.extend_from_slice(&masked),
            None => match mask_tolerant(content, fields) {
                Some(masked) => out.extend_from_slice(&masked),
                None => out.extend_from_slice(super::BODY_MASKED),
            },
        }
        if cr {
            out.push(b'\r');
        }
    }
    out
}

#[cfg(test)]
mod tests;

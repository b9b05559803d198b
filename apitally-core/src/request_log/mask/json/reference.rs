//! The masker as it was before the one-pass [`Scan`](super::Scan): kept, for tests only, as
//! the reference the one-pass masker is held against.

use super::*;
use crate::request_log::mask::MASKED;

/// The masker as it was before [`Scan`]: `serde_json` validates, then [`scan_json`] copies token
/// by token. Kept as the reference that the one-pass masker is tested against.
pub(in crate::request_log::mask) fn mask_json_two_pass(
    body: &[u8],
    fields: &Patterns,
) -> Option<Vec<u8>> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).ok()?;
    scan_json(body, fields)
}

/// Copies already validated JSON token by token, masking as [`mask_json`] describes.
///
/// Iterative, so nesting depth does not matter; returns `None` rather than panicking should
/// the input turn out not to be well-formed after all.
pub(in crate::request_log::mask) fn scan_json(body: &[u8], fields: &Patterns) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    // For each open container, whether it is an object, and whether it is an array under a
    // sensitive key.
    let mut open: Vec<(bool, bool)> = Vec::new();
    // The next string is an object key.
    let mut expect_key = false;
    // The value about to start belongs to a sensitive key (or a sensitive array).
    let mut sensitive = false;
    let mut i = 0;
    while let Some(&byte) = body.get(i) {
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'{' => {
                out.push(byte);
                open.push((true, false));
                expect_key = true;
                sensitive = false;
                i += 1;
            }
            b'[' => {
                out.push(byte);
                open.push((false, sensitive));
                expect_key = false;
                i += 1;
            }
            b'}' | b']' => {
                out.push(byte);
                open.pop();
                expect_key = false;
                sensitive = false;
                i += 1;
            }
            b',' => {
                out.push(byte);
                match open.last() {
                    Some((true, _)) => {
                        expect_key = true;
                        sensitive = false;
                    }
                    Some((false, array)) => sensitive = *array,
                    None => {}
                }
                i += 1;
            }
            b':' => {
                out.push(byte);
                i += 1;
            }
            b'"' => {
                let end = string_end(body, i)?;
                let token = body.get(i..=end)?;
                if expect_key {
                    let name = body.get(i + 1..end)?;
                    sensitive = fields.matches(&unescape(name));
                    expect_key = false;
                    out.extend_from_slice(token);
                } else if sensitive {
                    out.push(b'"');
                    out.extend_from_slice(MASKED.as_bytes());
                    out.push(b'"');
                    sensitive = false;
                } else {
                    out.extend_from_slice(token);
                }
                i = end + 1;
            }
            _ => {
                // A number or a literal: runs until the next delimiter.
                let start = i;
                while let Some(&b) = body.get(i) {
                    if matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b',' | b':' | b']' | b'}') {
                        break;
                    }
                    i += 1;
                }
                let token = body.get(start..i)?;
                if sensitive && matches!(token.first(), Some(b'-' | b'0'..=b'9')) {
                    out.extend_from_slice(MASKED_VALUE);
                } else {
                    out.extend_from_slice(token);
                }
                sensitive = false;
            }
        }
    }
    Some(out)
}

/// The index of the quote that closes the string opening at `start`.
fn string_end(body: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        // Long string values (descriptions, base64 blobs) are skipped with SIMD.
        i += memchr::memchr2(b'"', b'\\', body.get(i..)?)?;
        match body.get(i)? {
            b'"' => return Some(i),
            _ => i += 2,
        }
    }
}

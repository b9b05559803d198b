//! Masking of JSON bodies: one pass that validates, compacts and masks.

use std::borrow::Cow;

#[cfg(test)]
pub(super) use self::reference::{mask_json_two_pass, scan_json};
use super::Patterns;

#[cfg(test)]
mod reference;

/// Masks the string values of sensitive keys in a JSON body and returns it compacted.
///
/// Returns `None` when `body` is not valid JSON (it accepts exactly what
/// `serde_json::from_slice::<IgnoredAny>` accepts: any nesting depth, strings not checked for
/// UTF-8). Otherwise the output is `body` without insignificant whitespace, with key order,
/// duplicates, numbers and strings kept byte for byte, except that in every object, the string
/// or number value of a key (compared after unescaping) that matches `fields` becomes
/// `"******"`, and so do the strings and numbers in an array under such a key (at any depth of
/// arrays). Other values are kept (`true`, `null`; an object is masked by its own keys). A
/// body that comes out the same is borrowed, not copied.
pub(crate) fn mask_json<'a>(body: &'a [u8], fields: &Patterns) -> Option<Cow<'a, [u8]>> {
    let mut scan = Scan {
        body,
        at: 0,
        copied: 0,
        out: Vec::new(),
    };
    scan.document(fields)?;
    Some(if scan.copied == 0 && scan.out.is_empty() {
        // Nothing skipped or replaced: the body up to its last token, as it is.
        Cow::Borrowed(body.get(..scan.at)?)
    } else {
        let rest = body.get(scan.copied..scan.at)?;
        scan.out.extend_from_slice(rest);
        Cow::Owned(scan.out)
    })
}

/// One pass over a JSON body that validates it and writes the masked copy.
///
/// The copy is made in runs: bytes are only moved into `out` where the output departs from
/// the input (whitespace left out, a value masked), so a compact body costs a few `memcpy`s
/// rather than one per token.
struct Scan<'a> {
    body: &'a [u8],
    /// The next byte to read.
    at: usize,
    /// `body[copied..at]` is still to be appended to `out`.
    copied: usize,
    out: Vec<u8>,
}

/// The open containers: one bit each (set for an object), the innermost in the lowest bit,
/// and a second bit each (set for an array under a sensitive key, whose strings and numbers
/// are masked); past 64 levels the outer bits move to `spill`, so any depth works without
/// recursion.
#[derive(Default)]
pub(super) struct Nesting {
    bits: u64,
    sensitive: u64,
    depth: usize,
    spill: Vec<(u64, u64)>,
}

impl Nesting {
    fn push(&mut self, object: bool, sensitive: bool) {
        if self.depth > 0 && self.depth.is_multiple_of(64) {
            self.spill.push((self.bits, self.sensitive));
            self.bits = 0;
            self.sensitive = 0;
        }
        self.bits = (self.bits << 1) | u64::from(object);
        self.sensitive = (self.sensitive << 1) | u64::from(sensitive);
        self.depth += 1;
    }

    fn pop(&mut self) {
        self.depth -= 1;
        self.bits >>= 1;
        self.sensitive >>= 1;
        if self.depth > 0 && self.depth.is_multiple_of(64) {
            (self.bits, self.sensitive) = self.spill.pop().unwrap_or_default();
        }
    }

    /// Whether the innermost container is an object (`None` at the top level).
    fn in_object(&self) -> Option<bool> {
        (self.depth > 0).then_some(self.bits & 1 == 1)
    }

    /// Whether the innermost container is an array under a sensitive key.
    fn in_sensitive_array(&self) -> bool {
        self.depth > 0 && self.bits & 1 == 0 && self.sensitive & 1 == 1
    }
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.body.get(self.at).copied()
    }

    /// Skips whitespace, which the output leaves out, and returns the next byte.
    fn next_token(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        if !matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
            return Some(byte);
        }
        self.flush();
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
        self.copied = self.at;
        self.peek()
    }

    /// Appends the pending run of input to the output.
    fn flush(&mut self) {
        if self.out.capacity() == 0 {
            self.out.reserve(self.body.len());
        }
        if let Some(run) = self.body.get(self.copied..self.at) {
            self.out.extend_from_slice(run);
        }
        self.copied = self.at;
    }

    /// Appends the pending run of input up to `end` (not past `at`) to the output.
    fn flush_to(&mut self, end: usize) {
        if self.out.capacity() == 0 {
            self.out.reserve(self.body.len());
        }
        if let Some(run) = self.body.get(self.copied..end) {
            self.out.extend_from_slice(run);
        }
        self.copied = end;
    }

    /// Expects `byte` as the next token and steps over it.
    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next_token()? == byte).then(|| self.at += 1)
    }

    /// A whole document: one value, with only whitespace around it.
    fn document(&mut self, fields: &Patterns) -> Option<()> {
        let mut nesting = Nesting::default();
        // The value about to be read belongs to a sensitive key.
        let mut sensitive = false;
        loop {
            // A value.
            let opened = match self.next_token()? {
                b'"' => {
                    let end = self.string_end()?;
                    if sensitive {
                        self.flush();
                        self.out.extend_from_slice(MASKED_VALUE);
                        self.copied = end;
                    }
                    self.at = end;
                    false
                }
                b'{' | b'[' => {
                    let object = self.peek()? == b'{';
                    // An array under a sensitive key (a list of recovery codes, say): its
                    // strings and numbers are masked too.
                    nesting.push(object, !object && sensitive);
                    self.at += 1;
                    true
                }
                b'n' => self.literal(b"null")?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'-' | b'0'..=b'9' => {
                    let start = self.at;
                    self.number()?;
                    if sensitive {
                        // A number under a sensitive key (a PIN, a card number) is masked
                        // like a string.
                        self.flush_to(start);
                        self.out.extend_from_slice(MASKED_VALUE);
                        self.copied = self.at;
                    }
                    false
                }
                _ => return None,
            };
            // What may follow it (each way out of this loop says whether the next value is
            // sensitive): a comma, the end of a container, or (just opened) a first
            // member; at the top level, nothing but whitespace.
            let mut first = opened;
            loop {
                let Some(object) = nesting.in_object() else {
                    // Only whitespace may follow, and it is not copied: `at` stays at the end.
                    let rest = self.body.get(self.at..)?;
                    return rest
                        .iter()
                        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
                        .then_some(());
                };
                match self.next_token()? {
                    b']' if !object => {}
                    b'}' if object => {}
                    b',' if !first => {
                        self.at += 1;
                        sensitive = if object {
                            self.key(fields)?
                        } else {
                            nesting.in_sensitive_array()
                        };
                        break;
                    }
                    _ if first => {
                        sensitive = if object {
                            self.key(fields)?
                        } else {
                            nesting.in_sensitive_array()
                        };
                        break;
                    }
                    _ => return None,
                }
                // The container ends.
                self.at += 1;
                nesting.pop();
                first = false;
            }
        }
    }

    /// An object member's key and the colon after it; whether the key is sensitive.
    fn key(&mut self, fields: &Patterns) -> Option<bool> {
        if self.next_token()? != b'"' {
            return None;
        }
        let start = self.at;
        let end = self.string_end()?;
        let raw = self.body.get(start + 1..end - 1)?;
        let sensitive = if raw.contains(&b'\\') {
            fields.matches(&unescape(raw))
        } else {
            // Nothing to decode: the bytes are the name (matched as UTF-8, lossily).
            fields.matches_bytes(raw)
        };
        self.at = end;
        self.expect(b':')?;
        Some(sensitive)
    }

    /// Validates the string opening at `at` and returns the index after its closing quote.
    /// Control characters must be escaped and escapes must be valid; other bytes (UTF-8 or
    /// not) pass, as `serde_json` lets them pass in a value it ignores.
    fn string_end(&self) -> Option<usize> {
        let mut i = self.at + 1;
        loop {
            let rest = self.body.get(i..)?;
            // Long string values (descriptions, base64 blobs) are skipped with SIMD.
            let n = memchr::memchr2(b'"', b'\\', rest)?;
            if has_control_byte(rest.get(..n)?) {
                return None;
            }
            i += n;
            if self.body.get(i)? == &b'"' {
                return Some(i + 1);
            }
            i += match self.body.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => 2,
                b'u' => {
                    hex4(self.body, i + 2)?;
                    6
                }
                _ => return None,
            };
        }
    }

    /// `null`, `true` or `false`, whole.
    fn literal(&mut self, word: &[u8]) -> Option<bool> {
        (self.body.get(self.at..self.at + word.len())? == word).then(|| {
            self.at += word.len();
            false
        })
    }

    /// A number, by JSON's grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Option<bool> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Some(false)
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }
}

/// `"******"`, with its quotes.
pub(super) const MASKED_VALUE: &[u8] = b"\"******\"";

/// Whether `bytes` holds a byte below 0x20 (written so that it vectorises: no early exit).
/// Not `item::needs_escape`, whose eight-bytes-at-a-time loop costs ~2,200 more instructions
/// per 1 KB body here (measured under callgrind).
fn has_control_byte(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |acc, &b| acc | u8::from(b < 0x20)) != 0
}

/// Decodes the inside of a JSON string; invalid UTF-8 and lone surrogates become U+FFFD.
pub(crate) fn unescape(raw: &[u8]) -> Cow<'_, str> {
    if !raw.contains(&b'\\') {
        return match std::str::from_utf8(raw) {
            Ok(name) => Cow::Borrowed(name),
            Err(_) => String::from_utf8_lossy(raw),
        };
    }
    let mut buf = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&byte) = raw.get(i) {
        i += 1;
        if byte != b'\\' {
            buf.push(byte);
            continue;
        }
        let Some(&escape) = raw.get(i) else { break };
        i += 1;
        let c = match escape {
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => match hex4(raw, i) {
                Some(unit @ 0xD800..=0xDBFF) => {
                    i += 4;
                    let low = match (raw.get(i..i + 2), hex4(raw, i + 2)) {
                        (Some(b"\\u"), Some(low @ 0xDC00..=0xDFFF)) => Some(low),
                        _ => None,
                    };
                    match low {
                        Some(low) => {
                            i += 6;
                            char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
                                .unwrap_or(char::REPLACEMENT_CHARACTER)
                        }
                        None => char::REPLACEMENT_CHARACTER,
                    }
                }
                Some(unit) => {
                    i += 4;
                    char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER)
                }
                None => char::REPLACEMENT_CHARACTER,
            },
            // `"`, `\`, `/`, and (not valid JSON) anything else stands for itself.
            other => char::from(other),
        };
        let mut utf8 = [0; 4];
        buf.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
    }
    match String::from_utf8(buf) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// The value of the four hex digits at `raw[at..]`.
fn hex4(raw: &[u8], at: usize) -> Option<u32> {
    let digits = raw.get(at..at.checked_add(4)?)?;
    digits
        .iter()
        .try_fold(0u32, |acc, &d| Some(acc * 16 + char::from(d).to_digit(16)?))
}

//! Error text without what a client or a secret put in it: the values a serde message quotes
//! from the input, the user-info of URLs, and the values of `name=value` pairs whose names are
//! sensitive. Validation messages and server errors (their message and traceback) go through
//! it before they are recorded, in both protocols.

use std::sync::LazyLock;

use crate::request_log::mask::{self, Patterns};

/// The words after which a serde message quotes the client's value in backticks (serde's
/// `Unexpected` and its unknown-variant and unknown-field errors).
const VALUE_WORDS: [&str; 6] = [
    "boolean ",
    "integer ",
    "floating point ",
    "character ",
    "unknown variant ",
    "unknown field ",
];

/// A serde message without the values it quotes from the input, which can be anything the
/// client sent (a PIN in a field typed `u32`, a token in a path segment): strings quoted with
/// `"` (`invalid type: string "8675309-SECRET", expected u32` becomes `invalid type: string,
/// expected u32`; actix's `can not parse "abc" to a u32` becomes `can not parse to a u32`), and
/// numbers, characters, booleans, variants and unknown field names quoted with backticks after
/// the words that introduce them. What the app's types expect (`expected one of `a`, `b``) is
/// kept.
///
/// ```
/// use apitally_core::adapter::without_values;
///
/// assert_eq!(
///     without_values("invalid type: string \"s3cret\", expected u32"),
///     "invalid type: string, expected u32"
/// );
/// ```
pub fn without_values(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find(['"', '`']) {
        let (before, from) = rest.split_at(i);
        if from.starts_with('"') {
            out.push_str(before.strip_suffix(' ').unwrap_or(before));
            rest = after_quoted(from);
        } else {
            let end = from[1..].find('`').map_or(from.len(), |j| j + 2);
            if VALUE_WORDS.iter().any(|w| before.ends_with(w)) {
                out.push_str(before.trim_end());
            } else {
                out.push_str(before);
                out.push_str(&from[..end]);
            }
            rest = &from[end..];
        }
    }
    out.push_str(rest);
    out
}

/// What follows a Debug-quoted string at the start of `s` (escapes skipped; the rest of `s`
/// when it is not closed).
fn after_quoted(s: &str) -> &str {
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '"' => return &s[i + 1..],
            _ => {}
        }
    }
    ""
}

/// The default query, header and body-field patterns: the names whose values are secrets.
static SECRET_NAMES: LazyLock<Option<Patterns>> = LazyLock::new(|| {
    let all = [
        &mask::QUERY_PARAM_PATTERNS[..],
        &mask::HEADER_PATTERNS[..],
        &mask::BODY_FIELD_PATTERNS[..],
    ]
    .concat();
    Patterns::new(&all, &[]).ok()
});

/// Error text (a server error's message or traceback) as it may leave the process: the values
/// it quotes are left out as in [`without_values`], the user-info of every URL in it is
/// masked (`postgres://admin:pw@db/x` becomes `postgres://******@db/x`), and so is the value
/// of every `name=value` pair whose name is a secret's (`password=...`, `api_key=...`).
pub(crate) fn error_text(text: &str) -> String {
    let text = without_values(text);
    let text = without_userinfo(&text);
    without_secret_pairs(&text)
}

/// Whether `b` can be part of a URL's authority.
fn is_authority_byte(b: u8) -> bool {
    !(b.is_ascii_whitespace() || matches!(b, b'/' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>'))
}

/// Masks the user-info of every `scheme://user[:password]@host` in `text`.
fn without_userinfo(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(i) = memchr::memmem::find(&bytes[from..], b"://").map(|i| i + from) {
        let start = i + 3;
        let end = bytes[start..]
            .iter()
            .position(|&b| !is_authority_byte(b))
            .map_or(bytes.len(), |n| start + n);
        if let Some(at) = bytes[start..end].iter().rposition(|&b| b == b'@') {
            out.push_str(&text[copied..start]);
            out.push_str(mask::MASKED);
            copied = start + at;
        }
        from = end.max(start);
    }
    out.push_str(&text[copied..]);
    out
}

/// Masks the value of each `name=value` whose name is a secret's; the value runs to the next
/// white space, `&`, `,`, `;`, quote or bracket.
fn without_secret_pairs(text: &str) -> String {
    let Some(names) = SECRET_NAMES.as_ref() else {
        return text.to_owned();
    };
    let bytes = text.as_bytes();
    let is_name = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
    let is_value_end = |b: u8| {
        b.is_ascii_whitespace()
            || matches!(
                b,
                b'&' | b',' | b';' | b'"' | b'\'' | b')' | b']' | b'}' | b'>'
            )
    };
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (eq, _) in text.match_indices('=') {
        if eq < copied {
            continue;
        }
        let name_start = bytes[..eq]
            .iter()
            .rposition(|&b| !is_name(b))
            .map_or(0, |i| i + 1);
        let name = &text[name_start..eq];
        if name.is_empty() || !names.matches(name) {
            continue;
        }
        let value_end = bytes[eq + 1..]
            .iter()
            .position(|&b| is_value_end(b))
            .map_or(bytes.len(), |n| eq + 1 + n);
        if value_end == eq + 1 {
            continue;
        }
        out.push_str(&text[copied..=eq]);
        out.push_str(mask::MASKED);
        copied = value_end;
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_meaning_without_the_clients_values() {
        for (message, kept) in [
            (
                "invalid type: string \"8675309-SECRET-PIN\", expected u32",
                "invalid type: string, expected u32",
            ),
            (
                "invalid type: string \"a \\\"quoted\\\" SECRET\", expected u32",
                "invalid type: string, expected u32",
            ),
            (
                "invalid value: integer `8675309`, expected u8",
                "invalid value: integer, expected u8",
            ),
            (
                "invalid type: floating point `3.14159`, expected u32",
                "invalid type: floating point, expected u32",
            ),
            (
                "invalid type: character `s`, expected a boolean",
                "invalid type: character, expected a boolean",
            ),
            (
                "invalid type: boolean `true`, expected a string",
                "invalid type: boolean, expected a string",
            ),
            (
                "unknown variant `SECRET`, expected one of `a`, `b`",
                "unknown variant, expected one of `a`, `b`",
            ),
            (
                "unknown field `SECRET`, expected `name` or `id`",
                "unknown field, expected `name` or `id`",
            ),
            (
                "can not parse \"SECRET\" to a u32",
                "can not parse to a u32",
            ),
            ("missing field `name`", "missing field `name`"),
            ("expected `,` or `}`", "expected `,` or `}`"),
            (
                "invalid length 3, expected 2 elements",
                "invalid length 3, expected 2 elements",
            ),
            (
                "invalid type: string \"unterminated",
                "invalid type: string",
            ),
            ("integer `unterminated", "integer"),
        ] {
            assert_eq!(without_values(message), kept, "{message}");
        }
    }

    #[test]
    fn error_text_masks_urls_credentials_and_quoted_values() {
        for (text, expected) in [
            (
                "connecting to postgres://admin:hunter2@db.internal:5432/app failed",
                "connecting to postgres://******@db.internal:5432/app failed",
            ),
            (
                "redis://:s3cret@cache/0 and https://user@host/x?y=1",
                "redis://******@cache/0 and https://******@host/x?y=1",
            ),
            (
                "see https://example.com/a@b (no user-info)",
                "see https://example.com/a@b (no user-info)",
            ),
            (
                "login failed: user=bob password=hunter2 api_key=k-1, retry=3",
                "login failed: user=bob password=****** api_key=******, retry=3",
            ),
            (
                "GET /cb?code=x&access_token=abc&page=2 -> 500",
                "GET /cb?code=x&access_token=******&page=2 -> 500",
            ),
            (
                "Json deserialize error: invalid type: string \"4111111111111111\", expected u64",
                "Json deserialize error: invalid type: string, expected u64",
            ),
            (
                "Custom { kind: Other, error: \"token abc\" }",
                "Custom { kind: Other, error: }",
            ),
            ("no secrets = here", "no secrets = here"),
            ("", ""),
            ("://@", "://******@"),
            ("a=", "a="),
            ("password=", "password="),
        ] {
            assert_eq!(error_text(text), expected, "{text}");
        }
    }

    proptest::proptest! {
        /// Whatever the text, scrubbing neither panics nor lets a marked secret through.
        #[test]
        fn scrubbing_never_panics_and_drops_url_passwords(
            prefix in "\\PC{0,40}",
            user in "[a-z]{1,8}",
            pass in "[A-Za-z0-9]{6,12}",
            suffix in "\\PC{0,40}",
        ) {
            let text = format!("{prefix} mysql://{user}:{pass}Z9@db/x {suffix}");
            let out = error_text(&text);
            let marked = format!("{pass}Z9@");
            proptest::prop_assert!(!out.contains(&marked), "{out}");
        }
    }
}

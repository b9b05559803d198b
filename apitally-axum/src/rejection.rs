//! axum's extractor rejections as validation errors.
//!
//! axum answers a rejected `Json`, `Query`, `Form` or `Path` with a short `text/plain` body
//! whose first words are fixed (`Failed to deserialize the JSON body into the target type: ...`)
//! and attaches nothing else to the response. The body wrapper reads the first frame of such a
//! response (a `400`, `413`, `415` or `422` of at most [`MAX_REJECTION_BYTES`]) and this module
//! turns it into a validation error with a location and a message without the client's
//! values. axum-extra's extractors answer with the same texts.

use apitally_core::{adapter::validation_error_from_serde, ValidationError};

/// Longest response body read as a possible rejection.
pub(crate) const MAX_REJECTION_BYTES: u64 = 4_096;

/// Whether a response may be an extractor rejection: its status, and a short text body (the
/// content type is looked up only for such a status).
pub(crate) fn may_be_rejection<'a>(
    status: u16,
    content_type: impl FnOnce() -> Option<&'a [u8]>,
    size: Option<u64>,
) -> bool {
    matches!(status, 400 | 413 | 415 | 422)
        && size.is_some_and(|n| n <= MAX_REJECTION_BYTES)
        && content_type().is_some_and(|ct| ct.starts_with(b"text/plain"))
}

/// The validation error a rejection's body text stands for, if it is one of axum's.
pub(crate) fn validation_error(body: &str) -> Option<ValidationError> {
    // The two texts that have a `: ` of their own.
    let (prefix, rest) = if body.starts_with("Expected request with `Content-Type")
        || body.starts_with("Form requests must have `Content-Type")
    {
        (body, "")
    } else {
        body.split_once(": ").unwrap_or((body, ""))
    };
    Some(match prefix {
        "Failed to deserialize the JSON body into the target type" => with_path("body", rest, None),
        "Failed to parse the request body as JSON" => with_path("body", rest, Some("json_invalid")),
        "Expected request with `Content-Type: application/json`" => ValidationError::new(
            ["header", "content-type"],
            "expected a JSON content type",
            "content_type",
        ),
        "Failed to deserialize query string" | "Failed to deserialize form" => {
            validation_error_from_serde("query", rest, None)
        }
        "Failed to deserialize form body" => validation_error_from_serde("body", rest, None),
        "Form requests must have `Content-Type: application/x-www-form-urlencoded`" => {
            ValidationError::new(
                ["header", "content-type"],
                "expected application/x-www-form-urlencoded",
                "content_type",
            )
        }
        "Failed to buffer the request body" => {
            ValidationError::new(["body"], rest_or(rest, "cannot be read"), "payload_error")
        }
        "Invalid URL" => path_error(rest),
        _ => return None,
    })
}

fn rest_or<'a>(rest: &'a str, default: &'a str) -> &'a str {
    if rest.is_empty() {
        default
    } else {
        rest
    }
}

/// A serde message of `scope` that `serde_path_to_error` may prefix with the field's path
/// (`items[0].price: invalid type: ...`): the path goes into `loc`.
fn with_path(scope: &str, message: &str, kind: Option<&str>) -> ValidationError {
    if let Some((path, rest)) = message.split_once(": ") {
        let is_path = !path.is_empty()
            && path.len() <= 256
            && path.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'[' | b']' | b'-')
            });
        if is_path {
            let error = validation_error_from_serde(scope, rest, kind);
            let mut loc = vec![scope.to_owned()];
            loc.extend(
                path.split(['.', '['])
                    .map(|segment| segment.trim_end_matches(']'))
                    .filter(|segment| !segment.is_empty())
                    .map(str::to_owned),
            );
            return ValidationError::new(loc, error.msg(), error.error_type());
        }
    }
    validation_error_from_serde(scope, message, kind)
}

/// A `Path` error: `Cannot parse `key` with value `v` to a `u32``, `Cannot parse `v` to a
/// `u32``: the key (ours) into `loc`, the value (the client's) left out.
fn path_error(message: &str) -> ValidationError {
    let quoted: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    if let Some(expected) = message
        .contains(" to a `")
        .then(|| quoted.last().copied())
        .flatten()
    {
        let key = message
            .contains(" with value `")
            .then(|| quoted.first().copied())
            .flatten();
        let loc: Vec<&str> = std::iter::once("path").chain(key).collect();
        return ValidationError::new(
            loc,
            format!("cannot be parsed to a `{expected}`"),
            "type_error",
        );
    }
    if message.starts_with("Cannot parse `") && message.contains(" with value `") {
        // A deserializer's message about the value: the key is ours, the rest is not kept.
        let key = quoted.first().copied();
        let loc: Vec<&str> = std::iter::once("path").chain(key).collect();
        return ValidationError::new(loc, "cannot be parsed", "value_error");
    }
    validation_error_from_serde("path", message, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(e: &ValidationError) -> (Vec<String>, String, String) {
        (
            e.loc().to_vec(),
            e.msg().to_owned(),
            e.error_type().to_owned(),
        )
    }

    #[test]
    fn axum_rejection_texts() {
        let cases = [
            (
                "Failed to deserialize the JSON body into the target type: missing field `name` at line 1 column 2",
                (vec!["body", "name"], "missing field `name`", "missing"),
            ),
            (
                "Failed to deserialize the JSON body into the target type: items[0].price: invalid type: string \"secret-42\", expected u32 at line 1 column 30",
                (vec!["body", "items", "0", "price"], "invalid type: string, expected u32", "invalid_type"),
            ),
            (
                "Failed to parse the request body as JSON: expected value at line 1 column 1",
                (vec!["body"], "expected value", "json_invalid"),
            ),
            (
                "Expected request with `Content-Type: application/json`",
                (vec!["header", "content-type"], "expected a JSON content type", "content_type"),
            ),
            (
                "Failed to deserialize query string: missing field `q`",
                (vec!["query", "q"], "missing field `q`", "missing"),
            ),
            (
                "Invalid URL: Cannot parse `id` with value `abc-secret` to a `u32`",
                (vec!["path", "id"], "cannot be parsed to a `u32`", "type_error"),
            ),
            (
                "Invalid URL: Cannot parse `abc-secret` to a `u32`",
                (vec!["path"], "cannot be parsed to a `u32`", "type_error"),
            ),
            (
                "Failed to deserialize form body: invalid digit found in string",
                (vec!["body"], "invalid digit found in string", "value_error"),
            ),
        ];
        for (text, (loc, msg, kind)) in cases {
            let error = validation_error(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(
                parts(&error),
                (
                    loc.iter().map(|s| (*s).to_owned()).collect(),
                    msg.to_owned(),
                    kind.to_owned()
                ),
                "{text}"
            );
            assert!(!error.msg().contains("secret"), "{text}");
        }
        assert!(validation_error("Not Found").is_none());
        assert!(validation_error("user not found: 42").is_none());
    }
}

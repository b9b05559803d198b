//! Validation errors from actix's extractor errors, and server errors from actix errors.

use actix_web::error::{
    Error, InternalError, JsonPayloadError, PathError, QueryPayloadError, UrlencodedError,
};
use apitally_core::{
    adapter::{validation_error_from_serde, ServerError},
    ValidationError,
};

/// The validation errors behind an actix extractor error, if it is one.
pub(crate) fn validation_errors(err: &Error) -> Option<Vec<ValidationError>> {
    if let Some(e) = err.as_error::<JsonPayloadError>() {
        let error = match e {
            JsonPayloadError::Deserialize(de) => {
                let kind = match de.classify() {
                    serde_json::error::Category::Data => None,
                    _ => Some("json_invalid"),
                };
                validation_error_from_serde("body", &de.to_string(), kind)
            }
            JsonPayloadError::ContentType => ValidationError::new(
                ["header", "content-type"],
                "expected a JSON content type",
                "content_type",
            ),
            JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
                ValidationError::new(["body"], e.to_string(), "payload_too_large")
            }
            other => ValidationError::new(["body"], other.to_string(), "payload_error"),
        };
        return Some(vec![error]);
    }
    if let Some(QueryPayloadError::Deserialize(de)) = err.as_error::<QueryPayloadError>() {
        return Some(vec![validation_error_from_serde(
            "query",
            &de.to_string(),
            None,
        )]);
    }
    if let Some(PathError::Deserialize(de)) = err.as_error::<PathError>() {
        return Some(vec![validation_error_from_serde(
            "path",
            &de.to_string(),
            None,
        )]);
    }
    // actix's `Path` extractor, without a custom error handler, answers 404 with the bare
    // deserializer error in an `InternalError` (whose Display is the cause's).
    if err
        .as_error::<InternalError<serde::de::value::Error>>()
        .is_some()
    {
        return Some(vec![validation_error_from_serde(
            "path",
            &err.to_string(),
            None,
        )]);
    }
    if let Some(e) = err.as_error::<UrlencodedError>() {
        let error = match e {
            UrlencodedError::Parse(de) => {
                validation_error_from_serde("body", &de.to_string(), None)
            }
            UrlencodedError::ContentType => ValidationError::new(
                ["header", "content-type"],
                "expected application/x-www-form-urlencoded",
                "content_type",
            ),
            other => ValidationError::new(["body"], other.to_string(), "payload_error"),
        };
        return Some(vec![error]);
    }
    None
}

/// A server error from an actix error: the leading name of its `Debug` text as the type (the
/// struct or variant name, a stable grouping key), its `Display` as the message and its
/// pretty `Debug` (which shows the causes) as the traceback.
pub(crate) fn server_error(err: &Error) -> ServerError {
    let inner = err.as_response_error();
    let debug = format!("{inner:?}");
    let name: String = debug
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
        .collect();
    let error_type = if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        "actix_web::Error".to_owned()
    } else {
        name
    };
    ServerError::new(error_type, inner.to_string(), format!("{inner:#?}"))
}

//! Errors as the pipeline reports them: validation errors from serde's messages (without the
//! values they quote), and a warning when a consumer is named by a credential of its request.

use std::sync::atomic::{AtomicBool, Ordering};

use super::{sampling::RequestHeaders, scrub::without_values};
use crate::ValidationError;

/// Builds a validation error from a serde message (of `scope`: `body`, `query`, `path`) such as "missing field `name` at line 1
/// column 2": the field, when named, goes into `loc`; the position is dropped so that the same
/// mistake groups together; and the values the message quotes from the client's input are
/// left out (see [`without_values`]).
pub fn validation_error_from_serde(
    scope: &str,
    message: &str,
    kind: Option<&str>,
) -> ValidationError {
    let msg = match message.rfind(" at line ") {
        Some(idx) if message[idx..].contains(" column ") => &message[..idx],
        _ => message,
    };
    // The field a message names: ours (`missing field`, `duplicate field`) or the client's
    // (`unknown field`, bounded when the error is recorded).
    let field = msg
        .split_once('`')
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(field, _)| field)
        .filter(|_| {
            ["missing field", "unknown field", "duplicate field"]
                .iter()
                .any(|p| msg.starts_with(p))
        });
    let kind = kind.unwrap_or_else(|| {
        [
            ("missing field", "missing"),
            ("unknown field", "unknown_field"),
            ("duplicate field", "duplicate_field"),
            ("invalid type", "invalid_type"),
            ("invalid value", "invalid_value"),
            ("invalid length", "invalid_length"),
            ("unknown variant", "unknown_variant"),
        ]
        .iter()
        .find(|(prefix, _)| msg.starts_with(prefix))
        .map_or("value_error", |(_, kind)| kind)
    });
    let loc: Vec<&str> = std::iter::once(scope).chain(field).collect();
    ValidationError::new(loc, without_values(msg), kind)
}

/// The validation errors of a `validator` result, with `loc` `["body", field, ...]` (nested
/// structs and list indexes included), the message (or the code when there is none) as `msg`,
/// and the code as `type`; sorted by `loc`.
#[cfg(feature = "validator")]
pub fn validation_errors_of(errors: &validator::ValidationErrors) -> Vec<ValidationError> {
    let mut out = Vec::new();
    walk_validator(errors, &mut vec!["body".to_owned()], &mut out);
    out.sort_by(|a, b| a.loc().cmp(b.loc()));
    out
}

#[cfg(feature = "validator")]
fn walk_validator(
    errors: &validator::ValidationErrors,
    loc: &mut Vec<String>,
    out: &mut Vec<ValidationError>,
) {
    use validator::ValidationErrorsKind;
    for (field, kind) in errors.errors() {
        loc.push(field.to_string());
        match kind {
            ValidationErrorsKind::Field(list) => {
                for e in list {
                    let msg = e
                        .message
                        .as_ref()
                        .map_or_else(|| e.code.to_string(), |m| m.to_string());
                    out.push(ValidationError::new(loc.clone(), msg, e.code.to_string()));
                }
            }
            ValidationErrorsKind::Struct(inner) => walk_validator(inner, loc, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    loc.push(index.to_string());
                    walk_validator(inner, loc, out);
                    loc.pop();
                }
            }
        }
        loc.pop();
    }
}

/// The request headers the secret-consumer check looks at (the default masked header names).
const SECRET_HEADERS: [&str; 7] = [
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-auth-token",
    "x-access-token",
    "cookie",
];

/// Whether a query parameter of this name is masked in request logs by default.
fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "auth", "api-key", "api_key", "apikey", "secret", "token", "password", "pwd",
    ]
    .iter()
    .any(|p| name.contains(p))
}

/// The header or query parameter of a request whose value is `identifier`, when request logs
/// mask it as a secret: the app names consumers by their credential, which then leaves the
/// process in clear as the consumer identifier.
pub(crate) fn secret_used_as_consumer(
    headers: &dyn RequestHeaders,
    query: &str,
    identifier: &str,
) -> Option<String> {
    let matches = |value: &str| {
        let value = value.trim();
        value == identifier
            || value
                .split_once(' ')
                .is_some_and(|(_, token)| token.trim() == identifier)
    };
    for name in SECRET_HEADERS {
        if headers.get(name).is_some_and(matches) {
            return Some(format!("header {name}"));
        }
    }
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, value)| is_secret_param(name) && matches(value))
        .map(|(name, _)| format!("query parameter {name}"))
}

/// Warns, once per process, when a consumer identifier is a secret of the request (its
/// headers and query).
pub fn warn_if_secret_consumer(headers: &dyn RequestHeaders, query: &str, identifier: &str) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if WARNED.load(Ordering::Relaxed) {
        return;
    }
    if let Some(source) = secret_used_as_consumer(headers, query, identifier) {
        if !WARNED.swap(true, Ordering::Relaxed) {
            log::warn!(
                target: "apitally",
                "apitally: a consumer identifier is the value of the request's {source}, which \
                 request logs mask as a secret; identifiers are sent in clear, so name consumers \
                 by a customer id instead (see the README's consumers section)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_to_loc_msg_type() {
        let e =
            validation_error_from_serde("body", "missing field `name` at line 1 column 2", None);
        assert_eq!(
            (e.loc(), e.msg(), e.error_type()),
            (
                &["body".to_owned(), "name".to_owned()][..],
                "missing field `name`",
                "missing"
            )
        );
        let e =
            validation_error_from_serde("query", "invalid type: string \"x\", expected u32", None);
        assert_eq!(e.loc(), ["query"]);
        assert_eq!(e.error_type(), "invalid_type");
        assert_eq!(e.msg(), "invalid type: string, expected u32");
        let e = validation_error_from_serde(
            "body",
            "expected value at line 1 column 1",
            Some("json_invalid"),
        );
        assert_eq!(
            (e.msg(), e.error_type()),
            ("expected value", "json_invalid")
        );
        let e = validation_error_from_serde("path", "invalid digit found in string", None);
        assert_eq!((e.loc().len(), e.error_type()), (1, "value_error"));
    }

    #[test]
    fn unknown_fields_stay_in_loc_not_in_the_message() {
        // The unknown field's name stays in `loc`, whatever the message says.
        let e = validation_error_from_serde("body", "unknown field `nme`, expected `name`", None);
        assert_eq!(e.loc(), ["body", "nme"]);
        assert_eq!(e.msg(), "unknown field, expected `name`");
    }

    struct Map(Vec<(&'static str, &'static str)>);

    impl RequestHeaders for Map {
        fn get(&self, name: &str) -> Option<&str> {
            self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
        }
    }

    #[test]
    fn credentials_used_as_consumer_identifiers_are_found() {
        let headers = Map(vec![
            ("x-api-key", "key-abc"),
            ("authorization", "Bearer tok-9"),
            ("x-team", "team-1"),
        ]);
        let query = "page=2&api_key=k-123";
        let found = |id| secret_used_as_consumer(&headers, query, id);
        assert_eq!(found("key-abc").as_deref(), Some("header x-api-key"));
        assert_eq!(found("tok-9").as_deref(), Some("header authorization"));
        assert_eq!(found("k-123").as_deref(), Some("query parameter api_key"));
        assert_eq!(found("team-1"), None);
        assert_eq!(found("customer-42"), None);
        assert_eq!(found("2"), None);
    }
}

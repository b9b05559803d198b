//! Validation errors from actix's extractor errors, server errors from actix errors, and the
//! panic hook that captures a handler panic's backtrace.

use std::{
    any::Any,
    backtrace::Backtrace,
    cell::{Cell, RefCell},
    sync::{
        atomic::{AtomicBool, Ordering},
        Once,
    },
};

use actix_web::{
    error::{
        Error, InternalError, JsonPayloadError, PathError, QueryPayloadError, UrlencodedError,
    },
    HttpRequest,
};
use apitally_core::{adapter::without_values, ServerError, ValidationError};

/// The validation errors behind an actix extractor error, if it is one.
pub(crate) fn validation_errors(err: &Error) -> Option<Vec<ValidationError>> {
    if let Some(e) = err.as_error::<JsonPayloadError>() {
        let error = match e {
            JsonPayloadError::Deserialize(de) => {
                let kind = match de.classify() {
                    serde_json::error::Category::Data => None,
                    _ => Some("json_invalid"),
                };
                from_serde_message("body", &de.to_string(), kind)
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
        return Some(vec![from_serde_message("query", &de.to_string(), None)]);
    }
    if let Some(PathError::Deserialize(de)) = err.as_error::<PathError>() {
        return Some(vec![from_serde_message("path", &de.to_string(), None)]);
    }
    // actix's `Path` extractor, without a custom error handler, answers 404 with the bare
    // deserializer error in an `InternalError` (whose Display is the cause's).
    if err
        .as_error::<InternalError<serde::de::value::Error>>()
        .is_some()
    {
        return Some(vec![from_serde_message("path", &err.to_string(), None)]);
    }
    if let Some(e) = err.as_error::<UrlencodedError>() {
        let error = match e {
            UrlencodedError::Parse(de) => from_serde_message("body", &de.to_string(), None),
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

/// Builds a validation error from a serde message such as "missing field `name` at line 1
/// column 2": the field, when named, goes into `loc`; the position is dropped so that the same
/// mistake groups together; and the values the message quotes from the client's input are
/// left out (see [`without_values`]).
fn from_serde_message(scope: &str, message: &str, kind: Option<&str>) -> ValidationError {
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

thread_local! {
    /// Set while the middleware polls the inner service, so the hook captures only those panics.
    static IN_REQUEST: Cell<bool> = const { Cell::new(false) };
    /// Where the last panic in a request on this thread happened, and its backtrace.
    /// Captured unresolved (cheap); symbols are resolved after the response time is taken.
    static LAST_PANIC: RefCell<Option<(String, Backtrace)>> = const { RefCell::new(None) };
}

/// Installs, once, a panic hook that records the location and backtrace of panics in requests
/// and then calls the hook that was installed before (the app's, or the default that prints).
pub(crate) fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_REQUEST.with(Cell::get) {
                let location = info
                    .location()
                    .map(|l| format!("panicked at {}:{}:{}", l.file(), l.line(), l.column()))
                    .unwrap_or_default();
                let backtrace = Backtrace::force_capture();
                LAST_PANIC.with(|p| *p.borrow_mut() = Some((location, backtrace)));
            }
            previous(info);
        }));
    });
}

/// Runs `f` marked as request code, for the panic hook.
#[inline]
pub(crate) fn in_request<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            IN_REQUEST.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(IN_REQUEST.with(|c| c.replace(true)));
    f()
}

/// The server error of a caught panic: type `panic`, the panic message, and the location and
/// backtrace without the frames of the panic machinery.
pub(crate) fn panic_error(payload: &(dyn Any + Send)) -> ServerError {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "Box<dyn Any>".to_owned());
    let (location, backtrace) = LAST_PANIC
        .with(|p| p.borrow_mut().take())
        .map(|(location, backtrace)| (location, backtrace.to_string()))
        .unwrap_or_default();
    let mut traceback = location;
    let frames = trim_panic_frames(&backtrace);
    if !frames.is_empty() {
        if !traceback.is_empty() {
            traceback.push('\n');
        }
        traceback.push_str(frames);
    }
    ServerError::new("panic", msg, traceback)
}

/// Drops the leading frames that belong to the backtrace capture, the panic machinery and
/// this hook.
fn trim_panic_frames(backtrace: &str) -> &str {
    const MACHINERY: [&str; 10] = [
        "std::",
        "core::",
        "alloc::",
        "<std::",
        "<core::",
        "<alloc::",
        "__rustc::",
        "rust_begin_unwind",
        "__rust_",
        "apitally_actix::errors",
    ];
    let mut start = 0;
    let mut offset = 0;
    for line in backtrace.split_inclusive('\n') {
        let frame = line.trim_start();
        let is_frame_header = frame
            .split_once(": ")
            .is_some_and(|(n, _)| n.chars().all(|c| c.is_ascii_digit()));
        if is_frame_header {
            let name = frame.split_once(": ").map_or("", |(_, name)| name);
            if !MACHINERY.iter().any(|m| name.starts_with(m)) {
                start = offset;
                break;
            }
        }
        offset += line.len();
        start = offset;
    }
    backtrace[start..].trim_end()
}

/// Whether a header of this (lowercase) name is masked in request logs by default.
fn is_secret_header(name: &str) -> bool {
    [
        "auth", "api-key", "api_key", "apikey", "secret", "token", "cookie",
    ]
    .iter()
    .any(|p| name.contains(p))
}

/// Whether a query parameter of this name is masked in request logs by default.
fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "auth", "api-key", "api_key", "apikey", "secret", "token", "password", "pwd",
    ]
    .iter()
    .any(|p| name.contains(p))
}

/// The header or query parameter of `req` whose value is `identifier`, when request logs mask
/// it as a secret: the app names consumers by their credential, which then leaves the process
/// in clear as the consumer identifier.
pub(crate) fn secret_used_as_consumer(req: &HttpRequest, identifier: &str) -> Option<String> {
    let matches = |value: &str| {
        let value = value.trim();
        value == identifier
            || value
                .split_once(' ')
                .is_some_and(|(_, token)| token.trim() == identifier)
    };
    for (name, value) in req.headers() {
        if is_secret_header(name.as_str()) && value.to_str().is_ok_and(matches) {
            return Some(format!("header {name}"));
        }
    }
    form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(name, value)| is_secret_param(name) && matches(value))
        .map(|(name, _)| format!("query parameter {name}"))
}

/// Warns, once per process, when a consumer identifier is a secret of the request.
pub(crate) fn warn_if_secret_consumer(req: &HttpRequest, identifier: &str) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if WARNED.load(Ordering::Relaxed) {
        return;
    }
    if let Some(source) = secret_used_as_consumer(req, identifier) {
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
        let e = from_serde_message("body", "missing field `name` at line 1 column 2", None);
        assert_eq!(
            (e.loc(), e.msg(), e.error_type()),
            (
                &["body".to_owned(), "name".to_owned()][..],
                "missing field `name`",
                "missing"
            )
        );
        let e = from_serde_message("query", "invalid type: string \"x\", expected u32", None);
        assert_eq!(e.loc(), ["query"]);
        assert_eq!(e.error_type(), "invalid_type");
        assert_eq!(e.msg(), "invalid type: string, expected u32");
        let e = from_serde_message(
            "body",
            "expected value at line 1 column 1",
            Some("json_invalid"),
        );
        assert_eq!(
            (e.msg(), e.error_type()),
            ("expected value", "json_invalid")
        );
        let e = from_serde_message("path", "invalid digit found in string", None);
        assert_eq!((e.loc().len(), e.error_type()), (1, "value_error"));
    }

    #[test]
    fn unknown_fields_stay_in_loc_not_in_the_message() {
        // The unknown field's name stays in `loc`, whatever the message says.
        let e = from_serde_message("body", "unknown field `nme`, expected `name`", None);
        assert_eq!(e.loc(), ["body", "nme"]);
        assert_eq!(e.msg(), "unknown field, expected `name`");
    }

    #[test]
    fn credentials_used_as_consumer_identifiers_are_found() {
        use actix_web::test::TestRequest;
        let req = TestRequest::get()
            .uri("/x?page=2&api_key=k-123")
            .insert_header(("x-api-key", "key-abc"))
            .insert_header(("authorization", "Bearer tok-9"))
            .insert_header(("x-team", "team-1"))
            .to_http_request();
        let found = |id| secret_used_as_consumer(&req, id);
        assert_eq!(found("key-abc").as_deref(), Some("header x-api-key"));
        assert_eq!(found("tok-9").as_deref(), Some("header authorization"));
        assert_eq!(found("k-123").as_deref(), Some("query parameter api_key"));
        assert_eq!(found("team-1"), None);
        assert_eq!(found("customer-42"), None);
        assert_eq!(found("2"), None);
    }

    #[test]
    fn panic_frames_are_trimmed() {
        let bt = "   0: std::backtrace::Backtrace::force_capture\n             at /rustc/x\n   1: apitally_actix::errors::install_panic_hook::{{closure}}\n   2: std::panicking::rust_panic_with_hook\n   3: my_app::handler\n             at ./src/main.rs:3:5\n   4: main\n";
        assert_eq!(
            trim_panic_frames(bt),
            "   3: my_app::handler\n             at ./src/main.rs:3:5\n   4: main"
        );
    }
}

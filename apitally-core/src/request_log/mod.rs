//! Request logging (protocol.md section 9).

mod body;
mod config;
mod exclude;
mod facts;
mod item;
mod logger;
pub(crate) mod mask;

pub use self::{
    config::RequestLoggingConfig,
    facts::{forwarded_https, is_forwarded_https_header, is_supported_content_type, url_path},
    item::{
        truncate_log_message, CapturedLog, CapturedSpan, Headers, LoggedException, LoggedRequest,
        LoggedResponse, RequestLogItem, TraceIds, MAX_CAPTURED_PER_REQUEST, MAX_FIELDS,
        MAX_FIELD_CHARS, MAX_LOG_MESSAGE_CHARS,
    },
    logger::{RequestLogger, BODY_MASKED, BODY_TOO_LARGE, MAX_BODY_SIZE},
};
pub(crate) use self::{
    item::to_line,
    logger::{spawn_writer, Cleared, REQUEST_LOGS_HEADER},
};

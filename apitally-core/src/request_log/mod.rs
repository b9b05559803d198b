//! Request logging (protocol.md section 9).

mod body;
mod config;
mod item;
mod logger;
pub(crate) mod mask;

pub(crate) use self::logger::{
    Cleared, LogFile, MAX_FILES, MAX_FILES_PER_CYCLE, REQUEST_LOGS_HEADER,
};
pub use self::{
    config::RequestLoggingConfig,
    item::{
        truncate_log_message, CapturedLog, CapturedSpan, Headers, LoggedException, LoggedRequest,
        LoggedResponse, RequestLogItem, TraceIds, MAX_CAPTURED_PER_REQUEST, MAX_FIELDS,
        MAX_FIELD_CHARS, MAX_LOG_MESSAGE_CHARS,
    },
    logger::{
        forwarded_https, is_supported_content_type, url_path, RequestLogger, BODY_MASKED,
        BODY_TOO_LARGE, MAX_BODY_SIZE,
    },
};

//! The integration tests of apitally-actix, as one binary (one link instead of one per file). Each
//! module is one concern; nextest runs every test in its own process, so tests that install a
//! global logger, subscriber or panic hook do not meet.

#![allow(unreachable_pub)]

#[macro_use]
mod common;

mod bounds;
mod compose;
mod config;
mod consumer;
mod errors;
mod exits;
mod macros;
mod middleware;
mod otel;
mod otlp_export;
mod panic_hook;
mod production;
mod proxy;
mod reliability;
mod request_logging;
mod sampling;
mod secrets;
mod server;
mod streaming;
mod tracing;

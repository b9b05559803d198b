//! The integration tests of apitally-core, as one binary (one link instead of one per file). Each
//! module is one concern; nextest runs every test in its own process, so tests that install a
//! global logger, subscriber or panic hook do not meet.

#![allow(unreachable_pub)]

#[macro_use]
mod common;

mod client_sync;
mod env;
mod instance;
mod log_upload;
mod proxy_env;
mod tls;
mod tls_env;

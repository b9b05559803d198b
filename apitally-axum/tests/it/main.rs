//! The integration tests of apitally-axum, as one binary.

#![allow(unreachable_pub)]

mod common;

mod acceptance;
mod production;
mod services;
mod validation;

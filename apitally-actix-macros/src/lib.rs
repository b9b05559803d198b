//! The `#[consumer(...)]` attribute of [apitally-actix](https://docs.rs/apitally-actix).
//!
//! Use it through `apitally-actix`, as `#[apitally::consumer(...)]` (dependency renamed) or
//! `#[apitally_actix::consumer(...)]`; its documentation is there.

mod args;
mod expand;

use proc_macro::TokenStream;

/// Sets the request's Apitally consumer from values the handler already has.
///
/// See `apitally_actix::consumer` for the documentation.
#[proc_macro_attribute]
pub fn consumer(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::consumer(args.into(), item.into()).into()
}

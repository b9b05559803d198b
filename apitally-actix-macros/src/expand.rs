//! The expansion: one extra first argument (the request, or axum's request handle), and a call that sets the consumer before the
//! handler's own body runs.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::{parse_quote, spanned::Spanned, FnArg, Ident, ItemFn, Path};

use crate::args::ConsumerArgs;

pub(crate) fn consumer(args: TokenStream, item: TokenStream) -> TokenStream {
    match try_consumer(args, item.clone()) {
        Ok(tokens) => tokens,
        // Keep the user's item so that one mistake gives one error, not a cascade.
        Err(err) => {
            let err = err.to_compile_error();
            quote!(#err #item)
        }
    }
}

fn try_consumer(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut func: ItemFn = syn::parse2(item).map_err(|err| {
        syn::Error::new(
            err.span(),
            "#[apitally::consumer] goes on an `async fn` handler",
        )
    })?;
    let args: ConsumerArgs = syn::parse2(args)?;
    if func.sig.asyncness.is_none() {
        return Err(syn::Error::new(
            func.sig.fn_token.span(),
            "#[apitally::consumer] goes on an `async fn` handler; add `async`",
        ));
    }
    if let Some(FnArg::Receiver(receiver)) = func.sig.inputs.first() {
        return Err(syn::Error::new(
            receiver.span(),
            "#[apitally::consumer] goes on a free `async fn` handler, not a method",
        ));
    }
    let krate = match args.krate.clone() {
        Some(krate) => krate,
        None => runtime_crate()?,
    };
    let private = quote!(#krate::__private);
    let req = Ident::new("__apitally_req", Span::mixed_site());
    // First: axum takes the body extractor last, and the request handle reads no body.
    func.sig
        .inputs
        .insert(0, parse_quote!(#req: #private::Request));

    let value = |expr: &syn::Expr| {
        quote_spanned! {expr.span()=>
            (&#private::Value(&(#expr))).__apitally_value()
        }
    };
    let identifier = value(&args.identifier);
    let name = args
        .name
        .as_ref()
        .map_or_else(|| quote!(::core::option::Option::None), value);
    let group = args
        .group
        .as_ref()
        .map_or_else(|| quote!(::core::option::Option::None), value);
    let attributes = args.attributes.iter().map(|(key, expr)| {
        let key = key.to_string();
        let value = value(expr);
        quote!((#key, #value))
    });
    let body = &func.block;
    func.block = parse_quote!({
        {
            #[allow(unused_imports)]
            use #private::{DisplayValue as _, OptionValue as _};
            #private::set_consumer(&#req, #identifier, #name, #group, &[#(#attributes),*]);
        }
        #body
    });
    Ok(quote!(#func))
}

/// The runtime crate, and so the framework, as the user's Cargo.toml names it (`apitally` when
/// renamed): `apitally-actix` or `apitally-axum`, whichever the crate depends on. Both
/// generate the same code: a first handler argument of the runtime's `__private::Request`
/// type (actix's `HttpRequest`; axum's request handle, an extractor) and a call that sets the
/// consumer. With both dependencies, `crate = "..."` says which.
fn runtime_crate() -> syn::Result<Path> {
    use proc_macro_crate::{crate_name, FoundCrate};
    let path = |found: FoundCrate, own: &str| -> Path {
        let name = match found {
            FoundCrate::Name(name) => name,
            FoundCrate::Itself => own.to_owned(),
        };
        let ident = Ident::new(&name, Span::call_site());
        parse_quote!(::#ident)
    };
    match (crate_name("apitally-actix"), crate_name("apitally-axum")) {
        (Ok(actix), Err(_)) => Ok(path(actix, "apitally_actix")),
        (Err(_), Ok(axum)) => Ok(path(axum, "apitally_axum")),
        (Ok(_), Ok(_)) => Err(syn::Error::new(
            Span::call_site(),
            "both apitally-actix and apitally-axum are dependencies: say which one this handler \
             is for with `crate = \"apitally_actix\"` or `crate = \"apitally_axum\"` (the names \
             your Cargo.toml gives them)",
        )),
        (Err(_), Err(_)) => Ok(parse_quote!(::apitally_actix)),
    }
}

//! The expansion: one extra `HttpRequest` argument, and a call that sets the consumer before the
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
    let krate = args.krate.clone().unwrap_or_else(runtime_crate);
    let private = quote!(#krate::__private);
    let req = Ident::new("__apitally_req", Span::mixed_site());
    func.sig
        .inputs
        .push(parse_quote!(#req: #private::HttpRequest));

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

/// The path of the runtime crate as the user's Cargo.toml names it (`apitally` when renamed),
/// falling back to `::apitally_actix`.
fn runtime_crate() -> Path {
    use proc_macro_crate::{crate_name, FoundCrate};
    match crate_name("apitally-actix") {
        Ok(FoundCrate::Name(name)) => {
            let ident = Ident::new(&name, Span::call_site());
            parse_quote!(::#ident)
        }
        _ => parse_quote!(::apitally_actix),
    }
}

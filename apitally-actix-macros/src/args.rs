//! Parsing of `#[consumer(identifier, name = .., group = .., attributes(key = .., ..), crate = "..")]`.

use syn::{
    parse::{Parse, ParseStream},
    punctuated::Punctuated,
    spanned::Spanned,
    Expr, ExprAssign, ExprLit, Lit, Path, Token,
};

const KEYS: &str = "`name`, `group`, `attributes(..)`, `crate`";

/// The attribute's arguments.
pub(crate) struct ConsumerArgs {
    pub(crate) identifier: Expr,
    pub(crate) name: Option<Expr>,
    pub(crate) group: Option<Expr>,
    /// `attributes(plan = .., seats = ..)`: keys and their values, in order.
    pub(crate) attributes: Vec<(syn::Ident, Expr)>,
    pub(crate) krate: Option<Path>,
}

/// `attributes(key = value, ...)`: keys are plain names.
fn parse_attributes(call: &syn::ExprCall, out: &mut Vec<(syn::Ident, Expr)>) -> syn::Result<()> {
    for arg in &call.args {
        let Expr::Assign(assign) = arg else {
            return Err(syn::Error::new(
                arg.span(),
                "expected `key = value` in `attributes(..)`, e.g. `attributes(plan = user.plan)`",
            ));
        };
        let Some(key) = key_of(assign) else {
            return Err(syn::Error::new(
                assign.left.span(),
                "an attribute's key is a plain name, e.g. `plan`",
            ));
        };
        let ident = syn::Ident::new(&key, assign.left.span());
        if out.iter().any(|(k, _)| *k == ident) {
            return Err(syn::Error::new(
                assign.left.span(),
                format!("duplicate attribute `{key}`"),
            ));
        }
        out.push((ident, (*assign.right).clone()));
    }
    Ok(())
}

fn key_of(assign: &ExprAssign) -> Option<String> {
    match &*assign.left {
        Expr::Path(p) if p.qself.is_none() && p.path.segments.len() == 1 => {
            Some(p.path.segments[0].ident.to_string())
        }
        _ => None,
    }
}

impl Parse for ConsumerArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            return Err(syn::Error::new(
                proc_macro2::Span::call_site(),
                "missing the consumer's identifier; write e.g. `#[apitally::consumer(user.id)]`",
            ));
        }
        let exprs = Punctuated::<Expr, Token![,]>::parse_terminated(input)?;
        let mut exprs = exprs.into_iter();
        let identifier =
            match exprs.next() {
                Some(Expr::Assign(assign)) => return Err(syn::Error::new(
                    assign.span(),
                    "the consumer's identifier comes first, before `name = ..` and `group = ..`; \
                     write e.g. `#[apitally::consumer(user.id, name = user.name)]`",
                )),
                Some(expr) => expr,
                None => unreachable!("input was not empty"),
            };
        let mut args = ConsumerArgs {
            identifier,
            name: None,
            group: None,
            attributes: Vec::new(),
            krate: None,
        };
        let mut has_attributes = false;
        for expr in exprs {
            if let Expr::Call(call) = &expr {
                let is_attributes = matches!(
                    &*call.func,
                    Expr::Path(p) if p.path.is_ident("attributes")
                );
                if is_attributes {
                    if has_attributes {
                        return Err(syn::Error::new(
                            call.func.span(),
                            "duplicate argument `attributes`",
                        ));
                    }
                    has_attributes = true;
                    parse_attributes(call, &mut args.attributes)?;
                    continue;
                }
            }
            let Expr::Assign(assign) = expr else {
                return Err(syn::Error::new(
                    expr.span(),
                    format!("expected `key = value` after the identifier, with a key among {KEYS}"),
                ));
            };
            let key = key_of(&assign);
            let slot_taken = |taken: bool, key: &str| {
                if taken {
                    Err(syn::Error::new(
                        assign.left.span(),
                        format!("duplicate argument `{key}`"),
                    ))
                } else {
                    Ok(())
                }
            };
            match key.as_deref() {
                Some("name") => {
                    slot_taken(args.name.is_some(), "name")?;
                    args.name = Some(*assign.right);
                }
                Some("group") => {
                    slot_taken(args.group.is_some(), "group")?;
                    args.group = Some(*assign.right);
                }
                Some("crate") => {
                    slot_taken(args.krate.is_some(), "crate")?;
                    let Expr::Lit(ExprLit {
                        lit: Lit::Str(lit), ..
                    }) = &*assign.right
                    else {
                        return Err(syn::Error::new(
                            assign.right.span(),
                            "expected a string with a path, e.g. `crate = \"apitally\"`",
                        ));
                    };
                    args.krate = Some(lit.parse()?);
                }
                _ => {
                    return Err(syn::Error::new(
                        assign.left.span(),
                        format!("unknown argument; expected one of: {KEYS}"),
                    ))
                }
            }
        }
        Ok(args)
    }
}

//! The attributes of `plughost-guest`: `#[tool]` turns a function into a tool (its doc comment is the description,
//! its argument type the input schema, its return type the output schema), `#[args]` and `#[output]` derive what
//! argument and result types need through the SDK's own `serde` and `schemars`, so a plugin depends on the SDK only.
//! Use them as `plughost_guest::{tool, args, output}`; the SDK's documentation describes them.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::{format_ident, quote};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Error, Expr, FnArg, GenericArgument, ItemFn, Lit, Meta, PathArguments, ReturnType, Type,
};

/// Makes a function a tool; see the SDK's `tool` documentation.
#[proc_macro_attribute]
pub fn tool(attr: TokenStream, item: TokenStream) -> TokenStream {
    let options = match Punctuated::<Meta, syn::Token![,]>::parse_terminated.parse(attr) {
        Ok(o) => o,
        Err(e) => return e.to_compile_error().into(),
    };
    let func = match syn::parse::<ItemFn>(item) {
        Ok(f) => f,
        Err(e) => return e.to_compile_error().into(),
    };
    match expand_tool(options, func) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// Derives `Deserialize` and `JsonSchema` through the SDK, for a tool's argument type (`#[args(serialize)]`:
/// `Serialize` too).
#[proc_macro_attribute]
pub fn args(attr: TokenStream, item: TokenStream) -> TokenStream {
    derive_through_sdk(
        attr,
        item,
        "serialize",
        quote!(::plughost_guest::Deserialize),
        quote!(::plughost_guest::Serialize),
    )
}

/// Derives `Serialize` and `JsonSchema` through the SDK, for a tool's structured result (`#[output(deserialize)]`:
/// `Deserialize` too, e.g. for a type read from an HTTP response).
#[proc_macro_attribute]
pub fn output(attr: TokenStream, item: TokenStream) -> TokenStream {
    derive_through_sdk(
        attr,
        item,
        "deserialize",
        quote!(::plughost_guest::Serialize),
        quote!(::plughost_guest::Deserialize),
    )
}

fn derive_through_sdk(
    attr: TokenStream,
    item: TokenStream,
    option: &str,
    derive: Tokens,
    also: Tokens,
) -> TokenStream {
    let extra = match attr.to_string().trim() {
        "" => quote!(),
        given if given == option => quote!(#also,),
        _ => {
            return Error::new(
                Span::call_site(),
                format!("the only option here is `{option}`"),
            )
            .to_compile_error()
            .into();
        }
    };
    let item = Tokens::from(item);
    quote! {
        #[derive(#derive, #extra ::plughost_guest::JsonSchema)]
        #[serde(crate = "::plughost_guest::serde")]
        #[schemars(crate = "::plughost_guest::schemars")]
        #item
    }
    .into()
}

/// What `#[tool(…)]` says beyond the function itself.
#[derive(Default)]
struct Options {
    name: Option<String>,
    title: Option<String>,
    flags: Vec<syn::Ident>,
}

const FLAGS: [&str; 5] = [
    "read_only",
    "destructive",
    "idempotent",
    "open_world",
    "long_running",
];

fn parse_options(options: Punctuated<Meta, syn::Token![,]>) -> syn::Result<Options> {
    let mut out = Options::default();
    for meta in options {
        match &meta {
            Meta::Path(p) if FLAGS.iter().any(|f| p.is_ident(f)) => {
                out.flags.push(p.get_ident().cloned().ok_or_else(|| {
                    Error::new(
                        p.span(),
                        "expected one of read_only, destructive, idempotent, open_world, long_running",
                    )
                })?);
            }
            Meta::NameValue(nv) if nv.path.is_ident("name") || nv.path.is_ident("title") => {
                let value = string_literal(&nv.value)
                    .ok_or_else(|| Error::new(nv.value.span(), "expected a string literal"))?;
                if nv.path.is_ident("name") {
                    out.name = Some(value);
                } else {
                    out.title = Some(value);
                }
            }
            other => {
                return Err(Error::new(
                    other.span(),
                    "unknown option: #[tool] takes name = \"…\", title = \"…\", read_only, destructive, \
                     idempotent, open_world, long_running",
                ));
            }
        }
    }
    Ok(out)
}

fn string_literal(e: &Expr) -> Option<String> {
    match e {
        Expr::Lit(l) => match &l.lit {
            Lit::Str(s) => Some(s.value()),
            _ => None,
        },
        _ => None,
    }
}

/// The doc comment, one line per `///` line, without the space after the slashes.
fn doc_comment(func: &ItemFn) -> String {
    let lines: Vec<String> = func
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            Meta::NameValue(nv) => string_literal(&nv.value),
            _ => None,
        })
        .map(|l| l.strip_prefix(' ').unwrap_or(&l).trim_end().to_string())
        .collect();
    lines.join("\n").trim().to_string()
}

/// `T` of `Result<T, E>`, or an error naming what a tool must return.
fn ok_type(output: &ReturnType) -> syn::Result<&Type> {
    let wrong = |span| {
        Error::new(
            span,
            "a #[tool] returns Result<T, E>: T is String (text), Json<T> or Output, or any Serialize + JsonSchema \
             type (structured output, its schema the tool's output schema); E converts into ToolError",
        )
    };
    let ReturnType::Type(_, ty) = output else {
        return Err(wrong(output.span()));
    };
    let Type::Path(path) = ty.as_ref() else {
        return Err(wrong(ty.span()));
    };
    let last = path.path.segments.last().ok_or_else(|| wrong(ty.span()))?;
    if last.ident != "Result" {
        return Err(wrong(ty.span()));
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return Err(wrong(ty.span()));
    };
    match args.args.first() {
        Some(GenericArgument::Type(t)) => Ok(t),
        _ => Err(wrong(ty.span())),
    }
}

/// Whether `T` is already one of the SDK's outputs (text, `Json<_>`, `Output`) rather than a type to wrap in `Json`.
fn is_sdk_output(t: &Type) -> bool {
    match t {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "String" || s.ident == "Json" || s.ident == "Output"),
        _ => false,
    }
}

fn expand_tool(options: Punctuated<Meta, syn::Token![,]>, func: ItemFn) -> syn::Result<Tokens> {
    let options = parse_options(options)?;
    let sig = &func.sig;
    if sig.asyncness.is_some() || !sig.generics.params.is_empty() {
        return Err(Error::new(
            sig.span(),
            "a #[tool] is a plain fn, not async and not generic",
        ));
    }
    if let Some(FnArg::Receiver(r)) = sig.inputs.first() {
        return Err(Error::new(r.span(), "a #[tool] is a free fn, without self"));
    }
    if sig.inputs.len() > 1 {
        return Err(Error::new(
            sig.inputs.span(),
            "a #[tool] takes one argument (a struct with #[args]) or none: put the arguments in one struct",
        ));
    }
    let description = doc_comment(&func);
    if description.is_empty() {
        return Err(Error::new(
            sig.ident.span(),
            "a #[tool] needs a doc comment (`/// …`): it is the tool's description that clients show",
        ));
    }
    let ident = &sig.ident;
    let name = options.name.unwrap_or_else(|| ident.to_string());
    let call = if sig.inputs.is_empty() {
        quote!(|_: ::plughost_guest::NoArgs| super::#ident())
    } else {
        quote!(|args| super::#ident(args))
    };
    let wrap = if is_sdk_output(ok_type(&sig.output)?) {
        quote!()
    } else {
        quote!(.map(::plughost_guest::Json))
    };
    let title = options.title.map(|t| quote!(.title(#t)));
    let flags = options.flags.iter().map(|f| quote!(.#f()));
    let vis = match &func.vis {
        syn::Visibility::Inherited => quote!(pub(crate)),
        v => quote!(#v),
    };
    let builder = format_ident!("tool");
    Ok(quote! {
        #func

        /// The tool made of the function of the same name (by `#[tool]`).
        #[doc(hidden)]
        #vis mod #ident {
            /// The tool, for the plugin's tool list (`export_plugin!`'s `tools: [...]`).
            pub fn #builder() -> ::plughost_guest::Tool {
                ::plughost_guest::Tool::new(#name, #description, #call
                    .map_err(::core::convert::Into::<::plughost_guest::ToolError>::into)
                    #wrap)
                #title
                #(#flags)*
            }
        }
    })
}

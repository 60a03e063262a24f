//! The test function under the attribute: which test attribute it has
//! (`#[tokio::test(…)]` and its arguments, `#[test]`, `test-case`'s), what
//! it expects (`#[should_panic]`), and a signature a test can have.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, ItemFn, Lit, MetaNameValue, Token};

use crate::args::literal;

/// What kind of test the attribute is on.
pub(crate) enum TestKind {
    /// `#[tokio::test(…)]`: tasks and threads.
    Tokio(RuntimeConfig),
    /// `#[test]`: threads.
    Plain,
    /// A plain function with `#[test_case(…)]`s below the attribute: its
    /// body is checked each time a generated case calls it.
    Cases,
}

/// `#[tokio::test(flavor = …)]`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    CurrentThread,
    MultiThread,
    /// A `LocalRuntime`.
    Local,
}

/// The `#[tokio::test(…)]` arguments taskleak applies to its own runtime.
pub(crate) struct RuntimeConfig {
    pub(crate) flavor: Flavor,
    /// Builder calls, e.g. `builder.worker_threads(2);`.
    pub(crate) builder_calls: Vec<TokenStream>,
}

/// `test-case`'s `#[test_case(…)]` (or `#[test_case::case(…)]`) and
/// `#[test_matrix(…)]`: each generates one test per case.
pub(crate) fn is_test_case(attr: &Attribute) -> bool {
    let path = attr.path();
    let last = path.segments.last().map(|segment| segment.ident.to_string());
    let first = path.segments.first().map(|segment| segment.ident.to_string());
    matches!(last.as_deref(), Some("test_case" | "test_matrix"))
        || (path.segments.len() == 2 && first.as_deref() == Some("test_case") && last.as_deref() == Some("case"))
}

/// The `panics` of a case's `=> panics …`, if it has one.
pub(crate) fn expecting_panic(attr: &Attribute) -> Option<Span> {
    let list = attr.meta.require_list().ok()?;
    let mut after_arrow = false;
    let mut previous = None;
    for token in list.tokens.clone() {
        if let proc_macro2::TokenTree::Punct(punct) = &token {
            if punct.as_char() == '>' && previous == Some('=') {
                after_arrow = true;
            }
            previous = Some(punct.as_char());
            continue;
        }
        previous = None;
        if after_arrow && matches!(&token, proc_macro2::TokenTree::Ident(ident) if ident == "panics") {
            return Some(token.span());
        }
    }
    None
}

pub(crate) fn is_path(attr: &Attribute, segments: &[&str]) -> bool {
    let path = attr.path();
    path.segments.len() == segments.len() && path.segments.iter().zip(segments).all(|(seg, want)| seg.ident == want)
}

/// The test attribute below `#[verify_no_leaks]`.
pub(crate) enum TestAttribute<'a> {
    Tokio(&'a Attribute),
    Plain,
}

/// Finds `#[tokio::test]` or `#[test]` among the function's attributes;
/// returns it and the other attributes, kept as they are.
pub(crate) fn split_test_attribute(input: &ItemFn) -> syn::Result<(TestAttribute<'_>, Vec<&Attribute>)> {
    let mut found = None;
    let mut others = Vec::new();
    for attr in &input.attrs {
        if found.is_none() && is_path(attr, &["tokio", "test"]) {
            found = Some(TestAttribute::Tokio(attr));
        } else if found.is_none() && is_path(attr, &["test"]) && matches!(attr.meta, syn::Meta::Path(_)) {
            found = Some(TestAttribute::Plain);
        } else {
            others.push(attr);
        }
    }
    match (found, &input.sig.asyncness) {
        (Some(TestAttribute::Plain), Some(asyncness)) => {
            return Err(syn::Error::new_spanned(
                asyncness,
                "an async test needs `#[tokio::test]`, not `#[test]`, below `#[taskleak::verify_no_leaks]`",
            ));
        }
        (Some(found), _) => return Ok((found, others)),
        (None, _) => {}
    }
    // `#[tokio::test]` above us has already turned the test into a plain
    // function that builds its own runtime, out of taskleak's reach.
    let expanded_by_tokio = input.sig.asyncness.is_none()
        && input
            .attrs
            .iter()
            .any(|attr| attr.path().leading_colon.is_some() && is_path(attr, &["core", "prelude", "v1", "test"]));
    if expanded_by_tokio {
        return Err(syn::Error::new(
            Span::call_site(),
            "`#[taskleak::verify_no_leaks]` must be placed above `#[tokio::test]`, not below it: \
             below, tokio has already built the runtime and taskleak cannot watch its tasks. Move this attribute up one line \
             (with `#[test_case(…)]`, put it above the `#[test_case]` lines)",
        ));
    }
    if let Some(asyncness) = &input.sig.asyncness {
        return Err(syn::Error::new_spanned(
            asyncness,
            "an async test needs `#[tokio::test]` below `#[taskleak::verify_no_leaks]`: add `#[tokio::test]` on the line after it",
        ));
    }
    Err(syn::Error::new_spanned(
        input.sig.fn_token,
        "`#[taskleak::verify_no_leaks]` goes on a test: put `#[test]` (or `#[tokio::test]` on an `async fn`) on the \
         line below it; if `#[test]` is above it, move it below; with `#[test_case(…)]`, put it above the \
         `#[test_case]` lines",
    ))
}

pub(crate) fn parse_tokio_test(attr: &Attribute, krate: &TokenStream) -> syn::Result<RuntimeConfig> {
    let mut config = RuntimeConfig {
        flavor: Flavor::CurrentThread,
        builder_calls: Vec::new(),
    };
    let pairs = match &attr.meta {
        syn::Meta::Path(_) => Punctuated::new(),
        syn::Meta::List(_) => attr.parse_args_with(Punctuated::<MetaNameValue, Token![,]>::parse_terminated)?,
        syn::Meta::NameValue(_) => {
            return Err(syn::Error::new_spanned(
                attr,
                "expected `#[tokio::test]` or `#[tokio::test(…)]`",
            ));
        }
    };
    let builder_type = quote!(#krate::__private::tokio::runtime);
    let mut worker_threads = None;
    let mut start_paused = None;
    for pair in pairs {
        let key = pair.path.get_ident().map(ToString::to_string).unwrap_or_default();
        let value = &pair.value;
        match key.as_str() {
            "flavor" => {
                config.flavor = match literal(value) {
                    Some(Lit::Str(text)) if text.value() == "multi_thread" => Flavor::MultiThread,
                    Some(Lit::Str(text)) if text.value() == "current_thread" => Flavor::CurrentThread,
                    Some(Lit::Str(text)) if text.value() == "local" => Flavor::Local,
                    _ => {
                        return Err(syn::Error::new_spanned(
                            value,
                            "`flavor` must be \"current_thread\", \"multi_thread\" or \"local\"",
                        ));
                    }
                }
            }
            "worker_threads" => {
                worker_threads = Some(pair.path.span());
                config
                    .builder_calls
                    .push(quote_spanned!(value.span()=> builder.worker_threads(#value);));
            }
            "start_paused" => {
                start_paused = Some(pair.path.span());
                config
                    .builder_calls
                    .push(quote_spanned!(value.span()=> builder.start_paused(#value);));
            }
            "unhandled_panic" => {
                let variant = match literal(value) {
                    Some(Lit::Str(text)) if text.value() == "ignore" => quote!(Ignore),
                    Some(Lit::Str(text)) if text.value() == "shutdown_runtime" => {
                        quote!(ShutdownRuntime)
                    }
                    _ => {
                        return Err(syn::Error::new_spanned(
                            value,
                            "`unhandled_panic` must be \"ignore\" or \"shutdown_runtime\"",
                        ));
                    }
                };
                config.builder_calls.push(
                    quote_spanned!(value.span()=> builder.unhandled_panic(#builder_type::UnhandledPanic::#variant);),
                );
            }
            "name" => config
                .builder_calls
                .push(quote_spanned!(value.span()=> builder.name(#value);)),
            // taskleak builds the runtime with the tokio it depends on; a
            // renamed tokio is the same crate under another name.
            "crate" => {}
            _ => {
                return Err(syn::Error::new_spanned(
                    &pair.path,
                    "unknown `#[tokio::test]` argument; taskleak supports: `flavor`, `worker_threads`, `start_paused`, `unhandled_panic`, `name`, `crate`",
                ));
            }
        }
    }
    let multi_thread = config.flavor == Flavor::MultiThread;
    match (multi_thread, worker_threads, start_paused) {
        (false, Some(span), _) => Err(syn::Error::new(
            span,
            "the `worker_threads` option requires the `multi_thread` runtime flavor: add `flavor = \"multi_thread\"`",
        )),
        (true, _, Some(span)) => Err(syn::Error::new(
            span,
            "the `start_paused` option requires the `current_thread` runtime flavor",
        )),
        _ => Ok(config),
    }
}

/// What libtest refuses, refused here with the same rule and a span:
/// arguments, and generic parameters other than lifetimes (libtest calls a
/// test with no type or const arguments; a lifetime it can leave to the
/// compiler, as in `fn traits<'a>()`).
pub(crate) fn check_signature(input: &ItemFn) -> syn::Result<()> {
    if !input.sig.inputs.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.sig.inputs,
            "a test function takes no arguments",
        ));
    }
    let not_a_lifetime = input
        .sig
        .generics
        .params
        .iter()
        .find(|param| !matches!(param, syn::GenericParam::Lifetime(_)));
    if let Some(param) = not_a_lifetime {
        return Err(syn::Error::new_spanned(
            param,
            "a test function cannot have type or const parameters (libtest calls it with none); \
             lifetime parameters are fine",
        ));
    }
    Ok(())
}

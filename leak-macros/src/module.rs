//! `#[verify_no_leaks]` on a `mod`: put the attribute, merged with any the
//! test has of its own, on every test function inside, nested modules too;
//! `#[taskleak::skip]` opts a test out.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Item, ItemMod, MetaNameValue, Token};

use crate::entry::{is_path, parse_config, with_error};

/// Options that may be given several times: a test's add to its module's.
const LISTS: &[&str] = &[
    "ignore_top_function",
    "ignore_any_function",
    "ignore_spawned_at",
    "ignore_thread_name",
];

type Args = Punctuated<MetaNameValue, Token![,]>;

pub(crate) fn verify_module(args: TokenStream, mut module: ItemMod) -> TokenStream {
    let result = parse_args(args).and_then(|args| {
        let krate = parse_config(args.to_token_stream())?.krate();
        let Some((_, items)) = &mut module.content else {
            return Err(syn::Error::new(
                module.semi.map_or(module.ident.span(), |semi| semi.span()),
                "`#[taskleak::verify_no_leaks]` cannot see into a module in another file: put it on \
                 an inline `mod name { … }`, or on the tests themselves",
            ));
        };
        rewrite(items, &args, &krate)
    });
    match result {
        Ok(()) => module.into_token_stream(),
        Err(error) => with_error(module.into_token_stream(), error),
    }
}

fn parse_args(args: TokenStream) -> syn::Result<Args> {
    syn::parse::Parser::parse2(Args::parse_terminated, args)
}

/// Adds the (merged) attribute to each test function among `items`.
fn rewrite(items: &mut [Item], args: &Args, krate: &TokenStream) -> syn::Result<()> {
    for item in items {
        match item {
            Item::Fn(function) => {
                let skip = function.attrs.iter().position(is_skip);
                let own = function.attrs.iter().position(is_verify);
                if let (Some(skip), Some(_)) = (skip, own) {
                    return Err(syn::Error::new_spanned(
                        &function.attrs[skip],
                        "this test both skips the check and asks for it: keep one",
                    ));
                }
                if let Some(skip) = skip {
                    let skip = function.attrs.remove(skip);
                    if !matches!(skip.meta, syn::Meta::Path(_)) {
                        return Err(syn::Error::new_spanned(skip, "`#[taskleak::skip]` takes no arguments"));
                    }
                    continue;
                }
                if !function.attrs.iter().any(is_test) {
                    continue;
                }
                let mut merged = match own {
                    Some(own) => merge(args, &own_args(&function.attrs.remove(own))?),
                    None => args.clone(),
                };
                if function.sig.asyncness.is_some() {
                    // A module's shared runtime is for its plain tests: a
                    // `#[tokio::test]` has a runtime of its own.
                    merged = merged
                        .into_iter()
                        .filter(|pair| !pair.path.is_ident("runtime"))
                        .collect();
                }
                function
                    .attrs
                    .insert(0, syn::parse_quote!(#[#krate::verify_no_leaks(#merged)]));
            }
            Item::Mod(nested) => {
                let merged = match nested.attrs.iter().position(is_verify) {
                    Some(own) => merge(args, &own_args(&nested.attrs.remove(own))?),
                    None => args.clone(),
                };
                if let Some((_, inner)) = &mut nested.content {
                    rewrite(inner, &merged, krate)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The module's options, overridden by the test's own (list options add up).
fn merge(module: &Args, test: &Args) -> Args {
    let key = |pair: &MetaNameValue| pair.path.to_token_stream().to_string();
    let mut merged: Args = module
        .iter()
        .filter(|pair| LISTS.contains(&key(pair).as_str()) || !test.iter().any(|own| key(own) == key(pair)))
        .cloned()
        .collect();
    merged.extend(test.iter().cloned());
    merged
}

fn own_args(attr: &Attribute) -> syn::Result<Args> {
    match &attr.meta {
        syn::Meta::Path(_) => Ok(Args::new()),
        syn::Meta::List(list) => parse_args(list.tokens.clone()),
        syn::Meta::NameValue(_) => Err(syn::Error::new_spanned(attr, "expected `#[verify_no_leaks(…)]`")),
    }
}

fn last_segment_is(attr: &Attribute, name: &str) -> bool {
    attr.path().segments.last().is_some_and(|segment| segment.ident == name)
}

fn is_verify(attr: &Attribute) -> bool {
    last_segment_is(attr, "verify_no_leaks")
}

fn is_skip(attr: &Attribute) -> bool {
    let path = attr.path();
    last_segment_is(attr, "skip") && (path.segments.len() == 1 || path.segments[0].ident == "taskleak")
}

fn is_test(attr: &Attribute) -> bool {
    is_path(attr, &["test"]) || is_path(attr, &["tokio", "test"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn expand(args: TokenStream, item: TokenStream) -> String {
        verify_module(args, syn::parse2(item).expect("a module")).to_string()
    }

    #[test]
    fn every_test_gets_the_attribute_with_its_own_options_merged() {
        let out = expand(
            quote!(max_retries = 5, ignore_spawned_at = "a"),
            quote! {
                mod tests {
                    #[test] fn plain() {}
                    #[taskleak::verify_no_leaks(max_retries = 9, ignore_spawned_at = "b")]
                    #[tokio::test] async fn own() {}
                    #[taskleak::skip] #[test] fn skipped() {}
                    fn helper() {}
                    mod nested { #[test] fn deep() {} }
                }
            },
        );
        assert_eq!(out.matches("verify_no_leaks").count(), 3, "{out}");
        assert!(
            out.contains("ignore_spawned_at = \"a\" , max_retries = 9 , ignore_spawned_at = \"b\""),
            "{out}"
        );
        assert!(!out.contains(":: skip"), "{out}");
        assert!(out.contains("fn helper"), "{out}");
    }

    #[test]
    fn skip_and_verify_together_is_an_error() {
        let out = expand(
            quote!(),
            quote! { mod tests { #[taskleak::skip] #[taskleak::verify_no_leaks] #[test] fn both() {} } },
        );
        assert!(out.contains("compile_error"), "{out}");
    }
}

//! `#[verify_no_leaks]` on a `mod`: put the attribute, merged with any the
//! test has of its own, on every test function inside, nested modules too;
//! `#[taskleak::skip]` opts a test out.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Attribute, Item, ItemMod};

use crate::args::{Config, parse_config};
use crate::expand::with_error;
use crate::test_fn::{is_path, is_test_case};

pub(crate) fn verify_module(args: TokenStream, mut module: ItemMod) -> TokenStream {
    let result = parse_config(args).and_then(|config| {
        let krate = config.krate();
        let Some((_, items)) = &mut module.content else {
            return Err(syn::Error::new(
                module.semi.map_or(module.ident.span(), |semi| semi.span()),
                "`#[taskleak::verify_no_leaks]` cannot see into a module in another file: put it on \
                 an inline `mod name { … }`, or on the tests themselves",
            ));
        };
        rewrite(items, &config, &krate)
    });
    match result {
        Ok(()) => module.into_token_stream(),
        Err(error) => with_error(module.into_token_stream(), error),
    }
}

/// Adds the (merged) attribute to each test function among `items`.
fn rewrite(items: &mut [Item], module: &Config, krate: &TokenStream) -> syn::Result<()> {
    let skips = |attr: &Attribute| is_skip(attr, krate);
    for item in items {
        match item {
            Item::Fn(function) => {
                let skip = function.attrs.iter().position(skips);
                let own = function.attrs.iter().position(is_verify);
                if let (Some(skip), Some(_)) = (skip, own) {
                    return Err(syn::Error::new_spanned(
                        &function.attrs[skip],
                        "this test both skips the check and asks for it: keep one",
                    ));
                }
                if let Some(skip) = skip {
                    take_skip(&mut function.attrs, skip)?;
                    continue;
                }
                if let Some(unsupported) = function.attrs.iter().find(|attr| is_unsupported_test(attr)) {
                    return Err(syn::Error::new_spanned(
                        unsupported,
                        "a module's `#[taskleak::verify_no_leaks]` checks `#[test]` and `#[tokio::test]` functions \
                         only: put `#[taskleak::skip]` on this one (it would not be checked)",
                    ));
                }
                let rstest = function.attrs.iter().any(is_rstest);
                if !rstest && !function.attrs.iter().any(|attr| is_test(attr) || is_test_case(attr)) {
                    continue;
                }
                let mut merged = match own {
                    Some(own) => module.merged_with(&own_config(&function.attrs.remove(own))?),
                    None => module.clone(),
                };
                if function.sig.asyncness.is_some() {
                    // A module's shared runtime is for its plain tests: a
                    // `#[tokio::test]` has a runtime of its own.
                    merged.runtime = None;
                } else if matches!(merged.threads, Some((false, _))) && merged.runtime.is_none() {
                    // A plain test with no threads and no shared runtime
                    // has nothing to check.
                    continue;
                }
                let args = merged.to_args();
                let attribute = syn::parse_quote!(#[#krate::verify_no_leaks(#args)]);
                if rstest {
                    // Below `#[rstest]` and its cases, which it copies to
                    // each case; above a `#[tokio::test]`.
                    let at = function.attrs.iter().position(is_test).unwrap_or(function.attrs.len());
                    function.attrs.insert(at, attribute);
                } else {
                    // First: above `#[tokio::test]`, and above `#[test_case(…)]`s.
                    function.attrs.insert(0, attribute);
                }
            }
            Item::Mod(nested) => {
                if let Some(skip) = nested.attrs.iter().position(skips) {
                    // The whole nested module opts out.
                    take_skip(&mut nested.attrs, skip)?;
                    continue;
                }
                let merged = match nested.attrs.iter().position(is_verify) {
                    Some(own) => module.merged_with(&own_config(&nested.attrs.remove(own))?),
                    None => module.clone(),
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

/// Removes a `#[taskleak::skip]`, which takes no arguments.
fn take_skip(attrs: &mut Vec<Attribute>, at: usize) -> syn::Result<()> {
    let skip = attrs.remove(at);
    if !matches!(skip.meta, syn::Meta::Path(_)) {
        return Err(syn::Error::new_spanned(skip, "`#[taskleak::skip]` takes no arguments"));
    }
    Ok(())
}

/// A test's (or nested module's) own `#[verify_no_leaks(…)]`, validated:
/// its errors point at its own tokens.
fn own_config(attr: &Attribute) -> syn::Result<Config> {
    match &attr.meta {
        syn::Meta::Path(_) => Ok(Config::default()),
        syn::Meta::List(list) => parse_config(list.tokens.clone()),
        syn::Meta::NameValue(_) => Err(syn::Error::new_spanned(attr, "expected `#[verify_no_leaks(…)]`")),
    }
}

fn last_segment_is(attr: &Attribute, name: &str) -> bool {
    attr.path().segments.last().is_some_and(|segment| segment.ident == name)
}

fn is_verify(attr: &Attribute) -> bool {
    last_segment_is(attr, "verify_no_leaks")
}

/// `#[skip]`, `#[taskleak::skip]`, or `#[<crate>::skip]` with the
/// module's `crate = "…"`.
fn is_skip(attr: &Attribute, krate: &TokenStream) -> bool {
    let path = attr.path();
    let first = path.segments.first().map(|segment| segment.ident.to_string());
    let krate = krate.to_string().replace(' ', "");
    last_segment_is(attr, "skip")
        && (path.segments.len() == 1
            || first.as_deref() == Some("taskleak")
            || first.is_some_and(|first| krate.trim_start_matches("::").starts_with(&first)))
}

fn is_test(attr: &Attribute) -> bool {
    is_path(attr, &["test"])
        || is_path(attr, &["tokio", "test"])
        || is_path(attr, &["core", "prelude", "v1", "test"])
        || is_path(attr, &["std", "prelude", "v1", "test"])
}

fn is_rstest(attr: &Attribute) -> bool {
    last_segment_is(attr, "rstest")
}

/// Test attributes a module check cannot wrap: other test frameworks'
/// (`#[test_log::test]`) and a `#[test]` behind `cfg_attr`.
fn is_unsupported_test(attr: &Attribute) -> bool {
    let last = attr.path().segments.last().map(|segment| segment.ident.to_string());
    let framework = attr.path().segments.len() > 1 && last.as_deref() == Some("test") && !is_test(attr);
    let hidden_test = attr.path().is_ident("cfg_attr")
        && attr
            .meta
            .require_list()
            .is_ok_and(|list| list.tokens.clone().into_iter().any(|token| token.to_string() == "test"));
    framework || hidden_test
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tests_own_options_win_and_repeatable_ones_add_up_as_the_table_says() {
        for option in taskleak_options::OPTIONS {
            let written: TokenStream = format!("{} = {}", option.name, option.value.example())
                .parse()
                .expect("tokens");
            let config = parse_config(written).expect("an option of the table");
            let merged = config.merged_with(&config).to_args().to_string();
            let times = merged.matches(&format!("{} =", option.name)).count();
            let expected = if option.repeatable { 2 } else { 1 };
            assert_eq!(times, expected, "`{}` merged into: {merged}", option.name);
            // What the merge writes parses back.
            parse_config(merged.parse().expect("tokens")).expect("merged arguments parse");
        }
    }
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
            out.contains("max_retries = 9 , ignore_spawned_at = \"a\" , ignore_spawned_at = \"b\""),
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

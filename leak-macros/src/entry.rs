//! `#[verify_no_leaks]` on a function, in three steps: parse and validate
//! the arguments (`args`) and the test function (`test_fn`), each error
//! pointing at the offending token, then generate one call into
//! `::taskleak::__private` (`expand`).

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Attribute, ItemFn};

use crate::args::parse_config;
use crate::expand::{generate, with_error, without_tokio_test};
use crate::test_fn::{
    TestAttribute, TestKind, check_signature, expecting_panic, is_test_case, parse_tokio_test, split_test_attribute,
};

pub(crate) fn verify_no_leaks(args: TokenStream, item: TokenStream) -> TokenStream {
    let input: ItemFn = match syn::parse2(item.clone()) {
        Ok(input) => input,
        Err(error) => return with_error(item, error),
    };
    if let Some(last_case) = input.attrs.iter().rposition(is_test_case) {
        return verify_test_cases(args, input, last_case);
    }
    let parsed = parse_config(args).and_then(|config| {
        let (kind, attrs) = match split_test_attribute(&input)? {
            (TestAttribute::Tokio(attr), attrs) => {
                config.check_tokio_test()?;
                (TestKind::Tokio(parse_tokio_test(attr, &config.krate())?), attrs)
            }
            (TestAttribute::Plain, attrs) => {
                config.check_plain_test()?;
                (TestKind::Plain, attrs)
            }
        };
        check_signature(&input)?;
        Ok((config, kind, attrs))
    });
    match parsed {
        Ok((config, kind, attrs)) => generate(&input, attrs, &config, &kind),
        // Keep the user's function so that their IDE keeps working, minus
        // `#[tokio::test]`, so that the one error is all they see.
        Err(error) => with_error(without_tokio_test(input), error),
    }
}

/// The attribute above `#[test_case(…)]`s. A plain function's body is
/// checked where it is: `test-case` puts `#[test]` *above* what follows its
/// attributes, where no attribute can see it, so the cases it generates call
/// the checked function. An async test gets the attribute moved below the
/// cases, above its `#[tokio::test]`, and each generated case is checked.
fn verify_test_cases(args: TokenStream, mut input: ItemFn, last_case: usize) -> TokenStream {
    let config = match parse_config(args.clone()) {
        Ok(config) => config,
        Err(error) => return with_error(input.into_token_stream(), error),
    };
    let krate = config.krate();
    if input.sig.asyncness.is_some() {
        // `test-case` takes its attributes out with `swap_remove`, which
        // moves the last attribute into the gap: with every other case last,
        // the rest keep their order, ours above `#[tokio::test]`.
        let (cases, others): (Vec<Attribute>, Vec<Attribute>) =
            std::mem::take(&mut input.attrs).into_iter().partition(is_test_case);
        let mut cases = cases.into_iter();
        input.attrs.extend(cases.next());
        input.attrs.push(syn::parse_quote!(#[#krate::verify_no_leaks(#args)]));
        input.attrs.extend(others);
        input.attrs.extend(cases);
        return input.into_token_stream();
    }
    let checked = config.check_plain_test().and_then(|()| {
        // A case that must panic cannot be told from a leak's failure.
        let panicking = input.attrs[..=last_case]
            .iter()
            .filter(|attr| is_test_case(attr))
            .find_map(expecting_panic);
        match panicking {
            Some(token) => Err(syn::Error::new(
                token,
                "taskleak cannot check a plain test whose cases expect a panic: a leak fails the case by \
                 panicking, which would satisfy `panics`. Move these cases to a function without \
                 `#[taskleak::verify_no_leaks]`",
            )),
            None => Ok(()),
        }
    });
    match checked {
        Ok(()) => {
            let attrs: Vec<Attribute> = input.attrs.clone();
            generate(&input, attrs.iter().collect(), &config, &TestKind::Cases)
        }
        Err(error) => with_error(input.into_token_stream(), error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::parse_duration;
    use proc_macro2::Span;
    use quote::quote;
    use syn::LitStr;

    fn expand(args: TokenStream, item: TokenStream) -> String {
        verify_no_leaks(args, item).to_string()
    }

    #[test]
    fn the_parser_takes_every_option_of_the_table_and_no_other() {
        for option in taskleak_options::OPTIONS {
            let written = format!("{} = {}", option.name, option.value.example());
            let args: TokenStream = written.parse().expect("tokens");
            if let Err(error) = parse_config(args) {
                panic!("`{written}` is in the option table, and the parser says: {error}");
            }
        }
        let error = parse_config(quote!(max_retry = 3)).err().map(|error| error.to_string());
        let message = error.expect("an unknown option is refused");
        assert!(message.contains("unknown option `max_retry`"), "{message}");
        assert!(message.contains(&taskleak_options::listed(|_| true)), "{message}");
    }

    #[test]
    fn durations_take_a_unit() {
        let parse = |text: &str| parse_duration(&LitStr::new(text, Span::call_site())).ok();
        assert_eq!(parse("250us"), Some(250_000));
        assert_eq!(parse("100ms"), Some(100_000_000));
        assert_eq!(parse("2s"), Some(2_000_000_000));
        assert_eq!(parse("100"), None);
        assert_eq!(parse("ms"), None);
        assert_eq!(parse("1.5s"), None);
    }

    #[test]
    fn takes_over_tokio_test_and_keeps_other_attributes() {
        let out = expand(
            quote!(max_retries = 3),
            quote! {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[should_panic(expected = "boom")]
                async fn leaks() { panic!("boom") }
            },
        );
        assert!(!out.contains("tokio :: test"), "{out}");
        assert!(out.contains("should_panic"), "{out}");
        assert!(out.contains("Flavor :: MultiThread"), "{out}");
        assert!(out.contains("builder . worker_threads (2)"), "{out}");
        assert!(out.contains("Some (3u32)"), "{out}");
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn inner_attributes_stay_inside_and_should_panic_is_seen() {
        let out = expand(
            quote!(),
            quote! {
                #[tokio::test]
                #[should_panic]
                async fn t() { #![allow(unused_variables)] let x = 1; }
            },
        );
        let body_at = out.find("let body").expect("generated body");
        let inner_at = out
            .find("# ! [allow (unused_variables)]")
            .expect("inner attribute kept");
        assert!(inner_at < body_at, "{out}");
        assert!(out.contains("Option :: Some (|| ())"), "{out}");
    }

    #[test]
    fn a_renamed_crate_is_reached_by_its_path() {
        let out = expand(
            quote!(crate = "tl"),
            quote!(
                #[tokio::test]
                async fn t() {}
            ),
        );
        assert!(out.contains("tl :: __private :: run_tokio_test"), "{out}");
        assert!(!out.contains(":: taskleak ::"), "{out}");
    }

    #[test]
    fn errors_keep_the_users_function() {
        let out = expand(
            quote!(bogus = 1),
            quote!(
                #[tokio::test]
                async fn kept() {}
            ),
        );
        assert!(out.contains("unknown option `bogus`"), "{out}");
        assert!(out.contains("fn kept"), "{out}");
    }
}

//! `#[verify_no_leaks]`: parse the arguments and the test, validate each
//! with an error pointing at the offending token, then generate one call
//! into `::taskleak::__private`.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ItemFn, Lit, LitStr, MetaNameValue, Token};

/// The attribute's own arguments.
#[derive(Default)]
pub(crate) struct Config {
    /// `crate = "path"`: where taskleak is, when renamed in Cargo.toml.
    krate: Option<syn::Path>,
    threads: Option<(bool, Span)>,
    serial: Option<(bool, Span)>,
    /// `runtime = "PATH"`: a shared runtime (plain tests only).
    runtime: Option<(syn::Path, Span)>,
    max_retries: Option<u32>,
    max_sleep_nanos: Option<u64>,
    ignore_top_function: Vec<LitStr>,
    ignore_any_function: Vec<LitStr>,
    ignore_spawned_at: Vec<LitStr>,
    ignore_thread_name: Vec<LitStr>,
    ignore_dependency: Vec<LitStr>,
}

/// What kind of test the attribute is on.
enum TestKind {
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
enum Flavor {
    CurrentThread,
    MultiThread,
    /// A `LocalRuntime`.
    Local,
}

/// The `#[tokio::test(…)]` arguments taskleak applies to its own runtime.
struct RuntimeConfig {
    flavor: Flavor,
    /// Builder calls, e.g. `builder.worker_threads(2);`.
    builder_calls: Vec<TokenStream>,
}

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

/// `test-case`'s `#[test_case(…)]` (or `#[test_case::case(…)]`) and
/// `#[test_matrix(…)]`: each generates one test per case.
pub(crate) fn is_test_case(attr: &Attribute) -> bool {
    let path = attr.path();
    let last = path.segments.last().map(|segment| segment.ident.to_string());
    let first = path.segments.first().map(|segment| segment.ident.to_string());
    matches!(last.as_deref(), Some("test_case" | "test_matrix"))
        || (path.segments.len() == 2 && first.as_deref() == Some("test_case") && last.as_deref() == Some("case"))
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

/// The `panics` of a case's `=> panics …`, if it has one.
fn expecting_panic(attr: &Attribute) -> Option<Span> {
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

fn without_tokio_test(mut input: ItemFn) -> TokenStream {
    let before = input.attrs.len();
    input
        .attrs
        .retain(|attr| !is_path(attr, &["tokio", "test"]) && !is_path(attr, &["test"]));
    if input.attrs.len() != before {
        input.attrs.push(syn::parse_quote!(#[allow(dead_code)]));
    }
    input.into_token_stream()
}

pub(crate) fn with_error(mut tokens: TokenStream, error: syn::Error) -> TokenStream {
    tokens.extend(error.into_compile_error());
    tokens
}

pub(crate) fn parse_config(args: TokenStream) -> syn::Result<Config> {
    let pairs = syn::parse::Parser::parse2(Punctuated::<MetaNameValue, Token![,]>::parse_terminated, args)?;
    let mut config = Config::default();
    for pair in pairs {
        let Some(key) = pair.path.get_ident().map(ToString::to_string) else {
            return Err(unknown_option(&pair.path));
        };
        match key.as_str() {
            "max_retries" => {
                set_once(
                    &mut config.max_retries,
                    parse_int(&pair.value, "max_retries")?,
                    &pair.path,
                )?;
            }
            "max_sleep" => {
                let text = string_literal(&pair.value, "max_sleep", "\"100ms\"")?;
                set_once(&mut config.max_sleep_nanos, parse_duration(&text)?, &pair.path)?;
            }
            "ignore_top_function" | "ignore_any_function" | "ignore_spawned_at" | "ignore_thread_name" => {
                let pattern = string_literal(&pair.value, &key, "\"regex\"")?;
                check_regex(&pattern, &key)?;
                match key.as_str() {
                    "ignore_top_function" => config.ignore_top_function.push(pattern),
                    "ignore_any_function" => config.ignore_any_function.push(pattern),
                    "ignore_thread_name" => config.ignore_thread_name.push(pattern),
                    _ => config.ignore_spawned_at.push(pattern),
                }
            }
            "ignore_dependency" => {
                let name = string_literal(&pair.value, &key, "\"bb8\"")?;
                let value = name.value();
                let valid = !value.is_empty()
                    && value
                        .bytes()
                        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
                if !valid {
                    return Err(syn::Error::new_spanned(
                        &name,
                        "`ignore_dependency` takes a crate's name as Cargo.toml spells it, e.g. \"bb8\": \
                         everything that crate spawns is ignored",
                    ));
                }
                config.ignore_dependency.push(name);
            }
            "task_names" => {
                return Err(syn::Error::new_spanned(
                    &pair.path,
                    "`task_names` is now taskleak's cargo feature `task-names`: with it on, every report names \
                     its tasks; remove this option and add `features = [\"task-names\"]` to the taskleak \
                     dependency (it turns on tokio's `tracing` feature, which wraps every task in a span)",
                ));
            }
            "threads" | "serial" => {
                let Some(Lit::Bool(flag)) = literal(&pair.value) else {
                    return Err(syn::Error::new_spanned(
                        &pair.value,
                        format!("`{key}` takes `true` or `false`, e.g. `{key} = true`"),
                    ));
                };
                let slot = match key.as_str() {
                    "threads" => &mut config.threads,
                    _ => &mut config.serial,
                };
                set_once(slot, (flag.value, pair.path.span()), &pair.path)?;
            }
            "runtime" => {
                let (parsed, span) = path_literal(
                    &pair.value,
                    "runtime",
                    "\"crate::RUNTIME\"",
                    "the path of a static `taskleak::SharedRuntime`, e.g. `runtime = \"RUNTIME\"`",
                )?;
                set_once(&mut config.runtime, (parsed, span), &pair.path)?;
            }
            "crate" => {
                let (parsed, _) = path_literal(
                    &pair.value,
                    "crate",
                    "\"my_taskleak\"",
                    "a path to the taskleak crate, e.g. `crate = \"my_taskleak\"`",
                )?;
                set_once(&mut config.krate, parsed, &pair.path)?;
            }
            _ => return Err(unknown_option(&pair.path)),
        }
    }
    if let (Some((true, span)), Some((false, _))) = (config.serial, config.threads) {
        return Err(syn::Error::new(
            span,
            "`serial` makes thread checks take turns, and `threads = false` turns them off: keep one",
        ));
    }
    Ok(config)
}

impl Config {
    /// A plain `#[test]` has threads to check, and tasks only on a shared
    /// runtime.
    fn check_plain_test(&self) -> syn::Result<()> {
        if let (Some((false, span)), None) = (self.threads, &self.runtime) {
            return Err(syn::Error::new(
                span,
                "a plain `#[test]` is checked for threads only: with `threads = false` nothing is left to check; \
                 remove the attribute instead",
            ));
        }
        Ok(())
    }

    /// A `#[tokio::test]` has a runtime of its own.
    fn check_tokio_test(&self) -> syn::Result<()> {
        match &self.runtime {
            Some((_, span)) => Err(syn::Error::new(
                *span,
                "`runtime` is for plain `#[test]` functions that use a shared runtime; a `#[tokio::test]` \
                 builds a runtime of its own",
            )),
            None => Ok(()),
        }
    }

    /// The path generated code reaches taskleak by.
    pub(crate) fn krate(&self) -> TokenStream {
        match &self.krate {
            Some(path) => quote!(#path),
            None => quote!(::taskleak),
        }
    }
}

fn unknown_option(path: &syn::Path) -> syn::Error {
    let name = path.to_token_stream().to_string().replace(' ', "");
    let options = taskleak_options::listed(|_| true);
    syn::Error::new_spanned(path, format!("unknown option `{name}`; expected one of: {options}"))
}

fn set_once<T>(slot: &mut Option<T>, value: T, path: &syn::Path) -> syn::Result<()> {
    if slot.replace(value).is_some() {
        let name = path.to_token_stream().to_string();
        return Err(syn::Error::new_spanned(
            path,
            format!("`{name}` is given twice; keep one"),
        ));
    }
    Ok(())
}

fn literal(value: &Expr) -> Option<&Lit> {
    match value {
        Expr::Lit(expr) => Some(&expr.lit),
        _ => None,
    }
}

fn parse_int(value: &Expr, key: &str) -> syn::Result<u32> {
    match literal(value) {
        Some(Lit::Int(int)) => int.base10_parse::<u32>(),
        _ => Err(syn::Error::new_spanned(
            value,
            format!("`{key}` takes a whole number, e.g. `{key} = 20`"),
        )),
    }
}

fn string_literal(value: &Expr, key: &str, example: &str) -> syn::Result<LitStr> {
    match literal(value) {
        Some(Lit::Str(text)) => Ok(text.clone()),
        _ => Err(syn::Error::new_spanned(
            value,
            format!("`{key}` takes a string, e.g. `{key} = {example}`"),
        )),
    }
}

/// A string holding a Rust path, e.g. `crate = "my_taskleak"`, and its span;
/// `example` is the value shown when it is not a string, and `expected`
/// finishes "`key` takes …" when it is not a path.
fn path_literal(value: &Expr, key: &str, example: &str, expected: &str) -> syn::Result<(syn::Path, Span)> {
    let text = string_literal(value, key, example)?;
    let path = text
        .parse::<syn::Path>()
        .map_err(|_| syn::Error::new_spanned(&text, format!("`{key}` takes {expected}")))?;
    Ok((path, text.span()))
}

/// `"250us"`, `"100ms"`, `"2s"` into nanoseconds.
fn parse_duration(text: &LitStr) -> syn::Result<u64> {
    let value = text.value();
    let digits = value.trim_end_matches(|c: char| !c.is_ascii_digit());
    let unit = &value[digits.len()..];
    let scale: u64 = match unit {
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        _ => 0,
    };
    match digits.parse::<u64>().ok().and_then(|n| n.checked_mul(scale)) {
        Some(nanos) if scale != 0 => Ok(nanos),
        _ => Err(syn::Error::new_spanned(
            text,
            format!("invalid duration `{value}`; write a whole number and a unit: `us`, `ms` or `s`, e.g. \"100ms\""),
        )),
    }
}

fn check_regex(pattern: &LitStr, key: &str) -> syn::Result<()> {
    regex_syntax::Parser::new()
        .parse(&pattern.value())
        .map(drop)
        .map_err(|error| syn::Error::new_spanned(pattern, format!("invalid regex for `{key}`:\n{error}")))
}

pub(crate) fn is_path(attr: &Attribute, segments: &[&str]) -> bool {
    let path = attr.path();
    path.segments.len() == segments.len() && path.segments.iter().zip(segments).all(|(seg, want)| seg.ident == want)
}

/// The test attribute below `#[verify_no_leaks]`.
enum TestAttribute<'a> {
    Tokio(&'a Attribute),
    Plain,
}

/// Finds `#[tokio::test]` or `#[test]` among the function's attributes;
/// returns it and the other attributes, kept as they are.
fn split_test_attribute(input: &ItemFn) -> syn::Result<(TestAttribute<'_>, Vec<&Attribute>)> {
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

fn parse_tokio_test(attr: &Attribute, krate: &TokenStream) -> syn::Result<RuntimeConfig> {
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
fn check_signature(input: &ItemFn) -> syn::Result<()> {
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

fn generate(input: &ItemFn, attrs: Vec<&Attribute>, config: &Config, kind: &TestKind) -> TokenStream {
    let ItemFn { vis, sig, block, .. } = input;
    let krate = config.krate();
    let name = sig.ident.to_string();
    let mut plain_sig = sig.clone();
    plain_sig.asyncness = None;
    let output = match &sig.output {
        syn::ReturnType::Default => quote!(()),
        syn::ReturnType::Type(_, ty) => ty.to_token_stream(),
    };
    // Inner attributes (`#![allow(…)]` in the body) stay inner.
    let (inner_attrs, outer_attrs): (Vec<&Attribute>, Vec<&Attribute>) = attrs
        .into_iter()
        .partition(|attr| matches!(attr.style, syn::AttrStyle::Inner(_)));
    let should_panic = outer_attrs.iter().any(|attr| attr.path().is_ident("should_panic"));
    let check_threads = config.threads.is_none_or(|(threads, _)| threads);
    let serial = config.serial.is_some_and(|(serial, _)| serial);
    let shared_runtime = match &config.runtime {
        Some((path, span)) => quote_spanned!(*span=> ::core::option::Option::Some(&*#path)),
        None => quote!(::core::option::Option::None),
    };
    let flavor = match kind {
        TestKind::Tokio(RuntimeConfig {
            flavor: Flavor::MultiThread,
            ..
        }) => quote!(MultiThread),
        TestKind::Tokio(RuntimeConfig {
            flavor: Flavor::Local, ..
        }) => quote!(Local),
        _ => quote!(CurrentThread),
    };
    let option = |value: Option<TokenStream>| match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    };
    let max_retries = option(config.max_retries.map(|n| quote!(#n)));
    let max_sleep = option(
        config
            .max_sleep_nanos
            .map(|n| quote!(::core::time::Duration::from_nanos(#n))),
    );
    let ignore_top_function = &config.ignore_top_function;
    let ignore_any_function = &config.ignore_any_function;
    let ignore_spawned_at = &config.ignore_spawned_at;
    let ignore_thread_name = &config.ignore_thread_name;
    let ignore_dependency = &config.ignore_dependency;
    let spec = quote! {
        #krate::__private::TestSpec {
            module: ::core::module_path!(),
            name: #name,
            flavor: #krate::__private::Flavor::#flavor,
            max_retries: #max_retries,
            max_sleep: #max_sleep,
            ignore_top_function: &[#(#ignore_top_function),*],
            ignore_any_function: &[#(#ignore_any_function),*],
            ignore_spawned_at: &[#(#ignore_spawned_at),*],
            ignore_thread_name: &[#(#ignore_thread_name),*],
            ignore_dependency: &[#(#ignore_dependency),*],
            check_threads: #check_threads,
            serial: #serial,
            shared_runtime: #shared_runtime,
            manifest_dir: ::core::env!("CARGO_MANIFEST_DIR"),
        }
    };
    let is_failure = quote! {
        |output: &#output| {
            #[allow(unused_imports)]
            use #krate::__private::NotAResult as _;
            (&#krate::__private::Outcome(output)).is_failure()
        }
    };
    let expected_panic = if should_panic {
        quote!(::core::option::Option::Some(|| ()))
    } else {
        quote!(::core::option::Option::None)
    };
    let run = match kind {
        TestKind::Tokio(runtime) => {
            let builder_calls = &runtime.builder_calls;
            quote! {
                let body = async #block;
                let body = ::core::pin::pin!(body);
                let body: ::core::pin::Pin<&mut dyn ::core::future::Future<Output = #output>> = body;
                #krate::__private::run_tokio_test(
                    #spec,
                    |builder: &mut #krate::__private::tokio::runtime::Builder| { #(#builder_calls)* },
                    #is_failure,
                    #expected_panic,
                    body,
                )
            }
        }
        TestKind::Plain | TestKind::Cases => quote! {
            #krate::__private::run_sync_test(#spec, #is_failure, #expected_panic, move || -> #output #block)
        },
    };
    // `test-case` registers the cases it generates; they call this function.
    let test_attribute = match kind {
        TestKind::Cases => quote!(),
        _ => quote!(#[::core::prelude::v1::test]),
    };
    quote! {
        #test_attribute
        #(#outer_attrs)*
        #vis #plain_sig {
            #(#inner_attrs)*
            #run
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

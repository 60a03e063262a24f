//! Generation: the checked test as one call into `::taskleak::__private`
//! with the body and a literal of its options; on an error, the user's
//! function kept with the one error beside it.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};
use syn::{Attribute, ItemFn};

use crate::args::Config;
use crate::test_fn::{Flavor, RuntimeConfig, TestKind, is_path};

pub(crate) fn generate(input: &ItemFn, attrs: Vec<&Attribute>, config: &Config, kind: &TestKind) -> TokenStream {
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

pub(crate) fn without_tokio_test(mut input: ItemFn) -> TokenStream {
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

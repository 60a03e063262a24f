//! Procedural macros for [`taskleak`](https://docs.rs/taskleak). Use them
//! through `taskleak`, which re-exports them and provides everything the
//! generated code calls; this crate only parses and generates.

mod args;
mod entry;
mod expand;
mod module;
mod test_fn;

use proc_macro::TokenStream;

/// See `taskleak::verify_no_leaks`.
#[proc_macro_attribute]
pub fn verify_no_leaks(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    match syn::parse2::<syn::ItemMod>(item.clone()) {
        Ok(module) => module::verify_module(args.into(), module).into(),
        Err(_) => entry::verify_no_leaks(args.into(), item).into(),
    }
}

/// See `taskleak::skip`.
#[proc_macro_attribute]
pub fn skip(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = proc_macro2::TokenStream::from(args);
    if let Some(token) = args.into_iter().next() {
        let error = syn::Error::new(token.span(), "`#[taskleak::skip]` takes no arguments");
        let mut item = proc_macro2::TokenStream::from(item);
        item.extend(error.into_compile_error());
        return item.into();
    }
    // Inside a checked module, the module's expansion removes it and leaves
    // the test unchecked; anywhere else there is nothing to skip.
    item
}

//! Procedural macros for [`taskleak`](https://docs.rs/taskleak). Use them
//! through `taskleak`, which re-exports them and provides everything the
//! generated code calls; this crate only parses and generates.

mod entry;

use proc_macro::TokenStream;

/// See `taskleak::verify_no_leaks`.
#[proc_macro_attribute]
pub fn verify_no_leaks(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::verify_no_leaks(args.into(), item.into()).into()
}

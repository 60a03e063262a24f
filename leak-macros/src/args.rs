//! The attribute's own arguments (`max_retries = 40`, ignore rules,
//! `threads`, `runtime`, `crate`, …), parsed and validated into a
//! [`Config`], each error pointing at the offending token.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Lit, LitStr, MetaNameValue, Token};

/// The attribute's own arguments.
#[derive(Clone, Default)]
pub(crate) struct Config {
    /// `crate = "path"`: where taskleak is, when renamed in Cargo.toml.
    pub(crate) krate: Option<syn::Path>,
    pub(crate) threads: Option<(bool, Span)>,
    pub(crate) serial: Option<(bool, Span)>,
    /// `runtime = "PATH"`: a shared runtime (plain tests only).
    pub(crate) runtime: Option<(syn::Path, Span)>,
    pub(crate) max_retries: Option<u32>,
    pub(crate) max_sleep_nanos: Option<u64>,
    pub(crate) ignore_top_function: Vec<LitStr>,
    pub(crate) ignore_any_function: Vec<LitStr>,
    pub(crate) ignore_spawned_at: Vec<LitStr>,
    pub(crate) ignore_thread_name: Vec<LitStr>,
    pub(crate) ignore_dependency: Vec<LitStr>,
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
    pub(crate) fn check_plain_test(&self) -> syn::Result<()> {
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
    pub(crate) fn check_tokio_test(&self) -> syn::Result<()> {
        match &self.runtime {
            Some((_, span)) => Err(syn::Error::new(
                *span,
                "`runtime` is for plain `#[test]` functions that use a shared runtime; a `#[tokio::test]` \
                 builds a runtime of its own",
            )),
            None => Ok(()),
        }
    }

    /// A checked module's options for one of its tests: the module's,
    /// overridden by the test's `own`; ignore rules add up.
    pub(crate) fn merged_with(&self, own: &Config) -> Config {
        let both = |module: &[LitStr], own: &[LitStr]| [module, own].concat();
        Config {
            krate: own.krate.clone().or_else(|| self.krate.clone()),
            threads: own.threads.or(self.threads),
            serial: own.serial.or(self.serial),
            runtime: own.runtime.clone().or_else(|| self.runtime.clone()),
            max_retries: own.max_retries.or(self.max_retries),
            max_sleep_nanos: own.max_sleep_nanos.or(self.max_sleep_nanos),
            ignore_top_function: both(&self.ignore_top_function, &own.ignore_top_function),
            ignore_any_function: both(&self.ignore_any_function, &own.ignore_any_function),
            ignore_spawned_at: both(&self.ignore_spawned_at, &own.ignore_spawned_at),
            ignore_thread_name: both(&self.ignore_thread_name, &own.ignore_thread_name),
            ignore_dependency: both(&self.ignore_dependency, &own.ignore_dependency),
        }
    }

    /// The arguments that parse back into this config, each written at the
    /// span of the token it came from where it kept one.
    pub(crate) fn to_args(&self) -> TokenStream {
        let mut args: Vec<TokenStream> = Vec::new();
        if let Some(retries) = self.max_retries {
            let retries = proc_macro2::Literal::u32_unsuffixed(retries);
            args.push(quote!(max_retries = #retries));
        }
        if let Some(nanos) = self.max_sleep_nanos {
            // Durations are whole microseconds at least (`us`, `ms`, `s`).
            let sleep = format!("{}us", nanos / 1_000);
            args.push(quote!(max_sleep = #sleep));
        }
        for (name, rules) in [
            ("ignore_top_function", &self.ignore_top_function),
            ("ignore_any_function", &self.ignore_any_function),
            ("ignore_spawned_at", &self.ignore_spawned_at),
            ("ignore_thread_name", &self.ignore_thread_name),
            ("ignore_dependency", &self.ignore_dependency),
        ] {
            let name = syn::Ident::new(name, Span::call_site());
            args.extend(rules.iter().map(|rule| quote!(#name = #rule)));
        }
        for (name, flag) in [("threads", self.threads), ("serial", self.serial)] {
            if let Some((value, span)) = flag {
                let name = syn::Ident::new(name, span);
                let value = syn::LitBool::new(value, span);
                args.push(quote!(#name = #value));
            }
        }
        let path_text = |path: &syn::Path| path.to_token_stream().to_string().replace(' ', "");
        if let Some((path, span)) = &self.runtime {
            let path = LitStr::new(&path_text(path), *span);
            args.push(quote!(runtime = #path));
        }
        if let Some(path) = &self.krate {
            let path = LitStr::new(&path_text(path), path.span());
            args.push(quote!(crate = #path));
        }
        quote!(#(#args),*)
    }

    /// The path generated code reaches taskleak by.
    pub(crate) fn krate(&self) -> TokenStream {
        match &self.krate {
            Some(path) => quote!(#path),
            None => quote!(::taskleak),
        }
    }
}

pub(crate) fn unknown_option(path: &syn::Path) -> syn::Error {
    let name = path.to_token_stream().to_string().replace(' ', "");
    let options = taskleak_options::listed(|_| true);
    syn::Error::new_spanned(path, format!("unknown option `{name}`; expected one of: {options}"))
}

pub(crate) fn set_once<T>(slot: &mut Option<T>, value: T, path: &syn::Path) -> syn::Result<()> {
    if slot.replace(value).is_some() {
        let name = path.to_token_stream().to_string();
        return Err(syn::Error::new_spanned(
            path,
            format!("`{name}` is given twice; keep one"),
        ));
    }
    Ok(())
}

pub(crate) fn literal(value: &Expr) -> Option<&Lit> {
    match value {
        Expr::Lit(expr) => Some(&expr.lit),
        _ => None,
    }
}

pub(crate) fn parse_int(value: &Expr, key: &str) -> syn::Result<u32> {
    match literal(value) {
        Some(Lit::Int(int)) => int.base10_parse::<u32>(),
        _ => Err(syn::Error::new_spanned(
            value,
            format!("`{key}` takes a whole number, e.g. `{key} = 20`"),
        )),
    }
}

pub(crate) fn string_literal(value: &Expr, key: &str, example: &str) -> syn::Result<LitStr> {
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
pub(crate) fn path_literal(value: &Expr, key: &str, example: &str, expected: &str) -> syn::Result<(syn::Path, Span)> {
    let text = string_literal(value, key, example)?;
    let path = text
        .parse::<syn::Path>()
        .map_err(|_| syn::Error::new_spanned(&text, format!("`{key}` takes {expected}")))?;
    Ok((path, text.span()))
}

/// `"250us"`, `"100ms"`, `"2s"` into nanoseconds.
pub(crate) fn parse_duration(text: &LitStr) -> syn::Result<u64> {
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

pub(crate) fn check_regex(pattern: &LitStr, key: &str) -> syn::Result<()> {
    regex_syntax::Parser::new()
        .parse(&pattern.value())
        .map(drop)
        .map_err(|error| syn::Error::new_spanned(pattern, format!("invalid regex for `{key}`:\n{error}")))
}

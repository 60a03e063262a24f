//! What each attribute on a function is, to taskleak: a test attribute, a
//! test-case or rstest line, taskleak's own, or something it cannot wrap.

use proc_macro2::{TokenStream, TokenTree};
use syn::punctuated::Punctuated;
use syn::{Attribute, Meta, MetaNameValue, Token};

/// The `#[tokio::test(…)]` arguments taskleak's attribute understands
/// (leak-macros/src/entry.rs, `parse_tokio_test`).
const TOKIO_TEST_ARGS: &[&str] = &[
    "flavor",
    "worker_threads",
    "start_paused",
    "unhandled_panic",
    "name",
    "crate",
];

/// One attribute of a function, as far as marking it is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Role {
    /// `#[test]`.
    Test,
    /// `#[tokio::test]` or `#[::tokio::test(…)]`.
    TokioTest,
    /// `#[test_case(…)]`, `#[test_case::case(…)]`, `#[test_matrix(…)]`.
    TestCase,
    /// `#[rstest]`.
    Rstest,
    /// `#[taskleak::verify_no_leaks]`, also behind `cfg_attr`.
    Verify,
    /// `#[taskleak::skip]`, also behind `cfg_attr`.
    Skip,
    /// Another framework's test attribute, e.g. `#[test_log::test]`.
    OtherFramework(String),
    /// `#[cfg_attr(…, test)]`: a test attribute taskleak's cannot see.
    HiddenTest,
    /// Anything else: `#[should_panic]`, `#[ignore]`, doc comments, `#[serial]`…
    Other,
}

pub(crate) fn role(attr: &Attribute) -> Role {
    let path = attr.path();
    let names: Vec<String> = path.segments.iter().map(|segment| segment.ident.to_string()).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    match names.as_slice() {
        ["test"] if matches!(attr.meta, Meta::Path(_)) => Role::Test,
        ["tokio", "test"] => Role::TokioTest,
        ["test_case" | "test_matrix"] | [.., "test_case" | "test_matrix"] | ["test_case", "case"] => Role::TestCase,
        [.., "rstest"] => Role::Rstest,
        [.., "verify_no_leaks"] => Role::Verify,
        ["taskleak", "skip"] => Role::Skip,
        ["cfg_attr"] => cfg_attr_role(attr),
        [_, .., "test"] => Role::OtherFramework(names.join("::")),
        _ => Role::Other,
    }
}

/// `#[cfg_attr(condition, a, b…)]`: the role of what it would add.
fn cfg_attr_role(attr: &Attribute) -> Role {
    let Ok(list) = attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) else {
        return Role::Other;
    };
    let mut role = Role::Other;
    for meta in list.iter().skip(1) {
        let last = meta.path().segments.last().map(|segment| segment.ident.to_string());
        match last.as_deref() {
            Some("verify_no_leaks") => return Role::Verify,
            Some("skip") if meta.path().segments.len() == 2 => role = Role::Skip,
            Some("test") => role = Role::HiddenTest,
            Some("cfg_attr") => {}
            _ => {}
        }
    }
    role
}

/// Why taskleak's attribute cannot go on this `#[tokio::test(…)]`, if it
/// cannot.
pub(crate) fn unsupported_tokio_args(attr: &Attribute) -> Option<String> {
    let pairs = match &attr.meta {
        Meta::Path(_) => return None,
        Meta::List(_) => match attr.parse_args_with(Punctuated::<MetaNameValue, Token![,]>::parse_terminated) {
            Ok(pairs) => pairs,
            Err(_) => return Some("its `#[tokio::test(…)]` arguments are not `key = value` pairs".to_owned()),
        },
        Meta::NameValue(_) => return Some("`#[tokio::test = …]` is not a form taskleak reads".to_owned()),
    };
    for pair in pairs {
        let key = pair.path.get_ident().map(ToString::to_string).unwrap_or_default();
        if !TOKIO_TEST_ARGS.contains(&key.as_str()) {
            return Some(format!(
                "taskleak does not support the `#[tokio::test]` argument `{key}` (it supports: {})",
                TOKIO_TEST_ARGS.join(", ")
            ));
        }
    }
    None
}

/// Whether a `#[test_case(… => panics …)]` expects a panic.
pub(crate) fn case_expects_panic(attr: &Attribute) -> bool {
    let Ok(list) = attr.meta.require_list() else {
        return false;
    };
    let tokens: Vec<TokenTree> = list.tokens.clone().into_iter().collect();
    tokens.windows(3).any(|window| match window {
        [TokenTree::Punct(eq), TokenTree::Punct(gt), TokenTree::Ident(ident)] => {
            eq.as_char() == '=' && gt.as_char() == '>' && ident == "panics"
        }
        _ => false,
    })
}

/// How many `#[test]` and `#[tokio::test]` attributes `tokens` holds, at
/// any depth: the tests a macro defines or wraps, which no attribute can
/// see from outside it.
pub(crate) fn count_test_attributes(tokens: &TokenStream) -> usize {
    let trees: Vec<TokenTree> = tokens.clone().into_iter().collect();
    let mut count = 0;
    for (at, tree) in trees.iter().enumerate() {
        if let TokenTree::Group(group) = tree {
            let after_pound = at > 0 && matches!(&trees[at - 1], TokenTree::Punct(punct) if punct.as_char() == '#');
            if after_pound && group.delimiter() == proc_macro2::Delimiter::Bracket && is_test_path(&group.stream()) {
                count += 1;
            } else {
                count += count_test_attributes(&group.stream());
            }
        }
    }
    count
}

/// `test`, `tokio::test…` or `::tokio::test…` at the start of an
/// attribute's tokens.
fn is_test_path(tokens: &TokenStream) -> bool {
    let words: Vec<String> = tokens
        .clone()
        .into_iter()
        .take(6)
        .map(|token| match token {
            TokenTree::Group(_) => "()".to_owned(),
            other => other.to_string(),
        })
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    matches!(
        words.as_slice(),
        ["test"] | ["tokio", ":", ":", "test", ..] | [":", ":", "tokio", ":", ":", "test"]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(text: &str) -> Attribute {
        let item: syn::ItemFn = syn::parse_str(&format!("{text}\nfn f() {{}}")).expect("an attribute");
        item.attrs.into_iter().next().expect("one attribute")
    }

    #[test]
    fn roles() {
        assert_eq!(role(&attr("#[test]")), Role::Test);
        assert_eq!(role(&attr("#[tokio::test]")), Role::TokioTest);
        assert_eq!(
            role(&attr("#[::tokio::test(flavor = \"multi_thread\")]")),
            Role::TokioTest
        );
        assert_eq!(role(&attr("#[test_case(1 ; \"one\")]")), Role::TestCase);
        assert_eq!(role(&attr("#[test_case::case(1)]")), Role::TestCase);
        assert_eq!(role(&attr("#[rstest::rstest]")), Role::Rstest);
        assert_eq!(
            role(&attr("#[taskleak::verify_no_leaks(max_retries = 3)]")),
            Role::Verify
        );
        assert_eq!(
            role(&attr("#[cfg_attr(test, taskleak::verify_no_leaks)]")),
            Role::Verify
        );
        assert_eq!(role(&attr("#[taskleak::skip]")), Role::Skip);
        assert_eq!(
            role(&attr("#[test_log::test(tokio::test)]")),
            Role::OtherFramework("test_log::test".to_owned())
        );
        assert_eq!(role(&attr("#[cfg_attr(not(miri), tokio::test)]")), Role::HiddenTest);
        assert_eq!(role(&attr("#[cfg_attr(test, derive(Debug))]")), Role::Other);
        assert_eq!(role(&attr("#[cfg_attr(miri, ignore)]")), Role::Other);
        assert_eq!(role(&attr("/// docs")), Role::Other);
    }

    #[test]
    fn tokio_arguments_taskleak_refuses() {
        assert_eq!(unsupported_tokio_args(&attr("#[tokio::test]")), None);
        let supported = attr("#[tokio::test(flavor = \"multi_thread\", worker_threads = 2)]");
        assert_eq!(unsupported_tokio_args(&supported), None);
        assert_eq!(
            unsupported_tokio_args(&attr("#[tokio::test(flavor = \"local\")]")),
            None
        );
        let unknown = unsupported_tokio_args(&attr("#[tokio::test(rng_seed = 1)]")).expect("refused");
        assert!(unknown.contains("`rng_seed`"), "{unknown}");
    }

    #[test]
    fn cases_expecting_a_panic() {
        assert!(case_expects_panic(&attr("#[test_case(0 => panics \"zero\")]")));
        assert!(case_expects_panic(&attr("#[test_case(0 => panics)]")));
        assert!(!case_expects_panic(&attr("#[test_case(0 => 1)]")));
        assert!(!case_expects_panic(&attr("#[test_case(panics)]")));
    }

    #[test]
    fn tests_inside_macros_are_counted() {
        let tokens: TokenStream = "($name:ident) => { #[test] fn $name() {} #[tokio::test(flavor = \"multi_thread\")] \
                                   async fn b() {} #[::tokio::test] async fn c() {} #[test_case(1)] fn d() {} }"
            .parse()
            .expect("tokens");
        assert_eq!(count_test_attributes(&tokens), 3);
    }
}

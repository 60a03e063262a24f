//! Where `adopt` puts the attribute, on source text: each case is the file
//! before and after.

use std::path::Path;

use super::insert::insert_lines;
use super::scan::{Area, FileScan, scan};

/// `source` as `adopt` leaves it, and what it found.
fn adopt(source: &str, area: Area) -> (String, FileScan) {
    let found = scan(source, Path::new("/c/tests/t.rs"), true, false, area).expect("parses");
    let insertions: Vec<(usize, &str)> = found
        .marked
        .iter()
        .map(|marked| (marked.before_line, marked.text.as_str()))
        .collect();
    (insert_lines(source, &insertions), found)
}

/// Checks the result, and that a second run changes nothing.
fn assert_adopts(before: &str, after: &str, area: Area) -> FileScan {
    let (text, found) = adopt(before, area);
    assert_eq!(text, after, "\n--- got:\n{text}");
    let (again, second) = adopt(&text, area);
    assert_eq!(again, text, "a second run changed the file");
    assert!(second.marked.is_empty(), "{:?}", second.marked);
    assert_eq!(second.already_checked, found.already_checked + found.marked.len());
    found
}

#[test]
fn plain_and_tokio_tests_in_nested_modules() {
    let found = assert_adopts(
        r#"use std::thread;

#[test]
fn top() {}

mod a {
    mod b {
        #[tokio::test]
        async fn deep() {}

        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn multi() {}
    }

    fn helper() {}
}
"#,
        r#"use std::thread;

#[taskleak::verify_no_leaks]
#[test]
fn top() {}

mod a {
    mod b {
        #[taskleak::verify_no_leaks]
        #[tokio::test]
        async fn deep() {}

        #[taskleak::verify_no_leaks]
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn multi() {}
    }

    fn helper() {}
}
"#,
        Area::Tests,
    );
    let names: Vec<&str> = found.marked.iter().map(|marked| marked.name.as_str()).collect();
    assert_eq!(names, ["top", "a::b::deep", "a::b::multi"]);
    let kinds: Vec<&str> = found.marked.iter().map(|marked| marked.kind).collect();
    assert_eq!(kinds, ["test", "tokio::test", "tokio::test"]);
}

#[test]
fn in_src_the_attribute_is_behind_cfg_test() {
    assert_adopts(
        "pub fn f() {}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn unit() {}\n}\n",
        "pub fn f() {}\n\n#[cfg(test)]\nmod tests {\n    #[cfg_attr(test, taskleak::verify_no_leaks)]\n    \
         #[test]\n    fn unit() {}\n}\n",
        Area::Src,
    );
}

#[test]
fn attributes_in_any_order_doc_comments_and_should_panic() {
    assert_adopts(
        r#"/// Docs stay above.
#[should_panic(expected = "boom")]
#[test]
fn panics() { panic!("boom") }

#[tokio::test]
/// Docs below the test attribute.
#[ignore]
async fn ignored() {}

#[cfg_attr(miri, ignore)]
#[serial_test::serial]
#[tokio::test(start_paused = true)]
async fn paused() {}
"#,
        r#"/// Docs stay above.
#[should_panic(expected = "boom")]
#[taskleak::verify_no_leaks]
#[test]
fn panics() { panic!("boom") }

#[taskleak::verify_no_leaks]
#[tokio::test]
/// Docs below the test attribute.
#[ignore]
async fn ignored() {}

#[cfg_attr(miri, ignore)]
#[serial_test::serial]
#[taskleak::verify_no_leaks]
#[tokio::test(start_paused = true)]
async fn paused() {}
"#,
        Area::Tests,
    );
}

#[test]
fn test_case_goes_above_the_cases_and_rstest_below() {
    let found = assert_adopts(
        r#"#[test_case(1 ; "one")]
#[test_case(2 ; "two")]
fn plain_cases(n: u32) {}

/// Async cases.
#[test_case::test_case(1)]
#[tokio::test]
async fn async_cases(n: u32) {}

#[rstest]
#[case(1)]
#[tokio::test]
async fn rstest_async(#[case] n: u32) {}

#[rstest]
#[case(1)]
fn rstest_plain(#[case] n: u32) {}
"#,
        r#"#[taskleak::verify_no_leaks]
#[test_case(1 ; "one")]
#[test_case(2 ; "two")]
fn plain_cases(n: u32) {}

/// Async cases.
#[taskleak::verify_no_leaks]
#[test_case::test_case(1)]
#[tokio::test]
async fn async_cases(n: u32) {}

#[rstest]
#[case(1)]
#[taskleak::verify_no_leaks]
#[tokio::test]
async fn rstest_async(#[case] n: u32) {}

#[rstest]
#[case(1)]
#[taskleak::verify_no_leaks]
fn rstest_plain(#[case] n: u32) {}
"#,
        Area::Tests,
    );
    let kinds: Vec<&str> = found.marked.iter().map(|marked| marked.kind).collect();
    assert_eq!(kinds, ["test_case", "test_case", "rstest", "rstest"]);
}

#[test]
fn marked_skipped_and_checked_modules_are_left_alone() {
    let source = r#"#[taskleak::verify_no_leaks(max_retries = 40)]
#[tokio::test]
async fn marked() {}

#[cfg_attr(test, taskleak::verify_no_leaks)]
#[test]
fn marked_in_src_style() {}

#[taskleak::skip]
#[test]
fn opted_out() {}

#[taskleak::verify_no_leaks]
mod checked {
    #[tokio::test]
    async fn by_its_module() {}
}

#[taskleak::skip]
mod skipped {
    #[test]
    fn whole_module() {}
}
"#;
    let (text, found) = adopt(source, Area::Tests);
    assert_eq!(text, source);
    assert_eq!(found.already_checked, 3);
    assert_eq!(found.opted_out, 2);
}

#[test]
fn what_cannot_be_marked_is_listed_with_a_reason() {
    let source = r#"macro_rules! tests {
    ($name:ident) => {
        #[test]
        fn $name() {}
        #[tokio::test]
        async fn other() {}
    };
}

#[test_log::test(tokio::test)]
async fn other_framework() {}

#[cfg_attr(not(miri), tokio::test)]
async fn hidden() {}

#[tokio::test(flavor = "local")]
async fn local() {}

#[test]
fn generic_over_a_lifetime<'a>() {}

#[test]
fn generic_over_a_type<T>() {}

#[test_case(0 => panics "zero")]
fn panicking_cases(n: u32) {}

cfg_if::cfg_if! {
    if #[cfg(unix)] {
        #[test]
        fn in_cfg_if() {}
    }
}

#[test] fn same_line() {}

#[test] #[should_panic] fn attributes_on_one_line() {}

fn f() {} #[test] fn after_code() {}

#[rstest] #[tokio::test]
async fn rstest_sharing_a_line() {}
"#;
    let (text, found) = adopt(source, Area::Tests);
    let reasons: Vec<(&str, usize, &str)> = found
        .skipped
        .iter()
        .map(|skip| (skip.name.as_str(), skip.count, skip.reason.as_str()))
        .collect();
    let expect = [
        ("macro_rules! tests", 2, "macro_rules!"),
        ("other_framework", 1, "`#[test_log::test]` is another framework's"),
        ("hidden", 1, "behind `cfg_attr(…)`"),
        ("generic_over_a_type", 1, "type or const parameters"),
        ("panicking_cases", 1, "expect a panic"),
        ("cfg_if::cfg_if!", 1, "macro invocation"),
        ("after_code", 1, "other code before"),
        ("rstest_sharing_a_line", 1, "share lines"),
    ];
    assert_eq!(reasons.len(), expect.len(), "{reasons:#?}");
    for ((name, count, reason), (want_name, want_count, want_reason)) in reasons.iter().zip(expect) {
        assert_eq!((*name, *count), (want_name, want_count));
        assert!(reason.contains(want_reason), "{name}: {reason}");
    }
    // What libtest accepts, taskleak checks.
    assert!(
        text.contains("#[taskleak::verify_no_leaks]\n#[tokio::test(flavor = \"local\")]\nasync fn local()"),
        "{text}"
    );
    assert!(
        text.contains("#[taskleak::verify_no_leaks]\n#[test]\nfn generic_over_a_lifetime<'a>()"),
        "{text}"
    );
    // A test on one line with its attribute gets a line above it.
    assert!(
        text.contains("#[taskleak::verify_no_leaks]\n#[test] fn same_line() {}"),
        "{text}"
    );
    assert!(
        text.contains("#[taskleak::verify_no_leaks]\n#[test] #[should_panic] fn attributes_on_one_line() {}"),
        "{text}"
    );
}

#[test]
fn an_attribute_spanning_lines_is_kept_whole() {
    assert_adopts(
        "#[cfg_attr(\n    miri,\n    ignore\n)] #[tokio::test]\nasync fn t() {}\n",
        "#[taskleak::verify_no_leaks]\n#[cfg_attr(\n    miri,\n    ignore\n)] #[tokio::test]\nasync fn t() {}\n",
        Area::Tests,
    );
}

#[test]
fn a_macro_whose_body_is_items_passes_them_through() {
    let source = "cfg_rt! {\n    mod task;\n\n    #[tokio::test]\n    async fn t() {}\n}\n";
    let (text, found) = adopt(source, Area::Tests);
    assert_eq!(
        text,
        "cfg_rt! {\n    mod task;\n\n    #[taskleak::verify_no_leaks]\n    #[tokio::test]\n    async fn t() {}\n}\n"
    );
    assert_eq!(found.modules.len(), 1);
}

#[test]
fn module_files_are_found_where_rustc_looks() {
    let source = "mod common;\n#[path = \"shared/x.rs\"]\nmod x;\nmod inline {\n    mod inner;\n}\n";
    let found = scan(source, Path::new("/c/tests/net/main.rs"), true, false, Area::Tests).expect("parses");
    let candidates: Vec<Vec<String>> = found
        .modules
        .iter()
        .map(|module| {
            module
                .candidates
                .iter()
                .map(|path| path.display().to_string())
                .collect()
        })
        .collect();
    assert_eq!(
        candidates,
        [
            vec!["/c/tests/net/common.rs", "/c/tests/net/common/mod.rs"],
            vec!["/c/tests/net/shared/x.rs"],
            vec!["/c/tests/net/inline/inner.rs", "/c/tests/net/inline/inner/mod.rs"],
        ]
    );
    // A non-mod.rs file's modules are in a folder named after it.
    let found = scan("mod child;\n", Path::new("/c/src/io.rs"), false, false, Area::Src).expect("parses");
    assert_eq!(found.modules[0].candidates[0], Path::new("/c/src/io/child.rs"));
}

#[test]
fn crlf_files_keep_their_line_endings() {
    assert_adopts(
        "#[test]\r\nfn t() {}\r\n",
        "#[taskleak::verify_no_leaks]\r\n#[test]\r\nfn t() {}\r\n",
        Area::Tests,
    );
}

//! Every compile error of `#[verify_no_leaks]`, with its exact message
//! (`tests/ui/*.stderr`), points at the offending token.

#[test]
fn compile_errors() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}

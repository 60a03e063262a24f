//! The options are defined once (`taskleak-options`); the docs' table lists
//! each, and `taskleak.toml` takes exactly those the table marks for it
//! (tested beside its reader, `src/config/file.rs`; the attribute's parser
//! is tested against the table in `leak-macros`).

#[test]
fn the_docs_table_has_a_row_for_every_option() {
    let docs = include_str!("../docs/options.md");
    for option in taskleak_options::OPTIONS {
        assert!(
            docs.contains(&format!("| `{} = ", option.name)),
            "docs/options.md has no table row for `{}`",
            option.name
        );
    }
    // And no row for an option that is not one.
    // Rows whose first cell is `` `name = value` ``.
    let rows = docs.lines().filter_map(|line| {
        let (name, after) = line.strip_prefix("| `")?.split_once(' ')?;
        after.starts_with("= ").then_some(name)
    });
    for name in rows {
        assert!(
            taskleak_options::find(name).is_some(),
            "docs/options.md lists `{name}`, which is no option"
        );
    }
}

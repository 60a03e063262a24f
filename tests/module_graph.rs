//! The crate's module graph has no cycle: data flows down the folders
//! (`model` at the bottom, `harness` near the top), so each file can be read
//! knowing only what is below it. Read from the source's tokens (comments
//! and doc text are not paths), every `crate::…` path a file names is an
//! arrow to the file that defines that module. Items under `#[cfg(test)]`
//! are left out, as `cargo modules dependencies` leaves them out by default:
//! a unit test may borrow a helper from beside it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use proc_macro2::{Delimiter, TokenStream, TokenTree};

/// Every `.rs` file under `src/`, keyed by its module path (`model::stack`).
fn modules() -> BTreeMap<Vec<String>, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("src/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files
        .into_iter()
        .map(|file| {
            let relative = file.strip_prefix(&src).expect("under src/").with_extension("");
            let mut path: Vec<String> = relative
                .iter()
                .map(|part| part.to_string_lossy().into_owned())
                .collect();
            if matches!(path.last().map(String::as_str), Some("mod" | "lib")) {
                path.pop();
            }
            (path, file)
        })
        .collect()
}

/// The module paths a token stream names after `crate::`, with use-tree
/// braces expanded (`crate::{a::b, c}` names `a::b` and `c`).
fn crate_paths(tokens: TokenStream, out: &mut Vec<Vec<String>>) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < tokens.len() {
        if is_cfg_test(&tokens[i..]) {
            // The attributed item ends at its body or its semicolon.
            i += 2;
            while i < tokens.len() {
                let end = match &tokens[i] {
                    TokenTree::Group(group) => group.delimiter() == Delimiter::Brace,
                    TokenTree::Punct(punct) => punct.as_char() == ';',
                    _ => false,
                };
                i += 1;
                if end {
                    break;
                }
            }
            continue;
        }
        if let TokenTree::Group(group) = &tokens[i] {
            crate_paths(group.stream(), out);
        }
        let is_colon = |t: Option<&TokenTree>| matches!(t, Some(TokenTree::Punct(p)) if p.as_char() == ':');
        // `pub(crate)` is no path; `crate::` is.
        if matches!(&tokens[i], TokenTree::Ident(ident) if ident == "crate") && is_colon(tokens.get(i + 1)) {
            let mut prefix = Vec::new();
            i = path_after(&tokens, i + 1, &mut prefix, out);
            continue;
        }
        i += 1;
    }
}

/// The names of the `mod name;` lines at the top level of a file.
fn declared_modules(tokens: TokenStream) -> Vec<String> {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    tokens
        .windows(3)
        .filter_map(|w| match w {
            [
                TokenTree::Ident(keyword),
                TokenTree::Ident(name),
                TokenTree::Punct(semi),
            ] if keyword == "mod" && semi.as_char() == ';' => Some(name.to_string()),
            _ => None,
        })
        .collect()
}

/// Whether the tokens open with `#[cfg(test)]`.
fn is_cfg_test(tokens: &[TokenTree]) -> bool {
    match tokens {
        [TokenTree::Punct(hash), TokenTree::Group(attribute), ..] => {
            hash.as_char() == '#'
                && attribute.delimiter() == Delimiter::Bracket
                && attribute.stream().to_string().replace(' ', "") == "cfg(test)"
        }
        _ => false,
    }
}

/// Reads `::a::b…` from `tokens[i..]` onto `prefix`, pushing each complete
/// path; returns the index after it.
fn path_after(tokens: &[TokenTree], mut i: usize, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    loop {
        let is_colon = |t: Option<&TokenTree>| matches!(t, Some(TokenTree::Punct(p)) if p.as_char() == ':');
        if !(is_colon(tokens.get(i)) && is_colon(tokens.get(i + 1))) {
            out.push(prefix.clone());
            return i;
        }
        match tokens.get(i + 2) {
            Some(TokenTree::Ident(ident)) => {
                prefix.push(ident.to_string());
                i += 3;
            }
            Some(TokenTree::Group(group)) if group.delimiter() == Delimiter::Brace => {
                // A use tree: each comma-separated branch continues the prefix.
                let inner: Vec<TokenTree> = group.stream().into_iter().collect();
                for branch in inner.split(|t| matches!(t, TokenTree::Punct(p) if p.as_char() == ',')) {
                    let mut joined: Vec<TokenTree> = Vec::new();
                    for t in branch {
                        // `a::b` inside the braces reads like `::a::b`.
                        if joined.is_empty() {
                            joined.push(TokenTree::Punct(proc_macro2::Punct::new(
                                ':',
                                proc_macro2::Spacing::Joint,
                            )));
                            joined.push(TokenTree::Punct(proc_macro2::Punct::new(
                                ':',
                                proc_macro2::Spacing::Alone,
                            )));
                        }
                        joined.push(t.clone());
                    }
                    if !joined.is_empty() {
                        path_after(&joined, 0, &mut prefix.clone(), out);
                    }
                }
                return i + 3;
            }
            _ => {
                out.push(prefix.clone());
                return i + 2;
            }
        }
    }
}

/// file → the other files it names a path into.
fn arrows() -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let modules = modules();
    let mut arrows = BTreeMap::new();
    for file in modules.values() {
        let text = std::fs::read_to_string(file).expect("a source file is readable");
        let tokens = TokenStream::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut paths = Vec::new();
        crate_paths(tokens.clone(), &mut paths);
        // A facade's `mod child;` (and its `pub use child::…`) is an arrow
        // to the child: the module path of this file plus the child's name.
        let own = modules
            .iter()
            .find(|(_, f)| *f == file)
            .map(|(path, _)| path.clone())
            .unwrap_or_default();
        for child in declared_modules(tokens) {
            let mut path = own.clone();
            path.push(child);
            paths.push(path);
        }
        let targets: BTreeSet<PathBuf> = paths
            .iter()
            .filter_map(|path| {
                // The longest prefix that is a module is the file named.
                (0..=path.len()).rev().find_map(|n| modules.get(&path[..n]))
            })
            .filter(|target| *target != file)
            .cloned()
            .collect();
        arrows.insert(file.clone(), targets);
    }
    arrows
}

/// One cycle of the graph, if it has any (depth-first, three colours).
fn find_cycle<N: Ord + Clone>(graph: &BTreeMap<N, BTreeSet<N>>) -> Option<Vec<N>> {
    fn visit<N: Ord + Clone>(
        node: &N,
        graph: &BTreeMap<N, BTreeSet<N>>,
        done: &mut BTreeSet<N>,
        path: &mut Vec<N>,
    ) -> Option<Vec<N>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            return Some(path[at..].to_vec());
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

/// The top-level concept a file belongs to: its folder, or itself.
fn concept(file: &Path) -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let relative = file.strip_prefix(&src).expect("under src/");
    relative
        .iter()
        .next()
        .map(|part| part.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn no_file_imports_itself_through_others() {
    let arrows = arrows();
    assert!(arrows.len() > 30, "found only {} files under src/", arrows.len());
    assert!(
        arrows.values().map(BTreeSet::len).sum::<usize>() > 50,
        "found almost no arrows: {arrows:#?}"
    );
    if let Some(cycle) = find_cycle(&arrows) {
        let names: Vec<String> = cycle.iter().map(|f| f.display().to_string()).collect();
        panic!("import cycle between files: {}", names.join(" -> "));
    }
}

#[test]
fn the_folders_form_layers() {
    // lib.rs re-exports every folder's surface and is above them all.
    let mut layers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, targets) in arrows() {
        let from = concept(&file);
        if from == "lib.rs" {
            continue;
        }
        let entry = layers.entry(from.clone()).or_default();
        entry.extend(targets.iter().map(|t| concept(t)).filter(|to| *to != from));
    }
    assert!(
        layers.get("model").is_none_or(BTreeSet::is_empty),
        "model/ is the leaf layer, yet imports {:?}",
        layers.get("model")
    );
    if let Some(cycle) = find_cycle(&layers) {
        panic!("the folders import each other in a loop: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle_and_reads_use_trees() {
    let graph: BTreeMap<u8, BTreeSet<u8>> = [(1, [2].into()), (2, [3].into()), (3, [1].into()), (4, [1].into())]
        .into_iter()
        .collect();
    assert_eq!(find_cycle(&graph), Some(vec![1, 2, 3]));
    let tree: BTreeMap<u8, BTreeSet<u8>> = [(1, [2, 3].into()), (2, [3].into()), (3, BTreeSet::new())]
        .into_iter()
        .collect();
    assert_eq!(find_cycle(&tree), None);

    let mut paths = Vec::new();
    let source = "use crate::{a::b::{C, d}, e}; pub(crate) fn f() { crate::g::h(); } // crate::not::this
        #[cfg(test)] mod tests { use crate::i::J; }";
    crate_paths(TokenStream::from_str(source).expect("valid tokens"), &mut paths);
    let paths: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(paths, ["a::b::C", "a::b::d", "e", "g::h"]);
}

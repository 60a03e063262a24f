//! The crate's source files that its test targets compile: from the roots
//! of its library, binaries and integration tests, following `mod x;`
//! declarations, so that fixtures under `tests/` that no target compiles
//! (trybuild cases, say) are left alone.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use super::scan::{self, Area, FileScan};

/// A file to mark.
#[derive(Debug)]
pub(crate) struct SourceFile {
    pub(crate) path: PathBuf,
    pub(crate) source: String,
    pub(crate) scan: FileScan,
}

/// Every file the targets reach, and those left alone.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    pub(crate) files: Vec<SourceFile>,
    /// Files `syn` cannot parse, and why.
    pub(crate) unparsed: Vec<(PathBuf, String)>,
    /// Files under `src/` or `tests/` with tests, that no target compiles.
    pub(crate) unreached: Vec<PathBuf>,
    /// Module files outside `src/` and `tests/`: not edited.
    pub(crate) outside: Vec<PathBuf>,
}

/// Walks the module trees of `roots`, in the crate at `dir`.
pub(crate) fn walk(dir: &Path, roots: Vec<PathBuf>) -> Walk {
    let mut walk = Walk::default();
    let mut seen = BTreeSet::new();
    let mut queue: VecDeque<(PathBuf, bool, bool)> = roots.into_iter().map(|root| (root, true, false)).collect();
    while let Some((path, mod_rs, opted_out)) = queue.pop_front() {
        if !path.is_file() || !seen.insert(normalize(&path)) {
            continue;
        }
        let area = match path
            .strip_prefix(dir)
            .ok()
            .and_then(|relative| relative.components().next())
        {
            Some(first) if first.as_os_str() == "src" => Area::Src,
            Some(first) if first.as_os_str() == "tests" => Area::Tests,
            _ => {
                walk.outside.push(path);
                continue;
            }
        };
        let source = match std::fs::read_to_string(&path) {
            Ok(source) => source,
            Err(error) => {
                walk.unparsed.push((path, format!("cannot read it: {error}")));
                continue;
            }
        };
        match scan::scan(&source, &path, mod_rs, opted_out, area) {
            Ok(scan) => {
                for module in &scan.modules {
                    if let Some(file) = module.candidates.iter().find(|candidate| candidate.is_file()) {
                        queue.push_back((
                            file.clone(),
                            module.mod_rs || file.ends_with("mod.rs"),
                            module.opted_out,
                        ));
                    }
                }
                walk.files.push(SourceFile { path, source, scan });
            }
            Err(error) => walk.unparsed.push((path, error)),
        }
    }
    for folder in ["src", "tests"] {
        for path in rust_files(&dir.join(folder)) {
            if seen.contains(&normalize(&path)) {
                continue;
            }
            let has_tests = std::fs::read_to_string(&path)
                .is_ok_and(|source| source.contains("#[test]") || source.contains("tokio::test"));
            if has_tests {
                walk.unreached.push(path);
            }
        }
    }
    walk
}

/// `a/./b/../c` as `a/c`, without touching the file system, so that one
/// file reached by two routes is one file.
fn normalize(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    normal
}

/// Every `.rs` file under `folder`, sorted.
fn rust_files(folder: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

//! The crate's `Cargo.toml`, edited with `toml_edit` so that its layout and
//! comments stay as they are: the targets whose files hold tests, and
//! taskleak as a dev-dependency.

use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, InlineTable, Item, Table, Value};

pub(crate) struct Manifest {
    pub(crate) path: PathBuf,
    doc: DocumentMut,
}

/// How taskleak is added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// `{ path = "…" }`: a checkout of taskleak.
    Path(PathBuf),
    /// `"0.1"`.
    Version(String),
}

/// What adding the dev-dependency did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Added {
    /// The line it added, e.g. `taskleak = { path = "…" }`.
    Added(String),
    /// It was there already: left as it is.
    AlreadyThere,
}

impl Manifest {
    /// Reads `<dir>/Cargo.toml`.
    ///
    /// # Errors
    ///
    /// When it is missing, not TOML, or has no `[package]` (a virtual
    /// workspace).
    pub(crate) fn read(dir: &Path) -> Result<Self, String> {
        let path = dir.join("Cargo.toml");
        let text = std::fs::read_to_string(&path).map_err(|error| {
            format!(
                "cannot read {}: {error}; run `cargo taskleak adopt` in a crate's directory, or give it: \
                 `cargo taskleak adopt path/to/crate`",
                path.display()
            )
        })?;
        let doc: DocumentMut = text
            .parse()
            .map_err(|error| format!("{} is not valid TOML: {error}", path.display()))?;
        if doc.get("package").is_none() {
            return Err(format!(
                "{} has no [package]: it is a workspace's root; run `cargo taskleak adopt MEMBER_DIR` for each \
                 member crate",
                path.display()
            ));
        }
        Ok(Manifest { path, doc })
    }

    pub(crate) fn text(&self) -> String {
        self.doc.to_string()
    }

    fn package_flag(&self, key: &str) -> bool {
        self.doc
            .get("package")
            .and_then(|package| package.get(key))
            .and_then(Item::as_bool)
            .unwrap_or(true)
    }

    /// The root files of the library, binaries and integration tests, as
    /// cargo finds them (explicit `path`s, or its conventions); each may
    /// not exist.
    pub(crate) fn target_roots(&self, dir: &Path) -> Vec<PathBuf> {
        let mut roots = Vec::new();
        let explicit = |table: &Item| table.get("path").and_then(Item::as_str).map(|path| dir.join(path));
        match self.doc.get("lib") {
            Some(lib) => roots.push(explicit(lib).unwrap_or_else(|| dir.join("src/lib.rs"))),
            None => roots.push(dir.join("src/lib.rs")),
        }
        for (kind, folder, auto) in [("bin", "src/bin", "autobins"), ("test", "tests", "autotests")] {
            if let Some(targets) = self.doc.get(kind).and_then(Item::as_array_of_tables) {
                for target in targets {
                    let target = Item::Table(target.clone());
                    match explicit(&target) {
                        Some(path) => roots.push(path),
                        None => {
                            let name = target.get("name").and_then(Item::as_str).unwrap_or_default();
                            roots.push(dir.join(folder).join(format!("{name}.rs")));
                            roots.push(dir.join(folder).join(name).join("main.rs"));
                        }
                    }
                }
            }
            if self.package_flag(auto) {
                if kind == "bin" {
                    roots.push(dir.join("src/main.rs"));
                }
                roots.extend(conventional_targets(&dir.join(folder)));
            }
        }
        roots.sort();
        roots.dedup();
        roots
    }

    /// Adds taskleak to `[dev-dependencies]`, unless it is there.
    pub(crate) fn add_dev_dependency(&mut self, source: &Source) -> Added {
        let deps = self
            .doc
            .entry("dev-dependencies")
            .or_insert_with(|| Item::Table(Table::new()));
        // `[dev-dependencies.tokio]` alone makes an implicit table, which
        // would hide a plain key added to it.
        if let Some(table) = deps.as_table_mut() {
            table.set_implicit(false);
        }
        let Some(deps) = deps.as_table_like_mut() else {
            return Added::AlreadyThere;
        };
        if deps.contains_key("taskleak") {
            return Added::AlreadyThere;
        }
        let value = match source {
            Source::Path(path) => {
                let mut table = InlineTable::new();
                table.insert("path", Value::from(path.display().to_string()));
                Value::InlineTable(table)
            }
            Source::Version(version) => Value::from(version.as_str()),
        };
        let line = format!("taskleak = {value}");
        deps.insert("taskleak", Item::Value(value));
        Added::Added(line)
    }
}

/// `folder/*.rs` and `folder/*/main.rs`.
fn conventional_targets(folder: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.push(path.join("main.rs"));
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
    found
}

/// Whether `dir` is a checkout of taskleak: a `Cargo.toml` whose package is
/// named `taskleak`.
///
/// # Errors
///
/// Says what is there instead.
pub(crate) fn check_taskleak_checkout(dir: &Path) -> Result<(), String> {
    let manifest = Manifest::read(dir).map_err(|error| format!("`--taskleak-path`: {error}"))?;
    let name = manifest
        .doc
        .get("package")
        .and_then(|package| package.get("name"))
        .and_then(Item::as_str);
    if name == Some("taskleak") {
        Ok(())
    } else {
        Err(format!(
            "`--taskleak-path {}`: its Cargo.toml is the package {}, not `taskleak`: give the folder of taskleak's \
             own Cargo.toml (the repository's root)",
            dir.display(),
            name.map_or_else(|| "(unnamed)".to_owned(), |name| format!("`{name}`"))
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(text: &str) -> Manifest {
        Manifest {
            path: PathBuf::from("Cargo.toml"),
            doc: text.parse().expect("TOML"),
        }
    }

    #[test]
    fn adds_taskleak_keeping_the_layout() {
        let mut m = manifest(
            "[package]\nname = \"x\"  # the name\n\n[dev-dependencies]\ntokio = { version = \"1\", features = \
             [\"full\"] }\n",
        );
        let added = m.add_dev_dependency(&Source::Version("0.1".to_owned()));
        assert_eq!(added, Added::Added("taskleak = \"0.1\"".to_owned()));
        assert_eq!(
            m.text(),
            "[package]\nname = \"x\"  # the name\n\n[dev-dependencies]\ntokio = { version = \"1\", features = \
             [\"full\"] }\ntaskleak = \"0.1\"\n"
        );
        assert_eq!(
            m.add_dev_dependency(&Source::Version("0.1".to_owned())),
            Added::AlreadyThere
        );
    }

    #[test]
    fn published_manifests_have_dotted_tables() {
        let mut m = manifest("[package]\nname = \"x\"\n\n[dev-dependencies.tokio]\nversion = \"1\"\n");
        m.add_dev_dependency(&Source::Path(PathBuf::from("/src/taskleak")));
        let text = m.text();
        let reparsed: DocumentMut = text.parse().expect("still TOML");
        assert_eq!(
            reparsed["dev-dependencies"]["taskleak"]["path"].as_str(),
            Some("/src/taskleak"),
            "{text}"
        );
        assert_eq!(
            reparsed["dev-dependencies"]["tokio"]["version"].as_str(),
            Some("1"),
            "{text}"
        );
    }

    #[test]
    fn no_dev_dependencies_yet() {
        let mut m = manifest("[package]\nname = \"x\"\n\n[dependencies]\nbytes = \"1\"\n");
        m.add_dev_dependency(&Source::Version("0.1".to_owned()));
        assert!(
            m.text().ends_with("[dev-dependencies]\ntaskleak = \"0.1\"\n"),
            "{}",
            m.text()
        );
    }

    #[test]
    fn explicit_targets_as_published() {
        let m = manifest(
            "[package]\nname = \"x\"\nautotests = false\nautobins = false\n\n[lib]\npath = \"src/lib.rs\"\n\n\
             [[test]]\nname = \"io\"\npath = \"tests/io.rs\"\n\n[[test]]\nname = \"net\"\n",
        );
        let roots = m.target_roots(Path::new("/c"));
        let roots: Vec<String> = roots.iter().map(|root| root.display().to_string()).collect();
        assert_eq!(
            roots,
            [
                "/c/src/lib.rs",
                "/c/tests/io.rs",
                "/c/tests/net/main.rs",
                "/c/tests/net.rs"
            ]
        );
    }
}

//! The source lines at a spawn site, read from the file the compiler named,
//! shown in reports the way a compiler diagnostic shows a span.
//!
//! tokio's dump cannot see inside some waits (`TcpListener::accept`, a
//! future inside `FuturesUnordered`): the spawned code itself then says
//! what the task does, so every leaked task's report quotes it.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};

/// The most lines an excerpt shows: the spawn call's first lines are what
/// says what the task does; the rest of a long body is in the file.
const MAX_LINES: usize = 8;

/// The lines of source at a spawn site: the line of the spawn call and the
/// lines of the spawned expression below it, indented deeper (up to its
/// closing bracket), at most eight.
///
/// ```
/// # fn show(group: &taskleak::report::LeakGroup) {
/// if let Some(source) = group.spawn_source() {
///     println!("spawned by: {}", source.spawn_line());
///     for (number, text) in source.lines() {
///         println!("{number:>5} | {text}");
///     }
/// }
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SourceExcerpt {
    first_line: u32,
    lines: Vec<String>,
    truncated: bool,
    /// Which occurrence of the spawn line's text in its file this is
    /// (1 for the first): with the text, names the spawn site without its
    /// line number, so that `cargo taskleak` keeps distinct sites apart.
    occurrence: u32,
}

impl SourceExcerpt {
    /// Each line with its number in the file, the spawn call's line first,
    /// as written (indentation included).
    ///
    /// ```
    /// # fn show(source: &taskleak::report::SourceExcerpt) {
    /// for (number, text) in source.lines() {
    ///     println!("{number}: {text}");
    /// }
    /// # }
    /// ```
    pub fn lines(&self) -> impl Iterator<Item = (u32, &str)> {
        (self.first_line..).zip(self.lines.iter().map(String::as_str))
    }

    /// The line of the spawn call, without its indentation: e.g.
    /// `tokio::spawn(async move {`. It does not change when lines above it
    /// are added or removed, so tools can key a leak on it.
    ///
    /// ```
    /// # fn show(source: &taskleak::report::SourceExcerpt) {
    /// assert!(!source.spawn_line().starts_with(' '));
    /// # }
    /// ```
    pub fn spawn_line(&self) -> &str {
        self.lines.first().map_or("", |line| line.trim())
    }

    /// Whether the spawned expression goes on past the lines shown.
    ///
    /// ```
    /// # fn show(source: &taskleak::report::SourceExcerpt) {
    /// if source.is_truncated() {
    ///     println!("…");
    /// }
    /// # }
    /// ```
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// Which occurrence of [`spawn_line`](Self::spawn_line)'s text in the
    /// file this one is, from 1: three `tokio::spawn(pending())` lines in one
    /// file are its 1st, 2nd and 3rd.
    pub(crate) fn occurrence(&self) -> u32 {
        self.occurrence
    }
}

/// The excerpt at `site` (`path:line:col`, as `Location` writes it), with a
/// relative path read under `root` (the workspace root the compiler's paths
/// are relative to). `None` when the file cannot be read or has no such
/// line: the report then shows the site alone.
pub(crate) fn excerpt_at(site: &str, root: Option<&str>) -> Option<SourceExcerpt> {
    let (file, line) = split_site(site)?;
    let path = Path::new(file);
    let text = if path.is_absolute() {
        std::fs::read_to_string(path)
    } else {
        std::fs::read_to_string(Path::new(root?).join(path))
    }
    .ok()?;
    excerpt_of(&text, line)
}

/// The crate whose source holds the spawn site `site`, `-` written `_`: the
/// package of the nearest `Cargo.toml` above the file (in the workspace,
/// the cargo registry, a git checkout or a path dependency alike). Known
/// once per file per process: the settle loop asks on every re-check.
pub(crate) fn crate_of_site(site: &str) -> Option<String> {
    static PACKAGES: OnceLock<Mutex<HashMap<String, Option<String>>>> = OnceLock::new();
    let (file, _) = split_site(site)?;
    let packages = PACKAGES.get_or_init(Mutex::default);
    if let Some(known) = packages.lock().unwrap_or_else(PoisonError::into_inner).get(file) {
        return known.clone();
    }
    let path = Path::new(file);
    let root = crate::model::source_root();
    let absolute = match root {
        Some(root) if path.is_relative() => Path::new(&root).join(path),
        _ => path.to_path_buf(),
    };
    let found = absolute
        .ancestors()
        .skip(1)
        .find_map(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .ok()
                .and_then(|manifest| package_name(&manifest))
        })
        .map(|name| name.replace('-', "_"));
    packages
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(file.to_owned(), found.clone());
    found
}

/// `name = "…"` of a manifest's `[package]` table; `None` for a manifest
/// with no package (a virtual workspace's), so the search goes on up.
fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if in_package && key.trim() == "name" {
            let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
            return (!value.is_empty()).then(|| value.to_owned());
        }
    }
    None
}

/// `src/a.rs:12:9` into `("src/a.rs", 12)`; the path may hold colons.
fn split_site(site: &str) -> Option<(&str, u32)> {
    let (rest, column) = site.rsplit_once(':')?;
    let (file, line) = rest.rsplit_once(':')?;
    column.parse::<u32>().ok()?;
    Some((file, line.parse().ok()?))
}

/// The spawn call's line (`line`, from 1) and the lines of what it spawns:
/// those indented deeper than it, and the closing line at its own depth
/// (`});`) — rustfmt's layout of a call whose arguments span lines. A call
/// that ends on its own line (`…;`) is that line alone.
fn excerpt_of(text: &str, line: u32) -> Option<SourceExcerpt> {
    let index = usize::try_from(line).ok()?.checked_sub(1)?;
    let mut rest = text.lines().skip(index);
    let first = rest.next()?;
    let depth = indentation(first);
    let same_text = text
        .lines()
        .take(index)
        .filter(|line| line.trim() == first.trim())
        .count();
    let occurrence = u32::try_from(same_text).unwrap_or(u32::MAX).saturating_add(1);
    let mut lines = vec![first.to_owned()];
    let mut truncated = false;
    let ends_here = first.trim_end().ends_with(';');
    for next in rest.take_while(|_| !ends_here) {
        let blank = next.trim().is_empty();
        let deeper = blank || indentation(next) > depth;
        let closing = !deeper && indentation(next) == depth && next.trim_start().starts_with([')', '}', ']']);
        if !deeper && !closing {
            break;
        }
        if lines.len() == MAX_LINES {
            truncated = true;
            break;
        }
        lines.push(next.to_owned());
        if closing {
            break;
        }
    }
    while lines.last().is_some_and(|line| line.trim().is_empty()) {
        lines.pop();
    }
    Some(SourceExcerpt {
        first_line: line,
        lines,
        truncated,
        occurrence,
    })
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

impl fmt::Display for SourceExcerpt {
    /// The lines as a diagnostic shows them, their common indentation
    /// removed: `  1364 | tokio::spawn(async move {`, each line indented by
    /// the formatter's width (`{:6}` indents by six).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let indent = f.width().unwrap_or(0);
        let common = self
            .lines
            .iter()
            .filter(|line| !line.trim().is_empty())
            .map(|line| indentation(line))
            .min()
            .unwrap_or(0);
        let last = self.first_line as usize + self.lines.len().saturating_sub(1);
        let number_width = last.to_string().len();
        for (number, text) in self.lines() {
            let text = text.get(common..).unwrap_or_else(|| text.trim_start());
            let text = text.trim_end();
            if text.is_empty() {
                writeln!(f, "{:indent$}{number:>number_width$} |", "")?;
            } else {
                writeln!(f, "{:indent$}{number:>number_width$} | {text}", "")?;
            }
        }
        if self.truncated {
            writeln!(f, "{:indent$}{:>number_width$} | …", "", "")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: &str = "\
fn start(listener: TcpListener) {
    let (tx, rx) = channel();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();

            serve(stream);
        }
    });
    tokio::spawn(read_request(socket, limit));
    drop(rx);
}
";

    fn shown(excerpt: &SourceExcerpt) -> String {
        format!("{excerpt:2}")
    }

    #[test]
    fn a_multi_line_spawn_is_shown_up_to_its_closing_line() {
        let excerpt = excerpt_of(SERVER, 3).expect("line 3 exists");
        assert_eq!(excerpt.spawn_line(), "tokio::spawn(async move {");
        assert!(!excerpt.is_truncated());
        assert_eq!(
            shown(&excerpt),
            "  3 | tokio::spawn(async move {
  4 |     loop {
  5 |         let (stream, _) = listener.accept().await.unwrap();
  6 |
  7 |         serve(stream);
  8 |     }
  9 | });
"
        );
    }

    #[test]
    fn a_one_line_spawn_is_one_line() {
        let excerpt = excerpt_of(SERVER, 10).expect("line 10 exists");
        assert_eq!(excerpt.lines().count(), 1);
        assert_eq!(shown(&excerpt), "  10 | tokio::spawn(read_request(socket, limit));\n");
    }

    #[test]
    fn a_spawn_ending_its_block_stops_before_the_block_closes() {
        let text = "fn leak() {\n    tokio::spawn(std::future::pending::<()>());\n}\n";
        assert_eq!(excerpt_of(text, 2).expect("line 2 exists").lines().count(), 1);
        let text = "fn leak() {\n    tokio::spawn(std::future::pending::<()>())\n}\n";
        assert_eq!(excerpt_of(text, 2).expect("line 2 exists").lines().count(), 1);
    }

    #[test]
    fn a_long_body_is_cut_and_says_so() {
        let body: String = (0..20).map(|n| format!("        step({n});\n")).collect();
        let text = format!("    tokio::spawn(async move {{\n{body}    }});\n");
        let excerpt = excerpt_of(&text, 1).expect("line 1 exists");
        assert_eq!(excerpt.lines().count(), MAX_LINES);
        assert!(excerpt.is_truncated());
        assert!(shown(&excerpt).ends_with("  | …\n"), "{}", shown(&excerpt));
    }

    #[test]
    fn sites_are_split_at_their_last_two_colons() {
        assert_eq!(split_site("src/a.rs:12:9"), Some(("src/a.rs", 12)));
        assert_eq!(split_site("C:/x/a.rs:3:1"), Some(("C:/x/a.rs", 3)));
        assert_eq!(split_site("src/a.rs"), None);
        assert_eq!(excerpt_of(SERVER, 0), None);
        assert_eq!(excerpt_of(SERVER, 99), None);
    }

    #[test]
    fn a_site_belongs_to_the_package_of_the_nearest_manifest() {
        assert_eq!(crate_of_site(&format!("{}:1:1", file!())).as_deref(), Some("taskleak"));
        assert_eq!(
            crate_of_site("leak-macros/src/entry.rs:1:1").as_deref(),
            Some("taskleak_macros")
        );
        assert_eq!(
            package_name("[workspace]\nmembers = []\n[package]\nversion = \"1\"\nname = 'my-pool'\n").as_deref(),
            Some("my-pool")
        );
        assert_eq!(package_name("[workspace]\nname = \"not-a-package\"\n"), None);
    }

    #[test]
    fn a_site_is_read_from_its_file_under_the_root() {
        let root = env!("CARGO_MANIFEST_DIR");
        let this = file!();
        let line = line!() - 1;
        let excerpt = excerpt_at(&format!("{this}:{line}:9"), Some(root)).expect("this file is readable");
        assert_eq!(excerpt.spawn_line(), "let this = file!();");
        assert_eq!(excerpt_at("no/such/file.rs:1:1", Some(root)), None);
    }

    #[test]
    fn identical_spawn_lines_are_told_apart_by_occurrence() {
        let text = "fn a() {\n    tokio::spawn(pending());\n}\nfn b() {\n  tokio::spawn(pending());\n}\n";
        let first = excerpt_of(text, 2).expect("line 2");
        let second = excerpt_of(text, 5).expect("line 5");
        assert_eq!(first.spawn_line(), second.spawn_line());
        assert_eq!((first.occurrence(), second.occurrence()), (1, 2));
    }
}

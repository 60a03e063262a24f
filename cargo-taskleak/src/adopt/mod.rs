//! `cargo taskleak adopt`: marks every test of a crate with taskleak's
//! check and adds taskleak to its dev-dependencies, editing only lines it
//! adds, and lists the tests it cannot mark with the reason. Owns: finding
//! the files the test targets compile (`files`), the tests in each and
//! where the attribute goes (`scan`, `attrs`), the text edits (`insert`),
//! `Cargo.toml` (`manifest`), and its own command line (`args`).

pub(crate) mod args;
mod attrs;
mod files;
mod insert;
mod manifest;
mod scan;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use manifest::{Added, Manifest, Source};

pub(crate) use args::Args;

/// Runs `cargo taskleak adopt ARGS`; returns the exit code.
///
/// # Errors
///
/// A crate directory without a usable `Cargo.toml`, or a file that cannot
/// be written.
pub(crate) fn run(args: &Args) -> Result<u8, String> {
    let dir = &args.dir;
    let mut manifest = Manifest::read(dir)?;
    let source = match &args.taskleak_path {
        Some(path) => {
            let path = std::fs::canonicalize(path)
                .map_err(|error| format!("`--taskleak-path {}`: {error}", path.display()))?;
            manifest::check_taskleak_checkout(&path)?;
            Source::Path(path)
        }
        None => Source::Version(default_version()),
    };
    let walk = files::walk(dir, manifest.target_roots(dir));
    let mut changed = Vec::new();
    for file in &walk.files {
        if file.scan.marked.is_empty() {
            continue;
        }
        let insertions: Vec<(usize, &str)> = file
            .scan
            .marked
            .iter()
            .map(|marked| (marked.before_line, marked.text.as_str()))
            .collect();
        changed.push((&file.path, insert::insert_lines(&file.source, &insertions)));
    }
    let added = manifest.add_dev_dependency(&source);
    if args.dry_run {
        print!("{}", planned(dir, &walk, &added));
    } else {
        if let Added::Added(_) = added {
            write(&manifest.path, &manifest.text())?;
        }
        for (path, text) in &changed {
            write(path, text)?;
        }
    }
    print!("{}", summary(dir, &walk, &added, changed.len(), args.dry_run));
    Ok(0)
}

/// The version of taskleak to depend on: this tool's own, as `major.minor`.
fn default_version() -> String {
    let version = env!("CARGO_PKG_VERSION");
    let mut parts = version.splitn(3, '.');
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) => format!("{major}.{minor}"),
        _ => version.to_owned(),
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|error| format!("cannot write {}: {error}", path.display()))
}

fn relative(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir).unwrap_or(path).display().to_string()
}

/// `--dry-run`: each line it would add.
fn planned(dir: &Path, walk: &files::Walk, added: &Added) -> String {
    let mut out = String::new();
    if let Added::Added(line) = added {
        let _ = writeln!(out, "Cargo.toml: [dev-dependencies] + {line}");
    }
    for file in &walk.files {
        for marked in &file.scan.marked {
            let _ = writeln!(
                out,
                "{}:{}: + {}   ({}, `{}`)",
                relative(dir, &file.path),
                marked.before_line,
                marked.text.trim(),
                marked.kind,
                marked.name
            );
        }
    }
    out
}

fn summary(dir: &Path, walk: &files::Walk, added: &Added, files_changed: usize, dry_run: bool) -> String {
    let mut out = String::new();
    let heading = if dry_run { " (dry run: nothing was written)" } else { "" };
    let _ = writeln!(out, "taskleak adopt: {}{heading}", dir.display());
    match added {
        Added::Added(line) => {
            let _ = writeln!(out, "Cargo.toml: `{line}` in [dev-dependencies]");
        }
        Added::AlreadyThere => {
            let _ = writeln!(out, "Cargo.toml: taskleak is a dev-dependency already");
        }
    }
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut already, mut opted_out) = (0, 0);
    let mut skipped = Vec::new();
    for file in &walk.files {
        for marked in &file.scan.marked {
            *kinds.entry(marked.kind).or_default() += 1;
        }
        already += file.scan.already_checked;
        opted_out += file.scan.opted_out;
        skipped.extend(file.scan.skipped.iter().map(|skip| (&file.path, skip)));
    }
    let marked: usize = kinds.values().sum();
    let kinds: Vec<String> = kinds.iter().map(|(kind, count)| format!("{count} {kind}")).collect();
    let _ = writeln!(out, "files changed: {files_changed}");
    let _ = writeln!(out, "tests marked: {marked} ({})", kinds.join(", "));
    let _ = writeln!(out, "tests already checked: {already}");
    let _ = writeln!(out, "tests opted out (#[taskleak::skip]): {opted_out}");
    let skipped_count: usize = skipped.iter().map(|(_, skip)| skip.count).sum();
    let _ = writeln!(out, "tests skipped: {skipped_count}");
    for (path, skip) in &skipped {
        let count = if skip.count == 1 {
            String::new()
        } else {
            format!(" ({} tests)", skip.count)
        };
        let _ = writeln!(
            out,
            "  {}:{}  {}{count}: {}",
            relative(dir, path),
            skip.line,
            skip.name,
            skip.reason
        );
    }
    let paths = |paths: &[PathBuf]| -> Vec<String> { paths.iter().map(|path| relative(dir, path)).collect() };
    let lists = [
        ("files that no target compiles, left alone", paths(&walk.unreached)),
        ("module files outside src/ and tests/, left alone", paths(&walk.outside)),
        (
            "files that could not be parsed, left alone (their tests are not counted)",
            walk.unparsed
                .iter()
                .map(|(path, why)| format!("{}: {why}", relative(dir, path)))
                .collect(),
        ),
    ];
    for (title, lines) in lists {
        if lines.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{title}: {}", lines.len());
        for line in lines {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

#[cfg(test)]
mod tests;

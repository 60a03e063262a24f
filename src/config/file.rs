//! Project-wide settings: `taskleak.toml` beside the crate's `Cargo.toml`
//! (or the file `TASKLEAK_CONFIG` names), applied to every check in the
//! crate under the test's own attribute. A small TOML subset: top-level
//! keys, numbers, booleans, strings and arrays of strings.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::config::options::Options;

/// The file's name, beside `Cargo.toml`.
pub(crate) const FILE_NAME: &str = "taskleak.toml";
/// Names another file instead (absolute, or relative to the crate).
pub(crate) const PATH_VARIABLE: &str = "TASKLEAK_CONFIG";

/// The settings of one file; each rule keeps its line for error messages.
#[derive(Debug, Default)]
pub(crate) struct FileConfig {
    max_retries: Option<u32>,
    max_sleep: Option<Duration>,
    rules: Vec<(&'static str, String)>,
}

/// A file's settings once read: none without a file, or its first error.
type Loaded = Result<Option<Arc<FileConfig>>, String>;

/// The settings for the crate at `manifest_dir`: `None` without a file.
///
/// # Errors
///
/// `file:line: problem` for a file that cannot be read or is malformed.
fn for_crate(manifest_dir: &str) -> Loaded {
    let path = match std::env::var_os(PATH_VARIABLE) {
        Some(named) => Path::new(manifest_dir).join(named),
        None => Path::new(manifest_dir).join(FILE_NAME),
    };
    load(&path)
}

/// The default options under the settings of the crate at `manifest_dir`.
/// Read, checked and built once per process and crate: every check of a
/// test pays only for a clone (its rules' regexes are shared).
///
/// # Errors
///
/// As [`for_crate`].
pub(crate) fn options_for_crate(manifest_dir: &str) -> Result<Options, String> {
    static BUILT: Mutex<Vec<(String, Result<Options, String>)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, options)) = built.iter().find(|(dir, _)| dir == manifest_dir) {
        return options.clone();
    }
    let options = for_crate(manifest_dir).map(|config| match config {
        Some(config) => config.apply(Options::new()),
        None => Options::new(),
    });
    built.push((manifest_dir.to_owned(), options.clone()));
    options
}

fn load(path: &Path) -> Loaded {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && std::env::var_os(PATH_VARIABLE).is_none() => {
            return Ok(None);
        }
        Err(error) => return Err(format!("{}: cannot read it: {error}", path.display())),
    };
    parse(&text)
        .map(|config| Some(Arc::new(config)))
        .map_err(|(line, problem)| format!("{}:{line}: {problem}", path.display()))
}

impl FileConfig {
    /// `options` with the file's settings: its retry budget and sleep cap,
    /// and its ignore rules (already checked to compile).
    pub(crate) fn apply(&self, mut options: Options) -> Options {
        if let Some(retries) = self.max_retries {
            options = options.max_retries(retries);
        }
        if let Some(sleep) = self.max_sleep {
            options = options.max_sleep(sleep);
        }
        for (key, pattern) in &self.rules {
            // Compiled once already, in `parse`: cannot fail here.
            options = add_rule(options.clone(), key, pattern).unwrap_or(options);
        }
        options
    }
}

fn add_rule(options: Options, key: &str, pattern: &str) -> Result<Options, crate::error::Error> {
    match key {
        "ignore_top_function" => options.ignore_top_function(pattern),
        "ignore_any_function" => options.ignore_any_function(pattern),
        "ignore_spawned_at" => options.ignore_spawned_at(pattern),
        "ignore_dependency" => options.ignore_dependency(pattern),
        _ => options.ignore_thread_name(pattern),
    }
}

const KEYS: &str = "`max_retries`, `max_sleep`, `ignore_top_function`, `ignore_any_function`, `ignore_spawned_at`, \
                    `ignore_thread_name`, `ignore_dependency`";

/// Parses the file; an error is its line (from 1) and the problem.
fn parse(text: &str) -> Result<FileConfig, (usize, String)> {
    let mut config = FileConfig::default();
    let mut seen: Vec<String> = Vec::new();
    let mut lines = text.lines().enumerate().map(|(index, line)| (index + 1, line));
    while let Some((number, line)) = lines.next() {
        let mut statement = strip_comment(line).trim().to_owned();
        if statement.is_empty() {
            continue;
        }
        if statement.starts_with('[') {
            return Err((
                number,
                "sections are not supported: write every key at the top level".to_owned(),
            ));
        }
        let Some(key) = statement.split_once('=').map(|(key, _)| key.trim().to_owned()) else {
            return Err((number, format!("expected `key = value`, found `{statement}`")));
        };
        // An array may go on over several lines.
        while statement.contains('[') && !closes(&statement) {
            match lines.next() {
                Some((_, more)) => statement.push_str(strip_comment(more)),
                None => return Err((number, "this array is never closed with `]`".to_owned())),
            }
        }
        let value = statement.split_once('=').map_or("", |(_, value)| value).trim();
        if seen.contains(&key) {
            return Err((number, format!("`{key}` is given twice; keep one")));
        }
        seen.push(key.clone());
        match key.as_str() {
            "max_retries" => {
                let retries = value.parse().map_err(|_| {
                    (
                        number,
                        format!("`max_retries` takes a whole number, e.g. `max_retries = 40`, not `{value}`"),
                    )
                })?;
                config.max_retries = Some(retries);
            }
            "max_sleep" => {
                let text = string(value).map_err(|problem| (number, problem))?;
                let sleep = crate::config::env::parse_duration(&text).ok_or_else(|| {
                    (
                        number,
                        format!("`max_sleep` takes a duration such as \"200ms\" (units us, ms, s), not {value}"),
                    )
                })?;
                config.max_sleep = Some(sleep);
            }
            "ignore_top_function"
            | "ignore_any_function"
            | "ignore_spawned_at"
            | "ignore_thread_name"
            | "ignore_dependency" => {
                let key: &'static str = match key.as_str() {
                    "ignore_top_function" => "ignore_top_function",
                    "ignore_any_function" => "ignore_any_function",
                    "ignore_spawned_at" => "ignore_spawned_at",
                    "ignore_dependency" => "ignore_dependency",
                    _ => "ignore_thread_name",
                };
                for pattern in strings(value).map_err(|problem| (number, format!("`{key}`: {problem}")))? {
                    add_rule(Options::new(), key, &pattern).map_err(|error| (number, error.to_string()))?;
                    config.rules.push((key, pattern));
                }
            }
            other => return Err((number, format!("unknown key `{other}`; expected one of: {KEYS}"))),
        }
    }
    Ok(config)
}

/// The line up to a `#` outside quotes.
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    for (at, ch) in line.char_indices() {
        match (ch, quote) {
            ('"' | '\'', None) => quote = Some(ch),
            (c, Some(open)) if c == open => quote = None,
            ('#', None) => return &line[..at],
            _ => {}
        }
    }
    line
}

/// Whether every `[` outside quotes is closed.
fn closes(statement: &str) -> bool {
    let (mut depth, mut quote) = (0i32, None);
    for ch in statement.chars() {
        match (ch, quote) {
            ('"' | '\'', None) => quote = Some(ch),
            (c, Some(open)) if c == open => quote = None,
            ('[', None) => depth += 1,
            (']', None) => depth -= 1,
            _ => {}
        }
    }
    depth <= 0
}

/// A string, or an array of strings.
fn strings(value: &str) -> Result<Vec<String>, String> {
    let Some(inner) = value.strip_prefix('[') else {
        return string(value).map(|one| vec![one]);
    };
    let inner = inner
        .strip_suffix(']')
        .ok_or_else(|| format!("expected an array of strings, found `{value}`"))?;
    let mut items = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let quote = rest.chars().next().unwrap_or('"');
        let end = rest[1..]
            .find(quote)
            .filter(|_| quote == '"' || quote == '\'')
            .ok_or_else(|| format!("expected a quoted string in the array, found `{rest}`"))?;
        items.push(string(&rest[..end + 2])?);
        rest = rest[end + 2..].trim_start().trim_start_matches(',').trim_start();
    }
    Ok(items)
}

/// A TOML string: 'literal' (as written: best for regexes), or "basic"
/// with the escapes `\\`, `\"`, `\n` and `\t`.
fn string(value: &str) -> Result<String, String> {
    if let Some(literal) = value.strip_prefix('\'').and_then(|rest| rest.strip_suffix('\'')) {
        return Ok(literal.to_owned());
    }
    let Some(basic) = value.strip_prefix('"').and_then(|rest| rest.strip_suffix('"')) else {
        return Err(format!("expected a string in quotes, found `{value}`"));
    };
    let mut out = String::new();
    let mut chars = basic.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            other => {
                return Err(format!(
                    "`\\{}` is not an escape in a \"basic\" string; write regexes in 'single quotes', as written",
                    other.map(String::from).unwrap_or_default()
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_durations_and_rules_in_strings_and_arrays() {
        let config = parse(
            "# every check in this crate\n\
             max_retries = 40\n\
             max_sleep = \"200ms\"   # slow CI\n\
             ignore_spawned_at = ['src/metrics\\.rs:', \"^/.*/registry/\"]\n\
             ignore_thread_name = [\n  '^metrics$',  # the exporter\n  'pool-',\n]\n",
        )
        .expect("valid");
        assert_eq!(config.max_retries, Some(40));
        assert_eq!(config.max_sleep, Some(Duration::from_millis(200)));
        let rules: Vec<_> = config
            .rules
            .iter()
            .map(|(key, pattern)| (*key, pattern.as_str()))
            .collect();
        assert_eq!(
            rules,
            [
                ("ignore_spawned_at", r"src/metrics\.rs:"),
                ("ignore_spawned_at", "^/.*/registry/"),
                ("ignore_thread_name", "^metrics$"),
                ("ignore_thread_name", "pool-"),
            ]
        );
        let options = config.apply(Options::new());
        assert_eq!(options.retries(), 40);
        assert_eq!(options.ignore.thread_name.len(), 2);
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        let error = |text: &str| parse(text).expect_err("malformed");
        assert_eq!(error("\nmax_retries = many").0, 2);
        assert!(error("max_retries = many").1.contains("whole number"));
        assert!(error("max_retry = 3").1.contains("unknown key `max_retry`"));
        assert!(error("[checks]").1.contains("sections"));
        assert!(error("max_sleep = \"fast\"").1.contains("duration"));
        assert!(error("ignore_top_function = \"a(\"").1.contains("ignore_top_function"));
        assert!(error("ignore_top_function = \"\\d\"").1.contains("single quotes"));
        assert!(error("ignore_thread_name = ['a',").1.contains("never closed"));
        assert!(error("max_retries = 1\nmax_retries = 2").1.contains("twice"));
        assert!(error("just words").1.contains("key = value"));
    }
}

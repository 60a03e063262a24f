//! Project-wide settings: `taskleak.toml` beside the crate's `Cargo.toml`
//! (or the file `TASKLEAK_CONFIG` names), applied to every check in the
//! crate under the test's own attribute. Read with the `toml` crate, so any
//! valid TOML is read as TOML reads it; the keys are checked here.

use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use crate::config::options::Options;
use crate::error::Error;

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
type Loaded = Result<Option<Arc<FileConfig>>, Error>;

/// The settings for the crate at `manifest_dir`: `None` without a file.
///
/// # Errors
///
/// [`Error::Config`] for a file that cannot be read or is malformed.
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
pub(crate) fn options_for_crate(manifest_dir: &str) -> Result<Options, Error> {
    static BUILT: Mutex<Vec<(String, Result<Options, Error>)>> = Mutex::new(Vec::new());
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
        Err(error) => {
            return Err(Error::Config {
                path: path.to_owned(),
                line: None,
                problem: format!("cannot read it: {error}"),
                source: Some(Arc::new(error)),
            });
        }
    };
    parse(&text)
        .map(|config| Some(Arc::new(config)))
        .map_err(|(line, problem)| Error::Config {
            path: path.to_owned(),
            line: Some(line),
            problem,
            source: None,
        })
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

fn add_rule(options: Options, key: &str, pattern: &str) -> Result<Options, Error> {
    match key {
        "ignore_top_function" => options.ignore_top_function(pattern),
        "ignore_any_function" => options.ignore_any_function(pattern),
        "ignore_spawned_at" => options.ignore_spawned_at(pattern),
        "ignore_dependency" => options.ignore_dependency(pattern),
        _ => options.ignore_thread_name(pattern),
    }
}

/// A problem and the byte range of the text it is about.
type Problem = (Range<usize>, String);

/// Parses the file (any valid TOML) and checks its keys and values; an
/// error is the line (from 1) and the problem.
fn parse(text: &str) -> Result<FileConfig, (usize, String)> {
    // Bytes, not `str` slicing: a span is never a reason to panic.
    let line_of = |span: &Range<usize>| {
        let before = &text.as_bytes()[..span.start.min(text.len())];
        before.iter().filter(|&&byte| byte == b'\n').count() + 1
    };
    let table = DeTable::parse(text).map_err(|error| {
        let span = error.span().unwrap_or(0..0);
        let mut problem = error.message().trim_end().replace('\n', "; ");
        // `"\d"` is no TOML escape: a regex wants a 'literal string'.
        let escape = text
            .get(span.start.saturating_sub(1)..)
            .is_some_and(|written| written.starts_with('\\'));
        if escape || text.get(span.clone()).is_some_and(|written| written.starts_with('\\')) {
            problem.push_str("; write regexes in 'single quotes', as written");
        }
        (line_of(&span), problem)
    })?;
    read_keys(table.get_ref()).map_err(|(span, problem)| (line_of(&span), problem))
}

/// The settings the document's top-level keys give.
fn read_keys(table: &DeTable<'_>) -> Result<FileConfig, Problem> {
    let mut config = FileConfig::default();
    // In the file's order, so that the first problem told is the first one
    // written (the table itself is sorted by key).
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    for (key, value) in entries {
        let (name, span) = (key.get_ref().as_ref(), value.span());
        match (name, value.get_ref()) {
            (_, DeValue::Table(_)) => {
                return Err((
                    key.span(),
                    format!("`{name}` is a table: sections are not supported: write every key at the top level"),
                ));
            }
            ("max_retries", DeValue::Integer(number)) => {
                let retries = i64::from_str_radix(number.as_str(), number.radix())
                    .ok()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        (
                            span.clone(),
                            format!(
                                "`max_retries` takes a whole number from 0 to {}, not {number}",
                                u32::MAX
                            ),
                        )
                    })?;
                config.max_retries = Some(retries);
            }
            ("max_retries", _) => {
                return Err((
                    span,
                    "`max_retries` takes a whole number, e.g. `max_retries = 40`".to_owned(),
                ));
            }
            ("max_sleep", DeValue::String(written)) => {
                let sleep = crate::config::env::parse_duration(written).ok_or_else(|| {
                    (
                        span.clone(),
                        format!("`max_sleep` takes a duration such as \"200ms\" (units us, ms, s), not \"{written}\""),
                    )
                })?;
                config.max_sleep = Some(sleep);
            }
            ("max_sleep", _) => {
                return Err((
                    span,
                    "`max_sleep` takes a duration in quotes, e.g. `max_sleep = \"200ms\"`".to_owned(),
                ));
            }
            (
                "ignore_top_function"
                | "ignore_any_function"
                | "ignore_spawned_at"
                | "ignore_thread_name"
                | "ignore_dependency",
                written,
            ) => {
                // The table's own `&'static str` for the name.
                let key = taskleak_options::find(name).map_or("ignore_thread_name", |option| option.name);
                for (span, pattern) in
                    strings(span, written).map_err(|(at, problem)| (at, format!("`{key}`: {problem}")))?
                {
                    add_rule(Options::new(), key, &pattern).map_err(|error| (span, error.to_string()))?;
                    config.rules.push((key, pattern));
                }
            }
            (other, _) => {
                let keys = taskleak_options::listed(|option| option.in_file);
                let problem = match taskleak_options::find(other) {
                    Some(_) => format!(
                        "`{other}` is for the attribute only (one test or module), not the whole crate; \
                         the file takes: {keys}"
                    ),
                    None => format!("unknown key `{other}`; expected one of: {keys}"),
                };
                return Err((key.span(), problem));
            }
        }
    }
    Ok(config)
}

/// A string, or an array of strings, each with its span.
fn strings(span: Range<usize>, value: &DeValue<'_>) -> Result<Vec<(Range<usize>, String)>, Problem> {
    let expected = "takes a string or an array of strings, e.g. ['^metrics$']";
    match value {
        DeValue::String(one) => Ok(vec![(span, one.to_string())]),
        DeValue::Array(items) => items
            .iter()
            .map(|item| match item.get_ref() {
                DeValue::String(one) => Ok((item.span(), one.to_string())),
                _ => Err((item.span(), expected.to_owned())),
            })
            .collect(),
        _ => Err((span, expected.to_owned())),
    }
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
        assert_eq!(options.get_max_retries(), 40);
        assert_eq!(options.ignore.thread_name.len(), 2);
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        let error = |text: &str| parse(text).expect_err("malformed");
        assert_eq!(error("\nmax_retries = many").0, 2);
        assert_eq!(error("# é → ü\nmax_retry = \"ß\"").0, 2);
        assert!(error("max_retries = 1.5").1.contains("whole number"));
        assert!(error("max_retries = -1").1.contains("whole number from 0"));
        assert!(error("max_retry = 3").1.contains("unknown key `max_retry`"));
        assert!(error("[checks]").1.contains("sections"));
        assert!(error("max_sleep = \"fast\"").1.contains("duration"));
        assert!(error("max_sleep = 200").1.contains("duration in quotes"));
        assert!(error("ignore_top_function = \"a(\"").1.contains("ignore_top_function"));
        assert!(error("ignore_top_function = \"\\d\"").1.contains("single quotes"));
        assert!(error("ignore_thread_name = [1]").1.contains("array of strings"));
        // What TOML itself refuses, in its words, at its line.
        assert!(error("ignore_thread_name = ['a',").1.contains("unclosed array"));
        assert_eq!(
            error("max_retries = 1\nmax_retries = 2"),
            (2, "duplicate key".to_owned())
        );
        assert!(error("just words").1.contains("expected `=`"));
    }

    #[test]
    fn the_file_takes_the_options_the_table_marks_for_it() {
        for option in taskleak_options::OPTIONS {
            let written = format!("{} = {}", option.name, option.value.example());
            match (option.in_file, parse(&written)) {
                (true, Ok(_)) => {}
                (true, Err((_, problem))) => panic!("`{written}` is marked for the file, which says: {problem}"),
                (false, Ok(_)) => panic!("`{written}` is not marked for the file, which takes it"),
                (false, Err((_, problem))) => assert!(problem.contains("attribute only"), "{problem}"),
            }
        }
    }

    #[test]
    fn any_valid_toml_reads_as_toml_reads_it() {
        let config = parse(
            "max_retries = 1_000\n\
             max_sleep = \"\"\"1s\"\"\"\n\
             \"ignore_dependency\" = \"bb8\"\n\
             ignore_any_function = [] # no rule\n",
        )
        .expect("valid TOML");
        assert_eq!(config.max_retries, Some(1_000));
        assert_eq!(config.max_sleep, Some(Duration::from_secs(1)));
        assert_eq!(config.rules, [("ignore_dependency", "bb8".to_owned())]);
        assert_eq!(parse("max_retries = 0x10").expect("hex").max_retries, Some(16));
        assert!(parse("").expect("empty").rules.is_empty());
    }
}

//! The command line: `cargo taskleak [OPTIONS] [-- RUNNER ARGS…]` and its
//! `adopt` subcommand, defined for clap (which writes `--help` from it), and
//! the checks clap cannot make.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{ArgAction, Parser, Subcommand};

use crate::adopt;

/// How long the test run (after the build) may take by default: generous
/// enough for large suites, short enough that a hung test ends a CI job
/// with a report instead of at the CI system's own limit, without one.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The end of `--help`: what clap's option list cannot say.
const AFTER_HELP: &str = "\
Arguments after `--` go to `cargo test` (or `cargo nextest run`), including a second `--` and
what follows it, for the test binaries: `cargo taskleak -- -p my-crate -- --test-threads=2`.

Exit codes: 0 no leaks (or only baselined ones), 1 new leaks, 2 the run itself failed
(bad arguments, a build error, or tests failing for reasons other than leaks).";

/// What the user asked for. The doc comments of the fields are `--help`'s.
#[derive(Debug, PartialEq, Eq, Parser)]
#[command(
    name = "cargo-taskleak",
    // Usage lines show the command as it is typed.
    bin_name = "cargo taskleak",
    about = "Run the tests with taskleak's leak checks on, and report every leak in one summary.",
    long_about = None,
    after_help = AFTER_HELP,
    // `-h` prints what `--help` prints, in the options' own words.
    disable_help_flag = true,
    disable_help_subcommand = true,
    // A repeated option: the last one counts, as before clap.
    args_override_self = true,
    args_conflicts_with_subcommands = true
)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// run the tests with `cargo nextest run` instead of `cargo test`
    #[arg(long)]
    pub(crate) nextest: bool,
    /// do not re-run alone the tests whose thread check was inconclusive
    #[arg(long)]
    pub(crate) no_rerun: bool,
    /// write the run's leaks as JSON (schema: docs/cargo-taskleak.md)
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
    /// write a JUnit XML report: one failing test case per leaking test
    #[arg(long, value_name = "FILE")]
    pub(crate) junit: Option<PathBuf>,
    /// fail only on leaks not recorded in FILE; list those gone from it
    #[arg(long, value_name = "FILE")]
    pub(crate) baseline: Option<PathBuf>,
    /// record the leaks found in FILE, for --baseline
    #[arg(long, value_name = "FILE")]
    pub(crate) write_baseline: Option<PathBuf>,
    /// where to build (default: `taskleak` in the workspace's target directory)
    #[arg(long, value_name = "DIR")]
    pub(crate) target_dir: Option<PathBuf>,
    // `None`: [`DEFAULT_TIMEOUT`].
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = duration,
        help = "stop the test run after DURATION (`90s`, `20m`, `2h`; default 30m):\n\
                tests not finished by then fail as hung"
    )]
    pub(crate) timeout: Option<Duration>,
    /// for `cargo test` (or `cargo nextest run`); a second `--` and what follows go to the test binaries
    // Up to a second `--` once parsed: `test_binary` gets the rest.
    #[arg(last = true, value_name = "ARGS")]
    pub(crate) runner: Vec<String>,
    #[arg(skip)]
    pub(crate) test_binary: Vec<String>,
    /// print this help
    #[arg(short, long, action = ArgAction::Help)]
    help: Option<bool>,
}

/// The subcommands.
#[derive(Debug, PartialEq, Eq, Subcommand)]
pub(crate) enum Command {
    Adopt(adopt::Args),
}

/// Why the command line starts nothing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// `--help`: the text to print; the exit code is 0.
    Help(String),
    /// A mistake, said with what to do instead; the exit code is 2.
    Invalid(String),
}

/// Parses the arguments after the program's name. Run as `cargo taskleak`,
/// cargo passes `taskleak` first: it is skipped, so that `cargo-taskleak …`
/// works as well.
pub(crate) fn parse<T: Into<OsString>>(args: impl IntoIterator<Item = T>) -> Result<Args, Stop> {
    let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    if args.first().is_some_and(|arg| arg == "taskleak") {
        args.remove(0);
    }
    let in_adopt = args.first().is_some_and(|arg| arg == "adopt");
    let program = std::iter::once(OsString::from("cargo-taskleak"));
    let mut parsed = Args::try_parse_from(program.chain(args)).map_err(|error| explain(&error, in_adopt))?;
    if let Some(at) = parsed.runner.iter().position(|arg| arg == "--") {
        parsed.test_binary = parsed.runner.split_off(at + 1);
        parsed.runner.pop();
    }
    refuse_hiding_output(&parsed).map_err(Stop::Invalid)?;
    if parsed.baseline.is_some() && parsed.baseline == parsed.write_baseline {
        return Err(Stop::Invalid(
            "`--baseline` and `--write-baseline` name the same file: give one, or two files".to_owned(),
        ));
    }
    Ok(parsed)
}

/// clap's error in this tool's words where one is common (with clap's
/// suggestion), as clap writes it otherwise.
fn explain(error: &clap::Error, in_adopt: bool) -> Stop {
    let context = |kind| match error.get(kind) {
        Some(ContextValue::String(text)) => Some(text.as_str()),
        _ => None,
    };
    let invalid_arg = context(ContextKind::InvalidArg).unwrap_or_default();
    // `--json <FILE>`: the option's name, and its value's.
    let (flag, value_name) = match invalid_arg.split_once(' ') {
        Some((flag, value_name)) => (flag, value_name.trim_matches(['<', '>'])),
        None => (invalid_arg, "VALUE"),
    };
    let similar = context(ContextKind::SuggestedArg).or_else(|| match error.get(ContextKind::SuggestedSubcommand) {
        Some(ContextValue::Strings(names)) => names.first().map(String::as_str),
        _ => None,
    });
    let message = match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            return Stop::Help(error.render().to_string());
        }
        ErrorKind::UnknownArgument | ErrorKind::InvalidSubcommand if in_adopt => adopt::args::unknown(invalid_arg),
        ErrorKind::UnknownArgument | ErrorKind::InvalidSubcommand => format!(
            "unknown argument `{invalid_arg}`; arguments for the test runner go after `--` \
             (see `cargo taskleak --help`)"
        ),
        ErrorKind::InvalidValue if context(ContextKind::InvalidValue).is_none_or(str::is_empty) => {
            let what = match value_name {
                "FILE" => "a file",
                "DIR" => "a directory",
                "DURATION" => "a duration",
                _ => "a value",
            };
            format!("`{flag}` needs {what}: `{flag} {value_name}`")
        }
        ErrorKind::ValueValidation => {
            let value = context(ContextKind::InvalidValue).unwrap_or_default();
            match std::error::Error::source(error) {
                Some(why) => format!("`{flag} {value}`: {why}"),
                None => clap_words(error),
            }
        }
        _ => clap_words(error),
    };
    Stop::Invalid(match similar {
        Some(similar) => format!("{message}; a similar one exists: `{similar}`"),
        None => message,
    })
}

/// clap's own message, without the `error: ` that `main` says its own way.
fn clap_words(error: &clap::Error) -> String {
    let text = error.render().to_string();
    let text = text.trim_end();
    text.strip_prefix("error: ").unwrap_or(text).to_owned()
}

/// `90s`, `20m`, `2h`, `1500ms`; a bare number is seconds.
fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || "give a duration such as `90s`, `20m` or `2h`".to_owned();
    let number: u64 = number.parse().map_err(|_| bad())?;
    let duration = match unit {
        "" | "s" => Duration::from_secs(number),
        "ms" => Duration::from_millis(number),
        "m" | "min" => Duration::from_secs(number.saturating_mul(60)),
        "h" => Duration::from_secs(number.saturating_mul(3600)),
        _ => return Err(bad()),
    };
    if duration.is_zero() {
        return Err("the bound must be longer than zero".to_owned());
    }
    Ok(duration)
}

/// Refuses arguments that would hide from the gate which tests ran: it
/// follows the run through libtest's `test NAME ... ok` lines and
/// nextest's `PASS`/`FAIL` lines, which these silence or reformat. A run
/// that went on would count no tests and call any failure unexplained.
fn refuse_hiding_output(args: &Args) -> Result<(), String> {
    let refuse = |what: &str, fix: &str| {
        Err(format!(
            "`{what}` hides the lines `cargo taskleak` reads to know which tests ran and how each ended; \
             {fix} (the summary is short already, and the tests' whole output is in the log file)"
        ))
    };
    for arg in &args.runner {
        if arg == "-q" || arg == "--quiet" {
            return refuse(arg, "drop it");
        }
    }
    if args.nextest {
        let mut runner = args.runner.iter();
        while let Some(arg) = runner.next() {
            let level = match arg.strip_prefix("--status-level") {
                Some("") => runner.next().map(String::as_str),
                Some(inline) => inline.strip_prefix('='),
                None => None,
            };
            if let Some(level) = level.filter(|level| !matches!(*level, "pass" | "skip" | "all")) {
                return refuse(
                    &format!("--status-level {level}"),
                    "use `pass` (nextest's default) or `all`",
                );
            }
        }
    }
    let mut binary = args.test_binary.iter();
    while let Some(arg) = binary.next() {
        if arg == "-q" || arg == "--quiet" {
            return refuse(arg, "drop it");
        }
        let format = match arg.strip_prefix("--format") {
            Some("") => binary.next().map(String::as_str),
            Some(inline) => inline.strip_prefix('='),
            None => None,
        };
        if let Some(format) = format.filter(|format| *format != "pretty") {
            return refuse(&format!("--format {format}"), "drop it, or use `--format pretty`");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(args: &[&str]) -> Result<Args, String> {
        parse(args).map_err(|stop| match stop {
            Stop::Invalid(error) => error,
            Stop::Help(help) => panic!("help, not a mistake: {help}"),
        })
    }

    #[test]
    fn flags_files_and_runner_arguments() {
        let args = parse_all(&[
            "taskleak",
            "--nextest",
            "--json=out.json",
            "--junit",
            "out.xml",
            "--",
            "-p",
            "alpha",
            "--",
            "--test-threads=1",
        ])
        .expect("valid");
        assert!(args.nextest);
        assert_eq!(args.json, Some(PathBuf::from("out.json")));
        assert_eq!(args.junit, Some(PathBuf::from("out.xml")));
        assert_eq!(args.runner, ["-p", "alpha"]);
        assert_eq!(args.test_binary, ["--test-threads=1"]);
    }

    #[test]
    fn mistakes_say_what_to_do() {
        let unknown = parse_all(&["--jsn", "x"]).expect_err("unknown");
        assert!(unknown.contains("unknown argument `--jsn`"), "{unknown}");
        let missing = parse_all(&["--json"]).expect_err("no file");
        assert!(missing.contains("`--json FILE`"), "{missing}");
        let same = parse_all(&["--baseline", "b.json", "--write-baseline", "b.json"]).expect_err("same");
        assert!(same.contains("same file"), "{same}");
        let bad = parse_all(&["--timeout", "soon"]).expect_err("not a duration");
        assert!(bad.contains("such as `90s`"), "{bad}");
    }

    #[test]
    fn help_is_asked_for_not_a_mistake() {
        for (args, says) in [
            (&["taskleak", "--help"][..], "Exit codes: 0 no leaks"),
            (&["-h"], "cargo taskleak -- -p my-crate -- --test-threads=2"),
            (&["taskleak", "adopt", "--help"], "Running it again changes nothing."),
        ] {
            match parse(args) {
                Err(Stop::Help(help)) => {
                    assert!(help.contains("Usage: cargo taskleak"), "{args:?}: {help}");
                    assert!(help.contains(says), "{args:?}: {help}");
                }
                other => panic!("{args:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn timeouts_read_as_durations() {
        let timeout = |text: &str| parse_all(&["--timeout", text]).map(|args| args.timeout);
        assert_eq!(timeout("90s"), Ok(Some(Duration::from_secs(90))));
        assert_eq!(timeout("20m"), Ok(Some(Duration::from_secs(1200))));
        assert_eq!(timeout("2h"), Ok(Some(Duration::from_secs(7200))));
        assert_eq!(timeout("45"), Ok(Some(Duration::from_secs(45))));
        assert_eq!(timeout("1500ms"), Ok(Some(Duration::from_millis(1500))));
        assert!(timeout("0s").is_err());
        assert_eq!(parse_all(&[]).map(|args| args.timeout), Ok(None));
    }

    #[test]
    fn output_formats_that_hide_the_tests_are_refused_with_the_fix() {
        for args in [
            &["--", "-q"][..],
            &["--", "-p", "alpha", "--", "--quiet"],
            &["--", "--", "--format", "terse"],
            &["--", "--", "--format=json", "-Zunstable-options"],
            &["--nextest", "--", "--status-level", "fail"],
            &["--nextest", "--", "--status-level=none"],
        ] {
            let error = parse_all(args).expect_err("refused");
            assert!(error.contains("hides the lines"), "{args:?}: {error}");
        }
        for args in [
            &["--", "--", "--format", "pretty"][..],
            &["--", "--", "--test-threads=1"],
            &["--nextest", "--", "--status-level", "all"],
        ] {
            assert!(parse_all(args).is_ok(), "{args:?}");
        }
    }
}

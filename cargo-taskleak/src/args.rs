//! The command line: `cargo taskleak [OPTIONS] [-- RUNNER ARGS…]`.

use std::path::PathBuf;
use std::time::Duration;

/// How long the test run (after the build) may take by default: generous
/// enough for large suites, short enough that a hung test ends a CI job
/// with a report instead of at the CI system's own limit, without one.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

pub(crate) const USAGE: &str = "\
Run the tests with taskleak's leak checks on, and report every leak in one summary.

Usage: cargo taskleak [OPTIONS] [-- <ARGS>...]
       cargo taskleak adopt [PATH] [--dry-run] [--taskleak-path <DIR>]   mark every test of a crate (see adopt --help)

Options:
      --nextest                run the tests with `cargo nextest run` instead of `cargo test`
      --no-rerun               do not re-run alone the tests whose thread check was inconclusive
      --json <FILE>            write the run's leaks as JSON (schema: docs/cargo-taskleak.md)
      --junit <FILE>           write a JUnit XML report: one failing test case per leaking test
      --baseline <FILE>        fail only on leaks not recorded in FILE; list those gone from it
      --write-baseline <FILE>  record the leaks found in FILE, for --baseline
      --target-dir <DIR>       where to build (default: `taskleak` in the workspace's target directory)
      --timeout <DURATION>     stop the test run after DURATION (`90s`, `20m`, `2h`; default 30m):
                               tests not finished by then fail as hung
  -h, --help                   print this help

Arguments after `--` go to `cargo test` (or `cargo nextest run`), including a second `--` and
what follows it, for the test binaries: `cargo taskleak -- -p my-crate -- --test-threads=2`.

Exit codes: 0 no leaks (or only baselined ones), 1 new leaks, 2 the run itself failed
(bad arguments, a build error, or tests failing for reasons other than leaks).";

/// What the user asked for.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Args {
    pub(crate) nextest: bool,
    /// Leaves inconclusive checks as they are, without re-running them.
    pub(crate) no_rerun: bool,
    pub(crate) json: Option<PathBuf>,
    pub(crate) junit: Option<PathBuf>,
    pub(crate) baseline: Option<PathBuf>,
    pub(crate) write_baseline: Option<PathBuf>,
    pub(crate) target_dir: Option<PathBuf>,
    /// The bound on the test run; [`DEFAULT_TIMEOUT`] unless given.
    pub(crate) timeout: Option<Duration>,
    /// For `cargo test` / `cargo nextest run`, up to a second `--`.
    pub(crate) runner: Vec<String>,
    /// After the second `--`: for the test binaries.
    pub(crate) test_binary: Vec<String>,
    pub(crate) help: bool,
}

/// Parses the arguments after the program's name. Run as `cargo taskleak`,
/// cargo passes `taskleak` first: it is skipped.
pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut args = args.into_iter().peekable();
    if args.peek().map(String::as_str) == Some("taskleak") {
        args.next();
    }
    let mut parsed = Args::default();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<PathBuf, String> {
            match inline.clone().or_else(|| args.next()) {
                Some(value) if !value.is_empty() => Ok(PathBuf::from(value)),
                _ if name == "--timeout" => Err(format!("`{name}` needs a duration: `{name} 20m`")),
                _ => Err(format!("`{name}` needs a file: `{name} FILE`")),
            }
        };
        match flag.as_str() {
            "--nextest" => parsed.nextest = true,
            "--no-rerun" => parsed.no_rerun = true,
            "--json" => parsed.json = Some(value("--json")?),
            "--junit" => parsed.junit = Some(value("--junit")?),
            "--baseline" => parsed.baseline = Some(value("--baseline")?),
            "--write-baseline" => parsed.write_baseline = Some(value("--write-baseline")?),
            "--target-dir" => parsed.target_dir = Some(value("--target-dir")?),
            "--timeout" => {
                let text = value("--timeout")?;
                parsed.timeout = Some(duration(&text.to_string_lossy())?);
            }
            "-h" | "--help" => parsed.help = true,
            "--" => {
                let rest: Vec<String> = args.by_ref().collect();
                match rest.iter().position(|arg| arg == "--") {
                    Some(at) => {
                        parsed.runner = rest[..at].to_vec();
                        parsed.test_binary = rest[at + 1..].to_vec();
                    }
                    None => parsed.runner = rest,
                }
            }
            other => {
                return Err(format!(
                    "unknown argument `{other}`; arguments for the test runner go after `--` \
                     (see `cargo taskleak --help`)"
                ));
            }
        }
    }
    refuse_hiding_output(&parsed)?;
    if parsed.baseline.is_some() && parsed.baseline == parsed.write_baseline {
        return Err("`--baseline` and `--write-baseline` name the same file: give one, or two files".to_owned());
    }
    Ok(parsed)
}

/// `90s`, `20m`, `2h`, `1500ms`; a bare number is seconds.
fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || format!("`--timeout {text}`: give a duration such as `90s`, `20m` or `2h`");
    let number: u64 = number.parse().map_err(|_| bad())?;
    let duration = match unit {
        "" | "s" => Duration::from_secs(number),
        "ms" => Duration::from_millis(number),
        "m" | "min" => Duration::from_secs(number.saturating_mul(60)),
        "h" => Duration::from_secs(number.saturating_mul(3600)),
        _ => return Err(bad()),
    };
    if duration.is_zero() {
        return Err(format!("`--timeout {text}`: the bound must be longer than zero"));
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
        parse(args.iter().map(|arg| (*arg).to_owned()))
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

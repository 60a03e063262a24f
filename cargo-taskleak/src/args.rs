//! The command line: `cargo taskleak [OPTIONS] [-- RUNNER ARGS…]`.

use std::path::PathBuf;

pub(crate) const USAGE: &str = "\
Run the tests with taskleak's leak checks on, and report every leak in one summary.

Usage: cargo taskleak [OPTIONS] [-- <ARGS>...]
       cargo taskleak adopt [PATH] [--dry-run] [--taskleak-path <DIR>]   mark every test of a crate (see adopt --help)

Options:
      --nextest                run the tests with `cargo nextest run` instead of `cargo test`
      --json <FILE>            write the run's leaks as JSON (schema: docs/cargo-taskleak.md)
      --junit <FILE>           write a JUnit XML report: one failing test case per leaking test
      --baseline <FILE>        fail only on leaks not recorded in FILE; list those gone from it
      --write-baseline <FILE>  record the leaks found in FILE, for --baseline
      --target-dir <DIR>       where to build (default: `taskleak` in the workspace's target directory)
  -h, --help                   print this help

Arguments after `--` go to `cargo test` (or `cargo nextest run`), including a second `--` and
what follows it, for the test binaries: `cargo taskleak -- -p my-crate -- --test-threads=2`.

Exit codes: 0 no leaks (or only baselined ones), 1 new leaks, 2 the run itself failed
(bad arguments, a build error, or tests failing for reasons other than leaks).";

/// What the user asked for.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Args {
    pub(crate) nextest: bool,
    pub(crate) json: Option<PathBuf>,
    pub(crate) junit: Option<PathBuf>,
    pub(crate) baseline: Option<PathBuf>,
    pub(crate) write_baseline: Option<PathBuf>,
    pub(crate) target_dir: Option<PathBuf>,
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
                _ => Err(format!("`{name}` needs a file: `{name} FILE`")),
            }
        };
        match flag.as_str() {
            "--nextest" => parsed.nextest = true,
            "--json" => parsed.json = Some(value("--json")?),
            "--junit" => parsed.junit = Some(value("--junit")?),
            "--baseline" => parsed.baseline = Some(value("--baseline")?),
            "--write-baseline" => parsed.write_baseline = Some(value("--write-baseline")?),
            "--target-dir" => parsed.target_dir = Some(value("--target-dir")?),
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
    if parsed.baseline.is_some() && parsed.baseline == parsed.write_baseline {
        return Err("`--baseline` and `--write-baseline` name the same file: give one, or two files".to_owned());
    }
    Ok(parsed)
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
    }
}

//! The subcommand's command line: `cargo taskleak adopt [PATH] [OPTIONS]`.

use std::path::PathBuf;

pub(crate) const USAGE: &str = "\
Mark every test of a crate with taskleak's check, and add taskleak to its dev-dependencies.

Usage: cargo taskleak adopt [PATH] [OPTIONS]

Puts `#[taskleak::verify_no_leaks]` above each `#[test]` and `#[tokio::test]` in tests/ (and
`#[cfg_attr(test, taskleak::verify_no_leaks)]` in src/), changing nothing else in the files;
tests it cannot mark are listed with the reason. Running it again changes nothing.

Arguments:
  [PATH]                   the crate's directory, with its Cargo.toml (default: .)

Options:
      --dry-run            print what would change, and change nothing
      --taskleak-path <DIR>  depend on the taskleak checkout at DIR (`{ path = … }`) instead of
                           the version matching this cargo-taskleak
  -h, --help               print this help";

/// What the user asked for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Args {
    pub(crate) dir: PathBuf,
    pub(crate) dry_run: bool,
    pub(crate) taskleak_path: Option<PathBuf>,
    pub(crate) help: bool,
}

/// Parses the arguments after `adopt`.
pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut args = args.into_iter();
    let mut dir = None;
    let mut parsed = Args {
        dir: PathBuf::from("."),
        dry_run: false,
        taskleak_path: None,
        help: false,
    };
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "--dry-run" => parsed.dry_run = true,
            "--taskleak-path" => match inline.or_else(|| args.next()) {
                Some(value) if !value.is_empty() => parsed.taskleak_path = Some(PathBuf::from(value)),
                _ => return Err("`--taskleak-path` needs a directory: `--taskleak-path DIR`".to_owned()),
            },
            "-h" | "--help" => parsed.help = true,
            other if other.starts_with('-') => {
                return Err(format!(
                    "unknown option `{other}` for `cargo taskleak adopt`; see `cargo taskleak adopt --help`"
                ));
            }
            _ if dir.is_some() => {
                return Err(format!(
                    "`cargo taskleak adopt` takes one crate directory, and got a second: `{arg}`; run it once per crate"
                ));
            }
            _ => dir = Some(PathBuf::from(arg)),
        }
    }
    if let Some(dir) = dir {
        parsed.dir = dir;
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
    fn a_directory_and_options() {
        let args = parse_all(&["crates/x", "--dry-run", "--taskleak-path=/src/taskleak"]).expect("valid");
        assert_eq!(args.dir, PathBuf::from("crates/x"));
        assert!(args.dry_run);
        assert_eq!(args.taskleak_path, Some(PathBuf::from("/src/taskleak")));
        assert_eq!(parse_all(&[]).expect("valid").dir, PathBuf::from("."));
    }

    #[test]
    fn mistakes_say_what_to_do() {
        let unknown = parse_all(&["--dryrun"]).expect_err("unknown");
        assert!(unknown.contains("unknown option `--dryrun`"), "{unknown}");
        let missing = parse_all(&["--taskleak-path"]).expect_err("no dir");
        assert!(missing.contains("`--taskleak-path DIR`"), "{missing}");
        let two = parse_all(&["a", "b"]).expect_err("two dirs");
        assert!(two.contains("one crate directory"), "{two}");
    }
}

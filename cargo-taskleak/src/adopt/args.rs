//! The subcommand's command line: `cargo taskleak adopt [PATH] [OPTIONS]`,
//! defined for clap (parsed with the rest in `crate::args`).

use std::path::PathBuf;

use clap::ArgAction;

/// What `--help` says after the options.
const AFTER_HELP: &str = "\
Puts `#[taskleak::verify_no_leaks]` above each `#[test]` and `#[tokio::test]` in tests/ (and
`#[cfg_attr(test, taskleak::verify_no_leaks)]` in src/), changing nothing else in the files;
tests it cannot mark are listed with the reason. Running it again changes nothing.";

/// What the user asked for. The doc comments of the fields are `--help`'s.
#[derive(Debug, PartialEq, Eq, clap::Args)]
#[command(
    about = "Mark every test of a crate with taskleak's check, and add taskleak to its dev-dependencies.",
    long_about = None,
    after_help = AFTER_HELP,
    disable_help_flag = true
)]
pub(crate) struct Args {
    /// the crate's directory, with its Cargo.toml
    #[arg(value_name = "PATH", default_value = ".")]
    pub(crate) dir: PathBuf,
    /// print what would change, and change nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
    #[arg(
        long,
        value_name = "DIR",
        help = "depend on the taskleak checkout at DIR (`{ path = … }`) instead of\n\
                the version matching this cargo-taskleak"
    )]
    pub(crate) taskleak_path: Option<PathBuf>,
    /// print this help
    #[arg(short, long, action = ArgAction::Help)]
    help: Option<bool>,
}

/// The message for an argument `adopt` does not take: an option it does
/// not have, or a second directory.
pub(crate) fn unknown(arg: &str) -> String {
    if arg.starts_with('-') {
        format!("unknown option `{arg}` for `cargo taskleak adopt`; see `cargo taskleak adopt --help`")
    } else {
        format!("`cargo taskleak adopt` takes one crate directory, and got a second: `{arg}`; run it once per crate")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Command, Stop, parse};

    fn parse_all(args: &[&str]) -> Result<Args, String> {
        match parse(std::iter::once("adopt").chain(args.iter().copied())) {
            Ok(parsed) => match parsed.command {
                Some(Command::Adopt(args)) => Ok(args),
                None => panic!("not `adopt`: {parsed:?}"),
            },
            Err(Stop::Invalid(error)) => Err(error),
            Err(Stop::Help(help)) => panic!("help, not a mistake: {help}"),
        }
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

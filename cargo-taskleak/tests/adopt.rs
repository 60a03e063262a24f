//! `cargo taskleak adopt` end to end, on a copy of a crate that does not use
//! taskleak yet (`tests/fixtures/adopt-crate`): the dry run, the edits, a
//! second run that changes nothing, and the marked crate's tests passing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the repository")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("read the fixture") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy a file");
        }
    }
}

fn adopt(dir: &Path, extra: &[&str]) -> (i32, String) {
    let Output { status, stdout, stderr } = Command::new(env!("CARGO_BIN_EXE_cargo-taskleak"))
        .args(["taskleak", "adopt"])
        .args(extra)
        .args(["--taskleak-path", &repository().display().to_string()])
        .current_dir(dir)
        .output()
        .expect("cargo-taskleak runs");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    (status.code().unwrap_or(-1), output)
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(path).expect("a fixture file")
}

#[test]
fn a_crate_is_marked_once_and_its_tests_pass_checked() {
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("adopt");
    let dir = scratch.join("crate");
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&repository().join("tests/fixtures/adopt-crate"), &dir);
    let untouched = read(dir.join("tests/basic.rs"));

    let (code, dry) = adopt(&dir, &["--dry-run"]);
    assert_eq!(code, 0, "{dry}");
    assert!(dry.contains("dry run: nothing was written"), "{dry}");
    assert!(
        dry.contains("tests/basic.rs:5: + #[taskleak::verify_no_leaks]   (tokio::test, `joins_its_tasks`)"),
        "{dry}"
    );
    assert_eq!(read(dir.join("tests/basic.rs")), untouched, "a dry run wrote");

    let (code, first) = adopt(&dir, &[]);
    assert_eq!(code, 0, "{first}");
    for line in [
        "files changed: 4",
        "tests marked: 8 (5 test, 3 tokio::test)",
        "tests skipped: 1",
        "tests/basic.rs:28  macro_rules! generated: tests a `macro_rules!` generates",
        "files that no target compiles, left alone: 1",
        "  tests/ui/not_compiled.rs",
    ] {
        assert!(first.contains(line), "missing {line:?} in:\n{first}");
    }
    let manifest = read(dir.join("Cargo.toml"));
    assert!(manifest.contains("This comment must survive."), "{manifest}");
    assert!(manifest.contains("# kept as written"), "{manifest}");
    assert!(
        manifest.contains(&format!("taskleak = {{ path = \"{}\" }}", repository().display())),
        "{manifest}"
    );
    let basic = read(dir.join("tests/basic.rs"));
    assert!(
        basic.contains(
            "    #[ignore = \"slow\"]\n    #[taskleak::verify_no_leaks]\n    #[tokio::test]\n    async fn ignored"
        ),
        "{basic}"
    );
    let lib = read(dir.join("src/lib.rs"));
    assert!(
        lib.contains("    #[cfg_attr(test, taskleak::verify_no_leaks)]\n    #[test]\n    fn adds()"),
        "{lib}"
    );
    assert!(read(dir.join("src/inner.rs")).contains("#[cfg_attr(test, taskleak::verify_no_leaks)]\n#[test]"));
    assert!(read(dir.join("tests/common/mod.rs")).contains("#[taskleak::verify_no_leaks]\n#[test]"));
    assert!(!read(dir.join("tests/ui/not_compiled.rs")).contains("taskleak::"));

    let (code, second) = adopt(&dir, &[]);
    assert_eq!(code, 0, "{second}");
    assert!(second.contains("files changed: 0"), "{second}");
    assert!(second.contains("tests marked: 0"), "{second}");
    assert!(second.contains("tests already checked: 8"), "{second}");
    assert!(second.contains("taskleak is a dev-dependency already"), "{second}");
    assert_eq!(read(dir.join("tests/basic.rs")), basic);

    // The marked crate builds, and its tests pass with their checks on.
    let mut test = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    test.args(["test", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", scratch.join("target"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("TASKLEAK")) {
        test.env_remove(name);
    }
    let Output { status, stdout, stderr } = test.output().expect("cargo runs");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    assert!(status.success(), "{output}");
}

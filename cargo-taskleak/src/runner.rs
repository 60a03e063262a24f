//! Builds and runs the tests with full leak reports on — `--cfg
//! tokio_unstable`, leak records, a target directory of their own — and
//! follows the run's output, with progress on stderr.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::outcomes::{Outcomes, TestId};

/// The cfg that turns on spawn sites and stacks.
const CFG: &str = "--cfg tokio_unstable";
/// Progress is written at most this often, and when a test fails.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// How to run the tests.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) cargo: String,
    pub(crate) nextest: bool,
    pub(crate) runner_args: Vec<String>,
    pub(crate) test_binary_args: Vec<String>,
    /// The build's own target directory.
    pub(crate) target_dir: PathBuf,
    /// Where the tests write their leak records; emptied first.
    pub(crate) record_dir: PathBuf,
    /// Everything the run printed.
    pub(crate) log: PathBuf,
}

impl Plan {
    /// A plan building in `target_dir` (default: `taskleak` inside the
    /// workspace's target directory, from `cargo metadata`).
    ///
    /// # Errors
    ///
    /// When `cargo metadata` fails (not in a cargo project, say).
    pub(crate) fn new(
        nextest: bool,
        runner_args: Vec<String>,
        test_binary_args: Vec<String>,
        target_dir: Option<PathBuf>,
    ) -> Result<Self, String> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let target_dir = match target_dir {
            Some(dir) => dir,
            None => workspace_target_dir(&cargo, &runner_args)?.join("taskleak"),
        };
        Ok(Plan {
            cargo,
            nextest,
            runner_args,
            test_binary_args,
            record_dir: target_dir.join("taskleak-records"),
            log: target_dir.join("taskleak-output.log"),
            target_dir,
        })
    }

    fn command(&self, build_only: bool) -> Command {
        let mut command = Command::new(&self.cargo);
        // nextest is an external subcommand: cargo's global `--config`
        // before it does not reach the builds nextest starts; nextest
        // forwards its own `--config`, after `nextest run`.
        if self.nextest {
            command.args(["nextest", "run"]);
        }
        match std::env::var("RUSTFLAGS") {
            // The variable wins over every config file: add to it.
            Ok(flags) => {
                let flags = if flags.contains("tokio_unstable") {
                    flags
                } else {
                    format!("{flags} {CFG}").trim().to_owned()
                };
                command.env("RUSTFLAGS", flags);
            }
            // A `--config` value is merged with the project's own rustflags.
            Err(_) => {
                command.args(["--config", "build.rustflags=[\"--cfg\",\"tokio_unstable\"]"]);
            }
        }
        if !self.nextest {
            command.arg("test");
        }
        if build_only {
            command.arg("--no-run");
        } else {
            command.arg("--no-fail-fast");
        }
        command.args(&self.runner_args);
        if !build_only && !self.test_binary_args.is_empty() {
            command.arg("--").args(&self.test_binary_args);
        }
        command
            .env("CARGO_TARGET_DIR", &self.target_dir)
            .env("TASKLEAK_RECORD_DIR", &self.record_dir)
            // Every leak fails its test, whatever the environment says.
            .env("TASKLEAK_MODE", "fail");
        command
    }

    /// Builds the tests, showing cargo's output as it comes.
    ///
    /// # Errors
    ///
    /// When the build fails, or cargo cannot be run.
    pub(crate) fn build(&self) -> Result<(), String> {
        let mut command = self.command(true);
        command.stdout(Stdio::inherit()).stderr(Stdio::inherit());
        let status = command
            .status()
            .map_err(|error| format!("cannot run `{}`: {error}", self.cargo))?;
        if status.success() {
            Ok(())
        } else {
            Err("the build failed (see above); no test ran".to_owned())
        }
    }

    /// Runs the tests; returns what they did. Their output goes to the log.
    ///
    /// # Errors
    ///
    /// When the runner cannot be started or the log written.
    ///
    /// A run still going after `timeout` is stopped: the runner's whole
    /// process group is sent SIGTERM (nextest stops its tests on it), then
    /// SIGKILL; the tests it had not finished are `Outcomes::hung`, and
    /// `stopped` in the result says it happened.
    pub(crate) fn run(&self, timeout: Duration, mut leaks_so_far: impl FnMut() -> usize) -> Result<Ran, String> {
        match std::fs::remove_dir_all(&self.record_dir) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(format!("cannot empty {}: {error}", self.record_dir.display())),
        }
        std::fs::create_dir_all(&self.record_dir)
            .map_err(|error| format!("cannot create {}: {error}", self.record_dir.display()))?;
        let mut log = std::fs::File::create(&self.log)
            .map_err(|error| format!("cannot create {}: {error}", self.log.display()))?;
        // One pipe for both streams: cargo's `Running …` lines (stderr)
        // stay in order with the tests' lines (stdout).
        let (reader, writer) = std::io::pipe().map_err(|error| format!("cannot make a pipe: {error}"))?;
        let writer_clone = writer
            .try_clone()
            .map_err(|error| format!("cannot make a pipe: {error}"))?;
        let mut command = self.command(false);
        command
            .env("CARGO_TERM_COLOR", "never")
            .env("NEXTEST_HIDE_PROGRESS_BAR", "1")
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(writer_clone);
        // A group of its own: a stop reaches cargo and the test processes
        // it started, and never this process.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .spawn()
            .map_err(|error| format!("cannot run `{}`: {error}", self.cargo))?;
        // Our copies of the write end go with `command`: EOF comes when the
        // runner and every test process are done.
        drop(command);
        // Lines come through a channel, so that waiting for the next one
        // can end at the deadline.
        let (lines, next_line) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).split(b'\n') {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + timeout;
        let mut draining_until: Option<Instant> = None;
        let mut outcomes = Outcomes::default();
        // Distinct tests: nextest prints a failed test's `FAIL` line again
        // in its final summary, and the progress must count what the
        // summary counts.
        let mut failed = std::collections::BTreeSet::new();
        let mut last_progress = Instant::now();
        let stderr = std::io::stderr();
        loop {
            let wait = draining_until
                .unwrap_or(deadline)
                .saturating_duration_since(Instant::now());
            let line = match next_line.recv_timeout(wait) {
                Ok(line) => line.map_err(|error| format!("cannot read the test output: {error}"))?,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                // Stopped already: what still holds the output open is not
                // ours to wait for.
                Err(mpsc::RecvTimeoutError::Timeout) if draining_until.is_some() => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = writeln!(
                        stderr.lock(),
                        "taskleak: the test run is still going after {} (--timeout): stopping it",
                        human(timeout)
                    );
                    outcomes.hung = self.unfinished(&outcomes);
                    stop(&mut child);
                    draining_until = Some(Instant::now() + DRAIN_AFTER_STOP);
                    continue;
                }
            };
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches('\r');
            writeln!(log, "{line}").map_err(|error| format!("cannot write {}: {error}", self.log.display()))?;
            let Some((test, passed)) = outcomes.take_line(line) else {
                continue;
            };
            if draining_until.is_some() {
                // Ended by the stop (nextest's `SIGTERM` lines): hung.
                if !passed && outcomes.tests.remove(&test).is_some() && !outcomes.hung.contains(&test) {
                    outcomes.hung.push(test);
                }
                continue;
            }
            let newly_failed = !passed && failed.insert(test.clone());
            if newly_failed || last_progress.elapsed() >= PROGRESS_EVERY {
                last_progress = Instant::now();
                let failure = if !newly_failed {
                    String::new()
                } else {
                    format!("; failed: {}: {}", test.binary, test.name)
                };
                let _ = writeln!(
                    stderr.lock(),
                    "taskleak: {} tests run, {} failed, {} leaks so far{failure}",
                    outcomes.tests.len(),
                    failed.len(),
                    leaks_so_far()
                );
            }
        }
        outcomes.finish();
        // Lines read after the deadline may show some finished after all.
        let hung = std::mem::take(&mut outcomes.hung);
        outcomes.hung = hung
            .into_iter()
            .filter(|test| !outcomes.tests.contains_key(test))
            .collect();
        let stopped = draining_until.is_some();
        if stopped {
            // Cargo may not have exited when a process it started holds on.
            let _ = child.kill();
        }
        let _ = child.wait();
        Ok(Ran {
            outcomes,
            stopped_after: stopped.then(|| human(timeout)),
        })
    }

    /// The tests of the binary libtest was running that have not finished:
    /// running, or not started yet. Found by listing the binary's tests
    /// (with the arguments the run gave it, so that its filters apply);
    /// under nextest, its own lines name them as it stops them.
    fn unfinished(&self, outcomes: &Outcomes) -> Vec<TestId> {
        let (Some(binary), Some(executable), false) = (
            outcomes.current_binary(),
            outcomes.current_executable.as_deref(),
            self.nextest,
        ) else {
            return Vec::new();
        };
        let mut listing = Command::new(executable);
        listing
            .args(&self.test_binary_args)
            .arg("--list")
            .stdin(Stdio::null())
            .stderr(Stdio::null());
        let Ok(listed) = stdout_within(&mut listing, LISTING_BOUND) else {
            return Vec::new();
        };
        String::from_utf8_lossy(&listed)
            .lines()
            .filter_map(|line| line.strip_suffix(": test"))
            .filter(|name| !outcomes.finished(binary, name))
            .map(|name| TestId {
                binary: binary.to_owned(),
                name: name.to_owned(),
            })
            .collect()
    }
}

/// What a run did.
#[derive(Debug)]
pub(crate) struct Ran {
    pub(crate) outcomes: Outcomes,
    /// The time bound, written for humans (`30m`), when it stopped the run.
    pub(crate) stopped_after: Option<String>,
}

/// How long a stopped runner has to end its tests (nextest stops them on
/// SIGTERM) before it and its group are killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long the output of a stopped run is still read.
const DRAIN_AFTER_STOP: Duration = Duration::from_secs(15);

/// Stops the runner and its process group: SIGTERM, then SIGKILL after
/// [`STOP_GRACE`]. `kill(1)` sends them: no unsafe code for a signal.
fn stop(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        let group = format!("-{}", child.id());
        let signal = |name: &str| {
            let _ = Command::new("kill")
                .args([name, "--", &group])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        signal("-TERM");
        let until = Instant::now() + STOP_GRACE;
        while Instant::now() < until && !matches!(child.try_wait(), Ok(Some(_))) {
            std::thread::sleep(Duration::from_millis(100));
        }
        signal("-KILL");
    }
    let _ = child.kill();
}

/// How long listing a test binary's tests may take.
const LISTING_BOUND: Duration = Duration::from_secs(30);

/// Waits for `child` to end within `bound`; one still going then is
/// killed, and the `Err` says so. Every wait of the gate has a bound.
pub(crate) fn wait_within(
    child: &mut std::process::Child,
    bound: Duration,
) -> Result<std::process::ExitStatus, String> {
    let deadline = Instant::now() + bound;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("still going after {}: stopped", human(bound)));
            }
            Err(error) => return Err(format!("cannot wait for it: {error}")),
        }
    }
}

/// Runs `command` within `bound` and returns what it wrote on stdout.
/// stdout is read on a thread of its own, so that neither the process nor
/// one it left holding the pipe can make this wait past the bound.
pub(crate) fn stdout_within(command: &mut Command, bound: Duration) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + bound;
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run it: {error}"))?;
    let mut stdout = child.stdout.take().ok_or("its output could not be read")?;
    let (sender, text) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut out);
        let _ = sender.send(out);
    });
    wait_within(&mut child, bound)?;
    text.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .map_err(|_| "its output stayed open after it ended".to_owned())
}

/// `30m`, `90s`, `1500ms`: a duration as `--timeout` takes it.
pub(crate) fn human(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if duration.subsec_millis() != 0 {
        format!("{}ms", duration.as_millis())
    } else if seconds >= 3600 && seconds.is_multiple_of(3600) {
        format!("{}h", seconds / 3600)
    } else if seconds >= 60 && seconds.is_multiple_of(60) {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

/// The workspace's target directory, from `cargo metadata` (it honours
/// `CARGO_TARGET_DIR`, config files and `--manifest-path`).
fn workspace_target_dir(cargo: &str, runner_args: &[String]) -> Result<PathBuf, String> {
    let mut command = Command::new(cargo);
    command.args(["metadata", "--format-version", "1", "--no-deps"]);
    if let Some(at) = runner_args.iter().position(|arg| arg == "--manifest-path") {
        command.args(&runner_args[at..(at + 2).min(runner_args.len())]);
    }
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| format!("cannot run `{cargo} metadata`: {error}"))?;
    if !output.status.success() {
        return Err("`cargo metadata` failed (see above): run cargo taskleak inside a cargo project".to_owned());
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|error| format!("cannot read `cargo metadata`: {error}"))?;
    metadata
        .get("target_directory")
        .and_then(serde_json::Value::as_str)
        .map(PathBuf::from)
        .ok_or_else(|| "`cargo metadata` names no target directory".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_that_ends_in_time_gives_its_output() {
        let mut echo = Command::new("echo");
        echo.arg("listed");
        assert_eq!(
            stdout_within(&mut echo, Duration::from_secs(30)).as_deref(),
            Ok(&b"listed\n"[..])
        );
    }

    #[test]
    fn a_command_still_going_at_the_bound_is_stopped() {
        let mut sleeper = Command::new("sleep");
        sleeper.arg("30");
        let error = stdout_within(&mut sleeper, Duration::from_millis(200)).expect_err("stopped");
        assert!(error.contains("still going after 200ms: stopped"), "{error}");
        let mut child = Command::new("sleep").arg("30").spawn().expect("sleep runs");
        assert!(wait_within(&mut child, Duration::from_millis(100)).is_err());
    }
}

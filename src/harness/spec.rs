//! What generated code hands the harness: the attribute's arguments as
//! literals ([`TestSpec`]), the runtime flavor, and how a test's output
//! tells a failure ([`Outcome`]).

use std::time::Duration;

use crate::config::Options;

/// The runtime flavor of `#[tokio::test(flavor = …)]`.
#[derive(Clone, Copy, Debug)]
pub enum Flavor {
    /// `flavor = "current_thread"`, tokio's default for tests.
    CurrentThread,
    /// `flavor = "multi_thread"`.
    MultiThread,
    /// `flavor = "local"`: a `LocalRuntime`, where `spawn_local` works.
    Local,
}

/// The attribute's arguments, as literals the macro validated.
#[derive(Debug)]
pub struct TestSpec {
    /// `module_path!()` where the test is defined.
    pub module: &'static str,
    /// The test function's name.
    pub name: &'static str,
    /// The runtime flavor.
    pub flavor: Flavor,
    /// `max_retries = N`.
    pub max_retries: Option<u32>,
    /// `max_sleep = "…"`.
    pub max_sleep: Option<Duration>,
    /// `ignore_top_function = "…"`, each.
    pub ignore_top_function: &'static [&'static str],
    /// `ignore_any_function = "…"`, each.
    pub ignore_any_function: &'static [&'static str],
    /// `ignore_spawned_at = "…"`, each.
    pub ignore_spawned_at: &'static [&'static str],
    /// `ignore_thread_name = "…"`, each.
    pub ignore_thread_name: &'static [&'static str],
    /// `ignore_dependency = "…"`, each.
    pub ignore_dependency: &'static [&'static str],
    /// `threads = false` turns thread checks off.
    pub check_threads: bool,
    /// `serial = true`: take turns with other serial thread-checked tests.
    pub serial: bool,
    /// `runtime = "PATH"`: the shared runtime whose tasks of this test count.
    pub shared_runtime: Option<&'static crate::harness::shared::SharedRuntime>,
    /// `env!("CARGO_MANIFEST_DIR")` of the test's crate: where its
    /// `taskleak.toml` is.
    pub manifest_dir: &'static str,
}

impl TestSpec {
    /// The crate's `taskleak.toml`, then the attribute's own options.
    pub(crate) fn options(&self) -> Result<Options, crate::error::Error> {
        let base = crate::config::options_for_crate(self.manifest_dir)?;
        self.options_over(base)
    }

    fn options_over(&self, mut options: Options) -> Result<Options, crate::error::Error> {
        if let Some(retries) = self.max_retries {
            options = options.max_retries(retries);
        }
        if let Some(sleep) = self.max_sleep {
            options = options.max_sleep(sleep);
        }
        for rule in self.ignore_top_function {
            options = options.ignore_top_function(rule)?;
        }
        for rule in self.ignore_any_function {
            options = options.ignore_any_function(rule)?;
        }
        for rule in self.ignore_spawned_at {
            options = options.ignore_spawned_at(rule)?;
        }
        for rule in self.ignore_thread_name {
            options = options.ignore_thread_name(rule)?;
        }
        for name in self.ignore_dependency {
            options = options.ignore_dependency(name)?;
        }
        Ok(options.check_threads(self.check_threads).serial(self.serial))
    }

    /// The test's path as libtest prints it: the module path without the
    /// crate, then the function. A function that `test-case`'s cases call
    /// is named by the case running it: libtest names the test's thread.
    pub(crate) fn test_path(&self) -> String {
        let function = match self.module.split_once("::") {
            Some((_crate, module)) => format!("{module}::{}", self.name),
            None => self.name.to_owned(),
        };
        match std::thread::current().name() {
            Some(case)
                if case
                    .strip_prefix(function.as_str())
                    .is_some_and(|rest| rest.starts_with("::")) =>
            {
                case.to_owned()
            }
            _ => function,
        }
    }
}

/// Whether a test's output is already a failure: `Err` for any `Result`
/// (whatever alias names it), never for anything else. Generated code calls
/// `(&Outcome(&output)).is_failure()`: the inherent method wins for
/// `Result`, the [`NotAResult`] fallback for every other type.
#[derive(Debug)]
pub struct Outcome<'a, T>(pub &'a T);

impl<T, E> Outcome<'_, Result<T, E>> {
    /// `true` for `Err`.
    pub fn is_failure(&self) -> bool {
        self.0.is_err()
    }
}

/// The fallback of [`Outcome::is_failure`] for outputs that are not `Result`.
pub trait NotAResult {
    /// Always `false`.
    fn is_failure(&self) -> bool {
        false
    }
}

impl<T> NotAResult for &Outcome<'_, T> {}

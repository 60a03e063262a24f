//! Settings from environment variables, for CI: turn checks off, make leaks
//! warnings, or raise the retry budget on a slow machine, without editing a
//! single test.

use std::time::Duration;

use crate::config::options::Options;
use crate::error::Error;

/// `TASKLEAK_MODE`: `fail` (the default), `warn` or `off`.
pub(crate) const MODE: &str = "TASKLEAK_MODE";
/// `TASKLEAK_MIN_RETRIES`: a floor for every check's `max_retries`.
pub(crate) const MIN_RETRIES: &str = "TASKLEAK_MIN_RETRIES";
/// `TASKLEAK_MIN_SLEEP_CAP`: a floor for every check's `max_sleep`.
pub(crate) const MIN_SLEEP_CAP: &str = "TASKLEAK_MIN_SLEEP_CAP";

/// What a check does with a leak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Fail the test (the default).
    Fail,
    /// Print the report and let the test pass.
    Warn,
    /// Run the test without any check.
    Off,
}

/// The environment's settings, read once per process.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub(crate) mode: Mode,
    min_retries: Option<u32>,
    min_sleep_cap: Option<Duration>,
}

impl Settings {
    /// Reads the variables; a malformed value is an error naming the
    /// variable, the value and what it accepts.
    pub(crate) fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Settings::from_env`], read when the process's first check starts:
    /// checks run on every test, and the variables are set for a run.
    pub(crate) fn of_process() -> Result<Self, Error> {
        static SETTINGS: std::sync::OnceLock<Result<Settings, Error>> = std::sync::OnceLock::new();
        SETTINGS.get_or_init(Self::from_env).clone()
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let refuse = |variable: &'static str, value: &str, expected: String| Error::Environment {
            variable,
            value: value.to_owned(),
            expected,
        };
        let mode = match lookup(MODE).as_deref().map(str::trim) {
            None | Some("" | "fail") => Mode::Fail,
            Some("warn") => Mode::Warn,
            Some("off") => Mode::Off,
            Some(other) => {
                return Err(refuse(
                    MODE,
                    other,
                    "is not a mode; use `fail`, `warn` or `off`".to_owned(),
                ));
            }
        };
        let min_retries = match lookup(MIN_RETRIES) {
            None => None,
            Some(text) => Some(text.trim().parse::<u32>().map_err(|_| {
                refuse(
                    MIN_RETRIES,
                    &text,
                    format!("is not a whole number; e.g. {MIN_RETRIES}=40"),
                )
            })?),
        };
        let min_sleep_cap = match lookup(MIN_SLEEP_CAP) {
            None => None,
            Some(text) => Some(parse_duration(text.trim()).ok_or_else(|| {
                refuse(
                    MIN_SLEEP_CAP,
                    &text,
                    "is not a duration; write a whole number and `us`, `ms` or `s`, e.g. 200ms".to_owned(),
                )
            })?),
        };
        Ok(Self {
            mode,
            min_retries,
            min_sleep_cap,
        })
    }

    /// Raises `options` to the environment's floors.
    pub(crate) fn apply(&self, mut options: Options) -> Options {
        if let Some(floor) = self.min_retries {
            let retries = options.get_max_retries().max(floor);
            options = options.max_retries(retries);
        }
        if let Some(floor) = self.min_sleep_cap {
            let cap = options.get_max_sleep().max(floor);
            options = options.max_sleep(cap);
        }
        options
    }
}

/// `250us`, `100ms`, `2s`.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let digits = text.trim_end_matches(|c: char| !c.is_ascii_digit());
    let value: u64 = digits.parse().ok()?;
    match &text[digits.len()..] {
        "us" | "µs" => Some(Duration::from_micros(value)),
        "ms" => Some(Duration::from_millis(value)),
        "s" => Some(Duration::from_secs(value)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, Error> {
        Settings::from_lookup(|name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn defaults_fail_and_change_nothing() -> Result<(), Error> {
        let settings = settings(&[])?;
        assert_eq!(settings.mode, Mode::Fail);
        assert_eq!(
            settings.apply(Options::new()).get_max_retries(),
            Options::new().get_max_retries()
        );
        Ok(())
    }

    #[test]
    fn floors_only_raise() -> Result<(), Error> {
        let settings = settings(&[(MIN_RETRIES, "40"), (MIN_SLEEP_CAP, "250ms")])?;
        let raised = settings.apply(Options::new().max_retries(5));
        assert_eq!(raised.get_max_retries(), 40);
        assert_eq!(raised.get_max_sleep(), Duration::from_millis(250));
        let kept = settings.apply(Options::new().max_retries(90).max_sleep(Duration::from_secs(1)));
        assert_eq!(kept.get_max_retries(), 90);
        assert_eq!(kept.get_max_sleep(), Duration::from_secs(1));
        Ok(())
    }

    #[test]
    fn malformed_values_say_what_is_accepted() {
        let mode = settings(&[(MODE, "loud")]).unwrap_err().to_string();
        assert!(
            mode.contains("TASKLEAK_MODE=\"loud\"") && mode.contains("`fail`, `warn` or `off`"),
            "{mode}"
        );
        let retries = settings(&[(MIN_RETRIES, "lots")]).unwrap_err().to_string();
        assert!(retries.contains("TASKLEAK_MIN_RETRIES=\"lots\""), "{retries}");
        let sleep = settings(&[(MIN_SLEEP_CAP, "1.5s")]).unwrap_err().to_string();
        assert!(sleep.contains("e.g. 200ms"), "{sleep}");
        assert_eq!(settings(&[(MODE, "warn")]).ok().map(|s| s.mode), Some(Mode::Warn));
        assert_eq!(settings(&[(MODE, "off")]).ok().map(|s| s.mode), Some(Mode::Off));
    }
}

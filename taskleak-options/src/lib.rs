//! Every option of `#[taskleak::verify_no_leaks(…)]` and of `taskleak.toml`,
//! defined once: the attribute's parser (in `taskleak-macros`), the
//! library's `taskleak.toml` reader and the docs are each tested against
//! this table, so an option added in one place and forgotten in another
//! fails a test.
//!
//! ```
//! let retries = taskleak_options::find("max_retries").expect("an option");
//! assert!(retries.in_file);
//! assert_eq!(retries.value, taskleak_options::Value::Count);
//! ```

/// One option.
///
/// ```
/// for option in taskleak_options::OPTIONS {
///     println!("{} = {}", option.name, option.value.example());
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionSpec {
    /// Its name, as written in the attribute and in `taskleak.toml`.
    pub name: &'static str,
    /// What it takes.
    pub value: Value,
    /// It may be given several times (ignore rules); a test's add to its
    /// module's and to `taskleak.toml`'s instead of replacing them.
    pub repeatable: bool,
    /// `taskleak.toml` takes it too.
    pub in_file: bool,
}

/// What an option takes.
///
/// ```
/// assert_eq!(taskleak_options::Value::Duration.example(), "\"100ms\"");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// A whole number.
    Count,
    /// A duration in a string: a whole number and `us`, `ms` or `s`.
    Duration,
    /// A `regex` pattern in a string.
    Regex,
    /// A crate's name in a string.
    CrateName,
    /// `true` or `false`.
    Bool,
    /// A Rust path in a string.
    Path,
}

impl Value {
    /// A value of this kind as written in the attribute.
    ///
    /// ```
    /// assert_eq!(taskleak_options::Value::Bool.example(), "false");
    /// ```
    pub fn example(self) -> &'static str {
        match self {
            Value::Count => "20",
            Value::Duration => "\"100ms\"",
            Value::Regex => "\"^metrics$\"",
            Value::CrateName => "\"bb8\"",
            Value::Bool => "false",
            Value::Path => "\"crate::RUNTIME\"",
        }
    }
}

/// Every option, in the order the docs list them.
///
/// ```
/// assert!(taskleak_options::OPTIONS.iter().any(|option| option.name == "threads"));
/// ```
pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "max_retries",
        value: Value::Count,
        repeatable: false,
        in_file: true,
    },
    OptionSpec {
        name: "max_sleep",
        value: Value::Duration,
        repeatable: false,
        in_file: true,
    },
    OptionSpec {
        name: "ignore_top_function",
        value: Value::Regex,
        repeatable: true,
        in_file: true,
    },
    OptionSpec {
        name: "ignore_any_function",
        value: Value::Regex,
        repeatable: true,
        in_file: true,
    },
    OptionSpec {
        name: "ignore_spawned_at",
        value: Value::Regex,
        repeatable: true,
        in_file: true,
    },
    OptionSpec {
        name: "ignore_thread_name",
        value: Value::Regex,
        repeatable: true,
        in_file: true,
    },
    OptionSpec {
        name: "ignore_dependency",
        value: Value::CrateName,
        repeatable: true,
        in_file: true,
    },
    OptionSpec {
        name: "threads",
        value: Value::Bool,
        repeatable: false,
        in_file: false,
    },
    OptionSpec {
        name: "serial",
        value: Value::Bool,
        repeatable: false,
        in_file: false,
    },
    OptionSpec {
        name: "runtime",
        value: Value::Path,
        repeatable: false,
        in_file: false,
    },
    OptionSpec {
        name: "crate",
        value: Value::Path,
        repeatable: false,
        in_file: false,
    },
];

/// The option named `name`.
///
/// ```
/// assert!(taskleak_options::find("max_retry").is_none());
/// ```
pub fn find(name: &str) -> Option<&'static OptionSpec> {
    OPTIONS.iter().find(|option| option.name == name)
}

/// The names of the options `keep` keeps, for messages: `` `a`, `b` ``.
///
/// ```
/// let file_keys = taskleak_options::listed(|option| option.in_file);
/// assert!(file_keys.starts_with("`max_retries`, `max_sleep`"));
/// ```
pub fn listed(keep: impl Fn(&OptionSpec) -> bool) -> String {
    OPTIONS
        .iter()
        .filter(|option| keep(option))
        .map(|option| format!("`{}`", option.name))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_only_rules_repeat() {
        for (at, option) in OPTIONS.iter().enumerate() {
            assert!(
                OPTIONS[..at].iter().all(|earlier| earlier.name != option.name),
                "{}",
                option.name
            );
            assert_eq!(
                option.repeatable,
                matches!(option.value, Value::Regex | Value::CrateName),
                "{}",
                option.name
            );
        }
    }
}

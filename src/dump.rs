//! Async stacks from tokio's task dump, taken with a bound on how long the
//! dump may take (it never completes while a worker is blocked).

use std::collections::HashMap;

use crate::stack::AsyncStack;

/// What a dump attempt produced.
#[derive(Debug)]
pub(crate) enum Stacks {
    /// The stacks of the tasks the dump saw, by task id. A live task missing
    /// here was being polled while the dump ran.
    Taken(HashMap<u64, AsyncStack>),
    /// No stacks; the text says why, for the report.
    Unavailable(String),
}

/// Whether this build can take task dumps at all.
pub(crate) const SUPPORTED: bool = cfg!(all(
    tokio_unstable,
    target_os = "linux",
    any(
        target_arch = "aarch64",
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "s390x"
    )
));

#[cfg(all(
    tokio_unstable,
    target_os = "linux",
    any(
        target_arch = "aarch64",
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "s390x"
    )
))]
pub(crate) async fn take(
    handle: &tokio::runtime::Handle,
    wanted: &std::collections::HashSet<u64>,
) -> Stacks {
    use crate::options::DUMP_TIMEOUT;
    use crate::registry::raw_id;
    use crate::stack::RawFrame;

    let Some(dump) = crate::timer::timeout(DUMP_TIMEOUT, handle.dump()).await else {
        return Stacks::Unavailable(format!(
            "tokio's task dump did not finish within {} s (a worker thread is blocked)",
            DUMP_TIMEOUT.as_secs()
        ));
    };
    let cwd = std::env::current_dir()
        .ok()
        .and_then(|dir| dir.to_str().map(str::to_owned));
    let stacks = dump
        .tasks()
        .iter()
        .filter(|task| wanted.contains(&raw_id(task.id())))
        .map(|task| {
            let backtraces = task
                .trace()
                .resolve_backtraces()
                .iter()
                .map(|backtrace| {
                    backtrace
                        .frames()
                        .flat_map(|frame| frame.symbols())
                        .map(|symbol| RawFrame {
                            name: symbol.name_demangled().unwrap_or("<unknown>").to_owned(),
                            file: symbol.filename().map(|path| path.display().to_string()),
                            line: symbol.lineno(),
                            column: symbol.colno(),
                        })
                        .collect()
                })
                .collect();
            (
                raw_id(task.id()),
                AsyncStack::from_raw(backtraces, cwd.as_deref()),
            )
        })
        .collect();
    Stacks::Taken(stacks)
}

#[cfg(not(all(
    tokio_unstable,
    target_os = "linux",
    any(
        target_arch = "aarch64",
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "s390x"
    )
)))]
pub(crate) async fn take(
    _handle: &tokio::runtime::Handle,
    _wanted: &std::collections::HashSet<u64>,
) -> Stacks {
    Stacks::Unavailable("tokio's task dumps need Linux on aarch64, x86, x86_64 or s390x".to_owned())
}

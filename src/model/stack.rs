//! Async stacks as reports show them: symbol names cleaned, runtime
//! internals dropped, same-crate library frames collapsed, paths shortened.

use std::fmt;

/// One frame of an [`AsyncStack`].
///
/// ```
/// # fn show(frame: &taskleak::report::StackFrame) {
/// println!("{} at {}", frame.function(), frame.location().unwrap_or("?"));
/// if let Some(krate) = frame.dependency() {
///     println!("  (in the dependency {krate})");
/// }
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct StackFrame {
    function: String,
    location: Option<String>,
    dependency: Option<String>,
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Vec::is_empty"))]
    folded: Vec<String>,
}

impl StackFrame {
    /// The function, e.g. `my_crate::cache::Cache::refresh_loop`
    /// (`{{closure}}` layers and symbol hashes removed).
    ///
    /// ```
    /// # fn show(frame: &taskleak::report::StackFrame) { println!("{}", frame.function()); }
    /// ```
    pub fn function(&self) -> &str {
        &self.function
    }

    /// `path:line:col`, with the path shortened: relative to the current
    /// directory for your code, `crate-version/…` for registry crates.
    ///
    /// ```
    /// # fn show(frame: &taskleak::report::StackFrame) { println!("{:?}", frame.location()); }
    /// ```
    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }

    /// The crate name when the frame is in a dependency (or the standard
    /// library) rather than in your workspace.
    ///
    /// ```
    /// # fn show(frame: &taskleak::report::StackFrame) { println!("{:?}", frame.dependency()); }
    /// ```
    pub fn dependency(&self) -> Option<&str> {
        self.dependency.as_deref()
    }

    /// The other functions this frame's machine code also is, when the
    /// compiler or linker merged identical functions into one body (LLVM's
    /// function merging, which std is built with, or the linker's identical
    /// code folding): one address then has several names, and
    /// [`function`](StackFrame::function) is the one the symbolizer picked,
    /// not necessarily the one that ran. Empty when the frame has one name.
    /// Native thread stacks only, on Linux.
    ///
    /// ```
    /// # fn show(frame: &taskleak::report::StackFrame) {
    /// if !frame.folded().is_empty() {
    ///     println!("{} or one of {:?}: identical code", frame.function(), frame.folded());
    /// }
    /// # }
    /// ```
    pub fn folded(&self) -> &[String] {
        &self.folded
    }

    /// Every name of the frame: its function, then the folded ones.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.function.as_str()).chain(self.folded.iter().map(String::as_str))
    }

    /// The crate the frame's code is in: its dependency, or the first
    /// segment of its function's path.
    pub(crate) fn crate_name(&self) -> &str {
        self.dependency.as_deref().unwrap_or_else(|| crate_of(&self.function))
    }
}

/// Where a task is stuck: one chain of frames per tokio await point it is
/// waiting on (a `select!` or `join!` waits on several), each written from
/// the task's own future (outermost) down to the innermost await.
///
/// ```
/// # fn show(stack: &taskleak::report::AsyncStack) {
/// for branch in stack.branches() {
///     for frame in branch {
///         println!("{}", frame.function());
///     }
/// }
/// # }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AsyncStack {
    branches: Vec<Vec<StackFrame>>,
}

impl AsyncStack {
    /// The chains of frames, outermost first in each.
    ///
    /// ```
    /// let stack = taskleak::report::AsyncStack::default();
    /// assert!(stack.branches().is_empty());
    /// ```
    pub fn branches(&self) -> &[Vec<StackFrame>] {
        &self.branches
    }

    /// Whether the dump saw no tokio await point at all (the task waits on a
    /// future outside tokio, such as `std::future::pending()`).
    ///
    /// ```
    /// assert!(taskleak::report::AsyncStack::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.branches.iter().all(Vec::is_empty)
    }

    /// The innermost frame of every branch: what the task waits in.
    pub(crate) fn top_functions(&self) -> impl Iterator<Item = &str> {
        self.branches
            .iter()
            .filter_map(|branch| branch.last())
            .map(|frame| frame.function())
    }

    pub(crate) fn all_functions(&self) -> impl Iterator<Item = &str> {
        self.branches.iter().flatten().map(|frame| frame.function())
    }

    /// Builds a stack from raw backtraces, each innermost frame first, as
    /// tokio's task dump resolves them.
    pub(crate) fn from_raw(backtraces: Vec<Vec<RawFrame>>, cwd: Option<&str>) -> Self {
        let mut branches: Vec<_> = backtraces
            .into_iter()
            .map(|raw| collapse(raw, cwd))
            .filter(|branch| !branch.is_empty())
            .collect();
        // `select!` polls its branches in random order: sort them, so the
        // same wait always reads (and groups) the same.
        branches.sort();
        branches.dedup();
        Self { branches }
    }
}

impl fmt::Display for AsyncStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .branches
            .iter()
            .flatten()
            .map(|frame| frame.function.len())
            .max()
            .unwrap_or(0);
        for (index, branch) in self.branches.iter().enumerate() {
            if self.branches.len() > 1 {
                writeln!(f, "      — await point {} of {}:", index + 1, self.branches.len())?;
            }
            for frame in branch {
                write_frame(f, frame, width)?;
            }
        }
        Ok(())
    }
}

/// One frame of a report's stack: the function, padded to `width`, then
/// where it is — the source line for your code, the crate for a dependency.
pub(crate) fn write_frame(f: &mut fmt::Formatter<'_>, frame: &StackFrame, width: usize) -> fmt::Result {
    let place = match (&frame.dependency, &frame.location) {
        (None, Some(location)) => location.clone(),
        (Some(krate), _) => format!("({krate})"),
        (None, None) => String::new(),
    };
    writeln!(f, "      {:width$}  {place}", frame.function)?;
    if !frame.folded.is_empty() {
        writeln!(f, "        {}", folded_note(&frame.folded))?;
    }
    Ok(())
}

/// How reports say a frame's name is one of several: the other names (two
/// at most, then a count), and why it cannot be told which one ran.
pub(crate) fn folded_note(others: &[String]) -> String {
    const SHOWN: usize = 2;
    let names = match others {
        [one] => one.clone(),
        [one, two] => format!("{one} and {two}"),
        _ => {
            let shown = others[..SHOWN.min(others.len())].join(", ");
            format!("{shown} and {} more", others.len().saturating_sub(SHOWN))
        }
    };
    format!(
        "(ambiguous name: the same machine code is also {names}; identical functions were merged, \
         so the stack cannot tell which of them ran)"
    )
}

/// A symbol as the task dump resolved it.
#[derive(Clone, Debug, Default)]
pub(crate) struct RawFrame {
    pub(crate) name: String,
    pub(crate) file: Option<String>,
    pub(crate) line: Option<u32>,
    pub(crate) column: Option<u32>,
    /// Every name of the frame's machine code when identical functions were
    /// merged into it (`name` is one of them, picked by the symbolizer),
    /// demangled; empty when it has one name.
    pub(crate) folded: Vec<String>,
}

#[cfg(test)]
impl RawFrame {
    /// A resolved frame, for tests.
    pub(crate) fn at(name: &str, file: &str, line: u32, column: u32) -> Self {
        RawFrame {
            name: name.into(),
            file: Some(file.into()),
            line: Some(line),
            column: Some(column),
            folded: Vec::new(),
        }
    }
}

/// Drops runtime internals, collapses each run of same-crate dependency
/// frames to its outermost frame (the API your code called), and returns the
/// frames outermost first.
fn collapse(innermost_first: Vec<RawFrame>, cwd: Option<&str>) -> Vec<StackFrame> {
    let mut frames: Vec<StackFrame> = Vec::new();
    // Whether the current run of same-dependency frames already shows an
    // API a cause rule knows.
    let mut run_shows_api = false;
    for raw in innermost_first.into_iter().rev() {
        let frame = StackFrame::of(&raw, cwd);
        if is_runtime_internal(&frame.function) {
            continue;
        }
        let known_api = crate::model::cause::of_function(&frame.function).is_some();
        if let Some(previous) = frames.last() {
            if previous.function == frame.function {
                continue;
            }
            let same_run = previous.dependency.is_some() && previous.dependency == frame.dependency;
            // The outermost frame of a library run is the call into that
            // library; the frames inside are its internals — except the
            // first API a cause rule knows, which says what the task waits
            // for inside a combinator (`timeout(d, rx.recv())`), and not the
            // APIs that one uses in turn (`Interval::tick` awaits a `Sleep`).
            if same_run && (run_shows_api || !known_api) {
                continue;
            }
            if !same_run {
                run_shows_api = false;
            }
        }
        run_shows_api |= known_api;
        frames.push(frame);
    }
    frames
}

impl StackFrame {
    /// A resolved frame as reports show it: clean name, short path, and
    /// the crate it belongs to unless it is the workspace's own code.
    fn of(raw: &RawFrame, cwd: Option<&str>) -> Self {
        let function = clean_symbol(&raw.name);
        let path = raw.file.as_deref().map(|file| shorten_path(file, cwd));
        let dependency = match &raw.file {
            Some(file) if is_local_path(file, cwd) => None,
            Some(file) => Some(crate_of_path(file).unwrap_or_else(|| crate_of(&function)).to_owned()),
            None => Some(crate_of(&function).to_owned()),
        };
        let location = path.map(|path| match (raw.line, raw.column) {
            (Some(line), Some(col)) => format!("{path}:{line}:{col}"),
            (Some(line), None) => format!("{path}:{line}"),
            _ => path,
        });
        let mut folded: Vec<String> = raw
            .folded
            .iter()
            .map(|name| clean_symbol(name))
            .filter(|name| *name != function)
            .collect();
        folded.sort();
        folded.dedup();
        StackFrame {
            function,
            location,
            dependency,
            folded,
        }
    }
}

/// A thread's native stack as reports show it, outermost first: without the
/// thread-start plumbing below the thread's own function, without the C
/// library's frames (the kernel's view says what the thread is blocked in),
/// and with each run of frames inside one dependency (or std) collapsed to
/// its outermost frame, the call your code made.
pub(crate) fn native_frames(innermost_first: &[RawFrame], cwd: Option<&str>) -> Vec<StackFrame> {
    let is_plumbing = |frame: &StackFrame| {
        let function = frame.function.trim_start_matches('<');
        !function.contains("::")
            || [
                "std::",
                "core::",
                "alloc::",
                "fn(",
                "test::",
                "tokio::runtime::",
                "tokio::loom::",
                "tokio::util::",
                "tracing::instrument::",
            ]
            .iter()
            .any(|prefix| function.starts_with(prefix))
    };
    let mut frames: Vec<StackFrame> = Vec::new();
    let outermost_first = innermost_first
        .iter()
        .rev()
        .map(|raw| StackFrame::of(raw, cwd))
        .skip_while(is_plumbing);
    for frame in outermost_first {
        // C library internals (`syscall`, `__futex_abstimed_wait_common`).
        if !frame.function.contains("::") {
            continue;
        }
        if let Some(previous) = frames.last() {
            let same_run = previous.dependency.is_some() && previous.dependency == frame.dependency;
            if same_run || previous.function == frame.function {
                continue;
            }
        }
        frames.push(frame);
    }
    frames
}

/// Frames that only say "the runtime polled a future": never the answer to
/// "where is it stuck".
fn is_runtime_internal(function: &str) -> bool {
    // Awaiting another task is a wait worth naming, though it is in
    // `tokio::runtime`.
    if function.starts_with("tokio::runtime::task::join::JoinHandle") {
        return false;
    }
    const INTERNAL: &[&str] = &[
        "core::",
        "std::",
        "alloc::",
        "tokio::runtime::",
        "tokio::task::coop::",
        "tokio::util::",
        "tokio::loom::",
        "tokio::future::poll_fn",
        "tokio::future::maybe_done",
        "tokio::macros::",
        "taskleak::",
        // tokio's `tracing` feature wraps each task in an `Instrumented`.
        "tracing::instrument::",
    ];
    // Unwinding glue (`rust_begin_unwind`, `__rust_try`): bare symbols, never
    // a path, so a user crate named `rust_service` is not mistaken for it.
    let glue = !function.contains("::") && (function.starts_with("rust_") || function.starts_with("__rust"));
    glue || INTERNAL.iter().any(|prefix| function.starts_with(prefix))
}

/// `<tokio::sync::notify::Notified as core::future::future::Future>::poll::h0123…`
/// becomes `tokio::sync::notify::Notified`; `my::f::{{closure}}` becomes `my::f`.
pub(crate) fn clean_symbol(symbol: &str) -> String {
    let mut name = strip_hash(symbol).to_owned();
    if let Some((self_type, trait_path, method)) = split_trait_impl(&name) {
        name = if method == "poll" && trait_path.ends_with("Future") {
            self_type.to_owned()
        } else {
            format!("{self_type}::{method}")
        };
    }
    for closure in ["::{{closure}}", "::{closure#"] {
        while let Some(at) = name.find(closure) {
            let end = name[at + 2..].find("::").map_or(name.len(), |next| at + 2 + next);
            name.replace_range(at..end, "");
        }
    }
    name
}

fn strip_hash(symbol: &str) -> &str {
    match symbol.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => head,
        _ => symbol,
    }
}

/// Splits `<Type as Trait>::method…` at depth-aware ` as ` and `>::`.
fn split_trait_impl(name: &str) -> Option<(&str, &str, &str)> {
    let inner = name.strip_prefix('<')?;
    let mut depth = 0usize;
    let mut as_at = None;
    for (index, ch) in inner.char_indices() {
        match ch {
            '<' => depth += 1,
            '>' if depth == 0 => {
                let self_type = &inner[..as_at?];
                let trait_path = &inner[as_at? + 4..index];
                let method = inner[index + 1..].strip_prefix("::")?;
                let method = method.split("::").next().unwrap_or(method);
                return Some((self_type, trait_path, method));
            }
            '>' => depth -= 1,
            ' ' if depth == 0 && inner[index..].starts_with(" as ") && as_at.is_none() => as_at = Some(index),
            _ => {}
        }
    }
    None
}

fn crate_of(function: &str) -> &str {
    let trimmed = function
        .trim_start_matches(['<', '&', '*'])
        .trim_start_matches("mut ")
        .trim_start_matches("dyn ");
    trimmed.split("::").next().unwrap_or(trimmed)
}

/// `…/.cargo/registry/src/index…/tokio-1.54.1/src/io.rs` is in `tokio`: a
/// generic frame such as `<&mut T as AsyncRead>::poll_read` names no crate.
fn crate_of_path(file: &str) -> Option<&str> {
    let (_, rest) = file.split_once("/.cargo/registry/src/")?;
    let package = rest.split('/').nth(1)?;
    let (name, version) = package.rsplit_once('-')?;
    version.starts_with(|c: char| c.is_ascii_digit()).then_some(name)
}

/// Code of the workspace is compiled with relative paths (or absolute ones
/// under the current directory); dependencies and std are not.
fn is_local_path(file: &str, cwd: Option<&str>) -> bool {
    if file.contains("/.cargo/registry/") || file.contains("/.cargo/git/") || file.starts_with("/rustc/") {
        return false;
    }
    !file.starts_with('/') || cwd.is_some_and(|cwd| file.starts_with(cwd))
}

/// The directory paths in reports are relative to: the workspace root
/// around the current directory (the nearest ancestor whose `Cargo.toml`
/// has a `[workspace]` table), which is what the compiler's spawn-site paths
/// are relative to; the current directory when there is no workspace.
pub(crate) fn source_root() -> Option<String> {
    let cwd = std::env::current_dir().ok()?;
    let root = cwd
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|manifest| manifest.lines().any(|line| line.trim() == "[workspace]"))
        })
        .unwrap_or(&cwd);
    root.to_str().map(str::to_owned)
}

/// Shortens a compiler path for humans: relative to `cwd` when under it,
/// `crate-1.2.3/src/…` for registry crates, `library/…` for std.
pub(crate) fn shorten_path(file: &str, cwd: Option<&str>) -> String {
    if let Some(rest) = cwd.and_then(|cwd| file.strip_prefix(cwd)) {
        return rest.trim_start_matches('/').to_owned();
    }
    for marker in ["/.cargo/registry/src/", "/.cargo/git/checkouts/"] {
        if let Some((_, rest)) = file.split_once(marker) {
            // Skip the index directory (`index.crates.io-…/`) or checkout name.
            return rest.split_once('/').map_or(rest, |(_, tail)| tail).to_owned();
        }
    }
    if let Some(rest) = file.strip_prefix("/rustc/") {
        return rest.split_once('/').map_or(rest, |(_, tail)| tail).to_owned();
    }
    file.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(name: &str, file: &str, line: u32) -> RawFrame {
        RawFrame::at(name, file, line, 5)
    }

    #[test]
    fn cleans_trait_impls_closures_and_hashes() {
        assert_eq!(
            clean_symbol("<tokio::sync::notify::Notified as core::future::future::Future>::poll::h0123456789abcdef"),
            "tokio::sync::notify::Notified"
        );
        assert_eq!(
            clean_symbol("my_crate::cache::refresh::{{closure}}::{{closure}}"),
            "my_crate::cache::refresh"
        );
        assert_eq!(clean_symbol("my_crate::run::{closure#0}"), "my_crate::run");
        assert_eq!(
            clean_symbol("<tokio::time::timeout::Timeout<T> as core::future::future::Future>::poll"),
            "tokio::time::timeout::Timeout<T>"
        );
        assert_eq!(clean_symbol("<a::B as core::fmt::Debug>::fmt"), "a::B::fmt");
    }

    #[test]
    fn collapses_internals_and_library_runs_outermost_first() {
        let registry = "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src";
        let innermost_first = vec![
            raw(
                "tokio::sync::notify::Notified::poll_notified",
                &format!("{registry}/sync/notify.rs"),
                900,
            ),
            raw(
                "<tokio::sync::notify::Notified as core::future::future::Future>::poll",
                &format!("{registry}/sync/notify.rs"),
                1100,
            ),
            raw("my_crate::cache::refresh_loop::{{closure}}", "src/cache.rs", 48),
            raw("my_crate::cache::spawn::{{closure}}", "src/cache.rs", 41),
            raw(
                "<core::pin::Pin<P> as core::future::future::Future>::poll",
                "/rustc/abc/library/core/src/pin.rs",
                1,
            ),
            raw(
                "tokio::runtime::task::core::Core<T,S>::poll",
                &format!("{registry}/runtime/task/core.rs"),
                1,
            ),
        ];
        let stack = AsyncStack::from_raw(vec![innermost_first], None);
        let names: Vec<_> = stack.branches()[0].iter().map(StackFrame::function).collect();
        assert_eq!(
            names,
            [
                "my_crate::cache::spawn",
                "my_crate::cache::refresh_loop",
                "tokio::sync::notify::Notified"
            ]
        );
        let leaf = &stack.branches()[0][2];
        assert_eq!(leaf.dependency(), Some("tokio"));
        assert_eq!(leaf.location(), Some("tokio-1.54.1/src/sync/notify.rs:1100:5"));
        assert_eq!(stack.branches()[0][1].location(), Some("src/cache.rs:48:5"));
    }

    #[test]
    fn generic_library_frames_take_their_crate_from_the_path() {
        let registry = "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src";
        let innermost_first = vec![
            raw(
                "tokio::net::tcp::stream::TcpStream::poll_read",
                &format!("{registry}/net/tcp/stream.rs"),
                1,
            ),
            raw(
                "<&mut T as tokio::io::async_read::AsyncRead>::poll_read",
                &format!("{registry}/io/async_read.rs"),
                2,
            ),
            raw(
                "<tokio::io::util::read::Read<R> as core::future::future::Future>::poll",
                &format!("{registry}/io/util/read.rs"),
                3,
            ),
            raw("app::serve::{{closure}}", "src/serve.rs", 12),
        ];
        let stack = AsyncStack::from_raw(vec![innermost_first], None);
        let names: Vec<_> = stack.branches()[0].iter().map(StackFrame::function).collect();
        assert_eq!(names, ["app::serve", "tokio::io::util::read::Read<R>"]);
        assert_eq!(
            crate_of_path("/home/u/.cargo/registry/src/idx/serde_json-1.0.1/src/de.rs"),
            Some("serde_json")
        );
    }

    #[test]
    fn a_folded_frame_keeps_its_other_names_and_says_its_name_is_ambiguous() {
        let recv = "<std::net::udp::UdpSocket>::recv";
        let innermost_first = vec![
            RawFrame {
                folded: [
                    recv,
                    "<std::net::tcp::TcpStream as std::io::Read>::read",
                    "a::b",
                    "c::d",
                ]
                .map(str::to_owned)
                .to_vec(),
                ..RawFrame::at(recv, "/rustc/x/library/std/src/net/udp.rs", 1, 1)
            },
            raw("app::reader::{{closure}}", "src/reader.rs", 3),
        ];
        let frames = native_frames(&innermost_first, None);
        assert_eq!(frames[1].function(), recv);
        assert_eq!(frames[1].folded(), ["a::b", "c::d", "std::net::tcp::TcpStream::read"]);
        assert!(frames[0].folded().is_empty());

        struct Shown<'a>(&'a [StackFrame]);
        impl fmt::Display for Shown<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.iter().try_for_each(|frame| write_frame(f, frame, 32))
            }
        }
        let shown = Shown(&frames).to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 3, "{shown}");
        assert!(lines[1].contains(recv), "{shown}");
        assert!(
            lines[2].starts_with("        (ambiguous name: the same machine code is also a::b, c::d and 1 more;"),
            "{shown}"
        );
        assert_eq!(
            folded_note(&["x::y".to_owned()]),
            "(ambiguous name: the same machine code is also x::y; identical functions were merged, so the \
             stack cannot tell which of them ran)"
        );
        assert!(folded_note(&["x".to_owned(), "y".to_owned()]).contains("also x and y;"));
    }

    #[test]
    fn paths_are_relative_to_the_workspace_root() {
        // This crate's tests run in its own directory, the workspace root.
        let root = source_root().expect("a root");
        assert!(std::path::Path::new(&root).join("leak-macros").is_dir(), "{root}");
    }

    #[test]
    fn only_bare_unwinding_symbols_are_glue() {
        assert!(is_runtime_internal("rust_begin_unwind"));
        assert!(is_runtime_internal("__rust_try"));
        assert!(!is_runtime_internal("rust_service::worker::run"));
    }

    #[test]
    fn absolute_paths_under_cwd_are_local_and_relative() {
        assert!(is_local_path("/work/app/src/lib.rs", Some("/work/app")));
        assert_eq!(shorten_path("/work/app/src/lib.rs", Some("/work/app")), "src/lib.rs");
        assert_eq!(
            shorten_path("/rustc/0123abc/library/core/src/future.rs", None),
            "library/core/src/future.rs"
        );
        assert!(!is_local_path(
            "/rustc/0123abc/library/core/src/future.rs",
            Some("/rustc")
        ));
    }
}

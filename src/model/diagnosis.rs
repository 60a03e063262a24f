//! A task's cause, derived from its state and async stack: never guessed —
//! no rule, no cause.

use crate::model::cause::{Cause, of_function};
use crate::model::stack::AsyncStack;
use crate::model::task_state::TaskState;

/// The wrapper `timeout(…)` adds a timer branch beside the awaited one.
const TIMEOUT: &str = "tokio::time::timeout::Timeout<T>";

impl Cause {
    /// Derives the cause from what the check saw of a task.
    pub(crate) fn of(state: &TaskState, stack: &AsyncStack) -> Cause {
        match state {
            TaskState::Running => return Cause::Running,
            TaskState::WaitingUntraced => return Cause::Untraced,
            TaskState::StackUnavailable(_) => return Cause::Unclassified,
            TaskState::Waiting => {}
        }
        let branches: Vec<(Cause, bool)> = stack
            .branches()
            .iter()
            .map(|branch| {
                // The innermost frame a rule knows: user wrappers and
                // combinators around it do not change what it waits for.
                let cause = branch.iter().rev().find_map(|frame| of_function(frame.function()));
                let under_timeout = branch.iter().any(|frame| frame.function() == TIMEOUT);
                (cause.cloned().unwrap_or(Cause::Unclassified), under_timeout)
            })
            .collect();
        // `timeout(d, x)` waits on `x` and on its timer: the timer is not
        // why the task is stuck (it will fire, later than the grace period).
        let has_awaited = branches.iter().any(|(cause, _)| *cause != Cause::Sleep);
        let mut causes: Vec<Cause> = Vec::new();
        for (cause, under_timeout) in branches {
            let timer_of_a_timeout = has_awaited && under_timeout && cause == Cause::Sleep;
            if !timer_of_a_timeout && !causes.contains(&cause) {
                causes.push(cause);
            }
        }
        match causes.len() {
            0 => Cause::Unclassified,
            1 => causes.remove(0),
            _ if causes.contains(&Cause::Unclassified) => Cause::Unclassified,
            _ => Cause::Select(causes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::stack::RawFrame;

    fn stack(branches: &[&[&str]]) -> AsyncStack {
        let tokio = "/u/.cargo/registry/src/index.crates.io-1/tokio-1.54.1/src/lib.rs";
        let raw = branches
            .iter()
            .map(|names| {
                names
                    .iter()
                    .rev()
                    .map(|name| RawFrame::at(name, if name.starts_with("tokio") { tokio } else { "src/app.rs" }, 1, 1))
                    .collect()
            })
            .collect();
        AsyncStack::from_raw(raw, None)
    }

    fn cause(branches: &[&[&str]]) -> Cause {
        Cause::of(&TaskState::Waiting, &stack(branches))
    }

    #[test]
    fn the_innermost_known_frame_decides() {
        assert_eq!(
            cause(&[&[
                "app::worker::{{closure}}",
                "tokio::sync::mpsc::bounded::Receiver<T>::recv::{{closure}}"
            ]]),
            Cause::MpscReceive
        );
        // Wrapped in the user's own async fns: still the same wait.
        assert_eq!(
            cause(&[&[
                "app::outer::{{closure}}",
                "app::inner::{{closure}}",
                "tokio::sync::barrier::Barrier::wait::{{closure}}"
            ]]),
            Cause::Barrier
        );
    }

    #[test]
    fn a_timeout_is_not_the_cause_of_what_it_wraps() {
        let timeout = "<tokio::time::timeout::Timeout<T> as core::future::future::Future>::poll";
        let sleep = "<tokio::time::sleep::Sleep as core::future::future::Future>::poll";
        let notified = "<tokio::sync::notify::Notified as core::future::future::Future>::poll";
        assert_eq!(
            cause(&[
                &["app::f::{{closure}}", timeout, notified],
                &["app::f::{{closure}}", timeout, sleep]
            ]),
            Cause::Notify
        );
        // A bare sleep is a sleep.
        assert_eq!(cause(&[&["app::f::{{closure}}", sleep]]), Cause::Sleep);
    }

    #[test]
    fn select_with_every_branch_blocked_names_each() {
        let c = cause(&[
            &[
                "app::gen::{{closure}}",
                "tokio::sync::mpsc::bounded::Sender<T>::send::{{closure}}",
            ],
            &[
                "app::gen::{{closure}}",
                "tokio::sync::watch::Receiver<T>::changed::{{closure}}",
            ],
        ]);
        assert_eq!(c, Cause::Select(vec![Cause::MpscSend, Cause::WatchChange]));
        assert_eq!(c.label(), "select");
        assert!(c.to_string().contains("blocked sending on a full mpsc channel"), "{c}");
    }

    #[test]
    fn frames_no_rule_knows_are_unclassified() {
        assert_eq!(
            cause(&[&["app::f::{{closure}}", "some_crate::Thing::poll_thing"]]),
            Cause::Unclassified
        );
        assert_eq!(
            Cause::of(&TaskState::StackUnavailable("x".into()), &AsyncStack::default()),
            Cause::Unclassified
        );
        assert_eq!(Cause::of(&TaskState::Running, &AsyncStack::default()), Cause::Running);
        assert_eq!(
            Cause::of(&TaskState::WaitingUntraced, &AsyncStack::default()),
            Cause::Untraced
        );
    }
}

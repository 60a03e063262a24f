//! Ignore rules applied to survivors: tasks by spawn site (its text, or the
//! crate whose source it is in), innermost frame or any frame; threads by
//! name, by the crate of their own function, and by the same frame rules on
//! native stacks.

use crate::config::options::IgnoreRules;
use crate::model::StackFrame;
use crate::report::Survivor;

impl IgnoreRules {
    /// Whether a task spawned at `site` is ignored by a spawn-site rule
    /// (decidable before any dump is taken).
    pub(crate) fn ignores_spawn_site(&self, site: Option<&str>) -> bool {
        site.is_some_and(|site| {
            self.spawned_at.iter().any(|rule| rule.is_match(site))
                || (!self.dependencies.is_empty()
                    && crate::report::crate_of_site(site).is_some_and(|name| self.dependencies.contains(&name)))
        })
    }

    /// Whether any rule ignores this survivor.
    pub(crate) fn ignores(&self, survivor: &Survivor) -> bool {
        self.ignores_spawn_site(survivor.spawned_at.as_deref())
            || survivor
                .stack
                .top_functions()
                .any(|top| self.top_function.iter().any(|rule| rule.is_match(top)))
            || survivor
                .stack
                .all_functions()
                .any(|name| self.any_function.iter().any(|rule| rule.is_match(name)))
    }
    /// Whether `ignore_thread_name` matches the kernel name of a thread.
    pub(crate) fn ignores_thread_name(&self, name: &str) -> bool {
        self.thread_name.iter().any(|rule| rule.is_match(name))
    }

    /// Whether any rule matches a leaked thread: its name, or the function
    /// rules applied to its native stack (top = the call it is blocked in).
    /// A rule matches a folded frame by any of its names: the one shown is
    /// the symbolizer's pick among identical functions.
    pub(crate) fn ignores_thread(&self, name: &str, stack: &[StackFrame]) -> bool {
        self.ignores_thread_name(name)
            || stack.first().is_some_and(|own| {
                let name = own.crate_name().replace('-', "_");
                self.dependencies.contains(&name)
            })
            || stack.last().is_some_and(|top| {
                top.names()
                    .any(|name| self.top_function.iter().any(|rule| rule.is_match(name)))
            })
            || stack.iter().any(|frame| {
                frame
                    .names()
                    .any(|name| self.any_function.iter().any(|rule| rule.is_match(name)))
            })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::options::Options;
    use crate::model::TaskState;
    use crate::model::{AsyncStack, RawFrame};
    use crate::report::Survivor;

    fn survivor() -> Survivor {
        let frames = vec![
            RawFrame::at(
                "tokio::sync::notify::Notified::poll_notified",
                "/home/u/.cargo/registry/src/x/tokio-1.54.1/src/sync/notify.rs",
                1,
                1,
            ),
            RawFrame::at("app::pool::reaper::{{closure}}", "src/pool.rs", 10, 3),
        ];
        Survivor {
            id: 1,
            name: None,
            spawned_at: Some("src/pool.rs:4:9".into()),
            state: TaskState::Waiting,
            stack: std::sync::Arc::new(AsyncStack::from_raw(vec![frames], None)),
        }
    }

    #[test]
    fn each_rule_kind_matches_its_own_target() -> Result<(), crate::error::Error> {
        let survivor = survivor();
        assert!(!Options::new().ignore.ignores(&survivor));
        assert!(
            Options::new()
                .ignore_spawned_at(r"pool\.rs:4:")?
                .ignore
                .ignores(&survivor)
        );
        assert!(
            !Options::new()
                .ignore_spawned_at(r"pool\.rs:5:")?
                .ignore
                .ignores(&survivor)
        );
        assert!(
            Options::new()
                .ignore_top_function("^tokio::sync::notify::")?
                .ignore
                .ignores(&survivor)
        );
        // The user's frame is not the innermost one: only `any` matches it.
        assert!(!Options::new().ignore_top_function("reaper")?.ignore.ignores(&survivor));
        assert!(Options::new().ignore_any_function("reaper")?.ignore.ignores(&survivor));
        Ok(())
    }
}

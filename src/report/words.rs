//! Counted nouns, one way for every message: `1 task`, `2 tasks`,
//! `3 retries`.

/// The count and its noun: `1 thread`, `2 threads`, `3 retries`.
pub(crate) fn plural(count: usize, noun: &str) -> String {
    format!("{count} {}", counted(count, noun))
}

/// The noun alone, for a count written elsewhere: `thread id`, `thread ids`.
pub(crate) fn counted(count: usize, noun: &str) -> String {
    if count == 1 {
        return noun.to_owned();
    }
    // `retry` → `retries`, but `day` → `days`.
    match noun.strip_suffix('y') {
        Some(stem) if !stem.ends_with(['a', 'e', 'i', 'o', 'u']) => format!("{stem}ies"),
        _ => format!("{noun}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(plural(1, "task"), "1 task");
        assert_eq!(plural(0, "task"), "0 tasks");
        assert_eq!(plural(2, "retry"), "2 retries");
        assert_eq!(plural(2, "worker thread"), "2 worker threads");
        assert_eq!(counted(3, "thread id"), "thread ids");
        assert_eq!(counted(2, "day"), "days");
    }
}

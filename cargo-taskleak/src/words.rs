//! Counted nouns in the gate's messages: a leaf every output module uses.

/// `1 task`, `2 tasks`.
pub(crate) fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("{count} {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

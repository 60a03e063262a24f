//! Puts new lines into a file's text, before given lines, and changes
//! nothing else: no reformatting, the file's own line endings.

/// `source` with each `(line, text)` inserted before that line (1-based),
/// in the order given for lines that share a place.
pub(crate) fn insert_lines(source: &str, insertions: &[(usize, &str)]) -> String {
    let ending = if source.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out = String::with_capacity(source.len() + insertions.len() * 40);
    for (index, line) in source.split_inclusive('\n').enumerate() {
        for (_, text) in insertions.iter().filter(|(before, _)| *before == index + 1) {
            out.push_str(text);
            out.push_str(ending);
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_before_lines_keeping_endings() {
        let source = "a\n  b\nc";
        assert_eq!(insert_lines(source, &[(2, "  x"), (3, "y")]), "a\n  x\n  b\ny\nc");
        assert_eq!(insert_lines("a\r\nb\r\n", &[(2, "x")]), "a\r\nx\r\nb\r\n");
        assert_eq!(insert_lines(source, &[]), source);
    }
}

//! "did you mean …?" for misspelt argument keys and event names.

/// The candidate `name` most likely stands for: one containing it or
/// contained in it (`payload` → `max_payload`, `onmessage` → `message`), or
/// else the nearest by edit distance, if it is near enough to be a typo.
pub(crate) fn nearest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    // Below four letters, containment is chance (`a` is in `accept`).
    let contains = |c: &str| {
        (c.len() >= 4 && name.contains(c)) || (name.len() >= 4 && c.contains(name.as_str()))
    };
    if let Some(found) = candidates.iter().find(|c| contains(c)) {
        return Some(found);
    }
    candidates
        .iter()
        .map(|c| (edit_distance(&name, c), *c))
        .filter(|(distance, c)| *distance <= (c.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// Edit distance counting insertions, deletions, substitutions and swaps of
/// two adjacent letters (`opne` is one edit from `open`): the optimal string
/// alignment distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // `d[i][j]`: the distance between `a[..i]` and `b[..j]`.
    let mut d: Vec<Vec<usize>> = (0..=a.len())
        .map(|i| (0..=b.len()).map(|j| if i == 0 { j } else { i }).collect())
        .collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitution = d[i - 1][j - 1] + usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = substitution.min(d[i - 1][j] + 1).min(d[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: &[&str] = &["accept", "open", "message", "error", "close"];

    #[test]
    fn distance_counts_edits() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("message", "message"), 0);
        assert_eq!(edit_distance("mesage", "message"), 1);
        assert_eq!(edit_distance("messgae", "message"), 1);
        assert_eq!(edit_distance("opne", "open"), 1);
        assert_eq!(edit_distance("", "open"), 4);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggests_typos_and_crow_names() {
        assert_eq!(nearest("mesage", EVENTS), Some("message"));
        assert_eq!(nearest("opne", EVENTS), Some("open"));
        assert_eq!(nearest("clsoe", EVENTS), Some("close"));
        assert_eq!(nearest("onaccept", EVENTS), Some("accept"));
        assert_eq!(nearest("on_message", EVENTS), Some("message"));
        assert_eq!(nearest("Error", EVENTS), Some("error"));
        assert_eq!(nearest("max_paylod", &["max_payload"]), Some("max_payload"));
        assert_eq!(nearest("payload", &["max_payload"]), Some("max_payload"));
    }

    #[test]
    fn suggests_nothing_for_unrelated_names() {
        assert_eq!(nearest("broadcast", EVENTS), None);
        assert_eq!(nearest("new", EVENTS), None);
        assert_eq!(nearest("a", EVENTS), None);
        assert_eq!(nearest("timeout", &["max_payload"]), None);
    }
}

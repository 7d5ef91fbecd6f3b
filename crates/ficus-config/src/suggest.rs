//! "did you mean ...?": the nearest known name by edit distance.

/// Levenshtein distance in characters (insertions, deletions, substitutions each cost 1).
pub(crate) fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate nearest to `name` (case-insensitively), if it is near enough to be a likely
/// typo: at most `max(2, len/3)` edits away, and not a complete rewrite of a short name. Ties go
/// to the earlier candidate.
pub(crate) fn nearest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let len = name.chars().count();
    let limit = (len / 3).max(2);
    let mut best: Option<(usize, &'a str)> = None;
    for cand in candidates {
        let d = levenshtein(&lower, &cand.to_lowercase());
        let longest = len.max(cand.chars().count());
        if d > limit || d >= longest {
            continue;
        }
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, cand));
        }
    }
    best.map(|(_, c)| c)
}

/// `"did you mean \"x\"? "` or the empty string.
pub(crate) fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    match nearest(name, candidates) {
        Some(c) => format!("did you mean {c:?}? "),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(levenshtein("", ""), 0);
        assert_eq!(levenshtein("abc", ""), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("modrn", "modern"), 1);
        assert_eq!(levenshtein("wieght", "weight"), 2);
        assert_eq!(levenshtein("héllo", "hello"), 1);
    }

    #[test]
    fn nearest_name() {
        let ups = ["legacy", "modern"];
        assert_eq!(nearest("modrn", ups), Some("modern"));
        assert_eq!(nearest("Modern", ups), Some("modern"));
        assert_eq!(nearest("legcy", ups), Some("legacy"));
        assert_eq!(nearest("billing", ups), None);
        // Short names: a complete rewrite is no suggestion.
        assert_eq!(nearest("ab", ["x", "y"]), None);
        assert_eq!(nearest("m", ["ms"]), Some("ms"));
        // Longer names allow more edits: len/3.
        assert_eq!(
            nearest("max_idle_conections_x", ["max_idle_connections"]),
            Some("max_idle_connections")
        );
        // Ties go to the first candidate, closer beats earlier.
        assert_eq!(nearest("cat", ["bat", "hat"]), Some("bat"));
        assert_eq!(nearest("hat", ["bad", "hat"]), Some("hat"));
        assert_eq!(nearest("x", std::iter::empty()), None);
    }

    #[test]
    fn did_you_mean_text() {
        assert_eq!(
            did_you_mean("wieght", ["weight"]),
            "did you mean \"weight\"? "
        );
        assert_eq!(did_you_mean("zzz", ["weight"]), "");
    }
}

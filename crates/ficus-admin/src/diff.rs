//! A line diff of two config texts (longest common subsequence), for the version history.
//! Config files are small (hundreds of lines), so the quadratic table is fine; above
//! [`MAX_CELLS`] the diff degrades to "all removed, all added" rather than use the memory.

/// Cells of the LCS table allowed (4 million: a 2000 x 2000 line diff).
pub const MAX_CELLS: usize = 4_000_000;

/// The lines of `new` against `old`, each prefixed with "  " (kept), "- " or "+ ".
pub fn lines(old: &str, new: &str) -> Vec<String> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    if a.len().saturating_mul(b.len()) > MAX_CELLS {
        return a
            .iter()
            .map(|l| format!("- {l}"))
            .chain(b.iter().map(|l| format!("+ {l}")))
            .collect();
    }
    // lcs[i][j]: length of the LCS of a[i..] and b[j..].
    let w = b.len() + 1;
    let mut lcs = vec![0u32; (a.len() + 1) * w];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i * w + j] = if a[i] == b[j] {
                lcs[(i + 1) * w + j + 1] + 1
            } else {
                lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(format!("  {}", a[i]));
            i += 1;
            j += 1;
        } else if lcs[(i + 1) * w + j] >= lcs[i * w + j + 1] {
            out.push(format!("- {}", a[i]));
            i += 1;
        } else {
            out.push(format!("+ {}", b[j]));
            j += 1;
        }
    }
    out.extend(a[i..].iter().map(|l| format!("- {l}")));
    out.extend(b[j..].iter().map(|l| format!("+ {l}")));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn marks_changes() {
        let d = super::lines("a\nb\nc\n", "a\nB\nc\nd\n");
        assert_eq!(d, ["  a", "- b", "+ B", "  c", "+ d"]);
        assert_eq!(super::lines("", "x"), ["+ x"]);
        assert_eq!(super::lines("x", ""), ["- x"]);
    }

    #[test]
    fn huge_inputs_degrade_instead_of_using_the_memory() {
        let a: String = (0..2001).map(|i| format!("a{i}\n")).collect();
        let b: String = (0..2001).map(|i| format!("a{}\n", i + 1)).collect();
        const { assert!(2001 * 2001 > super::MAX_CELLS) };
        let d = super::lines(&a, &b);
        assert_eq!(d.len(), 4002, "everything removed, then everything added");
        assert!(d[..2001].iter().all(|l| l.starts_with("- ")));
        assert!(d[2001..].iter().all(|l| l.starts_with("+ ")));
        // Just under the cap the real diff runs: one line removed, one added.
        let small_a: String = (0..1999).map(|i| format!("a{i}\n")).collect();
        let small_b: String = (0..1999).map(|i| format!("a{}\n", i + 1)).collect();
        assert_eq!(super::lines(&small_a, &small_b).len(), 2000);
    }
}

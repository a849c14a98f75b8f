//! Identity skeletons: how the store decides that two names denote the same
//! person, so that an agent cannot dodge the no-self-approval rule by
//! spelling its actor differently from the approver it is.
//!
//! Bytes are not enough: `ａｌｉｃｅ` (full-width), `ali\u{200b}ce` (a
//! zero-width space), `ALİCE` (a dotted capital I) and `аlice` (a Cyrillic
//! `а`) all look like `alice` to a person reading an approval request. Plain
//! NFKC case folding is not enough either: `ALİCE` folds to `ali̇ce` and
//! keeps the combining dot (U+0307).
//!
//! The skeleton of a string is, in order:
//! 1. compatibility decomposition (NFKD: `ａ` → `a`, `ﬁ` → `fi`);
//! 2. full Unicode case folding (`ß` → `ss`, `İ` → `i̇`), decomposed again;
//! 3. every combining mark, control character and default-ignorable code
//!    point (zero-width characters, bidi controls, variation selectors,
//!    tags, the soft hyphen) removed;
//! 4. whitespace runs collapsed to one space, and the ends trimmed;
//! 5. the Unicode TR39 confusable skeleton of the result (`а` → `a`,
//!    `rn` → `m`), with marks removed once more.
//!
//! The skeleton over-matches on purpose (`bob1` and `bobl` share one): it is
//! only used to *refuse* (an actor who looks like an approver may not
//! answer), never to grant an identity. It is for comparison only, never
//! for display or storage.

use unicode_normalization::UnicodeNormalization as _;
use unicode_normalization::char::is_combining_mark;

/// Default-ignorable code points (Unicode `DerivedCoreProperties.txt`,
/// `Default_Ignorable_Code_Point`): invisible when rendered, so two strings
/// differing only by them look identical.
const DEFAULT_IGNORABLE: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{034F}', '\u{034F}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{115F}', '\u{1160}'),
    ('\u{17B4}', '\u{17B5}'),
    ('\u{180B}', '\u{180F}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{206F}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{FE00}', '\u{FE0F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFA0}', '\u{FFA0}'),
    ('\u{FFF0}', '\u{FFF8}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0000}', '\u{E0FFF}'),
];

fn is_invisible(c: char) -> bool {
    c.is_control()
        || is_combining_mark(c)
        || DEFAULT_IGNORABLE
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// Drops invisible characters, collapses whitespace runs to one space and
/// trims the ends.
fn visible_words(text: impl Iterator<Item = char>) -> String {
    let mut out = String::new();
    let mut space = false;
    for c in text.filter(|&c| !is_invisible(c)) {
        if c.is_whitespace() {
            space = !out.is_empty();
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    out
}

/// The identity skeleton of `s` (see the module documentation). Two names
/// with the same skeleton are treated as the same person.
#[must_use]
pub fn identity_skeleton(s: &str) -> String {
    let decomposed: String = s.nfkd().collect();
    let folded = caseless::default_case_fold_str(&decomposed);
    let plain = visible_words(folded.nfkd());
    let confusable: String = unicode_security::skeleton(&plain).collect();
    visible_words(confusable.nfkd())
}

/// Whether `a` and `b` name the same person: their skeletons are equal and
/// not empty (a name made only of invisible characters names nobody).
#[must_use]
pub fn same_identity(a: &str, b: &str) -> bool {
    let a = identity_skeleton(a);
    !a.is_empty() && a == identity_skeleton(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookalikes_of_alice_share_her_skeleton() {
        for disguise in [
            "alice",
            "Alice",
            "  ALICE ",
            "ａｌｉｃｅ",
            "ali\u{200b}ce",
            "ali\u{202e}ce",
            "a\u{00ad}lice",
            "ALİCE",
            "ali\u{0301}ce",
            "\u{0430}lice",
            "alice\u{fe0f}",
        ] {
            assert!(same_identity(disguise, "alice"), "{disguise:?}");
        }
    }

    #[test]
    fn whitespace_is_collapsed_and_case_folded_fully() {
        assert!(same_identity("Alice  Ng", "alice\u{3000}ng"));
        assert!(same_identity("STRASSE", "straße"));
        assert!(!same_identity("alice", "alicia"));
        assert!(!same_identity("Alice Ng", "AliceNg"));
    }

    #[test]
    fn invisible_names_name_nobody() {
        assert!(!same_identity("\u{200b}", ""));
        assert!(!same_identity("", ""));
        assert_eq!(identity_skeleton(" \u{200b}\u{2066} "), "");
    }

    #[test]
    fn different_people_stay_different() {
        assert!(!same_identity("alice", "bob"));
        assert!(!same_identity("alice@example.com", "alice@example.org"));
    }
}

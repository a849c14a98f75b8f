//! Text from agents and people, made safe and short before anyone reads it.

/// Shortens text to at most `max` characters, marking the cut.
pub fn summarize_text(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// Makes text that an agent or a person supplied safe to read: invisible
/// formatting characters (bidirectional overrides and isolates, zero-width
/// marks, the byte-order mark) and control characters other than newline
/// and tab are shown as `[U+XXXX]`, so text cannot be disguised (a payload
/// that reads "100" but is "001" reversed). HTML escaping is the
/// templates' job; this is applied on top, to every untrusted field.
pub fn reveal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}' => out.push_str(&format!("[U+{:04X}]", c as u32)),
            c if c.is_control() && c != '\n' && c != '\t' => {
                out.push_str(&format!("[U+{:04X}]", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_and_reordering_characters_are_shown() {
        assert_eq!(reveal("pay 100\u{202E}00"), "pay 100[U+202E]00");
        assert_eq!(
            reveal("a\u{200B}b\u{2066}c\u{FEFF}"),
            "a[U+200B]b[U+2066]c[U+FEFF]"
        );
        assert_eq!(reveal("bell\u{7}"), "bell[U+0007]");
        assert_eq!(
            reveal("line\nnext\ttab <b>"),
            "line\nnext\ttab <b>",
            "HTML is the template's job"
        );
        assert_eq!(reveal("café ünïcode"), "café ünïcode");
    }

    #[test]
    fn long_text_is_cut_on_a_character_and_marked() {
        assert_eq!(summarize_text("short", 10), "short");
        assert_eq!(summarize_text("éééé", 3), "éé…");
    }
}

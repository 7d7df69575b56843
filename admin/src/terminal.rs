//! Text for an operator's terminal. Ids, user ids, details and bodies come
//! from webhooks and tokens, which anyone can shape: an escape sequence in
//! one could retitle the terminal, clear it, or rewrite a line already
//! printed, and a bidirectional override could reorder what is shown. So
//! every control character is shown as an escape instead of being sent.

use std::borrow::Cow;
use std::fmt;

/// `text` with every control character escaped except the newlines and tabs
/// that lay the printout out. Everything `ledgerhook-admin` prints as text
/// passes through this.
pub fn safe(text: &str) -> Cow<'_, str> {
    escaped(text, |c| c == '\n' || c == '\t')
}

/// One value inside a line: newlines and tabs are escaped too, so that a
/// value cannot start a line or a column of its own.
pub struct Shown<T>(pub T);

impl<T: fmt::Display> fmt::Display for Shown<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        f.pad(&escaped(&text, |_| false))
    }
}

/// Whether `c` acts on a terminal instead of being shown: C0 and C1
/// controls, DEL, and the bidirectional embeddings, overrides and isolates.
fn acts(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escaped(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| acts(c) && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if acts(c) && !keep(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_shown_not_sent() {
        let title = "order-1\u{1b}]0;pwned\u{7}\u{1b}[2J\rdone";
        let shown = safe(title);
        assert_eq!(
            shown, "order-1\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\u{d}done",
            "ESC, BEL and CR"
        );
        assert!(!shown.chars().any(acts));
        assert_eq!(
            safe("a\u{9b}31m\u{7f}"),
            "a\\u{9b}31m\\u{7f}",
            "C1 CSI and DEL"
        );
        assert_eq!(
            safe("user\u{202e}gpj.exe"),
            "user\\u{202e}gpj.exe",
            "bidi override"
        );
    }

    #[test]
    fn layout_stays_in_the_printout_but_not_in_a_value() {
        assert!(matches!(safe("a\tb\nc\n"), Cow::Borrowed("a\tb\nc\n")));
        assert_eq!(
            format!("{}\t{}", Shown("user\nprocessing: running"), Shown("x\ty")),
            "user\\u{a}processing: running\tx\\u{9}y"
        );
        assert_eq!(
            format!("[{:<6}]", Shown("ab")),
            "[ab    ]",
            "padding still applies"
        );
        assert_eq!(
            Shown("élan ✓").to_string(),
            "élan ✓",
            "printable text is untouched"
        );
    }
}

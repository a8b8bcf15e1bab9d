//! Characters that change how text reads without being seen: the Unicode format characters
//! (general category Cf, such as U+202E RIGHT-TO-LEFT OVERRIDE, U+200B ZERO WIDTH SPACE,
//! U+061C ARABIC LETTER MARK, U+FEFF) and the line and paragraph separators (Zl, Zp). Log lines
//! escape them, and a subject made only of them (or of white space and controls) is no name.
//! Also URLs made safe to print: their user info and query replaced, wherever they appear.

use std::borrow::Cow;

/// The Cf ranges of Unicode 16.0 (`DerivedGeneralCategory.txt`), then U+2028 (Zl) and U+2029
/// (Zp). Sorted, so a lookup is a binary search.
const INVISIBLE: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x2028, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// Is `c` a format character (Cf) or a line or paragraph separator (Zl, Zp)?
pub fn invisible(c: char) -> bool {
    let c = c as u32;
    if c < 0xAD {
        return false;
    }
    INVISIBLE
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Text a reader cannot see as anything: empty, or only white space, controls and invisible
/// characters.
pub fn blank(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_whitespace() || c.is_control() || invisible(c))
}

/// `text` with every URL in it (`scheme://...`) shown without secrets: user info
/// (`user:password@`) becomes `***@` and a query (`?token=...`) becomes `?***`. A URL ends at
/// white space, a quote, a parenthesis, a brace or an angle bracket. Text without `://` is returned as it is.
pub fn redact_urls(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while let Some(found) = text[at..].find("://") {
        let sep = at + found;
        let rest = sep + 3;
        let end = text[rest..]
            .find(|c: char| {
                c.is_whitespace()
                    || matches!(c, '"' | '\'' | '<' | '>' | '`' | '(' | ')' | '{' | '}')
            })
            .map_or(text.len(), |e| rest + e);
        let url = &text[rest..end];
        let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
        let (authority, tail) = url.split_at(authority_end);
        out.push_str(&text[copied..rest]);
        match authority.rfind('@') {
            Some(a) => {
                out.push_str("***@");
                out.push_str(&authority[a + 1..]);
            }
            None => out.push_str(authority),
        }
        match tail.find('?') {
            Some(q) => {
                out.push_str(&tail[..q]);
                out.push_str("?***");
                if let Some(f) = tail[q..].find('#') {
                    out.push_str(&tail[q + f..]);
                }
            }
            None => out.push_str(tail),
        }
        copied = end;
        at = end.max(rest);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// A client-chosen value made safe for a one-line text log: control characters, white space,
/// invisible characters (Unicode Cf, Zl, Zp: `invisible`), the backslash and `"` are
/// escaped (`\x20`, `\u{a}`, `\u{202e}`, ...), and the value is cut at 128 characters, so it
/// can never forge a line or a field, nor reorder what an operator reads.
pub fn log_safe(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars().take(128) {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\x22"),
            ' ' => out.push_str("\\x20"),
            c if c.is_control() || c.is_whitespace() || invisible(c) => {
                out.push_str(&c.escape_unicode().to_string())
            }
            c => out.push(c),
        }
    }
    if value.chars().nth(128).is_some() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_user_info_and_query() {
        assert_eq!(redact_urls("no url here"), "no url here");
        assert_eq!(
            redact_urls("GET https://user:pa%40ss@idp.example/keys?token=abc#k failed"),
            "GET https://***@idp.example/keys?***#k failed"
        );
        assert_eq!(
            redact_urls("a \"http://x@[::1]:8080/p?q=1\", then https://ok.example/path"),
            "a \"http://***@[::1]:8080/p?***\", then https://ok.example/path"
        );
        assert_eq!(
            redact_urls("issuer (https://idp.example?secret=1) and redis://:pw@h:6379/0"),
            "issuer (https://idp.example?***) and redis://***@h:6379/0"
        );
        assert_eq!(redact_urls("https://a@b@c/d"), "https://***@c/d");
    }

    #[test]
    fn format_and_separator_characters_are_invisible() {
        for c in [
            '\u{202E}',
            '\u{200B}',
            '\u{061C}',
            '\u{FEFF}',
            '\u{2028}',
            '\u{2029}',
            '\u{E0041}',
            '\u{AD}',
        ] {
            assert!(invisible(c), "{:X}", c as u32);
        }
        for c in [
            'a',
            ' ',
            '\u{2030}',
            '\u{2027}',
            '\u{FEFE}',
            'é',
            '\u{1F600}',
        ] {
            assert!(!invisible(c), "{:X}", c as u32);
        }
        assert!(INVISIBLE.windows(2).all(|w| w[0].1 < w[1].0));
    }

    #[test]
    fn blank_subjects() {
        assert!(blank(""));
        assert!(blank(" \t\u{3000}"));
        assert!(blank("\u{200B}\u{FEFF}\u{7}"));
        assert!(!blank(" a "));
    }

    #[test]
    fn log_safe_escapes_what_could_forge_a_field_or_line() {
        assert_eq!(log_safe("alice"), "alice");
        assert_eq!(
            log_safe("a b\nstatus=200\r\t\"\\"),
            "a\\x20b\\u{a}status=200\\u{d}\\u{9}\\x22\\\\"
        );
        assert_eq!(log_safe(&"x".repeat(300)).len(), 131);
        assert_eq!(
            log_safe("ab\u{202E}cd\u{200B}\u{61C}\u{FEFF}\u{2028}"),
            "ab\\u{202e}cd\\u{200b}\\u{61c}\\u{feff}\\u{2028}"
        );
    }
}

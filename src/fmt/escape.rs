//! JSON string escaping into a reused byte buffer.
//!
//! Every function here appends to a `Vec<u8>` and never fails: whatever the
//! input, the bytes written form a valid JSON string body. Strings are
//! escaped per RFC 8259, and additionally every character that could fool
//! a terminal or a log viewer is written as a `\uXXXX` escape: C0 and C1
//! controls, DEL, the line and paragraph separators U+2028/U+2029, the
//! bidirectional overrides U+202A..U+202E and U+2066..U+2069, and the byte
//! order mark.

use std::fmt::{self, Write as _};

use crate::context::write_hex;

const fn escape_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[0x7f] = true;
    t[0xc2] = true;
    t[0xe2] = true;
    t[0xef] = true;
    t
}
static NEEDS_CHECK: [bool; 256] = escape_table();

fn push_u_escape(out: &mut Vec<u8>, cp: u16) {
    out.extend_from_slice(b"\\u");
    write_hex(out, &cp.to_be_bytes());
}

/// Whether any of the 8 bytes in `w` may need escaping: below 0x20, `"`,
/// `\\`, DEL, or non-ASCII. May say yes wrongly (the byte loop then
/// decides), never no wrongly.
#[inline]
fn chunk_needs_check(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    let quote = has_zero(w ^ (ONES * u64::from(b'"')));
    let backslash = has_zero(w ^ (ONES * u64::from(b'\\')));
    let del = has_zero(w ^ (ONES * 0x7f));
    (control | quote | backslash | del | (w & HIGH)) != 0
}

/// Appends the escaped contents of `s`, without the surrounding quotes.
pub(crate) fn escape_into(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Skip plain ASCII eight bytes at a time.
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if !chunk_needs_check(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        if !NEEDS_CHECK[b as usize] {
            i += 1;
            continue;
        }
        // How many bytes the escaped sequence covers, and what replaces it.
        let (len, cp): (usize, Option<u16>) = match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' => (1, None),
            0x00..=0x1f | 0x7f => (1, Some(u16::from(b))),
            0xc2 => match bytes.get(i + 1) {
                Some(&c @ 0x80..=0x9f) => (2, Some(u16::from(c))),
                _ => (0, None),
            },
            0xe2 => match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(0x80), Some(&c @ 0xa8..=0xae)) => (3, Some(0x2000 + u16::from(c - 0x80))),
                (Some(0x81), Some(&c @ 0xa6..=0xa9)) => (3, Some(0x2040 + u16::from(c - 0x80))),
                _ => (0, None),
            },
            0xef => match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(0xbb), Some(0xbf)) => (3, Some(0xfeff)),
                _ => (0, None),
            },
            _ => (0, None),
        };
        if len == 0 {
            i += 1;
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match cp {
            Some(cp) => push_u_escape(out, cp),
            None => out.extend_from_slice(match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                _ => b"\\t",
            }),
        }
        i += len;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends the escaped contents of at most `max` bytes of `s` (cut on a
/// character boundary), then a truncation note if anything was cut.
pub(crate) fn escape_bounded(out: &mut Vec<u8>, s: &str, max: usize) {
    if s.len() <= max {
        escape_into(out, s);
        return;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    escape_into(out, &s[..cut]);
    truncation_note(out, s.len());
}

fn truncation_note(out: &mut Vec<u8>, total: usize) {
    out.extend_from_slice("…[truncated, ".as_bytes());
    out.extend_from_slice(itoa::Buffer::new().format(total).as_bytes());
    out.extend_from_slice(b" bytes in all]");
}

/// Appends `s` as a quoted JSON string.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape_into(out, s);
    out.push(b'"');
}

/// Appends `s` as a quoted JSON string of at most `max` bytes of input.
pub(crate) fn write_str_bounded(out: &mut Vec<u8>, s: &str, max: usize) {
    out.push(b'"');
    escape_bounded(out, s, max);
    out.push(b'"');
}

/// A `fmt::Write` that escapes what it is given into a JSON string body,
/// keeping at most `budget` bytes of input and counting the rest.
pub(crate) struct EscapingWriter<'a> {
    out: &'a mut Vec<u8>,
    budget: usize,
    seen: usize,
}

impl<'a> EscapingWriter<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>, budget: usize) -> Self {
        EscapingWriter {
            out,
            budget,
            seen: 0,
        }
    }

    /// Adds the truncation note if input was cut.
    pub(crate) fn finish(self) {
        if self.seen > self.budget {
            truncation_note(self.out, self.seen);
        }
    }
}

impl fmt::Write for EscapingWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.budget.saturating_sub(self.seen);
        self.seen += s.len();
        if room >= s.len() {
            escape_into(self.out, s);
        } else if room > 0 {
            let mut cut = room;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            escape_into(self.out, &s[..cut]);
        }
        Ok(())
    }
}

/// Appends `value`'s `Debug` output as a quoted JSON string of at most
/// `max` bytes of input. A `Debug` impl that returns an error leaves what
/// it wrote so far: the string stays well formed.
pub(crate) fn write_debug(out: &mut Vec<u8>, value: &dyn fmt::Debug, max: usize) {
    out.push(b'"');
    let mut w = EscapingWriter::new(out, max);
    let _ = write!(w, "{value:?}");
    w.finish();
    out.push(b'"');
}

/// Appends `value`'s `Display` output as a quoted JSON string of at most
/// `max` bytes of input.
pub(crate) fn write_display(out: &mut Vec<u8>, value: &dyn fmt::Display, max: usize) {
    out.push(b'"');
    let mut w = EscapingWriter::new(out, max);
    let _ = write!(w, "{value}");
    w.finish();
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        let mut v = Vec::new();
        write_str(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn escapes_json_specials() {
        assert_eq!(esc("a\"b\\c\nd\re\tf"), r#""a\"b\\c\nd\re\tf""#);
        assert_eq!(esc("\u{0}\u{1b}[31m\u{7f}"), r#""\u0000\u001b[31m\u007f""#);
        assert_eq!(esc("é✓"), "\"é✓\"");
    }

    #[test]
    fn specials_are_found_at_every_offset_of_the_fast_path() {
        for special in [
            '"', '\\', '\n', '\u{1}', '\u{7f}', '\u{85}', '\u{2028}', 'é',
        ] {
            for offset in 0..20 {
                let mut s = "a".repeat(offset);
                s.push(special);
                s.push_str("bcdefghijklmnop");
                let json = esc(&s);
                let back: String = serde_json::from_str(&json).unwrap();
                assert_eq!(back, s, "{special:?} at {offset}");
                // Escaped forms of `"` and `\` contain the character itself.
                if !matches!(special, '"' | '\\') {
                    let raw_kept = special == 'é';
                    assert_eq!(
                        json.contains(special),
                        raw_kept,
                        "{special:?} at {offset}: {json}"
                    );
                }
            }
        }
    }

    #[test]
    fn escapes_deceptive_unicode() {
        assert_eq!(esc("\u{85}"), r#""\u0085""#);
        assert_eq!(esc("a\u{2028}b\u{2029}"), r#""a\u2028b\u2029""#);
        assert_eq!(esc("\u{202e}\u{2066}\u{2069}"), r#""\u202e\u2066\u2069""#);
        assert_eq!(esc("\u{feff}x"), r#""\ufeffx""#);
        // Neighbours of the escaped ranges pass through.
        assert_eq!(esc("\u{2027}\u{2030}\u{a0}"), "\"\u{2027}\u{2030}\u{a0}\"");
    }
}

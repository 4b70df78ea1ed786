//! Java `.properties` text parsing with `java.util.Properties.load` semantics, used for
//! `server.properties` before any key is interpreted.
//!
//! Rules followed (from the `Properties.load(Reader)` contract):
//! - natural lines end at `\n`, `\r` or `\r\n`; a line ending in an odd number of backslashes
//!   continues on the next natural line, whose leading whitespace is dropped;
//! - whitespace is space, tab and form feed; blank lines and lines whose first non-whitespace
//!   character is `#` or `!` are comments (a comment line never continues);
//! - the key ends at the first unescaped `=`, `:` or whitespace; whitespace around one `=` or `:`
//!   separator is skipped; the rest of the line is the value (trailing whitespace kept, as Java
//!   does; the config layer trims values the way Kafka's `ConfigDef` does);
//! - escapes: `\t \n \r \f`, `\uXXXX`, and `\` before any other character yields that character.
//!
//! A later duplicate key replaces the earlier value, as in a `Properties` table.

use std::fmt;

/// One `key=value` pair and the (1-based) line where its logical line starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// A malformed `\uXXXX` escape: the one input Java's loader rejects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertiesError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for PropertiesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

fn is_whitespace(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\u{c}'
}

/// Splits text into logical lines (continuations joined), each with its first line number.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut natural: Vec<&str> = Vec::new();
    // Split on \r\n, \n or \r.
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                natural.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                natural.push(&text[start..i]);
                if i + 1 < bytes.len() && bytes[i + 1] == b'\n' {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < text.len() {
        natural.push(&text[start..]);
    }

    let mut out = Vec::new();
    let mut idx = 0;
    while idx < natural.len() {
        let first_line = idx + 1;
        let line = natural[idx].trim_start_matches(is_whitespace);
        idx += 1;
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let mut logical = String::new();
        let mut current = line;
        loop {
            let trailing = current.chars().rev().take_while(|&c| c == '\\').count();
            if trailing % 2 == 1 {
                logical.push_str(&current[..current.len() - 1]);
                if idx >= natural.len() {
                    break;
                }
                current = natural[idx].trim_start_matches(is_whitespace);
                idx += 1;
            } else {
                logical.push_str(current);
                break;
            }
        }
        out.push((first_line, logical));
    }
    out
}

/// Unescapes one key or value according to the Java rules.
fn unescape(raw: &str, line: usize) -> Result<String, PropertiesError> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = (hex.len() == 4)
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .ok_or_else(|| PropertiesError {
                        line,
                        message: "Malformed \\uxxxx encoding.".to_string(),
                    })?;
                // Lone surrogates cannot be a Rust char; U+FFFD keeps the rest of the line.
                out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

/// Splits a logical line into its raw (still escaped) key and value.
fn split_key_value(line: &str) -> (&str, &str) {
    let mut key_end = line.len();
    let mut value_start = line.len();
    let mut escaped = false;
    let mut has_separator = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            continue;
        }
        if c == '=' || c == ':' {
            key_end = i;
            value_start = i + 1;
            has_separator = true;
            break;
        }
        if is_whitespace(c) {
            key_end = i;
            value_start = i + 1;
            break;
        }
    }
    let key = &line[..key_end];
    let mut rest = &line[value_start.min(line.len())..];
    // After whitespace ending the key, skip more whitespace and at most one `=` or `:`.
    rest = rest.trim_start_matches(is_whitespace);
    if !has_separator {
        if let Some(stripped) = rest.strip_prefix(['=', ':']) {
            rest = stripped.trim_start_matches(is_whitespace);
        }
    }
    (key, rest)
}

/// Parses properties text into pairs in file order; a repeated key keeps its first position and
/// its last value.
pub fn parse_properties(text: &str) -> Result<Vec<Property>, PropertiesError> {
    let mut out: Vec<Property> = Vec::new();
    for (line, logical) in logical_lines(text) {
        let (raw_key, raw_value) = split_key_value(&logical);
        let key = unescape(raw_key, line)?;
        let value = unescape(raw_value, line)?;
        if let Some(existing) = out.iter_mut().find(|p| p.key == key) {
            existing.value = value;
            existing.line = line;
        } else {
            out.push(Property { key, value, line });
        }
    }
    Ok(out)
}

/// Decodes file bytes: UTF-8 when valid, else ISO-8859-1 (what Java's `Properties.load` on a
/// byte stream assumes), so no file is rejected for its encoding.
pub fn decode_properties_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| b as char).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse_properties(text)
            .unwrap()
            .into_iter()
            .map(|p| (p.key, p.value))
            .collect()
    }

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn equals_colon_and_whitespace_separators_all_split_key_and_value() {
        let got = pairs("a=1\nb: 2\nc 3\nd  =  4\ne\t:\t5\n");
        assert_eq!(
            got,
            vec![
                kv("a", "1"),
                kv("b", "2"),
                kv("c", "3"),
                kv("d", "4"),
                kv("e", "5")
            ]
        );
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let got = pairs("# comment\n! bang comment\n\n   \n  # indented comment\nk=v\n");
        assert_eq!(got, vec![kv("k", "v")]);
    }

    #[test]
    fn backslash_continuation_joins_lines_and_drops_leading_whitespace() {
        let got = pairs("listeners=PLAINTEXT://:9092,\\\n    CONTROLLER://:9093\nnext=1");
        assert_eq!(
            got,
            vec![
                kv("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
                kv("next", "1")
            ]
        );
    }

    #[test]
    fn even_number_of_trailing_backslashes_does_not_continue() {
        let got = pairs("path=C:\\\\\nnext=1");
        assert_eq!(got, vec![kv("path", "C:\\"), kv("next", "1")]);
    }

    #[test]
    fn escapes_in_keys_and_values_are_decoded() {
        let got = pairs("a\\=b=c\\:d\nkey\\ with\\ space=x\\ty\nu=\\u0041\\u00e9\n");
        assert_eq!(
            got,
            vec![
                kv("a=b", "c:d"),
                kv("key with space", "x\ty"),
                kv("u", "Aé")
            ]
        );
    }

    #[test]
    fn malformed_unicode_escape_is_an_error_with_line_number() {
        let err = parse_properties("ok=1\nbad=\\u00zz\n").unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn crlf_and_cr_line_endings_are_supported() {
        let got = pairs("a=1\r\nb=2\rc=3");
        assert_eq!(got, vec![kv("a", "1"), kv("b", "2"), kv("c", "3")]);
    }

    #[test]
    fn key_without_value_has_empty_value_and_trailing_whitespace_is_kept() {
        let got = pairs("lonely\nx=y  \n");
        assert_eq!(got, vec![kv("lonely", ""), kv("x", "y  ")]);
    }

    #[test]
    fn comment_line_ending_in_backslash_does_not_swallow_next_line() {
        let got = pairs("# comment \\\nk=v\n");
        assert_eq!(got, vec![kv("k", "v")]);
    }

    #[test]
    fn duplicate_key_keeps_last_value() {
        let got = pairs("k=1\nk=2\n");
        assert_eq!(got, vec![kv("k", "2")]);
    }

    #[test]
    fn continuation_at_end_of_file_ends_value() {
        let got = pairs("k=abc\\");
        assert_eq!(got, vec![kv("k", "abc")]);
    }

    #[test]
    fn invalid_utf8_falls_back_to_latin1() {
        assert_eq!(decode_properties_bytes(b"a=\xe9"), "a=é");
        assert_eq!(decode_properties_bytes("a=é".as_bytes()), "a=é");
    }
}

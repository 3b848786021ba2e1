//! Java `.properties` files, as `java.util.Properties.load` reads them, so that a
//! Java producer's `producer.properties` (or the file given to Kafka's console
//! producer with `--producer.config`) configures herald unchanged:
//! [`ProducerBuilder::properties_file`](crate::ProducerBuilder::properties_file).
//!
//! The syntax, as `Properties.load` documents it:
//! - a line whose first non-blank character is `#` or `!` is a comment; blank
//!   lines are skipped; leading spaces, tabs and form feeds are not part of a key;
//! - `key=value`, `key: value` and `key value`: the key ends at the first `=`,
//!   `:` or blank not escaped by a backslash, blanks around that separator are
//!   skipped, and the rest of the line is the value (trailing blanks included);
//! - a line ending in an odd number of backslashes continues on the next line,
//!   whose leading blanks are skipped; a comment line never continues;
//! - escapes in keys and values: `\t`, `\n`, `\r`, `\f`, `\uXXXX` (UTF-16 code
//!   units, surrogate pairs joined), and a backslash before any other character
//!   stands for that character (`\=`, `\:`, `\ `, `\\`, `\#`);
//! - a key given twice: the later value wins.
//!
//! A file is read as UTF-8 (as `Properties.load(Reader)` with UTF-8 would); one
//! that is not valid UTF-8 is read as ISO 8859-1 (as `Properties.load(InputStream)`
//! does). A leading byte order mark is skipped.
//!
//! Errors name the file and the line, and never show a value: a value may be a
//! password or a key.

use std::fmt;
use std::path::Path;

use crate::config::{ProducerConfig, is_secret};
use crate::error::{Error, ErrorKind, Result};

/// The properties of one Java `.properties` file, in file order.
///
/// ```
/// use herald::properties::PropertiesFile;
///
/// let file = PropertiesFile::parse(
///     "producer.properties",
///     "# written for the Java producer\n\
///      bootstrap.servers = broker-1:9092,\\\n    broker-2:9092\n\
///      acks: all\n\
///      client.id herald\\u002d1\n",
/// )?;
/// assert_eq!(file.get("bootstrap.servers"), Some("broker-1:9092,broker-2:9092"));
/// assert_eq!(file.get("acks"), Some("all"));
/// assert_eq!(file.get("client.id"), Some("herald-1"));
/// assert_eq!(file.line_of("client.id"), Some(5));
/// # Ok::<(), herald::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct PropertiesFile {
    source: String,
    entries: Vec<Entry>,
}

#[derive(Clone)]
struct Entry {
    /// The (first) line of the entry, counting from 1.
    line: usize,
    key: String,
    value: String,
}

impl PropertiesFile {
    /// Reads and parses the file at `path`. An unreadable file or a malformed
    /// escape is an error naming the file (and the line).
    pub fn read(path: impl AsRef<Path>) -> Result<PropertiesFile> {
        let path = path.as_ref();
        let source = path.display().to_string();
        let bytes = std::fs::read(path)
            .map_err(|e| Error::config("properties file", format!("cannot read {source}: {e}")))?;
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            // Not UTF-8: ISO 8859-1, each byte one character, as Java's
            // Properties.load(InputStream) reads every file.
            Err(e) => e.into_bytes().iter().map(|&b| char::from(b)).collect(),
        };
        PropertiesFile::parse(source, &text)
    }

    /// Parses `text` in `.properties` syntax; `source` names it in errors (a path,
    /// say).
    pub fn parse(source: impl Into<String>, text: &str) -> Result<PropertiesFile> {
        let source = source.into();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lines = natural_lines(text);
        let mut entries = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            let first = i;
            let start = lines[i].trim_start_matches(BLANK);
            i += 1;
            if start.is_empty() || start.starts_with(['#', '!']) {
                continue;
            }
            let mut logical = start.to_owned();
            while ends_in_continuation(&logical) {
                logical.pop();
                let Some(next) = lines.get(i) else { break };
                logical.push_str(next.trim_start_matches(BLANK));
                i += 1;
            }
            let (key, value) = split_entry(&logical);
            let at = |what: &str, why: String| {
                Error::config("properties file", format!("{source} line {}: {what}: {why}", first + 1))
            };
            let key = unescape(key).map_err(|why| at("in a key", why))?;
            let value =
                unescape(value).map_err(|why| at(&format!("in the value of {}", shown(&key)), why))?;
            entries.push(Entry { line: first + 1, key, value });
        }
        Ok(PropertiesFile { source, entries })
    }

    /// What the properties were read from, as given to [`read`](Self::read) or
    /// [`parse`](Self::parse).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Every key and value in file order, repeats included (applied in this
    /// order, the last one wins).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|e| (e.key.as_str(), e.value.as_str()))
    }

    /// The value of `key`: the last one given, as in `java.util.Properties`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.iter().rev().find(|e| e.key == key).map(|e| e.value.as_str())
    }

    /// The line (from 1) where the value [`get`](Self::get) returns starts.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        self.entries.iter().rev().find(|e| e.key == key).map(|e| e.line)
    }

    /// How many entries the file has (repeats counted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry with its line.
    pub(crate) fn lines(&self) -> impl Iterator<Item = (usize, &str, &str)> {
        self.entries.iter().map(|e| (e.line, e.key.as_str(), e.value.as_str()))
    }

    /// `e`, a setting's error, saying that it comes from `line` of this file. A
    /// key that does not look like a property name is not shown: it may be part
    /// of a value (a password) split from its line.
    pub(crate) fn error_at(&self, line: usize, e: Error) -> Error {
        match e.kind() {
            ErrorKind::Config { name, reason } => {
                let reason = if looks_like_a_name(name) {
                    reason.clone()
                } else {
                    "unknown producer property".to_owned()
                };
                Error::config(shown(name), format!("{reason} ({} line {line})", self.source))
            }
            _ => e,
        }
    }
}

impl ProducerConfig {
    /// Sets every property of a Java `.properties` file, in file order (a key
    /// repeated later wins, as in `java.util.Properties`). An error names the
    /// property, the file and the line.
    pub fn set_properties_file(&mut self, file: &PropertiesFile) -> Result<()> {
        for (line, key, value) in file.lines() {
            self.set(key, value).map_err(|e| file.error_at(line, e))?;
        }
        Ok(())
    }
}

impl fmt::Debug for PropertiesFile {
    /// Values of secret properties (passwords, keys, `sasl.jaas.config`) are masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Value<'a>(&'a Entry);
        impl fmt::Debug for Value<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if is_secret(&self.0.key) { f.write_str("\"****\"") } else { write!(f, "{:?}", self.0.value) }
            }
        }
        let mut m = f.debug_map();
        for e in &self.entries {
            m.entry(&e.key, &Value(e));
        }
        m.finish()?;
        write!(f, " from {:?}", self.source)
    }
}

/// The blanks `Properties.load` skips: space, tab, form feed.
const BLANK: [char; 3] = [' ', '\t', '\x0c'];

/// The text split at `\n`, `\r` and `\r\n`.
fn natural_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find(['\n', '\r']) {
            Some(i) => {
                lines.push(&rest[..i]);
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
            }
            None => {
                lines.push(rest);
                rest = "";
            }
        }
    }
    lines
}

/// Whether a line ends in an odd number of backslashes: the last one joins the
/// next line.
fn ends_in_continuation(line: &str) -> bool {
    line.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// The raw (still escaped) key and value of a logical line that starts with its
/// key.
fn split_entry(line: &str) -> (&str, &str) {
    let mut escaped = false;
    let mut key_end = line.len();
    let mut value_start = line.len();
    let mut has_separator = false;
    for (i, c) in line.char_indices() {
        if !escaped && (c == '=' || c == ':') {
            key_end = i;
            value_start = i + 1;
            has_separator = true;
            break;
        }
        if !escaped && BLANK.contains(&c) {
            key_end = i;
            value_start = i + 1;
            break;
        }
        escaped = c == '\\' && !escaped;
    }
    let mut rest = &line[value_start..];
    loop {
        rest = rest.trim_start_matches(BLANK);
        match rest.strip_prefix(['=', ':']) {
            Some(r) if !has_separator => {
                has_separator = true;
                rest = r;
            }
            _ => break,
        }
    }
    (&line[..key_end], rest)
}

/// Resolves the escapes of a key or value.
fn unescape(raw: &str) -> std::result::Result<String, String> {
    if !raw.contains('\\') {
        return Ok(raw.to_owned());
    }
    let mut units: Vec<u16> = Vec::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
            continue;
        }
        let Some(e) = chars.next() else { break }; // a last lone backslash is dropped, as in Java
        let unit = match e {
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            'f' => '\x0c',
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = (hex.len() == 4 && hex.chars().all(|h| h.is_ascii_hexdigit()))
                    .then(|| u16::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .ok_or("malformed \\uXXXX escape (four hex digits expected)")?;
                units.push(code);
                continue;
            }
            other => other,
        };
        let mut buf = [0u16; 2];
        units.extend_from_slice(unit.encode_utf16(&mut buf));
    }
    String::from_utf16(&units).map_err(|_| "a \\uXXXX escape is half of a UTF-16 surrogate pair".to_owned())
}

/// Whether `key` is a known property or looks like one (letters, digits, `.`,
/// `_`, `-`, with a dot), so that showing it cannot leak part of a value.
fn looks_like_a_name(key: &str) -> bool {
    crate::config::property_info(key).is_some()
        || (key.contains('.')
            && key.len() <= 200
            && key.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)))
}

/// `key` for an error message: itself if it looks like a property name.
fn shown(key: &str) -> String {
    if looks_like_a_name(key) {
        key.to_owned()
    } else {
        "(a key not shown: it does not look like a property name and may be part of a value)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Acks;
    use std::time::Duration;

    fn parse(text: &str) -> Vec<(String, String)> {
        PropertiesFile::parse("test.properties", text)
            .unwrap()
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn separators_and_blanks() {
        assert_eq!(
            parse("a=1\nb: 2\nc 3\n  d\t=\t4\ne\n f =\ng:=5\nh = = 6\ni\x0c\x0c7\nj==8 \n"),
            kv(&[
                ("a", "1"),
                ("b", "2"),
                ("c", "3"),
                ("d", "4"),
                ("e", ""),
                ("f", ""),
                ("g", "=5"),
                ("h", "= 6"),
                ("i", "7"),
                ("j", "=8 "),
            ])
        );
    }

    #[test]
    fn comments_and_blank_lines() {
        assert_eq!(
            parse("# comment\n! also a comment\n   # indented comment\n\n \t \nk=v # not a comment\n#k=x\n"),
            kv(&[("k", "v # not a comment")])
        );
        // A comment line never continues, even ending in a backslash.
        assert_eq!(parse("# comment \\\nk=v\n"), kv(&[("k", "v")]));
    }

    #[test]
    fn continuations() {
        assert_eq!(parse("k = one, \\\n     two, \\\n\tthree\n"), kv(&[("k", "one, two, three")]));
        // Two backslashes are one escaped backslash: no continuation.
        assert_eq!(parse("k=a\\\\\nj=b\n"), kv(&[("k", "a\\"), ("j", "b")]));
        // Three: an escaped backslash, then a continuation.
        assert_eq!(parse("k=a\\\\\\\n  b\n"), kv(&[("k", "a\\b")]));
        // A continued line starting with # is not a comment.
        assert_eq!(parse("k=a\\\n  #b\n"), kv(&[("k", "a#b")]));
        // A blank line after a continuation ends the entry; so does the end of the file.
        assert_eq!(parse("k=a\\\n\nj=b\\"), kv(&[("k", "a"), ("j", "b")]));
        // The key may continue too.
        assert_eq!(parse("lin\\\n  ger.ms=5\n"), kv(&[("linger.ms", "5")]));
    }

    #[test]
    fn line_endings() {
        assert_eq!(parse("a=1\r\nb=2\rc=3\n\rd=4"), kv(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]));
        assert_eq!(parse("k=a\\\r\n  b\r\n"), kv(&[("k", "ab")]));
    }

    #[test]
    fn escapes() {
        assert_eq!(
            parse(
                "key\\ with\\ spaces = v\nk\\=eq\\:colon=v2\ntabs=a\\tb\\nc\\rd\\fe\nplain=\\q\\\\\\#\\!\nu=\\u0041\\u00e9\\u20AC\nemoji=\\uD83D\\uDE00\n"
            ),
            kv(&[
                ("key with spaces", "v"),
                ("k=eq:colon", "v2"),
                ("tabs", "a\tb\nc\rd\x0ce"),
                ("plain", "q\\#!"),
                ("u", "Aé€"),
                ("emoji", "😀"),
            ])
        );
        // Unicode text as it is (UTF-8 files), and a byte order mark skipped.
        assert_eq!(parse("\u{feff}client.id=héraut\n"), kv(&[("client.id", "héraut")]));
    }

    #[test]
    fn repeated_keys_the_last_wins() {
        let f = PropertiesFile::parse("p", "acks=1\nlinger.ms=5\nacks=all\n").unwrap();
        assert_eq!(f.get("acks"), Some("all"));
        assert_eq!(f.line_of("acks"), Some(3));
        assert_eq!(f.len(), 3);
        assert_eq!(f.get("nope"), None);
        assert!(PropertiesFile::parse("p", "# nothing\n\n").unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_file_and_line_and_never_a_value() {
        let e = PropertiesFile::parse("client.properties", "acks=all\n\nsasl.jaas.config=secret-pw-1\\u12\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("client.properties line 3"), "{e}");
        assert!(e.contains("sasl.jaas.config") && e.contains("\\uXXXX"), "{e}");
        assert!(!e.contains("secret-pw-1"), "{e}");
        let e = PropertiesFile::parse("p", "a\\uZZZZb=1\n").unwrap_err().to_string();
        assert!(e.contains("p line 1") && e.contains("in a key"), "{e}");
        let e = PropertiesFile::parse("p", "k=\\uD83D\n").unwrap_err().to_string();
        assert!(e.contains("surrogate"), "{e}");
        let e = PropertiesFile::read("/nonexistent/herald.properties").unwrap_err().to_string();
        assert!(e.contains("cannot read /nonexistent/herald.properties"), "{e}");
    }

    #[test]
    fn secrets_are_masked_in_debug() {
        let f = PropertiesFile::parse(
            "p",
            "sasl.jaas.config=x required password=\"pw-1\";\nssl.key.password=pw-2\nsasl.password=pw-3\nacks=all\n",
        )
        .unwrap();
        let dump = format!("{f:?}");
        assert!(!dump.contains("pw-1") && !dump.contains("pw-2") && !dump.contains("pw-3"), "{dump}");
        assert!(dump.contains("\"acks\": \"all\""), "{dump}");
    }

    #[test]
    fn iso_8859_1_files() {
        let dir = std::env::temp_dir().join(format!("herald-props-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("latin1.properties");
        std::fs::write(&path, b"client.id=h\xe9raut\n").unwrap();
        let f = PropertiesFile::read(&path).unwrap();
        assert_eq!(f.get("client.id"), Some("héraut"));
        assert_eq!(f.source(), path.display().to_string());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn properties_files_apply_in_order_and_errors_name_the_line() {
        let file = PropertiesFile::parse(
            "producer.properties",
            "bootstrap.servers=127.0.0.1:9092,\\\n   127.0.0.1:9093\nacks=1\nacks=all\nlinger.ms=20\n",
        )
        .unwrap();
        let mut c = ProducerConfig::default();
        c.set_properties_file(&file).unwrap();
        c.validate().unwrap();
        assert_eq!(c.bootstrap_servers, ["127.0.0.1:9092", "127.0.0.1:9093"]);
        assert_eq!((c.acks, c.linger), (Acks::All, Duration::from_millis(20)));

        let file = PropertiesFile::parse("p.properties", "acks=all\\\n  \n# x\nlinger.ms = soon\n").unwrap();
        let e = ProducerConfig::default().set_properties_file(&file).unwrap_err().to_string();
        assert!(e.contains("linger.ms") && e.contains("p.properties line 4") && e.contains("soon"), "{e}");

        let file = PropertiesFile::parse("p", "sasl.mechanism=SCRAM-SHA-256\nlinger.msx=5\n").unwrap();
        let e = ProducerConfig::default().set_properties_file(&file).unwrap_err().to_string();
        assert!(e.contains("did you mean linger.ms") && e.contains("p line 2"), "{e}");

        // A key that may be part of a value (a password split from its line) is not shown.
        let file =
            PropertiesFile::parse("p", "sasl.jaas.config=x required\n  password=\"hunter2\";\n").unwrap();
        let e = ProducerConfig::default().set_properties_file(&file).unwrap_err().to_string();
        assert!(e.contains("p line 2") && !e.contains("hunter2"), "{e}");
    }

    /// The parser never panics, and what it reads back from a file it wrote with
    /// every character escaped is what was written.
    #[test]
    fn escaped_round_trip() {
        use proptest::prelude::*;
        proptest!(|(pairs in proptest::collection::vec(("[a-z.]{1,12}", "\\PC{0,20}"), 0..8), noise in "\\PC{0,200}")| {
            let _ = PropertiesFile::parse("noise", &noise);
            let mut text = String::new();
            for (k, v) in &pairs {
                text.push_str(&format!("{} = {}\n", escape(k), escape(v)));
            }
            let f = PropertiesFile::parse("p", &text).unwrap();
            let back: Vec<(String, String)> = f.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
            prop_assert_eq!(back, pairs);
        });
    }

    /// Every character as a `\uXXXX` escape (UTF-16 units).
    fn escape(s: &str) -> String {
        s.encode_utf16().map(|u| format!("\\u{u:04x}")).collect()
    }
}

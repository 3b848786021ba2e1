//! How `herald produce` reads a record out of each input line: the text layout
//! of Kafka's console producer (`org.apache.kafka.tools.LineMessageReader`:
//! `parse.key`, `key.separator`, `parse.headers`, `headers.delimiter`,
//! `headers.separator`, `headers.key.separator`, `null.marker`, `ignore.error`)
//! and kcat's (`-D`, `-K`, `-Z`), or the JSON lines `herald consume --format json`
//! prints.
//!
//! A text line with every part: `h1:v1,h2:v2<TAB>key<TAB>value`.

use std::ops::Range;

use base64::Engine;
use bytes::Bytes;
use herald::Header;
use memchr::memmem;

use crate::CliError;
use crate::produce::ProduceArgs;

/// What an input line holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum InputFormat {
    /// Text: the value, or key and value with --key-separator, headers first
    /// with --parse-headers.
    #[default]
    Text,
    /// One JSON object per line, as `herald consume --format json` prints:
    /// key, value, headers, partition and timestamp; bytes that are not UTF-8 as
    /// {"base64": "…"}.
    Json,
}

/// The console producer's line-reader properties, which -X / --property takes
/// as well as the flags of the same meaning (`--property parse.key=true` as
/// `kafka-console-producer.sh` takes it).
pub const READER_PROPERTIES: [&str; 8] = [
    "parse.key",
    "key.separator",
    "parse.headers",
    "headers.delimiter",
    "headers.separator",
    "headers.key.separator",
    "null.marker",
    "ignore.error",
];

/// How headers are written at the start of a line (`--parse-headers`).
#[derive(Debug)]
struct HeaderSyntax {
    /// Ends the headers (`headers.delimiter`, default a tab).
    delimiter: memmem::Finder<'static>,
    /// Between two headers (`headers.separator`, default `,`).
    separator: memmem::Finder<'static>,
    /// Between a header's key and value (`headers.key.separator`, default `:`).
    key_separator: memmem::Finder<'static>,
}

/// How each input line becomes a record; checked as a whole before anything is
/// read or sent.
#[derive(Debug)]
pub struct LineFormat {
    /// What ends a record in the input (`-D`; default a newline).
    pub delimiter: Vec<u8>,
    json: bool,
    /// JSON input: each line's `partition` is not used.
    ignore_partition: bool,
    key_separator: Option<memmem::Finder<'static>>,
    headers: Option<HeaderSyntax>,
    null_marker: Option<Vec<u8>>,
    empty_as_null: bool,
    ignore_error: bool,
}

/// A record read from a line, before the key and value formats apply.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    /// The line's own headers.
    pub headers: Vec<Header>,
    /// The key; `None` for null.
    pub key: Option<Bytes>,
    /// The value; `None` for null (a tombstone).
    pub value: Option<Bytes>,
    /// The partition the line names (JSON input).
    pub partition: Option<i32>,
    /// The timestamp the line names (JSON input).
    pub timestamp: Option<i64>,
}

/// Decodes the escapes kcat takes in delimiters: `\t`, `\n`, `\r`, `\0`, `\\`
/// and `\xHH`; any other backslash stays as it is.
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let one = match b[i + 1] {
                b't' => Some(b'\t'),
                b'n' => Some(b'\n'),
                b'r' => Some(b'\r'),
                b'0' => Some(0),
                b'\\' => Some(b'\\'),
                _ => None,
            };
            if let Some(c) = one {
                out.push(c);
                i += 2;
                continue;
            }
            if b[i + 1] == b'x' {
                if let Some(c) = s.get(i + 2..i + 4).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    out.push(c);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn bool_property(name: &str, v: &str) -> Result<bool, CliError> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(CliError::usage(format!("-X {name}={v}: true or false"))),
    }
}

impl LineFormat {
    /// The line format the flags (and the reader properties among -X) ask for;
    /// flags that cannot go together are a usage error here.
    pub fn from_args(args: &ProduceArgs) -> Result<LineFormat, CliError> {
        let (mut parse_key, mut key_sep) = (false, args.key_separator.clone());
        let mut parse_headers = args.parse_headers;
        let mut h_delim = args.headers_delimiter.clone();
        let mut h_sep = args.headers_separator.clone();
        let mut h_key_sep = args.headers_key_separator.clone();
        let mut null_marker = args.null_marker.clone();
        let mut ignore_error = args.ignore_error;
        for p in &args.properties {
            let Some((name, v)) = p.split_once('=') else { continue };
            let v = v.to_owned();
            match name {
                "parse.key" => parse_key = bool_property(name, &v)?,
                "key.separator" => key_sep = Some(v),
                "parse.headers" => parse_headers = bool_property(name, &v)?,
                "headers.delimiter" => h_delim = Some(v),
                "headers.separator" => h_sep = Some(v),
                "headers.key.separator" => h_key_sep = Some(v),
                "null.marker" => null_marker = Some(v),
                "ignore.error" => ignore_error = bool_property(name, &v)?,
                _ => {}
            }
        }
        // As the console producer: key.separator alone does not split lines,
        // parse.key=true without it splits at a tab. --key-separator splits.
        let key_sep = match (args.key_separator.is_some(), parse_key, key_sep) {
            (true, _, s) => s,
            (false, true, s) => Some(s.unwrap_or_else(|| "\t".into())),
            (false, false, _) => None,
        };
        let usage = |m: &str| Err(CliError::usage(m.to_owned()));
        let delimiter = unescape(args.line_delimiter.as_deref().unwrap_or("\n"));
        if delimiter.is_empty() {
            return usage("--line-delimiter must not be empty");
        }
        let key_sep = key_sep.map(|s| unescape(&s));
        if key_sep.as_ref().is_some_and(|s| s.is_empty()) {
            return usage("--key-separator must not be empty (without it, lines are values with null keys)");
        }
        if !parse_headers && (h_delim.is_some() || h_sep.is_some() || h_key_sep.is_some()) {
            return usage(
                "--headers-delimiter, --headers-separator and --headers-key-separator apply with --parse-headers only",
            );
        }
        let h = [
            ("--headers-delimiter", unescape(h_delim.as_deref().unwrap_or("\t"))),
            ("--headers-separator", unescape(h_sep.as_deref().unwrap_or(","))),
            ("--headers-key-separator", unescape(h_key_sep.as_deref().unwrap_or(":"))),
        ];
        if parse_headers {
            for (i, (flag, s)) in h.iter().enumerate() {
                if s.is_empty() {
                    return usage(&format!("{flag} must not be empty"));
                }
                // Kafka's LineMessageReader refuses these too: a line could not be read.
                if let Some((other, _)) = h[i + 1..].iter().find(|(_, o)| o == s) {
                    return usage(&format!("{flag} and {other} must differ"));
                }
            }
        }
        let null_marker = null_marker.map(|s| unescape(&s));
        if let Some(m) = &null_marker {
            let seps = [("--key-separator", key_sep.as_ref())]
                .into_iter()
                .chain(h.iter().filter(|_| parse_headers).map(|(flag, s)| (*flag, Some(s))));
            for (flag, s) in seps {
                if s == Some(m) {
                    return usage(&format!("--null-marker and {flag} must differ"));
                }
            }
        }
        let json = args.input_format == InputFormat::Json;
        if json {
            let text_only = [
                ("--key-separator (or parse.key)", key_sep.is_some()),
                ("--parse-headers", parse_headers),
                ("--null-marker", null_marker.is_some()),
                ("--empty-as-null", args.empty_as_null),
                ("--ignore-error", ignore_error),
                ("--line-delimiter", args.line_delimiter.is_some()),
                ("--key-format", args.formats.key_format != crate::formats::Format::String),
                ("--value-format", args.formats.value_format != crate::formats::Format::String),
            ];
            if let Some((flag, _)) = text_only.iter().find(|(_, set)| *set) {
                return usage(&format!(
                    "{flag} applies to --input-format text only: a JSON line names its key, value \
                     (null for a tombstone) and headers itself"
                ));
            }
        } else if args.ignore_partition {
            return usage("--ignore-partition applies to --input-format json only");
        }
        let finder = |s: &[u8]| memmem::Finder::new(s).into_owned();
        Ok(LineFormat {
            delimiter,
            json,
            ignore_partition: args.ignore_partition,
            key_separator: key_sep.as_deref().map(finder),
            headers: parse_headers.then(|| HeaderSyntax {
                delimiter: finder(&h[0].1),
                separator: finder(&h[1].1),
                key_separator: finder(&h[2].1),
            }),
            null_marker,
            empty_as_null: args.empty_as_null,
            ignore_error,
        })
    }

    /// Lines are values, or key and value at the separator, sent as they are:
    /// nothing else to read out of them.
    pub fn is_plain(&self) -> bool {
        !self.json && self.headers.is_none() && self.null_marker.is_none() && !self.empty_as_null
    }

    /// Where `line` splits into key and value (`None` for no key); without the
    /// separator an error, or with `ignore.error` the whole line as the value.
    pub fn split_key(&self, line: &[u8]) -> Result<(Option<Range<usize>>, Range<usize>), String> {
        let Some(sep) = &self.key_separator else { return Ok((None, 0..line.len())) };
        match sep.find(line) {
            Some(i) => Ok((Some(0..i), i + sep.needle().len()..line.len())),
            None if self.ignore_error => Ok((None, 0..line.len())),
            None => {
                let sep = String::from_utf8_lossy(sep.needle());
                Err(format!("no key separator {sep:?} in the line; not sent"))
            }
        }
    }

    /// The record `chunk[text]` holds.
    pub fn parse(&self, chunk: &Bytes, text: Range<usize>) -> Result<Parsed, String> {
        if self.json {
            return self.parse_json(&chunk[text]);
        }
        let mut rest = text;
        let mut headers = Vec::new();
        if let Some(h) = &self.headers {
            match h.delimiter.find(&chunk[rest.clone()]) {
                Some(i) => {
                    headers = self.headers_of(h, &chunk[rest.start..rest.start + i])?;
                    rest.start += i + h.delimiter.needle().len();
                }
                None if self.ignore_error => {}
                None => {
                    let d = String::from_utf8_lossy(h.delimiter.needle());
                    return Err(format!("no headers delimiter {d:?} in the line; not sent"));
                }
            }
        }
        let (key, value) = self.split_key(&chunk[rest.clone()])?;
        let part = |r: Range<usize>| self.nulled(chunk.slice(rest.start + r.start..rest.start + r.end));
        Ok(Parsed { headers, key: key.and_then(part), value: part(value), ..Parsed::default() })
    }

    /// `None` when `b` stands for null (the null marker, or empty with -Z).
    fn nulled(&self, b: Bytes) -> Option<Bytes> {
        let null = self.null_marker.as_deref() == Some(&b[..]) || (self.empty_as_null && b.is_empty());
        (!null).then_some(b)
    }

    /// `k1:v1,k2:v2`: a header without the key separator has a null value, as
    /// does one whose value is the null marker; the whole part equal to the
    /// null marker is no headers, and an empty one too.
    fn headers_of(&self, h: &HeaderSyntax, part: &[u8]) -> Result<Vec<Header>, String> {
        if part.is_empty() || self.null_marker.as_deref() == Some(part) {
            return Ok(Vec::new());
        }
        let sep = h.separator.needle();
        let mut out = Vec::new();
        let mut start = 0;
        loop {
            let end = h.separator.find(&part[start..]).map_or(part.len(), |i| start + i);
            let pair = &part[start..end];
            let (k, v) = match h.key_separator.find(pair) {
                Some(i) => {
                    (&pair[..i], Some(Bytes::copy_from_slice(&pair[i + h.key_separator.needle().len()..])))
                }
                None => (pair, None),
            };
            if self.null_marker.as_deref() == Some(k) {
                return Err(
                    "a header key equal to the null marker; header keys cannot be null; not sent".into()
                );
            }
            let key =
                std::str::from_utf8(k).map_err(|_| "a header key that is not UTF-8; not sent".to_owned())?;
            let value =
                v.and_then(|v| if self.null_marker.as_deref() == Some(&v[..]) { None } else { Some(v) });
            out.push(Header { key: key.to_owned(), value });
            if end == part.len() {
                return Ok(out);
            }
            start = end + sep.len();
        }
    }

    fn parse_json(&self, line: &[u8]) -> Result<Parsed, String> {
        let r: JsonRecord =
            serde_json::from_slice(line).map_err(|e| format!("not a JSON record ({e}); not sent"))?;
        let headers = r
            .headers
            .into_iter()
            .map(|h| Ok(Header { key: h.key, value: h.value.map(JsonBytes::bytes).transpose()? }))
            .collect::<Result<_, String>>()?;
        Ok(Parsed {
            headers,
            key: r.key.map(JsonBytes::bytes).transpose()?,
            value: r.value.map(JsonBytes::bytes).transpose()?,
            partition: if self.ignore_partition { None } else { r.partition },
            timestamp: r.timestamp,
        })
    }
}

/// A line of `herald consume --format json`; its other fields (offset,
/// timestamp_type) are not used.
#[derive(serde::Deserialize)]
struct JsonRecord {
    #[serde(default)]
    key: Option<JsonBytes>,
    #[serde(default)]
    value: Option<JsonBytes>,
    #[serde(default)]
    headers: Vec<JsonHeader>,
    #[serde(default)]
    partition: Option<i32>,
    #[serde(default)]
    timestamp: Option<i64>,
}

#[derive(serde::Deserialize)]
struct JsonHeader {
    key: String,
    #[serde(default)]
    value: Option<JsonBytes>,
}

/// Bytes as `herald consume --format json` prints them: a string when they are
/// UTF-8, else `{"base64": "…"}`.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum JsonBytes {
    Text(String),
    Base64 { base64: String },
}

impl JsonBytes {
    fn bytes(self) -> Result<Bytes, String> {
        match self {
            JsonBytes::Text(s) => Ok(Bytes::from(s)),
            JsonBytes::Base64 { base64 } => base64::engine::general_purpose::STANDARD
                .decode(base64.as_bytes())
                .map(Bytes::from)
                .map_err(|e| format!("bad base64 ({e}); not sent")),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ProduceArgs,
    }

    fn format(flags: &[&str]) -> Result<LineFormat, String> {
        let cli = Cli::try_parse_from([&["herald", "-t", "t"], flags].concat()).map_err(|e| e.to_string())?;
        LineFormat::from_args(&cli.args).map_err(|e| e.to_string())
    }

    fn parse(f: &LineFormat, line: &str) -> Result<Parsed, String> {
        let b = Bytes::copy_from_slice(line.as_bytes());
        f.parse(&b, 0..b.len())
    }

    fn h(k: &str, v: Option<&str>) -> Header {
        Header { key: k.into(), value: v.map(|v| Bytes::copy_from_slice(v.as_bytes())) }
    }

    fn b(s: &str) -> Option<Bytes> {
        Some(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn console_producer_lines_with_headers_key_and_null_marker() {
        let f = format(&["--parse-headers", "--key-separator", "\\t", "--null-marker", "NULL"]).unwrap();
        let p = parse(&f, "h1:v1,h2:v2,h3,h4:NULL\tk\tv").unwrap();
        assert_eq!(p.headers, vec![h("h1", Some("v1")), h("h2", Some("v2")), h("h3", None), h("h4", None)]);
        assert_eq!((p.key, p.value), (b("k"), b("v")));
        let p = parse(&f, "NULL\tNULL\tNULL").unwrap();
        assert_eq!((p.headers.len(), p.key, p.value), (0, None, None), "a tombstone with a null key");
        let p = parse(&f, "\tk\tv\twith tab").unwrap();
        assert_eq!((p.headers.len(), p.value), (0, b("v\twith tab")));
        assert!(parse(&f, "k\tv").unwrap_err().contains("no key separator"));
        assert!(parse(&f, "no delimiters").unwrap_err().contains("no headers delimiter"));
        assert!(parse(&f, "NULL:x\tk\tv").unwrap_err().contains("header keys cannot be null"));
    }

    #[test]
    fn the_same_through_console_producer_properties_and_ignore_error() {
        let f = format(&[
            "-X",
            "parse.key=true",
            "--property",
            "parse.headers=true",
            "-X",
            "headers.delimiter=|",
            "-X",
            "headers.separator=;",
            "-X",
            "headers.key.separator==",
            "-X",
            "ignore.error=true",
        ])
        .unwrap();
        let p = parse(&f, "a=1;b=2|k\tv").unwrap();
        assert_eq!((p.headers, p.key, p.value), (vec![h("a", Some("1")), h("b", Some("2"))], b("k"), b("v")));
        let p = parse(&f, "just a value").unwrap();
        assert_eq!((p.headers.len(), p.key, p.value), (0, None, b("just a value")), "ignore.error");
    }

    #[test]
    fn empty_as_null_and_delimiter_escapes() {
        let f = format(&["-K", ":", "-Z", "-D", "\\x1e"]).unwrap();
        assert_eq!(f.delimiter, vec![0x1e]);
        let p = parse(&f, ":").unwrap();
        assert_eq!((p.key, p.value), (None, None));
        assert!(!f.is_plain());
        assert!(format(&["-K", ":"]).unwrap().is_plain());
        assert_eq!(unescape("a\\tb\\\\n\\q\\x4"), b"a\tb\\n\\q\\x4");
    }

    #[test]
    fn json_lines_as_consume_prints_them() {
        let f = format(&["--input-format", "json"]).unwrap();
        let line = r#"{"partition":2,"offset":9,"timestamp":1700000000000,"timestamp_type":"CreateTime","key":{"base64":"/wA="},"headers":[{"key":"n","value":null},{"key":"e","value":""}],"value":null}"#;
        let p = parse(&f, line).unwrap();
        assert_eq!(p.key.as_deref(), Some(&[0xff, 0][..]));
        assert_eq!((p.value, p.partition, p.timestamp), (None, Some(2), Some(1_700_000_000_000)));
        assert_eq!(p.headers, vec![h("n", None), h("e", Some(""))]);
        let p = parse(&format(&["--input-format", "json", "--ignore-partition"]).unwrap(), line).unwrap();
        assert_eq!(p.partition, None);
        let p = parse(&f, r#"{"value":"v"}"#).unwrap();
        assert_eq!((p.key, p.value, p.headers.len()), (None, b("v"), 0));
        assert!(parse(&f, "v").unwrap_err().contains("not a JSON record"));
        assert!(parse(&f, r#"{"value":{"base64":"*"}}"#).unwrap_err().contains("bad base64"));
    }

    #[test]
    fn impossible_combinations_are_refused_up_front() {
        let err = |flags: &[&str]| format(flags).unwrap_err();
        assert!(err(&["--key-separator", ""]).contains("--key-separator must not be empty"));
        assert!(err(&["-D", ""]).contains("--line-delimiter must not be empty"));
        assert!(err(&["--headers-separator", ";"]).contains("with --parse-headers only"));
        assert!(err(&["--parse-headers", "--headers-separator", ":"]).contains("must differ"));
        assert!(err(&["--parse-headers", "--headers-delimiter", ""]).contains("must not be empty"));
        assert!(err(&["-K", ",", "--null-marker", ","]).contains("--null-marker and --key-separator"));
        assert!(
            err(&["--parse-headers", "--null-marker", ","]).contains("--null-marker and --headers-separator")
        );
        for flags in [
            &["--parse-headers"][..],
            &["-K", ":"],
            &["-X", "parse.key=true"],
            &["--null-marker", "x"],
            &["-Z"],
            &["-D", ";"],
            &["--value-format", "int"],
        ] {
            let e = err(&[&["--input-format", "json"], flags].concat());
            assert!(e.contains("applies to --input-format text only"), "{flags:?}: {e}");
        }
        assert!(err(&["--ignore-partition"]).contains("--input-format json only"));
        assert!(err(&["-X", "parse.key=yes"]).contains("true or false"));
    }
}

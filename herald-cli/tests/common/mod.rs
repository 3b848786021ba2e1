//! Helpers the CLI suites share: run the `herald` binary, read its JSON report.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// Runs `herald` with `args`, feeding it `stdin`; waits for it to exit.
///
/// The input is written from a thread of its own while the output is read, as a
/// shell pipeline does: `herald produce` reads no faster than it can report, so
/// writing a large input before reading any output would block both sides.
pub fn herald(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run herald");
    let mut input = child.stdin.take().unwrap();
    let bytes = stdin.as_bytes().to_vec();
    let writer = std::thread::spawn(move || {
        // herald may exit before reading everything (a usage error): not ours to judge here.
        let _ = input.write_all(&bytes);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// The JSON objects `herald` printed to stdout, one per line (`--report json`).
pub fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

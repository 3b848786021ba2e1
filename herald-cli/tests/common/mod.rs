//! Helpers the CLI suites share: run the `herald` binary, read its JSON report.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// Runs `herald` with `args`, feeding it `stdin`; waits for it to exit.
pub fn herald(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run herald");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// The JSON objects `herald` printed to stdout, one per line (`--report json`).
pub fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

//! stdin is written from its own task while stdout/stderr are drained, so
//! a full pipe never deadlocks; a child that exits without reading its stdin
//! is not a failure.

use crate::common::*;
use std::time::{Duration, Instant};

#[test]
fn grep_reads_its_stdin_from_the_job_file() {
    let ws = Workspace::new(
        r#"
[[job]]
name = "hello"
cmd = ["grep", "Hello"]
stdin = "Hello from parent process\nnothing here\n"
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0);
    assert_eq!(run.job("hello")["stdout"], "Hello from parent process\n");
}

#[test]
fn large_stdin_and_large_stdout_at_once_do_not_deadlock() {
    // 8 MiB in, 8 MiB out of `cat`: far beyond both pipe buffers.
    let payload = "0123456789abcdef".repeat(512 * 1024);
    let ws = Workspace::new(&format!(
        "[[job]]\nname = \"cat\"\ncmd = [\"cat\"]\ncapture_limit = \"16MiB\"\nstdin = \"{payload}\"\n"
    ));
    let start = Instant::now();
    let run = ws.run(&[]);
    assert!(start.elapsed() < Duration::from_secs(60));
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let job = run.job("cat");
    assert_eq!(job["stdout"].as_str().unwrap().len(), payload.len());
    assert_eq!(job["stdout_truncated"], false);
}

#[test]
fn a_child_that_never_reads_64_mib_of_stdin_is_not_failed() {
    let payload = "x".repeat(64 * 1024 * 1024);
    let ws = Workspace::new(&format!(
        "[[job]]\nname = \"ignores-stdin\"\nsh = \"echo done\"\nstdin = \"{payload}\"\n"
    ));
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let job = run.job("ignores-stdin");
    assert_eq!(job["status"], "succeeded");
    assert_eq!(job["stdout"], "done\n");
}

#[test]
fn stdin_from_a_file_relative_to_the_job_file() {
    let ws = Workspace::new(
        r#"
[[job]]
name = "count"
cmd = ["wc", "-l"]
stdin = { file = "lines.txt" }
"#,
    );
    std::fs::write(ws.path("lines.txt"), "a\nb\nc\n").unwrap();
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0);
    assert_eq!(run.job("count")["stdout"].as_str().unwrap().trim(), "3");
}

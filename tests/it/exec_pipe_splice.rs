//! `drover exec --pipe` with blocks of 256 KiB and more: blocks move by
//! splice(2) from drover's stdin into a pipe per job (or, bigger than a pipe
//! can be made, into a memory file), and only the last 64 KiB of each block
//! passes through drover. Every byte reaches exactly one
//! job, in order, each block ends at a newline (a line longer than the
//! window included), and --retries (which needs a block twice) still works.

use crate::common::*;

use std::fs::File;
use std::process::Stdio;

/// About 8 MiB of lines of many lengths, with one line of 200 KiB (longer
/// than the 64 KiB window) in the middle.
fn input() -> Vec<u8> {
    let mut data = Vec::new();
    for i in 0..400_000u32 {
        let width = (i % 37) as usize;
        data.extend_from_slice(format!("{i:0width$}\n").as_bytes());
        if i == 200_000 {
            data.extend(std::iter::repeat_n(b'x', 200 * 1024));
            data.push(b'\n');
        }
    }
    data
}

fn exec_with_stdin_file(ws: &Workspace, args: &[&str], data: &[u8]) -> std::process::Output {
    let path = ws.path("input.txt");
    std::fs::write(&path, data).unwrap();
    drover()
        .current_dir(ws.dir.path())
        .arg("exec")
        .args(args)
        .stdin(File::open(&path).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run drover exec")
}

/// drover succeeded and its stdout is `data`, byte for byte.
fn assert_copied(out: &std::process::Output, data: &[u8]) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout == data,
        "the jobs' output differs from the input ({} bytes vs {})",
        out.stdout.len(),
        data.len()
    );
}

#[test]
fn a_file_on_stdin_reaches_the_jobs_whole_and_in_order() {
    let ws = Workspace::new("");
    let data = input();
    let out = exec_with_stdin_file(
        &ws,
        &["--pipe", "--block", "256k", "-k", "-j", "3", "cat"],
        &data,
    );
    assert_copied(&out, &data);
}

#[test]
fn every_block_ends_at_a_newline() {
    let ws = Workspace::new("");
    let data = input();
    // Each job prints the last byte of its block.
    let out = exec_with_stdin_file(
        &ws,
        &[
            "--pipe",
            "--block",
            "256k",
            "-k",
            "--",
            "sh",
            "-c",
            "tail -c 1",
        ],
        &data,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let blocks = out.stdout.len();
    assert!(blocks >= data.len() / (256 * 1024), "only {blocks} blocks");
    assert!(
        out.stdout.iter().all(|&b| b == b'\n'),
        "a block ended inside a line"
    );
}

#[test]
fn a_retried_job_gets_its_block_again() {
    let ws = Workspace::new("");
    let data = input();
    // One job at a time; each fails on its first attempt without reading,
    // and copies its block on the second.
    let out = exec_with_stdin_file(
        &ws,
        &[
            "--pipe",
            "--block",
            "256k",
            "-k",
            "-j",
            "1",
            "--retries",
            "2",
            "--",
            "sh",
            "-c",
            r#"if [ -e failed-once ]; then rm failed-once; cat; else touch failed-once; exit 1; fi"#,
        ],
        &data,
    );
    assert_copied(&out, &data);
}

#[test]
fn blocks_bigger_than_a_pipe_reach_the_jobs_whole_and_in_order() {
    // 3 MiB blocks: more than an unprivileged pipe holds (1 MiB), so they
    // go through memory files where F_SETPIPE_SZ refuses.
    let ws = Workspace::new("");
    let data = input();
    let out = exec_with_stdin_file(
        &ws,
        &["--pipe", "--block", "3M", "-k", "-j", "2", "cat"],
        &data,
    );
    assert_copied(&out, &data);
}

//! `drover exec ... | head -1`: when the reader of drover's stdout goes
//! away, drover stops its running jobs (whole process groups), starts no
//! more, and exits promptly instead of running everything to the end.

use crate::common::*;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Starts `drover exec ARGS` in `dir`, stdout a pipe.
fn spawn_in(dir: &Path, args: &[&str]) -> Child {
    drover()
        .arg("exec")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn drover exec")
}

/// Reads one line of drover's stdout (with a deadline), then closes the
/// pipe as `head -1` does; returns the line.
fn read_one_line_and_close(child: &mut Child) -> String {
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        // `reader` drops here: the read end of the pipe is closed.
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("a first line within 20 s")
}

/// Waits for drover to exit within `limit`; kills it (the process we
/// started, by its id) and fails if it does not.
fn exits_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    if !wait_until(limit, || child.try_wait().unwrap().is_some()) {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "drover still ran {:?} after its stdout closed",
            started.elapsed()
        );
    }
    child.wait().unwrap()
}

/// Grouped: job 1 waits (at most 10 s) until job 2's shell and sleep have
/// recorded their pids, then prints 100000 lines and ends; the others sleep
/// 30 s.
const GROUPED_JOB: &str = "echo $$ >> pids; \
    if [ \"$1\" = 1 ]; then \
        n=0; while [ $(wc -l < pids) -lt 3 ] && [ $n -lt 1000 ]; do sleep 0.01; n=$((n+1)); done; \
        seq 100000; \
    else sleep 30 & echo $! >> pids; wait; fi";

/// Line-buffered: every job starts a 30 s sleep, then prints 100000 lines.
const STREAMING_JOB: &str = "echo $$ >> pids; sleep 30 & echo $! >> pids; seq 100000; wait";

#[test]
fn grouped_output_into_a_closed_pipe_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    // Job 1 prints 100000 lines at once and ends; the others sleep 30 s.
    let mut child = spawn_in(
        dir.path(),
        &[
            "-j",
            "2",
            "--",
            "sh",
            "-c",
            GROUPED_JOB,
            "sh",
            "{}",
            ":::",
            "1",
            "2",
            "3",
            "4",
            "5",
            "6",
        ],
    );
    let line = read_one_line_and_close(&mut child);
    assert_eq!(line, "1\n");
    let status = exits_within(&mut child, Duration::from_secs(15));
    assert!(
        status.code().is_some(),
        "drover exited, not killed: {status:?}"
    );

    let pids = pids_in(&dir.path().join("pids"));
    // Job 1's shell, job 2's shell and sleep, perhaps job 3's; never all
    // six jobs.
    assert!(pids.len() >= 3, "{pids:?}");
    assert!(pids.len() < 12, "no new jobs after stdout closed: {pids:?}");
    assert_all_gone(&pids);
}

#[test]
fn line_buffered_output_into_a_closed_pipe_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    // Every job prints and then sleeps 30 s: only the closed pipe ends them.
    let mut child = spawn_in(
        dir.path(),
        &[
            "-j",
            "2",
            "--line-buffer",
            "--",
            "sh",
            "-c",
            STREAMING_JOB,
            "sh",
            "{}",
            ":::",
            "1",
            "2",
            "3",
            "4",
        ],
    );
    let line = read_one_line_and_close(&mut child);
    assert_eq!(line, "1\n");
    let status = exits_within(&mut child, Duration::from_secs(15));
    assert!(
        status.code().is_some(),
        "drover exited, not killed: {status:?}"
    );

    let pids = pids_in(&dir.path().join("pids"));
    // Job 1's shell and sleep at least; only the first two jobs ran.
    assert!(pids.len() >= 2, "{pids:?}");
    assert!(pids.len() <= 4, "{pids:?}");
    assert_all_gone(&pids);
}

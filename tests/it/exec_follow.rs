//! Grouped output in a fixed order (`-k`, or `-j 1`): the job printed next
//! is written out while it runs, not when it ends. The bytes and their
//! order are those of grouped output; a job far ahead of the reader of
//! drover's stdout is held back (stopped) rather than stored.

use crate::common::*;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Starts `drover exec ARGS` in `dir` (stdout piped, stderr into stdout
/// when `merged`).
fn spawn_in(dir: &Path, args: &[&str], merged: bool) -> Child {
    let mut cmd = match merged {
        true => {
            let mut sh = std::process::Command::new("sh");
            sh.arg("-c")
                .arg("exec \"$0\" exec \"$@\" 2>&1")
                .arg(env!("CARGO_BIN_EXE_drover"))
                .args(args);
            sh
        }
        false => {
            let mut cmd = drover();
            cmd.arg("exec").args(args).stderr(Stdio::piped());
            cmd
        }
    };
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn drover exec")
}

/// drover's stdout, line by line, from a thread: each line is received
/// with a deadline.
fn lines_of_stdout(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn next_line(lines: &mpsc::Receiver<String>, what: &str) -> String {
    lines
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("no line within 20 s: {what}"))
}

/// Job 1 prints a line, then waits (at most 20 s) for the file `go`, then
/// prints another; job 2 prints two lines at once.
const WAITS_FOR_GO: &str = "echo start {}; \
    if [ {} = 1 ]; then n=0; while [ ! -e go ] && [ $n -lt 2000 ]; do sleep 0.01; n=$((n+1)); done; fi; \
    echo end {}";

fn first_job_is_printed_while_it_runs(args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut all = args.to_vec();
    all.extend(["sh", "-c", WAITS_FOR_GO, ":::", "1", "2"]);
    let mut child = spawn_in(dir.path(), &all, false);
    let lines = lines_of_stdout(&mut child);
    // Job 1 cannot end before `go` exists: its first line comes while it runs.
    assert_eq!(
        next_line(&lines, "job 1's first line while it runs"),
        "start 1"
    );
    std::fs::write(dir.path().join("go"), "").unwrap();
    let rest: Vec<String> = (0..3).map(|_| next_line(&lines, "the rest")).collect();
    assert_eq!(rest, ["end 1", "start 2", "end 2"]);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "drover failed: {out:?}");
}

#[test]
fn keep_order_prints_the_next_job_while_it_runs() {
    first_job_is_printed_while_it_runs(&["-k", "-j", "2"]);
}

#[test]
fn one_job_at_a_time_prints_it_while_it_runs() {
    first_job_is_printed_while_it_runs(&["-j", "1"]);
}

/// A job's stderr still comes after all of its stdout, as in grouped output
/// (here both into one pipe).
#[test]
fn stderr_still_follows_the_whole_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let job = "echo out-{}; echo err-{} >&2; \
        if [ {} = 1 ]; then n=0; while [ ! -e go ] && [ $n -lt 2000 ]; do sleep 0.01; n=$((n+1)); done; fi; \
        echo more-{}";
    let mut child = spawn_in(
        dir.path(),
        &["-k", "-j", "2", "sh", "-c", job, ":::", "1", "2"],
        true,
    );
    let lines = lines_of_stdout(&mut child);
    assert_eq!(next_line(&lines, "job 1's stdout while it runs"), "out-1");
    std::fs::write(dir.path().join("go"), "").unwrap();
    let rest: Vec<String> = (0..5).map(|_| next_line(&lines, "the rest")).collect();
    assert_eq!(rest, ["more-1", "err-1", "out-2", "more-2", "err-2"]);
    assert!(child.wait().unwrap().success());
}

/// Jobs of 0 to 9 MB (more than one look of the printer each), one letter
/// each: drover's stdout is every job's bytes whole, in input order.
fn outputs_whole_and_in_order(args: &[&str]) {
    let sizes: Vec<u64> = (1..=12u64).map(|i| (i * 790_919) % 9_000_000).collect();
    let letters: Vec<char> = ('a'..='l').collect();
    let items: Vec<String> = sizes
        .iter()
        .zip(&letters)
        .map(|(n, c)| format!("{n}:{c}"))
        .collect();
    let job = "n=${1%:*}; c=${1#*:}; head -c $n /dev/zero | tr '\\0' $c";
    let mut all = args.to_vec();
    all.extend(["sh", "-c", job, "sh", ":::"]);
    all.extend(items.iter().map(String::as_str));
    let out = drover()
        .arg("exec")
        .args(&all)
        .stdin(Stdio::null())
        .output()
        .expect("run drover exec");
    assert!(out.status.success(), "drover failed: {:?}", out.status);
    let mut want = Vec::new();
    for (n, c) in sizes.iter().zip(&letters) {
        want.extend(std::iter::repeat_n(*c as u8, *n as usize));
    }
    assert_eq!(out.stdout.len(), want.len(), "bytes in all");
    // Runs of one letter, to say where it differs.
    let runs = |b: &[u8]| {
        let mut r: Vec<(u8, usize)> = Vec::new();
        for &x in b {
            match r.last_mut() {
                Some((l, n)) if *l == x => *n += 1,
                _ => r.push((x, 1)),
            }
        }
        r
    };
    assert_eq!(runs(&out.stdout), runs(&want));
}

#[test]
fn keep_order_outputs_stay_whole_and_in_order() {
    outputs_whole_and_in_order(&["-k", "-j", "3"]);
}

#[test]
fn one_at_a_time_outputs_stay_whole_and_in_order() {
    outputs_whole_and_in_order(&["-j", "1"]);
}

/// One of `/proc/PID/stat`'s state letters (None once the process is gone).
fn state_of(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// A job writing 300 MB to a reader that reads nothing yet is stopped while
/// it is far ahead, stays stopped, and goes on as the reader reads: every
/// byte arrives.
#[test]
fn a_job_far_ahead_of_the_reader_is_held_back() {
    const BYTES: u64 = 300_000_000;
    let dir = tempfile::tempdir().unwrap();
    let job = format!("echo $$ > pid; exec head -c {BYTES} /dev/zero");
    let mut child = spawn_in(
        dir.path(),
        &["-j", "1", "sh", "-c", &job, ":::", "1"],
        false,
    );
    let pid_file = dir.path().join("pid");
    let pid = || pids_in(&pid_file).first().copied();
    assert!(
        wait_until(Duration::from_secs(20), || pid().is_some_and(|p| state_of(
            p
        ) == Some(
            'T'
        ))),
        "the job was never stopped (state {:?})",
        pid().map(state_of)
    );
    let pid = pid().unwrap();
    // Stored rather than held, it would run on to its end.
    assert!(
        !wait_until(Duration::from_millis(500), || state_of(pid) != Some('T')),
        "the job went on while nothing was read (state {:?})",
        state_of(pid)
    );
    let mut stdout = child.stdout.take().unwrap();
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    let started = Instant::now();
    loop {
        let n = stdout.read(&mut buf).expect("read drover's stdout");
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().all(|&b| b == 0), "only zeros were written");
        total += n as u64;
    }
    assert_eq!(total, BYTES, "read for {:?}", started.elapsed());
    assert!(child.wait().unwrap().success());
}

/// A stopped job that times out is continued with its SIGTERM, so it ends
/// then, not after the kill grace.
#[test]
fn a_stopped_job_that_times_out_ends_on_sigterm() {
    let started = Instant::now();
    let out = drover()
        .args([
            "exec",
            "--timeout",
            "1",
            "--kill-grace",
            "60",
            "sh",
            "-c",
            "kill -STOP $$; echo not here",
            ":::",
            "1",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run drover exec");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "took {took:?}: SIGTERM waited for the kill grace"
    );
    assert_eq!(out.status.code(), Some(1), "one job failed: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("timed out"),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

/// `--halt now` kills the job being followed: what it wrote before is out
/// already, nothing more of it is, and the failed job is printed once.
#[test]
fn a_followed_job_killed_by_halt_prints_no_more() {
    let dir = tempfile::tempdir().unwrap();
    // Job 1 prints, then waits (at most 20 s); job 2 fails once `go` exists.
    let job = "if [ {} = 1 ]; then echo early-1; n=0; while [ $n -lt 2000 ]; do sleep 0.01; n=$((n+1)); done; echo late-1; \
        else n=0; while [ ! -e go ] && [ $n -lt 2000 ]; do sleep 0.01; n=$((n+1)); done; echo out-2; exit 1; fi";
    let mut child = spawn_in(
        dir.path(),
        &[
            "-k",
            "-j",
            "2",
            "--halt",
            "now,fail=1",
            "sh",
            "-c",
            job,
            ":::",
            "1",
            "2",
        ],
        false,
    );
    let lines = lines_of_stdout(&mut child);
    assert_eq!(next_line(&lines, "job 1's line while it runs"), "early-1");
    std::fs::write(dir.path().join("go"), "").unwrap();
    let status = child.wait().unwrap();
    let rest: Vec<String> = lines.iter().collect();
    assert_eq!(rest, ["out-2"]);
    assert_eq!(status.code(), Some(1), "the failed job's exit code");
}

/// The joblog's Receive column counts every byte of a followed job's
/// stdout, the part written out while it ran included.
#[test]
fn joblog_counts_a_followed_jobs_whole_output() {
    let dir = tempfile::tempdir().unwrap();
    // Job 1 writes 20 MB, waits (at most 20 s) for `go`, then 20 MB more.
    let job = "if [ {} = 1 ]; then head -c 20000000 /dev/zero; \
        n=0; while [ ! -e go ] && [ $n -lt 2000 ]; do sleep 0.01; n=$((n+1)); done; \
        head -c 20000000 /dev/zero; else echo 123456789; fi";
    let mut child = spawn_in(
        dir.path(),
        &[
            "-j", "1", "--joblog", "log", "sh", "-c", job, ":::", "1", "2",
        ],
        false,
    );
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0usize;
    // Job 1 cannot end before `go` exists: its first bytes come while it runs.
    while total < 20_000_000 {
        let n = stdout.read(&mut buf).expect("read drover's stdout");
        assert!(n > 0, "drover's stdout ended after {total} bytes");
        total += n;
    }
    std::fs::write(dir.path().join("go"), "").unwrap();
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    assert_eq!(total + rest.len(), 40_000_010);
    assert!(rest.ends_with(b"\x00123456789\n"), "job 2 last");
    assert!(child.wait().unwrap().success());
    let log = std::fs::read_to_string(dir.path().join("log")).expect("joblog written");
    let received: Vec<&str> = log
        .lines()
        .skip(1)
        .map(|row| row.split('\t').nth(5).expect("a Receive column"))
        .collect();
    assert_eq!(received, ["40000000", "10"], "joblog:\n{log}");
}

//! `drover exec --timeout`: a job that overstays is stopped with its whole
//! process group (SIGTERM, `--kill-grace`, SIGKILL), counts as failed in the
//! exit code, and shows `timed_out` in the report.

use crate::common::*;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Runs `drover exec ARGS` in `dir` with stdin closed.
fn exec_in(dir: &Path, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = drover()
        .arg("exec")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run drover exec");
    (out, started.elapsed())
}

fn report(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report written");
    serde_json::from_str(&text).expect("report is JSON")
}

/// Every pid recorded in the `pid_*` files of `dir`.
fn recorded_pids(dir: &Path) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("pid_") {
            pids.extend(pids_in(&path));
        }
    }
    pids
}

// The job's shell and a background pipeline, all in the job's group; each
// records its pid ($! is the last process of the pipeline).
const POLITE: &str = "echo $$ >> pid_$1; \
    sh -c 'echo $$ >> \"$0\"; exec sleep 100' pid_$1 | cat & echo $! >> pid_$1; wait";
// Ignores SIGTERM, and so does the sleep it starts: only SIGKILL stops them.
const STUBBORN: &str = "trap '' TERM; echo $$ >> pid_$1; sleep 100 & echo $! >> pid_$1; wait";

#[test]
fn overstaying_jobs_are_stopped_with_their_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let (out, took) = exec_in(
        dir.path(),
        &[
            "-j",
            "3",
            "--timeout",
            "0.5",
            "--kill-grace",
            "0.5",
            "--report",
            "report.json",
            "--",
            "sh",
            "-c",
            POLITE,
            "sh",
            "{}",
            ":::",
            "a",
            "b",
            "c",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "three failed jobs; {stderr}");
    assert!(took < Duration::from_secs(15), "took {took:?}");

    let report = report(dir.path());
    assert_eq!(report["summary"]["timed_out"], 3, "{report:#}");
    assert_eq!(report["summary"]["succeeded"], 0, "{report:#}");
    for name in ["1", "2", "3"] {
        let job = job(&report, name);
        assert_eq!(job["status"], "timed_out", "{job}");
        let ms = job["duration_ms"].as_u64().unwrap();
        assert!((450..5_000).contains(&ms), "ran {ms} ms: {job}");
    }

    for item in ["a", "b", "c"] {
        let pids = pids_in(&dir.path().join(format!("pid_{item}")));
        assert_eq!(pids.len(), 3, "job {item}: sh, sleep, cat: {pids:?}");
    }
    assert_all_gone(&recorded_pids(dir.path()));
}

#[test]
fn a_job_ignoring_sigterm_is_killed_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let (out, took) = exec_in(
        dir.path(),
        &[
            "--timeout",
            "0.5",
            "--kill-grace",
            "0.5",
            "--report",
            "report.json",
            "--",
            "sh",
            "-c",
            STUBBORN,
            "sh",
            "{}",
            ":::",
            "x",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "one failed job; {stderr}");
    assert!(took < Duration::from_secs(15), "took {took:?}");

    let report = report(dir.path());
    let job = job(&report, "1");
    assert_eq!(job["status"], "timed_out", "{job}");
    assert_eq!(job["signal"], 9, "stopped by SIGKILL: {job}");
    let ms = job["duration_ms"].as_u64().unwrap();
    assert!(ms >= 950, "timeout and grace were both waited out: {ms} ms");
    assert!(ms < 5_000, "{ms} ms");

    let pids = recorded_pids(dir.path());
    assert_eq!(pids.len(), 2, "sh and sleep: {pids:?}");
    assert_all_gone(&pids);
}

#[test]
fn jobs_within_the_timeout_are_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = exec_in(
        dir.path(),
        &[
            "-k",
            "--timeout",
            "0.5",
            "--kill-grace",
            "0.5",
            "--report",
            "report.json",
            "--joblog",
            "joblog",
            "--shell",
            "--",
            "if [ {} = slow ]; then exec sleep 100; fi; echo {}",
            ":::",
            "fast",
            "slow",
            "quick",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "only the slow job failed; {stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "fast\nquick\n");
    let report = report(dir.path());
    assert_eq!(job(&report, "1")["status"], "succeeded");
    assert_eq!(job(&report, "2")["status"], "timed_out");
    assert_eq!(job(&report, "3")["status"], "succeeded");

    // The timed-out job is named on stderr, and logged with Exitval -1 as
    // GNU parallel logs it.
    assert!(stderr.contains("timed out"), "{stderr}");
    assert!(stderr.contains("slow"), "{stderr}");
    assert!(!stderr.contains("fast"), "{stderr}");
    let log = std::fs::read_to_string(dir.path().join("joblog")).unwrap();
    let mut rows: Vec<Vec<&str>> = log
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    rows.sort_by_key(|r| r[0].parse::<u32>().unwrap());
    let exitvals: Vec<&str> = rows.iter().map(|r| r[6]).collect();
    assert_eq!(exitvals, ["0", "-1", "0"], "{log}");
}

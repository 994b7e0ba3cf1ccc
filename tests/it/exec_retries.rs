//! `drover exec --retries N`: a failed (or timed-out) job runs up to N
//! times in all, as GNU parallel counts them (`--retries 0` is one attempt);
//! the report counts the attempts, and only the last one decides the job's
//! status, its printed output and drover's exit code.

use crate::common::*;

use std::path::Path;
use std::process::{Output, Stdio};

use serde_json::Value;

fn exec_in(dir: &Path, args: &[&str]) -> Output {
    drover()
        .arg("exec")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run drover exec")
}

fn report(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report written");
    serde_json::from_str(&text).expect("report is JSON")
}

fn runs(counter: &Path) -> u32 {
    std::fs::read_to_string(counter)
        .expect("counter written")
        .trim()
        .parse()
        .expect("counter is a number")
}

#[test]
fn retries_three_gets_a_job_through_its_third_run() {
    let dir = tempfile::tempdir().unwrap();
    let script = fixture("fail_times.sh");
    let out = exec_in(
        dir.path(),
        &[
            "--retries",
            "3",
            "--report",
            "report.json",
            "--",
            script.to_str().unwrap(),
            "{}",
            "3",
            ":::",
            "counter",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "run 3: ok\n");
    assert!(
        !stderr.contains("failing"),
        "only the last attempt's output is printed: {stderr}"
    );
    assert_eq!(runs(&dir.path().join("counter")), 3);

    let report = report(dir.path());
    let job = job(&report, "1");
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 3, "{job}");
    assert_eq!(job["exit_code"], 0, "{job}");
    assert_eq!(job["stdout"], "run 3: ok\n", "the last attempt's output");
    assert_eq!(report["summary"]["succeeded"], 1);
    assert_eq!(report["summary"]["failed"], 0);
}

#[test]
fn retries_two_is_not_enough_and_the_job_fails() {
    let dir = tempfile::tempdir().unwrap();
    let script = fixture("fail_times.sh");
    let out = exec_in(
        dir.path(),
        &[
            "--retries",
            "2",
            "--report",
            "report.json",
            "--",
            script.to_str().unwrap(),
            "{}",
            "3",
            ":::",
            "counter",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "one failed job; {stderr}");
    assert_eq!(runs(&dir.path().join("counter")), 2, "two attempts in all");
    assert_eq!(
        stderr.matches("failing").count(),
        1,
        "the last attempt's stderr only: {stderr}"
    );

    let report = report(dir.path());
    let job = job(&report, "1");
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    assert_eq!(job["exit_code"], 1, "{job}");
}

#[test]
fn jobs_that_succeed_are_not_retried_and_each_job_retries_alone() {
    let dir = tempfile::tempdir().unwrap();
    let script = fixture("fail_times.sh");
    // Linked sources: (counter, runs needed) side by side.
    let out = exec_in(
        dir.path(),
        &[
            "-k",
            "--retries",
            "3",
            "--report",
            "report.json",
            "--",
            script.to_str().unwrap(),
            "{1}",
            "{2}",
            ":::",
            "c1",
            "c2",
            "c3",
            ":::+",
            "1",
            "2",
            "4",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "only c3 failed; {stderr}");
    let report = report(dir.path());
    for (name, counter, attempts, status) in [
        ("1", "c1", 1, "succeeded"),
        ("2", "c2", 2, "succeeded"),
        ("3", "c3", 3, "failed"),
    ] {
        let job = job(&report, name);
        assert_eq!(job["status"], status, "{job}");
        assert_eq!(job["attempts"], attempts, "{job}");
        assert_eq!(runs(&dir.path().join(counter)), attempts);
    }
}

#[test]
fn a_timed_out_job_is_retried_too() {
    let dir = tempfile::tempdir().unwrap();
    let out = exec_in(
        dir.path(),
        &[
            "--timeout",
            "0.3",
            "--kill-grace",
            "0.5",
            "--retries",
            "2",
            "--report",
            "report.json",
            "--",
            "sh",
            "-c",
            "echo $$ >> runs; exec sleep 100",
            ":::",
            "x",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let pids = pids_in(&dir.path().join("runs"));
    assert_eq!(pids.len(), 2, "run twice: {pids:?}");
    assert_all_gone(&pids);
    let report = report(dir.path());
    let job = job(&report, "1");
    assert_eq!(job["status"], "timed_out", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
}

#[test]
fn retries_zero_and_one_are_a_single_attempt() {
    let script = fixture("fail_times.sh");
    for n in ["0", "1"] {
        let dir = tempfile::tempdir().unwrap();
        let out = exec_in(
            dir.path(),
            &[
                "--retries",
                n,
                "--report",
                "report.json",
                "--",
                script.to_str().unwrap(),
                "{}",
                "2",
                ":::",
                "counter",
            ],
        );
        assert_eq!(out.status.code(), Some(1), "--retries {n}");
        assert_eq!(runs(&dir.path().join("counter")), 1, "--retries {n}");
        assert_eq!(
            job(&report(dir.path()), "1")["attempts"],
            1,
            "--retries {n}"
        );
    }
}

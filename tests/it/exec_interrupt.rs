//! SIGINT or SIGTERM to `drover exec` while jobs run: every running job's
//! process group is stopped, no further job starts, and drover exits with
//! 130 (SIGINT) or 143 (SIGTERM), as GNU parallel does.

use crate::common::*;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Each job records its shell's and its sleep's pid.
const JOB: &str = "echo $$ >> pids; sleep 100 & echo $! >> pids; wait";

/// Starts `drover exec -j 2` over four long jobs and waits until the first
/// two run.
fn start(dir: &std::path::Path, extra: &[&str]) -> Child {
    let child = drover()
        .arg("exec")
        .args(["-j", "2"])
        .args(extra)
        .args(["--", "sh", "-c", JOB, ":::", "1", "2", "3", "4"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn drover exec");
    let pids = dir.join("pids");
    assert!(
        wait_until(Duration::from_secs(20), || pids_in(&pids).len() == 4),
        "two jobs did not start: {:?}",
        pids_in(&pids)
    );
    child
}

fn interrupt(signal: &str, code: i32) {
    let dir = tempfile::tempdir().unwrap();
    let child = start(dir.path(), &["--report", "report.json"]);
    let sent = Instant::now();
    send_signal(child.id(), signal);
    let out = child.wait_with_output().unwrap();
    let took = sent.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    // sh and sleep die of SIGTERM at once: the 5 s kill grace is not needed.
    assert!(took < Duration::from_secs(4), "took {took:?}");

    let pids = pids_in(&dir.path().join("pids"));
    assert_eq!(pids.len(), 4, "jobs 3 and 4 never started: {pids:?}");
    assert_all_gone(&pids);

    let text = std::fs::read_to_string(dir.path().join("report.json"))
        .expect("the report is written when interrupted");
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    let jobs = report["jobs"].as_array().expect("jobs array");
    assert_eq!(jobs.len(), 2, "the two jobs that ran: {report:#}");
    for job in jobs {
        assert_eq!(job["status"], "cancelled", "{job}");
    }
}

#[test]
fn sigint_stops_running_jobs_and_exits_130() {
    interrupt("INT", 130);
}

#[test]
fn sigterm_stops_running_jobs_and_exits_143() {
    interrupt("TERM", 143);
}

#[test]
fn a_second_sigint_kills_jobs_that_ignore_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let child = drover()
        .arg("exec")
        .args(["-j", "2", "--kill-grace", "100", "--"])
        .args([
            "sh",
            "-c",
            "trap '' TERM; echo $$ >> pids; sleep 100 & echo $! >> pids; wait",
            ":::",
            "1",
            "2",
        ])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn drover exec");
    assert!(
        wait_until(Duration::from_secs(20), || pids_in(&pids).len() == 4),
        "jobs did not start: {:?}",
        pids_in(&pids)
    );
    let mut child = child;
    // drover's notices on stderr tell when it has taken the first SIGINT.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    send_signal(child.id(), "INT");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("a notice that drover is stopping the jobs");
        if line.contains("stopping") {
            break;
        }
    }
    // The jobs ignore SIGTERM and the grace is 100 s: drover still waits.
    assert!(child.try_wait().unwrap().is_none(), "drover did not wait");
    let sent = Instant::now();
    send_signal(child.id(), "INT");
    assert!(
        wait_until(Duration::from_secs(10), || child
            .try_wait()
            .unwrap()
            .is_some()),
        "a second SIGINT did not end the run"
    );
    assert!(sent.elapsed() < Duration::from_secs(10));
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert_all_gone(&pids_in(&pids));
}

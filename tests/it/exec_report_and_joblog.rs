//! `drover exec --report FILE` writes DESIGN's JSON report, one job per
//! input named by its sequence number, in input order; `--joblog FILE`
//! writes GNU parallel's header and one row per finished job.

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

fn read_report(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report written");
    serde_json::from_str(&text).expect("report is JSON")
}

/// Three jobs run at once that finish in reverse input order: item 1
/// sleeps longest. (sleep, exit code) are linked sources.
const REVERSE_FINISH: &[&str] = &[
    "-j",
    "3",
    "--report",
    "report.json",
    "--joblog",
    "joblog",
    "--shell",
    "--",
    "echo out-{1}; echo err-{1} >&2; sleep 0.{1}; exit {2}",
    ":::",
    "6",
    "3",
    "0",
    ":::+",
    "0",
    "3",
    "0",
];

#[test]
fn report_has_the_design_keys_and_right_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let out = exec_in(dir.path(), REVERSE_FINISH);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "one failed job; {stderr}");

    let report = read_report(dir.path());
    for key in [
        "version",
        "started_at",
        "finished_at",
        "duration_ms",
        "summary",
        "jobs",
    ] {
        assert!(report.get(key).is_some(), "no {key}: {report:#}");
    }
    assert_eq!(report["version"], 1);
    let summary = &report["summary"];
    for (key, n) in [
        ("total", 3),
        ("succeeded", 2),
        ("failed", 1),
        ("timed_out", 0),
        ("skipped", 0),
        ("cancelled", 0),
        ("spawn_failed", 0),
    ] {
        assert_eq!(summary[key], n, "summary.{key}: {summary}");
    }

    let jobs = report["jobs"].as_array().expect("jobs array");
    assert_eq!(jobs.len(), 3, "one job per input: {report:#}");
    for job in jobs {
        for key in [
            "name",
            "status",
            "exit_code",
            "signal",
            "attempts",
            "pid",
            "started_at",
            "duration_ms",
            "stdout",
            "stderr",
            "stdout_truncated",
            "stderr_truncated",
            "error",
        ] {
            assert!(job.get(key).is_some(), "no {key} in {job}");
        }
        assert_eq!(job["attempts"], 1, "{job}");
        assert!(job["pid"].as_u64().is_some_and(|p| p > 0), "{job}");
        assert_eq!(job["signal"], Value::Null, "{job}");
        assert_eq!(job["stdout_truncated"], false, "{job}");
    }
    for (name, item, status, code) in [
        ("1", "6", "succeeded", 0),
        ("2", "3", "failed", 3),
        ("3", "0", "succeeded", 0),
    ] {
        let job = job(&report, name);
        assert_eq!(job["status"], status, "{job}");
        assert_eq!(job["exit_code"], code, "{job}");
        assert_eq!(job["stdout"], format!("out-{item}\n"), "{job}");
        assert_eq!(job["stderr"], format!("err-{item}\n"), "{job}");
    }
    assert_eq!(job(&report, "1")["error"], Value::Null);
    assert!(job(&report, "2")["error"].is_string());
}

#[test]
fn report_lists_jobs_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let out = exec_in(dir.path(), REVERSE_FINISH);
    assert_eq!(out.status.code(), Some(1));
    let report = read_report(dir.path());
    let names: Vec<&str> = report["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["1", "2", "3"], "jobs in input order");
}

#[test]
fn report_of_a_job_killed_by_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let out = exec_in(
        dir.path(),
        &[
            "--report",
            "report.json",
            "--joblog",
            "joblog",
            "--",
            "sh",
            "-c",
            "kill -9 $$",
            ":::",
            "a",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let report = read_report(dir.path());
    let job = job(&report, "1");
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["signal"], 9, "{job}");
    assert_eq!(job["exit_code"], Value::Null, "{job}");

    let log = std::fs::read_to_string(dir.path().join("joblog")).unwrap();
    let rows: Vec<Vec<&str>> = log
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(rows.len(), 1, "{log}");
    // Exitval 0, Signal 9, as GNU parallel writes it.
    assert_eq!(rows[0][6], "0", "{log}");
    assert_eq!(rows[0][7], "9", "{log}");
}

#[test]
fn joblog_has_a_header_and_one_row_per_job() {
    let dir = tempfile::tempdir().unwrap();
    let out = exec_in(dir.path(), REVERSE_FINISH);
    assert_eq!(out.status.code(), Some(1));
    let log = std::fs::read_to_string(dir.path().join("joblog")).expect("joblog written");
    let mut lines = log.lines();
    assert_eq!(
        lines.next(),
        Some("Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand")
    );
    let mut rows: Vec<Vec<&str>> = lines.map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 3, "one row per job:\n{log}");
    // Rows come as jobs finish; compare them by Seq.
    rows.sort_by_key(|r| r[0].parse::<u32>().expect("Seq is a number"));
    for (row, (seq, exitval, item)) in
        rows.iter()
            .zip([("1", "0", "6"), ("2", "3", "3"), ("3", "0", "0")])
    {
        assert_eq!(row.len(), 9, "{row:?}");
        assert_eq!(row[0], seq, "{row:?}");
        assert_eq!(row[1], ":", "Host: {row:?}");
        assert!(row[2].parse::<f64>().is_ok(), "Starttime: {row:?}");
        let runtime: f64 = row[3].trim().parse().expect("JobRuntime is a number");
        assert!(runtime >= 0.0, "{row:?}");
        assert_eq!(row[4], "0", "Send: {row:?}");
        assert_eq!(row[5], "6", "Receive: the stdout bytes: {row:?}");
        assert_eq!(row[6], exitval, "Exitval: {row:?}");
        assert_eq!(row[7], "0", "Signal: {row:?}");
        assert_eq!(
            row[8],
            format!("echo out-{item}; echo err-{item} >&2; sleep 0.{item}; exit {exitval}"),
            "Command: {row:?}"
        );
    }
    // The longest job ran for its 0.6 s sleep.
    let slow: f64 = rows[0][3].trim().parse().unwrap();
    assert!(slow >= 0.55, "JobRuntime of the 0.6 s job: {slow}");
}

#[test]
fn joblog_command_column_is_the_command_quoted_for_sh() {
    let dir = tempfile::tempdir().unwrap();
    let items = ["plain", "with space", "it's", "$HOME"];
    let mut args = vec!["--joblog", "joblog", "--", "echo", "{}", ":::"];
    args.extend(items);
    let out = exec_in(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0));
    let log = std::fs::read_to_string(dir.path().join("joblog")).unwrap();
    let mut rows: Vec<(usize, String)> = log
        .lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols[0].parse().unwrap(), cols[8].to_string())
        })
        .collect();
    rows.sort();
    assert_eq!(rows.len(), items.len(), "{log}");
    // Run through sh, each Command does what the job did.
    for ((seq, command), item) in rows.iter().zip(items) {
        let out = std::process::Command::new("sh")
            .args(["-c", command])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{item}\n"),
            "job {seq}: {command}"
        );
    }
}

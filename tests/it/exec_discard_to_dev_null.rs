//! With drover's stdout on /dev/null, jobs may write there directly (the
//! grouping cannot be seen); with `--report` or `--joblog` the output is
//! still captured, because they need it.

use std::process::{Command, Stdio};

fn drover_exec(args: &[&str], dir: &std::path::Path) -> std::process::ExitStatus {
    Command::new(env!("CARGO_BIN_EXE_drover"))
        .arg("exec")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
}

#[test]
fn report_and_joblog_still_see_the_output_when_stdout_is_dev_null() {
    let dir = tempfile::tempdir().unwrap();
    let status = drover_exec(
        &[
            "--report", "r.json", "--joblog", "log", "-k", "--", "echo", "hello", ":::", "a", "b",
        ],
        dir.path(),
    );
    assert!(status.success());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(report["jobs"][0]["stdout"], "hello a\n");
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    let row: Vec<&str> = log.lines().nth(1).unwrap().split('\t').collect();
    assert_eq!(row[5], "8", "Receive counts the bytes of stdout: {log}");
}

#[test]
fn jobs_still_run_and_fail_when_their_output_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let status = drover_exec(
        &[
            "--",
            "sh",
            "-c",
            "echo {} > marker-{}; exit {}",
            ":::",
            "0",
            "3",
        ],
        dir.path(),
    );
    assert_eq!(status.code(), Some(1));
    assert!(dir.path().join("marker-0").exists() && dir.path().join("marker-3").exists());
}

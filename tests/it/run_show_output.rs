//! `drover run --show-output` prints each job's captured stdout (on stdout)
//! and stderr (on stderr) under its status line as it finishes, whole,
//! never interleaved with another job's; `=failures` only for jobs that did
//! not succeed; `[run] show_output` sets it in the file.

use crate::common::*;

/// Two jobs printing 200 numbered lines each at the same time, and one
/// that fails with a word on each stream.
const JOBS: &str = r#"
[[job]]
name = "a"
sh = "for i in $(seq 200); do echo a$i; done"

[[job]]
name = "b"
sh = "for i in $(seq 200); do echo b$i; done"

[[job]]
name = "bad"
sh = "echo bad-out; echo bad-err >&2; exit 3"
"#;

fn lines(prefix: &str) -> String {
    (1..=200).map(|i| format!("{prefix}{i}\n")).collect()
}

#[test]
fn every_jobs_output_is_shown_whole() {
    let ws = Workspace::new(JOBS);
    let run = ws.run(&["--show-output"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let stdout = run.stdout();
    // Each job's lines in one piece, whichever finished first.
    for whole in [lines("a"), lines("b"), "bad-out\n".to_string()] {
        assert!(stdout.contains(&whole), "not whole: {stdout}");
    }
    assert_eq!(stdout.len(), 2 * lines("a").len() + "bad-out\n".len());
    assert!(run.stderr().contains("bad-err\n"), "{}", run.stderr());
}

#[test]
fn failures_shows_only_jobs_that_did_not_succeed() {
    let ws = Workspace::new(JOBS);
    let run = ws.run(&["--show-output=failures"]);
    assert_eq!(run.code(), 1);
    assert_eq!(run.stdout(), "bad-out\n");
    assert!(run.stderr().contains("bad-err\n"));
}

#[test]
fn the_job_file_sets_it_and_the_flag_overrides() {
    let ws = Workspace::new(&format!("[run]\nshow_output = \"failures\"\n{JOBS}"));
    let run = ws.run(&[]);
    assert_eq!(run.stdout(), "bad-out\n");
    let run = ws.run(&["--show-output=none"]);
    assert_eq!(run.stdout(), "");
    let run = ws.run(&["--show-output"]);
    assert!(run.stdout().contains(&lines("a")));
}

#[test]
fn with_the_report_on_stdout_job_output_goes_to_stderr() {
    let ws = Workspace::new(JOBS);
    let out = drover()
        .args(["run", "--show-output", "--report", "-"])
        .arg(ws.jobs())
        .output()
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is the report alone");
    assert_eq!(report["summary"]["total"], 3);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&lines("a")) && stderr.contains("bad-out\n"),
        "{stderr}"
    );
}

#[test]
fn a_bad_choice_in_the_file_is_refused_before_anything_runs() {
    let ws = Workspace::new(
        "[run]\nshow_output = \"some\"\n\n[[job]]\nname = \"x\"\nsh = \"touch ran\"\n",
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 2);
    assert!(run.stderr().contains("show_output"), "{}", run.stderr());
    assert!(!ws.path("ran").exists());
}

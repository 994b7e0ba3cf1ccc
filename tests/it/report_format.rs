//! The JSON report has exactly the shape of DESIGN.md (plus `leaked`), and
//! the human output on stderr is plain lines: one per job and a summary.

use crate::common::*;

use std::collections::BTreeSet;

use serde_json::Value;

const MIXED: &str = r#"[[job]]
name = "alpha-ok"
sh = "echo hello"

[[job]]
name = "beta-broken"
sh = 'echo first-detail >&2; echo disaster-detail >&2; exit 7'

[[job]]
name = "gamma-skipped"
cmd = ["true"]
needs = ["beta-broken"]
"#;

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value:#}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

/// Roughly RFC 3339: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn looks_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (text.ends_with('Z') || b[b.len() - 6] == b'+' || b[b.len() - 6] == b'-')
}

#[test]
fn report_has_exactly_the_designed_keys() {
    let ws = Workspace::new(MIXED);
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1, "stderr:\n{}", run.stderr());
    let report = run.report();

    assert_eq!(
        keys(report),
        set(&[
            "version",
            "started_at",
            "finished_at",
            "duration_ms",
            "summary",
            "jobs"
        ])
    );
    assert_eq!(report["version"], 1);
    for key in ["started_at", "finished_at"] {
        let text = report[key].as_str().expect("a string");
        assert!(looks_rfc3339(text), "{key} = {text:?}");
    }
    assert!(report["duration_ms"].is_u64());

    assert_eq!(
        keys(&report["summary"]),
        set(&[
            "total",
            "succeeded",
            "failed",
            "timed_out",
            "skipped",
            "cancelled",
            "spawn_failed"
        ])
    );
    let summary = &report["summary"];
    assert_eq!(summary["total"], 3);
    assert_eq!(summary["succeeded"], 1);
    assert_eq!(summary["failed"], 1);
    assert_eq!(summary["skipped"], 1);
    for key in ["timed_out", "cancelled", "spawn_failed"] {
        assert_eq!(summary[key], 0, "{key}");
    }

    let jobs = report["jobs"].as_array().expect("jobs array");
    let names: Vec<&str> = jobs
        .iter()
        .map(|j| j["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        ["alpha-ok", "beta-broken", "gamma-skipped"],
        "file order"
    );
    let job_keys = set(&[
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
        "leaked",
    ]);
    for job in jobs {
        assert_eq!(keys(job), job_keys, "{job:#}");
        assert_eq!(job["leaked"], false);
    }

    let ok = run.job("alpha-ok");
    assert_eq!(ok["status"], "succeeded");
    assert_eq!(ok["exit_code"], 0);
    assert_eq!(ok["signal"], Value::Null);
    assert_eq!(ok["attempts"], 1);
    assert!(ok["pid"].as_u64().is_some_and(|p| p > 0), "{ok:#}");
    assert!(looks_rfc3339(
        ok["started_at"].as_str().expect("started_at")
    ));
    assert!(ok["duration_ms"].is_u64());
    assert_eq!(ok["stdout"], "hello\n");
    assert_eq!(ok["stderr"], "");
    assert_eq!(ok["stdout_truncated"], false);
    assert_eq!(ok["error"], Value::Null);

    let broken = run.job("beta-broken");
    assert_eq!(broken["status"], "failed");
    assert_eq!(broken["exit_code"], 7);
    assert_eq!(broken["stderr"], "first-detail\ndisaster-detail\n");

    let skipped = run.job("gamma-skipped");
    assert_eq!(skipped["status"], "skipped");
    assert_eq!(skipped["pid"], Value::Null, "a skipped job never ran");
    assert_eq!(skipped["exit_code"], Value::Null);
}

#[test]
fn report_to_stdout_keeps_human_lines_on_stderr() {
    let ws = Workspace::new(MIXED);
    let output = drover()
        .arg("run")
        .arg(ws.jobs())
        .args(["--report", "-"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run drover");
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 stdout");
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not just the report ({e}):\n{stdout}"));
    assert_eq!(report["summary"]["total"], 3);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Summary"), "stderr:\n{stderr}");
    assert!(!stdout.contains("Summary"));
}

#[test]
fn stderr_has_a_plain_line_per_job_and_a_summary() {
    let ws = Workspace::new(MIXED);
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1);
    let stderr = run.stderr();
    assert!(
        !stderr.contains('\x1b'),
        "escape codes on a non-TTY:\n{stderr:?}"
    );

    let (jobs_part, summary_part) = stderr
        .split_once("Summary")
        .unwrap_or_else(|| panic!("no Summary in stderr:\n{stderr}"));
    for name in ["alpha-ok", "beta-broken", "gamma-skipped"] {
        // The name as a word of its own: another job's line may quote it.
        let lines = jobs_part
            .lines()
            .filter(|l| l.split_whitespace().any(|w| w == name))
            .count();
        assert_eq!(
            lines, 1,
            "{name} should have one line before the summary:\n{stderr}"
        );
    }
    assert!(
        summary_part.contains("disaster-detail"),
        "the summary shows the failed job's stderr tail:\n{stderr}"
    );
}

#[test]
fn quiet_successful_run_prints_nothing_on_stderr() {
    let ws = Workspace::new(
        r#"[[job]]
name = "fine"
sh = "echo fine; echo chatty >&2"
"#,
    );
    let run = ws.run(&["-q"]);
    assert_eq!(run.code(), 0);
    assert_eq!(run.stderr(), "", "-q should print nothing");
    assert_eq!(
        run.job("fine")["stdout"],
        "fine\n",
        "the report is still written"
    );
}

#[test]
fn leaked_is_true_when_a_descendant_keeps_the_output_open() {
    let ws = Workspace::new(
        r#"[[job]]
name = "leaky"
sh = 'sleep 30 & echo $! > bg.pid'

[[job]]
name = "tidy"
sh = "echo done"
"#,
    );
    let run = ws.run(&[]);
    let leaky = run.job("leaky");
    assert_eq!(leaky["leaked"], true, "{leaky:#}");
    assert_eq!(run.job("tidy")["leaked"], false);
    let pids = pids_in(&ws.path("bg.pid"));
    assert_all_gone(&pids);
}

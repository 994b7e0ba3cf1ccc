//! A timeout stops the job's whole process group: SIGTERM, `kill_grace`,
//! SIGKILL; no descendant survives, and the status is `timed_out`.

use crate::common::*;

#[test]
fn timeout_kills_every_process_of_a_pipeline() {
    let ws = Workspace::new("");
    let pids = ws.path("pids");
    let p = pids.display();
    std::fs::write(
        ws.jobs(),
        format!(
            r#"
[[job]]
name = "pipeline"
sh = "echo $$ >> {p}; sh -c 'echo $$ >> {p}; exec sleep 100' | sh -c 'echo $$ >> {p}; exec cat'"
timeout = "500ms"
kill_grace = "2s"

[[job]]
name = "bystander"
cmd = ["echo", "still here"]
"#
        ),
    )
    .unwrap();
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1, "stderr: {}", run.stderr());
    let job = run.job("pipeline");
    assert_eq!(job["status"], "timed_out");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("timed out after 500ms"),
        "{job}"
    );
    // sh dies of SIGTERM at once; kill_grace is not waited out.
    assert!(job["duration_ms"].as_u64().unwrap() < 2000, "{job}");
    assert_eq!(run.job("bystander")["status"], "succeeded");
    let pids = pids_in(&pids);
    assert_eq!(pids.len(), 3, "expected sh, sleep and cat: {pids:?}");
    assert_all_gone(&pids);
}

#[test]
fn a_job_ignoring_sigterm_is_killed_after_kill_grace() {
    let ws = Workspace::new("");
    let pidfile = ws.path("pid");
    std::fs::write(
        ws.jobs(),
        format!(
            r#"
[[job]]
name = "stubborn"
sh = "trap '' TERM; echo $$ > {}; while :; do sleep 0.05; done"
timeout = "300ms"
kill_grace = "700ms"
"#,
            pidfile.display()
        ),
    )
    .unwrap();
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1);
    let job = run.job("stubborn");
    assert_eq!(job["status"], "timed_out");
    assert_eq!(job["signal"], 9, "killed by SIGKILL: {job}");
    assert_eq!(job["exit_code"], serde_json::Value::Null);
    let ms = job["duration_ms"].as_u64().unwrap();
    assert!(ms >= 1000, "timeout + kill_grace were waited out: {ms} ms");
    assert!(ms < 10_000, "{ms} ms");
    assert_all_gone(&pids_in(&pidfile));
}

#[test]
fn a_job_within_its_timeout_is_untouched() {
    let ws = Workspace::new(
        r#"
[[job]]
name = "quick"
sh = "sleep 0.1; echo done"
timeout = "20s"
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0);
    assert_eq!(run.job("quick")["status"], "succeeded");
    assert_eq!(run.job("quick")["stdout"], "done\n");
}

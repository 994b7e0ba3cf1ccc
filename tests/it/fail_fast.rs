//! `fail_fast`: the first failure cancels the running jobs (their whole
//! process is gone, promptly) and skips the ones not started yet.

use crate::common::*;

use std::time::{Duration, Instant};

/// A sleeper that records its pid, a job that fails once the sleeper runs,
/// and a job waiting on the sleeper.
fn jobs(run_section: &str) -> String {
    format!(
        r#"{run_section}

[[job]]
name = "sleeper"
sh = 'echo $$ > sleeper.pid; exec sleep 30'

[[job]]
name = "boom"
sh = '''
i=0
while [ ! -s sleeper.pid ]; do
    i=$((i + 1))
    if [ "$i" -gt 200 ]; then break; fi
    sleep 0.05
done
echo boom >&2
exit 1
'''

[[job]]
name = "needs-sleeper"
cmd = ["true"]
needs = ["sleeper"]
"#
    )
}

fn assert_stopped_fast(ws: &Workspace, args: &[&str]) {
    let started = Instant::now();
    let run = ws.run(args);
    let took = started.elapsed();

    assert_eq!(run.code(), 1, "stderr:\n{}", run.stderr());
    // `sleep 30` ends on SIGTERM; well under its 30 s even with slack.
    assert!(
        took < Duration::from_secs(10),
        "fail_fast run took {took:?}"
    );

    assert_eq!(run.job("boom")["status"], "failed");
    assert_eq!(
        run.job("sleeper")["status"],
        "cancelled",
        "{:#}",
        run.job("sleeper")
    );
    assert_eq!(run.job("needs-sleeper")["status"], "skipped");
    let summary = &run.report()["summary"];
    assert_eq!(summary["failed"], 1);
    assert_eq!(summary["cancelled"], 1);
    assert_eq!(summary["skipped"], 1);
    assert_eq!(summary["succeeded"], 0);

    let pids = pids_in(&ws.path("sleeper.pid"));
    assert_eq!(pids.len(), 1, "sleeper wrote its pid");
    // drover has exited: the sleeper must already be gone, not merely dying.
    assert!(pid_gone(pids[0]), "sleeper pid {} outlived drover", pids[0]);
    assert_eq!(
        run.job("sleeper")["pid"].as_i64(),
        Some(i64::from(pids[0])),
        "the report names the sleeper's pid"
    );
}

#[test]
fn fail_fast_in_the_file_cancels_and_skips() {
    let ws = Workspace::new(&jobs("[run]\nmax_parallel = 0\nfail_fast = true"));
    assert_stopped_fast(&ws, &[]);
}

#[test]
fn fail_fast_flag_cancels_and_skips() {
    let ws = Workspace::new(&jobs("[run]\nmax_parallel = 0\nfail_fast = false"));
    assert_stopped_fast(&ws, &["--fail-fast"]);
}

#[test]
fn without_fail_fast_a_failure_stops_nothing() {
    let ws = Workspace::new(
        r#"[run]
max_parallel = 1

[[job]]
name = "boom"
sh = "exit 1"

[[job]]
name = "after"
cmd = ["true"]
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1, "stderr:\n{}", run.stderr());
    assert_eq!(run.job("boom")["status"], "failed");
    assert_eq!(run.job("after")["status"], "succeeded");
}

#[test]
fn fail_fast_kills_the_whole_group_of_a_job_ignoring_sigterm() {
    // The sleeper's shell ignores SIGTERM and has a background grandchild:
    // after kill_grace both must be gone, by SIGKILL to the process group.
    let ws = Workspace::new(
        r#"[run]
fail_fast = true
max_parallel = 0

[[job]]
name = "stubborn"
sh = '''
trap "" TERM
sleep 30 &
echo $! >> pids
echo $$ >> pids
wait
'''
kill_grace = "500ms"

[[job]]
name = "boom"
sh = '''
i=0
while [ "$(wc -l < pids 2>/dev/null || echo 0)" -lt 2 ]; do
    i=$((i + 1))
    if [ "$i" -gt 200 ]; then break; fi
    sleep 0.05
done
exit 1
'''
"#,
    );
    let started = Instant::now();
    let run = ws.run(&[]);
    let took = started.elapsed();
    assert_eq!(run.code(), 1, "stderr:\n{}", run.stderr());
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(run.job("boom")["status"], "failed");
    assert_eq!(run.job("stubborn")["status"], "cancelled");
    let pids = pids_in(&ws.path("pids"));
    assert_eq!(pids.len(), 2, "shell and grandchild pids recorded");
    for pid in pids {
        assert!(pid_gone(pid), "pid {pid} outlived drover");
    }
}

#[test]
fn a_failure_that_a_retry_fixes_does_not_stop_the_run() {
    // Only a job's final outcome counts for fail_fast.
    let ws = Workspace::new(&format!(
        r#"[run]
fail_fast = true
max_parallel = 1

[[job]]
name = "flaky"
cmd = ["{script}", "counter", "2"]
retries = 1

[[job]]
name = "after"
cmd = ["true"]
"#,
        script = fixture("fail_times.sh").display()
    ));
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    assert_eq!(run.job("flaky")["status"], "succeeded");
    assert_eq!(run.job("flaky")["attempts"], 2);
    assert_eq!(run.job("after")["status"], "succeeded");
}

#[test]
fn a_job_waiting_for_a_slot_is_skipped_not_started() {
    // `boom` fails at once while the sleepers are still being spawned; the
    // slot it frees must not go to `late`, which has to end skipped. The
    // race is timing dependent, so a few runs are tried.
    let sleepers: Vec<String> = (1..30).map(|n| format!("\"{n}\"")).collect();
    let ws = Workspace::new(&format!(
        r#"[run]
fail_fast = true
max_parallel = 30

[[job]]
name = "boom"
sh = "exit 1"

[[job]]
name = "sleeper-{{n}}"
cmd = ["sleep", "30"]
matrix = {{ n = [{}] }}

[[job]]
name = "late"
cmd = ["true"]
"#,
        sleepers.join(", ")
    ));
    for attempt in 1..=5 {
        let run = ws.run(&["-q"]);
        assert_eq!(run.code(), 1, "stderr:\n{}", run.stderr());
        assert_eq!(run.job("boom")["status"], "failed");
        let late = run.job("late");
        assert_eq!(
            late["status"], "skipped",
            "run {attempt}: `late` was started after the failure: {late:#}"
        );
        assert_eq!(late["pid"], serde_json::Value::Null, "run {attempt}");
    }
}

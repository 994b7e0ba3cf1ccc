//! `fail_fast`: the first failure cancels the running jobs (their whole
//! process is gone, promptly) and skips the ones not started yet.

mod common;
use common::*;

use std::time::{Duration, Instant};

/// A sleeper that records its pid, a job that fails once the sleeper runs,
/// one job waiting for a free slot and one waiting on the sleeper.
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
name = "waits-for-slot"
cmd = ["true"]

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
    assert!(took < Duration::from_secs(10), "fail_fast run took {took:?}");

    assert_eq!(run.job("boom")["status"], "failed");
    assert_eq!(run.job("sleeper")["status"], "cancelled", "{:#}", run.job("sleeper"));
    assert_eq!(run.job("waits-for-slot")["status"], "skipped");
    assert_eq!(run.job("needs-sleeper")["status"], "skipped");
    let summary = &run.report()["summary"];
    assert_eq!(summary["failed"], 1);
    assert_eq!(summary["cancelled"], 1);
    assert_eq!(summary["skipped"], 2);
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
    let ws = Workspace::new(&jobs("[run]\nmax_parallel = 2\nfail_fast = true"));
    assert_stopped_fast(&ws, &[]);
}

#[test]
fn fail_fast_flag_cancels_and_skips() {
    let ws = Workspace::new(&jobs("[run]\nmax_parallel = 2\nfail_fast = false"));
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

//! Ctrl-C and SIGTERM in the middle of a run: SIGTERM to every running
//! job's group, `kill_grace`, SIGKILL; the report is written (running jobs
//! `cancelled`, unstarted ones `skipped`); exit 130 or 143; no child left.
//! A second SIGINT kills at once.

use crate::common::*;
use std::time::{Duration, Instant};

fn jobs(pids: &std::path::Path) -> String {
    format!(
        r#"
[run]
max_parallel = 3

[defaults]
kill_grace = "5s"

[[job]]
name = "long-{{n}}"
sh = "echo $$ >> {p}; sleep 100 & echo $! >> {p}; wait"
matrix = {{ n = ["1", "2", "3"] }}

[[job]]
name = "never-started"
cmd = ["true"]
needs = ["long-*"]
"#,
        p = pids.display()
    )
}

fn start_and_wait_for_jobs(ws: &Workspace, pids: &std::path::Path) -> std::process::Child {
    let child = ws.spawn(&[]);
    assert!(
        wait_until(Duration::from_secs(20), || pids_in(pids).len() == 6),
        "jobs did not start: {:?}",
        pids_in(pids)
    );
    child
}

fn interrupt(signal: &str, code: i32) {
    let ws = Workspace::new("");
    let pids = ws.path("pids");
    std::fs::write(ws.jobs(), jobs(&pids)).unwrap();
    let child = start_and_wait_for_jobs(&ws, &pids);
    send_signal(child.id(), signal);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = ws.report();
    for n in 1..=3 {
        let job = job(&report, &format!("long-{n}"));
        assert_eq!(job["status"], "cancelled", "{job}");
    }
    assert_eq!(job(&report, "never-started")["status"], "skipped");
    assert_eq!(report["summary"]["cancelled"], 3);
    assert_all_gone(&pids_in(&pids));
}

#[test]
fn sigint_stops_jobs_writes_report_and_exits_130() {
    interrupt("INT", 130);
}

#[test]
fn sigterm_stops_jobs_writes_report_and_exits_143() {
    interrupt("TERM", 143);
}

#[test]
fn second_sigint_kills_at_once() {
    let ws = Workspace::new("");
    let pids = ws.path("pids");
    let terms = ws.path("terms");
    // The jobs survive SIGTERM (the trap notes it) and have a long grace:
    // only SIGKILL stops them.
    std::fs::write(
        ws.jobs(),
        format!(
            r#"
[defaults]
kill_grace = "60s"

[[job]]
name = "stubborn-{{n}}"
sh = "trap 'echo term >> {t}' TERM; echo $$ >> {p}; while :; do sleep 1; done"
matrix = {{ n = ["1", "2"] }}
"#,
            t = terms.display(),
            p = pids.display()
        ),
    )
    .unwrap();
    let child = ws.spawn(&[]);
    assert!(wait_until(Duration::from_secs(20), || pids_in(&pids).len() == 2));
    let start = Instant::now();
    send_signal(child.id(), "INT");
    // Both jobs got the first SIGTERM and are still running.
    assert!(wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(&terms)
            .unwrap_or_default()
            .lines()
            .count()
            == 2
    }));
    assert!(pids_in(&pids).iter().all(|&p| !pid_gone(p)));
    send_signal(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "did not kill at once"
    );
    assert_eq!(out.status.code(), Some(130));
    let report = ws.report();
    assert_eq!(report["summary"]["cancelled"], 2, "{report:#}");
    assert_eq!(job(&report, "stubborn-1")["signal"], 9);
    assert_all_gone(&pids_in(&pids));
}

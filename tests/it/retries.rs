//! `retries` and `retry_delay`: a failed or timed-out job runs again, up to
//! `retries` extra attempts, waiting `retry_delay` between attempts.

use crate::common::*;

use std::time::Duration;

/// A job running fail_times.sh, which fails until its `n`th run.
fn flaky_job(n: u32, options: &str) -> String {
    format!(
        r#"[[job]]
name = "flaky"
cmd = ["{script}", "counter", "{n}", "stamps"]
{options}
"#,
        script = fixture("fail_times.sh").display()
    )
}

fn runs(ws: &Workspace) -> u32 {
    std::fs::read_to_string(ws.path("counter"))
        .expect("counter written")
        .trim()
        .parse()
        .expect("counter is a number")
}

#[test]
fn two_retries_succeed_on_the_third_attempt() {
    let ws = Workspace::new(&flaky_job(3, "retries = 2"));
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    let job = run.job("flaky");
    assert_eq!(job["status"], "succeeded", "{job:#}");
    assert_eq!(job["attempts"], 3);
    assert_eq!(job["exit_code"], 0);
    assert_eq!(
        job["stdout"], "run 3: ok\n",
        "the report keeps the last attempt's output"
    );
    assert_eq!(runs(&ws), 3);
}

#[test]
fn one_retry_is_not_enough() {
    let ws = Workspace::new(&flaky_job(3, "retries = 1"));
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1, "stderr:\n{}", run.stderr());
    let job = run.job("flaky");
    assert_eq!(job["status"], "failed", "{job:#}");
    assert_eq!(job["attempts"], 2);
    assert_eq!(job["exit_code"], 1);
    assert_eq!(runs(&ws), 2, "no attempt beyond retries + 1");
}

#[test]
fn retries_are_inherited_from_defaults() {
    let ws = Workspace::new(&format!("[defaults]\nretries = 2\n\n{}", flaky_job(3, "")));
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    assert_eq!(run.job("flaky")["attempts"], 3);
}

#[test]
fn retry_delay_spaces_the_attempts() {
    let ws = Workspace::new(&flaky_job(3, "retries = 2\nretry_delay = \"300ms\""));
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    assert_eq!(run.job("flaky")["attempts"], 3);

    let stamps: Vec<u128> = std::fs::read_to_string(ws.path("stamps"))
        .expect("stamps written")
        .lines()
        .map(|l| l.trim().parse().expect("a timestamp"))
        .collect();
    assert_eq!(stamps.len(), 3, "{stamps:?}");
    for pair in stamps.windows(2) {
        let gap = Duration::from_nanos((pair[1] - pair[0]) as u64);
        // Each stamp is taken inside an attempt, so the gap between two
        // includes the whole delay.
        assert!(
            gap >= Duration::from_millis(300),
            "attempts only {gap:?} apart"
        );
    }
}

#[test]
fn a_timed_out_attempt_is_retried() {
    // The first attempt hangs and is stopped by the timeout; the second
    // finds the marker and succeeds at once.
    let ws = Workspace::new(
        r#"[[job]]
name = "hangs-once"
sh = '''
if [ -e marker ]; then echo second; exit 0; fi
touch marker
echo $$ >> pids
exec sleep 30
'''
timeout = "500ms"
kill_grace = "1s"
retries = 1
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    let job = run.job("hangs-once");
    assert_eq!(job["status"], "succeeded", "{job:#}");
    assert_eq!(job["attempts"], 2);
    assert_eq!(job["stdout"], "second\n");
    let pids = pids_in(&ws.path("pids"));
    assert_eq!(pids.len(), 1);
    assert!(
        pid_gone(pids[0]),
        "the timed-out attempt {} still runs",
        pids[0]
    );
}

#[test]
fn every_attempt_timing_out_ends_timed_out() {
    let ws = Workspace::new(
        r#"[[job]]
name = "always-hangs"
sh = 'echo $$ >> pids; exec sleep 30'
timeout = "300ms"
kill_grace = "1s"
retries = 1
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1, "stderr:\n{}", run.stderr());
    let job = run.job("always-hangs");
    assert_eq!(job["status"], "timed_out", "{job:#}");
    assert_eq!(job["attempts"], 2);
    let pids = pids_in(&ws.path("pids"));
    assert_eq!(pids.len(), 2, "one process per attempt");
    for pid in pids {
        assert!(pid_gone(pid), "timed-out attempt {pid} still runs");
    }
}

//! Stopping drover does not change what happened to its jobs. A job that
//! exited while drover was stopped (SIGSTOP) is judged by its exit status,
//! not called timed out; Ctrl-Z (SIGTSTP) stops every job's group with
//! drover, continues them with it, and the time stopped does not count
//! against their `timeout`.

use crate::common::*;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The state letter of `pid` in /proc (R, S, T, Z...), if it exists.
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// The pid a job wrote to `file`, once it has.
fn job_pid(file: &Path) -> u32 {
    let mut pid = None;
    assert!(
        wait_until(Duration::from_secs(20), || {
            pid = pids_in(file).first().copied();
            pid.is_some()
        }),
        "the job never started"
    );
    pid.unwrap() as u32
}

fn wait_for_state(pid: u32, want: impl Fn(Option<char>) -> bool, what: &str) {
    assert!(
        wait_until(Duration::from_secs(20), || want(state(pid))),
        "pid {pid} never became {what}: {:?}",
        state(pid)
    );
}

/// Waits until `how_long` has passed since `since` (the scenario needs
/// wall-clock time to pass while drover is stopped).
fn let_time_pass(since: Instant, how_long: Duration) {
    assert!(wait_until(how_long * 4, || since.elapsed() >= how_long));
}

/// `drover run` of one job NAME (`sh = BODY`, after writing its pid), with
/// TIMEOUT, started: the workspace, drover, and the job's pid.
fn start_job(name: &str, body: &str, timeout: &str) -> (Workspace, Child, u32) {
    let ws = Workspace::new("");
    let pidfile = ws.path("pid");
    let jobs = format!(
        "[[job]]\nname = \"{name}\"\nsh = \"echo $$ > {}; {body}\"\ntimeout = \"{timeout}\"\n",
        pidfile.display()
    );
    std::fs::write(ws.jobs(), jobs).unwrap();
    let drover = ws.spawn(&[]);
    let pid = job_pid(&pidfile);
    (ws, drover, pid)
}

fn finish(child: Child) -> (i32, String) {
    let out = child.wait_with_output().expect("drover ends");
    (
        out.status.code().expect("drover exited"),
        text(&out.stdout) + &text(&out.stderr),
    )
}

#[test]
fn a_job_that_exited_while_drover_was_stopped_is_not_timed_out() {
    let (ws, drover, pid) = start_job("quick", "exec sleep 0.5", "1s");
    let started = Instant::now();
    send_signal(drover.id(), "STOP");
    // The job exits (a zombie, as drover cannot reap it) and its deadline
    // passes, all while drover is stopped.
    wait_for_state(pid, |s| matches!(s, Some('Z') | None), "a zombie");
    let_time_pass(started, Duration::from_millis(1500));
    send_signal(drover.id(), "CONT");
    let (code, output) = finish(drover);
    assert_eq!(code, 0, "{output}");
    let report = ws.report();
    let j = job(&report, "quick");
    assert_eq!(j["status"], "succeeded", "{j}");
    assert_eq!(j["exit_code"], 0, "{j}");
}

/// A job of about a second of work in ten steps, which a stop of its
/// group holds back: with a 2 s timeout it times out only if the time it
/// was stopped is counted.
const STEPS: &str = "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0.1; done";

#[test]
fn ctrl_z_stops_the_jobs_too_and_the_time_stopped_is_not_counted() {
    let (ws, drover, pid) = start_job("steps", STEPS, "2s");
    send_signal(drover.id(), "TSTP");
    wait_for_state(drover.id(), |s| s == Some('T'), "stopped (drover)");
    wait_for_state(pid, |s| s == Some('T'), "stopped (the job)");
    let stopped = Instant::now();
    let_time_pass(stopped, Duration::from_millis(2500));
    assert_eq!(state(pid), Some('T'), "the job stayed stopped");
    send_signal(drover.id(), "CONT");
    let (code, output) = finish(drover);
    assert_eq!(code, 0, "{output}");
    let report = ws.report();
    let j = job(&report, "steps");
    assert_eq!(j["status"], "succeeded", "{j}");
    assert!(
        j["duration_ms"].as_u64().unwrap() >= 2500,
        "the job was held while drover was stopped: {j}"
    );
}

#[test]
fn a_job_that_overstays_is_still_timed_out_after_ctrl_z() {
    let (ws, drover, pid) = start_job("long", "exec sleep 60", "1s");
    send_signal(drover.id(), "TSTP");
    wait_for_state(drover.id(), |s| s == Some('T'), "stopped (drover)");
    let_time_pass(Instant::now(), Duration::from_millis(1500));
    send_signal(drover.id(), "CONT");
    let (code, output) = finish(drover);
    assert_eq!(code, 1, "{output}");
    let report = ws.report();
    let j = job(&report, "long");
    assert_eq!(j["status"], "timed_out", "{j}");
    // Its second of running time came after the 1.5 s stopped.
    assert!(j["duration_ms"].as_u64().unwrap() >= 2400, "{j}");
    assert_all_gone(&[pid as i32]);
}

#[test]
fn ctrl_z_stops_drover_exec_jobs_too() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let script = format!("echo $$ > {}; {STEPS}; echo done", pidfile.display());
    let drover = drover()
        .args(["exec", "--timeout", "2", "--", "sh", "-c", &script, "sh"])
        .args([":::", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = job_pid(&pidfile);
    send_signal(drover.id(), "TSTP");
    wait_for_state(pid, |s| s == Some('T'), "stopped (the job)");
    let_time_pass(Instant::now(), Duration::from_millis(2500));
    send_signal(drover.id(), "CONT");
    let out = drover.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "done\n");
}

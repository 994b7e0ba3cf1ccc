//! A pipeline's items command, and a stream stage's workers, are read to
//! their end however far behind the next stage is: once the process has
//! exited, what it left in its pipe still all flows on. The leak timeout is
//! for descendants holding the pipe open, not for a reader kept waiting by
//! backpressure; and even a leak keeps what was written before drover gave
//! up.

use crate::common::*;

/// A pipeline whose first stage is busy with item 1 for a second, with a
/// queue of one: the items command (800 lines of 101 bytes from `seq`, which
/// fit in the pipe and drover's few buffers) exits at once, and drover's
/// reader waits on the full queue far longer than the leak timeout, tens of
/// kilobytes still in the pipe.
fn slow_start(items_sh: &str) -> Workspace {
    Workspace::new(&format!(
        r#"
[[pipeline]]
name = "p"
items = {{ sh = "{items_sh}" }}
queue = 1
output = {{ file = "out.txt" }}

[[pipeline.stage]]
name = "s"
sh = "case {{}} in *[!0]*1) ;; *1) sleep 1 ;; esac"
workers = 1
"#
    ))
}

/// The items: 1 to `n`, each 100 digits wide.
const SEQ: &str = "seq -f %0100g 1 800";

/// Every item reached the output file, once and in order.
fn assert_all_items(ws: &Workspace) {
    let got = lines_of(&ws.path("out.txt"));
    assert_eq!(got.len(), 800, "items delivered");
    let want: Vec<String> = (1..=800).map(|i| format!("{i:0100}")).collect();
    assert!(got == want, "the items differ");
}

#[test]
fn items_left_in_the_pipe_of_an_exited_command_are_all_read() {
    let ws = slow_start(SEQ);
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    let job = run.job("p");
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["leaked"], false, "nothing held the pipe: {job}");
    assert_eq!(job["pipeline"]["items"], 800, "{job}");
    assert_all_items(&ws);
}

#[test]
fn a_leaking_items_command_keeps_what_it_wrote() {
    // A background child writes the items and then holds the pipe open: a
    // leak. It is killed with the group, and what it wrote is still read.
    let ws = slow_start(&format!("({SEQ}; exec sleep 60) & exit 0"));
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    let job = run.job("p");
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_all_items(&ws);
}

#[test]
fn an_escaped_holder_of_the_items_pipe_does_not_hang_the_run_or_lose_items() {
    // `setsid` leaves the job's group: the group kill misses it, but drover,
    // a child subreaper, finds and kills it; in any case it takes what the
    // pipe holds.
    let pids = tempfile::tempdir().unwrap();
    let pidfile = pids.path().join("pid");
    let ws = slow_start(&format!(
        "setsid sh -c 'echo $$ > {}; {SEQ}; exec sleep 60' & exit 0",
        pidfile.display()
    ));
    let run = ws.run(&[]);
    // drover has exited: the escaped process is gone with it.
    for pid in pids_in(&pidfile) {
        assert!(pid_gone(pid), "pid {pid} outlived drover");
    }
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    assert_all_items(&ws);
}

#[test]
fn a_stream_worker_that_exited_has_its_lines_all_passed_on() {
    // The worker reads every item, answers three, and while the next stage
    // holds the queue full for a second (item 1), it answers the other 597
    // (60 kB, which its stdout pipe holds) and exits. drover then has them
    // to pass on, one at a time, to a stage that spawns a process per item.
    let ws = Workspace::new(
        r#"
[[pipeline]]
name = "p"
items = { sh = "seq -f %0100g 1 600" }
queue = 1
output = { file = "out.txt" }

[[pipeline.stage]]
name = "pass"
sh = "cat > all.txt; head -n 3 all.txt; sleep 0.2; tail -n +4 all.txt"
mode = "stream"
workers = 1

[[pipeline.stage]]
name = "s"
sh = "case {} in *[!0]*1) ;; *1) sleep 1 ;; esac"
workers = 1
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    let job = run.job("p");
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["pipeline"]["errors"], serde_json::json!([]), "{job}");
    assert_eq!(job["pipeline"]["delivered"], 600, "{job}");
}

#[test]
fn a_stream_workers_items_are_all_accounted_for_when_an_escaped_process_holds_its_stdout() {
    // The worker answers every item, then leaves a process in a session of
    // its own holding its stdout; the next stage is slow. drover kills that
    // process (it is a child subreaper), and no item vanishes: each is
    // delivered or failed.
    let pids = tempfile::tempdir().unwrap();
    let pidfile = pids.path().join("pid");
    let ws = Workspace::new(&format!(
        r#"
[[pipeline]]
name = "p"
items = {{ sh = "seq 1 30" }}
queue = 2

[[pipeline.stage]]
name = "s1"
sh = "while read f; do echo \"$f\"; done; setsid sh -c 'echo $$ > {}; exec sleep 30' & exit 0"
mode = "stream"
workers = 1

[[pipeline.stage]]
name = "s2"
sh = "sleep 0.1"
workers = 1
"#,
        pidfile.display()
    ));
    let run = ws.run(&[]);
    for pid in pids_in(&pidfile) {
        assert!(pid_gone(pid), "pid {pid} outlived drover");
    }
    let job = run.job("p");
    let p = &job["pipeline"];
    assert_eq!(p["items"], 30, "{job}");
    let delivered = p["delivered"].as_u64().unwrap();
    let failed: u64 = p["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["failed"].as_u64().unwrap())
        .sum();
    assert_eq!(
        delivered + failed,
        30,
        "every item delivered or failed: {job}"
    );
}

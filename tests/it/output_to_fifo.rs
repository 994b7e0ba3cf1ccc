//! A job whose stdout is a FIFO that no process reads yet waits for a
//! reader, as `> fifo` in a shell does, without holding one of drover's
//! threads: the other jobs run on meanwhile, and Ctrl-C stops the wait.

use crate::common::*;
use std::io::Read;
use std::time::Duration;

/// FIFO jobs: more than drover has threads on any machine these tests run on.
const FIFOS: usize = 8;

#[test]
fn jobs_waiting_for_fifo_readers_hold_back_no_other_job() {
    let mut jobs = String::from("[run]\nmax_parallel = 0\n");
    for i in 0..FIFOS {
        jobs += &format!(
            "[[job]]\nname = \"to-fifo-{i}\"\nsh = \"echo n{i}\"\nstdout = {{ file = \"f{i}\" }}\n"
        );
    }
    // Last in the file: dispatched after every FIFO job.
    jobs += "[[job]]\nname = \"free\"\nsh = \"echo ok > marker\"\n";
    let ws = Workspace::new(&jobs);
    for i in 0..FIFOS {
        mkfifo(&ws.path(&format!("f{i}")));
    }
    let drover = ws.spawn(&[]);
    let free_ran = wait_until(Duration::from_secs(20), || ws.path("marker").exists());
    // Readers now, whatever happened, so that drover can end.
    let mut got = Vec::new();
    for i in 0..FIFOS {
        let mut text = String::new();
        std::fs::File::open(ws.path(&format!("f{i}")))
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        got.push(text);
    }
    let out = drover.wait_with_output().unwrap();
    assert!(free_ran, "a job waited on the FIFO jobs' readers");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for (i, text) in got.iter().enumerate() {
        assert_eq!(text, &format!("n{i}\n"));
    }
    let report = ws.report();
    assert_eq!(report["summary"]["succeeded"], FIFOS + 1);
}

#[test]
fn ctrl_c_stops_a_job_waiting_for_a_fifo_reader() {
    let ws = Workspace::new(
        "[[job]]\nname = \"to-fifo\"\nsh = \"echo never\"\nstdout = { file = \"f\" }\n\n[[job]]\nname = \"free\"\nsh = \"echo ok > marker\"\n",
    );
    mkfifo(&ws.path("f"));
    let drover = ws.spawn(&[]);
    assert!(wait_until(Duration::from_secs(20), || ws
        .path("marker")
        .exists()));
    send_signal(drover.id(), "INT");
    let pid = drover.id();
    let finished = wait_until(Duration::from_secs(20), || pid_gone(pid as i32));
    if !finished {
        // Let the old, blocked drover go before failing.
        let _ = std::fs::File::open(ws.path("f"));
    }
    let out = drover.wait_with_output().unwrap();
    assert!(finished, "drover did not stop on Ctrl-C");
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let report = ws.report();
    assert_eq!(job(&report, "to-fifo")["status"], "skipped", "{report}");
    assert_eq!(job(&report, "free")["status"], "succeeded");
}

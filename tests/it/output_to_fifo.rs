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

#[test]
fn a_job_with_two_fifos_keeps_the_first_open_while_it_waits_for_the_second() {
    let ws = Workspace::new(
        "[[job]]\nname = \"two\"\nsh = \"echo to-stdout; echo to-stderr >&2\"\n\
         stdout = { file = \"f1\" }\nstderr = { file = \"f2\" }\n",
    );
    mkfifo(&ws.path("f1"));
    mkfifo(&ws.path("f2"));
    let reader = |fifo: &str, out: &str| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("cat {fifo} > {out}"))
            .current_dir(ws.dir.path())
            .spawn()
            .unwrap()
    };
    let mut first = reader("f1", "o1");
    let drover = ws.spawn(&[]);
    // While f2 has no reader drover tries again and again; f1's reader
    // must not see the end of its input meanwhile.
    let first_ended = wait_until(Duration::from_secs(1), || {
        matches!(first.try_wait(), Ok(Some(_)))
    });
    let mut second = reader("f2", "o2");
    let pid = drover.id();
    let finished = wait_until(Duration::from_secs(20), || pid_gone(pid as i32));
    if !finished {
        let _ = std::fs::File::open(ws.path("f1")); // let an old drover go
        send_signal(pid, "KILL");
    }
    let out = drover.wait_with_output().unwrap();
    let _ = first.wait();
    let _ = second.wait();
    assert!(
        !first_ended,
        "f1's reader saw the end while drover waited for f2's"
    );
    assert!(finished, "the job never ran");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(ws.path("o1")).unwrap(),
        "to-stdout\n"
    );
    assert_eq!(
        std::fs::read_to_string(ws.path("o2")).unwrap(),
        "to-stderr\n"
    );
}

#[test]
fn waiting_for_a_fifo_reader_ends_at_the_jobs_timeout() {
    let ws = Workspace::new(
        "[[job]]\nname = \"to-fifo\"\nsh = \"echo never\"\nstdout = { file = \"f\" }\ntimeout = \"1s\"\n",
    );
    mkfifo(&ws.path("f"));
    let drover = ws.spawn(&[]);
    let pid = drover.id();
    let finished = wait_until(Duration::from_secs(20), || pid_gone(pid as i32));
    if !finished {
        let _ = std::fs::File::open(ws.path("f"));
    }
    let out = drover.wait_with_output().unwrap();
    assert!(finished, "the wait outlived the timeout");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report = ws.report();
    let j = job(&report, "to-fifo");
    assert_eq!(j["status"], "spawn_failed", "{j}");
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .contains("within the job's timeout"),
        "{j}"
    );
}

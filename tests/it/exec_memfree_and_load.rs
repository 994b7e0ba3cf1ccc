//! `drover exec --memfree SIZE` and `--load N` hold back new jobs while the
//! machine is short (as GNU parallel: they wait, running jobs go on); a
//! limit that is met changes nothing, one that cannot be met starts no job
//! and says why on stderr after a while, and Ctrl-C still ends the run.

use crate::common::*;

use std::io::Read;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn limits_that_are_met_change_nothing() {
    for limit in [
        &["--memfree", "1k"][..],
        &["--load", "1000"],
        &["--load", "10000%"],
    ] {
        let out = drover()
            .arg("exec")
            .args(limit)
            .args(["-k", "--", "echo", ":::", "a", "b", "c"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{limit:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout), "a\nb\nc\n", "{limit:?}");
    }
}

#[test]
fn more_memory_than_the_machine_has_holds_every_job_back_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let mut child = drover()
        .args(["exec", "--memfree", "1000T", "--", "touch"])
        .arg(&ran)
        .args([":::", "a"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let reader = {
        let stderr = stderr.clone();
        let mut pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                stderr
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    // The notice comes after 5 s held back.
    let said = wait_until(Duration::from_secs(30), || {
        stderr.lock().unwrap().contains("--memfree")
    });
    let seen = stderr.lock().unwrap().clone();
    assert!(said, "no notice on stderr: {seen}");
    assert!(
        seen.contains("MemAvailable") && seen.contains("drover waits"),
        "{seen}"
    );
    assert!(!ran.exists(), "a job started");
    send_signal(child.id(), "INT");
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert_eq!(status.code(), Some(130), "{}", stderr.lock().unwrap());
    assert!(!ran.exists(), "a job started");
}

#[test]
fn bad_limits_are_usage_errors_naming_the_flag() {
    for (args, named) in [
        (&["--memfree", "abc"][..], "--memfree abc"),
        (&["--memfree", "0"], "--memfree 0"),
        (&["--load", "x"], "--load x"),
        (&["--load", "-1"], "--load -1"),
    ] {
        let out = drover()
            .arg("exec")
            .args(args)
            .args(["--", "echo", ":::", "a"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(255), "{args:?}");
        assert!(text(&out.stderr).contains(named), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty());
    }
}

//! Output that drover cannot write out, for a reason other than a closed
//! pipe (a full disk: here /dev/full, which fails every write with ENOSPC),
//! is an error of drover: each job whose output is lost is named (its
//! sequence number and command) and drover exits 255, GNU parallel's code
//! for its own errors, never 0.

use crate::common::*;

use std::fs::File;
use std::process::{Output, Stdio};

fn dev_full() -> File {
    File::options()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full")
}

/// `drover exec ARGS...` with stdout (or stderr) to /dev/full.
fn exec_into_full(args: &[&str], stderr_full: bool) -> Output {
    let mut cmd = drover();
    cmd.arg("exec").args(args).stdin(Stdio::null());
    if stderr_full {
        cmd.stdout(Stdio::null()).stderr(dev_full());
    } else {
        cmd.stdout(dev_full()).stderr(Stdio::piped());
    }
    cmd.output().expect("run drover exec")
}

#[test]
fn grouped_output_to_a_full_disk_names_each_job_and_exits_255() {
    let out = exec_into_full(&["-j", "2", "--", "echo", "hi", ":::", "a", "b"], false);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{stderr}");
    for job in ["job 1: echo hi a", "job 2: echo hi b"] {
        assert!(
            stderr.contains(&format!("the output of {job} is lost")),
            "{stderr}"
        );
    }
    assert!(stderr.contains("No space left on device"), "{stderr}");
}

#[test]
fn followed_output_to_a_full_disk_names_the_job_and_exits_255() {
    // -k: the first job's output is written out while it runs.
    let out = exec_into_full(
        &[
            "-k",
            "--",
            "sh",
            "-c",
            "head -c 10000000 /dev/zero",
            ":::",
            "a",
        ],
        false,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{stderr}");
    assert!(stderr.contains("the output of job 1: sh -c"), "{stderr}");
}

#[test]
fn line_buffered_output_to_a_full_disk_names_the_job_and_exits_255() {
    let out = exec_into_full(&["--line-buffer", "--", "echo", "hi", ":::", "a"], false);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{stderr}");
    assert!(
        stderr.contains("the output of job 1 (item a) is lost"),
        "{stderr}"
    );
}

#[test]
fn a_jobs_stderr_to_a_full_disk_exits_255() {
    // drover's stderr is the full one: only the exit code can tell.
    let out = exec_into_full(&["--shell", "--", "echo oops >&2", ":::", "a"], true);
    assert_eq!(out.status.code(), Some(255));
}

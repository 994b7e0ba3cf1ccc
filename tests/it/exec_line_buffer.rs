//! `drover exec --line-buffer`: lines of running jobs are printed as they
//! come, lines of different jobs may alternate, but a line is never cut or
//! mixed with another, even when a job writes it in pieces. With `--tag`
//! each line carries its item.

use crate::common::*;

use std::io::{BufRead, BufReader};
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Prints `job-ITEM-line-N` for N in 1..=200, each line in two writes with
/// a short pause between them.
const JOB: &str = "i=1; while [ $i -le 200 ]; do \
    printf 'job-%s-' \"$1\"; sleep 0.002; printf 'line-%s\\n' $i; i=$((i+1)); done";

fn run(extra: &[&str]) -> Output {
    drover()
        .arg("exec")
        .args(["-j", "3", "--line-buffer"])
        .args(extra)
        .args(["--", "sh", "-c", JOB, "sh", "{}", ":::", "a", "b", "c"])
        .stdin(Stdio::null())
        .output()
        .expect("run drover exec")
}

/// Checks every line is `job-X-line-N` (after `prefix(X)`), and each job's
/// 200 lines all came, in order.
fn check(out: &Output, prefix: impl Fn(&str) -> String) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let text = String::from_utf8(out.stdout.clone()).expect("UTF-8 output");
    assert!(text.ends_with('\n'), "ends with a whole line");
    let mut next = [1u32; 3];
    for line in text.lines() {
        let job = ["a", "b", "c"]
            .iter()
            .position(|x| {
                let head = format!("{}job-{x}-line-", prefix(x));
                line.strip_prefix(&head)
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
            .unwrap_or_else(|| panic!("a cut or mixed line: {line:?}"));
        let n: u32 = line.rsplit('-').next().unwrap().parse().unwrap();
        assert_eq!(n, next[job], "lines of job {job} in order: {line:?}");
        next[job] += 1;
    }
    assert_eq!(next, [201; 3], "all 600 lines");
}

#[test]
fn lines_of_concurrent_jobs_are_never_cut() {
    check(&run(&[]), |_| String::new());
}

#[test]
fn tagged_lines_are_never_cut() {
    check(&run(&["--tag"]), |x| format!("{x}\t"));
}

#[test]
fn lines_are_printed_while_the_job_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    // The job prints a line, then waits (at most 20 s) for the test to
    // create `go`.
    let mut child = drover()
        .arg("exec")
        .args(["--line-buffer", "--", "sh", "-c"])
        .arg(
            "echo first; n=0; while [ ! -e go ] && [ $n -lt 2000 ]; do sleep 0.01; n=$((n+1)); done; \
             echo second",
        )
        .args([":::", "x"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn drover exec");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the first line comes before the job ends");
    assert_eq!(first, "first");
    std::fs::write(dir.path().join("go"), "").unwrap();
    let second = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("second line");
    assert_eq!(second, "second");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

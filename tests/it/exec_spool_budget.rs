//! Grouped output waits in memory files while jobs run, but not without
//! bound: three jobs printing 400 MB each at once are held to drover's
//! 128 MiB budget (plus what they write between two looks of the watchdog);
//! the rest moves to disk, and every byte still reaches stdout, each job's
//! whole and in one piece.

use crate::common::*;

use std::io::Read;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

const JOB_BYTES: u64 = 400_000_000;

#[test]
fn three_jobs_of_400_mb_stay_within_the_memory_budget() {
    // $TMPDIR a tmpfs with room for all of it: on a machine short of disk
    // the moves would fail, and memory would rightly hold 4 × the budget
    // (exec_tmpdir_full tests that).
    let tmp = tempfile::tempdir().unwrap();
    let bytes = JOB_BYTES.to_string();
    let args = [
        "-j",
        "3",
        "--",
        "sh",
        "-c",
        "head -c $1 /dev/zero | tr '\\0' $2",
        "x",
        &bytes,
        ":::",
        "a",
        "b",
        "c",
    ];
    let Some(mut cmd) = exec_on_tmpfs(tmp.path(), "2g", &args) else {
        return;
    };
    let mut child = cmd
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn drover exec");
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(memfd_bytes(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    // Runs of one letter: each job's output must be one run of JOB_BYTES.
    let runs = byte_runs(child.stdout.take().unwrap());
    let status = child.wait().unwrap();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{stderr}");
    let mut letters: Vec<u8> = runs.iter().map(|(l, _)| *l).collect();
    letters.sort_unstable();
    assert_eq!(letters, b"abc", "each job's output in one piece: {runs:?}");
    assert!(runs.iter().all(|&(_, len)| len == JOB_BYTES), "{runs:?}");
    let peak_mib = peak.load(Ordering::Relaxed) >> 20;
    assert!(
        peak_mib > 0,
        "no memory file seen: is grouped output spooled elsewhere?"
    );
    assert!(
        peak_mib < 512,
        "memory files held {peak_mib} MiB at the peak; stderr:\n{stderr}"
    );
}

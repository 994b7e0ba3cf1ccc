//! Grouped output is never dropped when $TMPDIR fills up. With $TMPDIR a
//! real 8 MiB tmpfs and four jobs printing 192 MiB between them (past
//! the memory budget, so that their output must move to disk): a move that
//! fails leaves the bytes in memory, jobs writing more are stopped (all but
//! the oldest) once memory files hold 4 × the budget, and every byte reaches
//! stdout, each job's whole and in one piece, with exit 0.
//!
//! The budget is made 4 MiB (`DROVER_SPOOL_MEMORY`) so that the bound on
//! memory is seen with little output; the output is still past the default
//! 128 MiB, where drover dropped it before.

use crate::common::*;

use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

const JOB_BYTES: u64 = 48 << 20;

/// `drover exec ARGS...` with $TMPDIR an 8 MiB tmpfs of its own, mounted
/// in a private mount namespace (gone with drover); stdout piped.
fn exec_with_full_tmpdir(tmp: &std::path::Path, args: &[&str]) -> Option<Child> {
    let child = exec_on_tmpfs(tmp, "8m", args)?
        .env("DROVER_SPOOL_MEMORY", "4M")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn unshare … drover exec");
    Some(child)
}

/// What a run printed.
struct Printed {
    /// Runs of one letter on stdout.
    runs: Vec<(u8, u64)>,
    code: i32,
    stderr: String,
    /// The most memory drover's memory files held, in MiB.
    peak_mib: u64,
}

/// Runs jobs printing JOB_BYTES of one letter each, one job per letter.
fn print_letters(extra: &[&str], letters: &[&str]) -> Option<Printed> {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = JOB_BYTES.to_string();
    let mut args = extra.to_vec();
    args.extend([
        "--",
        "sh",
        "-c",
        "head -c $1 /dev/zero | tr '\\0' $2",
        "x",
        &bytes,
        ":::",
    ]);
    args.extend(letters);
    let mut child = exec_with_full_tmpdir(tmp.path(), &args)?;
    // unshare and sh exec: the pid is drover's once it runs.
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(memfd_bytes(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let runs = byte_runs(child.stdout.take().unwrap());
    let out = child.wait_with_output().unwrap();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let code = out.status.code().expect("drover exited normally");
    Some(Printed {
        runs,
        code,
        stderr: text(&out.stderr),
        peak_mib: peak.load(Ordering::Relaxed) >> 20,
    })
}

#[test]
fn every_byte_of_grouped_output_is_printed_when_tmpdir_is_full() {
    let Some(Printed {
        runs,
        code,
        stderr,
        peak_mib,
    }) = print_letters(&["-j", "4"], &["a", "b", "c", "d"])
    else {
        return;
    };
    assert_eq!(code, 0, "{stderr}");
    let mut letters: Vec<u8> = runs.iter().map(|(l, _)| *l).collect();
    letters.sort_unstable();
    assert_eq!(letters, b"abcd", "each job's output in one piece: {runs:?}");
    assert!(runs.iter().all(|&(_, len)| len == JOB_BYTES), "{runs:?}");
    // Held near 16 MiB (4 × the budget), but for the oldest job running on
    // to its 48 MiB, and a job's output being printed: well under the four
    // jobs' 192 MiB at once.
    assert!(peak_mib > 0, "no memory file seen");
    assert!(
        peak_mib < 150,
        "memory files held {peak_mib} MiB at the peak; stderr:\n{stderr}"
    );
}

#[test]
fn in_fixed_order_every_byte_is_printed_when_tmpdir_is_full() {
    // The first job is followed; the three after it wait, past the budget.
    let Some(Printed {
        runs, code, stderr, ..
    }) = print_letters(&["-k", "-j", "4"], &["a", "b", "c", "d"])
    else {
        return;
    };
    assert_eq!(code, 0, "{stderr}");
    let letters: Vec<u8> = runs.iter().map(|(l, _)| *l).collect();
    assert_eq!(letters, b"abcd", "in input order, each whole: {runs:?}");
    assert!(runs.iter().all(|&(_, len)| len == JOB_BYTES), "{runs:?}");
}

//! `drover exec --pipe --round-robin`: stdin cut into blocks as without it,
//! but fed to at most -j jobs, each fed block after block (GNU parallel's
//! --round-robin). Every line reaches exactly one job, whole; a job starts
//! only for a block; jobs that stop reading do not hang drover.

use crate::common::*;

use std::io::Write;
use std::process::{Child, Output, Stdio};
use std::time::Duration;

/// `seq 1 n`, as bytes.
fn seq(n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 1..=n {
        writeln!(out, "{i}").unwrap();
    }
    out
}

/// Command-line words, split at spaces.
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Starts `drover exec ARGS` with every stdio a pipe.
fn spawn_exec(args: &[&str]) -> Child {
    drover()
        .arg("exec")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn drover exec")
}

/// Runs `drover exec ARGS` with `input` written to its stdin through a pipe.
fn exec_fed(args: &[&str], input: Vec<u8>) -> Output {
    let mut child = spawn_exec(args);
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // Jobs that stop reading may leave the rest unread: not an error.
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn assert_ok(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The counts the jobs printed: one a job, `jobs` of them, adding up to
/// `total`.
fn job_counts(out: &Output, jobs: usize, total: u64) -> Vec<u64> {
    assert_ok(out);
    let counts = numbers(out);
    assert_eq!(counts.len(), jobs, "one output per job: {counts:?}");
    assert_eq!(counts.iter().sum::<u64>(), total, "{counts:?}");
    counts
}

fn numbers(out: &Output) -> Vec<u64> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().expect("a number per line"))
        .collect()
}

#[test]
fn blocks_are_spread_over_at_most_j_jobs_each_line_once() {
    // 100k blocks: read into memory (below the size blocks are spliced at).
    let out = exec_fed(
        &words("--pipe --round-robin -j 3 --block 100k -- wc -l"),
        seq(300_000),
    );
    // About 2 MB in 100 kB blocks, some twenty: three jobs (one a block
    // would be twenty), each fed at least its first block. How many more
    // each gets depends on how fast it reads: a job slow to start (a loaded
    // machine) may get no more than that first.
    let counts = job_counts(&out, 3, 300_000);
    assert!(counts.iter().all(|&c| c > 0), "{counts:?}");
}

#[test]
fn spliced_blocks_reach_the_jobs_whole_and_in_order_per_job() {
    // 300k blocks move by splice; `cat` gives back what each job read.
    let out = exec_fed(
        &words("--pipe --round-robin -j 2 --block 300k -- cat"),
        seq(400_000),
    );
    assert_ok(&out);
    let lines = numbers(&out);
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (1..=400_000).collect::<Vec<u64>>(),
        "every line once, whole"
    );
    // Grouped output: each job's lines together, ascending within it.
    let descents = lines.windows(2).filter(|w| w[1] < w[0]).count();
    assert_eq!(descents, 1, "two jobs' outputs, one after the other");
}

#[test]
fn a_job_starts_only_for_a_block() {
    let out = exec_fed(&words("--pipe --round-robin -j 4 -- wc -l"), seq(3));
    assert_ok(&out);
    assert_eq!(numbers(&out), vec![3], "one job for the one block");

    let out = exec_fed(&words("--pipe --round-robin -j 4 -- wc -l"), Vec::new());
    assert_ok(&out);
    assert!(out.stdout.is_empty(), "no input, no job");
}

#[test]
fn stdin_may_be_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input");
    std::fs::write(&path, seq(300_000)).unwrap();
    let out = drover()
        .arg("exec")
        .args(words("--pipe --round-robin -j 2 --block 300k -- wc -l"))
        .stdin(std::fs::File::open(&path).unwrap())
        .output()
        .unwrap();
    job_counts(&out, 2, 300_000);
}

#[test]
fn the_joblog_counts_every_byte_a_job_was_sent() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("joblog");
    let input = seq(300_000);
    let total = input.len() as u64;
    let args = [
        words("--pipe --round-robin -j 2 --block 300k --joblog"),
        vec![log.to_str().unwrap()],
        words("-- wc -c"),
    ]
    .concat();
    let out = exec_fed(&args, input);
    assert_ok(&out);
    let received: u64 = numbers(&out).iter().sum();
    assert_eq!(received, total);
    // Seq Host Starttime JobRuntime Send Receive Exitval Signal Command
    let sent: u64 = lines_of(&log)
        .iter()
        .skip(1)
        .map(|l| l.split('\t').nth(4).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(sent, total, "the Send column");
}

#[test]
fn jobs_that_stop_reading_end_the_run() {
    // Far more input than two `head -n 1` read: once neither reads, drover
    // stops reading and ends (the writer then sees a closed pipe).
    let mut child = spawn_exec(&words(
        "--pipe --round-robin -j 2 --block 300k -- head -n 1",
    ));
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = seq(100_000);
        // Until drover stops reading: 64 MiB at most.
        for _ in 0..64 * 1024 * 1024 / chunk.len() {
            if stdin.write_all(&chunk).is_err() {
                return true;
            }
        }
        false
    });
    let ended = wait_until(Duration::from_secs(30), || {
        child.try_wait().unwrap().is_some()
    });
    if !ended {
        let _ = child.kill();
    }
    assert!(ended, "drover hung with no job reading");
    let out = child.wait_with_output().unwrap();
    assert_ok(&out);
    assert_eq!(numbers(&out).len(), 2, "a line from each job");
    assert!(writer.join().unwrap(), "drover stopped reading its stdin");
}

#[test]
fn round_robin_goes_with_pipe_and_without_retries() {
    let out = drover()
        .args(words("exec --round-robin echo ::: a"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--round-robin goes with --pipe"));

    let out = drover()
        .args(words("exec --pipe --round-robin --retries 3 cat"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--retries"), "{stderr}");
}

#[test]
fn a_slow_job_is_not_handed_block_after_block() {
    // Job 1 reads a line at a time with the shell's `read` (a syscall a
    // byte); job 2 is `wc -l`. Blocks go to the job whose pipe holds the
    // least, so the slow job gets few.
    let total = 1_300_000;
    let script = "if [ {#} = 1 ]; then n=0; while read -r l; do n=$((n+1)); done; echo 1 $n; \
                  else echo 2 $(wc -l); fi";
    let mut args = words("--shell --pipe --round-robin -j 2 --block 300k --");
    args.push(script);
    let out = exec_fed(&args, seq(total));
    assert_ok(&out);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines_of_job = |job: &str| -> u64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{job} ")))
            .unwrap_or_else(|| panic!("no count from job {job}: {stdout:?}"))
            .trim()
            .parse()
            .unwrap()
    };
    let (slow, fast) = (lines_of_job("1"), lines_of_job("2"));
    assert_eq!(slow + fast, total);
    // Measured: 7.3% of the lines; dealt in turn, 16.8%.
    assert!(slow * 8 < total, "the slow job got {slow} of {total} lines");
}

//! drover sizes its descriptor table for the jobs it may run at once before
//! it starts a thread: growing it later, with threads, makes every spawn wait
//! for an RCU grace period (measured: 12.7 ms with all workers stopped, at
//! the 100th of 200 jobs started at once). The first job to run can see the
//! size, in its parent's /proc/PID/status (FDSize).

use crate::common::*;

/// The FDSize line a job printed about its parent, drover.
fn fd_size(stdout: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("FDSize:"))
        .unwrap_or_else(|| panic!("no FDSize line in {stdout:?}"));
    line["FDSize:".len()..]
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

/// drover's FDSize as the first of 300 jobs sees it, with `max_parallel`.
fn first_jobs_fd_size(max_parallel: usize) -> u64 {
    let values: Vec<String> = (0..299).map(|n| format!("\"{n}\"")).collect();
    let ws = Workspace::new(&format!(
        r#"
[run]
max_parallel = {max_parallel}

[[job]]
name = "first"
sh = "grep FDSize /proc/$PPID/status"

[[job]]
name = "other-{{n}}"
cmd = ["true"]
matrix = {{ n = [{}] }}
"#,
        values.join(", ")
    ));
    let done = ws.run(&[]);
    assert_eq!(done.code(), 0, "{}", done.stderr());
    fd_size(done.job("first")["stdout"].as_str().expect("stdout"))
}

#[test]
fn run_sizes_the_table_for_its_jobs_at_once_before_the_first_starts() {
    // 300 jobs of two captured pipes and a pidfd at once: over 900
    // descriptors, where the kernel's table starts at 64.
    let size = first_jobs_fd_size(300);
    assert!(size >= 900, "FDSize {size}");
}

#[test]
fn run_sizes_the_table_for_its_limit_not_its_file() {
    // max_parallel = 2: the table need not grow for 300 jobs.
    let size = first_jobs_fd_size(2);
    assert!(size < 900, "FDSize {size}");
}

#[test]
fn exec_sizes_the_table_for_its_jobs_at_once() {
    let out = exec_stdout([
        "-j",
        "400",
        "--",
        "sh",
        "-c",
        "grep FDSize /proc/$PPID/status",
        ":::",
        "1",
    ]);
    // A pidfd and two memory files a job.
    let size = fd_size(&out);
    assert!(size >= 1200, "FDSize {size}");
}

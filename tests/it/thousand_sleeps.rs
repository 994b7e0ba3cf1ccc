//! Fan-out at scale: 1000 `sleep 1` jobs with no parallelism limit all run
//! at once, so the batch takes about a second, not a thousand.

use crate::common::*;

use std::collections::HashSet;
use std::time::{Duration, Instant};

#[test]
fn thousand_sleeps_run_at_once() {
    let values: Vec<String> = (0..1000).map(|n| format!("\"{n}\"")).collect();
    let ws = Workspace::new(&format!(
        r#"[run]
max_parallel = 0

[[job]]
name = "sleep-{{n}}"
cmd = ["sleep", "1"]
matrix = {{ n = [{}] }}
"#,
        values.join(", ")
    ));

    let started = Instant::now();
    let run = ws.run(&["-q"]);
    let took = started.elapsed();

    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    let report = run.report();
    assert_eq!(report["summary"]["total"], 1000);
    assert_eq!(report["summary"]["succeeded"], 1000);
    let jobs = report["jobs"].as_array().expect("jobs array");
    assert_eq!(jobs.len(), 1000);
    let mut pids = HashSet::new();
    for (n, job) in jobs.iter().enumerate() {
        assert_eq!(job["name"], format!("sleep-{n}"), "jobs in file order");
        assert_eq!(job["status"], "succeeded", "{job:#}");
        let pid = job["pid"]
            .as_u64()
            .unwrap_or_else(|| panic!("no pid: {job:#}"));
        assert!(pids.insert(pid), "pid {pid} reported twice");
    }
    // About 1 s of sleeping plus spawning 1000 processes on a small machine.
    assert!(
        took < Duration::from_secs(15),
        "1000 parallel sleeps took {took:?}"
    );
}

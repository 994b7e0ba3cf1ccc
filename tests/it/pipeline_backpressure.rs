//! Backpressure: a fast source of 1 000 000 items in front of a slow stage.
//! The source is held back by the bounded queues (no item is read far ahead),
//! no queue ever holds more than `queue` items, and drover's memory stays
//! flat while the pipeline runs.

use crate::common::*;
use std::time::{Duration, Instant};

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn a_slow_stage_holds_back_a_million_item_source_with_flat_memory() {
    let ws = Workspace::new(
        r#"
[[pipeline]]
name = "p"
items = { sh = "seq 1 1000000" }
queue = 16
timeout = "4s"

[[pipeline.stage]]
name = "fast"
cmd = ["cat"]
mode = "stream"

[[pipeline.stage]]
name = "slow"
sh = "sleep 0.05"
workers = 2
"#,
    );
    let mut child = ws.spawn(&[]);
    let start = Instant::now();
    let mut samples = Vec::new();
    while child.try_wait().unwrap().is_none() {
        if let Some(kib) = rss_kib(child.id()) {
            samples.push((start.elapsed(), kib));
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the pipeline did not stop at its timeout");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let report = ws.report();
    let p = &job(&report, "p")["pipeline"];
    assert_eq!(job(&report, "p")["status"], "timed_out");
    // The slow stage got through about 4 s / 0.05 s × 2 items; the source
    // was read only as far as the queues and the `cat` worker's pipes hold.
    let read = p["items"].as_u64().unwrap();
    assert!(
        read < 100_000,
        "the source ran ahead: {read} items read; {p}"
    );
    for stage in p["stages"].as_array().unwrap() {
        let depth = stage["max_queue_depth"].as_u64().unwrap();
        assert!(depth <= 16, "queue bound broken: {stage}");
    }
    assert_eq!(p["stages"][1]["max_queue_depth"], 16, "{p}");
    // Memory: flat after the first second (no growth with time).
    let later: Vec<u64> = samples
        .iter()
        .filter(|(t, _)| *t > Duration::from_secs(1))
        .map(|&(_, k)| k)
        .collect();
    assert!(later.len() >= 5, "too few samples: {samples:?}");
    let (lo, hi) = (*later.iter().min().unwrap(), *later.iter().max().unwrap());
    assert!(hi < 64 * 1024, "drover used {hi} KiB");
    assert!(hi - lo < 4 * 1024, "memory grew from {lo} to {hi} KiB");
}

#[test]
fn a_million_items_pass_through_two_stream_stages() {
    let ws = Workspace::new(
        r#"
[[pipeline]]
name = "p"
items = { sh = "seq 1 1000000" }
queue = 256
output = { file = "out.txt" }

[[pipeline.stage]]
name = "one"
cmd = ["cat"]
mode = "stream"
workers = 2

[[pipeline.stage]]
name = "two"
cmd = ["cat"]
mode = "stream"
workers = 2
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let p = &run.job("p")["pipeline"];
    assert_eq!(p["items"], 1_000_000);
    assert_eq!(p["delivered"], 1_000_000);
    let out = std::fs::read_to_string(ws.path("out.txt")).unwrap();
    let mut n: Vec<u32> = out.lines().map(|l| l.parse().unwrap()).collect();
    n.sort_unstable();
    assert!(n.iter().copied().eq(1..=1_000_000), "items lost or doubled");
    for stage in p["stages"].as_array().unwrap() {
        assert!(stage["max_queue_depth"].as_u64().unwrap() <= 256, "{stage}");
    }
}

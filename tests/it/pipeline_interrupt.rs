//! Ctrl-C in the middle of a pipeline: per-item processes and stream
//! workers get SIGTERM to their groups, the report is written with the
//! pipeline `cancelled` and its counts so far, drover exits 130, and no
//! process of the pipeline is left. A pipeline `timeout` stops it the same
//! way, with status `timed_out`.

use crate::common::*;
use std::time::Duration;

fn toml(pids: &std::path::Path, extra: &str) -> String {
    format!(
        r#"
[defaults]
kill_grace = "2s"

[[pipeline]]
name = "p"
items = {{ sh = "seq 1 1000000" }}
queue = 4
{extra}

[[pipeline.stage]]
name = "stream"
sh = "echo $$ >> {p}; sleep 1000 & echo $! >> {p}; cat"
mode = "stream"
workers = 2

[[pipeline.stage]]
name = "slow"
sh = "echo $$ >> {p}; sleep 1000 & echo $! >> {p}; wait"
workers = 3

[[job]]
name = "after"
cmd = ["true"]
needs = ["p"]
"#,
        p = pids.display()
    )
}

#[test]
fn sigint_cancels_a_running_pipeline_and_leaves_no_process() {
    let ws = Workspace::new("");
    let pids = ws.path("pids");
    std::fs::write(ws.jobs(), toml(&pids, "")).unwrap();
    let child = ws.spawn(&[]);
    // 2 stream workers + 3 items at the slow stage, 2 pids each.
    assert!(
        wait_until(Duration::from_secs(20), || pids_in(&pids).len() >= 10),
        "pipeline did not start: {:?}",
        pids_in(&pids)
    );
    send_signal(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = ws.report();
    let p = job(&report, "p");
    assert_eq!(p["status"], "cancelled", "{p}");
    let stages = &p["pipeline"]["stages"];
    assert!(stages[1]["items_in"].as_u64().unwrap() >= 3, "{p}");
    // Cancelled items are not failures.
    assert_eq!(
        p["pipeline"]["failed_items"].as_array().unwrap().len(),
        0,
        "{p}"
    );
    assert_eq!(job(&report, "after")["status"], "skipped");
    assert_all_gone(&pids_in(&pids));
}

#[test]
fn a_pipeline_timeout_stops_it_as_timed_out() {
    let ws = Workspace::new("");
    let pids = ws.path("pids");
    std::fs::write(ws.jobs(), toml(&pids, "timeout = \"1s\"")).unwrap();
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let p = run.job("p");
    assert_eq!(p["status"], "timed_out", "{p}");
    assert!(p["error"].as_str().unwrap().contains("timed out after 1s"));
    // Backpressure held the source back: far from a million items read.
    assert!(p["pipeline"]["items"].as_u64().unwrap() < 200_000, "{p}");
    assert_eq!(run.job("after")["status"], "skipped");
    assert_all_gone(&pids_in(&pids));
}

//! Stream mode: long-lived workers fed through stdin. A worker that dies is
//! restarted; the item it held is recorded failed, the items it had not
//! read go to its replacement, nothing is lost silently. Workers get EOF
//! when the items run out and exit; a worker that dies before reading
//! anything, again and again, ends its stage instead of hanging it.

use crate::common::*;

#[test]
fn a_worker_crashing_mid_way_loses_only_the_item_it_held() {
    let ws = Workspace::new(
        r#"
[[pipeline]]
name = "p"
items = { sh = "seq 1 30" }
output = { file = "out.txt" }

[[pipeline.stage]]
name = "crashy"
sh = """
while read x; do
  if [ "$x" = 13 ]; then echo "cannot do $x" >&2; exit 3; fi
  echo "$x"
done
"""
mode = "stream"
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let expected: Vec<String> = (1..=30)
        .filter(|&i| i != 13)
        .map(|i| i.to_string())
        .collect();
    // One worker: the order holds across the restart.
    assert_eq!(lines_of(&ws.path("out.txt")), expected);
    let p = &run.job("p")["pipeline"];
    let stage = &p["stages"][0];
    assert_eq!(stage["restarts"], 1, "{p}");
    assert_eq!(stage["failed"], 1, "{p}");
    assert_eq!(stage["items_out"], 29, "{p}");
    let failed = p["failed_items"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{p}");
    assert_eq!(failed[0]["item"], "13");
    assert_eq!(failed[0]["stage"], "crashy");
    assert_eq!(failed[0]["exit_code"], 3);
    assert!(
        failed[0]["stderr"]
            .as_str()
            .unwrap()
            .contains("cannot do 13")
    );
    assert!(failed[0]["error"].as_str().unwrap().contains("died"));
}

#[test]
fn workers_killed_by_signals_are_replaced_and_every_item_is_accounted_for() {
    let ws = Workspace::new(
        r#"
[[pipeline]]
name = "p"
items = { sh = "seq 1 200" }
queue = 8
output = { file = "out.txt" }

[[pipeline.stage]]
name = "killy"
sh = """
while read x; do
  case "$x" in 50|120|121) kill -9 $$ ;; esac
  echo "$x"
done
"""
mode = "stream"
workers = 3
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let mut out: Vec<u32> = lines_of(&ws.path("out.txt"))
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
    out.sort_unstable();
    let p = &run.job("p")["pipeline"];
    let mut failed: Vec<u32> = p["failed_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["item"].as_str().unwrap().parse().unwrap())
        .collect();
    failed.sort_unstable();
    assert_eq!(failed, [50, 120, 121], "{p}");
    for f in p["failed_items"].as_array().unwrap() {
        assert_eq!(f["signal"], 9, "{f}");
    }
    // Everything else came out exactly once.
    let expected: Vec<u32> = (1..=200).filter(|i| !failed.contains(i)).collect();
    assert_eq!(out, expected);
    assert_eq!(p["stages"][0]["restarts"], 3, "{p}");
}

#[test]
fn workers_get_eof_and_exit_when_the_items_run_out() {
    let ws = Workspace::new(
        r#"
[[pipeline]]
name = "p"
items = ["a", "b", "c"]
output = { file = "out.txt" }

[[pipeline.stage]]
name = "count"
sh = "n=0; while read x; do n=$((n+1)); done; echo \"saw $n\"; echo $$ >> pids.txt"
mode = "stream"
workers = 2
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let out = lines_of(&ws.path("out.txt"));
    assert_eq!(out.len(), 2, "{out:?}");
    let total: u32 = out
        .iter()
        .map(|l| l.trim_start_matches("saw ").parse::<u32>().unwrap())
        .sum();
    assert_eq!(total, 3);
    let pids = pids_in(&ws.path("pids.txt"));
    assert_eq!(pids.len(), 2);
    assert_all_gone(&pids);
}

#[test]
fn a_worker_that_dies_at_once_fails_its_items_instead_of_hanging() {
    let ws = Workspace::new(
        r#"
[[pipeline]]
name = "p"
items = { sh = "seq 1 50" }
queue = 4

[[pipeline.stage]]
name = "dead"
sh = "echo 'no luck' >&2; exit 1"
mode = "stream"
workers = 2
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let job = run.job("p");
    assert_eq!(job["status"], "failed");
    let p = &job["pipeline"];
    // Every item was read from the source and failed at the stage.
    assert_eq!(p["items"], 50, "{p}");
    assert_eq!(p["stages"][0]["failed"], 50, "{p}");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("without reading an item"),
        "{job}"
    );
}

#[test]
fn a_missing_worker_program_fails_the_items_with_the_reason() {
    let ws = Workspace::new(
        r#"
[[pipeline]]
name = "p"
items = ["a", "b"]

[[pipeline.stage]]
name = "ghost"
cmd = ["/no/such/worker"]
mode = "stream"
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1);
    let p = &run.job("p")["pipeline"];
    assert_eq!(p["stages"][0]["failed"], 2, "{p}");
    let error = p["failed_items"][0]["error"].as_str().unwrap();
    assert!(error.contains("/no/such/worker"), "{error}");
}

#[test]
fn lines_from_a_worker_that_never_reads_answer_no_item() {
    // The worker prints without reading its stdin (once drover has had time
    // to write the items): its lines answer none of them, so none is
    // dropped as answered; all end failed, and the error names the worker.
    let ws = Workspace::new(
        r#"
[[pipeline]]
name = "p"
items = { sh = "seq 1 10" }
output = { file = "out.txt" }

[[pipeline.stage]]
name = "deaf"
sh = "sleep 0.3; echo hi; echo ho"
mode = "stream"
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let job = run.job("p");
    let p = &job["pipeline"];
    assert_eq!(p["items"], 10, "{p}");
    assert_eq!(
        p["stages"][0]["failed"], 10,
        "every item is accounted for: {p}"
    );
    let errors: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("stage `deaf`: worker ") && e.contains("before reading the items")),
        "{errors:?}"
    );
}

//! Items through stages: order (one worker a stage keeps it), `emit =
//! "lines"` fan-out, a stage failing some items (recorded with stage, item,
//! exit status and stderr, not passed on), items from a file and from a
//! command, `needs` both ways, and the per-stage counts of the report.

use crate::common::*;

#[test]
fn items_keep_their_order_through_single_worker_stages() {
    let ws = Workspace::new(
        r#"
[[pipeline]]
name = "p"
items = ["a", "b", "c", "d", "e", "f", "g", "h"]
queue = 2
output = { file = "out.txt" }

[[pipeline.stage]]
name = "upper"
sh = "while read x; do echo \"$x\" | tr a-z A-Z; done"
mode = "stream"

[[pipeline.stage]]
name = "check"
cmd = ["test", "-n", "{}"]

[[pipeline.stage]]
name = "suffix"
sh = "while read x; do echo \"$x-done\"; done"
mode = "stream"
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(
        lines_of(&ws.path("out.txt")),
        [
            "A-done", "B-done", "C-done", "D-done", "E-done", "F-done", "G-done", "H-done"
        ]
    );
    let p = &run.job("p")["pipeline"];
    assert_eq!(p["items"], 8);
    assert_eq!(p["delivered"], 8);
    for stage in p["stages"].as_array().unwrap() {
        assert_eq!(stage["items_in"], 8, "{stage}");
        assert_eq!(stage["items_out"], 8, "{stage}");
        assert_eq!(stage["failed"], 0, "{stage}");
        assert!(stage["max_queue_depth"].as_u64().unwrap() <= 2, "{stage}");
    }
    assert_eq!(run.job("p")["status"], "succeeded");
}

#[test]
fn emit_lines_fans_out_and_failed_items_do_not_flow_on() {
    let ws = Workspace::new(
        r#"
[[pipeline]]
name = "p"
items = ["1", "2", "3"]
output = { file = "out.txt" }

[[pipeline.stage]]
name = "expand"
sh = "seq 1 {}"
emit = "lines"
workers = 3

[[pipeline.stage]]
name = "odd-only"
sh = "if [ $(( {} % 2 )) -eq 0 ]; then echo \"even {}\" >&2; exit 4; fi"
workers = 2
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let mut out = lines_of(&ws.path("out.txt"));
    out.sort();
    // seq 1 1, seq 1 2, seq 1 3 → 1 1 2 1 2 3; the 2s fail.
    assert_eq!(out, ["1", "1", "1", "3"]);
    let job = run.job("p");
    assert_eq!(job["status"], "failed");
    assert!(
        job["error"].as_str().unwrap().contains("2 items failed"),
        "{job}"
    );
    let p = &job["pipeline"];
    assert_eq!(p["stages"][0]["items_in"], 3);
    assert_eq!(p["stages"][0]["items_out"], 6);
    assert_eq!(p["stages"][1]["items_in"], 6);
    assert_eq!(p["stages"][1]["items_out"], 4);
    assert_eq!(p["stages"][1]["failed"], 2);
    let failed = p["failed_items"].as_array().unwrap();
    assert_eq!(failed.len(), 2);
    for f in failed {
        assert_eq!(f["stage"], "odd-only");
        assert_eq!(f["item"], "2");
        assert_eq!(f["exit_code"], 4);
        assert_eq!(f["stderr"], "even 2\n");
    }
    // The summary names the failed items.
    assert!(run.stderr().contains("odd-only `2`"), "{}", run.stderr());
}

#[test]
fn a_failing_emit_lines_item_passes_none_of_its_lines_on() {
    let ws = Workspace::new(
        r#"
[[pipeline]]
name = "p"
items = ["good", "bad"]
output = { file = "out.txt" }

[[pipeline.stage]]
name = "gen"
sh = "echo {}-1; echo {}-2; [ {} = good ]"
emit = "lines"
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1);
    assert_eq!(lines_of(&ws.path("out.txt")), ["good-1", "good-2"]);
}

#[test]
fn items_from_a_file_and_from_a_command() {
    let ws = Workspace::new(
        r#"
[[pipeline]]
name = "from-file"
items = { file = "list.txt" }
output = { file = "file-out.txt" }

[[pipeline.stage]]
name = "echo"
cmd = ["echo", "got {}"]
emit = "lines"

[[pipeline]]
name = "from-cmd"
items = { sh = "printf 'x\ny\n\nz'" }
output = { file = "cmd-out.txt" }

[[pipeline.stage]]
name = "cat"
cmd = ["cat"]
mode = "stream"
"#,
    );
    std::fs::write(ws.path("list.txt"), "one\ntwo words\n\nthree\n").unwrap();
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(
        lines_of(&ws.path("file-out.txt")),
        ["got one", "got two words", "got three"]
    );
    // Empty lines are no items; a last line without a newline is one.
    assert_eq!(lines_of(&ws.path("cmd-out.txt")), ["x", "y", "z"]);
}

#[test]
fn a_failing_items_command_fails_the_pipeline() {
    let ws = Workspace::new(
        r#"
[[pipeline]]
name = "p"
items = { sh = "echo a; echo broken >&2; exit 3" }

[[pipeline.stage]]
name = "s"
cmd = ["true"]
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1);
    let job = run.job("p");
    assert_eq!(job["status"], "failed");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("items command failed"), "{error}");
    assert!(error.contains("broken"), "{error}");
    assert_eq!(job["pipeline"]["items"], 1);
}

#[test]
fn pipelines_and_jobs_need_each_other() {
    let ws = Workspace::new(
        r#"
[[job]]
name = "make-list"
sh = "printf '1\n2\n3\n' > list.txt"

[[pipeline]]
name = "p"
needs = ["make-list"]
items = { file = "list.txt" }
output = { file = "out.txt" }

[[pipeline.stage]]
name = "double"
sh = "echo $(( {} * 2 ))"
emit = "lines"

[[job]]
name = "sum"
sh = "awk '{ s += $1 } END { print s }' out.txt"
needs = ["p"]

[[pipeline]]
name = "broken"
items = ["x"]

[[pipeline.stage]]
name = "fail"
cmd = ["false"]

[[job]]
name = "after-broken"
cmd = ["true"]
needs = ["broken"]
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1);
    assert_eq!(run.job("p")["status"], "succeeded");
    assert_eq!(run.job("sum")["status"], "succeeded");
    assert_eq!(run.job("sum")["stdout"], "12\n");
    assert_eq!(run.job("broken")["status"], "failed");
    assert_eq!(run.job("after-broken")["status"], "skipped");
}

#[test]
fn retries_timeouts_and_ok_codes_apply_per_item() {
    let ws = Workspace::new(
        r#"
[[pipeline]]
name = "p"
items = ["quick", "slow", "flaky", "three"]
output = { file = "out.txt" }

[[pipeline.stage]]
name = "s"
sh = """
case {} in
  slow) sleep 100 ;;
  flaky) [ -e flaky.seen ] || { touch flaky.seen; exit 1; } ;;
  three) exit 3 ;;
esac
"""
timeout = "1s"
kill_grace = "100ms"
retries = 1
ok_codes = [0, 3]
workers = 4
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let mut out = lines_of(&ws.path("out.txt"));
    out.sort();
    assert_eq!(out, ["flaky", "quick", "three"]);
    let failed = run.job("p")["pipeline"]["failed_items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["item"], "slow");
    assert_eq!(failed[0]["status"], "timed_out");
}

#[test]
fn fail_fast_stops_the_pipeline_at_the_first_failed_item() {
    let ws = Workspace::new(
        r#"
[[pipeline]]
name = "p"
items = { sh = "seq 1 100000" }
queue = 4
fail_fast = true

[[pipeline.stage]]
name = "s"
sh = "[ {} -lt 5 ]"
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1);
    let job = run.job("p");
    assert_eq!(job["status"], "failed");
    assert!(
        job["error"].as_str().unwrap().contains("fail_fast"),
        "{job}"
    );
    // Stopped early: far from all 100 000 items were read.
    assert!(job["pipeline"]["items"].as_u64().unwrap() < 1000, "{job}");
}

#[test]
fn how_the_item_reaches_a_per_item_command() {
    let ws = Workspace::new(
        r#"
[[pipeline]]
name = "p"
items = ["dir/photo one.jpg"]
output = { file = "out.txt" }

[[pipeline.stage]]
name = "appended"
cmd = ["echo", "cmd got"]
emit = "lines"

[[pipeline.stage]]
name = "replaced"
sh = "echo {/.} in {//}; echo \"env $DROVER_ITEM\"; echo no item here"
emit = "lines"
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    // cmd without `{}` gets the item as its last argument; sh gets it only
    // where `{}` says, and always as $DROVER_ITEM.
    assert_eq!(
        lines_of(&ws.path("out.txt")),
        [
            "photo one in cmd got dir",
            "env cmd got dir/photo one.jpg",
            "no item here"
        ]
    );
}

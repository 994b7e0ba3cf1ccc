//! `stdin = { from = "job" }` streams one job's stdout into another's stdin,
//! live, like a shell pipe; both start together.

use crate::common::*;

#[test]
fn producer_streams_into_consumer() {
    let ws = Workspace::new(
        r#"
[[job]]
name = "produce"
cmd = ["seq", "1", "100000"]

[[job]]
name = "count"
cmd = ["wc", "-l"]
stdin = { from = "produce" }
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(
        run.job("count")["stdout"].as_str().unwrap().trim(),
        "100000"
    );
    assert_eq!(
        run.job("produce")["stdout"],
        "",
        "its stdout went to the pipe"
    );
}

#[test]
fn a_chain_of_three_jobs() {
    let ws = Workspace::new(
        r#"
[[job]]
name = "c"
cmd = ["tr", "a-z", "A-Z"]
stdin = { from = "b" }

[[job]]
name = "a"
sh = "printf 'one\ntwo\nthree\n'"

[[job]]
name = "b"
cmd = ["grep", "t"]
stdin = { from = "a" }
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(run.job("c")["stdout"], "TWO\nTHREE\n");
}

#[test]
fn consumer_that_stops_reading_does_not_fail_the_producer() {
    // `yes` is stopped by SIGPIPE once `head` exits, as in a shell pipeline.
    let ws = Workspace::new(
        r#"
[[job]]
name = "endless"
cmd = ["yes"]

[[job]]
name = "first"
cmd = ["head", "-n", "1"]
stdin = { from = "endless" }
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(run.job("first")["stdout"], "y\n");
    let producer = run.job("endless");
    assert_eq!(producer["status"], "succeeded");
    assert_eq!(producer["signal"], 13);
}

#[test]
fn piped_jobs_start_together_after_their_needs() {
    let ws = Workspace::new(
        r#"
[[job]]
name = "setup"
sh = "echo ready > marker"

[[job]]
name = "produce"
sh = "cat marker"
needs = ["setup"]

[[job]]
name = "consume"
cmd = ["cat"]
stdin = { from = "produce" }
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(run.job("consume")["stdout"], "ready\n");
}

#[test]
fn a_failed_producer_skips_nothing_but_is_reported() {
    let ws = Workspace::new(
        r#"
[[job]]
name = "produce"
sh = "echo partial; exit 4"

[[job]]
name = "consume"
cmd = ["cat"]
stdin = { from = "produce" }
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1);
    assert_eq!(run.job("produce")["status"], "failed");
    assert_eq!(run.job("produce")["exit_code"], 4);
    assert_eq!(run.job("consume")["status"], "succeeded");
    assert_eq!(run.job("consume")["stdout"], "partial\n");
}

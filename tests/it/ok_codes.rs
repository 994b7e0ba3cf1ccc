//! `ok_codes`: which exit codes count as success. A death by signal is a
//! failure whatever the codes say.

use crate::common::*;

#[test]
fn listed_codes_succeed_and_others_fail() {
    let ws = Workspace::new(
        r#"[[job]]
name = "three"
sh = "exit 3"
ok_codes = [0, 3]

[[job]]
name = "zero"
sh = "exit 0"
ok_codes = [0, 3]

[[job]]
name = "four"
sh = "exit 4"
ok_codes = [0, 3]
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1, "stderr:\n{}", run.stderr());

    let three = run.job("three");
    assert_eq!(three["status"], "succeeded", "{three:#}");
    assert_eq!(three["exit_code"], 3);
    assert_eq!(three["signal"], serde_json::Value::Null);

    assert_eq!(run.job("zero")["status"], "succeeded");

    let four = run.job("four");
    assert_eq!(four["status"], "failed", "{four:#}");
    assert_eq!(four["exit_code"], 4);
}

#[test]
fn killed_by_a_signal_fails_even_if_its_code_is_listed() {
    // A shell killed by SIGKILL looks like 128 + 9 = 137 to another shell,
    // but it has no exit code at all.
    let ws = Workspace::new(
        r#"[[job]]
name = "killed"
sh = "kill -9 $$"
ok_codes = [0, 3, 137]
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1, "stderr:\n{}", run.stderr());
    let job = run.job("killed");
    assert_eq!(job["status"], "failed", "{job:#}");
    assert_eq!(job["signal"], 9);
    assert_eq!(job["exit_code"], serde_json::Value::Null);
}

#[test]
fn defaults_ok_codes_are_inherited_and_a_job_overrides_them() {
    let ws = Workspace::new(
        r#"[defaults]
ok_codes = [5]

[[job]]
name = "inherits-five"
sh = "exit 5"

[[job]]
name = "inherits-zero"
sh = "exit 0"

[[job]]
name = "overrides-five"
sh = "exit 5"
ok_codes = [0]

[[job]]
name = "overrides-zero"
sh = "exit 0"
ok_codes = [0]
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1, "stderr:\n{}", run.stderr());
    assert_eq!(run.job("inherits-five")["status"], "succeeded");
    assert_eq!(
        run.job("inherits-zero")["status"],
        "failed",
        "0 is not in the inherited ok_codes [5]"
    );
    assert_eq!(run.job("overrides-five")["status"], "failed");
    assert_eq!(run.job("overrides-zero")["status"], "succeeded");
}

#[test]
fn all_jobs_ok_by_their_codes_exit_zero() {
    let ws = Workspace::new(
        r#"[[job]]
name = "grep-no-match"
sh = "echo hello | grep -q absent"
ok_codes = [0, 1]
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    assert_eq!(run.job("grep-no-match")["exit_code"], 1);
}

#[test]
fn an_ok_code_is_not_retried() {
    let ws = Workspace::new(
        r#"[[job]]
name = "three"
sh = "echo ran >> runs; exit 3"
ok_codes = [3]
retries = 2
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    assert_eq!(run.job("three")["attempts"], 1);
    let runs = std::fs::read_to_string(ws.path("runs")).expect("runs written");
    assert_eq!(runs, "ran\n");
}

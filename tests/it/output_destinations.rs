//! Where a job's stdout and stderr go: captured (default), discarded,
//! inherited by drover, or written to a file relative to the job file's
//! folder; and how `capture_limit` keeps the tail.

use crate::common::*;

use std::process::Output;

/// Runs the workspace's job file from another folder, so that paths
/// relative to drover's own cwd would land in the wrong place.
fn run_elsewhere(ws: &Workspace) -> (Output, serde_json::Value) {
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let output = ws
        .run_cmd(&[])
        .current_dir(elsewhere.path())
        .output()
        .expect("run drover");
    let leftovers: Vec<_> = std::fs::read_dir(elsewhere.path())
        .expect("read dir")
        .map(|e| e.expect("dir entry").file_name())
        .collect();
    assert!(
        leftovers.is_empty(),
        "files written relative to drover's cwd: {leftovers:?}"
    );
    (output, ws.report())
}

#[test]
fn stdout_null_discards_the_output() {
    let ws = Workspace::new(
        r#"[[job]]
name = "quiet"
sh = "echo discarded-marker"
stdout = "null"
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    let job = run.job("quiet");
    assert_eq!(job["status"], "succeeded");
    assert_eq!(job["stdout"], "");
    assert!(!run.stdout().contains("discarded-marker"));
    assert!(!run.stderr().contains("discarded-marker"));
}

#[test]
fn stdout_file_is_relative_to_the_job_file_and_its_folder_is_created() {
    let ws = Workspace::new(
        r#"[[job]]
name = "to-file"
sh = "echo into-the-file"
stdout = { file = "out/nested/a.txt" }
"#,
    );
    let (output, report) = run_elsewhere(&ws);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let written =
        std::fs::read_to_string(ws.path("out/nested/a.txt")).expect("out/nested/a.txt written");
    assert_eq!(written, "into-the-file\n");
    assert_eq!(
        job(&report, "to-file")["stdout"],
        "",
        "the file has it, not the report"
    );
}

#[test]
fn stdout_file_truncates_without_append() {
    let ws = Workspace::new(
        r#"[[job]]
name = "overwrite"
sh = "echo new"
stdout = { file = "a.txt" }
"#,
    );
    std::fs::write(ws.path("a.txt"), "old contents\n").expect("write a.txt");
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    assert_eq!(
        std::fs::read_to_string(ws.path("a.txt")).expect("a.txt"),
        "new\n"
    );
}

#[test]
fn stdout_file_append_keeps_earlier_runs() {
    let ws = Workspace::new(
        r#"[[job]]
name = "appender"
sh = "echo one-line"
stdout = { file = "log/a.txt", append = true }
"#,
    );
    for _ in 0..2 {
        let run = ws.run(&[]);
        assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    }
    let written = std::fs::read_to_string(ws.path("log/a.txt")).expect("log/a.txt written");
    assert_eq!(written, "one-line\none-line\n");
}

#[test]
fn stderr_file_gets_the_error_stream() {
    let ws = Workspace::new(
        r#"[[job]]
name = "errs"
sh = "echo to-stdout; echo to-stderr >&2"
stderr = { file = "err/e.txt" }
"#,
    );
    let (output, report) = run_elsewhere(&ws);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let written = std::fs::read_to_string(ws.path("err/e.txt")).expect("err/e.txt written");
    assert_eq!(written, "to-stderr\n");
    let job = job(&report, "errs");
    assert_eq!(job["stderr"], "");
    assert_eq!(job["stdout"], "to-stdout\n", "stdout is still captured");
}

#[test]
fn stdout_inherit_goes_to_drovers_own_stdout() {
    let ws = Workspace::new(
        r#"[[job]]
name = "loud"
sh = "echo inherited-marker"
stdout = "inherit"
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    assert!(
        run.stdout().contains("inherited-marker"),
        "drover's stdout: {:?}",
        run.stdout()
    );
    assert_eq!(run.job("loud")["stdout"], "");
}

#[test]
fn capture_limit_keeps_the_tail_and_marks_truncation() {
    let ws = Workspace::new(
        r#"[[job]]
name = "long"
sh = "printf abcdefghijklmnopqrstuvwxyz0123456789; printf ABCDEFGHIJKLMNOPQRSTUVWXYZ >&2"
capture_limit = "16"

[[job]]
name = "short"
sh = "printf 0123456789abcdef"
capture_limit = "16"
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    let long = run.job("long");
    assert_eq!(long["stdout"], "uvwxyz0123456789");
    assert_eq!(long["stdout_truncated"], true);
    assert_eq!(long["stderr"], "KLMNOPQRSTUVWXYZ");
    assert_eq!(long["stderr_truncated"], true);
    let short = run.job("short");
    assert_eq!(
        short["stdout"], "0123456789abcdef",
        "exactly the limit fits"
    );
    assert_eq!(short["stdout_truncated"], false);
}

#[test]
fn stdout_file_ignores_the_jobs_cwd() {
    // Relative paths in the job file are relative to its folder, the job's
    // own `cwd` included.
    let ws = Workspace::new(
        r#"[[job]]
name = "elsewhere"
sh = "echo from-sub"
cwd = "sub"
stdout = { file = "b.txt" }
"#,
    );
    std::fs::create_dir(ws.path("sub")).expect("mkdir sub");
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    assert_eq!(
        std::fs::read_to_string(ws.path("b.txt")).expect("b.txt"),
        "from-sub\n"
    );
    assert!(!ws.path("sub/b.txt").exists());
}

#[test]
fn capture_limit_is_inherited_from_defaults() {
    let ws = Workspace::new(
        r#"[defaults]
capture_limit = "4"

[[job]]
name = "inherits"
sh = "printf 123456789"

[[job]]
name = "overrides"
sh = "printf 123456789"
capture_limit = "1KiB"
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    assert_eq!(run.job("inherits")["stdout"], "6789");
    assert_eq!(run.job("inherits")["stdout_truncated"], true);
    assert_eq!(run.job("overrides")["stdout"], "123456789");
    assert_eq!(run.job("overrides")["stdout_truncated"], false);
}

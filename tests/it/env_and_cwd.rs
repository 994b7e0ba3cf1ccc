//! A job's environment (inherited, then `[defaults] env`, then its own
//! `env`, key by key) and its working directory and stdin file, both
//! relative to the job file's folder.

use crate::common::*;

use std::path::Path;

/// Runs the job file from another folder, so that paths relative to
/// drover's own cwd would be noticed.
fn run_elsewhere(ws: &Workspace, env: &[(&str, &str)]) -> Finished {
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let mut cmd = ws.run_cmd(&[]);
    cmd.current_dir(elsewhere.path());
    for (key, value) in env {
        cmd.env(key, value);
    }
    let output = cmd.output().expect("run drover");
    Finished {
        output,
        report: Some(ws.report()),
    }
}

fn physical(path: &Path) -> String {
    path.canonicalize()
        .expect("canonical path")
        .display()
        .to_string()
}

#[test]
fn job_env_merges_over_defaults_and_inherited_env() {
    let ws = Workspace::new(
        r#"[defaults]
env = { DROVER_T_DEFAULT = "default", DROVER_T_SHADOWED = "default", DROVER_T_BOTH = "default" }

[[job]]
name = "own-env"
sh = 'echo "$DROVER_T_INHERITED|$DROVER_T_SHADOWED|$DROVER_T_DEFAULT|$DROVER_T_BOTH|$DROVER_T_JOB"'
env = { DROVER_T_BOTH = "job", DROVER_T_JOB = "job" }

[[job]]
name = "defaults-only"
sh = 'echo "$DROVER_T_INHERITED|$DROVER_T_SHADOWED|$DROVER_T_DEFAULT|$DROVER_T_BOTH|$DROVER_T_JOB"'
"#,
    );
    let run = run_elsewhere(
        &ws,
        &[
            ("DROVER_T_INHERITED", "parent"),
            ("DROVER_T_SHADOWED", "parent"),
        ],
    );
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    assert_eq!(
        run.job("own-env")["stdout"],
        "parent|default|default|job|job\n",
        "inherited | defaults over inherited | defaults kept | job over defaults | job only"
    );
    assert_eq!(
        run.job("defaults-only")["stdout"],
        "parent|default|default|default|\n"
    );
}

#[test]
fn cwd_is_relative_to_the_job_file() {
    let ws = Workspace::new(
        r#"[[job]]
name = "default-cwd"
sh = "pwd -P"

[[job]]
name = "sub-cwd"
sh = "pwd -P"
cwd = "sub"

[[job]]
name = "nested-cwd"
sh = "pwd -P"
cwd = "sub/deeper"
"#,
    );
    std::fs::create_dir_all(ws.path("sub/deeper")).expect("mkdir");
    let run = run_elsewhere(&ws, &[]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    let dir = ws.dir.path();
    assert_eq!(
        run.job("default-cwd")["stdout"],
        format!("{}\n", physical(dir))
    );
    assert_eq!(
        run.job("sub-cwd")["stdout"],
        format!("{}\n", physical(&dir.join("sub")))
    );
    assert_eq!(
        run.job("nested-cwd")["stdout"],
        format!("{}\n", physical(&dir.join("sub/deeper")))
    );
}

#[test]
fn defaults_cwd_is_inherited_and_overridden() {
    let ws = Workspace::new(
        r#"[defaults]
cwd = "sub"

[[job]]
name = "inherits"
sh = "pwd -P"

[[job]]
name = "overrides"
sh = "pwd -P"
cwd = "."
"#,
    );
    std::fs::create_dir(ws.path("sub")).expect("mkdir sub");
    let run = run_elsewhere(&ws, &[]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    let dir = ws.dir.path();
    assert_eq!(
        run.job("inherits")["stdout"],
        format!("{}\n", physical(&dir.join("sub")))
    );
    assert_eq!(
        run.job("overrides")["stdout"],
        format!("{}\n", physical(dir))
    );
}

#[test]
fn stdin_file_is_relative_to_the_job_file() {
    let ws = Workspace::new(
        r#"[[job]]
name = "reads"
cmd = ["cat"]
stdin = { file = "in.txt" }

[[job]]
name = "reads-from-sub"
cmd = ["cat"]
cwd = "sub"
stdin = { file = "in.txt" }
"#,
    );
    std::fs::write(ws.path("in.txt"), "top-level input\nsecond line\n").expect("write in.txt");
    std::fs::create_dir(ws.path("sub")).expect("mkdir sub");
    std::fs::write(ws.path("sub/in.txt"), "wrong file\n").expect("write sub/in.txt");
    let run = run_elsewhere(&ws, &[]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    assert_eq!(run.job("reads")["stdout"], "top-level input\nsecond line\n");
    assert_eq!(
        run.job("reads-from-sub")["stdout"],
        "top-level input\nsecond line\n",
        "stdin files are relative to the job file's folder, not the job's cwd"
    );
}

#[test]
fn a_missing_cwd_is_a_spawn_failure() {
    let ws = Workspace::new(
        r#"[[job]]
name = "nowhere"
sh = "pwd"
cwd = "does-not-exist"
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1, "stderr:\n{}", run.stderr());
    assert_eq!(run.job("nowhere")["status"], "spawn_failed");
}

#[test]
fn matrix_values_fill_env_and_cwd() {
    let ws = Workspace::new(
        r#"[[job]]
name = "in-{d}"
sh = 'echo "$WHICH $(basename "$(pwd -P)")"'
cwd = "{d}"
env = { WHICH = "value-{d}" }
matrix = { d = ["a", "b"] }
"#,
    );
    for d in ["a", "b"] {
        std::fs::create_dir(ws.path(d)).expect("mkdir");
    }
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    assert_eq!(run.job("in-a")["stdout"], "value-a a\n");
    assert_eq!(run.job("in-b")["stdout"], "value-b b\n");
}

//! `drover check` validates a job file, prints the expanded plan and exits 0
//! without running anything.

use crate::common::*;

/// Runs `drover check` on `toml`; it must exit 0. Returns the workspace and
/// the printed plan.
fn check(toml: &str) -> (Workspace, String) {
    let ws = Workspace::new(toml);
    let out = drover()
        .arg("check")
        .arg(ws.jobs())
        .output()
        .expect("run drover check");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "`drover check` should accept the file; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (ws, stdout)
}

/// The job names of the plan, in the order printed (`[name]` headers).
fn names(plan: &str) -> Vec<&str> {
    plan.lines()
        .filter_map(|l| l.strip_prefix('[')?.strip_suffix(']'))
        .collect()
}

/// The lines describing job `name`, trimmed.
fn section<'a>(plan: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!("[{name}]");
    let mut lines = plan.lines().skip_while(|l| *l != header);
    assert!(
        lines.next().is_some(),
        "no job `{name}` in the plan:\n{plan}"
    );
    lines
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect()
}

/// The value printed for `key` in job `name`'s section, if any.
fn value<'a>(plan: &'a str, name: &str, key: &str) -> Option<&'a str> {
    section(plan, name).into_iter().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })
}

#[test]
fn matrix_is_a_cartesian_product_first_key_slowest() {
    let (ws, plan) = check(
        r#"[[job]]
name = "t-{os}-{n}"
sh = "echo {os} {n}"
matrix = { os = ["a", "b"], n = ["1", "2"] }
"#,
    );
    assert_eq!(names(&plan), ["t-a-1", "t-a-2", "t-b-1", "t-b-2"], "{plan}");
    assert_eq!(value(&plan, "t-b-1", "sh"), Some(r#""echo b 1""#), "{plan}");
    let first = plan.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&ws.jobs().display().to_string()),
        "the plan names the file:\n{plan}"
    );
    assert!(
        first.contains("4 jobs"),
        "the plan counts the jobs:\n{plan}"
    );
}

#[test]
fn three_matrix_keys_expand_in_key_order() {
    let (_ws, plan) = check(
        r#"[[job]]
name = "{a}{b}{c}"
cmd = ["echo", "{c}", "{b}", "{a}"]
matrix = { a = ["x", "y"], b = ["1", "2"], c = ["p", "q"] }
"#,
    );
    assert_eq!(
        names(&plan),
        ["x1p", "x1q", "x2p", "x2q", "y1p", "y1q", "y2p", "y2q"],
        "{plan}"
    );
    assert_eq!(
        value(&plan, "y2p", "cmd"),
        Some(r#"["echo", "p", "2", "y"]"#),
        "{plan}"
    );
}

#[test]
fn repeated_matrix_values_are_numbered() {
    let (_ws, plan) = check(
        r#"[[job]]
name = "sleep-{n}"
sh = "sleep {n}"
matrix = { n = ["1", "1", "2"] }

[[job]]
name = "r-{v}"
cmd = ["echo", "{v}"]
matrix = { v = ["a", "a", "a"] }
"#,
    );
    assert_eq!(
        names(&plan),
        ["sleep-1", "sleep-1:2", "sleep-2", "r-a", "r-a:2", "r-a:3"],
        "{plan}"
    );
    assert_eq!(value(&plan, "sleep-1", "sh"), Some(r#""sleep 1""#));
    assert_eq!(value(&plan, "sleep-1:2", "sh"), Some(r#""sleep 1""#));
    assert_eq!(value(&plan, "sleep-2", "sh"), Some(r#""sleep 2""#));
}

#[test]
fn needs_globs_are_resolved() {
    let (_ws, plan) = check(
        r#"[[job]]
name = "build-{os}"
cmd = ["true"]
matrix = { os = ["linux", "mac"] }

[[job]]
name = "lint"
cmd = ["true"]

[[job]]
name = "test-{os}"
cmd = ["true"]
needs = ["build-{os}"]
matrix = { os = ["linux", "mac"] }

[[job]]
name = "release"
cmd = ["true"]
needs = ["lint", "test-*", "build-linux"]

[[job]]
name = "sleep-{n}"
sh = "sleep {n}"
matrix = { n = ["1", "1", "2"] }

[[job]]
name = "after-sleeps"
sh = "echo all slept"
needs = ["sleep-*"]
"#,
    );
    assert_eq!(
        value(&plan, "test-linux", "needs"),
        Some("build-linux"),
        "{plan}"
    );
    assert_eq!(
        value(&plan, "test-mac", "needs"),
        Some("build-mac"),
        "{plan}"
    );
    assert_eq!(
        value(&plan, "release", "needs"),
        Some("build-linux, lint, test-linux, test-mac"),
        "{plan}"
    );
    assert_eq!(
        value(&plan, "after-sleeps", "needs"),
        Some("sleep-1, sleep-1:2, sleep-2"),
        "{plan}"
    );
    assert_eq!(value(&plan, "lint", "needs"), None, "{plan}");
}

#[test]
fn a_glob_never_names_its_own_job() {
    let (_ws, plan) = check(
        r#"[[job]]
name = "t-1"
cmd = ["true"]

[[job]]
name = "t-2"
cmd = ["true"]

[[job]]
name = "t-all"
cmd = ["true"]
needs = ["t-*"]
"#,
    );
    assert_eq!(value(&plan, "t-all", "needs"), Some("t-1, t-2"), "{plan}");
}

#[test]
fn integer_matrix_values_are_accepted() {
    let (_ws, plan) = check(
        r#"[[job]]
name = "t-{n}"
sh = "sleep {n}"
matrix = { n = [1, 2, 10] }
"#,
    );
    assert_eq!(names(&plan), ["t-1", "t-2", "t-10"], "{plan}");
    assert_eq!(value(&plan, "t-10", "sh"), Some(r#""sleep 10""#), "{plan}");
}

#[test]
fn defaults_are_inherited_unless_overridden() {
    let (ws, plan) = check(
        r#"[defaults]
timeout = "30s"
kill_grace = "2s"
retries = 1
env = { LANG = "C" }

[[job]]
name = "plain"
cmd = ["true"]

[[job]]
name = "own"
cmd = ["true"]
timeout = "5s"
retries = 0
env = { X = "1" }
cwd = "sub"
"#,
    );
    assert_eq!(
        value(&plan, "plain", "timeout"),
        Some("30s (kill_grace 2s)"),
        "{plan}"
    );
    assert_eq!(
        value(&plan, "plain", "retries"),
        Some("1 (retry_delay 0s)"),
        "{plan}"
    );
    assert_eq!(value(&plan, "plain", "env"), Some("LANG=C"), "{plan}");
    let dir = ws.dir.path().display().to_string();
    assert_eq!(
        value(&plan, "plain", "cwd"),
        Some(dir.as_str()),
        "cwd defaults to the file's folder:\n{plan}"
    );

    assert_eq!(
        value(&plan, "own", "timeout"),
        Some("5s (kill_grace 2s)"),
        "{plan}"
    );
    assert_eq!(
        value(&plan, "own", "retries"),
        None,
        "retries = 0 overrides the default:\n{plan}"
    );
    assert_eq!(
        value(&plan, "own", "env"),
        Some("LANG=C X=1"),
        "env is merged:\n{plan}"
    );
    let sub = ws.path("sub").display().to_string();
    assert_eq!(value(&plan, "own", "cwd"), Some(sub.as_str()), "{plan}");
}

#[test]
fn no_timeout_when_neither_job_nor_defaults_set_one() {
    let (_ws, plan) = check(
        r#"[[job]]
name = "a"
cmd = ["true"]
"#,
    );
    assert_eq!(value(&plan, "a", "timeout"), None, "{plan}");
}

#[test]
fn pipes_between_jobs_are_shown() {
    let (_ws, plan) = check(
        r#"[[job]]
name = "hello"
cmd = ["echo", "hello"]

[[job]]
name = "count"
cmd = ["wc", "-l"]
stdin = { from = "hello" }
"#,
    );
    assert_eq!(value(&plan, "count", "stdin"), Some("from hello"), "{plan}");
    assert_eq!(
        value(&plan, "hello", "stdout"),
        Some("pipe to count"),
        "{plan}"
    );
    assert!(
        plan.lines()
            .next()
            .unwrap_or_default()
            .contains(": 2 jobs;"),
        "{plan}"
    );
}

#[test]
fn jobs_joined_by_pipes_are_shown_as_a_pipeline() {
    // In the file the consumer comes first; the plan shows the data's order.
    let (_ws, plan) = check(
        r#"[[job]]
name = "count"
cmd = ["wc", "-l"]
stdin = { from = "upper" }

[[job]]
name = "upper"
cmd = ["tr", "a-z", "A-Z"]
stdin = { from = "hello" }

[[job]]
name = "hello"
cmd = ["echo", "hello"]

[[job]]
name = "alone"
cmd = ["true"]
"#,
    );
    let mut lines = plan.lines();
    let head = lines.next().unwrap_or_default();
    assert!(head.contains(": 4 jobs;"), "{plan}");
    assert!(
        !plan.contains("unit"),
        "`unit` is drover's word, not the user's:\n{plan}"
    );
    let joined = lines.next().unwrap_or_default();
    assert!(joined.contains("start together"), "{plan}");
    assert_eq!(lines.next(), Some("  hello | upper | count"), "{plan}");
}

#[test]
fn check_runs_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("marker");
    let piped = dir.path().join("piped");
    let (ws, plan) = check(&format!(
        r#"[[job]]
name = "touch-{{n}}"
cmd = ["touch", "{marker}-{{n}}"]
matrix = {{ n = [1, 2] }}

[[job]]
name = "shell"
sh = "touch {marker}"
stdout = {{ file = "out.txt" }}

[[job]]
name = "source"
sh = "touch {piped}; echo hi"

[[job]]
name = "sink"
cmd = ["cat"]
stdin = {{ from = "source" }}
needs = ["touch-*"]
"#,
        marker = marker.display(),
        piped = piped.display(),
    ));
    assert_eq!(
        names(&plan),
        ["touch-1", "touch-2", "shell", "source", "sink"],
        "{plan}"
    );
    for path in [
        marker.clone(),
        dir.path().join("marker-1"),
        dir.path().join("marker-2"),
        piped,
        ws.path("out.txt"),
    ] {
        assert!(
            !path.exists(),
            "`drover check` ran something: {} exists",
            path.display()
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(ws.dir.path())
        .expect("read workspace")
        .map(|e| e.expect("dir entry").file_name())
        .collect();
    assert_eq!(
        leftovers,
        ["jobs.toml"],
        "check wrote files next to the job file"
    );
}

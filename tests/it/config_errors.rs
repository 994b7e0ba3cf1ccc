//! Invalid job files fail before anything runs: exit code 2 and an error that
//! names the file, line and column, the job, the key, and what to do.

use crate::common::*;

/// Runs `drover check` and `drover run` on `toml`. Both must refuse it with
/// exit code 2, print nothing on stdout and write no report; returns the
/// workspace and the error text (the same for both).
fn refused(toml: &str) -> (Workspace, String) {
    let ws = Workspace::new(toml);
    let check = drover()
        .arg("check")
        .arg(ws.jobs())
        .output()
        .expect("run drover check");
    let check_err = String::from_utf8_lossy(&check.stderr).into_owned();
    assert_eq!(
        check.status.code(),
        Some(2),
        "`drover check` should exit 2; stderr:\n{check_err}"
    );
    assert!(
        check.stdout.is_empty(),
        "`drover check` printed a plan for an invalid file:\n{}",
        String::from_utf8_lossy(&check.stdout)
    );

    let run = ws.run(&["-q"]);
    assert_eq!(
        run.code(),
        2,
        "`drover run` should exit 2; stderr:\n{}",
        run.stderr()
    );
    assert!(
        run.report.is_none(),
        "a report was written for an invalid file"
    );
    assert!(
        run.stdout().is_empty(),
        "`drover run` printed on stdout:\n{}",
        run.stdout()
    );
    assert_eq!(
        run.stderr(),
        check_err,
        "run and check should print the same errors"
    );
    assert!(
        check_err.contains("nothing was run"),
        "the error should say nothing was run:\n{check_err}"
    );
    (ws, check_err)
}

/// The `error: ...` headlines.
fn headlines(err: &str) -> Vec<&str> {
    err.lines().filter(|l| l.starts_with("error: ")).collect()
}

/// The only headline; it must name `job` and `key` when given and contain `text`.
fn assert_headline(err: &str, job: Option<&str>, key: Option<&str>, text: &str) {
    let lines = headlines(err);
    assert_eq!(lines.len(), 1, "expected exactly one error:\n{err}");
    let line = lines[0];
    if let Some(job) = job {
        assert!(
            line.contains(&format!("job `{job}`")),
            "the error should name job `{job}`:\n{err}"
        );
    }
    if let Some(key) = key {
        assert!(
            line.contains(&format!("key `{key}`")),
            "the error should name key `{key}`:\n{err}"
        );
    }
    assert!(line.contains(text), "the error should say {text:?}:\n{err}");
}

/// The `(line, column)` of the first `  --> FILE:LINE:COL` pointer to the job file.
fn location(ws: &Workspace, err: &str) -> Option<(usize, usize)> {
    let prefix = format!("  --> {}:", ws.jobs().display());
    err.lines().find_map(|l| {
        let (line, col) = l.strip_prefix(&prefix)?.split_once(':')?;
        Some((line.parse().ok()?, col.parse().ok()?))
    })
}

fn assert_at(ws: &Workspace, err: &str, line: usize, col: usize) {
    assert_eq!(
        location(ws, err),
        Some((line, col)),
        "expected `  --> {}:{line}:{col}` in:\n{err}",
        ws.jobs().display()
    );
}

/// A `  = help: ...` line containing `text`.
fn assert_help(err: &str, text: &str) {
    assert!(
        err.lines()
            .any(|l| l.starts_with("  = help: ") && l.contains(text)),
        "expected a help line containing {text:?} in:\n{err}"
    );
}

#[test]
fn unknown_job_key_suggests_the_nearest_key() {
    let (ws, err) = refused(
        r#"
[[job]]
name = "a"
cmd = ["true"]
timout = "5s"
"#,
    );
    assert_headline(&err, Some("a"), Some("timout"), "unknown key `timout`");
    assert_at(&ws, &err, 5, 1);
    assert_help(&err, "did you mean `timeout`?");
}

#[test]
fn unknown_key_in_a_later_job_names_that_job() {
    let (ws, err) = refused(
        r#"[[job]]
name = "a"
cmd = ["true"]

[[job]]
name = "b"
cmd = ["true"]
kill_grase = "1s"
"#,
    );
    assert_headline(
        &err,
        Some("b"),
        Some("kill_grase"),
        "unknown key `kill_grase`",
    );
    assert_at(&ws, &err, 8, 1);
    assert_help(&err, "did you mean `kill_grace`?");
}

#[test]
fn unknown_key_in_defaults() {
    let (ws, err) = refused(
        r#"[defaults]
timout = "5s"

[[job]]
name = "a"
cmd = ["true"]
"#,
    );
    assert_headline(&err, None, Some("timout"), "[defaults]");
    assert_at(&ws, &err, 2, 1);
    assert_help(&err, "did you mean `timeout`?");
}

#[test]
fn unknown_key_in_run() {
    let (ws, err) = refused(
        r#"[run]
max_paralel = 2

[[job]]
name = "a"
cmd = ["true"]
"#,
    );
    assert_headline(&err, None, Some("max_paralel"), "[run]");
    assert_at(&ws, &err, 2, 1);
    assert_help(&err, "did you mean `max_parallel`?");
}

#[test]
fn job_only_keys_are_refused_in_defaults() {
    for (key, value) in [
        ("name", r#""x""#),
        ("cmd", r#"["true"]"#),
        ("sh", r#""true""#),
        ("matrix", r#"{ n = ["1"] }"#),
        ("needs", r#"["a"]"#),
        ("stdin", r#""text""#),
    ] {
        let (ws, err) = refused(&format!(
            "[defaults]\n{key} = {value}\n\n[[job]]\nname = \"a\"\ncmd = [\"true\"]\n"
        ));
        assert_headline(&err, None, Some(key), "[defaults]");
        let (line, _) =
            location(&ws, &err).unwrap_or_else(|| panic!("no location for `{key}`:\n{err}"));
        assert_eq!(line, 2, "`{key}` is on line 2:\n{err}");
        assert_help(&err, "[[job]]");
    }
}

#[test]
fn duplicate_names_point_at_both_jobs() {
    let (ws, err) = refused(
        r#"[[job]]
name = "a"
cmd = ["true"]

[[job]]
name = "a"
cmd = ["false"]
"#,
    );
    assert_headline(&err, Some("a"), Some("name"), "used twice");
    assert_at(&ws, &err, 6, 8);
    assert_help(&err, "line 2");
}

#[test]
fn a_matrix_name_may_not_repeat_another_job() {
    let (ws, err) = refused(
        r#"[[job]]
name = "t-1"
cmd = ["true"]

[[job]]
name = "t-{n}"
cmd = ["true"]
matrix = { n = [1, 2] }
"#,
    );
    assert_headline(&err, Some("t-1"), Some("name"), "used twice");
    assert_at(&ws, &err, 6, 8);
    assert_help(&err, "line 2");
}

#[test]
fn a_job_needs_cmd_or_sh() {
    let (ws, err) = refused(
        r#"[[job]]
name = "a"
"#,
    );
    assert_headline(&err, Some("a"), None, "neither `cmd` nor `sh`");
    assert_eq!(
        location(&ws, &err).map(|(l, _)| l),
        Some(2),
        "points at the job:\n{err}"
    );
    assert_help(&err, "cmd = [");
}

#[test]
fn a_job_may_not_have_both_cmd_and_sh() {
    let (ws, err) = refused(
        r#"[[job]]
name = "a"
cmd = ["true"]
sh = "true"
"#,
    );
    assert_headline(&err, Some("a"), Some("sh"), "both `cmd` and `sh`");
    assert_at(&ws, &err, 4, 6);
    assert_help(&err, "not both");
}

#[test]
fn empty_cmd_is_refused() {
    let (ws, err) = refused(
        r#"[[job]]
name = "a"
cmd = []
"#,
    );
    assert_headline(&err, Some("a"), Some("cmd"), "empty");
    assert_at(&ws, &err, 3, 7);
    assert_help(&err, "cmd = [\"echo\"");
}

#[test]
fn unknown_needs_target_suggests_a_job() {
    let (ws, err) = refused(
        r#"[[job]]
name = "build"
cmd = ["true"]

[[job]]
name = "test"
cmd = ["true"]
needs = ["biuld"]
"#,
    );
    assert_headline(&err, Some("test"), Some("needs"), "`biuld`");
    assert_at(&ws, &err, 8, 10);
    assert_help(&err, "did you mean `build`?");
}

#[test]
fn needs_glob_matching_nothing_is_refused() {
    let (ws, err) = refused(
        r#"[[job]]
name = "build"
cmd = ["true"]

[[job]]
name = "test"
cmd = ["true"]
needs = ["deploy-*"]
"#,
    );
    assert_headline(
        &err,
        Some("test"),
        Some("needs"),
        "`deploy-*` matches no job",
    );
    assert_at(&ws, &err, 8, 10);
    assert_help(&err, "");
}

#[test]
fn unknown_stdin_from_target_suggests_a_job() {
    let (ws, err) = refused(
        r#"[[job]]
name = "hello"
cmd = ["echo", "hi"]

[[job]]
name = "count"
cmd = ["wc", "-l"]
stdin = { from = "helo" }
"#,
    );
    assert_headline(&err, Some("count"), Some("stdin"), "`helo`");
    assert_at(&ws, &err, 8, 9);
    assert_help(&err, "did you mean `hello`?");
}

/// The `a → b → a` path printed in a cycle error.
fn cycle_path(err: &str) -> Vec<String> {
    let line = headlines(err)
        .into_iter()
        .find(|l| l.contains('→'))
        .unwrap_or_else(|| panic!("no cycle path printed:\n{err}"));
    let path = line.rsplit(": ").next().unwrap_or_default();
    path.split(" → ").map(|s| s.trim().to_string()).collect()
}

/// `path` is `cycle` (in `needs` order: each job needs the next), starting
/// anywhere along it, and closed.
fn assert_cycle(err: &str, cycle: &[&str]) {
    let path = cycle_path(err);
    assert_eq!(
        path.len(),
        cycle.len() + 1,
        "cycle path {path:?} in:\n{err}"
    );
    assert_eq!(
        path.first(),
        path.last(),
        "the path should end where it starts: {path:?}"
    );
    let start = cycle
        .iter()
        .position(|j| *j == path[0])
        .unwrap_or_else(|| panic!("{path:?} starts outside the cycle {cycle:?}"));
    let want: Vec<&str> = (0..=cycle.len())
        .map(|i| cycle[(start + i) % cycle.len()])
        .collect();
    assert_eq!(path, want, "cycle path in:\n{err}");
}

#[test]
fn needs_cycle_prints_the_path() {
    let (_ws, err) = refused(
        r#"[[job]]
name = "a"
cmd = ["true"]
needs = ["b"]

[[job]]
name = "b"
cmd = ["true"]
needs = ["a"]
"#,
    );
    assert_eq!(headlines(&err).len(), 1, "one error:\n{err}");
    assert!(err.contains("key `needs`"), "names the key:\n{err}");
    assert_cycle(&err, &["a", "b"]);
    assert_help(&err, "needs");
}

#[test]
fn needs_cycle_path_holds_only_the_cycle() {
    // `d` needs the cycle but is not part of it.
    let (_ws, err) = refused(
        r#"[[job]]
name = "d"
cmd = ["true"]
needs = ["a"]

[[job]]
name = "a"
cmd = ["true"]
needs = ["c"]

[[job]]
name = "b"
cmd = ["true"]
needs = ["a"]

[[job]]
name = "c"
cmd = ["true"]
needs = ["b"]
"#,
    );
    assert_cycle(&err, &["a", "c", "b"]);
}

#[test]
fn needs_cycle_error_points_at_needs() {
    let (ws, err) = refused(
        r#"[[job]]
name = "a"
cmd = ["true"]
needs = ["b"]

[[job]]
name = "b"
cmd = ["true"]
needs = ["a"]
"#,
    );
    let (line, _) = location(&ws, &err).unwrap_or_else(|| panic!("no line:column in:\n{err}"));
    assert!(
        line == 4 || line == 9,
        "should point at a `needs` of the cycle:\n{err}"
    );
}

#[test]
fn bad_duration_is_refused() {
    let (ws, err) = refused(
        r#"[[job]]
name = "a"
cmd = ["true"]
timeout = "5 parsecs"
"#,
    );
    assert_headline(
        &err,
        Some("a"),
        Some("timeout"),
        "\"5 parsecs\" is not a duration",
    );
    assert_at(&ws, &err, 4, 11);
    assert_help(&err, "timeout = \"30s\"");
}

#[test]
fn bad_duration_in_defaults_is_refused() {
    let (ws, err) = refused(
        r#"[defaults]
kill_grace = "soon"

[[job]]
name = "a"
cmd = ["true"]
"#,
    );
    assert_headline(&err, None, Some("kill_grace"), "\"soon\"");
    assert_at(&ws, &err, 2, 14);
    assert_help(&err, "kill_grace = \"30s\"");
}

#[test]
fn bad_capture_limit_is_refused() {
    let (ws, err) = refused(
        r#"[[job]]
name = "a"
cmd = ["true"]
capture_limit = "lots"
"#,
    );
    assert_headline(
        &err,
        Some("a"),
        Some("capture_limit"),
        "\"lots\" is not a size",
    );
    assert_at(&ws, &err, 4, 17);
    assert_help(&err, "capture_limit = \"4MiB\"");

    let (ws, err) = refused(
        r#"[defaults]
capture_limit = -5

[[job]]
name = "a"
cmd = ["true"]
"#,
    );
    assert_headline(&err, None, Some("capture_limit"), "-5");
    assert_at(&ws, &err, 2, 17);
    assert_help(&err, "capture_limit = \"4MiB\"");
}

#[test]
fn placeholder_without_matrix_key_is_refused() {
    let (ws, err) = refused(
        r#"[[job]]
name = "a"
sh = "sleep {n}"
"#,
    );
    assert_headline(&err, Some("a"), Some("sh"), "`{n}`");
    assert_at(&ws, &err, 3, 6);
    assert_help(&err, "matrix = { n = ");
    assert_help(&err, "{{n}}");
}

#[test]
fn placeholder_not_among_the_matrix_keys_is_refused() {
    let (ws, err) = refused(
        r#"[[job]]
name = "t-{n}"
cmd = ["sleep", "{m}"]
matrix = { n = ["1"] }
"#,
    );
    assert_headline(&err, Some("t-{n}"), Some("cmd"), "`{m}`");
    assert_eq!(
        location(&ws, &err).map(|(l, _)| l),
        Some(3),
        "points at cmd:\n{err}"
    );
    assert_help(&err, "`n`");
}

#[test]
fn matrix_job_name_needs_a_placeholder() {
    let (ws, err) = refused(
        r#"[[job]]
name = "a"
sh = "sleep {n}"
matrix = { n = ["1", "2"] }
"#,
    );
    assert_headline(&err, Some("a"), Some("name"), "placeholder in its name");
    assert_at(&ws, &err, 2, 8);
    assert_help(&err, "name = \"a-{n}\"");
}

#[test]
fn invalid_name_characters_are_refused() {
    let (ws, err) = refused(
        r#"[[job]]
name = "hello world"
cmd = ["true"]
"#,
    );
    assert_headline(&err, Some("hello world"), Some("name"), "' '");
    assert_at(&ws, &err, 2, 8);
    assert_help(&err, "letters, digits");
}

#[test]
fn invalid_name_characters_from_a_matrix_value_are_refused() {
    let (ws, err) = refused(
        r#"[[job]]
name = "t-{v}"
cmd = ["true"]
matrix = { v = ["ok", "a/b"] }
"#,
    );
    assert_headline(&err, Some("t-a/b"), Some("name"), "'/'");
    assert_at(&ws, &err, 2, 8);
    assert_help(&err, "matrix values");
}

#[test]
fn toml_syntax_error_is_located() {
    let (ws, err) = refused(
        r#"[[job]]
name = "a"
cmd = ["true"
"#,
    );
    assert_eq!(headlines(&err).len(), 1, "one error:\n{err}");
    assert!(err.contains("expected `]`"), "says what is wrong:\n{err}");
    assert_at(&ws, &err, 3, 14);
}

#[test]
fn toml_syntax_error_has_help() {
    let (_ws, err) = refused(
        r#"[[job]]
name = "a"
cmd = ["true"
"#,
    );
    assert_help(&err, "");
}

#[test]
fn missing_file_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nope.toml");
    let report = dir.path().join("report.json");
    for args in [
        vec!["check"],
        vec![
            "run",
            "-q",
            "--report",
            report.to_str().expect("utf-8 path"),
        ],
    ] {
        let out = drover()
            .args(&args[..1])
            .arg(&missing)
            .args(&args[1..])
            .output()
            .expect("run drover");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?} should exit 2; stderr:\n{err}"
        );
        assert!(
            err.contains(&format!("--> {}", missing.display())),
            "names the file:\n{err}"
        );
        assert!(err.contains("cannot read"), "says what is wrong:\n{err}");
        assert_help(&err, "path");
    }
    assert!(!report.exists(), "no report for a missing job file");
}

#[test]
fn all_errors_of_a_file_are_reported_together() {
    let (ws, err) = refused(
        r#"[[job]]
name = "a"
cmd = ["true"]
timeout = "1 parsec"

[[job]]
name = "b"
cmd = ["true"]
retries = -1
"#,
    );
    let lines = headlines(&err);
    assert_eq!(lines.len(), 2, "both errors:\n{err}");
    assert!(
        lines[0].contains("job `a`") && lines[0].contains("key `timeout`"),
        "{err}"
    );
    assert!(
        lines[1].contains("job `b`") && lines[1].contains("key `retries`"),
        "{err}"
    );
    let path = ws.jobs();
    assert!(
        err.contains(&format!("  --> {}:4:11", path.display())),
        "{err}"
    );
    assert!(
        err.contains(&format!("  --> {}:9:11", path.display())),
        "{err}"
    );
    assert!(err.contains("2 errors in"), "{err}");
}

/// Each invalid job, after a valid job that would create a marker file.
#[test]
fn nothing_runs_when_the_file_is_invalid() {
    let invalid_jobs = [
        "[[job]]\nname = \"bad\"\ncmd = [\"true\"]\ntimout = \"5s\"\n",
        "[[job]]\nname = \"bad\"\ncmd = [\"true\"]\nneeds = [\"nope\"]\n",
        "[[job]]\nname = \"bad\"\nsh = \"sleep {n}\"\n",
        "[[job]]\nname = \"bad\"\ncmd = []\n",
        "[[job]]\nname = \"bad\"\ncmd = [\"true\"]\nneeds = [\"bad2\"]\n\n[[job]]\nname = \"bad2\"\ncmd = [\"true\"]\nneeds = [\"bad\"]\n",
        "[[job]]\nname = \"touch\"\ncmd = [\"true\"]\n",
        "[[job]]\nname = \"bad\"\ncmd = [\"true\"]\ncapture_limit = \"lots\"\n",
    ];
    for invalid in invalid_jobs {
        let dir = tempfile::tempdir().expect("temp dir");
        let marker = dir.path().join("marker");
        let toml = format!(
            "[[job]]\nname = \"touch\"\ncmd = [\"touch\", {:?}]\n\n{invalid}",
            marker.to_str().expect("utf-8 path")
        );
        let ws = Workspace::new(&toml);
        let run = ws.run(&["-q"]);
        assert_eq!(
            run.code(),
            2,
            "{invalid}\nshould be refused; stderr:\n{}",
            run.stderr()
        );
        assert!(run.stderr().contains("nothing was run"), "{}", run.stderr());
        assert!(
            !marker.exists(),
            "the valid job ran although the file is invalid:\n{toml}"
        );
        assert!(run.report.is_none(), "no report for an invalid file");
    }
}

#[test]
fn shell_braces_are_not_placeholders() {
    let ws = Workspace::new(
        r#"[[job]]
name = "shell"
sh = "echo ${HOME} {} | awk '{print $1}'; echo {{n}}"
env = { HOME = "/home-of-test" }

[[job]]
name = "m-{n}"
sh = "echo {n} {{n}} ${X}"
env = { X = "x" }
matrix = { n = [7] }
"#,
    );
    let check = drover()
        .arg("check")
        .arg(ws.jobs())
        .output()
        .expect("run drover check");
    let out = String::from_utf8_lossy(&check.stdout);
    assert_eq!(
        check.status.code(),
        Some(0),
        "valid file; stderr:\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        out.contains(r#"sh       = "echo ${HOME} {} | awk '{print $1}'; echo {n}""#),
        "{out}"
    );
    assert!(out.contains(r#"sh       = "echo 7 {n} ${X}""#), "{out}");

    let run = ws.run(&["-q"]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    assert_eq!(run.job("shell")["stdout"], "/home-of-test\n{n}\n");
    assert_eq!(run.job("m-7")["stdout"], "7 {n} x\n");
}

#[test]
fn unknown_key_in_output_table_suggests_the_nearest_key() {
    let (ws, err) = refused(
        r#"[[job]]
name = "a"
cmd = ["true"]
stdout = { file = "x", apend = true }
"#,
    );
    assert_headline(&err, Some("a"), Some("stdout"), "`apend`");
    assert_eq!(location(&ws, &err).map(|(l, _)| l), Some(4), "{err}");
    assert_help(&err, "did you mean `append`?");
}

#[test]
fn unknown_key_in_stdin_table_suggests_the_nearest_key() {
    let (ws, err) = refused(
        r#"[[job]]
name = "a"
cmd = ["true"]

[[job]]
name = "b"
cmd = ["cat"]
stdin = { form = "a" }
"#,
    );
    assert_headline(&err, Some("b"), Some("stdin"), "`form`");
    assert_eq!(location(&ws, &err).map(|(l, _)| l), Some(8), "{err}");
    assert_help(&err, "did you mean `from`?");
}

#[test]
fn unknown_top_level_table_suggests_job() {
    let (ws, err) = refused(
        r#"[[jobs]]
name = "a"
cmd = ["true"]
"#,
    );
    assert_headline(&err, None, Some("jobs"), "top level");
    assert!(
        !err.contains("in [jobs]"),
        "`jobs` is not inside [jobs]:\n{err}"
    );
    assert_eq!(location(&ws, &err).map(|(l, _)| l), Some(1), "{err}");
    assert_help(&err, "did you mean `job`?");
}

#[test]
fn wrong_value_type_has_help() {
    let (ws, err) = refused(
        r#"[[job]]
name = "a"
cmd = "echo hi"
"#,
    );
    assert_headline(&err, Some("a"), Some("cmd"), "");
    assert_at(&ws, &err, 3, 7);
    assert_help(&err, "sh");
}

#[test]
fn a_job_needing_itself_gets_useful_help() {
    let (ws, err) = refused(
        r#"[[job]]
name = "a"
cmd = ["true"]
needs = ["a"]
"#,
    );
    assert_headline(&err, Some("a"), Some("needs"), "itself");
    assert_at(&ws, &err, 4, 10);
    assert!(
        !err.contains("did you mean `a`"),
        "suggests the job itself:\n{err}"
    );
    assert_help(&err, "needs");
}

#[test]
fn a_job_without_a_name_gets_one_error() {
    let (ws, err) = refused(
        r#"[[job]]
cmd = ["true"]
matrix = { n = ["1"] }
"#,
    );
    // One error about the missing name, none about the `#1` that labels it.
    assert_headline(&err, None, Some("name"), "has no `name`");
    assert_at(&ws, &err, 1, 1);
    assert_help(&err, "name = \"build\"");
}

#[test]
fn a_bare_number_is_not_a_duration() {
    for (value, says, fix) in [
        ("1", "1 is a bare number", "\"1s\""),
        ("2.5", "2.5 is a bare number", "\"2s 500ms\""),
        ("\"1\"", "\"1\" is not a duration", "\"1s\""),
    ] {
        let (ws, err) = refused(&format!(
            "[[job]]\nname = \"a\"\ncmd = [\"true\"]\ntimeout = {value}\n"
        ));
        assert_headline(&err, Some("a"), Some("timeout"), says);
        assert_at(&ws, &err, 4, 11);
        assert_help(&err, &format!("timeout = {fix}"));
    }
    let (_, err) =
        refused("[defaults]\nkill_grace = 3\n\n[[job]]\nname = \"a\"\ncmd = [\"true\"]\n");
    assert_headline(&err, None, Some("kill_grace"), "3 is a bare number");
    assert_help(&err, "kill_grace = \"3s\"");
}

#[test]
fn a_matrix_of_more_than_100_million_jobs_is_refused() {
    let thousand: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    let thousand = thousand.join(",");
    let (_, err) = refused(&format!(
        "[[job]]\nname = \"t-{{a}}-{{b}}-{{c}}\"\ncmd = [\"true\"]\nmatrix = {{ a = [{thousand}], b = [{thousand}], c = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 101] }}\n"
    ));
    assert_headline(&err, None, Some("matrix"), "makes 101000000 jobs");
    assert_help(&err, "drover exec");
}

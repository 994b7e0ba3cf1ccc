//! A job that cannot start is `spawn_failed` with a reason, while the other
//! jobs run.

use crate::common::*;
use std::os::unix::fs::PermissionsExt;

#[test]
fn missing_program_non_executable_file_and_bad_cwd() {
    let ws = Workspace::new("");
    let script = ws.path("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(
        ws.jobs(),
        format!(
            r#"
[[job]]
name = "missing"
cmd = ["drover-test-no-such-program", "arg"]

[[job]]
name = "not-executable"
cmd = ["{}"]

[[job]]
name = "bad-cwd"
cmd = ["true"]
cwd = "no/such/folder"

[[job]]
name = "fine"
cmd = ["echo", "ok"]
"#,
            script.display()
        ),
    )
    .unwrap();
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1);
    for (name, needle) in [
        ("missing", "no such program"),
        ("not-executable", "permission denied"),
        ("bad-cwd", "no/such/folder"),
    ] {
        let job = run.job(name);
        assert_eq!(job["status"], "spawn_failed", "{job}");
        assert_eq!(job["pid"], serde_json::Value::Null);
        let error = job["error"].as_str().unwrap();
        assert!(error.contains(needle), "{name}: {error}");
    }
    assert_eq!(run.job("fine")["status"], "succeeded");
    assert_eq!(run.job("fine")["stdout"], "ok\n");
    assert_eq!(run.report()["summary"]["spawn_failed"], 3);
}

#[test]
fn missing_stdin_file_is_a_spawn_failure() {
    let ws = Workspace::new(
        r#"
[[job]]
name = "reader"
cmd = ["cat"]
stdin = { file = "does-not-exist.txt" }
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1);
    let job = run.job("reader");
    assert_eq!(job["status"], "spawn_failed");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("does-not-exist.txt"),
        "{job}"
    );
}

#[test]
fn a_program_path_is_not_searched_in_path() {
    let ws = Workspace::new("");
    let script = ws.path("bad-interpreter.sh");
    std::fs::write(&script, "#!/no/such/interpreter -x\necho hi\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        ws.jobs(),
        r#"
[[job]]
name = "absolute"
cmd = ["/no/such/folder/prog"]

[[job]]
name = "relative"
cmd = ["./no-such-prog"]

[[job]]
name = "interpreter"
cmd = ["./bad-interpreter.sh"]

[[job]]
name = "searched"
cmd = ["drover-test-no-such-program"]
"#,
    )
    .unwrap();
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1);
    let folder = ws.dir.path();
    for (name, needles) in [
        ("absolute", vec!["`/no/such/folder/prog`: no such file"]),
        (
            "relative",
            vec![
                "`./no-such-prog`: no such file in the job's cwd",
                folder.to_str().unwrap(),
            ],
        ),
        ("interpreter", vec!["interpreter `/no/such/interpreter`"]),
        ("searched", vec!["no such program (searched PATH)"]),
    ] {
        let job = run.job(name);
        assert_eq!(job["status"], "spawn_failed", "{job}");
        let error = job["error"].as_str().unwrap();
        for needle in needles {
            assert!(error.contains(needle), "{name}: {error:?} lacks {needle:?}");
        }
        if name != "searched" {
            assert!(!error.contains("PATH"), "{name}: {error}");
        }
    }
}

//! Where drover's own spawn cannot work (a seccomp filter refusing its
//! clone or close_range, valgrind), it falls back to std's posix_spawn;
//! `DROVER_SPAWN=posix` chooses that path. Both paths give the same
//! outcomes: exit codes, output, spawn failures with the same reasons,
//! process groups stopped whole on a timeout, stdin fed.

use crate::common::*;
use std::os::unix::fs::PermissionsExt;

const JOBS: &str = r#"
[[job]]
name = "fine"
cmd = ["echo", "ok"]

[[job]]
name = "fails"
sh = "echo bad >&2; exit 3"

[[job]]
name = "fed"
cmd = ["tr", "a-z", "A-Z"]
stdin = "hello"

[[job]]
name = "missing"
cmd = ["drover-test-no-such-program"]

[[job]]
name = "not-executable"
cmd = ["./not-executable.sh"]

[[job]]
name = "bad-cwd"
cmd = ["true"]
cwd = "no/such/folder"

[[job]]
name = "slow"
sh = "sleep 30 | cat"
timeout = "300ms"
kill_grace = "100ms"
"#;

/// Status, exit code, stdout, stderr and error of every job.
fn outcomes(spawn: Option<&str>) -> Vec<String> {
    let ws = Workspace::new(JOBS);
    let script = ws.path("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut cmd = ws.run_cmd(&[]);
    cmd.current_dir(ws.dir.path());
    match spawn {
        Some(v) => cmd.env("DROVER_SPAWN", v),
        None => cmd.env_remove("DROVER_SPAWN"),
    };
    let out = cmd.output().expect("run drover");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = ws.report();
    let root = ws.dir.path().display().to_string();
    let mut seen = Vec::new();
    for name in [
        "fine",
        "fails",
        "fed",
        "missing",
        "not-executable",
        "bad-cwd",
        "slow",
    ] {
        let job = job(&report, name);
        let line = format!(
            "{name}: {} {} {:?} {:?} {}",
            job["status"], job["exit_code"], job["stdout"], job["stderr"], job["error"]
        );
        seen.push(line.replace(&root, "<workspace>"));
    }
    seen
}

#[test]
fn posix_spawn_and_drovers_own_spawn_give_the_same_outcomes() {
    let own = outcomes(None);
    let posix = outcomes(Some("posix"));
    assert_eq!(own, posix);
    // And they are the right ones.
    let text = own.join("\n");
    for expect in [
        r#"fine: "succeeded" 0 String("ok\n")"#,
        r#"fails: "failed" 3"#,
        r#"fed: "succeeded" 0 String("HELLO")"#,
        "no such program",
        "permission denied",
        "no/such/folder",
        r#"slow: "timed_out""#,
    ] {
        assert!(text.contains(expect), "missing {expect:?} in:\n{text}");
    }
}

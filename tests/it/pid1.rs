//! drover as PID 1 of a new PID namespace (a container's entry point): it
//! runs as a tiny init that reaps the orphans jobs leave (200 here) and
//! steals no job's exit status. With `--no-init` drover is PID 1 itself:
//! its own reaper (it is a child subreaper anyway) reaps them, still by
//! pid; with that reaper off too (`DROVER_SUBREAPER=0`) they stay zombies,
//! which is why PID 1 needs one.

use std::process::Command;

use crate::common::*;

/// Whether `unshare --pid --fork --mount-proc` works here (root, or user
/// namespaces); a note when it does not.
fn pid_namespaces() -> bool {
    let ok = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: cannot make a PID namespace here (unshare --pid --fork --mount-proc)");
    }
    ok
}

/// Jobs that leave 200 orphans, jobs with known exit codes, and a last job
/// that counts the namespace's zombies once the orphans have ended.
fn job_file(dir: &std::path::Path) -> String {
    let zombies = dir.join("zombies");
    let mut toml = String::from("[run]\nmax_parallel = 0\n\n");
    for j in 0..4 {
        toml.push_str(&format!(
            "[[job]]\nname = \"orphans{j}\"\nsh = \"for i in $(seq 50); do (sleep 0.05 &); done\"\n\n"
        ));
    }
    for code in [0, 3, 7] {
        toml.push_str(&format!(
            "[[job]]\nname = \"exit{code}\"\nsh = \"sleep 0.1; exit {code}\"\nok_codes = [{code}]\n\n"
        ));
    }
    // Each orphan sleeps 0.05 s; give them time to end and be reaped.
    toml.push_str(&format!(
        r#"[[job]]
name = "count"
needs = ["orphans*", "exit*"]
sh = """
for t in $(seq 100); do
  z=$(cat /proc/[0-9]*/stat 2>/dev/null | awk '$3 == "Z"' | wc -l)
  echo $z > {}
  [ "$z" = 0 ] && exit 0
  sleep 0.05
done
exit 1
"""
"#,
        zombies.display()
    ));
    toml
}

fn run_as_pid1(extra: &[&str], env: &[(&str, &str)]) -> Option<(Finished, String)> {
    if !pid_namespaces() {
        return None;
    }
    let ws = Workspace::new("");
    std::fs::write(ws.jobs(), job_file(ws.dir.path())).unwrap();
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc"])
        .arg(env!("CARGO_BIN_EXE_drover"))
        .args(extra)
        .arg("run")
        .arg(ws.jobs())
        .arg("--report")
        .arg(ws.report_path())
        .arg("-q")
        .env_remove("RUST_LOG")
        .env_remove("DROVER_NO_INIT")
        .envs(env.iter().copied());
    let out = cmd.output().expect("run unshare");
    let zombies = std::fs::read_to_string(ws.path("zombies")).unwrap_or_default();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.report_path()).unwrap()).unwrap();
    Some((
        Finished {
            code: out.status.code().unwrap_or(-1),
            stderr: text(&out.stderr),
            report,
        },
        zombies.trim().to_string(),
    ))
}

pub struct Finished {
    code: i32,
    stderr: String,
    report: serde_json::Value,
}

#[test]
fn as_pid_1_drover_reaps_every_orphan_and_keeps_every_exit_status() {
    let Some((done, zombies)) = run_as_pid1(&[], &[]) else {
        return;
    };
    assert_reaped_with_statuses(&done, &zombies);
}

#[test]
fn as_pid_1_without_the_init_drover_still_reaps_every_orphan() {
    let Some((done, zombies)) = run_as_pid1(&["--no-init"], &[]) else {
        return;
    };
    assert_reaped_with_statuses(&done, &zombies);
}

fn assert_reaped_with_statuses(done: &Finished, zombies: &str) {
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(zombies, "0");
    for (name, code) in [("exit0", 0), ("exit3", 3), ("exit7", 7)] {
        let j = job(&done.report, name);
        assert_eq!(j["status"], "succeeded", "{j}");
        assert_eq!(j["exit_code"], code, "{j}");
    }
    assert_eq!(job(&done.report, "count")["status"], "succeeded");
}

#[test]
fn with_no_init_and_no_reaper_the_orphans_stay_zombies() {
    let Some((done, zombies)) = run_as_pid1(&["--no-init"], &[("DROVER_SUBREAPER", "0")]) else {
        return;
    };
    // Nobody reaps them: the counting job gives up, and says how many.
    assert_eq!(
        job(&done.report, "count")["status"],
        "failed",
        "{}",
        done.report
    );
    assert!(zombies.parse::<u32>().unwrap() >= 100, "{zombies}");
    assert_eq!(done.code, 1);
}

/// The children of process `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn as_pid_1_serve_drains_on_sigterm_and_kills_a_job_that_ignores_it() {
    use crate::serve_common::*;
    use serde_json::json;
    if !pid_namespaces() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "[serve]\ndrain_timeout = \"300ms\"\n").unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let server = Server::start_via(
        &["unshare", "--pid", "--fork", "--mount-proc"],
        &state,
        &args,
        None,
    );
    let ran = dir.path().join("ran");
    let script = format!("trap '' TERM; touch {}; sleep 300", ran.display());
    let id = id_of(&server.submit(json!({"cmd": ["sh", "-c", script], "kill_grace": "200ms"})));
    server.wait_job(id, |j| j["status"] == "running");
    assert!(wait_until(WAIT, || ran.exists()));
    // unshare's child is PID 1 of the namespace: drover's init.
    let init = children_of(server.child.id());
    assert_eq!(init.len(), 1, "{init:?}");
    send_signal(init[0], "TERM");
    assert_eq!(server.wait_exit(), 0, "drained, exit 0");
    // The job that ignored TERM was killed after its grace, and recorded so
    // before drover exited (else a restart would find it running).
    let server = Server::start(&state, &args, None);
    let job = server.job(id);
    assert_eq!(job["status"], "cancelled", "{job}");
    assert_eq!(job["signal"], 9, "KILLed after ignoring TERM: {job}");
}

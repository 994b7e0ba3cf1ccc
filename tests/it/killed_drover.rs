//! SIGKILL of drover (run, exec): no job it started survives it, as each
//! job's process gets PR_SET_PDEATHSIG.

use std::process::{Command, Stdio};

use crate::common::*;

fn killed_leaves_no_job(mut drover: Command, pidfile: &std::path::Path) {
    let mut child = drover
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(WAIT, || pids_in(pidfile).len() == 3),
        "every job started"
    );
    let pids = pids_in(pidfile);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_all_gone(&pids);
}

const WAIT: std::time::Duration = std::time::Duration::from_secs(30);

#[test]
fn sigkill_of_drover_run_leaves_no_job() {
    let ws = Workspace::new("");
    let pids = ws.path("pids");
    let mut toml = String::from("[run]\nmax_parallel = 3\n\n");
    for i in 0..3 {
        toml.push_str(&format!(
            "[[job]]\nname = \"j{i}\"\nsh = \"echo $$ >> {}; exec sleep 300\"\n\n",
            pids.display()
        ));
    }
    std::fs::write(ws.jobs(), toml).unwrap();
    let mut cmd = drover();
    cmd.arg("run").arg(ws.jobs()).arg("-q");
    killed_leaves_no_job(cmd, &pids);
}

#[test]
fn sigkill_of_drover_exec_leaves_no_job() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let mut cmd = drover();
    cmd.args(["exec", "-j", "3", "--", "sh", "-c"])
        .arg(format!("echo $$ >> {}; exec sleep 300", pids.display()))
        .args(["x", ":::", "1", "2", "3"]);
    killed_leaves_no_job(cmd, &pids);
}

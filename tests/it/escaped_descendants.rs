//! Descendants that leave their job's process group (`setsid`) are drover's
//! children (it is a child subreaper): killed when their job ends, in
//! `run`, `exec` and `serve`, and named in the job's report; orphans that
//! end on their own are reaped, without stealing any job's exit status.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;
use crate::serve_common::*;

/// A job's shell line: a daemon in a session of its own (`setsid`), its
/// pid written to `pid` once it has left the job's group, then `echo hi`
/// once it has (so that the group kill at the job's end cannot catch it
/// first).
fn escaper(pid: &std::path::Path) -> String {
    let pid = pid.display();
    format!(
        "setsid sh -c 'echo $$ > {pid}.new; mv {pid}.new {pid}; exec sleep 1000' >/dev/null 2>&1 < /dev/null & \
         while [ ! -s {pid} ]; do sleep 0.01; done; echo hi"
    )
}

/// Whether `pid` is alive (a zombie counts as gone).
fn alive(pid: i32) -> bool {
    !pid_gone(pid)
}

/// The zombies among the children of `parent`.
fn zombie_children(parent: u32) -> Vec<i32> {
    let mut zombies = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() == Some(&"Z") && fields.get(1) == Some(&parent.to_string().as_str()) {
            zombies.push(pid);
        }
    }
    zombies
}

#[test]
fn run_kills_a_setsid_daemon_when_its_job_ends_and_marks_the_job() {
    let ws = Workspace::new("");
    std::fs::write(
        ws.jobs(),
        format!(
            r#"
[[job]]
name = "daemon"
sh = "{}"

[[job]]
name = "holds-stdout"
sh = "setsid sh -c 'echo $$ > {p}.new; mv {p}.new {p}; exec sleep 1000' & while [ ! -s {p} ]; do sleep 0.01; done; echo out"

[[job]]
name = "plain"
sh = "echo ok"
"#,
            escaper(&ws.path("pid1")),
            p = ws.path("pid2").display()
        ),
    )
    .unwrap();
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let recorded = [pids_in(&ws.path("pid1")), pids_in(&ws.path("pid2"))].concat();
    assert_eq!(recorded.len(), 2);
    // Gone when drover has exited: killed at their jobs' ends, not merely at
    // drover's exit (the error below says when).
    for pid in &recorded {
        assert!(!alive(*pid), "pid {pid} outlived its job");
    }
    for (name, out) in [("daemon", "hi\n"), ("holds-stdout", "out\n")] {
        let job = run.job(name);
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["leaked"], true, "{job}");
        assert_eq!(job["stdout"], out, "{job}");
        let error = job["error"].as_str().unwrap();
        assert!(
            error.contains("escaped") && error.contains("(sleep)") && error.contains("killed"),
            "{error}"
        );
    }
    let plain = run.job("plain");
    assert_eq!(plain["leaked"], false, "{plain}");
    assert!(plain["error"].is_null(), "{plain}");
}

#[test]
fn exec_kills_each_jobs_setsid_daemon_and_reports_it() {
    let ws = Workspace::new("");
    let report = ws.path("report.json");
    let out = drover()
        .current_dir(ws.dir.path())
        .args(["exec", "-k", "--report"])
        .arg(&report)
        .args(["--", "sh", "-c"])
        .arg(escaper(&ws.path("pid.{}")).replace("echo hi", "echo {}"))
        .args([":::", "a", "b", "c"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "a\nb\nc\n");
    let recorded: Vec<i32> = ["a", "b", "c"]
        .iter()
        .flat_map(|n| pids_in(&ws.path(&format!("pid.{n}"))))
        .collect();
    assert_eq!(recorded.len(), 3);
    for pid in &recorded {
        assert!(!alive(*pid), "pid {pid} outlived drover exec");
    }
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let jobs = report["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 3);
    for job in jobs {
        assert_eq!(job["leaked"], true, "{job}");
        assert!(job["error"].as_str().unwrap().contains("escaped"), "{job}");
    }
}

#[test]
fn serve_kills_a_setsid_daemon_when_its_job_ends_and_reaps_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pid");
    let server = Server::start(&dir.path().join("state"), &["-j", "8"], None);
    let daemon = id_of(&server.submit(json!({"sh": escaper(&pids)})));
    let done = server.wait_final(daemon);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["leaked"], true, "{done}");
    assert!(
        done["error"].as_str().unwrap().contains("escaped"),
        "{done}"
    );
    let recorded = pids_in(&pids);
    assert_eq!(recorded.len(), 1);
    // The server lives on: the daemon is gone all the same, and reaped.
    assert!(!alive(recorded[0]), "the daemon outlived its job");

    // Jobs leaving 100 orphans that end on their own, beside jobs with known
    // exit codes: the orphans are reaped by the server (no zombie stays its
    // child), and no job's status is taken by that reaper.
    let mut expected = Vec::new();
    for j in 0..4 {
        let id = id_of(&server.submit(json!({
            "sh": "for i in $(seq 25); do (sleep 0.05 &); done",
            "name": format!("orphans{j}"),
        })));
        expected.push((id, 0));
    }
    for j in 0..20 {
        let code = j % 5;
        let id = id_of(&server.submit(json!({
            "sh": format!("(sleep 0.02 &); sleep 0.1; exit {code}"),
            "ok_codes": [code],
        })));
        expected.push((id, code));
    }
    for (id, code) in expected {
        let done = server.wait_final(id);
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(done["exit_code"], code, "{done}");
        assert_eq!(
            done["leaked"], false,
            "an orphan that ended is no escape: {done}"
        );
    }
    let pid = server.child.id();
    assert!(
        wait_until(Duration::from_secs(20), || zombie_children(pid).is_empty()),
        "zombies left under drover serve: {:?}",
        zombie_children(pid)
    );
    assert_eq!(server.stop(), 0);
}

#[test]
fn a_daemon_escaping_a_job_cancelled_in_serve_is_killed_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pid");
    let server = Server::start(&dir.path().join("state"), &[], None);
    let line = escaper(&pids).replace("echo hi", "exec sleep 1000");
    let id = id_of(&server.submit(json!({"sh": line})));
    server.wait_job(id, |j| j["status"] == "running");
    assert!(wait_until(WAIT, || pids_in(&pids).len() == 1));
    let daemon = pids_in(&pids)[0];
    assert!(alive(daemon), "the daemon runs while its job does");
    let r = server.post(&format!("/v1/jobs/{id}/cancel"), "");
    assert_eq!(r.status().as_u16(), 202);
    let done = server.wait_final(id);
    assert_eq!(done["status"], "cancelled", "{done}");
    assert!(
        done["error"].as_str().unwrap().contains("escaped"),
        "{done}"
    );
    assert!(!alive(daemon), "the daemon outlived its cancelled job");
    assert_eq!(server.stop(), 0);
}

#[test]
fn without_the_subreaper_and_cgroups_a_daemon_is_out_of_reach() {
    // DROVER_SUBREAPER=0 and DROVER_CGROUP=0 turn them off: the daemon
    // survives its job (this is what they are for), and is killed here by
    // the test.
    let ws = Workspace::new("");
    let pids = ws.path("pid");
    std::fs::write(
        ws.jobs(),
        format!("[[job]]\nname = \"daemon\"\nsh = \"{}\"\n", escaper(&pids)),
    )
    .unwrap();
    let run = ws
        .run_cmd(&[])
        .env("DROVER_SUBREAPER", "0")
        .env("DROVER_CGROUP", "0")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let recorded = pids_in(&pids);
    assert_eq!(recorded.len(), 1);
    let survived = alive(recorded[0]);
    send_signal(recorded[0] as u32, "KILL");
    assert!(
        survived,
        "without a subreaper the daemon should outlive its job"
    );
}

/// Where this process's cgroup v2 is in the file system, if drover can
/// make cgroups there (as it finds out: the same files, one mkdir).
fn writable_cgroup() -> Option<std::path::PathBuf> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mountinfo.lines().find_map(|l| {
        let (fields, rest) = l.split_once(" - ")?;
        rest.starts_with("cgroup2 ")
            .then(|| fields.split_whitespace().nth(4).map(String::from))?
    })?;
    let dir = std::path::Path::new(&mount).join(own.trim_start_matches('/'));
    let probe = dir.join(format!("drover-test-{}", std::process::id()));
    std::fs::create_dir(&probe).ok()?;
    let has_kill = probe.join("cgroup.kill").exists();
    std::fs::remove_dir(&probe).ok()?;
    has_kill.then_some(dir)
}

/// An escaper that also clears its environment (`env -i`), so that no mark
/// of its job is left on it: only its cgroup tells whose it is.
fn clean_escaper(pid: &std::path::Path) -> String {
    escaper(pid).replace("setsid sh -c", "env -i /usr/bin/setsid /bin/sh -c")
}

/// The state of `pid` in /proc ('Z' a zombie), if it exists.
fn state_of(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[test]
fn in_a_cgroup_a_daemon_that_clears_its_environment_is_killed_when_its_job_ends() {
    let Some(_) = writable_cgroup() else {
        eprintln!("skipped: no writable cgroup v2 here (drover finds escapees by mark only)");
        return;
    };
    // The second job runs after the first has ended (needs) and while
    // drover still runs: the daemon must be dead by then (a zombie at
    // most, until drover reaps it), not merely at drover's exit.
    let ws = Workspace::new("");
    let pid = ws.path("pid");
    std::fs::write(
        ws.jobs(),
        format!(
            r#"
[[job]]
name = "daemon"
sh = "{}"

[[job]]
name = "after"
needs = ["daemon"]
sh = "s=$(cut -d' ' -f3 /proc/$(cat {p})/stat 2>/dev/null); echo \"state=$s\"; [ -z \"$s\" ] || [ \"$s\" = Z ]"
"#,
            clean_escaper(&pid),
            p = pid.display()
        ),
    )
    .unwrap();
    let run = ws.run(&[]);
    let recorded = pids_in(&pid);
    for p in &recorded {
        if alive(*p) {
            send_signal(*p as u32, "KILL");
        }
    }
    assert_eq!(run.code(), 0, "{}\n{}", run.stderr(), run.report());
    assert_eq!(recorded.len(), 1);
    let daemon = run.job("daemon");
    assert_eq!(daemon["leaked"], true, "{daemon}");
    let error = daemon["error"].as_str().unwrap();
    assert!(
        error.contains("escaped") && error.contains("(sleep)"),
        "{error}"
    );
    assert_eq!(run.job("after")["status"], "succeeded");
}

#[test]
fn in_a_cgroup_a_daemon_is_killed_with_its_job_even_without_the_subreaper() {
    let Some(_) = writable_cgroup() else {
        eprintln!("skipped: no writable cgroup v2 here");
        return;
    };
    // Without the subreaper the daemon is init's child, not drover's: only
    // the cgroup finds it. exec, three jobs.
    let ws = Workspace::new("");
    let report = ws.path("report.json");
    let out = drover()
        .current_dir(ws.dir.path())
        .env("DROVER_SUBREAPER", "0")
        .args(["exec", "-k", "--report"])
        .arg(&report)
        .args(["--", "sh", "-c"])
        .arg(escaper(&ws.path("pid.{}")).replace("echo hi", "echo {}"))
        .args([":::", "a", "b", "c"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let recorded: Vec<i32> = ["a", "b", "c"]
        .iter()
        .flat_map(|n| pids_in(&ws.path(&format!("pid.{n}"))))
        .collect();
    // Killed: gone once init has reaped them.
    let gone = wait_until(Duration::from_secs(10), || {
        recorded
            .iter()
            .all(|p| matches!(state_of(*p), None | Some('Z')))
    });
    for p in &recorded {
        if alive(*p) {
            send_signal(*p as u32, "KILL");
        }
    }
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "a\nb\nc\n");
    assert_eq!(recorded.len(), 3);
    assert!(gone, "a daemon outlived drover exec without the subreaper");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    for job in report["jobs"].as_array().unwrap() {
        assert_eq!(job["leaked"], true, "{job}");
        assert!(job["error"].as_str().unwrap().contains("escaped"), "{job}");
    }
}

#[test]
fn drover_leaves_no_cgroup_behind_and_removes_those_of_a_killed_drover() {
    let Some(dir) = writable_cgroup() else {
        eprintln!("skipped: no writable cgroup v2 here");
        return;
    };
    // The job's shell starts a sleep and waits: killed with drover
    // (PDEATHSIG), the shell leaves the sleep behind, init's now.
    let ws =
        Workspace::new("[[job]]\nname = \"a\"\nsh = \"sleep 1000 & echo $! > started; wait\"\n");
    let mut first = ws.spawn(&[]);
    let ns = std::fs::metadata("/proc/self/ns/pid").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.ino()
    });
    let mine = dir.join(format!("drover-{}-{}", ns.unwrap(), first.id()));
    assert!(
        wait_until(Duration::from_secs(10), || ws.path("started").exists()),
        "the job did not start"
    );
    assert!(mine.is_dir(), "{} was not made", mine.display());
    let job_pid = pids_in(&ws.path("started"))[0];
    send_signal(first.id(), "KILL");
    first.wait().unwrap();
    // Its sleep outlives drover, in drover's cgroup, which stays.
    assert!(alive(job_pid));
    assert!(mine.is_dir());
    // The next drover kills it and removes the cgroup, and leaves none of
    // its own.
    let ws2 = Workspace::new("[[job]]\nname = \"b\"\ncmd = [\"true\"]\n");
    let second = ws2.run(&[]);
    assert_eq!(second.code(), 0, "{}", second.stderr());
    let gone = wait_until(Duration::from_secs(10), || pid_gone(job_pid));
    if !gone {
        send_signal(job_pid as u32, "KILL");
    }
    assert!(gone, "the sleep a killed drover left is still alive");
    assert!(!mine.exists(), "{} is left", mine.display());
    let left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("drover-") && !n.starts_with("drover-test-"))
        .filter(|n| {
            n.rsplit('-')
                .next()
                .and_then(|p| p.parse::<u32>().ok())
                .is_some_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        })
        .collect();
    assert!(left.is_empty(), "cgroups of gone drovers left: {left:?}");
}

#[test]
fn jobs_after_one_whose_leftovers_were_killed_run_normally() {
    // One job at a time: the second and third start after the first's
    // cgroup was killed (a cgroup once killed is not used again: on this
    // kernel a process started in one would be killed at birth).
    let ws = Workspace::new("");
    std::fs::write(
        ws.jobs(),
        format!(
            "[[job]]\nname = \"daemon\"\nsh = \"{}\"\n\n[[job]]\nname = \"second\"\nsh = \"echo two\"\nneeds = [\"daemon\"]\n\n[[job]]\nname = \"third\"\ncmd = [\"echo\", \"three\"]\nneeds = [\"second\"]\n",
            escaper(&ws.path("pid"))
        ),
    )
    .unwrap();
    let run = ws.run(&["-j", "1"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(run.job("daemon")["leaked"], true);
    assert_eq!(run.job("second")["stdout"], "two\n");
    assert_eq!(run.job("third")["stdout"], "three\n");
}

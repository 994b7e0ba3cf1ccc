//! kill -9 of `drover serve` with 200 jobs accepted, some running, most
//! queued; a restart on the same state folder: every accepted job reaches a
//! final status, none is lost, none that had ended runs again, jobs that
//! were running run again only if their retries allow, and no process of
//! the first server's jobs is left.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{Value, json};

use crate::common::*;
use crate::serve_common::*;

const JOBS: usize = 200;

fn all_jobs(server: &Server) -> Vec<Value> {
    let mut jobs = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let query = match after {
            Some(a) => format!("/v1/jobs?limit=1000&after={a}"),
            None => "/v1/jobs?limit=1000".to_string(),
        };
        let page: Value = server.get(&query).json().unwrap();
        jobs.extend(page["jobs"].as_array().unwrap().iter().cloned());
        match page["next"].as_i64() {
            Some(n) => after = Some(n),
            None => return jobs,
        }
    }
}

#[test]
fn after_kill_9_and_a_restart_every_job_ends_once() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let runs = dir.path().join("runs");
    let pids = dir.path().join("pids");
    let server = Server::start(&state, &["-j", "8"], None);
    for i in 0..JOBS {
        let script = format!(
            "echo $$ >> {}; echo j{i} >> {}; echo out-j{i}; sleep 0.3",
            pids.display(),
            runs.display()
        );
        let mut job = json!({"name": format!("j{i}"), "cmd": ["sh", "-c", script]});
        if i.is_multiple_of(2) {
            job["retries"] = json!(1);
        }
        server.submit(job);
    }
    // Some have ended, some run, most wait.
    assert!(wait_until(WAIT, || lines_of(&runs).len() >= 24));
    let ended_before: Vec<String> = all_jobs(&server)
        .iter()
        .filter(|j| j["status"] == "succeeded")
        .map(|j| j["name"].as_str().unwrap().to_string())
        .collect();
    assert!(!ended_before.is_empty());
    server.crash();
    let first_pids = pids_in(&pids);

    let server = Server::start(&state, &["-j", "8"], None);
    let deadline = Instant::now() + WAIT;
    let jobs = loop {
        let jobs = all_jobs(&server);
        if jobs
            .iter()
            .all(|j| !matches!(j["status"].as_str(), Some("queued" | "running")))
        {
            break jobs;
        }
        assert!(Instant::now() < deadline, "not every job ended");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(jobs.len(), JOBS, "none lost");
    assert!(
        server.log().contains("from the last run"),
        "{}",
        server.log()
    );
    let mut times_run: HashMap<String, usize> = HashMap::new();
    for name in lines_of(&runs) {
        *times_run.entry(name).or_default() += 1;
    }
    for name in &ended_before {
        assert_eq!(times_run[name], 1, "{name} had ended and ran again");
    }
    let mut restarted = 0;
    for job in &jobs {
        let name = job["name"].as_str().unwrap();
        let i: usize = name[1..].parse().unwrap();
        let runs = times_run.get(name).copied().unwrap_or(0);
        match job["status"].as_str().unwrap() {
            "succeeded" => assert!(
                runs == 1 || (runs == 2 && i.is_multiple_of(2)),
                "{job} ran {runs}"
            ),
            "failed" => {
                assert_eq!(job["error"], "drover restarted while the job ran", "{job}");
                assert_eq!(i % 2, 1, "a job with a retry left runs again: {job}");
                assert_eq!(runs, 1, "{job}");
                let id = job["id"].as_i64().unwrap();
                let out = server.get(&format!("/v1/jobs/{id}/output")).text().unwrap();
                assert_eq!(
                    out,
                    format!("out-{name}\n"),
                    "written before the crash, kept"
                );
                restarted += 1;
            }
            other => panic!("{other}: {job}"),
        }
    }
    // Running at the crash: odd ones failed, even ones ran again.
    let twice = times_run.values().filter(|&&n| n == 2).count();
    assert!(restarted + twice > 0, "some job was running at the kill");
    assert_all_gone(&first_pids);
    assert_eq!(server.stop(), 0);
}

#[test]
fn a_drained_server_keeps_its_queue_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let server = Server::start(&state, &["-j", "1"], None);
    let runs = dir.path().join("runs");
    let running = id_of(&server.submit(json!({"cmd": ["sleep", "0.5"]})));
    let queued: Vec<i64> = (0..3)
        .map(|_| {
            let script = format!("echo ran >> {}", runs.display());
            id_of(&server.submit(json!({"cmd": ["sh", "-c", script]})))
        })
        .collect();
    server.wait_job(running, |j| j["status"] == "running");
    send_signal(server.child.id(), "TERM");
    // Draining: not ready (until it has stopped listening); the running job
    // ends on its own.
    let http = reqwest::blocking::Client::new();
    assert!(wait_until(WAIT, || {
        http.get(format!("{}/readyz", server.url))
            .send()
            .map_or(true, |r| r.status().as_u16() == 503)
    }));
    assert_eq!(server.wait_exit(), 0);
    assert!(!runs.exists(), "no queued job started while it drained");

    let server = Server::start(&state, &[], None);
    assert_eq!(
        server.job(running)["status"],
        "succeeded",
        "it had time to end"
    );
    for id in queued {
        assert_eq!(server.wait_final(id)["status"], "succeeded");
    }
    assert_eq!(lines_of(&runs).len(), 3);
}

#[test]
fn retries_are_counted_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let server = Server::start(&state, &[], None);
    let id = id_of(&server.submit(json!({"sh": "echo run; exec sleep 300", "retries": 1})));
    server.wait_job(id, |j| j["status"] == "running");
    assert!(wait_until(WAIT, || server
        .get(&format!("/v1/jobs/{id}/output"))
        .text()
        .unwrap()
        == "run\n"));
    server.crash();
    // A retry left: it runs again, as attempt 2.
    let server = Server::start(&state, &[], None);
    server.wait_job(id, |j| j["status"] == "running" && j["attempts"] == 2);
    assert!(wait_until(WAIT, || server
        .get(&format!("/v1/jobs/{id}/output"))
        .text()
        .unwrap()
        == "run\nrun\n"));
    server.crash();
    // None left.
    let server = Server::start(&state, &[], None);
    let job = server.wait_final(id);
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"], "drover restarted while the job ran");
    assert_eq!(job["attempts"], 2);
}

#[test]
fn a_job_that_outlasts_drain_timeout_is_stopped_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let pids = dir.path().join("pids");
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "[serve]\ndrain_timeout = \"300ms\"\n").unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let server = Server::start(&state, &args, None);
    let script = format!("echo $$ >> {}; trap '' TERM; sleep 300", pids.display());
    let id = id_of(&server.submit(json!({"cmd": ["sh", "-c", script], "kill_grace": "200ms"})));
    server.wait_job(id, |j| j["status"] == "running");
    assert!(wait_until(WAIT, || !pids_in(&pids).is_empty()));
    let started = Instant::now();
    assert_eq!(server.stop(), 0);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_all_gone(&pids_in(&pids));
    let server = Server::start(&state, &args, None);
    let job = server.job(id);
    assert_eq!(job["status"], "cancelled", "{job}");
    assert!(
        !server.log().contains("from the last run"),
        "nothing left over: {}",
        server.log()
    );
}

#[test]
fn while_draining_submits_get_503_and_a_second_signal_kills_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let server = Server::start(&state, &["--log-format", "json"], None);
    // Ignores TERM, with a grace far longer than the test waits.
    let id = id_of(&server.submit(json!({"sh": "trap '' TERM; sleep 300", "kill_grace": "10m"})));
    server.wait_job(id, |j| j["status"] == "running");
    send_signal(server.child.id(), "TERM");
    let http = reqwest::blocking::Client::new();
    assert!(wait_until(WAIT, || {
        let r = http
            .post(format!("{}/v1/jobs", server.url))
            .body(json!({"cmd": ["true"]}).to_string())
            .send()
            .unwrap();
        r.status().as_u16() == 503 && r.headers()["retry-after"] == "5"
    }));
    // Reads still work while draining.
    assert_eq!(server.job(id)["status"], "running");
    let started = Instant::now();
    send_signal(server.child.id(), "TERM");
    let log = server.log.clone();
    assert_eq!(server.wait_exit(), 0);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "killed at once, not after the grace"
    );
    for line in log.lock().unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(v["fields"]["message"].is_string(), "{line}");
    }
    let server = Server::start(&state, &[], None);
    assert_eq!(server.job(id)["status"], "cancelled");
}

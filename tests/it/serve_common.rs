//! A real `drover serve` on a free loopback port, for the serve tests, and
//! a real HTTP client (reqwest) against it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

pub struct Server {
    pub child: Child,
    pub url: String,
    pub state: PathBuf,
    /// What it printed on stderr so far.
    pub log: Arc<Mutex<String>>,
    pub token: Option<String>,
    pub http: reqwest::blocking::Client,
}

/// The deadline every wait of these tests gets: generous, for a loaded
/// machine.
pub const WAIT: Duration = Duration::from_secs(60);

impl Server {
    /// `drover serve --listen 127.0.0.1:0 --state-dir STATE ARGS...`, with
    /// `$DROVER_TOKEN` = `token` where given; waits until it listens.
    pub fn start(state: &Path, args: &[&str], token: Option<&str>) -> Server {
        Server::start_via(&[], state, args, token)
    }

    /// As `start`, with drover run by `prefix` (e.g. `prlimit --nofile=…`).
    pub fn start_via(prefix: &[&str], state: &Path, args: &[&str], token: Option<&str>) -> Server {
        let mut cmd = match prefix.split_first() {
            None => drover(),
            Some((program, rest)) => {
                let mut cmd = std::process::Command::new(program);
                cmd.args(rest)
                    .arg(env!("CARGO_BIN_EXE_drover"))
                    .env_remove("RUST_LOG");
                cmd
            }
        };
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0", "--state-dir"])
            .arg(state)
            .args(args)
            .env_remove("DROVER_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(t) = token {
            cmd.env("DROVER_TOKEN", t);
        }
        let mut child = cmd.spawn().expect("spawn drover serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    // A log line, human or JSON: the URL ends at a space or
                    // a quote.
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        let url: String = rest
                            .chars()
                            .take_while(|c| !c.is_whitespace() && *c != '"')
                            .collect();
                        let _ = tx.send(url);
                    }
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let url = match rx.recv_timeout(WAIT) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("drover serve did not listen: {}", log.lock().unwrap());
            }
        };
        Server {
            child,
            url,
            state: state.to_path_buf(),
            log,
            token: token.map(str::to_string),
            http: reqwest::blocking::Client::builder()
                .timeout(WAIT)
                .build()
                .unwrap(),
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn authed(&self, rb: reqwest::blocking::RequestBuilder) -> reqwest::blocking::RequestBuilder {
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    pub fn get(&self, path: &str) -> reqwest::blocking::Response {
        self.authed(self.http.get(format!("{}{path}", self.url)))
            .send()
            .expect("GET")
    }

    pub fn post(
        &self,
        path: &str,
        body: impl Into<reqwest::blocking::Body>,
    ) -> reqwest::blocking::Response {
        self.authed(self.http.post(format!("{}{path}", self.url)))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .expect("POST")
    }

    pub fn authed_delete(&self, path: &str) -> reqwest::blocking::Response {
        self.authed(self.http.delete(format!("{}{path}", self.url)))
            .send()
            .expect("DELETE")
    }

    /// POSTs a job; its object (201 asserted).
    pub fn submit(&self, job: Value) -> Value {
        let r = self.post("/v1/jobs", job.to_string());
        let status = r.status();
        let body: Value = r.json().expect("a JSON answer");
        assert_eq!(status.as_u16(), 201, "{body}");
        body
    }

    pub fn job(&self, id: i64) -> Value {
        let r = self.get(&format!("/v1/jobs/{id}"));
        assert_eq!(r.status().as_u16(), 200);
        r.json().unwrap()
    }

    /// Polls job `id` until `until` holds of it; the job then.
    pub fn wait_job(&self, id: i64, until: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let job = self.job(id);
            if until(&job) {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} never got there: {job}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls job `id` until it has a final status.
    pub fn wait_final(&self, id: i64) -> Value {
        self.wait_job(id, |j| {
            !matches!(j["status"].as_str(), Some("queued" | "running"))
        })
    }

    /// SIGTERM, and the exit code once it has drained.
    pub fn stop(self) -> i32 {
        send_signal(self.child.id(), "TERM");
        self.wait_exit()
    }

    /// Its exit code, once it exits.
    pub fn wait_exit(mut self) -> i32 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "drover serve did not stop: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// kill -9: no drain, nothing written on the way out.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    /// Stops it as a user would (a second SIGTERM cuts the drain short), so
    /// that its jobs end with it; SIGKILL if it hangs.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let term = |pid: u32| {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        };
        term(self.child.id());
        std::thread::sleep(Duration::from_millis(50));
        term(self.child.id());
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub fn id_of(job: &Value) -> i64 {
    job["id"].as_i64().expect("a job id")
}

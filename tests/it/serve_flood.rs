//! A flood: 64 clients submitting past `max_queued`: some are told 429 with
//! Retry-After, none gets a 5xx, the server's memory stays bounded, and
//! every job it accepted ends.

use std::sync::Mutex;

use serde_json::json;

use crate::serve_common::*;

const CLIENTS: usize = 64;
const EACH: usize = 40;

/// The server's peak RSS so far, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn sixty_four_clients_past_max_queued_get_429s_and_every_accepted_job_ends() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "[serve]\nmax_queued = 50\nmax_parallel = 2\n").unwrap();
    let server = Server::start(
        &dir.path().join("state"),
        &["--config", config.to_str().unwrap()],
        None,
    );
    let accepted = Mutex::new(Vec::new());
    let codes = Mutex::new(std::collections::BTreeMap::<u16, usize>::new());
    std::thread::scope(|s| {
        for _ in 0..CLIENTS {
            s.spawn(|| {
                // Keep-alive: one client a thread, as a real caller would.
                let http = reqwest::blocking::Client::new();
                for _ in 0..EACH {
                    let r = http
                        .post(format!("{}/v1/jobs", server.url))
                        .body(json!({"cmd": ["true"]}).to_string())
                        .send()
                        .expect("the server answers");
                    let code = r.status().as_u16();
                    if code == 429 {
                        assert_eq!(r.headers()["retry-after"], "1");
                    }
                    if code == 201 {
                        let job: serde_json::Value = r.json().unwrap();
                        accepted.lock().unwrap().push(id_of(&job));
                    }
                    *codes.lock().unwrap().entry(code).or_default() += 1;
                }
            });
        }
    });
    let codes = codes.into_inner().unwrap();
    assert!(codes.keys().all(|c| *c == 201 || *c == 429), "{codes:?}");
    assert!(
        codes.get(&429).is_some_and(|&n| n > 0),
        "some refused: {codes:?}"
    );
    let accepted = accepted.into_inner().unwrap();
    assert!(!accepted.is_empty());
    for id in &accepted {
        assert_eq!(server.wait_final(*id)["status"], "succeeded");
    }
    let rss_mib = peak_rss_kib(server.child.id()) / 1024;
    assert!(rss_mib < 100, "the server grew to {rss_mib} MiB");
    eprintln!("{codes:?}, peak RSS {rss_mib} MiB");
}

//! `drover serve`'s API, through a real HTTP client against a real server:
//! submit and poll, output followed live, stdin streamed, cancel, auth,
//! the allow-list, bad bodies, idempotency, the queue's bound.

use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;
use crate::serve_common::*;

#[test]
fn a_job_is_submitted_polled_and_its_output_read() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], None);
    let job = server
        .submit(json!({"cmd": ["sh", "-c", "echo hello; echo oops >&2; exit 3"], "ok_codes": [3]}));
    let id = id_of(&job);
    assert_eq!(job["status"], "queued", "{job}");
    assert_eq!(job["name"], format!("job-{id}"), "drover names it");
    assert!(job["submitted_at"].is_string(), "{job}");
    // Not run yet: no output, with the keys of one that ran.
    assert_eq!(job["stdout"], "", "{job}");
    assert_eq!(job["stderr"], "", "{job}");
    assert_eq!(job["stdout_truncated"], false, "{job}");
    assert_eq!(job["stderr_truncated"], false, "{job}");
    let done = server.wait_final(id);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["exit_code"], 3);
    assert_eq!(done["stdout"], "hello\n");
    assert_eq!(done["stderr"], "oops\n");
    assert_eq!(done["attempts"], 1);
    assert!(done["pid"].as_i64().is_some_and(|p| p > 0), "{done}");
    assert!(done["finished_at"].is_string(), "{done}");
    let out = server.get(&format!("/v1/jobs/{id}/output"));
    assert_eq!(out.status().as_u16(), 200);
    assert_eq!(out.text().unwrap(), "hello\n");
    let err = server.get(&format!("/v1/jobs/{id}/output?stream=stderr"));
    assert_eq!(err.text().unwrap(), "oops\n");

    // Listed, newest first, with a cursor.
    let second = id_of(&server.submit(json!({"name": "two", "cmd": ["true"]})));
    server.wait_final(second);
    let page: Value = server.get("/v1/jobs?limit=1").json().unwrap();
    assert_eq!(page["jobs"][0]["id"], second, "{page}");
    assert_eq!(page["jobs"][0]["name"], "two");
    let cursor = page["next"].as_i64().expect("a cursor");
    let page: Value = server
        .get(&format!("/v1/jobs?limit=1&after={cursor}"))
        .json()
        .unwrap();
    assert_eq!(page["jobs"][0]["id"], id, "{page}");
    let failed: Value = server.get("/v1/jobs?status=failed").json().unwrap();
    assert_eq!(failed["jobs"], json!([]));
    assert_eq!(server.get("/v1/jobs/999999").status().as_u16(), 404);
    assert_eq!(server.stop(), 0);
}

#[test]
fn follow_streams_output_as_it_is_written_and_ends_with_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let server = Server::start(&dir.path().join("state"), &[], None);
    let script = format!(
        "echo first; while [ ! -e {} ]; do sleep 0.02; done; printf 'no newline at the end'",
        go.display()
    );
    let id = id_of(&server.submit(json!({"cmd": ["sh", "-c", script]})));
    let mut stream = server.get(&format!("/v1/jobs/{id}/output?follow=true"));
    assert_eq!(stream.status().as_u16(), 200);
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"first\n") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended before the job did: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(
        server.job(id)["status"],
        "running",
        "the first line came while it ran"
    );
    std::fs::write(&go, "").unwrap();
    stream.read_to_end(&mut got).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        "first\nno newline at the end"
    );
    assert_eq!(server.wait_final(id)["status"], "succeeded");
}

#[test]
fn stdin_streamed_in_three_parts_then_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], None);
    let id = id_of(&server.submit(json!({"cmd": ["cat"], "stdin": {"stream": true}})));
    for (part, query) in [("one ", ""), ("two ", ""), ("three", "?eof=true")] {
        let r = server.post(&format!("/v1/jobs/{id}/stdin{query}"), part);
        assert_eq!(r.status().as_u16(), 202, "{}", r.text().unwrap());
    }
    let done = server.wait_final(id);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["stdout"], "one two three");
    // Closed, and ended: no more.
    let r = server.post(&format!("/v1/jobs/{id}/stdin"), "more");
    assert_eq!(r.status().as_u16(), 409);
    // A job without a streaming stdin.
    let other = id_of(&server.submit(json!({"cmd": ["sleep", "30"]})));
    let r = server.post(&format!("/v1/jobs/{other}/stdin"), "x");
    assert_eq!(r.status().as_u16(), 409);
    let r = server.post(&format!("/v1/jobs/{other}/cancel"), "");
    assert_eq!(r.status().as_u16(), 202);
    server.wait_final(other);
}

#[test]
fn cancel_stops_a_running_jobs_group_and_a_queued_job_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let ran = dir.path().join("ran");
    let server = Server::start(&dir.path().join("state"), &["-j", "1"], None);
    // A job whose child ignores TERM: the group gets KILL after the grace.
    let script = format!(
        "sh -c 'trap \"\" TERM; echo $$ >> {p}; exec sleep 300' & echo $$ >> {p}; wait",
        p = pids.display()
    );
    let running =
        id_of(&server.submit(json!({"cmd": ["sh", "-c", script], "kill_grace": "200ms"})));
    let queued =
        id_of(&server.submit(json!({"cmd": ["sh", "-c", format!("touch {}", ran.display())]})));
    server.wait_job(running, |j| j["status"] == "running");
    assert!(
        wait_until(WAIT, || pids_in(&pids).len() == 2),
        "both pids written"
    );
    assert_eq!(server.job(queued)["status"], "queued", "-j 1 holds it back");

    let r = server.post(&format!("/v1/jobs/{queued}/cancel"), "");
    assert_eq!(r.status().as_u16(), 202);
    assert_eq!(server.wait_final(queued)["status"], "cancelled");
    let r = server.post(&format!("/v1/jobs/{running}/cancel"), "");
    assert_eq!(r.status().as_u16(), 202);
    let done = server.wait_final(running);
    assert_eq!(done["status"], "cancelled", "{done}");
    assert_all_gone(&pids_in(&pids));
    assert!(!ran.exists(), "a cancelled queued job never runs");
    let again = server.post(&format!("/v1/jobs/{running}/cancel"), "");
    assert_eq!(again.status().as_u16(), 409);
}

#[test]
fn a_token_is_needed_on_v1_and_compared_whole() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], Some("s3cret-token"));
    let url = &server.url;
    let http = reqwest::blocking::Client::new();
    let none = http.get(format!("{url}/v1/jobs")).send().unwrap();
    assert_eq!(none.status().as_u16(), 401);
    let body: Value = none.json().unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Bearer"),
        "{body}"
    );
    for wrong in ["s3cret", "s3cret-tokenX", "S3CRET-TOKEN", ""] {
        let r = http
            .get(format!("{url}/v1/jobs"))
            .bearer_auth(wrong)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{wrong:?}");
    }
    let r = http
        .post(format!("{url}/v1/jobs"))
        .body("{\"cmd\":[\"true\"]}")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "nothing submitted without it");
    assert_eq!(
        http.get(format!("{url}/healthz"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        http.get(format!("{url}/readyz"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        http.get(format!("{url}/metrics"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let doc: Value = server.get("/v1/openapi.json").json().unwrap();
    assert!(doc["paths"]["/v1/jobs"]["post"].is_object(), "{doc}");
    let ok = server.submit(json!({"cmd": ["true"]}));
    assert_eq!(server.wait_final(id_of(&ok))["status"], "succeeded");
    assert!(
        !server.log().contains("s3cret"),
        "the token is never logged"
    );
    let page: Value = server.get("/v1/jobs").json().unwrap();
    assert_eq!(
        page["jobs"].as_array().unwrap().len(),
        1,
        "only the authorised job"
    );
}

#[test]
fn no_token_no_listening_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = drover()
        .args(["serve", "--listen", "0.0.0.0:0", "--state-dir"])
        .arg(dir.path())
        .env_remove("DROVER_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("without a token") && stderr.contains("--token-file"),
        "{stderr}"
    );
    assert!(!dir.path().join("drover.db").exists(), "nothing made");
}

#[test]
fn the_allow_list_refuses_other_programs_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "[serve]\nallow = [\"echo\"]\n").unwrap();
    // A fake `echo` on a PATH of the job's own: not the allowed one.
    let fake = dir.path().join("bin");
    std::fs::create_dir(&fake).unwrap();
    std::fs::write(fake.join("echo"), "#!/bin/sh\ntouch pwned\n").unwrap();
    std::fs::set_permissions(
        fake.join("echo"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("state"),
        &["--config", config.to_str().unwrap()],
        None,
    );
    let ok = server.submit(json!({"cmd": ["echo", "fine"]}));
    assert_eq!(server.wait_final(id_of(&ok))["stdout"], "fine\n");
    for (job, field, names) in [
        (json!({"cmd": ["cat", "/etc/passwd"]}), "cmd", "cat"),
        (json!({"sh": "echo hi"}), "sh", "allow_shell"),
        (
            json!({"cmd": ["echo"], "env": {"PATH": fake.to_str().unwrap()}}),
            "cmd",
            "echo",
        ),
        (
            json!({"cmd": ["echo"], "env": {"LD_PRELOAD": "/tmp/x.so"}}),
            "env",
            "LD_PRELOAD",
        ),
    ] {
        let r = server.post("/v1/jobs", job.to_string());
        assert_eq!(r.status().as_u16(), 403, "{job}");
        let body: Value = r.json().unwrap();
        assert_eq!(body["error"]["field"], field, "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(names),
            "{body}"
        );
    }
    let page: Value = server.get("/v1/jobs").json().unwrap();
    assert_eq!(
        page["jobs"].as_array().unwrap().len(),
        1,
        "a refused job is not stored"
    );
}

#[test]
fn bad_bodies_are_400_naming_the_field_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "[serve]\nmax_body = \"1KiB\"\n").unwrap();
    let server = Server::start(
        &dir.path().join("state"),
        &["--config", config.to_str().unwrap()],
        None,
    );
    for (body, status, field) in [
        ("not json".to_string(), 400, Value::Null),
        ("[1]".to_string(), 400, Value::Null),
        (json!({"cmd": []}).to_string(), 400, json!("cmd")),
        (
            json!({"cmd": ["true"], "timeout": 5}).to_string(),
            400,
            json!("timeout"),
        ),
        (
            json!({"cmd": ["true"], "cmdd": 1}).to_string(),
            400,
            json!("cmdd"),
        ),
        (
            json!({"cmd": ["true"], "needs": ["a"]}).to_string(),
            400,
            json!("needs"),
        ),
        (
            json!({"cmd": ["true"], "stdout": {"file": "/etc/x"}}).to_string(),
            400,
            json!("stdout"),
        ),
        (
            json!({"cmd": ["true"], "ok_codes": [300]}).to_string(),
            400,
            json!("ok_codes"),
        ),
        (
            json!({"cmd": ["true"], "sh": "true"}).to_string(),
            400,
            json!("sh"),
        ),
        (
            json!({"sh": "x".repeat(2000)}).to_string(),
            413,
            Value::Null,
        ),
    ] {
        let r = server.post("/v1/jobs", body.clone());
        assert_eq!(r.status().as_u16(), status, "{body}");
        let answer: Value = r.json().expect("a JSON error");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{answer}"
        );
    }
    let page: Value = server.get("/v1/jobs").json().unwrap();
    assert_eq!(page["jobs"], json!([]), "nothing stored");
    let r = server.get("/v1/jobs?status=done");
    assert_eq!(r.status().as_u16(), 400);
}

#[test]
fn twenty_concurrent_posts_with_one_idempotency_key_run_one_job_once() {
    let dir = tempfile::tempdir().unwrap();
    let marks = dir.path().join("marks");
    let server = Server::start(&dir.path().join("state"), &[], None);
    let body = json!({"cmd": ["sh", "-c", format!("echo ran >> {}", marks.display())]}).to_string();
    let answers: Vec<(u16, i64)> = std::thread::scope(|s| {
        let tries: Vec<_> = (0..20)
            .map(|_| {
                s.spawn(|| {
                    let r = server
                        .http
                        .post(format!("{}/v1/jobs", server.url))
                        .header("Idempotency-Key", "order-42")
                        .body(body.clone())
                        .send()
                        .unwrap();
                    let status = r.status().as_u16();
                    let job: Value = r.json().unwrap();
                    (status, job["id"].as_i64().unwrap_or(-1))
                })
            })
            .collect();
        tries.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(created, 1, "{answers:?}");
    assert!(
        answers.iter().all(|(s, _)| *s == 201 || *s == 200),
        "{answers:?}"
    );
    let id = answers[0].1;
    assert!(
        answers.iter().all(|(_, i)| *i == id),
        "one job: {answers:?}"
    );
    server.wait_final(id);
    let other = server
        .http
        .post(format!("{}/v1/jobs", server.url))
        .header("Idempotency-Key", "order-42")
        .body(json!({"cmd": ["true"]}).to_string())
        .send()
        .unwrap();
    assert_eq!(other.status().as_u16(), 422);
    assert_eq!(
        std::fs::read_to_string(&marks).unwrap(),
        "ran\n",
        "run once"
    );
}

#[test]
fn past_max_queued_submits_get_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "[serve]\nmax_queued = 3\nmax_parallel = 1\n").unwrap();
    let server = Server::start(
        &dir.path().join("state"),
        &["--config", config.to_str().unwrap()],
        None,
    );
    let first = id_of(&server.submit(json!({"cmd": ["sleep", "30"]})));
    server.wait_job(first, |j| j["status"] == "running");
    let mut accepted = vec![first];
    let mut refused = 0;
    for _ in 0..6 {
        let r = server.post("/v1/jobs", json!({"cmd": ["true"]}).to_string());
        match r.status().as_u16() {
            201 => accepted.push(id_of(&r.json().unwrap())),
            429 => {
                assert_eq!(r.headers()["retry-after"], "1");
                refused += 1;
            }
            other => panic!("{other}: {}", r.text().unwrap()),
        }
    }
    assert_eq!(
        (accepted.len(), refused),
        (4, 3),
        "three wait, the rest are refused"
    );
    let r = server.post(&format!("/v1/jobs/{first}/cancel"), "");
    assert_eq!(r.status().as_u16(), 202);
    let deadline = Instant::now() + WAIT;
    for id in accepted {
        server.wait_final(id);
        assert!(Instant::now() < deadline);
    }
    let metrics = server.get("/metrics").text().unwrap();
    assert!(
        metrics.contains("drover_jobs_submitted_total 4"),
        "{metrics}"
    );
    assert!(metrics.contains("drover_http_requests_total"), "{metrics}");
    let _ = Duration::ZERO;
}

#[test]
fn output_past_output_limit_is_counted_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "[serve]\noutput_limit = \"1KiB\"\n").unwrap();
    let server = Server::start(
        &dir.path().join("state"),
        &["--config", config.to_str().unwrap()],
        None,
    );
    let id = id_of(&server.submit(
        json!({"cmd": ["sh", "-c", "head -c 5000 /dev/zero | tr '\\0' a; echo done >&2"]}),
    ));
    let done = server.wait_final(id);
    assert_eq!(
        done["status"], "succeeded",
        "the job is not held up: {done}"
    );
    assert_eq!(done["stdout_bytes"], 5000, "{done}");
    assert_eq!(done["stderr_bytes"], 5, "{done}");
    let out = server
        .get(&format!("/v1/jobs/{id}/output"))
        .bytes()
        .unwrap();
    assert_eq!(&out[..], &[b'a'; 1024][..]);
    assert_eq!(done["stderr"], "done\n");
}

#[test]
fn output_files_are_made_at_a_jobs_first_byte_and_a_lost_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let server = Server::start(&state, &[], None);
    let output = |id: i64, stream: &str| state.join(format!("output/{id}.{stream}"));
    // Silent: no file, and the API reads it as empty.
    let quiet = id_of(&server.submit(json!({"cmd": ["true"]})));
    let done = server.wait_final(quiet);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!((&done["stdout"], &done["stderr"]), (&json!(""), &json!("")));
    assert!(!output(quiet, "stdout").exists() && !output(quiet, "stderr").exists());
    let r = server.get(&format!("/v1/jobs/{quiet}/output?follow=true"));
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.bytes().unwrap().len(), 0);
    // A file that cannot be made: the job runs on, its end says what was
    // not kept.
    let id = id_of(&server.submit(
        json!({"cmd": ["sh", "-c", "read x; echo out; echo err >&2"], "stdin": {"stream": true}}),
    ));
    std::fs::create_dir(output(id, "stdout")).unwrap();
    let r = server.post(&format!("/v1/jobs/{id}/stdin?eof=true"), "go\n");
    assert_eq!(r.status().as_u16(), 202, "{:?}", r.text());
    let done = server.wait_final(id);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["stderr"], "err\n", "{done}");
    let error = done["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("output not kept") && error.contains(&format!("{id}.stdout")),
        "{done}"
    );
}

#[test]
fn a_long_queue_holds_no_descriptors() {
    // 64 descriptors: the old way (two open files a queued job) ran out
    // at about thirty.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_via(
        &["prlimit", "--nofile=64:64", "--"],
        &dir.path().join("state"),
        &["-j", "1"],
        None,
    );
    let first = id_of(&server.submit(json!({"cmd": ["cat"], "stdin": {"stream": true}})));
    server.wait_job(first, |j| j["status"] == "running");
    let queued: Vec<i64> = (0..300)
        .map(|i| id_of(&server.submit(json!({"cmd": ["sh", "-c", format!("echo {i}")]}))))
        .collect();
    let r = server.post(&format!("/v1/jobs/{first}/stdin?eof=true"), "");
    assert_eq!(r.status().as_u16(), 202);
    assert_eq!(server.wait_final(first)["status"], "succeeded");
    for (i, id) in queued.iter().enumerate() {
        let done = server.wait_final(*id);
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(done["stdout"], format!("{i}\n"), "{done}");
    }
}

#[test]
fn ended_jobs_and_their_output_go_after_retention() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "[serve]\nretention = \"300ms\"\n").unwrap();
    let server = Server::start(&state, &["--config", config.to_str().unwrap()], None);
    let ended = id_of(&server.submit(json!({"cmd": ["echo", "bye"]})));
    let running = id_of(&server.submit(json!({"cmd": ["sleep", "30"]})));
    server.wait_final(ended);
    let out = state.join("output").join(format!("{ended}.stdout"));
    assert!(out.exists());
    assert!(wait_until(WAIT, || server
        .get(&format!("/v1/jobs/{ended}"))
        .status()
        .as_u16()
        == 404));
    assert!(!out.exists(), "its output went with it");
    assert_eq!(
        server.job(running)["status"],
        "running",
        "a running job stays"
    );
    // Cancelled, it ends, and goes in its turn.
    let r = server.post(&format!("/v1/jobs/{running}/cancel"), "");
    assert_eq!(r.status().as_u16(), 202);
    assert!(wait_until(WAIT, || server
        .get(&format!("/v1/jobs/{running}"))
        .status()
        .as_u16()
        == 404));
}

#[test]
fn the_state_folder_it_makes_is_its_users_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("new").join("state");
    let server = Server::start(&state, &[], None);
    for d in [state.clone(), state.join("output")] {
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", d.display());
    }
    drop(server);
}

#[test]
fn a_new_idempotency_key_does_not_pass_a_full_queue_but_a_repeat_does() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "[serve]\nmax_queued = 1\nmax_parallel = 1\n").unwrap();
    let server = Server::start(
        &dir.path().join("state"),
        &["--config", config.to_str().unwrap()],
        None,
    );
    let post = |key: &str| {
        server
            .http
            .post(format!("{}/v1/jobs", server.url))
            .header("Idempotency-Key", key)
            .body(json!({"cmd": ["sleep", "30"]}).to_string())
            .send()
            .unwrap()
    };
    let running = id_of(&post("a").json().unwrap());
    server.wait_job(running, |j| j["status"] == "running");
    assert_eq!(post("b").status().as_u16(), 201, "one may wait");
    assert_eq!(post("c").status().as_u16(), 429, "a new key is a new job");
    assert_eq!(post("b").status().as_u16(), 200, "a repeat is not");
}

#[test]
fn jobs_cannot_read_the_token_and_auth_is_as_http_says() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], Some("t0ken-value"));
    let id = id_of(&server.submit(json!({"sh": "echo ${DROVER_TOKEN:-none}"})));
    assert_eq!(server.wait_final(id)["stdout"], "none\n");
    let http = reqwest::blocking::Client::new();
    let r = http.get(format!("{}/v1/jobs", server.url)).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let r = http
        .get(format!("{}/v1/jobs", server.url))
        .header("Authorization", "bearer t0ken-value")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "the scheme is case-insensitive");
    let r = server.authed_delete(&format!("/v1/jobs/{id}"));
    assert_eq!(r.status().as_u16(), 405);
    let body: Value = r.json().expect("a JSON error");
    assert!(body["error"]["message"].is_string(), "{body}");
}

#[test]
fn a_symlink_to_an_allowed_program_is_not_that_program() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "[serve]\nallow = [\"echo\"]\n").unwrap();
    let link = dir.path().join("echo");
    let echo = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v echo || which echo"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let real = which_echo(&echo);
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let server = Server::start(
        &dir.path().join("state"),
        &["--config", config.to_str().unwrap()],
        None,
    );
    let r = server.post(
        "/v1/jobs",
        json!({"cmd": [link.to_str().unwrap(), "x"]}).to_string(),
    );
    assert_eq!(r.status().as_u16(), 403, "{}", r.text().unwrap());
    // The allowed one runs, by the path checked.
    let id = id_of(&server.submit(json!({"cmd": ["echo", "fine"]})));
    assert_eq!(server.wait_final(id)["stdout"], "fine\n");
}

/// `echo`'s path on this machine (the shell's builtin answers "echo").
fn which_echo(_shell_says: &str) -> std::path::PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join("echo"))
        .find(|p| p.is_file())
        .expect("an echo on PATH")
}

#[test]
fn a_second_server_on_the_same_state_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = Server::start(dir.path(), &[], None);
    let out = drover()
        .args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("another drover serve"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(first.stop(), 0);
}

/// The niceness of a `nice` run from here: what drover starts at.
fn own_niceness() -> i32 {
    let out = std::process::Command::new("nice").output().unwrap();
    text(&out.stdout).trim().parse().unwrap()
}

#[test]
fn jobs_run_niced_below_the_server_by_default_and_as_nice_says() {
    // A niceness below drover's own cannot be set (unprivileged): the job
    // stays at drover's.
    let own = own_niceness();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("default"), &[], None);
    let job = server.submit(json!({"cmd": ["nice"]}));
    let done = server.wait_final(id_of(&job));
    assert_eq!(done["stdout"], format!("{}\n", own.max(10)), "{done}");
    assert_eq!(server.stop(), 0);

    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "[serve]\nnice = 13\n").unwrap();
    let server = Server::start(
        &dir.path().join("set"),
        &["--config", config.to_str().unwrap()],
        None,
    );
    // A job's children too (here `nice` under `sh`).
    let job = server.submit(json!({"sh": "nice"}));
    let done = server.wait_final(id_of(&job));
    assert_eq!(done["stdout"], format!("{}\n", own.max(13)), "{done}");
    assert_eq!(server.stop(), 0);
}

#[test]
fn a_niceness_out_of_range_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.toml");
    for bad in ["20", "-21"] {
        std::fs::write(&config, format!("[serve]\nnice = {bad}\n")).unwrap();
        let out = drover()
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "nice = {bad}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!("[serve] nice = {bad}")) && stderr.contains("-20"),
            "{stderr}"
        );
        assert!(!dir.path().join("state").exists(), "nothing made");
    }
}

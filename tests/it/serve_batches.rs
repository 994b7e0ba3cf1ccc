//! `POST /v1/batches`: a whole job file, with needs and a pipe, as TOML and
//! as JSON; `GET /v1/batches/{id}`: its report; a bad file is a 400 that
//! says where.

use serde_json::{Value, json};

use crate::serve_common::*;

const FILE: &str = r#"
[[job]]
name = "make"
cmd = ["sh", "-c", "echo 3; echo 1; echo 2"]

[[job]]
name = "sort"
cmd = ["sort"]
stdin = { from = "make" }

[[job]]
name = "after"
needs = ["sort"]
sh = "echo done"
"#;

fn wait_batch(server: &Server, id: i64) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let r = server.get(&format!("/v1/batches/{id}"));
        assert_eq!(r.status().as_u16(), 200);
        let report: Value = r.json().unwrap();
        if report["status"] == "done" {
            return report;
        }
        assert!(std::time::Instant::now() < deadline, "{report}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn post_batch(server: &Server, content_type: &str, body: String) -> reqwest::blocking::Response {
    server
        .http
        .post(format!("{}/v1/batches", server.url))
        .header("content-type", content_type)
        .body(body)
        .send()
        .unwrap()
}

#[test]
fn a_batch_with_needs_and_a_pipe_runs_and_reports_as_drover_run_does() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], None);
    let toml_file: toml::Value = toml::from_str(FILE).unwrap();
    for (content_type, body) in [
        ("application/toml", FILE.to_string()),
        (
            "application/json",
            serde_json::to_string(&toml_file).unwrap(),
        ),
    ] {
        let r = post_batch(&server, content_type, body);
        assert_eq!(r.status().as_u16(), 201, "{content_type}");
        let created: Value = r.json().unwrap();
        let names: Vec<&str> = created["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["make", "sort", "after"]);
        let report = wait_batch(&server, created["batch"].as_i64().unwrap());
        assert_eq!(report["version"], 1);
        assert_eq!(report["summary"]["succeeded"], 3, "{report}");
        let job = |name: &str| {
            report["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|j| j["name"] == name)
                .unwrap()
                .clone()
        };
        assert_eq!(job("sort")["stdout"], "1\n2\n3\n", "{report}");
        assert_eq!(job("after")["stdout"], "done\n");
        assert!(job("after")["started_at"].as_str() >= job("sort")["started_at"].as_str());
        // Each is a job of the API too.
        let id = job("sort")["id"].as_i64().unwrap();
        assert_eq!(server.job(id)["batch"], created["batch"]);
    }
}

#[test]
fn a_bad_job_file_is_a_400_that_says_where_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], None);
    for (body, field, says) in [
        (
            "[[job]]\nname = \"a\"\ncmd = [\"true\"]\ntimeout = 5\n",
            json!("timeout"),
            "batch.toml:4:11",
        ),
        (
            "[[job]]\nname = \"a\"\ncmd = [\"true\"]\nneeds = [\"nope\"]\n",
            json!("needs"),
            "nope",
        ),
        (
            "[[job]]\nname = \"a\"\ncmd = [\"true\"]\nstdout = { file = \"/tmp/x\" }\n",
            json!("stdout"),
            "state folder",
        ),
        ("not toml at all", Value::Null, "batch.toml:1"),
    ] {
        let r = post_batch(&server, "application/toml", body.to_string());
        assert_eq!(r.status().as_u16(), 400, "{body}");
        let answer: Value = r.json().unwrap();
        assert_eq!(answer["error"]["field"], field, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    let page: Value = server.get("/v1/jobs").json().unwrap();
    assert_eq!(page["jobs"], json!([]));
    assert_eq!(server.get("/v1/batches/1").status().as_u16(), 404);
}

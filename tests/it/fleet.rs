//! A fleet: three `drover serve --store postgres://…` workers sharing one
//! queue in a real PostgreSQL (a database of its own for each test; the
//! server comes from $DROVER_TEST_PG, which scripts/test.sh sets up).
//! Jobs run once, any node answers for any job, a worker that dies or
//! stops loses its jobs to the others, and its late writes change nothing.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use serde_json::{Value, json};

use crate::common::*;
use crate::serve_common::*;

/// A database of its own for one test, dropped at its end.
struct TestDb {
    admin: String,
    name: String,
    url: String,
}

impl TestDb {
    fn new() -> TestDb {
        static N: AtomicU32 = AtomicU32::new(0);
        let admin = std::env::var("DROVER_TEST_PG").expect(
            "the fleet tests need PostgreSQL: run scripts/test.sh (it sets DROVER_TEST_PG up), or set DROVER_TEST_PG=postgres://USER:PASSWORD@HOST:PORT/postgres for a role that may create databases",
        );
        let name = format!(
            "drover_t_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        psql(&admin, &format!("CREATE DATABASE {name}"));
        let (base, _) = admin.rsplit_once('/').expect("a URL with a database");
        let url = format!("{base}/{name}");
        TestDb { admin, name, url }
    }

    fn query(&self, sql: &str) -> String {
        psql(&self.url, sql)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([&self.admin, "-qtAc"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-qtA", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql (PostgreSQL's client) is needed");
    assert!(out.status.success(), "{sql}: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// Lease of the workers in these tests: short, so that rescues come soon.
const LEASE: &str = "2s";

/// A worker of the fleet in `db`, `-j slots`.
fn worker(dir: &Path, n: usize, db: &TestDb, slots: usize) -> Server {
    let config = dir.join("serve.toml");
    std::fs::write(&config, format!("[serve]\nlease = \"{LEASE}\"\n")).unwrap();
    Server::start(
        &dir.join(format!("state{n}")),
        &[
            "--store",
            &db.url,
            "--config",
            config.to_str().unwrap(),
            "-j",
            &slots.to_string(),
        ],
        None,
    )
}

fn fleet(dir: &Path, db: &TestDb, slots: usize) -> Vec<Server> {
    (0..3).map(|n| worker(dir, n, db, slots)).collect()
}

/// The worker (pid of its drover) that runs job `id` now.
fn runner(db: &TestDb, id: i64) -> Option<u32> {
    db.query(&format!(
        "SELECT w.pid FROM drover_jobs j JOIN drover_workers w ON w.id = j.worker
         WHERE j.id = {id} AND j.status = 'running'"
    ))
    .parse()
    .ok()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    assert!(wait_until(WAIT, &mut cond), "never: {what}");
}

#[test]
fn jobs_sent_to_one_node_run_once_across_the_workers_and_any_node_answers() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new();
    let nodes = fleet(dir.path(), &db, 3);
    let ids: Vec<i64> = (0..24)
        .map(|_| {
            id_of(&nodes[0].submit(json!({
                "sh": "echo job $DROVER_JOB_ID attempt $DROVER_ATTEMPT; sleep 0.3"
            })))
        })
        .collect();
    for id in &ids {
        let job = nodes[2].wait_final(*id);
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["stdout"], format!("job {id} attempt 1\n"), "{job}");
        assert_eq!(job["attempts"], 1, "{job}");
    }
    // One attempt each, every (job, attempt) once; 24 jobs of 0.3 s on
    // three slots a worker were spread.
    assert_eq!(
        db.query(
            "SELECT count(*), count(DISTINCT job) FROM drover_attempts WHERE outcome = 'succeeded'"
        ),
        "24|24"
    );
    let workers: i64 = db
        .query("SELECT count(DISTINCT worker) FROM drover_attempts")
        .parse()
        .unwrap();
    assert!(workers >= 2, "one worker ran them all");
    // Any node lists them.
    let page: Value = nodes[1].get("/v1/jobs?limit=100").json().unwrap();
    assert_eq!(page["jobs"].as_array().unwrap().len(), 24, "{page}");
}

#[test]
fn a_worker_killed_during_a_job_loses_it_to_another_and_its_attempt_is_marked_lost() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new();
    let mut nodes = fleet(dir.path(), &db, 4);
    let id = id_of(&nodes[0].submit(json!({
        "sh": "echo start $DROVER_ATTEMPT; sleep 2; echo end",
        "retries": 1
    })));
    wait_for("the job runs", || runner(&db, id).is_some());
    let victim = runner(&db, id).unwrap();
    let child: i32 = db
        .query(&format!(
            "SELECT coalesce(pid, 0) FROM drover_jobs WHERE id = {id}"
        ))
        .parse()
        .unwrap();
    let at = nodes.iter().position(|n| n.child.id() == victim).unwrap();
    let killed_at = Instant::now();
    nodes.remove(at).crash();
    // Its job's process dies with it (PDEATHSIG).
    if child > 0 {
        wait_for("the first attempt's process is gone", || pid_gone(child));
    }
    let survivor = &nodes[0];
    let job = survivor.wait_final(id);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    assert_eq!(job["stdout"], "start 2\nend\n", "{job}");
    // Lease 2 s, a rescue every second, 2 s of backoff, 2 s of job: well
    // inside the wait.
    assert!(killed_at.elapsed() < WAIT);
    assert_eq!(
        db.query(&format!(
            "SELECT string_agg(attempt || ':' || outcome, ',' ORDER BY attempt) FROM drover_attempts WHERE job = {id}"
        )),
        "1:lost,2:succeeded"
    );
    let workers = db.query(&format!(
        "SELECT count(DISTINCT worker) FROM drover_attempts WHERE job = {id}"
    ));
    assert_eq!(workers, "2");
}

#[test]
fn a_job_whose_retries_are_spent_by_lost_workers_ends_failed() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new();
    let mut first = worker(dir.path(), 0, &db, 2);
    let id = id_of(&first.submit(json!({"sh": "exec sleep 30"})));
    wait_for("the job runs", || runner(&db, id).is_some());
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    // No retries: the rescuer of another worker ends it.
    let other = worker(dir.path(), 1, &db, 2);
    let job = other.wait_final(id);
    assert_eq!(job["status"], "failed", "{job}");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("its worker was lost"),
        "{job}"
    );
    assert_eq!(
        db.query(&format!(
            "SELECT outcome FROM drover_attempts WHERE job = {id}"
        )),
        "lost"
    );
}

#[test]
fn a_stopped_worker_past_its_lease_kills_its_job_and_its_late_result_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new();
    let nodes = fleet(dir.path(), &db, 2);
    let pids = dir.path().join("pids");
    let id = id_of(&nodes[0].submit(json!({
        "sh": format!("echo $$ >> {}; sleep 8; echo attempt $DROVER_ATTEMPT", pids.display()),
        "retries": 2
    })));
    wait_for("the job runs", || runner(&db, id).is_some());
    wait_for("its pid is written", || pids_in(&pids).len() == 1);
    let stopped = runner(&db, id).unwrap();
    let first_child = pids_in(&pids)[0];
    send_signal(stopped, "STOP");
    // Its lease expires; another worker takes the job over.
    wait_for("the job runs elsewhere", || {
        runner(&db, id).is_some_and(|w| w != stopped)
    });
    send_signal(stopped, "CONT");
    // Woken past its deadline, it kills its own copy at once.
    wait_for("the stopped worker's child is gone", || {
        pid_gone(first_child)
    });
    let job = nodes[1].wait_final(id);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["stdout"], "attempt 2\n", "{job}");
    assert_eq!(
        db.query(&format!(
            "SELECT string_agg(attempt || ':' || outcome, ',' ORDER BY attempt) FROM drover_attempts WHERE job = {id}"
        )),
        "1:lost,2:succeeded"
    );
    // Every node still answers, the stopped one too (it joined again).
    for node in &nodes {
        assert_eq!(node.job(id)["status"], "succeeded");
    }
}

/// The count `drover_fleet_wakeups_total` of a worker's /metrics.
fn wakeups(node: &Server) -> u64 {
    let metrics = node.get("/metrics").text().unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("drover_fleet_wakeups_total "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[test]
fn a_new_job_wakes_one_idle_worker_not_the_whole_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new();
    let nodes = fleet(dir.path(), &db, 4);
    // Every worker has polled once and says it waits with four free slots.
    wait_for("the workers wait for jobs", || {
        db.query("SELECT count(*) FROM drover_workers WHERE free = 4") == "3"
    });
    for round in 1..=5u64 {
        let id = id_of(&nodes[(round % 3) as usize].submit(json!({"cmd": ["true"]})));
        assert_eq!(nodes[0].wait_final(id)["status"], "succeeded");
        let woken: u64 = nodes.iter().map(wakeups).sum();
        assert_eq!(woken, round, "one wake-up a job, not one a worker");
    }
    // Four jobs fill one worker's slots: one wake-up; nine take three.
    let before: u64 = nodes.iter().map(wakeups).sum();
    let sleeper = |n: usize| json!({"sh": format!("sleep 0.5; echo {n}")});
    wait_for("the workers wait for jobs", || {
        db.query("SELECT count(*) FROM drover_workers WHERE free = 4") == "3"
    });
    let batch: Vec<i64> = (0..9)
        .map(|n| id_of(&nodes[0].submit(sleeper(n))))
        .collect();
    for id in batch {
        assert_eq!(nodes[1].wait_final(id)["status"], "succeeded");
    }
    let woken = nodes.iter().map(wakeups).sum::<u64>() - before;
    assert!(woken <= 9, "{woken} wake-ups for 9 jobs");
}

#[test]
fn cancel_on_one_node_stops_a_job_running_on_another() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new();
    let nodes = fleet(dir.path(), &db, 2);
    let pids = dir.path().join("pids");
    let id = id_of(&nodes[0].submit(json!({
        "sh": format!("echo $$ >> {}; exec sleep 100", pids.display())
    })));
    wait_for("the job runs", || runner(&db, id).is_some());
    wait_for("its pid is written", || pids_in(&pids).len() == 1);
    let owner = runner(&db, id).unwrap();
    let other = nodes.iter().find(|n| n.child.id() != owner).unwrap();
    let r = other.post(&format!("/v1/jobs/{id}/cancel"), "");
    assert_eq!(r.status().as_u16(), 202);
    let job = other.wait_final(id);
    assert_eq!(job["status"], "cancelled", "{job}");
    wait_for("the job's process is gone", || pid_gone(pids_in(&pids)[0]));
    // Once ended, a cancel is refused, on any node.
    let r = nodes[2].post(&format!("/v1/jobs/{id}/cancel"), "");
    assert_eq!(r.status().as_u16(), 409, "an ended job");
}

#[test]
fn one_idempotency_key_posted_to_every_node_at_once_is_one_job() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new();
    let nodes = fleet(dir.path(), &db, 2);
    let ran = dir.path().join("ran");
    let body = json!({"sh": format!("echo once >> {}", ran.display())}).to_string();
    let ids: Vec<i64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let node = &nodes[i % 3];
                let body = body.clone();
                s.spawn(move || {
                    let r = node
                        .http
                        .post(format!("{}/v1/jobs", node.url))
                        .header("Idempotency-Key", "the-key")
                        .body(body)
                        .send()
                        .unwrap();
                    assert!(matches!(r.status().as_u16(), 200 | 201), "{}", r.status());
                    id_of(&r.json().unwrap())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ids.iter().all(|&i| i == ids[0]), "{ids:?}");
    assert_eq!(nodes[0].wait_final(ids[0])["status"], "succeeded");
    assert_eq!(db.query("SELECT count(*) FROM drover_jobs"), "1");
    assert_eq!(db.query("SELECT count(*) FROM drover_attempts"), "1");
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "once\n");
}

#[test]
fn a_bad_store_url_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = drover()
        .args(["serve", "--state-dir"])
        .arg(dir.path())
        .args(["--store", "mysql://u:secret@h/db"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("postgres://") && !err.contains("secret"),
        "{err}"
    );
}

#[test]
fn the_schema_is_made_once_and_a_newer_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new();
    let nodes = fleet(dir.path(), &db, 1);
    // Three nodes started at once: one made the schema, the others ran no
    // DDL (it would lock the tables of a running fleet).
    assert_eq!(
        db.query("SELECT string_agg(version::text, ',' ORDER BY version) FROM drover_schema"),
        "1,2,3"
    );
    drop(nodes);
    db.query("INSERT INTO drover_schema (version) VALUES (99)");
    let out = drover()
        .args(["serve", "--state-dir"])
        .arg(dir.path().join("late"))
        .args(["--store", &db.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("schema is version 99"), "{err}");
}

/// A TCP proxy to PostgreSQL that the test can cut (every connection
/// closed, new ones dropped) and restore: the network between a worker and
/// its database.
struct Proxy {
    port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    fn to(target: &str) -> Proxy {
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let open = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (c, o, target) = (cut.clone(), open.clone(), target.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if c.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                {
                    let mut open = o.lock().unwrap();
                    open.push(client.try_clone().unwrap());
                    open.push(server.try_clone().unwrap());
                }
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, cut, open }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

#[test]
fn a_worker_cut_off_from_its_database_kills_its_jobs_before_its_lease_ends_and_runs_them_again_after()
 {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new();
    // host:port of the database, and its URL through the proxy.
    let (head, tail) = db.url.rsplit_once('@').unwrap();
    let (host_port, name) = tail.split_once('/').unwrap();
    let proxy = Proxy::to(host_port);
    let url = format!("{head}@127.0.0.1:{}/{name}", proxy.port);
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "[serve]\nlease = \"4s\"\n").unwrap();
    let node = Server::start(
        &dir.path().join("state"),
        &["--store", &url, "--config", config.to_str().unwrap()],
        None,
    );
    let pids = dir.path().join("pids");
    let id = id_of(&node.submit(json!({
        "sh": format!(
            "echo $$ >> {}; if [ $DROVER_ATTEMPT = 1 ]; then sleep 30; fi; echo attempt $DROVER_ATTEMPT",
            pids.display()
        ),
        "retries": 1
    })));
    wait_for("the job runs", || pids_in(&pids).len() == 1);
    let first = pids_in(&pids)[0];
    proxy.cut();
    let cut_at = Instant::now();
    // Killed by the worker itself before its lease (4 s, renewed at most
    // 4/3 s before the cut) can have expired in the database.
    wait_for("the job is killed", || pid_gone(first));
    let killed_after = cut_at.elapsed();
    assert!(
        killed_after < std::time::Duration::from_secs(4),
        "killed {killed_after:?} after the cut: past the lease"
    );
    proxy.restore();
    // Back: the worker joins again, rescues its lost job, runs it.
    let job = node.wait_final(id);
    assert_eq!(job["status"], "succeeded", "{job}\n{}", node.log());
    assert_eq!(job["stdout"], "attempt 2\n", "{job}\n{}", node.log());
    assert_eq!(pids_in(&pids).len(), 2);
    assert_eq!(
        db.query(&format!(
            "SELECT string_agg(attempt || ':' || outcome, ',' ORDER BY attempt) FROM drover_attempts WHERE job = {id}"
        )),
        "1:lost,2:succeeded"
    );
}

/// GET of job `id`'s `stream` from `node` (with `follow`, until it ends).
fn output_of(node: &Server, id: i64, stream: &str, follow: bool) -> Vec<u8> {
    let r = node.get(&format!(
        "/v1/jobs/{id}/output?stream={stream}&follow={follow}"
    ));
    assert_eq!(r.status().as_u16(), 200);
    r.bytes().unwrap().to_vec()
}

#[test]
fn any_node_streams_and_follows_the_output_of_a_job_running_on_another_across_its_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new();
    let nodes = fleet(dir.path(), &db, 2);
    // Attempt 1: 2.7 MB (several rows of the output table), then a wait
    // long enough to read it all from another node while it runs; it
    // fails. Attempt 2: lines a while apart, the last with no newline.
    let id = id_of(&nodes[0].submit(json!({
        "sh": "if [ $DROVER_ATTEMPT = 1 ]; then seq 1 400000; echo to-err >&2; sleep 4; exit 3; fi; \
               for i in 0 1 2 3 4; do echo tick $i; sleep 0.2; done; printf 'no newline'",
        "retries": 1,
        "retry_delay": "100ms"
    })));
    let first: String = (1..=400_000).map(|i| format!("{i}\n")).collect();
    let all = format!("{first}tick 0\ntick 1\ntick 2\ntick 3\ntick 4\nno newline");
    // Followed from the start (queued, then running) by a node that does
    // not run it: everything, in order, ending when the job ends.
    wait_for("the job runs", || runner(&db, id).is_some());
    let owner = runner(&db, id).unwrap();
    let others: Vec<&Server> = nodes.iter().filter(|n| n.child.id() != owner).collect();
    let followed = std::thread::scope(|s| {
        let follower = s.spawn(|| output_of(others[0], id, "stdout", true));
        // While attempt 1 still runs, another node already has its output.
        wait_for("attempt 1's output reaches the other nodes", || {
            output_of(others[1], id, "stdout", false) == first.as_bytes()
        });
        let job = others[1].job(id);
        assert_eq!(job["status"], "running", "{job}");
        assert_eq!(job["attempts"], 1, "{job}");
        assert_eq!(output_of(others[1], id, "stderr", false), b"to-err\n");
        follower.join().unwrap()
    });
    let job = nodes[0].wait_final(id);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    assert_eq!(followed.len(), all.len());
    assert!(followed == all.as_bytes(), "the followed output differs");
    for node in &nodes {
        assert!(output_of(node, id, "stdout", false) == all.as_bytes());
        assert_eq!(output_of(node, id, "stderr", true), b"to-err\n");
    }
    // Stored once, and no worker keeps scratch files of it.
    assert_eq!(
        db.query(&format!(
            "SELECT sum(length(data)) FROM drover_output WHERE job = {id} AND stream = 1"
        )),
        all.len().to_string()
    );
    for n in 0..3 {
        let left: Vec<_> = std::fs::read_dir(dir.path().join(format!("state{n}/output")))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "state{n}: {left:?}");
    }
}

/// A worker whose drover kills itself (SIGKILL) at `point` (see
/// `DROVER_FAILPOINT`).
fn doomed_worker(dir: &Path, db: &TestDb, point: &str) -> Server {
    let config = dir.join("serve.toml");
    std::fs::write(&config, format!("[serve]\nlease = \"{LEASE}\"\n")).unwrap();
    Server::start_via(
        &["env", &format!("DROVER_FAILPOINT={point}")],
        &dir.join("doomed"),
        &["--store", &db.url, "--config", config.to_str().unwrap()],
        None,
    )
}

fn attempts_of(db: &TestDb, id: i64) -> String {
    db.query(&format!(
        "SELECT string_agg(attempt || ':' || outcome, ',' ORDER BY attempt) FROM drover_attempts WHERE job = {id}"
    ))
}

#[test]
fn a_worker_killed_after_its_claim_before_the_job_started_loses_it_to_another() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new();
    let doomed = doomed_worker(dir.path(), &db, "after-claim");
    let ran = dir.path().join("ran");
    let id = id_of(&doomed.submit(json!({
        "sh": format!("echo $DROVER_ATTEMPT >> {}", ran.display()),
        "retries": 1
    })));
    doomed.wait_exit();
    // Claimed, never started.
    assert_eq!(
        db.query(&format!(
            "SELECT status, attempt, pid IS NULL FROM drover_jobs WHERE id = {id}"
        )),
        "running|1|t"
    );
    assert!(!ran.exists());
    let other = worker(dir.path(), 1, &db, 2);
    let job = other.wait_final(id);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    assert_eq!(attempts_of(&db, id), "1:lost,2:succeeded");
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "2\n");
}

#[test]
fn a_worker_killed_after_its_job_exited_before_the_result_was_stored_loses_it_to_another() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new();
    let doomed = doomed_worker(dir.path(), &db, "before-result");
    let ran = dir.path().join("ran");
    let id = id_of(&doomed.submit(json!({
        "sh": format!("echo $DROVER_ATTEMPT >> {}; echo out $DROVER_ATTEMPT", ran.display()),
        "retries": 1
    })));
    doomed.wait_exit();
    // It ran, but its end was never stored: as far as the fleet knows it
    // is still running, until the lease runs out.
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "1\n");
    assert_eq!(
        db.query(&format!("SELECT status FROM drover_jobs WHERE id = {id}")),
        "running"
    );
    let other = worker(dir.path(), 1, &db, 2);
    let job = other.wait_final(id);
    // At least once: it ran again, and ended once, with attempt 2's result.
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    assert_eq!(job["stdout"], "out 2\n", "{job}");
    assert_eq!(attempts_of(&db, id), "1:lost,2:succeeded");
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "1\n2\n");
}

/// A pseudo-random number generator for the kills (xorshift), its seed
/// printed so that a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("DROVER_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("DROVER_TEST_SEED={seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn ten_thousand_jobs_through_three_workers_killed_at_random_each_end_once() {
    const JOBS: usize = 10_000;
    const KILLS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new();
    let mut nodes: Vec<Server> = fleet(dir.path(), &db, 8);
    let urls = std::sync::Mutex::new(nodes.iter().map(|n| n.url.clone()).collect::<Vec<_>>());
    let log = dir.path().join("ran");
    // 0 to 90 ms each, so that a kill finds jobs running.
    let body = json!({
        "sh": format!(
            "echo $DROVER_JOB_ID $DROVER_ATTEMPT >> {}; sleep 0.0$((DROVER_JOB_ID % 10))",
            log.display()
        ),
        "retries": 10
    })
    .to_string();
    let submitted = std::sync::atomic::AtomicBool::new(false);
    let mut rng = Rng::new();
    let mut kills = 0;
    std::thread::scope(|s| {
        // Submitted over 8 connections to whichever nodes are up, each job
        // with an idempotency key of its own: a POST cut off by a kill is
        // sent again, to another node, and is still one job.
        let submitters: Vec<_> = (0..8)
            .map(|t| {
                let (urls, body) = (&urls, &body);
                s.spawn(move || {
                    let http = reqwest::blocking::Client::builder()
                        .timeout(std::time::Duration::from_secs(10))
                        .build()
                        .unwrap();
                    for i in (t..JOBS).step_by(8) {
                        let deadline = Instant::now() + WAIT;
                        for attempt in 0.. {
                            let url = urls.lock().unwrap()[(i + attempt) % 3].clone();
                            let sent = http
                                .post(format!("{url}/v1/jobs"))
                                .header("Idempotency-Key", format!("job-{i}"))
                                .body(body.clone())
                                .send();
                            match sent.map(|r| r.status().as_u16()) {
                                Ok(200 | 201) => break,
                                Ok(503) | Err(_) => {}
                                Ok(code) => panic!("job {i}: {code}"),
                            }
                            assert!(Instant::now() < deadline, "job {i} never accepted");
                            std::thread::sleep(std::time::Duration::from_millis(20));
                        }
                    }
                })
            })
            .collect();
        // Meanwhile, and until the queue is empty: kill -9 a worker at
        // random every 0.3 to 1.5 s, and start it again.
        let left = || -> i64 {
            db.query("SELECT count(*) FROM drover_jobs WHERE status IN ('queued', 'running')")
                .parse()
                .unwrap()
        };
        let waiter = s.spawn(|| {
            for h in submitters {
                h.join().unwrap();
            }
            submitted.store(true, Ordering::SeqCst);
        });
        while kills < KILLS && (!submitted.load(Ordering::SeqCst) || left() > 0) {
            std::thread::sleep(std::time::Duration::from_millis(300 + rng.below(1200)));
            let n = rng.below(3) as usize;
            let fresh = worker(dir.path(), 10 + kills, &db, 8);
            urls.lock().unwrap()[n] = fresh.url.clone();
            std::mem::replace(&mut nodes[n], fresh).crash();
            kills += 1;
        }
        waiter.join().unwrap();
    });
    let deadline = Instant::now() + std::time::Duration::from_secs(300);
    let left = || -> i64 {
        db.query("SELECT count(*) FROM drover_jobs WHERE status IN ('queued', 'running')")
            .parse()
            .unwrap()
    };
    while left() > 0 {
        assert!(Instant::now() < deadline, "{} jobs never ended", left());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Every job once, ended once, succeeded, its last attempt the one
    // that did; no attempt left open.
    assert_eq!(
        db.query("SELECT status, count(*) FROM drover_jobs GROUP BY status"),
        format!("succeeded|{JOBS}")
    );
    assert_eq!(
        db.query(
            "SELECT count(*), count(DISTINCT job) FROM drover_attempts WHERE outcome = 'succeeded'"
        ),
        format!("{JOBS}|{JOBS}")
    );
    assert_eq!(
        db.query(
            "SELECT count(*) FROM drover_jobs j JOIN drover_attempts a ON a.job = j.id AND a.attempt = j.attempt
             WHERE a.outcome = 'succeeded'"
        ),
        JOBS.to_string()
    );
    assert_eq!(
        db.query("SELECT count(*) FROM drover_attempts WHERE outcome IS NULL"),
        "0"
    );
    // No (job, attempt) ran twice; every job ran.
    let mut seen = std::collections::HashSet::new();
    let mut jobs = std::collections::HashSet::new();
    for line in lines_of(&log) {
        assert!(seen.insert(line.clone()), "ran twice: job, attempt {line}");
        jobs.insert(line.split(' ').next().unwrap().to_string());
    }
    assert_eq!(jobs.len(), JOBS);
    let lost: i64 = db
        .query("SELECT count(*) FROM drover_attempts WHERE outcome = 'lost'")
        .parse()
        .unwrap();
    eprintln!("{kills} kills, {lost} attempts lost");
    assert!(
        kills >= 5 && lost > 0,
        "the kills missed: {kills} kills, {lost} lost"
    );
}

/// The value `f` gives, polled until it gives one (at most WAIT).
fn wait_until_value<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "never came");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn post_batch(node: &Server, file: &str) -> Value {
    let r = node
        .http
        .post(format!("{}/v1/batches", node.url))
        .header("content-type", "application/toml")
        .body(file.to_string())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    r.json().unwrap()
}

fn batch_report(node: &Server, id: i64) -> Value {
    let r = node.get(&format!("/v1/batches/{id}"));
    assert_eq!(r.status().as_u16(), 200);
    r.json().unwrap()
}

#[test]
fn a_batch_sent_to_one_node_runs_whole_on_one_worker_and_any_node_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new();
    let nodes = fleet(dir.path(), &db, 2);
    // Single jobs queued around it take other slots; the batch's pipe and
    // needs hold within one worker.
    let file = r#"
[[job]]
name = "make"
sh = "echo 3; echo 1; echo 2"

[[job]]
name = "sort"
cmd = ["sort"]
stdin = { from = "make" }

[[job]]
name = "after"
needs = ["sort"]
sh = "echo job $DROVER_JOB_ID attempt $DROVER_ATTEMPT"
"#;
    let singles: Vec<i64> = (0..4)
        .map(|_| id_of(&nodes[1].submit(json!({"sh": "sleep 0.2"}))))
        .collect();
    let answer = post_batch(&nodes[0], file);
    let batch = answer["batch"].as_i64().unwrap();
    let ids: Vec<i64> = answer["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{answer}");
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{answer}");
    let report = wait_until_value(|| {
        let r = batch_report(&nodes[2], batch);
        (r["status"] == "done").then_some(r)
    });
    assert_eq!(report["summary"]["succeeded"], 3, "{report}");
    let jobs = report["jobs"].as_array().unwrap();
    let by_name = |n: &str| jobs.iter().find(|j| j["name"] == n).unwrap().clone();
    assert_eq!(by_name("sort")["stdout"], "1\n2\n3\n", "{report}");
    assert_eq!(
        by_name("after")["stdout"],
        format!("job {} attempt 1\n", ids[2]),
        "{report}"
    );
    // Its output, from another node's output endpoint.
    assert_eq!(output_of(&nodes[1], ids[1], "stdout", false), b"1\n2\n3\n");
    // One worker ran all three, one attempt each.
    assert_eq!(
        db.query(&format!(
            "SELECT count(DISTINCT worker) || ':' || count(*) FROM drover_attempts
             WHERE job BETWEEN {} AND {} AND outcome = 'succeeded'",
            ids[0], ids[2]
        )),
        "1:3"
    );
    for id in singles {
        assert_eq!(nodes[2].wait_final(id)["status"], "succeeded");
    }
}

#[test]
fn a_batch_whose_worker_is_killed_ends_failed_and_is_not_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new();
    let mut nodes = fleet(dir.path(), &db, 2);
    let ran = dir.path().join("ran");
    let file = format!(
        r#"
[[job]]
name = "first"
sh = "echo first >> {ran}"

[[job]]
name = "long"
needs = ["first"]
sh = "echo long >> {ran}; sleep 30"
"#,
        ran = ran.display()
    );
    let answer = post_batch(&nodes[0], &file);
    let batch = answer["batch"].as_i64().unwrap();
    let long = answer["jobs"][1]["id"].as_i64().unwrap();
    wait_for("the long job runs", || {
        runner(&db, long).is_some()
            && std::fs::read_to_string(&ran).unwrap_or_default() == "first\nlong\n"
    });
    let victim = runner(&db, long).unwrap();
    let at = nodes.iter().position(|n| n.child.id() == victim).unwrap();
    nodes.remove(at).crash();
    let report = wait_until_value(|| {
        let r = batch_report(&nodes[0], batch);
        (r["status"] == "done").then_some(r)
    });
    let jobs = report["jobs"].as_array().unwrap();
    assert_eq!(jobs[0]["status"], "succeeded", "{report}");
    assert_eq!(jobs[1]["status"], "failed", "{report}");
    assert!(
        jobs[1]["error"]
            .as_str()
            .unwrap()
            .contains("a batch is not resumed"),
        "{report}"
    );
    // Not run again anywhere.
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "first\nlong\n");
}

#[test]
fn max_queued_counts_the_jobs_queued_across_the_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new();
    let config = dir.path().join("serve.toml");
    std::fs::write(
        &config,
        format!("[serve]\nlease = \"{LEASE}\"\nmax_queued = 4\n"),
    )
    .unwrap();
    let node = |n: usize| {
        Server::start(
            &dir.path().join(format!("state{n}")),
            &[
                "--store",
                &db.url,
                "--config",
                config.to_str().unwrap(),
                "-j",
                "1",
            ],
            None,
        )
    };
    let nodes = [node(0), node(1)];
    // Both workers busy; then four jobs wait, two sent to each node.
    let busy: Vec<i64> = (0..2)
        .map(|n| id_of(&nodes[n].submit(json!({"cmd": ["sleep", "30"]}))))
        .collect();
    wait_for("both workers run a job", || {
        busy.iter().all(|&id| runner(&db, id).is_some())
    });
    for n in [0, 0, 1, 1] {
        nodes[n].submit(json!({"cmd": ["true"]}));
    }
    // Each node soon counts the other's too (its count is at most 250 ms
    // old: until then it knows its own two), and says so on /metrics ...
    for node in &nodes {
        wait_for("the node counts the fleet's four", || {
            fleet_queued(node) == Some(4.0)
        });
    }
    // ... and refuses a fifth job, whichever node it is sent to.
    for node in &nodes {
        let r = node.post("/v1/jobs", json!({"cmd": ["true"]}).to_string());
        assert_eq!(r.status().as_u16(), 429);
        let refused = r.text().unwrap();
        assert!(
            refused.contains("4 jobs are waiting (max_queued"),
            "{refused}"
        );
    }
    assert_eq!(
        db.query("SELECT count(*) FROM drover_jobs WHERE status = 'queued'"),
        "4"
    );
}

/// The gauge `drover_fleet_jobs_queued` of a node's /metrics: the fleet's
/// queued jobs as it counts them for max_queued.
fn fleet_queued(node: &Server) -> Option<f64> {
    let metrics = node.get("/metrics").text().unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("drover_fleet_jobs_queued "))
        .map(|n| n.trim().parse().unwrap())
}

#[test]
fn stdin_sent_to_any_node_reaches_the_job_on_its_worker_in_order_and_again_after_a_lost_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new();
    let mut nodes = fleet(dir.path(), &db, 2);
    let send = |node: &Server, id: i64, bytes: &str, eof: bool| {
        node.http
            .post(format!("{}/v1/jobs/{id}/stdin?eof={eof}", node.url))
            .body(bytes.to_string())
            .send()
            .unwrap()
    };
    // cat, line by line into a file: what it has read so far.
    let seen = dir.path().join("seen");
    let id = id_of(&nodes[0].submit(json!({
        "sh": format!("while IFS= read -r l; do echo \"$DROVER_ATTEMPT $l\" >> {}; done; echo done $DROVER_ATTEMPT", seen.display()),
        "stdin": {"stream": true},
        "retries": 1
    })));
    wait_for("the job runs", || runner(&db, id).is_some());
    for (n, line) in ["one\n", "two\n", "three\n"].iter().enumerate() {
        let r = send(&nodes[n % 3], id, line, false);
        assert_eq!(r.status().as_u16(), 202, "{}", r.text().unwrap());
    }
    wait_for("the job read three lines", || {
        std::fs::read_to_string(&seen).unwrap_or_default() == "1 one\n1 two\n1 three\n"
    });
    // Its worker is killed: the next attempt, elsewhere, reads it all again.
    let victim = runner(&db, id).unwrap();
    let at = nodes.iter().position(|n| n.child.id() == victim).unwrap();
    nodes.remove(at).crash();
    wait_for("attempt 2 read the stdin sent so far", || {
        std::fs::read_to_string(&seen)
            .unwrap_or_default()
            .ends_with("2 one\n2 two\n2 three\n")
    });
    let r = send(&nodes[0], id, "four\n", true);
    assert_eq!(r.status().as_u16(), 202, "{}", r.text().unwrap());
    let job = nodes[1].wait_final(id);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["stdout"], "done 2\n", "{job}");
    assert!(
        std::fs::read_to_string(&seen)
            .unwrap()
            .ends_with("2 three\n2 four\n")
    );
    // Closed, then ended: 409.
    assert_eq!(send(&nodes[1], id, "five\n", false).status().as_u16(), 409);
    // A job without a streaming stdin: 409.
    let plain = id_of(&nodes[0].submit(json!({"cmd": ["sleep", "30"]})));
    let r = send(&nodes[1], plain, "x", false);
    assert_eq!(r.status().as_u16(), 409);
    assert!(r.text().unwrap().contains("no streaming stdin"));
}

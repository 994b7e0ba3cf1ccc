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

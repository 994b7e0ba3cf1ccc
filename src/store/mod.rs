//! `drover serve`'s store: every job it accepted and what became of it, in
//! SQLite (WAL, `synchronous = FULL`), so that a 2xx means the job is on
//! disk and a restart finds every job where it was.
//!
//! One writer task owns the one connection that writes, and commits in
//! groups: every write waiting when it looks goes into one transaction (a
//! savepoint each, so that one refused write spoils none of the others),
//! and each waiter hears back only once that transaction is on disk. With
//! FULL an fsync costs milliseconds, and a commit a write would give 2.6k
//! inserts/s on this project's VM; a group commit, many times that. A
//! group of jobs' starts and ends alone commits without an fsync (see
//! `at_once`). Reads go through a pool of their own connections and never
//! wait for a write.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection, Row};
use tokio::sync::{mpsc, oneshot};

pub mod pg;
pub use pg::PgStore;

/// The store of one server (SQLite, `drover.db` in its state folder) or
/// of a fleet (PostgreSQL, shared by every worker).
#[derive(Clone)]
pub enum Store {
    Local(SqliteStore),
    Fleet(std::sync::Arc<PgStore>),
}

impl Store {
    /// The fleet's store, if this is one.
    pub fn fleet(&self) -> Option<&std::sync::Arc<PgStore>> {
        match self {
            Store::Local(_) => None,
            Store::Fleet(pg) => Some(pg),
        }
    }

    pub async fn insert(&self, jobs: Vec<NewJob>) -> Result<Vec<Inserted>, StoreError> {
        match self {
            Store::Local(s) => s.insert(jobs).await,
            Store::Fleet(pg) => pg.insert(jobs).await,
        }
    }

    pub async fn get(&self, id: i64) -> Result<Option<JobRow>, StoreError> {
        match self {
            Store::Local(s) => s.get(id).await,
            Store::Fleet(pg) => pg.get(id).await,
        }
    }

    pub async fn list(
        &self,
        status: Option<&str>,
        batch: Option<i64>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<JobRow>, StoreError> {
        match self {
            Store::Local(s) => s.list(status, batch, before, limit).await,
            Store::Fleet(pg) => pg.list(status, batch, before, limit).await,
        }
    }

    pub async fn by_key(&self, key: &str) -> Result<Option<JobRow>, StoreError> {
        match self {
            Store::Local(s) => s.by_key(key).await,
            Store::Fleet(pg) => pg.by_key(key).await,
        }
    }

    pub async fn batch(&self, batch: i64) -> Result<Vec<JobRow>, StoreError> {
        match self {
            Store::Local(s) => s.batch(batch).await,
            Store::Fleet(pg) => pg.batch(batch).await,
        }
    }

    pub async fn expire(&self, before: i64) -> Result<Vec<i64>, StoreError> {
        match self {
            Store::Local(s) => s.expire(before).await,
            Store::Fleet(pg) => pg.expire(before).await,
        }
    }

    pub async fn flush(&self) -> Result<(), StoreError> {
        match self {
            Store::Local(s) => s.flush().await,
            Store::Fleet(_) => Ok(()),
        }
    }

    /// The job ended. `Ok(false)`: a fleet's worker that had lost the job
    /// (see `pg`): nothing was written.
    pub async fn finished(
        &self,
        id: i64,
        status: &str,
        result: String,
        at: i64,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Local(s) => s.finished(id, status, result, at).await.map(|()| true),
            Store::Fleet(pg) => pg.finished(id, status, &result, at, &[]).await,
        }
    }
}

/// The schema; each statement runs at open (all are idempotent).
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS batches (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        submitted_at INTEGER NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        batch INTEGER NOT NULL,
        name TEXT NOT NULL,
        def TEXT NOT NULL,
        status TEXT NOT NULL,
        submitted_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
        pid INTEGER,
        pid_start INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        result TEXT,
        idem_key TEXT UNIQUE,
        idem_body BLOB,
        kind TEXT NOT NULL DEFAULT 'job'
    )",
    "CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, id)",
    "CREATE INDEX IF NOT EXISTS jobs_by_batch ON jobs (batch, id)",
    "CREATE INDEX IF NOT EXISTS jobs_by_end ON jobs (finished_at) WHERE finished_at IS NOT NULL",
];

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub id: i64,
    pub batch: i64,
    pub name: String,
    /// The job as submitted: a `JobDef` as JSON.
    pub def: String,
    /// `queued`, `running`, or a final status of the report.
    pub status: String,
    /// Unix milliseconds.
    pub submitted_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub pid: Option<i64>,
    /// When the job's process started, in clock ticks since boot (field 22
    /// of /proc/PID/stat): tells its pid from a reused one.
    pub pid_start: Option<i64>,
    pub attempts: i64,
    /// The report's fields of the ended job, as JSON.
    pub result: Option<String>,
    /// `job` (POST /v1/jobs: runs on its own) or `batch` (one of a job
    /// file's jobs, POST /v1/batches: runs with the others).
    pub kind: String,
}

impl JobRow {
    fn from_row(row: &SqliteRow) -> Result<JobRow, sqlx::Error> {
        Ok(JobRow {
            id: row.try_get("id")?,
            batch: row.try_get("batch")?,
            name: row.try_get("name")?,
            def: row.try_get("def")?,
            status: row.try_get("status")?,
            submitted_at: row.try_get("submitted_at")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
            pid: row.try_get("pid")?,
            pid_start: row.try_get("pid_start")?,
            attempts: row.try_get("attempts")?,
            result: row.try_get("result")?,
            kind: row.try_get("kind")?,
        })
    }

    pub fn is_final(&self) -> bool {
        !matches!(self.status.as_str(), "queued" | "running")
    }
}

const COLUMNS: &str = "id, batch, name, def, status, submitted_at, started_at, finished_at, pid, pid_start, attempts, result, kind";

/// A job to store.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Its name; empty: `job-ID`.
    pub name: String,
    /// The job as submitted, as JSON; `"name": ""` in it is filled in too.
    pub def: serde_json::Value,
    /// `Idempotency-Key` and the body it came with.
    pub idempotency: Option<(String, Vec<u8>)>,
    /// See [`JobRow::kind`].
    pub kind: &'static str,
    /// Its retries (the fleet's rescuer counts a lost worker as one).
    pub retries: u32,
}

/// What storing a job with an idempotency key found.
#[derive(Debug, Clone, PartialEq)]
pub enum Inserted {
    /// Stored now.
    New(JobRow),
    /// The key was used before with the same body: that job.
    Existing(JobRow),
    /// The key was used before with another body.
    Conflict,
}

/// Store errors are the server's (500), but for a refused write.
#[derive(Debug)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError(format!("the store failed: {e}"))
    }
}

/// One write, and whom to tell once it is on disk.
enum Write {
    Insert(
        Vec<NewJob>,
        oneshot::Sender<Result<Vec<Inserted>, StoreError>>,
    ),
    /// Its process started (`pid`), or is about to (`None`: a claim, on
    /// disk before the process starts).
    Started {
        id: i64,
        pid: Option<i64>,
        pid_start: Option<i64>,
        at: i64,
        attempt: i64,
        done: Option<oneshot::Sender<Result<(), StoreError>>>,
    },
    Finished {
        id: i64,
        status: String,
        result: String,
        at: i64,
        done: Option<oneshot::Sender<Result<(), StoreError>>>,
    },
    /// Back to `queued` (a job that ran when drover stopped, to run again).
    Requeue(i64, oneshot::Sender<Result<(), StoreError>>),
    /// Deletes ended jobs that finished before this time; answers with
    /// their ids.
    Expire(i64, oneshot::Sender<Result<Vec<i64>, StoreError>>),
    /// Answers once everything before it is on disk.
    Flush(oneshot::Sender<Result<(), StoreError>>),
}

#[derive(Clone)]
pub struct SqliteStore {
    reads: SqlitePool,
    writes: mpsc::Sender<Write>,
}

/// The most writes committed in one transaction.
const GROUP: usize = 512;

impl SqliteStore {
    /// Opens (or makes) the store `drover.db` in `dir`.
    pub async fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        let path = dir.join("drover.db");
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(|e| StoreError(e.to_string()))?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let mut writer = SqliteConnection::connect_with(&options)
            .await
            .map_err(|e| StoreError(format!("cannot open {}: {e}", path.display())))?;
        for statement in SCHEMA {
            sqlx::query(statement).execute(&mut writer).await?;
        }
        let reads = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await
            .map_err(|e| StoreError(format!("cannot open {}: {e}", path.display())))?;
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(write_loop(writer, rx));
        Ok(SqliteStore { reads, writes: tx })
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Write,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writes
            .send(make(tx))
            .await
            .map_err(|_| StoreError("the store's writer is gone".into()))?;
        rx.await
            .map_err(|_| StoreError("the store's writer is gone".into()))?
    }

    /// Stores jobs as one batch; each answer once it is on disk.
    pub async fn insert(&self, jobs: Vec<NewJob>) -> Result<Vec<Inserted>, StoreError> {
        self.ask(|tx| Write::Insert(jobs, tx)).await
    }

    /// The job's process started (attempt `attempt`). Not waited for past
    /// its queueing: ordered with every other write, on disk with the next
    /// commit.
    pub async fn started(&self, id: i64, pid: u32, pid_start: Option<i64>, at: i64, attempt: u32) {
        let _ = self
            .writes
            .send(Write::Started {
                id,
                pid: Some(i64::from(pid)),
                pid_start,
                at,
                attempt: i64::from(attempt),
                done: None,
            })
            .await;
    }

    /// Job `id` is about to start its attempt `attempt`: answers once that
    /// is on disk, so that a job started once is never taken for one that
    /// never ran (after a crash, it counts as having run).
    pub async fn claim(&self, id: i64, at: i64, attempt: u32) -> Result<(), StoreError> {
        self.ask(|tx| Write::Started {
            id,
            pid: None,
            pid_start: None,
            at,
            attempt: i64::from(attempt),
            done: Some(tx),
        })
        .await
    }

    /// The job ended; answers once that is on disk.
    pub async fn finished(
        &self,
        id: i64,
        status: &str,
        result: String,
        at: i64,
    ) -> Result<(), StoreError> {
        self.ask(|tx| Write::Finished {
            id,
            status: status.to_string(),
            result,
            at,
            done: Some(tx),
        })
        .await
    }

    /// Puts a job that was running back in the queue.
    pub async fn requeue(&self, id: i64) -> Result<(), StoreError> {
        self.ask(|tx| Write::Requeue(id, tx)).await
    }

    /// Deletes the jobs that ended before `before` (unix ms); their ids.
    pub async fn expire(&self, before: i64) -> Result<Vec<i64>, StoreError> {
        self.ask(|tx| Write::Expire(before, tx)).await
    }

    /// Waits until every write sent so far is on disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.ask(Write::Flush).await
    }

    pub async fn get(&self, id: i64) -> Result<Option<JobRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.reads)
            .await?;
        Ok(row.as_ref().map(JobRow::from_row).transpose()?)
    }

    /// A page of jobs, newest first: those with an id below `before`, of
    /// `status` and `batch` where given.
    pub async fn list(
        &self,
        status: Option<&str>,
        batch: Option<i64>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<JobRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM jobs
             WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR batch = ?2) AND (?3 IS NULL OR id < ?3)
             ORDER BY id DESC LIMIT ?4"
        ))
        .bind(status)
        .bind(batch)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.reads)
        .await?;
        Ok(rows
            .iter()
            .map(JobRow::from_row)
            .collect::<Result<_, _>>()?)
    }

    /// The job stored under an `Idempotency-Key`.
    pub async fn by_key(&self, key: &str) -> Result<Option<JobRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM jobs WHERE idem_key = ?"))
            .bind(key)
            .fetch_optional(&self.reads)
            .await?;
        Ok(row.as_ref().map(JobRow::from_row).transpose()?)
    }

    /// Every job of `batch`, in id order.
    pub async fn batch(&self, batch: i64) -> Result<Vec<JobRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE batch = ? ORDER BY id"
        ))
        .bind(batch)
        .fetch_all(&self.reads)
        .await?;
        Ok(rows
            .iter()
            .map(JobRow::from_row)
            .collect::<Result<_, _>>()?)
    }

    /// The jobs not ended (queued or running), in id order: what a restart
    /// picks up.
    pub async fn unfinished(&self) -> Result<Vec<JobRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE status IN ('queued', 'running') ORDER BY id"
        ))
        .fetch_all(&self.reads)
        .await?;
        Ok(rows
            .iter()
            .map(JobRow::from_row)
            .collect::<Result<_, _>>()?)
    }
}

/// The next ids to give, owned by the writer: ids are chosen before the
/// insert, so a job's name (`job-ID`) goes in with its row and a group of
/// inserts is one statement. Read again after a failed commit.
struct Ids {
    job: i64,
    batch: i64,
}

impl Ids {
    async fn read(conn: &mut SqliteConnection) -> Result<Ids, sqlx::Error> {
        // AUTOINCREMENT keeps the largest id ever given in sqlite_sequence:
        // a deleted job's id is never given again.
        let last = |table: &'static str| {
            format!(
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = '{table}'), 0),
                            coalesce((SELECT max(id) FROM {table}), 0))"
            )
        };
        let job: i64 = sqlx::query_scalar(&last("jobs"))
            .fetch_one(&mut *conn)
            .await?;
        let batch: i64 = sqlx::query_scalar(&last("batches"))
            .fetch_one(&mut *conn)
            .await?;
        Ok(Ids {
            job: job + 1,
            batch: batch + 1,
        })
    }
}

/// The writer: waits for a write, takes every other one waiting (up to
/// [`GROUP`]), commits them in one transaction, then answers them all.
async fn write_loop(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Write>) {
    let mut group: Vec<Write> = Vec::with_capacity(GROUP);
    let mut ids: Option<Ids> = None;
    while let Some(first) = rx.recv().await {
        group.push(first);
        while group.len() < GROUP {
            match rx.try_recv() {
                Ok(w) => group.push(w),
                Err(_) => break,
            }
        }
        let began = std::time::Instant::now();
        let outcome = match &mut ids {
            Some(ids) => commit(&mut conn, ids, &mut group).await,
            None => match Ids::read(&mut conn).await {
                Ok(read) => commit(&mut conn, ids.insert(read), &mut group).await,
                Err(e) => {
                    let e = format!("the store failed: {e}");
                    tracing::error!("{e}");
                    group.iter().map(|w| Answer::failed(w, &e)).collect()
                }
            },
        };
        tracing::trace!(writes = group.len(), took = ?began.elapsed(), "committed");
        // A failed commit took back the ids it gave: read them again.
        if outcome.iter().any(Answer::is_err) {
            ids = None;
        }
        for (write, answer) in group.drain(..).zip(outcome) {
            answer.send(write);
        }
    }
}

/// The answer to one write, to be sent once its transaction is on disk.
enum Answer {
    Inserted(Result<Vec<Inserted>, StoreError>),
    Done(Result<(), StoreError>),
    Expired(Result<Vec<i64>, StoreError>),
}

impl Answer {
    fn send(self, write: Write) {
        match (write, self) {
            (Write::Insert(_, tx), Answer::Inserted(r)) => {
                let _ = tx.send(r);
            }
            (Write::Expire(_, tx), Answer::Expired(r)) => {
                let _ = tx.send(r);
            }
            (
                Write::Started { done: Some(tx), .. }
                | Write::Finished { done: Some(tx), .. }
                | Write::Requeue(_, tx)
                | Write::Flush(tx),
                Answer::Done(r),
            ) => {
                let _ = tx.send(r);
            }
            _ => {}
        }
    }

    fn is_err(&self) -> bool {
        match self {
            Answer::Inserted(r) => r.is_err(),
            Answer::Done(r) => r.is_err(),
            Answer::Expired(r) => r.is_err(),
        }
    }

    /// The same answer for every write of a group whose commit failed.
    fn failed(write: &Write, e: &str) -> Answer {
        let e = || StoreError(e.to_string());
        match write {
            Write::Insert(..) => Answer::Inserted(Err(e())),
            Write::Expire(..) => Answer::Expired(Err(e())),
            _ => Answer::Done(Err(e())),
        }
    }
}

/// Applies `group` in one transaction; the answers, in order, valid once
/// this returns. A group of plain writes (new jobs without an idempotency
/// key, starts, ends) goes to SQLite as one script: a statement a kind of
/// write, whatever their number. The writer's statements each wait for
/// SQLite's own thread, and on a machine busy starting jobs every such wait
/// is a trip through the scheduler: a script is one. Any other group, or
/// one whose script is refused, goes write by write, each in a savepoint
/// of its own, so that one refused write spoils none of the others.
async fn commit(conn: &mut SqliteConnection, ids: &mut Ids, group: &mut [Write]) -> Vec<Answer> {
    let plain = group.iter().all(|w| match w {
        Write::Insert(jobs, _) => jobs.iter().all(|j| j.idempotency.is_none()),
        Write::Started { .. } | Write::Finished { .. } => true,
        _ => false,
    });
    if plain {
        let saved = (ids.job, ids.batch);
        match at_once(conn, ids, group).await {
            Ok(answers) => return answers,
            Err(e) => {
                tracing::debug!("a group's writes go one by one: {e}");
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                (ids.job, ids.batch) = saved;
            }
        }
    }
    one_by_one(conn, ids, group).await
}

/// The script of [`at_once`]. Its one parameter is a JSON object: `now`,
/// the time; `batches`, new batches' ids; `jobs`, new jobs (`[id, batch,
/// name, def, kind]`); `starts` (`[id, pid, pid_start, at, attempt]`);
/// `ends` (`[id, status, result, at]`). New jobs come first, then starts (a
/// job is stored before it can start, so no group holds both), then ends (a
/// job's start is sent before its end). A job retried within one group
/// starts more than once: its first start time, its last pid and attempt.
///
/// One parameter, ?1, in every statement: sqlx 0.8 binds a statement's
/// numbered parameters wrongly when it skips a number (`?4` alone leaves
/// `?5` of the next statement unbound, NULL).
const AT_ONCE: &str = "PRAGMA synchronous = FULL;
BEGIN IMMEDIATE;
INSERT INTO batches (id, submitted_at) SELECT value, ?1->>'now' FROM json_each(?1, '$.batches');
INSERT INTO jobs (id, batch, name, def, status, submitted_at, kind)
    SELECT value->>0, value->>1, value->>2, value->>3, 'queued', ?1->>'now', value->>4
    FROM json_each(?1, '$.jobs');
UPDATE jobs SET status = 'running',
        pid = CASE WHEN s.attempt >= jobs.attempts THEN s.pid ELSE jobs.pid END,
        pid_start = CASE WHEN s.attempt >= jobs.attempts THEN s.pid_start ELSE jobs.pid_start END,
        started_at = coalesce(jobs.started_at, s.at),
        attempts = max(jobs.attempts, s.attempt)
    FROM (SELECT value->>0 AS id, value->>1 AS pid, value->>2 AS pid_start,
                 value->>4 AS attempt,
                 min(value->>3) OVER (PARTITION BY value->>0) AS at,
                 row_number() OVER (PARTITION BY value->>0 ORDER BY key DESC) AS last
          FROM json_each(?1, '$.starts')) AS s
    WHERE jobs.id = s.id AND s.last = 1 AND jobs.status IN ('queued', 'running');
UPDATE jobs SET status = s.status, result = s.result, finished_at = s.at,
        attempts = max(jobs.attempts, coalesce(json_extract(s.result, '$.attempts'), 0))
    FROM (SELECT value->>0 AS id, value->>1 AS status, value->>2 AS result,
                 value->>3 AS at
          FROM json_each(?1, '$.ends')) AS s
    WHERE jobs.id = s.id;
COMMIT;";

/// [`AT_ONCE`] for a group of starts and ends alone: see [`at_once`].
static AT_ONCE_NO_SYNC: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| AT_ONCE.replace("synchronous = FULL", "synchronous = NORMAL"));

/// A group of plain writes (see [`commit`]) as one script, [`AT_ONCE`].
async fn at_once(
    conn: &mut SqliteConnection,
    ids: &mut Ids,
    group: &[Write],
) -> Result<Vec<Answer>, StoreError> {
    use serde_json::{Value, json};
    let now = now_ms();
    let mut made: Vec<Option<Vec<JobRow>>> = Vec::with_capacity(group.len());
    let (mut batches, mut jobs, mut starts, mut ends) = (vec![], vec![], vec![], vec![]);
    for write in group {
        match write {
            Write::Insert(new, _) => {
                let (batch, rows) = new_rows(ids, new, now);
                batches.push(Value::from(batch));
                jobs.extend(
                    rows.iter()
                        .map(|r| json!([r.id, r.batch, r.name, r.def, r.kind])),
                );
                made.push(Some(rows));
                continue;
            }
            Write::Started {
                id,
                pid,
                pid_start,
                at,
                attempt,
                ..
            } => starts.push(json!([id, pid, pid_start, at, attempt])),
            Write::Finished {
                id,
                status,
                result,
                at,
                ..
            } => ends.push(json!([id, status, result, at])),
            _ => return Err(StoreError("not a plain write".into())),
        }
        made.push(None);
    }
    // One script, always the same text: SQLite prepares it once (sqlx keeps
    // it); the writes come as one JSON object of arrays (see AT_ONCE).
    let data =
        json!({"now": now, "batches": batches, "jobs": jobs, "starts": starts, "ends": ends});
    // New jobs (a 201 waits for them) and claims (a job about to start
    // counts as having run) are synced. A group of pids and ends alone
    // commits without an fsync (WAL, `synchronous = NORMAL`): safe from a
    // crash of drover, made durable by the next synced commit (FULL syncs
    // the whole log). A power loss may forget the last of them: those jobs
    // are found claimed, as jobs that ran when drover stopped (see
    // `recover`), never as jobs that did not run.
    let claims = group
        .iter()
        .any(|w| matches!(w, Write::Started { pid: None, .. }));
    let script = match made.iter().all(Option::is_none) && !claims {
        true => &*AT_ONCE_NO_SYNC,
        false => AT_ONCE,
    };
    sqlx::query(script)
        .bind(data.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(made
        .into_iter()
        .map(|rows| match rows {
            Some(rows) => Answer::Inserted(Ok(rows.into_iter().map(Inserted::New).collect())),
            None => Answer::Done(Ok(())),
        })
        .collect())
}

/// Applies `group` write by write, each in a savepoint of its own.
async fn one_by_one(
    conn: &mut SqliteConnection,
    ids: &mut Ids,
    group: &mut [Write],
) -> Vec<Answer> {
    let mut answers = Vec::with_capacity(group.len());
    let begin = sqlx::query("PRAGMA synchronous = FULL; BEGIN IMMEDIATE")
        .execute(&mut *conn)
        .await;
    if let Err(e) = begin {
        let e = format!("the store failed: {e}");
        tracing::error!("{e}");
        return group.iter().map(|w| Answer::failed(w, &e)).collect();
    }
    for write in group.iter_mut() {
        let _ = sqlx::query("SAVEPOINT w").execute(&mut *conn).await;
        let saved = (ids.job, ids.batch);
        let answer = apply(conn, ids, write).await;
        if answer.is_err() {
            let _ = sqlx::query("ROLLBACK TO w").execute(&mut *conn).await;
            (ids.job, ids.batch) = saved;
        }
        let _ = sqlx::query("RELEASE w").execute(&mut *conn).await;
        answers.push(answer);
    }
    if let Err(e) = sqlx::query("COMMIT").execute(&mut *conn).await {
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        let e = format!("the store could not commit: {e}");
        tracing::error!("{e}");
        return group.iter().map(|w| Answer::failed(w, &e)).collect();
    }
    answers
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The rows `jobs` will be, with the ids they take from `ids`, as one
/// batch (its id first).
fn new_rows(ids: &mut Ids, jobs: &[NewJob], now: i64) -> (i64, Vec<JobRow>) {
    let batch = ids.batch;
    ids.batch += 1;
    let rows = jobs
        .iter()
        .map(|job| {
            let id = ids.job;
            ids.job += 1;
            let name = match job.name.is_empty() {
                true => format!("job-{id}"),
                false => job.name.clone(),
            };
            let mut def = job.def.clone();
            if let Some(map) = def.as_object_mut() {
                map.insert("name".into(), serde_json::Value::String(name.clone()));
            }
            JobRow {
                id,
                batch,
                name,
                def: def.to_string(),
                status: "queued".into(),
                submitted_at: now,
                started_at: None,
                finished_at: None,
                pid: None,
                pid_start: None,
                attempts: 0,
                result: None,
                kind: job.kind.to_string(),
            }
        })
        .collect();
    (batch, rows)
}

async fn apply(conn: &mut SqliteConnection, ids: &mut Ids, write: &mut Write) -> Answer {
    match write {
        Write::Insert(jobs, _) => Answer::Inserted(insert(conn, ids, std::mem::take(jobs)).await),
        Write::Started {
            id,
            pid,
            pid_start,
            at,
            attempt,
            ..
        } => Answer::Done(
            sqlx::query(
                "UPDATE jobs SET status = 'running',
                        pid = CASE WHEN ?5 >= attempts THEN ?1 ELSE pid END,
                        pid_start = CASE WHEN ?5 >= attempts THEN ?2 ELSE pid_start END,
                        started_at = coalesce(started_at, ?3), attempts = max(attempts, ?5)
                 WHERE id = ?4 AND status IN ('queued', 'running')",
            )
            .bind(*pid)
            .bind(*pid_start)
            .bind(*at)
            .bind(*id)
            .bind(*attempt)
            .execute(&mut *conn)
            .await
            .map(drop)
            .map_err(StoreError::from),
        ),
        Write::Finished {
            id,
            status,
            result,
            at,
            ..
        } => Answer::Done(
            sqlx::query(
                "UPDATE jobs SET status = ?, result = ?, finished_at = ?, attempts = max(attempts, coalesce(json_extract(?, '$.attempts'), 0)) WHERE id = ?",
            )
            .bind(status.as_str())
            .bind(result.as_str())
            .bind(*at)
            .bind(result.as_str())
            .bind(*id)
            .execute(&mut *conn)
            .await
            .map(drop)
            .map_err(StoreError::from),
        ),
        Write::Requeue(id, _) => Answer::Done(
            sqlx::query("UPDATE jobs SET status = 'queued', pid = NULL, pid_start = NULL WHERE id = ? AND status = 'running'")
                .bind(*id)
                .execute(&mut *conn)
                .await
                .map(drop)
                .map_err(StoreError::from),
        ),
        Write::Expire(before, _) => Answer::Expired(
            sqlx::query_scalar::<_, i64>(
                "DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ? AND status NOT IN ('queued', 'running') RETURNING id",
            )
            .bind(*before)
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::from),
        ),
        Write::Flush(_) => Answer::Done(Ok(())),
    }
}

/// Stores one write's jobs, as one batch, those with an idempotency key
/// checked against the keys stored.
async fn insert(
    conn: &mut SqliteConnection,
    ids: &mut Ids,
    jobs: Vec<NewJob>,
) -> Result<Vec<Inserted>, StoreError> {
    let now = now_ms();
    let mut out = Vec::with_capacity(jobs.len());
    let mut batch: Option<i64> = None;
    for job in jobs {
        if let Some((key, body)) = &job.idempotency {
            let found = sqlx::query(&format!(
                "SELECT {COLUMNS}, idem_body FROM jobs WHERE idem_key = ?"
            ))
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(row) = found {
                let stored: Vec<u8> = row.try_get("idem_body")?;
                out.push(match stored == *body {
                    true => Inserted::Existing(JobRow::from_row(&row)?),
                    false => Inserted::Conflict,
                });
                continue;
            }
        }
        let batch_id = match batch {
            Some(b) => b,
            None => {
                let b = ids.batch;
                sqlx::query("INSERT INTO batches (id, submitted_at) VALUES (?, ?)")
                    .bind(b)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                ids.batch += 1;
                batch = Some(b);
                b
            }
        };
        let (key, body) = job.idempotency.clone().unzip();
        let (_, mut rows) = new_rows(
            &mut Ids {
                job: ids.job,
                batch: batch_id,
            },
            std::slice::from_ref(&job),
            now,
        );
        let row = rows.pop().ok_or_else(|| StoreError("no row made".into()))?;
        sqlx::query(
            "INSERT INTO jobs (id, batch, name, def, status, submitted_at, idem_key, idem_body, kind)
             VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
        )
        .bind(row.id)
        .bind(row.batch)
        .bind(&row.name)
        .bind(&row.def)
        .bind(now)
        .bind(key)
        .bind(body)
        .bind(&row.kind)
        .execute(&mut *conn)
        .await?;
        ids.job += 1;
        out.push(Inserted::New(row));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str) -> NewJob {
        NewJob {
            name: name.into(),
            def: serde_json::json!({"name": name, "cmd": ["true"]}),
            idempotency: None,
            kind: "job",
            retries: 0,
        }
    }

    #[tokio::test]
    async fn jobs_go_in_and_come_back_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let got = store.insert(vec![job("a"), job("")]).await.unwrap();
        let [Inserted::New(a), Inserted::New(b)] = &got[..] else {
            panic!("{got:?}")
        };
        assert_eq!(a.batch, b.batch, "one insert, one batch");
        assert_eq!(
            b.name,
            format!("job-{}", b.id),
            "a nameless job is named by its id"
        );
        assert!(b.def.contains(&format!("\"job-{}\"", b.id)), "{}", b.def);
        store.started(a.id, 4242, Some(17), 5, 1).await;
        store
            .finished(a.id, "succeeded", "{\"attempts\":1}".into(), 9)
            .await
            .unwrap();
        drop(store);

        let store = SqliteStore::open(dir.path()).await.unwrap();
        let a = store.get(a.id).await.unwrap().unwrap();
        assert_eq!(a.status, "succeeded");
        assert_eq!(
            (a.pid, a.pid_start, a.started_at),
            (Some(4242), Some(17), Some(5))
        );
        assert_eq!((a.finished_at, a.attempts), (Some(9), 1));
        let open: Vec<i64> = store
            .unfinished()
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(open, vec![b.id]);
        let page = store.list(None, None, None, 10).await.unwrap();
        assert_eq!(
            page.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![b.id, a.id]
        );
        let page = store.list(None, None, Some(b.id), 10).await.unwrap();
        assert_eq!(page.iter().map(|r| r.id).collect::<Vec<_>>(), vec![a.id]);
        let queued = store.list(Some("queued"), None, None, 10).await.unwrap();
        assert_eq!(queued.len(), 1);
        assert_eq!(store.expire(10).await.unwrap(), vec![a.id]);
        assert!(store.get(a.id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn an_idempotency_key_gives_the_same_job_or_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let keyed = |body: &str| NewJob {
            idempotency: Some(("k1".into(), body.as_bytes().to_vec())),
            ..job("a")
        };
        // Twenty at once, as concurrent requests would: one job.
        let tries: Vec<_> = (0..20)
            .map(|_| {
                let store = store.clone();
                let job = keyed("body");
                tokio::spawn(async move { store.insert(vec![job]).await.unwrap() })
            })
            .collect();
        let mut ids = Vec::new();
        let mut new = 0;
        for t in tries {
            match t.await.unwrap().pop().unwrap() {
                Inserted::New(r) => {
                    new += 1;
                    ids.push(r.id)
                }
                Inserted::Existing(r) => ids.push(r.id),
                Inserted::Conflict => panic!("same body"),
            }
        }
        assert_eq!(new, 1);
        ids.dedup();
        assert_eq!(ids.len(), 1, "{ids:?}");
        let other = store.insert(vec![keyed("other")]).await.unwrap();
        assert_eq!(other, vec![Inserted::Conflict]);
        assert_eq!(store.list(None, None, None, 100).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn writes_sent_at_once_are_grouped_and_ids_are_never_given_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        // Two hundred inserts at once: they go in groups.
        let tries: Vec<_> = (0..200)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.insert(vec![job(&format!("j{i}"))]).await })
            })
            .collect();
        let mut rows = Vec::new();
        for t in tries {
            match t.await.unwrap().unwrap().pop() {
                Some(Inserted::New(r)) => rows.push(r),
                other => panic!("{other:?}"),
            }
        }
        let mut ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 200, "one id a job");
        // Starts (twice for some: a retry) and ends, all at once.
        for r in &rows {
            store.started(r.id, 100, Some(1), 10, 1).await;
            if r.id % 2 == 0 {
                store.started(r.id, 200, Some(2), 20, 2).await;
            }
        }
        let ends: Vec<_> = rows
            .iter()
            .map(|r| {
                let (store, id) = (store.clone(), r.id);
                tokio::spawn(async move {
                    let result = format!("{{\"attempts\":{}}}", 1 + id % 2);
                    store.finished(id, "succeeded", result, 30).await
                })
            })
            .collect();
        for e in ends {
            e.await.unwrap().unwrap();
        }
        drop(store);
        let store = SqliteStore::open(dir.path()).await.unwrap();
        for r in &rows {
            let got = store.get(r.id).await.unwrap().unwrap();
            assert_eq!(got.name, r.name);
            assert_eq!(got.status, "succeeded");
            assert_eq!((got.started_at, got.finished_at), (Some(10), Some(30)));
            let (pid, attempts) = match r.id % 2 {
                0 => (200, 2),
                _ => (100, 2),
            };
            assert_eq!((got.pid, got.attempts), (Some(pid), attempts), "{got:?}");
        }
        // Every job deleted, then a reopen: the next id is past them all.
        assert_eq!(store.expire(31).await.unwrap().len(), 200);
        drop(store);
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let Some(Inserted::New(next)) = store.insert(vec![job("")]).await.unwrap().pop() else {
            panic!("not stored")
        };
        assert!(next.id > *ids.last().unwrap(), "{} reused", next.id);
        assert_eq!(next.name, format!("job-{}", next.id));
        assert!(next.batch > rows.iter().map(|r| r.batch).max().unwrap());
    }

    #[tokio::test]
    async fn a_claim_is_on_disk_before_the_start_and_never_undone_by_a_late_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let Some(Inserted::New(a)) = store.insert(vec![job("a")]).await.unwrap().pop() else {
            panic!("not stored")
        };
        store.claim(a.id, 5, 1).await.unwrap();
        let got = store.get(a.id).await.unwrap().unwrap();
        assert_eq!(got.status, "running");
        assert_eq!((got.attempts, got.pid, got.started_at), (1, None, Some(5)));
        store.started(a.id, 300, Some(3), 6, 1).await;
        store.claim(a.id, 7, 2).await.unwrap();
        let got = store.get(a.id).await.unwrap().unwrap();
        assert_eq!((got.attempts, got.pid), (2, None), "{got:?}");
        // The first attempt's start, sent late and grouped alone, changes
        // neither the attempt nor the pid of the second.
        store.started(a.id, 301, Some(4), 8, 1).await;
        store.flush().await.unwrap();
        let got = store.get(a.id).await.unwrap().unwrap();
        assert_eq!((got.attempts, got.pid, got.started_at), (2, None, Some(5)));
        store.started(a.id, 302, Some(5), 9, 2).await;
        store.flush().await.unwrap();
        let got = store.get(a.id).await.unwrap().unwrap();
        assert_eq!(
            (got.attempts, got.pid, got.pid_start),
            (2, Some(302), Some(5))
        );
    }
}

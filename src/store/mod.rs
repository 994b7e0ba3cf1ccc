//! `drover serve`'s store: every job it accepted and what became of it, in
//! SQLite (WAL, `synchronous = FULL`), so that a 2xx means the job is on
//! disk and a restart finds every job where it was.
//!
//! One writer task owns the one connection that writes, and commits in
//! groups: every write waiting when it looks goes into one transaction (a
//! savepoint each, so that one refused write spoils none of the others),
//! and each waiter hears back only once that transaction is on disk. With
//! FULL an fsync costs milliseconds, and a commit a write would give 2.6k
//! inserts/s on this project's VM; a group commit, many times that. Reads
//! go through a pool of their own connections and never wait for a write.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection, Row};
use tokio::sync::{mpsc, oneshot};

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
    Started {
        id: i64,
        pid: i64,
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
pub struct Store {
    reads: SqlitePool,
    writes: mpsc::Sender<Write>,
}

/// The most writes committed in one transaction.
const GROUP: usize = 512;

impl Store {
    /// Opens (or makes) the store `drover.db` in `dir`.
    pub async fn open(dir: &Path) -> Result<Store, StoreError> {
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
        Ok(Store { reads, writes: tx })
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
                pid: i64::from(pid),
                pid_start,
                at,
                attempt: i64::from(attempt),
                done: None,
            })
            .await;
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

/// The writer: waits for a write, takes every other one waiting (up to
/// [`GROUP`]), commits them in one transaction, then answers them all.
async fn write_loop(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Write>) {
    let mut group: Vec<Write> = Vec::with_capacity(GROUP);
    while let Some(first) = rx.recv().await {
        group.push(first);
        while group.len() < GROUP {
            match rx.try_recv() {
                Ok(w) => group.push(w),
                Err(_) => break,
            }
        }
        let outcome = commit(&mut conn, &mut group).await;
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

/// Applies `group` in one transaction, each write in a savepoint of its
/// own; the answers, in order, valid once this returns.
async fn commit(conn: &mut SqliteConnection, group: &mut [Write]) -> Vec<Answer> {
    let mut answers = Vec::with_capacity(group.len());
    if let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
        let e = format!("the store failed: {e}");
        tracing::error!("{e}");
        return group.iter().map(|w| Answer::failed(w, &e)).collect();
    }
    for write in group.iter_mut() {
        let _ = sqlx::query("SAVEPOINT w").execute(&mut *conn).await;
        let answer = apply(conn, write).await;
        let ok = match &answer {
            Answer::Inserted(r) => r.is_ok(),
            Answer::Done(r) => r.is_ok(),
            Answer::Expired(r) => r.is_ok(),
        };
        if !ok {
            let _ = sqlx::query("ROLLBACK TO w").execute(&mut *conn).await;
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

async fn apply(conn: &mut SqliteConnection, write: &mut Write) -> Answer {
    match write {
        Write::Insert(jobs, _) => Answer::Inserted(insert(conn, std::mem::take(jobs)).await),
        Write::Started {
            id,
            pid,
            pid_start,
            at,
            attempt,
            ..
        } => Answer::Done(
            sqlx::query(
                "UPDATE jobs SET status = 'running', pid = ?, pid_start = ?, started_at = coalesce(started_at, ?), attempts = ?
                 WHERE id = ? AND status IN ('queued', 'running')",
            )
            .bind(*pid)
            .bind(*pid_start)
            .bind(*at)
            .bind(*attempt)
            .bind(*id)
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

async fn insert(
    conn: &mut SqliteConnection,
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
                let b: i64 = sqlx::query_scalar(
                    "INSERT INTO batches (submitted_at) VALUES (?) RETURNING id",
                )
                .bind(now)
                .fetch_one(&mut *conn)
                .await?;
                batch = Some(b);
                b
            }
        };
        let (key, body) = job.idempotency.clone().unzip();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO jobs (batch, name, def, status, submitted_at, idem_key, idem_body, kind)
             VALUES (?, ?, '', 'queued', ?, ?, ?, ?) RETURNING id",
        )
        .bind(batch_id)
        .bind(&job.name)
        .bind(now)
        .bind(key)
        .bind(body)
        .bind(job.kind)
        .fetch_one(&mut *conn)
        .await?;
        let name = match job.name.is_empty() {
            true => format!("job-{id}"),
            false => job.name.clone(),
        };
        let mut def = job.def;
        if let Some(map) = def.as_object_mut() {
            map.insert("name".into(), serde_json::Value::String(name.clone()));
        }
        let def = def.to_string();
        sqlx::query("UPDATE jobs SET name = ?, def = ? WHERE id = ?")
            .bind(&name)
            .bind(&def)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        out.push(Inserted::New(JobRow {
            id,
            batch: batch_id,
            name,
            def,
            status: "queued".into(),
            submitted_at: now,
            started_at: None,
            finished_at: None,
            pid: None,
            pid_start: None,
            attempts: 0,
            result: None,
            kind: job.kind.to_string(),
        }));
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
        }
    }

    #[tokio::test]
    async fn jobs_go_in_and_come_back_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
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

        let store = Store::open(dir.path()).await.unwrap();
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
        let store = Store::open(dir.path()).await.unwrap();
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
}

//! The fleet's store: one PostgreSQL queue shared by every `drover serve
//! --store postgres://…` worker.
//!
//! Jobs wait in `drover_jobs`; a worker with free slots claims a batch of
//! them (`FOR UPDATE SKIP LOCKED`, so two workers never claim one job),
//! which makes each `running`, counts the attempt and names the worker, in
//! one statement with the attempt's row in `drover_attempts`. Workers hold
//! leases on the database's clock (`drover_workers.lease_until`), renewed
//! by a heartbeat; a rescuer on every node puts the running jobs of a
//! worker whose lease has expired back in the queue (or ends them `failed`
//! once their retries are spent).
//!
//! **Fencing**: every write about a running job matches `(id, attempt,
//! worker, status = 'running')`. A worker that lost a job (its lease
//! expired and the job was rescued, perhaps already running elsewhere)
//! changes nothing: its write matches no row, and it is told so, to kill
//! what it still runs of the job.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};

use super::{Inserted, JobRow, NewJob, StoreError, now_ms};

/// The schema's versions: MIGRATIONS[v] takes a database from version v
/// to v + 1. Run at start under an advisory lock (several nodes may start
/// at once), only those not yet applied (`drover_schema` says which): DDL
/// takes locks that would stall a running fleet, so a node joining one
/// runs none. Append only: never change a step once released.
const MIGRATIONS: &[&[&str]] = &[SCHEMA_1, SCHEMA_2, SCHEMA_3];

/// A streaming job's stdin, as sent to any node, in order: the worker that
/// runs the job feeds it from here (from the start, each attempt).
const SCHEMA_3: &[&str] = &["CREATE TABLE IF NOT EXISTS drover_stdin (
        job BIGINT NOT NULL REFERENCES drover_jobs (id) ON DELETE CASCADE,
        seq BIGINT NOT NULL,
        data BYTEA NOT NULL,
        eof BOOLEAN NOT NULL,
        PRIMARY KEY (job, seq)
    )"];

/// A batch's job file, for the worker that claims it whole.
const SCHEMA_2: &[&str] = &["ALTER TABLE drover_batches ADD COLUMN IF NOT EXISTS file TEXT"];

const SCHEMA_1: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS drover_workers (
        id BIGSERIAL PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        lease_until TIMESTAMPTZ NOT NULL,
        free INTEGER NOT NULL DEFAULT 0
    )",
    // Slots a worker waits to fill: a new job wakes only as many workers as
    // it needs (see wake()).
    "ALTER TABLE drover_workers ADD COLUMN IF NOT EXISTS free INTEGER NOT NULL DEFAULT 0",
    "CREATE TABLE IF NOT EXISTS drover_batches (
        id BIGSERIAL PRIMARY KEY,
        submitted_at BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS drover_jobs (
        id BIGSERIAL PRIMARY KEY,
        batch BIGINT NOT NULL,
        name TEXT NOT NULL,
        def TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'queued',
        priority INTEGER NOT NULL DEFAULT 0,
        run_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        submitted_at BIGINT NOT NULL,
        started_at BIGINT,
        finished_at BIGINT,
        attempt INTEGER NOT NULL DEFAULT 0,
        retries INTEGER NOT NULL DEFAULT 0,
        worker BIGINT,
        pid BIGINT,
        cancel_requested BOOLEAN NOT NULL DEFAULT false,
        result TEXT,
        idem_key TEXT UNIQUE,
        idem_body BYTEA,
        kind TEXT NOT NULL DEFAULT 'job'
    )",
    "CREATE INDEX IF NOT EXISTS drover_jobs_queue ON drover_jobs (priority, run_at, id)
        WHERE status = 'queued'",
    "CREATE INDEX IF NOT EXISTS drover_jobs_running ON drover_jobs (worker)
        WHERE status = 'running'",
    "CREATE INDEX IF NOT EXISTS drover_jobs_by_status ON drover_jobs (status, id)",
    "CREATE INDEX IF NOT EXISTS drover_jobs_by_batch ON drover_jobs (batch, id)",
    "CREATE INDEX IF NOT EXISTS drover_jobs_by_end ON drover_jobs (finished_at)
        WHERE finished_at IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS drover_attempts (
        job BIGINT NOT NULL REFERENCES drover_jobs (id) ON DELETE CASCADE,
        attempt INTEGER NOT NULL,
        worker BIGINT NOT NULL,
        started_at BIGINT NOT NULL,
        ended_at BIGINT,
        outcome TEXT,
        exit_code INTEGER,
        stderr_tail TEXT,
        PRIMARY KEY (job, attempt)
    )",
    // Each attempt's output, in pieces of at most CHUNK bytes at their
    // offsets in the attempt's stream (1 stdout, 2 stderr): any node can
    // serve any job's output, and follow it while it runs.
    "CREATE TABLE IF NOT EXISTS drover_output (
        job BIGINT NOT NULL REFERENCES drover_jobs (id) ON DELETE CASCADE,
        stream SMALLINT NOT NULL,
        attempt INTEGER NOT NULL,
        off BIGINT NOT NULL,
        data BYTEA NOT NULL,
        PRIMARY KEY (job, stream, attempt, off)
    )",
];

/// The most bytes one row of drover_output holds.
pub const CHUNK: usize = 1 << 20;

/// A piece of a running job's output, for [`PgStore::put_output`].
#[derive(Debug, Clone)]
pub struct Chunk {
    pub job: i64,
    /// 1 stdout, 2 stderr.
    pub stream: i16,
    pub attempt: i32,
    /// Where it starts in the attempt's stream.
    pub off: i64,
    pub data: Vec<u8>,
}

/// The stream's number in drover_output.
pub fn stream_number(stream: &str) -> i16 {
    match stream {
        "stderr" => 2,
        _ => 1,
    }
}

/// Any number: the advisory lock that makes one node at a time run the
/// schema.
const SCHEMA_LOCK: i64 = 0x6472_6f76_6572;

/// The advisory lock of job ids: a batch takes it alone, for ids that
/// follow each other (its jobs run as one plan); a single job shares it.
const IDS_LOCK: i64 = 0x6472_6f76_6569;

/// The error of a batch's job whose worker was lost.
pub const BATCH_LOST: &str = "its worker was lost, and a batch is not resumed (its jobs run together, with their pipes): submit it again";

/// The channel that wakes workers when jobs are queued.
pub const JOBS_CHANNEL: &str = "drover_jobs";
/// The channel that tells a job's worker to cancel it (payload: the id).
pub const CANCEL_CHANNEL: &str = "drover_cancel";
/// The channel that tells a streaming job's worker of more stdin (payload:
/// the id).
pub const STDIN_CHANNEL: &str = "drover_stdin";

/// What became of bytes sent to a streaming job's stdin.
#[derive(Debug, PartialEq, Eq)]
pub enum StdinPut {
    /// Stored, in order, for its worker to feed.
    Stored,
    NotFound,
    /// The job has ended.
    Ended,
    /// Its eof was sent before.
    Closed,
    /// Past the most a job's stdin may hold; nothing stored.
    TooMuch,
}

/// A piece of a streaming job's stdin (see [`PgStore::stdin_after`]).
#[derive(Debug)]
pub struct StdinPiece {
    pub seq: i64,
    pub data: Vec<u8>,
    pub eof: bool,
}

const COLUMNS: &str = "id, batch, name, def, status, submitted_at, started_at, finished_at, pid, attempt, result, kind";

/// COLUMNS, each of `drover_jobs j`: for the claims' RETURNING, made once.
fn j_columns() -> &'static str {
    static J: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    J.get_or_init(|| {
        COLUMNS
            .split(", ")
            .map(|c| format!("j.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

fn job_row(row: &PgRow) -> Result<JobRow, sqlx::Error> {
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
        pid_start: None,
        attempts: i64::from(row.try_get::<i32, _>("attempt")?),
        result: row.try_get("result")?,
        kind: row.try_get("kind")?,
    })
}

/// The fleet's store, for one worker (a process: a new worker id each
/// start, and again after it lost its lease).
pub struct PgStore {
    pool: PgPool,
    /// This worker's id in drover_workers; 0 before it registered.
    worker: AtomicI64,
    lease: Duration,
    /// The attempt this worker claimed of each job it runs: its writes are
    /// fenced with it.
    claims: Mutex<HashMap<i64, Claimed>>,
    /// Starts and ends of jobs, for the writer, which commits whatever
    /// waits in one transaction (see write_loop).
    writes: tokio::sync::mpsc::UnboundedSender<Write>,
}

/// A job's start or end, fenced by its (id, attempt, worker), waiting for
/// the writer; `reply`: whether this worker still held the job.
enum Write {
    Start {
        id: i64,
        attempt: i32,
        worker: i64,
        pid: u32,
        reply: tokio::sync::oneshot::Sender<Result<bool, String>>,
    },
    End {
        end: End,
        reply: tokio::sync::oneshot::Sender<Result<bool, String>>,
    },
}

/// The fields of a job's end (see PgStore::finished).
struct End {
    id: i64,
    attempt: i32,
    worker: i64,
    status: String,
    result: String,
    at: i64,
    pid: Option<i64>,
    exit_code: Option<i32>,
    stderr_tail: Option<String>,
    rest: Vec<Chunk>,
}

/// The most output one write transaction carries (ends past it wait for
/// the next one).
const WRITE_BYTES: usize = 8 << 20;
/// The most starts and ends one write transaction carries.
const WRITE_JOBS: usize = 1024;

/// Commits the jobs' starts and ends as they come, each time all that
/// waits (a group commit: one transaction, one fsync, for hundreds of
/// jobs ending at once). Ends when the store is dropped.
async fn write_loop(pool: PgPool, mut writes: tokio::sync::mpsc::UnboundedReceiver<Write>) {
    let mut next: Option<Write> = None;
    loop {
        let first = match next.take() {
            Some(w) => w,
            None => match writes.recv().await {
                Some(w) => w,
                None => return,
            },
        };
        let mut batch = vec![first];
        let mut bytes = 0;
        while batch.len() < WRITE_JOBS && bytes < WRITE_BYTES {
            match writes.try_recv() {
                Ok(w) => {
                    if let Write::End { end, .. } = &w {
                        bytes += end.rest.iter().map(|c| c.data.len()).sum::<usize>();
                    }
                    batch.push(w);
                }
                Err(_) => break,
            }
        }
        if bytes > WRITE_BYTES && batch.len() > 1 {
            next = batch.pop();
        }
        let mut starts = Vec::new();
        let mut ends = Vec::new();
        for w in batch {
            match w {
                Write::Start {
                    id,
                    attempt,
                    worker,
                    pid,
                    reply,
                } => starts.push(((id, attempt, worker, pid), reply)),
                Write::End { end, reply } => ends.push((end, reply)),
            }
        }
        // A job that ended already: its end says its pid.
        let ended: std::collections::HashSet<i64> = ends.iter().map(|(e, _)| e.id).collect();
        starts.retain_mut(|(s, _)| !ended.contains(&s.0));
        let start_rows: Vec<(i64, i32, i64, u32)> = starts.iter().map(|(s, _)| *s).collect();
        let end_rows: Vec<&End> = ends.iter().map(|(e, _)| e).collect();
        match write_batch(&pool, &start_rows, &end_rows).await {
            Ok(held) => {
                for (s, reply) in starts {
                    let _ = reply.send(Ok(held.contains(&s.0)));
                }
                for (e, reply) in ends {
                    let _ = reply.send(Ok(held.contains(&e.id)));
                }
            }
            Err(e) => {
                let why = e.to_string();
                for (_, reply) in starts {
                    let _ = reply.send(Err(why.clone()));
                }
                for (_, reply) in ends {
                    let _ = reply.send(Err(why.clone()));
                }
            }
        }
    }
}

/// The writer's answer to a write: whether this worker still held the job.
async fn answered(
    answer: tokio::sync::oneshot::Receiver<Result<bool, String>>,
) -> Result<bool, StoreError> {
    match answer.await {
        Ok(Ok(held)) => Ok(held),
        Ok(Err(e)) => Err(StoreError(e)),
        Err(_) => Err(StoreError("the store's writer has stopped".into())),
    }
}

/// One transaction of starts and ends; the ids of the jobs whose write
/// matched (the worker still held them).
async fn write_batch(
    pool: &PgPool,
    starts: &[(i64, i32, i64, u32)],
    ends: &[&End],
) -> Result<std::collections::HashSet<i64>, sqlx::Error> {
    // Ends alone with no output left (most jobs' ends): one statement, its
    // own transaction, one round trip instead of four.
    if starts.is_empty() && ends.iter().all(|e| e.rest.is_empty()) {
        return Ok(write_ends(pool, ends).await?.into_iter().collect());
    }
    let mut held = std::collections::HashSet::new();
    let mut tx = pool.begin().await?;
    if !starts.is_empty() {
        let ids: Vec<i64> = starts.iter().map(|s| s.0).collect();
        let attempts: Vec<i32> = starts.iter().map(|s| s.1).collect();
        let workers: Vec<i64> = starts.iter().map(|s| s.2).collect();
        let pids: Vec<i64> = starts.iter().map(|s| i64::from(s.3)).collect();
        let rows: Vec<i64> = sqlx::query_scalar(
            "UPDATE drover_jobs j SET pid = s.pid
             FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::bigint[])
                 AS s(id, attempt, worker, pid)
             WHERE j.id = s.id AND j.attempt = s.attempt AND j.worker = s.worker
               AND j.status = 'running'
             RETURNING j.id",
        )
        .bind(&ids)
        .bind(&attempts)
        .bind(&workers)
        .bind(&pids)
        .fetch_all(&mut *tx)
        .await?;
        held.extend(rows);
    }
    if !ends.is_empty() {
        for end in ends {
            put_output(&mut tx, end.worker, &end.rest).await?;
        }
        held.extend(write_ends(&mut *tx, ends).await?);
    }
    tx.commit().await?;
    Ok(held)
}

/// Ends of jobs, each written only if this worker still runs that attempt
/// (fenced), with their attempts' rows, in one statement; the ids of those
/// written.
async fn write_ends<'e>(
    db: impl sqlx::PgExecutor<'e>,
    ends: &[&End],
) -> Result<Vec<i64>, sqlx::Error> {
    let ids: Vec<i64> = ends.iter().map(|e| e.id).collect();
    let attempts: Vec<i32> = ends.iter().map(|e| e.attempt).collect();
    let workers: Vec<i64> = ends.iter().map(|e| e.worker).collect();
    let statuses: Vec<&str> = ends.iter().map(|e| e.status.as_str()).collect();
    let results: Vec<&str> = ends.iter().map(|e| e.result.as_str()).collect();
    let ats: Vec<i64> = ends.iter().map(|e| e.at).collect();
    let pids: Vec<Option<i64>> = ends.iter().map(|e| e.pid).collect();
    let codes: Vec<Option<i32>> = ends.iter().map(|e| e.exit_code).collect();
    let tails: Vec<Option<&str>> = ends.iter().map(|e| e.stderr_tail.as_deref()).collect();
    sqlx::query_scalar(
        "WITH e AS (
            SELECT * FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::text[], $5::text[],
                                 $6::bigint[], $7::bigint[], $8::int[], $9::text[])
                AS e(id, attempt, worker, status, result, at, pid, code, tail)
        ), ended AS (
            UPDATE drover_jobs j SET status = e.status, result = e.result, finished_at = e.at,
                pid = coalesce(e.pid, j.pid)
            FROM e
            WHERE j.id = e.id AND j.attempt = e.attempt AND j.worker = e.worker
              AND j.status = 'running'
            RETURNING j.id, j.attempt
        ), counted AS (
            UPDATE drover_attempts a SET ended_at = e.at, outcome = e.status,
                exit_code = e.code, stderr_tail = e.tail
            FROM ended JOIN e ON e.id = ended.id
            WHERE a.job = ended.id AND a.attempt = ended.attempt
        )
        SELECT id FROM ended",
    )
    // Planned each time, for the tables as they are now: a plan kept from
    // when they were small (a new fleet) scans drover_attempts whole for
    // every row until the next ANALYZE (measured: 0.6 ms instead of 0.06
    // a write, for the first 18 s of a 20 000-job drain).
    .persistent(false)
    .bind(&ids)
    .bind(&attempts)
    .bind(&workers)
    .bind(&statuses)
    .bind(&results)
    .bind(&ats)
    .bind(&pids)
    .bind(&codes)
    .bind(&tails)
    .fetch_all(db)
    .await
}

/// A job this worker claimed.
#[derive(Debug, Clone, Copy)]
struct Claimed {
    attempt: i32,
    /// Its end is being written: a late write of its start that finds it
    /// no longer running means nothing.
    ending: bool,
}

/// What a claim took: single jobs, and perhaps a whole batch with its job
/// file.
#[derive(Debug, Default)]
pub struct Claim {
    pub jobs: Vec<JobRow>,
    pub batch: Option<(Vec<JobRow>, String)>,
}

/// Claims the oldest queued batch whole (all its jobs `running`, their
/// attempts counted), with its job file.
async fn claim_batch(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    me: i64,
    now: i64,
) -> Result<Option<(Vec<JobRow>, String)>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "WITH first AS (
            SELECT batch FROM drover_jobs
            WHERE status = 'queued' AND kind = 'batch'
            ORDER BY id LIMIT 1
            FOR UPDATE SKIP LOCKED
        ), claimed AS (
            UPDATE drover_jobs j
            SET status = 'running', attempt = j.attempt + 1, worker = $1, started_at = $2,
                pid = NULL
            FROM first WHERE j.batch = first.batch AND j.status = 'queued'
            RETURNING {}
        ), counted AS (
            INSERT INTO drover_attempts (job, attempt, worker, started_at)
            SELECT id, attempt, $1, $2 FROM claimed
            ON CONFLICT DO NOTHING
        )
        SELECT c.*, b.file FROM claimed c JOIN drover_batches b ON b.id = c.batch",
        j_columns()
    ))
    .bind(me)
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    let Some(file) = rows
        .first()
        .map(|r| r.try_get::<Option<String>, _>("file"))
        .transpose()?
    else {
        return Ok(None);
    };
    let mut jobs: Vec<JobRow> = rows.iter().map(job_row).collect::<Result<_, _>>()?;
    jobs.sort_by_key(|j| j.id);
    Ok(Some((jobs, file.unwrap_or_default())))
}

/// What a heartbeat found.
#[derive(Debug, Default)]
pub struct Beat {
    /// The lease was renewed; false: it had expired (the worker's jobs may
    /// be running elsewhere now): kill them all.
    pub renewed: bool,
    /// Jobs of this worker whose cancel was asked for.
    pub cancels: Vec<i64>,
}

/// Brings the schema up to date (see MIGRATIONS), in one transaction.
async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SCHEMA_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS drover_schema (version INTEGER NOT NULL)")
        .execute(&mut *tx)
        .await?;
    let version: Option<i32> = sqlx::query_scalar("SELECT max(version) FROM drover_schema")
        .fetch_one(&mut *tx)
        .await?;
    let version = version.unwrap_or(0).max(0) as usize;
    if version > MIGRATIONS.len() {
        return Err(StoreError(format!(
            "the database's drover schema is version {version}, newer than this drover's ({}): a newer drover uses it; run that version on every node",
            MIGRATIONS.len()
        )));
    }
    for (step, statements) in MIGRATIONS.iter().enumerate().skip(version) {
        for statement in *statements {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        sqlx::query("INSERT INTO drover_schema (version) VALUES ($1)")
            .bind(step as i32 + 1)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl PgStore {
    /// Connects to `url` and makes the schema.
    pub async fn connect(url: &str, lease: Duration) -> Result<PgStore, StoreError> {
        let options: PgConnectOptions = url.parse().map_err(|e| {
            StoreError(format!(
                "--store {}: not a PostgreSQL URL ({e}); write postgres://USER:PASSWORD@HOST/DATABASE",
                redact(url)
            ))
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(|e| StoreError(format!("cannot connect to {}: {e}", redact(url))))?;
        migrate(&pool).await?;
        let (writes, queue) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(write_loop(pool.clone(), queue));
        Ok(PgStore {
            pool,
            worker: AtomicI64::new(0),
            lease,
            claims: Mutex::default(),
            writes,
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn worker(&self) -> i64 {
        self.worker.load(Ordering::Relaxed)
    }

    /// The attempt of job `id` this worker claimed, while it runs it.
    pub fn attempt_of(&self, id: i64) -> Option<i32> {
        lock(&self.claims).get(&id).map(|c| c.attempt)
    }

    /// Whether this worker runs job `id` as far as it knows: claimed, and
    /// its end not being written.
    pub fn runs(&self, id: i64) -> bool {
        lock(&self.claims).get(&id).is_some_and(|c| !c.ending)
    }

    /// The attempt of job `id` this worker claimed, marked as ending.
    fn ending(&self, id: i64) -> Option<i32> {
        let mut claims = lock(&self.claims);
        let claimed = claims.get_mut(&id)?;
        claimed.ending = true;
        Some(claimed.attempt)
    }

    /// Registers this process as a new worker, with a fresh lease.
    pub async fn register(&self) -> Result<i64, StoreError> {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO drover_workers (host, pid, lease_until)
             VALUES ($1, $2, now() + $3 * interval '1 millisecond') RETURNING id",
        )
        .bind(host)
        .bind(std::process::id() as i32)
        .bind(ms(self.lease))
        .fetch_one(&self.pool)
        .await?;
        self.worker.store(id, Ordering::Relaxed);
        lock(&self.claims).clear();
        Ok(id)
    }

    /// Renews this worker's lease, if it has not expired; and asks which of
    /// its jobs are to be cancelled.
    pub async fn heartbeat(&self) -> Result<Beat, StoreError> {
        let me = self.worker();
        let renewed = sqlx::query(
            "UPDATE drover_workers SET lease_until = now() + $2 * interval '1 millisecond'
             WHERE id = $1 AND lease_until > now()",
        )
        .bind(me)
        .bind(ms(self.lease))
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        let cancels = match renewed {
            true => {
                sqlx::query_scalar(
                    "SELECT id FROM drover_jobs
                 WHERE worker = $1 AND status = 'running' AND cancel_requested",
                )
                .bind(me)
                .fetch_all(&self.pool)
                .await?
            }
            false => Vec::new(),
        };
        Ok(Beat { renewed, cancels })
    }

    /// Claims up to `n` queued jobs for this worker, oldest first (by
    /// priority, then when they may run): each `running` with its attempt
    /// counted, and that attempt's row made; and, if that left slots free,
    /// the oldest queued batch, whole. None while this worker's lease has
    /// expired.
    pub async fn claim(&self, n: usize) -> Result<Claim, StoreError> {
        if n == 0 {
            return Ok(Claim::default());
        }
        let me = self.worker();
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        // The worker's row first, locked: an insert that read it before
        // commits first, so the pick below sees its jobs; one after sees
        // the free slots set here (see wake()). No wake-up is lost.
        let Some(was_free) = sqlx::query_scalar::<_, i32>(
            "SELECT free FROM drover_workers WHERE id = $1 AND lease_until > now()
             FOR NO KEY UPDATE",
        )
        .bind(me)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(Claim::default());
        };
        // One statement: the jobs, their attempts' rows, and the worker's
        // free slots after it.
        let rows = sqlx::query(&format!(
            "WITH picked AS (
                SELECT id FROM drover_jobs
                WHERE status = 'queued' AND run_at <= now() AND kind = 'job'
                ORDER BY priority, run_at, id
                LIMIT $2
                FOR UPDATE SKIP LOCKED
            ), claimed AS (
                UPDATE drover_jobs j
                SET status = 'running', attempt = j.attempt + 1, worker = $1, started_at = $3,
                    pid = NULL
                FROM picked WHERE j.id = picked.id
                RETURNING {}
            ), counted AS (
                INSERT INTO drover_attempts (job, attempt, worker, started_at)
                SELECT id, attempt, $1, $3 FROM claimed
                ON CONFLICT DO NOTHING
            ), freed AS (
                UPDATE drover_workers SET free = $2 - (SELECT count(*) FROM claimed)
                WHERE id = $1 AND $4 <> $2 - (SELECT count(*) FROM claimed)
            )
            SELECT * FROM claimed",
            j_columns()
        ))
        .bind(me)
        .bind(n as i64)
        .bind(now)
        .bind(i64::from(was_free))
        .fetch_all(&mut *tx)
        .await?;
        let mut jobs: Vec<JobRow> = rows.iter().map(job_row).collect::<Result<_, _>>()?;
        jobs.sort_by_key(|j| j.id);
        let batch = match jobs.len() < n {
            true => claim_batch(&mut tx, me, now).await?,
            false => None,
        };
        tx.commit().await?;
        let mut claims = lock(&self.claims);
        let batch_jobs = batch.iter().flat_map(|(rows, _)| rows);
        for job in jobs.iter().chain(batch_jobs) {
            let claimed = Claimed {
                attempt: job.attempts as i32,
                ending: false,
            };
            claims.insert(job.id, claimed);
        }
        Ok(Claim { jobs, batch })
    }

    /// Job `id`'s process started as `pid`. `Ok(false)`: this worker no
    /// longer holds the job (fenced out): kill it.
    ///
    /// Queued at once (before any later end of the job), answered later.
    pub fn started(
        &self,
        id: i64,
        pid: u32,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + use<> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let queued = match self.attempt_of(id) {
            Some(attempt) => {
                let write = Write::Start {
                    id,
                    attempt,
                    worker: self.worker(),
                    pid,
                    reply,
                };
                Some(self.writes.send(write).is_ok())
            }
            None => None,
        };
        async move {
            match queued {
                None => Ok(false),
                Some(false) => Err(StoreError("the store's writer has stopped".into())),
                Some(true) => answered(answer).await,
            }
        }
    }

    /// Queues a write for the writer, and waits for its answer.
    async fn write(
        &self,
        write: Write,
        answer: tokio::sync::oneshot::Receiver<Result<bool, String>>,
    ) -> Result<bool, StoreError> {
        if self.writes.send(write).is_err() {
            return Err(StoreError("the store's writer has stopped".into()));
        }
        answered(answer).await
    }

    /// Job `id` ended (`status`, the report's fields as JSON in `result`).
    /// `Ok(false)`: this worker had lost the job: nothing was written.
    /// `rest`: the end of its output, stored with it.
    pub async fn finished(
        &self,
        id: i64,
        status: &str,
        result: &str,
        at: i64,
        rest: &[Chunk],
    ) -> Result<bool, StoreError> {
        let Some(attempt) = self.ending(id) else {
            return Ok(false);
        };
        let parsed: serde_json::Value = serde_json::from_str(result).unwrap_or_default();
        let exit_code = parsed["exit_code"].as_i64().map(|c| c as i32);
        let stderr_tail: Option<String> = parsed["stderr"].as_str().map(|s| {
            let from = s.len().saturating_sub(4096);
            let from = (from..s.len())
                .find(|&i| s.is_char_boundary(i))
                .unwrap_or(s.len());
            s[from..].to_string()
        });
        let (reply, answer) = tokio::sync::oneshot::channel();
        let end = End {
            id,
            attempt,
            worker: self.worker(),
            status: status.to_string(),
            result: result.to_string(),
            at,
            pid: parsed["pid"].as_i64(),
            exit_code,
            stderr_tail,
            rest: rest.to_vec(),
        };
        let held = self.write(Write::End { end, reply }, answer).await?;
        lock(&self.claims).remove(&id);
        Ok(held)
    }

    /// Job `id`'s attempt ended `outcome` and it goes back in the queue, to
    /// run again after `delay` (a retry, on whichever worker claims it), if
    /// this worker still holds it. `unless_cancelled`: not if its cancel was
    /// asked for (a job stopped by this worker's drain runs again
    /// elsewhere; one cancelled by a user ends). `Ok(false)`: not requeued.
    pub async fn requeue(
        &self,
        id: i64,
        outcome: &str,
        delay: Duration,
        unless_cancelled: bool,
        rest: &[Chunk],
    ) -> Result<bool, StoreError> {
        let Some(attempt) = self.ending(id) else {
            return Ok(false);
        };
        let mut tx = self.pool.begin().await?;
        put_output(&mut tx, self.worker(), rest).await?;
        let n = sqlx::query(
            "UPDATE drover_jobs SET status = 'queued', worker = NULL, pid = NULL,
                run_at = now() + $4 * interval '1 millisecond'
             WHERE id = $1 AND attempt = $2 AND worker = $3 AND status = 'running'
               AND NOT ($5 AND cancel_requested)",
        )
        .bind(id)
        .bind(attempt)
        .bind(self.worker())
        .bind(ms(delay))
        .bind(unless_cancelled)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 1 {
            sqlx::query(
                "UPDATE drover_attempts SET ended_at = $3, outcome = $4 WHERE job = $1 AND attempt = $2",
            )
            .bind(id)
            .bind(attempt)
            .bind(now_ms())
            .bind(outcome)
            .execute(&mut *tx)
            .await?;
            if delay.is_zero() {
                wake(&mut tx, 1).await?;
            }
            tx.commit().await?;
            lock(&self.claims).remove(&id);
        }
        Ok(n == 1)
    }

    /// This worker takes no more jobs (it drains): wake the others for
    /// new ones.
    pub async fn full(&self) -> Result<(), StoreError> {
        sqlx::query("UPDATE drover_workers SET free = 0 WHERE id = $1")
            .bind(self.worker())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Gives this worker's lease up (it drained): what it still holds is
    /// rescued at once.
    pub async fn retire(&self) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE drover_workers SET lease_until = now() - interval '1 second' WHERE id = $1",
        )
        .bind(self.worker())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// This worker gives up job `id` (it lost it, or was told to).
    pub fn forget(&self, id: i64) {
        lock(&self.claims).remove(&id);
    }

    /// Puts the running jobs of workers whose lease expired back in the
    /// queue (a while later, longer each time), or ends them `failed` once
    /// their retries are spent; their lost attempts are marked `lost`.
    /// Returns how many it rescued.
    pub async fn rescue(&self) -> Result<u64, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "WITH lost AS (
                SELECT j.id, j.attempt FROM drover_jobs j
                JOIN drover_workers w ON w.id = j.worker
                WHERE j.status = 'running' AND w.lease_until < now()
                FOR UPDATE OF j SKIP LOCKED
            )
            UPDATE drover_jobs j SET
                status = CASE WHEN j.attempt > j.retries OR j.kind = 'batch' THEN 'failed'
                    ELSE 'queued' END,
                finished_at = CASE WHEN j.attempt > j.retries OR j.kind = 'batch' THEN $1
                    ELSE NULL END,
                result = CASE WHEN j.attempt > j.retries OR j.kind = 'batch' THEN json_build_object(
                    'name', j.name, 'status', 'failed', 'exit_code', NULL, 'signal', NULL,
                    'attempts', j.attempt, 'pid', j.pid, 'started_at', NULL, 'duration_ms', NULL,
                    'stdout', '', 'stderr', '', 'stdout_truncated', false, 'stderr_truncated', false,
                    'error', CASE WHEN j.kind = 'batch' THEN $2
                        ELSE 'its worker was lost (' || j.attempt || ' times): no lease renewed' END,
                    'leaked', false)::text ELSE NULL END,
                run_at = now() + least(power(2, j.attempt - 1) - 1, 60) * interval '1 second',
                worker = NULL, pid = NULL
            FROM lost WHERE j.id = lost.id
            RETURNING j.id, lost.attempt, j.status = 'queued' AND j.run_at <= now()",
        )
        .bind(now)
        .bind(BATCH_LOST)
        .fetch_all(&mut *tx)
        .await?;
        if !rows.is_empty() {
            let ids: Vec<i64> = rows.iter().map(|r| r.get::<i64, _>(0)).collect();
            let attempts: Vec<i32> = rows.iter().map(|r| r.get::<i32, _>(1)).collect();
            sqlx::query(
                "UPDATE drover_attempts a SET outcome = 'lost', ended_at = $3
                 FROM unnest($1::bigint[], $2::int[]) AS l(job, attempt)
                 WHERE a.job = l.job AND a.attempt = l.attempt AND a.outcome IS NULL",
            )
            .bind(&ids)
            .bind(&attempts)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let ready = rows.iter().filter(|r| r.get::<bool, _>(2)).count();
            wake(&mut tx, ready).await?;
        }
        // Workers long gone, with nothing left running.
        sqlx::query(
            "DELETE FROM drover_workers w WHERE lease_until < now() - interval '1 hour'
             AND NOT EXISTS (SELECT 1 FROM drover_jobs j WHERE j.worker = w.id AND j.status = 'running')",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    /// Asks for job `id` to be cancelled: a queued one ends `cancelled`
    /// now (`Some(true)`); a running one's worker is told (`Some(false)`);
    /// `None`: it had ended or does not exist.
    pub async fn cancel(&self, id: i64) -> Result<Option<bool>, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let ended = sqlx::query(
            "UPDATE drover_jobs SET status = 'cancelled', finished_at = $2, cancel_requested = true,
                result = json_build_object(
                    'name', name, 'status', 'cancelled', 'exit_code', NULL, 'signal', NULL,
                    'attempts', attempt, 'pid', NULL, 'started_at', NULL, 'duration_ms', NULL,
                    'stdout', '', 'stderr', '', 'stdout_truncated', false, 'stderr_truncated', false,
                    'error', 'cancelled before it started', 'leaked', false)::text
             WHERE id = $1 AND status = 'queued'",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if ended == 1 {
            tx.commit().await?;
            return Ok(Some(true));
        }
        let running = sqlx::query(
            "UPDATE drover_jobs SET cancel_requested = true WHERE id = $1 AND status = 'running'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if running == 1 {
            notify(&mut tx, CANCEL_CHANNEL, &id.to_string()).await?;
        }
        tx.commit().await?;
        Ok((running == 1).then_some(false))
    }

    /// Stores jobs as one batch (with their retries, for the rescuer), and
    /// wakes the workers.
    pub async fn insert(&self, jobs: Vec<NewJob>) -> Result<Vec<Inserted>, StoreError> {
        self.insert_with(jobs, None).await
    }

    /// Stores a batch: its jobs (ids that follow each other), and its job
    /// file, for the worker that claims it to run it whole.
    pub async fn insert_batch(
        &self,
        jobs: Vec<NewJob>,
        file: &str,
    ) -> Result<Vec<Inserted>, StoreError> {
        self.insert_with(jobs, Some(file)).await
    }

    async fn insert_with(
        &self,
        jobs: Vec<NewJob>,
        file: Option<&str>,
    ) -> Result<Vec<Inserted>, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let ids: Vec<i64> = match file {
            Some(_) => {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(IDS_LOCK)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query_scalar(
                    "SELECT nextval('drover_jobs_id_seq') FROM generate_series(1, $1)",
                )
                .bind(jobs.len() as i64)
                .fetch_all(&mut *tx)
                .await?
            }
            None => {
                sqlx::query_scalar(
                    "SELECT nextval('drover_jobs_id_seq')
                     FROM generate_series(1, $2), pg_advisory_xact_lock_shared($1)",
                )
                .bind(IDS_LOCK)
                .bind(jobs.len() as i64)
                .fetch_all(&mut *tx)
                .await?
            }
        };
        let batch: i64 = sqlx::query_scalar(
            "INSERT INTO drover_batches (submitted_at, file) VALUES ($1, $2) RETURNING id",
        )
        .bind(now)
        .bind(file)
        .fetch_one(&mut *tx)
        .await?;
        let mut answers = Vec::with_capacity(jobs.len());
        let mut new = 0;
        for (job, id) in jobs.into_iter().zip(ids) {
            let name = match job.name.is_empty() {
                true => format!("job-{id}"),
                false => job.name.clone(),
            };
            let mut def = job.def.clone();
            if let Some(map) = def.as_object_mut() {
                map.insert("name".into(), serde_json::Value::String(name.clone()));
            }
            let (key, body) = job.idempotency.clone().unzip();
            let inserted = sqlx::query(&format!(
                "INSERT INTO drover_jobs (id, batch, name, def, submitted_at, retries, idem_key, idem_body, kind)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (idem_key) DO NOTHING
                 RETURNING {COLUMNS}"
            ))
            .bind(id)
            .bind(batch)
            .bind(&name)
            .bind(def.to_string())
            .bind(now)
            .bind(job.retries as i32)
            .bind(&key)
            .bind(&body)
            .bind(job.kind)
            .fetch_optional(&mut *tx)
            .await?;
            match (inserted, key) {
                (Some(row), _) => {
                    new += 1;
                    answers.push(Inserted::New(job_row(&row)?));
                }
                (None, Some(key)) => {
                    let row = sqlx::query(&format!(
                        "SELECT {COLUMNS}, idem_body FROM drover_jobs WHERE idem_key = $1"
                    ))
                    .bind(&key)
                    .fetch_one(&mut *tx)
                    .await?;
                    let same = row.try_get::<Option<Vec<u8>>, _>("idem_body")? == body;
                    answers.push(match same {
                        true => Inserted::Existing(job_row(&row)?),
                        false => Inserted::Conflict,
                    });
                }
                (None, None) => return Err(StoreError("a job was not stored".into())),
            }
        }
        // A batch takes one worker's slots.
        wake(&mut tx, if file.is_some() { 1 } else { new }).await?;
        tx.commit().await?;
        Ok(answers)
    }

    /// Appends `data` to streaming job `id`'s stdin (and closes it with
    /// `eof`), for the worker that runs it, now or later: at most `limit`
    /// bytes in all.
    pub async fn put_stdin(
        &self,
        id: i64,
        data: &[u8],
        eof: bool,
        limit: u64,
    ) -> Result<StdinPut, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The job's row, locked: appends take turns.
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM drover_jobs WHERE id = $1 FOR NO KEY UPDATE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(status) = status else {
            return Ok(StdinPut::NotFound);
        };
        if status != "queued" && status != "running" {
            return Ok(StdinPut::Ended);
        }
        let (last, closed, bytes): (i64, bool, i64) = sqlx::query_as(
            "SELECT coalesce(max(seq), 0), coalesce(bool_or(eof), false),
                    coalesce(sum(length(data)), 0)::bigint
             FROM drover_stdin WHERE job = $1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if closed {
            return Ok(StdinPut::Closed);
        }
        if bytes as u64 + data.len() as u64 > limit {
            return Ok(StdinPut::TooMuch);
        }
        sqlx::query("INSERT INTO drover_stdin (job, seq, data, eof) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(last + 1)
            .bind(data)
            .bind(eof)
            .execute(&mut *tx)
            .await?;
        notify(&mut tx, STDIN_CHANNEL, &id.to_string()).await?;
        tx.commit().await?;
        Ok(StdinPut::Stored)
    }

    /// Job `id`'s stdin after piece `seq`, in order, at most `n` pieces.
    pub async fn stdin_after(
        &self,
        id: i64,
        seq: i64,
        n: i64,
    ) -> Result<Vec<StdinPiece>, StoreError> {
        let rows: Vec<(i64, Vec<u8>, bool)> = sqlx::query_as(
            "SELECT seq, data, eof FROM drover_stdin WHERE job = $1 AND seq > $2
             ORDER BY seq LIMIT $3",
        )
        .bind(id)
        .bind(seq)
        .bind(n)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(seq, data, eof)| StdinPiece { seq, data, eof })
            .collect())
    }

    /// How many jobs wait in the queue (all workers').
    pub async fn queued(&self) -> Result<usize, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM drover_jobs WHERE status = 'queued'")
            .fetch_one(&self.pool)
            .await?;
        Ok(n.max(0) as usize)
    }

    pub async fn get(&self, id: i64) -> Result<Option<JobRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM drover_jobs WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(job_row).transpose()?)
    }

    pub async fn list(
        &self,
        status: Option<&str>,
        batch: Option<i64>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<JobRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM drover_jobs
             WHERE ($1::text IS NULL OR status = $1) AND ($2::bigint IS NULL OR batch = $2)
               AND ($3::bigint IS NULL OR id < $3)
             ORDER BY id DESC LIMIT $4"
        ))
        .bind(status)
        .bind(batch)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(job_row).collect::<Result<_, _>>()?)
    }

    pub async fn by_key(&self, key: &str) -> Result<Option<JobRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM drover_jobs WHERE idem_key = $1"
        ))
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(job_row).transpose()?)
    }

    pub async fn batch(&self, batch: i64) -> Result<Vec<JobRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM drover_jobs WHERE batch = $1 ORDER BY id"
        ))
        .bind(batch)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(job_row).collect::<Result<_, _>>()?)
    }

    /// Stores pieces of this worker's running jobs' output; those of jobs
    /// it no longer holds are dropped.
    pub async fn put_output(&self, chunks: &[Chunk]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        put_output(&mut tx, self.worker(), chunks).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Pieces of job `id`'s `stream` (see [`stream_number`]) after
    /// `(attempt, off)`, in order: at most `n`, as `(attempt, off, data)`.
    pub async fn output(
        &self,
        id: i64,
        stream: i16,
        after: (i32, i64),
        n: i64,
    ) -> Result<Vec<(i32, i64, Vec<u8>)>, StoreError> {
        let rows = sqlx::query_as(
            "SELECT attempt, off, data FROM drover_output
             WHERE job = $1 AND stream = $2 AND (attempt, off) > ($3, $4)
             ORDER BY attempt, off LIMIT $5",
        )
        .bind(id)
        .bind(stream)
        .bind(after.0)
        .bind(after.1)
        .bind(n)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Job `id`'s status, if it exists.
    pub async fn status(&self, id: i64) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT status FROM drover_jobs WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Deletes up to 1000 jobs that ended before `before` (unix ms), with
    /// their attempts; their ids. Called again while it finds some: no long
    /// transaction.
    pub async fn expire(&self, before: i64) -> Result<Vec<i64>, StoreError> {
        let ids = sqlx::query_scalar(
            "DELETE FROM drover_jobs WHERE id IN (
                SELECT id FROM drover_jobs WHERE finished_at < $1
                ORDER BY finished_at LIMIT 1000 FOR UPDATE SKIP LOCKED)
             RETURNING id",
        )
        .bind(before)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids)
    }
}

/// Stores `chunks` in `tx`, each only if `worker` still runs that attempt
/// of its job (fenced: zero rows for a job it lost).
async fn put_output(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    worker: i64,
    chunks: &[Chunk],
) -> Result<(), sqlx::Error> {
    if chunks.is_empty() {
        return Ok(());
    }
    let jobs: Vec<i64> = chunks.iter().map(|c| c.job).collect();
    let streams: Vec<i16> = chunks.iter().map(|c| c.stream).collect();
    let attempts: Vec<i32> = chunks.iter().map(|c| c.attempt).collect();
    let offs: Vec<i64> = chunks.iter().map(|c| c.off).collect();
    let data: Vec<&[u8]> = chunks.iter().map(|c| c.data.as_slice()).collect();
    sqlx::query(
        "INSERT INTO drover_output (job, stream, attempt, off, data)
         SELECT c.job, c.stream, c.attempt, c.off, c.data
         FROM unnest($1::bigint[], $2::smallint[], $3::int[], $4::bigint[], $5::bytea[])
             AS c(job, stream, attempt, off, data)
         JOIN drover_jobs j ON j.id = c.job AND j.attempt = c.attempt
             AND j.worker = $6 AND j.status = 'running'
         ON CONFLICT DO NOTHING",
    )
    .bind(&jobs)
    .bind(&streams)
    .bind(&attempts)
    .bind(&offs)
    .bind(&data)
    .bind(worker)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Wakes, when `tx` commits, as many waiting workers as it takes to fill
/// `jobs` slots (the ones with the most free first), naming them in the
/// notification; the others, busy or full, claim when their own jobs end.
///
/// The worker rows are read locked (`FOR SHARE`): a claim that is setting
/// its worker's free slots either commits first (and its count is read
/// here) or waits for this transaction (and then its pick sees these jobs).
async fn wake(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    jobs: usize,
) -> Result<(), sqlx::Error> {
    if jobs == 0 {
        return Ok(());
    }
    let workers: Vec<(i64, i32)> = sqlx::query_as(
        "SELECT id, free FROM drover_workers WHERE lease_until > now() ORDER BY id FOR SHARE",
    )
    .fetch_all(&mut **tx)
    .await?;
    let payload = pick_workers(workers, jobs);
    if !payload.is_empty() {
        notify(tx, JOBS_CHANNEL, &payload).await?;
    }
    Ok(())
}

/// The ids, comma-separated, of the fewest workers whose free slots fill
/// `jobs`, the freest first (at most 400 of them: a notification's payload
/// is under 8 000 bytes).
fn pick_workers(mut workers: Vec<(i64, i32)>, jobs: usize) -> String {
    workers.retain(|w| w.1 > 0);
    workers.sort_by_key(|w| (std::cmp::Reverse(w.1), w.0));
    let mut left = jobs as i64;
    let mut ids = Vec::new();
    for (id, free) in workers.into_iter().take(400) {
        if left <= 0 {
            break;
        }
        ids.push(id.to_string());
        left -= i64::from(free);
    }
    ids.join(",")
}

/// Whether a notification on JOBS_CHANNEL names `worker`.
pub fn names(payload: &str, worker: i64) -> bool {
    payload.split(',').any(|id| id.parse() == Ok(worker))
}

/// Sends `payload` on `channel` when `tx` commits.
async fn notify(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    channel: &str,
    payload: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user_info = &url[scheme + 3..at];
            match user_info.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{names, pick_workers, redact};

    #[test]
    fn a_new_job_wakes_the_fewest_workers_that_fill_it_the_freest_first() {
        let workers = vec![(1, 0), (2, 3), (3, 8), (4, 3)];
        assert_eq!(pick_workers(workers.clone(), 1), "3");
        assert_eq!(pick_workers(workers.clone(), 9), "3,2");
        assert_eq!(pick_workers(workers.clone(), 100), "3,2,4");
        assert_eq!(pick_workers(vec![(1, 0)], 5), "");
        assert!(names("3,2", 2) && names("12", 12) && !names("12", 1) && !names("", 1));
    }

    #[test]
    fn a_password_never_shows_in_messages() {
        assert_eq!(
            redact("postgres://drover:s3cret@db:5432/q"),
            "postgres://drover:***@db:5432/q"
        );
        assert_eq!(redact("postgres://db/q"), "postgres://db/q");
    }
}

//! A worker of a fleet (`drover serve --store postgres://…`): claims jobs
//! from the shared queue as its slots free up, keeps its lease, rescues the
//! jobs of workers that died, and stops its own jobs when it can no longer
//! be sure they are its own.
//!
//! The lease is what keeps a job from running twice at once. The database
//! holds it (`lease_until`, on the database's clock); the worker keeps a
//! deadline of its own on its monotonic clock, from when it sent the last
//! heartbeat that renewed it, minus a margin. Past that deadline (the
//! database unreachable, or this process stopped for a while) it kills
//! every job it runs before anyone else may claim them, and claims nothing
//! until a heartbeat gets through: then it finds its lease expired and
//! joins again as a new worker.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use sqlx::postgres::PgListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{App, RunError};
use crate::engine::How;
use crate::model::{JobResult, Status};
use crate::store::pg::{CANCEL_CHANNEL, CHUNK, Chunk, JOBS_CHANNEL, STDIN_CHANNEL};
use crate::store::{JobRow, PgStore};

/// Jobs a worker runs at once without `-j` / max_parallel.
pub const DEFAULT_SLOTS: std::num::NonZeroUsize = std::num::NonZeroUsize::new(16).unwrap();

/// The most of each stream an ended job's stored result holds, for the
/// other nodes to show.
pub const TAIL: usize = 64 << 10;

/// How often a worker looks for jobs when no notification comes.
const POLL: Duration = Duration::from_secs(1);

/// How old a node's count of the fleet's queued jobs may be when it
/// takes a job (for max_queued).
pub const COUNT_EVERY: Duration = Duration::from_millis(250);

/// How long a job runs before its pid is written (see started()).
const START_WRITE: Duration = Duration::from_millis(200);

/// How often a worker ships its running jobs' new output to the database,
/// and a follower on any node looks for more.
const SHIP_EVERY: Duration = Duration::from_millis(100);

/// Connects to the fleet's PostgreSQL and joins as a worker.
pub async fn connect(url: &str, lease: Duration) -> Result<Arc<PgStore>, String> {
    let pg = PgStore::connect(url, lease)
        .await
        .map_err(|e| e.to_string())?;
    let id = pg.register().await.map_err(|e| e.to_string())?;
    tracing::info!(worker = id, "joined the fleet as worker {id}");
    Ok(Arc::new(pg))
}

/// The worker's tasks, stopped when the server stops.
pub struct Worker {
    tasks: Vec<JoinHandle<()>>,
    pg: Arc<PgStore>,
}

impl Worker {
    /// Stops claiming and gives the lease up: whatever this worker still
    /// held is rescued by the others at once.
    pub async fn stop(self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Err(e) = self.pg.retire().await {
            tracing::warn!("cannot give up this worker's lease: {e}");
        }
    }
}

pub fn start(app: Arc<App>, pg: Arc<PgStore>, slots: Option<std::num::NonZeroUsize>) -> Worker {
    let slots = slots.unwrap_or(DEFAULT_SLOTS).get();
    let wake = Arc::new(tokio::sync::Notify::new());
    let lease = Arc::new(LeaseState::new(app.settings.lease));
    let tasks = vec![
        tokio::spawn(keep_lease(app.clone(), pg.clone(), lease.clone())),
        tokio::spawn(claim_loop(
            app.clone(),
            pg.clone(),
            lease.clone(),
            wake.clone(),
            slots,
        )),
        tokio::spawn(listen(app.clone(), pg.clone(), wake)),
        tokio::spawn(rescue_loop(pg.clone(), app.settings.lease)),
        tokio::spawn(ship_loop(app.clone(), pg.clone())),
    ];
    Worker { tasks, pg }
}

/// Whether this worker may run jobs: its lease is held, as far as it
/// knows.
struct LeaseState {
    /// Past this, the lease may have expired in the database.
    deadline: std::sync::Mutex<Instant>,
    /// The lease was lost (deadline passed, or found expired): claim
    /// nothing until joined again.
    lost: std::sync::atomic::AtomicBool,
    lease: Duration,
}

impl LeaseState {
    fn new(lease: Duration) -> Self {
        Self {
            deadline: std::sync::Mutex::new(Instant::now() + lease - margin(lease)),
            lost: std::sync::atomic::AtomicBool::new(false),
            lease,
        }
    }

    fn held(&self) -> bool {
        !self.lost.load(std::sync::atomic::Ordering::Relaxed)
            && Instant::now() < *self.deadline.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How long before the lease's end a worker stops its jobs: a tenth of it,
/// at least 300 ms.
fn margin(lease: Duration) -> Duration {
    (lease / 10).max(Duration::from_millis(300)).min(lease / 2)
}

/// Renews the lease every third of it; stops every job of this worker
/// once its own deadline passes without a renewal, or when the database
/// says the lease had expired; then joins again as a new worker.
async fn keep_lease(app: Arc<App>, pg: Arc<PgStore>, state: Arc<LeaseState>) {
    let every = state.lease / 3;
    let mut next_beat = Instant::now() + every;
    let mut failing = false;
    loop {
        let deadline = *state.deadline.lock().unwrap_or_else(|e| e.into_inner());
        tokio::select! {
            _ = tokio::time::sleep_until(next_beat) => {}
            _ = tokio::time::sleep_until(deadline), if !state.lost.load(std::sync::atomic::Ordering::Relaxed) => {
                tracing::error!(
                    worker = pg.worker(),
                    "this worker's lease could not be renewed in time: its jobs are stopped, to run elsewhere"
                );
                state.lost.store(true, std::sync::atomic::Ordering::Relaxed);
                stop_all(&app, &pg).await;
                continue;
            }
        }
        let sent = Instant::now();
        next_beat = sent + every;
        let beat = tokio::time::timeout(every, pg.heartbeat()).await;
        match beat {
            Ok(Ok(beat)) if beat.renewed => {
                if failing {
                    tracing::info!("the fleet's database answers again");
                    failing = false;
                }
                *state.deadline.lock().unwrap_or_else(|e| e.into_inner()) =
                    sent + state.lease - margin(state.lease);
                for id in beat.cancels {
                    cancel_local(&app, id).await;
                }
            }
            Ok(Ok(_)) => {
                // Expired in the database: the others may have its jobs.
                tracing::error!(
                    worker = pg.worker(),
                    "this worker's lease had expired: its jobs are stopped; joining again"
                );
                state.lost.store(true, std::sync::atomic::Ordering::Relaxed);
                stop_all(&app, &pg).await;
                match pg.register().await {
                    Ok(id) => {
                        tracing::info!(worker = id, "joined the fleet again as worker {id}");
                        *state.deadline.lock().unwrap_or_else(|e| e.into_inner()) =
                            sent + state.lease - margin(state.lease);
                        state
                            .lost
                            .store(false, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(e) => tracing::warn!("cannot join the fleet again: {e}"),
                }
            }
            Ok(Err(e)) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!("cannot renew this worker's lease: {e}");
                }
            }
            Err(_) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(
                        "cannot renew this worker's lease: the database does not answer"
                    );
                }
            }
        }
    }
}

/// Stops every job this worker runs, at once: it may no longer hold them.
async fn stop_all(app: &App, pg: &PgStore) {
    let ids: Vec<i64> = super::lock(&app.live).keys().copied().collect();
    for id in ids {
        drop_job(app, pg, id).await;
    }
}

/// This worker no longer holds job `id`: it forgets it and kills it.
async fn drop_job(app: &App, pg: &PgStore, id: i64) {
    pg.forget(id);
    let _ = app.stop_job(id, How::Now).await;
}

/// Cancels job `id` here, if this worker runs it.
async fn cancel_local(app: &App, id: i64) {
    if app.watch_end(id).is_some() {
        let _ = app.stop_job(id, How::Graceful).await;
    }
}

/// For the tests of a crash at the worst moments: with
/// `DROVER_FAILPOINT=after-claim` a worker kills itself (SIGKILL, as
/// `kill -9` would) as soon as a claim of jobs commits, before they start;
/// with `before-result`, once a job has exited, before its end is stored.
pub fn failpoint(name: &str) {
    static POINT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let point = POINT.get_or_init(|| std::env::var("DROVER_FAILPOINT").ok());
    if point.as_deref() == Some(name) {
        tracing::warn!("DROVER_FAILPOINT={name}: this worker kills itself");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
}

/// Claims jobs while slots are free: on a notification, when a job of its
/// own ends, and every POLL in any case (notifications are lost while the
/// listener reconnects).
async fn claim_loop(
    app: Arc<App>,
    pg: Arc<PgStore>,
    lease: Arc<LeaseState>,
    wake: Arc<tokio::sync::Notify>,
    slots: usize,
) {
    let mut said_full = false;
    loop {
        let mut full = false;
        if app.draining() && !said_full {
            said_full = pg.full().await.is_ok();
        }
        if lease.held() && !app.draining() {
            let busy = app.queued() + app.running.load(std::sync::atomic::Ordering::Relaxed);
            let free = slots.saturating_sub(busy);
            if free > 0 {
                match pg.claim(free).await {
                    Ok(claim) => {
                        if !claim.jobs.is_empty() || claim.batch.is_some() {
                            failpoint("after-claim");
                        }
                        full = claim.jobs.len() == free;
                        if let Some((rows, file)) = claim.batch {
                            run_batch(&app, rows, file).await;
                        }
                        for row in claim.jobs {
                            match app.run(&row).await {
                                Ok(()) => {}
                                Err(RunError::Job(why)) => {
                                    if let Err(e) = app.end_unrun(&row, "spawn_failed", &why).await
                                    {
                                        tracing::warn!(
                                            job = row.id,
                                            "cannot end job {}: {e}",
                                            row.id
                                        );
                                    }
                                }
                                Err(RunError::Stopped) => {}
                            }
                        }
                    }
                    Err(e) => tracing::warn!("cannot claim jobs: {e}"),
                }
            }
        }
        // All it asked for: there may be more.
        if full {
            continue;
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = app.slot_freed.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Runs a claimed batch whole, as its job file says (checked again here:
/// this worker's allow-list is the one that counts); if it cannot, its
/// jobs end saying why.
async fn run_batch(app: &Arc<App>, rows: Vec<JobRow>, file: String) {
    let why = match super::batch::plan_of(app, file) {
        Ok(plan) if plan.jobs.len() == rows.len() => match app.run_batch(&rows, plan).await {
            Ok(()) => return,
            Err(e) => e,
        },
        Ok(_) => "its job file gives another number of jobs on this worker".to_string(),
        Err(e) => format!("this worker cannot run it: {}", e.message),
    };
    for row in &rows {
        if let Err(e) = app.end_unrun(row, "failed", &why).await {
            tracing::warn!(job = row.id, "cannot end job {}: {e}", row.id);
        }
    }
}

/// Feeds streaming job `id` the stdin any node took for it (in order, from
/// the start: an attempt after a lost one reads it all again), as the job
/// reads it; closes it at the eof sent. Ends with the job, or when it no
/// longer reads.
pub fn feed_stdin(
    app: Arc<App>,
    pg: Arc<PgStore>,
    id: i64,
    pipe: Arc<tokio::sync::Mutex<Option<tokio::net::unix::pipe::Sender>>>,
) {
    use tokio::io::AsyncWriteExt;
    tokio::spawn(async move {
        let Some(mut writer) = pipe.lock().await.take() else {
            return;
        };
        let Some(mut end) = app.watch_end(id) else {
            return;
        };
        let mut news = app.stdin_news.subscribe();
        let mut seq = 0;
        loop {
            match pg.stdin_after(id, seq, 16).await {
                Ok(pieces) if !pieces.is_empty() => {
                    for piece in pieces {
                        seq = piece.seq;
                        tokio::select! {
                            written = writer.write_all(&piece.data) => {
                                if written.is_err() {
                                    return;
                                }
                            }
                            _ = end.wait_for(|e| *e) => return,
                        }
                        if piece.eof {
                            return;
                        }
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(job = id, "cannot read job {id}'s stdin: {e}"),
            }
            // Notifications are lost while the listener reconnects.
            tokio::select! {
                _ = news.changed() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = end.wait_for(|e| *e) => return,
            }
        }
    });
}

/// Listens for new jobs (to wake the claimer) and for cancels of this
/// worker's jobs. Reconnects after a failure; the claimer's and the
/// heartbeat's polling cover what is missed meanwhile.
async fn listen(app: Arc<App>, pg: Arc<PgStore>, wake: Arc<tokio::sync::Notify>) {
    loop {
        let mut listener = match PgListener::connect_with(pg.pool()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!("cannot listen for the fleet's notifications: {e}");
                tokio::time::sleep(POLL).await;
                continue;
            }
        };
        if let Err(e) = listener
            .listen_all([JOBS_CHANNEL, CANCEL_CHANNEL, STDIN_CHANNEL])
            .await
        {
            tracing::debug!("cannot listen for the fleet's notifications: {e}");
            tokio::time::sleep(POLL).await;
            continue;
        }
        loop {
            match listener.recv().await {
                Ok(n) if n.channel() == JOBS_CHANNEL => {
                    if crate::store::pg::names(n.payload(), pg.worker()) {
                        metrics::counter!("drover_fleet_wakeups_total").increment(1);
                        wake.notify_one();
                    }
                }
                Ok(n) if n.channel() == STDIN_CHANNEL => {
                    app.stdin_news.send_modify(|v| *v = v.wrapping_add(1));
                }
                Ok(n) => {
                    if let Ok(id) = n.payload().parse::<i64>() {
                        cancel_local(&app, id).await;
                    }
                }
                Err(e) => {
                    tracing::debug!("the fleet's notifications stopped: {e}");
                    break;
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Every node rescues the jobs of workers whose lease expired, every half
/// lease (at least every second).
async fn rescue_loop(pg: Arc<PgStore>, lease: Duration) {
    let every = (lease / 2).max(Duration::from_secs(1));
    loop {
        tokio::time::sleep(every).await;
        match pg.rescue().await {
            Ok(0) => {}
            Ok(n) => tracing::info!("rescued {n} jobs of workers that were lost"),
            Err(e) => tracing::debug!("cannot rescue jobs: {e}"),
        }
    }
}

/// Job `id` started as `pid`: its pid is written (fenced: a worker that no
/// longer holds the job kills it) once it has run START_WRITE, unless its
/// end came first and says it: most jobs are short, and a write saved is a
/// dead row and an fsync less for each.
pub fn started(app: &Arc<App>, pg: Arc<PgStore>, id: i64, pid: u32) {
    let app = app.clone();
    tokio::spawn(async move {
        tokio::time::sleep(START_WRITE).await;
        if !pg.runs(id) {
            return;
        }
        match pg.started(id, pid).await {
            Ok(true) => {}
            // Unless it ended meanwhile (the end was written first).
            Ok(false) if pg.runs(id) => {
                tracing::warn!(job = id, "job {id} was lost by this worker: stopping it");
                drop_job(&app, &pg, id).await;
            }
            Ok(false) => {}
            Err(e) => tracing::debug!(job = id, "cannot store job {id}'s pid: {e}"),
        }
    });
}

/// Puts job `id` back in the queue if its end calls for it: a failure with
/// retries left (after its retry_delay), or a stop by this worker's drain
/// (to run elsewhere). True when it was requeued.
pub async fn requeued(
    app: &App,
    pg: &PgStore,
    id: i64,
    result: &JobResult,
    rest: &[Chunk],
) -> bool {
    let Some(attempt) = pg.attempt_of(id) else {
        return false;
    };
    let Some((retries, delay, batch)) = super::lock(&app.live)
        .get(&id)
        .map(|l| (l.retry.0, l.retry.1, l.batch))
    else {
        return false;
    };
    // A batch's job runs with the others (pipes, needs), not alone: its
    // retries are the engine's, within the batch.
    if batch {
        return false;
    }
    let outcome = result.status.as_str();
    let (requeue, delay, unless_cancelled) = match result.status {
        Status::Failed | Status::TimedOut if (attempt as u32) <= retries => (true, delay, false),
        Status::Cancelled if app.draining() => (true, Duration::ZERO, true),
        _ => (false, delay, false),
    };
    if !requeue {
        return false;
    }
    match pg.requeue(id, outcome, delay, unless_cancelled, rest).await {
        Ok(done) => done,
        Err(e) => {
            tracing::warn!(job = id, "cannot put job {id} back in the queue: {e}");
            false
        }
    }
}

/// Where a worker keeps attempt `attempt` of job `id`'s `stream` while it
/// runs: its scratch file, shipped to the database as it grows and
/// removed once the job's end is stored.
pub fn scratch_path(state_dir: &Path, id: i64, attempt: i64, stream: &str) -> PathBuf {
    state_dir
        .join("output")
        .join(format!("{id}-{attempt}.{stream}"))
}

/// The output of this worker's running jobs that is not in the database
/// yet: every SHIP_EVERY the new bytes of their scratch files go there
/// (fenced, as every write of a running job), so that any node can serve
/// and follow it; what is left when a job ends goes with its result.
#[derive(Default)]
pub struct Uploads(std::sync::Mutex<HashMap<i64, Arc<tokio::sync::Mutex<Upload>>>>);

pub struct Upload {
    attempt: i32,
    paths: [PathBuf; 2],
    /// Bytes of each stream the job wrote (counted before they are in
    /// the file): a stream with none past `sent` is not read. None: not
    /// counted (a batch's jobs write their files themselves).
    written: Option<[Arc<AtomicU64>; 2]>,
    /// Bytes of each stream in the database.
    sent: [u64; 2],
}

impl Uploads {
    /// Job `id` runs here as `attempt`, writing its output to `paths`,
    /// counted in `written`.
    pub fn add(
        &self,
        id: i64,
        attempt: i64,
        paths: [PathBuf; 2],
        written: Option<[Arc<AtomicU64>; 2]>,
    ) {
        let upload = Upload {
            attempt: attempt as i32,
            paths,
            written,
            sent: [0, 0],
        };
        super::lock(&self.0).insert(id, Arc::new(tokio::sync::Mutex::new(upload)));
    }

    fn take(&self, id: i64) -> Option<Arc<tokio::sync::Mutex<Upload>>> {
        super::lock(&self.0).remove(&id)
    }
}

/// Up to `max` bytes of `path` from `off` (none if it does not exist yet:
/// a job that says nothing makes no file).
async fn read_piece(path: &Path, off: u64, max: usize) -> std::io::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    file.seek(std::io::SeekFrom::Start(off)).await?;
    let mut bytes = Vec::new();
    file.take(max as u64).read_to_end(&mut bytes).await?;
    Ok(bytes)
}

/// The next pieces of `upload`'s streams: at most CHUNK bytes each.
async fn next_pieces(id: i64, upload: &Upload) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    for (i, path) in upload.paths.iter().enumerate() {
        // Nothing new (most jobs say nothing): not even an open.
        if let Some(written) = &upload.written
            && written[i].load(Ordering::Relaxed) <= upload.sent[i]
        {
            continue;
        }
        match read_piece(path, upload.sent[i], CHUNK).await {
            Ok(data) if data.is_empty() => {}
            Ok(data) => chunks.push(Chunk {
                job: id,
                stream: i as i16 + 1,
                attempt: upload.attempt,
                off: upload.sent[i] as i64,
                data,
            }),
            Err(e) => tracing::warn!(job = id, "cannot read {}: {e}", path.display()),
        }
    }
    chunks
}

fn mark_sent(upload: &mut Upload, chunks: &[Chunk]) {
    for c in chunks {
        let i = (c.stream - 1) as usize;
        upload.sent[i] = upload.sent[i].max(c.off as u64 + c.data.len() as u64);
    }
}

/// Ships the new output of this worker's running jobs, every SHIP_EVERY,
/// in one statement.
async fn ship_loop(app: Arc<App>, pg: Arc<PgStore>) {
    loop {
        tokio::time::sleep(SHIP_EVERY).await;
        let uploads: Vec<(i64, Arc<tokio::sync::Mutex<Upload>>)> = super::lock(&app.uploads.0)
            .iter()
            .map(|(id, u)| (*id, u.clone()))
            .collect();
        let mut held = Vec::new();
        let mut chunks = Vec::new();
        for (id, upload) in uploads {
            // Being ended: its end ships the rest.
            let Ok(upload) = upload.try_lock_owned() else {
                continue;
            };
            let pieces = next_pieces(id, &upload).await;
            if !pieces.is_empty() {
                chunks.extend(pieces);
                held.push(upload);
            }
        }
        if chunks.is_empty() {
            continue;
        }
        match pg.put_output(&chunks).await {
            Ok(()) => {
                for upload in &mut held {
                    mark_sent(upload, &chunks);
                }
            }
            Err(e) => tracing::debug!("cannot store jobs' output: {e}"),
        }
    }
}

/// What is left of job `id`'s output, once it has ended: the pieces not
/// shipped yet (all but the last few are stored here; those come back, to
/// go with the job's result), and its scratch files, to remove once that
/// is stored.
pub async fn rest_of_output(app: &App, pg: &PgStore, id: i64) -> (Vec<Chunk>, Vec<PathBuf>) {
    let Some(upload) = app.uploads.take(id) else {
        return (Vec::new(), Vec::new());
    };
    let mut upload = upload.lock_owned().await;
    let mut pending: Vec<Chunk> = Vec::new();
    loop {
        let pieces = next_pieces(id, &upload).await;
        if pieces.is_empty() {
            break;
        }
        mark_sent(&mut upload, &pieces);
        pending.extend(pieces);
        // Output of many MiB goes as it is read, not held in memory.
        if pending.iter().map(|c| c.data.len()).sum::<usize>() > 2 * CHUNK {
            let mut wait = Duration::from_millis(100);
            for tries in 0.. {
                match pg.put_output(&pending).await {
                    Ok(()) => break,
                    Err(e) if tries >= 5 => {
                        tracing::warn!(job = id, "job {id}'s output could not be stored: {e}");
                        break;
                    }
                    Err(_) => {
                        tokio::time::sleep(wait).await;
                        wait *= 2;
                    }
                }
            }
            pending.clear();
        }
    }
    (pending, upload.paths.to_vec())
}

/// Removes a job's scratch files, once its end is stored.
pub fn remove_scratch(paths: &[PathBuf]) {
    for path in paths {
        let _ = std::fs::remove_file(path);
    }
}

/// Job `id`'s `stream` (1 stdout, 2 stderr) as stored, wherever it runs or
/// ran: every attempt's output in turn; with `follow`, on as it is shipped
/// until the job has ended.
pub fn output(
    pg: Arc<PgStore>,
    id: i64,
    stream: i16,
    follow: bool,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> {
    struct S {
        pg: Arc<PgStore>,
        after: (i32, i64),
        /// The job has ended: read what is left, then stop.
        last: bool,
        done: bool,
    }
    let state = S {
        pg,
        after: (0, -1),
        last: !follow,
        done: false,
    };
    futures::stream::unfold(state, move |mut s| async move {
        if s.done {
            return None;
        }
        loop {
            match s.pg.output(id, stream, s.after, 4).await {
                Ok(rows) if !rows.is_empty() => {
                    let mut bytes = Vec::with_capacity(rows.iter().map(|r| r.2.len()).sum());
                    for (attempt, off, data) in rows {
                        s.after = (attempt, off);
                        bytes.extend_from_slice(&data);
                    }
                    return Some((Ok(Bytes::from(bytes)), s));
                }
                Ok(_) => {}
                Err(e) => {
                    s.done = true;
                    return Some((Err(std::io::Error::other(e.to_string())), s));
                }
            }
            if s.last {
                return None;
            }
            match s.pg.status(id).await {
                Ok(Some(status)) if status == "queued" || status == "running" => {
                    tokio::time::sleep(SHIP_EVERY).await;
                }
                // Ended (its last output was stored with its end), or gone.
                Ok(_) => s.last = true,
                Err(e) => {
                    s.done = true;
                    return Some((Err(std::io::Error::other(e.to_string())), s));
                }
            }
        }
    })
}

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

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{App, RunError};
use crate::engine::How;
use crate::model::{JobResult, Status};
use crate::store::PgStore;
use crate::store::pg::{CANCEL_CHANNEL, JOBS_CHANNEL};

/// Jobs a worker runs at once without `-j` / max_parallel.
pub const DEFAULT_SLOTS: std::num::NonZeroUsize = std::num::NonZeroUsize::new(16).unwrap();

/// The most of each stream an ended job's stored result holds, for the
/// other nodes to show.
pub const TAIL: usize = 64 << 10;

/// How often a worker looks for jobs when no notification comes.
const POLL: Duration = Duration::from_secs(1);

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
    loop {
        let mut full = false;
        if lease.held() && !app.draining() {
            let busy = app.queued() + app.running.load(std::sync::atomic::Ordering::Relaxed);
            let free = slots.saturating_sub(busy);
            if free > 0 {
                match pg.claim(free).await {
                    Ok(rows) => {
                        full = rows.len() == free;
                        for row in rows {
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
        if let Err(e) = listener.listen_all([JOBS_CHANNEL, CANCEL_CHANNEL]).await {
            tracing::debug!("cannot listen for the fleet's notifications: {e}");
            tokio::time::sleep(POLL).await;
            continue;
        }
        loop {
            match listener.recv().await {
                Ok(n) if n.channel() == JOBS_CHANNEL => wake.notify_one(),
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

/// Job `id` started as `pid`: fenced, after the fact. A worker that no
/// longer holds the job kills it.
pub fn started(app: &Arc<App>, pg: Arc<PgStore>, id: i64, pid: u32) {
    let app = app.clone();
    tokio::spawn(async move {
        match pg.started(id, pid).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(job = id, "job {id} was lost by this worker: stopping it");
                drop_job(&app, &pg, id).await;
            }
            Err(e) => tracing::debug!(job = id, "cannot store job {id}'s pid: {e}"),
        }
    });
}

/// Puts job `id` back in the queue if its end calls for it: a failure with
/// retries left (after its retry_delay), or a stop by this worker's drain
/// (to run elsewhere). True when it was requeued.
pub async fn requeued(app: &App, pg: &PgStore, id: i64, result: &JobResult) -> bool {
    let Some(attempt) = pg.attempt_of(id) else {
        return false;
    };
    let (retries, delay) = super::lock(&app.live)
        .get(&id)
        .map_or((0, Duration::ZERO), |l| l.retry);
    let outcome = result.status.as_str();
    let (requeue, delay, unless_cancelled) = match result.status {
        Status::Failed | Status::TimedOut if (attempt as u32) <= retries => (true, delay, false),
        Status::Cancelled if app.draining() => (true, Duration::ZERO, true),
        _ => (false, delay, false),
    };
    if !requeue {
        return false;
    }
    match pg.requeue(id, outcome, delay, unless_cancelled).await {
        Ok(done) => done,
        Err(e) => {
            tracing::warn!(job = id, "cannot put job {id} back in the queue: {e}");
            false
        }
    }
}

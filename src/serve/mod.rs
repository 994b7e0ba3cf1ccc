//! `drover serve`: jobs over HTTP, kept in a store, run by the engine.
//!
//! A job is committed to the store before its 201 (the row's id is its id
//! everywhere: the engine's `JobId`, the API, its output files), then
//! submitted to the engine as a batch of one. The recorder follows the
//! engine's events and commits each change of state as it happens. On
//! start the store is read back: jobs that were running when drover
//! stopped have what is left of their process groups killed and run again
//! if their retries allow; queued ones run.

pub mod api;
mod batch;
pub mod config;
mod fleet;
mod recover;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::engine::{self, Engine, Event, How, SubmitOptions};
use crate::exec::Keeping;
use crate::exec::capture::{FileSink, Keep};
use crate::exec::fdlimit::FdBudget;
use crate::model::JobId;
use crate::model::job::JobDef;
use crate::plan::{JobSpec, OutputSpec, Plan, StdinSpec, TakeFd};
use crate::store::{JobRow, SqliteStore, Store};
pub use config::{Flags, Settings, SettingsError};

/// The server's state, shared by every request.
pub struct App {
    pub settings: Settings,
    pub store: Store,
    pub engine: Engine,
    /// Jobs accepted and not yet ended, by id.
    live: Mutex<HashMap<i64, Live>>,
    /// Jobs accepted and not started.
    queued: AtomicUsize,
    running: AtomicUsize,
    draining: AtomicBool,
    /// A write to the store failed and is being tried again.
    store_failing: AtomicBool,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// The programs of `allow`, resolved to full paths at start.
    allowed: Option<Vec<std::path::PathBuf>>,
    /// A job ended: a fleet worker may claim another.
    slot_freed: tokio::sync::Notify,
    /// In a fleet: the output of its running jobs not shipped yet.
    uploads: fleet::Uploads,
    /// In a fleet: its queued jobs, all workers', as last counted (see
    /// `waiting_now`), plus what this node took since.
    fleet_queued: std::sync::atomic::AtomicUsize,
    /// In a fleet: when the queued jobs were last counted.
    fleet_counted: tokio::sync::Mutex<Option<std::time::Instant>>,
    /// In a fleet: bumped when any node says more stdin was sent to a
    /// streaming job (see fleet::feed_stdin).
    stdin_news: watch::Sender<u64>,
}

/// A job not ended yet.
struct Live {
    name: String,
    /// Unix ms.
    submitted_at: i64,
    /// Attempts it made in earlier runs of the server.
    attempts_before: u32,
    /// Turns true when the job's end is committed.
    ended: watch::Sender<bool>,
    started: bool,
    /// The write end of a streaming stdin (`stdin = {stream = true}`).
    stdin: Option<Arc<tokio::sync::Mutex<Option<tokio::net::unix::pipe::Sender>>>>,
    /// Bytes the job wrote to stdout and stderr, kept or not; `None` for a
    /// batch's job, which writes to its files itself (their sizes tell).
    written: Option<[Arc<AtomicU64>; 2]>,
    /// Why some of its output could not be kept (see `FileSink::error`).
    lost: Option<[Arc<Mutex<Option<String>>>; 2]>,
    /// In a fleet: its retries and retry_delay (a retry is a new claim,
    /// perhaps on another worker).
    retry: (u32, Duration),
    /// A job of a batch (it runs with the others, as their plan says).
    batch: bool,
}

impl Live {
    /// The bytes it wrote to each stream, as drover counted them (None:
    /// not counted, as a batch's jobs write their files themselves).
    fn counted(&self) -> Option<[u64; 2]> {
        let written = self.written.as_ref()?;
        Some(written.each_ref().map(|w| w.load(Ordering::Relaxed)))
    }
}

/// Why a stored job could not be handed to the engine.
#[derive(Debug)]
pub enum RunError {
    /// The engine has stopped (the server drains): the job stays queued.
    Stopped,
    /// The job cannot run (its stdin pipe, a program the
    /// allow-list no longer lets run): it ends, saying why.
    Job(String),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn now_ms() -> i64 {
    ms_of(SystemTime::now())
}

pub fn ms_of(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl App {
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub fn store_failing(&self) -> bool {
        self.store_failing.load(Ordering::Relaxed)
    }

    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// The jobs waiting to run, for max_queued: this server's; in a fleet,
    /// the fleet's as last counted (see `waiting_now`), plus what this node
    /// took since.
    pub fn waiting(&self) -> usize {
        match self.store.fleet() {
            Some(_) => self.fleet_queued.load(Ordering::Relaxed),
            None => self.queued(),
        }
    }

    /// `waiting`, in a fleet from a count at most fleet::COUNT_EVERY old:
    /// counted again (by one caller; the others wait for its count) when
    /// it is older. Counted only when asked (a submission, a scrape of
    /// /metrics): a fleet that only drains its queue never counts it.
    pub async fn waiting_now(&self) -> usize {
        let Some(pg) = self.store.fleet() else {
            return self.queued();
        };
        let mut counted = self.fleet_counted.lock().await;
        if counted.is_none_or(|at| at.elapsed() >= fleet::COUNT_EVERY) {
            match pg.queued().await {
                Ok(n) => {
                    self.fleet_queued.store(n, Ordering::Relaxed);
                    *counted = Some(std::time::Instant::now());
                }
                Err(e) => tracing::debug!("cannot count the queued jobs: {e}"),
            }
        }
        drop(counted);
        self.fleet_queued.load(Ordering::Relaxed)
    }

    /// A fleet's node took `n` jobs (see `waiting`).
    pub fn took(&self, n: usize) {
        self.fleet_queued.fetch_add(n, Ordering::Relaxed);
    }

    /// The end of job `id`: `None` if it is not live (ended, or unknown).
    pub fn watch_end(&self, id: i64) -> Option<watch::Receiver<bool>> {
        lock(&self.live).get(&id).map(|l| l.ended.subscribe())
    }

    /// Cancels job `id` in this server's engine (`How::Now`: killed at
    /// once, no grace). Err: the engine has stopped.
    pub async fn stop_job(&self, id: i64, how: How) -> Result<(), engine::Gone> {
        self.engine
            .cancel(
                engine::Target::Job(JobId(id as u64)),
                how,
                engine::StopReason::Cancelled,
            )
            .await
    }

    /// The write end of job `id`'s streaming stdin, while it is live.
    fn stdin_of(
        &self,
        id: i64,
    ) -> Option<Arc<tokio::sync::Mutex<Option<tokio::net::unix::pipe::Sender>>>> {
        lock(&self.live).get(&id).and_then(|l| l.stdin.clone())
    }

    /// The spec that runs `row`: its job over the server's defaults, its
    /// output into its files in the state folder.
    pub fn spec_of(&self, row: &JobRow) -> Result<(JobSpec, bool), String> {
        let def: JobDef = serde_json::from_str(&row.def)
            .map_err(|e| format!("the stored job cannot be read: {e}"))?;
        let streamed = matches!(
            def.stdin,
            Some(crate::model::job::StdinDef::Stream { stream: true })
        );
        let mut def = def;
        if streamed {
            def.stdin = None;
        }
        let mut spec = def
            .into_spec(&self.settings.base, &self.settings.defaults)
            .map_err(|e| e.to_string())?;
        // Checked again, against the allow-list in force now (a restart may
        // have a stricter one), and the very program checked is the one run.
        match api::check_allowed(self, &spec) {
            Ok(Some(path)) => {
                if let crate::plan::Program::Argv(argv) = &mut spec.program {
                    argv[0] = path.to_string_lossy().into_owned();
                }
            }
            Ok(None) => {}
            Err(e) => return Err(e.message),
        }
        // Read by drover into the job's files (see `run`).
        spec.stdout = OutputSpec::Capture;
        spec.stderr = OutputSpec::Capture;
        Ok((spec, streamed))
    }

    /// Ends `row`, which the engine will not run, as `status` with `why`,
    /// keeping what is known of an earlier run; on disk when this returns.
    pub async fn end_unrun(&self, row: &JobRow, status: &str, why: &str) -> Result<(), String> {
        let result = serde_json::json!({
            "name": row.name,
            "status": status,
            "exit_code": null,
            "signal": null,
            "attempts": row.attempts,
            "pid": row.pid,
            "started_at": row.started_at.map(api::rfc3339_ms),
            "duration_ms": null,
            "stdout": "",
            "stderr": "",
            "stdout_truncated": false,
            "stderr_truncated": false,
            "error": why,
            "leaked": false,
        });
        self.store
            .finished(row.id, status, result.to_string(), now_ms())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Hands a stored job to the engine. A job that ran before (drover
    /// restarted) goes on counting its attempts, with the retries it has
    /// left.
    pub async fn run(self: &Arc<Self>, row: &JobRow) -> Result<(), RunError> {
        let (mut spec, streamed) = self.spec_of(row).map_err(RunError::Job)?;
        spec.nice = Some(self.settings.nice);
        let mut used = u32::try_from(row.attempts).unwrap_or(0);
        spec.env.push(("DROVER_JOB_ID".into(), row.id.to_string()));
        let retry = (spec.retries, spec.retry_delay);
        let fleet = self.store.fleet().is_some();
        if fleet {
            // Claimed: this is attempt `row.attempts`, and a retry is
            // another claim (see `record`).
            spec.env
                .push(("DROVER_ATTEMPT".into(), row.attempts.to_string()));
            spec.retries = 0;
            used = used.saturating_sub(1);
        } else {
            spec.retries = spec.retries.saturating_sub(used);
        }
        // Appended to: a job run again after a restart adds to what its
        // first run wrote, which stays readable. Made at the first byte. In
        // a fleet, a scratch file per attempt, shipped to the database.
        let path = |stream: &str| match fleet {
            false => config::output_path(&self.settings.state_dir, row.id, stream),
            true => fleet::scratch_path(&self.settings.state_dir, row.id, row.attempts, stream),
        };
        let sink = |stream: &str| FileSink::new(path(stream), self.settings.output_limit);
        let (out, err) = (sink("stdout"), sink("stderr"));
        let written = [out.written.clone(), err.written.clone()];
        let lost = [out.error.clone(), err.error.clone()];
        let (ended, _) = watch::channel(false);
        let stdin = if streamed {
            let pipe_error =
                |e: std::io::Error| RunError::Job(format!("cannot make the job's stdin pipe: {e}"));
            let (tx, rx) = tokio::net::unix::pipe::pipe().map_err(pipe_error)?;
            let fd = rx.into_blocking_fd().map_err(pipe_error)?;
            spec.stdin = StdinSpec::Handed(TakeFd::new(fd));
            Some(Arc::new(tokio::sync::Mutex::new(Some(tx))))
        } else {
            None
        };
        lock(&self.live).insert(
            row.id,
            Live {
                name: row.name.clone(),
                submitted_at: row.submitted_at,
                attempts_before: used,
                ended,
                started: false,
                stdin: stdin.clone(),
                written: Some(written.clone()),
                lost: Some(lost),
                retry,
                batch: false,
            },
        );
        // In a fleet its stdin comes from the database, as any node took it.
        if let (Some(pg), Some(pipe)) = (self.store.fleet(), &stdin) {
            fleet::feed_stdin(self.clone(), pg.clone(), row.id, pipe.clone());
        }
        self.queued.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("drover_jobs_queued").increment(1.0);
        let options = SubmitOptions {
            cancel_jobs: true,
            first_job: Some(JobId(row.id as u64)),
            keeping: Some(Keeping {
                keep: (Keep::File(out), Keep::File(err)),
            }),
            // A fleet's claim is its start on disk.
            before_start: (!fleet).then(|| self.claim(row.id, used)),
            ..SubmitOptions::default()
        };
        if fleet {
            self.uploads.add(
                row.id,
                row.attempts,
                [path("stdout"), path("stderr")],
                Some(written),
            );
        }
        self.engine
            .submit_with(Arc::new(Plan::one(spec)), options)
            .await
            .map_err(|_| RunError::Stopped)?;
        Ok(())
    }

    /// What job `id` does before each attempt starts: its start goes on
    /// disk first, so that after a crash a job that may have run is never
    /// taken for one that did not (it is run again only if its retries
    /// allow). A store that fails is tried again for a while; past that the
    /// job ends spawn_failed.
    fn claim(self: &Arc<Self>, id: i64, attempts_before: u32) -> engine::BeforeStart {
        let app = Arc::downgrade(self);
        Arc::new(move |attempt| {
            let app = app.clone();
            Box::pin(async move {
                let mut wait = Duration::from_millis(100);
                let mut tries = 0;
                loop {
                    let Some(app) = app.upgrade() else {
                        return Err("the server has stopped".to_string());
                    };
                    let Store::Local(store) = &app.store else {
                        return Ok(());
                    };
                    match store.claim(id, now_ms(), attempts_before + attempt).await {
                        // Running from here on, for the store and the
                        // counts alike (max_queued counts the queued).
                        Ok(()) => {
                            app.job_started(id);
                            return Ok(());
                        }
                        Err(e) if tries >= 5 => {
                            return Err(format!("its start could not be stored: {e}"));
                        }
                        Err(_) => {
                            tries += 1;
                            tokio::time::sleep(wait).await;
                            wait *= 2;
                        }
                    }
                }
            })
        })
    }

    /// Attempts job `id` made in earlier runs of the server.
    fn attempts_before(&self, id: i64) -> u32 {
        lock(&self.live).get(&id).map_or(0, |l| l.attempts_before)
    }

    /// Bytes job `id` wrote to stdout and stderr so far, while it is live.
    pub fn written(&self, id: i64) -> Option<[u64; 2]> {
        let counted = lock(&self.live).get(&id).map(Live::counted)?;
        Some(counted.unwrap_or_else(|| {
            ["stdout", "stderr"].map(|stream| {
                std::fs::metadata(config::output_path(&self.settings.state_dir, id, stream))
                    .map_or(0, |m| m.len())
            })
        }))
    }

    /// Why some of job `id`'s output could not be kept, if so.
    fn output_lost(&self, id: i64) -> Option<String> {
        let live = lock(&self.live);
        let lost = live.get(&id)?.lost.as_ref()?;
        let each: Vec<String> = lost.iter().filter_map(|l| lock(l).clone()).collect();
        (!each.is_empty()).then(|| format!("output not kept: {}", each.join("; ")))
    }

    /// Hands a stored batch (its rows, in plan order, with consecutive ids)
    /// to the engine as one plan: its jobs' captured output goes to their
    /// files.
    pub async fn run_batch(&self, rows: &[JobRow], mut plan: Plan) -> Result<(), String> {
        let first = rows.first().map_or(0, |r| r.id);
        if rows
            .iter()
            .enumerate()
            .any(|(i, r)| r.id != first + i as i64)
        {
            return Err("the store gave a batch's jobs ids that do not follow each other".into());
        }
        let fleet = self.store.fleet().is_some();
        for (spec, row) in plan.jobs.iter_mut().zip(rows) {
            // In a fleet: a scratch file per attempt, shipped to the
            // database (see fleet::Uploads); and the job's id and attempt in
            // its environment.
            let path = |stream: &str| match fleet {
                false => config::output_path(&self.settings.state_dir, row.id, stream),
                true => fleet::scratch_path(&self.settings.state_dir, row.id, row.attempts, stream),
            };
            for (out, stream) in [(&mut spec.stdout, "stdout"), (&mut spec.stderr, "stderr")] {
                if matches!(out, OutputSpec::Capture) {
                    *out = OutputSpec::File {
                        path: path(stream),
                        append: true,
                    };
                }
            }
            if fleet {
                spec.env.push(("DROVER_JOB_ID".into(), row.id.to_string()));
                spec.env
                    .push(("DROVER_ATTEMPT".into(), row.attempts.to_string()));
                self.uploads
                    .add(row.id, row.attempts, [path("stdout"), path("stderr")], None);
            }
        }
        {
            let mut live = lock(&self.live);
            for row in rows {
                let (ended, _) = watch::channel(false);
                live.insert(
                    row.id,
                    Live {
                        name: row.name.clone(),
                        submitted_at: row.submitted_at,
                        attempts_before: 0,
                        ended,
                        started: false,
                        stdin: None,
                        written: None,
                        lost: None,
                        retry: (0, Duration::ZERO),
                        batch: true,
                    },
                );
            }
        }
        self.queued.fetch_add(rows.len(), Ordering::Relaxed);
        metrics::gauge!("drover_jobs_queued").increment(rows.len() as f64);
        let options = SubmitOptions {
            cancel_jobs: true,
            first_job: Some(JobId(first as u64)),
            ..SubmitOptions::default()
        };
        self.engine
            .submit_with(Arc::new(plan), options)
            .await
            .map_err(|_| "the engine has stopped".to_string())?;
        Ok(())
    }

    fn job_started(&self, id: i64) {
        if let Some(live) = lock(&self.live).get_mut(&id) {
            if !std::mem::replace(&mut live.started, true) {
                let delay = (now_ms() - live.submitted_at).max(0) as f64 / 1000.0;
                metrics::histogram!("drover_job_start_delay_seconds").record(delay);
                self.queued.fetch_sub(1, Ordering::Relaxed);
                self.running.fetch_add(1, Ordering::Relaxed);
                metrics::gauge!("drover_jobs_queued").decrement(1.0);
                metrics::gauge!("drover_jobs_running").increment(1.0);
            }
        }
    }

    fn job_ended(&self, id: i64) {
        if let Some(live) = lock(&self.live).remove(&id) {
            match live.started {
                true => {
                    self.running.fetch_sub(1, Ordering::Relaxed);
                    metrics::gauge!("drover_jobs_running").decrement(1.0);
                }
                false => {
                    self.queued.fetch_sub(1, Ordering::Relaxed);
                    metrics::gauge!("drover_jobs_queued").decrement(1.0);
                }
            }
            let _ = live.ended.send(true);
        }
        self.slot_freed.notify_one();
    }
}

/// Follows the engine's events and commits each job's changes.
async fn record(app: Arc<App>, mut events: tokio::sync::mpsc::UnboundedReceiver<Event>) {
    let mut attempts: HashMap<JobId, u32> = HashMap::new();
    while let Some(event) = events.recv().await {
        match event {
            Event::Started { job, pid, .. } => {
                let id = job.0 as i64;
                let attempt = *attempts.entry(job).or_insert(1) + app.attempts_before(id);
                match &app.store {
                    Store::Local(store) => {
                        let start = recover::process_start(pid);
                        store.started(id, pid, start, now_ms(), attempt).await;
                    }
                    Store::Fleet(pg) => fleet::started(&app, pg.clone(), id, pid),
                }
                app.job_started(id);
            }
            Event::Retrying { job, attempt, .. } => {
                attempts.insert(job, attempt + 1);
            }
            Event::Finished { job, result } => {
                attempts.remove(&job);
                let id = job.0 as i64;
                // Jobs that never started when the server drains stay
                // queued: they run when it starts again.
                let unstarted = result.pid.is_none()
                    && matches!(
                        result.status,
                        crate::model::Status::Cancelled | crate::model::Status::Skipped
                    );
                // A fleet's batch is claimed whole and not resumed: its
                // jobs end here, as they ended.
                let claimed_batch = app.store.fleet().is_some()
                    && lock(&app.live).get(&id).is_some_and(|l| l.batch);
                if app.draining() && unstarted && !claimed_batch {
                    app.job_ended(id);
                    continue;
                }
                // In a fleet: the output not shipped yet goes with its end,
                // and its scratch files, read for the tails below, go after.
                let (rest, scratch) = match app.store.fleet() {
                    Some(pg) => {
                        fleet::failpoint("before-result");
                        fleet::rest_of_output(&app, pg, id).await
                    }
                    None => Default::default(),
                };
                if let Some(pg) = app.store.fleet()
                    && fleet::requeued(&app, pg, id, &result, &rest).await
                {
                    fleet::remove_scratch(&scratch);
                    app.job_ended(id);
                    continue;
                }
                let name = lock(&app.live)
                    .get(&id)
                    .map_or_else(|| format!("job-{id}"), |l| l.name.clone());
                let mut value = serde_json::to_value(crate::report::json::Job::of(&name, &result))
                    .unwrap_or_default();
                let before = app.attempts_before(id);
                if let Some(map) = value.as_object_mut() {
                    if let Some([out, err]) = app.written(id) {
                        map.insert("stdout_bytes".into(), out.into());
                        map.insert("stderr_bytes".into(), err.into());
                        // Past output_limit: the file does not hold it all.
                        let limit = app.settings.output_limit;
                        map.insert("stdout_truncated".into(), (out > limit).into());
                        map.insert("stderr_truncated".into(), (err > limit).into());
                    }
                    if let Some(why) = app.output_lost(id) {
                        let error = match map.get("error").and_then(|e| e.as_str()) {
                            Some(e) => format!("{e}; {why}"),
                            None => why,
                        };
                        map.insert("error".into(), error.into());
                    }
                    if before > 0 {
                        map.insert("attempts".into(), (result.attempts + before).into());
                    }
                    // In a fleet, other nodes show its output from here.
                    if app.store.fleet().is_some() {
                        // Counted by drover (a batch's jobs write their
                        // files themselves: unknown, read).
                        let said = lock(&app.live)
                            .get(&id)
                            .and_then(Live::counted)
                            .unwrap_or([1, 1]);
                        for ((stream, path), said) in
                            ["stdout", "stderr"].into_iter().zip(&scratch).zip(said)
                        {
                            let (text, cut) = match said {
                                0 => (String::new(), false),
                                _ => api::tail(path, fleet::TAIL),
                            };
                            map.insert(stream.into(), text.into());
                            let key = format!("{stream}_truncated");
                            let past = map.get(&key).and_then(|v| v.as_bool()).unwrap_or(false);
                            map.insert(key, (cut || past).into());
                        }
                    }
                }
                let text = value.to_string();
                metrics::counter!("drover_jobs_finished_total", "status" => result.status.as_str())
                    .increment(1);
                if let Some(d) = result.duration {
                    metrics::histogram!("drover_job_duration_seconds").record(d.as_secs_f64());
                }
                // Committed with whatever else is waiting (the writer groups
                // them); the job counts as ended, for followers and for
                // cancel, once its end is on disk.
                let app = app.clone();
                let status = result.status.as_str();
                tokio::spawn(async move {
                    let at = now_ms();
                    let mut wait = Duration::from_millis(100);
                    // Until it is on disk: a job whose end is not stored
                    // would run again after a restart. Meanwhile the job
                    // stays live and /readyz says the store fails.
                    loop {
                        let done = match &app.store {
                            Store::Fleet(pg) => pg.finished(id, status, &text, at, &rest).await,
                            store => store.finished(id, status, text.clone(), at).await,
                        };
                        let e = match done {
                            Ok(true) => break,
                            Ok(false) => {
                                tracing::warn!(
                                    job = id,
                                    "job {id} ended {status}, but this worker had lost it (its lease expired): its result is dropped"
                                );
                                break;
                            }
                            Err(e) => e,
                        };
                        if !app.store_failing.swap(true, Ordering::Relaxed) {
                            tracing::error!("job {id} ended {status}, but {e}; trying again");
                        }
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(5));
                    }
                    if app.store_failing.swap(false, Ordering::Relaxed) {
                        tracing::info!("the store takes writes again");
                    }
                    fleet::remove_scratch(&scratch);
                    app.job_ended(id);
                });
            }
            _ => {}
        }
    }
}

/// Why the server could not start or went down.
#[derive(Debug)]
pub enum Failure {
    /// Bad settings or a place it cannot use (exit 2).
    Invalid(String),
    /// Anything else (exit 1).
    Failed(String),
}

/// Runs the server until SIGTERM or SIGINT, then drains.
pub fn serve(settings: Settings) -> Result<(), Failure> {
    // Jobs' env (secrets, often) and output live here: drover's user only,
    // where drover makes the folders.
    let made = {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(settings.state_dir.join("output"))
    };
    if let Err(e) = made {
        return Err(Failure::Invalid(format!(
            "cannot make the state folder {}: {e}",
            settings.state_dir.display()
        )));
    }
    // One server a state folder: another would take its jobs for leftovers
    // of a crash. Held while this process lives.
    let lock_path = settings.state_dir.join("lock");
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Failure::Invalid(format!("cannot open {}: {e}", lock_path.display())))?;
    if rustix::fs::flock(
        &lock_file,
        rustix::fs::FlockOperation::NonBlockingLockExclusive,
    )
    .is_err()
    {
        return Err(Failure::Invalid(format!(
            "another drover serve uses the state folder {}; give each server a folder of its own (--state-dir)",
            settings.state_dir.display()
        )));
    }
    let fds = FdBudget::of_process();
    // Twice the CPUs: a runtime thread that starts a job waits until the
    // job has exec'd (vfork), and the job, niced below the server, waits
    // behind the server's other threads for a CPU, so a thread per CPU
    // leaves the API short of threads when jobs start fast. Measured (10k
    // POST of `true`, -j16, 2 CPUs, nice 10): 5 000 accepted/s with 2,
    // 6 200 with 3, 7 200-7 400 with 4, 6 900-7 100 with 6.
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(2 * crate::plan::cpus().get());
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return Err(Failure::Failed(format!("failed to start the runtime: {e}"))),
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(settings.listen).await {
            Ok(l) => l,
            Err(e) => {
                return Err(Failure::Invalid(format!(
                    "cannot listen on {}: {e}",
                    settings.listen
                )));
            }
        };
        let store = match &settings.store {
            None => match SqliteStore::open(&settings.state_dir).await {
                Ok(s) => Store::Local(s),
                Err(e) => return Err(Failure::Failed(e.to_string())),
            },
            Some(url) => match fleet::connect(url, settings.lease).await {
                Ok(pg) => Store::Fleet(pg),
                Err(e) => return Err(Failure::Failed(e)),
            },
        };
        let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
            .set_buckets(&[
                0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, 3600.0,
            ])
            .ok()
            .and_then(|b| b.install_recorder().ok());
        let allowed = settings.allow.as_ref().map(|list| {
            list.iter()
                .map(|p| api::resolve_allowed(p, &settings.base))
                .collect()
        });
        crate::exec::escape::start();
        let slots = match store.fleet() {
            // A worker claims what it can run at once: not the whole queue.
            Some(_) => Some(settings.max_parallel.unwrap_or(fleet::DEFAULT_SLOTS)),
            None => settings.max_parallel,
        };
        let engine = Engine::start(engine::Limits { slots, fds });
        let events = match engine.subscribe(true).await {
            Ok(e) => e,
            Err(_) => return Err(Failure::Failed("the engine did not start".into())),
        };
        let app = Arc::new(App {
            settings,
            store,
            engine,
            live: Mutex::new(HashMap::new()),
            queued: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            store_failing: AtomicBool::new(false),
            metrics,
            allowed,
            slot_freed: tokio::sync::Notify::new(),
            uploads: fleet::Uploads::default(),
            fleet_queued: std::sync::atomic::AtomicUsize::new(0),
            fleet_counted: tokio::sync::Mutex::new(None),
            stdin_news: watch::channel(0).0,
        });
        let recorder = tokio::spawn(record(app.clone(), events));
        let worker = match app.store.fleet() {
            Some(pg) => Some(fleet::start(app.clone(), pg.clone(), slots)),
            None => {
                recover::restart(&app).await.map_err(Failure::Failed)?;
                None
            }
        };
        let expiry = tokio::spawn(expire(app.clone()));
        let addr = listener.local_addr().map_or(app.settings.listen, |a| a);
        // Scripts and tests read the port from this line (`--listen :0`).
        tracing::info!(%addr, "drover serve: listening on http://{addr}");
        let (stop_tx, stop_rx) = watch::channel(false);
        let server = {
            let router = api::router(app.clone());
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = stop.wait_for(|s| *s).await;
                    })
                    .await
            })
        };
        let mut interrupts = crate::sched::signal::listen();
        let first = interrupts.recv().await;
        app.draining.store(true, Ordering::Relaxed);
        // Queued jobs stay queued, for the next start: none starts now.
        let _ = app.engine.hold().await;
        let name = first.map_or("a stop", |i| i.name());
        let running = app.running.load(Ordering::Relaxed);
        let grace = humantime::format_duration(app.settings.drain_timeout);
        tracing::info!(
            signal = name,
            running,
            "drover serve: {name}: draining: no new jobs; {running} running get up to {grace}; a second signal stops them now"
        );
        let deadline = tokio::time::Instant::now() + app.settings.drain_timeout;
        let mut how = How::Graceful;
        loop {
            if app.running.load(Ordering::Relaxed) == 0 {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                Some(_) = interrupts.recv() => {
                    how = How::Now;
                    break;
                }
            }
        }
        // A signal while they are being stopped: kill them now.
        let escalate = {
            let engine = app.engine.clone();
            tokio::spawn(async move {
                if interrupts.recv().await.is_some() {
                    let _ = engine.shutdown(How::Now).await;
                }
            })
        };
        let _ = app.engine.shutdown(how).await;
        crate::exec::escape::finish();
        if let Some(worker) = worker {
            worker.stop().await;
        }
        escalate.abort();
        let _ = stop_tx.send(true);
        expiry.abort();
        let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
        let _ = tokio::time::timeout(Duration::from_secs(30), wait_recorded(&app)).await;
        recorder.abort();
        let _ = app.store.flush().await;
        tracing::info!("drover serve: stopped");
        drop(lock_file);
        Ok(())
    })
}

/// Waits until every live job's end is recorded.
async fn wait_recorded(app: &App) {
    while !lock(&app.live).is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Deletes ended jobs past `retention`, and their output, every minute
/// (or half the retention, if that is shorter).
async fn expire(app: Arc<App>) {
    loop {
        let before =
            now_ms() - i64::try_from(app.settings.retention.as_millis()).unwrap_or(i64::MAX);
        match app.store.expire(before).await {
            Ok(ids) => {
                for id in ids {
                    for stream in ["stdout", "stderr"] {
                        let _ = std::fs::remove_file(config::output_path(
                            &app.settings.state_dir,
                            id,
                            stream,
                        ));
                    }
                }
            }
            Err(e) => tracing::warn!("cannot delete old jobs: {e}"),
        }
        // A minute, or sooner for a short retention.
        let every =
            (app.settings.retention / 2).clamp(Duration::from_millis(50), Duration::from_secs(60));
        tokio::time::sleep(every).await;
    }
}

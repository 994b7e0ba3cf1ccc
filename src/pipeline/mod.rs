//! Running a `[[pipeline]]`: a source of items, stages of processes, and a
//! bounded queue in front of every stage — the seed's `Queue(maxsize)`
//! pipeline with `get`, `task_done` and `join` done right.
//!
//! Each stage is a task; a full queue makes `send` wait, so a slow stage
//! slows its producers instead of filling memory, and nothing busy-waits.
//! The pipeline ends as `Queue.join()` does: the source is exhausted, each
//! stage has drained its queue, and the end of input travels down the
//! stages as the closing of their queues (stream workers get EOF).

mod item;
mod stream;

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::exec::Control;
use crate::exec::capture::{Keep, LineSink};
use crate::model::{Exit, FailedItem, JobResult, PipelineReport, StageReport, Status};
use crate::plan::JobSpec;
use crate::plan::pipeline::{ItemSource, Mode, Output, PipelineSpec};

/// How many failed items the report lists; past that it counts them.
pub const MAX_LISTED_FAILURES: usize = 1000;
/// How much of a failed item's stderr the report keeps.
pub const ITEM_STDERR_TAIL: usize = 4096;

/// Live counts of one stage, read by the progress view.
#[derive(Debug, Default)]
pub struct StageStats {
    pub name: String,
    pub mode: &'static str,
    pub workers: usize,
    pub items_in: AtomicU64,
    pub items_out: AtomicU64,
    pub failed: AtomicU64,
    /// Items (or stream workers) being worked on now.
    pub busy_now: AtomicUsize,
    pub busy_ns: AtomicU64,
    /// Items waiting in the queue in front of this stage, now and at most.
    pub queued: AtomicUsize,
    pub max_queue: AtomicUsize,
    pub restarts: AtomicU64,
}

/// Live state of a pipeline, shared with the progress view.
#[derive(Debug, Default)]
pub struct PipelineStats {
    pub queue: usize,
    /// Items read from the source so far.
    pub items: AtomicU64,
    /// Items that left the last stage.
    pub delivered: AtomicU64,
    pub stages: Vec<StageStats>,
    failed_items: Mutex<Vec<FailedItem>>,
    failed_total: AtomicU64,
    errors: Mutex<Vec<String>>,
}

impl PipelineStats {
    pub fn new(spec: &PipelineSpec) -> Self {
        Self {
            queue: spec.queue,
            stages: spec
                .stages
                .iter()
                .map(|s| StageStats {
                    name: s.name.clone(),
                    mode: match s.mode {
                        Mode::PerItem(_) => "item",
                        Mode::Stream => "stream",
                    },
                    workers: s.workers,
                    ..StageStats::default()
                })
                .collect(),
            ..Self::default()
        }
    }

    pub fn failed_total(&self) -> u64 {
        self.failed_total.load(Relaxed)
    }
}

/// What the report says of a pipeline, from its live state.
fn report_of(stats: &PipelineStats) -> PipelineReport {
    let failed_items = stats
        .failed_items
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    PipelineReport {
        items: stats.items.load(Relaxed),
        delivered: stats.delivered.load(Relaxed),
        queue: stats.queue,
        stages: stats
            .stages
            .iter()
            .map(|s| StageReport {
                name: s.name.clone(),
                mode: s.mode,
                workers: s.workers,
                items_in: s.items_in.load(Relaxed),
                items_out: s.items_out.load(Relaxed),
                failed: s.failed.load(Relaxed),
                busy_ms: s.busy_ns.load(Relaxed) / 1_000_000,
                max_queue_depth: s.max_queue.load(Relaxed),
                restarts: s.restarts.load(Relaxed),
            })
            .collect(),
        failed_items_omitted: stats
            .failed_total
            .load(Relaxed)
            .saturating_sub(failed_items.len() as u64),
        failed_items,
        errors: stats.errors.lock().map(|e| e.clone()).unwrap_or_default(),
    }
}

/// What every stage shares.
pub(crate) struct Ctx {
    pub spec: Arc<PipelineSpec>,
    pub stats: Arc<PipelineStats>,
    /// The pipeline's own stop: the run's, or fail_fast, or its timeout.
    pub ctl: Control,
    pub failed_fast: AtomicBool,
    pub sink: Sink,
}

impl Ctx {
    /// Records an item that failed at `stage`; with `fail_fast`, stops the
    /// pipeline.
    pub fn fail(&self, stage: usize, item: &str, result: &JobResult) {
        self.stats.stages[stage].failed.fetch_add(1, Relaxed);
        self.stats.failed_total.fetch_add(1, Relaxed);
        if let Ok(mut list) = self.stats.failed_items.lock()
            && list.len() < MAX_LISTED_FAILURES
        {
            let (stderr, _) = result.stderr.tail(ITEM_STDERR_TAIL);
            list.push(FailedItem {
                stage: self.spec.stages[stage].name.clone(),
                item: item.to_string(),
                status: result.status,
                exit_code: match result.exit {
                    Some(Exit::Code(c)) => Some(c),
                    _ => None,
                },
                signal: match result.exit {
                    Some(Exit::Signal(s)) => Some(s),
                    _ => None,
                },
                stderr: String::from_utf8_lossy(&stderr).into_owned(),
                error: result.error.clone().unwrap_or_default(),
            });
        }
        if self.spec.fail_fast && !self.failed_fast.swap(true, Relaxed) {
            self.error(format!(
                "fail_fast: an item failed at stage `{}`; the pipeline was stopped",
                self.spec.stages[stage].name
            ));
            self.ctl.cancel.cancel();
        }
    }

    /// Records a problem that is not one item's (the source, a stage).
    pub fn error(&self, why: String) {
        tracing::warn!("{why}");
        if let Ok(mut e) = self.stats.errors.lock() {
            e.push(why);
        }
    }

    /// Passes `item` from `stage` to the next stage's queue (or the output,
    /// after the last). Waits while that queue is full; false once the
    /// pipeline is stopping.
    pub async fn emit(
        &self,
        stage: usize,
        next: Option<&mpsc::Sender<String>>,
        item: String,
    ) -> bool {
        self.stats.stages[stage].items_out.fetch_add(1, Relaxed);
        match next {
            Some(tx) => push(tx, &self.stats.stages[stage + 1], &self.ctl, item).await,
            None => {
                self.stats.delivered.fetch_add(1, Relaxed);
                self.sink.write(&item);
                true
            }
        }
    }
}

/// Sends into a stage's queue, waiting while it is full, and records how
/// deep it got. False if the pipeline is stopping.
async fn push(tx: &mpsc::Sender<String>, to: &StageStats, ctl: &Control, item: String) -> bool {
    let sent = tokio::select! {
        biased;
        _ = ctl.cancel.cancelled() => false,
        r = tx.send(item) => r.is_ok(),
    };
    if sent {
        let depth = to.queued.fetch_add(1, Relaxed) + 1;
        to.max_queue
            .fetch_max(depth.min(tx.max_capacity()), Relaxed);
    }
    sent
}

/// Takes an item out of a stage's queue (None: drained and closed).
pub(crate) fn took(stats: &StageStats, n: usize) {
    // Saturating: the count may be taken just before the sender adds it.
    let _ = stats
        .queued
        .fetch_update(Relaxed, Relaxed, |q| Some(q.saturating_sub(n)));
}

/// Where the items leaving the last stage go.
pub(crate) enum Sink {
    Null,
    Write(Mutex<Writer>),
}

/// The output and what could not be written to it: an item that cannot be
/// written is never dropped without a word.
pub(crate) struct Writer {
    out: Box<dyn std::io::Write + Send>,
    failed: Option<std::io::Error>,
    lost: u64,
}

impl Sink {
    fn open(output: &Output) -> Result<Self, String> {
        let out: Box<dyn std::io::Write + Send> = match output {
            Output::Null => return Ok(Sink::Null),
            Output::Inherit => Box::new(std::io::LineWriter::new(std::io::stdout())),
            Output::File { path, append } => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .write(true)
                    .append(*append)
                    .truncate(!*append)
                    .open(path)
                    .map_err(|e| format!("cannot open output file {}: {e}", path.display()))?;
                Box::new(std::io::BufWriter::new(file))
            }
        };
        Ok(Sink::Write(Mutex::new(Writer {
            out,
            failed: None,
            lost: 0,
        })))
    }

    fn write(&self, item: &str) {
        if let Sink::Write(w) = self
            && let Ok(mut w) = w.lock()
        {
            // After a failed write, the rest is counted, not tried: the
            // output's order is already broken.
            if w.failed.is_some() {
                w.lost += 1;
                return;
            }
            let wrote = w
                .out
                .write_all(item.as_bytes())
                .and_then(|()| w.out.write_all(b"\n"));
            if let Err(e) = wrote {
                w.failed = Some(e);
                w.lost += 1;
            }
        }
    }

    /// Flushes; an error names what was lost.
    fn flush(&self) -> Result<(), String> {
        let Sink::Write(w) = self else { return Ok(()) };
        let Ok(mut w) = w.lock() else { return Ok(()) };
        if w.failed.is_none()
            && let Err(e) = w.out.flush()
        {
            w.failed = Some(e);
        }
        match &w.failed {
            None => Ok(()),
            Some(e) if w.lost > 0 => Err(format!(
                "cannot write the output: {e}; {} item{} that left the last stage {} lost",
                w.lost,
                if w.lost == 1 { "" } else { "s" },
                if w.lost == 1 { "was" } else { "were" }
            )),
            Some(e) => Err(format!(
                "cannot write the output: {e}; items written before may be lost"
            )),
        }
    }
}

/// Runs the pipeline `job` (whose program is `spec`) to its end.
pub async fn run(
    job: &JobSpec,
    spec: Arc<PipelineSpec>,
    ctl: &Control,
    stats: Arc<PipelineStats>,
) -> JobResult {
    let started_at = SystemTime::now();
    let started = Instant::now();
    let sink = match Sink::open(&spec.output) {
        Ok(s) => s,
        Err(why) => return JobResult::not_started(Status::SpawnFailed, why),
    };
    let local = Control {
        cancel: ctl.cancel.child_token(),
        kill_now: ctl.kill_now.child_token(),
    };
    let ctx = Arc::new(Ctx {
        spec: spec.clone(),
        stats: stats.clone(),
        ctl: local.clone(),
        failed_fast: AtomicBool::new(false),
        sink,
    });

    // A queue in front of every stage; stage i sends into queue i + 1.
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for _ in &spec.stages {
        let (tx, rx) = mpsc::channel::<String>(spec.queue);
        senders.push(tx);
        receivers.push(rx);
    }
    let mut tasks = tokio::task::JoinSet::new();
    let first = senders[0].clone();
    let source = tokio::spawn({
        let ctx = ctx.clone();
        async move { produce(&ctx, first).await }
    });
    for (i, rx) in receivers.into_iter().enumerate() {
        let next = senders.get(i + 1).cloned();
        let ctx = ctx.clone();
        tasks.spawn(async move {
            match ctx.spec.stages[i].mode {
                Mode::PerItem(emit) => item::stage(ctx.clone(), i, emit, rx, next).await,
                Mode::Stream => stream::stage(&ctx, i, rx, next).await,
            }
        });
    }
    drop(senders);

    let timed_out = Arc::new(AtomicBool::new(false));
    let timer = job.timeout.map(|t| {
        let (cancel, timed_out) = (local.cancel.clone(), timed_out.clone());
        tokio::spawn(async move {
            crate::exec::pause::Deadline::after(t).expired().await;
            timed_out.store(true, Relaxed);
            cancel.cancel();
        })
    });

    let source_result = source
        .await
        .unwrap_or_else(|e| Err(format!("internal error in the item source: {e}")));
    if let Err(why) = &source_result {
        ctx.error(why.clone());
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            ctx.error(format!("internal error in a stage: {e}"));
        }
    }
    if let Some(t) = timer {
        t.abort();
    }
    if let Err(why) = ctx.sink.flush() {
        ctx.error(why);
    }

    let failed = stats.failed_total();
    let errors = stats.errors.lock().map(|e| e.len()).unwrap_or(0);
    let (status, error) = if ctl.cancel.is_cancelled() {
        (
            Status::Cancelled,
            Some("stopped by drover when the run was stopped".to_string()),
        )
    } else if timed_out.load(Relaxed) {
        (
            Status::TimedOut,
            Some(format!(
                "timed out after {}",
                humantime::format_duration(job.timeout.unwrap_or_default())
            )),
        )
    } else if failed > 0 || errors > 0 || source_result.is_err() {
        let mut why = Vec::new();
        if failed > 0 {
            why.push(format!(
                "{failed} item{} failed",
                if failed == 1 { "" } else { "s" }
            ));
        }
        if let Ok(e) = stats.errors.lock() {
            why.extend(e.iter().cloned());
        }
        (Status::Failed, Some(why.join("; ")))
    } else {
        (Status::Succeeded, None)
    };
    JobResult {
        status,
        exit: None,
        attempts: 1,
        pid: None,
        started_at: Some(started_at),
        duration: Some(started.elapsed()),
        stdout: Default::default(),
        stderr: Default::default(),
        error,
        leaked: false,
        pipeline: Some(Box::new(report_of(&stats))),
    }
}

/// Reads the items into the first queue, lazily: never more than the queue
/// holds is in memory.
async fn produce(ctx: &Ctx, tx: mpsc::Sender<String>) -> Result<(), String> {
    let first = &ctx.stats.stages[0];
    let send = |item: String| {
        ctx.stats.items.fetch_add(1, Relaxed);
        push(&tx, first, &ctx.ctl, item)
    };
    match &ctx.spec.items {
        ItemSource::List(list) => {
            for item in list {
                if !send(item.clone()).await {
                    break;
                }
            }
            Ok(())
        }
        ItemSource::File(path) => {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| format!("cannot read the items file {}: {e}", path.display()))?;
            let mut lines = BufReader::with_capacity(64 * 1024, file);
            let mut line = Vec::new();
            loop {
                line.clear();
                match lines.read_until(b'\n', &mut line).await {
                    Ok(0) => return Ok(()),
                    Ok(_) => {
                        if let Some(item) = item_of(&line)
                            && !send(item).await
                        {
                            return Ok(());
                        }
                    }
                    Err(e) => {
                        return Err(format!(
                            "cannot read the items file {}: {e}",
                            path.display()
                        ));
                    }
                }
            }
        }
        ItemSource::Command(job) => {
            let (lines_tx, mut lines_rx) = mpsc::channel(4);
            let keep = (
                Keep::Lines(LineSink {
                    job: 0,
                    stderr: false,
                    tx: lines_tx,
                }),
                Keep::Tail(ITEM_STDERR_TAIL),
            );
            let forward = async {
                let mut partial: Vec<u8> = Vec::new();
                let mut open = true;
                while let Some((_, _, mut chunk)) = lines_rx.recv().await {
                    if !open {
                        continue;
                    }
                    for line in split_lines(&mut partial, &mut chunk) {
                        if let Some(item) = item_of(&line)
                            && !send(item).await
                        {
                            open = false;
                            break;
                        }
                    }
                }
                if open && let Some(item) = item_of(&partial) {
                    send(item).await;
                }
            };
            let (attempt, ()) =
                futures::join!(crate::exec::run_one(0, job, &ctx.ctl, keep), forward);
            let result = crate::exec::to_result(job, attempt, 1);
            match result.status {
                Status::Succeeded | Status::Cancelled => Ok(()),
                _ => {
                    let (tail, _) = result.stderr.tail(ITEM_STDERR_TAIL);
                    let tail = String::from_utf8_lossy(&tail);
                    Err(format!(
                        "the items command {}: {}{}",
                        result.status.as_str(),
                        result.error.unwrap_or_default(),
                        if tail.trim().is_empty() {
                            String::new()
                        } else {
                            format!("; stderr: {}", tail.trim_end())
                        }
                    ))
                }
            }
        }
    }
}

/// A line as an item: without its line end; empty lines are no items.
fn item_of(line: &[u8]) -> Option<String> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    (!line.is_empty()).then(|| String::from_utf8_lossy(line).into_owned())
}

/// Adds the time since `since` to a stage's busy time.
pub(crate) fn add_busy(stats: &StageStats, since: Instant) {
    let ns = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
    stats.busy_ns.fetch_add(ns, Relaxed);
}

/// Moves the complete lines out of `buf` (with `partial`, the unfinished line
/// of the previous read, in front).
pub(crate) fn split_lines(partial: &mut Vec<u8>, buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let mut start = 0;
    while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
        let end = start + nl + 1;
        if partial.is_empty() {
            lines.push(buf[start..end].to_vec());
        } else {
            partial.extend_from_slice(&buf[start..end]);
            lines.push(std::mem::take(partial));
        }
        start = end;
    }
    partial.extend_from_slice(&buf[start..]);
    buf.clear();
    lines
}

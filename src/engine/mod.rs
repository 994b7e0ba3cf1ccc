//! The engine: one dispatcher that runs every job of the process, fed by
//! commands (submit a batch, cancel a job or a batch, shut down) and telling
//! what happens as events.
//!
//! The dispatcher task owns all the state; it `select!`s over commands and
//! the events of running units, starts units as their `needs` are met and
//! slots and file descriptors allow, skips the dependants of unsuccessful
//! jobs, and stops a batch on fail_fast or when told to. A unit's slots and
//! descriptors are given back only once the dispatcher has seen its
//! results, so a stop can never lose the race to a waiting unit. Batches
//! may arrive while others run; each has its own policy and its own stop.

#[cfg(test)]
mod tests;
mod unit;

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Notify, mpsc, oneshot};

use crate::exec::fdlimit::{FdBudget, JobCost, job_cost};
use crate::exec::spool::Spool;
use crate::exec::{Control, Keeping};
use crate::model::{BatchId, JobId, JobResult, Status};
use crate::pipeline::PipelineStats;
use crate::plan::{Plan, Unit};

/// The process-wide limits the engine is started with.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Jobs at once (`None`: no limit).
    pub slots: Option<NonZeroUsize>,
    /// The process's descriptor budget ([`FdBudget::of_process`]).
    pub fds: FdBudget,
}

/// How to stop running jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// SIGTERM, `kill_grace`, then SIGKILL.
    Graceful,
    /// SIGKILL at once.
    Now,
}

/// Why a batch stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Interrupted by a signal (its name, e.g. "SIGINT").
    Interrupted(&'static str),
    /// A job did not succeed and the batch has `fail_fast`.
    FailFast {
        job: JobId,
        name: String,
        status: Status,
    },
    /// `drover exec --halt`: enough jobs failed (or succeeded).
    Halted,
    /// `drover exec`: drover's own stdout was closed (`| head -1`).
    StdoutClosed,
    /// Cancelled by a command.
    Cancelled,
    /// The engine was shut down.
    Shutdown,
}

impl StopReason {
    /// Why the jobs that never started did not.
    fn not_started(&self) -> String {
        match self {
            StopReason::Interrupted(signal) => {
                format!("not started: the run was interrupted by {signal}")
            }
            StopReason::FailFast { .. } => "not started: fail_fast stopped the run".into(),
            StopReason::Halted => "not started: --halt stopped the run".into(),
            StopReason::StdoutClosed => "not started: drover's stdout was closed".into(),
            StopReason::Cancelled => "cancelled before it started".into(),
            StopReason::Shutdown => "not started: drover was shut down".into(),
        }
    }
}

/// What a cancel is aimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Job(JobId),
    Batch(BatchId),
}

/// What the engine tells its subscribers, in the order it happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// A batch was taken: its jobs have the ids `jobs` (in plan order).
    Accepted { batch: BatchId, jobs: Vec<JobId> },
    /// A job's process started (only to subscribers that asked for starts).
    /// `stdout` is where its output waits when grouped (exec): what the
    /// printer follows when this job's output is printed next.
    Started {
        job: JobId,
        pid: u32,
        stdout: Option<Arc<Spool>>,
    },
    /// A pipeline started; `stats` are its live counts.
    PipelineStarted {
        job: JobId,
        stats: Arc<PipelineStats>,
    },
    /// An attempt failed and the job will run again.
    Retrying {
        job: JobId,
        attempt: u32,
        result: Arc<JobResult>,
    },
    /// A job's end (every job of a batch gets exactly one).
    Finished { job: JobId, result: Arc<JobResult> },
    /// A batch is stopping: its running jobs are being stopped, the rest
    /// will not start.
    Stopping {
        batch: BatchId,
        reason: StopReason,
        running_jobs: usize,
    },
    /// Every job of a batch has finished.
    BatchDone(Arc<BatchDone>),
}

/// A batch's end: its results in plan order.
#[derive(Debug)]
pub struct BatchDone {
    pub batch: BatchId,
    pub results: Vec<Arc<JobResult>>,
    pub stop: Option<StopReason>,
    pub started_at: SystemTime,
    pub duration: Duration,
}

/// How a batch is run beyond what its plan says.
#[derive(Clone, Default)]
pub struct SubmitOptions {
    /// Each running job can be cancelled by its id (a cancellation of its
    /// own per unit, which a batch that never needs it does without).
    pub cancel_jobs: bool,
    /// Run under this cancellation instead of one of the batch's own: the
    /// batches that share it are stopped together by one cancel (`drover
    /// exec`'s batches of one job each), and none costs two more tokens.
    pub control: Option<Control>,
    /// What a unit of one job keeps of its output, instead of the tails of
    /// `capture_limit` (`drover exec`).
    pub keeping: Option<Keeping>,
    /// The id of the plan's first job (job `j` is this + `j`), where the
    /// caller has ids of its own (`drover serve`: its store's rows); later
    /// ids the engine gives go on above them. The caller keeps them unique.
    pub first_job: Option<JobId>,
    /// Awaited before each attempt of each unit starts (with the attempt's
    /// number, from 1): `drover serve` commits the start to its store
    /// first. An error ends the unit's jobs `spawn_failed`, saying why.
    pub before_start: Option<BeforeStart>,
}

/// See [`SubmitOptions::before_start`].
pub type BeforeStart =
    Arc<dyn Fn(u32) -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// The ids a submitted batch got.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub batch: BatchId,
    /// One per job, in plan order.
    pub jobs: Vec<JobId>,
}

enum Command {
    Submit {
        plan: Arc<Plan>,
        options: SubmitOptions,
        reply: oneshot::Sender<Submitted>,
    },
    Cancel {
        target: Target,
        how: How,
        reason: StopReason,
    },
    Subscribe {
        tx: mpsc::UnboundedSender<Event>,
        starts: bool,
    },
    Shutdown {
        how: How,
        done: oneshot::Sender<()>,
    },
    Hold(oneshot::Sender<()>),
}

/// A handle on the engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    commands: mpsc::Sender<Command>,
}

/// The engine is gone (its dispatcher ended).
#[derive(Debug)]
pub struct Gone;

impl std::fmt::Display for Gone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the engine has shut down")
    }
}

impl std::error::Error for Gone {}

/// Commands waiting for the dispatcher: a full queue holds submitters back.
const COMMAND_QUEUE: usize = 64;

impl Engine {
    /// Starts the dispatcher; must be called within a runtime.
    pub fn start(limits: Limits) -> Engine {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let (dispatcher, events) = Dispatcher::new(limits);
        tokio::spawn(dispatcher.run(rx, events));
        Engine { commands: tx }
    }

    /// Submits a batch: the jobs and pipelines of `plan`, with its needs,
    /// pipes and fail_fast. Returns the ids given.
    pub async fn submit(&self, plan: Arc<Plan>) -> Result<Submitted, Gone> {
        self.submit_with(plan, SubmitOptions::default()).await
    }

    /// [`Engine::submit`] with options.
    pub async fn submit_with(
        &self,
        plan: Arc<Plan>,
        options: SubmitOptions,
    ) -> Result<Submitted, Gone> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Submit {
            plan,
            options,
            reply,
        })
        .await?;
        answer.await.map_err(|_| Gone)
    }

    /// Cancels a job (with the jobs that need it) or a whole batch.
    pub async fn cancel(&self, target: Target, how: How, reason: StopReason) -> Result<(), Gone> {
        self.send(Command::Cancel {
            target,
            how,
            reason,
        })
        .await
    }

    /// Every event from now on, none lost. `starts`: whether to be told of
    /// each process start (a run with no live view saves a wake-up a job).
    pub async fn subscribe(&self, starts: bool) -> Result<mpsc::UnboundedReceiver<Event>, Gone> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.send(Command::Subscribe { tx, starts }).await?;
        Ok(rx)
    }

    /// Starts nothing more: what runs goes on, what waits keeps waiting
    /// (until `shutdown`, which skips it). Answers once in force: no unit
    /// starts after this returns.
    pub async fn hold(&self) -> Result<(), Gone> {
        let (done, held) = oneshot::channel();
        self.send(Command::Hold(done)).await?;
        held.await.map_err(|_| Gone)
    }

    /// Stops every batch (`how`), waits for every job to end, and ends the
    /// dispatcher.
    pub async fn shutdown(&self, how: How) -> Result<(), Gone> {
        let (done, ended) = oneshot::channel();
        self.send(Command::Shutdown { how, done }).await?;
        ended.await.map_err(|_| Gone)
    }

    async fn send(&self, command: Command) -> Result<(), Gone> {
        self.commands.send(command).await.map_err(|_| Gone)
    }
}

/// What units of a batch send the dispatcher.
enum UnitEvent {
    Started {
        batch: BatchId,
        job: usize,
        pid: u32,
        stdout: Option<Arc<Spool>>,
    },
    Pipeline {
        batch: BatchId,
        job: usize,
        stats: Arc<PipelineStats>,
    },
    Retrying {
        batch: BatchId,
        job: usize,
        attempt: u32,
        result: JobResult,
    },
    Done {
        batch: BatchId,
        unit: usize,
        /// The descriptors the unit held while it ran.
        held: u32,
        results: Vec<(usize, JobResult)>,
    },
}

/// What the dispatcher shares with every unit's task of one batch.
struct Shared {
    batch: BatchId,
    plan: Arc<Plan>,
    ctl: Control,
    keeping: Option<Keeping>,
    before_start: Option<BeforeStart>,
    tx: mpsc::UnboundedSender<UnitEvent>,
    /// Told when a spawn has freed the descriptors only spawning needs.
    fd_freed: Arc<Notify>,
}

/// A batch as the dispatcher sees it.
struct Batch {
    shared: Arc<Shared>,
    /// The id of the plan's job 0; job `j` is `first + j`.
    first: u64,
    results: Vec<Option<Arc<JobResult>>>,
    /// For each unit, how many of the jobs it needs are unfinished; for
    /// each job, the units waiting on it.
    unfinished_needs: Vec<usize>,
    dependants: Vec<Vec<usize>>,
    /// Units running, and waiting in the ready queue.
    running: usize,
    running_jobs: usize,
    queued: usize,
    stop: Option<StopReason>,
    started_at: SystemTime,
    started: Instant,
    /// With `cancel_jobs`: the cancellation of each running unit.
    unit_ctl: Option<HashMap<usize, Control>>,
    /// Running units cancelled by a job's id: their end is no failure.
    cancelled_units: Vec<usize>,
}

impl Batch {
    fn job_id(&self, job: usize) -> JobId {
        JobId(self.first + job as u64)
    }
}

struct Dispatcher {
    limits: Limits,
    fds: FdBudget,
    busy_slots: usize,
    /// Boxed: a table of thousands of batches (one a job of `drover
    /// exec`) holds a pointer each, not a batch each, in its spare room.
    batches: HashMap<BatchId, Box<Batch>>,
    /// Units ready to start, across batches, first come first served.
    ready: VecDeque<(BatchId, usize)>,
    /// Batches that may have nothing left to run or start: looked at, and
    /// ended if so, once the loop comes round (not every batch every time:
    /// `drover exec` runs thousands of batches of one job).
    may_end: Vec<BatchId>,
    subscribers: Vec<(mpsc::UnboundedSender<Event>, bool)>,
    next_batch: u64,
    next_job: u64,
    /// The root of every batch's cancellation.
    root: Control,
    fd_freed: Arc<Notify>,
    tx: mpsc::UnboundedSender<UnitEvent>,
    /// Who waits for the shutdown (empty: not shutting down).
    shutdown: Vec<oneshot::Sender<()>>,
    /// `hold`: start nothing more.
    held: bool,
}

impl Dispatcher {
    fn new(limits: Limits) -> (Self, mpsc::UnboundedReceiver<UnitEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let fds = limits.fds.clone();
        (
            Dispatcher {
                limits,
                fds,
                busy_slots: 0,
                batches: HashMap::new(),
                ready: VecDeque::new(),
                may_end: Vec::new(),
                subscribers: Vec::new(),
                next_batch: 1,
                next_job: 1,
                root: Control::default(),
                fd_freed: Arc::new(Notify::new()),
                tx,
                shutdown: Vec::new(),
                held: false,
            },
            rx,
        )
    }
}

/// The slots a unit takes: one a job, all of them if it has more jobs.
fn slots_of(max: Option<usize>, unit: &Unit) -> usize {
    max.map_or(0, |max| unit.jobs.len().min(max))
}

impl Dispatcher {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut events: mpsc::UnboundedReceiver<UnitEvent>,
    ) {
        let mut commands_open = true;
        loop {
            let blocked_on_fds = self.start_ready();
            self.finish_batches();
            if self.batches.is_empty() && (!self.shutdown.is_empty() || !commands_open) {
                break;
            }
            tokio::select! {
                biased;
                // Read while shutting down too: a second shutdown or a
                // cancel may ask to kill now.
                command = commands.recv(), if commands_open => match command {
                    Some(command) => self.command(command),
                    // Every handle is gone: what runs is finished, then the
                    // dispatcher ends.
                    None => commands_open = false,
                },
                Some(event) = events.recv() => self.unit_event(event),
                _ = self.fd_freed.notified(), if blocked_on_fds => {}
            }
        }
        for done in self.shutdown.drain(..) {
            let _ = done.send(());
        }
    }

    fn emit(&mut self, event: Event) {
        let is_start = matches!(event, Event::Started { .. });
        self.subscribers
            .retain(|(tx, starts)| (is_start && !starts) || tx.send(event.clone()).is_ok());
    }

    fn command(&mut self, command: Command) {
        match command {
            // Shutting down: no new work (the reply is dropped: `Gone`).
            Command::Submit { .. } if !self.shutdown.is_empty() => {}
            Command::Submit {
                plan,
                options,
                reply,
            } => {
                let submitted = self.submit(plan, options);
                let _ = reply.send(submitted);
            }
            Command::Cancel {
                target,
                how,
                reason,
            } => self.cancel(target, how, reason),
            Command::Subscribe { tx, starts } => self.subscribers.push((tx, starts)),
            Command::Hold(done) => {
                self.held = true;
                let _ = done.send(());
            }
            Command::Shutdown { how, done } => {
                let batches: Vec<BatchId> = self.batches.keys().copied().collect();
                for b in batches {
                    self.cancel(Target::Batch(b), how, StopReason::Shutdown);
                }
                self.shutdown.push(done);
            }
        }
    }

    fn submit(&mut self, plan: Arc<Plan>, options: SubmitOptions) -> Submitted {
        let id = BatchId(self.next_batch);
        self.next_batch += 1;
        let n = plan.jobs.len();
        let first = options.first_job.map_or(self.next_job, |j| j.0);
        self.next_job = self.next_job.max(first + n as u64);
        let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (u, unit) in plan.units.iter().enumerate() {
            for &need in &unit.needs {
                dependants[need].push(u);
            }
        }
        let unfinished_needs: Vec<usize> = plan.units.iter().map(|u| u.needs.len()).collect();
        let mut queued = 0;
        for (u, &left) in unfinished_needs.iter().enumerate() {
            if left == 0 {
                self.ready.push_back((id, u));
                queued += 1;
            }
        }
        let ctl = options.control.unwrap_or_else(|| Control {
            cancel: self.root.cancel.child_token(),
            kill_now: self.root.kill_now.child_token(),
        });
        let shared = Arc::new(Shared {
            batch: id,
            plan,
            ctl,
            keeping: options.keeping,
            before_start: options.before_start,
            tx: self.tx.clone(),
            fd_freed: self.fd_freed.clone(),
        });
        let batch = Batch {
            shared,
            first,
            results: vec![None; n],
            unfinished_needs,
            dependants,
            running: 0,
            running_jobs: 0,
            queued,
            stop: None,
            started_at: SystemTime::now(),
            started: Instant::now(),
            unit_ctl: options.cancel_jobs.then(HashMap::new),
            cancelled_units: Vec::new(),
        };
        let jobs: Vec<JobId> = (0..n).map(|j| batch.job_id(j)).collect();
        self.batches.insert(id, Box::new(batch));
        // A plan with nothing to run ends at once.
        self.may_end.push(id);
        self.emit(Event::Accepted {
            batch: id,
            jobs: jobs.clone(),
        });
        Submitted { batch: id, jobs }
    }

    /// The batch a job belongs to, and its index in the batch's plan.
    fn find(&self, job: JobId) -> Option<(BatchId, usize)> {
        self.batches.iter().find_map(|(&id, b)| {
            let j = job.0.checked_sub(b.first)?;
            (j < b.results.len() as u64).then_some((id, j as usize))
        })
    }

    fn cancel(&mut self, target: Target, how: How, reason: StopReason) {
        let b = match target {
            Target::Batch(b) => b,
            Target::Job(job) => match self.find(job) {
                Some((b, j)) => return self.cancel_job(b, j, how),
                None => return,
            },
        };
        let Some(batch) = self.batches.get_mut(&b) else {
            return;
        };
        let ctl = batch.shared.ctl.clone();
        // A signal says more than a fail_fast stop already under way (the
        // exit code is the signal's): it is told, and replaces it.
        let overrides = matches!(reason, StopReason::Interrupted(_))
            && matches!(batch.stop, Some(StopReason::FailFast { .. }));
        if batch.stop.is_none() || overrides {
            batch.stop = Some(reason.clone());
            let running_jobs = batch.running_jobs;
            // Units not started will not start.
            self.ready.retain(|&(rb, _)| rb != b);
            batch.queued = 0;
            self.may_end.push(b);
            self.emit(Event::Stopping {
                batch: b,
                reason,
                running_jobs,
            });
            ctl.cancel.cancel();
        }
        if how == How::Now {
            ctl.kill_now.cancel();
        }
    }

    /// Cancels one job: one not started yet ends `cancelled` with the jobs
    /// joined to it by pipes, and their dependants are skipped; a running
    /// one is stopped (TERM, grace, KILL; or KILL now) if its batch was
    /// submitted with `cancel_jobs`.
    fn cancel_job(&mut self, b: BatchId, job: usize, how: How) {
        let Some(batch) = self.batches.get_mut(&b) else {
            return;
        };
        if batch.results[job].is_some() {
            return;
        }
        let plan = batch.shared.plan.clone();
        let Some(u) = plan.units.iter().position(|u| u.jobs.contains(&job)) else {
            return;
        };
        let before = self.ready.len();
        self.ready.retain(|&(rb, ru)| !(rb == b && ru == u));
        let unqueued = before - self.ready.len();
        if unqueued == 0 && batch.unfinished_needs[u] == 0 {
            // Running: stopped, if the batch lets its jobs be cancelled.
            match batch.unit_ctl.as_ref().and_then(|c| c.get(&u)) {
                Some(ctl) => {
                    batch.cancelled_units.push(u);
                    ctl.cancel.cancel();
                    if how == How::Now {
                        ctl.kill_now.cancel();
                    }
                }
                None => tracing::debug!("job {job} of batch {b} cannot be cancelled alone"),
            }
            return;
        }
        batch.queued -= unqueued;
        self.may_end.push(b);
        let mut done = Vec::new();
        for &j in &plan.units[u].jobs {
            let r = JobResult::not_started(Status::Cancelled, StopReason::Cancelled.not_started());
            done.push((j, r));
        }
        self.finished(b, done, true);
    }

    /// Records the results of finished jobs, and starts or skips what
    /// waited on them.
    fn finished(&mut self, b: BatchId, results: Vec<(usize, JobResult)>, by_user: bool) {
        let Some(batch) = self.batches.get_mut(&b) else {
            return;
        };
        let plan = batch.shared.plan.clone();
        let mut finished: Vec<usize> = Vec::new();
        let mut events = Vec::new();
        for (job, result) in results {
            // A job cancelled by its id is no failure of the batch's.
            if result.status != Status::Succeeded
                && plan.fail_fast
                && batch.stop.is_none()
                && !by_user
            {
                let reason = StopReason::FailFast {
                    job: batch.job_id(job),
                    name: plan.jobs[job].name.to_string(),
                    status: result.status,
                };
                batch.stop = Some(reason.clone());
                batch.shared.ctl.cancel.cancel();
                // Units not started will not start, wherever they wait.
                self.ready.retain(|&(rb, _)| rb != b);
                batch.queued = 0;
                events.push(Event::Stopping {
                    batch: b,
                    reason,
                    running_jobs: batch.running_jobs,
                });
            }
            let result = Arc::new(result);
            events.push(Event::Finished {
                job: batch.job_id(job),
                result: result.clone(),
            });
            batch.results[job] = Some(result);
            finished.push(job);
        }
        // Units whose needs are now all finished: start them, or skip them
        // (and their dependants, transitively).
        while let Some(job) = finished.pop() {
            for &d in &batch.dependants[job].clone() {
                batch.unfinished_needs[d] -= 1;
                if batch.unfinished_needs[d] > 0 {
                    continue;
                }
                let unit = &plan.units[d];
                if unit.jobs.iter().any(|&j| batch.results[j].is_some()) {
                    continue; // cancelled before it could start
                }
                let failed_need = unit.needs.iter().copied().find(|&n| {
                    batch.results[n]
                        .as_ref()
                        .is_some_and(|r| r.status != Status::Succeeded)
                });
                match failed_need {
                    None if batch.stop.is_none() => {
                        self.ready.push_back((b, d));
                        batch.queued += 1;
                    }
                    // Skipped when the batch ends, with the stop's words.
                    None => {}
                    Some(n) => {
                        let why = format!(
                            "needs `{}`, which {}",
                            plan.jobs[n].name,
                            batch.results[n]
                                .as_ref()
                                .map_or("did not run", |r| verb(r.status))
                        );
                        for &j in &unit.jobs {
                            let r = Arc::new(JobResult::not_started(Status::Skipped, why.clone()));
                            events.push(Event::Finished {
                                job: batch.job_id(j),
                                result: r.clone(),
                            });
                            batch.results[j] = Some(r);
                            finished.push(j);
                        }
                    }
                }
            }
        }
        for event in events {
            self.emit(event);
        }
    }

    fn unit_event(&mut self, event: UnitEvent) {
        match event {
            UnitEvent::Started {
                batch,
                job,
                pid,
                stdout,
            } => {
                if let Some(b) = self.batches.get(&batch) {
                    let job = b.job_id(job);
                    self.emit(Event::Started { job, pid, stdout });
                }
            }
            UnitEvent::Pipeline { batch, job, stats } => {
                if let Some(b) = self.batches.get(&batch) {
                    let job = b.job_id(job);
                    self.emit(Event::PipelineStarted { job, stats });
                }
            }
            UnitEvent::Retrying {
                batch,
                job,
                attempt,
                result,
            } => {
                if let Some(b) = self.batches.get(&batch) {
                    let job = b.job_id(job);
                    self.emit(Event::Retrying {
                        job,
                        attempt,
                        result: Arc::new(result),
                    });
                }
            }
            UnitEvent::Done {
                batch: b,
                unit,
                held,
                results,
            } => {
                let max = self.limits.slots.map(NonZeroUsize::get);
                if let Some(batch) = self.batches.get_mut(&b) {
                    let u = &batch.shared.plan.units[unit];
                    self.busy_slots -= slots_of(max, u);
                    batch.running -= 1;
                    batch.running_jobs -= u.jobs.len();
                    self.may_end.push(b);
                    if let Some(ctls) = &mut batch.unit_ctl {
                        ctls.remove(&unit);
                    }
                }
                self.fds.semaphore.add_permits(held as usize);
                let by_user = self.batches.get_mut(&b).is_some_and(|batch| {
                    let before = batch.cancelled_units.len();
                    batch.cancelled_units.retain(|&c| c != unit);
                    batch.cancelled_units.len() != before
                });
                self.finished(b, results, by_user);
            }
        }
    }

    /// Starts ready units while slots and descriptors allow; true if one
    /// waits for descriptors.
    fn start_ready(&mut self) -> bool {
        if self.held {
            // Nothing starts; a stopped batch's waiting units are skipped
            // still, so that it can end.
            let batches = &mut self.batches;
            let may_end = &mut self.may_end;
            self.ready.retain(|(b, _)| match batches.get_mut(b) {
                Some(batch) if batch.stop.is_some() => {
                    batch.queued -= 1;
                    may_end.push(*b);
                    false
                }
                Some(_) => true,
                None => false,
            });
            return false;
        }
        let max = self.limits.slots.map(NonZeroUsize::get);
        let announce = self.subscribers.iter().any(|(_, starts)| *starts);
        while let Some(&(b, u)) = self.ready.front() {
            let Some(batch) = self.batches.get_mut(&b) else {
                self.ready.pop_front();
                continue;
            };
            // A stopped batch starts nothing more: what did not start is
            // skipped when it ends.
            if batch.stop.is_some() {
                self.ready.pop_front();
                batch.queued -= 1;
                self.may_end.push(b);
                continue;
            }
            let plan = &batch.shared.plan;
            let unit = &plan.units[u];
            if max
                .is_some_and(|max| self.busy_slots.saturating_add(slots_of(Some(max), unit)) > max)
            {
                return false;
            }
            let cost = unit
                .jobs
                .iter()
                .map(|&j| job_cost(&plan.jobs[j]))
                .fold(JobCost::default(), |a, b| a + b);
            let want = (cost.held + cost.transient).min(self.fds.total) as u32;
            let Ok(mut fd_permit) = self.fds.semaphore.clone().try_acquire_many_owned(want) else {
                return true;
            };
            self.ready.pop_front();
            batch.queued -= 1;
            batch.running += 1;
            batch.running_jobs += unit.jobs.len();
            self.busy_slots += slots_of(max, unit);
            // Holding the job's ends of its captured pipes saves a wake-up
            // per job, but makes them held rather than transient: only
            // while descriptors are plentiful.
            let hold_writers = self.fds.semaphore.available_permits() >= self.fds.total / 4 * 3;
            let transient = match hold_writers {
                true => cost.transient - cost.writers,
                false => cost.transient,
            };
            // The spawn frees the transient part; the dispatcher the rest,
            // when the unit is done.
            let transient = fd_permit.split(transient.min(want as usize));
            let held = fd_permit.num_permits() as u32;
            fd_permit.forget();
            let ctl = match &mut batch.unit_ctl {
                None => batch.shared.ctl.clone(),
                Some(ctls) => {
                    let ctl = Control {
                        cancel: batch.shared.ctl.cancel.child_token(),
                        kill_now: batch.shared.ctl.kill_now.child_token(),
                    };
                    ctls.insert(u, ctl.clone());
                    ctl
                }
            };
            tokio::spawn(unit::task(
                batch.shared.clone(),
                ctl,
                u,
                hold_writers,
                transient,
                held,
                announce,
            ));
        }
        false
    }

    /// Ends the batches with nothing running or waiting to start.
    fn finish_batches(&mut self) {
        for id in std::mem::take(&mut self.may_end) {
            if !self
                .batches
                .get(&id)
                .is_some_and(|b| b.running == 0 && b.queued == 0)
            {
                continue;
            }
            let Some(batch) = self.batches.remove(&id) else {
                continue;
            };
            let why = batch
                .stop
                .as_ref()
                .map_or_else(|| "not started".to_string(), StopReason::not_started);
            let mut events = Vec::new();
            let results: Vec<Arc<JobResult>> = batch
                .results
                .into_iter()
                .enumerate()
                .map(|(j, r)| match r {
                    Some(r) => r,
                    None => {
                        let r = Arc::new(JobResult::not_started(Status::Skipped, why.clone()));
                        events.push(Event::Finished {
                            job: JobId(batch.first + j as u64),
                            result: r.clone(),
                        });
                        r
                    }
                })
                .collect();
            for event in events {
                self.emit(event);
            }
            self.emit(Event::BatchDone(Arc::new(BatchDone {
                batch: id,
                results,
                stop: batch.stop,
                started_at: batch.started_at,
                duration: batch.started.elapsed(),
            })));
        }
    }
}

fn verb(status: Status) -> &'static str {
    match status {
        Status::Succeeded => "succeeded",
        Status::Failed => "failed",
        Status::TimedOut => "timed out",
        Status::Skipped => "was skipped",
        Status::Cancelled => "was cancelled",
        Status::SpawnFailed => "could not be started",
    }
}

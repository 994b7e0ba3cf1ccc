//! Scheduling: which unit starts when. One dispatcher loop owns the run's
//! state; it `select!`s over signals and job events, starts units as their
//! `needs` are met and slots and file descriptors allow, skips dependants of
//! unsuccessful jobs, and stops the run on fail_fast or a signal.

pub mod blocks;
pub mod fanout;
pub mod signal;

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::FutureExt;
use tokio::sync::{Notify, mpsc};

use crate::exec::fdlimit::{FdBudget, JobCost, job_cost};
use crate::exec::{self, Control, to_result};
use crate::model::{JobResult, Status};
use crate::pipeline::{self, PipelineStats};
use crate::plan::{Plan, Program, Unit};
use signal::Interrupt;

/// The runtime for a run of at most `limit` jobs at once (`None`: no limit).
///
/// While no more jobs run than there are CPUs, a run is bound by each job's
/// turnaround (exit, reap, spawn the next), and one thread doing it all is
/// fastest: no wake-ups between threads. Measured, 2000 × `true` at -j 2 on
/// 2 CPUs: 1.07 s on the multi-thread runtime, 0.97 s on one thread. Wider
/// runs spawn from every worker at once, which one thread cannot.
pub fn runtime_for(limit: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let mut builder = match limit {
        Some(jobs) if jobs <= cpus => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().build()
}

/// What the dispatcher tells whoever shows the run to a person.
pub trait Observer {
    fn job_started(&mut self, job: usize, pid: u32);
    /// Whether `job_started` is wanted (a live view); if not, jobs starting
    /// do not wake the dispatcher at all.
    fn wants_starts(&self) -> bool {
        true
    }
    fn job_retrying(&mut self, job: usize, attempt: u32, result: &JobResult);
    fn job_finished(&mut self, job: usize, result: &JobResult);
    fn stopping(&mut self, why: &str);
    /// A pipeline started; `stats` are its live counts.
    fn pipeline_started(&mut self, _job: usize, _stats: Arc<PipelineStats>) {}
}

/// Why the run stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Interrupted(Interrupt),
    FailFast,
}

/// The whole run's end.
pub struct RunOutcome {
    pub results: Vec<JobResult>,
    pub stop: Option<Stop>,
    pub started_at: SystemTime,
    pub duration: Duration,
}

enum Event {
    Started {
        job: usize,
        pid: u32,
    },
    Pipeline {
        job: usize,
        stats: Arc<PipelineStats>,
    },
    Retrying {
        job: usize,
        attempt: u32,
        result: JobResult,
    },
    /// The dispatcher frees the unit's slots and held descriptors only
    /// once it has seen these results, so a fail_fast stop can never lose
    /// the race to a waiting unit.
    UnitDone {
        unit: usize,
        /// The descriptors the unit held while it ran.
        held: u32,
        results: Vec<(usize, JobResult)>,
    },
}

/// What the dispatcher shares with every unit's task.
struct Shared {
    plan: Arc<Plan>,
    ctl: Control,
    tx: mpsc::UnboundedSender<Event>,
    /// Told when a spawn has freed the descriptors only spawning needs.
    fd_freed: Notify,
}

/// Options that do not come from the job file.
pub struct RunOptions {
    /// The open-files limit in force (from `raise_nofile_limit`).
    pub nofile_limit: u64,
}

/// Runs every job of `plan`.
pub async fn run(
    plan: Arc<Plan>,
    opts: RunOptions,
    observer: &mut (dyn Observer + Send),
    mut interrupts: mpsc::UnboundedReceiver<Interrupt>,
) -> RunOutcome {
    let started_at = SystemTime::now();
    let started = Instant::now();
    let n_jobs = plan.jobs.len();
    let mut results: Vec<Option<JobResult>> = vec![None; n_jobs];

    // For each unit, how many of the jobs it needs are unfinished; for each
    // job, the units waiting on it.
    let mut unfinished_needs: Vec<usize> = plan.units.iter().map(|u| u.needs.len()).collect();
    let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); n_jobs];
    for (u, unit) in plan.units.iter().enumerate() {
        for &n in &unit.needs {
            dependants[n].push(u);
        }
    }
    let mut ready: VecDeque<usize> = (0..plan.units.len())
        .filter(|&u| unfinished_needs[u] == 0)
        .collect();

    // Slots are counted here, by the dispatcher alone: a unit of n jobs
    // takes n of them (all of them, if n is more).
    let max_parallel = plan.max_parallel.map(NonZeroUsize::get);
    let slots_of = |unit: &Unit| max_parallel.map_or(0, |max| unit.jobs.len().min(max));
    let mut busy_slots = 0usize;
    let fds = FdBudget::new(opts.nofile_limit);
    let announce = observer.wants_starts();
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let shared = Arc::new(Shared {
        plan: plan.clone(),
        ctl: Control::default(),
        tx,
        fd_freed: Notify::new(),
    });
    let ctl = &shared.ctl;
    let mut running = 0usize;
    // Jobs in the running units, for the user (who knows jobs, not units).
    let mut running_jobs = 0usize;
    let mut stop: Option<Stop> = None;
    let mut signals_seen = 0;
    let mut blocked_on_fds;

    loop {
        blocked_on_fds = false;
        while stop.is_none() {
            let Some(&u) = ready.front() else { break };
            let unit = &plan.units[u];
            if max_parallel.is_some_and(|max| busy_slots.saturating_add(slots_of(unit)) > max) {
                break;
            }
            let cost = unit
                .jobs
                .iter()
                .map(|&j| job_cost(&plan.jobs[j]))
                .fold(JobCost::default(), |a, b| a + b);
            let want = (cost.held + cost.transient).min(fds.total) as u32;
            let Ok(mut fd_permit) = fds.semaphore.clone().try_acquire_many_owned(want) else {
                blocked_on_fds = true;
                break;
            };
            ready.pop_front();
            running += 1;
            running_jobs += unit.jobs.len();
            busy_slots += slots_of(unit);
            // Holding the job's ends of its captured pipes saves a wake-up
            // per job, but makes them held rather than transient: only
            // while descriptors are plentiful.
            let hold_writers = fds.semaphore.available_permits() >= fds.total / 4 * 3;
            let transient = match hold_writers {
                true => cost.transient - cost.writers,
                false => cost.transient,
            };
            // The spawn frees the transient part; the dispatcher the rest,
            // when the unit is done.
            let mut transient = fd_permit.split(transient.min(want as usize));
            let held = fd_permit.num_permits() as u32;
            fd_permit.forget();
            let shared = shared.clone();
            // This task is most of what a running job costs drover: what it
            // holds is kept to a minimum (with the job's supervision: 640
            // bytes, in a 768-byte task; it was 1168 in 1280).
            tokio::spawn(async move {
                let mut on_spawned = || {
                    if transient.take().is_some() {
                        shared.fd_freed.notify_one();
                    }
                };
                // A bug in drover must not hang the run: a panicking unit
                // is reported as failed jobs.
                let results = AssertUnwindSafe(run_unit(
                    &shared,
                    u,
                    hold_writers,
                    &mut on_spawned,
                    announce,
                ))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| {
                    let why = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    shared.plan.units[u]
                        .jobs
                        .iter()
                        .map(|&j| {
                            (
                                j,
                                JobResult::not_started(
                                    Status::Failed,
                                    format!("internal error in drover: {why}"),
                                ),
                            )
                        })
                        .collect()
                });
                let _ = shared.tx.send(Event::UnitDone {
                    unit: u,
                    held,
                    results,
                });
            });
        }
        if running == 0 && (ready.is_empty() || stop.is_some()) {
            break;
        }

        tokio::select! {
            biased;
            Some(interrupt) = interrupts.recv() => {
                signals_seen += 1;
                if signals_seen == 1 || !matches!(stop, Some(Stop::Interrupted(_))) {
                    stop = Some(Stop::Interrupted(interrupt));
                    observer.stopping(&format!(
                        "{}: stopping {running_jobs} running job(s) (SIGTERM, then SIGKILL after kill_grace); press Ctrl-C again to kill at once",
                        interrupt.name()
                    ));
                    ctl.cancel.cancel();
                } else {
                    observer.stopping(&format!("{}: killing every job now", interrupt.name()));
                    ctl.kill_now.cancel();
                }
            }
            Some(event) = rx.recv() => match event {
                Event::Started { job, pid } => observer.job_started(job, pid),
                Event::Pipeline { job, stats } => observer.pipeline_started(job, stats),
                Event::Retrying { job, attempt, result } => observer.job_retrying(job, attempt, &result),
                Event::UnitDone { unit, held, results: done } => {
                    running -= 1;
                    running_jobs -= plan.units[unit].jobs.len();
                    let mut finished: Vec<usize> = Vec::new();
                    for (job, result) in done {
                        if result.status != Status::Succeeded && plan.fail_fast && stop.is_none() {
                            stop = Some(Stop::FailFast);
                            observer.stopping(&format!("fail_fast: `{}` {}; stopping the run", plan.jobs[job].name, result.status.as_str()));
                            ctl.cancel.cancel();
                        }
                        observer.job_finished(job, &result);
                        results[job] = Some(result);
                        finished.push(job);
                    }
                    // Units whose needs are now all finished: start them, or
                    // skip them (and their dependants, transitively).
                    while let Some(job) = finished.pop() {
                        for &d in &dependants[job] {
                            unfinished_needs[d] -= 1;
                            if unfinished_needs[d] > 0 {
                                continue;
                            }
                            let failed_need = plan.units[d].needs.iter().copied().find(|&n| {
                                results[n].as_ref().is_some_and(|r| r.status != Status::Succeeded)
                            });
                            match failed_need {
                                None => ready.push_back(d),
                                Some(n) => {
                                    let why = format!(
                                        "needs `{}`, which {}",
                                        plan.jobs[n].name,
                                        results[n].as_ref().map_or("did not run", |r| verb(r.status))
                                    );
                                    for &j in &plan.units[d].jobs {
                                        let r = JobResult::not_started(Status::Skipped, why.clone());
                                        observer.job_finished(j, &r);
                                        results[j] = Some(r);
                                        finished.push(j);
                                    }
                                }
                            }
                        }
                    }
                    busy_slots -= slots_of(&plan.units[unit]);
                    fds.semaphore.add_permits(held as usize);
                }
            },
            _ = shared.fd_freed.notified(), if blocked_on_fds => {}
        }
    }

    let why = match stop {
        Some(Stop::Interrupted(i)) => {
            format!("not started: the run was interrupted by {}", i.name())
        }
        Some(Stop::FailFast) => "not started: fail_fast stopped the run".to_string(),
        None => "not started".to_string(),
    };
    let results = results
        .into_iter()
        .enumerate()
        .map(|(j, r)| match r {
            Some(r) => r,
            None => {
                let r = JobResult::not_started(Status::Skipped, why.clone());
                observer.job_finished(j, &r);
                r
            }
        })
        .collect();
    RunOutcome {
        results,
        stop,
        started_at,
        duration: started.elapsed(),
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

/// Runs a unit with its retries.
// Not an `async fn`: its parameters would be kept twice in the future (as
// captured and as locals), in every running unit's task.
#[allow(clippy::manual_async_fn)]
fn run_unit(
    shared: &Shared,
    unit: usize,
    hold_writers: bool,
    on_spawned: &mut impl FnMut(),
    announce: bool,
) -> impl Future<Output = Vec<(usize, JobResult)>> {
    async move {
        let Shared { plan, ctl, tx, .. } = shared;
        let jobs = &plan.units[unit].jobs;
        if let [job] = jobs[..]
            && let Program::Pipeline(spec) = &plan.jobs[job].program
        {
            let stats = Arc::new(PipelineStats::new(spec));
            let _ = tx.send(Event::Pipeline {
                job,
                stats: stats.clone(),
            });
            on_spawned();
            let result = Box::pin(pipeline::run(&plan.jobs[job], spec.clone(), ctl, stats)).await;
            return vec![(job, result)];
        }
        let mut attempt = 1u32;
        loop {
            let attempts = exec::run_unit(
                plan,
                unit,
                ctl,
                hold_writers,
                &mut *on_spawned,
                |job, pid| {
                    if announce {
                        let _ = tx.send(Event::Started { job, pid });
                    }
                },
            )
            .await;
            let results: Vec<(usize, JobResult)> = attempts
                .into_iter()
                .map(|a| (a.job, to_result(&plan.jobs[a.job], a, attempt)))
                .collect();
            let retryable = results
                .iter()
                .any(|(_, r)| matches!(r.status, Status::Failed | Status::TimedOut));
            let blocked = results
                .iter()
                .any(|(_, r)| matches!(r.status, Status::SpawnFailed | Status::Cancelled));
            // Looked up only now: nothing that lives across the attempt above
            // is kept for it.
            let retries = jobs.iter().map(|&j| plan.jobs[j].retries).max();
            if !retryable || blocked || attempt > retries.unwrap_or(0) {
                return results;
            }
            for (job, result) in &results {
                if result.status != Status::Succeeded {
                    let _ = tx.send(Event::Retrying {
                        job: *job,
                        attempt,
                        result: result.clone(),
                    });
                }
            }
            // Boxed, like the pipeline's run above: most units never wait here,
            // and the wait's timer would otherwise make every unit's task bigger.
            let stopped = Box::pin(async {
                tokio::select! {
                    _ = tokio::time::sleep(retry_delay(plan, jobs)) => false,
                    _ = ctl.cancel.cancelled() => true,
                }
            })
            .await;
            if stopped {
                return results
                    .into_iter()
                    .map(|(j, mut r)| {
                        if r.status != Status::Succeeded {
                            let e = r.error.take().unwrap_or_default();
                            r.error = Some(format!("{e}; not retried: the run was stopped"));
                        }
                        (j, r)
                    })
                    .collect();
            }
            attempt += 1;
        }
    }
}

/// The longest `retry_delay` of a unit's jobs.
fn retry_delay(plan: &Plan, jobs: &[usize]) -> Duration {
    jobs.iter()
        .map(|&j| plan.jobs[j].retry_delay)
        .max()
        .unwrap_or_default()
}


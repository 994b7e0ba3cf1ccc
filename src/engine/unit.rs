//! One unit's task: a job (or jobs joined by pipes, or a pipeline) run with
//! its retries, its events sent to the dispatcher.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::OwnedSemaphorePermit;

use super::{Shared, UnitEvent};
use crate::exec::{self, Control, retry, to_result};
use crate::model::{JobResult, Status};
use crate::pipeline::{self, PipelineStats};
use crate::plan::{Plan, Program};

/// The task of unit `unit`: what a running job costs drover is mostly this
/// future, so it holds what it needs and no more (with the job's
/// supervision: 640 bytes, in a 768-byte task).
pub(super) async fn task(
    shared: Arc<Shared>,
    ctl: Control,
    unit: usize,
    hold_writers: bool,
    mut transient: Option<OwnedSemaphorePermit>,
    held: u32,
    announce: bool,
) {
    let mut on_spawned = || {
        if transient.take().is_some() {
            shared.fd_freed.notify_one();
        }
    };
    // A bug in drover must not hang the run: a panicking unit is reported
    // as failed jobs.
    let results = AssertUnwindSafe(run_unit(
        &shared,
        &ctl,
        unit,
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
        shared.plan.units[unit]
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
    let _ = shared.tx.send(UnitEvent::Done {
        batch: shared.batch,
        unit,
        held,
        results,
    });
}

/// Runs a unit with its retries.
// Not an `async fn`: its parameters would be kept twice in the future (as
// captured and as locals), in every running unit's task.
#[allow(clippy::manual_async_fn)]
fn run_unit(
    shared: &Shared,
    ctl: &Control,
    unit: usize,
    hold_writers: bool,
    on_spawned: &mut impl FnMut(),
    announce: bool,
) -> impl Future<Output = Vec<(usize, JobResult)>> {
    async move {
        let Shared {
            plan, tx, batch, ..
        } = shared;
        let batch = *batch;
        let jobs = &plan.units[unit].jobs;
        if let [job] = jobs[..]
            && let Program::Pipeline(spec) = &plan.jobs[job].program
        {
            let stats = Arc::new(PipelineStats::new(spec));
            let _ = tx.send(UnitEvent::Pipeline {
                batch,
                job,
                stats: stats.clone(),
            });
            on_spawned();
            if let Some(gate) = &shared.before_start
                && let Err(why) = gate(1).await
            {
                return vec![(job, JobResult::not_started(Status::SpawnFailed, why))];
            }
            let result = Box::pin(pipeline::run(&plan.jobs[job], spec.clone(), ctl, stats)).await;
            return vec![(job, result)];
        }
        let mut attempt = 1u32;
        loop {
            if let Some(gate) = &shared.before_start
                && let Err(why) = gate(attempt).await
            {
                return jobs
                    .iter()
                    .map(|&j| (j, JobResult::not_started(Status::SpawnFailed, why.clone())))
                    .collect();
            }
            let attempts = exec::run_unit(
                plan,
                unit,
                ctl,
                shared.keeping.as_ref(),
                hold_writers,
                &mut *on_spawned,
                |job, pid, stdout| {
                    if announce {
                        let _ = tx.send(UnitEvent::Started {
                            batch,
                            job,
                            pid,
                            stdout: stdout.cloned(),
                        });
                    }
                },
            )
            .await;
            let results: Vec<(usize, JobResult)> = attempts
                .into_iter()
                .map(|a| (a.job, to_result(&plan.jobs[a.job], a, attempt)))
                .collect();
            let retryable = results.iter().any(|(_, r)| retry::retryable(r.status));
            let blocked = results.iter().any(|(_, r)| {
                matches!(
                    r.status,
                    Status::SpawnFailed | Status::Cancelled | Status::Skipped
                )
            });
            // Looked up only now: nothing that lives across the attempt above
            // is kept for it.
            let retries = jobs.iter().map(|&j| plan.jobs[j].retries).max();
            if !retryable || blocked || attempt > retries.unwrap_or(0) {
                return results;
            }
            for (job, result) in &results {
                if result.status != Status::Succeeded {
                    let _ = tx.send(UnitEvent::Retrying {
                        batch,
                        job: *job,
                        attempt,
                        result: result.clone(),
                    });
                }
            }
            // Boxed, like the pipeline's run above: most units never wait here,
            // and the wait's timer would otherwise make every unit's task bigger.
            let go_on = Box::pin(retry::wait(retry_delay(plan, jobs), ctl)).await;
            if !go_on {
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

//! A per-item stage: a process per item, at most `workers` at once, with the
//! job options (timeout, retries, ok_codes) applied to each.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::{Ctx, ITEM_STDERR_TAIL, add_busy, split_lines, took};
use crate::exec::capture::{Keep, LineSink};
use crate::exec::retry;
use crate::model::{JobResult, Status};
use crate::plan::pipeline::Emit;
use crate::plan::template::Fill;
use crate::plan::{JobSpec, OutputSpec, Program};

pub(super) async fn stage(
    ctx: Arc<Ctx>,
    index: usize,
    emit: Emit,
    mut rx: mpsc::Receiver<String>,
    next: Option<mpsc::Sender<String>>,
) {
    let workers = ctx.spec.stages[index].workers;
    // A task per item, as `drover exec` runs a task per job: the runtime's
    // threads share the spawning and supervising.
    let slots = Arc::new(Semaphore::new(workers));
    let mut running = JoinSet::new();
    let mut seq = 0u64;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let Some(item) = rx.recv().await else { break };
        took(&ctx.stats.stages[index], 1);
        if ctx.ctl.cancel.is_cancelled() {
            continue;
        }
        seq += 1;
        let (ctx, next) = (ctx.clone(), next.clone());
        running.spawn(async move {
            one(&ctx, index, emit, item, seq, next.as_ref()).await;
            drop(slot);
        });
        // Reap finished tasks as we go, so the set stays small.
        while running.try_join_next().is_some() {}
    }
    while running.join_next().await.is_some() {}
}

/// The job that runs `item`.
fn spec_for(ctx: &Ctx, index: usize, emit: Emit, item: &str, seq: u64) -> JobSpec {
    let stage = &ctx.spec.stages[index];
    let args = [item.to_string()];
    let fill = Fill {
        args: &args,
        seq,
        slot: 1,
    };
    let mut spec = stage.job.clone();
    spec.program = match &stage.job.program {
        // A shell script gets the item where `{}` says (and as
        // $DROVER_ITEM), never tacked on at its end.
        Program::Shell(script) if !stage.template.has_replacements() => {
            Program::Shell(script.clone())
        }
        Program::Shell(_) => Program::Shell(stage.template.shell_line(&fill)),
        _ => Program::Argv(stage.template.argv(&fill)),
    };
    spec.env.push(("DROVER_ITEM".into(), item.to_string()));
    spec.stdout = match emit {
        Emit::Item => OutputSpec::Null,
        Emit::Lines => OutputSpec::Capture,
    };
    spec.stderr = OutputSpec::Capture;
    spec
}

/// Runs one item through its stage (with retries) and passes on what it
/// emits, or records it failed.
async fn one(
    ctx: &Ctx,
    index: usize,
    emit: Emit,
    item: String,
    seq: u64,
    next: Option<&mpsc::Sender<String>>,
) {
    let stats = &ctx.stats.stages[index];
    stats.items_in.fetch_add(1, Relaxed);
    stats.busy_now.fetch_add(1, Relaxed);
    let since = Instant::now();
    let spec = spec_for(ctx, index, emit, &item, seq);
    let err_keep = Keep::Tail(spec.capture_limit.min(ITEM_STDERR_TAIL));
    let mut attempt = 1u32;
    let result = loop {
        let (result, lines) = match emit {
            Emit::Item => {
                let a = crate::exec::run_one(0, &spec, &ctx.ctl, (Keep::Tail(0), err_keep.clone()))
                    .await;
                (crate::exec::to_result(&spec, a, attempt), Vec::new())
            }
            Emit::Lines => run_collecting(ctx, index, &spec, attempt, err_keep.clone(), next).await,
        };
        match result.status {
            Status::Succeeded => {
                for line in lines {
                    if !ctx.emit(index, next, line).await {
                        break;
                    }
                }
                if emit == Emit::Item {
                    ctx.emit(index, next, item.clone()).await;
                }
                break None;
            }
            status if retry::retryable(status) && attempt <= spec.retries => {
                if !retry::wait(spec.retry_delay, &ctx.ctl).await {
                    break Some(result);
                }
                attempt += 1;
            }
            _ => break Some(result),
        }
    };
    add_busy(stats, since);
    stats.busy_now.fetch_sub(1, Relaxed);
    if let Some(result) = result
        && result.status != Status::Cancelled
    {
        ctx.fail(index, &item, &result);
    }
}

/// Runs an `emit = "lines"` attempt, keeping its stdout lines until it
/// succeeds (a failed item's lines do not flow on). Past `capture_limit`
/// the lines flow on as they come, so memory stays bounded.
async fn run_collecting(
    ctx: &Ctx,
    index: usize,
    spec: &JobSpec,
    attempt: u32,
    err_keep: Keep,
    next: Option<&mpsc::Sender<String>>,
) -> (JobResult, Vec<String>) {
    let (tx, mut rx) = mpsc::channel(4);
    let keep = (
        Keep::Lines(LineSink {
            job: 0,
            stderr: false,
            tx,
        }),
        err_keep,
    );
    let collect = async {
        let mut held: Vec<String> = Vec::new();
        let mut held_bytes = 0usize;
        let mut streaming = false;
        let mut partial: Vec<u8> = Vec::new();
        while let Some((_, _, mut chunk)) = rx.recv().await {
            for line in split_lines(&mut partial, &mut chunk) {
                if let Some(line) = super::item_of(&line) {
                    held_bytes += line.len();
                    held.push(line);
                }
            }
            if held_bytes > spec.capture_limit {
                streaming = true;
            }
            if streaming {
                held_bytes = 0;
                for line in held.drain(..) {
                    ctx.emit(index, next, line).await;
                }
            }
        }
        if let Some(line) = super::item_of(&partial) {
            held.push(line);
        }
        held
    };
    let (a, lines) = futures::join!(crate::exec::run_one(0, spec, &ctx.ctl, keep), collect);
    (crate::exec::to_result(spec, a, attempt), lines)
}

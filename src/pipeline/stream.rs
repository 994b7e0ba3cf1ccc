//! A stream-mode stage: `workers` long-lived processes; items are written to
//! their stdin as lines, and each stdout line is an item for the next stage.
//!
//! Which items a worker holds: drover writes items to a worker's stdin and
//! remembers where each one ends in the byte stream. The pipe's fill level
//! (FIONREAD) says how far the worker has read. Each stdout line answers the
//! oldest item not yet answered (a `cat`-like worker prints a line per item,
//! in order), if the worker has read that item: a line printed before is
//! passed on but answers nothing, and is a stage error naming the worker.
//! When a worker dies before its input ended, the items it had
//! read and not answered are recorded as failed, the items still unread in
//! the pipe go to its replacement, and a new worker is started.

use std::collections::VecDeque;
use std::io::PipeReader;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures::future::join_all;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use super::{Ctx, ITEM_STDERR_TAIL, StageStats, add_busy, split_lines, took};
use crate::exec::capture::{self, Keep};
use crate::exec::group::{self, ExitWatch, ProcessGroup, Sig};
use crate::exec::{LEAK_TIMEOUT, spawn_waiting_for_fds};
use crate::model::{Exit, JobResult, Status};
use crate::plan::StdinSpec;

/// Items taken from the queue at once by a worker.
const BATCH: usize = 256;
/// Items a worker has read without answering that drover still remembers;
/// older ones are taken as done (a filter that prints nothing for them).
const HELD_CAP: usize = 1024;
/// Deaths in a row without reading anything after which a worker slot stops.
const FUTILE_DEATHS: u32 = 3;

pub(super) async fn stage(
    ctx: &Ctx,
    index: usize,
    rx: mpsc::Receiver<String>,
    next: Option<mpsc::Sender<String>>,
) {
    let stage = &ctx.spec.stages[index];
    let rx = Mutex::new(rx);
    let alive = AtomicUsize::new(stage.workers);
    join_all((0..stage.workers).map(|_| slot(ctx, index, &rx, next.as_ref(), &alive))).await;
}

/// How a worker process ended.
enum End {
    /// Its input ended and it exited.
    Finished,
    /// It died before its input ended; `read_any`: it had read something.
    Died {
        read_any: bool,
    },
    Cancelled,
    SpawnFailed(String),
}

/// One worker slot: a worker process, restarted when it dies.
async fn slot(
    ctx: &Ctx,
    index: usize,
    rx: &Mutex<mpsc::Receiver<String>>,
    next: Option<&mpsc::Sender<String>>,
    alive: &AtomicUsize,
) {
    let stats = &ctx.stats.stages[index];
    let mut pending: VecDeque<String> = VecDeque::new();
    let mut futile = 0;
    let broken = loop {
        match worker(ctx, index, rx, next, &mut pending).await {
            End::Finished | End::Cancelled => break None,
            End::Died { read_any } => {
                futile = if read_any { 0 } else { futile + 1 };
                if futile >= FUTILE_DEATHS {
                    break Some(format!(
                        "stage `{}`: a worker died {FUTILE_DEATHS} times in a row without reading an item; this worker slot was stopped",
                        ctx.spec.stages[index].name
                    ));
                }
                if ctx.ctl.cancel.is_cancelled() {
                    break None;
                }
                stats.restarts.fetch_add(1, Relaxed);
            }
            End::SpawnFailed(why) => {
                break Some(format!(
                    "stage `{}`: cannot start a worker: {why}",
                    ctx.spec.stages[index].name
                ));
            }
        }
    };
    let Some(why) = broken else {
        alive.fetch_sub(1, Relaxed);
        return;
    };
    ctx.error(why.clone());
    let lost = |item: &str| {
        ctx.fail(
            index,
            item,
            &JobResult::not_started(Status::Failed, format!("not processed: {why}")),
        );
    };
    for item in pending.drain(..) {
        lost(&item);
    }
    // The last slot standing fails what is left, so the pipeline ends.
    if alive.fetch_sub(1, Relaxed) == 1 {
        let mut rx = rx.lock().await;
        while let Some(item) = rx.recv().await {
            took(stats, 1);
            stats.items_in.fetch_add(1, Relaxed);
            lost(&item);
        }
    }
}

/// An item written (or about to be written) to a worker: where it starts
/// and ends in the worker's stdin stream.
struct Sent {
    item: String,
    start: u64,
}

/// Runs one worker process until it exits.
async fn worker(
    ctx: &Ctx,
    index: usize,
    rx: &Mutex<mpsc::Receiver<String>>,
    next: Option<&mpsc::Sender<String>>,
    pending: &mut VecDeque<String>,
) -> End {
    let stage = &ctx.spec.stages[index];
    let stats = &ctx.stats.stages[index];
    let mut spec = stage.job.clone();
    spec.stdin = StdinSpec::From(0);
    let (pipe_r, pipe_w) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => return End::SpawnFailed(format!("cannot create a pipe: {e}")),
    };
    let spawned = match spawn_waiting_for_fds(&spec, Some(&pipe_r), None, false, &ctx.ctl).await {
        Ok(s) => s,
        Err(crate::exec::Unspawned::Failed(why)) => return End::SpawnFailed(why),
        Err(crate::exec::Unspawned::Cancelled(_)) => return End::Cancelled,
    };
    let crate::exec::spawn::Spawned {
        mut child,
        pid,
        stdout,
        stderr,
        ..
    } = spawned;
    let group = ProcessGroup::led_by(pid).expect("spawned child has a non-zero pid");
    let mut watch = ExitWatch::new(pid);
    // drover keeps the read end of the worker's stdin: its fill level says
    // how far the worker has read, even after the worker is gone.
    let probe: PipeReader = pipe_r;
    let mut input = match pipe::Sender::from_owned_fd(OwnedFd::from(pipe_w)) {
        Ok(tx) => Some(tx),
        Err(e) => {
            group.signal(Sig::KILL);
            let _ = child.wait();
            return End::SpawnFailed(format!("cannot write a worker's stdin: {e}"));
        }
    };
    let Some(mut output) = stdout.and_then(|fd| fd.into_receiver().ok()) else {
        group.signal(Sig::KILL);
        let _ = child.wait();
        return End::SpawnFailed("cannot read a worker's stdout".into());
    };
    let mut errors = capture::Output::new(
        [None, stderr],
        [
            Keep::Tail(0),
            Keep::Tail(spec.capture_limit.min(ITEM_STDERR_TAIL)),
        ],
    );

    let mut queued: Vec<u8> = Vec::new(); // bytes not yet written
    let mut written: u64 = 0; // bytes the pipe took
    let mut sent: VecDeque<Sent> = VecDeque::new(); // unanswered items, in order
    let mut input_done = false;
    let mut line: Vec<u8> = Vec::new();
    let mut read_buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut out_open = true;
    let mut busy_since: Option<Instant> = None;

    let consumed = |written: u64| -> u64 {
        let unread = rustix::io::ioctl_fionread(&probe).unwrap_or(0);
        written.saturating_sub(unread)
    };
    // How far the worker had read when last asked: it only grows, so the
    // pipe is asked again only when a line would answer an item past it.
    let mut read_to: u64 = 0;
    // Lines printed while the next unanswered item was still unread.
    let mut unasked: u64 = 0;
    let mut first_unasked: Option<String> = None;
    // Items forgotten unanswered (HELD_CAP): lines may then belong to them,
    // so a line before the next item is read no longer proves a fault.
    let mut forgot = false;

    // A stdout line answers the oldest unanswered item, if the worker has
    // read all of it. A line with no item outstanding (a summary at the
    // end) is output only; one printed before the worker read the item it
    // would answer is counted, and reported when the worker ends.
    macro_rules! answer {
        ($line:expr) => {
            let read_whole = sent.front().map(|s| s.start + s.item.len() as u64 + 1);
            if read_whole.is_some_and(|end| end > read_to) {
                read_to = consumed(written);
            }
            if read_whole.is_some_and(|end| end <= read_to) {
                sent.pop_front();
                if sent.is_empty()
                    && let Some(t) = busy_since.take()
                {
                    idle(stats, t);
                }
            } else if read_whole.is_some() && !forgot {
                unasked += 1;
                if first_unasked.is_none() {
                    first_unasked = Some(String::from_utf8_lossy($line).trim_end().to_string());
                }
            }
        };
    }

    let cancelled = loop {
        tokio::select! {
            biased;
            _ = ctx.ctl.cancel.cancelled() => break true,
            _ = watch.exited() => break false,
            read = output.read_buf(&mut read_buf), if out_open => {
                match read {
                    Ok(0) | Err(_) => out_open = false,
                    Ok(_) => {
                        let lines = split_lines(&mut line, &mut read_buf);
                        for l in lines {
                            answer!(&l);
                            if let Some(item) = super::item_of(&l) {
                                ctx.emit(index, next, item).await;
                            }
                        }
                    }
                }
            }
            () = errors.drained(), if !errors.is_done() => {}
            wrote = async { input.as_mut().expect("open while bytes are queued").write(&queued).await }, if !queued.is_empty() => {
                match wrote {
                    Ok(n) => {
                        written += n as u64;
                        queued.drain(..n);
                        if queued.is_empty() && input_done {
                            input = None; // EOF for the worker
                        }
                    }
                    // The worker closed its stdin: it will exit, and the
                    // exit tells what it held.
                    Err(_) => queued.clear(),
                }
            }
            batch = take(rx, pending, stats), if queued.is_empty() && !input_done && input.is_some() => {
                match batch {
                    None => {
                        input_done = true;
                        input = None;
                    }
                    Some(items) => {
                        let mut offset = written;
                        for item in items {
                            queued.extend_from_slice(item.as_bytes());
                            queued.push(b'\n');
                            let start = offset;
                            offset += item.len() as u64 + 1;
                            sent.push_back(Sent { item, start });
                        }
                        if busy_since.is_none() {
                            busy_since = Some(Instant::now());
                            stats.busy_now.fetch_add(1, Relaxed);
                        }
                        // A filter answers fewer items than it reads: forget
                        // what was read long ago.
                        if sent.len() > HELD_CAP {
                            let read_to = consumed(written);
                            while sent.len() > HELD_CAP
                                && sent.front().is_some_and(|s| s.start + (s.item.len() as u64) < read_to)
                            {
                                sent.pop_front();
                                forgot = true;
                            }
                        }
                    }
                }
            }
        }
    };

    if cancelled {
        let mut stopping = Box::pin(group::terminate(
            group,
            &mut watch,
            spec.kill_grace,
            &ctx.ctl.kill_now,
        ));
        let mut sink = vec![0u8; 64 * 1024];
        loop {
            tokio::select! {
                () = &mut stopping => break,
                r = output.read(&mut sink), if out_open => if matches!(r, Ok(0) | Err(_)) { out_open = false },
                () = errors.drained(), if !errors.is_done() => {}
            }
        }
        group.signal(Sig::KILL);
        let _ = child.wait();
        if let Some(t) = busy_since {
            idle(stats, t);
        }
        return End::Cancelled;
    }

    // The worker has exited (unreaped): take what it printed, then judge.
    // Read from a pipe `drain_rest` owns while it lives.
    let out_fd = output.as_raw_fd();
    // Told when a process that left the worker's group holds its stdout:
    // the reader then takes what the pipe holds, and no more. It stops only
    // between lines passed on, never in the middle of one.
    let give_up = CancellationToken::new();
    let drain_rest = async {
        let stopped = give_up.cancelled();
        tokio::pin!(stopped);
        // Once given up: how much more to read.
        let mut last: Option<u64> = None;
        while out_open {
            let read = match last {
                Some(0) => break,
                Some(left) => {
                    let mut chunk =
                        vec![0u8; usize::try_from(left).unwrap_or(usize::MAX).min(64 * 1024)];
                    let read =
                        rustix::io::read(output.as_fd(), &mut chunk).map_err(std::io::Error::from);
                    if let Ok(n) = read {
                        last = Some(left.saturating_sub(n as u64));
                        read_buf.extend_from_slice(&chunk[..n]);
                    }
                    read
                }
                None => tokio::select! {
                    biased;
                    _ = &mut stopped => {
                        last = Some(rustix::io::ioctl_fionread(output.as_fd()).unwrap_or(0));
                        continue;
                    }
                    read = output.read_buf(&mut read_buf) => read,
                },
            };
            match read {
                Ok(0) | Err(_) => out_open = false,
                Ok(_) => {
                    for l in split_lines(&mut line, &mut read_buf) {
                        answer!(&l);
                        if let Some(item) = super::item_of(&l) {
                            ctx.emit(index, next, item).await;
                        }
                    }
                }
            }
        }
        if !line.is_empty() {
            let l = std::mem::take(&mut line);
            answer!(&l);
            if let Some(item) = super::item_of(&l) {
                ctx.emit(index, next, item).await;
            }
        }
    };
    // The leak timeout is for a descendant holding the pipe, not for lines
    // waiting on a full queue: once no process holds the pipe, what is left
    // in it is read to the end, however long the next stage takes.
    // SAFETY: `output` lives until the end of this function.
    let writers_gone = || capture::pipe_writers_gone(unsafe { BorrowedFd::borrow_raw(out_fd) });
    {
        let mut drain_rest = Box::pin(drain_rest);
        if tokio::time::timeout(LEAK_TIMEOUT, &mut drain_rest)
            .await
            .is_err()
        {
            let leaked = !writers_gone();
            if leaked {
                group.signal(Sig::KILL);
                // And those that left the group, if drover finds them.
                child.kill_escaped();
            }
            // The holders in the group are dead now, and those that left
            // it that drover found; one it did not find is given up on,
            // rather than hang.
            if tokio::time::timeout(Duration::from_millis(100), &mut drain_rest)
                .await
                .is_err()
            {
                if !writers_gone() {
                    give_up.cancel();
                }
                drain_rest.await;
            }
            if leaked {
                ctx.error(format!(
                    "stage `{}`: a descendant of worker {pid} still held its stdout {} ms after it exited; {}",
                    stage.name,
                    LEAK_TIMEOUT.as_millis(),
                    match give_up.is_cancelled() {
                        false if child.escaped().is_empty() => "it was killed".to_string(),
                        false => format!(
                            "it was killed, with {} that had left the worker's process group",
                            child.escaped().iter().map(|e| format!("{} ({})", e.pid, e.name)).collect::<Vec<_>>().join(", ")
                        ),
                        true => "it had left the worker's process group and still holds it: drover stopped reading after what the pipe held".to_string(),
                    }
                ));
            }
        }
    }
    let gave_up = give_up.is_cancelled();
    group.signal(Sig::KILL);
    let exit = child
        .wait()
        .map(Exit::from_status)
        .unwrap_or(Exit::Code(-1));
    if !errors.is_done() {
        let _ = tokio::time::timeout(Duration::from_millis(100), errors.drained()).await;
    }
    let [_, stderr_tail] = errors.stop().await;
    if let Some(t) = busy_since {
        idle(stats, t);
    }
    if unasked > 0 {
        ctx.error(format!(
            "stage `{}`: worker {pid} printed {unasked} line(s) before reading the items they would answer (the first: {:?}); they were passed on and answer no item: a stream worker prints a line for an item after reading it",
            stage.name,
            first_unasked.unwrap_or_default()
        ));
    }
    let ok = matches!(exit, Exit::Code(c) if spec.ok_codes.contains(&c));
    let read_to = consumed(written);
    // Finished: it was given the end of its input and read all of it.
    let finished = input_done && input.is_none() && queued.is_empty() && read_to >= written;
    let describe = match exit {
        Exit::Code(c) => format!("exit code {c}"),
        Exit::Signal(s) => format!("killed by {}", group::signal_name(s)),
    };
    let result = |why: String| JobResult {
        status: Status::Failed,
        exit: Some(exit),
        stderr: stderr_tail.clone(),
        ..JobResult::not_started(Status::Failed, why)
    };
    if finished {
        if gave_up {
            // Their answers, if any, were never read: not done, lost.
            let held: Vec<Sent> = sent.drain(..).filter(|s| s.start < read_to).collect();
            for s in &held {
                ctx.fail(
                    index,
                    &s.item,
                    &result("its answer was not read: a process outside the worker's group held the worker's stdout".to_string()),
                );
            }
        }
        if !ok {
            // Items it read and never answered go down with it.
            let held: Vec<Sent> = sent.drain(..).filter(|s| s.start < read_to).collect();
            for s in &held {
                ctx.fail(
                    index,
                    &s.item,
                    &result(format!("the worker holding it exited with {describe}")),
                );
            }
            if held.is_empty() {
                ctx.error(format!(
                    "stage `{}`: worker {pid} exited with {describe} at the end of its input",
                    stage.name
                ));
            }
        }
        return End::Finished;
    }
    // Ended before its input did. Read and unanswered: failed, it held
    // them. Unread (still in the pipe, or never written): to its successor.
    let mut requeue = Vec::new();
    let why = if ok {
        format!("the worker holding it exited ({describe}) before its input ended")
    } else {
        format!("the worker holding it died ({describe})")
    };
    for s in sent.drain(..) {
        if s.start < read_to {
            ctx.fail(index, &s.item, &result(why.clone()));
        } else {
            requeue.push(s.item);
        }
    }
    for item in requeue.into_iter().rev() {
        pending.push_front(item);
    }
    End::Died {
        read_any: read_to > 0,
    }
}

/// The next items for a worker: those a dead worker left unread first, then
/// the stage's queue. None once the queue is drained and closed.
async fn take(
    rx: &Mutex<mpsc::Receiver<String>>,
    pending: &mut VecDeque<String>,
    stats: &StageStats,
) -> Option<Vec<String>> {
    if !pending.is_empty() {
        let n = pending.len().min(BATCH);
        return Some(pending.drain(..n).collect());
    }
    let mut batch = Vec::with_capacity(BATCH);
    let n = rx.lock().await.recv_many(&mut batch, BATCH).await;
    if n == 0 {
        return None;
    }
    took(stats, n);
    stats.items_in.fetch_add(n as u64, Relaxed);
    Some(batch)
}

/// A worker has answered everything it was given.
fn idle(stats: &StageStats, since: Instant) {
    add_busy(stats, since);
    stats.busy_now.fetch_sub(1, Relaxed);
}

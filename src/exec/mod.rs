//! Running one attempt of a unit (a job, or jobs joined by pipes): spawn,
//! feed and drain pipes, enforce the timeout, stop on cancellation, detect
//! leaked descendants, reap.
//!
//! Each job's life is a small state machine:
//! running → (timed out | cancelled → terminating) → exited → draining
//! (→ leaked) → reaped.

pub mod capture;
pub mod cgroup;
pub mod escape;
pub mod fdlimit;
pub mod group;
pub mod pause;
mod result;
pub mod retry;
pub mod spawn;
pub mod spool;
pub mod vfork;

pub use result::to_result;

use std::collections::HashMap;
use std::io::{PipeReader, PipeWriter};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use std::future::Future;
use std::task::Poll;

use futures::future::join_all;
use tokio_util::sync::CancellationToken;

use crate::model::{Captured, Exit, Spooled};
use crate::plan::{JobSpec, Plan, StdinSpec};
use capture::Keep;
use group::{ExitWatch, ProcessGroup, Sig};
use spawn::{SpawnError, Spawned};
use spool::Spool;

/// How long after a job's main process exits drover keeps reading pipes that
/// a descendant still holds open, before it calls the descendant leaked.
pub const LEAK_TIMEOUT: Duration = Duration::from_millis(200);

/// How long drover keeps retrying a spawn that fails for lack of file
/// descriptors.
const FD_WAIT_LIMIT: Duration = Duration::from_secs(60);

/// Cancellation shared by every running job.
#[derive(Clone, Default)]
pub struct Control {
    /// Stop gracefully: SIGTERM, `kill_grace`, SIGKILL.
    pub cancel: CancellationToken,
    /// Stop now: SIGKILL without waiting out `kill_grace`.
    pub kill_now: CancellationToken,
}

/// What a job of `drover exec` keeps of its output, in place of the tails
/// `drover run` keeps.
#[derive(Clone)]
pub struct Keeping {
    /// For stdout and stderr.
    pub keep: (Keep, Keep),
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum AttemptEnd {
    Exited(Exit),
    TimedOut(Exit),
    Cancelled(Exit),
    SpawnFailed(String),
    /// Stopped while it waited to start (descriptors, a FIFO's reader).
    NotStarted(String),
}

/// One attempt of one job.
#[derive(Debug)]
pub struct Attempt {
    pub job: usize,
    pub end: AttemptEnd,
    pub pid: Option<u32>,
    pub started_at: SystemTime,
    pub duration: Duration,
    pub stdout: Captured,
    pub stderr: Captured,
    pub leaked: bool,
    /// Its descendants that had left its process group, killed at its end.
    pub escaped: Vec<escape::Escaped>,
}

/// Runs one attempt of `unit`: every job of it spawned together, each
/// supervised until reaped. `on_spawned` is called once the spawns are done
/// (to release the descriptors only spawning needs), `on_start` for each job
/// that started. With `hold_writers`, drover keeps its copy of the job's
/// ends of captured pipes until the job's leader exits (two descriptors
/// more per job; see [`Spawned::writers`]). `keeping` replaces the tails
/// kept of a unit of one job.
// Not an `async fn`: its parameters would be kept twice in the future, as
// captured and as locals.
#[allow(clippy::manual_async_fn)]
pub fn run_unit(
    plan: &Plan,
    unit: usize,
    ctl: &Control,
    keeping: Option<&Keeping>,
    hold_writers: bool,
    on_spawned: impl FnOnce(),
    on_start: impl Fn(usize, u32, Option<&Arc<Spool>>),
) -> impl Future<Output = Vec<Attempt>> {
    async move {
        let jobs = &plan.units[unit].jobs;
        // Most units are one job: supervised right here, not in a list.
        if let [j] = jobs[..] {
            let spec = &plan.jobs[j];
            let spawned = spawn_waiting_for_fds(spec, None, None, hold_writers, ctl).await;
            on_spawned();
            // Matched as a temporary, so that no part of it is kept beside
            // the job's supervision below (80 bytes).
            let spawned = match spawned.map_err(|why| not_spawned(j, why)) {
                Ok(spawned) => spawned,
                Err(failed) => return vec![failed],
            };
            on_start(j, spawned.pid, spawned.stdout_file.as_ref());
            let keep = match keeping {
                Some(k) => k.keep.clone(),
                None => tails(spec),
            };
            let attempt = supervise(j, spec, spawned, ctl, keep).await;
            return vec![attempt];
        }
        // Boxed: its state would otherwise sit beside the one job's above in
        // every unit's task.
        Box::pin(run_joined(
            plan,
            jobs,
            ctl,
            hold_writers,
            on_spawned,
            on_start,
        ))
        .await
    }
}

/// [`run_unit`] for jobs joined by `stdin = { from = ... }` pipes.
async fn run_joined(
    plan: &Plan,
    jobs: &[usize],
    ctl: &Control,
    hold_writers: bool,
    on_spawned: impl FnOnce(),
    on_start: impl Fn(usize, u32, Option<&Arc<Spool>>),
) -> Vec<Attempt> {
    // The pipes joining jobs of this unit: consumer's read end, source's write end.
    let mut readers: HashMap<usize, PipeReader> = HashMap::new();
    let mut writers: HashMap<usize, PipeWriter> = HashMap::new();
    let mut failed: Vec<Attempt> = Vec::new();
    for &j in jobs {
        if let StdinSpec::From(src) = plan.jobs[j].stdin {
            match std::io::pipe() {
                Ok((r, w)) => {
                    readers.insert(j, r);
                    writers.insert(src, w);
                }
                Err(e) => failed.push(spawn_failed(
                    j,
                    format!("cannot create a pipe from `{}`: {e}", plan.jobs[src].name),
                )),
            }
        }
    }

    let mut running = Vec::new();
    for &j in jobs {
        let spec = &plan.jobs[j];
        let (stdin_from, stdout_to) = (readers.get(&j), writers.get(&j));
        match spawn_waiting_for_fds(spec, stdin_from, stdout_to, hold_writers, ctl).await {
            Ok(spawned) => {
                on_start(j, spawned.pid, spawned.stdout_file.as_ref());
                running.push((j, spawned));
            }
            Err(why) => failed.push(not_spawned(j, why)),
        }
    }
    // Close drover's copies of the joining pipes, so that EOF and EPIPE
    // travel between the jobs as in a shell pipeline.
    drop(readers);
    drop(writers);
    on_spawned();

    let supervised = running.into_iter().map(|(j, spawned)| {
        let spec = &plan.jobs[j];
        supervise(j, spec, spawned, ctl, tails(spec))
    });
    let mut attempts = join_all(supervised).await;
    attempts.extend(failed);
    attempts.sort_by_key(|a| a.job);
    attempts
}

/// What `drover run` keeps of a job's output: the tails the report shows.
fn tails(spec: &JobSpec) -> (Keep, Keep) {
    (
        Keep::Tail(spec.capture_limit),
        Keep::Tail(spec.capture_limit),
    )
}

/// Runs one attempt of a job that is a unit by itself (a pipeline's item):
/// `keep` says what to keep of its stdout and stderr.
pub async fn run_one(job: usize, spec: &JobSpec, ctl: &Control, keep: (Keep, Keep)) -> Attempt {
    match spawn_waiting_for_fds(spec, None, None, false, ctl).await {
        Ok(spawned) => supervise(job, spec, spawned, ctl, keep).await,
        Err(why) => not_spawned(job, why),
    }
}

/// Why a job did not start.
pub enum Unspawned {
    Failed(String),
    /// The run stopped while the job waited to start.
    Cancelled(String),
}

fn not_spawned(job: usize, why: Unspawned) -> Attempt {
    match why {
        Unspawned::Failed(why) => spawn_failed(job, why),
        Unspawned::Cancelled(why) => Attempt {
            end: AttemptEnd::NotStarted(why),
            ..spawn_failed(job, String::new())
        },
    }
}

fn spawn_failed(job: usize, why: String) -> Attempt {
    Attempt {
        job,
        end: AttemptEnd::SpawnFailed(why),
        pid: None,
        started_at: SystemTime::now(),
        duration: Duration::ZERO,
        stdout: Captured::default(),
        stderr: Captured::default(),
        leaked: false,
        escaped: Vec::new(),
    }
}

/// Spawns, holding the job back (never failing it) while the process is out
/// of file descriptors, or while its stdout/stderr FIFO has no reader (as a
/// shell's `> fifo` waits, but without holding a thread). The waiting is
/// boxed: it is rare, and a future that held its timer inline would make
/// every running job's task bigger.
pub(crate) async fn spawn_waiting_for_fds(
    spec: &JobSpec,
    stdin_from: Option<&PipeReader>,
    stdout_to: Option<&PipeWriter>,
    hold_writers: bool,
    ctl: &Control,
) -> Result<Spawned, Unspawned> {
    let mut opened = spawn::Opened::new();
    match spawn::spawn(spec, stdin_from, stdout_to, hold_writers, &mut opened) {
        Ok(s) => Ok(s),
        Err(SpawnError::Failed(why)) => Err(Unspawned::Failed(why)),
        Err(waiting) => {
            Box::pin(wait_to_spawn(
                spec,
                stdin_from,
                stdout_to,
                hold_writers,
                ctl,
                waiting,
                opened,
            ))
            .await
        }
    }
}

/// Tries the spawn again, backing off, until descriptors are free (for at
/// most FD_WAIT_LIMIT) or an output FIFO has a reader (for as long as it
/// takes, as a shell would: Ctrl-C stops it).
async fn wait_to_spawn(
    spec: &JobSpec,
    stdin_from: Option<&PipeReader>,
    stdout_to: Option<&PipeWriter>,
    hold_writers: bool,
    ctl: &Control,
    mut waiting: SpawnError,
    mut opened: spawn::Opened,
) -> Result<Spawned, Unspawned> {
    let first = Instant::now();
    let mut backoff = Duration::from_millis(5);
    let mut said = false;
    loop {
        let why = match &waiting {
            SpawnError::NoFds(e) if first.elapsed() > FD_WAIT_LIMIT => {
                return Err(Unspawned::Failed(format!(
                    "out of file descriptors for {FD_WAIT_LIMIT:?}: {e}"
                )));
            }
            SpawnError::NoFds(e) => {
                tracing::debug!(job = %spec.name, "out of file descriptors; waiting: {e}");
                "file descriptors"
            }
            SpawnError::NoReader(path) if spec.timeout.is_some_and(|t| first.elapsed() > t) => {
                return Err(Unspawned::Failed(format!(
                    "no process read the FIFO {} within the job's timeout ({})",
                    path.display(),
                    humantime::format_duration(spec.timeout.unwrap_or_default())
                )));
            }
            SpawnError::NoReader(path) => {
                if !said {
                    tracing::info!(job = %spec.name, "waiting for a reader of the FIFO {}", path.display());
                    said = true;
                }
                "a reader of its output FIFO"
            }
            SpawnError::Failed(why) => return Err(Unspawned::Failed(why.clone())),
        };
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = ctl.cancel.cancelled() => {
                return Err(Unspawned::Cancelled(format!("not started: the run was stopped while it waited for {why}")));
            }
        }
        backoff = (backoff * 2).min(Duration::from_millis(100));
        match spawn::spawn(spec, stdin_from, stdout_to, hold_writers, &mut opened) {
            Ok(s) => return Ok(s),
            Err(e) => waiting = e,
        }
    }
}

/// Supervises one running job until it is reaped. Its output is drained in
/// this same task (no task per pipe), in every phase, so a child blocked on a
/// full pipe can always make progress, even while it is being terminated.
/// The future is kept small (it is most of what a running job costs
/// drover): the setup is done here, before it, so that it holds only what it
/// uses, once; what only some jobs need (a timeout, terminating, a leak) is
/// boxed when it happens.
fn supervise<'a>(
    job: usize,
    spec: &'a JobSpec,
    spawned: Spawned,
    ctl: &'a Control,
    (keep_out, keep_err): (Keep, Keep),
) -> impl Future<Output = Attempt> + use<'a> {
    let Spawned {
        mut child,
        pid,
        stdin,
        stdout,
        stderr,
        stdout_file,
        stderr_file,
        writers,
        started_at,
        started,
    } = spawned;
    // process_group(0) makes the pid the pgid; pid 0 never comes from spawn.
    let group = ProcessGroup::led_by(pid).expect("spawned child has a non-zero pid");

    // stdin is written from a task of its own, as ripgrep does, so that a
    // child writing before it reads can never deadlock against drover.
    let feeder = match (&spec.stdin, stdin) {
        (StdinSpec::Bytes(data), Some(fd)) => Some(tokio::spawn(capture::feed(fd, data.clone()))),
        _ => None,
    };
    let mut output = capture::Output::new([stdout, stderr], [keep_out, keep_err]);
    let mut watch = ExitWatch::new(pid);
    let mut timer = spec.timeout.map(|t| pause::Deadline::at(started + t));

    #[derive(PartialEq)]
    enum Phase {
        Exited,
        TimedOut,
        Cancelled,
    }
    async move {
        let cancelled = ctl.cancel.cancelled();
        let mut cancelled = std::pin::pin!(cancelled);
        let phase = std::future::poll_fn(|cx| {
            // Output first: a job blocked on a full pipe goes on at once.
            let _ = output.poll_drain(cx);
            if watch.poll_exited(cx).is_ready() {
                return Poll::Ready(Phase::Exited);
            }
            // A job that exited before drover saw its deadline pass or the
            // run stop (drover was stopped, or busy) is judged by its exit.
            if let Some(timer) = &mut timer
                && timer.poll_expired(cx).is_ready()
            {
                return Poll::Ready(match watch.has_exited() {
                    true => Phase::Exited,
                    false => Phase::TimedOut,
                });
            }
            if cancelled.as_mut().poll(cx).is_ready() {
                return Poll::Ready(match watch.has_exited() {
                    true => Phase::Exited,
                    false => Phase::Cancelled,
                });
            }
            Poll::Pending
        })
        .await;
        drop(timer);
        if phase != Phase::Exited {
            // Boxed: most jobs never get here, so their futures stay small.
            let mut terminating = Box::pin(group::terminate(
                group,
                &mut watch,
                spec.kill_grace,
                &ctl.kill_now,
            ));
            std::future::poll_fn(|cx| {
                let _ = output.poll_drain(cx);
                terminating.as_mut().poll(cx)
            })
            .await;
        }
        // The pipes reach their end once no descendant holds them either.
        drop(writers);
        output.read_now();

        // The leader has exited and is still unreaped: its pgid cannot be reused,
        // so the group may be signalled safely until `wait` below.
        let mut leaked = false;
        let [mut out, mut err] = match output.is_done() {
            true => output.finish(),
            false => {
                // Boxed: most jobs' pipes have ended by now.
                Box::pin(read_to_end(&mut output, group, &mut child, &mut leaked)).await;
                Box::pin(output.finish_or_stop()).await
            }
        };
        // A job is its process group: nothing of it outlives it.
        group.signal(Sig::KILL);
        let spools = [stdout_file, stderr_file];
        if spools.iter().any(Option::is_some) {
            // Boxed: `drover run`'s jobs have no spools.
            [out, err] = Box::pin(finish_spools(spools, [out, err], spec)).await;
        }
        if let Some(f) = feeder {
            f.abort();
        }
        let exit = match child.wait() {
            Ok(status) => Exit::from_status(status),
            Err(e) => {
                tracing::warn!(job = %spec.name, "cannot reap the process: {e}");
                Exit::Code(-1)
            }
        };
        let escaped = child.escaped().to_vec();
        let end = match phase {
            Phase::Exited => AttemptEnd::Exited(exit),
            Phase::TimedOut => AttemptEnd::TimedOut(exit),
            Phase::Cancelled => AttemptEnd::Cancelled(exit),
        };
        Attempt {
            job,
            end,
            pid: Some(pid),
            started_at,
            duration: started.elapsed(),
            stdout: out,
            stderr: err,
            leaked,
            escaped,
        }
    }
}

/// Reads a job's pipes to their end once its leader has exited. A reader
/// that is behind (waiting on its consumer, as a pipeline's items are) reads
/// on however long that takes: what the job wrote is all kept. Only a pipe
/// that a descendant still holds open LEAK_TIMEOUT after the leader exited
/// is a leak: the group is killed, and the pipes are read to their end, or,
/// if a process that left the group still holds one, what they hold is read
/// and the rest given up (`finish_or_stop`).
async fn read_to_end(
    output: &mut capture::Output,
    group: ProcessGroup,
    child: &mut spawn::Child,
    leaked: &mut bool,
) {
    if tokio::time::timeout(LEAK_TIMEOUT, output.drained())
        .await
        .is_ok()
        || output.writers_gone()
    {
        return output.drained().await;
    }
    *leaked = true;
    group.signal(Sig::KILL);
    // And those that left the group (setsid), if drover can find them.
    child.kill_escaped();
    // The holders in the group are dead now.
    let _ = tokio::time::timeout(Duration::from_millis(100), output.drained()).await;
    if output.writers_gone() {
        output.drained().await;
    }
}

/// Takes the files of a job's spooled output into what it captured. What
/// cannot be taken is marked lost: an error that names the job when its
/// output is printed.
async fn finish_spools(
    spools: [Option<Arc<Spool>>; 2],
    mut captured: [Captured; 2],
    spec: &JobSpec,
) -> [Captured; 2] {
    for (spool, captured) in spools.into_iter().zip(&mut captured) {
        let Some(spool) = spool else { continue };
        // Writing the rest of a spilled spool to disk takes a while: not on
        // a runtime thread.
        let finished = match spool.has_spilled() {
            true => tokio::task::spawn_blocking(move || spool.finish())
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e))),
            false => spool.finish(),
        };
        let spooled = match finished {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(job = %spec.name, "a job's output is lost: {e}");
                Spooled {
                    lost: Some(e.to_string()),
                    ..Spooled::default()
                }
            }
        };
        captured.file = Some(Arc::new(spooled));
    }
    captured
}

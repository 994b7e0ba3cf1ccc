//! The front end of `drover exec`: jobs made from a stream of argument
//! lists (or `--pipe` blocks of stdin), at most `jobs` at a time, each
//! submitted to the engine as a batch of one job (so they run, retry and
//! stop as `drover run`'s do). One loop owns what exec adds: it `select!`s
//! over signals, new work, the engine's events and a closed stdout, admits
//! jobs (the `{%}` slots, the printer's backlog), decides `--halt` and
//! puts output in order for `-k`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use super::blocks::Block;
use super::signal::Interrupt;
use crate::engine::{
    BatchDone, Engine, Event as EngineEvent, How, StopReason, SubmitOptions, Target,
};
use crate::exec::capture::{Keep, LineSink};
use crate::exec::fdlimit::{JobCost, job_cost};
use crate::exec::spool::Spool;
use crate::exec::{Control, Keeping};
use crate::model::{BatchId, JobId, JobResult, Status};
use crate::plan::results::{ResultFiles, Results};
use crate::plan::template::{Fill, Template, shell_quote};
use crate::plan::{DEFAULT_CAPTURE_LIMIT, JobName, JobSpec, OutputSpec, Plan, Program, StdinSpec};

/// How output reaches drover's stdout/stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// A job's output is printed whole when it ends (default).
    Group,
    /// Complete lines are printed as they come (`--line-buffer`).
    LineBuffer,
    /// Jobs write straight to drover's stdout/stderr (`-u`).
    Ungroup,
}

/// When to stop early (`--halt`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Halt {
    /// Kill running jobs (`now`) or let them finish (`soon`).
    pub now: bool,
    pub on: HaltOn,
    pub threshold: Threshold,
}

/// Which jobs `--halt` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HaltOn {
    Fail,
    Success,
    /// Every finished job.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Count(u64),
    /// Of the jobs started so far, as GNU parallel does.
    Percent(f64),
}

/// Where each job's command is printed (GNU parallel's -v and -t).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShowCommands {
    /// `-v`: on stdout, before the job's output.
    pub stdout: bool,
    /// `-t`: on stderr, as the job starts.
    pub stderr: bool,
}

/// Everything `drover exec` decided from its command line.
pub struct Fanout {
    pub template: Template,
    pub shell: bool,
    /// `-q`: the words go to the program as written, and are shown quoted.
    pub quote: bool,
    pub show: ShowCommands,
    /// None: as many as possible.
    pub jobs: Option<NonZeroUsize>,
    pub timeout: Option<Duration>,
    pub kill_grace: Duration,
    pub retries: u32,
    pub halt: Option<Halt>,
    pub output: OutputMode,
    pub keep_order: bool,
    pub tag: bool,
    pub cwd: PathBuf,
    /// Keep every job's record for `--report`.
    pub keep_records: bool,
    /// How many jobs there will be, when known up front (`--halt P%`).
    pub total: Option<u64>,
    /// drover's stdout / stderr is /dev/null and nothing else needs the
    /// output: jobs write there directly (grouping cannot be observed).
    pub discard_stdout: bool,
    pub discard_stderr: bool,
    /// Grouped output in a fixed order: the sink is handed each job's
    /// stdout spool as the job starts ([`Sink::follow`]), to follow the one
    /// printed next.
    pub follow: bool,
    /// `--nice N`: the niceness jobs run at.
    pub nice: Option<i32>,
    /// `--delay`: the least time between two jobs' starts.
    pub delay: Option<Duration>,
    /// `--tagstring STR`: each job's tag, filled in as its command is (the
    /// text, and its template).
    pub tagstring: Option<(String, Template)>,
    /// `--resume`, `--resume-failed`: the jobs (by sequence number) that
    /// ran before, by the joblog, and are not run again.
    pub skip: std::collections::HashSet<u64>,
    /// `--retry-failed`: each job's one argument is its whole command line,
    /// run as written through the shell.
    pub raw: bool,
    /// `--timeout P%`: a job's timeout is this times the median run time of
    /// the jobs that succeeded before it started (none before the first).
    pub timeout_pct: Option<f64>,
    /// `--results DIR`: each job's stdout and stderr go to files there
    /// (and its number to a third), not to drover's output.
    pub results: Option<Results>,
    /// `--memfree`, `--load`: no job starts while the machine is short.
    pub hold: Option<Hold>,
}

/// When no new job starts (GNU parallel's --memfree and --load); running
/// jobs go on.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Hold {
    /// Bytes of MemAvailable (/proc/meminfo) below which none starts.
    pub memfree: Option<u64>,
    /// Runnable processes (/proc/loadavg's running count, now: not an
    /// average, as GNU's) at or above which none starts.
    pub load: Option<f64>,
}

impl Hold {
    /// Why no job may start now, if so.
    fn short(&self) -> Option<String> {
        if let Some(limit) = self.memfree {
            match available_memory() {
                Some(free) if free >= limit => {}
                Some(free) => {
                    return Some(format!(
                        "--memfree {limit}: {free} bytes available (MemAvailable)"
                    ));
                }
                None => return Some(format!("--memfree {limit}: cannot read /proc/meminfo")),
            }
        }
        if let Some(limit) = self.load {
            match running_processes() {
                Some(load) if load < limit => {}
                Some(load) => {
                    return Some(format!("--load {limit}: {load} processes runnable"));
                }
                None => return Some(format!("--load {limit}: cannot read /proc/loadavg")),
            }
        }
        None
    }
}

/// MemAvailable of /proc/meminfo, in bytes.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The processes runnable now: /proc/loadavg's fourth field, R of R/T.
fn running_processes() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace()
        .nth(3)?
        .split('/')
        .next()?
        .parse()
        .ok()
}

/// How often a held-back start looks again, and when it first says why.
const HOLD_POLL: Duration = Duration::from_millis(500);
const HOLD_NOTICE: Duration = Duration::from_secs(5);

/// One unit of work from the producer.
pub struct Work {
    pub args: Vec<String>,
    /// `--pipe`: the block fed to the job's stdin.
    pub block: Option<Block>,
}

/// A finished job, for the printer, the joblog and the report.
pub struct Done {
    pub seq: u64,
    pub args: Vec<String>,
    pub command: String,
    pub sent: u64,
    pub result: JobResult,
}

/// What the dispatcher hands on as jobs finish.
pub trait Sink: Send {
    /// A job finished; with `-k` this comes in sequence order. The sink
    /// owns its output now.
    fn finished(&mut self, done: Done);
    /// Complete lines of a running job (`--line-buffer`).
    fn lines(&mut self, seq: u64, args: &[String], stderr: bool, bytes: Vec<u8>);
    /// Whether drover's stdout is gone (`drover exec ... | head -1`).
    fn stdout_closed(&self) -> bool;
    /// Whether printing lags so far behind that no job should start.
    fn backlogged(&self) -> bool {
        false
    }
    /// Notified whenever the printer catches up a little.
    fn progress(&self) -> Arc<tokio::sync::Notify>;
    /// Something the person should know (halting, interrupts).
    fn notice(&mut self, text: &str);
    /// A job starts, with this command (GNU parallel's -t, and -v with
    /// --line-buffer); not called with -u, whose jobs write directly.
    fn started(&mut self, _args: &[String], _command: &str) {}
    /// Job `seq` runs, its stdout waiting in `spool` ([`Fanout::follow`]).
    fn follow(&mut self, _seq: u64, _spool: Arc<Spool>) {}
}

pub struct Outcome {
    pub started: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Why the run stopped before its input ran out.
    pub stopped: Option<StopReason>,
    /// The exit code of the job that triggered `--halt ...fail`.
    pub halt_exit: Option<i32>,
    pub records: Vec<Done>,
    pub started_at: SystemTime,
    pub duration: Duration,
}

impl Fanout {
    /// The command as GNU parallel shows it (-v, -t, --dry-run, joblog,
    /// --halt notices): the words as written, the values quoted; with -q
    /// every word quoted.
    pub fn command_line(&self, fill: &Fill<'_>) -> String {
        if self.raw {
            return fill.args.first().cloned().unwrap_or_default();
        }
        if self.quote && !self.shell {
            let words: Vec<String> = self
                .template
                .argv(fill)
                .iter()
                .map(|w| shell_quote(w))
                .collect();
            return words.join(" ");
        }
        self.template.shell_line(fill)
    }

    /// What tags the lines of a job (`--tag`: its arguments; `--tagstring`:
    /// that, filled in), or its arguments where nothing is tagged.
    fn tag_args(&self, work: &mut Work, seq: u64, slot: usize) -> Vec<String> {
        let Some((text, tag)) = &self.tagstring else {
            return std::mem::take(&mut work.args);
        };
        let fill = Fill {
            args: &work.args,
            seq,
            slot,
        };
        // A tag without replacement strings is itself: no argument is
        // added to it, as to a command.
        match tag.has_replacements() {
            true => vec![tag.argv(&fill).join(" ")],
            false => vec![text.clone()],
        }
    }

    /// The descriptors each job of the run takes (all alike); `block`: fed
    /// a `--pipe` block.
    pub fn job_cost(&self, block: bool) -> JobCost {
        let work = Work {
            args: Vec::new(),
            block: None,
        };
        let (mut spec, _) = self.spec(&work, 1, 1);
        if block {
            spec.stdin = StdinSpec::Bytes(Default::default());
        }
        job_cost(&spec)
    }

    fn spec(&self, work: &Work, seq: u64, slot: usize) -> (JobSpec, String) {
        let fill = Fill {
            args: if work.block.is_some() {
                &[]
            } else {
                &work.args
            },
            seq,
            slot,
        };
        let command = self.command_line(&fill);
        let program = if self.shell || self.raw {
            Program::Shell(command.clone())
        } else {
            Program::Argv(self.template.argv(&fill))
        };
        let captured = match self.output {
            OutputMode::Ungroup => OutputSpec::Inherit,
            OutputMode::LineBuffer => OutputSpec::Capture,
            // Grouped: the job writes into a temporary file of its own, which
            // the printer copies out in the kernel when the job ends.
            OutputMode::Group => OutputSpec::Spooled,
        };
        let (stdout, stderr) = (
            if self.discard_stdout {
                OutputSpec::Null
            } else {
                captured.clone()
            },
            if self.discard_stderr {
                OutputSpec::Null
            } else {
                captured
            },
        );
        let spec = JobSpec {
            // Sequence numbers are digits: always a valid name.
            name: JobName::parse(&seq.to_string()).expect("a number is a valid job name"),
            program,
            stdin: match &work.block {
                Some(Block::Bytes(bytes)) => StdinSpec::Bytes(bytes.clone()),
                Some(Block::Handed(fd, _)) => StdinSpec::Handed(fd.clone()),
                None => StdinSpec::Null,
            },
            stdout,
            stderr,
            env: Vec::new(),
            cwd: self.cwd.clone(),
            timeout: self.timeout,
            kill_grace: self.kill_grace,
            retries: self.retries,
            retry_delay: Duration::ZERO,
            ok_codes: vec![0],
            capture_limit: DEFAULT_CAPTURE_LIMIT,
            needs: Vec::new(),
            nice: self.nice,
        };
        (spec, command)
    }
}

/// A job submitted to the engine and not yet done.
struct Running {
    seq: u64,
    slot: usize,
    args: Vec<String>,
    command: String,
    /// `--pipe`: the block, held until the job ends (its bytes sent).
    block: Option<Block>,
}

/// Runs every job `work` yields, each as a batch of one job of `engine`.
/// `work` is closed by the producer at the end of the input.
pub async fn run(
    fanout: Arc<Fanout>,
    engine: &Engine,
    mut work: mpsc::Receiver<Work>,
    sink: &mut dyn Sink,
    mut interrupts: mpsc::UnboundedReceiver<Interrupt>,
) -> Outcome {
    let started_at = SystemTime::now();
    let clock = std::time::Instant::now();
    let limit = fanout.jobs.map(NonZeroUsize::get);
    // One cancellation for every job of the run: the first stop reaches
    // them all.
    let ctl = Control::default();
    let mut out = Outcome {
        started: 0,
        succeeded: 0,
        failed: 0,
        stopped: None,
        halt_exit: None,
        records: Vec::new(),
        started_at,
        duration: Duration::ZERO,
    };
    // Starts are heard of only to hand the sink what it follows.
    let Ok(mut events) = engine.subscribe(fanout.follow).await else {
        out.duration = clock.elapsed();
        return out;
    };
    let (line_tx, mut line_rx) = mpsc::channel::<(usize, bool, Vec<u8>)>(64);
    // Slots are numbered from 1; a finished job's slot is reused first.
    let mut free_slots: BinaryHeap<Reverse<usize>> = BinaryHeap::new();
    let mut next_slot = 1usize;
    // Boxed: the table's spare room holds pointers, not jobs.
    let mut running: HashMap<BatchId, Box<Running>> = HashMap::new();
    // Arguments of running jobs by seq, for --tag in line-buffer mode.
    let mut running_args: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    // Following: which job is which seq.
    let mut seqs: HashMap<JobId, u64> = HashMap::new();
    let mut seq = 0u64;
    let mut input_done = false;
    let mut signals_seen = 0;
    // -k: finished jobs waiting for their predecessors.
    let mut waiting: BTreeMap<u64, Done> = BTreeMap::new();
    let mut next_to_print = 1u64;
    let progress = sink.progress();
    // Why the jobs are to be stopped, and how, once the select below has
    // decided it.
    let mut stop: Option<(How, StopReason)> = None;
    let mut next_start: Option<tokio::time::Instant> = None;
    // --memfree, --load: since when starts are held back, when to look
    // again, and whether the person was told.
    let mut held_since: Option<tokio::time::Instant> = None;
    let mut recheck = tokio::time::Instant::now();
    let mut told = false;
    let mut median = Remedian::default();

    loop {
        if let Some((how, reason)) = stop.take() {
            for &batch in running.keys() {
                let _ = engine
                    .cancel(Target::Batch(batch), how, reason.clone())
                    .await;
            }
        }
        let backlogged = sink.backlogged();
        let could_start = out.stopped.is_none()
            && !input_done
            && !backlogged
            && limit.is_none_or(|l| running.len() < l);
        // --delay: not before the last start's time is up.
        let delayed = next_start.is_some_and(|t| tokio::time::Instant::now() < t);
        let mut held = false;
        if let Some(hold) = fanout.hold.filter(|_| could_start && !delayed) {
            let now = tokio::time::Instant::now();
            match hold.short() {
                Some(why) => {
                    held = true;
                    let since = *held_since.get_or_insert(now);
                    recheck = now + HOLD_POLL;
                    if !told && now - since >= HOLD_NOTICE {
                        told = true;
                        sink.notice(&format!(
                            "{why}; no new job starts until there is enough (as GNU parallel, drover waits; {} running)",
                            running.len()
                        ));
                    }
                }
                None => held_since = None,
            }
        }
        let can_start = could_start && !delayed && !held;
        if running.is_empty() && (input_done || out.stopped.is_some()) {
            break;
        }
        tokio::select! {
            biased;
            Some(interrupt) = interrupts.recv() => {
                signals_seen += 1;
                let reason = StopReason::Interrupted(interrupt.name());
                if signals_seen == 1 {
                    out.stopped = Some(reason.clone());
                    sink.notice(&format!("{}: stopping {} running job(s); press Ctrl-C again to kill them at once", interrupt.name(), running.len()));
                    stop = Some((How::Graceful, reason));
                } else {
                    stop = Some((How::Now, reason));
                }
            }
            event = events.recv() => match event {
                Some(EngineEvent::BatchDone(batch_done)) => {
                    let Some(job) = running.remove(&batch_done.batch) else { continue };
                    if fanout.follow {
                        seqs.retain(|_, s| *s != job.seq);
                    }
                    // Its last lines were queued before it was reaped.
                    while let Ok((job, stderr, bytes)) = line_rx.try_recv() {
                        let args = running_args.get(&(job as u64)).cloned().unwrap_or_default();
                        sink.lines(job as u64, &args, stderr, bytes);
                    }
                    let result = only_result(batch_done);
                    running_args.remove(&job.seq);
                    free_slots.push(Reverse(job.slot));
                    if result.status == Status::Succeeded {
                        out.succeeded += 1;
                        if let (Some(_), Some(took)) = (fanout.timeout_pct, result.duration) {
                            median.add(took.as_secs_f64());
                        }
                    } else {
                        out.failed += 1;
                    }
                    let sent = job.block.as_ref().map_or(0, Block::sent);
                    let done = Done { seq: job.seq, args: job.args, command: job.command, sent, result };
                    if check_halt(&fanout, &done, &mut out, sink, running.len()) {
                        stop = Some((How::Graceful, StopReason::Halted));
                    }
                    if fanout.keep_order {
                        waiting.insert(done.seq, done);
                        print_in_order(sink, &fanout, &mut out, &mut waiting, &mut next_to_print, seq);
                    } else {
                        finish(sink, done, &fanout, &mut out);
                    }
                    stop_if_stdout_closed(sink, &mut out, &mut stop);
                }
                Some(EngineEvent::Started { job, stdout: Some(spool), .. }) => {
                    if let Some(&seq) = seqs.get(&job) {
                        sink.follow(seq, spool);
                    }
                }
                Some(_) => {}
                // The engine is gone: nothing running will be heard of.
                None => break,
            },
            Some((job, stderr, bytes)) = line_rx.recv() => {
                let seq = job as u64;
                let args = running_args.get(&seq).cloned().unwrap_or_default();
                sink.lines(seq, &args, stderr, bytes);
                stop_if_stdout_closed(sink, &mut out, &mut stop);
            }
            _ = tokio::time::sleep_until(next_start.unwrap_or_else(tokio::time::Instant::now)), if could_start && delayed => {}
            _ = tokio::time::sleep_until(recheck), if held => {}
            // The printer caught up, or found stdout closed.
            _ = progress.notified() => {
                stop_if_stdout_closed(sink, &mut out, &mut stop);
            }
            next = work.recv(), if can_start => match next {
                None => input_done = true,
                Some(mut w) => {
                    seq += 1;
                    // Run before (--resume): not again, and -k goes past it.
                    if !fanout.skip.is_empty() && fanout.skip.contains(&seq) {
                        if fanout.keep_order {
                            print_in_order(sink, &fanout, &mut out, &mut waiting, &mut next_to_print, seq);
                        }
                        continue;
                    }
                    if let Some(delay) = fanout.delay {
                        next_start = Some(tokio::time::Instant::now() + delay);
                    }
                    let slot = free_slots.pop().map(|Reverse(s)| s).unwrap_or_else(|| {
                        next_slot += 1;
                        next_slot - 1
                    });
                    out.started += 1;
                    let (mut spec, command) = fanout.spec(&w, seq, slot);
                    let mut before_start = None;
                    if let Some(results) = &fanout.results {
                        let files = results.files(&w.args, seq, slot);
                        spec.stdout = OutputSpec::File { path: files.stdout.clone(), append: false };
                        spec.stderr = OutputSpec::File { path: files.stderr.clone(), append: false };
                        before_start = Some(write_seq(files, seq));
                    }
                    if let (Some(pct), Some(m)) = (fanout.timeout_pct, median.get()) {
                        spec.timeout = Some(Duration::from_secs_f64(pct * m));
                    }
                    // -u: jobs write to drover's stdout and stderr directly,
                    // so their command is written before they start.
                    match fanout.output {
                        OutputMode::Ungroup if fanout.show != ShowCommands::default() => {
                            write_directly(format!("{command}\n"), fanout.show).await;
                        }
                        OutputMode::Ungroup => {}
                        _ => {}
                    }
                    let args = fanout.tag_args(&mut w, seq, slot);
                    if fanout.output != OutputMode::Ungroup {
                        sink.started(&args, &command);
                    }
                    // Only --line-buffer reads pipes; grouped jobs write to files.
                    let keep = |stderr: bool| match fanout.output {
                        OutputMode::LineBuffer => Keep::Lines(LineSink { job: seq as usize, stderr, tx: line_tx.clone() }),
                        _ => Keep::Tail(DEFAULT_CAPTURE_LIMIT),
                    };
                    let options = SubmitOptions {
                        cancel_jobs: false,
                        control: Some(ctl.clone()),
                        keeping: Some(Keeping {
                            keep: (keep(false), keep(true)),
                        }),
                        first_job: None,
                        before_start,
                    };
                    let Ok(submitted) = engine.submit_with(Arc::new(Plan::one(spec)), options).await else {
                        break;
                    };
                    if fanout.output == OutputMode::LineBuffer {
                        running_args.insert(seq, args.clone());
                    }
                    if fanout.follow {
                        seqs.extend(submitted.jobs.iter().map(|&j| (j, seq)));
                    }
                    running.insert(submitted.batch, Box::new(Running { seq, slot, args, command, block: w.block }));
                }
            },
        }
    }
    // -k after an early stop: print what finished, in order.
    for (_, d) in std::mem::take(&mut waiting) {
        finish(sink, d, &fanout, &mut out);
    }
    out.duration = clock.elapsed();
    out
}

/// `--results`: before each attempt, the folder made and the job's number
/// written to its seq file (created, or emptied in place), as GNU parallel
/// does at a job's start; an error fails the job, naming the file.
fn write_seq(files: ResultFiles, seq: u64) -> crate::engine::BeforeStart {
    let files = Arc::new(files);
    Arc::new(move |_attempt| {
        let files = files.clone();
        Box::pin(async move {
            let path = &files.seq;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("--results: cannot create {}: {e}", dir.display()))?;
            }
            std::fs::write(path, seq.to_string())
                .map_err(|e| format!("--results: cannot write {}: {e}", path.display()))
        })
    })
}

/// The median of many values in bounded memory, as GNU parallel keeps the
/// run times for `--timeout P%`: the remedian (Rousseeuw and Bassett, 1990)
/// of 999 x 999 x 999 values, each level the median of the one below.
#[derive(Default)]
struct Remedian {
    count: u64,
    levels: [Vec<f64>; 3],
    scratch: Vec<f64>,
    median: Option<f64>,
}

impl Remedian {
    const BASE: u64 = 999;

    fn add(&mut self, value: f64) {
        let i = self.count;
        self.count += 1;
        let mut slot = i;
        let mut below = value;
        for level in 0..3 {
            let at = (slot % Self::BASE) as usize;
            let values = &mut self.levels[level];
            if at < values.len() {
                values[at] = below;
            } else {
                values.push(below);
            }
            // The lower median (of an even count, the lower middle), as
            // GNU's; in linear time, not a sort.
            self.scratch.clear();
            self.scratch.extend_from_slice(values);
            let mid = (self.scratch.len() - 1) / 2;
            below = *self.scratch.select_nth_unstable_by(mid, f64::total_cmp).1;
            slot /= Self::BASE;
        }
        self.median = Some(below);
    }

    fn get(&self) -> Option<f64> {
        self.median
    }
}

/// `-k`: prints the finished jobs that are next in order, going past those
/// not run again (`--resume`) among the first `read` of the input.
fn print_in_order(
    sink: &mut dyn Sink,
    fanout: &Fanout,
    out: &mut Outcome,
    waiting: &mut BTreeMap<u64, Done>,
    next: &mut u64,
    read: u64,
) {
    loop {
        if let Some(d) = waiting.remove(next) {
            *next += 1;
            finish(sink, d, fanout, out);
        } else if *next <= read && !fanout.skip.is_empty() && fanout.skip.contains(next) {
            *next += 1;
        } else {
            break;
        }
    }
}

/// The result of a batch of one job, taken out of the engine's event
/// without a copy when nothing else holds it.
fn only_result(done: Arc<BatchDone>) -> JobResult {
    let result = match Arc::try_unwrap(done) {
        Ok(mut done) => done.results.pop(),
        Err(shared) => shared.results.first().cloned(),
    };
    match result {
        Some(r) => Arc::try_unwrap(r).unwrap_or_else(|shared| (*shared).clone()),
        // A batch of one job has one result.
        None => JobResult::not_started(Status::Failed, "internal error in drover: no result"),
    }
}

fn finish(sink: &mut dyn Sink, done: Done, fanout: &Fanout, out: &mut Outcome) {
    // Jobs killed by `--halt now` are neither printed nor logged (GNU).
    let killed_by_halt = out.stopped == Some(StopReason::Halted)
        && fanout.halt.is_some_and(|h| h.now)
        && done.result.status == Status::Cancelled;
    if killed_by_halt {
        return;
    }
    if fanout.keep_records {
        // The report keeps the tail, as `drover run` does.
        let mut result = done.result.clone();
        for (stream, c) in [
            ("stdout", &mut result.stdout),
            ("stderr", &mut result.stderr),
        ] {
            if let Some(why) = c.lost() {
                let lost = format!("its {stream} is lost: {why}");
                result.error = Some(match result.error.take() {
                    Some(e) => format!("{e}; {lost}"),
                    None => lost,
                });
            }
            let (bytes, truncated) = c.tail(DEFAULT_CAPTURE_LIMIT);
            *c = crate::model::Captured {
                bytes,
                truncated,
                ..Default::default()
            };
        }
        out.records.push(Done {
            seq: done.seq,
            args: done.args.clone(),
            command: done.command.clone(),
            sent: done.sent,
            result,
        });
    }
    sink.finished(done);
}

/// A closed stdout (`| head -1`) stops the run: no new jobs, running ones
/// cancelled.
fn stop_if_stdout_closed(sink: &dyn Sink, out: &mut Outcome, stop: &mut Option<(How, StopReason)>) {
    if sink.stdout_closed() && out.stopped.is_none() {
        out.stopped = Some(StopReason::StdoutClosed);
        *stop = Some((How::Graceful, StopReason::StdoutClosed));
    }
}

/// Counts `done` towards `--halt`; true if running jobs are to be stopped
/// now.
fn check_halt(
    fanout: &Fanout,
    done: &Done,
    out: &mut Outcome,
    sink: &mut dyn Sink,
    running: usize,
) -> bool {
    let Some(halt) = fanout.halt else {
        return false;
    };
    if out.stopped.is_some() {
        return false;
    }
    let ok = done.result.status == Status::Succeeded;
    let (counts, what) = match halt.on {
        HaltOn::Fail => (!ok, "failed"),
        HaltOn::Success => (ok, "succeeded"),
        HaltOn::Done => (true, "finished"),
    };
    if !counts {
        return false;
    }
    // As GNU parallel, every job that counts towards the halt is named.
    sink.notice(&format!("This job {what}:\n{}", done.command));
    let count = match halt.on {
        HaltOn::Fail => out.failed,
        HaltOn::Success => out.succeeded,
        HaltOn::Done => out.failed + out.succeeded,
    };
    let reached = match halt.threshold {
        Threshold::Count(n) => count >= n,
        Threshold::Percent(p) => {
            // Of all the jobs when that is known up front, as GNU parallel.
            let of = fanout.total.unwrap_or(out.started).max(1);
            (count as f64) * 100.0 >= p * of as f64
        }
    };
    if !reached {
        return false;
    }
    out.stopped = Some(StopReason::Halted);
    // GNU parallel's exit status after a halt.
    out.halt_exit = Some(match (halt.on, halt.threshold) {
        (HaltOn::Success, _) => 0,
        (_, Threshold::Count(1)) => match done.result.exit {
            Some(crate::model::Exit::Code(c)) => c,
            Some(crate::model::Exit::Signal(sig)) => 128 + sig,
            None => 1,
        },
        (_, Threshold::Count(_)) => out.failed.min(101) as i32,
        (_, Threshold::Percent(_)) => {
            let of = fanout.total.unwrap_or(out.started).max(1);
            ((out.failed as f64) * 100.0 / of as f64).ceil() as i32
        }
    });
    if !halt.now && running > 0 {
        sink.notice(&format!(
            "Starting no more jobs. Waiting for {running} jobs to finish."
        ));
    }
    halt.now
}

/// Writes a job's command to drover's stdout (-v) and stderr (-t) before
/// the job starts, off the runtime: the reader may be slow.
async fn write_directly(line: String, show: ShowCommands) {
    use std::io::Write;
    let _ = tokio::task::spawn_blocking(move || {
        // A closed stdout stops the jobs elsewhere; nothing to add here.
        if show.stdout {
            let _ = std::io::stdout().lock().write_all(line.as_bytes());
        }
        if show.stderr {
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::Remedian;

    #[test]
    fn the_remedian_is_the_lower_median_and_follows_a_long_run() {
        let mut m = Remedian::default();
        assert_eq!(m.get(), None);
        for v in [5.0, 1.0, 4.0, 2.0] {
            m.add(v);
        }
        assert_eq!(m.get(), Some(2.0), "of 1 2 4 5, the lower middle");
        m.add(3.0);
        assert_eq!(m.get(), Some(3.0));
        // Past one block of 999: the median of the blocks' medians, close
        // to the true one, in bounded memory.
        let mut m = Remedian::default();
        for i in 0..5000u32 {
            m.add(f64::from((i * 7919) % 5000));
        }
        let got = m.get().unwrap();
        assert!((2300.0..2700.0).contains(&got), "{got}");
        assert!(m.levels[0].len() <= 999 && m.levels[1].len() <= 999);
    }
}

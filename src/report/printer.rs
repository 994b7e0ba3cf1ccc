//! The printer of `drover exec`: one thread owns drover's stdout and stderr
//! (and the joblog), so that blocking writes to a slow pipe never stall the
//! dispatcher, and a job's output is written whole, never interleaved with
//! another's. A closed stdout (`| head -1`) is noticed and reported back.
//! A job's output that cannot be written for any other reason (a full
//! disk, an I/O error), or that was not kept, is lost: the printer says so,
//! naming the job, and [`Printer::close`] lists it for drover's exit code.
//!
//! Where the order of output is fixed (`-k`, `-j 1`), the printer follows
//! the stdout of the job whose output comes next, writing out what it has
//! written as it goes (see [`spool`](crate::exec::spool)): the same bytes in
//! the same order, only sooner.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::ProgressBar;
use tokio::sync::Notify;

use super::joblog;
use crate::exec::spool::{self, Spool};
use crate::model::{Captured, Status};
use crate::sched::fanout::{Done, ShowCommands, Sink};

/// Printing may lag behind finished jobs by this much output in memory
/// before new jobs wait.
const BACKLOG_LIMIT: u64 = 16 * 1024 * 1024;
/// At most this much of a followed job's output at one go, so that the job
/// is paced (held back or let go) as the printer proceeds.
const FOLLOW_CHUNK: u64 = 4 * 1024 * 1024;
/// How long the printer waits before looking again at a followed job that
/// wrote nothing new: doubling from the first to the second.
const FOLLOW_IDLE: (Duration, Duration) = (Duration::from_millis(1), Duration::from_millis(20));

enum Msg {
    Job(Box<Done>),
    Lines {
        /// The job, for an error naming it.
        job: String,
        tag: Option<String>,
        stderr: bool,
        bytes: Vec<u8>,
    },
    Notice(String),
    /// The jobs before this one are all printed: its output comes next.
    Next(u64),
    /// Job `seq` runs, its stdout waiting in this spool.
    Follow(u64, Arc<Spool>),
}

pub struct Printer {
    tx: Option<std_mpsc::Sender<Msg>>,
    thread: Option<JoinHandle<Printed>>,
    shared: Arc<Shared>,
    tag: bool,
    joblog: bool,
    bar: Option<ProgressBar>,
    follow: bool,
    show: ShowCommands,
    grouped: bool,
}

struct Shared {
    stdout_closed: AtomicBool,
    /// Bytes held in memory by jobs handed over and not yet printed.
    backlog: AtomicU64,
    progress: Arc<Notify>,
}

/// What the printer could not do, when it is done.
#[derive(Default)]
pub struct Printed {
    /// The first error writing the joblog.
    pub joblog_error: Option<io::Error>,
    /// The jobs whose output is lost (in part or whole), each with why.
    pub lost: Vec<String>,
}

/// Options of the printer.
pub struct PrinterOptions {
    pub tag: bool,
    /// The joblog, and whether to write its header.
    pub joblog: Option<(File, bool)>,
    pub bar: Option<ProgressBar>,
    /// Follow the output of the job printed next (jobs finish in order),
    /// from the spools handed over by [`Sink::follow`].
    pub follow: bool,
    /// Print each job's command (-v, -t).
    pub show: ShowCommands,
    /// Output is grouped: -v prints the command with the job's output, not
    /// as the job starts.
    pub grouped: bool,
}

impl Printer {
    /// Starts the printer's thread: an error if it cannot start, as no
    /// output could be printed.
    pub fn new(opts: PrinterOptions) -> io::Result<Self> {
        let (tx, rx) = std_mpsc::channel::<Msg>();
        let shared = Arc::new(Shared {
            stdout_closed: AtomicBool::new(false),
            backlog: AtomicU64::new(0),
            progress: Arc::new(Notify::new()),
        });
        let has_joblog = opts.joblog.is_some();
        let follow = opts.follow;
        let thread = {
            let shared = shared.clone();
            let tag = opts.tag;
            let joblog = opts.joblog;
            let bar = opts.bar.clone();
            let with_output = opts.show.stdout && opts.grouped;
            std::thread::Builder::new()
                .name("drover-printer".into())
                .spawn(move || print_loop(rx, &shared, tag, joblog, bar, follow, with_output))?
        };
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            shared,
            tag: opts.tag,
            joblog: has_joblog,
            bar: opts.bar,
            follow,
            show: opts.show,
            grouped: opts.grouped,
        })
    }

    /// Waits until everything handed over is written; returns what could
    /// not be.
    pub fn close(mut self) -> Printed {
        drop(self.tx.take());
        let result = match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|_| Printed {
                lost: vec!["the printer stopped (it panicked): output may be missing".into()],
                ..Printed::default()
            }),
            None => Printed::default(),
        };
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        result
    }

    fn send(&self, msg: Msg) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(msg);
        }
    }
}

/// GNU parallel's tag: the arguments joined by spaces.
fn tag_of(args: &[String]) -> String {
    args.join(" ")
}

impl Sink for Printer {
    fn finished(&mut self, done: Done) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        // Nothing to print or log: no need to wake the printer thread.
        let silent = done.result.stdout.is_empty()
            && done.result.stderr.is_empty()
            && done.result.stdout.lost().is_none()
            && done.result.stderr.lost().is_none()
            && !self.joblog
            && !(self.show.stdout && self.grouped)
            && !matches!(done.result.status, Status::SpawnFailed | Status::TimedOut);
        let next = self.follow.then_some(done.seq + 1);
        if !silent {
            let held = (done.result.stdout.bytes.len() + done.result.stderr.bytes.len()) as u64;
            self.shared.backlog.fetch_add(held, Ordering::Relaxed);
            self.send(Msg::Job(Box::new(done)));
        }
        if let Some(next) = next {
            self.send(Msg::Next(next));
        }
    }

    fn lines(&mut self, seq: u64, args: &[String], stderr: bool, bytes: Vec<u8>) {
        let tag = self.tag.then(|| tag_of(args));
        let job = format!("job {seq} (item {})", tag_of(args));
        self.send(Msg::Lines {
            job,
            tag,
            stderr,
            bytes,
        });
    }

    fn stdout_closed(&self) -> bool {
        self.shared.stdout_closed.load(Ordering::Relaxed)
    }

    fn backlogged(&self) -> bool {
        self.shared.backlog.load(Ordering::Relaxed) > BACKLOG_LIMIT
    }

    fn progress(&self) -> Arc<Notify> {
        self.shared.progress.clone()
    }

    fn notice(&mut self, text: &str) {
        self.send(Msg::Notice(text.to_string()));
    }

    fn follow(&mut self, seq: u64, spool: Arc<Spool>) {
        if self.follow {
            self.send(Msg::Follow(seq, spool));
        }
    }

    fn started(&mut self, args: &[String], command: &str) {
        let line = || format!("{command}\n").into_bytes();
        // As GNU parallel: -t's line is not tagged, -v's is.
        let job = || format!("the command line of {command}");
        if self.show.stderr {
            self.send(Msg::Lines {
                job: job(),
                tag: None,
                stderr: true,
                bytes: line(),
            });
        }
        if self.show.stdout && !self.grouped {
            let tag = self.tag.then(|| tag_of(args));
            self.send(Msg::Lines {
                job: job(),
                tag,
                stderr: false,
                bytes: line(),
            });
        }
    }
}

/// Writes `tag` + TAB at the start of every line.
struct Tagged<'a, W: Write> {
    inner: W,
    tag: &'a [u8],
    at_line_start: bool,
}

impl<W: Write> Write for Tagged<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf).map(|()| buf.len())
    }

    fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            if self.at_line_start {
                self.inner.write_all(self.tag)?;
                self.inner.write_all(b"\t")?;
                self.at_line_start = false;
            }
            match buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.inner.write_all(&buf[..=i])?;
                    self.at_line_start = true;
                    buf = &buf[i + 1..];
                }
                None => {
                    self.inner.write_all(buf)?;
                    buf = &[];
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes one stream of a job to `out` (whose descriptor is `fd`), but for
/// its first `skip` bytes. An output the job wrote into a file goes with
/// sendfile(2), unless it is tagged.
fn write_output(
    out: &mut dyn Write,
    fd: BorrowedFd<'_>,
    data: &Captured,
    tag: Option<&str>,
    skip: u64,
) -> io::Result<()> {
    if data.len() <= skip {
        return Ok(());
    }
    match tag {
        Some(tag) => {
            let mut t = Tagged {
                inner: &mut *out,
                tag: tag.as_bytes(),
                at_line_start: true,
            };
            data.write_to(&mut t, skip)?;
        }
        None if data.file.is_some() => {
            out.flush()?;
            data.send_to(fd, skip)?;
        }
        None => data.write_to(out, skip)?,
    }
    out.flush()
}

/// The stdout of the job printed next, written out while the job runs.
struct Live {
    seq: u64,
    spool: Arc<Spool>,
    /// The spool's memory file, to read from.
    handle: File,
    /// Bytes written out (and freed in the spool), from offset 0.
    sent: u64,
    /// Writing failed: no more until the job ends, when the rest (from
    /// `sent`: what is before is freed) is printed or not as any output.
    failed: bool,
    /// Why writing failed, other than a closed stdout: the job's output
    /// is lost in part.
    lost: Option<String>,
}

impl Live {
    /// Follows job `seq`'s stdout, once it runs (and unless some of its
    /// output is on disk already: then it is printed when the job ends).
    fn start(posted: &mut HashMap<u64, Arc<Spool>>, seq: u64) -> Option<Live> {
        let spool = posted.remove(&seq)?;
        let handle = spool.follow()?;
        Some(Live {
            seq,
            spool,
            handle,
            sent: 0,
            failed: false,
            lost: None,
        })
    }

    /// Writes out some of what the job wrote since the last look, and frees
    /// it; whether there was anything new.
    ///
    /// Copied through drover, not sent with sendfile(2): that lends the
    /// spool's pages to a pipe, and a reader may pass them on by splice
    /// (another drover does), out of sight; freeing a page that is partly
    /// written out zeroes it in place, under the reader's feet.
    fn pump(&mut self, out: &mut dyn Write) -> io::Result<bool> {
        if self.failed {
            return Ok(false);
        }
        let end = self.handle.metadata()?.len();
        let from = self.sent;
        if end <= from {
            return Ok(false);
        }
        let to = end.min(from + FOLLOW_CHUNK);
        self.sent = crate::model::read_and_write(out, &self.handle, from, to)?;
        out.flush()?;
        self.spool.printed(&self.handle, from, self.sent);
        Ok(self.sent > from)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.spool.unfollow();
    }
}

fn print_loop(
    rx: std_mpsc::Receiver<Msg>,
    shared: &Shared,
    tag: bool,
    joblog: Option<(File, bool)>,
    bar: Option<ProgressBar>,
    follow: bool,
    // -v: each job's command comes first in its output.
    command_with_output: bool,
) -> Printed {
    let mut stdout = BufWriter::with_capacity(64 * 1024, io::stdout());
    let header = joblog.as_ref().is_some_and(|(_, h)| *h);
    let mut joblog = joblog.map(|(f, _)| BufWriter::new(f));
    let mut printed = Printed::default();
    if let Some(log) = joblog.as_mut().filter(|_| header) {
        if let Err(e) = log
            .write_all(joblog::HEADER.as_bytes())
            .and_then(|()| log.flush())
        {
            printed.joblog_error = Some(e);
        }
    }
    // A closed stdout stops the run (the reader's choice); any other
    // failure is returned: the output being written is lost.
    let on_stdout = |result: io::Result<()>, stdout: &mut BufWriter<io::Stdout>| match result {
        Ok(()) => None,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            shared.stdout_closed.store(true, Ordering::Relaxed);
            shared.progress.notify_one();
            None
        }
        Err(e) => {
            // What is left in the buffer belongs to the lost output: not
            // to be written ahead of the next job's.
            let failed =
                std::mem::replace(stdout, BufWriter::with_capacity(64 * 1024, io::stdout()));
            let _ = failed.into_parts();
            Some(format!("cannot write to stdout: {e}"))
        }
    };
    let write_err = |f: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>| {
        let mut run = || {
            let mut err = io::stderr().lock();
            match f(&mut err) {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                    Some(format!("cannot write to stderr: {e}"))
                }
                _ => None,
            }
        };
        match &bar {
            Some(bar) => bar.suspend(run),
            None => run(),
        }
    };
    // Says that `job`'s output is lost, and why; kept for the exit code.
    let mut lose = |job: &str, why: String| {
        write_err(&mut |err| writeln!(err, "drover: the output of {job} is lost: {why}"));
        printed.lost.push(format!("{job}: {why}"));
    };
    // Following: the job printed next, and what is written of it so far.
    let mut next = 1u64;
    let mut live: Option<Live> = None;
    // The stdout spools of running jobs, by seq, as they started.
    let mut posted: HashMap<u64, Arc<Spool>> = HashMap::new();
    let mut idle = FOLLOW_IDLE.0;
    loop {
        let msg = match follow {
            false => match rx.recv() {
                Ok(msg) => msg,
                Err(_) => break,
            },
            true => {
                if live.is_none() && !shared.stdout_closed.load(Ordering::Relaxed) {
                    live = Live::start(&mut posted, next);
                }
                let busy = match live.as_mut() {
                    Some(l) => match l.pump(&mut stdout) {
                        Ok(busy) => busy,
                        Err(e) => {
                            l.lost = on_stdout(Err(e), &mut stdout);
                            // Kept for what it wrote out; the job goes on.
                            l.failed = true;
                            l.spool.unfollow();
                            false
                        }
                    },
                    None => false,
                };
                idle = match busy {
                    true => Duration::ZERO,
                    false => (idle * 2).clamp(FOLLOW_IDLE.0, FOLLOW_IDLE.1),
                };
                match rx.recv_timeout(idle) {
                    Ok(msg) => msg,
                    Err(std_mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
        };
        match msg {
            Msg::Job(done) => {
                let t = tag.then(|| tag_of(&done.args));
                let job = format!("job {}: {}", done.seq, done.command);
                // A job before this one that is never printed (killed by
                // `--halt now`): what of it was written out stays so.
                if live.as_ref().is_some_and(|l| l.seq < done.seq) {
                    live = None;
                }
                // Printed in part while it ran: the rest.
                let mut followed = live.take_if(|l| l.seq == done.seq);
                let skip = followed.as_ref().map_or(0, |l| l.sent);
                let mut why: Vec<String> = Vec::new();
                why.extend(followed.as_mut().and_then(|l| l.lost.take()));
                for (stream, data) in [
                    ("stdout", &done.result.stdout),
                    ("stderr", &done.result.stderr),
                ] {
                    if let Some(e) = data.lost() {
                        why.push(format!("its {stream} was not kept: {e}"));
                    }
                }
                spool::printing(true);
                if command_with_output && !shared.stdout_closed.load(Ordering::Relaxed) {
                    let line = Captured {
                        bytes: format!("{}\n", done.command).into_bytes(),
                        ..Default::default()
                    };
                    let fd = io::stdout();
                    let result = write_output(&mut stdout, fd.as_fd(), &line, t.as_deref(), 0);
                    why.extend(on_stdout(result, &mut stdout));
                }
                if !shared.stdout_closed.load(Ordering::Relaxed) {
                    let result = write_output(
                        &mut stdout,
                        io::stdout().as_fd(),
                        &done.result.stdout,
                        t.as_deref(),
                        skip,
                    );
                    why.extend(on_stdout(result, &mut stdout));
                }
                drop(followed);
                why.extend(write_err(&mut |err| {
                    write_output(
                        err,
                        io::stderr().as_fd(),
                        &done.result.stderr,
                        t.as_deref(),
                        0,
                    )
                }));
                // Its memory is freed as `done` is dropped, below.
                spool::printing(false);
                if !why.is_empty() {
                    // Following and the rest may fail alike.
                    why.dedup();
                    lose(&job, why.join("; "));
                }
                match done.result.status {
                    Status::SpawnFailed => {
                        let why = done
                            .result
                            .error
                            .as_deref()
                            .unwrap_or("cannot start the job");
                        write_err(&mut |err| writeln!(err, "drover: {why}"));
                    }
                    Status::TimedOut => {
                        write_err(&mut |err| {
                            writeln!(
                                err,
                                "drover: this job was stopped because it timed out:\ndrover: {}",
                                done.command
                            )
                        });
                    }
                    _ => {}
                }
                if let Some(log) = &mut joblog {
                    let line = joblog::line(&done);
                    if let Err(e) = log.write_all(line.as_bytes()).and_then(|()| log.flush()) {
                        printed.joblog_error.get_or_insert(e);
                    }
                }
                let held = (done.result.stdout.bytes.len() + done.result.stderr.bytes.len()) as u64;
                // Wake the dispatcher only if it may be waiting on the backlog.
                if shared.backlog.fetch_sub(held, Ordering::Relaxed) > BACKLOG_LIMIT {
                    shared.progress.notify_one();
                }
            }
            Msg::Lines {
                job,
                tag,
                stderr,
                bytes,
            } => {
                let data = Captured {
                    bytes,
                    ..Default::default()
                };
                let why = if stderr {
                    write_err(&mut |err| {
                        write_output(err, io::stderr().as_fd(), &data, tag.as_deref(), 0)
                    })
                } else if !shared.stdout_closed.load(Ordering::Relaxed) {
                    let result =
                        write_output(&mut stdout, io::stdout().as_fd(), &data, tag.as_deref(), 0);
                    on_stdout(result, &mut stdout)
                } else {
                    None
                };
                if let Some(why) = why {
                    lose(&job, why);
                }
            }
            Msg::Notice(text) => {
                write_err(&mut |err| writeln!(err, "drover: {text}"));
            }
            Msg::Follow(seq, spool) => {
                posted.insert(seq, spool);
            }
            Msg::Next(seq) => {
                next = seq;
                posted.retain(|&s, _| s >= next);
                // A job printed without a word (it wrote nothing).
                if live.as_ref().is_some_and(|l| l.seq < next) {
                    live = None;
                }
            }
        }
    }
    drop(live);
    printed
}

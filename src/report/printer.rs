//! The printer of `drover exec`: one thread owns drover's stdout and stderr
//! (and the joblog), so that blocking writes to a slow pipe never stall the
//! dispatcher, and a job's output is written whole, never interleaved with
//! another's. A closed stdout (`| head -1`) is noticed and reported back.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;

use indicatif::ProgressBar;
use tokio::sync::Notify;

use super::joblog;
use crate::outcome::{Captured, Status};
use crate::sched::fanout::{Done, Sink};

/// Printing may lag behind finished jobs by this much output in memory
/// before new jobs wait.
const BACKLOG_LIMIT: u64 = 16 * 1024 * 1024;

enum Msg {
    Job(Box<Done>),
    Lines {
        tag: Option<String>,
        stderr: bool,
        bytes: Vec<u8>,
    },
    Notice(String),
}

pub struct Printer {
    tx: Option<std_mpsc::Sender<Msg>>,
    thread: Option<JoinHandle<io::Result<()>>>,
    shared: Arc<Shared>,
    tag: bool,
    joblog: bool,
    bar: Option<ProgressBar>,
}

struct Shared {
    stdout_closed: AtomicBool,
    /// Bytes held in memory by jobs handed over and not yet printed.
    backlog: AtomicU64,
    progress: Arc<Notify>,
}

/// Options of the printer.
pub struct PrinterOptions {
    pub tag: bool,
    /// The joblog, and whether to write its header.
    pub joblog: Option<(File, bool)>,
    pub bar: Option<ProgressBar>,
}

impl Printer {
    pub fn new(opts: PrinterOptions) -> Self {
        let (tx, rx) = std_mpsc::channel::<Msg>();
        let shared = Arc::new(Shared {
            stdout_closed: AtomicBool::new(false),
            backlog: AtomicU64::new(0),
            progress: Arc::new(Notify::new()),
        });
        let has_joblog = opts.joblog.is_some();
        let thread = {
            let shared = shared.clone();
            let tag = opts.tag;
            let joblog = opts.joblog;
            let bar = opts.bar.clone();
            std::thread::Builder::new()
                .name("drover-printer".into())
                .spawn(move || print_loop(rx, &shared, tag, joblog, bar))
                .ok()
        };
        Self {
            tx: Some(tx),
            thread,
            shared,
            tag: opts.tag,
            joblog: has_joblog,
            bar: opts.bar,
        }
    }

    /// Waits until everything handed over is written; returns the first
    /// error of the joblog, if any.
    pub fn close(mut self) -> io::Result<()> {
        drop(self.tx.take());
        let result = match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the printer thread panicked"))),
            None => Ok(()),
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
            && !self.joblog
            && !matches!(done.result.status, Status::SpawnFailed | Status::TimedOut);
        if silent {
            return;
        }
        let held = (done.result.stdout.bytes.len() + done.result.stderr.bytes.len()) as u64;
        self.shared.backlog.fetch_add(held, Ordering::Relaxed);
        self.send(Msg::Job(Box::new(done)));
    }

    fn lines(&mut self, _seq: u64, args: &[String], stderr: bool, bytes: Vec<u8>) {
        let tag = self.tag.then(|| tag_of(args));
        self.send(Msg::Lines { tag, stderr, bytes });
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

/// Writes one stream of a job to `out` (whose descriptor is `fd`). An output
/// the job wrote into a file goes with sendfile(2), unless it is tagged.
fn write_output(
    out: &mut dyn Write,
    fd: BorrowedFd<'_>,
    data: &Captured,
    tag: Option<&str>,
) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    match tag {
        Some(tag) => {
            let mut t = Tagged {
                inner: &mut *out,
                tag: tag.as_bytes(),
                at_line_start: true,
            };
            data.write_to(&mut t)?;
        }
        None if data.file.is_some() => {
            out.flush()?;
            data.send_to(fd)?;
        }
        None => data.write_to(out)?,
    }
    out.flush()
}

fn print_loop(
    rx: std_mpsc::Receiver<Msg>,
    shared: &Shared,
    tag: bool,
    joblog: Option<(File, bool)>,
    bar: Option<ProgressBar>,
) -> io::Result<()> {
    let mut stdout = BufWriter::with_capacity(64 * 1024, io::stdout());
    let header = joblog.as_ref().is_some_and(|(_, h)| *h);
    let mut joblog = joblog.map(|(f, _)| BufWriter::new(f));
    let mut joblog_error: Option<io::Error> = None;
    if let Some(log) = joblog.as_mut().filter(|_| header) {
        if let Err(e) = log
            .write_all(joblog::HEADER.as_bytes())
            .and_then(|()| log.flush())
        {
            joblog_error = Some(e);
        }
    }
    let on_stdout = |result: io::Result<()>| {
        if let Err(e) = result {
            if e.kind() == io::ErrorKind::BrokenPipe {
                shared.stdout_closed.store(true, Ordering::Relaxed);
                shared.progress.notify_one();
            } else {
                tracing::warn!("cannot write to stdout: {e}");
            }
        }
    };
    let write_err = |f: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>| {
        let mut run = || {
            let mut err = io::stderr().lock();
            let _ = f(&mut err);
        };
        match &bar {
            Some(bar) => bar.suspend(run),
            None => run(),
        }
    };
    for msg in rx {
        match msg {
            Msg::Job(done) => {
                let t = tag.then(|| tag_of(&done.args));
                if !shared.stdout_closed.load(Ordering::Relaxed) {
                    on_stdout(write_output(
                        &mut stdout,
                        io::stdout().as_fd(),
                        &done.result.stdout,
                        t.as_deref(),
                    ));
                }
                write_err(&mut |err| {
                    write_output(err, io::stderr().as_fd(), &done.result.stderr, t.as_deref())
                });
                match done.result.status {
                    Status::SpawnFailed => {
                        let why = done
                            .result
                            .error
                            .as_deref()
                            .unwrap_or("cannot start the job");
                        write_err(&mut |err| writeln!(err, "drover: {why}"));
                    }
                    Status::TimedOut => write_err(&mut |err| {
                        writeln!(
                            err,
                            "drover: this job was stopped because it timed out:\ndrover: {}",
                            done.command
                        )
                    }),
                    _ => {}
                }
                if let Some(log) = &mut joblog {
                    let line = joblog::line(&done);
                    if let Err(e) = log.write_all(line.as_bytes()).and_then(|()| log.flush()) {
                        joblog_error.get_or_insert(e);
                    }
                }
                let held = (done.result.stdout.bytes.len() + done.result.stderr.bytes.len()) as u64;
                // Wake the dispatcher only if it may be waiting on the backlog.
                if shared.backlog.fetch_sub(held, Ordering::Relaxed) > BACKLOG_LIMIT {
                    shared.progress.notify_one();
                }
            }
            Msg::Lines { tag, stderr, bytes } => {
                let data = Captured {
                    bytes,
                    ..Default::default()
                };
                if stderr {
                    write_err(&mut |err| {
                        write_output(err, io::stderr().as_fd(), &data, tag.as_deref())
                    });
                } else if !shared.stdout_closed.load(Ordering::Relaxed) {
                    on_stdout(write_output(
                        &mut stdout,
                        io::stdout().as_fd(),
                        &data,
                        tag.as_deref(),
                    ));
                }
            }
            Msg::Notice(text) => write_err(&mut |err| writeln!(err, "drover: {text}")),
        }
    }
    match joblog_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

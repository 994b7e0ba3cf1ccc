//! Pipe I/O for one job: draining stdout/stderr into bounded tail buffers and
//! writing stdin, so that no pipe ever fills up and blocks the child.

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::spawn::PipeEnd;
use crate::model::Captured;

/// Keeps the last `limit` bytes of a stream. Memory stays below about twice
/// `limit` however much the stream carries: the front is dropped in bulk,
/// so each byte is moved at most once.
#[derive(Default)]
struct TailBuffer {
    buf: Vec<u8>,
    limit: usize,
    truncated: bool,
}

const MAX_READ: usize = 256 * 1024;

impl TailBuffer {
    fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            limit,
            truncated: false,
        }
    }

    /// Makes room for the next read. An empty buffer stays unallocated until
    /// data arrives (tokio reserves a little), so idle jobs cost nothing.
    fn prepare(&mut self) {
        if self.buf.len() < self.buf.capacity() || self.buf.capacity() == 0 {
            return;
        }
        let keep = self.limit;
        if self.buf.len() >= keep + keep.max(MAX_READ) {
            let cut = self.buf.len() - keep;
            self.buf.drain(..cut);
            self.truncated = true;
        }
        let grow = self.buf.len().clamp(4096, MAX_READ);
        self.buf.reserve_exact(grow);
    }

    /// Appends bytes read outside tokio.
    fn push(&mut self, bytes: &[u8]) {
        self.prepare();
        self.buf.extend_from_slice(bytes);
    }

    fn finish(mut self) -> Captured {
        if self.buf.len() > self.limit {
            let cut = self.buf.len() - self.limit;
            self.buf.drain(..cut);
            self.truncated = true;
        }
        self.buf.shrink_to_fit();
        Captured {
            bytes: self.buf,
            truncated: self.truncated,
            ..Captured::default()
        }
    }
}

/// What to keep of a drained stream.
#[derive(Clone)]
pub enum Keep {
    /// The last `limit` bytes (`capture_limit` of `drover run`).
    Tail(usize),
    /// Complete lines as they arrive, to a printer (`--line-buffer`).
    Lines(LineSink),
    /// Everything, appended to a file as it arrives, up to a limit; past it
    /// read and counted only (`drover serve`).
    File(FileSink),
}

/// Where `Keep::File` writes: the file (made, or appended to, at the
/// job's first byte: a job that says nothing costs no file), how much of it
/// the job may fill, how many bytes the job wrote in all (kept or not), and
/// why some could not be kept, for whoever made the sink to read when the
/// job has ended.
#[derive(Clone)]
pub struct FileSink {
    pub path: std::path::PathBuf,
    pub limit: u64,
    pub written: Arc<std::sync::atomic::AtomicU64>,
    pub error: Arc<std::sync::Mutex<Option<String>>>,
}

impl FileSink {
    pub fn new(path: std::path::PathBuf, limit: u64) -> FileSink {
        FileSink {
            path,
            limit,
            written: Arc::default(),
            error: Arc::default(),
        }
    }

    /// Why some of the output could not be kept, if so.
    pub fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn failed(&self, why: String) {
        tracing::warn!("{why}");
        let mut error = self.error.lock().unwrap_or_else(|p| p.into_inner());
        error.get_or_insert(why);
    }
}

/// Where `Keep::Lines` sends complete lines: (job, is stderr, bytes). The
/// channel is bounded: a slow consumer slows the job, never drover's memory.
#[derive(Clone)]
pub struct LineSink {
    pub job: usize,
    pub stderr: bool,
    pub tx: mpsc::Sender<(usize, bool, Vec<u8>)>,
}

/// A job's stdout and stderr as drover reads them: polled by the task that
/// supervises the job, so a job with nothing to say costs no more than its
/// two pipe registrations (no task, no future per pipe).
pub struct Output {
    streams: [Stream; 2],
    /// Tells `Keep::Lines` readers to stop (made only for them).
    stop: Option<CancellationToken>,
}

enum Stream {
    /// Read to its end (or never a pipe).
    Done(Captured),
    /// Read into a tail buffer, here.
    Tail(pipe::Receiver, TailBuffer),
    /// Lines to a printer: a reader of its own, which may wait on the printer,
    /// and the pipe it reads (owned by the reader, valid while it lives).
    Lines(RawFd, Pin<Box<dyn Future<Output = Captured> + Send>>),
}

impl Output {
    /// Reads `stdout` and `stderr` (where they are pipes), keeping what
    /// `keep` says. Must be called within a runtime.
    pub fn new(pipes: [Option<PipeEnd>; 2], keep: [Keep; 2]) -> Output {
        let mut stop = None;
        let [out, err] = pipes;
        let [keep_out, keep_err] = keep;
        let mut open = |fd: Option<PipeEnd>, keep: Keep| -> Stream {
            let Some(fd) = fd else {
                return Stream::Done(Captured::default());
            };
            match keep {
                Keep::Tail(limit) => match fd.into_receiver() {
                    Ok(rx) => Stream::Tail(rx, TailBuffer::new(limit)),
                    Err(e) => {
                        tracing::warn!("cannot read a job's output pipe: {e}");
                        Stream::Done(Captured::default())
                    }
                },
                Keep::Lines(sink) => {
                    let token = stop.get_or_insert_with(CancellationToken::new).clone();
                    let raw = fd.as_fd().as_raw_fd();
                    Stream::Lines(raw, Box::pin(drain_lines(fd, sink, token)))
                }
                Keep::File(sink) => {
                    let token = stop.get_or_insert_with(CancellationToken::new).clone();
                    let raw = fd.as_fd().as_raw_fd();
                    Stream::Lines(raw, Box::pin(drain_to_file(fd, sink, token)))
                }
            }
        };
        let streams = [open(out, keep_out), open(err, keep_err)];
        Output { streams, stop }
    }

    /// Whether both streams have been read to their end.
    pub fn is_done(&self) -> bool {
        self.streams.iter().all(|s| matches!(s, Stream::Done(_)))
    }

    /// Reads what has arrived; ready once both streams are at their end.
    pub fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut done = true;
        for stream in &mut self.streams {
            done &= stream.poll_drain(cx).is_ready();
        }
        if done { Poll::Ready(()) } else { Poll::Pending }
    }

    /// Reads what the pipes hold now, without waiting to be told they are
    /// ready. Once a job's leader has exited and drover's copies of the
    /// write ends are closed, the pipes' end is usually there already:
    /// reading it at once saves a wake-up per job (200 × `sleep 1`: 400 →
    /// 209 epoll_wait calls, 13 µs of CPU a job).
    pub fn read_now(&mut self) {
        for stream in &mut self.streams {
            let Stream::Tail(rx, tail) = stream else {
                continue;
            };
            let mut chunk = [0u8; 16 * 1024];
            let ended = loop {
                match rustix::io::read(rx.as_fd(), &mut chunk) {
                    Ok(0) => break true,
                    Ok(n) => tail.push(&chunk[..n]),
                    Err(rustix::io::Errno::INTR) => {}
                    // Not yet: a descendant may still write.
                    Err(rustix::io::Errno::AGAIN) => break false,
                    Err(e) => {
                        tracing::warn!("reading a job's output failed: {e}");
                        break true;
                    }
                }
            };
            if ended {
                *stream = Stream::Done(std::mem::take(tail).finish());
            }
        }
    }

    /// Reads until both streams end.
    pub async fn drained(&mut self) {
        std::future::poll_fn(|cx| self.poll_drain(cx)).await
    }

    /// Whether no process holds a write end of the pipes not yet read to
    /// their end: what is left in them is then all there will be, however
    /// long a reader that is behind (waiting on its consumer) takes to read
    /// it. A pipe reports POLLHUP once its last writer is gone, even while
    /// it still holds data.
    pub fn writers_gone(&self) -> bool {
        self.streams.iter().all(|stream| {
            let fd = match stream {
                Stream::Done(_) => return true,
                Stream::Tail(rx, _) => rx.as_fd(),
                // SAFETY: the reader owns the pipe and is alive: it is
                // still in `stream`.
                Stream::Lines(raw, _) => unsafe { BorrowedFd::borrow_raw(*raw) },
            };
            pipe_writers_gone(fd)
        })
    }

    /// Stops reading (a descendant outside the job's group holds a pipe
    /// open): what was read so far and what the pipes hold now. Bytes
    /// written before drover gave up are never dropped.
    pub async fn stop(mut self) -> [Captured; 2] {
        if let Some(stop) = &self.stop {
            stop.cancel();
        }
        for stream in &mut self.streams {
            match stream {
                // A lines reader ends soon once stopped: it hands on what
                // the pipe holds and its last, partial line first.
                Stream::Lines(_, reader) => *stream = Stream::Done(reader.await),
                Stream::Tail(rx, tail) => {
                    // Only what is there now: a writer may go on forever.
                    let mut left = rustix::io::ioctl_fionread(rx.as_fd()).unwrap_or(0);
                    let mut chunk = [0u8; 16 * 1024];
                    while left > 0 {
                        let want = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                        match rustix::io::read(rx.as_fd(), &mut chunk[..want]) {
                            Ok(0) => break,
                            Ok(n) => {
                                tail.push(&chunk[..n]);
                                left -= n as u64;
                            }
                            Err(rustix::io::Errno::INTR) => {}
                            Err(_) => break,
                        }
                    }
                }
                Stream::Done(_) => {}
            }
        }
        self.streams.map(Stream::finish)
    }

    /// What was read: everything, if both streams ended, else what was read
    /// and what the pipes hold now (see `stop`).
    pub async fn finish_or_stop(self) -> [Captured; 2] {
        match self.is_done() {
            true => self.finish(),
            false => self.stop().await,
        }
    }

    /// Everything read; call once `is_done`.
    pub fn finish(self) -> [Captured; 2] {
        self.streams.map(Stream::finish)
    }
}

impl Stream {
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let captured = match self {
            Stream::Done(_) => return Poll::Ready(()),
            Stream::Lines(_, reader) => ready!(reader.as_mut().poll(cx)),
            Stream::Tail(rx, tail) => {
                loop {
                    // Readiness first: it keeps to tokio's cooperative budget,
                    // so a flood of output cannot starve the other tasks.
                    if let Err(e) = ready!(rx.poll_read_ready(cx)) {
                        tracing::warn!("reading a job's output failed: {e}");
                        break;
                    }
                    tail.prepare();
                    match rx.try_read_buf(&mut tail.buf) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            tracing::warn!("reading a job's output failed: {e}");
                            break;
                        }
                    }
                }
                std::mem::take(tail).finish()
            }
        };
        *self = Stream::Done(captured);
        Poll::Ready(())
    }

    fn finish(self) -> Captured {
        match self {
            Stream::Done(c) => c,
            Stream::Tail(_, tail) => tail.finish(),
            // Dropped unfinished only if `stop` was not awaited.
            Stream::Lines(..) => Captured::default(),
        }
    }
}

/// Whether no process holds the write end of the pipe `read_end` any more
/// (POLLHUP, which a pipe reports even while it still holds data).
pub fn pipe_writers_gone(read_end: BorrowedFd<'_>) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let mut fds = [PollFd::new(&read_end, PollFlags::IN)];
    match poll(&mut fds, Some(&Timespec::default())) {
        Ok(_) => fds[0].revents().contains(PollFlags::HUP),
        Err(_) => false,
    }
}

/// Reads a pipe to its end, or until `stop` (after a leak timeout), sending
/// complete lines to `sink` as they arrive.
async fn drain_lines(fd: PipeEnd, sink: LineSink, stop: CancellationToken) -> Captured {
    let mut rx = match fd.into_receiver() {
        Ok(rx) => rx,
        Err(e) => {
            tracing::warn!("cannot read a job's output pipe: {e}");
            return Captured::default();
        }
    };
    // Made once: a fresh cancellation future per read costs a wait-list
    // registration each time.
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    let mut buf: Vec<u8> = Vec::new();
    // Once stopped, how much more to read: what the pipe held then.
    let mut last: Option<u64> = None;
    loop {
        if buf.len() == buf.capacity() && buf.capacity() > 0 {
            buf.reserve(buf.len().clamp(4096, MAX_READ));
        }
        let read = match last {
            Some(0) => break,
            Some(left) => {
                let before = buf.len();
                let want = usize::try_from(left).unwrap_or(usize::MAX).min(MAX_READ);
                buf.resize(before + want, 0);
                let read =
                    rustix::io::read(rx.as_fd(), &mut buf[before..]).map_err(io::Error::from);
                buf.truncate(before + *read.as_ref().unwrap_or(&0));
                match read {
                    Ok(n) => last = Some(left.saturating_sub(n as u64)),
                    // Another reader took it (a descendant holds the read end).
                    Err(ref e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {}
                }
                read
            }
            None => tokio::select! {
                biased;
                _ = &mut stopped => {
                    last = Some(rustix::io::ioctl_fionread(rx.as_fd()).unwrap_or(0));
                    continue;
                }
                read = rx.read_buf(&mut buf) => read,
            },
        };
        if !keep_reading(read) {
            break;
        }
        // Send what ends in a newline; keep the partial last line.
        if let Some(last_nl) = memchr_last(&buf) {
            let rest = buf.split_off(last_nl + 1);
            let lines = std::mem::replace(&mut buf, rest);
            if sink.tx.send((sink.job, sink.stderr, lines)).await.is_err() {
                break;
            }
        }
    }
    if !buf.is_empty() {
        let _ = sink.tx.send((sink.job, sink.stderr, buf)).await;
    }
    Captured::default()
}

/// Reads a job's output pipe to its end into `sink`'s file (appending, up
/// to its limit; the rest is counted only). Once `stop` is cancelled, reads
/// only what the pipe holds then.
async fn drain_to_file(fd: PipeEnd, sink: FileSink, stop: CancellationToken) -> Captured {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    let mut rx = match fd.into_receiver() {
        Ok(rx) => rx,
        Err(e) => {
            tracing::warn!("cannot read a job's output pipe: {e}");
            return Captured::default();
        }
    };
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    // Small until a read fills it: most jobs write little or nothing, and a
    // 64 KiB buffer a stream is a memset and a trip through malloc's slow
    // path for each.
    let mut buf = vec![0u8; 4 * 1024];
    let mut last: Option<u64> = None;
    let mut file: Option<std::fs::File> = None;
    let mut failed = false;
    loop {
        let read = match last {
            Some(0) => break,
            Some(left) => {
                let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                match rustix::io::read(rx.as_fd(), &mut buf[..want]) {
                    Ok(n) => {
                        last = Some(left.saturating_sub(n as u64));
                        Ok(n)
                    }
                    Err(rustix::io::Errno::AGAIN) => break,
                    Err(e) => Err(io::Error::from(e)),
                }
            }
            None => tokio::select! {
                biased;
                _ = &mut stopped => {
                    last = Some(rustix::io::ioctl_fionread(rx.as_fd()).unwrap_or(0));
                    continue;
                }
                read = rx.read(&mut buf) => read,
            },
        };
        let n = match read {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!("reading a job's output failed: {e}");
                break;
            }
        };
        let before = sink.written.fetch_add(n as u64, Ordering::Relaxed);
        let keep = sink.limit.saturating_sub(before).min(n as u64) as usize;
        let full = n == buf.len();
        // A page-cache write: the job is not held up by a reader of the file.
        if keep > 0 && !failed {
            if file.is_none() {
                match std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&sink.path)
                {
                    Ok(f) => file = Some(f),
                    Err(e) => {
                        sink.failed(format!("cannot open {}: {e}", sink.path.display()));
                        failed = true;
                    }
                }
            }
            if let Some(f) = file.as_mut() {
                if let Err(e) = f.write_all(&buf[..keep]) {
                    sink.failed(format!("cannot write {}: {e}", sink.path.display()));
                    failed = true;
                }
            }
        }
        if full && buf.len() < 64 * 1024 {
            buf.resize(64 * 1024, 0);
        }
    }
    Captured::default()
}

fn memchr_last(buf: &[u8]) -> Option<usize> {
    buf.iter().rposition(|&b| b == b'\n')
}

/// Whether a read result means "go on".
fn keep_reading(read: io::Result<usize>) -> bool {
    match read {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
        Err(e) => {
            tracing::warn!("reading a job's output failed: {e}");
            false
        }
    }
}

/// Writes `data` to a child's stdin and closes it. A child that exits without
/// reading it all (EPIPE) has made its choice; that is not an error.
pub async fn feed(fd: PipeEnd, data: Arc<[u8]>) {
    let mut tx = match fd.into_sender() {
        Ok(tx) => tx,
        Err(e) => {
            tracing::warn!("cannot write a job's stdin pipe: {e}");
            return;
        }
    };
    match tx.write_all(&data).await {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            tracing::debug!("a job closed its stdin before reading all of it");
        }
        Err(e) => tracing::warn!("writing a job's stdin failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_buffer_keeps_the_last_bytes() {
        let mut t = TailBuffer::new(10);
        for chunk in 0..100u8 {
            t.prepare();
            t.buf.extend(std::iter::repeat_n(chunk, 5000));
        }
        let c = t.finish();
        assert_eq!(c.bytes, vec![99u8; 10]);
        assert!(c.truncated);
    }

    #[test]
    fn tail_buffer_under_limit_is_whole() {
        let mut t = TailBuffer::new(100);
        t.prepare();
        t.buf.extend_from_slice(b"hello");
        let c = t.finish();
        assert_eq!(c.bytes, b"hello");
        assert!(!c.truncated);
    }
}

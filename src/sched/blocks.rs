//! `drover exec --pipe`: stdin cut into blocks at line boundaries, as GNU
//! parallel cuts them, each block fed to one job's stdin.
//!
//! Where it can, a block never passes through drover: it moves by splice(2)
//! from drover's stdin into a pipe made for the job, sized to hold the whole
//! block, so the reader never waits for a slow job and jobs run in parallel.
//! Only the last [`WINDOW`] bytes of a block are read, to find its last
//! newline; what follows that newline starts the next block. A block bigger
//! than a pipe can be made (F_SETPIPE_SZ above /proc/sys/fs/pipe-max-size,
//! 1 MiB, without privilege) goes into a memory file instead, handed to
//! its job once whole. Blocks are read into memory (GNU parallel's way)
//! where splice is refused (stdin a terminal), for small blocks, and with
//! --retries (a retry needs the block again).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::io::Errno;
use rustix::pipe::{SpliceFlags, fcntl_setpipe_size, splice};
use tokio::sync::mpsc;

use super::fanout::Work;
use crate::plan::TakeFd;

/// The bytes at the end of a block that drover reads to find its last
/// newline. A block whose last line is longer than this runs on to the end
/// of that line (GNU parallel would end it before).
const WINDOW: usize = 64 * 1024;

/// Blocks smaller than this are read into memory: the window would be most
/// of them.
const MIN_SPLICED_BLOCK: usize = 4 * WINDOW;

/// What a `--pipe` job reads.
#[derive(Debug, Clone)]
pub enum Block {
    /// The block, read into memory; drover writes it to the job's stdin.
    Bytes(Arc<[u8]>),
    /// The read end of a pipe the reader fills while the job runs, or a
    /// memory file with the whole block, and how many bytes it holds so far.
    Handed(TakeFd, Arc<AtomicU64>),
}

impl Block {
    /// Bytes sent to the job (for the joblog's Send column).
    pub fn sent(&self) -> u64 {
        match self {
            Block::Bytes(b) => b.len() as u64,
            Block::Handed(_, sent) => sent.load(Ordering::Relaxed),
        }
    }
}

/// Reads stdin to its end, sending a `Work` per block of at most `size`
/// bytes (a single line longer than `size` makes a longer block). `splice`:
/// whether blocks may be moved by splice (false with --retries).
pub fn read_blocks(size: usize, splice: bool, tx: mpsc::Sender<Work>) {
    let Some(mut reader) = Reader::open(size, splice) else {
        return;
    };
    loop {
        let sent = if reader.splice {
            reader.spliced_block(size, &tx)
        } else {
            reader.read_block(size, &tx)
        };
        match sent {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!("reading stdin failed: {e}");
                return;
            }
        }
    }
}

/// `--round-robin`: stdin cut into blocks as [`read_blocks`] cuts them, fed
/// to at most `jobs` jobs, each fed block after block. A job starts for
/// each of the first blocks; then each block goes whole to the job whose
/// pipe holds the least (in turn among equals): a slow job gets fewer. The
/// jobs read their stdin to its end: the end of drover's. A job that stops
/// reading gets no more blocks; when none reads, drover stops reading too.
pub fn round_robin(size: usize, jobs: usize, tx: mpsc::Sender<Work>) {
    let Some(mut reader) = Reader::open(size, true) else {
        return;
    };
    let mut outs: Vec<Out> = Vec::new();
    let mut turn = 0;
    let result = (|| -> io::Result<()> {
        loop {
            let target = if outs.len() < jobs {
                // A job only for a block that exists.
                if !reader.has_more()? {
                    return Ok(());
                }
                match start_job(size, &tx)? {
                    Some(out) => outs.push(out),
                    None => return Ok(()),
                }
                outs.len() - 1
            } else {
                match next_with_room(&mut outs, &mut turn)? {
                    Some(i) => i,
                    None => return Ok(()),
                }
            };
            if reader.block_into(size, &mut outs[target])? == 0 {
                return Ok(());
            }
        }
    })();
    if let Err(e) = result {
        tracing::warn!("reading stdin failed: {e}");
    }
    // Dropping `outs` closes the jobs' pipes: they read to the end.
}

/// A pipe to a new job's stdin, the job queued to run; `None` once the
/// jobs are gone.
fn start_job(size: usize, tx: &mpsc::Sender<Work>) -> io::Result<Option<Out>> {
    let (read_end, write_end) = io::pipe()?;
    // Room for a block, up to what a pipe may get without privilege: fewer
    // turns between drover and the job.
    let _ = fcntl_setpipe_size(&write_end, size.min(1 << 20));
    let sent = Arc::new(AtomicU64::new(0));
    let work = Work {
        args: Vec::new(),
        block: Some(Block::Handed(TakeFd::new(read_end.into()), sent.clone())),
    };
    if tx.blocking_send(work).is_err() {
        return Ok(None);
    }
    Ok(Some(Out {
        fd: Some(File::from(OwnedFd::from(write_end))),
        sent,
    }))
}

/// Waits until a job's pipe has room, and gives the job whose pipe holds
/// the least (it has read the most: a slow job is not handed block after
/// block to sit on), the next from `turn` on among equals; `None` when no
/// job reads any more.
fn next_with_room(outs: &mut [Out], turn: &mut usize) -> io::Result<Option<usize>> {
    use rustix::event::{PollFd, PollFlags, poll};
    loop {
        let live: Vec<usize> = (0..outs.len()).filter(|&i| outs[i].fd.is_some()).collect();
        if live.is_empty() {
            return Ok(None);
        }
        let mut fds: Vec<PollFd> = live
            .iter()
            .map(|&i| PollFd::new(outs[i].fd.as_ref().expect("live"), PollFlags::OUT))
            .collect();
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready: Vec<(usize, PollFlags)> = live
            .iter()
            .zip(&fds)
            .map(|(&i, fd)| (i, fd.revents()))
            .collect();
        drop(fds);
        let mut with_room = Vec::new();
        for (i, revents) in ready {
            if revents.intersects(PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL) {
                // The job closed its stdin.
                outs[i].fd = None;
            } else if revents.contains(PollFlags::OUT) {
                with_room.push(i);
            }
        }
        let queued = |i: usize| {
            outs[i]
                .fd
                .as_ref()
                .map_or(0, |fd| rustix::io::ioctl_fionread(fd).unwrap_or(0))
        };
        let n = outs.len();
        let next = with_room
            .iter()
            .copied()
            .min_by_key(|&i| (queued(i), (i + n - *turn % n) % n));
        if let Some(i) = next {
            *turn = i + 1;
            return Ok(Some(i));
        }
    }
}

/// What drover's stdin is, as splice(2) sees it: it can read pipes,
/// sockets and regular files, not terminals and most devices.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StdinKind {
    Pipe,
    File,
    Socket,
    Other,
}

impl StdinKind {
    fn of(file: &File) -> Self {
        use std::os::unix::fs::FileTypeExt;
        match file.metadata().map(|m| m.file_type()) {
            Ok(t) if t.is_fifo() => StdinKind::Pipe,
            Ok(t) if t.is_file() => StdinKind::File,
            Ok(t) if t.is_socket() => StdinKind::Socket,
            _ => StdinKind::Other,
        }
    }
}

struct Reader {
    stdin: File,
    kind: StdinKind,
    /// Read past the end of the last block: the start of the next.
    carry: Vec<u8>,
    eof: bool,
    splice: bool,
}

impl Reader {
    /// Reads drover's stdin in blocks of `size`, by splice where `splice`
    /// allows and stdin and the size suit it.
    fn open(size: usize, splice: bool) -> Option<Reader> {
        let stdin = match io::stdin().as_fd().try_clone_to_owned() {
            Ok(fd) => File::from(fd),
            Err(e) => {
                tracing::warn!("cannot read stdin: {e}");
                return None;
            }
        };
        let kind = StdinKind::of(&stdin);
        let splice = splice && size >= MIN_SPLICED_BLOCK && kind != StdinKind::Other;
        Some(Reader {
            stdin,
            kind,
            carry: Vec::new(),
            eof: false,
            splice,
        })
    }

    /// Whether stdin has more: waits for its next bytes (one read, into
    /// the carry) or its end.
    fn has_more(&mut self) -> io::Result<bool> {
        if self.carry.is_empty() && !self.eof {
            let mut buf = vec![0; WINDOW];
            let n = loop {
                match self.stdin.read(&mut buf) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => break r?,
                }
            };
            self.eof = n == 0;
            buf.truncate(n);
            self.carry = buf;
        }
        Ok(!self.carry.is_empty())
    }

    /// Appends up to `want` bytes of stdin to `buf`; fewer only at the end
    /// of stdin.
    fn fill(&mut self, buf: &mut Vec<u8>, want: usize) -> io::Result<()> {
        if self.eof || want == 0 {
            return Ok(());
        }
        let got = (&mut self.stdin).take(want as u64).read_to_end(buf)?;
        if got < want {
            self.eof = true;
        }
        Ok(())
    }

    /// The next block read into memory; false at the end of stdin (or when
    /// the jobs are gone).
    fn read_block(&mut self, size: usize, tx: &mpsc::Sender<Work>) -> io::Result<bool> {
        let buf = self.next_block(size)?;
        if buf.is_empty() {
            return Ok(!self.carry.is_empty());
        }
        let work = Work {
            args: Vec::new(),
            block: Some(Block::Bytes(Arc::from(buf))),
        };
        Ok(tx.blocking_send(work).is_ok())
    }

    /// The next block of at most `size` bytes (more for one long line),
    /// read into memory and cut after a newline; what follows the cut is
    /// kept for the next. Empty at the end of stdin.
    fn next_block(&mut self, size: usize) -> io::Result<Vec<u8>> {
        let mut buf = std::mem::take(&mut self.carry);
        let want = size.saturating_sub(buf.len());
        self.fill(&mut buf, want)?;
        // Cut after the last newline within the block; a block with no
        // newline (one long line) runs on to the first newline after it.
        let within = size.min(buf.len());
        let cut = match buf[..within].iter().rposition(|&b| b == b'\n') {
            Some(i) if !self.eof || within < buf.len() => i + 1,
            _ if self.eof => buf.len(),
            _ => {
                let mut from = within;
                loop {
                    if let Some(i) = memchr(&buf[from..]) {
                        break from + i + 1;
                    }
                    if self.eof {
                        break buf.len();
                    }
                    from = buf.len();
                    self.fill(&mut buf, WINDOW)?;
                }
            }
        };
        self.carry = buf.split_off(cut);
        Ok(buf)
    }

    /// The next block moved by splice into a pipe of its own. Falls back to
    /// `read_block` for this block if the pipe cannot hold a whole block,
    /// and for good if stdin refuses splice.
    fn spliced_block(&mut self, size: usize, tx: &mpsc::Sender<Work>) -> io::Result<bool> {
        if self.eof && self.carry.is_empty() {
            return Ok(false);
        }
        let (read_end, write_end) = io::pipe()?;
        let big_enough = fcntl_setpipe_size(&write_end, size).is_ok_and(|got| got >= size);
        if !big_enough {
            tracing::debug!("a pipe cannot hold a {size}-byte block here; a memory file will");
            return self.memory_block(size, tx);
        }
        let mut out = Out {
            fd: Some(File::from(OwnedFd::from(write_end))),
            sent: Arc::new(AtomicU64::new(0)),
        };
        let carry = std::mem::take(&mut self.carry);
        out.write(&carry);
        let mut moved = carry.len();
        // The first bytes decide whether there is a block at all.
        let body = size.saturating_sub(WINDOW);
        if moved == 0 {
            match self.splice_in(&mut out, body.min(WINDOW)) {
                Ok(0) => return Ok(false),
                Ok(n) => moved += n,
                // Nothing is lost yet: read this block and the rest instead.
                Err(e) if e == Errno::INVAL || e == Errno::NOSYS => {
                    tracing::debug!("stdin refuses splice ({e}); reading blocks instead");
                    self.splice = false;
                    return self.read_block(size, tx);
                }
                Err(e) => return Err(e.into()),
            }
        }
        let work = Work {
            args: Vec::new(),
            block: Some(Block::Handed(
                TakeFd::new(read_end.into()),
                out.sent.clone(),
            )),
        };
        if tx.blocking_send(work).is_err() {
            return Ok(false);
        }
        self.finish_block(size, moved, &mut out)?;
        Ok(true)
    }

    /// Moves the rest of a block of `size` into `out`, `moved` bytes of it
    /// already there: by splice up to the window, then the window up to
    /// its last newline. Returns the bytes moved in all.
    fn finish_block(&mut self, size: usize, mut moved: usize, out: &mut Out) -> io::Result<usize> {
        let body = size.saturating_sub(WINDOW);
        while moved < body && !self.eof {
            moved += self.splice_in(out, body - moved)?;
        }
        let put = self.end_block(size.saturating_sub(moved), &mut |bytes| {
            out.write(bytes);
            Ok(())
        })?;
        Ok(moved + put)
    }

    /// Moves the next block into `out`, a running job's stdin; 0 at the end
    /// of stdin.
    fn block_into(&mut self, size: usize, out: &mut Out) -> io::Result<usize> {
        if self.splice {
            let carry = std::mem::take(&mut self.carry);
            out.write(&carry);
            let first = match self.eof || carry.len() >= size.saturating_sub(WINDOW) {
                true => Ok(0),
                false => self.splice_in(out, size.saturating_sub(WINDOW) - carry.len()),
            };
            match first {
                Ok(n) => return self.finish_block(size, carry.len() + n, out),
                // Nothing more moved: the rest of this block, and the
                // blocks after it, are read instead.
                Err(e) if e == Errno::INVAL || e == Errno::NOSYS => {
                    tracing::debug!("stdin refuses splice ({e}); reading blocks instead");
                    self.splice = false;
                    let rest = self.next_block(size.saturating_sub(carry.len()))?;
                    out.write(&rest);
                    return Ok(carry.len() + rest.len());
                }
                Err(e) => return Err(e.into()),
            }
        }
        let block = self.next_block(size)?;
        out.write(&block);
        Ok(block.len())
    }

    /// Ends a block with at most `left` more bytes: reads them (the window),
    /// puts what comes up to their last newline into the block and keeps
    /// the rest for the next. A line longer than the window runs on to its
    /// end. Returns the bytes put.
    fn end_block(
        &mut self,
        left: usize,
        put: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<usize> {
        let mut window = Vec::with_capacity(WINDOW);
        self.fill(&mut window, left.min(WINDOW))?;
        let mut done = 0;
        loop {
            let cut = match window.iter().rposition(|&b| b == b'\n') {
                _ if self.eof => window.len(),
                Some(i) => i + 1,
                None => {
                    // One line fills the window: it runs on to its end.
                    put(&window)?;
                    done += window.len();
                    window.clear();
                    self.fill(&mut window, WINDOW)?;
                    match memchr(&window) {
                        Some(i) => i + 1,
                        None => continue,
                    }
                }
            };
            put(&window[..cut])?;
            self.carry = window.split_off(cut);
            return Ok(done + cut);
        }
    }

    /// The next block moved into a memory file (splice from a pipe,
    /// sendfile from a file), handed to the job once whole: a block bigger
    /// than a pipe can be made neither waits for its job nor passes through
    /// drover's memory. Read into memory where neither call works.
    fn memory_block(&mut self, size: usize, tx: &mpsc::Sender<Work>) -> io::Result<bool> {
        let memfd = match rustix::fs::memfd_create("drover-block", rustix::fs::MemfdFlags::CLOEXEC)
        {
            Ok(fd) => File::from(fd),
            Err(_) => return self.read_block(size, tx),
        };
        // splice needs a pipe on one side: from a file, sendfile.
        let from_pipe = match self.kind {
            StdinKind::Pipe => true,
            StdinKind::File => false,
            StdinKind::Socket | StdinKind::Other => return self.read_block(size, tx),
        };
        let carry = std::mem::take(&mut self.carry);
        (&memfd).write_all(&carry)?;
        let mut moved = carry.len();
        let body = size.saturating_sub(WINDOW);
        while moved < body && !self.eof {
            let want = body - moved;
            let n = loop {
                let r = if from_pipe {
                    splice(&self.stdin, None, &memfd, None, want, SpliceFlags::MORE)
                } else {
                    rustix::fs::sendfile(&memfd, &self.stdin, None, want)
                };
                match r {
                    Err(Errno::INTR) => continue,
                    r => break r?,
                }
            };
            if n == 0 {
                self.eof = true;
            }
            moved += n;
        }
        moved += self.end_block(size.saturating_sub(moved), &mut |bytes| {
            (&memfd).write_all(bytes)
        })?;
        if moved == 0 {
            return Ok(false);
        }
        // The job reads it from the start.
        rustix::fs::seek(&memfd, rustix::fs::SeekFrom::Start(0))?;
        let work = Work {
            args: Vec::new(),
            block: Some(Block::Handed(
                TakeFd::new(memfd.into()),
                Arc::new(AtomicU64::new(moved as u64)),
            )),
        };
        Ok(tx.blocking_send(work).is_ok())
    }

    /// Moves up to `len` bytes from stdin into the job's pipe; 0 at the end
    /// of stdin. A job that stopped reading gets nothing more: the bytes
    /// are read and dropped, so the next block still starts where it should.
    fn splice_in(&mut self, out: &mut Out, len: usize) -> rustix::io::Result<usize> {
        loop {
            let result = match &out.fd {
                Some(fd) => splice(&self.stdin, None, fd, None, len, SpliceFlags::MORE),
                None => {
                    let mut scratch = Vec::new();
                    self.fill(&mut scratch, len.min(WINDOW))
                        .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
                    return Ok(scratch.len());
                }
            };
            match result {
                Ok(0) => {
                    self.eof = true;
                    return Ok(0);
                }
                Ok(n) => {
                    out.sent.fetch_add(n as u64, Ordering::Relaxed);
                    return Ok(n);
                }
                Err(Errno::INTR) => continue,
                Err(Errno::PIPE) => out.fd = None,
                Err(e) => return Err(e),
            }
        }
    }
}

/// drover's end of a job's stdin pipe; `None` once the job stopped reading.
struct Out {
    fd: Option<File>,
    sent: Arc<AtomicU64>,
}

impl Out {
    fn write(&mut self, bytes: &[u8]) {
        let Some(mut file) = self.fd.as_ref() else {
            return;
        };
        match file.write_all(bytes) {
            Ok(()) => {
                self.sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::BrokenPipe {
                    tracing::warn!("writing a job's stdin failed: {e}");
                }
                self.fd = None;
            }
        }
    }
}

fn memchr(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

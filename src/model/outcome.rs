//! What happened to a job: its final status and the data the report shows.
//!
//! A failed job is data, never an `Err`: every job ends in exactly one
//! `Status`.

use std::time::{Duration, SystemTime};

use std::sync::Arc;

use serde::Serialize;

/// Every job ends in exactly one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Succeeded,
    Failed,
    TimedOut,
    Skipped,
    Cancelled,
    SpawnFailed,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Succeeded,
        Status::Failed,
        Status::TimedOut,
        Status::Skipped,
        Status::Cancelled,
        Status::SpawnFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::TimedOut => "timed_out",
            Status::Skipped => "skipped",
            Status::Cancelled => "cancelled",
            Status::SpawnFailed => "spawn_failed",
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    pub fn from_status(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(sig)) => Exit::Signal(sig),
            // Neither: stopped/continued statuses are never reported by wait().
            (None, None) => Exit::Code(-1),
        }
    }
}

/// Output kept from one stream: at most `capture_limit` bytes, the tail
/// (`drover run`), or the whole output in a file the job wrote (`drover exec`).
#[derive(Clone, Default)]
pub struct Captured {
    /// In memory (tail mode).
    pub bytes: Vec<u8>,
    /// Bytes were dropped from the front (tail mode).
    pub truncated: bool,
    /// The whole output, written by the job into anonymous files
    /// (`OutputSpec::Spooled`).
    pub file: Option<Arc<Spooled>>,
}

/// A job's whole output in the files it wrote, at the offsets it wrote it.
#[derive(Default)]
pub struct Spooled {
    /// Each file with the offset its part starts at, in order: a spool
    /// whose move to disk failed keeps its rest in memory, a second part.
    pub parts: Vec<(std::fs::File, u64)>,
    /// Why (some of) the output could not be kept: an error of drover's
    /// that names the job when its output is printed.
    pub lost: Option<String>,
    /// Dropped with the output: tells the spool's watchdog that the memory
    /// it held is free.
    pub memory: Option<Box<dyn Send + Sync>>,
}

impl Spooled {
    /// One file holding it all.
    pub fn whole(file: std::fs::File) -> Self {
        Self {
            parts: vec![(file, 0)],
            ..Self::default()
        }
    }
}

impl std::fmt::Debug for Captured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Captured")
            .field("bytes", &self.bytes.len())
            .field("truncated", &self.truncated)
            .field("file", &self.file.as_ref().map(|f| f.parts.len()))
            .field("lost", &self.lost())
            .finish()
    }
}

impl Captured {
    /// Why some of the output was not kept, if so.
    pub fn lost(&self) -> Option<&str> {
        self.file.as_ref().and_then(|f| f.lost.as_deref())
    }

    /// The file parts: each file with the range of offsets it holds.
    fn parts(&self) -> std::io::Result<Vec<(&std::fs::File, u64, u64)>> {
        let Some(spooled) = &self.file else {
            return Ok(Vec::new());
        };
        let mut parts = Vec::with_capacity(spooled.parts.len());
        for (i, (file, from)) in spooled.parts.iter().enumerate() {
            let to = match spooled.parts.get(i + 1) {
                Some(&(_, next)) => next,
                None => file.metadata()?.len(),
            };
            parts.push((file, *from, to.max(*from)));
        }
        Ok(parts)
    }

    /// Total length in bytes.
    pub fn len(&self) -> u64 {
        // A file that cannot be measured counts as one byte: the printer
        // then tries to write it, and says so when that fails.
        let files = self
            .parts()
            .map_or(1, |parts| parts.last().map_or(0, |&(_, _, end)| end));
        self.bytes.len() as u64 + files
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes it to `out`, but for its first `skip` bytes (printed while
    /// the job ran).
    pub fn write_to(&self, out: &mut dyn std::io::Write, skip: u64) -> std::io::Result<()> {
        let held = self.bytes.len() as u64;
        out.write_all(&self.bytes[skip.min(held) as usize..])?;
        let skip = skip.saturating_sub(held);
        for (file, from, to) in self.parts()? {
            if to > skip {
                copy_exactly(out, file, from.max(skip), to)?;
            }
        }
        Ok(())
    }

    /// As [`write_to`](Self::write_to), to the descriptor `out`: the file
    /// parts with sendfile(2), no copy through drover.
    pub fn send_to(&self, out: std::os::fd::BorrowedFd<'_>, skip: u64) -> std::io::Result<()> {
        if !self.bytes.is_empty() {
            return self.write_to(&mut std::fs::File::from(out.try_clone_to_owned()?), skip);
        }
        for (file, from, to) in self.parts()? {
            if to > skip && send_file(out, file, from.max(skip), to)? < to {
                return Err(shrank());
            }
        }
        Ok(())
    }

    /// The last `limit` bytes, and whether that is less than all of it.
    pub fn tail(&self, limit: usize) -> (Vec<u8>, bool) {
        use std::os::unix::fs::FileExt;
        let total = self.len();
        let truncated = self.truncated || total > limit as u64;
        // The file parts' last bytes, last part first.
        let mut from_files: Vec<u8> = Vec::new();
        for (file, from, to) in self.parts().unwrap_or_default().into_iter().rev() {
            let take = (to - from).min((limit - from_files.len()) as u64);
            let mut buf = vec![0u8; take as usize];
            if file.read_exact_at(&mut buf, to - take).is_err() {
                break;
            }
            buf.extend_from_slice(&from_files);
            from_files = buf;
            if from_files.len() >= limit {
                break;
            }
        }
        let need = limit.saturating_sub(from_files.len());
        let start = self.bytes.len().saturating_sub(need);
        let mut out = self.bytes[start..].to_vec();
        out.extend_from_slice(&from_files);
        (out, truncated)
    }
}

/// The end of one job, after all its attempts.
#[derive(Debug, Clone)]
pub struct JobResult {
    pub status: Status,
    pub exit: Option<Exit>,
    pub attempts: u32,
    pub pid: Option<u32>,
    pub started_at: Option<SystemTime>,
    pub duration: Option<Duration>,
    pub stdout: Captured,
    pub stderr: Captured,
    /// Why the job did not succeed, or what else is worth knowing.
    pub error: Option<String>,
    /// A descendant still held stdout/stderr after the job's main process
    /// exited; it was killed.
    pub leaked: bool,
    /// For a pipeline: its stages and failed items.
    pub pipeline: Option<Box<super::PipelineReport>>,
}

impl JobResult {
    /// A job that never started.
    pub fn not_started(status: Status, why: impl Into<String>) -> Self {
        Self {
            status,
            exit: None,
            attempts: 0,
            pid: None,
            started_at: None,
            duration: None,
            stdout: Captured::default(),
            stderr: Captured::default(),
            error: Some(why.into()),
            leaked: false,
            pipeline: None,
        }
    }
}

/// Writes bytes `from..to` of `file` to the descriptor `out` with sendfile(2),
/// or by reading and writing where the kernel refuses (an O_APPEND target,
/// say). Returns the offset it reached: short of `to` if the file ends first.
pub fn send_file(
    out: std::os::fd::BorrowedFd<'_>,
    file: &std::fs::File,
    from: u64,
    to: u64,
) -> std::io::Result<u64> {
    let mut offset = from;
    while offset < to {
        let want = usize::try_from(to - offset)
            .unwrap_or(usize::MAX)
            .min(1 << 30);
        match rustix::fs::sendfile(out, file, Some(&mut offset), want) {
            Ok(0) => break,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
                let mut out = std::fs::File::from(out.try_clone_to_owned()?);
                return read_and_write(&mut out, file, offset, to);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(offset)
}

/// Copies bytes `from..to` of `file` to `out`, all of them: a file that
/// ends short is an error, not a quiet end.
fn copy_exactly(
    out: &mut dyn std::io::Write,
    file: &std::fs::File,
    from: u64,
    to: u64,
) -> std::io::Result<()> {
    match read_and_write(out, file, from, to)? < to {
        true => Err(shrank()),
        false => Ok(()),
    }
}

fn shrank() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the job's output file is shorter than it was",
    )
}

/// Copies bytes `from..to` of `file` through a buffer to `out`; returns the
/// offset reached (short of `to` if the file ends first).
pub fn read_and_write(
    out: &mut dyn std::io::Write,
    file: &std::fs::File,
    from: u64,
    to: u64,
) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 256 * 1024];
    let mut offset = from;
    while offset < to {
        let want = usize::try_from(to - offset).map_or(buf.len(), |n| n.min(buf.len()));
        let n = file.read_at(&mut buf[..want], offset)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        offset += n as u64;
    }
    Ok(offset)
}

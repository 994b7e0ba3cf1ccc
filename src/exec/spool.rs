//! Where a grouped job's output waits until the job ends.
//!
//! A job writes into a memory file (memfd) of its own: on this project's
//! VM an ext4 temporary file cost half as much again as the job's writing
//! (block_commit_write, buffer heads, invalidation on close), and 500 jobs ×
//! 1 MB took 1.4× as long as ungrouped xargs. Memory files are RAM, so their
//! total is bounded: a watchdog thread looks at every live spool every
//! [`TICK`], and while they hold more than [`MEMORY_BUDGET`] between them
//! it moves the largest one's bytes to a temporary file in $TMPDIR
//! (sendfile) and punches them out of the memory file. The job keeps
//! writing at its offset, unaware. A job that writes faster than the disk
//! takes it (more than [`PAUSE_OVER`] new bytes at a look) is stopped
//! (SIGSTOP to its group) while its bytes move, and continued right after:
//! the back-pressure that the page cache gives a writer to a disk file.
//! When the job ends, a spool that has spilled moves its rest to disk too
//! and hands back the disk file.
//!
//! Where the order of output is fixed (`-k`, `-j 1`), the job printed next
//! need not wait: the printer *follows* its stdout spool, copying out what
//! the job has written as it writes, and frees those bytes; the spool is
//! then never moved to disk, and a job that gets more than [`PAUSE_OVER`]
//! ahead of the printer is stopped until the printer has caught up to half
//! of that. The [`Board`] tells the printer which spool belongs to which job.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::io::{Seek, SeekFrom};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use rustix::fs::{FallocateFlags, MemfdFlags};

/// How much grouped output running jobs may hold in memory between them.
pub const MEMORY_BUDGET: u64 = 128 * 1024 * 1024;
/// How often the watchdog looks: within budget, and over it.
const TICK: Duration = Duration::from_millis(50);
const TICK_OVER: Duration = Duration::from_millis(10);
/// New bytes at one look that make a writer wait while they move.
const PAUSE_OVER: u64 = 32 * 1024 * 1024;

/// One job's stdout or stderr, held until the job ends.
pub struct Spool {
    disk: Mutex<Disk>,
    /// The job's process group, once it runs (0 before).
    owner: AtomicI32,
    /// The bytes from offset 0 that the printer has written out and freed
    /// while following the spool.
    printed: AtomicU64,
}

/// A spool's files, behind one lock.
#[derive(Default)]
struct Disk {
    /// What the job writes to; taken when the job ends.
    memory: Option<File>,
    /// The bytes up to `moved`, at the same offsets.
    file: Option<File>,
    moved: u64,
    /// The job has ended: the watchdog leaves the spool alone.
    finished: bool,
    /// The printer copies it out as the job writes: never moved to disk.
    followed: bool,
    /// The job is stopped until the printer catches up.
    held: bool,
}

static LIVE: LazyLock<Mutex<Vec<Weak<Spool>>>> = LazyLock::new(Default::default);
static WATCHING: AtomicBool = AtomicBool::new(false);

impl Spool {
    /// A new spool; a temporary file instead where memfd is unavailable.
    pub fn new() -> io::Result<Arc<Spool>> {
        let memory = match rustix::fs::memfd_create("drover-output", MemfdFlags::CLOEXEC) {
            Ok(fd) => File::from(fd),
            // No memfd (old kernel, sandbox): straight to disk, no watchdog.
            Err(_) => {
                return Ok(Arc::new(Spool {
                    disk: Mutex::new(Disk {
                        memory: Some(tempfile::tempfile()?),
                        ..Disk::default()
                    }),
                    owner: AtomicI32::new(0),
                    printed: AtomicU64::new(0),
                }));
            }
        };
        let spool = Arc::new(Spool {
            disk: Mutex::new(Disk {
                memory: Some(memory),
                ..Disk::default()
            }),
            owner: AtomicI32::new(0),
            printed: AtomicU64::new(0),
        });
        lock(&LIVE).push(Arc::downgrade(&spool));
        if !WATCHING.swap(true, Ordering::AcqRel) {
            let started = std::thread::Builder::new()
                .name("drover-spool".into())
                .spawn(watch);
            if started.is_err() {
                WATCHING.store(false, Ordering::Release);
            }
        }
        Ok(spool)
    }

    /// The descriptor the job writes to (open until `finish`).
    pub fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        lock(&self.disk).memory.as_ref().map(|f| f.as_raw_fd())
    }

    /// The job now runs as process group `pgid`.
    pub fn set_owner(&self, pgid: u32) {
        self.owner
            .store(i32::try_from(pgid).unwrap_or(0), Ordering::Release);
    }

    /// Whether some of it is on disk (then `finish` writes the rest there).
    pub fn has_spilled(&self) -> bool {
        lock(&self.disk).file.is_some()
    }

    /// The job has ended: the file holding all it wrote, from offset 0.
    pub fn finish(self: Arc<Self>) -> io::Result<File> {
        let mut disk = lock(&self.disk);
        disk.finished = true;
        let memory = disk
            .memory
            .take()
            .ok_or_else(|| io::Error::other("a spool finished twice"))?;
        let Some(file) = disk.file.take() else {
            return Ok(memory);
        };
        let end = memory.metadata()?.len();
        move_to_disk(&memory, &file, disk.moved, end)?;
        Ok(file)
    }

    /// The printer will copy out the job's output as it comes: a handle on
    /// the memory file to read it from, unless the job has ended or some of
    /// its output is on disk already (then it is printed when it ends).
    pub fn follow(&self) -> Option<File> {
        let mut disk = lock(&self.disk);
        if disk.finished || disk.file.is_some() {
            return None;
        }
        let handle = disk.memory.as_ref()?.try_clone().ok()?;
        disk.followed = true;
        Some(handle)
    }

    /// The printer has written out bytes `from..to` of `handle` (from
    /// [`follow`](Self::follow)): they are freed, and the job is held back
    /// or let go according to how far ahead it is now.
    pub fn printed(&self, handle: &File, from: u64, to: u64) {
        if to > from {
            let _ = rustix::fs::fallocate(
                handle,
                FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
                from,
                to - from,
            );
        }
        self.printed.store(to, Ordering::Release);
        self.pace(&mut lock(&self.disk));
    }

    /// The printer stops following (the job has ended, or stdout is gone):
    /// a job held back goes on, and the spool is the watchdog's again.
    pub fn unfollow(&self) {
        let mut disk = lock(&self.disk);
        disk.followed = false;
        if disk.held {
            disk.held = false;
            self.signal_group(&disk, rustix::process::Signal::CONT);
        }
    }

    /// A followed spool: stops the job while it is more than [`PAUSE_OVER`]
    /// ahead of the printer, continues it once within half of that.
    fn pace(&self, disk: &mut Disk) {
        if !disk.followed || disk.finished {
            return;
        }
        let ahead = self.unprinted(disk);
        if !disk.held && ahead > PAUSE_OVER {
            disk.held = self.signal_group(disk, rustix::process::Signal::STOP);
        } else if disk.held && ahead <= PAUSE_OVER / 2 {
            disk.held = false;
            self.signal_group(disk, rustix::process::Signal::CONT);
        }
    }

    /// Signals the job's process group; `disk` is this spool's, locked:
    /// until `finished` is set under that lock the job's leader is
    /// unreaped, so its pgid cannot have been reused.
    fn signal_group(&self, disk: &Disk, signal: rustix::process::Signal) -> bool {
        if disk.finished {
            return false;
        }
        rustix::process::Pid::from_raw(self.owner.load(Ordering::Acquire))
            .is_some_and(|pgid| rustix::process::kill_process_group(pgid, signal).is_ok())
    }

    /// Bytes in memory that are neither on disk nor printed.
    fn unprinted(&self, disk: &Disk) -> u64 {
        let done = disk.moved.max(self.printed.load(Ordering::Acquire));
        disk.memory
            .as_ref()
            .and_then(|m| m.metadata().ok())
            .map_or(0, |m| m.len().saturating_sub(done))
    }

    /// Bytes still in memory (0 once the job has ended), and whether the
    /// printer follows the spool.
    fn in_memory(&self) -> (u64, bool) {
        let disk = lock(&self.disk);
        match disk.finished {
            false => (self.unprinted(&disk), disk.followed),
            true => (0, false),
        }
    }

    /// Stops the job's process group if it wrote more than [`PAUSE_OVER`]
    /// since the last move; returns the group to continue. `disk` is this
    /// spool's, locked: until `finished` is set under that lock the job's
    /// leader is unreaped, so its pgid cannot have been reused.
    fn pause_if_fast(&self, disk: &Disk) -> Option<rustix::process::Pid> {
        if disk.finished || self.unprinted(disk) <= PAUSE_OVER {
            return None;
        }
        let pgid = rustix::process::Pid::from_raw(self.owner.load(Ordering::Acquire))?;
        rustix::process::kill_process_group(pgid, rustix::process::Signal::STOP).ok()?;
        Some(pgid)
    }

    /// Moves what the job has written so far to disk; `disk` is this
    /// spool's, locked.
    fn spill(&self, disk: &mut Disk) -> io::Result<()> {
        if disk.finished || disk.followed {
            return Ok(());
        }
        if disk.file.is_none() {
            // What a printer that followed the spool wrote out is a hole in
            // memory and on disk: the disk file holds the same offsets.
            let printed = self.printed.load(Ordering::Acquire);
            let mut file = tempfile::tempfile()?;
            file.seek(SeekFrom::Start(printed))?;
            disk.moved = disk.moved.max(printed);
            disk.file = Some(file);
        }
        let (Some(memory), Some(file)) = (&disk.memory, &disk.file) else {
            return Ok(());
        };
        let end = memory.metadata()?.len();
        move_to_disk(memory, file, disk.moved, end)?;
        tracing::debug!(bytes = end - disk.moved, "output moved to disk");
        disk.moved = end;
        Ok(())
    }
}

/// Copies `memory[from..to]` to the end of `disk` (which holds exactly
/// `from` bytes) and frees those bytes of `memory`. In the kernel: sendfile,
/// as copy_file_range refuses to cross filesystems.
fn move_to_disk(memory: &File, disk: &File, from: u64, to: u64) -> io::Result<()> {
    let mut src = from;
    while src < to {
        let want = usize::try_from(to - src).unwrap_or(usize::MAX).min(1 << 30);
        let n = rustix::fs::sendfile(disk.as_fd(), memory.as_fd(), Some(&mut src), want)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the output file shrank",
            ));
        }
    }
    if to > from {
        rustix::fs::fallocate(
            memory,
            FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
            from,
            to - from,
        )?;
    }
    Ok(())
}

/// The watchdog: while live spools hold more than the budget in memory,
/// spill the largest. Ends when no spool is live.
fn watch() {
    let mut tick = TICK;
    loop {
        std::thread::sleep(tick);
        let live: Vec<Arc<Spool>> = {
            let mut list = lock(&LIVE);
            list.retain(|w| w.strong_count() > 0);
            if list.is_empty() {
                WATCHING.store(false, Ordering::Release);
                return;
            }
            list.iter().filter_map(Weak::upgrade).collect()
        };
        let mut total = 0;
        let mut sizes: Vec<(u64, &Arc<Spool>)> = Vec::with_capacity(live.len());
        for spool in &live {
            let (size, followed) = spool.in_memory();
            total += size;
            match followed {
                // A printer stalled on a slow stdout: hold the job back
                // here too, as the printer cannot look while it writes.
                true => spool.pace(&mut lock(&spool.disk)),
                false => sizes.push((size, spool)),
            }
        }
        tick = if total > MEMORY_BUDGET {
            TICK_OVER
        } else {
            TICK
        };
        if total <= MEMORY_BUDGET {
            continue;
        }
        tracing::trace!(total, spools = sizes.len(), "spools in memory");
        sizes.sort_unstable_by_key(|&(size, _)| std::cmp::Reverse(size));
        // The largest, until what stays is within budget, and every fast
        // writer (which would outgrow the budget while the others move).
        let mut chosen = Vec::new();
        for (size, spool) in sizes {
            if total <= MEMORY_BUDGET && size <= PAUSE_OVER {
                break;
            }
            total = total.saturating_sub(size);
            chosen.push(spool);
        }
        // Fast writers all wait while the bytes move, not one at a time.
        let mut locked: Vec<_> = chosen.iter().map(|s| (s, lock(&s.disk))).collect();
        let paused: Vec<_> = locked
            .iter()
            .filter_map(|(s, disk)| s.pause_if_fast(disk))
            .collect();
        for (spool, disk) in &mut locked {
            if let Err(e) = spool.spill(disk) {
                tracing::warn!("cannot move a job's output to disk: {e}");
                break;
            }
        }
        for pgid in paused {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::CONT);
        }
    }
}

/// The stdout spools of running jobs by job number, for the printer to
/// follow the one whose output comes next.
#[derive(Default)]
pub struct Board(Mutex<HashMap<usize, Arc<Spool>>>);

impl Board {
    pub fn put(&self, job: usize, spool: &Arc<Spool>) {
        lock(&self.0).insert(job, spool.clone());
    }

    pub fn take(&self, job: usize) {
        lock(&self.0).remove(&job);
    }

    pub fn get(&self, job: usize) -> Option<Arc<Spool>> {
        lock(&self.0).get(&job).cloned()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

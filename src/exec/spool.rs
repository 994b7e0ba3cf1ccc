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
//! No byte is dropped when $TMPDIR fills up (or fails): a move that fails
//! is undone (the bytes stay in memory, the disk file is cut back) and the
//! watchdog tries again at most every [`RETRY_SPILL`]. Meanwhile memory
//! files (of running jobs, and of ended ones waiting to be printed) may
//! hold up to [`ROOM_FACTOR`] × the budget; past that, every job that
//! writes more is stopped but the oldest, which runs on (so that some job
//! always gets to its end and frees its output), and it too while the
//! printer writes out an ended job's output from memory, or once the
//! machine's memory is short. Stopped jobs go on when there is room again.
//! A spool that cannot move its rest to disk when its job ends hands back
//! both files.
//!
//! Where the order of output is fixed (`-k`, `-j 1`), the job printed next
//! need not wait: the printer *follows* its stdout spool, copying out what
//! the job has written as it writes, and frees those bytes; the spool is
//! then never moved to disk, and a job that gets more than [`PAUSE_OVER`]
//! ahead of the printer is stopped until the printer has caught up to half
//! of that. The engine's started event hands the printer the job's spool.

use std::fs::File;
use std::io;
use std::io::{Seek, SeekFrom};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use rustix::fs::{FallocateFlags, MemfdFlags};

use crate::model::Spooled;

/// How much grouped output running jobs may hold in memory between them,
/// by default (see [`set_memory_budget`]).
pub const MEMORY_BUDGET: u64 = 128 * 1024 * 1024;
static BUDGET: AtomicU64 = AtomicU64::new(MEMORY_BUDGET);
/// While output cannot move to disk, memory files may hold this many times
/// the budget before writers are stopped.
pub const ROOM_FACTOR: u64 = 4;
/// How often a failed move to disk is tried again.
const RETRY_SPILL: Duration = Duration::from_secs(1);
/// Bytes in memory files of jobs that ended, until their output is printed
/// (dropped).
static FINISHED_IN_MEMORY: AtomicU64 = AtomicU64::new(0);

/// The printer is writing out an ended job's output.
static PRINTING: AtomicBool = AtomicBool::new(false);

/// The printer starts (`true`) or ends writing out an ended job's output,
/// which frees the memory it held: meanwhile jobs stopped for room wait.
pub fn printing(busy: bool) {
    PRINTING.store(busy, Ordering::Relaxed);
}

/// Counts a finished job's bytes in memory while its output waits.
struct FinishedInMemory(u64);

impl FinishedInMemory {
    fn count(bytes: u64) -> Box<dyn Send + Sync> {
        FINISHED_IN_MEMORY.fetch_add(bytes, Ordering::Relaxed);
        Box::new(FinishedInMemory(bytes))
    }
}

impl Drop for FinishedInMemory {
    fn drop(&mut self) {
        FINISHED_IN_MEMORY.fetch_sub(self.0, Ordering::Relaxed);
    }
}
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
    /// Which job it is, for warnings.
    label: OnceLock<String>,
}

/// Sets how much grouped output running jobs may hold in memory between
/// them (at least 1 MiB).
pub fn set_memory_budget(bytes: u64) {
    BUDGET.store(bytes.max(1 << 20), Ordering::Relaxed);
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("job", &self.label())
            .finish_non_exhaustive()
    }
}

fn budget() -> u64 {
    BUDGET.load(Ordering::Relaxed)
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
    /// The job is stopped until there is room for its output.
    room_held: bool,
    /// Bytes in memory at the watchdog's last look.
    seen: u64,
    /// A warning named this job as stopped for room.
    warned: bool,
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
                    label: OnceLock::new(),
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
            label: OnceLock::new(),
        });
        lock(&LIVE).push(Arc::downgrade(&spool));
        if !WATCHING.swap(true, Ordering::AcqRel) {
            // The watchdog looks first a TICK from now: its thread starts
            // then, and only if a spool is still live, so that a run whose
            // jobs all end sooner (one quick job) starts no thread for it.
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    // Dropped unfinished (its runtime shut down first): the
                    // thread now, or WATCHING reset, never left set.
                    struct Start;
                    impl Drop for Start {
                        fn drop(&mut self) {
                            start_watch();
                        }
                    }
                    let start = Start;
                    runtime.spawn(async move {
                        tokio::time::sleep(TICK).await;
                        drop(start);
                    });
                }
                Err(_) => start_watch(),
            }
        }
        Ok(spool)
    }

    /// The descriptor the job writes to (open until `finish`).
    pub fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        lock(&self.disk).memory.as_ref().map(|f| f.as_raw_fd())
    }

    /// The job `label` now runs as process group `pgid`.
    pub fn set_owner(&self, pgid: u32, label: impl FnOnce() -> String) {
        self.label.get_or_init(label);
        self.owner
            .store(i32::try_from(pgid).unwrap_or(0), Ordering::Release);
    }

    fn label(&self) -> &str {
        self.label.get().map_or("a job", String::as_str)
    }

    /// Whether some of it is on disk (then `finish` writes the rest there).
    pub fn has_spilled(&self) -> bool {
        lock(&self.disk).file.is_some()
    }

    /// The job has ended: the files holding all it wrote, from offset 0.
    pub fn finish(self: Arc<Self>) -> io::Result<Spooled> {
        let mut disk = lock(&self.disk);
        let in_memory = self.unprinted(&disk);
        disk.finished = true;
        let memory = disk
            .memory
            .take()
            .ok_or_else(|| io::Error::other("a spool finished twice"))?;
        let Some(file) = disk.file.take() else {
            return Ok(Spooled {
                memory: Some(FinishedInMemory::count(in_memory)),
                ..Spooled::whole(memory)
            });
        };
        let moved = memory
            .metadata()
            .and_then(|m| move_to_disk(&memory, &file, disk.moved, m.len()));
        match moved {
            Ok(()) => Ok(Spooled::whole(file)),
            // Printed from both files: nothing is lost.
            Err(e) => {
                tracing::debug!(
                    job = self.label(),
                    "the rest of the output stays in memory: {e}"
                );
                Ok(Spooled {
                    parts: vec![(file, 0), (memory, disk.moved)],
                    lost: None,
                    memory: Some(FinishedInMemory::count(in_memory)),
                })
            }
        }
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
        // Paced by the printer now, which frees what it writes out.
        if disk.room_held {
            disk.room_held = false;
            self.signal_group(&disk, rustix::process::Signal::CONT);
        }
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

    /// Bytes still in memory (0 once the job has ended), whether the
    /// printer follows the spool, and whether it grew since the last look.
    fn in_memory(&self) -> (u64, bool, bool) {
        let mut disk = lock(&self.disk);
        if disk.finished {
            return (0, false, false);
        }
        let size = self.unprinted(&disk);
        let grew = size > disk.seen;
        disk.seen = size;
        (size, disk.followed, grew)
    }

    /// Stops the job until there is room for its output; whether it was
    /// stopped now.
    fn hold_for_room(&self) -> bool {
        let mut disk = lock(&self.disk);
        if disk.room_held || disk.followed {
            return false;
        }
        disk.room_held = self.signal_group(&disk, rustix::process::Signal::STOP);
        let first = disk.room_held && !disk.warned;
        disk.warned |= disk.room_held;
        first
    }

    /// Continues a job stopped for room.
    fn release(&self) {
        let mut disk = lock(&self.disk);
        if disk.room_held {
            disk.room_held = false;
            self.signal_group(&disk, rustix::process::Signal::CONT);
        }
    }

    fn is_room_held(&self) -> bool {
        lock(&self.disk).room_held
    }

    /// Stops the job's process group if it wrote more than [`PAUSE_OVER`]
    /// since the last move; returns the group to continue. `disk` is this
    /// spool's, locked: until `finished` is set under that lock the job's
    /// leader is unreaped, so its pgid cannot have been reused.
    fn pause_if_fast(&self, disk: &Disk) -> Option<rustix::process::Pid> {
        // A job stopped for room stays stopped after the move.
        if disk.finished || disk.room_held || self.unprinted(disk) <= PAUSE_OVER {
            return None;
        }
        let pgid = rustix::process::Pid::from_raw(self.owner.load(Ordering::Acquire))?;
        rustix::process::kill_process_group(pgid, rustix::process::Signal::STOP).ok()?;
        Some(pgid)
    }

    /// Moves what the job has written so far to disk; `disk` is this
    /// spool's, locked. On failure nothing has moved: the bytes are all
    /// still in memory.
    fn spill(&self, disk: &mut Disk) -> io::Result<()> {
        if disk.finished || disk.followed {
            return Ok(());
        }
        let fresh = disk.file.is_none();
        if fresh {
            // What a printer that followed the spool wrote out is a hole in
            // memory and on disk: the disk file holds the same offsets.
            let printed = self.printed.load(Ordering::Acquire);
            disk.file = Some(tempfile::tempfile()?);
            disk.moved = disk.moved.max(printed);
        }
        let (Some(memory), Some(file)) = (&disk.memory, &disk.file) else {
            return Ok(());
        };
        let moved = memory
            .metadata()
            .and_then(|m| move_to_disk(memory, file, disk.moved, m.len()).map(|()| m.len()));
        match moved {
            Ok(end) => {
                tracing::debug!(bytes = end - disk.moved, "output moved to disk");
                disk.moved = end;
                Ok(())
            }
            Err(e) => {
                // Nothing on disk yet: a plain memory spool again (which the
                // printer may follow).
                if fresh {
                    disk.file = None;
                }
                Err(e)
            }
        }
    }
}

/// Copies `memory[from..to]` to `disk` at the same offsets and frees those
/// bytes of `memory`. In the kernel: sendfile, as copy_file_range refuses
/// to cross filesystems. On failure (a full disk: ENOSPC, EDQUOT; EIO)
/// what was copied is cut off `disk` again and `memory` keeps every byte.
fn move_to_disk(memory: &File, disk: &File, from: u64, to: u64) -> io::Result<()> {
    let mut out = disk;
    let copied = out.seek(SeekFrom::Start(from)).and_then(|_| {
        let mut src = from;
        while src < to {
            let want = usize::try_from(to - src).unwrap_or(usize::MAX).min(1 << 30);
            match rustix::fs::sendfile(disk.as_fd(), memory.as_fd(), Some(&mut src), want) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the output file shrank",
                    ));
                }
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    });
    if let Err(e) = copied {
        // Frees the space the part copied took; were it left, it is past
        // `from`, which is all the spool reads of this file.
        let _ = disk.set_len(from);
        return Err(e);
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

/// Whether the watchdog can move output to disk, as far as it knows.
#[derive(Default)]
struct Room {
    /// When a move last failed, while moves fail.
    failed_at: Option<Instant>,
    warned: bool,
}

impl Room {
    fn may_spill(&self) -> bool {
        self.failed_at.is_none_or(|t| t.elapsed() >= RETRY_SPILL)
    }

    fn failed(&mut self, e: &io::Error, spool: &Spool) {
        self.failed_at = Some(Instant::now());
        if !std::mem::replace(&mut self.warned, true) {
            tracing::warn!(
                "cannot move the output of {} to {}: {e}; keeping output in memory (up to {} MiB, then jobs writing more are stopped until there is room)",
                spool.label(),
                std::env::temp_dir().display(),
                (budget() * ROOM_FACTOR) >> 20,
            );
        }
    }

    fn ok(&mut self) {
        if self.failed_at.take().is_some() {
            tracing::info!("output moves to disk again");
        }
    }
}

/// Starts the watchdog's thread, or lets it go if no spool is live.
fn start_watch() {
    {
        let mut list = lock(&LIVE);
        list.retain(|w| w.strong_count() > 0);
        if list.is_empty() {
            WATCHING.store(false, Ordering::Release);
            return;
        }
    }
    let started = std::thread::Builder::new()
        .name("drover-spool".into())
        .spawn(|| watch(Duration::ZERO));
    if started.is_err() {
        WATCHING.store(false, Ordering::Release);
    }
}

/// The watchdog: while live spools hold more than the budget in memory,
/// spill the largest. Ends when no spool is live. Looks first after
/// `first` (its starter waited a TICK already).
fn watch(first: Duration) {
    let mut tick = first;
    let mut room = Room::default();
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
        let budget = budget();
        // Output of ended jobs waiting to be printed holds memory too.
        let waiting = FINISHED_IN_MEMORY.load(Ordering::Relaxed);
        let mut total = waiting;
        let mut sizes: Vec<(u64, bool, &Arc<Spool>)> = Vec::with_capacity(live.len());
        for spool in &live {
            let (size, followed, grew) = spool.in_memory();
            total += size;
            match followed {
                // A printer stalled on a slow stdout: hold the job back
                // here too, as the printer cannot look while it writes.
                true => spool.pace(&mut lock(&spool.disk)),
                false => sizes.push((size, grew, spool)),
            }
        }
        tick = if total > budget { TICK_OVER } else { TICK };
        if total > budget && room.may_spill() {
            tracing::trace!(total, spools = sizes.len(), "spools in memory");
            let mut largest = sizes.clone();
            largest.sort_unstable_by_key(|&(size, _, _)| std::cmp::Reverse(size));
            match spill_largest(&largest, total, budget) {
                Ok(()) => room.ok(),
                Err((e, spool)) => room.failed(&e, spool),
            }
        }
        match room.failed_at {
            // Oldest first, as the spools were made.
            Some(_) => {
                let freeing = waiting > 0 && PRINTING.load(Ordering::Relaxed);
                make_room(&sizes, total, budget, freeing)
            }
            None => sizes.iter().for_each(|(_, _, s)| s.release()),
        }
    }
}

/// Moves the largest spools to disk until what stays is within `budget`,
/// and every fast writer (which would outgrow the budget while the others
/// move). The first failure stops it, with the spool it failed on.
fn spill_largest<'a>(
    sizes: &[(u64, bool, &'a Arc<Spool>)],
    mut total: u64,
    budget: u64,
) -> Result<(), (io::Error, &'a Spool)> {
    let mut chosen = Vec::new();
    for &(size, _, spool) in sizes {
        if total <= budget && size <= PAUSE_OVER {
            break;
        }
        total = total.saturating_sub(size);
        chosen.push(spool);
    }
    // Fast writers all wait while the bytes move, not one at a time.
    let mut locked: Vec<_> = chosen.iter().map(|s| (*s, lock(&s.disk))).collect();
    let paused: Vec<_> = locked
        .iter()
        .filter_map(|(s, disk)| s.pause_if_fast(disk))
        .collect();
    let mut result = Ok(());
    for (spool, disk) in &mut locked {
        if let Err(e) = spool.spill(disk) {
            result = Err((e, &***spool));
            break;
        }
    }
    for pgid in paused {
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::CONT);
    }
    result
}

/// Output cannot move to disk: past [`ROOM_FACTOR`] × `budget` in memory,
/// stops every job that wrote more since the last look but the oldest
/// (`by_age` is oldest first), which runs on: some job always gets to its
/// end, and with `-k` it is the one whose output comes next, which frees
/// the output waiting for it. That one too while the printer is `freeing`
/// memory (writing out an ended job's), or when the machine's memory is
/// short. Within one budget of the bound, stopped jobs all go on.
fn make_room(by_age: &[(u64, bool, &Arc<Spool>)], total: u64, budget: u64, freeing: bool) {
    let ceiling = budget.saturating_mul(ROOM_FACTOR);
    if total <= ceiling.saturating_sub(budget) {
        by_age.iter().for_each(|(_, _, s)| s.release());
        return;
    }
    let short = total > ceiling && memory_is_short();
    let stop_all = short || freeing;
    let writing = |&&(_, grew, s): &&(u64, bool, &Arc<Spool>)| grew && !s.is_room_held();
    if total > ceiling {
        let mut stopped = Vec::new();
        for &(_, _, spool) in by_age.iter().filter(writing).skip(usize::from(!stop_all)) {
            if spool.hold_for_room() {
                stopped.push(spool.label().to_string());
            }
        }
        if !stopped.is_empty() {
            tracing::warn!(
                "no room for more output ({} MiB in memory, {} full{}): stopped until there is: {}",
                total >> 20,
                std::env::temp_dir().display(),
                if short { ", memory short" } else { "" },
                stopped.join("; "),
            );
        }
    }
    if !stop_all && !by_age.iter().any(|s| writing(&s)) {
        // No job wrote: let the oldest stopped one go on, so that the run
        // is never stuck with every writer stopped.
        if let Some(&(_, _, s)) = by_age.iter().find(|(_, _, s)| s.is_room_held()) {
            s.release();
        }
    }
}

/// Whether the machine (or this cgroup) has less than a sixteenth of its
/// memory available.
fn memory_is_short() -> bool {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kb| kb * 1024)
    };
    let (Some(mut total), Some(mut available)) = (field("MemTotal:"), field("MemAvailable:"))
    else {
        return false;
    };
    let cgroup = |name: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{name}"))
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
    };
    if let (Some(max), Some(current)) = (cgroup("memory.max"), cgroup("memory.current")) {
        total = total.min(max);
        available = available.min(max.saturating_sub(current));
    }
    available < total / 16
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

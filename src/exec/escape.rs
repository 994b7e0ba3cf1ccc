//! Descendants that escape their job.
//!
//! A job is its process group, and drover kills the group when the job
//! ends. A descendant that calls `setsid` (a daemon) leaves the group, and
//! once its parent dies it would be an orphan of the machine's init, out of
//! drover's reach. So drover makes itself a child subreaper
//! (`PR_SET_CHILD_SUBREAPER`): such orphans become drover's children. Each
//! job's processes carry a mark in their environment (`DROVER_JOB_MARK`,
//! drover's pid and a number of its own for each attempt), inherited by
//! whatever they start: when a job ends, the children of drover that carry
//! its mark and are not job leaders are its escaped descendants, killed
//! (with their process groups), and its report says so.
//!
//! The orphans must also be reaped, and the known failure of such reapers
//! is a `waitpid(-1)` that steals the exit statuses of the program's own
//! children. drover's jobs are waited for by pid (see `group`), so the
//! reaper here waits for pids too, and only for zombies that cannot be a
//! job's leader: leaders are registered here from their spawn to their
//! reaping, lead their own process group in drover's session, and are never
//! taken for an orphan while registered. A zombie that looks like a leader
//! but is not registered (an orphan that called `setpgid` alone) is reaped
//! once it has stayed so for [`UNCLAIMED`]: a spawn registers its leader
//! within microseconds.
//!
//! Orphans found after their job ended (grandchildren of a killed escapee,
//! reparented late) are killed by the reaper's sweep, four times a second;
//! any left when drover finishes are killed by [`finish`].

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

/// The environment variable that marks a job's processes.
pub const MARK_VAR: &str = "DROVER_JOB_MARK";

/// How long a zombie child that looks like a job's leader but is not
/// registered as one waits before the reaper takes it for an orphan.
const UNCLAIMED: Duration = Duration::from_secs(5);

/// How often the reaper sweeps.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

static ACTIVE: AtomicBool = AtomicBool::new(false);
static NEXT_MARK: AtomicU64 = AtomicU64::new(1);

/// What the reaper must not touch.
#[derive(Default)]
struct Known {
    /// Job leaders spawned and not yet reaped: their marks, by pid.
    leaders: HashMap<u32, u64>,
    /// Marks given and not yet done with: from before their spawn to their
    /// leader's reaping.
    live: HashSet<u64>,
}

static KNOWN: LazyLock<Mutex<Known>> = LazyLock::new(Default::default);

fn known() -> MutexGuard<'static, Known> {
    KNOWN.lock().unwrap_or_else(|e| e.into_inner())
}

/// drover's pid, session and process group, read once. In a PID namespace
/// whose session leader is outside it, the session is 0: as in /proc.
static SELF: LazyLock<(i32, i32, i32)> = LazyLock::new(|| {
    // SAFETY: plain system calls about this process.
    unsafe { (libc::getpid(), libc::getsid(0), libc::getpgrp()) }
});

/// Makes drover a child subreaper and starts its reaper (inside a tokio
/// runtime); jobs get cgroups of their own where they can (see `cgroup`). Without the kernel's support (or with
/// `DROVER_SUBREAPER=0`) escaped descendants stay the machine's init's, as
/// before; drover says so at debug level and goes on.
pub fn start() {
    super::cgroup::start();
    if ACTIVE.load(Ordering::Relaxed) {
        return;
    }
    if std::env::var_os("DROVER_SUBREAPER").is_some_and(|v| v == "0") {
        return;
    }
    // SAFETY: a plain prctl on this process.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        tracing::debug!("not a child subreaper: {}", std::io::Error::last_os_error());
        return;
    }
    LazyLock::force(&SELF);
    ACTIVE.store(true, Ordering::Relaxed);
    tokio::spawn(reaper());
}

/// Whether drover is a child subreaper (escaped descendants are its own).
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// The mark of one attempt of a job: live (its escaped processes are left
/// to its end) until its leader is reaped, or until dropped unspawned.
pub struct Mark {
    id: u64,
    /// `DROVER_JOB_MARK=…`, for the job's environment.
    pub entry: CString,
}

impl Drop for Mark {
    fn drop(&mut self) {
        if self.id != 0 {
            known().live.remove(&self.id);
        }
    }
}

/// A new mark for one attempt of a job; `None` when drover is no subreaper
/// (nothing would find the mark).
pub fn new_mark() -> Option<Mark> {
    if !active() {
        return None;
    }
    let id = NEXT_MARK.fetch_add(1, Ordering::Relaxed);
    known().live.insert(id);
    let entry = CString::new(format!("{MARK_VAR}={}.{id}", SELF.0)).expect("no NUL");
    Some(Mark { id, entry })
}

/// `pid` leads the job marked `mark`; its mark stays live until
/// [`unregister`].
pub(crate) fn register(pid: u32, mut mark: Mark) -> u64 {
    let id = std::mem::replace(&mut mark.id, 0);
    known().leaders.insert(pid, id);
    id
}

/// `pid`, the leader of the job marked `mark`, has been reaped.
pub(crate) fn unregister(pid: u32, mark: u64) {
    let mut known = known();
    known.leaders.remove(&pid);
    known.live.remove(&mark);
}

/// One escaped process, killed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escaped {
    pub pid: u32,
    /// Its command name (/proc/PID/comm).
    pub name: String,
}

/// Kills the processes of the job marked `mark`, led by `leader`, that left
/// its process group and became drover's children (with their own process
/// groups). Orphans still in the group are not escaped: the group kill
/// reaches them. The caller has killed the job's group and not yet reaped
/// its leader.
pub(crate) fn kill_escaped(mark: u64, leader: u32) -> Vec<Escaped> {
    let mut killed = Vec::new();
    let Some(children) = main_thread_children() else {
        return killed;
    };
    let known = known();
    let strays: Vec<u32> = children
        .into_iter()
        .filter(|pid| !known.leaders.contains_key(pid))
        .collect();
    drop(known);
    for pid in strays {
        let Some(stat) = Stat::read(pid) else {
            continue;
        };
        if stat.state == 'Z' || stat.pgid == leader as i32 || mark_of(pid) != Some(mark) {
            continue;
        }
        kill_tree(pid, &stat);
        killed.push(Escaped {
            pid,
            name: stat.name,
        });
    }
    killed
}

/// Kills the processes left in the cgroup of the job led by `leader`
/// (whatever their parent, group or environment now); returns those that
/// had left its process group. The caller has killed the job's group and
/// not yet reaped its leader.
pub(crate) fn kill_escaped_in(cgroup: &super::cgroup::JobCgroup, leader: u32) -> Vec<Escaped> {
    let mut escaped = Vec::new();
    if !cgroup.populated() {
        return escaped;
    }
    for pid in cgroup.pids() {
        if pid == leader {
            continue;
        }
        let Some(stat) = Stat::read(pid) else {
            continue;
        };
        if stat.state != 'Z' && stat.pgid != leader as i32 {
            escaped.push(Escaped {
                pid,
                name: stat.name,
            });
        }
    }
    cgroup.kill();
    // The kill is sent, not done: the job ends once they are gone (a
    // SIGKILLed process takes microseconds, rarely a few milliseconds), so
    // that what comes after it never sees them. Bounded: one stuck in the
    // kernel (D state) is not waited for past it.
    let deadline = Instant::now() + Duration::from_millis(200);
    while cgroup.populated() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    escaped
}

/// At the end of drover's work (every job reaped): every child left is
/// killed and reaped, and the jobs' cgroups removed. Returns how many
/// children were alive.
pub fn finish() -> usize {
    let killed = finish_children();
    super::cgroup::finish();
    killed
}

fn finish_children() -> usize {
    if !active() {
        return 0;
    }
    let mut killed = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let known: HashSet<u32> = known().leaders.keys().copied().collect();
        let strays: Vec<u32> = all_children()
            .into_iter()
            .filter(|p| !known.contains(p))
            .collect();
        if strays.is_empty() || Instant::now() > deadline {
            break;
        }
        for pid in strays {
            let Some(stat) = Stat::read(pid) else {
                continue;
            };
            if stat.state == 'Z' {
                reap(pid);
            } else if killed.insert(pid) {
                tracing::info!(
                    pid,
                    name = %stat.name,
                    "killed a process that had escaped its job's process group"
                );
                kill_tree(pid, &stat);
            }
        }
        // Killed processes take a moment to become zombies.
        std::thread::sleep(Duration::from_millis(2));
    }
    killed.len()
}

/// Reaps orphans and kills escaped processes whose job has ended, every
/// SWEEP_EVERY. Not on SIGCHLD: a handler for it would interrupt drover at
/// every job's exit (thousands a second) for the rare orphan; a zombie
/// waits at most SWEEP_EVERY.
async fn reaper() {
    let mut unclaimed: HashMap<u32, Instant> = HashMap::new();
    let mut every = tokio::time::interval(SWEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        sweep(&mut unclaimed);
    }
}

fn sweep(unclaimed: &mut HashMap<u32, Instant>) {
    let children = all_children();
    let now = Instant::now();
    unclaimed.retain(|pid, _| children.contains(pid));
    for pid in children {
        if known().leaders.contains_key(&pid) {
            continue;
        }
        let Some(stat) = Stat::read(pid) else {
            continue;
        };
        // One that may be a leader being registered is left alone a while.
        if !stat.is_orphan() {
            let first = *unclaimed.entry(pid).or_insert(now);
            if now.duration_since(first) < UNCLAIMED || known().leaders.contains_key(&pid) {
                continue;
            }
        }
        if stat.state == 'Z' {
            unclaimed.remove(&pid);
            reap(pid);
            continue;
        }
        // Alive: an escaped process. Its job's end kills it; one whose job
        // has already ended (reparented late) is killed now. One in a
        // running job's group goes with that group.
        let Some(mark) = mark_of(pid) else { continue };
        let known = known();
        let in_a_job = u32::try_from(stat.pgid).is_ok_and(|g| known.leaders.contains_key(&g));
        if !in_a_job && !known.live.contains(&mark) {
            drop(known);
            tracing::info!(
                pid,
                name = %stat.name,
                "killed a process that had escaped an ended job's process group"
            );
            kill_tree(pid, &stat);
        }
    }
}

/// Reaps `pid`, a child of drover that is not a job's leader.
fn reap(pid: u32) {
    let mut status = 0;
    // SAFETY: waitpid on a child of ours that no one else waits for.
    unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
}

/// Kills `pid` (a child of drover, not reaped: its pid cannot be reused)
/// and, if it leads one, its process group.
fn kill_tree(pid: u32, stat: &Stat) {
    let Some(p) = Pid::from_raw(pid as i32) else {
        return;
    };
    if stat.pgid == pid as i32 {
        let _ = rustix::process::kill_process_group(p, Signal::KILL);
    }
    let _ = rustix::process::kill_process(p, Signal::KILL);
}

/// What drover reads of a process in /proc/PID/stat.
pub(crate) struct Stat {
    pub name: String,
    pub state: char,
    pub pgid: i32,
    sid: i32,
    pub pid: i32,
}

impl Stat {
    pub fn read(pid: u32) -> Option<Stat> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (head, rest) = text.rsplit_once(')')?;
        let name = head.split_once('(')?.1.to_string();
        let mut fields = rest.split_whitespace();
        let state = fields.next()?.chars().next()?;
        let _ppid = fields.next()?;
        let pgid = fields.next()?.parse().ok()?;
        let sid = fields.next()?.parse().ok()?;
        Some(Stat {
            name,
            state,
            pgid,
            sid,
            pid: pid as i32,
        })
    }

    /// Whether this child of drover cannot be a job's leader: it left
    /// drover's session, or is in a process group it does not lead (a job's
    /// group, which drover's own children never join).
    fn is_orphan(&self) -> bool {
        let (_, sid, pgid) = *SELF;
        self.sid != sid || (self.pgid != self.pid && self.pgid != pgid)
    }
}

/// The mark in `pid`'s environment, if it is one of this drover's.
fn mark_of(pid: u32) -> Option<u64> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{MARK_VAR}={}.", SELF.0);
    env.split(|&b| b == 0)
        .find_map(|var| var.strip_prefix(prefix.as_bytes()))
        .and_then(|m| std::str::from_utf8(m).ok()?.parse().ok())
}

/// The children of drover's main thread, where the kernel puts the orphans
/// it hands to a subreaper (its first living thread).
fn main_thread_children() -> Option<Vec<u32>> {
    static FILE: LazyLock<Option<OwnedFd>> = LazyLock::new(|| {
        rustix::fs::open(
            format!("/proc/self/task/{}/children", SELF.0),
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok()
    });
    let fd = FILE.as_ref()?;
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    loop {
        let n = rustix::io::pread(fd, &mut buf[len..], len as u64).ok()?;
        if n == 0 {
            break;
        }
        len += n;
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
    }
    Some(parse_pids(&buf[..len]))
}

/// The children of every thread of drover.
pub(crate) fn all_children() -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return pids;
    };
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read(task.path().join("children")) {
            pids.extend(parse_pids(&text));
        }
    }
    pids
}

fn parse_pids(text: &[u8]) -> Vec<u32> {
    text.split(|b| b.is_ascii_whitespace())
        .filter_map(|p| std::str::from_utf8(p).ok()?.parse().ok())
        .collect()
}

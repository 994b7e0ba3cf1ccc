//! One cgroup (v2) per job, where drover may make them: the stronger form of
//! `escape`'s marks.
//!
//! A job's processes can leave its process group (`setsid`), and can clear
//! their environment (`env -i`), which drops the mark `escape` finds them
//! by. None of them can leave a cgroup without privileges. So, where the
//! cgroup v2 tree is writable where drover runs (as root on most machines,
//! in a delegated systemd scope, in a privileged container), each job
//! starts in a cgroup of its own under `drover-PIDNS-PID/` beside drover's; when
//! the job ends, what is left in it is listed (those outside the job's
//! group are its escaped descendants, named in the report) and killed all
//! at once with `cgroup.kill`, which no fork can race.
//!
//! The cost is kept off the spawn: the child starts in its cgroup (clone3
//! with CLONE_INTO_CGROUP: a child that moved itself by writing
//! `cgroup.procs` cost 24% more time at -j2, the kernel's migration waiting
//! for RCU), and
//! the cgroups are made once and used again (a `mkdir` and `rmdir` per job
//! would double the kernel's part of a spawn). Where any of it is refused
//! (read-only /sys/fs/cgroup, no cgroup2, a kernel before 5.14 without
//! `cgroup.kill`, no clone3 (seccomp), not x86-64, `DROVER_CGROUP=0`),
//! drover goes on with marks alone.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};

/// The cgroups of this drover: `drover-PIDNS-PID/` and the jobs' ones in it.
struct Tree {
    /// `drover-PIDNS-PID/`, for the messages.
    path: PathBuf,
    dir: OwnedFd,
    /// Numbers of the cgroups in it.
    next: AtomicU64,
    pools: Mutex<Pools>,
}

#[derive(Default)]
struct Pools {
    /// Empty and ready for a job.
    free: Vec<u64>,
    /// Given back with processes still in them (dying, or a job left
    /// unreaped): used again once empty.
    draining: Vec<u64>,
    /// Killed once (cgroup.kill): never used again, removed once empty.
    /// (Linux 6.18 here kills every child later started in such a cgroup
    /// with CLONE_INTO_CGROUP: its fork compares the cgroup's count of
    /// kills with that of the parent's cgroup.)
    retired: Vec<u64>,
}

static TREE: OnceLock<Option<Tree>> = OnceLock::new();
/// Set when a child could not move itself into its cgroup: no more.
static REFUSED: AtomicBool = AtomicBool::new(false);

fn tree() -> Option<&'static Tree> {
    TREE.get()?
        .as_ref()
        .filter(|_| !REFUSED.load(Ordering::Relaxed))
}

/// Makes this drover's cgroup where it can (once). Called when run, exec
/// and serve start, before any job.
pub fn start() {
    TREE.get_or_init(|| {
        if std::env::var_os("DROVER_CGROUP").is_some_and(|v| v == "0") {
            return None;
        }
        match make_tree() {
            Ok(tree) => {
                tracing::debug!(cgroup = %tree.path.display(), "one cgroup per job");
                Some(tree)
            }
            Err(e) => {
                tracing::debug!("no cgroup per job: {e}");
                None
            }
        }
    });
}

/// Whether jobs start in cgroups of their own.
pub fn active() -> bool {
    tree().is_some()
}

/// Where drover's own cgroup is in the file system: the cgroup2 mount that
/// holds it and its path in /proc/self/cgroup.
fn own_cgroup() -> io::Result<PathBuf> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup")?;
    let own = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or_else(|| io::Error::other("drover is in no cgroup v2"))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    for line in mountinfo.lines() {
        let Some((fields, rest)) = line.split_once(" - ") else {
            continue;
        };
        if rest.split_whitespace().next() != Some("cgroup2") {
            continue;
        }
        let fields: Vec<&str> = fields.split_whitespace().collect();
        let (Some(root), Some(mount)) = (fields.get(3), fields.get(4)) else {
            continue;
        };
        // The mount shows the tree from `root` down (a cgroup namespace's
        // root shows as "/").
        let Some(below) = own.strip_prefix(root.trim_end_matches('/')) else {
            continue;
        };
        let mut path = PathBuf::from(unescape(mount));
        path.push(below.trim_start_matches('/'));
        return Ok(path);
    }
    Err(io::Error::other("no cgroup2 file system is mounted"))
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Ok(n) = u8::from_str_radix(&text[i + 1..i + 4], 8)
        {
            out.push(n);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn make_tree() -> io::Result<Tree> {
    let own = own_cgroup()?;
    remove_stale(&own);
    let path = own.join(format!("drover-{}-{}", pid_namespace(), std::process::id()));
    match std::fs::create_dir(&path) {
        Ok(()) => {}
        // A drover of the same pid that was killed: nothing of it is alive
        // (its pid is ours), so what is left is empty or a stray's.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            remove_tree(&path)?;
            std::fs::create_dir(&path)?;
        }
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    }
    let made = (|| {
        // cgroup.kill came with Linux 5.14.
        if !path.join("cgroup.kill").exists() {
            return Err(io::Error::other("the kernel has no cgroup.kill"));
        }
        let dir = rustix::fs::open(
            &path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(dir)
    })();
    match made {
        Ok(dir) => Ok(Tree {
            path,
            dir,
            next: AtomicU64::new(1),
            pools: Mutex::default(),
        }),
        Err(e) => {
            let _ = std::fs::remove_dir(&path);
            Err(e)
        }
    }
}

/// This process's PID namespace (the inode of /proc/self/ns/pid): a
/// drover's cgroup is named with it, so that only a drover of the same
/// namespace takes it for a dead one's (a pid means nothing elsewhere).
fn pid_namespace() -> u64 {
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| {
        use std::os::unix::fs::MetadataExt;
        m.ino()
    })
}

/// The cgroups of drovers of this PID namespace that are gone (SIGKILLed,
/// say): what is left in them (descendants of their jobs that outlived
/// them: only direct children die with drover) is killed, and they are
/// removed. Others' are left alone.
fn remove_stale(own: &Path) {
    let Ok(entries) = std::fs::read_dir(own) else {
        return;
    };
    let prefix = format!("drover-{}-", pid_namespace());
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix.as_str()))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let path = entry.path();
        if remove_tree(&path).is_ok() {
            continue;
        }
        if let Err(e) = std::fs::write(path.join("cgroup.kill"), "1") {
            tracing::warn!(cgroup = %path.display(), "cannot kill what a drover that is gone left: {e}");
            continue;
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match remove_tree(&path) {
                Ok(()) => {
                    tracing::info!(
                        cgroup = %path.display(),
                        "killed what the jobs of drover {pid} (gone) had left running"
                    );
                    break;
                }
                Err(e) if Instant::now() > deadline => {
                    tracing::warn!(cgroup = %path.display(), "cannot remove the cgroup of drover {pid} (gone): {e}");
                    break;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

/// Removes a cgroup and the cgroups in it, deepest first.
fn remove_tree(path: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(path)?.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path())?;
        }
    }
    std::fs::remove_dir(path)
}

/// The cgroup of one job's attempt: given back when dropped.
#[derive(Debug)]
pub struct JobCgroup {
    number: u64,
    /// cgroup.kill was written: not to be used again (see `Pools`).
    killed: AtomicBool,
    /// Found empty at its job's end (nothing alive can join it since).
    empty: AtomicBool,
}

/// What a child needs to start in its cgroup: its folder, open
/// (close-on-exec), for clone3's CLONE_INTO_CGROUP.
pub struct Joining {
    pub dir: OwnedFd,
    pub cgroup: JobCgroup,
}

/// A cgroup for a job about to start, with its folder open; `None`
/// without cgroups (or when one cannot be had: the job goes without).
pub fn for_job() -> Option<Joining> {
    let tree = tree()?;
    let number = tree.take();
    let dir = match tree.open_dir(number) {
        Ok(fd) => fd,
        Err(e) => {
            tracing::debug!("cannot open a job's cgroup: {e}");
            tree.put_back(number);
            return None;
        }
    };
    Some(Joining {
        dir,
        cgroup: JobCgroup {
            number,
            killed: AtomicBool::new(false),
            empty: AtomicBool::new(false),
        },
    })
}

/// A child could not be started in its cgroup (errno `errno`): jobs go
/// without cgroups from now on.
pub fn refused(errno: i32) {
    if !REFUSED.swap(true, Ordering::Relaxed) {
        tracing::debug!(
            "jobs cannot join cgroups here ({}): drover finds escaped processes by their mark only",
            io::Error::from_raw_os_error(errno)
        );
    }
}

impl Tree {
    fn pools(&self) -> MutexGuard<'_, Pools> {
        self.pools.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn name(number: u64) -> String {
        number.to_string()
    }

    fn open(&self, number: u64, file: &str, flags: OFlags) -> io::Result<OwnedFd> {
        let path = format!("{}/{file}", Self::name(number));
        Ok(rustix::fs::openat(
            self.dir.as_fd(),
            path.as_str(),
            flags | OFlags::CLOEXEC,
            Mode::empty(),
        )?)
    }

    fn open_dir(&self, number: u64) -> io::Result<OwnedFd> {
        Ok(rustix::fs::openat(
            self.dir.as_fd(),
            Self::name(number).as_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?)
    }

    /// An empty cgroup: from the pool, one drained since, or a new one.
    fn take(&self) -> u64 {
        let mut pools = self.pools();
        if let Some(n) = pools.free.pop() {
            return n;
        }
        if let Some(i) = pools.draining.iter().position(|&n| !self.populated(n)) {
            return pools.draining.swap_remove(i);
        }
        pools.retired.retain(|&n| !self.remove(n));
        drop(pools);
        loop {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            match rustix::fs::mkdirat(self.dir.as_fd(), Self::name(n).as_str(), Mode::from(0o755)) {
                Ok(()) => return n,
                // Left by nothing of ours: skip the number.
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => {
                    // Out of cgroups (cgroup.max.descendants) or memory: the
                    // caller's open fails and the job goes without.
                    tracing::debug!("cannot make a job's cgroup: {e}");
                    return n;
                }
            }
        }
    }

    /// Removes cgroup `number`; false if it cannot be yet (populated).
    fn remove(&self, number: u64) -> bool {
        rustix::fs::unlinkat(
            self.dir.as_fd(),
            Self::name(number).as_str(),
            rustix::fs::AtFlags::REMOVEDIR,
        )
        .is_ok()
    }

    fn put_back(&self, number: u64) {
        let mut pools = self.pools();
        match self.populated(number) {
            false => pools.free.push(number),
            true => pools.draining.push(number),
        }
    }

    /// Whether processes are in the cgroup or below it (cgroup.events).
    fn populated(&self, number: u64) -> bool {
        let Ok(fd) = self.open(number, "cgroup.events", OFlags::RDONLY) else {
            return false;
        };
        let mut buf = [0u8; 128];
        let n = rustix::io::read(&fd, &mut buf).unwrap_or(0);
        !buf[..n].starts_with(b"populated 0")
    }

    fn kill(&self, number: u64) {
        match self.open(number, "cgroup.kill", OFlags::WRONLY) {
            Ok(fd) => {
                if let Err(e) = rustix::io::write(&fd, b"1") {
                    tracing::warn!("cannot kill a job's cgroup: {e}");
                }
            }
            Err(e) => tracing::warn!("cannot kill a job's cgroup: {e}"),
        }
    }
}

impl JobCgroup {
    /// The processes in this cgroup now (not those below it).
    pub fn pids(&self) -> Vec<u32> {
        let Some(tree) = TREE.get().and_then(Option::as_ref) else {
            return Vec::new();
        };
        let Ok(fd) = tree.open(self.number, "cgroup.procs", OFlags::RDONLY) else {
            return Vec::new();
        };
        let mut text = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = rustix::io::read(&fd, &mut buf) {
            text.extend_from_slice(&buf[..n]);
        }
        text.split(|b| b.is_ascii_whitespace())
            .filter_map(|p| std::str::from_utf8(p).ok()?.parse().ok())
            .collect()
    }

    /// Whether any process is in the cgroup or below it.
    pub fn populated(&self) -> bool {
        let populated = TREE
            .get()
            .and_then(Option::as_ref)
            .is_some_and(|tree| tree.populated(self.number));
        self.empty.store(!populated, Ordering::Relaxed);
        populated
    }

    /// Kills every process in the cgroup and below it, at once.
    pub fn kill(&self) {
        self.empty.store(false, Ordering::Relaxed);
        self.killed.store(true, Ordering::Relaxed);
        if let Some(tree) = TREE.get().and_then(Option::as_ref) {
            tree.kill(self.number);
        }
    }
}

impl Drop for JobCgroup {
    fn drop(&mut self) {
        if let Some(tree) = TREE.get().and_then(Option::as_ref) {
            if self.killed.load(Ordering::Relaxed) {
                if !tree.remove(self.number) {
                    tree.pools().retired.push(self.number);
                }
                return;
            }
            match self.empty.load(Ordering::Relaxed) {
                true => tree.pools().free.push(self.number),
                false => tree.put_back(self.number),
            }
        }
    }
}

/// At the end of drover's work: kills what is left in the jobs' cgroups and
/// removes them all, with `drover-PIDNS-PID/`.
pub fn finish() {
    let Some(tree) = TREE.get().and_then(Option::as_ref) else {
        return;
    };
    let draining: Vec<u64> = {
        let mut pools = tree.pools();
        let mut all = std::mem::take(&mut pools.draining);
        all.append(&mut pools.retired);
        all
    };
    for &n in &draining {
        tree.kill(n);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while draining.iter().any(|&n| tree.populated(n)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    if let Err(e) = remove_tree(&tree.path) {
        // Jobs still running (serve's finish comes after its drain, run and
        // exec's after every job): only processes that would not die.
        tracing::debug!(cgroup = %tree.path.display(), "cannot remove drover's cgroups: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape("/sys/fs/cgroup"), "/sys/fs/cgroup");
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/a\\"), "/a\\");
    }
}

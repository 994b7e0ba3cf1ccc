//! Starting a process without copying drover's descriptor table into it.
//!
//! posix_spawn (std's fast path) gives every child a copy of the parent's
//! whole descriptor table, and exec then closes all of it again (it is all
//! close-on-exec). With thousands of jobs running, each holding a pidfd and
//! an output file, that copy-and-close was the largest part of a spawn:
//! perf on 5000 × `sleep 2` put 12% of all CPU in dup_fd, filp_flush and
//! friends. Here the child starts out sharing drover's table (CLONE_FILES)
//! and takes a private copy of only its first few entries (close_range with
//! CLOSE_RANGE_UNSHARE): the descriptors inherited when drover started,
//! and a reserved slot of three where the parent has put the job's stdin,
//! stdout and stderr. Otherwise it is posix_spawn's design: CLONE_VM |
//! CLONE_VFORK, so no page tables are copied and the parent thread waits
//! until the child has exec'd; all signals blocked around the clone.
//!
//! The child runs on a stack of its own in drover's memory and makes only
//! raw system calls until execve.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::AtomicBool;
use std::sync::{LazyLock, Mutex, MutexGuard};

/// Slots of three reserved descriptors (not always adjacent); one per
/// spawn in progress.
const SLOTS: usize = 4;
const CHILD_STACK: usize = 64 * 1024;

/// What the child needs; all of it built by the parent beforehand.
pub struct Request<'a> {
    /// A path (the program already found on PATH).
    pub program: &'a CStr,
    /// Null-terminated.
    pub argv: &'a [*const c_char],
    /// Null-terminated.
    pub envp: *const *const c_char,
    pub cwd: Option<&'a CStr>,
    pub stdio: [BorrowedFd<'a>; 3],
    /// The job's niceness (`drover exec --nice`); None: drover's.
    pub nice: Option<c_int>,
    /// Its cgroup's folder (see `cgroup`): the child starts in it
    /// (clone3's CLONE_INTO_CGROUP, so it is never outside, and no
    /// migration is paid for).
    pub cgroup: Option<BorrowedFd<'a>>,
}

/// A process started.
pub struct Started {
    pub pid: u32,
    /// Why it could not start in its cgroup (an errno; it started outside
    /// it), or 0.
    pub cgroup_errno: c_int,
}

/// Why a spawn failed.
#[derive(Debug)]
pub enum Failure {
    /// This way of spawning does not work here (clone or close_range and
    /// unshare refused, as by some seccomp filters and by valgrind): use
    /// std's posix_spawn instead.
    Unsupported(io::Error),
    /// Before any child existed (clone, reserving descriptors).
    Start(io::Error),
    /// The child could not change to the job's folder.
    Chdir(io::Error),
    /// execve failed.
    Exec(io::Error),
}

struct Slot {
    /// Where the job's stdin, stdout and stderr are put for the child.
    fds: [RawFd; 3],
    stack: Box<[u8]>,
}

struct Slots {
    slots: Vec<Mutex<Slot>>,
    /// The child keeps descriptors below this one.
    keep_below: RawFd,
    /// What a slot holds between spawns.
    null: RawFd,
}

static SLOTS_: LazyLock<io::Result<Slots>> = LazyLock::new(reserve);

/// Reserves the slots above every descriptor open now, so that those
/// drover inherited are inherited by its jobs too (as with std's spawn) and
/// the child's private table stays small. Where that is out of reach (an
/// inherited descriptor above the open-files limit), the lowest free ones:
/// jobs then do not inherit descriptors above the slots.
fn reserve() -> io::Result<Slots> {
    let highest = std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<RawFd>().ok())
                .max()
                .unwrap_or(2)
        })
        .unwrap_or(2);
    let null = into_raw(
        std::fs::File::options()
            .read(true)
            .write(true)
            .open("/dev/null")?,
    );
    // The lowest free descriptor from `min` up (never one in use).
    let dup_from = |min: RawFd| {
        // SAFETY: fcntl F_DUPFD_CLOEXEC on a descriptor we own.
        let fd = unsafe { libc::fcntl(null, libc::F_DUPFD_CLOEXEC, min) };
        if fd < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(fd)
        }
    };
    let mut slots = Vec::with_capacity(SLOTS);
    let mut top = null;
    for _ in 0..SLOTS {
        let mut fds = [0; 3];
        for fd in &mut fds {
            *fd = dup_from(highest + 1).or_else(|_| dup_from(3))?;
            top = top.max(*fd);
        }
        slots.push(Mutex::new(Slot {
            fds,
            stack: vec![0u8; CHILD_STACK].into_boxed_slice(),
        }));
    }
    Ok(Slots {
        slots,
        keep_below: top + 1,
        null,
    })
}

fn into_raw(file: std::fs::File) -> RawFd {
    use std::os::fd::IntoRawFd;
    file.into_raw_fd()
}

/// Set when this way of spawning failed for good, or by
/// `DROVER_SPAWN=posix`: every spawn then goes through std's posix_spawn.
static DISABLED: AtomicBool = AtomicBool::new(false);

/// Stops using this way of spawning (it failed with `why`).
pub fn disable(why: &io::Error) {
    if !DISABLED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::debug!("spawning through posix_spawn from now on: {why}");
    }
}

/// Reserves the descriptors now, while drover has few open (call at start).
/// `DROVER_SPAWN=posix` chooses std's posix_spawn instead (to run drover
/// under valgrind, or to compare).
pub fn init() {
    if std::env::var_os("DROVER_SPAWN").is_some_and(|v| v == "posix") {
        DISABLED.store(true, std::sync::atomic::Ordering::Relaxed);
        return;
    }
    if let Err(e) = &*SLOTS_ {
        tracing::debug!("cannot reserve spawn slots ({e}); spawning will fail");
    }
}

fn take_slot(slots: &Slots) -> MutexGuard<'_, Slot> {
    for s in &slots.slots {
        if let Ok(guard) = s.try_lock() {
            return guard;
        }
    }
    // All busy (more spawning threads than slots): wait for the first.
    slots.slots[0].lock().unwrap_or_else(|p| p.into_inner())
}

/// Shared between the parent and the child (same memory, CLONE_VM).
#[repr(C)]
struct ChildArgs {
    program: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    cwd: *const c_char,
    fds: [c_int; 3],
    keep_below: c_int,
    /// Whether to set the niceness, and to what.
    set_nice: bool,
    nice: c_int,
    /// drover's pid: the child dies with drover (PR_SET_PDEATHSIG).
    parent: libc::pid_t,
    /// Signals (as bits 1 << n) ignored when drover started.
    ignored_at_start: u64,
    /// Written by the child on failure: which step, and errno.
    failed_step: c_int,
    errno: c_int,
}

const STEP_FDS: c_int = 1;
const STEP_CHDIR: c_int = 2;
const STEP_EXEC: c_int = 3;
const STEP_PGID: c_int = 4;

/// Starts `req` in a process group of its own; returns its pid.
pub fn spawn(req: &Request) -> Result<Started, Failure> {
    if DISABLED.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(Failure::Unsupported(io::Error::other("disabled")));
    }
    let slots = SLOTS_
        .as_ref()
        .map_err(|e| Failure::Unsupported(io::Error::new(e.kind(), e.to_string())))?;
    let mut slot = take_slot(slots);
    let fds = slot.fds;
    for (fd, to) in req.stdio.iter().zip(fds) {
        // SAFETY: dup3 of a live descriptor onto our reserved slot.
        if unsafe { libc::dup3(fd.as_raw_fd(), to, libc::O_CLOEXEC) } < 0 {
            let e = io::Error::last_os_error();
            release(slots, fds);
            return Err(Failure::Start(e));
        }
    }
    let mut args = ChildArgs {
        program: req.program.as_ptr(),
        argv: req.argv.as_ptr(),
        envp: req.envp,
        cwd: req.cwd.map_or(std::ptr::null(), CStr::as_ptr),
        fds,
        keep_below: slots.keep_below,
        set_nice: req.nice.is_some(),
        nice: req.nice.unwrap_or(0),
        // SAFETY: a plain system call.
        parent: unsafe { libc::getpid() },
        ignored_at_start: IGNORED_AT_START.load(std::sync::atomic::Ordering::Relaxed),
        failed_step: 0,
        errno: 0,
    };
    let (stack_base, stack_top) = {
        let stack = &mut slot.stack;
        let top = stack.as_mut_ptr() as usize + stack.len();
        (stack.as_mut_ptr(), (top & !15) as *mut c_void)
    };
    let mut cgroup_errno = 0;
    // SAFETY: all signals blocked on this thread for the clone, so no
    // handler runs in the child before it has reset them; the child only
    // makes system calls on its own stack and writes into `args`, which
    // outlives it (CLONE_VFORK: this thread waits until it exec'd or died).
    let pid = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let mut pid = -1;
        if let Some(cgroup) = req.cgroup {
            let size = stack_top as usize - stack_base as usize;
            pid = clone_into_cgroup(
                cgroup.as_raw_fd(),
                stack_base,
                size,
                child,
                (&raw mut args).cast::<c_void>(),
            );
            if pid < 0 {
                // Refused (no clone3: before Linux 5.7, or a seccomp
                // filter; or the cgroup): started outside it, as before.
                cgroup_errno = *libc::__errno_location();
            }
        }
        if pid < 0 {
            pid = libc::clone(
                child,
                stack_top,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_FILES | libc::SIGCHLD,
                (&raw mut args).cast::<c_void>(),
            );
        }
        let clone_error = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if pid < 0 {
            release(slots, fds);
            let refused = matches!(
                clone_error.raw_os_error(),
                Some(libc::EINVAL | libc::EPERM | libc::ENOSYS)
            );
            return Err(match refused {
                true => Failure::Unsupported(clone_error),
                false => Failure::Start(clone_error),
            });
        }
        pid
    };
    release(slots, fds);
    drop(slot);
    // SAFETY: the child has exec'd or exited; its writes are visible.
    let (step, errno) = unsafe {
        (
            std::ptr::read_volatile(&raw const args.failed_step),
            std::ptr::read_volatile(&raw const args.errno),
        )
    };
    if step == 0 {
        return Ok(Started {
            pid: pid as u32,
            cgroup_errno,
        });
    }
    // The child has exited: reap it.
    let mut status = 0;
    // SAFETY: waitpid on our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let error = io::Error::from_raw_os_error(errno);
    Err(match step {
        STEP_CHDIR => Failure::Chdir(error),
        STEP_EXEC => Failure::Exec(error),
        STEP_FDS => Failure::Unsupported(error),
        _ => Failure::Start(error),
    })
}

/// SIGINT and SIGTERM, where ignored when drover started (bits 1 << n).
static IGNORED_AT_START: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Notes which of SIGINT and SIGTERM drover inherited ignored, for its jobs
/// to inherit them so too. Called first thing, before drover handles them.
pub fn note_ignored_signals() {
    let mut bits = 0u64;
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: reads the current action only.
        let ignored = unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction == libc::SIG_IGN
        };
        if ignored {
            bits |= 1 << sig;
        }
    }
    IGNORED_AT_START.store(bits, std::sync::atomic::Ordering::Relaxed);
}

/// The signals ignored at start, as for `note_ignored_signals`.
pub fn ignored_at_start() -> u64 {
    IGNORED_AT_START.load(std::sync::atomic::Ordering::Relaxed)
}

/// clone3's arguments (linux/sched.h, struct clone_args).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Set once clone3 has been refused as such: not tried again.
static NO_CLONE3: AtomicBool = AtomicBool::new(false);

/// As `libc::clone(f, stack, CLONE_VM | CLONE_VFORK | CLONE_FILES |
/// SIGCHLD, arg)`, with the child started in the cgroup whose folder is
/// `cgroup` (clone3, CLONE_INTO_CGROUP: no migration afterwards, which
/// costs the kernel an RCU grace period on a busy machine: measured +24%
/// on 2000 × `true` at -j2 when the child wrote its own cgroup.procs). The
/// pid, or -1 with errno set. glibc has no clone3 wrapper, hence the few
/// instructions: the child returns from the system call on its new stack
/// and calls `f(arg)`, which never returns (it execs or exits).
///
/// # Safety
/// As `libc::clone`: all signals blocked, `stack` owned and unused until
/// the child has exec'd or exited (CLONE_VFORK), `f` only makes raw
/// system calls.
#[cfg(target_arch = "x86_64")]
unsafe fn clone_into_cgroup(
    cgroup: RawFd,
    stack: *mut u8,
    size: usize,
    f: extern "C" fn(*mut c_void) -> c_int,
    arg: *mut c_void,
) -> libc::pid_t {
    use std::sync::atomic::Ordering;
    if NO_CLONE3.load(Ordering::Relaxed) {
        // SAFETY: errno is this thread's.
        unsafe { *libc::__errno_location() = libc::ENOSYS };
        return -1;
    }
    let args = CloneArgs {
        flags: (libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_FILES) as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        stack: stack as u64,
        stack_size: size as u64,
        cgroup: cgroup as u64,
        ..CloneArgs::default()
    };
    let ret: i64;
    // SAFETY: see above. The parent's registers but rax, rcx and r11 are
    // kept by `syscall`; the child starts with the parent's registers on
    // the new stack (16-byte aligned: the call leaves it as the ABI wants).
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "mov edi, eax",
            "mov eax, 60",
            "syscall",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") &raw const args,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") arg,
            in("r13") f,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    if ret < 0 {
        let errno = (-ret) as c_int;
        if matches!(errno, libc::ENOSYS | libc::E2BIG) {
            NO_CLONE3.store(true, Ordering::Relaxed);
        }
        // SAFETY: errno is this thread's.
        unsafe { *libc::__errno_location() = errno };
        return -1;
    }
    ret as libc::pid_t
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn clone_into_cgroup(
    _cgroup: RawFd,
    _stack: *mut u8,
    _size: usize,
    _f: extern "C" fn(*mut c_void) -> c_int,
    _arg: *mut c_void,
) -> libc::pid_t {
    // SAFETY: errno is this thread's.
    unsafe { *libc::__errno_location() = libc::ENOSYS };
    -1
}

/// Points a slot back at /dev/null, dropping drover's extra references to
/// the job's pipes (or a reader would never see their end).
fn release(slots: &Slots, fds: [RawFd; 3]) {
    for fd in fds {
        // SAFETY: dup3 onto our own reserved descriptors.
        unsafe { libc::dup3(slots.null, fd, libc::O_CLOEXEC) };
    }
}

/// Records which step failed and why, and ends the child.
unsafe fn fail(args: &mut ChildArgs, step: c_int) -> ! {
    // SAFETY: the caller's `args` is live; errno is this thread's.
    unsafe {
        std::ptr::write_volatile(&raw mut args.errno, *libc::__errno_location());
        std::ptr::write_volatile(&raw mut args.failed_step, step);
        libc::_exit(127)
    }
}

/// The child, from clone to execve: raw system calls only.
extern "C" fn child(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the parent's ChildArgs, alive until we exec or exit.
    unsafe {
        let args = &mut *arg.cast::<ChildArgs>();
        // A private descriptor table with only the entries below
        // keep_below; older kernels (before 5.9) copy all of it.
        let r = libc::syscall(
            libc::SYS_close_range,
            args.keep_below as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_UNSHARE,
        );
        if r != 0 && libc::unshare(libc::CLONE_FILES) != 0 {
            fail(args, STEP_FDS);
        }
        for (k, &fd) in args.fds.iter().enumerate() {
            if libc::dup2(fd, k as c_int) < 0 {
                fail(args, STEP_FDS);
            }
        }
        if libc::setpgid(0, 0) != 0 {
            fail(args, STEP_PGID);
        }
        // Killed if drover dies, even by SIGKILL: no job outlives it. (Sent
        // when the thread that spawned it ends: a runtime worker, which
        // lives as long as drover's runtime.) Had drover died already,
        // the job would be another's child now.
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0
            || libc::getppid() != args.parent
        {
            libc::_exit(127);
        }
        if !args.cwd.is_null() && libc::chdir(args.cwd) != 0 {
            fail(args, STEP_CHDIR);
        }
        // drover's own handlers must not run here; exec would reset them
        // anyway. SIGPIPE, which Rust ignores, is the default again in
        // jobs (as std does). Then an empty mask, as std gives.
        // SIGINT and SIGTERM ignored when drover started (`nohup`, a
        // script's background job) stay ignored, as for a direct child.
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        let mut ign: libc::sigaction = std::mem::zeroed();
        ign.sa_sigaction = libc::SIG_IGN;
        let ignored = args.ignored_at_start;
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGPIPE, libc::SIGCHLD] {
            let action = match ignored & (1 << sig) != 0 {
                true => &ign,
                false => &dfl,
            };
            libc::sigaction(sig, action, std::ptr::null_mut());
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        // As GNU parallel: a niceness that cannot be set (below drover's,
        // unprivileged) leaves the job at drover's. Set last: drover's
        // thread waits for this child until its exec, and a child niced
        // sooner would keep it waiting behind drover's other threads.
        if args.set_nice {
            libc::setpriority(libc::PRIO_PROCESS, 0, args.nice);
        }
        libc::execve(args.program, args.argv, args.envp);
        fail(args, STEP_EXEC)
    }
}

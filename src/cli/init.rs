//! drover as PID 1 (a container's entry point): a tiny init, as tini.
//!
//! PID 1 inherits every orphan of its namespace and must reap them, and
//! the kernel gives it no default signal handlers. A program that reaps
//! with `waitpid(-1)` beside its own children steals their exit statuses;
//! drover's jobs are waited for one by one, by pidfd. So drover, finding
//! itself PID 1 (or given `--init`), does not run as the init itself: before
//! any thread exists it starts itself again as its only child (the real
//! drover, whose jobs are its children) and becomes a loop that forwards
//! signals to that child and reaps whatever else dies in the namespace. It
//! exits as the child did: its exit code, or 128 + the signal that killed
//! it. `--no-init` (or `DROVER_NO_INIT=1`) runs drover as PID 1 itself.

use std::ffi::CString;

/// Set in the child's environment: it is the real drover, not the init.
const CHILD_MARK: &str = "DROVER_INIT_CHILD";

/// The signals the init passes on to drover.
const FORWARDED: [libc::c_int; 6] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// Whether to become the init: PID 1 or `--init`, unless `--no-init`, and
/// not already the init's child.
pub fn wanted(args: &[std::ffi::OsString]) -> bool {
    // drover's own options, before the command's name.
    let flag = |f: &str| {
        args.iter()
            .skip(1)
            .take_while(|a| a.to_string_lossy().starts_with('-'))
            .any(|a| a == f)
    };
    if std::env::var_os(CHILD_MARK).is_some()
        || flag("--no-init")
        || std::env::var_os("DROVER_NO_INIT").is_some_and(|v| v == "1")
    {
        return false;
    }
    flag("--init") || std::process::id() == 1
}

/// Becomes the init: starts drover again as its child and supervises it;
/// never returns. Must run before any other thread starts.
pub fn run(args: &[std::ffi::OsString]) -> ! {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: single-threaded here (called first in main); the calls below
    // are plain system calls on values this function owns.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_SETMASK, &all, &mut old);

        let exe = CString::new("/proc/self/exe").expect("no NUL");
        let argv: Vec<CString> = args
            .iter()
            .enumerate()
            // The `--init` among drover's own options, not a job's word.
            .filter(|(i, a)| {
                !(*a == "--init"
                    && args[1..*i]
                        .iter()
                        .all(|b| b.to_string_lossy().starts_with('-')))
            })
            .map(|(_, a)| a)
            .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
            .collect();
        let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mark = CString::new(format!("{CHILD_MARK}=1")).expect("no NUL");
        let mut envp: Vec<CString> = std::env::vars_os()
            .filter(|(k, _)| k != CHILD_MARK)
            .map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).unwrap_or_default()
            })
            .collect();
        envp.push(mark);
        let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
        envp_ptrs.push(std::ptr::null());

        // Outside a PID namespace (`--init` not as PID 1): orphans come to
        // the init all the same.
        if libc::getpid() != 1 {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        }
        let child = libc::fork();
        if child < 0 {
            eprintln!(
                "drover: as init, cannot start drover: {}",
                std::io::Error::last_os_error()
            );
            libc::_exit(1);
        }
        if child == 0 {
            // The real drover: its own process group (a terminal's signals
            // go to it through the init), signals as they were.
            // On a terminal (`docker run -it`) it takes the terminal, as
            // tini does; SIGTTOU is still blocked here.
            libc::setpgid(0, 0);
            if libc::isatty(0) == 1 {
                libc::tcsetpgrp(0, libc::getpid());
            }
            libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            libc::execve(exe.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr());
            eprintln!(
                "drover: as init, cannot run drover again: {}",
                std::io::Error::last_os_error()
            );
            libc::_exit(127);
        }
        supervise(child, &all)
    }
}

/// Forwards signals to `child` and reaps every child that ends; exits as
/// `child` did.
unsafe fn supervise(child: libc::pid_t, all: &libc::sigset_t) -> ! {
    let mut exit_code: Option<i32> = None;
    loop {
        // Reap all that ended; the first wait also catches a child that
        // ended before the first signal was waited for.
        loop {
            let mut status = 0;
            // SAFETY: a plain system call.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == child {
                exit_code = Some(if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else if libc::WIFSIGNALED(status) {
                    128 + libc::WTERMSIG(status)
                } else {
                    1
                });
            }
        }
        if let Some(code) = exit_code {
            // The namespace ends with PID 1: what is left is killed by the
            // kernel; reaping it first is not needed.
            // SAFETY: exits the process.
            unsafe { libc::_exit(code) };
        }
        let mut sig: libc::c_int = 0;
        // SAFETY: `all` is a valid set; sigwait fills `sig`.
        if unsafe { libc::sigwait(all, &mut sig) } != 0 {
            continue;
        }
        if FORWARDED.contains(&sig) || sig == libc::SIGTSTP || sig == libc::SIGCONT {
            // SAFETY: a plain system call.
            unsafe { libc::kill(child, sig) };
        }
    }
}

//! Unix process groups and exit notification: the one place that signals
//! processes.
//!
//! Every job runs in its own process group (pgid = the job's pid). drover
//! learns that the leader exited through a pidfd *without reaping it*: the
//! zombie leader keeps the pgid from being reused, so signalling the group
//! afterwards can never hit an unrelated process. The leader is reaped only
//! once the group has been dealt with.

use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, Signal, WaitId, WaitIdOptions};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio_util::sync::CancellationToken;

/// A job's process group, as a kill target.
#[derive(Debug, Clone, Copy)]
pub struct ProcessGroup {
    pgid: Pid,
}

impl ProcessGroup {
    /// The group led by `pid` (spawned with `process_group(0)`).
    pub fn led_by(pid: u32) -> Option<Self> {
        Pid::from_raw(pid as i32).map(|pgid| Self { pgid })
    }

    /// Sends `signal` to every process in the group. A group that is already
    /// gone is not an error.
    pub fn signal(&self, signal: Signal) {
        match rustix::process::kill_process_group(self.pgid, signal) {
            Ok(()) | Err(Errno::SRCH) => {}
            Err(e) => tracing::warn!(
                pgid = self.pgid.as_raw_nonzero().get(),
                "cannot signal process group: {e}"
            ),
        }
    }
}

/// The groups of drover's running children (every job's leader is one),
/// for Ctrl-Z. Children already stopped (held back by drover while their
/// output waits) are left out: they stay stopped, and are not continued.
pub fn running_children() -> Vec<ProcessGroup> {
    super::escape::all_children()
        .into_iter()
        .filter_map(super::escape::Stat::read)
        // A zombie leader's group may still have members (its leak window):
        // they are stopped too. Every job leads its group.
        .filter(|s| matches!(s.state, 'R' | 'S' | 'D' | 'Z') && s.pgid == s.pid)
        .filter_map(|s| Pid::from_raw(s.pid).map(|pgid| ProcessGroup { pgid }))
        .collect()
}

/// Tells when a process has exited, leaving it unreaped.
pub struct ExitWatch {
    pid: Pid,
    pidfd: Option<AsyncFd<OwnedFd>>,
    /// Without a pidfd: when to look again.
    next_look: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl ExitWatch {
    /// Watches `pid`, a child of drover. Without a pidfd (old kernels, or no
    /// descriptor left) it polls `waitid(WNOWAIT)` instead.
    pub fn new(pid: u32) -> Self {
        // The caller passes the pid of a child it spawned: never 0.
        let pid = Pid::from_raw(pid as i32).expect("child pid is non-zero");
        let pidfd = rustix::process::pidfd_open(pid, PidfdFlags::NONBLOCK)
            .map_err(io::Error::from)
            .and_then(|fd| {
                // SAFETY: an `OwnedFd` is open and owned; it moves into the
                // AsyncFd and stays the same descriptor until dropped with it.
                unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
                    .map_err(|e| e.into_parts().1)
            })
            .map_err(|e| tracing::debug!("no pidfd for {pid:?}, polling instead: {e}"))
            .ok();
        Self {
            pid,
            pidfd,
            next_look: None,
        }
    }

    /// Ready once the process has exited (it stays a zombie until reaped).
    /// Polled from one task only: a pidfd's readiness has one waker slot.
    pub fn poll_exited(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &self.pidfd {
            // A pidfd stays readable once its process has exited, so the
            // readiness is deliberately never cleared.
            Some(fd) => fd.poll_read_ready(cx).map(|_| ()),
            None => loop {
                let opts = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT | WaitIdOptions::NOHANG;
                match rustix::process::waitid(WaitId::Pid(self.pid), opts) {
                    Ok(Some(_)) | Err(_) => return Poll::Ready(()),
                    Ok(None) => {}
                }
                let look = self
                    .next_look
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::from_millis(5))));
                ready!(look.as_mut().poll(cx));
                self.next_look = None;
            },
        }
    }

    /// Whether the process has exited, now (whatever a pidfd has said yet).
    pub fn has_exited(&self) -> bool {
        let opts = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT | WaitIdOptions::NOHANG;
        matches!(
            rustix::process::waitid(WaitId::Pid(self.pid), opts),
            Ok(Some(_))
        )
    }

    /// Resolves once the process has exited.
    pub async fn exited(&mut self) {
        std::future::poll_fn(|cx| self.poll_exited(cx)).await
    }
}

/// Stops a group: SIGTERM, up to `kill_grace` for the leader to exit (cut
/// short by `kill_now`), then SIGKILL. Returns once the leader has exited.
pub async fn terminate(
    group: ProcessGroup,
    watch: &mut ExitWatch,
    kill_grace: Duration,
    kill_now: &CancellationToken,
) {
    if !kill_now.is_cancelled() {
        group.signal(Signal::TERM);
        // A stopped job (held back while its output waits, or by hand)
        // takes SIGTERM only once continued, as systemd does.
        group.signal(Signal::CONT);
        tokio::select! {
            _ = watch.exited() => return,
            _ = tokio::time::sleep(kill_grace) => {}
            _ = kill_now.cancelled() => {}
        }
    }
    group.signal(Signal::KILL);
    watch.exited().await;
}

pub use rustix::process::Signal as Sig;

/// A signal's conventional name, e.g. `SIGTERM`.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}

//! Ctrl-Z: drover and its jobs stop together and go on together, and the
//! time they spent stopped does not count against a job's `timeout`.
//!
//! Jobs run in process groups of their own, so the terminal's SIGTSTP
//! reaches drover alone: drover passes it on to every job's group, as a
//! shell's job control would, then stops itself. When it is continued
//! (`fg`), it continues the groups it stopped and adds the time it was
//! stopped to [`paused`], which every job's [`Deadline`] adds to its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::time::Sleep;

use super::group::{self, Sig};

/// Nanoseconds drover has spent stopped by Ctrl-Z, in all.
static PAUSED_NS: AtomicU64 = AtomicU64::new(0);
/// While a Ctrl-Z is being handled: a deadline that expires meanwhile (on
/// another thread, as drover stops) waits to see how long the stop was.
static PAUSING: AtomicBool = AtomicBool::new(false);

/// The time drover has spent stopped by Ctrl-Z so far.
pub fn paused() -> Duration {
    Duration::from_nanos(PAUSED_NS.load(SeqCst))
}

/// Stops every job's group (SIGTSTP), then drover itself; once continued,
/// continues the groups it stopped and counts the time stopped.
pub fn ctrl_z() {
    PAUSING.store(true, SeqCst);
    let stopped_at = Instant::now();
    let groups = group::running_children();
    for g in &groups {
        g.signal(Sig::TSTP);
    }
    // Returns once drover has been continued.
    if let Err(e) = rustix::process::kill_process(rustix::process::getpid(), Sig::STOP) {
        tracing::warn!("cannot stop drover on SIGTSTP: {e}");
    }
    let stopped = u64::try_from(stopped_at.elapsed().as_nanos()).unwrap_or(u64::MAX);
    PAUSED_NS.fetch_add(stopped, SeqCst);
    PAUSING.store(false, SeqCst);
    for g in &groups {
        g.signal(Sig::CONT);
    }
}

/// A job's deadline (its `timeout` from its start), moved on by the time
/// drover spends stopped by Ctrl-Z after it is set.
pub struct Deadline {
    sleep: Pin<Box<Sleep>>,
    paused_seen: Duration,
}

impl Deadline {
    pub fn at(when: Instant) -> Self {
        Self {
            sleep: Box::pin(tokio::time::sleep_until(tokio::time::Instant::from_std(
                when,
            ))),
            paused_seen: paused(),
        }
    }

    pub fn after(timeout: Duration) -> Self {
        Self::at(Instant::now() + timeout)
    }

    /// Ready once the deadline has passed.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            ready!(self.sleep.as_mut().poll(cx));
            if PAUSING.load(SeqCst) {
                // Its time will be added once drover goes on: look again.
                let later = self.sleep.deadline() + Duration::from_millis(20);
                self.sleep.as_mut().reset(later);
                continue;
            }
            let now = paused();
            let stopped = now.saturating_sub(self.paused_seen);
            if stopped.is_zero() {
                return Poll::Ready(());
            }
            self.paused_seen = now;
            let later = self.sleep.deadline() + stopped;
            self.sleep.as_mut().reset(later);
        }
    }

    /// Resolves once the deadline has passed.
    pub async fn expired(&mut self) {
        std::future::poll_fn(|cx| self.poll_expired(cx)).await
    }
}

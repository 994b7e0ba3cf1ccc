//! File descriptors as a budget: drover raises its open-files limit at start
//! and holds a job back until the descriptors it needs are free, rather than
//! failing it with EMFILE.

use std::sync::Arc;

use rustix::process::{Resource, Rlimit};
use tokio::sync::Semaphore;

use crate::plan::{JobSpec, OutputSpec, Program, StdinSpec};

/// Descriptors kept for drover itself (runtime, epoll, report file, ...).
pub const RESERVED: u64 = 64;

/// Raises the soft open-files limit to the hard limit; returns the soft
/// limit in force afterwards.
pub fn raise_nofile_limit() -> u64 {
    let current = rustix::process::getrlimit(Resource::Nofile);
    let soft = current.current.unwrap_or(u64::MAX);
    let target = current.maximum.unwrap_or(1 << 20);
    if soft < target {
        let new = Rlimit {
            current: Some(target),
            maximum: current.maximum,
        };
        match rustix::process::setrlimit(Resource::Nofile, new) {
            Ok(()) => return target,
            Err(e) => tracing::debug!("cannot raise the open-files limit to {target}: {e}"),
        }
    }
    soft
}

/// Grows this process's descriptor table to hold `fds` descriptors (at most
/// `limit`, the open-files limit), while drover is still one thread: call it
/// before the runtime or any other thread starts.
///
/// The kernel grows the table by doubling it, and in a process of several
/// threads every growth waits for an RCU grace period (`synchronize_rcu` in
/// `expand_fdtable`) with the descriptor table locked: measured on this
/// 2-CPU VM, both runtime workers stopped for 12.7 ms at the 100th of 200
/// jobs spawned at once (`drover run`, pipe2 and pidfd_open in
/// uninterruptible sleep). With one thread there is no wait. The table never
/// shrinks; it costs the kernel 8 bytes a slot, none of them in drover's RSS.
pub fn presize_fd_table(fds: u64, limit: u64) {
    // The kernel's table starts at 64 slots (BITS_PER_LONG).
    let want = fds.min(limit.saturating_sub(1));
    if want <= 64 {
        return;
    }
    let grown = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).and_then(|fd| {
        // A duplicate at `want - 1` or above makes the table hold `want`.
        rustix::io::fcntl_dupfd_cloexec(&fd, (want - 1) as i32)
    });
    if let Err(e) = grown {
        tracing::debug!("cannot grow the descriptor table to {want}: {e}");
    }
}

/// The descriptors a job needs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JobCost {
    /// Held while it runs.
    pub held: usize,
    /// Needed only while it is being spawned (the child's ends of its pipes,
    /// /dev/null, files).
    pub transient: usize,
    /// Of `transient`, the child's ends of captured pipes, which drover may
    /// choose to hold until the job exits.
    pub writers: usize,
}

impl std::ops::Add for JobCost {
    type Output = JobCost;

    fn add(self, other: JobCost) -> JobCost {
        JobCost {
            held: self.held + other.held,
            transient: self.transient + other.transient,
            writers: self.writers + other.writers,
        }
    }
}

/// The descriptors `spec` needs.
pub fn job_cost(spec: &JobSpec) -> JobCost {
    // A pipeline's own processes: 4 descriptors a worker, about.
    if let Program::Pipeline(p) = &spec.program {
        let held = p.stages.iter().map(|s| 4 * s.workers).sum::<usize>() + 4;
        return JobCost {
            held,
            ..JobCost::default()
        };
    }
    let mut cost = JobCost {
        held: 1, // the pidfd
        // And its cgroup's cgroup.procs while it starts (see `cgroup`).
        transient: 2 + 1,
        writers: 0,
    };
    if matches!(spec.stdin, StdinSpec::Bytes(_) | StdinSpec::Handed(_)) {
        cost.held += 1;
    }
    for out in [&spec.stdout, &spec.stderr] {
        if matches!(out, OutputSpec::Capture | OutputSpec::Spooled) {
            cost.held += 1;
        }
        if matches!(out, OutputSpec::Capture) {
            cost.writers += 1;
        }
        cost.transient += 1;
    }
    if matches!(spec.stdout, OutputSpec::Pipe(_)) {
        cost.transient += 2;
    }
    cost
}

/// The descriptors drover may spend on jobs: one budget for the process,
/// made once from the open-files limit. The engine holds a job back until
/// its descriptors are free; a front end that feeds the engine (`drover
/// exec`) asks it how many jobs can run at once, and both size the
/// descriptor table from it before any thread starts.
#[derive(Debug, Clone)]
pub struct FdBudget {
    pub semaphore: Arc<Semaphore>,
    pub total: usize,
    /// The open-files limit it was made from.
    limit: u64,
}

impl FdBudget {
    /// The budget of this process: raises the open-files limit first.
    pub fn of_process() -> Self {
        Self::new(raise_nofile_limit())
    }

    /// The budget under an open-files limit of `limit`.
    pub fn new(limit: u64) -> Self {
        let total = limit
            .saturating_sub(RESERVED)
            .clamp(16, Semaphore::MAX_PERMITS as u64) as usize;
        Self {
            semaphore: Arc::new(Semaphore::new(total)),
            total,
            limit,
        }
    }

    /// How many jobs costing `cost` each can run at once, with room left
    /// to spawn one more as one ends (at least one).
    pub fn jobs_at_once(&self, cost: JobCost) -> usize {
        (self.total.saturating_sub(cost.transient) / cost.held.max(1)).max(1)
    }

    /// Grows the descriptor table to hold `jobs` descriptors of jobs and
    /// drover's own ([`presize_fd_table`]: before any other thread starts).
    pub fn presize(&self, jobs: u64) {
        presize_fd_table(jobs.saturating_add(RESERVED), self.limit);
    }
}

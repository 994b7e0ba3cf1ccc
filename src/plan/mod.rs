//! The validated plan: every job expanded, typed and resolved, ready to run.
//!
//! Nothing here can be wrong: durations are `Duration`s, dependencies are
//! indices, and the jobs joined by pipes are grouped into the units that the
//! scheduler starts together.

pub mod graph;
pub mod items;
pub mod matrix;
pub mod pack;
pub mod pipeline;
pub mod results;
pub mod template;

use std::fmt;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A job's name after matrix expansion: `[A-Za-z0-9_.:-]+`, unique in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobName(String);

impl JobName {
    pub fn parse(name: &str) -> Result<Self, String> {
        if name.is_empty() {
            return Err("a job name cannot be empty".into());
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')))
        {
            return Err(format!(
                "job name `{name}` has the character {bad:?}; names may use only letters, digits, `_`, `.`, `:` and `-`"
            ));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// What to execute.
#[derive(Debug, Clone)]
pub enum Program {
    /// argv, no shell.
    Argv(Vec<String>),
    /// A shell string run as `/bin/sh -c`.
    Shell(String),
    /// Not a process: items flowing through stages of processes.
    Pipeline(Arc<pipeline::PipelineSpec>),
}

impl Program {
    pub fn argv(&self) -> Vec<&str> {
        match self {
            Program::Argv(argv) => argv.iter().map(String::as_str).collect(),
            Program::Shell(script) => vec!["/bin/sh", "-c", script],
            Program::Pipeline(_) => Vec::new(),
        }
    }
}

/// Where a job's stdin comes from.
#[derive(Debug, Clone)]
pub enum StdinSpec {
    /// `/dev/null`.
    Null,
    /// These bytes, written by drover.
    Bytes(Arc<[u8]>),
    /// A file, handed to the child as its stdin.
    File(PathBuf),
    /// Another job's stdout, streamed live (index of that job).
    From(usize),
    /// A descriptor drover hands to the job: the read end of a pipe it fills
    /// while the job runs, or a memory file holding a whole block
    /// (`drover exec --pipe`).
    Handed(TakeFd),
}

/// A descriptor handed to one child. The spawn duplicates it; once the child
/// has it, drover's copy is closed, so that a child that stops reading its
/// stdin makes drover's writes fail (EPIPE) instead of block.
#[derive(Debug, Clone)]
pub struct TakeFd(Arc<std::sync::Mutex<Option<std::os::fd::OwnedFd>>>);

impl TakeFd {
    pub fn new(fd: std::os::fd::OwnedFd) -> Self {
        Self(Arc::new(std::sync::Mutex::new(Some(fd))))
    }

    /// A duplicate for a child; `None` once closed.
    pub fn dup(&self) -> Option<std::io::Result<std::os::fd::OwnedFd>> {
        let fd = self.0.lock().unwrap_or_else(|p| p.into_inner());
        fd.as_ref().map(|fd| fd.try_clone())
    }

    /// Closes drover's copy.
    pub fn close(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// Where a job's stdout or stderr goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputSpec {
    /// Captured for the report, at most `capture_limit` (the tail is kept).
    Capture,
    Null,
    /// drover's own stdout/stderr.
    Inherit,
    File {
        path: PathBuf,
        append: bool,
    },
    /// stdout only: streamed into another job's stdin (index of that job).
    Pipe(usize),
    /// Into an anonymous temporary file, copied out in the kernel when the
    /// job ends (grouped output of `drover exec`).
    Spooled,
}

/// One job, fully resolved.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub name: JobName,
    pub program: Program,
    pub stdin: StdinSpec,
    pub stdout: OutputSpec,
    pub stderr: OutputSpec,
    /// Merged over the inherited environment: `defaults.env`, then the job's.
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub timeout: Option<Duration>,
    pub kill_grace: Duration,
    pub retries: u32,
    pub retry_delay: Duration,
    pub ok_codes: Vec<i32>,
    pub capture_limit: usize,
    /// Jobs that must succeed before this one starts.
    pub needs: Vec<usize>,
    /// The niceness the job runs at (`drover exec --nice N`); None: drover's.
    pub nice: Option<i32>,
}

/// Jobs the scheduler starts together: one job, or jobs joined by
/// `stdin = { from = ... }` pipes.
#[derive(Debug, Clone)]
pub struct Unit {
    /// Job indices, in file order.
    pub jobs: Vec<usize>,
    /// Jobs outside this unit that must succeed first.
    pub needs: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub file: PathBuf,
    /// None: unlimited.
    pub max_parallel: Option<NonZeroUsize>,
    pub fail_fast: bool,
    /// Whose captured output `drover run` prints as jobs finish.
    pub show_output: ShowOutput,
    pub jobs: Vec<JobSpec>,
    pub units: Vec<Unit>,
    /// For each job, the unit it belongs to.
    pub unit_of: Vec<usize>,
}

/// Whose captured stdout and stderr `drover run` prints, under each job's
/// status line as it finishes (`[run] show_output`, `--show-output`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ShowOutput {
    /// Nobody's: the report has it; the summary shows failures' stderr tails.
    #[default]
    None,
    /// Jobs that did not succeed.
    Failures,
    /// Every job.
    All,
}

impl ShowOutput {
    /// The word of a job file or the command line.
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "none" => Some(ShowOutput::None),
            "failures" => Some(ShowOutput::Failures),
            "all" => Some(ShowOutput::All),
            _ => None,
        }
    }
}

impl Plan {
    /// A plan of one job with no needs, as a unit of its own (a job of
    /// `drover exec`).
    pub fn one(job: JobSpec) -> Plan {
        Plan {
            file: PathBuf::new(),
            max_parallel: None,
            fail_fast: false,
            jobs: vec![job],
            units: vec![Unit {
                jobs: vec![0],
                needs: Vec::new(),
            }],
            unit_of: vec![0],
            show_output: ShowOutput::None,
        }
    }
}

pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(5);
pub const DEFAULT_CAPTURE_LIMIT: usize = 1024 * 1024;

/// Number of CPUs, the default `max_parallel`. Read once: each reading
/// opens /proc/self/cgroup and the cgroup's CPU quota files.
pub fn cpus() -> NonZeroUsize {
    static CPUS: std::sync::OnceLock<NonZeroUsize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN))
}

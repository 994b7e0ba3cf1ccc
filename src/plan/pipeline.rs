//! A `[[pipeline]]`, resolved: where its items come from and the stages they
//! flow through, joined by bounded queues.

use std::path::PathBuf;

use super::{JobSpec, template::Template};

/// Default bound of every queue between stages.
pub const DEFAULT_QUEUE: usize = 64;

/// Where a pipeline's items come from; each is read lazily, a line at a time.
#[derive(Debug, Clone)]
pub enum ItemSource {
    List(Vec<String>),
    /// One item a line.
    File(PathBuf),
    /// The stdout lines of a command (run as a job: timeout, env, cwd).
    Command(Box<JobSpec>),
}

/// Where the items leaving the last stage go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Counted, not kept.
    Null,
    /// drover's stdout, a line each.
    Inherit,
    File {
        path: PathBuf,
        append: bool,
    },
}

/// What a per-item stage passes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    /// The item itself, once its process succeeded.
    Item,
    /// Each line of the process's stdout.
    Lines,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A process per item, `{}` filled with the item.
    PerItem(Emit),
    /// `workers` long-lived processes: items in as stdin lines, out as
    /// stdout lines.
    Stream,
}

#[derive(Debug, Clone)]
pub struct StageSpec {
    pub name: String,
    pub mode: Mode,
    pub workers: usize,
    /// The stage's command and settings (timeout, retries, ok_codes, env,
    /// cwd, ...); per item, its replacement strings are filled.
    pub job: JobSpec,
    /// The command line's replacement strings (`{}`, `{.}`, `{/}`, ...).
    pub template: Template,
}

#[derive(Debug, Clone)]
pub struct PipelineSpec {
    pub items: ItemSource,
    pub queue: usize,
    pub fail_fast: bool,
    pub output: Output,
    pub stages: Vec<StageSpec>,
}

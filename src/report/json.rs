//! The JSON report of DESIGN.md: version 1. Written even when the run was
//! interrupted; where it goes is `target`'s concern.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::model::{Exit, JobResult, Status};
use crate::plan::Plan;

#[derive(Serialize, Default)]
pub struct Summary {
    pub total: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub timed_out: usize,
    pub skipped: usize,
    pub cancelled: usize,
    pub spawn_failed: usize,
}

impl Summary {
    pub fn of(results: &[JobResult]) -> Self {
        let mut s = Summary {
            total: results.len(),
            ..Default::default()
        };
        for r in results {
            *s.count_mut(r.status) += 1;
        }
        s
    }

    pub fn count(&self, status: Status) -> usize {
        match status {
            Status::Succeeded => self.succeeded,
            Status::Failed => self.failed,
            Status::TimedOut => self.timed_out,
            Status::Skipped => self.skipped,
            Status::Cancelled => self.cancelled,
            Status::SpawnFailed => self.spawn_failed,
        }
    }

    fn count_mut(&mut self, status: Status) -> &mut usize {
        match status {
            Status::Succeeded => &mut self.succeeded,
            Status::Failed => &mut self.failed,
            Status::TimedOut => &mut self.timed_out,
            Status::Skipped => &mut self.skipped,
            Status::Cancelled => &mut self.cancelled,
            Status::SpawnFailed => &mut self.spawn_failed,
        }
    }
}

#[derive(Serialize)]
struct Report<'a> {
    version: u32,
    started_at: String,
    finished_at: String,
    duration_ms: u64,
    summary: Summary,
    jobs: Vec<Job<'a>>,
}

/// One job of the report: `drover run --report`'s, and `drover serve`'s
/// job object (which adds its own fields around it).
#[derive(Serialize)]
pub struct Job<'a> {
    name: &'a str,
    status: Status,
    exit_code: Option<i32>,
    signal: Option<i32>,
    attempts: u32,
    pid: Option<u32>,
    started_at: Option<String>,
    duration_ms: Option<u64>,
    stdout: Cow<'a, str>,
    stderr: Cow<'a, str>,
    stdout_truncated: bool,
    stderr_truncated: bool,
    error: Option<&'a str>,
    leaked: bool,
    /// Only for a pipeline: its stages and failed items.
    #[serde(skip_serializing_if = "Option::is_none")]
    pipeline: Option<&'a crate::model::PipelineReport>,
}

impl<'a> Job<'a> {
    /// The report's fields of job `name`, which ended as `r`.
    pub fn of(name: &'a str, r: &'a JobResult) -> Self {
        Job {
            name,
            status: r.status,
            exit_code: match r.exit {
                Some(Exit::Code(c)) => Some(c),
                _ => None,
            },
            signal: match r.exit {
                Some(Exit::Signal(s)) => Some(s),
                _ => None,
            },
            attempts: r.attempts,
            pid: r.pid,
            started_at: r.started_at.map(rfc3339),
            duration_ms: r.duration.map(millis),
            stdout: String::from_utf8_lossy(&r.stdout.bytes),
            stderr: String::from_utf8_lossy(&r.stderr.bytes),
            stdout_truncated: r.stdout.truncated,
            stderr_truncated: r.stderr.truncated,
            error: r.error.as_deref(),
            leaked: r.leaked,
            pipeline: r.pipeline.as_deref(),
        }
    }
}

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The report as JSON text.
pub fn render(
    plan: &Plan,
    results: &[JobResult],
    started_at: SystemTime,
    duration: Duration,
) -> String {
    let names: Vec<&str> = plan.jobs.iter().map(|j| j.name.as_str()).collect();
    render_named(&names, results, started_at, duration)
}

/// The report of jobs named `names` (same order as `results`).
pub fn render_named(
    names: &[&str],
    results: &[JobResult],
    started_at: SystemTime,
    duration: Duration,
) -> String {
    let jobs = names
        .iter()
        .zip(results)
        .map(|(name, r)| Job::of(name, r))
        .collect();
    let report = Report {
        version: 1,
        started_at: rfc3339(started_at),
        finished_at: rfc3339(started_at + duration),
        duration_ms: millis(duration),
        summary: Summary::of(results),
        jobs,
    };
    // Serializing plain structs of strings and numbers cannot fail.
    let mut text = serde_json::to_string_pretty(&report).expect("report serializes");
    text.push('\n');
    text
}

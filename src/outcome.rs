//! What happened to a job: its final status and the data the report shows.
//!
//! A failed job is data, never an `Err`: every job ends in exactly one
//! `Status`.

use std::time::{Duration, SystemTime};

use serde::Serialize;

/// Every job ends in exactly one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Succeeded,
    Failed,
    TimedOut,
    Skipped,
    Cancelled,
    SpawnFailed,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Succeeded,
        Status::Failed,
        Status::TimedOut,
        Status::Skipped,
        Status::Cancelled,
        Status::SpawnFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::TimedOut => "timed_out",
            Status::Skipped => "skipped",
            Status::Cancelled => "cancelled",
            Status::SpawnFailed => "spawn_failed",
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    pub fn from_status(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(sig)) => Exit::Signal(sig),
            // Neither: stopped/continued statuses are never reported by wait().
            (None, None) => Exit::Code(-1),
        }
    }
}

/// Output kept from one stream: at most `capture_limit` bytes, the tail.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    pub bytes: Vec<u8>,
    pub truncated: bool,
}

/// The end of one job, after all its attempts.
#[derive(Debug, Clone)]
pub struct JobResult {
    pub status: Status,
    pub exit: Option<Exit>,
    pub attempts: u32,
    pub pid: Option<u32>,
    pub started_at: Option<SystemTime>,
    pub duration: Option<Duration>,
    pub stdout: Captured,
    pub stderr: Captured,
    /// Why the job did not succeed, or what else is worth knowing.
    pub error: Option<String>,
    /// A descendant still held stdout/stderr after the job's main process
    /// exited; it was killed.
    pub leaked: bool,
}

impl JobResult {
    /// A job that never started.
    pub fn not_started(status: Status, why: impl Into<String>) -> Self {
        Self {
            status,
            exit: None,
            attempts: 0,
            pid: None,
            started_at: None,
            duration: None,
            stdout: Captured::default(),
            stderr: Captured::default(),
            error: Some(why.into()),
            leaked: false,
        }
    }
}

//! What a pipeline did, as the report shows it.

use serde::Serialize;

use super::Status;

/// One item that did not make it through.
#[derive(Debug, Clone, Serialize)]
pub struct FailedItem {
    pub stage: String,
    pub item: String,
    pub status: Status,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub stderr: String,
    pub error: String,
}

/// What the report says of a pipeline, beside its job entry.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineReport {
    pub items: u64,
    pub delivered: u64,
    pub queue: usize,
    pub stages: Vec<StageReport>,
    pub failed_items: Vec<FailedItem>,
    /// Failed items past the first MAX_LISTED_FAILURES, counted only.
    pub failed_items_omitted: u64,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub name: String,
    pub mode: &'static str,
    pub workers: usize,
    pub items_in: u64,
    pub items_out: u64,
    pub failed: u64,
    pub busy_ms: u64,
    pub max_queue_depth: usize,
    pub restarts: u64,
}

//! What every layer shares, as data only: the ids that name jobs and
//! batches across the engine, its events, the report and (later) the store;
//! how a job ended (`outcome`); what a pipeline did (`pipeline`).

mod outcome;
mod pipeline;

pub use outcome::*;
pub use pipeline::{FailedItem, PipelineReport, StageReport};

pub mod job;

use std::fmt;

use serde::{Deserialize, Serialize};

/// A job, across the engine, its events, the report and the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub u64);

/// A batch: the jobs submitted together (a job file, an exec run, an API
/// call), which share their policy (fail_fast, halt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BatchId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

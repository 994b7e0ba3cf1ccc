//! drover runs many child processes at once, feeds and drains their pipes
//! without deadlock, stops the ones that overstay, and says exactly what
//! happened to each.
//!
//! `config` parses and validates a job file into a `plan`; `sched` runs the
//! plan's units through `exec`, which owns every process; `report` shows the
//! run to a person and writes the JSON report; `pipeline` runs the
//! `[[pipeline]]` nodes of a plan (items through stages of processes).

pub mod cli;
pub mod config;
pub mod engine;
pub mod exec;
pub mod model;
pub mod pipeline;
pub mod plan;
pub mod report;
pub mod sched;

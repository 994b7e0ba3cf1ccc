//! drover runs many child processes at once, feeds and drains their pipes
//! without deadlock, stops the ones that overstay, and says exactly what
//! happened to each.
//!
//! Data flows one way: `model` (ids, statuses, results: data only) ←
//! `exec` (spawn, pipes, timeouts, process groups: every process) ←
//! `pipeline` (items through stages) ← `engine` (the one dispatcher:
//! batches submitted over time, cancelled by id, events out) ← `report`
//! (progress view, summary, JSON), `store` (SQLite) and `serve` (the HTTP
//! API) ← `cli`. `config` parses and validates a job file into a `plan`.
//! `sched` holds `drover exec`'s fan-out.

pub mod cli;
pub mod config;
pub mod engine;
pub mod exec;
pub mod model;
pub mod pipeline;
pub mod plan;
pub mod report;
pub mod sched;
pub mod serve;
pub mod store;

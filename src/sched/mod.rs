//! `drover exec`'s front end (`fanout`, `blocks`), signals as events, the
//! runtime for a run, and what a live view is told. Every job, of a job
//! file or of `drover exec`, runs on the engine's dispatcher
//! (`crate::engine`).

pub mod blocks;
pub mod fanout;
pub mod signal;

use std::sync::Arc;

use crate::model::JobResult;
use crate::pipeline::PipelineStats;

/// The runtime for a run of at most `limit` jobs at once (`None`: no limit).
///
/// While no more jobs run than there are CPUs, a run is bound by each job's
/// turnaround (exit, reap, spawn the next), and one thread doing it all is
/// fastest: no wake-ups between threads. Measured, 2000 × `true` at -j 2 on
/// 2 CPUs: 1.07 s on the multi-thread runtime, 0.97 s on one thread. Wider
/// runs spawn from every worker at once, which one thread cannot.
pub fn runtime_for(limit: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let cpus = crate::plan::cpus().get();
    let mut builder = match limit {
        Some(jobs) if jobs <= cpus => tokio::runtime::Builder::new_current_thread(),
        _ => {
            // Told, tokio does not read the CPUs again (unless its own
            // variable says how many).
            let mut multi = tokio::runtime::Builder::new_multi_thread();
            if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
                multi.worker_threads(cpus);
            }
            multi
        }
    };
    builder.enable_all().build()
}

/// What the dispatcher tells whoever shows the run to a person.
pub trait Observer {
    fn job_started(&mut self, job: usize, pid: u32);
    /// Whether `job_started` is wanted (a live view); if not, jobs starting
    /// do not wake the dispatcher at all.
    fn wants_starts(&self) -> bool {
        true
    }
    fn job_retrying(&mut self, job: usize, attempt: u32, result: &JobResult);
    fn job_finished(&mut self, job: usize, result: &JobResult);
    fn stopping(&mut self, why: &str);
    /// A pipeline started; `stats` are its live counts.
    fn pipeline_started(&mut self, _job: usize, _stats: Arc<PipelineStats>) {}
}

//! GNU parallel's `--joblog` format: a header, then one tab-separated line
//! per finished job.

use std::time::UNIX_EPOCH;

use crate::model::{Exit, Status};
use crate::sched::fanout::Done;

pub const HEADER: &str =
    "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n";

/// The joblog line of a finished job.
pub fn line(done: &Done) -> String {
    let r = &done.result;
    let start = r
        .started_at
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    let runtime = r.duration.map_or(0.0, |d| d.as_secs_f64());
    let (mut exitval, signal) = match r.exit {
        Some(Exit::Code(c)) => (c, 0),
        Some(Exit::Signal(s)) => (0, s),
        None => (-1, 0),
    };
    // GNU parallel logs a job it stopped for its timeout with Exitval -1.
    if r.status == Status::TimedOut {
        exitval = -1;
    }
    format!(
        "{}\t:\t{start:.3}\t{runtime:>10.3}\t{}\t{}\t{exitval}\t{signal}\t{}\n",
        done.seq,
        done.sent,
        r.stdout.len(),
        done.command.replace('\n', "\0")
    )
}

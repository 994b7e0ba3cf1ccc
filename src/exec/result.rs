//! An attempt's end as the report's job result: the one place where exit
//! codes, signals, timeouts and leaks become a status and its words.

use super::group::signal_name;
use super::{Attempt, AttemptEnd, LEAK_TIMEOUT};
use crate::model::{Exit, JobResult, Status};
use crate::plan::{JobSpec, OutputSpec};

fn describe_exit(exit: Exit) -> String {
    match exit {
        Exit::Code(c) => format!("exit code {c}"),
        Exit::Signal(s) => format!("killed by {}", signal_name(s)),
    }
}

/// An attempt's data as the report's job result.
pub fn to_result(spec: &JobSpec, a: Attempt, attempts: u32) -> JobResult {
    let (status, exit, mut error) = match a.end {
        AttemptEnd::Exited(exit) => match exit {
            Exit::Code(c) if spec.ok_codes.contains(&c) => (Status::Succeeded, Some(exit), None),
            // A pipe source stopped by SIGPIPE: the job reading it chose to
            // stop, as `yes | head -1` does in a shell.
            Exit::Signal(13) if matches!(spec.stdout, OutputSpec::Pipe(_)) => {
                (Status::Succeeded, Some(exit), None)
            }
            Exit::Code(c) => (
                Status::Failed,
                Some(exit),
                Some(format!(
                    "exit code {c} is not in ok_codes {:?}",
                    spec.ok_codes
                )),
            ),
            Exit::Signal(_) => (Status::Failed, Some(exit), Some(describe_exit(exit))),
        },
        AttemptEnd::TimedOut(exit) => (
            Status::TimedOut,
            Some(exit),
            Some(format!(
                "timed out after {}; {}",
                humantime::format_duration(spec.timeout.unwrap_or_default()),
                describe_exit(exit)
            )),
        ),
        AttemptEnd::Cancelled(exit) => (
            Status::Cancelled,
            Some(exit),
            Some(format!(
                "stopped by drover when the run was stopped; {}",
                describe_exit(exit)
            )),
        ),
        AttemptEnd::SpawnFailed(why) => (Status::SpawnFailed, None, Some(why)),
        AttemptEnd::NotStarted(why) => (Status::Skipped, None, Some(why)),
    };
    if a.leaked {
        let note = format!(
            "leaked: a descendant still held stdout/stderr open {} ms after the main process exited; the rest of its process group was killed",
            LEAK_TIMEOUT.as_millis()
        );
        error = Some(match error {
            Some(e) => format!("{e}; {note}"),
            None => note,
        });
    }
    if !a.escaped.is_empty() {
        let list: Vec<String> = a
            .escaped
            .iter()
            .map(|e| format!("{} ({})", e.pid, e.name))
            .collect();
        let note = format!(
            "escaped: {} had left the job's process group (setsid) and {} killed when the job ended",
            list.join(", "),
            if list.len() == 1 { "was" } else { "were" }
        );
        error = Some(match error {
            Some(e) => format!("{e}; {note}"),
            None => note,
        });
    }
    JobResult {
        status,
        exit,
        attempts,
        pid: a.pid,
        started_at: Some(a.started_at),
        duration: Some(a.duration),
        stdout: a.stdout,
        stderr: a.stderr,
        error,
        leaked: a.leaked || !a.escaped.is_empty(),
        pipeline: None,
    }
}

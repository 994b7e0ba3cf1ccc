//! What a start finds in the store from the last run: jobs that were
//! running when drover stopped (killed, crashed, the machine rebooted) and
//! jobs that were waiting.

use std::time::{Duration, Instant};

use super::App;
use crate::model::job::JobDef;

/// When process `pid` started, in clock ticks since boot (field 22 of
/// /proc/PID/stat); `None` if it is gone.
pub fn process_start(pid: u32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name (field 2) is in parentheses and may hold anything.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Kills what is left of the process group that job leader `pid` (started
/// at `start`) led, and waits (bounded) until it is gone. A pid that now
/// belongs to another process is never signalled: while any member of the
/// old group lives, the kernel gives its id to no new process, so a leader
/// of that id with another start time means the old group is gone.
pub async fn kill_leftovers(pid: i64, start: Option<i64>) {
    let Some(pgid) = u32::try_from(pid)
        .ok()
        .filter(|&p| p > 1)
        .and_then(|p| rustix::process::Pid::from_raw(p as i32))
    else {
        return;
    };
    match process_start(pgid.as_raw_nonzero().get() as u32) {
        // The leader lives: the same process only if it started when ours did.
        Some(now) if Some(now) != start => return,
        _ => {}
    }
    let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
    let deadline = Instant::now() + Duration::from_secs(10);
    while rustix::process::test_kill_process_group(pgid).is_ok() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
    }
}

/// The error of a job that ran when drover stopped and may not run again.
pub const RESTARTED: &str = "drover restarted while the job ran";

/// Picks up the store's unfinished jobs: running ones are killed and run
/// again if their retries allow (else fail), queued ones run.
pub async fn restart(app: &std::sync::Arc<App>) -> Result<(), String> {
    let crate::store::Store::Local(store) = &app.store else {
        return Ok(());
    };
    let rows = store.unfinished().await.map_err(|e| e.to_string())?;
    let (mut requeued, mut failed, mut queued) = (0, 0, 0);
    for mut row in rows {
        // A job of a batch runs with the others (pipes, needs): not alone.
        if row.kind == "batch" {
            if let Some(pid) = row.pid.filter(|_| row.status == "running") {
                kill_leftovers(pid, row.pid_start).await;
            }
            let why = match row.status.as_str() {
                "running" => RESTARTED,
                _ => "drover restarted before it ran, and a batch is not resumed: submit it again",
            };
            app.end_unrun(&row, "failed", why).await?;
            failed += 1;
            continue;
        }
        if row.status == "running" {
            if let Some(pid) = row.pid {
                kill_leftovers(pid, row.pid_start).await;
            }
            let retries = serde_json::from_str::<JobDef>(&row.def)
                .ok()
                .and_then(|d| d.retries)
                .or(app.settings.defaults.retries)
                .unwrap_or(0);
            if row.attempts <= i64::from(retries) {
                store.requeue(row.id).await.map_err(|e| e.to_string())?;
                row.status = "queued".into();
                requeued += 1;
            } else {
                app.end_unrun(&row, "failed", RESTARTED).await?;
                failed += 1;
                continue;
            }
        } else {
            queued += 1;
        }
        // A stdin streamed over the API is gone with the last run.
        if let Ok((_, true)) = app.spec_of(&row) {
            app.end_unrun(
                &row,
                "failed",
                "its stdin, streamed over the API, was lost when drover restarted",
            )
            .await?;
            queued -= usize::from(row.status == "queued");
            failed += 1;
            continue;
        }
        match app.run(&row).await {
            Ok(()) => {}
            Err(super::RunError::Job(why)) => app.end_unrun(&row, "failed", &why).await?,
            Err(super::RunError::Stopped) => return Err("the engine has stopped".into()),
        }
    }
    if requeued + failed + queued > 0 {
        tracing::info!(
            queued,
            requeued,
            failed,
            "drover serve: from the last run: {queued} queued job(s) to run, {requeued} that were running to run again, {failed} failed ({RESTARTED})"
        );
    }
    Ok(())
}

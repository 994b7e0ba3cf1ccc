//! When an attempt runs again, and the wait before it: one policy for the
//! engine's units (`drover run`'s and `drover exec`'s jobs) and a
//! pipeline's items.

use std::time::Duration;

use super::Control;
use crate::model::Status;

/// Whether an attempt that ended `status` may run again: a failure or a
/// timeout; never a job that could not start or was stopped.
pub fn retryable(status: Status) -> bool {
    matches!(status, Status::Failed | Status::TimedOut)
}

/// Waits `delay` before the next attempt; false if the run was stopped
/// first (a stop already made is seen before any timer).
pub async fn wait(delay: Duration, ctl: &Control) -> bool {
    tokio::select! {
        biased;
        _ = ctl.cancel.cancelled() => false,
        _ = tokio::time::sleep(delay) => true,
    }
}

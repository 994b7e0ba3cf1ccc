//! SIGINT and SIGTERM as events for the dispatcher, and Ctrl-Z. Installed before the
//! first job starts, so that a Ctrl-C never kills drover before it has
//! stopped its jobs and written the report.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    Int,
    Term,
}

impl Interrupt {
    pub fn name(self) -> &'static str {
        match self {
            Interrupt::Int => "SIGINT",
            Interrupt::Term => "SIGTERM",
        }
    }

    /// drover's exit code after this interrupt: 128 + the signal number.
    pub fn exit_code(self) -> u8 {
        match self {
            Interrupt::Int => 130,
            Interrupt::Term => 143,
        }
    }
}

/// Starts listening; must be called inside the runtime. If the handlers
/// cannot be installed, drover runs on without them (and says so).
pub fn listen() -> mpsc::UnboundedReceiver<Interrupt> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (mut int, mut term) = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(int), Ok(term)) => (int, term),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!("cannot listen for SIGINT/SIGTERM: {e}");
            return rx;
        }
    };
    // Ctrl-Z stops the jobs with drover (their groups do not get the
    // terminal's SIGTSTP) and does not count against their timeouts.
    match signal(SignalKind::from_raw(libc::SIGTSTP)) {
        Ok(mut tstp) => {
            tokio::spawn(async move {
                while tstp.recv().await.is_some() {
                    // Blocks this runtime thread while drover is stopped:
                    // every other thread is stopped too.
                    crate::exec::pause::ctrl_z();
                }
            });
        }
        Err(e) => tracing::warn!("cannot listen for SIGTSTP: {e}"),
    }
    tokio::spawn(async move {
        loop {
            let which = tokio::select! {
                Some(()) = int.recv() => Interrupt::Int,
                Some(()) = term.recv() => Interrupt::Term,
                else => break,
            };
            if tx.send(which).is_err() {
                break;
            }
        }
    });
    rx
}

//! SIGINT and SIGTERM as events for the dispatcher. Installed before the
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

/// Starts listening; must be called inside the runtime.
pub fn listen() -> std::io::Result<mpsc::UnboundedReceiver<Interrupt>> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let (tx, rx) = mpsc::unbounded_channel();
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
    Ok(rx)
}

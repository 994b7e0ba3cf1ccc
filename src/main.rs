use std::process::ExitCode;

fn main() -> ExitCode {
    drover::exec::vfork::note_ignored_signals();
    drover::cli::main()
}

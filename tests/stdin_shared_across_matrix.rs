//! A `stdin` text without placeholders is held once, however many matrix
//! jobs read it: ten jobs reading 20 MiB keep drover's peak memory near the
//! few copies parsing needs (the file's text, its parsed value, the shared
//! bytes), not one more per job.

mod common;
use common::*;

const STDIN: usize = 20 * 1024 * 1024;

#[test]
fn ten_matrix_jobs_share_one_stdin() {
    let ws = Workspace::new("");
    let mut toml = String::from(
        "[[job]]\nname = \"wc-{n}\"\ncmd = [\"wc\", \"-c\"]\nmatrix = { n = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] }\nstdin = \"\"\"",
    );
    toml.push_str(&"x".repeat(STDIN - 1));
    toml.push_str("\n\"\"\"\n");
    std::fs::write(ws.jobs(), toml).unwrap();

    #[expect(clippy::zombie_processes, reason = "reaped by wait4, for its rusage")]
    let child = ws
        .run_cmd(&["-q", "-j", "10"])
        .spawn()
        .expect("spawn drover");
    // wait4 gives drover's peak resident memory (KiB) as it is reaped.
    let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    // SAFETY: waits for our own child, with valid out-pointers.
    let reaped = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(reaped, child.id() as i32);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    let peak = usage.ru_maxrss as u64 * 1024;
    // Before: a copy per job (722 MB for 50 MiB). Now 3 at most, parsing.
    assert!(
        peak < 4 * STDIN as u64,
        "drover peaked at {} MiB for ten jobs sharing 20 MiB",
        peak >> 20
    );
    let report = ws.report();
    for n in 0..10 {
        assert_eq!(
            job(&report, &format!("wc-{n}"))["stdout"],
            format!("{STDIN}\n")
        );
    }
}

//! A `stdin` text without placeholders is held once, however many matrix
//! jobs read it: ten jobs reading 20 MiB keep drover's peak memory near the
//! few copies parsing needs (the file's text, its parsed value, the shared
//! bytes), not one more per job.

use crate::common::*;

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

    // Drover's peak resident memory (KiB), recorded by GNU time: wait4 here
    // would count this test process's own memory (see `PeakRss`).
    let (run, peak_kib) = ws.run_with_peak_rss(&["-q", "-j", "10"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let peak = peak_kib as u64 * 1024;
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

//! A job printing 200 MiB: drover keeps only the tail (`capture_limit`),
//! marks it truncated, and its own memory does not grow with the output.
//!
//! The peak RSS is drover's (or a job's), recorded by GNU time (`PeakRss`):
//! what this test process reads of its children counts its own memory.

use crate::common::*;

#[test]
fn two_hundred_mib_of_output_keeps_memory_small() {
    let ws = Workspace::new(
        r#"
[[job]]
name = "flood"
sh = "head -c 209715200 /dev/zero | tr '\\0' 'a'; echo; echo tail-marker"
capture_limit = "1MiB"

[[job]]
name = "flood-stderr"
sh = "head -c 104857600 /dev/zero >&2"
"#,
    );
    let (run, peak_kib) = ws.run_with_peak_rss(&[]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let job = run.job("flood");
    let stdout = job["stdout"].as_str().unwrap();
    assert_eq!(stdout.len(), 1024 * 1024);
    assert!(stdout.ends_with("\ntail-marker\n"), "the tail is kept");
    assert_eq!(job["stdout_truncated"], true);
    let err_job = run.job("flood-stderr");
    assert_eq!(err_job["stderr"].as_str().unwrap().len(), 1024 * 1024);
    assert_eq!(err_job["stderr_truncated"], true);

    // Holding the output would need > 300 MiB; drover needs a few MiB.
    assert!(peak_kib < 64 * 1024, "drover's peak RSS was {peak_kib} KiB");
}

//! drover exec never fails a job for lack of file descriptors: with `-j 0`
//! under a tiny open-files limit it runs as many at once as descriptors
//! allow, and every job succeeds.

#[test]
fn unlimited_jobs_under_ulimit_64_all_succeed() {
    let exe = env!("CARGO_BIN_EXE_drover");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 64; seq 300 | {exe} exec -j 0 -- sh -c 'sleep 0.05; echo $1' x"
        ))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<u32> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    lines.sort_unstable();
    assert_eq!(lines, (1..=300).collect::<Vec<_>>());
    // Nothing on stderr: no job hit EMFILE.
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

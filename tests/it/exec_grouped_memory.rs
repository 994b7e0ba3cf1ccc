//! Grouped output of `drover exec` under load: 40 jobs of 4 MiB each, 8 at
//! a time. Every job's output reaches drover's stdout whole and contiguous,
//! never interleaved with another's, and drover does not hold it all in
//! memory.
//!
//! The peak RSS is drover's (or a job's), recorded by GNU time (`PeakRss`):
//! what this test process reads of its children counts its own memory.

use crate::common::*;

use std::collections::BTreeMap;
use std::io::Read;
use std::process::Stdio;

const JOB_BYTES: u64 = 4 * 1024 * 1024;

#[test]
fn forty_jobs_of_four_mib_stay_whole_and_memory_stays_small() {
    // One letter per job: a run of one letter is one job's output.
    let letters: Vec<String> = ('a'..='z')
        .chain('A'..='N')
        .map(|c| c.to_string())
        .collect();
    assert_eq!(letters.len(), 40);
    let peak = PeakRss::new();
    let mut child = peak
        .drover()
        .arg("exec")
        .args([
            "-j",
            "8",
            "--",
            &format!("head -c {JOB_BYTES} /dev/zero | tr '\\0' {{}}"),
            ":::",
        ])
        .args(&letters)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn drover exec");

    // Read the stream as it comes, as runs of one byte.
    let mut stdout = child.stdout.take().unwrap();
    let mut runs: Vec<(u8, u64)> = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = stdout.read(&mut buf).expect("read drover's stdout");
        if n == 0 {
            break;
        }
        total += n as u64;
        for &b in &buf[..n] {
            match runs.last_mut() {
                Some((letter, len)) if *letter == b => *len += 1,
                _ => runs.push((b, 1)),
            }
        }
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    assert_eq!(total, 40 * JOB_BYTES, "every byte arrived");
    let mut seen: BTreeMap<char, u64> = BTreeMap::new();
    for &(letter, len) in &runs {
        let letter = letter as char;
        assert!(
            letters.contains(&letter.to_string()),
            "unexpected byte {letter:?}"
        );
        assert!(
            seen.insert(letter, len).is_none(),
            "job {letter}'s output is split in several runs: interleaved"
        );
        assert_eq!(len, JOB_BYTES, "job {letter}'s output is whole");
    }
    assert_eq!(seen.len(), 40, "every job printed");

    let peak_kib = peak.kib();
    // 8 jobs × 4 MiB held at once would be 32 MiB on top of drover itself.
    assert!(peak_kib < 48 * 1024, "drover's peak RSS was {peak_kib} KiB");
}

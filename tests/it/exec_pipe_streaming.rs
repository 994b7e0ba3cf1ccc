//! `drover exec --pipe --block 1M` over 64 MiB of stdin: the input is cut
//! into blocks at line boundaries, every byte reaches exactly one job, and
//! drover streams stdin instead of reading it all into memory.
//!
//! The peak RSS is drover's (or a job's), recorded by GNU time (`PeakRss`):
//! what this test process reads of its children counts its own memory.

use crate::common::*;

use std::io::Write;
use std::process::Stdio;

/// Lines of 10 bytes ("%09d\n"): 1 MiB is not a whole number of them, so
/// each block must be cut short of 1 MiB at a newline.
const LINE: u64 = 10;
const LINES: u64 = 64 * 1024 * 1024 / LINE;
const BLOCK: u64 = 1024 * 1024;

#[test]
fn sixty_four_mib_of_stdin_is_split_into_line_blocks_and_streamed() {
    let peak = PeakRss::new();
    let mut child = peak
        .drover()
        .arg("exec")
        .args(["--pipe", "--block", "1M", "-j", "4", "--", "wc", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn drover exec");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let mut chunk = Vec::with_capacity(1 << 20);
        for i in 0..LINES {
            writeln!(chunk, "{i:09}").unwrap();
            if chunk.len() >= 1 << 20 {
                stdin.write_all(&chunk).expect("write drover's stdin");
                chunk.clear();
            }
        }
        stdin.write_all(&chunk).expect("write drover's stdin");
        // `stdin` drops here: end of input.
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    let sizes: Vec<u64> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().expect("wc -c prints a number"))
        .collect();
    assert_eq!(sizes.iter().sum::<u64>(), LINES * LINE, "every byte once");
    for &size in &sizes {
        assert!(size > 0 && size <= BLOCK, "block of {size} bytes");
        assert_eq!(size % LINE, 0, "a block of {size} bytes splits a line");
    }
    // Blocks are as full as whole lines allow, but for the last one.
    let full = BLOCK / LINE * LINE;
    assert_eq!(sizes.iter().filter(|&&s| s != full).count(), 1, "{sizes:?}");
    assert_eq!(sizes.len() as u64, (LINES * LINE).div_ceil(full));

    let peak_kib = peak.kib();
    assert!(peak_kib < 64 * 1024, "drover's peak RSS was {peak_kib} KiB");
}

//! A job gets its stdin, stdout and stderr and the descriptors drover itself
//! inherited, nothing of drover's own: not the pipes, pidfds and files of the
//! other jobs running beside it. (drover spawns sharing its descriptor table
//! and keeps only the first few entries in the child.)

use crate::common::*;

use std::process::Command;

/// The descriptors a `sh` started the same way sees, without drover.
fn baseline() -> Vec<String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg("exec ls /proc/self/fd")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run sh");
    lines(&String::from_utf8_lossy(&out.stdout))
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn a_job_does_not_see_the_descriptors_of_the_jobs_beside_it() {
    // 40 jobs with captured output (two pipes and a pidfd each in drover)
    // running while `look` lists its descriptors.
    let ws = Workspace::new(
        r#"
[run]
max_parallel = 0

[[job]]
name = "busy-{n}"
cmd = ["sh", "-c", "echo started; sleep 1"]
matrix = { n = ["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17","18","19","20",
                "21","22","23","24","25","26","27","28","29","30","31","32","33","34","35","36","37","38","39","40"] }

[[job]]
name = "look"
sh = "sleep 0.3; exec ls /proc/self/fd"
"#,
    );
    let done = ws.run(&[]);
    assert_eq!(done.code(), 0, "{}", done.stderr());
    let seen = lines(
        done.job("look")["stdout"]
            .as_str()
            .expect("stdout captured"),
    );
    assert_eq!(sorted(seen), sorted(baseline()));
}

#[test]
fn exec_jobs_see_only_their_own_descriptors() {
    let mut args: Vec<String> = ["-j", "0", "-k", "--", "sh", "-c"]
        .map(String::from)
        .to_vec();
    args.extend(["sleep 0.2; exec ls /proc/self/fd", "x", ":::"].map(String::from));
    args.extend((1..=30).map(|i| i.to_string()));
    let text = exec_stdout(&args);
    let want = sorted(baseline());
    let seen = lines(&text);
    assert_eq!(seen.len(), 30 * want.len(), "{text}");
    for listing in seen.chunks(want.len()) {
        assert_eq!(sorted(listing.to_vec()), want);
    }
}

#[test]
fn a_job_starts_with_no_signal_blocked_and_sigpipe_at_its_default() {
    // `exec`: grep reads its own status (a shell blocks signals while it forks).
    let script = "exec grep -E '^Sig(Blk|Ign)' /proc/self/status";
    let direct = Command::new("sh")
        .args(["-c", script])
        .output()
        .expect("run sh");
    let text = exec_stdout(["--", "sh", "-c", script, "x", ":::", "1"]);
    assert!(text.contains("SigBlk:\t0000000000000000"), "{text}");
    // As std's spawn: the same ignored signals as a direct child (SIGPIPE,
    // which Rust ignores in drover, is back at its default). Signals 32 and
    // up are glibc's own, set differently by its posix_spawn: not compared.
    let ignored = |text: &str| {
        let hex = text
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:\t"))
            .expect("a SigIgn line");
        u64::from_str_radix(hex.trim(), 16).unwrap() & 0x7fff_ffff
    };
    let sigpipe = 1 << (13 - 1);
    assert_eq!(ignored(&text) & sigpipe, 0, "{text}");
    assert_eq!(
        ignored(&text),
        ignored(&String::from_utf8_lossy(&direct.stdout))
    );
}

#[test]
fn signals_drover_inherited_ignored_stay_ignored_in_its_jobs() {
    // A script's background job, or `nohup`, starts drover with SIGINT
    // ignored: its jobs inherit that, as the script's own children do,
    // though drover itself handles SIGINT.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' INT; exec {} exec -- sh -c 'grep SigIgn /proc/self/status' x ::: 1",
            env!("CARGO_BIN_EXE_drover")
        ))
        .output()
        .expect("run sh");
    let text = String::from_utf8_lossy(&out.stdout);
    let hex = text
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:\t"))
        .expect("a SigIgn line");
    let ignored = u64::from_str_radix(hex.trim(), 16).unwrap();
    assert_ne!(ignored & (1 << (2 - 1)), 0, "SIGINT not ignored: {text}");
}

//! drover never fails a job for lack of file descriptors: with a tiny
//! RLIMIT_NOFILE (soft and hard) and many jobs at once it queues spawns
//! instead of failing them.

use crate::common::*;

use std::process::Command;

/// Runs drover on the workspace's job file under `ulimit -n 64`.
fn run_with_64_fds(ws: &Workspace) -> Finished {
    let output = Command::new("sh")
        .arg("-c")
        // dash's `ulimit -n` lowers both the soft and the hard limit.
        .arg(r#"ulimit -n 64 && exec "$0" run "$1" --report "$2" -q"#)
        .arg(env!("CARGO_BIN_EXE_drover"))
        .arg(ws.jobs())
        .arg(ws.report_path())
        .env_remove("RUST_LOG")
        .output()
        .expect("run drover under sh");
    let report = std::fs::read_to_string(ws.report_path())
        .ok()
        .map(|t| serde_json::from_str(&t).expect("report is JSON"));
    Finished { output, report }
}

fn matrix_values(count: usize) -> String {
    (0..count)
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn two_hundred_jobs_under_64_fds_all_succeed() {
    let ws = Workspace::new(&format!(
        r#"[run]
max_parallel = 0

[[job]]
name = "echo-{{n}}"
sh = "echo {{n}}"
matrix = {{ n = [{}] }}
"#,
        matrix_values(200)
    ));
    let run = run_with_64_fds(&ws);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    let report = run.report();
    assert_eq!(
        report["summary"]["succeeded"], 200,
        "{:#}",
        report["summary"]
    );
    for n in 0..200 {
        let job = run.job(&format!("echo-{n}"));
        assert_eq!(job["status"], "succeeded", "{job:#}");
        assert_eq!(job["stdout"], format!("{n}\n"));
    }
}

#[test]
fn jobs_fed_stdin_under_64_fds_all_succeed() {
    // Stdin, stdout and stderr pipes: three per job, the most a job needs.
    let ws = Workspace::new(&format!(
        r#"[run]
max_parallel = 0

[[job]]
name = "cat-{{n}}"
sh = "cat; echo err-{{n}} >&2"
stdin = "in-{{n}}\n"
matrix = {{ n = [{}] }}
"#,
        matrix_values(100)
    ));
    let run = run_with_64_fds(&ws);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    for n in 0..100 {
        let job = run.job(&format!("cat-{n}"));
        assert_eq!(job["status"], "succeeded", "{job:#}");
        assert_eq!(job["stdout"], format!("in-{n}\n"));
        assert_eq!(job["stderr"], format!("err-{n}\n"));
    }
}

#[test]
fn jobs_writing_to_files_under_64_fds_all_succeed() {
    // Each running job also holds an output file open in drover.
    let ws = Workspace::new(&format!(
        r#"[run]
max_parallel = 0

[[job]]
name = "file-{{n}}"
sh = "echo {{n}}"
stdout = {{ file = "out/{{n}}.txt" }}
matrix = {{ n = [{}] }}
"#,
        matrix_values(100)
    ));
    let run = run_with_64_fds(&ws);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    assert_eq!(run.report()["summary"]["succeeded"], 100);
    for n in 0..100 {
        let written = std::fs::read_to_string(ws.path(&format!("out/{n}.txt")))
            .unwrap_or_else(|e| panic!("out/{n}.txt: {e}"));
        assert_eq!(written, format!("{n}\n"));
    }
}

//! A background descendant that keeps the job's stdout open after the main
//! process exits must not hang the run: after the leak timeout drover stops
//! reading, kills the rest of the group, keeps the real exit status and
//! notes the leak.

use crate::common::*;
use std::time::{Duration, Instant};

#[test]
fn leaked_background_process_is_killed_and_noted() {
    let ws = Workspace::new("");
    let pidfile = ws.path("pid");
    std::fs::write(
        ws.jobs(),
        format!(
            r#"
[[job]]
name = "leaky"
sh = "sleep 100 & echo $! > {}; echo hi; exit 3"
ok_codes = [3]
"#,
            pidfile.display()
        ),
    )
    .unwrap();
    let start = Instant::now();
    let run = ws.run(&[]);
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "the run hung on the leaked pipe"
    );
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    let job = run.job("leaky");
    assert_eq!(job["status"], "succeeded");
    assert_eq!(job["exit_code"], 3, "the real exit status is kept");
    assert_eq!(job["leaked"], true);
    assert_eq!(job["stdout"], "hi\n");
    assert!(job["error"].as_str().unwrap().contains("leaked"), "{job}");
    assert_all_gone(&pids_in(&pidfile));
}

#[test]
fn background_process_not_holding_output_is_killed_with_the_group() {
    let ws = Workspace::new("");
    let pidfile = ws.path("pid");
    std::fs::write(
        ws.jobs(),
        format!(
            r#"
[[job]]
name = "bg"
sh = "sleep 100 >/dev/null 2>&1 & echo $! > {}"
"#,
            pidfile.display()
        ),
    )
    .unwrap();
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0);
    let job = run.job("bg");
    assert_eq!(job["status"], "succeeded");
    assert_eq!(job["leaked"], false, "it held no pipe: {job}");
    assert_all_gone(&pids_in(&pidfile));
}

//! A plan of more than 100 000 jobs is not refused, but `drover check` and
//! `drover run` first warn on stderr how many jobs it has and about what it
//! will cost in memory and report size.

use crate::common::*;

/// `drover check` on one `true` job per matrix value: its stderr.
fn check_stderr(jobs: usize) -> String {
    let values: Vec<String> = (0..jobs).map(|i| i.to_string()).collect();
    let ws = Workspace::new(&format!(
        "[[job]]\nname = \"t-{{n}}\"\ncmd = [\"true\"]\nmatrix = {{ n = [{}] }}\n",
        values.join(",")
    ));
    let out = drover()
        .arg("check")
        .arg(ws.jobs())
        .output()
        .expect("run drover check");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stderr)
}

#[test]
fn more_than_100_000_jobs_are_warned_about() {
    let err = check_stderr(100_001);
    assert!(err.starts_with("warning: "), "{err}");
    assert!(err.contains("100001 jobs"), "{err}");
    assert!(err.contains("MiB for this plan"), "{err}");
    assert!(err.contains("report takes about"), "{err}");
}

#[test]
fn up_to_100_000_jobs_are_not() {
    assert_eq!(check_stderr(100_000), "");
}

//! Grouped output goes through temporary files in $TMPDIR: when none can be
//! made, drover exec says so once and runs nothing, instead of failing
//! every job.

use std::process::{Command, Stdio};

#[test]
fn an_unwritable_tmpdir_is_one_clear_error_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["exec", "--", "touch", "marker"])
        .arg(":::")
        .arg("x")
        .env("TMPDIR", dir.path().join("missing"))
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TMPDIR"), "{stderr}");
    assert!(!dir.path().join("marker").exists(), "nothing may run");
}

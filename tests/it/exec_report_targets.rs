//! `drover exec --report PATH` and `--joblog PATH` (`+PATH`) never replace
//! what they were not asked to create: the report replaces a regular file
//! whole by a rename, the joblog writes a regular file in place as jobs
//! finish; both follow symlinks and write through to devices, FIFOs and
//! inherited descriptors (/dev/stdout). A path that cannot take them
//! (missing folder, a FIFO nobody reads) is refused with exit 255 before
//! any job runs, as GNU parallel's usage errors.

use crate::common::*;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;

/// `drover exec OPTIONS -- touch marker`, in `dir`.
fn exec_marking(dir: &Path, options: &[&str]) -> Output {
    drover()
        .arg("exec")
        .args(options)
        .args(["--", "touch", "{}", ":::", "marker"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run drover exec")
}

fn assert_report(bytes: &[u8]) {
    let report: Value = serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not a whole JSON report ({e}): {:?}", text(bytes)));
    assert_eq!(report["summary"]["succeeded"], 1, "{report:#}");
}

fn assert_joblog(bytes: &[u8]) {
    let log = text(bytes);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "header and one job: {log:?}");
    assert!(lines[0].starts_with("Seq\tHost"), "{log:?}");
    assert!(lines[1].ends_with("touch marker"), "{log:?}");
}

fn assert_ok(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// Exit 255, the error names the option, the path and the way out, and
/// no job ran.
fn assert_refused(dir: &Path, out: &Output, names: &str, fix: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "stderr:\n{stderr}");
    assert!(stderr.contains(names), "does not name {names}:\n{stderr}");
    assert!(stderr.contains(fix), "does not say {fix:?}:\n{stderr}");
    assert!(!dir.join("marker").exists(), "a job ran");
}

#[test]
fn character_devices_are_written_through_and_stay_devices() {
    let dir = tempfile::tempdir().unwrap();
    let (report, joblog) = (dir.path().join("null"), dir.path().join("null2"));
    if !mknod_null(&report) || !mknod_null(&joblog) {
        return;
    }
    let out = exec_marking(dir.path(), &["--report", "null", "--joblog", "null2"]);
    assert_ok(&out);
    for dev in [report, joblog] {
        assert!(
            file_type(&dev).is_char_device(),
            "{} was replaced",
            dev.display()
        );
    }
}

#[test]
fn fifo_readers_get_the_whole_report_and_joblog_and_the_fifos_stay() {
    let dir = tempfile::tempdir().unwrap();
    let (report, joblog) = (dir.path().join("report"), dir.path().join("joblog"));
    mkfifo(&report);
    mkfifo(&joblog);
    let report_reader = FifoReader::start(&report, &dir.path().join("report.read"));
    let joblog_reader = FifoReader::start(&joblog, &dir.path().join("joblog.read"));
    let out = exec_marking(dir.path(), &["--report", "report", "--joblog", "joblog"]);
    let (report_read, joblog_read) = (report_reader.finish(), joblog_reader.finish());
    assert_ok(&out);
    assert!(
        file_type(&report).is_fifo(),
        "the report's FIFO was replaced"
    );
    assert!(
        file_type(&joblog).is_fifo(),
        "the joblog's FIFO was replaced"
    );
    assert_report(&report_read);
    assert_joblog(&joblog_read);
}

#[test]
fn a_joblog_fifo_nobody_reads_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&dir.path().join("joblog"));
    let mut child = drover()
        .args([
            "exec", "--joblog", "joblog", "--", "touch", "{}", ":::", "marker",
        ])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn drover exec");
    let exited = wait_until(Duration::from_secs(10), || {
        child.try_wait().expect("wait drover").is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("drover's output");
    assert!(exited, "drover waited for a reader");
    assert_refused(
        dir.path(),
        &out,
        "--joblog joblog",
        "start its reader first",
    );
}

#[test]
fn a_missing_folder_is_refused_for_the_report_and_the_joblog() {
    let dir = tempfile::tempdir().unwrap();
    let out = exec_marking(dir.path(), &["--report", "missing/report.json"]);
    assert_refused(
        dir.path(),
        &out,
        "--report missing/report.json",
        "create the folder first",
    );
    assert!(
        !dir.path().join("missing").exists(),
        "the folder was created"
    );
    for joblog in ["missing/log", "+missing/log"] {
        let out = exec_marking(dir.path(), &["--joblog", joblog]);
        assert_refused(dir.path(), &out, joblog, "create the folder first");
    }
}

#[test]
fn symlinks_are_followed_and_stay_links() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("real.json"), "old").unwrap();
    std::fs::write(d.join("real.log"), "earlier line\n").unwrap();
    std::os::unix::fs::symlink("real.json", d.join("report")).unwrap();
    std::os::unix::fs::symlink("real.log", d.join("joblog")).unwrap();
    let out = exec_marking(d, &["--report", "report", "--joblog", "+joblog"]);
    assert_ok(&out);
    assert!(
        file_type(&d.join("report")).is_symlink(),
        "the report's link was replaced"
    );
    assert!(
        file_type(&d.join("joblog")).is_symlink(),
        "the joblog's link was replaced"
    );
    assert_report(&std::fs::read(d.join("real.json")).unwrap());
    let log = std::fs::read_to_string(d.join("real.log")).unwrap();
    assert!(
        log.starts_with("earlier line\n1\t") && log.ends_with("touch marker\n"),
        "+FILE appends a row and no header: {log:?}"
    );
}

#[test]
fn dev_stdout_as_a_pipe_gets_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = exec_marking(dir.path(), &["--report", "/dev/stdout"]);
    assert_ok(&out);
    assert_report(&out.stdout);
    assert!(file_type(Path::new("/dev/stdout")).is_symlink());
}

#[test]
fn a_joblog_to_dev_stdout_appended_to_a_file_keeps_what_was_there() {
    let dir = tempfile::tempdir().unwrap();
    let captured = dir.path().join("captured");
    std::fs::write(&captured, "before\n").unwrap();
    let stdout = std::fs::OpenOptions::new()
        .append(true)
        .open(&captured)
        .unwrap();
    let out = drover()
        .args([
            "exec",
            "--joblog",
            "/dev/stdout",
            "--",
            "touch",
            "{}",
            ":::",
            "marker",
        ])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(stdout)
        .output()
        .expect("run drover exec");
    assert_ok(&out);
    let written = std::fs::read(&captured).unwrap();
    let rest = written
        .strip_prefix(b"before\n".as_slice())
        .unwrap_or_else(|| panic!("what was there is gone: {:?}", text(&written)));
    assert_joblog(rest);
}

#[test]
fn a_regular_report_is_replaced_whole_and_a_joblog_rewritten_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let (report, joblog) = (dir.path().join("report.json"), dir.path().join("joblog"));
    for path in [&report, &joblog] {
        std::fs::write(path, "old").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    let inode = |p: &Path| std::fs::metadata(p).unwrap().ino();
    let (report_inode, joblog_inode) = (inode(&report), inode(&joblog));
    let out = exec_marking(
        dir.path(),
        &["--report", "report.json", "--joblog", "joblog"],
    );
    assert_ok(&out);
    assert_report(&std::fs::read(&report).unwrap());
    assert_joblog(&std::fs::read(&joblog).unwrap());
    // The report is renamed over; the joblog, written as jobs finish, is
    // the same file emptied.
    assert_ne!(
        inode(&report),
        report_inode,
        "the report was rewritten in place"
    );
    assert_eq!(inode(&joblog), joblog_inode, "the joblog was replaced");
    for path in [&report, &joblog] {
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640, "{}: mode not kept", path.display());
    }
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["joblog", "marker", "report.json"], "leftovers");
}

//! `drover run --report PATH` never replaces what it was not asked to
//! create: a regular file (or a new one) is replaced whole by a rename,
//! keeping its mode; a symlink is followed and stays a link; a device, a
//! FIFO and an inherited descriptor (/dev/stdout) are written through. A
//! path that cannot take the report (missing folder, a folder, a FIFO
//! nobody reads, a descriptor open for reading only) is bad input: exit 2
//! before any job runs.

use crate::common::*;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;

/// One job that leaves a marker file beside the job file when it runs.
const MARKS: &str = r#"[[job]]
name = "mark"
sh = "touch marker"
"#;

fn run_reporting_to(ws: &Workspace, target: &Path) -> Output {
    drover()
        .arg("run")
        .arg(ws.jobs())
        .arg("--report")
        .arg(target)
        .arg("-q")
        .stdin(Stdio::null())
        .output()
        .expect("run drover")
}

fn assert_report(bytes: &[u8]) {
    let report: Value = serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not a whole JSON report ({e}): {:?}", text(bytes)));
    assert_eq!(report["summary"]["succeeded"], 1, "{report:#}");
}

/// Exit 2, the error names the path and the way out, and no job ran.
fn assert_refused(ws: &Workspace, out: &Output, names: &str, fix: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains(names), "does not name {names}:\n{stderr}");
    assert!(stderr.contains(fix), "does not say {fix:?}:\n{stderr}");
    assert!(!ws.path("marker").exists(), "a job ran");
}

#[test]
fn a_character_device_is_written_through_and_stays_a_device() {
    let ws = Workspace::new(MARKS);
    let null = ws.path("null");
    if !mknod_null(&null) {
        return;
    }
    let out = run_reporting_to(&ws, &null);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        file_type(&null).is_char_device(),
        "the device was replaced by a {:?}",
        file_type(&null)
    );
}

#[test]
fn a_fifo_reader_gets_the_whole_report_and_the_fifo_stays() {
    let ws = Workspace::new(MARKS);
    let fifo = ws.path("fifo");
    mkfifo(&fifo);
    let reader = FifoReader::start(&fifo, &ws.path("read"));
    let out = run_reporting_to(&ws, &fifo);
    let read = reader.finish();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(file_type(&fifo).is_fifo(), "the FIFO was replaced");
    assert_report(&read);
}

#[test]
fn a_fifo_nobody_reads_is_refused_at_once() {
    let ws = Workspace::new(MARKS);
    let fifo = ws.path("fifo");
    mkfifo(&fifo);
    let mut child = drover()
        .arg("run")
        .arg(ws.jobs())
        .arg("--report")
        .arg(&fifo)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn drover");
    let exited = wait_until(Duration::from_secs(10), || {
        child.try_wait().expect("wait drover").is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("drover's output");
    assert!(exited, "drover waited for a reader");
    assert_refused(&ws, &out, "fifo", "start its reader first");
    assert!(file_type(&fifo).is_fifo(), "the FIFO was replaced");
}

#[test]
fn a_symlink_is_followed_and_stays_a_link() {
    let ws = Workspace::new(MARKS);
    std::fs::create_dir(ws.path("reports")).unwrap();
    std::fs::write(ws.path("reports/real.json"), "old").unwrap();
    let link = ws.path("link.json");
    std::os::unix::fs::symlink("reports/real.json", &link).unwrap();
    let out = run_reporting_to(&ws, &link);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(file_type(&link).is_symlink(), "the link was replaced");
    assert_report(&std::fs::read(ws.path("reports/real.json")).unwrap());
}

#[test]
fn a_dangling_symlink_gets_its_target_created() {
    let ws = Workspace::new(MARKS);
    let link = ws.path("link.json");
    std::os::unix::fs::symlink("new.json", &link).unwrap();
    let out = run_reporting_to(&ws, &link);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(file_type(&link).is_symlink(), "the link was replaced");
    assert_report(&std::fs::read(ws.path("new.json")).unwrap());
}

#[test]
fn a_missing_folder_is_refused_and_not_created() {
    let ws = Workspace::new(MARKS);
    let target = ws.path("missing/dir/report.json");
    let out = run_reporting_to(&ws, &target);
    assert_refused(&ws, &out, "missing/dir", "create the folder first");
    assert!(!ws.path("missing").exists(), "the folder was created");
}

#[test]
fn a_folder_is_refused() {
    let ws = Workspace::new(MARKS);
    std::fs::create_dir(ws.path("reports")).unwrap();
    let out = run_reporting_to(&ws, &ws.path("reports"));
    assert_refused(&ws, &out, "reports", "is a folder");
    assert!(ws.path("reports").is_dir());
}

#[test]
fn a_descriptor_open_for_reading_only_is_refused() {
    let ws = Workspace::new(MARKS);
    let out = drover()
        .arg("run")
        .arg(ws.jobs())
        .args(["--report", "/dev/fd/0"])
        .stdin(std::fs::File::open(ws.jobs()).unwrap())
        .output()
        .expect("run drover");
    assert_refused(&ws, &out, "/dev/fd/0", "open for reading only");
}

#[test]
fn dev_stdout_as_a_pipe_gets_the_report() {
    let ws = Workspace::new(MARKS);
    let out = run_reporting_to(&ws, Path::new("/dev/stdout"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_report(&out.stdout);
    assert!(file_type(Path::new("/dev/stdout")).is_symlink());
}

#[test]
fn a_regular_file_is_replaced_whole_keeping_its_mode() {
    let ws = Workspace::new(MARKS);
    let target = ws.path("report.json");
    std::fs::write(&target, "old report").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
    let before = std::fs::File::open(&target).unwrap();
    let old_inode = before.metadata().unwrap().ino();

    let out = run_reporting_to(&ws, &target);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_report(&std::fs::read(&target).unwrap());
    let meta = std::fs::metadata(&target).unwrap();
    // Renamed over, not rewritten in place: a reader of the old file still
    // has all of it.
    assert_ne!(meta.ino(), old_inode, "the file was rewritten in place");
    assert_eq!(
        std::io::read_to_string(before).unwrap(),
        "old report",
        "the old file was changed"
    );
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640, "mode not kept");
    let mut names: Vec<_> = std::fs::read_dir(ws.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["jobs.toml", "marker", "report.json"], "leftovers");
}

//! Helpers shared by the integration tests: run the real drover binary on a
//! job file in a temp dir, read its report, poll for conditions with a
//! deadline, and check that processes are really gone.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The drover binary under test.
pub fn drover() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_drover"));
    cmd.env_remove("RUST_LOG");
    cmd
}

/// A fixture script under tests/fixtures.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A temp dir holding `jobs.toml`.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new(jobs_toml: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("jobs.toml"), jobs_toml).expect("write jobs.toml");
        Self { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn jobs(&self) -> PathBuf {
        self.path("jobs.toml")
    }

    pub fn report_path(&self) -> PathBuf {
        self.path("report.json")
    }

    /// `drover run jobs.toml --report report.json ARGS...`, not yet started.
    pub fn run_cmd(&self, args: &[&str]) -> Command {
        self.command(drover(), args)
    }

    fn command(&self, mut cmd: Command, args: &[&str]) -> Command {
        cmd.arg("run")
            .arg(self.jobs())
            .arg("--report")
            .arg(self.report_path())
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs drover to the end.
    pub fn run(&self, args: &[&str]) -> Finished {
        let output = self.run_cmd(args).output().expect("run drover");
        self.finished(output)
    }

    /// Runs drover to the end; also its peak RSS in KiB (see `PeakRss`).
    pub fn run_with_peak_rss(&self, args: &[&str]) -> (Finished, i64) {
        let peak = PeakRss::new();
        let output = self
            .command(peak.drover(), args)
            .output()
            .expect("run drover");
        (self.finished(output), peak.kib())
    }

    fn finished(&self, output: Output) -> Finished {
        let report = std::fs::read_to_string(self.report_path())
            .ok()
            .map(|t| serde_json::from_str(&t).expect("report is JSON"));
        Finished { output, report }
    }

    /// Starts drover without waiting, stdout/stderr piped.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.run_cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn drover")
    }

    /// Reads the report written by a run.
    pub fn report(&self) -> Value {
        let text = std::fs::read_to_string(self.report_path()).expect("report written");
        serde_json::from_str(&text).expect("report is JSON")
    }
}

pub struct Finished {
    pub output: Output,
    pub report: Option<Value>,
}

impl Finished {
    pub fn code(&self) -> i32 {
        self.output.status.code().expect("drover exited normally")
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn report(&self) -> &Value {
        self.report
            .as_ref()
            .unwrap_or_else(|| panic!("no report; stderr:\n{}", self.stderr()))
    }

    /// The report entry of job `name`.
    pub fn job(&self, name: &str) -> &Value {
        job(self.report(), name)
    }
}

pub fn job<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["jobs"]
        .as_array()
        .expect("jobs array")
        .iter()
        .find(|j| j["name"] == name)
        .unwrap_or_else(|| panic!("no job {name} in report: {report:#}"))
}

/// Polls `cond` until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// True when `pid` no longer runs: gone, or a zombie waiting for a reaper
/// that is not drover (in a container PID 1 may never reap it).
pub fn pid_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().chars().next());
            matches!(state, Some(Some('Z' | 'X')))
        }
    }
}

/// Every pid written (one per line) into `file`.
pub fn pids_in(file: &Path) -> Vec<i32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Asserts every pid is gone within a generous deadline.
pub fn assert_all_gone(pids: &[i32]) {
    assert!(!pids.is_empty(), "no pids recorded");
    for &pid in pids {
        assert!(
            wait_until(Duration::from_secs(10), || pid_gone(pid)),
            "pid {pid} is still alive"
        );
    }
}

/// Sends `signal` (e.g. libc SIGINT = 2) to a process.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// The lines of a text file a run wrote.
pub fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

/// Bytes as text, invalid UTF-8 replaced.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `drover exec ARGS...` in `dir`, fed `input` on stdin.
pub fn exec_with_stdin(dir: &Path, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = drover()
        .arg("exec")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn drover exec");
    // From a thread of its own, so that drover's output cannot fill up
    // while the input is written; drover may refuse its arguments and exit
    // before reading any of it (a broken pipe is no failure).
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || match stdin.write_all(&input) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("writing stdin: {e}"),
        _ => {}
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    output
}

/// Drover's peak resident memory, as GNU time (`time -f %M`) records it
/// when it reaps drover: drover's own or a job's, in KiB. Not wait4 or
/// getrusage here: Linux starts a child's ru_maxrss at its parent's
/// high-water mark, and this process's tests hold hundreds of MiB between
/// them, so every child of ours would report that.
pub struct PeakRss {
    dir: tempfile::TempDir,
}

impl PeakRss {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("peak-rss")
    }

    /// The drover binary under test, run by GNU time.
    pub fn drover(&self) -> Command {
        let mut cmd = Command::new("time");
        cmd.env_remove("RUST_LOG")
            .args(["-q", "-f", "%M", "-o"])
            .arg(self.file())
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_drover"));
        cmd
    }

    /// The peak in KiB, once the command has ended.
    pub fn kib(&self) -> i64 {
        let text = std::fs::read_to_string(self.file()).expect("GNU time wrote the peak");
        text.trim()
            .parse()
            .unwrap_or_else(|e| panic!("GNU time's peak {text:?}: {e}"))
    }
}

/// `drover exec ARGS...` with stdin from /dev/null: its stdout, which must
/// succeed.
pub fn exec_stdout<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> String {
    let out = drover()
        .arg("exec")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run drover exec");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// Whether the tests run as root (CI does); some need it (mknod).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Makes a character device like /dev/null (1:3) at `path`; false (with a
/// note printed) where that is not allowed, for the caller to skip.
pub fn mknod_null(path: &Path) -> bool {
    if !is_root() {
        eprintln!("note: not root, so no mknod: skipped");
        return false;
    }
    let made = Command::new("mknod")
        .arg(path)
        .args(["c", "1", "3"])
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        eprintln!("note: mknod is not allowed here: skipped");
    }
    made
}

/// Makes a FIFO at `path`.
pub fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success(), "mkfifo {} failed", path.display());
}

/// The file type of `path` itself (a symlink is not followed).
pub fn file_type(path: &Path) -> std::fs::FileType {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .file_type()
}

/// `cat FIFO > FILE`, started before the writer. Once it is reading, the
/// test holds a write end of its own (opened without blocking), so that
/// the reader sees EOF only after `finish`, whenever the writer under test
/// opens and closes the FIFO.
pub struct FifoReader {
    cat: Child,
    held: Option<std::fs::File>,
    out: PathBuf,
}

impl FifoReader {
    pub fn start(fifo: &Path, out: &Path) -> Self {
        use std::os::unix::fs::OpenOptionsExt;
        let cat = Command::new("cat")
            .arg(fifo)
            .stdout(std::fs::File::create(out).expect("create the reader's output"))
            .spawn()
            .expect("spawn cat");
        let mut held = None;
        // A write end opens without blocking only once a reader is there.
        let reading = wait_until(Duration::from_secs(10), || {
            held = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(fifo)
                .ok();
            held.is_some()
        });
        let mut reader = Self {
            cat,
            held,
            out: out.to_path_buf(),
        };
        if !reading {
            reader.kill();
            panic!("cat never opened {}", fifo.display());
        }
        reader
    }

    /// Lets the reader see EOF; what it read, once it has exited.
    pub fn finish(mut self) -> Vec<u8> {
        self.held = None;
        let done = wait_until(Duration::from_secs(10), || {
            self.cat.try_wait().expect("wait cat").is_some()
        });
        if !done {
            self.kill();
            panic!("the FIFO's reader did not see EOF");
        }
        std::fs::read(&self.out).expect("read the reader's output")
    }

    fn kill(&mut self) {
        let _ = self.cat.kill();
        let _ = self.cat.wait();
    }
}

impl Drop for FifoReader {
    fn drop(&mut self) {
        if matches!(self.cat.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

/// Bytes of memory held by drover's memory files (its grouped output) in
/// process `pid` right now.
pub fn memfd_bytes(pid: u32) -> u64 {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    dir.filter_map(|e| e.ok())
        .filter(|e| {
            std::fs::read_link(e.path())
                .is_ok_and(|t| t.to_string_lossy().contains("memfd:drover-output"))
        })
        .filter_map(|e| std::fs::metadata(e.path()).ok())
        .map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512)
        .sum()
}

/// Runs of equal bytes read from `r` to its end: (byte, length) in order.
/// Counted as they come, so a test of large outputs holds none of them.
pub fn byte_runs(mut r: impl std::io::Read) -> Vec<(u8, u64)> {
    let mut runs: Vec<(u8, u64)> = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf).expect("read drover's stdout");
        if n == 0 {
            return runs;
        }
        for &b in &buf[..n] {
            match runs.last_mut() {
                Some((byte, len)) if *byte == b => *len += 1,
                _ => runs.push((b, 1)),
            }
        }
    }
}

/// Whether a tmpfs can be mounted in a private mount namespace here, and
/// the `unshare` flags that do it: as root `-m`, else `-rm` (a user
/// namespace). None, with a note, when neither works.
pub fn tmpfs_unshare_flags() -> Option<&'static str> {
    for flags in ["-m", "-rm"] {
        let ok = Command::new("unshare")
            .args([flags, "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(flags);
        }
    }
    eprintln!("skipped: cannot mount a tmpfs here (neither root nor `unshare -rm`)");
    None
}

/// `drover exec ARGS...` with $TMPDIR (`tmp`) a tmpfs of `size` of its
/// own, mounted in a private mount namespace (gone with drover): a test's
/// room on disk is then known, whatever the machine has free. unshare and
/// sh exec drover: the child's pid is drover's once it runs.
pub fn exec_on_tmpfs(tmp: &Path, size: &str, args: &[&str]) -> Option<Command> {
    let flags = tmpfs_unshare_flags()?;
    let mut cmd = Command::new("unshare");
    cmd.args([flags, "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs -o size={size} tmpfs \"$0\" && exec \"$@\""
        ))
        .arg(tmp)
        .arg(env!("CARGO_BIN_EXE_drover"))
        .arg("exec")
        .args(args)
        .env("TMPDIR", tmp);
    Some(cmd)
}

//! Building and spawning a job's process: the program found on PATH once,
//! argv, environment and folder as C strings, and the descriptors of its
//! stdin, stdout and stderr, then [`vfork::spawn`](super::vfork) into a
//! process group of its own.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr, OsString, c_char};
use std::fs::{File, OpenOptions};
use std::io::{self, PipeReader, PipeWriter};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Instant, SystemTime};

use super::spool::Spool;
use super::vfork::{self, Failure};
use super::{cgroup, escape};
use crate::plan::{JobSpec, OutputSpec, Program, StdinSpec};

/// Programs already found on a PATH: (name, PATH, cwd) → full path. Only hits are
/// kept, so a program that a job installs later is still found.
/// (program, PATH, cwd)
type ProgramKey = (String, OsString, PathBuf);

static RESOLVED: LazyLock<Mutex<HashMap<ProgramKey, PathBuf>>> = LazyLock::new(Default::default);

/// The full path of `program` as execvp would find it, using the job's own
/// PATH if it sets one. Resolving once per run spares every spawn the failed
/// execve calls of a PATH search, and keeps std on its posix_spawn path even
/// when a job sets PATH. Not found: the name as given, for spawn to report.
/// `cwd` is the job's: relative PATH entries are relative to it.
pub fn resolve_program<'a>(
    program: &'a str,
    env: &[(String, String)],
    cwd: &Path,
) -> Cow<'a, Path> {
    if program.contains('/') {
        return Cow::Borrowed(Path::new(program));
    }
    let path_var = path_of(env);
    let key = (program.to_string(), path_var, cwd.to_path_buf());
    let mut cache = RESOLVED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(found) = cache.get(&key) {
        return Cow::Owned(found.clone());
    }
    match search(program, &key.1, cwd) {
        Some(found) => {
            // Bounded: jobs with ever new PATHs (a server's) would grow it.
            if cache.len() >= 4096 {
                cache.clear();
            }
            cache.insert(key, found.clone());
            Cow::Owned(found)
        }
        None => Cow::Borrowed(Path::new(program)),
    }
}

/// The program a job would run now, found afresh (no cache): `program`
/// itself if it has a slash, else the first executable file of that name
/// on the job's PATH.
pub fn find_program(program: &str, env: &[(String, String)], cwd: &Path) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(cwd.join(program));
    }
    search(program, &path_of(env), cwd)
}

/// The job's PATH, else drover's, else a default.
fn path_of(env: &[(String, String)]) -> OsString {
    match env.iter().rev().find(|(k, _)| k == "PATH") {
        Some((_, v)) => v.into(),
        None => std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
    }
}

fn search(program: &str, path_var: &OsStr, cwd: &Path) -> Option<PathBuf> {
    std::env::split_paths(path_var).find_map(|dir| {
        // Relative entries are relative to the job's cwd, as in the child.
        let candidate = cwd.join(dir).join(program);
        let executable = rustix::fs::access(&candidate, rustix::fs::Access::EXEC_OK).is_ok()
            && candidate.metadata().is_ok_and(|m| m.is_file());
        executable.then_some(candidate)
    })
}

/// drover's own working directory, read once.
static DROVER_CWD: LazyLock<Option<PathBuf>> = LazyLock::new(|| std::env::current_dir().ok());

/// /dev/null, opened once: the spawn duplicates it into the child.
static DEV_NULL: LazyLock<Option<File>> = LazyLock::new(|| {
    File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .ok()
});

/// A started process, reaped with `wait` (never on drop).
#[derive(Debug)]
pub struct Child {
    pid: u32,
    /// Its job's mark (see `escape`).
    mark: Option<u64>,
    /// Its job's cgroup (see `cgroup`), given back once it is reaped.
    cgroup: Option<cgroup::JobCgroup>,
    escaped: Vec<escape::Escaped>,
}

impl Child {
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// Waits for the process to end and reaps it. Called once the job's
    /// process group has been killed: first its descendants that escaped
    /// the group are killed too (see [`Child::escaped`]).
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        self.kill_escaped();
        let mut status = 0;
        loop {
            // SAFETY: waitpid on our own child, writing into `status`.
            let r = unsafe { libc::waitpid(self.pid as libc::pid_t, &mut status, 0) };
            if r >= 0 {
                if let Some(mark) = self.mark {
                    escape::unregister(self.pid, mark);
                }
                self.cgroup = None;
                return Ok(ExitStatus::from_raw(status));
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Kills the job's descendants that left its process group (see
    /// `escape`); the caller has killed the group, and not reaped this.
    pub fn kill_escaped(&mut self) {
        let found = match (&self.cgroup, self.mark) {
            (Some(cgroup), _) => escape::kill_escaped_in(cgroup, self.pid),
            (None, Some(mark)) => escape::kill_escaped(mark, self.pid),
            (None, None) => return,
        };
        for e in found {
            if !self.escaped.iter().any(|seen| seen.pid == e.pid) {
                self.escaped.push(e);
            }
        }
    }

    /// The job's descendants that had left its process group, killed by
    /// [`Child::kill_escaped`] or [`Child::wait`].
    pub fn escaped(&self) -> &[escape::Escaped] {
        &self.escaped
    }
}

/// drover's end of a pipe to or from a job: non-blocking from the start, so
/// it becomes a tokio pipe without the checks (fstat, two fcntl) that
/// tokio makes of a descriptor of unknown kind.
pub struct PipeEnd(OwnedFd);

impl AsFd for PipeEnd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl PipeEnd {
    /// The read end, for the runtime. Must be called within a runtime.
    pub fn into_receiver(self) -> io::Result<tokio::net::unix::pipe::Receiver> {
        tokio::net::unix::pipe::Receiver::from_owned_fd_unchecked(self.0)
    }

    /// The write end, for the runtime. Must be called within a runtime.
    pub fn into_sender(self) -> io::Result<tokio::net::unix::pipe::Sender> {
        tokio::net::unix::pipe::Sender::from_owned_fd_unchecked(self.0)
    }
}

/// A started job with drover's ends of its pipes.
pub struct Spawned {
    pub child: Child,
    pub pid: u32,
    pub stdin: Option<PipeEnd>,
    pub stdout: Option<PipeEnd>,
    pub stderr: Option<PipeEnd>,
    /// The job's own ends of its captured stdout and stderr, if asked for
    /// (`hold_writers`; else closed after the spawn). Whoever drops
    /// them only once the job's leader has exited is woken once by its exit,
    /// not first by the pipes' hang-up and then by the exit (measured: 2000
    /// × `true` at -j 2 went from 88% to 94% of the floor's rate).
    pub writers: [Option<OwnedFd>; 2],
    /// Where `OutputSpec::Spooled` output waits.
    pub stdout_file: Option<Arc<Spool>>,
    pub stderr_file: Option<Arc<Spool>>,
    /// When the spawn began: the job's start in the report.
    pub started_at: SystemTime,
    pub started: Instant,
}

/// Why a spawn did not happen.
pub enum SpawnError {
    /// Out of file descriptors: try again once others are freed.
    NoFds(io::Error),
    /// Its stdout/stderr is a FIFO no process reads yet: try again later.
    NoReader(PathBuf),
    /// The job cannot be started: the report's `error`.
    Failed(String),
}

/// How warnings name a job: `job NAME: COMMAND` (for `drover exec` the
/// name is its sequence number).
pub(crate) fn job_label(spec: &JobSpec) -> String {
    match &spec.program {
        Program::Argv(argv) => format!("job {}: {}", spec.name, argv.join(" ")),
        Program::Shell(line) => format!("job {}: {line}", spec.name),
        Program::Pipeline(_) => format!("job {}", spec.name),
    }
}

fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == rustix::io::Errno::MFILE.raw_os_error() || code == rustix::io::Errno::NFILE.raw_os_error())
}

fn classify(e: io::Error, what: impl FnOnce(&io::Error) -> String) -> SpawnError {
    if is_fd_exhaustion(&e) {
        SpawnError::NoFds(e)
    } else {
        SpawnError::Failed(what(&e))
    }
}

/// The child's end of one of its standard streams.
enum ChildFd<'a> {
    Owned(OwnedFd),
    Borrowed(BorrowedFd<'a>),
}

impl ChildFd<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            ChildFd::Owned(fd) => fd.as_fd(),
            ChildFd::Borrowed(fd) => *fd,
        }
    }
}

fn null() -> Result<ChildFd<'static>, SpawnError> {
    match DEV_NULL.as_ref() {
        Some(f) => Ok(ChildFd::Borrowed(f.as_fd())),
        None => Err(SpawnError::Failed("cannot open /dev/null".into())),
    }
}

/// A pipe: (read end, write end), close-on-exec.
fn pipe() -> Result<(OwnedFd, OwnedFd), SpawnError> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| classify(e.into(), |e| format!("cannot create a pipe: {e}")))
}

/// drover's end of a new pipe made non-blocking (the job's end stays
/// blocking: jobs expect that).
fn drover_end(fd: OwnedFd) -> Result<PipeEnd, SpawnError> {
    rustix::fs::fcntl_setfl(&fd, rustix::fs::OFlags::NONBLOCK)
        .map_err(|e| SpawnError::Failed(format!("cannot set up a pipe: {e}")))?;
    Ok(PipeEnd(fd))
}

/// Output files a job's earlier try to spawn opened, kept for the next
/// (see [`SpawnError::NoReader`]).
pub type Opened = Vec<(PathBuf, OwnedFd)>;

/// The child's end of a stdout/stderr spec, and drover's end of a captured
/// pipe; `spooled_file` receives drover's handle on an `OutputSpec::Spooled`
/// spool; a file already opened by an earlier try is taken from `opened`.
fn output<'a>(
    spec: &OutputSpec,
    stream: &str,
    pipe_to: Option<&'a PipeWriter>,
    spooled_file: &mut Option<Arc<Spool>>,
    opened: &mut Opened,
) -> Result<(ChildFd<'a>, Option<PipeEnd>), SpawnError> {
    Ok(match spec {
        OutputSpec::Capture => {
            let (r, w) = pipe()?;
            (ChildFd::Owned(w), Some(drover_end(r)?))
        }
        OutputSpec::Null => (null()?, None),
        OutputSpec::Inherit => {
            let fd = if stream == "stdout" {
                rustix::stdio::stdout()
            } else {
                rustix::stdio::stderr()
            };
            (ChildFd::Borrowed(fd), None)
        }
        OutputSpec::File { path, .. }
            if let Some(i) = opened.iter().position(|(p, _)| p == path) =>
        {
            (ChildFd::Owned(opened.swap_remove(i).1), None)
        }
        OutputSpec::File { path, append } => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    classify(e, |e| {
                        format!(
                            "cannot create the folder of {stream} file {}: {e}",
                            path.display()
                        )
                    })
                })?;
            }
            // Non-blocking: a FIFO with no reader would block this thread
            // in open(2); it is ENXIO instead, and the job waits its turn.
            let file = OpenOptions::new()
                .create(true)
                .write(true)
                .append(*append)
                .truncate(!*append)
                .custom_flags(libc::O_NONBLOCK)
                .open(path)
                .map_err(|e| match e.raw_os_error() {
                    Some(libc::ENXIO) => SpawnError::NoReader(path.clone()),
                    _ => classify(e, |e| {
                        format!("cannot open {stream} file {}: {e}", path.display())
                    }),
                })?;
            rustix::fs::fcntl_getfl(&file)
                .and_then(|f| rustix::fs::fcntl_setfl(&file, f - rustix::fs::OFlags::NONBLOCK))
                .map_err(|e| {
                    SpawnError::Failed(format!(
                        "cannot set up {stream} file {}: {e}",
                        path.display()
                    ))
                })?;
            (ChildFd::Owned(file.into()), None)
        }
        OutputSpec::Spooled => {
            let spool = Spool::new()
                .map_err(|e| classify(e, |e| format!("cannot create a file for output: {e}")))?;
            // The spawn duplicates it for the child; drover keeps the spool.
            // SAFETY: the spool is kept in `spooled_file` until after the spawn.
            let raw = spool
                .raw_fd()
                .ok_or_else(|| SpawnError::Failed("a new output file is already closed".into()))?;
            let fd = unsafe { BorrowedFd::borrow_raw(raw) };
            *spooled_file = Some(spool);
            (ChildFd::Borrowed(fd), None)
        }
        OutputSpec::Pipe(_) => match pipe_to {
            Some(w) => (ChildFd::Borrowed(w.as_fd()), None),
            None => (null()?, None),
        },
    })
}

/// Why execve said ENOENT for `program` (`argv0` as written, found on PATH
/// or not). Only a name without a slash is searched in PATH; a path names a
/// file, and a file that is there but still "not found" has a `#!`
/// interpreter that is not.
fn not_found(argv0: &str, program: &Path, cwd: &Path) -> String {
    // Relative paths are relative to the job's cwd, as in the child.
    let path = cwd.join(program);
    if !path.exists() {
        return if argv0.contains('/') && !program.is_absolute() {
            format!(
                "cannot run `{argv0}`: no such file in the job's cwd {}",
                cwd.display()
            )
        } else if argv0.contains('/') {
            format!("cannot run `{argv0}`: no such file")
        } else {
            format!("cannot run `{argv0}`: no such program (searched PATH)")
        };
    }
    let mut head = [0u8; 256];
    let n = File::open(&path)
        .and_then(|mut f| io::Read::read(&mut f, &mut head))
        .unwrap_or(0);
    match head[..n].strip_prefix(b"#!") {
        Some(line) => {
            let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
            let interpreter = String::from_utf8_lossy(line);
            let interpreter = interpreter.split_whitespace().next().unwrap_or_default();
            format!(
                "cannot run `{argv0}`: its interpreter `{interpreter}` (the #! line) does not exist"
            )
        }
        None => format!(
            "cannot run `{argv0}`: {} exists, but the system could not run it (a missing loader or interpreter?)",
            path.display()
        ),
    }
}

fn c_string(text: &OsStr, what: &str) -> Result<CString, SpawnError> {
    CString::new(text.as_bytes())
        .map_err(|_| SpawnError::Failed(format!("{what} contains a NUL byte: {text:?}")))
}

/// drover's environment as `KEY=VALUE` strings, without a mark of an
/// outer drover (see `escape`), read once.
static INHERITED: LazyLock<Vec<CString>> = LazyLock::new(|| {
    std::env::vars_os()
        .filter(|(k, _)| k != escape::MARK_VAR)
        .filter_map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            CString::new(kv.into_vec()).ok()
        })
        .collect()
});

/// `environ`: drover's environment, for jobs that add nothing to it.
fn inherited_environ() -> *const *const c_char {
    unsafe extern "C" {
        static environ: *const *const c_char;
    }
    // SAFETY: reading the pointer; drover never changes its environment.
    unsafe { environ }
}

/// The same spawn through std's Command (posix_spawn: the child gets a copy
/// of drover's whole descriptor table), where vfork::spawn cannot work.
fn spawn_std(
    program: &Path,
    argv: &[&str],
    spec: &JobSpec,
    mark: Option<&CStr>,
    chdir: bool,
    stdio: [BorrowedFd<'_>; 3],
) -> Result<u32, Failure> {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(program);
    cmd.arg0(argv[0])
        .args(&argv[1..])
        .process_group(0)
        .env_remove(escape::MARK_VAR)
        .envs(
            spec.env
                .iter()
                .filter(|(k, _)| k != escape::MARK_VAR)
                .map(|(k, v)| (k, v)),
        );
    if let Some((k, v)) = mark.and_then(|m| m.to_str().ok()?.split_once('=')) {
        cmd.env(k, v);
    }
    if chdir {
        cmd.current_dir(&spec.cwd);
    }
    // As the vfork path: the job dies with drover.
    let parent = std::process::id();
    let nice = spec.nice;
    let ignored = vfork::ignored_at_start();
    // SAFETY: only system calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(n) = nice {
                libc::setpriority(libc::PRIO_PROCESS, 0, n);
            }
            // As the vfork path: what drover inherited ignored stays so.
            for sig in [libc::SIGINT, libc::SIGTERM] {
                if ignored & (1 << sig) != 0 {
                    libc::signal(sig, libc::SIG_IGN);
                }
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0
                || libc::getppid() as u32 != parent
            {
                return Err(std::io::Error::other("drover has gone"));
            }
            Ok(())
        });
    }
    let dup = |fd: BorrowedFd<'_>| {
        fd.try_clone_to_owned()
            .map(std::process::Stdio::from)
            .map_err(Failure::Start)
    };
    cmd.stdin(dup(stdio[0])?)
        .stdout(dup(stdio[1])?)
        .stderr(dup(stdio[2])?);
    // std's Child neither kills nor reaps on drop: drover reaps by pid.
    match cmd.spawn() {
        Ok(child) => Ok(child.id()),
        Err(e) if is_fd_exhaustion(&e) => Err(Failure::Start(e)),
        // posix_spawn says ENOENT for a missing cwd too.
        Err(e) if chdir && !spec.cwd.is_dir() => Err(Failure::Chdir(e)),
        Err(e) => Err(Failure::Exec(e)),
    }
}

/// Spawns `spec`. `stdin_from`/`stdout_to` are the pipe ends joining it to
/// other jobs of its unit; they are duplicated, so a retry can use them again.
/// `hold_writers`: return the job's ends of its captured pipes in
/// [`Spawned::writers`] rather than closing them.
pub fn spawn(
    spec: &JobSpec,
    stdin_from: Option<&PipeReader>,
    stdout_to: Option<&PipeWriter>,
    hold_writers: bool,
    opened: &mut Opened,
) -> Result<Spawned, SpawnError> {
    let (started_at, started) = (SystemTime::now(), Instant::now());
    let argv = spec.program.argv();
    if argv.is_empty() {
        return Err(SpawnError::Failed(format!(
            "`{}` is a pipeline, not a program",
            spec.name
        )));
    }
    let program = resolve_program(argv[0], &spec.env, &spec.cwd);
    // Not found on PATH: execvp would not look in the job's folder either.
    if !program.as_os_str().as_bytes().contains(&b'/') {
        return Err(SpawnError::Failed(format!(
            "cannot run `{}`: no such program (searched PATH)",
            argv[0]
        )));
    }
    let program_c = c_string(program.as_os_str(), "the program")?;
    let args_c = argv
        .iter()
        .map(|a| c_string(OsStr::new(a), "an argument"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut argv_p: Vec<*const c_char> = args_c.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    // The environment is drover's (read once, see INHERITED) less the keys
    // the job sets, then the job's own settings and the mark (see `escape`):
    // a list of pointers, no copy of the inherited text.
    let mark = escape::new_mark();
    let mut own = Vec::with_capacity(spec.env.len());
    for (i, (k, v)) in spec.env.iter().enumerate() {
        // The last setting of a key wins, as with Command::env.
        if !spec.env[i + 1..].iter().any(|(later, _)| later == k) && k != escape::MARK_VAR {
            own.push(c_string(
                OsStr::new(&format!("{k}={v}")),
                "the environment",
            )?);
        }
    }
    let envp_p: Option<Vec<*const c_char>> = match spec.env.is_empty() && mark.is_none() {
        true => None,
        false => {
            let set = |kv: &CString| {
                let kv = kv.as_bytes();
                let key = &kv[..kv.iter().position(|&b| b == b'=').unwrap_or(kv.len())];
                spec.env.iter().any(|(k, _)| k.as_bytes() == key)
            };
            let mut p: Vec<*const c_char> = Vec::with_capacity(INHERITED.len() + own.len() + 2);
            p.extend(INHERITED.iter().filter(|kv| !set(kv)).map(|kv| kv.as_ptr()));
            p.extend(own.iter().map(|kv| kv.as_ptr()));
            p.extend(mark.iter().map(|m| m.entry.as_ptr()));
            p.push(std::ptr::null());
            Some(p)
        }
    };
    // A chdir in every child only where the job's folder is not drover's.
    let cwd_c = match DROVER_CWD.as_deref() == Some(spec.cwd.as_path()) {
        true => None,
        false => Some(c_string(spec.cwd.as_os_str(), "the cwd")?),
    };

    let mut drover_stdin = None;
    let stdin = match &spec.stdin {
        StdinSpec::Null => null()?,
        StdinSpec::Bytes(_) => {
            let (r, w) = pipe()?;
            drover_stdin = Some(drover_end(w)?);
            ChildFd::Owned(r)
        }
        StdinSpec::File(path) => ChildFd::Owned(
            File::open(path)
                .map_err(|e| {
                    classify(e, |e| {
                        format!("cannot open stdin file {}: {e}", path.display())
                    })
                })?
                .into(),
        ),
        StdinSpec::Handed(fd) => match fd.dup() {
            Some(dup) => ChildFd::Owned(
                dup.map_err(|e| classify(e, |e| format!("cannot duplicate a pipe: {e}")))?,
            ),
            None => null()?,
        },
        StdinSpec::From(_) => match stdin_from {
            Some(r) => ChildFd::Borrowed(r.as_fd()),
            None => null()?,
        },
    };
    let mut stdout_file = None;
    let mut stderr_file = None;
    let (stdout, drover_stdout) =
        output(&spec.stdout, "stdout", stdout_to, &mut stdout_file, opened)?;
    let (stderr, drover_stderr) =
        match output(&spec.stderr, "stderr", None, &mut stderr_file, opened) {
            // The stdout file stays open for the next try: reopened, a
            // FIFO's reader would see its end, a file be truncated again.
            Err(SpawnError::NoReader(path)) => {
                if let (OutputSpec::File { path: out, .. }, ChildFd::Owned(fd)) =
                    (&spec.stdout, stdout)
                {
                    opened.push((out.clone(), fd));
                }
                return Err(SpawnError::NoReader(path));
            }
            other => other?,
        };

    let joining = cgroup::for_job();
    let request = vfork::Request {
        program: &program_c,
        argv: &argv_p,
        envp: envp_p
            .as_ref()
            .map_or_else(inherited_environ, |p| p.as_ptr()),
        cwd: cwd_c.as_deref(),
        stdio: [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()],
        nice: spec.nice,
        cgroup: joining.as_ref().map(|j| j.dir.as_fd()),
    };
    let mut job_cgroup = None;
    let spawned = match vfork::spawn(&request) {
        // Without vfork (rare: seccomp, valgrind), no cgroup either.
        Err(Failure::Unsupported(why)) => {
            vfork::disable(&why);
            let mark = mark.as_ref().map(|m| m.entry.as_c_str());
            spawn_std(&program, &argv, spec, mark, cwd_c.is_some(), request.stdio)
        }
        Ok(started) => {
            match started.cgroup_errno {
                0 => job_cgroup = joining.map(|j| j.cgroup),
                errno => cgroup::refused(errno),
            }
            Ok(started.pid)
        }
        Err(other) => Err(other),
    };
    let pid = spawned.map_err(|failure| match failure {
        Failure::Unsupported(e) | Failure::Start(e) => {
            classify(e, |e| format!("cannot start `{}`: {e}", argv[0]))
        }
        Failure::Chdir(_) if !spec.cwd.is_dir() => SpawnError::Failed(format!(
            "cwd {} is not a folder that exists",
            spec.cwd.display()
        )),
        Failure::Chdir(e) => {
            SpawnError::Failed(format!("cannot change to cwd {}: {e}", spec.cwd.display()))
        }
        Failure::Exec(e) => SpawnError::Failed(match e.kind() {
            io::ErrorKind::NotFound => not_found(argv[0], &program, &spec.cwd),
            io::ErrorKind::PermissionDenied => format!(
                "cannot run `{}`: permission denied (is it executable?)",
                argv[0]
            ),
            _ => format!("cannot run `{}`: {e}", argv[0]),
        }),
    })?;
    if let StdinSpec::Handed(fd) = &spec.stdin {
        fd.close();
    }
    for spool in [&stdout_file, &stderr_file].into_iter().flatten() {
        spool.set_owner(pid, || job_label(spec));
    }
    // The job's ends of captured pipes, for the caller to keep or close.
    let writer = |child_end: ChildFd<'_>, reader: &Option<PipeEnd>| match child_end {
        ChildFd::Owned(fd) if hold_writers && reader.is_some() => Some(fd),
        _ => None,
    };
    let writers = [
        writer(stdout, &drover_stdout),
        writer(stderr, &drover_stderr),
    ];
    let mark = mark.map(|m| escape::register(pid, m));
    Ok(Spawned {
        child: Child {
            pid,
            mark,
            cgroup: job_cgroup,
            escaped: Vec::new(),
        },
        pid,
        stdin: drover_stdin,
        stdout: drover_stdout,
        stderr: drover_stderr,
        writers,
        stdout_file,
        stderr_file,
        started_at,
        started,
    })
}

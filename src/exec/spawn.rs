//! Building and spawning a job's process.
//!
//! `std::process::Command` with `process_group(0)` and no `pre_exec`, so std
//! takes its posix_spawn fast path (vfork-like, no page-table copy).

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, PipeReader, PipeWriter};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{LazyLock, Mutex};

use crate::plan::{JobSpec, OutputSpec, StdinSpec};

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
fn resolve_program<'a>(program: &'a str, env: &[(String, String)], cwd: &Path) -> Cow<'a, Path> {
    if program.contains('/') {
        return Cow::Borrowed(Path::new(program));
    }
    let path_var: OsString = match env.iter().rev().find(|(k, _)| k == "PATH") {
        Some((_, v)) => v.into(),
        None => std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
    };
    let key = (program.to_string(), path_var, cwd.to_path_buf());
    let mut cache = RESOLVED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(found) = cache.get(&key) {
        return Cow::Owned(found.clone());
    }
    for dir in std::env::split_paths(&key.1) {
        // Relative entries are relative to the job's cwd, as in the child.
        let candidate = cwd.join(dir).join(program);
        let executable = rustix::fs::access(&candidate, rustix::fs::Access::EXEC_OK).is_ok()
            && candidate.metadata().is_ok_and(|m| m.is_file());
        if executable {
            cache.insert(key, candidate.clone());
            return Cow::Owned(candidate);
        }
    }
    Cow::Borrowed(Path::new(program))
}

/// drover's own working directory, read once.
static DROVER_CWD: LazyLock<Option<PathBuf>> = LazyLock::new(|| std::env::current_dir().ok());

/// /dev/null, opened once: each job gets a duplicate instead of an open().
static DEV_NULL: LazyLock<Option<File>> = LazyLock::new(|| {
    File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .ok()
});

fn null() -> Stdio {
    match DEV_NULL.as_ref().and_then(|f| f.try_clone().ok()) {
        Some(f) => Stdio::from(f),
        None => Stdio::null(),
    }
}

/// A started job with drover's ends of its pipes.
pub struct Spawned {
    pub child: Child,
    pub pid: u32,
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// drover's handles on `OutputSpec::Spooled` files.
    pub stdout_file: Option<File>,
    pub stderr_file: Option<File>,
}

/// Why a spawn did not happen.
pub enum SpawnError {
    /// Out of file descriptors: try again once others are freed.
    NoFds(io::Error),
    /// The job cannot be started: the report's `error`.
    Failed(String),
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

/// The child's end of a stdout/stderr spec; `spooled_file` receives drover's
/// handle on an `OutputSpec::Spooled` file.
fn output(
    spec: &OutputSpec,
    stream: &str,
    pipe_to: Option<&PipeWriter>,
    spooled_file: &mut Option<File>,
) -> Result<Stdio, SpawnError> {
    Ok(match spec {
        OutputSpec::Capture => Stdio::piped(),
        OutputSpec::Null => null(),
        OutputSpec::Inherit => Stdio::inherit(),
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
            let file = OpenOptions::new()
                .create(true)
                .write(true)
                .append(*append)
                .truncate(!*append)
                .open(path)
                .map_err(|e| {
                    classify(e, |e| {
                        format!("cannot open {stream} file {}: {e}", path.display())
                    })
                })?;
            Stdio::from(file)
        }
        OutputSpec::Spooled => spooled(spooled_file)?,
        OutputSpec::Pipe(_) => match pipe_to {
            Some(w) => Stdio::from(
                w.try_clone()
                    .map_err(|e| classify(e, |e| format!("cannot duplicate a pipe: {e}")))?,
            ),
            None => null(),
        },
    })
}

/// Spawns `spec`. `stdin_from`/`stdout_to` are the pipe ends joining it to
/// other jobs of its unit; they are duplicated, so a retry can use them again.
pub fn spawn(
    spec: &JobSpec,
    stdin_from: Option<&PipeReader>,
    stdout_to: Option<&PipeWriter>,
) -> Result<Spawned, SpawnError> {
    let argv = spec.program.argv();
    if argv.is_empty() {
        return Err(SpawnError::Failed(format!(
            "`{}` is a pipeline, not a program",
            spec.name
        )));
    }
    let mut cmd = Command::new(resolve_program(argv[0], &spec.env, &spec.cwd).as_ref());
    cmd.arg0(argv[0]);
    // A chdir in every child only where the job's folder is not drover's.
    if DROVER_CWD.as_deref() != Some(spec.cwd.as_path()) {
        cmd.current_dir(&spec.cwd);
    }
    cmd.args(&argv[1..])
        .process_group(0)
        .envs(spec.env.iter().map(|(k, v)| (k, v)));
    cmd.stdin(match &spec.stdin {
        StdinSpec::Null => null(),
        StdinSpec::Bytes(_) => Stdio::piped(),
        StdinSpec::File(path) => Stdio::from(File::open(path).map_err(|e| {
            classify(e, |e| {
                format!("cannot open stdin file {}: {e}", path.display())
            })
        })?),
        StdinSpec::Pipe(fd) => match fd.dup() {
            Some(dup) => Stdio::from(
                dup.map_err(|e| classify(e, |e| format!("cannot duplicate a pipe: {e}")))?,
            ),
            None => null(),
        },
        StdinSpec::From(_) => match stdin_from {
            Some(r) => Stdio::from(
                r.try_clone()
                    .map_err(|e| classify(e, |e| format!("cannot duplicate a pipe: {e}")))?,
            ),
            None => null(),
        },
    });
    let mut stdout_file = None;
    let mut stderr_file = None;
    cmd.stdout(output(&spec.stdout, "stdout", stdout_to, &mut stdout_file)?);
    cmd.stderr(output(&spec.stderr, "stderr", None, &mut stderr_file)?);

    let mut child = cmd.spawn().map_err(|e| {
        classify(e, |e| match e.kind() {
            // posix_spawn says ENOENT for a missing cwd too.
            _ if !spec.cwd.is_dir() => {
                format!("cwd {} is not a folder that exists", spec.cwd.display())
            }
            io::ErrorKind::NotFound => {
                format!("cannot run `{}`: no such program (searched PATH)", argv[0])
            }
            io::ErrorKind::PermissionDenied => format!(
                "cannot run `{}`: permission denied (is it executable?)",
                argv[0]
            ),
            _ => format!("cannot run `{}`: {e}", argv[0]),
        })
    })?;
    if let StdinSpec::Pipe(fd) = &spec.stdin {
        fd.close();
    }
    let pid = child.id();
    Ok(Spawned {
        stdin: child.stdin.take().map(OwnedFd::from),
        stdout: child.stdout.take().map(OwnedFd::from),
        stderr: child.stderr.take().map(OwnedFd::from),
        stdout_file,
        stderr_file,
        child,
        pid,
    })
}

/// An anonymous temporary file (O_TMPFILE in $TMPDIR) for a child to write
/// to; drover keeps `keep` to read it back.
fn spooled(keep: &mut Option<File>) -> Result<Stdio, SpawnError> {
    let file = tempfile::tempfile().map_err(|e| {
        classify(e, |e| {
            format!("cannot create a temporary file for output: {e}")
        })
    })?;
    let child_end = file
        .try_clone()
        .map_err(|e| classify(e, |e| format!("cannot duplicate a temporary file: {e}")))?;
    *keep = Some(file);
    Ok(Stdio::from(child_end))
}

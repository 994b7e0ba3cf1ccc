//! Where a report or a joblog goes. The path is resolved and checked once,
//! before any job runs, so that one that cannot take the report is bad input
//! (DESIGN's safety rules). A regular file, or a path where nothing is yet,
//! is replaced whole by a rename; a symlink is followed to its target;
//! anything else (a FIFO, a device, a socket, an inherited descriptor such
//! as /dev/stdout or `>(jq .)`'s /dev/fd/63) is opened now, kept open, and
//! written through: never replaced.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use rustix::fs::OFlags;

/// Symlinks followed before giving up, as the kernel's ELOOP limit.
const MAX_LINKS: usize = 40;

/// A resolved target.
#[derive(Debug)]
pub enum Target {
    /// `-`: drover's stdout.
    Stdout,
    /// A regular file, or a new one: written whole by a rename.
    File(PathBuf),
    /// Opened up front and written through.
    Through(File),
}

/// Why a path cannot take a report; each says what to do.
#[derive(Debug)]
pub enum TargetError {
    MissingFolder(PathBuf),
    NotAFolder(PathBuf),
    IsAFolder(PathBuf),
    NoReader(PathBuf),
    FdNotOpen(RawFd),
    FdNotWritable(RawFd),
    TooManyLinks(PathBuf),
    NotWritable(PathBuf, io::Error),
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::MissingFolder(dir) => write!(
                f,
                "the folder {} does not exist; create the folder first (mkdir -p {})",
                dir.display(),
                dir.display()
            ),
            TargetError::NotAFolder(dir) => write!(
                f,
                "{} is not a folder; give a path in an existing folder",
                dir.display()
            ),
            TargetError::IsAFolder(path) => write!(
                f,
                "{} is a folder; give the path of a file in it",
                path.display()
            ),
            TargetError::NoReader(path) => write!(
                f,
                "no process is reading the FIFO {}; start its reader first",
                path.display()
            ),
            TargetError::FdNotOpen(fd) => {
                write!(f, "descriptor {fd} is not open; open it for writing first")
            }
            TargetError::FdNotWritable(fd) => write!(
                f,
                "descriptor {fd} is open for reading only; open it for writing (e.g. {fd}>FILE)"
            ),
            TargetError::TooManyLinks(path) => write!(
                f,
                "too many levels of symbolic links at {}; point it at a file",
                path.display()
            ),
            TargetError::NotWritable(path, e) => write!(
                f,
                "cannot write to {}: {e}; give a path drover may write",
                path.display()
            ),
        }
    }
}

impl std::error::Error for TargetError {}

/// Resolves `path` (`-` for stdout) to what a report written there would
/// reach, following symlinks; opens FIFOs, devices, sockets and inherited
/// descriptors now.
pub fn resolve(path: &Path) -> Result<Target, TargetError> {
    if path == Path::new("-") {
        return Ok(Target::Stdout);
    }
    if path.as_os_str().as_bytes().ends_with(b"/") {
        return Err(TargetError::IsAFolder(path.to_path_buf()));
    }
    let mut at =
        std::path::absolute(path).map_err(|e| TargetError::NotWritable(path.to_path_buf(), e))?;
    for _ in 0..MAX_LINKS {
        let (Some(dir), Some(name)) = (at.parent(), at.file_name()) else {
            return Err(TargetError::IsAFolder(at));
        };
        let dir = folder(dir)?;
        let full = dir.join(name);
        let fds_of = proc_fd_owner(&dir);
        if fds_of == Some(std::process::id()) {
            if let Some(fd) = name.to_str().and_then(|n| n.parse::<RawFd>().ok()) {
                return inherited(fd);
            }
        }
        let meta = match std::fs::symlink_metadata(&full) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Target::File(full)),
            Err(e) => return Err(TargetError::NotWritable(full, e)),
        };
        let kind = meta.file_type();
        if kind.is_symlink() {
            let to =
                std::fs::read_link(&full).map_err(|e| TargetError::NotWritable(full.clone(), e))?;
            // Another process's descriptor of a pipe or socket (`pipe:[7]`)
            // names no path: the kernel follows it on open.
            if fds_of.is_some() && !to.is_absolute() {
                return open_through(&full, false);
            }
            at = dir.join(to);
            continue;
        }
        if kind.is_dir() {
            return Err(TargetError::IsAFolder(full));
        }
        if kind.is_file() {
            return Ok(Target::File(full));
        }
        if kind.is_socket() {
            return std::os::unix::net::UnixStream::connect(&full)
                .map(|s| Target::Through(File::from(OwnedFd::from(s))))
                .map_err(|e| TargetError::NotWritable(full, e));
        }
        return open_through(&full, kind.is_fifo());
    }
    Err(TargetError::TooManyLinks(path.to_path_buf()))
}

/// The canonical form of the folder a target is in.
fn folder(dir: &Path) -> Result<PathBuf, TargetError> {
    match std::fs::canonicalize(dir) {
        Ok(d) if d.is_dir() => Ok(d),
        Ok(_) => Err(TargetError::NotAFolder(dir.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(TargetError::MissingFolder(dir.to_path_buf()))
        }
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
            Err(TargetError::NotAFolder(dir.to_path_buf()))
        }
        Err(e) => Err(TargetError::NotWritable(dir.to_path_buf(), e)),
    }
}

/// The pid whose descriptors `dir` lists: /proc/PID/fd or
/// /proc/PID/task/TID/fd (what /proc/self and /proc/thread-self lead to).
fn proc_fd_owner(dir: &Path) -> Option<u32> {
    let parts: Vec<&[u8]> = dir.components().map(|c| c.as_os_str().as_bytes()).collect();
    let pid = match parts.as_slice() {
        [b"/", b"proc", pid, b"fd"] => pid,
        [b"/", b"proc", pid, b"task", _, b"fd"] => pid,
        _ => return None,
    };
    std::str::from_utf8(pid).ok()?.parse().ok()
}

/// One of drover's own descriptors (/dev/stdout, /dev/fd/63): a copy of
/// it, so that the report goes where the shell sent it, at its offset.
fn inherited(fd: RawFd) -> Result<Target, TargetError> {
    // SAFETY: F_GETFL reads flags of any number; it fails with EBADF when
    // no such descriptor is open, and then `fd` is never borrowed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(TargetError::FdNotOpen(fd));
    }
    if flags & libc::O_ACCMODE == libc::O_RDONLY {
        return Err(TargetError::FdNotWritable(fd));
    }
    // SAFETY: F_GETFL just showed `fd` open; it is only borrowed for the dup.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    rustix::io::fcntl_dupfd_cloexec(borrowed, 3)
        .map(|owned| Target::Through(File::from(owned)))
        .map_err(|e| TargetError::NotWritable(format!("/dev/fd/{fd}").into(), e.into()))
}

/// Opens a FIFO, device or descriptor link for writing, without creating
/// or truncating anything. Non-blocking, so that a FIFO with no reader is
/// refused now rather than waited on forever.
fn open_through(path: &Path, fifo: bool) -> Result<Target, TargetError> {
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) if fifo => TargetError::NoReader(path.to_path_buf()),
            _ => TargetError::NotWritable(path.to_path_buf(), e),
        })?;
    // Writes block as usual from here on: the reader sets the pace.
    rustix::fs::fcntl_getfl(&file)
        .and_then(|flags| rustix::fs::fcntl_setfl(&file, flags - OFlags::NONBLOCK))
        .map_err(|e| TargetError::NotWritable(path.to_path_buf(), e.into()))?;
    Ok(Target::Through(file))
}

impl Target {
    /// Checks, before any job runs, that a report can replace this file:
    /// the file (if any) is writable and its folder takes a new file.
    pub fn check_replaceable(&self) -> Result<(), TargetError> {
        let Target::File(path) = self else {
            return Ok(());
        };
        if path.exists() {
            rustix::fs::access(path, rustix::fs::Access::WRITE_OK)
                .map_err(|e| TargetError::NotWritable(path.clone(), e.into()))?;
        }
        let dir = path.parent().unwrap_or(Path::new("/"));
        // The OS error alone: tempfile's names the random temp path.
        temp_in(dir, path).map(drop).map_err(|e| {
            let e = io::Error::from(e.kind());
            TargetError::NotWritable(dir.to_path_buf(), e)
        })
    }

    /// Writes `text` as the whole report: by a rename for a file, through
    /// for the rest. A reader that closed its pipe early chose to stop
    /// reading, as with `drover ... | head`: not an error.
    pub fn write_whole(self, text: &str) -> anyhow::Result<()> {
        match self {
            Target::Stdout => {
                let mut out = io::stdout().lock();
                forgive_epipe(out.write_all(text.as_bytes()).and_then(|()| out.flush()))
                    .context("failed to write the report to stdout")
            }
            Target::Through(mut file) => {
                // What drover printed to its stdout comes first.
                let _ = io::stdout().flush();
                forgive_epipe(file.write_all(text.as_bytes())).context("failed to write the report")
            }
            Target::File(path) => replace(&path, text),
        }
    }

    /// Opens the target for a log written as jobs finish (the joblog): a
    /// regular file is emptied in place (`append`: added to), not
    /// replaced, so that it shows what finished even if drover is killed.
    pub fn into_log(self, append: bool) -> Result<File, TargetError> {
        match self {
            Target::Stdout => rustix::io::fcntl_dupfd_cloexec(io::stdout().as_fd(), 3)
                .map(File::from)
                .map_err(|e| TargetError::NotWritable("-".into(), e.into())),
            Target::Through(file) => Ok(file),
            Target::File(path) => OpenOptions::new()
                .create(true)
                .write(true)
                .append(append)
                .truncate(!append)
                .open(&path)
                .map_err(|e| TargetError::NotWritable(path, e)),
        }
    }
}

fn forgive_epipe(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// A new temporary file beside `path`, created as a new file would be.
fn temp_in(dir: &Path, path: &Path) -> io::Result<tempfile::NamedTempFile> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
}

/// Writes `text` to a temp file beside `path`, syncs it and renames it over
/// `path`: readers see the old report or the new one, never half of one.
/// An existing file keeps its mode (and, as root, its owner).
fn replace(path: &Path, text: &str) -> anyhow::Result<()> {
    let shown = path.display();
    let existing = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        // Checked before the run: something else was put there since.
        Ok(_) => anyhow::bail!(
            "failed to write the report to {shown}: it is no longer a regular file; nothing was replaced"
        ),
        Err(e) => {
            return Err(e).with_context(|| format!("failed to write the report to {shown}"));
        }
    };
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut tmp = temp_in(dir, path)
        .with_context(|| format!("failed to create a temporary file in {}", dir.display()))?;
    tmp.write_all(text.as_bytes())
        .with_context(|| format!("failed to write {}", tmp.path().display()))?;
    if let Some(m) = &existing {
        let file = tmp.as_file();
        rustix::fs::fchmod(file, rustix::fs::Mode::from_raw_mode(m.mode() & 0o7777))
            .with_context(|| format!("failed to keep the mode of {shown}"))?;
        if rustix::process::geteuid().is_root() && (m.uid(), m.gid()) != (0, 0) {
            let (uid, gid) = (
                rustix::fs::Uid::from_raw(m.uid()),
                rustix::fs::Gid::from_raw(m.gid()),
            );
            // Best effort: the report is written either way. A chown clears
            // set-id bits, so the mode is set again after it.
            let _ = rustix::fs::fchown(file, Some(uid), Some(gid));
            let _ = rustix::fs::fchmod(file, rustix::fs::Mode::from_raw_mode(m.mode() & 0o7777));
        }
    }
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("failed to sync {}", tmp.path().display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("failed to write the report to {shown}"))?;
    // The rename itself on disk; a folder that cannot be synced still has it.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_folders_name_their_process() {
        assert_eq!(proc_fd_owner(Path::new("/proc/42/fd")), Some(42));
        assert_eq!(proc_fd_owner(Path::new("/proc/42/task/43/fd")), Some(42));
        assert_eq!(proc_fd_owner(Path::new("/proc/42")), None);
        assert_eq!(proc_fd_owner(Path::new("/tmp/proc/42/fd")), None);
        assert_eq!(proc_fd_owner(Path::new("/proc/self/fd")), None);
    }

    #[test]
    fn dash_is_stdout_and_a_trailing_slash_a_folder() {
        assert!(matches!(resolve(Path::new("-")), Ok(Target::Stdout)));
        assert!(matches!(
            resolve(Path::new("report/")),
            Err(TargetError::IsAFolder(_))
        ));
    }
}

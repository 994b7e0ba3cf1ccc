//! `drover serve`'s settings: the command line over the `[serve]` table of
//! `--config FILE`, over drover's defaults; and the file's `[defaults]`,
//! which every submitted job inherits as a job file's jobs do.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::model::job::{HumanDuration, JobDefaults, Size, resolve_path};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7070";
pub const DEFAULT_STATE_DIR: &str = ".drover";
pub const DEFAULT_MAX_QUEUED: usize = 10_000;
pub const DEFAULT_OUTPUT_LIMIT: u64 = 64 << 20;
pub const DEFAULT_MAX_BODY: usize = 8 << 20;
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Under Kubernetes' default grace of 30 s.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(25);

/// What the command line says (each `None` where it says nothing).
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
    pub max_parallel: Option<usize>,
    /// `--store URL`: a fleet's PostgreSQL.
    pub store: Option<String>,
}

/// The settings the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    /// The bearer token every `/v1/` call must carry; never logged.
    pub token: Option<String>,
    pub max_parallel: Option<NonZeroUsize>,
    pub max_queued: usize,
    /// Programs jobs may run (`None`: any).
    pub allow: Option<Vec<String>>,
    /// `sh` jobs may run: always without `allow`, with it only where
    /// `allow_shell = true`.
    pub allow_shell: bool,
    pub output_limit: u64,
    pub retention: Duration,
    pub drain_timeout: Duration,
    pub max_body: usize,
    pub defaults: JobDefaults,
    /// Relative paths in jobs are relative to this (the server's folder).
    pub base: PathBuf,
    /// A fleet's PostgreSQL (`postgres://…`); `None`: this server's own
    /// SQLite store.
    pub store: Option<String>,
    /// A fleet worker's lease: it kills its jobs if it cannot renew it in
    /// time, and the others take them over once it has expired.
    pub lease: Duration,
    /// The niceness jobs run at (`[serve] nice`): above the server's own,
    /// so that its API and its bookkeeping win the CPU from its jobs.
    pub nice: i32,
}

/// The niceness of the server's jobs, by default: `nice`'s own step. Jobs
/// are the batch work of a service: under contention the API answers first
/// (at -j16 of `true` on 2 CPUs: 3 700 accepted/s at 0, 5 000 at 10), and
/// the jobs, together, lose no throughput (the CPU they do not get is the
/// server's, which would have had to take it from them anyway).
pub const DEFAULT_NICE: i32 = 10;

/// A fleet worker's lease, by default.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    serve: Section,
    #[serde(default)]
    defaults: JobDefaults,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Section {
    listen: Option<String>,
    state_dir: Option<String>,
    token_file: Option<String>,
    max_parallel: Option<usize>,
    max_queued: Option<usize>,
    allow: Option<Vec<String>>,
    allow_shell: Option<bool>,
    output_limit: Option<Size>,
    retention: Option<HumanDuration>,
    drain_timeout: Option<HumanDuration>,
    max_body: Option<Size>,
    store: Option<String>,
    lease: Option<HumanDuration>,
    nice: Option<i32>,
}

/// Bad settings: what is wrong and how to mend it, for exit code 2.
#[derive(Debug)]
pub struct SettingsError(pub String);

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The settings from `flags`, the config file it names, and `$DROVER_TOKEN`
/// (`env_token`).
pub fn settings(flags: Flags, env_token: Option<String>) -> Result<Settings, SettingsError> {
    let here = std::env::current_dir()
        .map_err(|e| SettingsError(format!("cannot read the current folder: {e}")))?;
    let (file, file_dir) = match &flags.config {
        None => (File::default(), here.clone()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| SettingsError(format!("cannot read {}: {e}", path.display())))?;
            let file: File = toml::from_str(&text).map_err(|e| {
                SettingsError(format!("{}: {}", path.display(), located(&text, &e)))
            })?;
            let dir = path
                .parent()
                .map(|p| here.join(p))
                .unwrap_or_else(|| here.clone());
            (file, dir)
        }
    };
    let s = file.serve;
    let listen_text = flags
        .listen
        .or(s.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        SettingsError(format!(
            "--listen {listen_text:?} is not an address and port; write e.g. 127.0.0.1:7070 or 0.0.0.0:7070"
        ))
    })?;
    let state_dir = match (flags.state_dir, s.state_dir) {
        (Some(d), _) => here.join(d),
        (None, Some(d)) => resolve_path(&file_dir, &d),
        (None, None) => here.join(DEFAULT_STATE_DIR),
    };
    let token_file = match (flags.token_file, s.token_file) {
        (Some(f), _) => Some(here.join(f)),
        (None, Some(f)) => Some(resolve_path(&file_dir, &f)),
        (None, None) => None,
    };
    let token = match token_file {
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                SettingsError(format!(
                    "cannot read the token file {}: {e}",
                    path.display()
                ))
            })?;
            Some(check_token(
                text.trim_end_matches(['\n', '\r']),
                &path.display().to_string(),
            )?)
        }
        None => match env_token {
            Some(t) => Some(check_token(&t, "$DROVER_TOKEN")?),
            None => None,
        },
    };
    if token.is_none() && !listen.ip().is_loopback() {
        return Err(SettingsError(format!(
            "refusing to listen on {listen} without a token: anyone who can reach it could run programs on this machine; give one with --token-file FILE or $DROVER_TOKEN, or listen on 127.0.0.1"
        )));
    }
    let max_parallel = flags.max_parallel.or(s.max_parallel);
    if let Some(list) = &s.allow {
        if let Some(bad) = list.iter().find(|p| p.trim().is_empty()) {
            return Err(SettingsError(format!(
                "[serve] allow: {bad:?} is not a program; list program names or paths, e.g. allow = [\"grep\", \"/usr/bin/convert\"]"
            )));
        }
    }
    let max_queued = s.max_queued.unwrap_or(DEFAULT_MAX_QUEUED);
    if max_queued == 0 {
        return Err(SettingsError(
            "[serve] max_queued = 0 would refuse every job; give at least 1 (default 10000)".into(),
        ));
    }
    let store = flags.store.or(s.store);
    if let Some(url) = &store
        && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
    {
        return Err(SettingsError(format!(
            "--store {:?}: drover's fleet store is PostgreSQL; write postgres://USER:PASSWORD@HOST:PORT/DATABASE (without --store, each server keeps its own SQLite store in --state-dir)",
            crate::store::pg::redact(url)
        )));
    }
    let lease = s.lease.map_or(DEFAULT_LEASE, |d| d.0);
    if lease < Duration::from_secs(1) {
        return Err(SettingsError(format!(
            "[serve] lease = {:?} is too short to renew; give at least 1s (default 30s)",
            humantime::format_duration(lease).to_string()
        )));
    }
    let nice = s.nice.unwrap_or(DEFAULT_NICE);
    if !(-20..=19).contains(&nice) {
        return Err(SettingsError(format!(
            "[serve] nice = {nice} is not a niceness; give -20 (first) to 19 (last), as for nice(1) (default {DEFAULT_NICE}; below the server's own needs root)"
        )));
    }
    Ok(Settings {
        listen,
        state_dir,
        token,
        max_parallel: max_parallel.and_then(NonZeroUsize::new),
        max_queued,
        // Without an allow-list any program may run, /bin/sh among them; with
        // one, `sh` jobs only where the list says so.
        allow_shell: s.allow.is_none() || s.allow_shell == Some(true),
        allow: s.allow,
        output_limit: s.output_limit.map_or(DEFAULT_OUTPUT_LIMIT, |s| s.0 as u64),
        retention: s.retention.map_or(DEFAULT_RETENTION, |d| d.0),
        drain_timeout: s.drain_timeout.map_or(DEFAULT_DRAIN_TIMEOUT, |d| d.0),
        max_body: s.max_body.map_or(DEFAULT_MAX_BODY, |s| s.0),
        defaults: file.defaults,
        base: here,
        store,
        lease,
        nice,
    })
}

fn check_token(token: &str, from: &str) -> Result<String, SettingsError> {
    if token.trim().is_empty() {
        return Err(SettingsError(format!(
            "the token from {from} is empty; put a long random string there, e.g. `head -c 32 /dev/urandom | base64`"
        )));
    }
    Ok(token.to_string())
}

/// A TOML error with its line and column.
fn located(text: &str, e: &toml::de::Error) -> String {
    let message = e.message();
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {col}: {message}")
        }
        None => message.to_string(),
    }
}

/// Where a job's output files live in `state_dir`.
pub fn output_path(state_dir: &Path, id: i64, stream: &str) -> PathBuf {
    state_dir.join("output").join(format!("{id}.{stream}"))
}

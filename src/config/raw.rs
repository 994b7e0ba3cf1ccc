//! The job file as written: serde types that mirror the TOML, with spans.
//!
//! Fields whose TOML type varies (durations, `stdin`, `stdout`, `matrix`, ...)
//! are kept as `toml::Value` here and given a type in `validate`, so the
//! errors can say what was expected in the job file's own words.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub type Sp<T> = Spanned<T>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    #[serde(default)]
    pub run: RawRun,
    #[serde(default)]
    pub defaults: Option<RawJob>,
    #[serde(default)]
    pub job: Vec<RawJob>,
    #[serde(default)]
    pub pipeline: Vec<RawPipeline>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRun {
    pub max_parallel: Option<Sp<i64>>,
    pub fail_fast: Option<bool>,
    pub show_output: Option<Sp<String>>,
}

/// A `[[job]]` table; `[defaults]` uses the same shape (job-only keys are
/// rejected there by validation).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJob {
    pub name: Option<Sp<String>>,
    pub cmd: Option<Sp<Vec<Sp<String>>>>,
    pub sh: Option<Sp<String>>,
    pub matrix: Option<Sp<toml::Table>>,
    pub needs: Option<Sp<Vec<Sp<String>>>>,
    pub stdin: Option<Sp<toml::Value>>,
    pub stdout: Option<Sp<toml::Value>>,
    pub stderr: Option<Sp<toml::Value>>,
    pub timeout: Option<Sp<toml::Value>>,
    pub kill_grace: Option<Sp<toml::Value>>,
    pub retries: Option<Sp<i64>>,
    pub retry_delay: Option<Sp<toml::Value>>,
    pub ok_codes: Option<Sp<Vec<Sp<i64>>>>,
    pub env: Option<Sp<BTreeMap<String, Sp<toml::Value>>>>,
    pub cwd: Option<Sp<String>>,
    pub capture_limit: Option<Sp<toml::Value>>,
}

/// Keys a `[[job]]` may have, for "did you mean" suggestions.
pub const JOB_KEYS: &[&str] = &[
    "name",
    "cmd",
    "sh",
    "matrix",
    "needs",
    "stdin",
    "stdout",
    "stderr",
    "timeout",
    "kill_grace",
    "retries",
    "retry_delay",
    "ok_codes",
    "env",
    "cwd",
    "capture_limit",
];

/// Keys that only make sense on one job, never in `[defaults]`.
pub const JOB_ONLY_KEYS: &[&str] = &["name", "cmd", "sh", "matrix", "needs", "stdin"];

/// A `[[pipeline]]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    pub name: Option<Sp<String>>,
    pub items: Option<Sp<toml::Value>>,
    pub queue: Option<Sp<i64>>,
    pub needs: Option<Sp<Vec<Sp<String>>>>,
    pub fail_fast: Option<bool>,
    pub timeout: Option<Sp<toml::Value>>,
    pub output: Option<Sp<toml::Value>>,
    #[serde(default)]
    pub stage: Vec<Sp<RawStage>>,
}

/// A `[[pipeline.stage]]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    pub name: Option<Sp<String>>,
    pub cmd: Option<Sp<Vec<Sp<String>>>>,
    pub sh: Option<Sp<String>>,
    pub workers: Option<Sp<i64>>,
    pub mode: Option<Sp<String>>,
    pub emit: Option<Sp<String>>,
    pub timeout: Option<Sp<toml::Value>>,
    pub kill_grace: Option<Sp<toml::Value>>,
    pub retries: Option<Sp<i64>>,
    pub retry_delay: Option<Sp<toml::Value>>,
    pub ok_codes: Option<Sp<Vec<Sp<i64>>>>,
    pub env: Option<Sp<BTreeMap<String, Sp<toml::Value>>>>,
    pub cwd: Option<Sp<String>>,
    pub capture_limit: Option<Sp<toml::Value>>,
}

impl RawStage {
    /// The settings a stage shares with jobs, as a job table (to inherit
    /// `[defaults]` the same way).
    pub fn settings_table(&mut self) -> RawJob {
        RawJob {
            timeout: self.timeout.take(),
            kill_grace: self.kill_grace.take(),
            retries: self.retries.take(),
            retry_delay: self.retry_delay.take(),
            ok_codes: self.ok_codes.take(),
            env: self.env.take(),
            cwd: self.cwd.take(),
            capture_limit: self.capture_limit.take(),
            ..RawJob::default()
        }
    }
}

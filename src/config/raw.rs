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
    pub pipeline: Option<Sp<toml::Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRun {
    pub max_parallel: Option<Sp<i64>>,
    pub fail_fast: Option<bool>,
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

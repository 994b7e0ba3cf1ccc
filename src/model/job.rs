//! A job as a user writes it: the keys of a `[[job]]` table, typed.
//!
//! The job file gives one `JobDef` per job after matrix expansion; `serve`
//! will take the same keys as JSON and keep them in its store. `into_spec`
//! is the one way from what a user wrote to the `JobSpec` that runs, so the
//! rules (a duration needs a unit, "0s" is no timeout, relative paths are
//! relative to a base folder) are the same on every face.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::plan::{
    DEFAULT_CAPTURE_LIMIT, DEFAULT_KILL_GRACE, JobName, JobSpec, OutputSpec, Program, StdinSpec,
};

/// One job, with the keys of a `[[job]]` table (after matrix expansion).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobDef {
    pub name: String,
    /// argv, no shell; exactly one of `cmd` and `sh`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// A string run as `/bin/sh -c`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sh: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<StdinDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<OutputDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<OutputDef>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_grace: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok_codes: Option<Vec<i32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_limit: Option<Size>,
    /// Names or globs of jobs that must succeed first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
}

/// The keys of a `JobDef`, in the order of the struct (a unit test checks
/// that serde agrees).
pub const JOB_DEF_KEYS: &[&str] = &[
    "name",
    "cmd",
    "sh",
    "stdin",
    "stdout",
    "stderr",
    "env",
    "cwd",
    "timeout",
    "kill_grace",
    "retries",
    "retry_delay",
    "ok_codes",
    "capture_limit",
    "needs",
];

/// The settings a job inherits unless it sets its own: `[defaults]` of a job
/// file, a pipeline stage's own keys.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobDefaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<OutputDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<OutputDef>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_grace: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok_codes: Option<Vec<i32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_limit: Option<Size>,
}

/// Settings with `defaults` filled in and paths resolved: what a `JobSpec`
/// takes besides its program, stdin and needs.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub stdout: OutputSpec,
    pub stderr: OutputSpec,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub timeout: Option<Duration>,
    pub kill_grace: Duration,
    pub retries: u32,
    pub retry_delay: Duration,
    pub ok_codes: Vec<i32>,
    pub capture_limit: usize,
}

impl JobDefaults {
    /// These settings over `defaults`: own keys win, `env` is merged key by
    /// key. Only what `defaults` adds is copied.
    pub fn over(self, defaults: &JobDefaults) -> JobDefaults {
        let env = if defaults.env.is_empty() {
            self.env
        } else {
            let mut env = defaults.env.clone();
            env.extend(self.env);
            env
        };
        JobDefaults {
            stdout: self.stdout.or_else(|| defaults.stdout.clone()),
            stderr: self.stderr.or_else(|| defaults.stderr.clone()),
            env,
            cwd: self.cwd.or_else(|| defaults.cwd.clone()),
            timeout: self.timeout.or(defaults.timeout),
            kill_grace: self.kill_grace.or(defaults.kill_grace),
            retries: self.retries.or(defaults.retries),
            retry_delay: self.retry_delay.or(defaults.retry_delay),
            ok_codes: self.ok_codes.or_else(|| defaults.ok_codes.clone()),
            capture_limit: self.capture_limit.or(defaults.capture_limit),
        }
    }

    /// The settings with drover's defaults for what is unset, relative paths
    /// relative to `base`.
    pub fn resolve(self, base: &Path) -> Resolved {
        let output = |o: Option<OutputDef>| match o {
            None | Some(OutputDef::Capture) => OutputSpec::Capture,
            Some(OutputDef::Null) => OutputSpec::Null,
            Some(OutputDef::Inherit) => OutputSpec::Inherit,
            Some(OutputDef::File { file, append }) => OutputSpec::File {
                path: resolve_path(base, &file),
                append,
            },
        };
        Resolved {
            stdout: output(self.stdout),
            stderr: output(self.stderr),
            env: self.env.into_iter().collect(),
            cwd: resolve_path(base, self.cwd.as_deref().unwrap_or(".")),
            timeout: no_zero(self.timeout.map(|d| d.0)),
            kill_grace: self.kill_grace.map_or(DEFAULT_KILL_GRACE, |d| d.0),
            retries: self.retries.unwrap_or(0),
            retry_delay: self.retry_delay.map_or(Duration::ZERO, |d| d.0),
            ok_codes: self.ok_codes.unwrap_or_else(|| vec![0]),
            capture_limit: self.capture_limit.map_or(DEFAULT_CAPTURE_LIMIT, |s| s.0),
        }
    }
}

impl JobDef {
    /// Reads a job from JSON; errors name the field (`timeout: ...`), and an
    /// unknown key names the nearest valid one.
    pub fn from_json(text: &str) -> Result<JobDef, JobDefError> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| JobDefError::new("", format!("not valid JSON: {e}")))?;
        let serde_json::Value::Object(map) = &value else {
            return Err(JobDefError::new("", "a job is a JSON object")
                .help("write e.g. {\"name\": \"hello\", \"cmd\": [\"echo\", \"hi\"]}"));
        };
        for (key, v) in map {
            check_field(key, v)?;
        }
        JobDef::deserialize(&value).map_err(|e| {
            // Every field was read above; what is left is a missing key.
            let message = e.to_string();
            let field = message
                .strip_prefix("missing field `")
                .and_then(|r| r.split('`').next())
                .unwrap_or_default()
                .to_string();
            JobDefError::new(field, message)
        })
    }

    /// The settings of this job that it could also inherit, taken out.
    fn take_settings(&mut self) -> JobDefaults {
        JobDefaults {
            stdout: self.stdout.take(),
            stderr: self.stderr.take(),
            env: std::mem::take(&mut self.env),
            cwd: self.cwd.take(),
            timeout: self.timeout,
            kill_grace: self.kill_grace,
            retries: self.retries,
            retry_delay: self.retry_delay,
            ok_codes: self.ok_codes.take(),
            capture_limit: self.capture_limit,
        }
    }

    /// The job ready to run, over `defaults`, with relative paths relative to
    /// `base`. `needs` and `stdin = { from }` name other jobs, which only the
    /// caller knows: the spec's `needs` is empty and its stdin `Null` for them.
    pub fn into_spec(
        mut self,
        base: &Path,
        defaults: &JobDefaults,
    ) -> Result<JobSpec, JobDefError> {
        let name = JobName::parse(&self.name).map_err(|why| JobDefError::new("name", why))?;
        let program = match (self.cmd.take(), self.sh.take()) {
            (Some(_), Some(_)) => {
                return Err(
                    JobDefError::new("sh", "the job has both `cmd` and `sh`").help(
                        "keep `cmd` (an argv, no shell) or `sh` (a /bin/sh -c string), not both",
                    ),
                );
            }
            (None, None) => {
                return Err(JobDefError::new("", "the job has neither `cmd` nor `sh`")
                    .help("add `cmd = [\"program\", \"arg\"]` or `sh = \"shell command\"`"));
            }
            (Some(cmd), None) => match cmd.first() {
                None => {
                    return Err(JobDefError::new("cmd", "`cmd` is empty")
                        .help("name the program and its arguments: `cmd = [\"echo\", \"hi\"]`"));
                }
                Some(program) if program.is_empty() => {
                    return Err(
                        JobDefError::new("cmd", "the program name in `cmd` is empty")
                            .help("the first element of `cmd` is the program to run"),
                    );
                }
                Some(_) => Program::Argv(cmd),
            },
            (None, Some(sh)) => Program::Shell(sh),
        };
        if let Some(codes) = &self.ok_codes {
            check_ok_codes(codes)?;
        }
        let stdin = match self.stdin.take() {
            None | Some(StdinDef::From { .. }) => StdinSpec::Null,
            Some(StdinDef::Text(text)) => StdinSpec::Bytes(Arc::from(text.into_bytes())),
            Some(StdinDef::File { file }) => StdinSpec::File(resolve_path(base, &file)),
            Some(StdinDef::Stream { .. }) => {
                return Err(JobDefError::new(
                    "stdin",
                    "`stdin = { stream = true }` needs a server to feed it, and this face has none",
                )
                .help("write `stdin = \"text\"`, `stdin = { file = \"path\" }` or `stdin = { from = \"job\" }`"));
            }
        };
        let r = self.take_settings().over(defaults).resolve(base);
        Ok(JobSpec {
            name,
            program,
            stdin,
            stdout: r.stdout,
            stderr: r.stderr,
            env: r.env,
            cwd: r.cwd,
            timeout: r.timeout,
            kill_grace: r.kill_grace,
            retries: r.retries,
            retry_delay: r.retry_delay,
            ok_codes: r.ok_codes,
            capture_limit: r.capture_limit,
            needs: Vec::new(),
            nice: None,
        })
    }
}

/// Reads one field of a JSON job on its own, so that its error can name it.
fn check_field(key: &str, v: &serde_json::Value) -> Result<(), JobDefError> {
    fn read<T: DeserializeOwned>(key: &str, v: &serde_json::Value) -> Result<(), JobDefError> {
        T::deserialize(v)
            .map(drop)
            .map_err(|e| JobDefError::new(key, e.to_string()))
    }
    match key {
        "name" | "sh" | "cwd" => read::<String>(key, v),
        "cmd" | "needs" => read::<Vec<String>>(key, v),
        "env" => read::<BTreeMap<String, String>>(key, v),
        "stdin" => read::<StdinDef>(key, v),
        "stdout" | "stderr" => read::<OutputDef>(key, v),
        "timeout" | "kill_grace" | "retry_delay" => read::<HumanDuration>(key, v),
        "retries" => read::<u32>(key, v),
        "ok_codes" => {
            let codes: Vec<i32> =
                Vec::deserialize(v).map_err(|e| JobDefError::new(key, e.to_string()))?;
            check_ok_codes(&codes)
        }
        "capture_limit" => read::<Size>(key, v),
        _ => {
            let e = JobDefError::new(key, format!("unknown key `{key}`"));
            Err(match nearest(key, JOB_DEF_KEYS.iter().copied()) {
                Some(near) => e.help(format!("did you mean `{near}`?")),
                None => e.help(format!("the keys of a job are {}", JOB_DEF_KEYS.join(", "))),
            })
        }
    }
}

fn check_ok_codes(codes: &[i32]) -> Result<(), JobDefError> {
    if codes.is_empty() {
        return Err(JobDefError::new(
            "ok_codes",
            "`ok_codes` is empty, so the job could never succeed",
        )
        .help("list the exit codes that count as success, e.g. `ok_codes = [0]`"));
    }
    match codes.iter().find(|c| u8::try_from(**c).is_err()) {
        Some(c) => Err(
            JobDefError::new("ok_codes", format!("{c} is not an exit code"))
                .help("exit codes are whole numbers from 0 to 255, e.g. `ok_codes = [0, 1]`"),
        ),
        None => Ok(()),
    }
}

/// A problem with one field of a job, without a place in a file: the job
/// file locates it, the API puts `field` in its error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDefError {
    /// The key, e.g. `timeout`; empty for the job as a whole.
    pub field: String,
    pub message: String,
    pub help: Option<String>,
}

impl JobDefError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            help: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for JobDefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, " ({help})")?;
        }
        Ok(())
    }
}

impl std::error::Error for JobDefError {}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A duration written with its unit: `"30s"`, `"1m 30s"`, `"250ms"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

/// `"30s"`, `"1m 30s"`: the rule of every face. A bare number is refused,
/// its unit would be a guess.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| format!("{text:?} is not a duration: {e}"))
}

/// The duration `secs` seconds written with a unit, the fix for a bare number.
pub fn seconds_with_unit(secs: f64) -> String {
    humantime::format_duration(Duration::from_secs_f64(secs)).to_string()
}

/// A `timeout` of zero is none, as for timeout(1): a job can so lift the
/// timeout of its defaults.
pub fn no_zero(timeout: Option<Duration>) -> Option<Duration> {
    timeout.filter(|t| !t.is_zero())
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration with a unit such as \"30s\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<HumanDuration, E> {
                parse_duration(s).map(HumanDuration).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<HumanDuration, E> {
                self.visit_f64(n as f64)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<HumanDuration, E> {
                self.visit_f64(n as f64)
            }
            fn visit_f64<E: de::Error>(self, x: f64) -> Result<HumanDuration, E> {
                if x.is_finite() && x >= 0.0 {
                    Err(E::custom(format!(
                        "{x} is a bare number; a duration needs a unit: \"{}\"",
                        seconds_with_unit(x)
                    )))
                } else {
                    Err(E::custom(format!("{x} is not a duration")))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A number of bytes, written `"4MiB"`, `"512 KiB"` or as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub usize);

pub fn parse_size(text: &str) -> Result<usize, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| usize::try_from(b.as_u64()).unwrap_or(usize::MAX))
        .map_err(|e| format!("{text:?} is not a size: {e}"))
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0 as u64)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as \"4MiB\" or a number of bytes")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Size, E> {
                parse_size(s).map(Size).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Size, E> {
                Ok(Size(usize::try_from(n).unwrap_or(usize::MAX)))
            }
            // TOML's integers are signed.
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Size, E> {
                match u64::try_from(n) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::custom(format!("{n} is not a size"))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Where a job's stdin comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum StdinDef {
    /// These bytes.
    Text(String),
    File {
        file: String,
    },
    /// Another job's stdout, streamed.
    From {
        from: String,
    },
    /// Fed over the API while the job runs (`drover serve`); a job file
    /// refuses it.
    Stream {
        stream: bool,
    },
}

/// The keys of a stdin table.
pub const STDIN_KEYS: [&str; 3] = ["file", "from", "stream"];

impl<'de> Deserialize<'de> for StdinDef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StdinDef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, {\"file\": path}, {\"from\": job} or {\"stream\": true}")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<StdinDef, E> {
                Ok(StdinDef::Text(s.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StdinDef, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom(
                        "a stdin table takes exactly one of `file`, `from` or `stream`, found no key",
                    ));
                };
                let def = match key.as_str() {
                    "file" => StdinDef::File {
                        file: map.next_value()?,
                    },
                    "from" => StdinDef::From {
                        from: map.next_value()?,
                    },
                    "stream" => StdinDef::Stream {
                        stream: map.next_value()?,
                    },
                    other => {
                        let near = nearest(other, STDIN_KEYS)
                            .map(|n| format!("; did you mean `{n}`?"))
                            .unwrap_or_default();
                        return Err(de::Error::custom(format!(
                            "unknown key `{other}` in a stdin table{near}"
                        )));
                    }
                };
                if let Some(more) = map.next_key::<String>()? {
                    return Err(de::Error::custom(format!(
                        "a stdin table takes exactly one of `file`, `from` or `stream`, found `{key}` and `{more}`"
                    )));
                }
                Ok(def)
            }
        }
        d.deserialize_any(V)
    }
}

/// Where a job's stdout or stderr goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputDef {
    /// For the report, up to `capture_limit` (the default).
    Capture,
    Null,
    /// drover's own stdout/stderr.
    Inherit,
    File {
        file: String,
        append: bool,
    },
}

/// The output modes written as a string.
pub const OUTPUT_MODES: [&str; 3] = ["capture", "null", "inherit"];

impl OutputDef {
    /// A mode written as a string; None if it is not one of `OUTPUT_MODES`.
    pub fn mode(text: &str) -> Option<OutputDef> {
        match text {
            "capture" => Some(OutputDef::Capture),
            "null" => Some(OutputDef::Null),
            "inherit" => Some(OutputDef::Inherit),
            _ => None,
        }
    }
}

impl Serialize for OutputDef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct File<'a> {
            file: &'a str,
            append: bool,
        }
        match self {
            OutputDef::Capture => s.serialize_str("capture"),
            OutputDef::Null => s.serialize_str("null"),
            OutputDef::Inherit => s.serialize_str("inherit"),
            OutputDef::File { file, append } => File {
                file,
                append: *append,
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for OutputDef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OutputDef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "\"capture\", \"null\", \"inherit\" or {\"file\": path, \"append\": false}",
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<OutputDef, E> {
                OutputDef::mode(s).ok_or_else(|| {
                    let near = nearest(s, OUTPUT_MODES)
                        .map(|n| format!("; did you mean \"{n}\"?"))
                        .unwrap_or_default();
                    E::custom(format!("{s:?} is not an output mode{near}"))
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OutputDef, A::Error> {
                let (mut file, mut append) = (None, false);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "file" => file = Some(map.next_value::<String>()?),
                        "append" => append = map.next_value()?,
                        other => {
                            let near = nearest(other, ["file", "append"])
                                .map(|n| format!("; did you mean `{n}`?"))
                                .unwrap_or_default();
                            return Err(de::Error::custom(format!(
                                "unknown key `{other}` in an output table{near}"
                            )));
                        }
                    }
                }
                match file {
                    Some(file) => Ok(OutputDef::File { file, append }),
                    None => Err(de::Error::custom("an output table needs `file`")),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A path as written, relative to `base` (the job file's folder).
pub fn resolve_path(base: &Path, p: &str) -> PathBuf {
    if p == "." || p.is_empty() {
        base.to_path_buf()
    } else {
        base.join(p.strip_prefix("./").unwrap_or(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key set, each to something other than its default.
    fn full() -> JobDef {
        JobDef {
            name: "count-1".into(),
            cmd: Some(vec!["wc".into(), "-l".into()]),
            sh: None,
            stdin: Some(StdinDef::File {
                file: "in/1.txt".into(),
            }),
            stdout: Some(OutputDef::File {
                file: "out/1.txt".into(),
                append: true,
            }),
            stderr: Some(OutputDef::Null),
            env: BTreeMap::from([("LANG".into(), "C".into()), ("N".into(), "1".into())]),
            cwd: Some("work".into()),
            timeout: Some(HumanDuration(Duration::from_millis(1500))),
            kill_grace: Some(HumanDuration(Duration::from_secs(2))),
            retries: Some(3),
            retry_delay: Some(HumanDuration(Duration::from_millis(250))),
            ok_codes: Some(vec![0, 1]),
            capture_limit: Some(Size(4 << 20)),
            needs: vec!["build".into(), "test-*".into()],
        }
    }

    #[test]
    fn json_round_trip_keeps_every_key() {
        let jobs = [
            full(),
            JobDef {
                cmd: None,
                sh: Some("echo hi".into()),
                stdin: Some(StdinDef::Text("x\n".into())),
                stdout: Some(OutputDef::Inherit),
                stderr: Some(OutputDef::Capture),
                ..full()
            },
            JobDef {
                stdin: Some(StdinDef::From {
                    from: "make".into(),
                }),
                ..full()
            },
            JobDef {
                stdin: Some(StdinDef::Stream { stream: true }),
                ..full()
            },
            JobDef {
                name: "bare".into(),
                cmd: Some(vec!["true".into()]),
                ..JobDef::default()
            },
        ];
        for job in jobs {
            let json = serde_json::to_string(&job).unwrap();
            assert_eq!(JobDef::from_json(&json).unwrap(), job, "{json}");
            let toml = toml::to_string(&job).unwrap();
            assert_eq!(toml::from_str::<JobDef>(&toml).unwrap(), job, "{toml}");
        }
        let json = serde_json::to_value(full()).unwrap();
        assert_eq!(json["timeout"], "1s 500ms");
        assert_eq!(json["capture_limit"], 4 << 20);
    }

    #[test]
    fn toml_and_json_with_the_same_keys_give_the_same_spec() {
        let toml = r#"
            name = "count-1"
            cmd = ["wc", "-l"]
            stdin = { file = "in/1.txt" }
            stdout = { file = "out/1.txt", append = true }
            stderr = "null"
            env = { N = "1" }
            cwd = "work"
            timeout = "1m 30s"
            retries = 3
            retry_delay = "250ms"
            ok_codes = [0, 1]
            capture_limit = "4MiB"
            needs = ["build"]
        "#;
        let json = r#"{
            "name": "count-1", "cmd": ["wc", "-l"], "stdin": {"file": "in/1.txt"},
            "stdout": {"file": "out/1.txt", "append": true}, "stderr": "null",
            "env": {"N": "1"}, "cwd": "work", "timeout": "1m 30s", "retries": 3,
            "retry_delay": "250ms", "ok_codes": [0, 1], "capture_limit": "4MiB",
            "needs": ["build"]
        }"#;
        let from_toml = toml::from_str::<JobDef>(toml).unwrap();
        let from_json = JobDef::from_json(json).unwrap();
        assert_eq!(from_toml, from_json);
        let defaults = JobDefaults {
            env: BTreeMap::from([("LANG".into(), "C".into()), ("N".into(), "0".into())]),
            kill_grace: Some(HumanDuration(Duration::from_secs(1))),
            ..JobDefaults::default()
        };
        let base = Path::new("/jobs");
        let a = from_toml.into_spec(base, &defaults).unwrap();
        let b = from_json.into_spec(base, &defaults).unwrap();
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_eq!(a.timeout, Some(Duration::from_secs(90)));
        assert_eq!(a.kill_grace, Duration::from_secs(1));
        assert_eq!(a.capture_limit, 4 << 20);
        assert_eq!(a.cwd, Path::new("/jobs/work"));
        assert_eq!(
            a.env,
            [("LANG".into(), "C".into()), ("N".into(), "1".into())]
        );
        assert!(matches!(&a.stdin, StdinSpec::File(p) if p == Path::new("/jobs/in/1.txt")));
        assert_eq!(
            a.stdout,
            OutputSpec::File {
                path: "/jobs/out/1.txt".into(),
                append: true
            }
        );
    }

    #[test]
    fn zero_timeout_is_none_and_lifts_the_default() {
        let defaults = JobDefaults {
            timeout: Some(HumanDuration(Duration::from_secs(30))),
            ..JobDefaults::default()
        };
        let job = JobDef::from_json(r#"{"name": "a", "sh": "true", "timeout": "0s"}"#).unwrap();
        let spec = job.into_spec(Path::new("/"), &defaults).unwrap();
        assert_eq!(spec.timeout, None);
    }

    #[test]
    fn an_unknown_key_is_refused_with_the_nearest_key() {
        let e = JobDef::from_json(r#"{"name": "a", "cmd": ["true"], "timout": "1s"}"#).unwrap_err();
        assert_eq!(e.field, "timout");
        assert_eq!(e.message, "unknown key `timout`");
        assert_eq!(e.help.as_deref(), Some("did you mean `timeout`?"));
        let e = JobDef::from_json(r#"{"name": "a", "cmd": ["true"], "zzz": 1}"#).unwrap_err();
        assert!(e.help.unwrap().contains("kill_grace"));
        // serde's own list of keys is the one suggestions come from.
        let serde = serde_json::from_str::<JobDef>(r#"{"zzz": 1}"#)
            .unwrap_err()
            .to_string();
        let listed: Vec<&str> = serde.split('`').skip(3).step_by(2).collect();
        assert_eq!(listed, JOB_DEF_KEYS);
    }

    #[test]
    fn each_bad_value_is_refused_naming_its_field() {
        let cases = [
            (
                r#""timeout": 1"#,
                "timeout",
                "a duration needs a unit: \"1s\"",
            ),
            (r#""timeout": "1""#, "timeout", "is not a duration"),
            (
                r#""kill_grace": "5 parsecs""#,
                "kill_grace",
                "is not a duration",
            ),
            (r#""retry_delay": -1"#, "retry_delay", "is not a duration"),
            (r#""retries": -1"#, "retries", "expected u32"),
            (
                r#""ok_codes": [300]"#,
                "ok_codes",
                "300 is not an exit code",
            ),
            (r#""ok_codes": []"#, "ok_codes", "could never succeed"),
            (
                r#""capture_limit": "4 MiBs""#,
                "capture_limit",
                "is not a size",
            ),
            (
                r#""capture_limit": -4"#,
                "capture_limit",
                "-4 is not a size",
            ),
            (
                r#""capture_limit": true"#,
                "capture_limit",
                "expected a size",
            ),
            (r#""env": {"N": 1}"#, "env", "expected a string"),
            (r#""cwd": ["a"]"#, "cwd", "expected a string"),
            (r#""needs": "build""#, "needs", "expected a sequence"),
            (r#""stdin": {"fil": "x"}"#, "stdin", "did you mean `file`?"),
            (
                r#""stdin": {"file": "x", "from": "y"}"#,
                "stdin",
                "exactly one of",
            ),
            (r#""stdin": 5"#, "stdin", "expected a string, {\"file\""),
            (
                r#""stdout": "captur""#,
                "stdout",
                "did you mean \"capture\"?",
            ),
            (r#""stderr": {"append": true}"#, "stderr", "needs `file`"),
            (
                r#""stdout": {"file": "x", "apend": true}"#,
                "stdout",
                "did you mean `append`?",
            ),
        ];
        for (pair, field, says) in cases {
            let json = format!(r#"{{"name": "a", "cmd": ["true"], {pair}}}"#);
            let e = JobDef::from_json(&json).unwrap_err();
            assert_eq!(e.field, field, "{json}: {e}");
            assert!(e.to_string().contains(says), "{json}: {e}");
            assert!(e.to_string().starts_with(&format!("{field}: ")), "{e}");
        }
        let e = JobDef::from_json(r#"{"cmd": ["true"]}"#).unwrap_err();
        assert_eq!(e.field, "name");
    }

    #[test]
    fn into_spec_refuses_what_cannot_run() {
        let spec = |json: &str| {
            JobDef::from_json(json)
                .unwrap()
                .into_spec(Path::new("/"), &JobDefaults::default())
        };
        let cases = [
            (
                r#"{"name": "a b", "sh": "true"}"#,
                "name",
                "the character ' '",
            ),
            (
                r#"{"name": "a", "sh": "x", "cmd": ["y"]}"#,
                "sh",
                "both `cmd` and `sh`",
            ),
            (r#"{"name": "a"}"#, "", "neither `cmd` nor `sh`"),
            (r#"{"name": "a", "cmd": []}"#, "cmd", "`cmd` is empty"),
            (
                r#"{"name": "a", "cmd": [""]}"#,
                "cmd",
                "program name in `cmd` is empty",
            ),
            (
                r#"{"name": "a", "sh": "cat", "stdin": {"stream": true}}"#,
                "stdin",
                "stream",
            ),
        ];
        for (json, field, says) in cases {
            let e = spec(json).unwrap_err();
            assert_eq!(e.field, field, "{json}: {e}");
            assert!(e.message.contains(says), "{json}: {e}");
        }
    }
}

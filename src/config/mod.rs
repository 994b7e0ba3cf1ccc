//! The job file: parse (raw serde types), then validate into a `Plan`.
//!
//! Any problem fails the whole file before anything runs, with errors that
//! name the file, line and column, the job, the key and the fix.

pub mod error;
mod pipeline;
pub mod raw;
mod settings;
mod validate;
mod value;

use std::path::Path;

pub use error::{ConfigError, ConfigErrors};

use crate::plan::Plan;
use raw::{JOB_KEYS, RawFile};

/// Reads and validates a job file.
pub fn load(path: &Path) -> Result<Plan, ConfigErrors> {
    let source = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors::single(
            path,
            String::new(),
            ConfigError::new(format!("cannot read the job file: {e}"))
                .help("check the path and its permissions"),
        )
    })?;
    parse(path, source)
}

/// Validates a job file's text; `path` is used for messages and as the base
/// of relative paths.
pub fn parse(path: &Path, source: String) -> Result<Plan, ConfigErrors> {
    let raw: RawFile = match toml::from_str(&source) {
        Ok(raw) => raw,
        Err(e) => {
            let error = from_toml_error(&source, &e);
            return Err(ConfigErrors::single(path, source, error));
        }
    };
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let base = absolute.parent().unwrap_or(Path::new("/")).to_path_buf();
    validate::plan(path, &source, &base, raw).map_err(|errors| ConfigErrors {
        file: path.to_path_buf(),
        source,
        errors,
    })
}

/// A TOML or serde error, located, with the job it is in and a suggestion
/// for unknown keys.
fn from_toml_error(source: &str, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim().to_string();
    let span = e.span();
    let mut error = ConfigError::new(message.clone()).at(span.clone());
    let offset = span.as_ref().map_or(0, |s| s.start);
    let section = section_at(source, offset);

    if let Some(rest) = message.strip_prefix("unknown field `") {
        let key = rest.split('`').next().unwrap_or_default().to_string();
        let expected: Vec<&str> = rest
            .split_once("expected")
            .map(|(_, list)| list.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        let where_ = match &section {
            Section::Job(_) => "[[job]]".to_string(),
            Section::Table(t) => format!("[{t}]"),
            Section::Top => "the top level".to_string(),
        };
        error = ConfigError::new(format!("unknown key `{key}` in {where_}"))
            .at(span)
            .key(key.clone());
        let candidates: Vec<&str> = if expected.is_empty() {
            JOB_KEYS.to_vec()
        } else {
            expected
        };
        error = match error::nearest(&key, candidates.iter().copied()) {
            Some(near) => error.help(format!("did you mean `{near}`?")),
            None => error.help(format!(
                "the keys allowed here are {}",
                candidates
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
    } else if toml::from_str::<toml::Table>(source).is_err() {
        error = error.help(
            "this is not valid TOML here: check the quotes, brackets and braces, and that each line is `key = value` or a `[table]` header",
        );
    } else if let Some(key) = key_on_line(source, offset) {
        error.message = error
            .message
            .replace("a sequence", "an array")
            .replace("a map", "a table");
        error = error.help(type_help(&key)).key(key);
    }
    if let Section::Job(index) = section {
        error = error.job(job_label(source, index));
    }
    error
}

enum Section {
    Top,
    Table(String),
    /// The `index`th `[[job]]`.
    Job(usize),
}

/// Which table header the byte `offset` falls under.
fn section_at(source: &str, offset: usize) -> Section {
    let mut section = Section::Top;
    let mut jobs = 0;
    let mut pos = 0;
    for line in source.split_inclusive('\n') {
        if pos > offset {
            break;
        }
        let t = line.trim();
        // An error on a header line is about the header's own key, which
        // belongs to the top level.
        if t.starts_with('[') && offset < pos + line.len() {
            return Section::Top;
        }
        if t.starts_with("[[job]]") {
            section = Section::Job(jobs);
            jobs += 1;
        } else if let Some(name) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
            section = Section::Table(name.trim_start_matches('[').trim().to_string());
        }
        pos += line.len();
    }
    section
}

/// The job's name if the file can be read loosely, else `#N`.
fn job_label(source: &str, index: usize) -> String {
    toml::from_str::<toml::Table>(source)
        .ok()
        .and_then(|t| {
            t.get("job")?
                .as_array()?
                .get(index)?
                .get("name")?
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_else(|| format!("#{}", index + 1))
}

/// How to write a value of `key` (for type errors).
fn type_help(key: &str) -> String {
    match key {
        "cmd" => "write an array of strings, `cmd = [\"echo\", \"hi\"]`, or use `sh = \"echo hi\"` for a shell string".into(),
        "sh" => "write one string, run as /bin/sh -c: `sh = \"echo hi\"`".into(),
        "name" => "write a string: `name = \"build\"`".into(),
        "needs" => "write an array of job names or globs: `needs = [\"build\", \"test-*\"]`".into(),
        "retries" => "write a whole number: `retries = 2`".into(),
        "ok_codes" => "write an array of exit codes: `ok_codes = [0, 1]`".into(),
        "env" => "write a table of strings: `env = { LANG = \"C\" }`".into(),
        "cwd" => "write a path as a string: `cwd = \"sub/folder\"`".into(),
        "matrix" => "write a table of arrays: `matrix = { n = [\"1\", \"2\"] }`".into(),
        "max_parallel" => "write a whole number: `max_parallel = 8`, or 0 for no limit".into(),
        "fail_fast" => "write `fail_fast = true` or `fail_fast = false`".into(),
        "show_output" => "write `show_output = \"all\"`, `\"failures\"` or `\"none\"`".into(),
        other => format!("see the job file format in the README for `{other}`"),
    }
}

/// The key of a `key = value` line containing `offset`.
fn key_on_line(source: &str, offset: usize) -> Option<String> {
    let offset = offset.min(source.len());
    let start = source[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = source[start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    .then(|| key.to_string())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::raw::JOB_KEYS;
    use crate::model::job::{JOB_DEF_KEYS, JobDef, JobDefaults};

    #[test]
    fn a_job_file_after_matrix_expansion_is_the_json_job_with_the_same_keys() {
        let file = r#"
[defaults]
timeout = "30s"
env = { LANG = "C", N = "none" }
capture_limit = 1024

[[job]]
name = "sort-{n}"
cmd = ["sort", "-k{n}"]
matrix = { n = [1, 2] }
stdin = "b\na\n"
stdout = { file = "out/{n}.txt" }
env = { N = "{n}" }
cwd = "work/{n}"
timeout = "0s"
ok_codes = [0, 2]
"#;
        let plan = crate::config::parse(Path::new("/jobs/jobs.toml"), file.to_string()).unwrap();
        let defaults: JobDefaults = toml::from_str(
            "timeout = \"30s\"\nenv = { LANG = \"C\", N = \"none\" }\ncapture_limit = 1024",
        )
        .unwrap();
        for (n, spec) in (1..=2).zip(&plan.jobs) {
            let json = format!(
                r#"{{"name": "sort-{n}", "cmd": ["sort", "-k{n}"], "stdin": "b\na\n",
                    "stdout": {{"file": "out/{n}.txt"}}, "env": {{"N": "{n}"}},
                    "cwd": "work/{n}", "timeout": "0s", "ok_codes": [0, 2]}}"#
            );
            let from_json = JobDef::from_json(&json)
                .unwrap()
                .into_spec(Path::new("/jobs"), &defaults)
                .unwrap();
            assert_eq!(format!("{spec:?}"), format!("{from_json:?}"));
        }
    }

    #[test]
    fn a_streamed_stdin_is_refused_in_a_job_file() {
        let file = "[[job]]\nname = \"a\"\ncmd = [\"cat\"]\nstdin = { stream = true }\n";
        let e = crate::config::parse(Path::new("jobs.toml"), file.to_string())
            .unwrap_err()
            .to_string();
        assert!(e.contains("error: job `a`, key `stdin`: `stdin = { stream = true }` is for jobs sent to `drover serve`"), "{e}");
        assert!(e.contains("--> jobs.toml:4:9"), "{e}");
        assert!(e.contains("help: write `stdin = \"text\"`"), "{e}");
    }

    #[test]
    fn the_job_file_keys_are_the_job_model_keys_and_matrix() {
        let mut keys: Vec<&str> = JOB_DEF_KEYS.to_vec();
        keys.push("matrix");
        keys.sort_unstable();
        let mut file_keys = JOB_KEYS.to_vec();
        file_keys.sort_unstable();
        assert_eq!(keys, file_keys);
    }
}

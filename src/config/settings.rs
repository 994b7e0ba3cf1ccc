//! What validating jobs and pipelines share: the settings a job may inherit
//! from `[defaults]`, read into the job model with located errors, and the
//! expanded job both hand back.

use std::ops::Range;

use super::error::ConfigError;
use super::raw::{RawJob, Sp};
use super::value::{self, span};
use crate::model::job::{HumanDuration, JobDefaults, Size};
use crate::plan::JobSpec;

pub(super) type Span = Option<Range<usize>>;

pub(super) fn take<T>(errs: &mut Vec<ConfigError>, r: Result<T, ConfigError>) -> Option<T> {
    r.map_err(|e| errs.push(e)).ok()
}

/// The settings of a `[[job]]`, `[defaults]` or stage table; each bad value
/// is pushed to `errs` and left unset.
pub(super) fn settings(raw: &RawJob, errs: &mut Vec<ConfigError>) -> JobDefaults {
    let retries = raw.retries.as_ref().and_then(|v| {
        let r = u32::try_from(*v.get_ref()).map_err(|_| {
            ConfigError::new(format!("{} is not a number of retries", v.get_ref()))
                .at(span(v))
                .key("retries")
                .help("write a whole number from 0 up, e.g. `retries = 2`")
        });
        take(errs, r)
    });
    // Unset when any code is bad: the error is reported once, here.
    let ok_codes = raw.ok_codes.as_ref().and_then(|codes| {
        let before = errs.len();
        let mut out = Vec::new();
        for c in codes.get_ref() {
            match u8::try_from(*c.get_ref()) {
                Ok(code) => out.push(i32::from(code)),
                Err(_) => errs.push(
                    ConfigError::new(format!("{} is not an exit code", c.get_ref()))
                        .at(span(c))
                        .key("ok_codes")
                        .help(
                            "exit codes are whole numbers from 0 to 255, e.g. `ok_codes = [0, 1]`",
                        ),
                ),
            }
        }
        if codes.get_ref().is_empty() {
            errs.push(
                ConfigError::new("`ok_codes` is empty, so the job could never succeed")
                    .at(span(codes))
                    .key("ok_codes")
                    .help("list the exit codes that count as success, e.g. `ok_codes = [0]`"),
            );
        }
        (errs.len() == before).then_some(out)
    });
    let mut env = std::collections::BTreeMap::new();
    if let Some(table) = &raw.env {
        for (k, v) in table.get_ref() {
            match value::scalar_string(v.get_ref()) {
                Some(text) => {
                    env.insert(k.clone(), text);
                }
                None => errs.push(
                    ConfigError::new(format!("the value of `{k}` must be a string"))
                        .at(span(v))
                        .key("env")
                        .help(format!("write `env = {{ {k} = \"value\" }}`")),
                ),
            }
        }
    }
    let duration = |errs: &mut Vec<ConfigError>, v: &Option<Sp<toml::Value>>, key: &str| {
        v.as_ref()
            .and_then(|v| take(errs, value::duration(v, key)))
            .map(HumanDuration)
    };
    JobDefaults {
        timeout: duration(errs, &raw.timeout, "timeout"),
        kill_grace: duration(errs, &raw.kill_grace, "kill_grace"),
        retry_delay: duration(errs, &raw.retry_delay, "retry_delay"),
        capture_limit: raw
            .capture_limit
            .as_ref()
            .and_then(|v| take(errs, value::size(v, "capture_limit")))
            .map(Size),
        stdout: raw
            .stdout
            .as_ref()
            .and_then(|v| take(errs, value::output(v, "stdout"))),
        stderr: raw
            .stderr
            .as_ref()
            .and_then(|v| take(errs, value::output(v, "stderr"))),
        retries,
        ok_codes,
        env,
        cwd: raw.cwd.as_ref().map(|c| c.get_ref().clone()),
    }
}

/// One expanded job (or pipeline), with what is needed to resolve and to
/// report errors.
pub(super) struct Expanded {
    /// The `[[job]]` it came from; None for a pipeline.
    pub(super) template: Option<usize>,
    pub(super) name_span: Span,
    pub(super) needs_span: Span,
    pub(super) spec: JobSpec,
    pub(super) needs: Vec<(String, Span)>,
    pub(super) from: Option<String>,
}

//! Typed values out of loosely typed TOML: durations, sizes, stdin and
//! output specs. Each failure is a `ConfigError` that says what was expected.

use std::time::Duration;

use toml::Value;

use super::error::{ConfigError, nearest};
use super::raw::Sp;
use crate::model::job::{self, OUTPUT_MODES, OutputDef, StdinDef};
pub use crate::model::job::{no_zero, resolve_path};

pub fn span<T>(v: &Sp<T>) -> Option<std::ops::Range<usize>> {
    Some(v.span())
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string {s:?}"),
        Value::Integer(i) => format!("the integer {i}"),
        Value::Float(x) => format!("the number {x}"),
        Value::Boolean(b) => format!("the boolean {b}"),
        Value::Datetime(d) => format!("the datetime {d}"),
        Value::Array(_) => "an array".into(),
        Value::Table(_) => "a table".into(),
    }
}

/// `"30s"`, `"1m 30s"`, `"250ms"`: always a string with a unit. A bare
/// number is refused (its unit would be a guess), and so is `"1"`.
pub fn duration(v: &Sp<Value>, key: &str) -> Result<Duration, ConfigError> {
    let bad = |why: String| {
        ConfigError::new(why).at(span(v)).key(key).help(format!(
            "write a duration such as `{key} = \"30s\"`, \"1m 30s\" or \"250ms\""
        ))
    };
    // The fix for a bare number of seconds, e.g. `"1s"` for `1`.
    let in_seconds = |secs: f64| {
        let fix = job::seconds_with_unit(secs);
        format!("write the unit: `{key} = \"{fix}\"`")
    };
    match v.get_ref() {
        Value::String(s) => job::parse_duration(s).map_err(|why| {
            let e = bad(why);
            match s.trim().parse::<f64>() {
                Ok(secs) if secs.is_finite() && secs >= 0.0 => e.help(in_seconds(secs)),
                _ => e,
            }
        }),
        Value::Integer(i) if *i >= 0 => Err(bad(format!(
            "{i} is a bare number; a duration needs a unit"
        ))
        .help(in_seconds(*i as f64))),
        Value::Float(x) if x.is_finite() && *x >= 0.0 => {
            Err(bad(format!("{x} is a bare number; a duration needs a unit")).help(in_seconds(*x)))
        }
        other => Err(bad(format!(
            "expected a duration, found {}",
            describe(other)
        ))),
    }
}

/// `"4MiB"`, `"512 KiB"`, `"1MB"`, or a number of bytes.
pub fn size(v: &Sp<Value>, key: &str) -> Result<usize, ConfigError> {
    let bad = |why: String| {
        ConfigError::new(why).at(span(v)).key(key).help(format!(
            "write a size such as `{key} = \"4MiB\"`, \"512KiB\" or a number of bytes"
        ))
    };
    match v.get_ref() {
        Value::String(s) => job::parse_size(s).map_err(bad),
        Value::Integer(i) if *i >= 0 => Ok(*i as usize),
        other => Err(bad(format!("expected a size, found {}", describe(other)))),
    }
}

/// Scalars become strings: `n = [1, 2]` is as good as `n = ["1", "2"]`.
pub fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Float(x) => Some(x.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `stdin`, before placeholders are filled and targets resolved; a text is
/// moved out of `v`.
pub fn stdin(v: &mut Sp<Value>) -> Result<StdinDef, ConfigError> {
    let at = span(v);
    let bad = |why: String| {
        ConfigError::new(why)
            .at(at.clone())
            .key("stdin")
            .help("write `stdin = \"text\"`, `stdin = { file = \"path\" }` or `stdin = { from = \"job\" }`")
    };
    match v.get_mut() {
        Value::String(s) => Ok(StdinDef::Text(std::mem::take(s))),
        Value::Table(t) => {
            let keys: Vec<&String> = t.keys().collect();
            match (keys.as_slice(), t.get("file"), t.get("from")) {
                ([_], Some(Value::String(f)), None) => Ok(StdinDef::File { file: f.clone() }),
                ([_], None, Some(Value::String(j))) => Ok(StdinDef::From { from: j.clone() }),
                ([_], Some(other), None) | ([_], None, Some(other)) => {
                    Err(bad(format!("expected a string, found {}", describe(other))))
                }
                // The API's streamed stdin: a job file has no one to feed it.
                ([k], None, None) if k.as_str() == "stream" => Err(bad(
                    "`stdin = { stream = true }` is for jobs sent to `drover serve`, which feeds their stdin over HTTP; a job file has no one to feed it".into(),
                )),
                ([other], None, None) => {
                    let mut e = bad(format!("unknown key `{other}` in a stdin table"));
                    if let Some(near) = nearest(other, ["file", "from"]) {
                        e = e.help(format!("did you mean `{near}`?"));
                    }
                    Err(e)
                }
                _ => Err(bad(format!(
                    "a stdin table takes exactly one of `file` or `from`, found {}",
                    if keys.is_empty() {
                        "no key".to_string()
                    } else {
                        keys.iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ))),
            }
        }
        other => Err(bad(format!(
            "expected a string or a table, found {}",
            describe(other)
        ))),
    }
}

/// `stdout`/`stderr` (or a pipeline's `output`), before placeholders are
/// filled.
pub fn output(v: &Sp<Value>, key: &str) -> Result<OutputDef, ConfigError> {
    let bad = |why: String| {
        ConfigError::new(why).at(span(v)).key(key).help(format!(
            "write `{key} = \"capture\"`, \"null\", \"inherit\" or `{key} = {{ file = \"out.txt\", append = false }}`"
        ))
    };
    match v.get_ref() {
        Value::String(s) => OutputDef::mode(s).ok_or_else(|| {
            let mut e = bad(format!("{s:?} is not an output mode"));
            if let Some(near) = nearest(s, OUTPUT_MODES) {
                e = e.help(format!("did you mean \"{near}\"?"));
            }
            e
        }),
        Value::Table(t) => {
            let file = match t.get("file") {
                Some(Value::String(p)) => p.clone(),
                Some(other) => {
                    return Err(bad(format!(
                        "`file` must be a string, found {}",
                        describe(other)
                    )));
                }
                None => return Err(bad("an output table needs `file`".into())),
            };
            let append = match t.get("append") {
                None => false,
                Some(Value::Boolean(b)) => *b,
                Some(other) => {
                    return Err(bad(format!(
                        "`append` must be true or false, found {}",
                        describe(other)
                    )));
                }
            };
            if let Some(k) = t.keys().find(|k| *k != "file" && *k != "append") {
                let mut e = bad(format!("unknown key `{k}` in an output table"));
                if let Some(near) = nearest(k, ["file", "append"]) {
                    e = e.help(format!("did you mean `{near}`?"));
                }
                return Err(e);
            }
            Ok(OutputDef::File { file, append })
        }
        other => Err(bad(format!(
            "expected a string or a table, found {}",
            describe(other)
        ))),
    }
}

//! `[[pipeline]]` tables → pipeline nodes of the plan. A pipeline is a node
//! of the job graph like a job (it `needs` jobs, jobs `need` it); its stages
//! inherit `[defaults]` as jobs do.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use toml::Value;

use super::error::{ConfigError, nearest};
use super::raw::{RawPipeline, RawStage, Sp};
use super::settings::{Expanded, Span, settings, take};
use super::value::{self, span};
use crate::model::job::{JobDefaults, OutputDef};
use crate::plan::pipeline::{
    DEFAULT_QUEUE, Emit, ItemSource, Mode, Output, PipelineSpec, StageSpec,
};
use crate::plan::template::{Template, TemplateError};
use crate::plan::{
    DEFAULT_CAPTURE_LIMIT, DEFAULT_KILL_GRACE, JobName, JobSpec, OutputSpec, Program, StdinSpec,
};

/// The byte span of the `index`th `[[pipeline]]` header.
fn header_span(source: &str, index: usize) -> Span {
    let mut offset = 0;
    let mut seen = 0;
    for line in source.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with("[[pipeline]]") {
            if seen == index {
                let start = offset + (line.len() - t.len());
                return Some(start..start + "[[pipeline]]".len());
            }
            seen += 1;
        }
        offset += line.len();
    }
    None
}

/// Validates one `[[pipeline]]`; None if it has errors (pushed to `errs`).
pub(super) fn pipeline(
    source: &str,
    index: usize,
    raw: RawPipeline,
    defaults: &JobDefaults,
    base: &Path,
    errs: &mut Vec<ConfigError>,
) -> Option<Expanded> {
    let before = errs.len();
    let header = header_span(source, index);
    let (label, name_span) = match &raw.name {
        Some(n) => (n.get_ref().clone(), Some(n.span())),
        None => {
            errs.push(
                ConfigError::new(format!("pipeline #{} has no `name`", index + 1))
                    .at(header.clone())
                    .key("name")
                    .help("add `name = \"...\"`, unique among the jobs and pipelines of the file"),
            );
            (format!("#{}", index + 1), header.clone())
        }
    };
    let name = match JobName::parse(&label) {
        Ok(n) => Some(n),
        Err(why) => {
            errs.push(
                ConfigError::new(why.replace("job name", "pipeline name"))
                    .at(name_span.clone())
                    .key("name")
                    .help("use only letters, digits, `_`, `.`, `:` and `-`"),
            );
            None
        }
    };

    let items = match &raw.items {
        Some(v) => items(v, defaults, base, errs),
        None => {
            errs.push(
                ConfigError::new("the pipeline has no `items`")
                    .at(name_span.clone())
                    .key("items")
                    .help("add `items = [\"a\", \"b\"]`, `items = { file = \"list.txt\" }` or `items = { sh = \"ls images\" }`"),
            );
            None
        }
    };
    let queue = match &raw.queue {
        None => DEFAULT_QUEUE,
        Some(q) => match usize::try_from(*q.get_ref()) {
            Ok(n) if n >= 1 => n,
            _ => {
                errs.push(
                    ConfigError::new(format!("{} is not a queue size", q.get_ref()))
                        .at(span(q))
                        .key("queue")
                        .help("write a whole number of items from 1 up, e.g. `queue = 64`"),
                );
                DEFAULT_QUEUE
            }
        },
    };
    let timeout = raw
        .timeout
        .as_ref()
        .and_then(|v| take(errs, value::duration(v, "timeout")));
    let timeout = value::no_zero(timeout);
    let output = raw
        .output
        .as_ref()
        .and_then(|v| output(v, base, errs))
        .unwrap_or(Output::Null);

    if raw.stage.is_empty() {
        errs.push(
            ConfigError::new("the pipeline has no stages")
                .at(name_span.clone())
                .key("stage")
                .help("add a stage:\n\n    [[pipeline.stage]]\n    name = \"upload\"\n    cmd = [\"./upload.sh\", \"{}\"]"),
        );
    }
    let mut stages = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let pipeline_name = label.clone();
    for (i, st) in raw.stage.into_iter().enumerate() {
        let st_span = Some(st.span());
        if let Some(s) = stage(
            &pipeline_name,
            i,
            st.into_inner(),
            st_span,
            defaults,
            base,
            errs,
        ) {
            if !seen.insert(s.name.clone()) {
                errs.push(
                    ConfigError::new(format!("the stage name `{}` is used twice", s.name))
                        .key("name")
                        .help("give each stage of a pipeline its own name"),
                );
            }
            stages.push(s);
        }
    }
    for e in &mut errs[before..] {
        if e.job.is_none() {
            e.job = Some(label.clone());
        }
        if e.span.is_none() {
            e.span = header.clone();
        }
    }
    if errs.len() > before {
        return None;
    }

    let needs = raw
        .needs
        .as_ref()
        .map(|n| {
            n.get_ref()
                .iter()
                .map(|p| (p.get_ref().clone(), Some(p.span())))
                .collect()
        })
        .unwrap_or_default();
    let spec = PipelineSpec {
        items: items?,
        queue,
        fail_fast: raw.fail_fast.unwrap_or(false),
        output,
        stages,
    };
    let job = JobSpec {
        name: name?,
        program: Program::Pipeline(Arc::new(spec)),
        stdin: StdinSpec::Null,
        stdout: OutputSpec::Null,
        stderr: OutputSpec::Null,
        env: Vec::new(),
        cwd: base.to_path_buf(),
        timeout,
        kill_grace: defaults.kill_grace.map_or(DEFAULT_KILL_GRACE, |d| d.0),
        retries: 0,
        retry_delay: Duration::ZERO,
        ok_codes: vec![0],
        capture_limit: DEFAULT_CAPTURE_LIMIT,
        needs: Vec::new(),
        nice: None,
    };
    Some(Expanded {
        template: None,
        name_span,
        needs_span: raw.needs.as_ref().map(Sp::span),
        spec: job,
        needs,
        from: None,
    })
}

fn items(
    v: &Sp<Value>,
    defaults: &JobDefaults,
    base: &Path,
    errs: &mut Vec<ConfigError>,
) -> Option<ItemSource> {
    let help = "write `items = [\"a\", \"b\"]`, `items = { file = \"list.txt\" }` (one item a line), or `items = { sh = \"ls images\" }` / `items = { cmd = [\"ls\", \"images\"] }` (each stdout line an item)";
    let bad = |why: String| ConfigError::new(why).at(span(v)).key("items").help(help);
    match v.get_ref() {
        Value::Array(list) => match list.iter().map(value::scalar_string).collect() {
            Some(list) => Some(ItemSource::List(list)),
            None => {
                errs.push(bad("`items` must list strings or numbers".into()));
                None
            }
        },
        Value::Table(t) => {
            let keys: Vec<&String> = t.keys().collect();
            let program = match (keys.as_slice(), t.get("file"), t.get("sh"), t.get("cmd")) {
                ([_], Some(Value::String(f)), None, None) => {
                    return Some(ItemSource::File(value::resolve_path(base, f)));
                }
                ([_], None, Some(Value::String(sh)), None) => Program::Shell(sh.clone()),
                ([_], None, None, Some(Value::Array(argv))) => {
                    match argv
                        .iter()
                        .map(|a| a.as_str().map(str::to_string))
                        .collect::<Option<Vec<String>>>()
                    {
                        Some(argv) if argv.first().is_some_and(|a| !a.is_empty()) => {
                            Program::Argv(argv)
                        }
                        _ => {
                            errs.push(bad(
                                "`items.cmd` must be a non-empty array of strings".into()
                            ));
                            return None;
                        }
                    }
                }
                ([k], ..) if !matches!(k.as_str(), "file" | "sh" | "cmd") => {
                    let mut e = bad(format!("unknown key `{k}` in an items table"));
                    if let Some(near) = nearest(k, ["file", "sh", "cmd"]) {
                        e = e.help(format!("did you mean `{near}`?"));
                    }
                    errs.push(e);
                    return None;
                }
                ([k], ..) => {
                    errs.push(bad(format!("`items.{k}` has the wrong type")));
                    return None;
                }
                _ => {
                    errs.push(bad(
                        "an items table takes exactly one of `file`, `sh` or `cmd`".into(),
                    ));
                    return None;
                }
            };
            // The items command takes `[defaults]` but no timeout or retry:
            // it runs once, as long as the pipeline reads from it.
            let r = JobDefaults {
                stdout: None,
                stderr: None,
                timeout: None,
                retries: None,
                retry_delay: None,
                ..defaults.clone()
            }
            .resolve(base);
            Some(ItemSource::Command(Box::new(JobSpec {
                name: JobName::parse("items").expect("a valid name"),
                program,
                stdin: StdinSpec::Null,
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
            })))
        }
        _ => {
            errs.push(bad("`items` must be an array or a table".into()));
            None
        }
    }
}

fn output(v: &Sp<Value>, base: &Path, errs: &mut Vec<ConfigError>) -> Option<Output> {
    match value::output(v, "output") {
        Ok(OutputDef::Null) => Some(Output::Null),
        Ok(OutputDef::Inherit) => Some(Output::Inherit),
        Ok(OutputDef::File { file, append }) => Some(Output::File {
            path: value::resolve_path(base, &file),
            append,
        }),
        Ok(OutputDef::Capture) => {
            errs.push(
                ConfigError::new("a pipeline's output cannot be captured into the report")
                    .at(span(v))
                    .key("output")
                    .help("write `output = \"null\"` (count only), \"inherit\" (drover's stdout) or `output = { file = \"out.txt\" }`"),
            );
            None
        }
        Err(e) => {
            errs.push(e);
            None
        }
    }
}

/// A GNU parallel replacement string drover does not know, in `cmd`/`sh`.
fn template_error(e: &TemplateError, span: Span, key: &str) -> ConfigError {
    ConfigError::new(e.message())
        .at(span)
        .key(key)
        .help(e.help())
}

fn stage(
    pipeline: &str,
    index: usize,
    mut raw: RawStage,
    table: Span,
    defaults: &JobDefaults,
    base: &Path,
    errs: &mut Vec<ConfigError>,
) -> Option<StageSpec> {
    let before = errs.len();
    let (name, name_span) = match &raw.name {
        Some(n) => (n.get_ref().clone(), Some(n.span())),
        None => {
            errs.push(
                ConfigError::new(format!("stage #{} has no `name`", index + 1))
                    .at(table.clone())
                    .key("name")
                    .help(
                        "add `name = \"...\"` to the [[pipeline.stage]], e.g. `name = \"resize\"`",
                    ),
            );
            (format!("#{}", index + 1), table.clone())
        }
    };
    if let Err(why) = JobName::parse(&name) {
        errs.push(
            ConfigError::new(why.replace("job name", "stage name"))
                .at(name_span.clone())
                .key("name")
                .help("use only letters, digits, `_`, `.`, `:` and `-`"),
        );
    }
    let mode = match raw.mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
        None | Some(("item", _)) => Some(false),
        Some(("stream", _)) => Some(true),
        Some((other, sp)) => {
            let mut e = ConfigError::new(format!("{other:?} is not a stage mode"))
                .at(Some(sp))
                .key("mode")
                .help("write `mode = \"item\"` (a process per item, the default) or `mode = \"stream\"` (long-lived workers reading items as stdin lines)");
            if let Some(near) = nearest(other, ["item", "stream"]) {
                e = e.help(format!("did you mean \"{near}\"?"));
            }
            errs.push(e);
            None
        }
    };
    let stream = mode == Some(true);
    let emit = match raw.emit.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
        None | Some(("item", _)) if !stream => Emit::Item,
        None | Some(("lines", _)) => Emit::Lines,
        Some(("item", sp)) => {
            errs.push(
                ConfigError::new("a stream-mode stage emits its workers' stdout lines, not items")
                    .at(Some(sp))
                    .key("emit")
                    .help("remove `emit`, or use the default `mode = \"item\"`"),
            );
            Emit::Lines
        }
        Some((other, sp)) => {
            let mut e = ConfigError::new(format!("{other:?} is not an emit mode"))
                .at(Some(sp))
                .key("emit")
                .help("write `emit = \"item\"` (pass the item on, the default) or `emit = \"lines\"` (each stdout line becomes an item)");
            if let Some(near) = nearest(other, ["item", "lines"]) {
                e = e.help(format!("did you mean \"{near}\"?"));
            }
            errs.push(e);
            Emit::Item
        }
    };
    let workers = match &raw.workers {
        None => 1,
        Some(w) => match usize::try_from(*w.get_ref()) {
            Ok(n) if n >= 1 => n,
            _ => {
                errs.push(
                    ConfigError::new(format!("{} is not a number of workers", w.get_ref()))
                        .at(span(w))
                        .key("workers")
                        .help("write a whole number from 1 up, e.g. `workers = 4`"),
                );
                1
            }
        },
    };
    if stream {
        for (key, sp) in [
            ("timeout", raw.timeout.as_ref().map(Sp::span)),
            ("retries", raw.retries.as_ref().map(Sp::span)),
            ("retry_delay", raw.retry_delay.as_ref().map(Sp::span)),
        ] {
            if sp.is_some() {
                errs.push(
                    ConfigError::new(format!("`{key}` applies to a process per item; a stream-mode worker handles many items"))
                        .at(sp)
                        .key(key)
                        .help("remove it from this stage; to bound the whole pipeline, set `timeout` on the [[pipeline]]"),
                );
            }
        }
    }
    let program = match (&raw.cmd, &raw.sh) {
        (Some(_), Some(sh)) => {
            errs.push(
                ConfigError::new("the stage has both `cmd` and `sh`")
                    .at(Some(sh.span()))
                    .key("sh")
                    .help("keep `cmd` (an argv, no shell) or `sh` (a /bin/sh -c string), not both"),
            );
            None
        }
        (None, None) => {
            errs.push(
                ConfigError::new("the stage has neither `cmd` nor `sh`")
                    .at(name_span.clone())
                    .help("add `cmd = [\"program\", \"{}\"]` or `sh = \"program {}\"`; `{}` is the item"),
            );
            None
        }
        (Some(cmd), None) => {
            let argv: Vec<String> = cmd.get_ref().iter().map(|a| a.get_ref().clone()).collect();
            if argv.first().is_none_or(String::is_empty) {
                errs.push(
                    ConfigError::new("`cmd` is empty or names no program")
                        .at(Some(cmd.span()))
                        .key("cmd")
                        .help(
                            "name the program and its arguments: `cmd = [\"./fetch.sh\", \"{}\"]`",
                        ),
                );
                None
            } else {
                match Template::parse(&argv) {
                    Ok(template) => Some((Program::Argv(argv), template)),
                    Err(e) => {
                        errs.push(template_error(&e, Some(cmd.span()), "cmd"));
                        None
                    }
                }
            }
        }
        (None, Some(sh)) => match Template::parse(std::slice::from_ref(sh.get_ref())) {
            Ok(template) => Some((Program::Shell(sh.get_ref().clone()), template)),
            Err(e) => {
                errs.push(template_error(&e, Some(sh.span()), "sh"));
                None
            }
        },
    };
    if let Some((_, template)) = &program
        && stream
        && template.has_replacements()
    {
        let sp = raw
            .cmd
            .as_ref()
            .map(Sp::span)
            .or_else(|| raw.sh.as_ref().map(Sp::span));
        errs.push(
            ConfigError::new("a stream-mode stage reads its items on stdin; its command has a replacement string such as `{}`")
                .at(sp)
                .key(if raw.cmd.is_some() { "cmd" } else { "sh" })
                .help("remove `{}` (read the items with e.g. `while read item; do ...; done`), or use `mode = \"item\"`"),
        );
    }
    let own = settings(&raw.settings_table(), errs);
    for e in &mut errs[before..] {
        if e.job.is_none() {
            e.job = Some(format!("{pipeline}, stage {name}"));
        }
    }
    if errs.len() > before {
        return None;
    }
    let (program, template) = program?;
    // A stage's output is its items: always captured, whatever `[defaults]`
    // says of a job's stdout.
    let own = JobDefaults {
        stdout: Some(OutputDef::Capture),
        stderr: Some(OutputDef::Capture),
        ..own
    };
    let r = own.over(defaults).resolve(base);
    let job = JobSpec {
        name: JobName::parse(&format!("{pipeline}:{name}")).ok()?,
        program,
        stdin: StdinSpec::Null,
        stdout: r.stdout,
        stderr: r.stderr,
        env: r.env,
        cwd: r.cwd,
        // A stream stage's workers live as long as the items last.
        timeout: if stream { None } else { r.timeout },
        kill_grace: r.kill_grace,
        retries: if stream { 0 } else { r.retries },
        retry_delay: r.retry_delay,
        ok_codes: r.ok_codes,
        capture_limit: r.capture_limit,
        needs: Vec::new(),
        nice: None,
    };
    Some(StageSpec {
        name,
        mode: if stream {
            Mode::Stream
        } else {
            Mode::PerItem(emit)
        },
        workers,
        job,
        template,
    })
}

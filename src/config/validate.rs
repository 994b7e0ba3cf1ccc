//! Raw job file → validated `Plan`: defaults merged, matrices expanded,
//! placeholders filled, names checked, `needs` and `from` resolved, the
//! graph checked for cycles. Every problem is collected, not just the first.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;

use super::error::ConfigError;
use super::raw::{JOB_ONLY_KEYS, RawFile, RawJob, Sp};
use super::settings::{Expanded, Span, settings};
use super::value::{self, span};
use crate::model::job::{JobDef, JobDefError, JobDefaults, OutputDef, StdinDef};
use crate::plan::graph::{self, GraphError};
use crate::plan::matrix::{self, Combination};
use crate::plan::{JobName, JobSpec, OutputSpec, Plan, Program, ShowOutput, StdinSpec, cpus};

/// The most jobs one matrix may make: each is held in memory (a few hundred
/// bytes) for the whole run.
const MAX_MATRIX_JOBS: usize = 100_000_000;

/// A `[[job]]` before matrix expansion.
struct Template<'a> {
    raw: &'a RawJob,
    /// The job's name, or `#N` to label the errors of a job without one.
    name: String,
    /// False when `name` is missing: its label is not a name to check or
    /// expand, which would only repeat the "no `name`" error.
    named: bool,
    name_span: Span,
    program: Option<Program>,
    stdin: Option<StdinDef>,
    matrix: Vec<(String, Vec<String>)>,
    settings: JobDefaults,
}

pub(super) fn plan(
    file: &Path,
    source: &str,
    base: &Path,
    mut raw: RawFile,
) -> Result<Plan, Vec<ConfigError>> {
    let mut errs = Vec::new();

    let max_parallel = match &raw.run.max_parallel {
        None => Some(cpus()),
        Some(v) => match usize::try_from(*v.get_ref()) {
            Ok(0) => None,
            Ok(n) => NonZeroUsize::new(n),
            Err(_) => {
                errs.push(
                    ConfigError::new(format!("{} is not a number of jobs", v.get_ref()))
                        .at(span(v))
                        .key("max_parallel")
                        .help("write a whole number: `max_parallel = 8`, or 0 for no limit"),
                );
                None
            }
        },
    };
    let fail_fast = raw.run.fail_fast.unwrap_or(false);
    let show_output = match &raw.run.show_output {
        None => ShowOutput::None,
        Some(v) => ShowOutput::parse(v.get_ref()).unwrap_or_else(|| {
            errs.push(
                ConfigError::new(format!("`{}` is not a choice of show_output", v.get_ref()))
                    .at(span(v))
                    .key("show_output")
                    .help("write `show_output = \"all\"`, `\"failures\"` or `\"none\"`"),
            );
            ShowOutput::None
        }),
    };

    let defaults = match &raw.defaults {
        Some(d) => {
            for key in JOB_ONLY_KEYS {
                if let Some(sp) = job_key_span(d, key) {
                    errs.push(
                        ConfigError::new(format!("`{key}` belongs to one job, not to [defaults]"))
                            .at(Some(sp))
                            .key(*key)
                            .help(format!("move `{key}` into the [[job]] tables that need it")),
                    );
                }
            }
            settings(d, &mut errs)
        }
        None => JobDefaults::default(),
    };

    if raw.job.is_empty() && raw.pipeline.is_empty() && errs.is_empty() {
        errs.push(
            ConfigError::new("the file has no jobs")
                .at(Some(0..0))
                .help("add a job:\n\n    [[job]]\n    name = \"hello\"\n    cmd = [\"echo\", \"hello\"]"),
        );
    }

    // 1. Templates.
    let mut templates = Vec::new();
    for (i, rj) in raw.job.iter_mut().enumerate() {
        if let Some(t) = template(source, i, rj, &mut errs) {
            templates.push(t);
        }
    }

    // 2. Expansion.
    let mut expanded: Vec<Expanded> = Vec::new();
    for (ti, t) in templates.iter().enumerate() {
        expand(ti, t, &defaults, base, &mut expanded, &mut errs);
    }
    let RawFile { pipeline, .. } = raw;
    for (i, p) in pipeline.into_iter().enumerate() {
        if let Some(e) = super::pipeline::pipeline(source, i, p, &defaults, base, &mut errs) {
            expanded.push(e);
        }
    }
    // Jobs and pipelines in file order (a stable sort keeps matrix order).
    expanded.sort_by_key(|e| e.name_span.as_ref().map_or(usize::MAX, |s| s.start));
    if !errs.is_empty() {
        return Err(errs);
    }

    // 3. Names: unique across the file.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, e) in expanded.iter().enumerate() {
        if let Some(&first) = seen.get(e.spec.name.as_str()) {
            let (line, _) = super::error::line_col(
                source,
                expanded[first].name_span.clone().map_or(0, |s| s.start),
            );
            errs.push(
                ConfigError::new(format!("the name `{}` is used twice", e.spec.name))
                    .at(e.name_span.clone())
                    .job(e.spec.name.as_str())
                    .key("name")
                    .help(format!(
                        "the first job of that name is at line {line}; give this one another name"
                    )),
            );
        } else {
            seen.insert(e.spec.name.as_str().to_string(), i);
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }

    // 4. needs and from.
    let names: Vec<JobName> = expanded.iter().map(|e| e.spec.name.clone()).collect();
    let mut consumer_of: HashMap<usize, usize> = HashMap::new();
    for i in 0..expanded.len() {
        let mut needs = Vec::new();
        for (pattern, sp) in &expanded[i].needs {
            match graph::resolve_need(&names, pattern, i) {
                Ok(found) => needs.extend(found),
                Err(why) => {
                    let mut e = ConfigError::new(why)
                        .at(sp.clone())
                        .job(names[i].as_str())
                        .key("needs");
                    let others = names
                        .iter()
                        .enumerate()
                        .filter(|&(j, _)| j != i)
                        .map(|(_, n)| n.as_str());
                    e = if pattern == names[i].as_str() {
                        e.help(format!("remove `{pattern}` from its own `needs`"))
                    } else if let Some(near) = super::error::nearest(pattern, others) {
                        e.help(format!("did you mean `{near}`?"))
                    } else {
                        e.help("name a job of this file, or a glob such as `build-*`")
                    };
                    errs.push(e);
                }
            }
        }
        needs.sort_unstable();
        needs.dedup();
        expanded[i].spec.needs = needs;

        if let Some(src) = expanded[i].from.clone() {
            let t = &templates[expanded[i].template.expect("only jobs read stdin")];
            let sp = t.raw.stdin.as_ref().map(|s| s.span());
            match names.iter().position(|n| n.as_str() == src) {
                None => {
                    let mut e = ConfigError::new(format!(
                        "stdin is `from` the job `{src}`, but no job has that name"
                    ))
                    .at(sp)
                    .job(names[i].as_str())
                    .key("stdin");
                    if let Some(near) =
                        super::error::nearest(&src, names.iter().map(JobName::as_str))
                    {
                        e = e.help(format!("did you mean `{near}`?"));
                    }
                    errs.push(e);
                }
                Some(s) if s == i => errs.push(
                    ConfigError::new("a job cannot read its own stdout")
                        .at(sp)
                        .job(names[i].as_str())
                        .key("stdin")
                        .help("name another job in `stdin = { from = ... }`"),
                ),
                Some(s) => {
                    if let Some(&other) = consumer_of.get(&s) {
                        errs.push(
                            ConfigError::new(format!(
                                "the stdout of `{src}` already goes to `{}`; a job's stdout can feed only one job",
                                names[other]
                            ))
                            .at(sp.clone())
                            .job(names[i].as_str())
                            .key("stdin")
                            .help(format!("add `tee` to `{src}` and write to files, or run `{src}` twice")),
                        );
                        continue;
                    }
                    let Some(src_t) = expanded[s].template.map(|t| &templates[t]) else {
                        errs.push(
                            ConfigError::new(format!(
                                "`{src}` is a pipeline; its items cannot be a job's stdin"
                            ))
                            .at(sp.clone())
                            .job(names[i].as_str())
                            .key("stdin")
                            .help(format!(
                                "give `{src}` `output = {{ file = \"items.txt\" }}` and read it with `stdin = {{ file = \"items.txt\" }}` and `needs = [\"{src}\"]`"
                            )),
                        );
                        continue;
                    };
                    if let Some(out) = &src_t.raw.stdout {
                        errs.push(
                            ConfigError::new(format!(
                                "`{src}` sets `stdout`, but its stdout goes to `{}` through `stdin.from`",
                                names[i]
                            ))
                            .at(Some(out.span()))
                            .job(names[s].as_str())
                            .key("stdout")
                            .help(format!("remove `stdout` from `{src}`")),
                        );
                        continue;
                    }
                    consumer_of.insert(s, i);
                    expanded[i].spec.stdin = StdinSpec::From(s);
                    expanded[s].spec.stdout = OutputSpec::Pipe(i);
                }
            }
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }

    let needs_span: Vec<Span> = expanded.iter().map(|e| e.needs_span.clone()).collect();
    // Collected in place, the list would keep the room of `expanded`'s
    // larger entries (3.4 MB at 5000 jobs instead of 1.7 MB).
    let mut jobs: Vec<JobSpec> = expanded.into_iter().map(|e| e.spec).collect();
    jobs.shrink_to_fit();
    match graph::build_units(&jobs) {
        Ok((units, unit_of)) => Ok(Plan {
            file: file.to_path_buf(),
            max_parallel,
            fail_fast,
            show_output,
            jobs,
            units,
            unit_of,
        }),
        Err(GraphError::NeedsWithinPipe { job, needed }) => Err(vec![
            ConfigError::new(format!(
                "`{}` needs `{}`, but they are joined by a pipe and start together",
                jobs[job].name, jobs[needed].name
            ))
            .at(needs_span[job].clone())
            .job(jobs[job].name.as_str())
            .key("needs")
            .help(format!("remove `{}` from `needs`", jobs[needed].name)),
        ]),
        Err(GraphError::Cycle(path)) => {
            let shown: Vec<&str> = path.iter().map(|&j| jobs[j].name.as_str()).collect();
            Err(vec![
                ConfigError::new(format!(
                    "the jobs need each other in a cycle: {}",
                    shown.join(" → ")
                ))
                .at(needs_span[path[0]].clone())
                .job(shown[0])
                .key("needs")
                .help("remove one of these `needs` so that some job can start first"),
            ])
        }
    }
}

/// The span of `key` in a raw job, if the key is present.
fn job_key_span(j: &RawJob, key: &str) -> Span {
    match key {
        "name" => j.name.as_ref().map(Sp::span),
        "cmd" => j.cmd.as_ref().map(Sp::span),
        "sh" => j.sh.as_ref().map(Sp::span),
        "matrix" => j.matrix.as_ref().map(Sp::span),
        "needs" => j.needs.as_ref().map(Sp::span),
        "stdin" => j.stdin.as_ref().map(Sp::span),
        "stdout" => j.stdout.as_ref().map(Sp::span),
        "stderr" => j.stderr.as_ref().map(Sp::span),
        "timeout" => j.timeout.as_ref().map(Sp::span),
        "kill_grace" => j.kill_grace.as_ref().map(Sp::span),
        "retries" => j.retries.as_ref().map(Sp::span),
        "retry_delay" => j.retry_delay.as_ref().map(Sp::span),
        "ok_codes" => j.ok_codes.as_ref().map(Sp::span),
        "env" => j.env.as_ref().map(Sp::span),
        "cwd" => j.cwd.as_ref().map(Sp::span),
        "capture_limit" => j.capture_limit.as_ref().map(Sp::span),
        _ => None,
    }
}

/// The byte offset of the `index`th `[[job]]` header.
pub(super) fn job_header_span(source: &str, index: usize) -> Span {
    let mut offset = 0;
    let mut seen = 0;
    for line in source.split_inclusive('\n') {
        if line.trim_start().starts_with("[[job]]") {
            if seen == index {
                let start = offset + (line.len() - line.trim_start().len());
                return Some(start..start + "[[job]]".len());
            }
            seen += 1;
        }
        offset += line.len();
    }
    None
}

fn template<'a>(
    source: &str,
    index: usize,
    rj: &'a mut RawJob,
    errs: &mut Vec<ConfigError>,
) -> Option<Template<'a>> {
    // A `stdin` text is moved out of the parsed file, not copied: it may be
    // large, and a matrix's jobs share it.
    let stdin = rj.stdin.as_mut().map(value::stdin);
    let rj: &'a RawJob = rj;
    let header = job_header_span(source, index);
    let before = errs.len();
    let (name, name_span) = match &rj.name {
        Some(n) => (n.get_ref().clone(), Some(n.span())),
        None => {
            errs.push(
                ConfigError::new(format!("job #{} has no `name`", index + 1))
                    .at(header.clone())
                    .key("name")
                    .help("add `name = \"...\"`, unique in the file, e.g. `name = \"build\"`"),
            );
            (format!("#{}", index + 1), header.clone())
        }
    };
    let program = match (&rj.cmd, &rj.sh) {
        (Some(_), Some(sh)) => {
            errs.push(
                ConfigError::new("the job has both `cmd` and `sh`")
                    .at(Some(sh.span()))
                    .job(&name)
                    .key("sh")
                    .help("keep `cmd` (an argv, no shell) or `sh` (a /bin/sh -c string), not both"),
            );
            None
        }
        (None, None) => {
            errs.push(
                ConfigError::new("the job has neither `cmd` nor `sh`")
                    .at(name_span.clone())
                    .job(&name)
                    .help("add `cmd = [\"program\", \"arg\"]` or `sh = \"shell command\"`"),
            );
            None
        }
        (Some(cmd), None) => {
            if cmd.get_ref().is_empty() {
                errs.push(
                    ConfigError::new("`cmd` is empty")
                        .at(Some(cmd.span()))
                        .job(&name)
                        .key("cmd")
                        .help("name the program and its arguments: `cmd = [\"echo\", \"hi\"]`"),
                );
                None
            } else if cmd.get_ref()[0].get_ref().is_empty() {
                errs.push(
                    ConfigError::new("the program name in `cmd` is empty")
                        .at(Some(cmd.get_ref()[0].span()))
                        .job(&name)
                        .key("cmd")
                        .help("the first element of `cmd` is the program to run"),
                );
                None
            } else {
                Some(Program::Argv(
                    cmd.get_ref().iter().map(|a| a.get_ref().clone()).collect(),
                ))
            }
        }
        (None, Some(sh)) => Some(Program::Shell(sh.get_ref().clone())),
    };
    let stdin = stdin.and_then(|r| r.map_err(|e| errs.push(e.job(&name))).ok());
    let mut matrix = Vec::new();
    if let Some(m) = &rj.matrix {
        if m.get_ref().is_empty() {
            errs.push(
                ConfigError::new("`matrix` has no keys")
                    .at(Some(m.span()))
                    .job(&name)
                    .key("matrix")
                    .help("write `matrix = { n = [\"1\", \"2\"] }`, or remove `matrix`"),
            );
        }
        for (key, values) in m.get_ref() {
            let valid_key = key
                .chars()
                .next()
                .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
                && key.chars().all(|c| c == '_' || c.is_ascii_alphanumeric());
            if !valid_key {
                errs.push(
                    ConfigError::new(format!("`{key}` cannot be a matrix key"))
                        .at(Some(m.span()))
                        .job(&name)
                        .key("matrix")
                        .help("matrix keys are identifiers: letters, digits and `_`, not starting with a digit"),
                );
                continue;
            }
            let list = match values {
                toml::Value::Array(items) => items
                    .iter()
                    .map(value::scalar_string)
                    .collect::<Option<Vec<_>>>(),
                _ => None,
            };
            match list {
                Some(list) if !list.is_empty() => matrix.push((key.clone(), list)),
                _ => errs.push(
                    ConfigError::new(format!(
                        "matrix key `{key}` must be a non-empty array of strings or numbers"
                    ))
                    .at(Some(m.span()))
                    .job(&name)
                    .key("matrix")
                    .help(format!("write `matrix = {{ {key} = [\"a\", \"b\"] }}`")),
                ),
            }
        }
    }
    let settings = settings(rj, errs);
    for e in &mut errs[before..] {
        if e.job.is_none() {
            e.job = Some(name.clone());
        }
    }
    Some(Template {
        raw: rj,
        name,
        named: rj.name.is_some(),
        name_span,
        program,
        stdin,
        matrix,
        settings,
    })
}

/// The texts of a template that placeholders may appear in, with the key and
/// span to blame.
fn template_texts<'t>(
    t: &'t Template<'_>,
    env: &'t BTreeMap<String, String>,
    cwd: &'t Option<String>,
) -> Vec<(&'t str, &'static str, Span)> {
    let rj = t.raw;
    let mut texts: Vec<(&str, &str, Span)> = Vec::new();
    if t.named {
        texts.push((t.name.as_str(), "name", t.name_span.clone()));
    }
    if let Some(cmd) = &rj.cmd {
        texts.extend(
            cmd.get_ref()
                .iter()
                .map(|a| (a.get_ref().as_str(), "cmd", Some(a.span()))),
        );
    }
    if let Some(sh) = &rj.sh {
        texts.push((sh.get_ref().as_str(), "sh", Some(sh.span())));
    }
    let stdin_span = rj.stdin.as_ref().map(Sp::span);
    match &t.stdin {
        Some(StdinDef::Text(s) | StdinDef::File { file: s } | StdinDef::From { from: s }) => {
            texts.push((s, "stdin", stdin_span))
        }
        Some(StdinDef::Stream { .. }) | None => {}
    }
    let env_span = rj.env.as_ref().map(Sp::span);
    texts.extend(env.values().map(|v| (v.as_str(), "env", env_span.clone())));
    if let Some(c) = cwd {
        texts.push((c.as_str(), "cwd", rj.cwd.as_ref().map(Sp::span)));
    }
    if let Some(needs) = &rj.needs {
        texts.extend(
            needs
                .get_ref()
                .iter()
                .map(|n| (n.get_ref().as_str(), "needs", Some(n.span()))),
        );
    }
    for (key, out) in [
        ("stdout", &t.settings.stdout),
        ("stderr", &t.settings.stderr),
    ] {
        if let Some(OutputDef::File { file: path, .. }) = out {
            let sp = if key == "stdout" {
                rj.stdout.as_ref()
            } else {
                rj.stderr.as_ref()
            };
            texts.push((path.as_str(), key, sp.map(Sp::span)));
        }
    }
    texts
}

fn expand(
    ti: usize,
    t: &Template<'_>,
    defaults: &JobDefaults,
    base: &Path,
    out: &mut Vec<Expanded>,
    errs: &mut Vec<ConfigError>,
) {
    // `[defaults]` merged in before placeholders are filled, so that its
    // `env`, `cwd` and output files take the job's matrix values too.
    let settings = t.settings.clone().over(defaults);
    let env = &settings.env;
    let cwd = &settings.cwd;

    let keys: Vec<&str> = t.matrix.iter().map(|(k, _)| k.as_str()).collect();
    let mut ok = true;
    for (text, key, sp) in template_texts(t, env, cwd) {
        for ph in matrix::placeholders(text) {
            if !keys.contains(&ph.as_str()) {
                ok = false;
                let help = if keys.is_empty() {
                    format!(
                        "add `matrix = {{ {ph} = [\"...\"] }}` to the job, or write `{{{{{ph}}}}}` for literal braces"
                    )
                } else {
                    let near = super::error::nearest(&ph, keys.iter().copied())
                        .map(|n| format!("did you mean `{{{n}}}`? "))
                        .unwrap_or_default();
                    format!(
                        "{near}the matrix keys are {}",
                        keys.iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                errs.push(
                    ConfigError::new(format!(
                        "the placeholder `{{{ph}}}` has no matrix key `{ph}`"
                    ))
                    .at(sp.clone())
                    .job(&t.name)
                    .key(key)
                    .help(help),
                );
            }
        }
    }
    if t.named && !t.matrix.is_empty() && matrix::placeholders(&t.name).is_empty() {
        ok = false;
        errs.push(
            ConfigError::new(
                "a job with a `matrix` needs a placeholder in its name, or its names would repeat",
            )
            .at(t.name_span.clone())
            .job(&t.name)
            .key("name")
            .help(format!(
                "add a matrix key to the name, e.g. `name = \"{}-{{{}}}\"`",
                t.name, t.matrix[0].0
            )),
        );
    }
    let Some(program) = &t.program else { return };
    if !ok || !t.named {
        return;
    }

    match matrix::count(&t.matrix) {
        Some(n) if n <= MAX_MATRIX_JOBS => {}
        n => {
            errs.push(
                ConfigError::new(format!(
                    "this matrix makes {} jobs; drover holds every job of a file in memory, and takes at most {MAX_MATRIX_JOBS}",
                    n.map_or("more than 2^64".to_string(), |n| n.to_string())
                ))
                .at(t.raw.matrix.as_ref().map(Sp::span))
                .job(&t.name)
                .key("matrix")
                .help("split the work over several job files, or feed the items to `drover exec` or a [[pipeline]], which read them as they go"),
            );
            return;
        }
    }
    // Repeated matrix values (`n = ["1", "1"]`) give the same name; number
    // the repeats rather than reject the file. Only a key with a repeated
    // value can repeat a combination, so only then are names remembered.
    let repeats = t.matrix.iter().any(|(_, values)| {
        let mut seen = std::collections::HashSet::new();
        !values.iter().all(|v| seen.insert(v))
    });
    let mut names_here: HashMap<String, (Combination, u32)> = HashMap::new();
    // The same bytes for every job when the text has no placeholder.
    let shared_stdin: Option<Arc<[u8]>> = match &t.stdin {
        Some(StdinDef::Text(s)) if matrix::placeholders(s).is_empty() => {
            Some(Arc::from(s.as_bytes()))
        }
        _ => None,
    };
    let fill_output = |o: &Option<OutputDef>, combo: &Combination| match o {
        Some(OutputDef::File { file, append }) => Some(OutputDef::File {
            file: matrix::fill(file, combo),
            append: *append,
        }),
        other => other.clone(),
    };
    let no_defaults = JobDefaults::default();
    for combo in matrix::combinations(&t.matrix) {
        let combo = &combo;
        let mut name = matrix::fill(&t.name, combo);
        if repeats {
            if let Some((first_combo, count)) = names_here.get_mut(&name) {
                if first_combo == combo {
                    *count += 1;
                    name = format!("{name}:{count}");
                }
            } else {
                names_here.insert(name.clone(), (combo.clone(), 1));
            }
        }
        let (cmd, sh) = match program {
            Program::Argv(argv) => (
                Some(argv.iter().map(|a| matrix::fill(a, combo)).collect()),
                None,
            ),
            Program::Shell(sh) => (None, Some(matrix::fill(sh, combo))),
            // Only pipelines are pipelines; a [[job]] has `cmd` or `sh`.
            Program::Pipeline(_) => (None, None),
        };
        let (stdin, from) = match &t.stdin {
            Some(StdinDef::From { from }) => (None, Some(matrix::fill(from, combo))),
            Some(StdinDef::Text(_)) if shared_stdin.is_some() => (None, None),
            Some(StdinDef::Text(s)) => (Some(StdinDef::Text(matrix::fill(s, combo))), None),
            Some(StdinDef::File { file }) => (
                Some(StdinDef::File {
                    file: matrix::fill(file, combo),
                }),
                None,
            ),
            Some(StdinDef::Stream { .. }) | None => (None, None),
        };
        let needs = t
            .raw
            .needs
            .as_ref()
            .map(|n| {
                n.get_ref()
                    .iter()
                    .map(|p| (matrix::fill(p.get_ref(), combo), Some(p.span())))
                    .collect()
            })
            .unwrap_or_default();
        let def = JobDef {
            name,
            cmd,
            sh,
            stdin,
            stdout: fill_output(&settings.stdout, combo),
            stderr: fill_output(&settings.stderr, combo),
            env: env
                .iter()
                .map(|(k, v)| (k.clone(), matrix::fill(v, combo)))
                .collect(),
            cwd: Some(matrix::fill(cwd.as_deref().unwrap_or("."), combo)),
            timeout: settings.timeout,
            kill_grace: settings.kill_grace,
            retries: settings.retries,
            retry_delay: settings.retry_delay,
            ok_codes: settings.ok_codes.clone(),
            capture_limit: settings.capture_limit,
            // Resolved against the whole file below, with their spans.
            needs: Vec::new(),
        };
        let label = def.name.clone();
        let mut spec = match def.into_spec(base, &no_defaults) {
            Ok(spec) => spec,
            Err(e) => {
                errs.push(located(e, t, &label));
                continue;
            }
        };
        if let Some(bytes) = &shared_stdin {
            spec.stdin = StdinSpec::Bytes(bytes.clone());
        }
        out.push(Expanded {
            template: Some(ti),
            name_span: t.name_span.clone(),
            needs_span: t.raw.needs.as_ref().map(Sp::span),
            spec,
            needs,
            from,
        });
    }
}

/// An error of the job model, placed at its key in the job's table.
fn located(e: JobDefError, t: &Template<'_>, job: &str) -> ConfigError {
    let span = match e.field.as_str() {
        "name" | "" => t.name_span.clone(),
        key => job_key_span(t.raw, key).or_else(|| t.name_span.clone()),
    };
    let help = match e.field.as_str() {
        "name" => Some(
            "use only letters, digits, `_`, `.`, `:` and `-` in names and in the matrix values they use"
                .to_string(),
        ),
        _ => e.help,
    };
    let mut error = ConfigError::new(e.message).at(span).job(job);
    if !e.field.is_empty() {
        error = error.key(e.field);
    }
    if let Some(help) = help {
        error = error.help(help);
    }
    error
}

//! The command line: arguments, logging, the runtime, and exit codes.
//! `main` stays thin; each subcommand returns the process's exit code.

use std::fmt::Write as _;
use std::io::Write as _;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, Parser, Subcommand};

pub mod exec;
mod gnu;
mod health;
mod init;

use crate::config;
use crate::engine::{self, Engine, Event, How, StopReason};
use crate::exec::fdlimit::{self, FdBudget};
use crate::plan::pipeline::{Emit, ItemSource, Mode as StageMode, Output, PipelineSpec};
use crate::plan::{OutputSpec, Plan, Program, ShowOutput, StdinSpec};
use crate::report::human::{Human, Mode};
use crate::report::json;
use crate::report::target::{self, Target};
use crate::sched::{self, Observer};

/// Exit code for invalid input (a bad job file, bad arguments).
pub const EXIT_INVALID: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "drover",
    version,
    about = "Run many child processes at once and say exactly what happened to each."
)]
struct Cli {
    #[command(flatten)]
    logging: Logging,
    /// Run as a tiny init (as tini) that reaps orphans and forwards signals
    /// to drover; the default when drover is PID 1 (a container's entry
    /// point).
    #[arg(long, conflicts_with = "no_init")]
    init: bool,
    /// Do not run as an init even as PID 1 (also DROVER_NO_INIT=1).
    #[arg(long)]
    no_init: bool,
    #[command(subcommand)]
    command: Command,
}

/// drover's own logging. Not global: after `exec`, `-v` is GNU parallel's
/// (print each command), as in `parallel -v`.
#[derive(clap::Args, Debug)]
struct Logging {
    /// More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG also works.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Colour on stderr: auto (when stderr is a terminal and NO_COLOR is
    /// not set), always, never.
    #[arg(long, value_enum, value_name = "WHEN")]
    color: Option<Color>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Color {
    Auto,
    Always,
    Never,
}

impl Color {
    /// Whether to colour drover's stderr.
    fn on(self) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                use std::io::IsTerminal;
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stderr().is_terminal()
            }
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the jobs of a job file.
    ///
    /// Exit code: 0 every job succeeded, 1 some job did not, 2 invalid input,
    /// 130 interrupted by SIGINT, 143 by SIGTERM.
    Run(RunArgs),
    /// Validate a job file and print the expanded plan; runs nothing.
    Check(CheckArgs),
    /// Print a shell's completion script for drover, e.g.
    /// `drover completions bash > ~/.local/share/bash-completion/completions/drover`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print drover's man page (roff), e.g. `drover man > drover.1; man ./drover.1`.
    Man,
    /// Run a command for every item, many at once (xargs -P / GNU parallel).
    Exec(Box<exec::ExecArgs>),
    /// Serve an HTTP API that runs jobs, keeping them in a store (SQLite).
    ///
    /// Stops on SIGTERM or SIGINT: no new jobs, running ones get
    /// `drain_timeout`, then are stopped; queued ones run at the next start.
    Serve(ServeArgs),
    /// Ask a running `drover serve` whether it is alive (GET /healthz), as a
    /// container's HEALTHCHECK does: no curl or shell needed.
    ///
    /// Exit code: 0 when it answers 200 within the timeout, 1 otherwise
    /// (why on stderr).
    Health(health::HealthArgs),
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// A TOML file with a `[serve]` table and `[defaults]` for every job
    /// (see config/serve.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where to listen [default: 127.0.0.1:7070]; a port of 0 takes a free one.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// The store (drover.db) and the jobs' output files [default: .drover].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The bearer token every /v1/ call must carry [default: $DROVER_TOKEN].
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Jobs at once [default: [serve] max_parallel, else no limit; 16 in a
    /// fleet].
    #[arg(short = 'j', long, value_name = "N")]
    max_parallel: Option<usize>,
    /// Share one job queue with other workers in PostgreSQL
    /// (postgres://USER:PASSWORD@HOST:PORT/DATABASE) [default: [serve]
    /// store, else a SQLite store of this server's own in --state-dir].
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// drover's log lines on stderr: `human`, or `json` (one object a line,
    /// for a container's log collector).
    #[arg(long, value_name = "FORMAT", default_value = "human", value_parser = ["human", "json"])]
    log_format: String,
    #[command(flatten)]
    logging: Logging,
}

fn serve(args: ServeArgs) -> u8 {
    let flags = crate::serve::Flags {
        config: args.config,
        listen: args.listen,
        state_dir: args.state_dir,
        token_file: args.token_file,
        max_parallel: args.max_parallel,
        store: args.store,
    };
    let token = std::env::var("DROVER_TOKEN").ok();
    // Jobs inherit drover's environment: the token is not theirs to read.
    // SAFETY: drover is one thread still (the runtime starts in `serve`).
    unsafe { std::env::remove_var("DROVER_TOKEN") };
    match crate::serve::config::settings(flags, token) {
        Ok(settings) => match crate::serve::serve(settings) {
            Ok(()) => 0,
            Err(crate::serve::Failure::Invalid(e)) => {
                eprintln!("error: {e}");
                EXIT_INVALID
            }
            Err(crate::serve::Failure::Failed(e)) => {
                eprintln!("error: {e}");
                1
            }
        },
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_INVALID
        }
    }
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// The job file (TOML).
    file: PathBuf,
    #[command(flatten)]
    logging: Logging,
    /// Write the JSON report to FILE, or to stdout with `-`.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Print nothing but errors (no progress, job lines or summary).
    #[arg(short, long)]
    quiet: bool,
    /// Override `[run] max_parallel` (0 = unlimited).
    #[arg(short = 'j', long, value_name = "N")]
    max_parallel: Option<usize>,
    /// Override `[run] fail_fast`: the first failure stops the run.
    #[arg(long)]
    fail_fast: bool,
    /// Print each job's captured stdout and stderr under its status line as
    /// it finishes: `all` (the default of the bare flag), `failures`, or
    /// `none`. Overrides `[run] show_output`.
    #[arg(long, value_name = "WHOSE", num_args = 0..=1, default_missing_value = "all", value_parser = ["all", "failures", "none"])]
    show_output: Option<String>,
}

#[derive(clap::Args, Debug)]
struct CheckArgs {
    /// The job file (TOML).
    file: PathBuf,
    #[command(flatten)]
    logging: Logging,
}

pub fn main() -> ExitCode {
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // First of all, while drover is one thread.
    if init::wanted(&argv) {
        init::run(&argv);
    }
    // `parallel ARGS` becomes `drover exec -- ARGS`: GNU parallel's options
    // may follow the `--`, so drop a `--` right after `exec`.
    let sub = argv
        .iter()
        .skip(1)
        .position(|a| !a.to_string_lossy().starts_with('-'))
        .map(|i| i + 1);
    let is_exec = sub.is_some_and(|i| argv[i] == "exec");
    if let Some(i) = sub.filter(|_| is_exec) {
        if argv.get(i + 1).is_some_and(|a| a == "--") {
            argv.remove(i + 1);
        }
        // GNU parallel's options drover lacks: refused by name, before clap
        // would take them for something else or call them unknown.
        let args: Vec<String> = argv[i + 1..]
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        if let Err(e) = gnu::check_options(&args) {
            eprintln!("drover exec: {e}");
            return ExitCode::from(exec::EXIT_ERROR);
        }
    }
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // drover exec exits as GNU parallel does on a usage error.
            let code = if e.use_stderr() && is_exec {
                exec::EXIT_ERROR
            } else {
                e.exit_code() as u8
            };
            return ExitCode::from(code);
        }
    };
    let own = match &cli.command {
        Command::Run(args) => Some(&args.logging),
        Command::Check(args) => Some(&args.logging),
        Command::Serve(args) => Some(&args.logging),
        Command::Exec(_) | Command::Health(_) | Command::Completions { .. } | Command::Man => None,
    };
    let verbose = own.map_or(0, |l| l.verbose);
    let color = own
        .and_then(|l| l.color)
        .or(cli.logging.color)
        .unwrap_or(Color::Auto)
        .on();
    console::set_colors_enabled(color);
    console::set_colors_enabled_stderr(color);
    // serve says what it does (listening, draining) at info.
    let (least, json) = match &cli.command {
        Command::Serve(args) => (1, args.log_format == "json"),
        _ => (0, false),
    };
    init_logging(
        cli.logging.verbose.saturating_add(verbose).max(least),
        color,
        json,
    );
    // Before drover opens anything: the spawn's reserved descriptors sit
    // just above those it inherited.
    crate::exec::vfork::init();
    let code = match cli.command {
        Command::Run(args) => run(args),
        Command::Check(args) => check(args),
        Command::Exec(args) => exec::exec(*args),
        Command::Serve(args) => serve(args),
        Command::Health(args) => health::health(args),
        Command::Completions { shell } => print_with(|out| {
            clap_complete::generate(shell, &mut Cli::command(), "drover", out);
            Ok(())
        }),
        Command::Man => print_with(|out| clap_mangen::Man::new(Cli::command()).render(out)),
    };
    ExitCode::from(code)
}

/// Writes what `write` makes to stdout; `| head` is a clean exit.
fn print_with(write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) -> u8 {
    let mut out = std::io::stdout().lock();
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("error: failed to write to stdout: {e}");
            1
        }
    }
}

fn init_logging(verbose: u8, color: bool, json: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if verbose == 0 && !v.is_empty() => EnvFilter::new(v),
        _ => EnvFilter::new(format!("drover={default},warn")),
    };
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match json {
        true => log.json().init(),
        false => log.with_ansi(color).init(),
    }
}

fn load(file: &std::path::Path) -> Result<Plan, u8> {
    let plan = config::load(file).map_err(|e| {
        eprintln!("{e}");
        EXIT_INVALID
    })?;
    if let Some(warning) = large_plan_warning(&plan) {
        eprintln!("{warning}");
    }
    Ok(plan)
}

/// Past this many jobs, `check` and `run` say what the plan will cost.
const LARGE_PLAN: usize = 100_000;
/// drover's peak memory per job of a `run` of `true` jobs: 284 MB at
/// 200 000 jobs (release build), rounded up.
const MEMORY_PER_JOB: u64 = 1536;
/// Report bytes per job of a `true` job (no output): 75 MB at 200 000.
const REPORT_PER_JOB: u64 = 400;

/// A warning for a plan of more than `LARGE_PLAN` jobs: each is held in
/// memory for the whole run and has an entry in the report.
fn large_plan_warning(plan: &Plan) -> Option<String> {
    let jobs = plan.jobs.len();
    if jobs <= LARGE_PLAN {
        return None;
    }
    let size = |bytes: u64| bytesize::ByteSize::b(bytes).display().iec().to_string();
    Some(format!(
        "warning: {}: {jobs} jobs (more than {LARGE_PLAN}); drover keeps every job and its result in memory, about {} for this plan, and its report takes about {} plus what the jobs print; for long lists of items, `drover exec` or a [[pipeline]] reads them as it goes",
        plan.file.display(),
        size(jobs as u64 * MEMORY_PER_JOB),
        size(jobs as u64 * REPORT_PER_JOB),
    ))
}

/// The most descriptors `plan`'s jobs can have open at once: its costliest
/// jobs, as many as may run at once.
fn fds_at_most(plan: &Plan) -> u64 {
    let mut costs: Vec<usize> = plan
        .jobs
        .iter()
        .map(|j| {
            let c = fdlimit::job_cost(j);
            c.held + c.transient
        })
        .collect();
    costs.sort_unstable_by(|a, b| b.cmp(a));
    let at_once = plan.max_parallel.map_or(costs.len(), NonZeroUsize::get);
    let jobs: usize = costs.iter().take(at_once).sum();
    jobs as u64
}

fn run(args: RunArgs) -> u8 {
    let mut plan = match load(&args.file) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if let Some(n) = args.max_parallel {
        plan.max_parallel = NonZeroUsize::new(n);
    }
    if args.fail_fast {
        plan.fail_fast = true;
    }
    // Where the report goes is bad input too: checked before any job runs.
    let report = match args.report.as_deref().map(report_target).transpose() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INVALID;
        }
    };
    let plan = Arc::new(plan);
    // Parsing and planning a big job file leaves freed memory in this
    // thread's malloc arena, which the runtime's worker threads (arenas of
    // their own) would never reuse: give it back before the jobs start.
    // SAFETY: malloc_trim only releases free memory.
    unsafe { libc::malloc_trim(0) };
    let fds = FdBudget::of_process();
    fds.presize(fds_at_most(&plan));

    // Pipelines write their `output = "inherit"` from a runtime thread and
    // keep workers of their own: they always get the multi-thread runtime.
    let has_pipeline = plan
        .jobs
        .iter()
        .any(|j| matches!(j.program, crate::plan::Program::Pipeline(_)));
    let limit = match has_pipeline {
        true => None,
        false => plan.max_parallel.map(NonZeroUsize::get),
    };
    let runtime = match sched::runtime_for(limit) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the runtime: {e}");
            return 1;
        }
    };
    let mut human = Human::new(Mode::detect(args.quiet), plan.clone());
    if let Some(show) = args.show_output.as_deref().and_then(ShowOutput::parse) {
        human.show_output(show);
    }
    if args.report.as_deref() == Some(Path::new("-")) {
        human.stdout_taken();
    }
    let limits = engine::Limits {
        slots: plan.max_parallel,
        fds,
    };
    let batch = {
        let plan = plan.clone();
        async move {
            let mut human = human;
            crate::exec::escape::start();
            let interrupts = sched::signal::listen();
            let done = run_batch(plan, limits, &mut human, interrupts).await;
            (human, done)
        }
    };
    // The engine runs on a worker thread, beside the jobs' tasks, rather
    // than on this thread: its wake-ups stay inside the worker pool.
    let (mut human, done) = match runtime.block_on(runtime.spawn(batch)) {
        Ok((human, Some(done))) => (human, done),
        Ok((_, None)) | Err(_) => {
            eprintln!("error: drover's engine failed");
            return 1;
        }
    };
    let stopped = match &done.stop {
        Some(StopReason::Interrupted(signal)) => Some(format!("interrupted by {signal}")),
        Some(StopReason::FailFast { .. }) => Some("fail_fast: a job did not succeed".to_string()),
        Some(
            StopReason::Cancelled
            | StopReason::Shutdown
            | StopReason::Halted
            | StopReason::StdoutClosed,
        ) => Some("stopped".to_string()),
        None => None,
    };
    // Each result once: the engine's events are gone, its copies with them.
    let done = Arc::try_unwrap(done).unwrap_or_else(|shared| engine::BatchDone {
        results: shared.results.clone(),
        stop: shared.stop.clone(),
        ..*shared
    });
    let results: Vec<crate::model::JobResult> = done
        .results
        .into_iter()
        .map(|r| Arc::try_unwrap(r).unwrap_or_else(|shared| (*shared).clone()))
        .collect();
    crate::exec::escape::finish();
    human.finish(&results, done.duration, stopped.as_deref());

    let mut code = match &done.stop {
        Some(StopReason::Interrupted("SIGINT")) => 130,
        Some(StopReason::Interrupted(_)) => 143,
        _ if results
            .iter()
            .all(|r| r.status == crate::model::Status::Succeeded) =>
        {
            0
        }
        _ => 1,
    };
    if let Some(target) = report {
        let text = json::render(&plan, &results, done.started_at, done.duration);
        if let Err(e) = target.write_whole(&text) {
            eprintln!("error: {e:#}");
            if code == 0 {
                code = 1;
            }
        }
    }
    // Jobs' processes are all reaped; do not wait for stray blocking tasks.
    runtime.shutdown_background();
    code
}

/// Runs `plan` as one batch of a new engine, showing it on `human`; stops
/// it on the first SIGINT/SIGTERM and kills at once on a second SIGINT.
async fn run_batch(
    plan: Arc<Plan>,
    limits: engine::Limits,
    human: &mut Human,
    mut interrupts: tokio::sync::mpsc::UnboundedReceiver<sched::signal::Interrupt>,
) -> Option<Arc<engine::BatchDone>> {
    let engine = Engine::start(limits);
    let mut events = engine.subscribe(human.wants_starts()).await.ok()?;
    let submitted = engine.submit(plan).await.ok()?;
    let first = submitted.jobs.first().map_or(0, |j| j.0);
    let index = |job: crate::model::JobId| (job.0 - first) as usize;
    let batch = engine::Target::Batch(submitted.batch);
    let mut signals_seen = 0;
    let done = loop {
        tokio::select! {
            biased;
            Some(interrupt) = interrupts.recv() => {
                signals_seen += 1;
                let how = match signals_seen {
                    1 => How::Graceful,
                    _ => {
                        human.stopping(&format!("{}: killing every job now", interrupt.name()));
                        How::Now
                    }
                };
                let reason = StopReason::Interrupted(interrupt.name());
                let _ = engine.cancel(batch, how, reason).await;
            }
            event = events.recv() => match event? {
                Event::Started { job, pid, .. } => human.job_started(index(job), pid),
                Event::PipelineStarted { job, stats } => human.pipeline_started(index(job), stats),
                Event::Retrying { job, attempt, result } => {
                    human.job_retrying(index(job), attempt, &result);
                }
                Event::Finished { job, result } => human.job_finished(index(job), &result),
                Event::Stopping { reason, running_jobs, .. } => human.stopping(&match reason {
                    StopReason::Interrupted(signal) => format!(
                        "{signal}: stopping {running_jobs} running job(s) (SIGTERM, then SIGKILL after kill_grace); press Ctrl-C again to kill at once"
                    ),
                    StopReason::FailFast { name, status, .. } => {
                        format!("fail_fast: `{name}` {}; stopping the run", status.as_str())
                    }
                    StopReason::Cancelled
                    | StopReason::Shutdown
                    | StopReason::Halted
                    | StopReason::StdoutClosed => "stopping".to_string(),
                }),
                Event::BatchDone(done) if done.batch == submitted.batch => break done,
                Event::Accepted { .. } | Event::BatchDone(_) => {}
            },
        }
    };
    drop(events);
    let _ = engine.shutdown(How::Graceful).await;
    Some(done)
}

/// The `--report` target, resolved and checked, or what is wrong with it.
pub fn report_target(path: &Path) -> Result<Target, String> {
    target::resolve(path)
        .and_then(|t| t.check_replaceable().map(|()| t))
        .map_err(|e| format!("--report {}: {e}", path.display()))
}

fn check(args: CheckArgs) -> u8 {
    let plan = match load(&args.file) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut out = std::io::stdout().lock();
    match out
        .write_all(describe_plan(&plan).as_bytes())
        .and_then(|()| out.flush())
    {
        // `drover check jobs.toml | head` is a clean exit.
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("error: failed to write the plan: {e}");
            1
        }
    }
}

fn describe_pipeline(out: &mut String, p: &PipelineSpec) {
    let items = match &p.items {
        ItemSource::List(list) => format!("{} listed", list.len()),
        ItemSource::File(path) => format!("lines of {}", path.display()),
        ItemSource::Command(job) => match &job.program {
            Program::Shell(sh) => format!("stdout lines of sh {sh:?}"),
            Program::Argv(argv) => format!("stdout lines of cmd {argv:?}"),
            Program::Pipeline(_) => String::new(),
        },
    };
    let _ = writeln!(out, "  pipeline: items = {items}; queue = {}", p.queue);
    if p.fail_fast {
        let _ = writeln!(out, "  fail_fast = true");
    }
    match &p.output {
        Output::Null => {}
        Output::Inherit => {
            let _ = writeln!(out, "  output   = inherit");
        }
        Output::File { path, append } => {
            let _ = writeln!(
                out,
                "  output   = file {}{}",
                path.display(),
                if *append { " (append)" } else { "" }
            );
        }
    }
    for (i, stage) in p.stages.iter().enumerate() {
        let mode = match stage.mode {
            StageMode::PerItem(Emit::Item) => "a process per item, emits the item",
            StageMode::PerItem(Emit::Lines) => "a process per item, emits its stdout lines",
            StageMode::Stream => "stream: long-lived workers, stdin lines in, stdout lines out",
        };
        let _ = writeln!(
            out,
            "  stage {} `{}`: {mode}; workers = {}",
            i + 1,
            stage.name,
            stage.workers
        );
        match &stage.job.program {
            Program::Argv(argv) => {
                let _ = writeln!(out, "    cmd    = {argv:?}");
            }
            Program::Shell(sh) => {
                let _ = writeln!(out, "    sh     = {sh:?}");
            }
            Program::Pipeline(_) => {}
        }
        if let Some(t) = stage.job.timeout {
            let _ = writeln!(out, "    timeout = {}", humantime::format_duration(t));
        }
        if stage.job.retries > 0 {
            let _ = writeln!(out, "    retries = {}", stage.job.retries);
        }
    }
}

/// The jobs of a unit in pipe order, as a shell writes them: `a | b | c`.
fn pipe_chain(plan: &Plan, jobs: &[usize]) -> String {
    // The head is the one job of the unit whose stdin is not another job's.
    let mut next = jobs
        .iter()
        .copied()
        .find(|&j| !matches!(plan.jobs[j].stdin, StdinSpec::From(_)));
    let mut names = Vec::with_capacity(jobs.len());
    while let Some(j) = next {
        names.push(plan.jobs[j].name.as_str());
        next = match plan.jobs[j].stdout {
            OutputSpec::Pipe(to) if names.len() < jobs.len() => Some(to),
            _ => None,
        };
    }
    names.join(" | ")
}

/// The expanded plan, as `drover check` prints it.
pub fn describe_plan(plan: &Plan) -> String {
    let mut out = String::new();
    let parallel = plan
        .max_parallel
        .map_or("unlimited".to_string(), |n| n.to_string());
    let _ = writeln!(
        out,
        "{}: {} job{}; max_parallel = {parallel}, fail_fast = {}",
        plan.file.display(),
        plan.jobs.len(),
        if plan.jobs.len() == 1 { "" } else { "s" },
        plan.fail_fast
    );
    // Jobs joined by `stdin = { from }` are scheduled as one: say so, as the
    // shell pipeline they are.
    let piped: Vec<_> = plan.units.iter().filter(|u| u.jobs.len() > 1).collect();
    if !piped.is_empty() {
        let _ = writeln!(
            out,
            "jobs joined by pipes (`stdin = {{ from }}`) start together, each taking a max_parallel slot:"
        );
        for unit in piped {
            let _ = writeln!(out, "  {}", pipe_chain(plan, &unit.jobs));
        }
    }
    for job in &plan.jobs {
        let _ = writeln!(out, "\n[{}]", job.name);
        match &job.program {
            Program::Argv(argv) => {
                let _ = writeln!(out, "  cmd      = {argv:?}");
            }
            Program::Shell(sh) => {
                let _ = writeln!(out, "  sh       = {sh:?}");
            }
            Program::Pipeline(p) => describe_pipeline(&mut out, p),
        }
        match &job.stdin {
            StdinSpec::Null => {}
            StdinSpec::Bytes(b) => {
                let _ = writeln!(out, "  stdin    = {} bytes", b.len());
            }
            StdinSpec::File(p) => {
                let _ = writeln!(out, "  stdin    = file {}", p.display());
            }
            StdinSpec::From(j) => {
                let _ = writeln!(out, "  stdin    = from {}", plan.jobs[*j].name);
            }
            // Only `drover exec --pipe` makes these.
            StdinSpec::Handed(_) => {
                let _ = writeln!(out, "  stdin    = a block of drover's stdin");
            }
        }
        for (key, spec) in [("stdout", &job.stdout), ("stderr", &job.stderr)] {
            if matches!(job.program, Program::Pipeline(_)) {
                break;
            }
            let text = match spec {
                OutputSpec::Capture => continue,
                OutputSpec::Null => "null".to_string(),
                OutputSpec::Inherit => "inherit".to_string(),
                OutputSpec::File { path, append } => {
                    format!(
                        "file {}{}",
                        path.display(),
                        if *append { " (append)" } else { "" }
                    )
                }
                OutputSpec::Pipe(j) => format!("pipe to {}", plan.jobs[*j].name),
                OutputSpec::Spooled => "temporary file".to_string(),
            };
            let _ = writeln!(out, "  {key:<8} = {text}");
        }
        if !job.needs.is_empty() {
            let names: Vec<&str> = job
                .needs
                .iter()
                .map(|&n| plan.jobs[n].name.as_str())
                .collect();
            let _ = writeln!(out, "  needs    = {}", names.join(", "));
        }
        if let Some(t) = job.timeout {
            let _ = writeln!(
                out,
                "  timeout  = {} (kill_grace {})",
                humantime::format_duration(t),
                humantime::format_duration(job.kill_grace)
            );
        }
        if job.retries > 0 {
            let _ = writeln!(
                out,
                "  retries  = {} (retry_delay {})",
                job.retries,
                humantime::format_duration(job.retry_delay)
            );
        }
        if job.ok_codes != [0] {
            let _ = writeln!(out, "  ok_codes = {:?}", job.ok_codes);
        }
        let _ = writeln!(out, "  cwd      = {}", job.cwd.display());
        if !job.env.is_empty() {
            let env: Vec<String> = job.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(out, "  env      = {}", env.join(" "));
        }
    }
    out
}

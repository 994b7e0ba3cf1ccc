//! What a person sees on stderr: on a TTY a live progress view with a line
//! above it per finished job; otherwise plain lines, no escape codes. At the
//! end, a summary and the stderr tail of each job that did not succeed.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use console::{Style, Term};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use super::json::Summary;
use crate::exec::group::signal_name;
use crate::model::PipelineReport;
use crate::model::{Exit, JobResult, Status};
use crate::pipeline::PipelineStats;
use crate::plan::{Plan, ShowOutput};
use crate::sched::Observer;

/// Lines of a failed job's stderr shown in the summary.
const TAIL_LINES: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Live progress view and colors.
    Tty,
    /// Plain lines.
    Plain,
    /// Nothing but drover's own errors.
    Quiet,
}

impl Mode {
    pub fn detect(quiet: bool) -> Self {
        if quiet {
            Mode::Quiet
        } else if Term::stderr().is_term() {
            Mode::Tty
        } else {
            Mode::Plain
        }
    }
}

pub struct Human {
    mode: Mode,
    plan: Arc<Plan>,
    bar: Option<ProgressBar>,
    multi: Option<MultiProgress>,
    /// A live line per stage of each running pipeline.
    stage_bars: BTreeMap<usize, Vec<ProgressBar>>,
    running: BTreeMap<usize, ()>,
    done: usize,
    unsuccessful: usize,
    width: usize,
    show_output: ShowOutput,
    /// Jobs' stdout goes to stderr too (the report is on stdout).
    stdout_taken: bool,
}

impl Human {
    pub fn new(mode: Mode, plan: Arc<Plan>) -> Self {
        let multi = (mode == Mode::Tty)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let bar = multi.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::new(plan.jobs.len() as u64));
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner:.cyan} [{elapsed_precise}] {bar:25.cyan/blue} {pos}/{len} {wide_msg}",
                )
                // A fixed template cannot fail to parse.
                .expect("valid progress template")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        let show_output = plan.show_output;
        let width = plan
            .jobs
            .iter()
            .map(|j| j.name.as_str().len())
            .max()
            .unwrap_or(0)
            .min(40);
        Self {
            mode,
            plan,
            bar,
            multi,
            stage_bars: BTreeMap::new(),
            running: BTreeMap::new(),
            done: 0,
            unsuccessful: 0,
            width,
            show_output,
            stdout_taken: false,
        }
    }

    /// Prints each shown job's stdout on drover's stderr instead of its
    /// stdout (which the JSON report takes).
    pub fn stdout_taken(&mut self) {
        self.stdout_taken = true;
    }

    /// Overrides the job file's `show_output`.
    pub fn show_output(&mut self, show: ShowOutput) {
        self.show_output = show;
    }

    /// A finished job's captured stdout (on stdout) and stderr (on stderr),
    /// whole and in that order, under its status line.
    fn print_output(&self, result: &JobResult) {
        let shown = match self.show_output {
            ShowOutput::None => false,
            ShowOutput::Failures => result.status != Status::Succeeded,
            ShowOutput::All => true,
        };
        if !shown || (result.stdout.is_empty() && result.stderr.is_empty()) {
            return;
        }
        let print = || {
            // A closed stdout (`| head`) is the reader's choice: ignored.
            let mut stdout = std::io::stdout().lock();
            let mut stderr = std::io::stderr().lock();
            let out: &mut dyn Write = match self.stdout_taken {
                true => &mut stderr,
                false => &mut stdout,
            };
            let _ = result.stdout.write_to(out, 0).and_then(|()| out.flush());
            let _ = result
                .stderr
                .write_to(&mut stderr, 0)
                .and_then(|()| stderr.flush());
            for (stream, c) in [("stdout", &result.stdout), ("stderr", &result.stderr)] {
                if c.truncated {
                    let _ = writeln!(
                        stderr,
                        "(the start of its {stream} is not shown: more than capture_limit)"
                    );
                }
            }
        };
        match &self.multi {
            Some(multi) => multi.suspend(print),
            None => print(),
        }
    }

    fn println(&self, line: &str) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(line);
            }
            None => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{line}");
            }
        }
    }

    fn style(&self, status: Status) -> Style {
        if self.mode != Mode::Tty {
            return Style::new();
        }
        match status {
            Status::Succeeded => Style::new().green().bold(),
            Status::Skipped | Status::Cancelled => Style::new().yellow().bold(),
            _ => Style::new().red().bold(),
        }
    }

    fn refresh(&self) {
        let Some(bar) = &self.bar else { return };
        bar.set_position(self.done as u64);
        let names: Vec<&str> = self
            .running
            .keys()
            .take(8)
            .map(|&j| self.plan.jobs[j].name.as_str())
            .collect();
        let more = self.running.len().saturating_sub(names.len());
        let mut msg = format!(
            "{} running, {} failed",
            self.running.len(),
            self.unsuccessful
        );
        if !names.is_empty() {
            msg.push_str(": ");
            msg.push_str(&names.join(", "));
            if more > 0 {
                msg.push_str(&format!(" +{more}"));
            }
        }
        bar.set_message(msg);
    }

    /// Ends the live view and prints the summary.
    pub fn finish(&mut self, results: &[JobResult], duration: Duration, stopped: Option<&str>) {
        for bar in std::mem::take(&mut self.stage_bars).into_values().flatten() {
            bar.finish_and_clear();
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.mode == Mode::Quiet {
            return;
        }
        let summary = Summary::of(results);
        let mut out = String::new();
        out.push_str(&format!("{}\n", "─".repeat(60)));
        out.push_str(&format!(
            "{:>12} [{:>9}] {} job{}\n",
            "Summary",
            fmt_duration(duration),
            summary.total,
            if summary.total == 1 { "" } else { "s" },
        ));
        for status in Status::ALL {
            let n = summary.count(status);
            if n > 0 {
                let word = self
                    .style(status)
                    .apply_to(format!("{:>12}", status.as_str()));
                out.push_str(&format!("{word} {n:>11}\n"));
            }
        }
        if let Some(why) = stopped {
            out.push_str(&format!("{:>12} {why}\n", "Stopped"));
        }
        for (spec, r) in self.plan.jobs.iter().zip(results) {
            if !matches!(
                r.status,
                Status::Failed | Status::TimedOut | Status::SpawnFailed
            ) {
                continue;
            }
            out.push_str(&format!(
                "\n{} {} ({})\n",
                self.style(r.status)
                    .apply_to(format!("{:>12}", status_word(r.status))),
                spec.name,
                r.error.as_deref().unwrap_or(""),
            ));
            if let Some(p) = &r.pipeline {
                out.push_str(&failed_items(p));
                continue;
            }
            let text = String::from_utf8_lossy(&r.stderr.bytes);
            let lines: Vec<&str> = text.lines().collect();
            if lines.is_empty() {
                out.push_str(&format!("{:>12} (no stderr)\n", ""));
                continue;
            }
            let skip = lines.len().saturating_sub(TAIL_LINES);
            if skip > 0 || r.stderr.truncated {
                out.push_str(&format!(
                    "{:>12} stderr, last {} lines:\n",
                    "",
                    lines.len() - skip
                ));
            }
            for line in &lines[skip..] {
                out.push_str(&format!("{:>12} | {line}\n", ""));
            }
        }
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(out.as_bytes());
    }
}

/// The failed items of a pipeline, for the summary: the first few, each
/// with its stage, error and last stderr line.
fn failed_items(p: &PipelineReport) -> String {
    const SHOWN: usize = 10;
    let mut out = String::new();
    for f in p.failed_items.iter().take(SHOWN) {
        out.push_str(&format!(
            "{:>12} | {} `{}`: {}\n",
            "", f.stage, f.item, f.error
        ));
        if let Some(last) = f.stderr.lines().rev().find(|l| !l.trim().is_empty()) {
            out.push_str(&format!("{:>12} |   stderr: {last}\n", ""));
        }
    }
    let more = (p.failed_items.len().saturating_sub(SHOWN)) as u64 + p.failed_items_omitted;
    if more > 0 {
        out.push_str(&format!(
            "{:>12} | and {more} more failed item(s); see the report\n",
            ""
        ));
    }
    for e in &p.errors {
        out.push_str(&format!("{:>12} | {e}\n", ""));
    }
    out
}

/// A stage's counts on one line.
fn stage_line(name: &str, s: &crate::model::StageReport) -> String {
    format!(
        "{name}  in {} out {} failed {}  busy {:.1}s  max queue {}{}",
        s.items_in,
        s.items_out,
        s.failed,
        s.busy_ms as f64 / 1000.0,
        s.max_queue_depth,
        if s.restarts > 0 {
            format!("  restarts {}", s.restarts)
        } else {
            String::new()
        }
    )
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Succeeded => "SUCCEEDED",
        Status::Failed => "FAILED",
        Status::TimedOut => "TIMED OUT",
        Status::Skipped => "SKIPPED",
        Status::Cancelled => "CANCELLED",
        Status::SpawnFailed => "SPAWN FAILED",
    }
}

pub fn fmt_duration(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

fn detail(r: &JobResult) -> String {
    let exit = match r.exit {
        Some(Exit::Code(c)) => format!("exit {c}"),
        Some(Exit::Signal(s)) => signal_name(s),
        None => String::new(),
    };
    match r.status {
        Status::Succeeded | Status::Failed if r.leaked => format!("{exit}, leaked"),
        Status::Succeeded | Status::Failed => exit,
        _ => r.error.clone().unwrap_or(exit),
    }
}

impl Observer for Human {
    fn wants_starts(&self) -> bool {
        // Only the live view shows running jobs.
        self.mode == Mode::Tty
    }

    fn job_started(&mut self, job: usize, _pid: u32) {
        self.running.insert(job, ());
        self.refresh();
    }

    fn job_retrying(&mut self, job: usize, attempt: u32, result: &JobResult) {
        if self.mode == Mode::Quiet {
            return;
        }
        self.running.remove(&job);
        let line = format!(
            "{} [{:>9}] {:w$}  attempt {attempt} {}: {}; retrying",
            self.style(Status::Cancelled)
                .apply_to(format!("{:>12}", "RETRY")),
            fmt_duration(result.duration.unwrap_or_default()),
            self.plan.jobs[job].name,
            result.status.as_str(),
            detail(result),
            w = self.width,
        );
        self.println(&line);
        self.refresh();
    }

    fn job_finished(&mut self, job: usize, result: &JobResult) {
        self.running.remove(&job);
        self.done += 1;
        if result.status != Status::Succeeded {
            self.unsuccessful += 1;
        }
        if self.mode != Mode::Quiet {
            let duration = match result.duration {
                Some(d) => fmt_duration(d),
                None => String::new(),
            };
            let attempts = if result.attempts > 1 {
                format!(" (attempt {})", result.attempts)
            } else {
                String::new()
            };
            let line = format!(
                "{} [{duration:>9}] {:w$}  {}{attempts}",
                self.style(result.status)
                    .apply_to(format!("{:>12}", status_word(result.status))),
                self.plan.jobs[job].name,
                detail(result),
                w = self.width,
            );
            self.println(line.trim_end());
            if let Some(p) = &result.pipeline {
                for s in &p.stages {
                    let name = format!("{}/{}", self.plan.jobs[job].name, s.name);
                    self.println(&format!("{:>12}             {}", "", stage_line(&name, s)));
                }
            }
        }
        self.print_output(result);
        for bar in self.stage_bars.remove(&job).into_iter().flatten() {
            bar.finish_and_clear();
        }
        self.refresh();
    }

    fn pipeline_started(&mut self, job: usize, stats: Arc<PipelineStats>) {
        let Some(multi) = &self.multi else { return };
        let mut bars = Vec::new();
        for i in 0..stats.stages.len() {
            let st = stats.clone();
            let style = ProgressStyle::with_template("  {spinner:.cyan} {prefix} {counts}")
                .expect("valid progress template")
                .with_key(
                    "counts",
                    move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                        use std::sync::atomic::Ordering::Relaxed;
                        let s = &st.stages[i];
                        let _ = write!(
                            w,
                            "in {} out {} failed {}  working {}/{}  queue {}/{}",
                            s.items_in.load(Relaxed),
                            s.items_out.load(Relaxed),
                            s.failed.load(Relaxed),
                            s.busy_now.load(Relaxed),
                            s.workers,
                            s.queued.load(Relaxed),
                            st.queue,
                        );
                    },
                );
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(style);
            bar.set_prefix(format!(
                "{}/{}",
                self.plan.jobs[job].name, stats.stages[i].name
            ));
            bar.enable_steady_tick(Duration::from_millis(200));
            bars.push(bar);
        }
        self.stage_bars.insert(job, bars);
    }

    fn stopping(&mut self, why: &str) {
        if self.mode != Mode::Quiet {
            let line = format!(
                "{} {why}",
                self.style(Status::Cancelled)
                    .apply_to(format!("{:>12}", "STOPPING"))
            );
            self.println(&line);
        }
    }
}

//! `drover exec`: ad hoc fan-out, a drop-in for `xargs -P` and everyday GNU
//! parallel. Arguments are parsed in two stages: clap reads them raw
//! (`ExecArgs`), then they are resolved into a `Fanout` with every value
//! checked, before anything runs.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc;

use crate::engine::{self, Engine, How, StopReason};
use crate::exec::fdlimit::FdBudget;
use crate::model::JobResult;
use crate::plan::items::{self, Origin, Source};
use crate::plan::results::Results;
use crate::plan::template::{Counts, Fill, Template, TemplateError};
use crate::plan::{DEFAULT_KILL_GRACE, cpus};
use crate::report::json;
use crate::report::printer::{Printer, PrinterOptions};
use crate::report::target;
use crate::sched::fanout::{
    self, Fanout, Halt, HaltOn, Hold, OutputMode, ShowCommands, Threshold, Work,
};
use crate::sched::{blocks, signal};

/// GNU parallel's exit code for errors of drover itself (bad options, ...).
pub const EXIT_ERROR: u8 = 255;

const EXAMPLES: &str = "\
Examples:
  drover exec -j 8 -- grep -c ERROR {} ::: logs/*.log   count per file, 8 at a time
  drover exec -- gzip ::: *.txt                          no {}: the item is appended
  drover exec -k -- echo {1}-{2} ::: a b ::: 1 2         a-1 a-2 b-1 b-2, in order
  drover exec -- cp {1} {2} ::: a b :::+ x y             :::+ links: cp a x, cp b y
  find . -name '*.png' | drover exec -- convert {} {.}.jpg   items from stdin lines
  find . -name '*.log' -print0 | drover exec -0 -- gzip  names ended by NUL (xargs -0)
  drover exec --tag -- wc -l :::: files.txt              items from a file, tagged output
  drover exec --pipe --block 10M -- wc -l < big.log      stdin cut into ~10 MB blocks
  drover exec --pipe --round-robin -j 4 -- ./load.sh < rows  4 workers share the blocks
  drover exec --shell -- 'echo {} | tr a-z A-Z' ::: abc  a shell command line
  drover exec -X -- rm {} ::: *.tmp                      as many files an rm as fit
  drover exec --timeout 30s --retries 2 --joblog log -- ./fetch.sh ::: $(cat urls)

Replacement strings: {} item, {.} without extension, {/} basename, {//} dirname,
{/.} basename without extension, {#} job number, {%} slot number, {1} {2}.. per
input source ({2.} {1/} ... too). Output is grouped per job: never interleaved.
Exit code: 0 all succeeded, 1-100 the number of failed jobs, 101 more, 255 error.
GNU parallel options and replacement strings drover lacks ({= perl =}, -S,
--plus, ...) are refused by name before anything runs.
Differences from GNU parallel: commands run without a shell unless --shell is
given or the command is a single word with spaces or shell syntax in it; every
job runs in its own process group, stopped whole on --timeout or Ctrl-C.";

#[derive(clap::Args, Debug)]
#[command(
    about = "Run a command for every item, many at once: a drop-in for xargs -P and everyday GNU parallel",
    override_usage = "drover exec [OPTIONS] -- COMMAND [ARG...] [::: ITEM...]... [:::: FILE...]...",
    after_help = EXAMPLES
)]
pub struct ExecArgs {
    /// Jobs at once: N, 0 (as many as possible), N% of CPUs, +N or -N CPUs. Default: CPUs.
    #[arg(
        short = 'j',
        long = "jobs",
        visible_alias = "max-procs",
        alias = "maxprocs",
        short_alias = 'P',
        value_name = "N",
        allow_hyphen_values = true
    )]
    jobs: Option<String>,
    /// Stop a job after this long: SIGTERM to its process group, then SIGKILL after --kill-grace (e.g. 30, 1.5, 30s, 2m; 0: none; P%: P% of the median run time of the jobs that succeeded so far).
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
    /// Time between SIGTERM and SIGKILL [default: 5s].
    #[arg(long, value_name = "DURATION")]
    kill_grace: Option<String>,
    /// Run a failing job up to N times in all (as GNU parallel).
    #[arg(long, value_name = "N")]
    retries: Option<u32>,
    /// Print output in the order of the input, not the order jobs finish.
    #[arg(short = 'k', long, alias = "keeporder")]
    keep_order: bool,
    /// Prefix each output line with the item(s) and a TAB.
    #[arg(long)]
    tag: bool,
    /// Print complete lines as soon as jobs write them (lines are never mixed).
    #[arg(long, aliases = ["line-buffered", "linebuffer", "linebuffered", "lb"])]
    line_buffer: bool,
    /// Let jobs write straight to the terminal (output may interleave).
    #[arg(short = 'u', long)]
    ungroup: bool,
    /// Stop early: never, now,fail=N, soon,fail=N, now,success=N, soon,success=N (N may be N%).
    #[arg(long, value_name = "WHEN", aliases = ["halt-on-error", "haltonerror"])]
    halt: Option<String>,
    /// Run the command line through /bin/sh -c, items shell-quoted.
    #[arg(long)]
    shell: bool,
    /// Never run the command through a shell, even one word with shell
    /// syntax in it (GNU parallel's -q: the words reach the program as written).
    #[arg(short = 'q', long, conflicts_with = "shell")]
    quote: bool,
    /// Split stdin into blocks at line boundaries and feed each to a job's stdin.
    #[arg(long, alias = "spreadstdin")]
    pipe: bool,
    /// Block size for --pipe (e.g. 1M, 512K, 10k) [default: 1M].
    #[arg(long, value_name = "SIZE", aliases = ["block-size", "blocksize"])]
    block: Option<String>,
    /// With --pipe: at most -j jobs, each fed block after block (for
    /// commands slow to start, or one stream split between N workers).
    #[arg(long, visible_alias = "round", alias = "roundrobin")]
    round_robin: bool,
    /// Items from stdin and files end at a NUL byte, not a newline (`find
    /// -print0`, `xargs -0`).
    #[arg(short = '0', long = "null", conflicts_with = "delimiter")]
    null: bool,
    /// Every input source side by side (as `:::+` for all of them), the
    /// shorter ones repeated to the length of the longest, as GNU parallel.
    #[arg(long, visible_alias = "xapply")]
    link: bool,
    /// Split each input line (or argument) into columns at REGEX: they are
    /// {1} {2} ..., as GNU parallel's --colsep.
    #[arg(short = 'C', long, visible_alias = "col-sep", value_name = "REGEX", value_parser = parse_colsep)]
    colsep: Option<regex::Regex>,
    /// At most N arguments (records) a job: `{}` is all of them, `{1}` ...
    /// `{N}` each, as GNU parallel's -n.
    #[arg(
        short = 'n',
        long = "max-args",
        alias = "maxargs",
        value_name = "N",
        conflicts_with = "max_replace_args"
    )]
    max_args: Option<usize>,
    /// N arguments a job, as GNU parallel's -N (0: none); the text around
    /// `{}` is repeated for each (`[{}]`: `[a] [b]`).
    #[arg(
        short = 'N',
        long = "max-replace-args",
        alias = "maxreplaceargs",
        value_name = "N"
    )]
    max_replace_args: Option<usize>,
    /// As many arguments on a command line as fit (-s), the text around
    /// `{}` repeated for each (`x{}y`: `xay xby`); when the input ends, the
    /// last line's arguments are spread over the job slots, as GNU
    /// parallel's -X.
    #[arg(short = 'X')]
    context_replace: bool,
    /// As many arguments on a command line as fit (-s), `{}` all of them;
    /// when the input ends, the last line's are spread over the job slots,
    /// as GNU parallel's -m.
    #[arg(short = 'm')]
    multiple: bool,
    /// As many arguments on a command line as fit (-s), `{}` all of them,
    /// as xargs (nothing spread over the job slots).
    #[arg(long)]
    xargs: bool,
    /// The longest command line -X, -m, --xargs, -n, -N and -L make, as
    /// GNU parallel measures it (the quoted arguments and the command's
    /// text) [default and most: 63664, GNU's].
    #[arg(short = 's', long = "max-chars", alias = "maxchars", value_name = "N")]
    max_chars: Option<String>,
    /// N input lines a command line, the text around `{}` repeated for
    /// each; a line ending in white space goes on in the next, as GNU
    /// parallel's -L.
    #[arg(short = 'L', value_name = "N")]
    lines: Option<String>,
    /// As -L, N 1 when left out (GNU parallel's -l: a next word that is no
    /// number is the command).
    #[arg(
        short = 'l',
        long = "max-lines",
        alias = "maxlines",
        value_name = "N",
        num_args = 0..=1,
        default_missing_value = "1"
    )]
    max_lines: Option<String>,
    /// `--header :`: the first line (or item) of each input source names
    /// its arguments (with --colsep, its columns): `{name}` stands for them,
    /// as GNU parallel's.
    #[arg(long, value_name = ":", value_parser = parse_header)]
    header: Option<String>,
    /// Run the jobs in a random order (all input is read first), as GNU
    /// parallel's --shuf.
    #[arg(long)]
    shuf: bool,
    /// Accepted as GNU parallel's --env VAR, which copies VAR to remote
    /// jobs: local jobs get drover's whole environment anyway.
    #[arg(long = "env", value_name = "VAR")]
    env: Vec<String>,
    /// Take white space off the arguments: n (none), l (left), r (right),
    /// lr (both), as GNU parallel.
    #[arg(long, value_name = "n|l|r|lr", default_value = "n", value_parser = parse_trim)]
    trim: items::Trim,
    /// STR stands for the whole argument in the command instead of `{}`
    /// (which is then text), as GNU parallel's and xargs' -I.
    #[arg(short = 'I', value_name = "STR", conflicts_with = "replace")]
    replace_str: Option<String>,
    /// As -I STR, {} when STR is left out (xargs' -i). As GNU parallel, a
    /// separate next word is STR unless it starts with `-`: write -i@ or
    /// --replace=@, or -i before another option.
    #[arg(
        short = 'i',
        long = "replace",
        value_name = "STR",
        num_args = 0..=1,
        default_missing_value = "{}"
    )]
    replace: Option<String>,
    /// Tag each output line with STR and a TAB (replacement strings filled
    /// in as in the command), as GNU parallel's --tagstring; implies --tag.
    #[arg(long = "tagstring", alias = "tag-string", value_name = "STR")]
    tagstring: Option<String>,
    /// Wait at least this long between two jobs' starts (e.g. 0.5, 2s, 1m).
    #[arg(long, value_name = "DURATION")]
    delay: Option<String>,
    /// Run the jobs at niceness N, as GNU parallel (below drover's needs root).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    nice: Option<i32>,
    /// No job for an input line (or a combination of arguments) that is
    /// empty or only white space, as GNU parallel's -r.
    #[arg(short = 'r', long = "no-run-if-empty", alias = "norunifempty")]
    no_run_if_empty: bool,
    /// Items from stdin and files end at CHAR, not a newline (one byte;
    /// \n, \t, \0 and \\ as escapes), as `xargs -d`.
    #[arg(short = 'd', long, value_name = "CHAR")]
    delimiter: Option<String>,
    /// Read items from FILE (one per line), like `:::: FILE`.
    #[arg(short = 'a', long = "arg-file", alias = "argfile", value_name = "FILE")]
    arg_file: Vec<PathBuf>,
    /// Start no job while less memory than SIZE is available (MemAvailable
    /// of /proc/meminfo; e.g. 2G, 500M), looking again twice a second; after
    /// 5 s held back, says so on stderr. Unlike GNU parallel's, running jobs
    /// are never killed when memory falls below half of SIZE.
    #[arg(long, value_name = "SIZE")]
    memfree: Option<String>,
    /// Start no job while N or more processes are runnable (now, not an
    /// average; N% of the CPUs), as GNU parallel's --load.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    load: Option<String>,
    /// GNU parallel's further replacement strings: {+/} (the folder part,
    /// empty without one), {+.} (the extension), {+..} {+...} (the last two
    /// or three), {..} {...} (without them), {/..} {/...} (the basename
    /// without them), {##} (the number of jobs: all input is read first),
    /// {0#} {0%} (the job and slot numbers zero-padded), {slot} (as {%}),
    /// and with a source number ({2+.}). Its strings that run perl
    /// ({:-x}, {#x}, {/x/y}, {choose_k} ...) are refused.
    #[arg(long)]
    plus: bool,
    /// Each job's stdout, stderr and number into files under DIR, as GNU
    /// parallel: DIR/1/ARG/{stdout,stderr,seq} (2/ARG2/ ... for more input
    /// sources), or DIR with replacement strings filled in (ending in /: a
    /// folder for the three files; else the stdout file, with .err and
    /// .seq); nothing printed. Existing files are emptied and rewritten in
    /// place.
    #[arg(long, value_name = "DIR", aliases = ["result", "res"])]
    results: Option<String>,
    /// Write the JSON report to FILE (- for stdout, after the jobs' output).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// With --joblog FILE: run only the jobs FILE does not list (by their
    /// number, {#}), appending to it, as GNU parallel's --resume.
    #[arg(long)]
    resume: bool,
    /// As --resume, and run again the jobs FILE lists as failed.
    #[arg(long, alias = "resumefailed", conflicts_with = "resume")]
    resume_failed: bool,
    /// Run again, through the shell, the commands FILE (--joblog) lists as
    /// failed, and nothing else: the command line's command and input are
    /// ignored, as GNU parallel's --retry-failed.
    #[arg(long, alias = "retryfailed", conflicts_with_all = ["resume", "resume_failed"])]
    retry_failed: bool,
    /// Log each finished job to FILE in GNU parallel's joblog format.
    #[arg(long, value_name = "FILE", alias = "jl")]
    joblog: Option<PathBuf>,
    /// Print the commands that would run; run nothing.
    #[arg(long, aliases = ["dryrun", "dr"])]
    dry_run: bool,
    /// Print each command on stdout before its output (GNU parallel's -v).
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    print_commands: u8,
    /// Print each command on stderr as it starts (GNU parallel's -t).
    #[arg(short = 't', long = "verbose")]
    trace_commands: bool,
    /// GNU parallel's own: drover has no citation notice to silence.
    #[arg(long = "will-cite", aliases = ["willcite", "nn", "nonotice", "no-notice"], hide = true)]
    _will_cite: bool,
    /// GNU parallel's: ignore $PARALLEL and ~/.parallel, which drover never reads.
    #[arg(long = "plain", hide = true)]
    _plain: bool,
    /// GNU parallel's: grouped output, drover's default.
    #[arg(long = "group", hide = true, conflicts_with_all = ["ungroup", "line_buffer"])]
    _group: bool,
    /// Show progress with an ETA on stderr, when it is a terminal (GNU
    /// parallel's --progress and --eta give the same bar here).
    #[arg(long, visible_aliases = ["progress", "eta"])]
    bar: bool,
    /// The command, its arguments, and the input sources.
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    command: Vec<String>,
}

impl ExecArgs {
    /// What stands for the argument: `-I STR` or `-i[STR]`, else `{}`.
    fn replace_string(&self) -> Option<&str> {
        self.replace_str.as_deref().or(self.replace.as_deref())
    }

    /// GNU parallel's context replace: -X, -N, and -L (or -l) but with -m
    /// or --xargs.
    fn context(&self) -> bool {
        self.context_replace
            || self.max_replace_args.is_some()
            || ((self.lines.is_some() || self.max_lines.is_some())
                && !(self.multiple || self.xargs))
    }

    /// -L N or -l [N]: input lines a command line.
    fn lines_per_job(&self) -> Result<Option<usize>, String> {
        let (flag, text) = match (&self.lines, &self.max_lines) {
            (Some(n), _) => ("-L", n),
            (None, Some(n)) => ("-l", n),
            (None, None) => return Ok(None),
        };
        match parse_size(flag, text) {
            // GNU's -l 0 is -l 1 (its -L 0 runs jobs without arguments).
            Err(_) if flag == "-l" && text.parse::<f64>() == Ok(0.0) => Ok(Some(1)),
            Err(_) => Err(format!(
                "{flag} {text}: expected a number of input lines above 0, e.g. {flag} 2 (for jobs without arguments use -N0)"
            )),
            Ok(n) => Ok(Some(n)),
        }
    }

    /// -l takes its number only if the next word is one, as GNU's: else
    /// that word (which clap took) is the command's first.
    fn give_back_max_lines(&mut self) {
        if let Some(word) = self.max_lines.take_if(|w| !is_number(w) || w == "-0") {
            // `-l -0`: -l 1 and -0, as GNU reads it.
            match word.as_str() {
                "-0" => self.null = true,
                _ => self.command.insert(0, word),
            }
            self.max_lines = Some("1".into());
        }
    }
}

/// A number as Getopt::Long's `:f` takes one (digits, a point, a sign).
pub(crate) fn is_number(word: &str) -> bool {
    let digits = word.strip_prefix('-').unwrap_or(word);
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.chars().any(|c| c.is_ascii_digit())
}

/// `-d`: one byte, or an escape for one.
fn parse_delimiter(text: &str) -> Result<u8, String> {
    match text {
        "\\n" => Ok(b'\n'),
        "\\t" => Ok(b'\t'),
        "\\0" => Ok(b'\0'),
        "\\\\" => Ok(b'\\'),
        _ if text.len() == 1 => Ok(text.as_bytes()[0]),
        _ => Err(format!(
            "-d {text:?}: expected one character (or \\n, \\t, \\0, \\\\), e.g. -d , or -d '\\t'"
        )),
    }
}

/// `-j`: N, 0 (no limit), P% of CPUs (rounded up), +N or -N CPUs.
fn parse_jobs(text: &str) -> Result<Option<NonZeroUsize>, String> {
    let cpus = cpus().get() as i64;
    let bad = || format!("-j {text}: expected N, 0, P%, +N or -N");
    let n: i64 = if let Some(pct) = text.strip_suffix('%') {
        let p: f64 = pct.parse().map_err(|_| bad())?;
        ((cpus as f64) * p / 100.0).ceil() as i64
    } else if let Some(plus) = text.strip_prefix('+') {
        cpus + plus.parse::<i64>().map_err(|_| bad())?
    } else if let Some(minus) = text.strip_prefix('-') {
        cpus - minus.parse::<i64>().map_err(|_| bad())?
    } else {
        match text.parse::<i64>().map_err(|_| bad())? {
            0 => return Ok(None),
            n => n,
        }
    };
    match usize::try_from(n).ok().and_then(NonZeroUsize::new) {
        Some(n) => Ok(Some(n)),
        None => Err(format!(
            "-j {text}: that leaves no job slot on {cpus} CPUs; cannot run any jobs"
        )),
    }
}

/// A duration: seconds as a number, or humantime (`30s`, `1m 30s`).
fn parse_duration(flag: &str, text: &str) -> Result<Duration, String> {
    if let Ok(secs) = text.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("{flag} {text}: not a duration ({e}); write e.g. 30, 1.5, 30s or 2m"))
}

/// `--halt`: never | now|soon,fail|success|done=N or N%, GNU's old numbers
/// (0, 1, 2, -1, -2) and `P%` (= soon,fail=P%).
fn parse_halt(text: &str) -> Result<Option<Halt>, String> {
    let bad = || {
        format!(
            "--halt {text}: expected never, or now|soon with ,fail=N ,success=N or ,done=N (N may be P%)"
        )
    };
    let halt = |now, on, threshold| Ok(Some(Halt { now, on, threshold }));
    match text {
        "never" | "0" => return Ok(None),
        "1" => return halt(false, HaltOn::Fail, Threshold::Count(1)),
        "2" => return halt(true, HaltOn::Fail, Threshold::Count(1)),
        "-1" => return halt(false, HaltOn::Success, Threshold::Count(1)),
        "-2" => return halt(true, HaltOn::Success, Threshold::Count(1)),
        _ => {}
    }
    let threshold = |n: &str| -> Result<Threshold, String> {
        match n.strip_suffix('%') {
            Some(p) => p
                .parse::<f64>()
                .ok()
                .filter(|p| *p > 0.0)
                .map(Threshold::Percent)
                .ok_or_else(bad),
            None => n
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .map(Threshold::Count)
                .ok_or_else(bad),
        }
    };
    if text.ends_with('%') && !text.contains(',') {
        return halt(false, HaltOn::Fail, threshold(text)?);
    }
    let (when, cond) = text.split_once(',').ok_or_else(bad)?;
    let now = match when {
        "now" => true,
        "soon" => false,
        _ => return Err(bad()),
    };
    let (what, n) = cond.split_once('=').ok_or_else(bad)?;
    let on = match what {
        "fail" => HaltOn::Fail,
        "success" => HaltOn::Success,
        "done" => HaltOn::Done,
        _ => return Err(bad()),
    };
    halt(now, on, threshold(n)?)
}

/// `--block`: bytes with an optional suffix, as GNU parallel: k m g t are
/// powers of 1000, K M G T powers of 1024.
fn parse_block(text: &str) -> Result<usize, String> {
    parse_size("--block", text)
}

/// A number with an optional suffix, as GNU parallel's (k m g t powers of
/// 1000, K M G T of 1024); above 0.
fn parse_size(flag: &str, text: &str) -> Result<usize, String> {
    let bad = || format!("{flag} {text}: expected a size such as 1M, 512K, 10k or 65536");
    let (num, mult) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c {
                'k' => 1_000,
                'm' => 1_000_000,
                'g' => 1_000_000_000,
                't' => 1_000_000_000_000,
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(bad()),
            };
            (&text[..i], m)
        }
        _ => (text, 1),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let size = (n * mult as f64) as u64;
    if size == 0 {
        return Err(bad());
    }
    Ok(usize::try_from(size).unwrap_or(usize::MAX))
}

/// `--load N`: runnable processes, or N% of the CPUs, as GNU parallel's.
fn parse_load(text: &str) -> Result<f64, String> {
    let bad = || {
        format!(
            "--load {text}: expected a number of runnable processes, e.g. 4, 2.5 or 100% (of the CPUs)"
        )
    };
    let (num, pct) = match text.strip_suffix('%') {
        Some(n) => (n, true),
        None => (text, false),
    };
    let n: f64 = num
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n > 0.0)
        .ok_or_else(bad)?;
    Ok(if pct {
        n * cpus().get() as f64 / 100.0
    } else {
        n
    })
}

/// A command given as one word with spaces or shell syntax in it (as GNU
/// parallel users write `'echo {} | wc -c'`) needs a shell.
fn needs_shell(command: &[String]) -> bool {
    match command {
        [one] => one.contains(|c: char| c.is_whitespace() || "|&;<>()$`\\\"'*?[]#~=%".contains(c)),
        _ => false,
    }
}

/// Whether `fd` is /dev/null (character device 1:3).
fn is_dev_null(fd: impl std::os::fd::AsFd) -> bool {
    rustix::fs::fstat(fd).is_ok_and(|st| {
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::CharacterDevice
            && rustix::fs::major(st.st_rdev) == 1
            && rustix::fs::minor(st.st_rdev) == 3
    })
}

/// Everything resolved from the command line, before anything runs.
struct Resolved {
    fanout: Fanout,
    sources: Vec<Source>,
    /// The byte that ends an item read from stdin or a file.
    separator: u8,
    block: Option<usize>,
    round_robin: bool,
    /// Several input records a command line (-X, -m, --xargs, -n, -N, -L).
    packing: Option<Packing>,
}

/// How input records are put on command lines, but for the command's
/// measure, which --header may change.
struct Packing {
    max_len: usize,
    max_args: Option<usize>,
    /// -X, -m: the job slots the last records are spread over.
    spread: Option<Option<usize>>,
}

/// Records a command line: -X, -m and --xargs as many as fit, -n, -N and
/// -L (more than one) that many, or fewer if they do not fit; None for a
/// record a job (or none, -N0), which need no measuring.
fn packing(
    args: &ExecArgs,
    lines: Option<usize>,
    jobs: Option<NonZeroUsize>,
) -> Result<Option<Packing>, String> {
    let multi = args.context_replace || args.multiple || args.xargs;
    let max_args = args.max_replace_args.or(args.max_args).or(lines);
    let gnu = crate::plan::pack::gnu_max_len();
    let max_len = match &args.max_chars {
        None => gnu,
        Some(text) => match parse_size("-s", text) {
            Ok(n) if n <= gnu => n,
            // As GNU parallel: a warning, and its own limit.
            Ok(_) => {
                eprintln!(
                    "drover exec: warning: -s {text}: the value should be < {gnu}; using {gnu}"
                );
                gnu
            }
            Err(_) => {
                return Err(format!(
                    "-s {text}: expected the longest command line in characters, above 0 (at most {gnu})"
                ));
            }
        },
    };
    if max_args == Some(0) || !(multi || max_args.is_some_and(|n| n > 1)) {
        return Ok(None);
    }
    Ok(Some(Packing {
        max_len,
        max_args,
        spread: (args.context_replace || args.multiple).then_some(jobs.map(NonZeroUsize::get)),
    }))
}

/// `DROVER_SPOOL_MEMORY`: how much grouped output running jobs may hold in
/// memory before it moves to $TMPDIR (default 128M).
fn spool_memory() -> Result<Option<u64>, String> {
    match std::env::var("DROVER_SPOOL_MEMORY") {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Ok(text) => parse_block(&text).map(|n| Some(n as u64)).map_err(|_| {
            format!("DROVER_SPOOL_MEMORY={text}: expected a size such as 64M, 1G or 1048576")
        }),
        Err(_) => Err("DROVER_SPOOL_MEMORY: expected a size such as 64M, 1G or 1048576".into()),
    }
}

fn resolve(args: &ExecArgs) -> Result<Resolved, String> {
    if let Some(bytes) = spool_memory()? {
        crate::exec::spool::set_memory_budget(bytes);
    }
    let (mut command, mut listed) = items::split_command(&args.command);
    // --retry-failed: the commands are the joblog's, whatever is given.
    if args.retry_failed {
        (command, listed) = (vec!["{}".to_string()], Vec::new());
        if !args.arg_file.is_empty() || args.pipe {
            return Err("--retry-failed runs the failed commands of the joblog: it takes no input (-a, --pipe)".into());
        }
    }
    if command.is_empty() {
        return Err(
            "no command given; usage: drover exec [OPTIONS] -- COMMAND [ARG...] [::: ITEM...]"
                .into(),
        );
    }
    // As GNU parallel: -a files are the first input sources, before the
    // ::: and :::: ones (a first `:::+` does not link to them).
    let mut sources: Vec<Source> = args
        .arg_file
        .iter()
        .map(|file| Source {
            origin: if file.as_os_str() == "-" {
                Origin::Stdin
            } else {
                Origin::File(file.clone())
            },
            linked: false,
        })
        .collect();
    sources.extend(listed.into_iter().enumerate().map(|(i, mut s)| {
        s.linked &= i > 0;
        s
    }));
    if args.pipe && !sources.is_empty() {
        return Err("--pipe reads its input from stdin; it takes no ::: or :::: sources".into());
    }
    let separator = match (&args.delimiter, args.null) {
        (Some(d), _) => parse_delimiter(d)?,
        (None, true) => b'\0',
        (None, false) => b'\n',
    };
    if args.pipe && separator != b'\n' {
        return Err(
            "--pipe cuts its blocks at newlines; -0 and -d apply to items, not blocks".into(),
        );
    }
    let jobs = match &args.jobs {
        Some(j) => parse_jobs(j)?,
        None => Some(cpus()),
    };
    // `--timeout P%`: P% of the median run time of the jobs that succeeded.
    let timeout_pct = match args.timeout.as_deref().and_then(|t| t.strip_suffix('%')) {
        Some(p) => Some(
            p.parse::<f64>()
                .ok()
                .filter(|p| p.is_finite() && *p > 0.0)
                .ok_or_else(|| {
                    format!("--timeout {p}%: expected a percentage above 0, e.g. 200% (of the median run time of the jobs that succeeded)")
                })?
                / 100.0,
        ),
        None => None,
    };
    let timeout = match timeout_pct {
        Some(_) => None,
        None => args
            .timeout
            .as_deref()
            .map(|t| parse_duration("--timeout", t))
            .transpose()?
            // 0 is no timeout, as for GNU parallel and timeout(1).
            .filter(|t| !t.is_zero()),
    };
    let kill_grace = args
        .kill_grace
        .as_deref()
        .map(|t| parse_duration("--kill-grace", t))
        .transpose()?
        .unwrap_or(DEFAULT_KILL_GRACE);
    let halt = args.halt.as_deref().map(parse_halt).transpose()?.flatten();
    let block = if args.pipe {
        Some(
            args.block
                .as_deref()
                .map(parse_block)
                .transpose()?
                .unwrap_or(1 << 20),
        )
    } else {
        if args.block.is_some() {
            return Err("--block goes with --pipe".into());
        }
        None
    };
    if args.round_robin && !args.pipe {
        return Err("--round-robin goes with --pipe".into());
    }
    if args.round_robin && args.retries.is_some_and(|r| r > 1) {
        return Err(
            "--round-robin does not go with --retries: a job's blocks cannot be sent again".into(),
        );
    }
    let output = match (args.ungroup, args.line_buffer) {
        (true, _) => OutputMode::Ungroup,
        // With -k, lines would wait for earlier jobs anyway: group instead.
        (false, true) if !args.keep_order => OutputMode::LineBuffer,
        _ => OutputMode::Group,
    };
    // With one job at a time, output comes in the order of the input.
    let keep_order = args.keep_order || jobs.is_some_and(|j| j.get() == 1);
    let discard_stdout = args.report.is_none()
        && args.joblog.is_none()
        && !args.ungroup
        && is_dev_null(std::io::stdout());
    let show = ShowCommands {
        stdout: args.print_commands > 0,
        stderr: args.trace_commands,
    };
    // The job printed next is known: its stdout is written out as it comes.
    // Not with --tag (lines are tagged whole), -v (its command comes
    // first, when it ends), --report (it keeps the tail of each output,
    // which following frees) or --retries (a failed attempt's output is
    // not printed).
    let follow = output == OutputMode::Group
        && keep_order
        && !args.tag
        && args.tagstring.is_none()
        && !show.stdout
        && args.report.is_none()
        && args.retries.unwrap_or(1) <= 1
        && args.results.is_none()
        && !discard_stdout;
    let shell = args.shell || (!args.quote && needs_shell(&command));
    let replace = args.replace_string();
    let delay = args
        .delay
        .as_deref()
        .map(|t| parse_duration("--delay", t))
        .transpose()?
        .filter(|d| !d.is_zero());
    let tagstring = args
        .tagstring
        .as_deref()
        .map(|t| {
            Template::parse_gnu(&[t.to_string()], replace, &[], args.plus)
                .map(|template| (t.to_string(), template))
                .map_err(|e| format!("--tagstring {t}: {e}"))
        })
        .transpose()?;
    let template = Template::parse_gnu(&command, replace, &[], args.plus).map_err(|e| match e {
        TemplateError::Perl(_) => {
            format!("{e}, e.g. --shell -- 'echo \"$(printf %s {{}} | sed s/b/B/)\"'")
        }
        _ => e.to_string(),
    })?;
    let mut template = template;
    template.set_context(args.context());
    if block.is_some() && (args.max_args.is_some() || args.max_replace_args.is_some()) {
        return Err("-n/-N with --pipe (records per block) is not supported yet".into());
    }
    let lines = args.lines_per_job()?;
    if block.is_some() && lines.is_some() {
        return Err("-L/-l with --pipe (records of N lines) is not supported yet".into());
    }
    let multi = args.context_replace || args.multiple || args.xargs;
    if block.is_some() && multi {
        return Err(
            "-X, -m and --xargs put arguments on command lines: they do not go with --pipe".into(),
        );
    }
    let packing = packing(args, lines, jobs)?;
    let hold = match (&args.memfree, &args.load) {
        (None, None) => None,
        (memfree, load) => Some(Hold {
            memfree: memfree
                .as_deref()
                .map(|m| parse_size("--memfree", m))
                .transpose()?
                .map(|m| m as u64),
            load: load.as_deref().map(parse_load).transpose()?,
        }),
    };
    if let Some(dir) = &args.results {
        let lower = dir.to_ascii_lowercase();
        if [".csv", ".tsv", ".json"].iter().any(|x| lower.ends_with(x)) {
            return Err(format!(
                "--results {dir}: GNU parallel writes a CSV, TSV or JSON file for that; drover does not yet: give a folder"
            ));
        }
        if dir.is_empty() {
            return Err("--results: give a folder".into());
        }
        if block.is_some() {
            return Err("--results with --pipe is not supported yet".into());
        }
    }
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the current directory: {e}"))?;
    Ok(Resolved {
        fanout: Fanout {
            template,
            shell,
            quote: args.quote,
            show,
            jobs,
            timeout,
            kill_grace,
            // GNU parallel's --retries N is N attempts in all (0, which GNU
            // takes as "forever", is one attempt here).
            retries: args.retries.unwrap_or(1).saturating_sub(1),
            halt,
            output,
            keep_order,
            tag: args.tag || args.tagstring.is_some(),
            cwd,
            keep_records: args.report.is_some(),
            total: None,
            // The report and the joblog (its Receive column) need the output.
            discard_stdout,
            discard_stderr: args.report.is_none()
                && !args.ungroup
                && is_dev_null(std::io::stderr()),
            follow,
            nice: args.nice,
            delay,
            tagstring,
            skip: Default::default(),
            raw: args.retry_failed,
            timeout_pct,
            results: None,
            hold,
        },
        sources,
        separator,
        block,
        round_robin: args.round_robin,
        packing,
    })
}

pub fn exec(mut args: ExecArgs) -> u8 {
    args.give_back_max_lines();
    let resolved = match resolve(&args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("drover exec: {e}");
            return EXIT_ERROR;
        }
    };
    let Resolved {
        mut fanout,
        sources,
        separator,
        block,
        round_robin,
        packing,
    } = resolved;

    // --resume, --resume-failed, --retry-failed: the joblog of the run
    // before, by job number. The jobs it lists (as succeeded, but with
    // --resume) are not run again; with --retry-failed its failed commands
    // are the jobs. The job printed next may never run: nothing to follow.
    let resuming = args.resume || args.resume_failed || args.retry_failed;
    let mut logged = None;
    if resuming {
        let Some(path) = args.joblog.as_deref() else {
            eprintln!(
                "drover exec: --resume, --resume-failed and --retry-failed read the joblog of the run before: give it with --joblog FILE"
            );
            return EXIT_ERROR;
        };
        match last_lines(path) {
            Ok(last) => {
                fanout.skip = last
                    .iter()
                    .filter(|(_, l)| args.resume || l.succeeded())
                    .map(|(&seq, _)| seq)
                    .collect();
                logged = Some(last);
            }
            Err(e) => {
                eprintln!("drover exec: --joblog {}: {e}", path.display());
                return EXIT_ERROR;
            }
        }
        fanout.follow = false;
    }
    // Open every input source now: a missing file fails before any job runs.
    let arguments = if let Some(mut last) = logged.filter(|_| args.retry_failed) {
        // Numbers that did not fail (or are missing) keep their place.
        let max = last.keys().next_back().copied().unwrap_or(0);
        let commands: Vec<_> = (1..=max)
            .map(|seq| match last.remove(&seq) {
                Some(l) if !l.succeeded() => Ok(vec![l.command]),
                _ => {
                    fanout.skip.insert(seq);
                    Ok(vec![String::new()])
                }
            })
            .collect();
        Some(Box::new(commands.into_iter()) as items::Rows)
    } else if block.is_none() {
        let reading = items::Reading {
            link: args.link,
            trim: args.trim,
            colsep: args.colsep.clone(),
            shuffle: args.shuf,
            header: args.header.is_some(),
            // Packed lines take whole records; -N0 and -n1 need no packing.
            per_job: match packing {
                Some(_) => None,
                None => args.max_args.or(args.max_replace_args),
            },
            continued: args.lines.is_some() || args.max_lines.is_some(),
        };
        let read = items::arguments_with(&sources, separator, reading).and_then(|(names, it)| {
            // --header: the names are replacement strings now.
            if !names.is_empty() {
                let (command, _) = items::split_command(&args.command);
                fanout.template =
                    Template::parse_gnu(&command, args.replace_string(), &names, args.plus)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                fanout.template.set_context(args.context());
            }
            if let Some(dir) = &args.results {
                let template =
                    Template::parse_gnu(
                        std::slice::from_ref(dir),
                        args.replace_string(),
                        &names,
                        args.plus,
                    )
                        .map_err(|e| std::io::Error::other(format!("--results {dir}: {e}")))?;
                let results = Results::new(dir, template, names);
                if results.by_arguments() && packing.is_some() {
                    return Err(std::io::Error::other(format!(
                        "--results {dir} names folders after each job's one record; with several a job (-X, -m, --xargs, -n, -N, -L) give replacement strings, e.g. --results {dir}/{{#}}/"
                    )));
                }
                fanout.results = Some(results);
            }
            Ok(it)
        });
        let read = match read {
            // -r: no job for a record with a blank argument, as GNU.
            Ok(it) if args.no_run_if_empty => Ok(Box::new(it.filter(
                |record| !matches!(record, Ok(args) if args.iter().any(|a| a.trim().is_empty())),
            )) as items::Rows),
            other => other,
        };
        match read {
            Ok(it) => Some(match packing {
                Some(p) => crate::plan::pack::pack(
                    it,
                    crate::plan::pack::Packing {
                        cost: fanout.template.line_cost(args.quote),
                        max_len: p.max_len,
                        max_args: p.max_args,
                        spread: p.spread,
                    },
                ),
                None => it,
            }),
            Err(e) => {
                eprintln!("drover exec: {e}");
                return EXIT_ERROR;
            }
        }
    } else {
        None
    };

    // --plus's {##} and {0#}: the number of jobs, known before the first
    // starts (all input read first, as GNU does).
    let needs_total = fanout.template.needs_total()
        || fanout
            .tagstring
            .as_ref()
            .is_some_and(|(_, t)| t.needs_total());
    let arguments = match arguments {
        Some(it) if needs_total => {
            let all: Vec<_> = it.collect();
            fanout.total = Some(all.iter().filter(|r| r.is_ok()).count() as u64);
            Some(Box::new(all.into_iter()) as items::Rows)
        }
        other => other,
    };
    if args.dry_run {
        let slots = fanout.jobs.map_or(1, NonZeroUsize::get);
        set_counts(&mut fanout, slots);
        return dry_run(&fanout, arguments, block);
    }
    // Grouped output goes through temporary files: fail once, clearly,
    // rather than fail every job.
    let grouped_to_files =
        fanout.output == OutputMode::Group && !(fanout.discard_stdout && fanout.discard_stderr);
    if grouped_to_files {
        if let Err(e) = tempfile::tempfile() {
            eprintln!(
                "drover exec: cannot create temporary files for grouped output in {}: {e}; set TMPDIR to a writable folder, or use -u or --line-buffer",
                std::env::temp_dir().display()
            );
            return EXIT_ERROR;
        }
    }

    // The report's and the joblog's paths are bad input too: checked (the
    // joblog opened) before any job runs.
    let report = match args.report.as_deref().map(super::report_target).transpose() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("drover exec: {e}");
            return EXIT_ERROR;
        }
    };
    let joblog = match args
        .joblog
        .as_deref()
        .map(|p| open_joblog(p, resuming))
        .transpose()
    {
        Ok(log) => log,
        Err(e) => {
            eprintln!("drover exec: {e}");
            return EXIT_ERROR;
        }
    };
    // With only ::: lists the total is known up front (for --bar and
    // --halt P%); they are in argv already, so holding them costs nothing.
    let (arguments, total) = match arguments {
        Some(it)
            if !sources.is_empty()
                && sources.iter().all(|s| matches!(s.origin, Origin::List(_))) =>
        {
            let all: Vec<_> = it.collect();
            let n = all.len() as u64;
            (
                Some(Box::new(all.into_iter()) as Box<dyn Iterator<Item = _> + Send>),
                Some(n),
            )
        }
        other => (other, None),
    };
    fanout.total = total.or(fanout.total);
    // Never more jobs at once than the descriptor budget allows (the
    // engine's, which holds a job back rather than fail it): the front end
    // does not queue more than can run.
    let fds = FdBudget::of_process();
    let cost = fanout.job_cost(block.is_some());
    let fd_jobs = fds.jobs_at_once(cost);
    fanout.jobs =
        Some(fanout.jobs.map_or(fd_jobs, |j| j.get().min(fd_jobs))).and_then(NonZeroUsize::new);
    let slots = fanout.jobs.map_or(fd_jobs, NonZeroUsize::get);
    set_counts(&mut fanout, slots);
    // Before the printer's thread and the runtime's start.
    let at_once = fanout.jobs.map_or(fd_jobs, NonZeroUsize::get) as u64;
    // Each running job holds its part; only the few being spawned (one a
    // runtime worker) hold their transient part besides.
    fds.presize(
        at_once
            .saturating_mul(cost.held as u64)
            .saturating_add(2 * cost.transient as u64),
    );
    let bar = args.bar.then(|| progress_bar(total));
    let mut printer = match Printer::new(PrinterOptions {
        tag: fanout.tag,
        joblog,
        bar,
        follow: fanout.follow,
        show: fanout.show,
        grouped: fanout.output == OutputMode::Group,
    }) {
        Ok(printer) => printer,
        Err(e) => {
            eprintln!("drover exec: cannot start the printer thread: {e}");
            return EXIT_ERROR;
        }
    };

    let runtime = match crate::sched::runtime_for(fanout.jobs.map(NonZeroUsize::get)) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("drover exec: failed to start the runtime: {e}");
            return EXIT_ERROR;
        }
    };
    let fanout = Arc::new(fanout);
    // Arguments are small: read well ahead, so that the reader thread is not
    // woken for every job. --pipe blocks are large: hold few.
    let capacity = match block {
        Some(_) => fanout.jobs.map_or(1024, |j| j.get().clamp(2, 1024)),
        None => 4096,
    };
    let (work_tx, work_rx) = mpsc::channel::<Work>(capacity);
    let input_error: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    // A retry needs its block again: only blocks held in memory allow one.
    let splice = fanout.retries == 0;
    // With -j 0, as many jobs as descriptors allow: in effect a job a
    // block, as without --round-robin.
    let round_robin_jobs = fanout.jobs.map_or(usize::MAX, NonZeroUsize::get);
    // Items all on the command line (or from --retry-failed's log) cannot
    // keep the first job waiting: those that fit go to the channel here,
    // and the reader thread starts only for the rest. One job, or a few
    // hundred, start without it.
    let mut arguments = arguments;
    // (No source at all: the items come from stdin.)
    let in_memory = args.retry_failed
        || (!sources.is_empty() && sources.iter().all(|s| matches!(s.origin, Origin::List(_))));
    if block.is_none() && in_memory {
        while let Some(it) = arguments.as_mut().filter(|_| work_tx.capacity() > 0) {
            match it.next() {
                Some(Ok(args)) => {
                    // Room was checked, and the receiver lives.
                    let _ = work_tx.try_send(Work { args, block: None });
                }
                Some(Err(e)) => {
                    *input_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(input_failed(&e));
                    arguments = None;
                }
                None => arguments = None,
            }
        }
    }
    let producer = match (&arguments, block) {
        // Nothing left to read: the channel closes with work_tx.
        (None, None) => {
            drop(work_tx);
            Ok(())
        }
        _ => {
            let input_error = input_error.clone();
            std::thread::Builder::new()
                .name("drover-input".into())
                .spawn(move || match (arguments, block) {
                    (_, Some(size)) if round_robin => {
                        blocks::round_robin(size, round_robin_jobs, work_tx)
                    }
                    (_, Some(size)) => blocks::read_blocks(size, splice, work_tx),
                    (Some(arguments), None) => {
                        for item in arguments {
                            match item {
                                Ok(args) => {
                                    if work_tx.blocking_send(Work { args, block: None }).is_err() {
                                        return;
                                    }
                                }
                                Err(e) => {
                                    *input_error.lock().unwrap_or_else(|p| p.into_inner()) =
                                        Some(input_failed(&e));
                                    return;
                                }
                            }
                        }
                    }
                    (None, None) => {}
                })
                .map(drop)
        }
    };
    if let Err(e) = producer {
        eprintln!("drover exec: cannot start the input reader: {e}");
        return EXIT_ERROR;
    }

    let outcome = {
        let fanout = fanout.clone();
        let printer = &mut printer;
        runtime.block_on(async move {
            crate::exec::escape::start();
            let interrupts = signal::listen();
            // exec admits its jobs itself (-j, the printer's backlog); the
            // engine holds them back only for descriptors.
            let engine = Engine::start(engine::Limits { slots: None, fds });
            let outcome = fanout::run(fanout, &engine, work_rx, printer, interrupts).await;
            let _ = engine.shutdown(How::Graceful).await;
            outcome
        })
    };
    crate::exec::escape::finish();
    // The input reader may be blocked on stdin: do not wait for it.
    runtime.shutdown_background();
    let printed = printer.close();

    let mut code = match (&outcome.stopped, outcome.halt_exit) {
        (Some(StopReason::Interrupted("SIGINT")), _) => 130,
        (Some(StopReason::Interrupted(_)), _) => 143,
        // `drover exec ... | head -1` is a clean exit, as in ripgrep (GNU
        // parallel dies of SIGPIPE instead).
        (Some(StopReason::StdoutClosed), _) => 0,
        // As GNU parallel: --halt on failure exits with that job's status.
        (Some(StopReason::Halted), Some(status)) => u8::try_from(status).unwrap_or(EXIT_ERROR),
        _ => match outcome.failed {
            0 => 0,
            n if n <= 100 => n as u8,
            _ => 101,
        },
    };
    if let Some(e) = input_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        say(format_args!("drover exec: {e}"));
        code = EXIT_ERROR;
    }
    if let Some(e) = printed.joblog_error {
        say(format_args!("drover exec: writing the joblog failed: {e}"));
        code = EXIT_ERROR;
    }
    // Each was named as it happened; the count last, where it is seen.
    if let Some(first) = printed.lost.first() {
        say(format_args!(
            "drover exec: the output of {} job(s) is lost (first: {first})",
            printed.lost.len(),
        ));
        code = EXIT_ERROR;
    }
    if let Some(target) = report {
        // Jobs in input order, as in `drover run`'s report.
        let mut outcome = outcome;
        outcome.records.sort_by_key(|d| d.seq);
        let names: Vec<String> = outcome.records.iter().map(|d| d.seq.to_string()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let results: Vec<JobResult> = outcome.records.iter().map(|d| d.result.clone()).collect();
        let text = json::render_named(&names, &results, outcome.started_at, outcome.duration);
        if let Err(e) = target.write_whole(&text) {
            say(format_args!("drover exec: {e:#}"));
            code = EXIT_ERROR;
        }
    }
    code
}

/// `{##}` `{0#}` `{0%}`: the number of jobs (when known) and of slots.
fn set_counts(fanout: &mut Fanout, slots: usize) {
    let counts = Counts {
        jobs: fanout.total.unwrap_or(0),
        slots,
    };
    fanout.template.set_counts(counts);
    if let Some((_, t)) = &mut fanout.tagstring {
        t.set_counts(counts);
    }
}

/// What went wrong with the input: a line that cannot be made (too long)
/// is said as it is, a failed read as one.
fn input_failed(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::InvalidInput => e.to_string(),
        _ => format!("reading the input failed: {e}"),
    }
}

fn parse_colsep(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern).map_err(|e| format!("not a regular expression: {e}"))
}

fn parse_header(word: &str) -> Result<String, String> {
    match word {
        ":" => Ok(word.to_string()),
        _ => Err("drover reads a header from the first line only: write --header :".into()),
    }
}

fn parse_trim(word: &str) -> Result<items::Trim, String> {
    items::Trim::parse(word).ok_or_else(|| format!("`{word}`: use n, l, r or lr"))
}

/// Writes a line to stderr after the jobs ran. Not eprintln!: it panics
/// when stderr is what failed, and the exit code must still say so.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// `--joblog FILE` starts the file anew; `--joblog +FILE` appends (no
/// header), as does `resuming` (a header only if the file is new or empty).
/// The same targets as a report's, but written as jobs finish. Returns the
/// file and whether to write the header.
fn open_joblog(path: &Path, resuming: bool) -> Result<(std::fs::File, bool), String> {
    let (file, append) = joblog_file(path);
    let empty = || std::fs::metadata(file).map_or(true, |m| m.len() == 0);
    let header = match (append, resuming) {
        (true, _) => false,
        (false, true) => empty(),
        (false, false) => true,
    };
    target::resolve(file)
        .and_then(|t| t.into_log(append || resuming))
        .map(|f| (f, header))
        .map_err(|e| format!("--joblog {}: {e}", path.display()))
}

/// One line of a joblog.
struct Logged {
    exit: i64,
    signal: i64,
    /// NUL for newline, as GNU parallel writes it.
    command: String,
}

impl Logged {
    fn succeeded(&self) -> bool {
        self.exit == 0 && self.signal == 0
    }
}

/// `--joblog`'s file, and whether it is appended to (`+FILE`).
fn joblog_file(path: &Path) -> (&Path, bool) {
    match path.as_os_str().as_bytes().strip_prefix(b"+") {
        Some(rest) => (Path::new(std::ffi::OsStr::from_bytes(rest)), true),
        None => (path, false),
    }
}

/// The last line of each job number in a joblog (`+FILE` is FILE), which
/// says how it ended; a missing file has none.
fn last_lines(path: &Path) -> Result<BTreeMap<u64, Logged>, String> {
    let log = match std::fs::read(joblog_file(path).0) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    let mut last = BTreeMap::new();
    for (n, line) in log.split(|&b| b == b'\n').enumerate() {
        let line = String::from_utf8_lossy(line);
        let cols: Vec<&str> = line.splitn(9, '\t').collect();
        if line.is_empty() || (n == 0 && cols.first() == Some(&"Seq")) {
            continue;
        }
        let (Some(seq), Some(exit), Some(signal), Some(command)) = (
            cols.first().and_then(|c| c.trim().parse::<u64>().ok()),
            cols.get(6).and_then(|c| c.trim().parse::<i64>().ok()),
            cols.get(7).and_then(|c| c.trim().parse::<i64>().ok()),
            cols.get(8),
        ) else {
            return Err(format!(
                "line {} is not a joblog line (Seq, Host, Starttime, JobRuntime, Send, Receive, Exitval, Signal, Command, by tabs)",
                n + 1
            ));
        };
        last.insert(
            seq,
            Logged {
                exit,
                signal,
                command: command.replace('\0', "\n"),
            },
        );
    }
    Ok(last)
}

fn progress_bar(total: Option<u64>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template = if total.is_some() {
        "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} {percent}% ETA {eta}"
    } else {
        "{spinner} {elapsed_precise} {pos} done, {per_sec}"
    };
    // The templates are fixed strings that parse.
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn dry_run(
    fanout: &Fanout,
    arguments: Option<Box<dyn Iterator<Item = std::io::Result<Vec<String>>> + Send>>,
    block: Option<usize>,
) -> u8 {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let line = |args: &[String], seq: u64| fanout.command_line(&Fill { args, seq, slot: 1 });
    if block.is_some() {
        let _ = writeln!(out, "{}", line(&[], 1));
        return 0;
    }
    for (i, item) in arguments.into_iter().flatten().enumerate() {
        match item {
            Ok(args) => {
                if let Err(e) = writeln!(out, "{}", line(&args, i as u64 + 1)) {
                    return if e.kind() == std::io::ErrorKind::BrokenPipe {
                        0
                    } else {
                        EXIT_ERROR
                    };
                }
            }
            Err(e) => {
                eprintln!("drover exec: {}", input_failed(&e));
                return EXIT_ERROR;
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_forms() {
        let cpus = cpus().get();
        assert_eq!(parse_jobs("4").unwrap().map(NonZeroUsize::get), Some(4));
        assert_eq!(parse_jobs("0").unwrap(), None);
        assert_eq!(
            parse_jobs("100%").unwrap().map(NonZeroUsize::get),
            Some(cpus)
        );
        assert_eq!(
            parse_jobs("+2").unwrap().map(NonZeroUsize::get),
            Some(cpus + 2)
        );
        assert!(parse_jobs("-100").is_err());
        assert_eq!(parse_jobs("1%").unwrap().map(NonZeroUsize::get), Some(1));
        assert!(parse_jobs("x").is_err());
    }

    #[test]
    fn halt_forms() {
        assert_eq!(parse_halt("never").unwrap(), None);
        let h = parse_halt("now,fail=2").unwrap().unwrap();
        assert!(h.now && h.on == HaltOn::Fail && h.threshold == Threshold::Count(2));
        let h = parse_halt("soon,success=50%").unwrap().unwrap();
        assert!(!h.now && h.on == HaltOn::Success && h.threshold == Threshold::Percent(50.0));
        let h = parse_halt("-2").unwrap().unwrap();
        assert!(h.now && h.on == HaltOn::Success);
        let h = parse_halt("20%").unwrap().unwrap();
        assert!(!h.now && h.on == HaltOn::Fail && h.threshold == Threshold::Percent(20.0));
        assert!(parse_halt("now,done=0").is_err());
        assert!(parse_halt("later,fail=1").is_err());
    }

    #[test]
    fn block_sizes() {
        assert_eq!(parse_block("10").unwrap(), 10);
        assert_eq!(parse_block("1k").unwrap(), 1000);
        assert_eq!(parse_block("1K").unwrap(), 1024);
        assert_eq!(parse_block("1M").unwrap(), 1 << 20);
        assert!(parse_block("0").is_err());
    }

    #[test]
    fn single_word_with_shell_syntax_needs_a_shell() {
        assert!(needs_shell(&["echo {} | wc -c".to_string()]));
        assert!(!needs_shell(&["echo".to_string(), "{}".to_string()]));
        assert!(!needs_shell(&["gzip".to_string()]));
    }
}

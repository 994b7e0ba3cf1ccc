//! Differential tests: the same command lines through the real GNU parallel
//! and through `drover exec --`, comparing output (in order with `-k`, as
//! sorted lines otherwise) and exit codes. scripts/test.sh installs Debian's
//! `parallel`; without it these tests fail rather than pass vacuously.
//!
//! Where drover deliberately differs, the test says why.

use crate::common::*;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(mut cmd: Command, dir: &Path, stdin: Option<&str>) -> Out {
    cmd.current_dir(dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn gnu_parallel() -> Command {
    let found = Command::new("parallel")
        .arg("--version")
        .stdout(Stdio::null())
        .status();
    assert!(
        found.is_ok_and(|s| s.success()),
        "GNU parallel is not installed: run scripts/test.sh, which installs it"
    );
    let mut cmd = Command::new("parallel");
    cmd.arg("--will-cite");
    cmd
}

/// Runs `args` through both, in a temp dir prepared by `setup`.
fn both(args: &[&str], stdin: Option<&str>, setup: impl Fn(&Path)) -> (Out, Out) {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let mut gnu = gnu_parallel();
    gnu.args(args);
    let gnu = run(gnu, dir.path(), stdin);
    let mut ours = drover();
    ours.arg("exec").arg("--").args(args);
    let ours = run(ours, dir.path(), stdin);
    (gnu, ours)
}

fn sorted(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines
}

/// Same stdout byte for byte and the same exit code.
fn same(args: &[&str], stdin: Option<&str>) {
    let (gnu, ours) = both(args, stdin, |_| {});
    assert_eq!(
        ours.stdout, gnu.stdout,
        "stdout of {args:?}\ndrover stderr: {}",
        ours.stderr
    );
    assert_eq!(
        ours.code, gnu.code,
        "exit code of {args:?}\ndrover stderr: {}\nparallel stderr: {}",
        ours.stderr, gnu.stderr
    );
}

/// Same lines in any order and the same exit code.
fn same_sorted(args: &[&str], stdin: Option<&str>) {
    let (gnu, ours) = both(args, stdin, |_| {});
    assert_eq!(
        sorted(&ours.stdout),
        sorted(&gnu.stdout),
        "stdout lines of {args:?}\ndrover stderr: {}",
        ours.stderr
    );
    assert_eq!(
        ours.code, gnu.code,
        "exit code of {args:?}\ndrover stderr: {}",
        ours.stderr
    );
}

#[test]
fn replacement_strings() {
    same(
        &[
            "-k",
            "echo",
            "{}",
            "{.}",
            "{/}",
            "{//}",
            "{/.}",
            ":::",
            "dir/sub/file.tar.gz",
            "file",
            "/abs/x.y",
            "a.b/c",
        ],
        None,
    );
    same(&["-k", "echo", "{#}", "{}", ":::", "a", "b", "c"], None);
    same(
        &[
            "-k", "echo", "{2}", "{1}", "{2.}", "{1/}", ":::", "d/x.c", "y", ":::", "p.q", "r/s.t",
        ],
        None,
    );
}

#[test]
fn several_input_sources_are_a_cartesian_product() {
    same(
        &[
            "-k", "echo", "{1}-{2}", ":::", "a", "b", ":::", "1", "2", "3",
        ],
        None,
    );
    same(&["-k", "echo", ":::", "a", "b", ":::", "1", "2"], None);
    same(
        &["-k", "echo", "{}", ":::", "a", "b", ":::", "1", "2"],
        None,
    );
}

#[test]
fn linked_sources_go_side_by_side() {
    same(
        &[
            "-k", "echo", "{1}", "{2}", ":::", "a", "b", "c", ":::+", "1", "2", "3",
        ],
        None,
    );
}

#[test]
fn items_from_files() {
    let args = ["-k", "echo", "{1}+{2}", "::::", "f1", "f2"];
    let (gnu, ours) = both(&args, None, |d| {
        std::fs::write(d.join("f1"), "a\nb\n").unwrap();
        std::fs::write(d.join("f2"), "1\n2").unwrap();
    });
    assert_eq!(ours.stdout, gnu.stdout, "{}", ours.stderr);
    assert_eq!(ours.code, gnu.code);
    let args = ["-k", "echo", ":::", "x", "y", "::::", "f1"];
    let (gnu, ours) = both(&args, None, |d| {
        std::fs::write(d.join("f1"), "a\nb\n").unwrap()
    });
    assert_eq!(ours.stdout, gnu.stdout, "{}", ours.stderr);
}

#[test]
fn items_from_stdin() {
    same(&["-k", "echo"], Some("a\nb\nc\n"));
    // drover runs argv without a shell, so `<{}>` would differ (GNU's shell
    // reads it as a redirection): plain text around the item instead.
    same(
        &["-k", "echo", "x{}x"],
        Some("with space\nlast-without-newline"),
    );
    same(&["echo", "x"], Some(""));
}

#[test]
fn keep_order_against_finishing_order() {
    same(
        &["-j", "3", "-k", "sleep 0.{}; echo {}", ":::", "3", "2", "1"],
        None,
    );
}

#[test]
fn unordered_output_has_the_same_lines() {
    same_sorted(
        &[
            "-j", "4", "echo", "line-{}", ":::", "1", "2", "3", "4", "5", "6",
        ],
        None,
    );
}

#[test]
fn grouped_output_is_never_interleaved() {
    // Each job prints three lines with pauses; grouped, they stay together.
    let args = [
        "-j",
        "3",
        "for i in 1 2 3; do echo {}-$i; sleep 0.05; done",
        ":::",
        "a",
        "b",
        "c",
    ];
    let (gnu, ours) = both(&args, None, |_| {});
    for out in [&gnu, &ours] {
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 9);
        for block in lines.chunks(3) {
            let job = &block[0][..1];
            assert!(
                block.iter().all(|l| l.starts_with(job)),
                "interleaved: {lines:?}"
            );
        }
    }
    assert_eq!(sorted(&ours.stdout), sorted(&gnu.stdout));
}

#[test]
fn tag_prefixes_lines() {
    same(&["-k", "--tag", "echo", "out", ":::", "a", "b"], None);
    // A single word with shell syntax runs through the shell in both.
    same(
        &["-k", "--tag", "printf 'one\\ntwo\\n'; true", ":::", "x"],
        None,
    );
    same(&["-k", "--tag", "echo", ":::", "a", ":::", "1", "2"], None);
}

#[test]
fn exit_code_counts_failed_jobs() {
    same(&["true", ":::", "1", "2"], None);
    same(&["false", ":::", "1", "2", "3"], None);
    same(&["exit {}", ":::", "0", "1", "2", "0", "3"], None);
    let many: String = (1..=150).map(|i| format!("{i}\n")).collect();
    same(&["-j", "50", "false"], Some(&many));
}

#[test]
fn halt_stops_early() {
    // One job at a time makes the jobs that run deterministic.
    same(
        &[
            "-j",
            "1",
            "-k",
            "--halt",
            "now,fail=1",
            "echo {}; exit {}",
            ":::",
            "0",
            "0",
            "4",
            "0",
            "0",
        ],
        None,
    );
    same(
        &[
            "-j",
            "1",
            "-k",
            "--halt",
            "soon,fail=1",
            "echo {}; exit {}",
            ":::",
            "0",
            "3",
            "0",
        ],
        None,
    );
    same(
        &[
            "-j",
            "1",
            "-k",
            "--halt",
            "now,success=1",
            "echo {}; exit {}",
            ":::",
            "1",
            "0",
            "1",
        ],
        None,
    );
    same(
        &[
            "-j",
            "1",
            "-k",
            "--halt",
            "never",
            "echo {}; exit {}",
            ":::",
            "1",
            "0",
            "1",
        ],
        None,
    );
}

#[test]
fn pipe_splits_stdin_into_blocks_at_line_boundaries() {
    let input: String = (1..=2000).map(|i| format!("{i}\n")).collect();
    same(&["--pipe", "--block", "1k", "-k", "wc", "-l"], Some(&input));
    same(&["--pipe", "-k", "wc", "-c"], Some(&input));
}

#[test]
fn round_robin_feeds_one_job_every_block_in_order() {
    // With -j 1 there is one job, fed every block: both give the input back
    // as it was. With more jobs GNU parallel deals blocks at random: only
    // the total is compared.
    let input: String = (1..=300_000).map(|i| format!("{i}\n")).collect();
    for block in ["100k", "300k"] {
        let (gnu, ours) = both(
            &[
                "--pipe",
                "--round-robin",
                "-j",
                "1",
                "--block",
                block,
                "cat",
            ],
            Some(&input),
            |_| {},
        );
        assert_eq!(gnu.code, 0, "{}", gnu.stderr);
        assert_eq!(ours.code, 0, "{}", ours.stderr);
        assert!(gnu.stdout == input, "GNU parallel gave the input back");
        assert!(
            ours.stdout == input,
            "drover gave the input back (--block {block})"
        );
    }
    let (gnu, ours) = both(
        &[
            "--pipe",
            "--round-robin",
            "-j",
            "3",
            "--block",
            "100k",
            "wc",
            "-l",
        ],
        Some(&input),
        |_| {},
    );
    let total = |out: &Out| -> (usize, u64) {
        let counts: Vec<u64> = out
            .stdout
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect();
        (counts.len(), counts.iter().sum())
    };
    assert_eq!(total(&ours), total(&gnu), "jobs and lines");
}

#[test]
fn pipe_big_blocks_are_cut_where_gnu_parallel_cuts_them() {
    // Blocks of 256 KiB and up move by splice; drover reads only their last
    // 64 KiB, to find the cut. About 2 MB of lines: 7 blocks.
    let input: String = (1..=300_000).map(|i| format!("{i}\n")).collect();
    same(
        &["--pipe", "--block", "300k", "-k", "wc", "-c"],
        Some(&input),
    );
    // Bigger than a pipe is made without privilege: memory files.
    same(
        &["--pipe", "--block", "1500k", "-k", "wc", "-c"],
        Some(&input),
    );
    // Jobs that stop reading at once: the rest of each block is dropped and
    // the next block still starts where it should. Not compared with GNU
    // parallel, whose cuts then vary from run to run (a block is sometimes
    // skipped under load), and which counts such jobs as failed: the blocks
    // come from the `wc -c` run above instead.
    let (gnu_sizes, _) = both(
        &["--pipe", "--block", "300k", "-k", "wc", "-c"],
        Some(&input),
        |_| {},
    );
    let mut expected = String::new();
    let mut start = 0usize;
    for size in gnu_sizes.stdout.lines() {
        let size: usize = size.trim().parse().unwrap();
        expected.push_str(&input[start..start + 12.min(size)]);
        start += size;
    }
    let mut cmd = drover();
    cmd.args([
        "exec", "--pipe", "--block", "300k", "-k", "head", "-c", "12",
    ]);
    let ours = run(cmd, std::path::Path::new("."), Some(&input));
    assert_eq!(ours.code, 0, "{}", ours.stderr);
    assert_eq!(ours.stdout, expected);
}

#[test]
fn joblog_has_gnu_columns() {
    let args = [
        "-k", "-j", "1", "--joblog", "log", "exit {}", ":::", "0", "3",
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut gnu = gnu_parallel();
    gnu.args(args);
    run(gnu, dir.path(), None);
    let gnu_log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    let mut ours = drover();
    ours.arg("exec").arg("--").args(args);
    run(ours, dir.path(), None);
    let our_log = std::fs::read_to_string(dir.path().join("log")).unwrap();

    let rows = |log: &str| -> Vec<Vec<String>> {
        log.lines()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    };
    let (g, o) = (rows(&gnu_log), rows(&our_log));
    assert_eq!(o[0], g[0], "header");
    assert_eq!(o.len(), g.len());
    for (gr, or) in g.iter().zip(&o).skip(1) {
        assert_eq!(or.len(), gr.len(), "columns: {or:?} vs {gr:?}");
        // Seq, Host, Send, Receive, Exitval, Signal, Command are equal;
        // Starttime and JobRuntime are clock readings.
        for col in [0, 1, 4, 5, 6, 7, 8] {
            assert_eq!(or[col], gr[col], "column {col}: {or:?} vs {gr:?}");
        }
        assert_eq!(
            or[3].len(),
            gr[3].len(),
            "JobRuntime is padded the same: {or:?} vs {gr:?}"
        );
        assert!(or[2].parse::<f64>().is_ok() && or[2].contains('.'));
    }
}

#[test]
fn empty_input_runs_nothing() {
    same(&["echo", "never"], Some(""));
    // GNU parallel probes /dev/tty here; without a controlling terminal its
    // shell prints "cannot open /dev/tty" on stdout. That noise is the
    // environment's, not output of a job: compare without it.
    let (gnu, ours) = both(&["echo", ":::"], None, |_| {});
    let gnu_out: String = gnu
        .stdout
        .lines()
        .filter(|l| !l.contains("/dev/tty"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(ours.stdout, gnu_out, "drover stderr: {}", ours.stderr);
    assert_eq!(ours.code, gnu.code);
}

#[test]
fn dry_run_quotes_as_gnu_parallel() {
    same(
        &[
            "--dry-run",
            "-k",
            "echo",
            ":::",
            "a b",
            "it's",
            "$HOME",
            "*",
            "x\"y",
            "",
            "-n",
            "a=b",
            "@:%+-_./",
        ],
        None,
    );
    same(&["--dry-run", "echo", "pre{}post", ":::", "a b"], None);
    same(
        &[
            "--dry-run",
            "-k",
            "echo",
            "{.}",
            "{/}",
            "{//}",
            ":::",
            "a b/c d.e",
        ],
        None,
    );
}

#[test]
fn path_replacements_on_odd_items() {
    same(
        &[
            "-k",
            "echo",
            "[{}]",
            "[{.}]",
            "[{/}]",
            "[{//}]",
            "[{/.}]",
            ":::",
            ".hidden",
            "dir/",
            "/",
            "./x.y",
            "../z",
            "x.",
            "a/.hidden",
            "//x",
            "a//b",
            "dir//",
            "..",
            ".",
        ],
        None,
    );
}

#[test]
fn linked_sources_of_unequal_length_stop_at_the_shorter() {
    same(
        &[
            "-k", "echo", "{1}", "{2}", ":::", "a", "b", "c", ":::+", "1", "2",
        ],
        None,
    );
    same(
        &[
            "-k", "echo", ":::", "a", "b", "c", ":::+", "1", "2", ":::", "x", "y",
        ],
        None,
    );
}

#[test]
fn an_empty_source_beside_others_is_one_empty_argument() {
    let args = ["-k", "echo", "[{1}][{2}]", "::::", "empty", "g1"];
    let (gnu, ours) = both(&args, None, |d| {
        std::fs::write(d.join("empty"), "").unwrap();
        std::fs::write(d.join("g1"), "a\nb\n").unwrap();
    });
    assert_eq!(ours.stdout, gnu.stdout, "{}", ours.stderr);
}

#[test]
fn separate_sources_stay_separate_words() {
    same(
        &["-k", "printf", "[%s]", "{}", ":::", "a", "b", ":::", "1 2"],
        None,
    );
}

#[test]
fn halt_exit_statuses() {
    same(
        &[
            "-j",
            "2",
            "--halt",
            "now,fail=1",
            "sleep 0.{}; exit {}",
            ":::",
            "7",
            "3",
        ],
        None,
    );
    same(
        &[
            "-j",
            "1",
            "--halt",
            "now,fail=30%",
            "exit {}",
            ":::",
            "0",
            "0",
            "0",
            "0",
            "0",
            "4",
            "4",
            "4",
            "4",
            "4",
        ],
        None,
    );
    same(
        &[
            "-j",
            "1",
            "--halt",
            "soon,fail=2",
            "exit {}",
            ":::",
            "7",
            "3",
            "4",
            "5",
        ],
        None,
    );
    same(
        &[
            "-j",
            "1",
            "-k",
            "--halt",
            "2",
            "echo {}; exit {}",
            ":::",
            "0",
            "5",
            "0",
        ],
        None,
    );
    same(
        &[
            "-j",
            "1",
            "--halt",
            "now,fail=1",
            "kill -9 $$; : {}",
            ":::",
            "1",
        ],
        None,
    );
}

#[test]
fn retries_count_attempts_in_all() {
    // Each attempt appends a line; GNU's --retries 3 is three attempts.
    let args = [
        "--retries",
        "3",
        "echo try >> attempts; false; : {}",
        ":::",
        "x",
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut gnu = gnu_parallel();
    gnu.args(args);
    let g = run(gnu, dir.path(), None);
    let gnu_attempts = std::fs::read_to_string(dir.path().join("attempts"))
        .unwrap()
        .lines()
        .count();
    std::fs::remove_file(dir.path().join("attempts")).unwrap();
    let mut ours = drover();
    ours.arg("exec").arg("--").args(args);
    let o = run(ours, dir.path(), None);
    let our_attempts = std::fs::read_to_string(dir.path().join("attempts"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(our_attempts, gnu_attempts);
    assert_eq!(o.code, g.code);
}

#[test]
fn jobs_option_forms() {
    for j in ["1", "2", "+1", "-1", "50%", "0"] {
        same_sorted(&["-j", j, "echo", ":::", "a", "b", "c"], None);
    }
}

#[test]
fn v_prints_each_command_before_its_output() {
    same(&["-k", "-v", "echo", ":::", "a", "b c"], None);
    same(&["-kv", "echo {}; echo err >&2", ":::", "a", "it's"], None);
    same(&["-k", "-v", "--tag", "echo", ":::", "a", "b"], None);
    same(&["-k", "-v", "printf", "[%s]", ":::", "a"], None);
    same(&["-j", "1", "-v", "-u", "echo", ":::", "a", "b"], None);
    same(&["-j", "1", "-v", "--lb", "echo", ":::", "a", "b"], None);
    same(&["-k", "-v", "--pipe", "wc", "-l"], Some("1\n2\n"));
    same(&["-v", "--dry-run", "echo", ":::", "a"], None);
    // A failed job is shown too, and counted.
    same(&["-k", "-v", "exit {}", ":::", "0", "3"], None);
}

#[test]
fn t_prints_each_command_on_stderr_as_it_starts() {
    for args in [
        &["-j", "1", "-t", "echo", ":::", "a", "b c"][..],
        &["-j", "1", "-t", "--tag", "echo", ":::", "a"],
        &["-j", "1", "--verbose", "-u", "echo", ":::", "a"],
    ] {
        let (gnu, ours) = both(args, None, |_| {});
        assert_eq!(ours.stdout, gnu.stdout, "stdout of {args:?}");
        assert_eq!(ours.stderr, gnu.stderr, "stderr of {args:?}");
        assert_eq!(ours.code, gnu.code);
    }
}

#[test]
fn q_passes_the_words_as_written() {
    same(&["-k", "-q", "echo", "a  b|c", "{}", ":::", "x y"], None);
    same(&["-k", "-q", "-v", "echo", "a b", ":::", "x"], None);
    same(&["-q", "--dry-run", "echo", "a b", ":::", "x"], None);
    // One word with shell syntax is a program's name with -q.
    let (gnu, ours) = both(&["-q", "echo {}", ":::", "a"], None, |_| {});
    assert_eq!((ours.stdout.as_str(), ours.code), ("", gnu.code));
}

#[test]
fn arg_files_are_the_first_input_sources() {
    let args = ["-k", "-a", "f1", "-a", "f2", "echo", ":::", "x", "y"];
    let (gnu, ours) = both(&args, None, |d| {
        std::fs::write(d.join("f1"), "a\nb\n").unwrap();
        std::fs::write(d.join("f2"), "1\n").unwrap();
    });
    assert_eq!(ours.stdout, gnu.stdout, "{}", ours.stderr);
    assert_eq!(ours.code, gnu.code);
    // A first :::+ does not link to an -a file (GNU: the product).
    let args = ["-k", "-a", "f1", "echo", ":::+", "x", "y"];
    let (gnu, ours) = both(&args, None, |d| {
        std::fs::write(d.join("f1"), "a\nb\n").unwrap();
    });
    assert_eq!(ours.stdout, gnu.stdout, "{}", ours.stderr);
}

#[test]
fn gnu_spellings_of_drovers_options() {
    same(
        &[
            "--keeporder",
            "--lb",
            "--will-cite",
            "echo",
            ":::",
            "a",
            "b",
        ],
        None,
    );
    same(
        &["--dr", "--halt-on-error", "now,fail=1", "echo", ":::", "a"],
        None,
    );
    let input: String = (1..=100).map(|i| format!("{i}\n")).collect();
    same(
        &["--spreadstdin", "--block-size", "100", "-k", "wc", "-l"],
        Some(&input),
    );
}

#[test]
fn no_run_if_empty_skips_blank_lines_and_blank_arguments_as_gnu() {
    same(&["-r", "-k", "echo", "[{}]"], Some("a\n\n  \nb\n"));
    same(
        &[
            "--no-run-if-empty",
            "-k",
            "echo",
            "{#}",
            "{}",
            ":::",
            "a",
            "",
            "b",
        ],
        None,
    );
    same(
        &[
            "-r",
            "-k",
            "echo",
            "[{1}][{2}]",
            ":::",
            "",
            "a",
            ":::",
            "x",
            "",
        ],
        None,
    );
    // Without -r a blank line is a job, in both.
    same(&["-k", "echo", "[{}]"], Some("a\n\n  \nb\n"));
}

#[test]
fn replacement_string_i_as_gnu() {
    // STR stands for the argument, `{}` is text, the other strings work.
    same(
        &[
            "-I", "@@", "-k", "echo", "@@", "{}", "{.}", "{#}", ":::", "a.txt", "b",
        ],
        None,
    );
    same(
        &["-I", ",,", "-k", "echo", ",,/x", "x,,y", ":::", "a"],
        None,
    );
    same(&["-I@@", "echo", "@@", ":::", "b"], None);
    same(&["-I", "@@", "-k", "echo", "[@@]"], Some("one\ntwo\n"));
}

#[test]
fn link_takes_every_source_side_by_side_repeating_the_shorter_as_gnu() {
    same(
        &[
            "-k", "--link", "echo", ":::", "a", "b", "c", ":::", "1", "2",
        ],
        None,
    );
    same(
        &[
            "-k", "--link", "echo", ":::", "a", "b", ":::", "1", "2", ":::", "x", "y", "z",
        ],
        None,
    );
    same(
        &["-k", "--xapply", "echo", ":::", "a", "b", ":::", "1"],
        None,
    );
}

#[test]
fn trim_takes_white_space_off_the_arguments_as_gnu() {
    for how in ["n", "l", "r", "lr", "rl"] {
        same(
            &[
                "-k", "--trim", how, "echo", "[{}]", ":::", " a ", "\tb\t", "c",
            ],
            None,
        );
        same(
            &["-k", "--trim", how, "echo", "[{}]"],
            Some("  x  \n\ty\t\n"),
        );
    }
}

#[test]
fn colsep_splits_arguments_into_columns_as_gnu() {
    same(
        &[
            "-k",
            "--colsep",
            ",",
            "echo",
            "[{2}][{1}]",
            ":::",
            "a,b",
            "c,d",
        ],
        None,
    );
    same(&["-k", "--colsep", ",", "echo", "[{}]", ":::", "a,b"], None);
    same(
        &["-k", "-C", "[,;]+", "echo", "[{3}]", ":::", "a,;b;c"],
        None,
    );
    same(
        &[
            "-k",
            "--colsep",
            ",",
            "echo",
            "[{1}][{2}][{3}]",
            ":::",
            "a,b",
            ":::",
            "c,d",
        ],
        None,
    );
    same(&["-k", "--colsep", ",", "echo", "[{2}]", ":::", "a"], None);
    same(
        &["-k", "--colsep", "\t", "echo", "{2}-{1}"],
        Some("a\tb\nc\td\n"),
    );
}

#[test]
fn shuf_runs_every_job_once_in_a_random_order() {
    let items: Vec<String> = (1..=20).map(|i| i.to_string()).collect();
    let mut args: Vec<&str> = vec!["--shuf", "-k", "echo", ":::"];
    args.extend(items.iter().map(String::as_str));
    same_sorted(&args, None);
    let in_order: String = items.iter().map(|i| format!("{i}\n")).collect();
    // 20! orders: three runs all in input order would be a broken shuffle.
    let shuffled = (0..3).any(|_| exec_stdout(&args) != in_order);
    assert!(shuffled, "--shuf kept the input order three times");
}

#[test]
fn env_is_accepted_and_jobs_keep_the_environment_as_gnu() {
    same(
        &["--env", "PATH", "-k", "echo", "{}", ":::", "a", "b"],
        None,
    );
    same(
        &[
            "--env", "HOME", "--env", "PATH", "-k", "echo", "{}", ":::", "c",
        ],
        None,
    );
}

#[test]
fn header_names_the_arguments_as_gnu() {
    same(
        &[
            "--header",
            ":",
            "--colsep",
            ",",
            "-k",
            "echo",
            "{a}={b} {1}",
            ":::",
            "a,b",
            "x,y",
            "1,2",
        ],
        None,
    );
    same(&["--header", ":", "-k", "echo", "{n}"], Some("n\nx\ny\n"));
    same(
        &[
            "--header", ":", "-k", "echo", "{n}:{m}", ":::", "n", "a", "b", ":::", "m", "c",
        ],
        None,
    );
    same(
        &["--header", ":", "-k", "echo", "{f.}", ":::", "f", "a.txt"],
        None,
    );
    same(
        &["--header", ":", "-k", "--colsep", "\t", "echo", "{y}-{x}"],
        Some("x\ty\n1\t2\n"),
    );
}

#[test]
fn n_and_capital_n_give_a_job_several_arguments_as_gnu() {
    same(
        &[
            "-k",
            "-n2",
            "echo",
            "[{1}][{2}][{}]",
            ":::",
            "a",
            "b",
            "c",
            "d",
            "e",
        ],
        None,
    );
    same(
        &["-k", "-n", "2", "echo", ":::", "a", "b", "c", "d", "e"],
        None,
    );
    same(&["-k", "-n2", "echo", "{#}", "{}"], Some("a\nb\nc\n"));
    same(&["-k", "-N0", "echo", "hi", ":::", "a", "b"], None);
    same(
        &[
            "-k",
            "-N2",
            "echo",
            "[{1}][{2}][{3}][{4}]",
            ":::",
            "a",
            "b",
            ":::",
            "1",
            "2",
        ],
        None,
    );
    same(
        &[
            "-k", "-N", "3", "echo", "{3}", "{1}", ":::", "a", "b", "c", "d",
        ],
        None,
    );
}

#[test]
fn capital_n_repeats_the_word_around_braces_for_each_argument_as_gnu() {
    same(&["-k", "-N2", "echo", "[{}]", ":::", "a", "b", "c"], None);
    same(
        &[
            "-k", "-N2", "echo", "x{}y", ":::", "a", "b", "c", ":::", "1", "2",
        ],
        None,
    );
}

/// `n` numbers from `from`, as separate words.
fn numbers(from: u32, n: u32) -> Vec<String> {
    (from..from + n).map(|i| i.to_string()).collect()
}

/// [`same`] with `args` followed by `::: items...`.
fn same_with(args: &[&str], items: &[String]) {
    let mut all: Vec<&str> = args.to_vec();
    all.push(":::");
    all.extend(items.iter().map(String::as_str));
    same(&all, None);
}

#[test]
fn x_m_and_xargs_put_several_arguments_on_a_line_as_gnu() {
    let five = ["a", "b", "c", "d", "e"].map(String::from);
    for flag in ["-X", "-m", "--xargs"] {
        // At the end of the input -X and -m spread the last line's
        // arguments over the job slots (a b c / d e with -j2); --xargs not.
        for jobs in ["1", "2", "3", "0"] {
            same_with(&["-k", "-j", jobs, flag, "echo"], &five);
        }
        // -X repeats the word around {} for each argument; -m and --xargs
        // put all of them in its place.
        same_with(&["-k", "-j2", flag, "echo", "x{}y", "p{.}q"], &five);
        same_with(&["-k", "-j1", flag, "echo", "{}x{}", "{#}"], &five);
        same_with(&["-k", "-j2", flag, "-n2", "echo"], &five);
        same_with(&["-k", "-j2", flag, "-n2", "echo"], &five[..4]);
        // {1} {2} stand for the first arguments of the line.
        same(
            &[
                "-k", "-j2", flag, "echo", "{1}-{2}", "x{}", ":::", "a", "b", ":::", "1", "2",
            ],
            None,
        );
        // Quoted as the shell sees them, in --dry-run's lines too.
        same(
            &[
                "-k",
                "-j1",
                flag,
                "--dry-run",
                "echo",
                "x{}y",
                "{}",
                ":::",
                "a b",
                "it's",
            ],
            None,
        );
        // Lines as long as GNU's measure allows: -s, and its default
        // (63664) with 30 000 numbers.
        for s in ["30", "47"] {
            same_with(&["-k", "-j2", flag, "-s", s, "echo"], &numbers(100, 41));
            same_with(
                &["-k", "-j3", flag, "-s", s, "echo", "x{}y", "z{.}", "{#}"],
                &numbers(100, 41),
            );
        }
        same_with(&["-k", "-j2", flag, "echo"], &numbers(1, 30_000));
        same_with(
            &["-k", "-j1", flag, "-q", "-s", "100", "echo"],
            &numbers(5, 30),
        );
        // One argument longer than -s allows: an error, exit 255.
        same_with(&["-k", "-j1", flag, "-s", "5", "echo"], &five);
    }
    // From stdin.
    same(&["-k", "-j2", "-X", "echo"], Some("a\nb\nc\nd\ne\n"));
    same(
        &["-k", "-j2", "-m", "-s", "20", "echo"],
        Some(&numbers(1, 30).join("\n")),
    );
}

#[test]
fn capital_l_and_l_take_lines_as_gnu() {
    // A line ending in white space goes on in the next.
    let input = "a \nb\nc\nd \ne\nf\ng\n";
    for args in [
        &["-k", "-L1", "echo", "[{}]"][..],
        &["-k", "-L2", "echo", "[{}]"],
        &["-k", "-L", "2", "-m", "echo", "[{}]"],
        &["-k", "-L2", "echo", "x{}y"],
        &["-k", "-l", "echo"],
        &["-k", "-l", "2", "echo"],
        &["-k", "-l0", "echo"],
        &["-k", "-l2", "-X", "echo", "x{}y"],
        &["-k", "--max-lines=3", "echo"],
        // A next word that is no number is the command's.
        &["-k", "-l", "echo", "x"],
    ] {
        same(args, Some(input));
    }
    same(&["-k", "-L1", "echo", ":::", "a ", "b", "c"], None);
    same(&["-k", "-L2", "echo", "x{}y", ":::", "a", "b", "c"], None);
}

#[test]
fn bad_counts_and_sizes_are_usage_errors_naming_the_flag() {
    for (args, named) in [
        (&["-L", "0"][..], "-L 0"),
        (&["-L", "abc"], "-L abc"),
        (&["-X", "-s", "0"], "-s 0"),
        (&["-m", "-s", "x"], "-s x"),
    ] {
        let out = drover()
            .arg("exec")
            .args(args)
            .args(["--", "echo", ":::", "a"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(255), "{args:?}");
        assert!(text(&out.stderr).contains(named), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn replace_i_takes_an_optional_string_as_gnu() {
    same(&["-k", "-i@", "echo", "x@y{}", ":::", "a", "b"], None);
    same(&["-k", "--replace=@", "echo", "x@y{}", ":::", "a"], None);
    // Before another option, -i is -I {}.
    same(&["-i", "-k", "echo", "x{}y", ":::", "a", "b"], None);
    // As GNU's Getopt::Long: a separate word is the string itself (here
    // `echo`), so the command is `x{}y`, which does not exist: one failed job.
    same(&["-k", "--replace", "echo", "x{}y", ":::", "a"], None);
}

#[test]
fn tagstring_tags_lines_with_a_filled_in_string_as_gnu() {
    same(
        &[
            "-k",
            "--tagstring",
            "{#}-{.}",
            "echo",
            "{}",
            ":::",
            "a.txt",
            "b.c",
        ],
        None,
    );
    same(
        &["-k", "--tagstring", "T", "--tag", "echo", ":::", "a"],
        None,
    );
    same(
        &[
            "-k",
            "--tagstring",
            "<{1}>",
            "echo",
            "{2}",
            ":::",
            "a",
            "b",
            ":::",
            "1",
            "2",
        ],
        None,
    );
    same(
        &[
            "-k",
            "--tagstring",
            "[{}]",
            "echo one; echo two",
            ":::",
            "x",
        ],
        None,
    );
}

#[test]
fn nice_runs_the_jobs_at_that_niceness_as_gnu() {
    // `nice` with no arguments prints the niceness it runs at: N itself,
    // whatever drover's (as root, even below it).
    same(&["-k", "--nice", "5", "sh", "-c", "nice", ":::", "1"], None);
    same(
        &["-k", "--nice", "7", "sh", "-c", "nice", ":::", "1", "2"],
        None,
    );
}

#[test]
fn delay_spaces_the_starts_as_gnu() {
    same(
        &["-k", "--delay", "0.1", "echo", ":::", "a", "b", "c"],
        None,
    );
    // Three jobs at once but started at least 0.3 s apart: the times they
    // started at, each read as it starts.
    let out = drover()
        .args([
            "exec",
            "-j",
            "3",
            "--delay",
            "0.3",
            "--",
            "sh",
            "-c",
            "date +%s%N",
        ])
        .args([":::", "1", "2", "3"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut starts: Vec<u128> = text(&out.stdout)
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    starts.sort();
    assert_eq!(starts.len(), 3);
    for pair in starts.windows(2) {
        let gap_ms = (pair[1] - pair[0]) / 1_000_000;
        assert!(gap_ms >= 250, "starts {gap_ms} ms apart: {starts:?}");
    }
}

/// Runs each of `steps` in turn through both (each in a folder of its own
/// that the steps share): the last step's outputs, and the joblog `log`
/// that the steps wrote, as (Seq, Exitval) per line.
fn both_in_steps(steps: &[&[&str]]) -> [(Out, Vec<String>); 2] {
    let gnu_dir = tempfile::tempdir().unwrap();
    let our_dir = tempfile::tempdir().unwrap();
    let mut last = Vec::new();
    for (dir, gnu) in [(&gnu_dir, true), (&our_dir, false)] {
        let mut out = None;
        for step in steps {
            let cmd = if gnu {
                let mut c = gnu_parallel();
                c.args(*step);
                c
            } else {
                let mut c = drover();
                c.arg("exec").arg("--").args(*step);
                c
            };
            out = Some(run(cmd, dir.path(), None));
        }
        let log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
        let rows = log
            .lines()
            .map(|l| {
                let c: Vec<&str> = l.split('\t').collect();
                format!("{} {}", c[0], c[6])
            })
            .collect();
        last.push((out.unwrap(), rows));
    }
    let ours = last.pop().unwrap();
    let gnu = last.pop().unwrap();
    [gnu, ours]
}

#[test]
fn resume_runs_only_what_the_joblog_does_not_list_as_gnu() {
    // The first run resumes from no joblog at all: everything runs.
    let [gnu, ours] = both_in_steps(&[
        &["--resume", "--joblog", "log", "-k", "echo", ":::", "a", "b"],
        &[
            "--resume", "--joblog", "log", "-k", "echo", ":::", "a", "b", "c", "d",
        ],
    ]);
    assert_eq!(ours.0.stdout, gnu.0.stdout);
    assert_eq!(ours.0.stdout, "c\nd\n");
    assert_eq!(ours.0.code, gnu.0.code);
    assert_eq!(ours.1, gnu.1, "the joblogs");
    assert_eq!(ours.1, ["Seq Exitval", "1 0", "2 0", "3 0", "4 0"]);
    // Out of order, and nothing left to run.
    let [gnu, ours] = both_in_steps(&[
        &["--joblog", "log", "echo", ":::", "a", "b", "c"],
        &["--resume", "--joblog", "log", "echo", ":::", "a", "b", "c"],
    ]);
    assert_eq!((ours.0.stdout.as_str(), ours.0.code), ("", 0));
    assert_eq!(ours.1.len(), gnu.1.len());
}

#[test]
fn resume_needs_a_joblog_as_gnu() {
    same(&["--resume", "echo", ":::", "a"], None);
    same(&["--resume-failed", "echo", ":::", "a"], None);
}

#[test]
fn resume_failed_runs_the_failed_jobs_again_as_gnu() {
    let [gnu, ours] = both_in_steps(&[
        &[
            "--joblog", "log", "-k", "exit {}", ":::", "0", "3", "0", "4",
        ],
        &[
            "--resume-failed",
            "--joblog",
            "log",
            "-k",
            "echo {}; exit {}",
            ":::",
            "0",
            "3",
            "0",
            "4",
            "0",
        ],
    ]);
    assert_eq!(ours.0.stdout, gnu.0.stdout, "{}", ours.0.stderr);
    assert_eq!(ours.0.stdout, "3\n4\n0\n");
    assert_eq!(ours.0.code, gnu.0.code);
    assert_eq!(ours.0.code, 2);
    assert_eq!(ours.1, gnu.1, "the joblogs");
}

#[test]
fn retry_failed_runs_the_joblogs_failed_commands_again_as_gnu() {
    let first: &[&str] = &[
        "--joblog",
        "log",
        "-k",
        "echo {}; exit {}",
        ":::",
        "0",
        "3",
        "0",
        "4",
    ];
    // No command: the joblog's are run.
    let [gnu, ours] = both_in_steps(&[first, &["--retry-failed", "--joblog", "log", "-k"]]);
    assert_eq!(ours.0.stdout, gnu.0.stdout, "{}", ours.0.stderr);
    assert_eq!(ours.0.stdout, "3\n4\n");
    assert_eq!((ours.0.code, gnu.0.code), (2, 2));
    assert_eq!(ours.1, gnu.1, "the joblogs");
    // A command and input given are ignored.
    let [gnu, ours] = both_in_steps(&[
        first,
        &[
            "--retry-failed",
            "--joblog",
            "log",
            "-k",
            "echo",
            "x",
            ":::",
            "y",
        ],
    ]);
    assert_eq!(ours.0.stdout, gnu.0.stdout, "{}", ours.0.stderr);
    assert_eq!(ours.0.code, gnu.0.code);
    assert_eq!(ours.1, gnu.1, "the joblogs");
    // No joblog yet: nothing to retry, in both.
    same(&["--retry-failed", "--joblog", "nolog", "echo"], None);
    // No --joblog at all: GNU runs nothing and says nothing; drover says
    // what is missing.
    let out = drover()
        .args(["exec", "--retry-failed", "--", "echo"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains("--joblog FILE"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn timeout_as_a_percentage_of_the_median_as_gnu() {
    // One at a time: three jobs of 0.1 s succeed, so the fourth may take
    // 300% of 0.1 s; it would take 5 s and is killed (one failed job).
    same(
        &[
            "-k",
            "-j1",
            "--timeout",
            "300%",
            "sleep {}; echo {}",
            ":::",
            "0.1",
            "0.1",
            "0.1",
            "5",
        ],
        None,
    );
    // Before any job has succeeded there is no median, and no timeout.
    same(
        &[
            "-k",
            "-j1",
            "--timeout",
            "300%",
            "sleep {}; echo {}",
            ":::",
            "0.3",
        ],
        None,
    );
}

#[test]
fn progress_and_eta_change_no_output_as_gnu() {
    // Both draw on stderr (drover only on a terminal, which this is not).
    for option in ["--progress", "--eta", "--bar"] {
        same(&["-k", option, "echo", ":::", "a", "b", "c"], None);
    }
    let out = drover()
        .args(["exec", "--eta", "-k", "--", "echo", ":::", "a"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        text(&out.stderr),
        "",
        "nothing drawn where stderr is no terminal"
    );
}

/// Every file and folder under a folder (its path there), with each
/// file's bytes.
type Tree = Vec<(String, Option<Vec<u8>>)>;

fn tree(dir: &Path) -> Tree {
    let mut all = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(dir).unwrap().display().to_string();
            if path.is_dir() {
                all.push((name, None));
                todo.push(path);
            } else {
                all.push((name, Some(std::fs::read(&path).unwrap())));
            }
        }
    }
    all.sort();
    all
}

/// Runs `args` through both, each in a folder of its own: the outputs and
/// the trees they left.
fn both_trees(args: &[&str]) -> [(Out, Tree); 2] {
    let gnu_dir = tempfile::tempdir().unwrap();
    let our_dir = tempfile::tempdir().unwrap();
    let mut gnu = gnu_parallel();
    gnu.args(args);
    let gnu = run(gnu, gnu_dir.path(), None);
    let mut ours = drover();
    ours.arg("exec").arg("--").args(args);
    let ours = run(ours, our_dir.path(), None);
    [(gnu, tree(gnu_dir.path())), (ours, tree(our_dir.path()))]
}

#[test]
fn results_writes_the_files_gnu_writes() {
    for args in [
        &["-k", "--results", "out", "echo", ":::", "a", "b c", "d/e"][..],
        // Nothing escapes DIR: `..` is DIR/1/.., the empty argument DIR/1.
        &["-k", "--results", "out", "echo", ":::", "", "..", "x\\y\tz"],
        &[
            "-k",
            "--results",
            "out",
            "echo o{}; echo e{} >&2; exit {#}",
            ":::",
            "a",
            "b",
        ],
        &[
            "-k",
            "--results",
            "out",
            "echo",
            ":::",
            "a",
            "b",
            ":::",
            "x",
        ],
        &[
            "-k",
            "--header",
            ":",
            "--results",
            "out",
            "echo",
            "{y}",
            ":::",
            "y",
            "1",
            "2",
            ":::",
            "x",
            "a",
        ],
        &["-k", "--results", "out/{1}/", "echo", ":::", "a b", "c"],
        &["-k", "--results", "out/{1}.txt", "echo", ":::", "a b", "c"],
        &[
            "-k",
            "-j1",
            "--results",
            "out/{#}/",
            "-X",
            "echo",
            ":::",
            "a",
            "b",
        ],
    ] {
        let [(gnu, gnu_tree), (ours, our_tree)] = both_trees(args);
        assert_eq!(
            our_tree, gnu_tree,
            "{args:?}\ndrover stderr: {}",
            ours.stderr
        );
        assert_eq!(ours.stdout, gnu.stdout, "{args:?}");
        assert_eq!(ours.code, gnu.code, "{args:?}: {}", ours.stderr);
    }
    // A folder name longer than a file name may be is cut, as GNU's.
    let long = "z".repeat(300);
    let [(_, gnu_tree), (ours, our_tree)] = both_trees(&["--results", "out", "echo", ":::", &long]);
    assert_eq!(our_tree, gnu_tree, "{}", ours.stderr);
}

#[test]
fn results_rewrites_its_files_in_place_and_leaves_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("out/1/a");
    std::fs::create_dir_all(&job).unwrap();
    std::fs::write(job.join("stdout"), "an older, longer output\n").unwrap();
    // A second name for the same file: still that file afterwards.
    std::fs::hard_link(job.join("stdout"), dir.path().join("link")).unwrap();
    std::fs::write(dir.path().join("out/mine"), "kept").unwrap();
    let out = drover()
        .current_dir(dir.path())
        .args(["exec", "--results", "out", "--", "echo", ":::", "a"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("link")).unwrap(),
        "a\n"
    );
    assert_eq!(std::fs::read_to_string(job.join("seq")).unwrap(), "1");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out/mine")).unwrap(),
        "kept"
    );
    // A file that cannot be made fails its job, named; exit 1 (one failed).
    std::fs::remove_file(job.join("seq")).unwrap();
    std::fs::create_dir(job.join("seq")).unwrap();
    let out = drover()
        .current_dir(dir.path())
        .args(["exec", "--results", "out", "--", "echo", ":::", "a"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("out/1/a/seq"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn results_refuses_what_it_cannot_do_yet() {
    for args in [
        &["--results", "out.csv"][..],
        &["--results", "out", "-X"],
        &["--results", "out", "--pipe"],
    ] {
        let out = drover()
            .arg("exec")
            .args(args)
            .args(["--", "echo"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(255), "{args:?}");
        assert!(
            text(&out.stderr).contains("--results"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn plus_fills_gnu_parallels_further_replacement_strings() {
    // Job and slot numbers with -j1: slots are reused as jobs end, which
    // depends on timing.
    let all = [
        "-k",
        "-j1",
        "--plus",
        "echo",
        "{+/}",
        "{+.}",
        "{+..}",
        "{+...}",
        "{..}",
        "{...}",
        "{/..}",
        "{/...}",
        "{##}",
        "{0#}",
        "{0%}",
        "{slot}",
        ":::",
        "a/b.c/d.e.f.g",
    ];
    let mut args = all.to_vec();
    let more = numbers(1, 11);
    args.extend(more.iter().map(String::as_str));
    same(&args, None);
    same(
        &[
            "-k",
            "--plus",
            "echo",
            "{2+.}",
            "{1/..}",
            "{1+/}",
            "{2...}",
            ":::",
            "a.b.c",
            ":::",
            "x.y",
            "d/e.f.g.h",
        ],
        None,
    );
    same(
        &[
            "-k",
            "--plus",
            "echo",
            "{+/}x{+.}y{/...}z",
            ":::",
            "a/b.c",
            ".hidden",
            "x.tar.gz",
            "a.b/c",
            "",
        ],
        None,
    );
    // {##} from stdin: all of it read first.
    same(
        &["-k", "--plus", "echo", "{##}", "{0#}", "{}"],
        Some("a\nb\nc\n"),
    );
    same(
        &["-k", "--plus", "--dry-run", "echo", "{##}", "{0#}", "{}"],
        Some(&numbers(1, 12).join("\n")),
    );
    same(
        &[
            "-k",
            "--plus",
            "--tagstring",
            "{##}-{+.}",
            "echo",
            "{}",
            ":::",
            "a.b",
            "c",
        ],
        None,
    );
    // Without --plus they are text, as GNU's.
    same(&["-k", "echo", "{+/}", "{##}", ":::", "a"], None);
}

#[test]
fn memfree_and_load_that_are_met_run_every_job_as_gnu() {
    same(&["-k", "--memfree", "1k", "echo", ":::", "a", "b"], None);
    same(&["-k", "--load", "1000", "echo", ":::", "a", "b"], None);
}

#[test]
fn plus_strings_that_run_perl_are_refused_by_name() {
    for s in ["{:-x}", "{#ab}", "{%.c}", "{/a/b}", "{^a}", "{choose_k}"] {
        let out = drover()
            .args(["exec", "--plus", "--", "echo", s, ":::", "a"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(255), "{s}");
        assert!(text(&out.stderr).contains(s), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty());
    }
}

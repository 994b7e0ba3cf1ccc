//! Smaller behaviours of `drover exec`: help, dry runs, empty input, input
//! and option errors, slot numbers, `-j 0`, `-u`, `--shell` quoting, and a
//! command that does not exist.

use crate::common::*;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

fn exec_in(dir: &Path, args: &[&str]) -> Output {
    drover()
        .arg("exec")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run drover exec")
}

#[test]
fn help_shows_the_input_syntax_and_examples() {
    let out = drover().args(["exec", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    assert!(help.contains(":::"), "{help}");
    assert!(help.contains("::::"), "{help}");
    assert!(help.contains("Examples"), "{help}");
}

#[test]
fn dry_run_prints_commands_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = exec_in(
        dir.path(),
        &["--dry-run", "--", "touch", "marker-{}", ":::", "a", "b c"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(files.is_empty(), "nothing ran: {files:?}");

    // The printed lines are the commands, quoted for sh: run them.
    let printed = text(&out.stdout);
    assert_eq!(printed.lines().count(), 2, "{printed}");
    assert!(printed.starts_with("touch marker-a\n"), "{printed}");
    let status = std::process::Command::new("sh")
        .args(["-c", &printed])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let mut made: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    made.sort();
    assert_eq!(made, ["marker-a", "marker-b c"], "{printed}");
}

#[test]
fn empty_input_runs_nothing_and_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    for out in [
        exec_in(dir.path(), &["--", "touch", "marker", ":::"]),
        exec_with_stdin(dir.path(), &["--", "touch", "marker"], b""),
    ] {
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
        assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    }
    assert!(!dir.path().join("marker").exists(), "nothing ran");
}

#[test]
fn a_missing_item_file_is_an_error_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = exec_in(
        dir.path(),
        &[
            "--",
            "touch",
            "marker-{1}",
            ":::",
            "a",
            "::::",
            "no-such-list.txt",
        ],
    );
    assert_eq!(out.status.code(), Some(255));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no-such-list.txt"), "{stderr}");
    assert!(
        !dir.path().join("marker-a").exists(),
        "no job ran before the error"
    );
}

#[test]
fn bad_options_exit_255() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--no-such-option", "--", "touch", "marker", ":::", "a"][..],
        &["-j", "lots", "--", "touch", "marker", ":::", "a"],
        &["--timeout", "soon", "--", "touch", "marker", ":::", "a"],
        &["--halt", "sometimes", "--", "touch", "marker", ":::", "a"],
    ] {
        let out = exec_in(dir.path(), args);
        assert_eq!(
            out.status.code(),
            Some(255),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!out.stderr.is_empty(), "{args:?} says what is wrong");
    }
    assert!(!dir.path().join("marker").exists(), "nothing ran");
}

#[test]
fn slot_numbers_stay_within_the_job_limit() {
    let dir = tempfile::tempdir().unwrap();
    let items: Vec<String> = (1..=12).map(|i| i.to_string()).collect();
    let mut args = vec![
        "-j",
        "2",
        "--",
        "sh",
        "-c",
        "sleep 0.0$1; echo $2",
        "sh",
        "{}",
        "{%}",
        ":::",
    ];
    args.extend(items.iter().map(String::as_str));
    let out = exec_in(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let slots: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(slots.len(), 12);
    for slot in &slots {
        assert!(slot == "1" || slot == "2", "slot {slot} with -j 2");
    }
}

#[test]
fn jobs_zero_runs_everything_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let items: Vec<String> = (1..=20).map(|i| i.to_string()).collect();
    let mut args = vec![
        "-j",
        "0",
        "--",
        "sh",
        "-c",
        "sleep 1; echo $$ >> pids",
        ":::",
    ];
    args.extend(items.iter().map(String::as_str));
    let started = Instant::now();
    let out = exec_in(dir.path(), &args);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(pids_in(&dir.path().join("pids")).len(), 20, "all 20 ran");
    assert!(took < Duration::from_secs(10), "20 × 1 s took {took:?}");
}

#[test]
fn ungrouped_output_appears() {
    let dir = tempfile::tempdir().unwrap();
    let out = exec_in(dir.path(), &["-u", "--", "echo", "hi", ":::", "a", "b"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut lines: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    lines.sort();
    assert_eq!(lines, ["hi a", "hi b"]);
}

#[test]
fn shell_mode_quotes_items() {
    let dir = tempfile::tempdir().unwrap();
    let out = exec_in(
        dir.path(),
        &[
            "-k",
            "--shell",
            "--",
            "printf '[%s]\\n' {}",
            ":::",
            "a b",
            "it's",
            "$(touch pwned)",
            "*",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "[a b]\n[it's]\n[$(touch pwned)]\n[*]\n");
    assert!(!dir.path().join("pwned").exists(), "an item ran as code");
}

#[test]
fn shell_mode_takes_command_words_as_shell_text() {
    // As GNU parallel: the words are joined into one shell line, so an
    // unquoted `\n` is a plain `n` to the shell; only items are quoted.
    let dir = tempfile::tempdir().unwrap();
    let out = exec_in(
        dir.path(),
        &[
            "-k", "--shell", "--", "printf", "[%s]\\n", "{}", ":::", "a b", "it's",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "[a b]n[it's]n");
}

#[test]
fn a_command_not_found_is_named_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = exec_in(dir.path(), &["--", "drover-no-such-command", ":::", "a"]);
    assert_eq!(out.status.code(), Some(1), "one failed job");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("drover-no-such-command"), "{stderr}");
    assert!(out.stdout.is_empty());
}

//! GNU parallel syntax that drover exec lacks is refused, never half
//! understood: a `{= perl =}` expression, a replacement string GNU fills and
//! drover cannot (`{-1}`, `{0}`, `{1#}`), or a GNU option drover does not
//! implement, after `exec --` (GNU's own place) or before it, exits 255 with
//! an error naming it, and runs nothing. Braces GNU leaves alone stay text.

use crate::common::*;

use std::path::Path;
use std::process::{Output, Stdio};

/// `drover exec ARGS...` in `dir`, stdin from /dev/null.
fn exec_in(dir: &Path, args: &[&str]) -> Output {
    drover()
        .arg("exec")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run drover exec")
}

/// Refused with exit 255 and an error containing each of `named`; the
/// command, which would create `ran` in the folder, never ran.
fn assert_refused(args: &[&str], named: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let out = exec_in(dir.path(), args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{args:?}: {err}");
    for n in named {
        assert!(
            err.contains(n),
            "{args:?}: error does not name {n:?}:\n{err}"
        );
    }
    assert!(!dir.path().join("ran").exists(), "{args:?} ran its command");
    assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
}

#[test]
fn perl_expressions_are_refused_with_the_nearest_drover_form() {
    assert_refused(
        &["--", "touch", "ran", "{= s/b/B/ =}", ":::", "abc"],
        &["{= s/b/B/ =}", "perl", "{.} {/} {//} {/.}", "sed"],
    );
    // GNU joins the words to find one; {=N ...=} is per input source.
    assert_refused(
        &[
            "--", "touch", "ran", "{=2", "s/b/B/", "=}", ":::", "a", ":::", "b",
        ],
        &["{=2 s/b/B/ =}", "perl"],
    );
    assert_refused(
        &["--", "touch", "ran", "{= s/\\.gz$// =}", ":::", "x.gz"],
        &["{= s/\\.gz$// =}", "here {.} comes nearest"],
    );
    // Inside a shell command line, too.
    assert_refused(
        &["--shell", "--", "touch ran; echo {==}", ":::", "abc"],
        &["{==}", "perl"],
    );
    assert_refused(
        &[
            "--dry-run",
            "--",
            "touch",
            "ran",
            "{= s/b/B/ =}",
            ":::",
            "abc",
        ],
        &["{= s/b/B/ =}"],
    );
}

#[test]
fn replacement_strings_gnu_fills_and_drover_cannot_are_refused() {
    for (string, hint) in [
        ("{-1}", "from the start"),
        ("{-2/}", "from the start"),
        ("{0}", "{}"),
        ("{1#}", "{#}"),
        ("{2%}", "{%}"),
    ] {
        assert_refused(
            &["--", "touch", "ran", string, ":::", "a", ":::", "b"],
            &[string, hint],
        );
    }
}

#[test]
fn braces_are_read_as_gnu_parallel_reads_them() {
    // Text to GNU parallel (without --plus), so text here.
    let dir = tempfile::tempdir().unwrap();
    let out = exec_in(
        dir.path(),
        &[
            "-k", "--", "echo", "{=}", "{+/}", "{..}", "{##}", "{ 1}", "{#1}", "${HOME}", "{}",
            ":::", "abc",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{=} {+/} {..} {##} { 1} {#1} ${HOME} abc\n"
    );
    let awk = exec_stdout(["-k", "--", "awk", "{print $1}", ":::", "/dev/null"]);
    assert_eq!(awk, "");
    // A source number may be followed by white space, as in GNU parallel.
    let out = exec_stdout([
        "-k", "--", "echo", "{2 .}", "{1 }", ":::", "a", ":::", "b.c",
    ]);
    assert_eq!(out, "b a\n");
}

#[test]
fn gnu_options_drover_lacks_are_refused_by_name() {
    // (the options, as written after `exec --`; the name the error gives)
    let cases: &[(&[&str], &str)] = &[
        (&["-x"], "-x"),
        (&["-E", "end"], "-E"),
        (&["-e"], "-e"),
        (&["-p"], "-p"),
        (&["-S", "host"], "-S"),
        (&["--tmpdir", "/tmp"], "--tmpdir"),
        (&["--workdir", "."], "--workdir"),
        (&["--version"], "--version"),
        (&["-V"], "-V"),
        (&["--silent"], "--silent"),
        // A cluster: -k is drover's, -x is not.
        (&["-kx"], "-x"),
        // GNU takes a unique abbreviation; drover names what it means.
        (&["--memsusp", "1G"], "--memsuspend"),
    ];
    for (options, named) in cases {
        let mut after: Vec<&str> = vec!["--"];
        after.extend_from_slice(options);
        after.extend_from_slice(&["touch", "ran", ":::", "a"]);
        assert_refused(
            &after,
            &[named, "GNU parallel", "not supported by drover exec"],
        );
        // Before the `--`, as a drover option, the same.
        let mut before: Vec<&str> = options.to_vec();
        before.extend_from_slice(&["--", "touch", "ran", ":::", "a"]);
        assert_refused(&before, &[named, "not supported by drover exec"]);
    }
    // After the command they are the command's, as in GNU parallel.
    let out = exec_stdout(["-k", "--", "echo", "-X", "--colsep", ":::", "a"]);
    assert_eq!(out, "-X --colsep a\n");
}

#[test]
fn options_neither_drover_nor_gnu_has_are_refused_by_name() {
    assert_refused(
        &["--", "--frobnicate", "touch", "ran", ":::", "a"],
        &["--frobnicate", "nor of GNU parallel"],
    );
    assert_refused(
        &["--", "-kc", "touch", "ran", ":::", "a"],
        &["-c", "nor of GNU parallel"],
    );
}

#[test]
fn v_after_exec_is_gnu_parallels_not_drovers_logging() {
    // drover's own logging is `drover -v exec`: it prints no commands.
    let out = drover()
        .args(["-v", "exec", "--", "echo", ":::", "a"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "a\n");
    // After `exec`, before or after its `--`: the command, then its output.
    for args in [&["-v", "--"][..], &["--", "-v"]] {
        let mut all = args.to_vec();
        all.extend_from_slice(&["echo", ":::", "a"]);
        assert_eq!(exec_stdout(&all), "echo a\na\n", "{args:?}");
    }
}

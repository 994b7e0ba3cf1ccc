//! `drover exec -0` and `-d CHAR`: items from stdin and files end at a NUL
//! byte or at CHAR instead of a newline, as with `xargs -0` / `xargs -d`, so
//! that `find -print0` names with spaces and newlines reach jobs whole.

use crate::common::*;

use std::process::{Command, Stdio};

#[test]
fn find_print0_names_with_spaces_and_newlines_reach_jobs_whole() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["plain", "with space", "with\nnewline", "tab\there"];
    for (i, name) in names.iter().enumerate() {
        std::fs::write(dir.path().join(name), format!("content {i}\n")).unwrap();
    }
    let found = Command::new("find")
        .args([".", "-type", "f", "-print0"])
        .current_dir(dir.path())
        .output()
        .expect("run find");
    assert!(found.status.success());
    let out = exec_with_stdin(dir.path(), &["-0", "-k", "--", "cat"], &found.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // find's order, one job a name: each file's content once.
    let order: Vec<&[u8]> = found
        .stdout
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .collect();
    let expected: String = order
        .iter()
        .map(|n| {
            let name = std::str::from_utf8(&n[2..]).unwrap();
            let i = names.iter().position(|m| *m == name).unwrap();
            format!("content {i}\n")
        })
        .collect();
    assert_eq!(text(&out.stdout), expected);
}

#[test]
fn null_items_keep_carriage_returns_and_empty_items() {
    let dir = tempfile::tempdir().unwrap();
    let out = exec_with_stdin(
        dir.path(),
        &["-0", "-k", "--", "printf", "[%s]\n"],
        b"a\r\0\0b c\nd\0",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "[a\r]\n[]\n[b c\nd]\n");
}

#[test]
fn a_delimiter_splits_an_arg_file_as_xargs_d_does() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("items"), "x,y y,z\n").unwrap();
    let out = drover()
        .args([
            "exec", "-k", "-d", ",", "-a", "items", "--", "printf", "[%s]",
        ])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // The last item keeps its newline, as with `xargs -d ,`.
    assert_eq!(text(&out.stdout), "[x][y y][z\n]");

    let xargs = Command::new("sh")
        .arg("-c")
        .arg("xargs -d , -n 1 printf '[%s]' < items")
        .current_dir(dir.path())
        .output()
        .expect("run xargs");
    assert_eq!(text(&xargs.stdout), text(&out.stdout));
}

#[test]
fn escapes_name_a_tab_or_a_nul() {
    let dir = tempfile::tempdir().unwrap();
    let out = exec_with_stdin(dir.path(), &["-k", "-d", "\\t", "--", "echo"], b"a\tb");
    assert_eq!(text(&out.stdout), "a\nb\n", "{}", text(&out.stderr));
    let out = exec_with_stdin(dir.path(), &["-k", "-d", "\\0", "--", "echo"], b"c\0d\0");
    assert_eq!(text(&out.stdout), "c\nd\n", "{}", text(&out.stderr));
}

#[test]
fn bad_delimiters_are_refused_before_any_job_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let touch = format!("touch {}", marker.display());
    for args in [
        vec!["-d", "ab", "--", "sh", "-c", &touch],
        vec!["-0", "-d", ",", "--", "sh", "-c", &touch],
        vec!["--pipe", "-0", "--", "sh", "-c", &touch],
    ] {
        let out = exec_with_stdin(dir.path(), &args, b"1\n");
        assert!(!out.status.success(), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("-d") || err.contains("--delimiter") || err.contains("-0"),
            "{args:?}: {err}"
        );
        assert!(!marker.exists(), "{args:?} ran a job");
    }
}

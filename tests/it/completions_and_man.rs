//! `drover completions SHELL` prints a completion script the shell takes,
//! and `drover man` a man page, both naming every subcommand.

use std::process::Command;

use crate::common::*;

fn stdout_of(args: &[&str]) -> String {
    let out = drover().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn bash_loads_the_completion_script() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("drover.bash");
    std::fs::write(&script, stdout_of(&["completions", "bash"])).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p drover", script.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("drover"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn zsh_and_fish_scripts_complete_the_subcommands() {
    let zsh = stdout_of(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef drover"), "{zsh}");
    let fish = stdout_of(&["completions", "fish"]);
    for sub in ["run", "check", "exec"] {
        assert!(zsh.contains(sub) && fish.contains(sub), "{sub}");
    }
    assert!(fish.contains("complete -c drover"));
}

#[test]
fn the_man_page_is_roff_naming_every_subcommand() {
    let man = stdout_of(&["man"]);
    assert!(man.contains(".TH drover 1"), "{man}");
    for sub in ["run", "check", "exec", "completions"] {
        assert!(man.contains(sub), "{sub}");
    }
}

#[test]
fn an_unknown_shell_is_refused_naming_the_choices() {
    let out = drover().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("bash"), "{}", text(&out.stderr));
}

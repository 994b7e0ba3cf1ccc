//! drover's warnings carry no colour codes when stderr is not a terminal
//! (a log file, a CI runner); `--color always` asks for them anyway.

use crate::common::*;

/// A pipeline whose output cannot be written: drover warns.
const WARNS: &str = r#"
[[pipeline]]
name = "p"
items = ["a", "b"]
output = { file = "/dev/full" }

[[pipeline.stage]]
name = "s"
cmd = ["cat"]
mode = "stream"
"#;

#[test]
fn warnings_to_a_pipe_have_no_colour_codes() {
    let ws = Workspace::new(WARNS);
    let run = ws.run(&[]);
    assert!(run.stderr().contains("WARN"), "{}", run.stderr());
    assert!(!run.stderr().contains('\x1b'), "{:?}", run.stderr());
}

#[test]
fn color_always_colours_them_anyway() {
    let ws = Workspace::new(WARNS);
    let run = ws.run(&["--color", "always"]);
    assert!(run.stderr().contains("\x1b["), "{:?}", run.stderr());
}

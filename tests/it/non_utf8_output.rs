//! Output that is not UTF-8 is reported with the invalid bytes replaced.

use crate::common::*;

#[test]
fn invalid_bytes_become_replacement_characters() {
    let ws = Workspace::new(
        r#"
[[job]]
name = "binary"
sh = '''printf 'ok\377\376end'; printf '\377' >&2'''
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0);
    let job = run.job("binary");
    assert_eq!(job["stdout"], "ok\u{fffd}\u{fffd}end");
    assert_eq!(job["stderr"], "\u{fffd}");
}

//! Items that cannot be written to a pipeline's output are never lost
//! without a word: the pipeline fails and says how many were lost.

use crate::common::*;

#[test]
fn items_that_cannot_be_written_fail_the_pipeline_and_are_counted() {
    // /dev/full takes nothing (ENOSPC); 5000 items overflow any buffer.
    let ws = Workspace::new(
        r#"
[[pipeline]]
name = "p"
items = { sh = "seq 1 5000" }
output = { file = "/dev/full" }

[[pipeline.stage]]
name = "s"
cmd = ["cat"]
mode = "stream"
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 1, "stderr: {}", run.stderr());
    let job = run.job("p");
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("No space left on device"), "{error}");
    assert!(
        error.contains("items that left the last stage were lost"),
        "{error}"
    );
    assert!(std::fs::metadata("/dev/full").is_ok());
}

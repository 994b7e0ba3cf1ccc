//! A timeout of zero is no timeout, as for timeout(1) and GNU parallel: the
//! job runs to its end. A job can so lift a timeout set in `[defaults]`.

use crate::common::*;

use std::process::Stdio;

#[test]
fn a_zero_timeout_in_a_job_file_is_none() {
    let ws = Workspace::new(
        r#"
[defaults]
timeout = "100ms"

[[job]]
name = "zero"
sh = "sleep 0.5; echo done"
timeout = "0s"

[[job]]
name = "defaulted"
sh = "sleep 5; echo done"
"#,
    );
    let run = ws.run(&[]);
    let zero = run.job("zero");
    assert_eq!(zero["status"], "succeeded", "{zero}");
    assert_eq!(zero["stdout"], "done\n");
    // The default still applies where it is not lifted.
    assert_eq!(run.job("defaulted")["status"], "timed_out");
}

#[test]
fn exec_timeout_zero_is_none() {
    let out = drover()
        .args([
            "exec",
            "--timeout",
            "0",
            "--",
            "sh",
            "-c",
            "sleep 0.5; echo $0",
        ])
        .args([":::", "done"])
        .stdin(Stdio::null())
        .output()
        .expect("run drover exec");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "done\n");
}

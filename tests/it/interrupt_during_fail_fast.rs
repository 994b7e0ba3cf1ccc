//! Ctrl-C while a fail_fast stop is winding down is still an interrupt:
//! drover says so and exits 130, as for any first SIGINT.

use crate::common::*;
use std::time::Duration;

#[test]
fn sigint_during_a_fail_fast_stop_exits_130() {
    let ws = Workspace::new("");
    let seen_term = ws.path("term");
    std::fs::write(
        ws.jobs(),
        format!(
            "[run]\nfail_fast = true\n\n[[job]]\nname = \"stubborn\"\n\
             sh = \"trap 'touch {}' TERM; while :; do sleep 0.1; done\"\nkill_grace = \"2s\"\n\n\
             [[job]]\nname = \"boom\"\nsh = \"sleep 0.3; exit 1\"\n",
            seen_term.display()
        ),
    )
    .unwrap();
    let drover = ws.spawn(&[]);
    // fail_fast has sent its SIGTERM: the stop is under way.
    assert!(wait_until(Duration::from_secs(20), || seen_term.exists()));
    send_signal(drover.id(), "INT");
    let out = drover.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("SIGINT: stopping"), "{stderr}");
    let report = ws.report();
    assert_eq!(job(&report, "boom")["status"], "failed");
    assert_eq!(job(&report, "stubborn")["status"], "cancelled");
}

//! Programs named without a slash are found on the job's own PATH when the
//! job sets one, else on drover's.

use crate::common::*;
use std::os::unix::fs::PermissionsExt;

#[test]
fn a_job_setting_path_finds_its_programs_there() {
    let ws = Workspace::new(
        r#"
[[job]]
name = "own-path"
cmd = ["drover-test-greeter", "world"]
env = { PATH = "bin:/usr/bin:/bin" }

[[job]]
name = "inherited-path"
cmd = ["drover-test-greeter"]
"#,
    );
    let bin = ws.path("bin");
    std::fs::create_dir(&bin).unwrap();
    let script = bin.join("drover-test-greeter");
    std::fs::write(&script, "#!/bin/sh\necho \"hello $1\"\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The relative PATH entry is relative to the job's cwd (the job file's
    // folder), not to drover's working directory.
    let mut cmd = ws.run_cmd(&[]);
    cmd.current_dir("/");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report = ws.report();
    let own = job(&report, "own-path");
    assert_eq!(own["status"], "succeeded", "{own}");
    assert_eq!(own["stdout"], "hello world\n");
    let inherited = job(&report, "inherited-path");
    assert_eq!(
        inherited["status"], "spawn_failed",
        "not on drover's PATH: {inherited}"
    );
}

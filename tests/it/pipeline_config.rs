//! Bad `[[pipeline]]` tables fail before anything runs, with exit 2 and an
//! error naming the file, line, pipeline, key and the fix.

use crate::common::*;

fn check(toml: &str) -> (i32, String) {
    let ws = Workspace::new(toml);
    let out = drover().arg("check").arg(ws.jobs()).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn pipeline_errors_are_located_and_say_the_fix() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[[pipeline]]\nname = \"p\"\nitems = [\"a\"]\nqueue = 0\n[[pipeline.stage]]\nname = \"s\"\ncmd = [\"true\"]\n",
            &["jobs.toml:4:", "0 is not a queue size", "`queue = 64`", "p"],
        ),
        (
            "[[pipeline]]\nname = \"p\"\nitems = [\"a\"]\n[[pipeline.stage]]\nname = \"s\"\ncmd = [\"cat\"]\nmode = \"streem\"\n",
            &[
                "jobs.toml:7:",
                "not a stage mode",
                "did you mean \"stream\"?",
            ],
        ),
        (
            "[[pipeline]]\nname = \"p\"\nitems = [\"a\"]\n[[pipeline.stage]]\nname = \"s\"\nsh = \"cat {}\"\nmode = \"stream\"\n",
            &["jobs.toml:6:", "replacement string", "while read"],
        ),
        (
            "[[pipeline]]\nname = \"p\"\nitems = [\"a\"]\n[[pipeline.stage]]\nname = \"s\"\ncmd = [\"cat\"]\nmode = \"stream\"\ntimeout = \"1s\"\n",
            &[
                "jobs.toml:8:",
                "`timeout` applies to a process per item",
                "[[pipeline]]",
            ],
        ),
        (
            "[[pipeline]]\nname = \"p\"\nitems = { fil = \"x\" }\n[[pipeline.stage]]\nname = \"s\"\ncmd = [\"true\"]\n",
            &["jobs.toml:3:", "unknown key `fil`", "did you mean `file`?"],
        ),
        (
            "[[pipeline]]\nname = \"p\"\nitems = [\"a\"]\n",
            &["the pipeline has no stages", "[[pipeline.stage]]"],
        ),
        // GNU parallel's replacement strings drover cannot fill.
        (
            "[[pipeline]]\nname = \"p\"\nitems = [\"a\"]\n[[pipeline.stage]]\nname = \"s\"\nsh = \"echo {= s/a/b/ =}\"\n",
            &["jobs.toml:6:", "{= s/a/b/ =}", "perl", "sed"],
        ),
        (
            "[[pipeline]]\nname = \"p\"\nitems = [\"a\"]\n[[pipeline.stage]]\nname = \"s\"\ncmd = [\"echo\", \"{-1}\"]\n",
            &["jobs.toml:6:", "{-1}", "from the start"],
        ),
        (
            "[[pipeline]]\nname = \"p\"\nitems = [\"a\"]\n[[pipeline.stage]]\nname = \"s\"\ncmd = [\"true\"]\nworkrs = 2\n",
            &[
                "jobs.toml:7:",
                "unknown key `workrs`",
                "did you mean `workers`?",
            ],
        ),
        (
            "[[job]]\nname = \"j\"\ncmd = [\"cat\"]\nstdin = { from = \"p\" }\n[[pipeline]]\nname = \"p\"\nitems = [\"a\"]\n[[pipeline.stage]]\nname = \"s\"\ncmd = [\"true\"]\n",
            &["jobs.toml:4:", "`p` is a pipeline", "output = { file"],
        ),
        (
            "[[job]]\nname = \"p\"\ncmd = [\"true\"]\n[[pipeline]]\nname = \"p\"\nitems = [\"a\"]\n[[pipeline.stage]]\nname = \"s\"\ncmd = [\"true\"]\n",
            &["jobs.toml:5:", "the name `p` is used twice", "line 2"],
        ),
        (
            "[[job]]\nname = \"j\"\ncmd = [\"true\"]\nneeds = [\"p\"]\n[[pipeline]]\nname = \"p\"\nneeds = [\"j\"]\nitems = [\"a\"]\n[[pipeline.stage]]\nname = \"s\"\ncmd = [\"true\"]\n",
            &["cycle", "→"],
        ),
    ];
    for (toml, wanted) in cases {
        let (code, stderr) = check(toml);
        assert_eq!(code, 2, "for:\n{toml}\nstderr:\n{stderr}");
        for w in *wanted {
            assert!(
                stderr.contains(w),
                "missing {w:?} for:\n{toml}\nstderr:\n{stderr}"
            );
        }
    }
}

#[test]
fn check_prints_the_pipeline() {
    let ws = Workspace::new(
        "[[pipeline]]\nname = \"p\"\nitems = { sh = \"ls\" }\nqueue = 8\n[[pipeline.stage]]\nname = \"s\"\ncmd = [\"cat\"]\nmode = \"stream\"\nworkers = 3\n",
    );
    let out = drover().arg("check").arg(ws.jobs()).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("items = stdout lines of sh \"ls\"; queue = 8"),
        "{text}"
    );
    assert!(text.contains("stage 1 `s`: stream"), "{text}");
    assert!(text.contains("workers = 3"), "{text}");
}

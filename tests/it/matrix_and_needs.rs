//! Running expanded matrices and `needs`: dependants start only after what
//! they need has finished, dependants of an unsuccessful job are skipped
//! (transitively) while unrelated jobs run, the report keeps file order, and
//! placeholders fill every field they may appear in.

use crate::common::*;

use serde_json::Value;

/// Milliseconds since the Unix epoch of a report timestamp, which is
/// RFC 3339 in UTC with milliseconds: `2026-01-31T12:34:56.789Z`.
fn epoch_millis(ts: &str) -> i64 {
    let b = ts.as_bytes();
    assert!(
        b.len() == 24
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b'T'
            && b[13] == b':'
            && b[16] == b':'
            && b[19] == b'.'
            && b[23] == b'Z',
        "not an RFC 3339 UTC timestamp with milliseconds: {ts:?}"
    );
    let n = |r: std::ops::Range<usize>| -> i64 {
        ts[r]
            .parse()
            .unwrap_or_else(|_| panic!("bad number in {ts:?}"))
    };
    let (year, month, day) = (n(0..4), n(5..7), n(8..10));
    // Days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (((days * 24 + n(11..13)) * 60 + n(14..16)) * 60 + n(17..19)) * 1000 + n(20..23)
}

#[test]
fn timestamp_parser_agrees_with_known_dates() {
    assert_eq!(epoch_millis("1970-01-01T00:00:00.000Z"), 0);
    assert_eq!(epoch_millis("2000-03-01T00:00:00.001Z"), 951_868_800_001);
    assert_eq!(epoch_millis("2024-02-29T23:59:59.999Z"), 1_709_251_199_999);
}

/// When a job started, in ms since the epoch.
fn started_ms(job: &Value) -> i64 {
    epoch_millis(
        job["started_at"]
            .as_str()
            .unwrap_or_else(|| panic!("no started_at: {job:#}")),
    )
}

/// When a job finished, in ms since the epoch, rounded down.
fn finished_ms(job: &Value) -> i64 {
    let duration = job["duration_ms"]
        .as_i64()
        .unwrap_or_else(|| panic!("no duration_ms: {job:#}"));
    started_ms(job) + duration
}

/// `dependant` started no earlier than `needed` finished. `started_at` is
/// wall-clock time and `duration_ms` monotonic time, both rounded down to the
/// millisecond, so allow one millisecond; a dependant started too early would
/// be off by the needed job's whole run (hundreds of ms here).
fn assert_started_after(report: &Value, dependant: &str, needed: &str) {
    let (d, n) = (job(report, dependant), job(report, needed));
    assert!(
        started_ms(d) + 1 >= finished_ms(n),
        "`{dependant}` started at {} before `{needed}` finished ({} + {} ms)",
        d["started_at"],
        n["started_at"],
        n["duration_ms"]
    );
}

fn names(report: &Value) -> Vec<&str> {
    report["jobs"]
        .as_array()
        .expect("jobs array")
        .iter()
        .map(|j| j["name"].as_str().expect("job name"))
        .collect()
}

#[test]
fn a_job_starts_only_after_everything_it_needs_has_finished() {
    let ws = Workspace::new(
        r#"[[job]]
name = "slow"
sh = "sleep 0.6; touch slow.done"

[[job]]
name = "fast"
sh = "sleep 0.2; touch fast.done"

[[job]]
name = "after-both"
sh = "test -f slow.done && test -f fast.done && echo both done"
needs = ["slow", "fast"]

[[job]]
name = "after-fast"
sh = "test -f fast.done && echo fast done"
needs = ["fast"]
"#,
    );
    let run = ws.run(&["-q", "-j", "0"]);
    assert_eq!(
        run.code(),
        0,
        "stderr:\n{}\nreport: {:#}",
        run.stderr(),
        run.report()
    );
    let report = run.report();
    assert_started_after(report, "after-both", "slow");
    assert_started_after(report, "after-both", "fast");
    assert_started_after(report, "after-fast", "fast");
    assert_eq!(run.job("after-both")["stdout"], "both done\n");
    assert_eq!(run.job("after-fast")["stdout"], "fast done\n");
    // `slow` and `fast` need nothing, so they ran side by side.
    assert!(
        started_ms(run.job("slow")) < finished_ms(run.job("fast")),
        "`slow` and `fast` should run at the same time: {report:#}"
    );
}

#[test]
fn a_glob_need_waits_for_every_matrix_job() {
    let ws = Workspace::new(
        r#"[[job]]
name = "after-sleeps"
sh = "ls sleep-*.done | wc -l"
needs = ["sleep-*"]

[[job]]
name = "sleep-{n}"
sh = "sleep 0.{n}; touch sleep-{n}.done"
matrix = { n = [1, 4, 2] }
"#,
    );
    let run = ws.run(&["-q", "-j", "0"]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    let report = run.report();
    for needed in ["sleep-1", "sleep-4", "sleep-2"] {
        assert_started_after(report, "after-sleeps", needed);
    }
    assert_eq!(
        run.job("after-sleeps")["stdout"].as_str().map(str::trim),
        Some("3")
    );
}

#[test]
fn dependants_of_a_failed_job_are_skipped_transitively() {
    let ws = Workspace::new(
        r#"[[job]]
name = "bad"
sh = "exit 3"

[[job]]
name = "child"
sh = "touch child.ran"
needs = ["bad"]

[[job]]
name = "grandchild"
sh = "touch grandchild.ran"
needs = ["child"]

[[job]]
name = "good"
sh = "echo good"

[[job]]
name = "needs-good-and-bad"
sh = "touch mixed.ran"
needs = ["good", "bad"]

[[job]]
name = "needs-good"
sh = "echo after good"
needs = ["good"]

[[job]]
name = "other"
sh = "sleep 0.2; echo other"
"#,
    );
    let run = ws.run(&["-q"]);
    assert_eq!(run.code(), 1, "stderr:\n{}", run.stderr());

    let bad = run.job("bad");
    assert_eq!(bad["status"], "failed", "{bad:#}");
    assert_eq!(bad["exit_code"], 3);

    for (name, needed) in [
        ("child", "bad"),
        ("grandchild", "child"),
        ("needs-good-and-bad", "bad"),
    ] {
        let j = run.job(name);
        assert_eq!(j["status"], "skipped", "{j:#}");
        assert_eq!(j["attempts"], 0, "{j:#}");
        assert!(j["pid"].is_null(), "a skipped job has no pid: {j:#}");
        assert!(
            j["started_at"].is_null(),
            "a skipped job never started: {j:#}"
        );
        let error = j["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(&format!("`{needed}`")),
            "`{name}`'s error should name `{needed}`: {j:#}"
        );
    }
    for marker in ["child.ran", "grandchild.ran", "mixed.ran"] {
        assert!(
            !ws.path(marker).exists(),
            "a skipped job ran: {marker} exists"
        );
    }

    for (name, stdout) in [
        ("good", "good\n"),
        ("needs-good", "after good\n"),
        ("other", "other\n"),
    ] {
        let j = run.job(name);
        assert_eq!(j["status"], "succeeded", "{j:#}");
        assert_eq!(j["stdout"], stdout, "{j:#}");
    }

    let summary = &run.report()["summary"];
    assert_eq!(summary["total"], 7, "{summary:#}");
    assert_eq!(summary["succeeded"], 3, "{summary:#}");
    assert_eq!(summary["failed"], 1, "{summary:#}");
    assert_eq!(summary["skipped"], 3, "{summary:#}");
}

#[test]
fn dependants_of_a_timed_out_job_are_skipped() {
    let ws = Workspace::new(
        r#"[[job]]
name = "hang"
sh = "sleep 30"
timeout = "200ms"
kill_grace = "1s"

[[job]]
name = "after"
sh = "touch after.ran"
needs = ["hang"]
"#,
    );
    let run = ws.run(&["-q"]);
    assert_eq!(run.code(), 1, "stderr:\n{}", run.stderr());
    assert_eq!(run.job("hang")["status"], "timed_out");
    let after = run.job("after");
    assert_eq!(after["status"], "skipped", "{after:#}");
    assert_eq!(after["attempts"], 0, "{after:#}");
    assert!(
        after["error"]
            .as_str()
            .unwrap_or_default()
            .contains("`hang`"),
        "{after:#}"
    );
    assert!(!ws.path("after.ran").exists());
}

#[test]
fn the_report_lists_jobs_in_file_order_after_expansion() {
    // Finishing order differs from file order: `late` needs the last job,
    // and the matrix jobs sleep longest first.
    let ws = Workspace::new(
        r#"[[job]]
name = "late"
sh = "echo late"
needs = ["early"]

[[job]]
name = "m-{os}-{n}"
sh = "sleep 0.{n}"
matrix = { os = ["b", "a"], n = [3, 1] }

[[job]]
name = "dup-{v}"
sh = "echo {v}"
matrix = { v = ["x", "x"] }

[[job]]
name = "early"
sh = "echo early"
"#,
    );
    let run = ws.run(&["-q", "-j", "0"]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    assert_eq!(
        names(run.report()),
        [
            "late", "m-b-3", "m-b-1", "m-a-3", "m-a-1", "dup-x", "dup-x:2", "early"
        ]
    );
    assert_eq!(run.job("dup-x:2")["stdout"], "x\n");
}

#[test]
fn placeholders_fill_cmd_sh_env_cwd_and_stdin() {
    let ws = Workspace::new(
        r#"[[job]]
name = "argv-{v}"
cmd = ["sh", "-c", "printf 'arg=%s env=%s cwd=%s stdin=%s\n' \"$0\" \"$VAL\" \"$(basename \"$(pwd -P)\")\" \"$(cat)\"", "{v}"]
env = { VAL = "env-{v}" }
cwd = "dir-{v}"
stdin = "in-{v}"
matrix = { v = ["x", "y"] }

[[job]]
name = "shell-{v}-{n}"
sh = "echo sh {v} {n}"
matrix = { v = ["x", "y"], n = [1, 2] }

[[job]]
name = "file-{v}"
cmd = ["cat"]
stdin = { file = "in-{v}.txt" }
stdout = { file = "out-{v}.txt" }
matrix = { v = ["x", "y"] }

[[job]]
name = "src-{v}"
sh = "echo from {v}"
matrix = { v = ["x", "y"] }

[[job]]
name = "sink-{v}"
cmd = ["tr", "a-z", "A-Z"]
stdin = { from = "src-{v}" }
matrix = { v = ["x", "y"] }
"#,
    );
    for v in ["x", "y"] {
        std::fs::create_dir(ws.path(&format!("dir-{v}"))).expect("create cwd");
        std::fs::write(ws.path(&format!("in-{v}.txt")), format!("file {v}\n"))
            .expect("write stdin file");
    }
    let run = ws.run(&["-q"]);
    assert_eq!(
        run.code(),
        0,
        "stderr:\n{}\nreport: {:#}",
        run.stderr(),
        run.report()
    );
    for v in ["x", "y"] {
        assert_eq!(
            run.job(&format!("argv-{v}"))["stdout"],
            format!("arg={v} env=env-{v} cwd=dir-{v} stdin=in-{v}\n")
        );
        for n in [1, 2] {
            assert_eq!(
                run.job(&format!("shell-{v}-{n}"))["stdout"],
                format!("sh {v} {n}\n")
            );
        }
        let out =
            std::fs::read_to_string(ws.path(&format!("out-{v}.txt"))).expect("stdout file written");
        assert_eq!(out, format!("file {v}\n"));
        assert_eq!(
            run.job(&format!("sink-{v}"))["stdout"],
            format!("FROM {}\n", v.to_uppercase())
        );
    }
}

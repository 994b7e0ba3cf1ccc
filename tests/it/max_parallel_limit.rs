//! `max_parallel` bounds how many jobs run at once: measured from the
//! intervals the jobs themselves record, not from drover's own view.

use crate::common::*;

/// Six jobs that each record their start and end (ns) in `iv-{n}` around a
/// 300 ms sleep.
fn timed_jobs(run_section: &str) -> String {
    format!(
        r#"{run_section}

[[job]]
name = "timed-{{n}}"
sh = '''
echo "start $(date +%s%N)" > iv-{{n}}
sleep 0.3
echo "end $(date +%s%N)" >> iv-{{n}}
'''
matrix = {{ n = ["1", "2", "3", "4", "5", "6"] }}
"#
    )
}

/// The (start, end) interval each job recorded.
fn intervals(ws: &Workspace, count: usize) -> Vec<(u128, u128)> {
    (1..=count)
        .map(|n| {
            let text = std::fs::read_to_string(ws.path(&format!("iv-{n}")))
                .unwrap_or_else(|e| panic!("job {n} left no interval: {e}"));
            let stamp = |word: &str| -> u128 {
                text.lines()
                    .find_map(|l| l.strip_prefix(word))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or_else(|| panic!("no {word:?} in iv-{n}: {text:?}"))
            };
            (stamp("start "), stamp("end "))
        })
        .collect()
}

/// The largest number of intervals that overlap at one instant.
fn max_overlap(intervals: &[(u128, u128)]) -> usize {
    let mut events: Vec<(u128, i32)> = intervals
        .iter()
        .flat_map(|&(start, end)| [(start, 1), (end, -1)])
        .collect();
    // At equal times an end comes first: touching intervals do not overlap.
    events.sort();
    let (mut now, mut max) = (0i32, 0i32);
    for (_, delta) in events {
        now += delta;
        max = max.max(now);
    }
    max as usize
}

#[test]
fn max_parallel_two_never_runs_more_than_two() {
    let ws = Workspace::new(&timed_jobs("[run]\nmax_parallel = 2"));
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    assert_eq!(run.report()["summary"]["succeeded"], 6);
    let overlap = max_overlap(&intervals(&ws, 6));
    assert!(
        overlap <= 2,
        "{overlap} jobs ran at once with max_parallel = 2"
    );
    assert_eq!(overlap, 2, "max_parallel = 2 should run two jobs at once");
}

#[test]
fn max_parallel_zero_runs_every_job_at_once() {
    // Each job waits until all six have started; that only ends if all six
    // run at the same time (else a job gives up after ~20 s and fails).
    let ws = Workspace::new(
        r#"[run]
max_parallel = 0

[[job]]
name = "meet-{n}"
sh = '''
touch here-{n}
i=0
while [ "$(ls | grep -c '^here-')" -lt 6 ]; do
    i=$((i + 1))
    if [ "$i" -gt 400 ]; then echo "only $(ls | grep -c '^here-') started" >&2; exit 1; fi
    sleep 0.05
done
'''
matrix = { n = ["1", "2", "3", "4", "5", "6"] }
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    assert_eq!(run.report()["summary"]["succeeded"], 6);
}

#[test]
fn command_line_j1_overrides_the_file() {
    let ws = Workspace::new(&timed_jobs("[run]\nmax_parallel = 0"));
    let run = ws.run(&["-j", "1"]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    assert_eq!(run.report()["summary"]["succeeded"], 6);
    let overlap = max_overlap(&intervals(&ws, 6));
    assert_eq!(overlap, 1, "-j 1 should run one job at a time");
}

#[test]
fn command_line_j0_means_unlimited() {
    // The file allows one job at a time; `-j 0` lifts the limit, so three
    // jobs that wait for each other can all finish.
    let ws = Workspace::new(
        r#"[run]
max_parallel = 1

[[job]]
name = "meet-{n}"
sh = '''
touch here-{n}
i=0
while [ "$(ls | grep -c '^here-')" -lt 3 ]; do
    i=$((i + 1))
    if [ "$i" -gt 200 ]; then exit 1; fi
    sleep 0.05
done
'''
matrix = { n = ["1", "2", "3"] }
"#,
    );
    let run = ws.run(&["-j", "0"]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    assert_eq!(run.report()["summary"]["succeeded"], 3);
}

#[test]
fn a_limit_beyond_counting_is_no_limit() {
    let ws = Workspace::new(
        r#"
[run]
max_parallel = 9223372036854775807

[[job]]
name = "a"
cmd = ["true"]
"#,
    );
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let run = ws.run(&["-j", "18446744073709551615"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
}

#[test]
fn a_joined_unit_wider_than_the_limit_takes_every_slot() {
    // Two lone jobs, then three joined by pipes, at max_parallel = 2: the
    // three run together (a pipeline cannot run in parts) once both slots
    // are free, and nothing runs beside them.
    let stamp = |n: u32, middle: &str, secs: &str| {
        format!(
            r#"sh = '''
echo "start $(date +%s%N)" > iv-{n}
{middle}
sleep {secs}
echo "end $(date +%s%N)" >> iv-{n}
'''"#
        )
    };
    let ws = Workspace::new(&format!(
        r#"[run]
max_parallel = 2

[[job]]
name = "lone-1"
{}

[[job]]
name = "lone-2"
{}

[[job]]
name = "src"
{}

[[job]]
name = "mid"
stdin = {{ from = "src" }}
{}

[[job]]
name = "sink"
stdin = {{ from = "mid" }}
{}
"#,
        // Lone jobs of different lengths: a slot frees well before both.
        stamp(1, "", "0.1"),
        stamp(2, "", "0.6"),
        stamp(3, "echo through", "0.3"),
        stamp(4, "cat", "0.3"),
        stamp(5, "cat", "0.3"),
    ));
    let run = ws.run(&[]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr());
    assert_eq!(run.report()["summary"]["succeeded"], 5);
    assert_eq!(run.job("sink")["stdout"], "through\n");
    let iv = intervals(&ws, 5);
    assert_eq!(max_overlap(&iv[2..]), 3, "the joined jobs run together");
    let lone_end = iv[0].1.max(iv[1].1);
    let joined_start = iv[2..].iter().map(|i| i.0).min().unwrap();
    assert!(
        lone_end <= joined_start,
        "a joined job started while a lone job ran: {iv:?}"
    );
}

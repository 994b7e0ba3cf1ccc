//! The engine in-process: batches arriving while others run, cancelling a
//! job or a batch by id, fail_fast kept inside its batch, needs, two
//! subscribers, and a shutdown that leaves no process. Real processes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;

use super::*;

/// A plan from a job file's text; `{dir}` in it is the temp dir.
fn plan(dir: &Path, name: &str, toml: &str) -> Arc<Plan> {
    let file = dir.join(format!("{name}.toml"));
    let text = toml.replace("{dir}", &dir.display().to_string());
    std::fs::write(&file, text).unwrap();
    Arc::new(crate::config::load(&file).unwrap_or_else(|e| panic!("{e}")))
}

fn engine(slots: usize) -> Engine {
    Engine::start(Limits {
        slots: NonZeroUsize::new(slots),
        fds: crate::exec::fdlimit::FdBudget::of_process(),
    })
}

/// The next event, within a generous deadline.
async fn next(events: &mut UnboundedReceiver<Event>) -> Event {
    tokio::time::timeout(Duration::from_secs(30), events.recv())
        .await
        .expect("an event within 30 s")
        .expect("the engine is running")
}

/// Events until `batch` is done; its end.
async fn until_done(
    events: &mut UnboundedReceiver<Event>,
    batch: BatchId,
    seen: &mut Vec<Event>,
) -> Arc<BatchDone> {
    loop {
        let event = next(events).await;
        seen.push(event.clone());
        if let Event::BatchDone(done) = event
            && done.batch == batch
        {
            return done;
        }
    }
}

fn pid_in(file: &PathBuf) -> Option<i32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

async fn wait_for_pid(file: &PathBuf) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(pid) = pid_in(file) {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "{} never written",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether `pid` is gone (or a zombie no one here will reap).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|s| s == 'Z' || s == 'X'),
    }
}

async fn assert_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !gone(pid) {
        assert!(Instant::now() < deadline, "pid {pid} is still alive");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn status_of(done: &BatchDone, job: usize) -> Status {
    done.results[job].status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_submitted_while_another_runs_runs_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(4);
    let mut events = engine.subscribe(false).await.unwrap();
    let slow = plan(
        dir.path(),
        "slow",
        "[[job]]\nname = \"slow\"\nsh = \"echo $$ > {dir}/slow.pid; exec sleep 30\"\n",
    );
    let quick = plan(
        dir.path(),
        "quick",
        "[[job]]\nname = \"quick\"\ncmd = [\"true\"]\n",
    );
    let a = engine
        .submit_with(
            slow,
            SubmitOptions {
                cancel_jobs: true,
                ..SubmitOptions::default()
            },
        )
        .await
        .unwrap();
    let pid = wait_for_pid(&dir.path().join("slow.pid")).await;
    let b = engine.submit(quick).await.unwrap();
    assert_ne!(a.batch, b.batch);
    assert_ne!(a.jobs[0], b.jobs[0]);
    let mut seen = Vec::new();
    let done = until_done(&mut events, b.batch, &mut seen).await;
    assert_eq!(status_of(&done, 0), Status::Succeeded);
    assert!(!gone(pid), "the first batch's job still runs");
    // Cancelled by its id: the other batch was never touched.
    engine
        .cancel(Target::Job(a.jobs[0]), How::Graceful, StopReason::Cancelled)
        .await
        .unwrap();
    let done = until_done(&mut events, a.batch, &mut seen).await;
    assert_eq!(status_of(&done, 0), Status::Cancelled);
    assert_gone(pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_one_running_job_leaves_the_others_of_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(4);
    let mut events = engine.subscribe(true).await.unwrap();
    let p = plan(
        dir.path(),
        "p",
        "[[job]]\nname = \"long\"\nsh = \"echo $$ > {dir}/long.pid; exec sleep 30\"\n\n\
         [[job]]\nname = \"short\"\nsh = \"sleep 0.3\"\n\n\
         [[job]]\nname = \"after-long\"\ncmd = [\"true\"]\nneeds = [\"long\"]\n",
    );
    let s = engine
        .submit_with(
            p,
            SubmitOptions {
                cancel_jobs: true,
                ..SubmitOptions::default()
            },
        )
        .await
        .unwrap();
    let pid = wait_for_pid(&dir.path().join("long.pid")).await;
    engine
        .cancel(Target::Job(s.jobs[0]), How::Now, StopReason::Cancelled)
        .await
        .unwrap();
    let done = until_done(&mut events, s.batch, &mut Vec::new()).await;
    assert_eq!(status_of(&done, 0), Status::Cancelled);
    assert_eq!(status_of(&done, 1), Status::Succeeded);
    assert_eq!(status_of(&done, 2), Status::Skipped, "its dependant");
    assert!(done.stop.is_none(), "the batch itself was not stopped");
    assert_gone(pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_cancelled_before_it_starts_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    // One slot: `second` waits for `first`.
    let engine = engine(1);
    let mut events = engine.subscribe(false).await.unwrap();
    let p = plan(
        dir.path(),
        "p",
        "[[job]]\nname = \"first\"\nsh = \"echo $$ > {dir}/first.pid; sleep 0.5\"\n\n\
         [[job]]\nname = \"second\"\nsh = \"touch {dir}/second-ran\"\n",
    );
    let s = engine.submit(p).await.unwrap();
    wait_for_pid(&dir.path().join("first.pid")).await;
    engine
        .cancel(Target::Job(s.jobs[1]), How::Graceful, StopReason::Cancelled)
        .await
        .unwrap();
    let done = until_done(&mut events, s.batch, &mut Vec::new()).await;
    assert_eq!(status_of(&done, 0), Status::Succeeded);
    assert_eq!(status_of(&done, 1), Status::Cancelled);
    assert_eq!(done.results[1].pid, None);
    assert!(!dir.path().join("second-ran").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_batch_stops_its_jobs_only() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(8);
    let mut events = engine.subscribe(false).await.unwrap();
    let doomed = plan(
        dir.path(),
        "doomed",
        "[[job]]\nname = \"a\"\nsh = \"echo $$ > {dir}/a.pid; exec sleep 30\"\n\n\
         [[job]]\nname = \"b\"\nsh = \"echo $$ > {dir}/b.pid; exec sleep 30\"\n",
    );
    let kept = plan(
        dir.path(),
        "kept",
        "[[job]]\nname = \"k\"\nsh = \"sleep 0.5\"\n",
    );
    let d = engine.submit(doomed).await.unwrap();
    let k = engine.submit(kept).await.unwrap();
    let pids = [
        wait_for_pid(&dir.path().join("a.pid")).await,
        wait_for_pid(&dir.path().join("b.pid")).await,
    ];
    engine
        .cancel(Target::Batch(d.batch), How::Graceful, StopReason::Cancelled)
        .await
        .unwrap();
    let mut seen = Vec::new();
    let done = until_done(&mut events, d.batch, &mut seen).await;
    assert_eq!(done.stop, Some(StopReason::Cancelled));
    assert_eq!(status_of(&done, 0), Status::Cancelled);
    assert_eq!(status_of(&done, 1), Status::Cancelled);
    for pid in pids {
        assert_gone(pid).await;
    }
    let done = until_done(&mut events, k.batch, &mut seen).await;
    assert_eq!(status_of(&done, 0), Status::Succeeded);
    assert!(done.stop.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_fast_stops_its_own_batch_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(8);
    let mut events = engine.subscribe(false).await.unwrap();
    let failing = plan(
        dir.path(),
        "failing",
        "[run]\nfail_fast = true\n\n[[job]]\nname = \"sleeper\"\ncmd = [\"sleep\", \"30\"]\n\n\
         [[job]]\nname = \"boom\"\nsh = \"sleep 0.2; exit 1\"\n",
    );
    let other = plan(
        dir.path(),
        "other",
        "[[job]]\nname = \"o\"\nsh = \"sleep 0.6\"\n",
    );
    let f = engine.submit(failing).await.unwrap();
    let o = engine.submit(other).await.unwrap();
    let mut seen = Vec::new();
    let done = until_done(&mut events, f.batch, &mut seen).await;
    assert!(
        matches!(done.stop, Some(StopReason::FailFast { .. })),
        "{:?}",
        done.stop
    );
    assert_eq!(status_of(&done, 0), Status::Cancelled);
    assert_eq!(status_of(&done, 1), Status::Failed);
    let done = until_done(&mut events, o.batch, &mut seen).await;
    assert_eq!(status_of(&done, 0), Status::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_order_a_batch_and_a_failed_need_skips() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(8);
    let mut events = engine.subscribe(false).await.unwrap();
    let p = plan(
        dir.path(),
        "p",
        "[[job]]\nname = \"first\"\nsh = \"sleep 0.2; echo 1 >> {dir}/order\"\n\n\
         [[job]]\nname = \"then\"\nsh = \"echo 2 >> {dir}/order\"\nneeds = [\"first\"]\n\n\
         [[job]]\nname = \"bad\"\nsh = \"exit 3\"\n\n\
         [[job]]\nname = \"never\"\nsh = \"touch {dir}/never\"\nneeds = [\"bad\"]\n",
    );
    let s = engine.submit(p).await.unwrap();
    let mut seen = Vec::new();
    let done = until_done(&mut events, s.batch, &mut seen).await;
    let order = std::fs::read_to_string(dir.path().join("order")).unwrap();
    assert_eq!(order, "1\n2\n");
    assert_eq!(status_of(&done, 3), Status::Skipped);
    assert!(!dir.path().join("never").exists());
    // Every job finished exactly once, before its batch was done.
    let finished: Vec<JobId> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Finished { job, .. } => Some(*job),
            _ => None,
        })
        .collect();
    let mut sorted = finished.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, s.jobs);
    assert_eq!(finished.len(), s.jobs.len());
}

/// An event as a comparable line.
fn describe(event: &Event) -> String {
    match event {
        Event::Accepted { batch, jobs } => format!("accepted {batch} {jobs:?}"),
        Event::Started { job, pid, .. } => format!("started {job} {pid}"),
        Event::PipelineStarted { job, .. } => format!("pipeline {job}"),
        Event::Retrying { job, attempt, .. } => format!("retrying {job} {attempt}"),
        Event::Finished { job, result } => format!("finished {job} {:?}", result.status),
        Event::Stopping { batch, reason, .. } => format!("stopping {batch} {reason:?}"),
        Event::BatchDone(done) => format!("done {}", done.batch),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_subscribers_see_every_event_in_the_same_order() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(3);
    let mut one = engine.subscribe(true).await.unwrap();
    let mut two = engine.subscribe(true).await.unwrap();
    let p = plan(
        dir.path(),
        "p",
        "[[job]]\nname = \"j-{n}\"\nsh = \"exit {n}\"\nmatrix = { n = [\"0\", \"1\", \"0\", \"2\", \"0\"] }\n\n\
         [[job]]\nname = \"retry\"\nsh = \"exit 1\"\nretries = 1\n",
    );
    let s = engine.submit(p).await.unwrap();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    until_done(&mut one, s.batch, &mut a).await;
    until_done(&mut two, s.batch, &mut b).await;
    let a: Vec<String> = a.iter().map(describe).collect();
    let b: Vec<String> = b.iter().map(describe).collect();
    assert_eq!(a, b);
    assert_eq!(a.iter().filter(|e| e.starts_with("started")).count(), 7);
    assert_eq!(a.iter().filter(|e| e.starts_with("retrying")).count(), 1);
    assert_eq!(a.iter().filter(|e| e.starts_with("finished")).count(), 6);
    assert!(a[0].starts_with("accepted"), "{a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_jobs_running_leaves_no_process() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(8);
    let mut events = engine.subscribe(false).await.unwrap();
    let p = plan(
        dir.path(),
        "p",
        "[[job]]\nname = \"s-{n}\"\nsh = \"echo $$ > {dir}/{n}.pid; exec sleep 30\"\n\
         matrix = { n = [\"1\", \"2\", \"3\"] }\n",
    );
    let s = engine.submit(p).await.unwrap();
    let mut pids = Vec::new();
    for n in 1..=3 {
        pids.push(wait_for_pid(&dir.path().join(format!("{n}.pid"))).await);
    }
    tokio::time::timeout(Duration::from_secs(30), engine.shutdown(How::Graceful))
        .await
        .expect("shutdown within 30 s")
        .unwrap();
    for pid in pids {
        assert!(gone(pid), "pid {pid} outlived the shutdown");
    }
    let done = until_done(&mut events, s.batch, &mut Vec::new()).await;
    assert_eq!(done.stop, Some(StopReason::Shutdown));
    assert!(done.results.iter().all(|r| r.status == Status::Cancelled));
    // Gone: new work is refused.
    assert!(
        engine
            .submit(plan(
                dir.path(),
                "late",
                "[[job]]\nname = \"x\"\ncmd = [\"true\"]\n"
            ))
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_shutdown_kills_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(4);
    let p = plan(
        dir.path(),
        "p",
        "[[job]]\nname = \"stubborn\"\nsh = \"trap '' TERM; echo $$ > {dir}/s.pid; while :; do sleep 0.1; done\"\nkill_grace = \"60s\"\n",
    );
    engine.submit(p).await.unwrap();
    let pid = wait_for_pid(&dir.path().join("s.pid")).await;
    let graceful = tokio::spawn({
        let engine = engine.clone();
        async move { engine.shutdown(How::Graceful).await }
    });
    // The graceful one waits out the 60 s grace; the second does not.
    tokio::time::timeout(Duration::from_secs(20), engine.shutdown(How::Now))
        .await
        .expect("the second shutdown kills at once")
        .unwrap();
    graceful.await.unwrap().unwrap();
    assert_gone(pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_cancelled_by_id_is_no_failure_of_a_fail_fast_batch() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(1);
    let mut events = engine.subscribe(false).await.unwrap();
    let p = plan(
        dir.path(),
        "p",
        "[run]\nfail_fast = true\n\n[[job]]\nname = \"a\"\nsh = \"echo $$ > {dir}/a.pid; sleep 0.5\"\n\n\
         [[job]]\nname = \"b\"\ncmd = [\"true\"]\n\n[[job]]\nname = \"c\"\ncmd = [\"true\"]\n",
    );
    let s = engine.submit(p).await.unwrap();
    wait_for_pid(&dir.path().join("a.pid")).await;
    engine
        .cancel(Target::Job(s.jobs[1]), How::Graceful, StopReason::Cancelled)
        .await
        .unwrap();
    let done = until_done(&mut events, s.batch, &mut Vec::new()).await;
    assert!(done.stop.is_none(), "{:?}", done.stop);
    assert_eq!(status_of(&done, 0), Status::Succeeded);
    assert_eq!(status_of(&done, 1), Status::Cancelled);
    assert_eq!(status_of(&done, 2), Status::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_batch_ends_without_waiting_for_another_batchs_unit() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(3);
    let mut events = engine.subscribe(false).await.unwrap();
    let long = plan(
        dir.path(),
        "long",
        "[[job]]\nname = \"x\"\nsh = \"echo $$ > {dir}/x.pid; exec sleep 30\"\n",
    );
    let failing = plan(
        dir.path(),
        "failing",
        "[run]\nfail_fast = true\n\n[[job]]\nname = \"a0\"\nsh = \"sleep 1; exit 1\"\n\n\
         [[job]]\nname = \"a1\"\nsh = \"sleep 0.3\"\n\n\
         [[job]]\nname = \"a2\"\ncmd = [\"true\"]\nneeds = [\"a1\"]\n",
    );
    // Three jobs joined by pipes: one unit that needs every slot.
    let wide = plan(
        dir.path(),
        "wide",
        "[[job]]\nname = \"p1\"\nsh = \"echo x\"\n\n[[job]]\nname = \"p2\"\ncmd = [\"cat\"]\nstdin = { from = \"p1\" }\n\n\
         [[job]]\nname = \"p3\"\ncmd = [\"cat\"]\nstdin = { from = \"p2\" }\n",
    );
    let x = engine.submit(long).await.unwrap();
    wait_for_pid(&dir.path().join("x.pid")).await;
    let started = Instant::now();
    let a = engine.submit(failing).await.unwrap();
    let w = engine.submit(wide).await.unwrap();
    let mut seen = Vec::new();
    let done = until_done(&mut events, a.batch, &mut seen).await;
    assert!(matches!(done.stop, Some(StopReason::FailFast { .. })));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the stopped batch waited for the wide unit: {:?}",
        started.elapsed()
    );
    assert_eq!(status_of(&done, 2), Status::Skipped);
    engine
        .cancel(Target::Batch(x.batch), How::Now, StopReason::Cancelled)
        .await
        .unwrap();
    let done = until_done(&mut events, w.batch, &mut seen).await;
    assert!(done.results.iter().all(|r| r.status == Status::Succeeded));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_sharing_a_control_stop_together() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(0);
    let mut events = engine.subscribe(false).await.unwrap();
    let ctl = Control::default();
    let shared = || SubmitOptions {
        control: Some(ctl.clone()),
        ..SubmitOptions::default()
    };
    let mut submitted = Vec::new();
    let mut pids = Vec::new();
    for n in 1..=2 {
        let p = plan(
            dir.path(),
            &format!("p{n}"),
            &format!("[[job]]\nname = \"s\"\nsh = \"echo $$ > {{dir}}/{n}.pid; exec sleep 30\"\n"),
        );
        submitted.push(engine.submit_with(p, shared()).await.unwrap());
        pids.push(wait_for_pid(&dir.path().join(format!("{n}.pid"))).await);
    }
    // One cancel, of the first batch: the second shares its cancellation.
    engine
        .cancel(
            Target::Batch(submitted[0].batch),
            How::Graceful,
            StopReason::Cancelled,
        )
        .await
        .unwrap();
    let mut ended = Vec::new();
    while ended.len() < submitted.len() {
        if let Event::BatchDone(done) = next(&mut events).await {
            assert_eq!(status_of(&done, 0), Status::Cancelled);
            ended.push(done.batch);
        }
    }
    for pid in pids {
        assert_gone(pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeping_sends_lines_and_the_started_event_carries_the_stdout_spool() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(0);
    let mut events = engine.subscribe(false).await.unwrap();
    let mut starts = engine.subscribe(true).await.unwrap();

    // Lines, to the sink, under the number given.
    let (tx, mut lines) = tokio::sync::mpsc::channel(8);
    let keep = |stderr| {
        crate::exec::capture::Keep::Lines(crate::exec::capture::LineSink {
            job: 42,
            stderr,
            tx: tx.clone(),
        })
    };
    let p = plan(
        dir.path(),
        "lines",
        "[[job]]\nname = \"l\"\nsh = \"echo out; echo err >&2\"\n",
    );
    let options = SubmitOptions {
        keeping: Some(Keeping {
            keep: (keep(false), keep(true)),
        }),
        ..SubmitOptions::default()
    };
    let s = engine.submit_with(p, options).await.unwrap();
    let done = until_done(&mut events, s.batch, &mut Vec::new()).await;
    assert_eq!(status_of(&done, 0), Status::Succeeded);
    drop(tx);
    let mut got = Vec::new();
    while let Some(line) = lines.recv().await {
        got.push(line);
    }
    got.sort();
    assert_eq!(
        got,
        vec![
            (42, false, b"out\n".to_vec()),
            (42, true, b"err\n".to_vec())
        ]
    );

    // Its output was piped, not spooled: no spool to follow.
    let started = next_start(&mut starts).await;
    assert!(matches!(started, (job, None) if job == s.jobs[0]));

    // A spooled stdout: the started event hands it over, and following it
    // reads what the job writes while it runs.
    let mut p = (*plan(
        dir.path(),
        "follow",
        "[[job]]\nname = \"f\"\nsh = \"echo hi; exec sleep 30\"\n",
    ))
    .clone();
    p.jobs[0].stdout = crate::plan::OutputSpec::Spooled;
    let options = SubmitOptions {
        cancel_jobs: true,
        ..SubmitOptions::default()
    };
    let s = engine.submit_with(Arc::new(p), options).await.unwrap();
    let (job, spool) = next_start(&mut starts).await;
    assert_eq!(job, s.jobs[0]);
    let handle = spool
        .expect("a spooled job's start carries its spool")
        .follow()
        .expect("a running job's spool can be followed");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // At offset 0: the job's writes move the file's shared offset.
        let mut buf = [0u8; 16];
        let n = std::os::unix::fs::FileExt::read_at(&handle, &mut buf, 0).unwrap();
        let got = &buf[..n];
        if got == b"hi\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the job's output never reached its spool: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    engine
        .cancel(Target::Job(s.jobs[0]), How::Now, StopReason::Cancelled)
        .await
        .unwrap();
    let done = until_done(&mut events, s.batch, &mut Vec::new()).await;
    assert_eq!(status_of(&done, 0), Status::Cancelled);
}

/// The next start a subscriber hears of: the job and its stdout spool.
async fn next_start(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
) -> (JobId, Option<Arc<crate::exec::spool::Spool>>) {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("no start within 30 s")
            .expect("the engine is gone");
        if let Event::Started { job, stdout, .. } = event {
            return (job, stdout);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_hold_nothing_more_starts_and_a_shutdown_skips_what_waits() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(1);
    let mut events = engine.subscribe(false).await.unwrap();
    let go = dir.path().join("go");
    let first = plan(
        dir.path(),
        "first",
        &format!(
            "[[job]]\nname = \"a\"\nsh = \"echo $$ > {d}/a.pid; while [ ! -e {g} ]; do sleep 0.01; done\"\n",
            d = dir.path().display(),
            g = go.display()
        ),
    );
    let waiting = plan(
        dir.path(),
        "waiting",
        &format!(
            "[[job]]\nname = \"b\"\nsh = \"touch {}/b-ran\"\n",
            dir.path().display()
        ),
    );
    let a = engine.submit(first).await.unwrap();
    let b = engine.submit(waiting).await.unwrap();
    wait_for_pid(&dir.path().join("a.pid")).await;
    engine.hold().await.unwrap();
    std::fs::write(&go, "").unwrap();
    let done = until_done(&mut events, a.batch, &mut Vec::new()).await;
    assert_eq!(
        done.results[0].status,
        Status::Succeeded,
        "what ran goes on"
    );
    // Its slot is free, and b still does not start.
    let quiet = tokio::time::timeout(Duration::from_millis(300), next(&mut events)).await;
    assert!(quiet.is_err(), "an event while held: {quiet:?}");
    tokio::time::timeout(Duration::from_secs(30), engine.shutdown(How::Graceful))
        .await
        .expect("shutdown within 30 s")
        .unwrap();
    let done = until_done(&mut events, b.batch, &mut Vec::new()).await;
    assert!(done.results[0].pid.is_none(), "{:?}", done.results[0]);
    assert!(!dir.path().join("b-ran").exists());
}

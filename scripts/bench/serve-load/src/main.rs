//! serve-load: the load generator of `scripts/bench-serve.sh`.
//!
//!   serve-load http BASE_URL [--token-file FILE] --jobs N --clients C --body JSON
//!       N x `POST BASE_URL/v1/jobs` with BODY from C clients, each holding
//!       one keep-alive connection and submitting its share one request after
//!       the other. Then waits until no job is queued or running (`GET
//!       /v1/jobs?status=...&limit=1`) and reads every job (pages of 1000) for
//!       its times. The token: --token-file, else $DROVER_TOKEN, else none.
//!
//!   serve-load pueue --pueue BIN --config FILE --jobs N --clients C -- CMD...
//!       N x `BIN -c FILE add -- CMD...` from C clients (one process at a time
//!       each; the environment cleared but PATH and HOME, as pueue stores it
//!       in every task), then `BIN -c FILE wait -q` and `BIN -c FILE status
//!       --json` for the tasks' times.
//!
//! Common options: --timeout SECS (the wait for every job to end, default
//! 900), --poll-ms MS (how often `http` asks, default 50).
//!
//! Prints one JSON object on a line to stdout: accepted, rejected (and
//! rejected_by: code -> count), errors (connections lost, spawns failed),
//! seconds (first submit to last answer), accepted_per_s, p50_ms, p99_ms,
//! p999_ms, max_ms (latency of each accepted submit, request to the end of
//! the answer, or `pueue add` spawn to exit), start_delay_p50_ms,
//! start_delay_p99_ms (the job's start minus its submission, as the server
//! recorded them), completed, completed_per_s (ended jobs / first submit to
//! the last end), end_seconds, statuses (status -> count), cpu_s and
//! children_cpu_s (this program's user + system seconds, and those of the
//! processes it waited for: the `pueue add`s). A summary goes to stderr.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{header, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, Error>;

const USAGE: &str = "usage:
  serve-load http BASE_URL [--token-file FILE] --jobs N --clients C --body JSON [--timeout S] [--poll-ms MS]
  serve-load pueue --pueue BIN --config FILE --jobs N --clients C [--timeout S] -- CMD...";

#[derive(Clone)]
struct Opts {
    mode: String,
    url: String,
    token: Option<String>,
    jobs: usize,
    clients: usize,
    body: String,
    timeout: Duration,
    poll: Duration,
    pueue: PathBuf,
    config: PathBuf,
    cmd: Vec<String>,
}

fn parse_args() -> Result<Opts> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().ok_or("no mode")?;
    if mode != "http" && mode != "pueue" {
        return Err(format!("unknown mode {mode:?}").into());
    }
    let mut o = Opts {
        mode,
        url: String::new(),
        token: std::env::var("DROVER_TOKEN").ok().filter(|t| !t.is_empty()),
        jobs: 10_000,
        clients: 32,
        body: r#"{"cmd": ["true"]}"#.into(),
        timeout: Duration::from_secs(900),
        poll: Duration::from_millis(50),
        pueue: PathBuf::new(),
        config: PathBuf::new(),
        cmd: Vec::new(),
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--token-file" => {
                let text = std::fs::read_to_string(value()?)?;
                o.token = Some(text.trim().to_owned());
            }
            "--jobs" => o.jobs = value()?.parse()?,
            "--clients" => o.clients = value()?.parse()?,
            "--body" => o.body = value()?,
            "--timeout" => o.timeout = Duration::from_secs_f64(value()?.parse()?),
            "--poll-ms" => o.poll = Duration::from_millis(value()?.parse()?),
            "--pueue" => o.pueue = value()?.into(),
            "--config" => o.config = value()?.into(),
            "--" => {
                o.cmd = args.by_ref().collect();
                break;
            }
            _ if !arg.starts_with('-') && o.url.is_empty() => o.url = arg,
            _ => return Err(format!("unknown argument {arg:?}").into()),
        }
    }
    if o.jobs == 0 || o.clients == 0 {
        return Err("--jobs and --clients must be at least 1".into());
    }
    if o.mode == "http" && o.url.is_empty() {
        return Err("http needs BASE_URL".into());
    }
    if o.mode == "pueue"
        && (o.pueue.as_os_str().is_empty() || o.config.as_os_str().is_empty() || o.cmd.is_empty())
    {
        return Err("pueue needs --pueue, --config and -- CMD".into());
    }
    Ok(o)
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("serve-load: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // One thread: the server under test has the rest of the machine.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let result = rt.block_on(async {
        if opts.mode == "http" {
            run_http(&opts).await
        } else {
            run_pueue(&opts).await
        }
    });
    match result {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("serve-load: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---- what every client hands back ----------------------------------------------

#[derive(Default)]
struct Tally {
    /// Latency of each accepted submit.
    latencies: Vec<Duration>,
    /// Ids of the accepted jobs (http).
    ids: Vec<i64>,
    rejected: BTreeMap<String, u64>,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.ids.extend(other.ids);
        for (k, v) in other.rejected {
            *self.rejected.entry(k).or_default() += v;
        }
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// A job's times, in Unix milliseconds.
struct Ended {
    submitted: f64,
    started: Option<f64>,
    finished: Option<f64>,
    status: String,
}

/// The share of `jobs` of client `i` of `clients`.
fn share(jobs: usize, clients: usize, i: usize) -> usize {
    jobs / clients + usize::from(i < jobs % clients)
}

fn unix_ms(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        * 1000.0
}

// ---- http ------------------------------------------------------------------------

struct Http {
    /// host:port to connect to.
    addr: String,
    /// The path prefix of BASE_URL (no trailing slash).
    prefix: String,
    auth: Option<String>,
}

type Sender = SendRequest<Full<Bytes>>;

impl Http {
    fn new(url: &str, token: Option<&str>) -> Result<Http> {
        let rest = url
            .strip_prefix("http://")
            .ok_or("BASE_URL must start with http://")?;
        let (addr, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_end_matches('/');
        Ok(Http {
            addr: addr.to_owned(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("/{prefix}")
            },
            auth: token.map(|t| format!("Bearer {t}")),
        })
    }

    async fn connect(&self) -> Result<Sender> {
        let stream = TcpStream::connect(&self.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    fn request(&self, method: Method, path: &str, body: Bytes) -> Request<Full<Bytes>> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.prefix))
            .header(header::HOST, &self.addr);
        if !body.is_empty() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(auth) = &self.auth {
            req = req.header(header::AUTHORIZATION, auth);
        }
        req.body(Full::new(body)).expect("a valid request")
    }

    /// One request on `sender`: the status and the whole body.
    async fn call(
        &self,
        sender: &mut Sender,
        req: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes)> {
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    async fn get_json(&self, sender: &mut Sender, path: &str) -> Result<Value> {
        let (status, body) = self
            .call(sender, self.request(Method::GET, path, Bytes::new()))
            .await?;
        if status != StatusCode::OK {
            return Err(format!("GET {path}: {status}: {}", String::from_utf8_lossy(&body)).into());
        }
        Ok(serde_json::from_slice(&body)?)
    }
}

async fn http_client(http: Arc<Http>, n: usize, body: Bytes, go: Arc<Barrier>) -> Result<Tally> {
    let mut sender = http.connect().await;
    go.wait().await;
    let mut tally = Tally::default();
    for _ in 0..n {
        let s = match &mut sender {
            Ok(s) => s,
            Err(_) => {
                // Lost: a new connection, and this job counted as an error.
                sender = http.connect().await;
                tally.errors += 1;
                continue;
            }
        };
        let req = http.request(Method::POST, "/v1/jobs", body.clone());
        let t0 = Instant::now();
        match http.call(s, req).await {
            Ok((StatusCode::CREATED, answer)) => {
                tally.latencies.push(t0.elapsed());
                let id = serde_json::from_slice::<Value>(&answer)
                    .ok()
                    .and_then(|v| v["id"].as_i64())
                    .ok_or("a 201 without an id")?;
                tally.ids.push(id);
            }
            Ok((status, answer)) => {
                *tally
                    .rejected
                    .entry(status.as_u16().to_string())
                    .or_default() += 1;
                if tally.first_error.is_none() {
                    tally.first_error = Some(format!(
                        "{status}: {}",
                        String::from_utf8_lossy(&answer).trim()
                    ));
                }
            }
            Err(e) => {
                tally.errors += 1;
                if tally.first_error.is_none() {
                    tally.first_error = Some(e.to_string());
                }
                sender = http.connect().await;
            }
        }
    }
    Ok(tally)
}

async fn run_http(o: &Opts) -> Result<Value> {
    let http = Arc::new(Http::new(&o.url, o.token.as_deref())?);
    let body = Bytes::from(o.body.clone());
    let go = Arc::new(Barrier::new(o.clients + 1));
    let tasks: Vec<_> = (0..o.clients)
        .map(|i| {
            tokio::spawn(http_client(
                http.clone(),
                share(o.jobs, o.clients, i),
                body.clone(),
                go.clone(),
            ))
        })
        .collect();
    go.wait().await;
    let (t0, wall0) = (Instant::now(), SystemTime::now());
    let mut tally = Tally::default();
    for t in tasks {
        tally.merge(t.await??);
    }
    let seconds = t0.elapsed().as_secs_f64();

    // Every accepted job ended?
    let mut poller = http.connect().await?;
    let deadline = Instant::now() + o.timeout;
    loop {
        let mut live = 0;
        for status in ["queued", "running"] {
            let page = http
                .get_json(&mut poller, &format!("/v1/jobs?status={status}&limit=1"))
                .await?;
            live += page["jobs"].as_array().map_or(0, Vec::len);
        }
        if live == 0 {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("jobs still queued or running after {:?}", o.timeout).into());
        }
        tokio::time::sleep(o.poll).await;
    }

    // Every job's times.
    let ours: HashSet<i64> = tally.ids.iter().copied().collect();
    let mut ended = Vec::with_capacity(ours.len());
    let mut after: Option<i64> = None;
    loop {
        let path = match after {
            Some(a) => format!("/v1/jobs?limit=1000&after={a}"),
            None => "/v1/jobs?limit=1000".to_owned(),
        };
        let page = http.get_json(&mut poller, &path).await?;
        for job in page["jobs"].as_array().ok_or("a page without jobs")? {
            if !job["id"].as_i64().is_some_and(|id| ours.contains(&id)) {
                continue;
            }
            let time = |key: &str| job[key].as_str().and_then(parse_time);
            ended.push(Ended {
                submitted: time("submitted_at").ok_or("a job without submitted_at")?,
                started: time("started_at"),
                finished: time("finished_at"),
                status: job["status"].as_str().unwrap_or("?").to_owned(),
            });
        }
        after = page["next"].as_i64();
        if after.is_none() {
            break;
        }
    }
    if ended.len() != ours.len() {
        return Err(format!(
            "{} jobs accepted, {} found in GET /v1/jobs",
            ours.len(),
            ended.len()
        )
        .into());
    }
    Ok(report(o, tally, seconds, unix_ms(wall0), &ended))
}

// ---- pueue -----------------------------------------------------------------------

async fn pueue_client(o: Arc<Opts>, n: usize, go: Arc<Barrier>) -> Result<Tally> {
    go.wait().await;
    let mut tally = Tally::default();
    for _ in 0..n {
        let mut cmd = pueue_cmd(&o);
        cmd.arg("add").arg("--").args(&o.cmd);
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let t0 = Instant::now();
        match cmd.output().await {
            Ok(out) if out.status.success() => tally.latencies.push(t0.elapsed()),
            Ok(out) => {
                let code = out
                    .status
                    .code()
                    .map_or_else(|| "signal".to_owned(), |c| format!("exit {c}"));
                *tally.rejected.entry(code).or_default() += 1;
                if tally.first_error.is_none() {
                    tally.first_error = Some(String::from_utf8_lossy(&out.stderr).trim().into());
                }
            }
            Err(e) => {
                tally.errors += 1;
                if tally.first_error.is_none() {
                    tally.first_error = Some(e.to_string());
                }
            }
        }
    }
    Ok(tally)
}

fn pueue_cmd(o: &Opts) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(&o.pueue);
    // pueue stores the client's environment in every task, and writes its
    // whole state on each change: a small one keeps that from dominating.
    cmd.env_clear();
    for key in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    cmd.arg("-c").arg(&o.config);
    cmd
}

async fn run_pueue(o: &Opts) -> Result<Value> {
    let shared = Arc::new(o.clone());
    let go = Arc::new(Barrier::new(o.clients + 1));
    let tasks: Vec<_> = (0..o.clients)
        .map(|i| {
            tokio::spawn(pueue_client(
                shared.clone(),
                share(o.jobs, o.clients, i),
                go.clone(),
            ))
        })
        .collect();
    go.wait().await;
    let (t0, wall0) = (Instant::now(), SystemTime::now());
    let mut tally = Tally::default();
    for t in tasks {
        tally.merge(t.await??);
    }
    let seconds = t0.elapsed().as_secs_f64();

    let mut wait = pueue_cmd(o);
    wait.args(["wait", "-q"])
        .stdout(Stdio::null())
        .kill_on_drop(true);
    let waited = tokio::time::timeout(o.timeout, wait.status())
        .await
        .map_err(|_| format!("pueue tasks still live after {:?}", o.timeout))??;
    if !waited.success() {
        return Err(format!("pueue wait: {waited}").into());
    }
    let mut status = pueue_cmd(o);
    status.args(["status", "--json"]);
    let out = status.output().await?;
    if !out.status.success() {
        return Err(format!(
            "pueue status --json: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let state: Value = serde_json::from_slice(&out.stdout)?;
    let mut ended = Vec::new();
    for task in state["tasks"]
        .as_object()
        .ok_or("pueue status --json without tasks")?
        .values()
    {
        // {"Done": {"enqueued_at", "start", "end", "result"}}, or another state.
        let (state_name, fields) = task["status"]
            .as_object()
            .and_then(|m| m.iter().next())
            .ok_or("a task without status")?;
        let time = |key: &str| fields[key].as_str().and_then(parse_time);
        let status = match &fields["result"] {
            Value::String(s) => s.clone(),
            Value::Object(m) => m.keys().next().cloned().unwrap_or_default(),
            _ => state_name.clone(),
        };
        ended.push(Ended {
            submitted: time("enqueued_at")
                .or_else(|| task["created_at"].as_str().and_then(parse_time))
                .ok_or("a task without enqueued_at")?,
            started: time("start"),
            finished: time("end"),
            status,
        });
    }
    Ok(report(o, tally, seconds, unix_ms(wall0), &ended))
}

// ---- the report --------------------------------------------------------------------

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn round3(v: Option<f64>) -> Value {
    v.map_or(Value::Null, |v| json!((v * 1000.0).round() / 1000.0))
}

fn report(o: &Opts, tally: Tally, seconds: f64, first_submit_ms: f64, ended: &[Ended]) -> Value {
    let mut lat: Vec<f64> = tally
        .latencies
        .iter()
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    lat.sort_by(f64::total_cmp);
    let mut delays: Vec<f64> = ended
        .iter()
        .filter_map(|e| e.started.map(|s| s - e.submitted))
        .collect();
    delays.sort_by(f64::total_cmp);
    let completed = ended.iter().filter(|e| e.finished.is_some()).count();
    let last_end = ended
        .iter()
        .filter_map(|e| e.finished)
        .fold(f64::NAN, f64::max);
    let end_seconds = (last_end - first_submit_ms) / 1000.0;
    let mut statuses = BTreeMap::<&str, u64>::new();
    for e in ended {
        *statuses.entry(&e.status).or_default() += 1;
    }
    let own_cpu = cpu_seconds();
    let accepted = tally.latencies.len();
    let rejected: u64 = tally.rejected.values().sum();
    let per_s = |n: usize, s: f64| (s > 0.0 && s.is_finite()).then(|| n as f64 / s);
    let r = json!({
        "mode": o.mode,
        "jobs": o.jobs,
        "clients": o.clients,
        "accepted": accepted,
        "rejected": rejected,
        "rejected_by": tally.rejected,
        "errors": tally.errors,
        "first_error": tally.first_error,
        "seconds": round3(Some(seconds)),
        "accepted_per_s": round3(per_s(accepted, seconds)),
        "p50_ms": round3(pct(&lat, 0.50)),
        "p99_ms": round3(pct(&lat, 0.99)),
        "p999_ms": round3(pct(&lat, 0.999)),
        "max_ms": round3(lat.last().copied()),
        "start_delay_p50_ms": round3(pct(&delays, 0.50)),
        "start_delay_p99_ms": round3(pct(&delays, 0.99)),
        "completed": completed,
        "end_seconds": round3(end_seconds.is_finite().then_some(end_seconds)),
        "completed_per_s": round3(per_s(completed, end_seconds)),
        "statuses": statuses,
        "cpu_s": round3(own_cpu.map(|c| c.0)),
        "children_cpu_s": round3(own_cpu.map(|c| c.1)),
    });
    let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    eprintln!(
        "serve-load: {accepted} accepted, {rejected} rejected, {} errors in {:.2} s: {:.0}/s; \
         latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms; \
         start delay p50 {:.1} ms, p99 {:.1} ms; {completed} ended in {:.2} s: {:.0}/s",
        tally.errors,
        seconds,
        f("accepted_per_s"),
        f("p50_ms"),
        f("p99_ms"),
        f("p999_ms"),
        f("max_ms"),
        f("start_delay_p50_ms"),
        f("start_delay_p99_ms"),
        f("end_seconds"),
        f("completed_per_s"),
    );
    r
}

/// User + system seconds of this process, and of the children it waited
/// for (`/proc/self/stat`, in USER_HZ = 100 ticks a second).
fn cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command's name in parentheses: state is field 3.
    let fields: Vec<f64> = stat
        .rsplit_once(") ")?
        .1
        .split(' ')
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    let tick = |i: usize| fields.get(i - 3).copied().unwrap_or(0.0) / 100.0;
    Some((tick(14) + tick(15), tick(16) + tick(17)))
}

// ---- time ------------------------------------------------------------------------

/// Unix milliseconds of an RFC 3339 time: `2026-12-04T20:40:00.123Z`, or
/// with an offset (`+01:00`) and any number of digits of a second.
fn parse_time(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let t = s.get(from..from + len)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    if b.get(4) != Some(&b'-') || !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let mut i = 19;
    let mut frac = 0.0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        frac = format!("0.{}", &s[start..i]).parse::<f64>().ok()?;
    }
    let offset_min = match *b.get(i)? {
        b'Z' | b'z' => 0,
        sign @ (b'+' | b'-') => {
            let m = num(i + 1, 2)? * 60 + num(i + 4, 2)?;
            if sign == b'-' {
                -m
            } else {
                m
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Some((secs as f64 + frac) * 1000.0)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(
            parse_time("2026-12-04T20:40:00.123Z"),
            Some(1_796_416_800_123.0)
        );
        let a = parse_time("2026-12-04T21:40:00.123456789+01:00").unwrap();
        assert!((a - 1_796_416_800_123.456_7).abs() < 0.01, "{a}");
        assert_eq!(
            parse_time("2024-02-29T00:00:00-00:30"),
            Some(1_709_166_600_000.0)
        );
        assert_eq!(parse_time("nope"), None);
    }

    #[test]
    fn percentiles_and_shares() {
        let v: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(pct(&v, 0.5), Some(500.0));
        assert_eq!(pct(&v, 0.99), Some(990.0));
        assert_eq!(pct(&v, 0.999), Some(999.0));
        assert_eq!(pct(&[], 0.5), None);
        assert_eq!((0..32).map(|i| share(10_000, 32, i)).sum::<usize>(), 10_000);
    }
}

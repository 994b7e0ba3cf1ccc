//! The HTTP API of `drover serve`: routes, auth, and the JSON of jobs and
//! errors (DESIGN.md, "drover serve").

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio::io::AsyncWriteExt;

use super::{App, config};
use crate::model::job::JobDef;
use crate::plan::Program;
use crate::store::{Inserted, JobRow, NewJob};

/// An API error: its status and the JSON body `{"error": {"message",
/// "field"}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub field: Option<String>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        let field = field.into();
        self.field = (!field.is_empty()).then_some(field);
        self
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!("{e}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"message": self.message, "field": self.field}});
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

pub fn router(app: Arc<App>) -> Router {
    let v1 = Router::new()
        .route("/v1/jobs", post(create_job).get(list_jobs))
        .route("/v1/jobs/{id}", get(get_job))
        .route("/v1/jobs/{id}/output", get(output))
        .route("/v1/jobs/{id}/stdin", post(stdin))
        .route("/v1/jobs/{id}/cancel", post(cancel))
        .route("/v1/batches", post(super::batch::create))
        .route("/v1/batches/{id}", get(super::batch::report))
        .route("/v1/openapi.json", get(openapi))
        .route_layer(middleware::from_fn_with_state(app.clone(), auth));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .merge(v1)
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "this route takes another method (see GET /v1/openapi.json)",
            )
        })
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no such route; the API is under /v1/ (see the README)",
            )
        })
        .layer(middleware::from_fn(count_requests))
        .with_state(app)
}

/// `Authorization: Bearer TOKEN` on every `/v1/` call, when the server has
/// a token; compared in constant time.
async fn auth(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let Some(token) = &app.settings.token else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    let refuse = |message: &str| {
        let mut r = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        r
    };
    match given {
        Some(g) if same_token(g.as_bytes(), token.as_bytes()) => next.run(request).await,
        Some(_) => refuse("the token is wrong"),
        None => refuse("this server needs a token: send `Authorization: Bearer TOKEN`"),
    }
}

/// Whether `given` is `token`, in a time that depends on neither's content
/// nor on `given`'s length (only on the token's).
fn same_token(given: &[u8], token: &[u8]) -> bool {
    let padded: Vec<u8> = (0..token.len())
        .map(|i| given.get(i).copied().unwrap_or(0))
        .collect();
    let same_length = (given.len() as u64).ct_eq(&(token.len() as u64));
    bool::from(padded.ct_eq(token) & same_length)
}

async fn count_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let response = next.run(request).await;
    metrics::counter!(
        "drover_http_requests_total",
        "route" => route,
        "code" => response.status().as_u16().to_string()
    )
    .increment(1);
    response
}

/// The API's description (OpenAPI 3), kept beside this file; a test checks
/// that it names every route.
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.draining() {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response();
    }
    if app.store_failing() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the store fails to write\n",
        )
            .into_response();
    }
    "ready\n".into_response()
}

async fn render_metrics(State(app): State<Arc<App>>) -> Response {
    match &app.metrics {
        Some(handle) => {
            if app.store.fleet().is_some() {
                // What this node counts against max_queued (see App::waiting).
                metrics::gauge!("drover_fleet_jobs_queued").set(app.waiting_now().await as f64);
            }
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                handle.render(),
            )
                .into_response()
        }
        None => (StatusCode::SERVICE_UNAVAILABLE, "no metrics recorder\n").into_response(),
    }
}

/// The body, up to `max_body` bytes (413 past it).
pub(super) async fn body_of(app: &App, body: Body) -> ApiResult<Bytes> {
    axum::body::to_bytes(body, app.settings.max_body)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the body is over {} bytes (max_body in [serve])",
                    app.settings.max_body
                ),
            )
        })
}

pub fn rfc3339_ms(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    crate::report::json::rfc3339(t)
}

/// Resolves an `allow` entry as the server finds it: a bare name on the
/// server's PATH, a path as written (relative to the server's folder).
pub fn resolve_allowed(entry: &str, base: &Path) -> PathBuf {
    crate::exec::spawn::find_program(entry, &[], base).unwrap_or_else(|| base.join(entry))
}

/// Whether the server's `allow` and `allow_shell` let `spec` run; else 403
/// naming the program. With an allow-list, the program's path as the job
/// finds it (its own PATH and cwd, no symlink followed) must be one of the
/// list's, as the server finds them: a symlink to an allowed program, or a
/// multi-call binary under another name, is not that program. The path is
/// what to run: [`App::spec_of`] puts it in the job's argv[0], so that
/// nothing put in the job's PATH later is run instead.
pub(super) fn check_allowed(app: &App, spec: &crate::plan::JobSpec) -> ApiResult<Option<PathBuf>> {
    let forbidden = |m: String, field: &str| ApiError::new(StatusCode::FORBIDDEN, m).field(field);
    match &spec.program {
        Program::Shell(_) if !app.settings.allow_shell => Err(forbidden(
            "`sh` jobs are not allowed on this server (allow_shell in [serve]); give `cmd` with a program of the allow-list".into(),
            "sh",
        )),
        Program::Argv(argv) => {
            let Some(allowed) = &app.allowed else {
                return Ok(None);
            };
            let program = &argv[0];
            let found = crate::exec::spawn::find_program(program, &spec.env, &spec.cwd);
            let Some(found) = found.filter(|f| allowed.contains(f)) else {
                return Err(forbidden(
                    format!(
                        "`{program}` is not on this server's allow-list ({})",
                        app.settings.allow.as_deref().unwrap_or_default().join(", ")
                    ),
                    "cmd",
                ));
            };
            // A loader variable would run other code in an allowed program.
            if let Some((k, _)) = spec.env.iter().find(|(k, _)| k.starts_with("LD_")) {
                return Err(forbidden(
                    format!("`{k}` is not allowed in a job's env on a server with an allow-list"),
                    "env",
                ));
            }
            Ok(Some(found))
        }
        _ => Ok(None),
    }
}

/// Reads a job from a JSON body and checks it as the job file would: the
/// JSON to store and the name (empty: drover names it).
fn parse_job(app: &App, body: &[u8]) -> ApiResult<(Value, String)> {
    let bad = |e: crate::model::job::JobDefError| {
        ApiError::new(StatusCode::BAD_REQUEST, e.to_string()).field(e.field.clone())
    };
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "the body is not UTF-8 JSON"))?;
    let mut value: Value = serde_json::from_str(text).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    let Some(map) = value.as_object_mut() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "a job is a JSON object, e.g. {\"cmd\": [\"echo\", \"hi\"]}",
        ));
    };
    for key in ["needs"] {
        if map.contains_key(key) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("`{key}` names other jobs: submit them together with POST /v1/batches"),
            )
            .field(key));
        }
    }
    if matches!(map.get("stdin"), Some(Value::Object(o)) if o.contains_key("from")) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "`stdin = {from}` names another job: submit them together with POST /v1/batches",
        )
        .field("stdin"));
    }
    for key in ["stdout", "stderr"] {
        match map.get(key) {
            None => {}
            Some(Value::String(s)) if s == "capture" => {}
            Some(_) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("`{key}`: the server keeps every job's output in its state folder; read it at GET /v1/jobs/ID/output?stream={key}"),
                )
                .field(key));
            }
        }
    }
    let name = match map.get("name") {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "`name` is a string").field("name"));
        }
    };
    // Checked under a stand-in name when drover is to name it.
    let mut probe = map.clone();
    if name.is_empty() {
        probe.insert("name".into(), Value::String("job".into()));
    }
    let def = JobDef::from_json(&Value::Object(probe).to_string()).map_err(bad)?;
    if let Some(crate::model::job::StdinDef::Stream { stream: false }) = def.stdin {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "`stdin = {stream = false}`: leave `stdin` out for no input, or give {\"stream\": true}",
        )
        .field("stdin"));
    }
    let mut def = def;
    if matches!(def.stdin, Some(crate::model::job::StdinDef::Stream { .. })) {
        def.stdin = None;
    }
    let spec = def
        .into_spec(&app.settings.base, &app.settings.defaults)
        .map_err(bad)?;
    check_allowed(app, &spec)?;
    map.remove("name");
    Ok((value, name))
}

async fn create_job(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    if app.draining() {
        return Err(draining());
    }
    let body = body_of(&app, body).await?;
    let (def, name) = parse_job(&app, &body)?;
    let retries = def
        .get("retries")
        .and_then(Value::as_u64)
        .map(|r| u32::try_from(r).unwrap_or(u32::MAX))
        .or(app.settings.defaults.retries)
        .unwrap_or(0);
    let idempotency = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let key = v.to_str().ok().filter(|k| !k.is_empty() && k.len() <= 255);
            let key = key.ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "Idempotency-Key is 1 to 255 printable characters",
                )
            })?;
            Some((key.to_string(), body.to_vec()))
        }
    };
    // Full: only a repeat of a job already taken gets through.
    if app.waiting_now().await >= app.settings.max_queued {
        let repeat = match &idempotency {
            Some((key, _)) => app
                .store
                .by_key(key)
                .await
                .map_err(ApiError::internal)?
                .is_some(),
            None => false,
        };
        if !repeat {
            return Err(too_many(&app));
        }
    }
    // The body may have taken a while: the drain may have begun.
    if app.draining() {
        return Err(draining());
    }
    let inserted = app
        .store
        .insert(vec![NewJob {
            name,
            def,
            idempotency,
            kind: "job",
            retries,
        }])
        .await
        .map_err(ApiError::internal)?
        .pop()
        .ok_or_else(|| ApiError::internal("the store answered nothing"))?;
    match inserted {
        Inserted::New(row) => {
            metrics::counter!("drover_jobs_submitted_total").increment(1);
            // Stored: the job is taken, whatever comes of it now. An engine
            // that has stopped (the server drains) leaves it queued for the
            // next start; a job that cannot be started ends spawn_failed.
            let mut row = row;
            // In a fleet a worker with a free slot claims it (perhaps this
            // one): nothing runs it from here.
            let run = match app.store.fleet() {
                Some(_) => {
                    app.took(1);
                    Ok(())
                }
                None => app.run(&row).await,
            };
            match run {
                Ok(()) => {}
                Err(super::RunError::Stopped) => {}
                Err(super::RunError::Job(why)) => {
                    app.end_unrun(&row, "spawn_failed", &why)
                        .await
                        .map_err(ApiError::internal)?;
                    if let Some(now) = app.store.get(row.id).await.map_err(ApiError::internal)? {
                        row = now;
                    }
                }
            }
            Ok((StatusCode::CREATED, Json(job_object(&app, &row))).into_response())
        }
        Inserted::Existing(row) => {
            let row = app
                .store
                .get(row.id)
                .await
                .map_err(ApiError::internal)?
                .unwrap_or(row);
            Ok((StatusCode::OK, Json(job_object(&app, &row))).into_response())
        }
        Inserted::Conflict => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "this Idempotency-Key was used with another body; use a new key for a new job",
        )),
    }
}

pub(super) fn draining() -> ApiError {
    ApiError {
        retry_after: Some(5),
        ..ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is draining (stopping): it takes no new jobs; try again shortly (another instance, or this one once restarted)",
        )
    }
}

pub(super) fn too_many(app: &App) -> ApiError {
    ApiError {
        retry_after: Some(1),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "{} jobs are waiting (max_queued in [serve]); try again shortly",
                app.waiting()
            ),
        )
    }
}

/// The last `limit` bytes of a file, and whether there were more.
pub(crate) fn tail(path: &Path, limit: usize) -> (String, bool) {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return (String::new(), false);
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let from = len.saturating_sub(limit as u64);
    let mut bytes = Vec::new();
    let _ = file
        .seek(SeekFrom::Start(from))
        .and_then(|_| file.take(limit as u64).read_to_end(&mut bytes));
    (String::from_utf8_lossy(&bytes).into_owned(), from > 0)
}

/// The job object: the report's job fields, with `id`, `batch`,
/// `submitted_at`, `finished_at`; `stdout`/`stderr` the tails of its output.
/// The most of each stream a job object holds: the output endpoint gives
/// all of it. In a page of jobs, less.
pub const TAIL_MAX: usize = 1 << 20;
pub const TAIL_MAX_IN_LIST: usize = 4 << 10;

pub fn job_object(app: &App, row: &JobRow) -> Value {
    job_object_with(app, row, TAIL_MAX)
}

/// The job object with tails of at most `tail_max` bytes.
pub fn job_object_with(app: &App, row: &JobRow, tail_max: usize) -> Value {
    let mut job = match row.result.as_deref().map(serde_json::from_str::<Value>) {
        Some(Ok(v @ Value::Object(_))) => v,
        _ => json!({
            "name": row.name,
            "status": row.status,
            "exit_code": null,
            "signal": null,
            "attempts": row.attempts,
            "pid": row.pid,
            "started_at": row.started_at.map(rfc3339_ms),
            "duration_ms": row.started_at.map(|s| (super::now_ms() - s).max(0)),
            "error": null,
            "leaked": false,
        }),
    };
    let map = job.as_object_mut().expect("an object");
    // A job that never started has no output to look for (the answer to
    // its POST among them).
    let never_ran = row.status == "queued" && row.attempts == 0;
    let limit = match never_ran {
        true => 0,
        false => serde_json::from_str::<JobDef>(&row.def)
            .ok()
            .and_then(|d| d.capture_limit)
            .or(app.settings.defaults.capture_limit)
            .map_or(crate::plan::DEFAULT_CAPTURE_LIMIT, |s| s.0)
            .min(tail_max),
    };
    for stream in ["stdout", "stderr"] {
        if never_ran {
            map.insert(stream.into(), json!(""));
            map.insert(format!("{stream}_truncated"), json!(false));
            continue;
        }
        let path = match app.store.fleet() {
            None => config::output_path(&app.settings.state_dir, row.id, stream),
            Some(_) => {
                // In a fleet: the tail of a job running here; else its
                // stored tail (none while it runs on another worker: the
                // output endpoint has it).
                let path = super::fleet::scratch_path(
                    &app.settings.state_dir,
                    row.id,
                    row.attempts,
                    stream,
                );
                if row.status != "running" || !path.exists() {
                    map.entry(stream).or_insert_with(|| json!(""));
                    map.entry(format!("{stream}_truncated"))
                        .or_insert_with(|| json!(false));
                    continue;
                }
                path
            }
        };
        let (text, truncated) = tail(&path, limit);
        // Also true when output_limit left some out of the file.
        let key = format!("{stream}_truncated");
        let past_limit = map.get(&key).and_then(Value::as_bool).unwrap_or(false);
        map.insert(stream.into(), Value::String(text));
        map.insert(key, Value::Bool(truncated || past_limit));
    }
    // While it runs: what it wrote so far.
    if let Some([out, err]) = app.written(row.id) {
        map.insert("stdout_bytes".into(), json!(out));
        map.insert("stderr_bytes".into(), json!(err));
    }
    map.insert("id".into(), json!(row.id));
    map.insert("batch".into(), json!(row.batch));
    map.insert("submitted_at".into(), json!(rfc3339_ms(row.submitted_at)));
    map.insert("finished_at".into(), json!(row.finished_at.map(rfc3339_ms)));
    job
}

fn parse_id(text: &str) -> ApiResult<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|&id| id > 0)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no job {text:?}: job ids are whole numbers"),
            )
        })
}

async fn row_of(app: &App, id: &str) -> ApiResult<JobRow> {
    let id = parse_id(id)?;
    app.store
        .get(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no job {id}")))
}

async fn get_job(State(app): State<Arc<App>>, UrlPath(id): UrlPath<String>) -> ApiResult<Response> {
    let row = row_of(&app, &id).await?;
    Ok(Json(job_object(&app, &row)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    batch: Option<i64>,
    limit: Option<u32>,
    after: Option<i64>,
}

const STATUSES: [&str; 8] = [
    "queued",
    "running",
    "succeeded",
    "failed",
    "timed_out",
    "skipped",
    "cancelled",
    "spawn_failed",
];

async fn list_jobs(
    State(app): State<Arc<App>>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = query.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "{}; the parameters are status, batch, limit (1-1000) and after (a job id)",
                e.body_text()
            ),
        )
    })?;
    if let Some(s) = &q.status {
        if !STATUSES.contains(&s.as_str()) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("no status {s:?}; statuses are {}", STATUSES.join(", ")),
            )
            .field("status"));
        }
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(
            ApiError::new(StatusCode::BAD_REQUEST, "limit is from 1 to 1000").field("limit"),
        );
    }
    let rows = app
        .store
        .list(q.status.as_deref(), q.batch, q.after, limit)
        .await
        .map_err(ApiError::internal)?;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let jobs: Vec<Value> = rows
        .iter()
        .map(|r| job_object_with(&app, r, TAIL_MAX_IN_LIST))
        .collect();
    Ok(Json(json!({"jobs": jobs, "next": next})).into_response())
}

async fn cancel(State(app): State<Arc<App>>, UrlPath(id): UrlPath<String>) -> ApiResult<Response> {
    let row = row_of(&app, &id).await?;
    // In a fleet, whichever worker runs it is told (or a queued one ends).
    if let Some(pg) = app.store.fleet() {
        return match pg.cancel(row.id).await.map_err(ApiError::internal)? {
            Some(_) => Ok((
                StatusCode::ACCEPTED,
                Json(json!({"id": row.id, "cancelling": true})),
            )
                .into_response()),
            None => Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("job {} has ended ({})", row.id, row.status),
            )),
        };
    }
    if row.is_final() || app.watch_end(row.id).is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("job {} has ended ({})", row.id, row.status),
        ));
    }
    app.stop_job(row.id, crate::engine::How::Graceful)
        .await
        .map_err(|_| ApiError::internal("the engine has stopped"))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": row.id, "cancelling": true})),
    )
        .into_response())
}

/// How long a write to a job's stdin may wait for the job to read.
const STDIN_WAIT: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StdinQuery {
    eof: Option<bool>,
}

async fn stdin(
    State(app): State<Arc<App>>,
    UrlPath(id): UrlPath<String>,
    query: Result<Query<StdinQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> ApiResult<Response> {
    let Query(q) = query.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{}; the parameter is eof=true", e.body_text()),
        )
    })?;
    let row = row_of(&app, &id).await?;
    if let Some(pg) = app.store.fleet() {
        return fleet_stdin(&app, pg, &row, q.eof == Some(true), body).await;
    }
    let Some(pipe) = app.stdin_of(row.id) else {
        return Err(no_stdin(&row));
    };
    let body = body_of(&app, body).await?;
    let mut pipe = pipe.lock().await;
    let Some(writer) = pipe.as_mut() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("job {}'s stdin is closed (eof was sent)", row.id),
        ));
    };
    match tokio::time::timeout(STDIN_WAIT, writer.write_all(&body)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            *pipe = None;
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("job {} does not read its stdin any more: {e}", row.id),
            ));
        }
        // Some of it may be in the pipe: the stream is no longer whole,
        // so it is closed rather than left to a retry that would repeat
        // bytes.
        Err(_) => {
            *pipe = None;
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "job {} did not read its stdin for {} s; part of these bytes may have reached it, and its stdin is closed",
                    row.id,
                    STDIN_WAIT.as_secs()
                ),
            ));
        }
    }
    if q.eof == Some(true) {
        *pipe = None;
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": row.id, "written": body.len(), "eof": q.eof == Some(true)})),
    )
        .into_response())
}

/// The 409 of stdin sent to a job that takes none now: it has ended, or
/// it reads no streaming stdin.
fn no_stdin(row: &JobRow) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        match row.is_final() {
            true => format!("job {} has ended", row.id),
            false => format!(
                "job {} has no streaming stdin (submit it with \"stdin\": {{\"stream\": true}})",
                row.id
            ),
        },
    )
}

/// In a fleet: the bytes are stored, in order, for the worker that runs
/// the job (now or later) to feed it: 202 once they are; at most
/// output_limit bytes of stdin a job.
async fn fleet_stdin(
    app: &Arc<App>,
    pg: &crate::store::PgStore,
    row: &JobRow,
    eof: bool,
    body: Body,
) -> ApiResult<Response> {
    use crate::store::pg::StdinPut;
    let streaming =
        serde_json::from_str::<Value>(&row.def).is_ok_and(|d| d["stdin"]["stream"] == json!(true));
    if !streaming || row.is_final() {
        return Err(no_stdin(row));
    }
    let body = body_of(app, body).await?;
    let limit = app.settings.output_limit;
    let put = pg
        .put_stdin(row.id, &body, eof, limit)
        .await
        .map_err(ApiError::internal)?;
    let conflict = |m: String| Err(ApiError::new(StatusCode::CONFLICT, m));
    match put {
        StdinPut::Stored => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"id": row.id, "written": body.len(), "eof": eof})),
        )
            .into_response()),
        StdinPut::NotFound => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no job {}", row.id),
        )),
        StdinPut::Ended => conflict(format!("job {} has ended", row.id)),
        StdinPut::Closed => conflict(format!("job {}'s stdin is closed (eof was sent)", row.id)),
        StdinPut::TooMuch => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "job {}'s stdin would pass {limit} bytes (output_limit in [serve]: a fleet keeps a job's stdin in its database)",
                row.id
            ),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputQuery {
    stream: Option<String>,
    follow: Option<bool>,
}

async fn output(
    State(app): State<Arc<App>>,
    UrlPath(id): UrlPath<String>,
    query: Result<Query<OutputQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = query.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "{}; the parameters are stream=stdout|stderr and follow=true",
                e.body_text()
            ),
        )
    })?;
    let stream = q.stream.unwrap_or_else(|| "stdout".into());
    if stream != "stdout" && stream != "stderr" {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("no stream {stream:?}: give stream=stdout or stream=stderr"),
        )
        .field("stream"));
    }
    let row = row_of(&app, &id).await?;
    if let Some(pg) = app.store.fleet() {
        let number = crate::store::pg::stream_number(&stream);
        let body = Body::from_stream(super::fleet::output(
            pg.clone(),
            row.id,
            number,
            q.follow == Some(true),
        ));
        return Ok(([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response());
    }
    let path = config::output_path(&app.settings.state_dir, row.id, &stream);
    let end = match q.follow {
        Some(true) => app.watch_end(row.id),
        _ => None,
    };
    let body = Body::from_stream(follow(path, end));
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response())
}

/// The bytes of `path` from the start; with `end`, on as they are written
/// until `end` turns true, then to the end of the file.
fn follow(
    path: PathBuf,
    end: Option<tokio::sync::watch::Receiver<bool>>,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> {
    struct S {
        path: PathBuf,
        file: Option<tokio::fs::File>,
        end: Option<tokio::sync::watch::Receiver<bool>>,
        /// The job has ended: read to the end of the file, then stop.
        last: bool,
    }
    let state = S {
        path,
        file: None,
        last: end.is_none(),
        end,
    };
    futures::stream::unfold(state, |mut s| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if s.file.is_none() {
                match tokio::fs::File::open(&s.path).await {
                    Ok(f) => s.file = Some(f),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Some((
                            Err(e),
                            S {
                                last: true,
                                end: None,
                                ..s
                            },
                        ));
                    }
                }
            }
            if let Some(f) = s.file.as_mut() {
                match f.read(&mut buf).await {
                    Ok(0) => {}
                    Ok(n) => {
                        buf.truncate(n);
                        return Some((Ok(Bytes::from(buf)), s));
                    }
                    Err(e) => {
                        return Some((
                            Err(e),
                            S {
                                last: true,
                                end: None,
                                ..s
                            },
                        ));
                    }
                }
            }
            // At the end of what is written.
            if s.last {
                return None;
            }
            let end = s.end.as_mut()?;
            if *end.borrow() {
                // Ended: what it wrote is all in the file now.
                s.last = true;
                continue;
            }
            tokio::select! {
                changed = end.changed() => if changed.is_err() { s.last = true },
                _ = tokio::time::sleep(Duration::from_millis(25)) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::OPENAPI;

    /// Every route `router` serves, with its methods, is in the OpenAPI
    /// document, and the document names no route that is not served.
    #[test]
    fn the_openapi_document_describes_every_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("valid JSON");
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let source = include_str!("api.rs");
        let mut served = Vec::new();
        for line in source.lines().map(str::trim) {
            let Some(rest) = line.strip_prefix(".route(\"") else {
                continue;
            };
            let (path, handlers) = rest.split_once('"').unwrap();
            for method in ["get", "post"] {
                if handlers.contains(&format!("{method}(")) {
                    served.push((path.to_string(), method));
                }
            }
        }
        assert!(served.len() >= 11, "{served:?}");
        for (path, method) in &served {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} is not in openapi.json"
            );
        }
        let paths = doc["paths"].as_object().unwrap();
        for (path, ops) in paths {
            for method in ops.as_object().unwrap().keys() {
                assert!(
                    served.iter().any(|(p, m)| p == path && m == method),
                    "openapi.json has {method} {path}, which is not served"
                );
            }
        }
    }
}

//! `POST /v1/batches`: a whole job file (TOML, or the same as JSON) with
//! its needs, pipes, matrices and pipelines, checked as `drover run` checks
//! it, stored, and run as one batch; `GET /v1/batches/{id}`: its report.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::App;
use super::api::{ApiError, ApiResult, body_of, check_allowed, draining, too_many};
use crate::plan::{OutputSpec, Plan, Program};
use crate::store::{Inserted, NewJob};

/// The job file of a request: TOML as sent, or JSON turned into TOML.
fn job_file_text(headers: &HeaderMap, body: &[u8]) -> ApiResult<String> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "the body is not UTF-8"))?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if !json {
        return Ok(text.to_string());
    }
    let value: Value = serde_json::from_str(text).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    let toml = toml::Value::try_from(value).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not a job file (the keys of a TOML job file, as JSON): {e}"),
        )
    })?;
    toml::to_string(&toml).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not a job file (the keys of a TOML job file, as JSON): {e}"),
        )
    })
}

/// The job file checked as `drover run` checks it, and as this server
/// allows: output is the server's to keep, programs its allow-list's.
pub fn plan_of(app: &App, text: String) -> ApiResult<Plan> {
    // Named in messages as `batch.toml`; relative paths in it are relative
    // to the server's folder, as its jobs' are.
    let path = std::path::Path::new("batch.toml");
    let mut plan = crate::config::parse(path, text).map_err(|errors| {
        let field = errors
            .errors
            .first()
            .and_then(|e| e.key.clone())
            .unwrap_or_default();
        let message = console::strip_ansi_codes(&errors.to_string()).into_owned();
        ApiError::new(StatusCode::BAD_REQUEST, message).field(field)
    })?;
    let mut exact = Vec::with_capacity(plan.jobs.len());
    for spec in &plan.jobs {
        for (out, key) in [(&spec.stdout, "stdout"), (&spec.stderr, "stderr")] {
            if matches!(out, OutputSpec::Inherit | OutputSpec::File { .. }) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "job `{}`, key `{key}`: the server keeps every job's output in its state folder; leave `{key}` out (or \"null\") and read it at GET /v1/jobs/ID/output?stream={key}",
                        spec.name.as_str()
                    ),
                )
                .field(key));
            }
        }
        if let Program::Pipeline(_) = spec.program {
            if app.settings.allow.is_some() {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "pipeline `{}`: pipelines are not allowed on a server with an allow-list",
                        spec.name.as_str()
                    ),
                )
                .field("pipeline"));
            }
            exact.push(None);
            continue;
        }
        let path = check_allowed(app, spec).map_err(|e| ApiError {
            message: format!("job `{}`: {}", spec.name.as_str(), e.message),
            ..e
        })?;
        exact.push(path);
    }
    // Run what was checked (see `check_allowed`).
    for (spec, path) in plan.jobs.iter_mut().zip(exact) {
        if let (Some(path), Program::Argv(argv)) = (path, &mut spec.program) {
            argv[0] = path.to_string_lossy().into_owned();
        }
    }
    Ok(plan)
}

pub async fn create(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    if app.draining() {
        return Err(draining());
    }
    let body = body_of(&app, body).await?;
    let text = job_file_text(&headers, &body)?;
    let plan = plan_of(&app, text.clone())?;
    let fleet = app.store.fleet().cloned();
    if app.waiting_now().await + plan.jobs.len() > app.settings.max_queued {
        return Err(too_many(&app));
    }
    let jobs: Vec<NewJob> = plan
        .jobs
        .iter()
        .map(|spec| NewJob {
            name: spec.name.as_str().to_string(),
            def: def_of(spec),
            idempotency: None,
            kind: "batch",
            retries: spec.retries,
        })
        .collect();
    // In a fleet: stored with its job file, for the worker that claims it
    // to run it whole.
    let inserted = match &fleet {
        Some(pg) => pg.insert_batch(jobs, &text).await,
        None => app.store.insert(jobs).await,
    };
    let rows: Vec<_> = inserted
        .map_err(ApiError::internal)?
        .into_iter()
        .filter_map(|i| match i {
            Inserted::New(row) => Some(row),
            _ => None,
        })
        .collect();
    if rows.len() != plan.jobs.len() {
        return Err(ApiError::internal("the store did not take every job"));
    }
    metrics::counter!("drover_jobs_submitted_total").increment(rows.len() as u64);
    if fleet.is_some() {
        app.took(rows.len());
    } else {
        app.run_batch(&rows, plan)
            .await
            .map_err(ApiError::internal)?;
    }
    let batch = rows.first().map_or(0, |r| r.batch);
    let jobs: Vec<Value> = rows
        .iter()
        .map(|r| json!({"id": r.id, "name": r.name}))
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(json!({"batch": batch, "jobs": jobs})),
    )
        .into_response())
}

/// What the store keeps of a batch's job: the keys a restart and the job
/// object read (its name, program, retries, capture_limit).
fn def_of(spec: &crate::plan::JobSpec) -> Value {
    let mut def = json!({"name": spec.name.as_str()});
    match &spec.program {
        Program::Argv(argv) => def["cmd"] = json!(argv),
        Program::Shell(sh) => def["sh"] = json!(sh),
        Program::Pipeline(_) => def["sh"] = json!("(a pipeline)"),
    }
    def["retries"] = json!(spec.retries);
    def["capture_limit"] = json!(spec.capture_limit.to_string());
    def
}

/// The batch's report, in the JSON report schema of `drover run --report`,
/// with each job's `id` and the batch's `id` and `status`.
pub async fn report(
    State(app): State<Arc<App>>,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<Response> {
    let id = id.parse::<i64>().ok().filter(|&i| i > 0).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no batch {id:?}: batch ids are whole numbers"),
        )
    })?;
    let rows = app.store.batch(id).await.map_err(ApiError::internal)?;
    if rows.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no batch {id}"),
        ));
    }
    let mut summary = serde_json::Map::new();
    for key in [
        "total",
        "succeeded",
        "failed",
        "timed_out",
        "skipped",
        "cancelled",
        "spawn_failed",
        "queued",
        "running",
    ] {
        summary.insert(key.into(), json!(0));
    }
    summary.insert("total".into(), json!(rows.len()));
    for row in &rows {
        if let Some(n) = summary.get_mut(&row.status) {
            *n = json!(n.as_u64().unwrap_or(0) + 1);
        }
    }
    let done = rows.iter().all(|r| r.is_final());
    let started = rows.iter().filter_map(|r| r.started_at).min();
    let submitted = rows.iter().map(|r| r.submitted_at).min().unwrap_or(0);
    let finished = done
        .then(|| rows.iter().filter_map(|r| r.finished_at).max())
        .flatten();
    let from = started.unwrap_or(submitted);
    let jobs: Vec<Value> = rows
        .iter()
        .map(|r| super::api::job_object_with(&app, r, super::api::TAIL_MAX_IN_LIST))
        .collect();
    Ok(Json(json!({
        "version": 1,
        "id": id,
        "status": if done { "done" } else { "running" },
        "started_at": super::api::rfc3339_ms(from),
        "finished_at": finished.map(super::api::rfc3339_ms),
        "duration_ms": finished.map_or_else(|| super::now_ms() - from, |f| f - from).max(0),
        "summary": summary,
        "jobs": jobs,
    }))
    .into_response())
}

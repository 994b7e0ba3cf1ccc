#!/usr/bin/env bash
# The fleet under load: `drover serve --store postgres://…` workers on this
# machine sharing one PostgreSQL queue. Not part of the test suite nor of
# CI: a run takes a few minutes, and the numbers depend on the machine.
#
#   scripts/bench-fleet.sh [--jobs N] [--workers "1 2 3"] [-j N] [--lease D]
#                          [--pickups N] [--rescues N]
#
#   --jobs N      `true` jobs preloaded for each drain (default 100000)
#   --workers L   the worker counts to drain with, in turn (default "1 2 3")
#   -j N          each worker's slots (default 16)
#   --lease D     the workers' lease (default 10s), for the rescue figure
#   --pickups N   jobs submitted one by one to idle workers (default 200)
#   --rescues N   workers killed with -9 during a job (default 3)
#   (with other values than the defaults the README is left alone)
#
# Each drain: a fresh database; one job of `{"cmd": ["true"]}` through the
# API, as the template of JOBS rows copied in with one INSERT (a preloaded
# queue); VACUUM ANALYZE; then N workers (release builds, each its own state
# folder, -j J) start at once and drain it. From the database afterwards:
#   jobs/s          JOBS / (first claim .. last end)
#   claim → start   a job's process start (its result's started_at) less
#                   its claim (drover_attempts.started_at): p50, p99
#   dead tuples     n_dead_tup of drover_jobs and drover_attempts after the
#                   drain (statistics flushed; autovacuum runs as it will)
# Pickup: 3 idle workers; PICKUPS jobs of `true` submitted one at a time
# (curl, 50 ms apart): its claim less its submitted_at (both written by
# drover nodes on this machine's clock): p50, p99. That is a notification
# (LISTEN/NOTIFY) and a claim; without notifications a job waits for the
# next poll (every second).
# Rescue: 2 workers with lease LEASE; a job `sleep 600` (retries 1) runs on
# one, which is killed with -9; the time from the kill to the job's second
# attempt's claim on the other. Goal: < lease + 5 s.
#
# PostgreSQL: $DROVER_TEST_PG (a role that may create databases), else the
# local cluster set up as scripts/test.sh does (scripts/pg-lib.sh). Writes
# docs/bench/fleet-latest.md and the README's fleet table.
set -euo pipefail

JOBS=100000
WORKERS="1 2 3"
PAR=16
LEASE=10s
PICKUPS=200
RESCUES=3
GOAL_RATE=2000     # jobs/s with 3 workers
GOAL_PICKUP_MS=20  # p50

usage() { sed -n '2,37p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --jobs) JOBS=$2; shift ;;
        --workers) WORKERS=$2; shift ;;
        -j) PAR=$2; shift ;;
        --lease) LEASE=$2; shift ;;
        --pickups) PICKUPS=$2; shift ;;
        --rescues) RESCUES=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-fleet.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
DEFAULTS=0
[ "$JOBS" = 100000 ] && [ "$WORKERS" = "1 2 3" ] && [ "$PAR" = 16 ] && [ "$LEASE" = 10s ] && DEFAULTS=1

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DROVER="$ROOT/target/release/drover"
OUT_DIR="$ROOT/docs/bench"
SCRIPT_NAME=bench-fleet.sh
# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"
# shellcheck source=scripts/pg-lib.sh
. "$ROOT/scripts/pg-lib.sh"

need=()
command -v curl >/dev/null || need+=(curl)
command -v jq >/dev/null || need+=(jq)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    apt_install "${need[@]}"
fi
pg_setup
ADMIN="$DROVER_TEST_PG"
DB="drover_bench_$$"
URL="${ADMIN%/*}/$DB"

log "building drover (release)"
cargo build --release --quiet
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    commit+=" (with uncommitted changes)"
fi

TMP="$(mktemp -d -p "$ROOT/target" drover-bench-fleet.XXXXXX)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    psql "$ADMIN" -qtAc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT

q() { psql "$URL" -qtA -v ON_ERROR_STOP=1 -c "$1"; }
now_ms() { date +%s%3N; }

fresh_db() {
    psql "$ADMIN" -qtAc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
    psql "$ADMIN" -qtAc "CREATE DATABASE $DB" >/dev/null
}

# start_worker N: a worker on port 17170+N, state folder $TMP/wN; its pid in
# PIDS and in $TMP/wN.pid.
start_worker() {
    local n=$1
    printf '[serve]\nlease = "%s"\n' "$LEASE" >"$TMP/serve.toml"
    rm -rf "$TMP/w$n"
    "$DROVER" serve --store "$URL" --config "$TMP/serve.toml" -j "$PAR" \
        --listen "127.0.0.1:$((17170 + n))" --state-dir "$TMP/w$n" \
        >"$TMP/w$n.log" 2>&1 &
    PIDS+=($!)
    echo $! >"$TMP/w$n.pid"
}

wait_ready() {
    local n=$1 deadline=$((SECONDS + 30))
    until curl -fs "http://127.0.0.1:$((17170 + n))/readyz" >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then
            echo "bench-fleet.sh: worker $n did not start:" >&2
            cat "$TMP/w$n.log" >&2
            exit 1
        fi
        sleep 0.05
    done
}

stop_workers() {
    local pid status
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        status=0
        wait "$pid" 2>/dev/null || status=$?
        # 0: drained; 137: killed by the rescue measurement.
        if [ "$status" != 0 ] && [ "$status" != 137 ]; then
            echo "bench-fleet.sh: a worker exited $status" >&2
        fi
    done
    PIDS=()
}

submit() { # port json
    curl -fsS -X POST "http://127.0.0.1:$1/v1/jobs" -H 'Content-Type: application/json' -d "$2"
}

wait_sql() { # what sql expected timeout_s
    local deadline=$((SECONDS + $4))
    until [ "$(q "$2")" = "$3" ]; do
        if [ $SECONDS -ge $deadline ]; then
            echo "bench-fleet.sh: never: $1 ($2 gave $(q "$2"), not $3)" >&2
            exit 1
        fi
        sleep 0.1
    done
}

fmt_int() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/ &/;ta'; }

# ---- drains ------------------------------------------------------------------
declare -A RATE P50 P99 DEAD SECS
for n in $WORKERS; do
    log "drain: $(fmt_int "$JOBS") jobs of true, $n worker(s) -j $PAR"
    fresh_db
    start_worker 0
    wait_ready 0
    id=$(submit 17170 '{"cmd": ["true"]}' | jq -r .id)
    wait_sql "the template job ends" "SELECT status FROM drover_jobs WHERE id = $id" succeeded 30
    stop_workers
    q "INSERT INTO drover_jobs (batch, name, def, submitted_at, retries)
       SELECT t.batch, 'true-' || g, jsonb_set(t.def::jsonb, '{name}', to_jsonb('true-' || g))::text,
              (extract(epoch FROM clock_timestamp()) * 1000)::bigint, 0
       FROM drover_jobs t, generate_series(1, $JOBS) g WHERE t.id = $id" >/dev/null
    q "VACUUM ANALYZE drover_jobs, drover_attempts, drover_workers" >/dev/null
    for w in $(seq 1 "$n"); do start_worker "$w"; done
    t0=$SECONDS
    # An EXISTS stops at the first such job: a count(*) of the queue ten
    # times a second was ~1 s of PostgreSQL's CPU in a 20 000-job drain.
    wait_sql "the queue is drained" \
        "SELECT EXISTS (SELECT 1 FROM drover_jobs WHERE status IN ('queued', 'running'))" f 3600
    SECS[$n]=$((SECONDS - t0))
    stop_workers
    bad=$(q "SELECT count(*) FROM drover_jobs WHERE id <> $id AND status <> 'succeeded'")
    [ "$bad" = 0 ] || echo "bench-fleet.sh: $bad jobs did not succeed" >&2
    twice=$(q "SELECT count(*) FROM drover_attempts WHERE job <> $id AND attempt > 1")
    [ "$twice" = 0 ] || echo "bench-fleet.sh: $twice jobs ran more than once" >&2
    RATE[$n]=$(q "SELECT round($JOBS / ((max(j.finished_at) - min(a.started_at)) / 1000.0))
                  FROM drover_jobs j JOIN drover_attempts a ON a.job = j.id WHERE j.id <> $id")
    read -r P50[$n] P99[$n] < <(q "
        SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY d)::numeric, 1),
               round(percentile_cont(0.99) WITHIN GROUP (ORDER BY d)::numeric, 1)
        FROM (SELECT extract(epoch FROM (j.result::json->>'started_at')::timestamptz) * 1000
                     - a.started_at AS d
              FROM drover_jobs j JOIN drover_attempts a ON a.job = j.id WHERE j.id <> $id) s" |
        tr '|' ' ')
    # The statistics of every backend, flushed (at most a second late).
    sleep 2
    DEAD[$n]=$(q "SELECT string_agg(relname || ' ' || n_dead_tup || ' (of ' || n_live_tup || ' live)', ', ' ORDER BY relname)
                  FROM pg_stat_user_tables WHERE relname IN ('drover_jobs', 'drover_attempts')")
    log "  ${RATE[$n]} jobs/s; claim → start p50 ${P50[$n]} ms, p99 ${P99[$n]} ms; dead: ${DEAD[$n]}"
done

# ---- the ceiling -----------------------------------------------------------------
# The same machine spawning the same jobs with no store at all: drover exec.
log "ceiling: $(fmt_int "$JOBS") × true through drover exec -j $PAR"
t0=$(date +%s%N)
seq "$JOBS" | "$DROVER" exec -j "$PAR" -- true
EXEC_RATE=$(( JOBS * 1000000000 / ($(date +%s%N) - t0) ))
log "  $EXEC_RATE jobs/s"

# ---- pickup ------------------------------------------------------------------
log "pickup: $PICKUPS jobs one at a time to 3 idle workers"
fresh_db
for w in 0 1 2; do start_worker "$w"; done
for w in 0 1 2; do wait_ready "$w"; done
sleep 1.5   # every worker has claimed once and waits
for i in $(seq 1 "$PICKUPS"); do
    submit $((17170 + i % 3)) '{"cmd": ["true"]}' >/dev/null
    sleep 0.05
done
wait_sql "the pickup jobs end" \
    "SELECT count(*) FROM drover_jobs WHERE status IN ('queued', 'running')" 0 60
read -r PICK50 PICK99 < <(q "
    SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY d)::numeric, 1),
           round(percentile_cont(0.99) WITHIN GROUP (ORDER BY d)::numeric, 1)
    FROM (SELECT a.started_at - j.submitted_at AS d
          FROM drover_jobs j JOIN drover_attempts a ON a.job = j.id) s" | tr '|' ' ')
stop_workers
log "  p50 $PICK50 ms, p99 $PICK99 ms"

# ---- rescue ------------------------------------------------------------------
log "rescue: $RESCUES kill -9 of a worker during a job, lease $LEASE"
RESCUE_MS=()
fresh_db
start_worker 0
start_worker 1
wait_ready 0
wait_ready 1
for r in $(seq 1 "$RESCUES"); do
    id=$(submit 17170 '{"cmd": ["sleep", "600"], "retries": 1}' | jq -r .id)
    wait_sql "the job runs" "SELECT count(*) FROM drover_jobs WHERE id = $id AND pid IS NOT NULL" 1 30
    victim=$(q "SELECT w.pid FROM drover_jobs j JOIN drover_workers w ON w.id = j.worker WHERE j.id = $id")
    killed=$(now_ms)
    kill -KILL "$victim"
    wait_sql "the job runs again" "SELECT count(*) FROM drover_attempts WHERE job = $id AND attempt = 2" 1 300
    claimed=$(q "SELECT started_at FROM drover_attempts WHERE job = $id AND attempt = 2")
    RESCUE_MS+=($((claimed - killed)))
    log "  $((claimed - killed)) ms"
    # The killed worker's slot: start it again, on its port, for the next.
    for w in 0 1; do
        if [ "$(cat "$TMP/w$w.pid")" = "$victim" ]; then
            start_worker "$w"
            wait_ready "$w"
        fi
    done
    curl -fsS -X POST "http://127.0.0.1:17170/v1/jobs/$id/cancel" >/dev/null
done
stop_workers
rescue_max=$(printf '%s\n' "${RESCUE_MS[@]}" | sort -n | tail -1)
lease_ms=$(( $(echo "$LEASE" | sed 's/s$//') * 1000 ))

# ---- report ------------------------------------------------------------------
cpu="$(lscpu 2>/dev/null | awk -F: '/Model name/ { gsub(/^ +/, "", $2); print $2; exit }')"
pgv="$(psql "$ADMIN" -qtAc 'SHOW server_version' | awk '{print $1}')"
stamp="$(date -u '+%Y-%m-%d %H:%M UTC')"
met() { if [ "$1" = 1 ]; then echo met; else echo "**missed**"; fi; }
last=$(echo "$WORKERS" | awk '{print $NF}')
{
    echo "$stamp, $(nproc) CPUs ($cpu), PostgreSQL $pgv on this machine, commit $commit (\`scripts/bench-fleet.sh\`):"
    echo
    echo "| $(fmt_int "$JOBS") × \`true\` preloaded, -j $PAR a worker | jobs/s | drain | claim → start p50 | p99 | dead tuples after |"
    echo "|---|---|---|---|---|---|"
    for n in $WORKERS; do
        echo "| $n worker(s) | $(fmt_int "${RATE[$n]}") | ${SECS[$n]} s | ${P50[$n]} ms | ${P99[$n]} ms | ${DEAD[$n]} |"
    done
    echo "| the ceiling: \`drover exec -j $PAR\` on the same jobs, no store | $(fmt_int "$EXEC_RATE") | | | | |"
    echo
    echo "| goal | measured | result |"
    echo "|---|---|---|"
    if [ "$last" = 3 ]; then
        echo "| ≥ $(fmt_int $GOAL_RATE) jobs/s with 3 workers | $(fmt_int "${RATE[3]}") | $(met "$([ "${RATE[3]}" -ge $GOAL_RATE ] && echo 1)") |"
    fi
    echo "| pickup with NOTIFY (submit → claim, idle workers): p50 < $GOAL_PICKUP_MS ms | p50 $PICK50 ms, p99 $PICK99 ms | $(met "$(awk -v p="$PICK50" -v g=$GOAL_PICKUP_MS 'BEGIN { print (p < g) }')") |"
    echo "| rescue after kill -9 (kill → claim elsewhere), lease $LEASE: < lease + 5 s | $(printf '%s ms, ' "${RESCUE_MS[@]}" | sed 's/, $//') | $(met "$([ "$rescue_max" -lt $((lease_ms + 5000)) ] && echo 1)") |"
} >"$TMP/table.md"
cat "$TMP/table.md"
mkdir -p "$OUT_DIR"
{
    echo "# drover fleet benchmark"
    echo
    echo "How it is run: the head of scripts/bench-fleet.sh."
    echo
    cat "$TMP/table.md"
} >"$OUT_DIR/fleet-latest.md"
if [ "$DEFAULTS" = 1 ]; then
    python3 - "$ROOT/README.md" "$TMP/table.md" <<'EOF'
import sys
readme, table = sys.argv[1], open(sys.argv[2]).read()
s = open(readme).read()
start, end = "<!-- bench-fleet:start -->\n", "<!-- bench-fleet:end -->"
if start in s and end in s:
    a = s.index(start) + len(start)
    b = s.index(end)
    s = s[:a] + "\n" + table + "\n" + s[b:]
    open(readme, "w").write(s)
EOF
fi
log "wrote docs/bench/fleet-latest.md"

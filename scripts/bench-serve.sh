#!/usr/bin/env bash
# drover serve under load, beside pueue and drover exec, in one run. Not part
# of the test suite nor of CI: a run takes about 20 minutes (pueue's share
# most of it) and the numbers depend on the machine.
#
#   scripts/bench-serve.sh [--runs N] [--jobs N] [--clients N] [-j N] [--wait-idle S]
#
#   --runs N     rounds (default 3); every figure is the median of its rounds
#   --wait-idle S  before each tool's turn, wait up to S seconds for the
#                machine to be under 25% busy (a shared machine: others'
#                builds). Each round reports the share of the machine's CPU
#                others took while it ran.
#   --jobs N     jobs of `true` per round (default 10000)
#   --clients N  clients submitting at once (default 32)
#   -j N         jobs running at once: drover's -j, pueue's parallel (16)
#   (with other values than the defaults the README is left alone)
#
# Each round runs, in turn:
#   serve  `drover serve` (release) on a fresh state folder on disk (not a
#          tmpfs: SQLite with synchronous = FULL, a 201 waits for its
#          commit's fsync), on a loopback port, with a token (--token-file),
#          -j J, max_queued above JOBS. scripts/bench/serve-load sends JOBS x
#          `POST /v1/jobs {"cmd": ["true"]}` from CLIENTS keep-alive
#          connections, each submitting its share one after the other, and
#          times each 201 (request to the answer's last byte); then waits until
#          no job is queued or running and reads every job back: start delay
#          (started_at - submitted_at) and completed/s (jobs / first submit to
#          the last finished_at). SIGTERM, and the exit code is checked.
#   pueue  pueued (parallel = J) on a fresh folder beside it; JOBS x `pueue
#          add -- true` from CLIENTS at once (each one `pueue add` at a time,
#          timed spawn to exit), then `pueue wait` and `pueue status --json`
#          for the same figures from its tasks' times.
#   exec   `drover exec -j J -- true` on JOBS lines of stdin: jobs/s.
#
# pueue is built from source, not installed: $PUEUE_BIN and $PUEUED_BIN, else
# /tmp/pueue-src/target/release/{pueue,pueued} (git clone
# https://github.com/Nukesor/pueue /tmp/pueue-src, a release tag, cargo build
# --release; or from crates.io: cargo install pueue --version 4.0.4 --locked
# --root /tmp/pueue-inst, then PUEUE_BIN=/tmp/pueue-inst/bin/pueue
# PUEUED_BIN=/tmp/pueue-inst/bin/pueued); without them its rows are skipped,
# and the report says so.
# BENCH_SERVE_DIR: where the state folders go (default target/; must be on
# disk).
#
# Builds drover and scripts/bench/serve-load in release mode (the load
# generator into target/serve-load), and writes docs/bench/serve-latest.md
# and the README's serve table.
set -euo pipefail

# ---- parameters -------------------------------------------------------------
RUNS=3
JOBS=10000
CLIENTS=32
PAR=16
WAIT_IDLE=0
GOAL_RATE=5000   # accepted/s
GOAL_P99_MS=20   # p99 of the 201

usage() { sed -n '2,47p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=$2; shift ;;
        --jobs) JOBS=$2; shift ;;
        --clients) CLIENTS=$2; shift ;;
        -j) PAR=$2; shift ;;
        --wait-idle) WAIT_IDLE=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-serve.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
DEFAULTS=0
[ "$JOBS" = 10000 ] && [ "$CLIENTS" = 32 ] && [ "$PAR" = 16 ] && DEFAULTS=1

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DROVER="$ROOT/target/release/drover"
LOAD="$ROOT/target/serve-load/release/serve-load"
OUT_DIR="$ROOT/docs/bench"
STATE_PARENT="${BENCH_SERVE_DIR:-$ROOT/target}"

SCRIPT_NAME=bench-serve.sh
# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"

# ---- what it needs ----------------------------------------------------------
need=()
command -v curl >/dev/null || need+=(curl)
command -v jq >/dev/null || need+=(jq)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    apt_install "${need[@]}"
fi

PUEUE="${PUEUE_BIN:-/tmp/pueue-src/target/release/pueue}"
PUEUED="${PUEUED_BIN:-/tmp/pueue-src/target/release/pueued}"
PUEUE_VERSION=""
if [ -x "$PUEUE" ] && [ -x "$PUEUED" ]; then
    PUEUE_VERSION="$("$PUEUE" --version 2>/dev/null | head -1 || true)"
    log "pueue: $PUEUE ($PUEUE_VERSION)"
else
    log "pueue not found (\$PUEUE_BIN/\$PUEUED_BIN, or /tmp/pueue-src/target/release): its rows are SKIPPED"
    PUEUE=""
fi

log "building drover (release)"
cargo build --release --quiet
log "building scripts/bench/serve-load (release, into target/serve-load)"
cargo build --release --quiet --manifest-path scripts/bench/serve-load/Cargo.toml \
    --target-dir "$ROOT/target/serve-load"
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    commit+=" (with uncommitted changes)"
fi

mkdir -p "$STATE_PARENT"
TMP="$(mktemp -d -p "$STATE_PARENT" drover-bench-serve.XXXXXX)"
# pueue's socket: a short path (108 bytes at most), in /tmp.
RUN_DIR="$(mktemp -d -t drover-bench-serve-run.XXXXXX)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP" "$RUN_DIR"
}
trap cleanup EXIT

FS_TYPE="$(df -T -P "$TMP" | awk 'NR == 2 { print $2 }')"
FS_DEV="$(df -T -P "$TMP" | awk 'NR == 2 { print $1 }')"
FS_OPTS="$(findmnt -no OPTIONS -T "$TMP" 2>/dev/null || true)"
# ext3/4 without a journal (its fsync is only a flush): no jbd2 entry.
FS_JOURNAL=""
case "$FS_TYPE" in
    ext3|ext4)
        if [ -d /proc/fs/jbd2 ]; then
            FS_JOURNAL="no journal"
            for j in /proc/fs/jbd2/"$(basename "$FS_DEV")"-*; do
                [ -e "$j" ] && FS_JOURNAL="journal"
            done
        fi ;;
esac
FS_DESC="$FS_TYPE${FS_JOURNAL:+, $FS_JOURNAL} ($FS_DEV${FS_OPTS:+, $FS_OPTS})"
# What a durable commit costs there: 200 synchronous 4 KiB writes.
FSYNC_MS="$(dd if=/dev/zero of="$TMP/fsync-probe" bs=4k count=200 oflag=dsync 2>&1 |
    sed -n 's/.*copied, \([0-9.e+-]*\) s.*/\1/p' | awk '{ printf "%.2f", $1 / 200 * 1000 }')"
rm -f "$TMP/fsync-probe"
log "state folders in $STATE_PARENT: $FS_DESC; a synchronous 4 KiB write takes ${FSYNC_MS} ms"
case "$FS_TYPE" in
    tmpfs|ramfs) log "warning: $STATE_PARENT is in memory: fsync costs nothing there; set BENCH_SERVE_DIR to a folder on disk" ;;
esac

# ---- helpers ----------------------------------------------------------------
now_ns() { date +%s%N; }
# until_ok SECONDS WHAT CMD...: CMD until it succeeds, for at most SECONDS.
until_ok() {
    local secs=$1 what=$2 deadline
    shift 2
    deadline=$(($(now_ns) + secs * 1000000000))
    until "$@" >/dev/null 2>&1; do
        if [ "$(now_ns)" -gt "$deadline" ]; then
            echo "bench-serve.sh: $what: not after ${secs} s" >&2
            return 1
        fi
        sleep 0.05
    done
}
alive() { kill -0 "$1" 2>/dev/null; }
HZ="$(getconf CLK_TCK)"
NCPU="$(nproc)"
# proc_cpu PID: user + system seconds of the process (its threads, not its
# children); proc_cpu_all PID: with the children it waited for (its jobs).
proc_cpu() { awk -v hz="$HZ" '{ sub(/.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz }' "/proc/$1/stat"; }
proc_cpu_all() { awk -v hz="$HZ" '{ sub(/.*\) /, ""); printf "%.2f\n", ($12 + $13 + $14 + $15) / hz }' "/proc/$1/stat"; }
# machine_busy: busy seconds of all the machine's CPUs since boot.
machine_busy() { awk -v hz="$HZ" '/^cpu / { printf "%.2f\n", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat; }
# others_pct NS0 NS1 BUSY0 BUSY1 OWN: the share (%) of the machine's CPU that
# went to other processes between the two points: busy time less OWN (the
# tool's, its jobs' and the load generator's seconds).
OTHERS=-
others_pct() {
    awk -v t0="$1" -v t1="$2" -v a="$3" -v b="$4" -v o="$5" -v n="$NCPU" \
        'BEGIN { x = (b - a - o) / ((t1 - t0) / 1e9 * n) * 100; if (x < 0) x = 0; printf "%.0f\n", x }'
}
# note_others: after a round, with OTHERS set.
note_others() {
    [ "$OTHERS" -lt 10 ] || log "warning: other processes took ${OTHERS}% of the machine's CPU during this round: its figures suffer"
}
# busy_pct: the share of the machine's CPU time spent busy over a second.
busy_pct() {
    local a b
    a="$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)"
    sleep 1
    b="$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)"
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); busy = y[1] - x[1]; all = busy + y[2] - x[2]; printf "%.0f\n", all ? 100 * busy / all : 0 }'
}
# settle: with --wait-idle, waits (up to its seconds) for a quiet machine;
# BUSY is the busy share seen last.
BUSY=-
settle() {
    local deadline=$(($(date +%s) + WAIT_IDLE))
    BUSY="$(busy_pct)"
    while [ "$BUSY" -ge 25 ] && [ "$(date +%s)" -lt "$deadline" ]; do
        sleep 4
        BUSY="$(busy_pct)"
    done
    [ "$BUSY" -lt 25 ] || log "warning: the machine is ${BUSY}% busy before this turn (others' work): figures will suffer"
}
proc_hwm() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }

RESULTS="$TMP/results.tsv"
: >"$RESULTS"
# The columns of a round (serve-load's JSON, then the server's own figures).
COLS=(accepted rejected errors seconds accepted_per_s p50_ms p99_ms p999_ms max_ms
    start_delay_p50_ms start_delay_p99_ms completed completed_per_s end_seconds)
# record TOOL REP JSON CPU RSS_KIB 5XX EXIT (and $OTHERS)
record() {
    local fields
    fields="$(jq -r --argjson keys "$(printf '%s\n' "${COLS[@]}" | jq -R . | jq -s .)" \
        '[.[$keys[]]] | map(if . == null then "-" else tostring end) | @tsv' <<<"$3")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$fields" "$4" "$5" "$6" "$7" "$OTHERS" >>"$RESULTS"
}
# The column of each name in results.tsv (1-based).
col() {
    local i
    case $1 in
        tool) echo 1; return ;;
        rep) echo 2; return ;;
    esac
    for i in "${!COLS[@]}"; do
        [ "${COLS[$i]}" = "$1" ] && { echo $((i + 3)); return; }
    done
    case $1 in
        cpu_s) echo $((${#COLS[@]} + 3)) ;;
        rss_kib) echo $((${#COLS[@]} + 4)) ;;
        http_5xx) echo $((${#COLS[@]} + 5)) ;;
        exit) echo $((${#COLS[@]} + 6)) ;;
        others) echo $((${#COLS[@]} + 7)) ;;
    esac
}

# ---- the rounds -------------------------------------------------------------
BODY='{"cmd": ["true"]}'

round_serve() {
    local rep=$1 d url json rc=0 cpu rss fivexx t0 t1 b0 b1 own
    d="$(mktemp -d -p "$TMP" serve.XXXXXX)"
    head -c 32 /dev/urandom | base64 >"$d/token"
    chmod 600 "$d/token"
    cat >"$d/serve.toml" <<EOF
[serve]
listen = "127.0.0.1:0"
max_queued = $((JOBS * 2))
EOF
    t0=$(now_ns) b0=$(machine_busy)
    "$DROVER" serve --config "$d/serve.toml" --state-dir "$d/state" --token-file "$d/token" \
        -j "$PAR" 2>"$d/serve.log" &
    SERVER_PID=$!
    # The address it took (port 0), then ready.
    until_ok 30 "drover serve's address" grep -q 'listening on http://' "$d/serve.log" || {
        cat "$d/serve.log" >&2
        exit 1
    }
    url="$(grep -o 'listening on http://[0-9.:]*' "$d/serve.log" | head -1 | sed 's/^listening on //')"
    until_ok 30 "$url/readyz" curl -fsS "$url/readyz"
    json="$("$LOAD" http "$url" --token-file "$d/token" --jobs "$JOBS" --clients "$CLIENTS" \
        --body "$BODY" 2>"$d/load.log")" || {
        log "serve-load failed:"
        cat "$d/load.log" >&2
        tail -5 "$d/serve.log" >&2
        exit 1
    }
    cat "$d/load.log" >&2
    curl -fsS "$url/metrics" >"$d/metrics" || true
    fivexx="$(awk '/^drover_http_requests_total/ && /code="5/ { n += $NF } END { print n + 0 }' "$d/metrics")"
    grep '^drover_http_requests_total' "$d/metrics" | sed 's/^/    /' >&2 || true
    cpu="$(proc_cpu "$SERVER_PID")"
    rss="$(proc_hwm "$SERVER_PID")"
    own="$(proc_cpu_all "$SERVER_PID")"
    t1=$(now_ns) b1=$(machine_busy)
    own="$(jq -r --argjson s "$own" '$s + .cpu_s + .children_cpu_s' <<<"$json")"
    OTHERS="$(others_pct "$t0" "$t1" "$b0" "$b1" "$own")"
    note_others
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || rc=$?
    SERVER_PID=""
    if [ "$rc" != 0 ]; then
        log "warning: drover serve exited with $rc; its log ends:"
        tail -5 "$d/serve.log" >&2
    fi
    if grep -qiE ' (WARN|ERROR) ' "$d/serve.log"; then
        log "warning: drover serve logged warnings or errors:"
        grep -iE ' (WARN|ERROR) ' "$d/serve.log" | head -5 >&2
    fi
    record serve "$rep" "$json" "$cpu" "$rss" "$fivexx" "$rc"
    rm -rf "$d"
}

round_pueue() {
    local rep=$1 d run cfg json rc=0 cpu rss t0 t1 b0 b1 own
    d="$(mktemp -d -p "$TMP" pueue.XXXXXX)"
    run="$(mktemp -d -p "$RUN_DIR" r.XXXX)"
    cfg="$d/pueue.yml"
    cat >"$cfg" <<EOF
shared:
  pueue_directory: $d/dir
  runtime_directory: $run
  use_unix_socket: true
  unix_socket_path: $run/pueue.socket
EOF
    mkdir -p "$d/dir"
    t0=$(now_ns) b0=$(machine_busy)
    "$PUEUED" -c "$cfg" >"$d/pueued.log" 2>&1 &
    SERVER_PID=$!
    until_ok 30 "pueued's socket" "$PUEUE" -c "$cfg" status
    "$PUEUE" -c "$cfg" parallel "$PAR" >/dev/null
    json="$("$LOAD" pueue --pueue "$PUEUE" --config "$cfg" --jobs "$JOBS" --clients "$CLIENTS" \
        --timeout 3600 -- true 2>"$d/load.log")" || {
        log "serve-load (pueue) failed:"
        cat "$d/load.log" >&2
        tail -5 "$d/pueued.log" >&2
        exit 1
    }
    cat "$d/load.log" >&2
    cpu="$(proc_cpu "$SERVER_PID")"
    rss="$(proc_hwm "$SERVER_PID")"
    own="$(proc_cpu_all "$SERVER_PID")"
    t1=$(now_ns) b1=$(machine_busy)
    own="$(jq -r --argjson s "$own" '$s + .cpu_s + .children_cpu_s' <<<"$json")"
    OTHERS="$(others_pct "$t0" "$t1" "$b0" "$b1" "$own")"
    note_others
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || rc=$?
    SERVER_PID=""
    record pueue "$rep" "$json" "$cpu" "$rss" - "$rc"
    rm -rf "$d" "$run"
}

round_exec() {
    local rep=$1 t0 t1 b0 b1 rc=0 secs json
    seq "$JOBS" >"$TMP/items"
    t0=$(now_ns) b0=$(machine_busy)
    /usr/bin/time -f '%U %S' -o "$TMP/exec.cpu" \
        "$DROVER" exec -j "$PAR" -- true <"$TMP/items" >/dev/null 2>"$TMP/exec.log" || rc=$?
    t1=$(now_ns) b1=$(machine_busy)
    OTHERS="$(others_pct "$t0" "$t1" "$b0" "$b1" "$(awk 'END { print $1 + $2 }' "$TMP/exec.cpu")")"
    note_others
    secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')"
    json="$(jq -n --argjson n "$JOBS" --argjson s "$secs" \
        '{completed: $n, end_seconds: $s, completed_per_s: ($n / $s)}')"
    log "drover exec: $JOBS jobs in $secs s: $(awk -v n="$JOBS" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')/s (exit $rc)"
    record exec "$rep" "$json" - - - "$rc"
}

load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
started=$(date +%s)
for rep in $(seq "$RUNS"); do
    log "round $rep/$RUNS: drover serve ($JOBS x POST /v1/jobs, $CLIENTS clients, -j $PAR)"
    settle
    round_serve "$rep"
    if [ -n "$PUEUE" ]; then
        log "round $rep/$RUNS: pueue ($JOBS x pueue add, $CLIENTS at once, parallel $PAR)"
        settle
        round_pueue "$rep"
    fi
    log "round $rep/$RUNS: drover exec -j $PAR ($JOBS jobs)"
    settle
    round_exec "$rep"
done
elapsed=$(($(date +%s) - started))

# ---- the report -------------------------------------------------------------
# median TOOL NAME: the median of a column over the rounds ("-" if none).
median() {
    awk -F'\t' -v t="$1" -v c="$(col "$2")" '$1 == t && $c != "-" { print $c }' "$RESULTS" |
        sort -g | awk '{ v[NR] = $1 } END { if (!NR) print "-"; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# Formats; "–" for a figure that is not there.
int() { awk -v v="$1" 'BEGIN { if (v == "-" || v == "") { print "–"; exit } s = sprintf("%.0f", v); o = ""; while (length(s) > 3) { o = " " substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) } print s o }'; }
ms() { awk -v v="$1" 'BEGIN { if (v == "-" || v == "") print "–"; else if (v < 10) printf "%.2f ms\n", v; else if (v < 1000) printf "%.1f ms\n", v; else printf "%.2f s\n", v / 1000 }'; }
secs() { awk -v v="$1" 'BEGIN { if (v == "-" || v == "") print "–"; else printf "%.2f s\n", v }'; }
mib() { awk -v v="$1" 'BEGIN { if (v == "-" || v == "") print "–"; else printf "%.1f MiB\n", v / 1024 }'; }
pass() { if awk "BEGIN { exit !($1) }"; then echo met; else echo "**missed**"; fi; }
have() { [ "$(median "$1" completed_per_s)" != "-" ]; }
# sum TOOL NAME: the total of a column over the rounds.
sum() { awk -F'\t' -v t="$1" -v c="$(col "$2")" '$1 == t && $c != "-" { n += $c } END { print n + 0 }' "$RESULTS"; }

s_rate="$(median serve accepted_per_s)"
s_p99="$(median serve p99_ms)"
rate_result="$(pass "$s_rate >= $GOAL_RATE")"
p99_result="$(pass "$s_p99 <= $GOAL_P99_MS")"
goals_md="$(
    echo "| goal | measured | result |"
    echo "|---|---|---|"
    echo "| drover serve: ≥ $(int "$GOAL_RATE") accepted/s ($(int "$JOBS") × POST /v1/jobs, $CLIENTS keep-alive clients) | $(int "$s_rate")/s | $rate_result |"
    echo "| drover serve: p99 of the 201 ≤ $GOAL_P99_MS ms | $(ms "$s_p99") | $p99_result |"
)"

row() { # row TOOL LABEL
    local t=$1
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$2" \
        "$(int "$(median "$t" accepted_per_s)")" "$(ms "$(median "$t" p50_ms)")" \
        "$(ms "$(median "$t" p99_ms)")" "$(ms "$(median "$t" p999_ms)")" \
        "$(ms "$(median "$t" start_delay_p50_ms)")" "$(ms "$(median "$t" start_delay_p99_ms)")" \
        "$(int "$(median "$t" completed_per_s)")" "$(secs "$(median "$t" end_seconds)")" \
        "$(if [ "$t" = exec ]; then echo –; else echo "$(sum "$t" rejected) / $(sum "$t" errors)"; fi)" \
        "$(if [ "$t" = exec ]; then echo –; else echo "$(secs "$(median "$t" cpu_s)"), $(mib "$(median "$t" rss_kib)")"; fi)"
}
table_md="$(
    echo "| $(int "$JOBS") × \`true\`, -j $PAR | accepted/s | submit p50 | p99 | p99.9 | start delay p50 | p99 | completed/s | first submit → last end | refused / errors (all rounds) | server CPU, peak RSS |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    row serve "drover serve: POST /v1/jobs, $CLIENTS keep-alive clients"
    if have pueue; then
        row pueue "pueue: \`pueue add -- true\`, $CLIENTS at once"
    else
        echo "| pueue | skipped: pueue not found (\$PUEUE_BIN, \$PUEUED_BIN, /tmp/pueue-src/target/release) | | | | | | | | | |"
    fi
    row exec "drover exec -j $PAR (the jobs on stdin)"
    echo "| goal (drover serve) | ≥ $(int "$GOAL_RATE"): $rate_result | | ≤ $GOAL_P99_MS ms: $p99_result | | | | | | | |"
)"

rounds_md="$(
    echo "| tool | round | accepted/s | p50 | p99 | p99.9 | max | start delay p50 | p99 | completed/s | first submit → last end | refused | errors | 5xx | server CPU | peak RSS | exit | others' CPU |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    while IFS=$'\t' read -r -a f; do
        v() { echo "${f[$(($(col "$1") - 1))]}"; }
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s%% |\n' \
            "$(v tool)" "$(v rep)" "$(int "$(v accepted_per_s)")" "$(ms "$(v p50_ms)")" "$(ms "$(v p99_ms)")" \
            "$(ms "$(v p999_ms)")" "$(ms "$(v max_ms)")" "$(ms "$(v start_delay_p50_ms)")" \
            "$(ms "$(v start_delay_p99_ms)")" "$(int "$(v completed_per_s)")" "$(secs "$(v end_seconds)")" \
            "$(v rejected | sed 's/^-$/–/')" "$(v errors | sed 's/^-$/–/')" "$(v http_5xx | sed 's/^-$/–/')" \
            "$(secs "$(v cpu_s)")" "$(mib "$(v rss_kib)")" "$(v exit)" "$(v others)"
    done <"$RESULTS"
)"

cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)"
mem="$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
machine="$(nproc) CPUs${cpu:+ ($cpu)}, $mem, kernel $(uname -r)"
when="$(date -u '+%Y-%m-%d %H:%M UTC')"
mkdir -p "$OUT_DIR"
{
    cat <<EOF
# drover serve benchmark — latest run

- date: $when; took ${elapsed} s
- machine: $machine
- state folders (drover's SQLite store and output files, pueue's state): $FS_DESC, on disk: a 201 waits for its commit's fsync; a synchronous 4 KiB write there takes ${FSYNC_MS} ms (\`dd oflag=dsync\`, mean of 200)
- load average at start / end: $load_start / $(cut -d' ' -f1-3 /proc/loadavg)
- drover: commit $commit, release build; pueue: ${PUEUE_VERSION:-not found, skipped} (built from source)
- workload: $(int "$JOBS") jobs of \`true\` a round, $CLIENTS clients, -j $PAR (pueue: parallel $PAR); $RUNS rounds, serve, pueue and exec in turn within a round; each figure is the median of its rounds
- produced by \`scripts/bench-serve.sh\`

## Goals

$goals_md

## Side by side

$table_md

- accepted/s: accepted jobs / first submit to the last answer. Submit
  latency: drover serve, request to the last byte of the 201 (the job is
  committed to disk before it); pueue, a \`pueue add\` process from spawn to
  exit (its own start-up included: that is how pueue takes a job).
- start delay: the job's start minus its submission, as the server recorded
  them (drover: \`started_at - submitted_at\`, milliseconds; pueue: \`start -
  enqueued_at\`). completed/s: jobs / first submit to the last job's end.
- server CPU: user + system seconds of \`drover serve\` or \`pueued\` itself
  over the round (not its jobs'), and its peak RSS.
- pueue's daemon looks for work every 300 ms (its task handler's tick) and
  writes its whole state (every task) to disk on each change; \`pueue add\`
  runs with only PATH and HOME in its environment, as pueue stores it in
  every task.
- each tool runs its jobs at its default niceness: drover serve's at 10
  (\`[serve] nice\`: the API answers first when the jobs keep the CPUs
  busy), pueue's and drover exec's at the caller's.

## Every round

"others' CPU": the share of the machine's CPU (all $NCPU) that went to other
processes while the round ran: the machine's busy time less the tool's, its
jobs' and the load generator's (a shared machine: others' builds; kernel
threads' work, such as writing back pueue's state file, counts here too).
Above a few percent the round's figures suffer.

$rounds_md

## How each tool is run

- drover serve: \`drover serve --config serve.toml --state-dir STATE
  --token-file token -j $PAR\`, \`serve.toml\` holding \`listen =
  "127.0.0.1:0"\` and \`max_queued = $((JOBS * 2))\`, a fresh state folder a
  round; \`scripts/bench/serve-load http URL --token-file token --jobs $JOBS
  --clients $CLIENTS --body '$BODY'\` (one thread, one keep-alive HTTP/1.1
  connection per client); then \`GET /v1/jobs?status=queued|running&limit=1\`
  until both are empty, and every job in pages of 1000; SIGTERM.
- pueue: \`pueued -c pueue.yml\` on a fresh folder, \`pueue parallel $PAR\`,
  \`scripts/bench/serve-load pueue --pueue pueue --config pueue.yml --jobs
  $JOBS --clients $CLIENTS -- true\` (each client runs \`pueue -c pueue.yml
  add -- true\` and waits for it), \`pueue wait -q\`, \`pueue status
  --json\`; SIGTERM.
- drover exec: \`drover exec -j $PAR -- true < items\` ($(int "$JOBS") lines:
  \`true 1\`, \`true 2\`, ...), wall time.
EOF
} >"$OUT_DIR/serve-latest.md"

# The README shows the table (runs with the default workload only).
if [ "$DEFAULTS" = 1 ] && grep -q '<!-- bench-serve:start -->' README.md; then
    {
        sed '/<!-- bench-serve:start -->/q' README.md
        # shellcheck disable=SC2016 # backquotes for Markdown
        printf '\n%s, %s, state on %s, %s rounds (`scripts/bench-serve.sh`):\n\n' "$when" "$machine" "$FS_TYPE" "$RUNS"
        printf '%s\n\n' "$table_md"
        printf 'Every round and how each tool is run: [docs/bench/serve-latest.md](docs/bench/serve-latest.md).\n\n'
        sed -n '/<!-- bench-serve:end -->/,$p' README.md
    } >"$TMP/README.md"
    cp "$TMP/README.md" README.md
fi

echo
echo "$goals_md"
echo
echo "$table_md"
echo
log "written: docs/bench/serve-latest.md (${elapsed} s)"

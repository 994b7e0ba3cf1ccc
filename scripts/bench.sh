#!/usr/bin/env bash
# Benchmark drover against `xargs -P` on this machine. Not part of the test
# suite: it takes a minute or two and the numbers depend on the machine.
#
#   scripts/bench.sh [--quick]
#
#   --quick   fewer hyperfine runs and a single RSS sample (for a fast check)
#
# Workloads (side by side, in one run):
#   1. TRUE_JOBS jobs of `true`, max_parallel = TRUE_PAR, vs
#      `seq TRUE_JOBS | xargs -P TRUE_PAR -n 1 true`      goal: drover <= xargs
#   2. SLEEP_JOBS jobs of `sleep SLEEP_SECS`, max_parallel = 0, vs
#      `xargs -P SLEEP_JOBS -I{} sleep SLEEP_SECS`          goal: drover <= SLEEP_GOAL_S
#   3. peak RSS with RSS_JOBS jobs of `sleep RSS_SECS` running at once
#      (max_parallel = 0) vs `xargs -P RSS_JOBS`            goal: drover < RSS_GOAL_KIB
#
# Installs hyperfine (Debian package) and /usr/bin/time (package `time`) when
# missing, builds drover in release mode, and writes the summary to
# docs/bench/latest.md.
set -euo pipefail

# ---- parameters -------------------------------------------------------------
TRUE_JOBS=2000
TRUE_PAR=16
SLEEP_JOBS=200
SLEEP_SECS=1
SLEEP_GOAL_S=1.1
RSS_JOBS=1000
RSS_SECS=2
RSS_GOAL_KIB=$((32 * 1024))

RUNS_TRUE=10      # hyperfine runs per command, workload 1
RUNS_SLEEP=5      # hyperfine runs per command, workload 2
RSS_SAMPLES=3     # /usr/bin/time samples per command, workload 3 (max is reported)
WARMUP=2

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }

for arg in "$@"; do
    case "$arg" in
        --quick) RUNS_TRUE=3; RUNS_SLEEP=2; RSS_SAMPLES=1; WARMUP=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench.sh: unknown option: $arg" >&2; usage >&2; exit 2 ;;
    esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DROVER="$ROOT/target/release/drover"

SCRIPT_NAME=bench.sh
# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"
if ! command -v hyperfine >/dev/null; then
    log "installing hyperfine"
    apt_install hyperfine
fi
if [ ! -x /usr/bin/time ]; then
    log "installing time (/usr/bin/time)"
    apt_install time
fi

# ---- build ------------------------------------------------------------------
log "building drover (release)"
cargo build --release --quiet
[ -x "$DROVER" ] || { echo "bench.sh: $DROVER was not built" >&2; exit 1; }

# ---- job files --------------------------------------------------------------
TMP="$(mktemp -d -t drover-bench.XXXXXX)"
trap 'rm -rf "$TMP"' EXIT

# job_file FILE COUNT MAX_PARALLEL CMD_TOML
job_file() {
    local file=$1 count=$2 par=$3 cmd=$4
    {
        printf '[run]\nmax_parallel = %s\n\n[[job]]\nname = "j-{n}"\ncmd = %s\n' "$par" "$cmd"
        printf 'matrix = { n = ['
        seq "$count" | sed 's/.*/"&"/' | paste -sd, -
        printf '] }\n'
    } >"$file"
}
job_file "$TMP/true.toml" "$TRUE_JOBS" "$TRUE_PAR" '["true"]'
job_file "$TMP/sleep.toml" "$SLEEP_JOBS" 0 "[\"sleep\", \"$SLEEP_SECS\"]"
job_file "$TMP/rss.toml" "$RSS_JOBS" 0 "[\"sleep\", \"$RSS_SECS\"]"
seq "$RSS_JOBS" >"$TMP/rss.seq"

# Check the job files run cleanly before timing them.
for f in true sleep; do
    "$DROVER" run "$TMP/$f.toml" -q || { echo "bench.sh: drover failed on $f.toml" >&2; exit 1; }
done

# ---- helpers ----------------------------------------------------------------
# hyperfine CSV columns: command,mean,stddev,median,user,system,min,max.
# csv_median FILE ROW -> median seconds of row ROW (1 = first command). The
# median decides pass/fail: it is robust to a stray slow run on a busy box.
csv_median() { awk -F, -v row="$(($2 + 1))" 'NR == row { print $4 }' "$1"; }
# csv_fmt FILE ROW -> "median s (min–max)"
csv_fmt() { awk -F, -v row="$(($2 + 1))" 'NR == row { printf "%.3f s (%.3f–%.3f)", $4, $7, $8 }' "$1"; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
verdict() { if "$@"; then echo PASS; else echo FAIL; fi; }

load_start="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- 1: many short jobs -----------------------------------------------------
log "1/3: $TRUE_JOBS x true, parallelism $TRUE_PAR ($RUNS_TRUE runs each)"
hyperfine --style basic --warmup "$WARMUP" --runs "$RUNS_TRUE" \
    --export-markdown "$TMP/true.md" --export-csv "$TMP/true.csv" \
    -n "drover (max_parallel = $TRUE_PAR)" "'$DROVER' run '$TMP/true.toml' -q" \
    -n "xargs -P $TRUE_PAR" "seq $TRUE_JOBS | xargs -P $TRUE_PAR -n 1 true"
t_drover=$(csv_median "$TMP/true.csv" 1); t_xargs=$(csv_median "$TMP/true.csv" 2)
r1=$(verdict le "$t_drover" "$t_xargs")
row1="| $TRUE_JOBS × \`true\`, parallelism $TRUE_PAR (wall) | $(csv_fmt "$TMP/true.csv" 1) | $(csv_fmt "$TMP/true.csv" 2) | drover ≤ xargs | $r1 |"

# ---- 2: wide fan-out of sleeps ----------------------------------------------
log "2/3: $SLEEP_JOBS x sleep $SLEEP_SECS, unlimited parallelism ($RUNS_SLEEP runs each)"
hyperfine --style basic --warmup 1 --runs "$RUNS_SLEEP" \
    --export-markdown "$TMP/sleep.md" --export-csv "$TMP/sleep.csv" \
    -n "drover (max_parallel = 0)" "'$DROVER' run '$TMP/sleep.toml' -q" \
    -n "xargs -P $SLEEP_JOBS" "seq $SLEEP_JOBS | xargs -P $SLEEP_JOBS -I{} sleep $SLEEP_SECS"
s_drover=$(csv_median "$TMP/sleep.csv" 1)
r2=$(verdict le "$s_drover" "$SLEEP_GOAL_S")
row2="| $SLEEP_JOBS × \`sleep $SLEEP_SECS\`, unlimited (wall) | $(csv_fmt "$TMP/sleep.csv" 1) | $(csv_fmt "$TMP/sleep.csv" 2) | drover ≤ $SLEEP_GOAL_S s | $r2 |"

# ---- 3: peak RSS with many running jobs -------------------------------------
# /usr/bin/time reports ru_maxrss of its child: the largest of drover (or
# xargs) and the children it reaped. Those are `sleep`s (~1-2 MiB), so the
# figure is drover's own peak.
log "3/3: peak RSS, $RSS_JOBS x sleep $RSS_SECS running at once ($RSS_SAMPLES sample(s) each)"
# rss_sample CMD... -> prints "KIB WALL"
rss_sample() {
    /usr/bin/time -f '%M %e' -o "$TMP/time.out" "$@" >/dev/null
    cat "$TMP/time.out"
}
m_drover=0; m_xargs=0; w_drover=""; w_xargs=""
for _ in $(seq "$RSS_SAMPLES"); do
    read -r kib wall < <(rss_sample "$DROVER" run "$TMP/rss.toml" -q)
    [ "$kib" -gt "$m_drover" ] && m_drover=$kib
    w_drover+="${wall}s "
    read -r kib wall < <(rss_sample xargs -P "$RSS_JOBS" -I{} sleep "$RSS_SECS" <"$TMP/rss.seq")
    [ "$kib" -gt "$m_xargs" ] && m_xargs=$kib
    w_xargs+="${wall}s "
done
r3=$(verdict test "$m_drover" -lt "$RSS_GOAL_KIB")
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
row3="| peak RSS, $RSS_JOBS × \`sleep $RSS_SECS\` running | $(mib "$m_drover") | $(mib "$m_xargs") | drover < $((RSS_GOAL_KIB / 1024)) MiB | $r3 |"

# ---- summary ----------------------------------------------------------------
mode=full; [ "$RUNS_TRUE" -lt 10 ] && mode=quick
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    commit+=" (with uncommitted changes)"
fi
cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)"

summary="$(
    cat <<EOF
| workload | drover | xargs | goal | result |
|---|---|---|---|---|
$row1
$row2
$row3
EOF
)"

mkdir -p "$ROOT/docs/bench"
{
    cat <<EOF
# drover benchmark — latest run

- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')
- machine: nproc = $(nproc), kernel $(uname -r)${cpu:+, $cpu}
- load average at start / end: $load_start / $(cut -d' ' -f1-3 /proc/loadavg) (other work on the box skews wall times)
- drover: commit $commit, release build
- mode: $mode (hyperfine runs: $RUNS_TRUE for workload 1, $RUNS_SLEEP for workload 2; RSS samples: $RSS_SAMPLES, max reported)
- produced by \`scripts/bench.sh${1:+ $*}\`

## Summary

$summary

Wall times are hyperfine medians (min–max); pass/fail uses the median.
Both commands of a
workload run in the same hyperfine invocation (through \`sh -c\`, so both
pay the same shell start-up). Peak RSS is \`/usr/bin/time -f %M\` of the
drover / xargs process (max over the samples); wall time of those runs:
drover ${w_drover% }, xargs ${w_xargs% }.

## 1. $TRUE_JOBS × \`true\`, parallelism $TRUE_PAR

$(cat "$TMP/true.md")

## 2. $SLEEP_JOBS × \`sleep $SLEEP_SECS\`, unlimited parallelism

$(cat "$TMP/sleep.md")
EOF
} >"$ROOT/docs/bench/latest.md"

echo
echo "## drover vs xargs -P — $(nproc) CPUs, kernel $(uname -r), $mode"
echo
echo "$summary"
echo
echo "(RSS-run wall times: drover ${w_drover% }; xargs ${w_xargs% })"
echo "written to docs/bench/latest.md"

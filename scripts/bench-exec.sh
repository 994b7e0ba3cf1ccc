#!/usr/bin/env bash
# Benchmark `drover exec` against `xargs -P`, GNU parallel and rust-parallel on
# this machine. Not part of the test suite: it takes several minutes and the
# numbers depend on the machine.
#
#   scripts/bench-exec.sh [--quick] [--gnu-sleep]
#
#   --quick      fewer hyperfine runs and a single RSS sample (for a fast check)
#   --gnu-sleep  also time GNU parallel on workload 2 (about a minute per run:
#                it caps itself at ~250 jobs for lack of file handles)
#
# Workloads (all tools side by side, in one hyperfine invocation each):
#   1. TRUE_JOBS x `true` at -j 2 and -j 16 (items from a file on stdin):
#      drover exec / xargs -P -n 1 / parallel / rust-parallel
#                                          goal: drover faster than every one
#   2. SLEEP_JOBS x `sleep SLEEP_SECS` at -j SLEEP_JOBS: drover / xargs /
#      rust-parallel                       goal: drover faster than xargs,
#                                                drover peak RSS < RSS_GOAL_KIB
#   3. OUT_JOBS jobs each printing OUT_BYTES (`head -c OUT_BYTES /dev/zero`),
#      -j OUT_PAR, stdout to /dev/null: drover (grouped, the default) /
#      xargs (ungrouped) / parallel (grouped) / rust-parallel
#                                          goal: drover <= OUT_RATIO x xargs,
#                                                drover peak RSS < RSS_GOAL_KIB
#   4. --pipe over a 1 GiB file of 100-byte lines, --block PIPE_BLOCK,
#      -j PIPE_PAR, `wc -c`: drover / parallel --pipe / `cat | wc -c`
#                                          goal: drover >= PIPE_GOAL_GBS GB/s
#
# Installs hyperfine, parallel and time (Debian packages) and rust-parallel
# (cargo install) when missing, builds drover in release mode, and writes the
# summary to docs/bench/exec-latest.md.
set -euo pipefail

# ---- parameters -------------------------------------------------------------
TRUE_JOBS=2000
TRUE_PARS="2 16"
SLEEP_JOBS=5000
SLEEP_SECS=2
OUT_JOBS=500
OUT_BYTES=1000000
OUT_PAR=16
OUT_RATIO=1.2
PIPE_BYTES=1073741824
PIPE_BLOCK=16M
PIPE_PAR=2
PIPE_GOAL_GBS=1.0
RSS_GOAL_KIB=$((24 * 1024))

RUNS_TRUE=10      # hyperfine runs per command, workload 1 (each -j)
RUNS_SLEEP=3      # hyperfine runs per command, workload 2
RUNS_OUT=10       # hyperfine runs per command, workload 3
RUNS_PIPE=5       # hyperfine runs per command, workload 4
RSS_SAMPLES=3     # /usr/bin/time samples per command, workloads 2 and 3 (max is reported)
WARMUP=2
GNU_SLEEP=0

usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; }

args="$*"
for arg in "$@"; do
    case "$arg" in
        --quick) RUNS_TRUE=3; RUNS_SLEEP=2; RUNS_OUT=3; RUNS_PIPE=2; RSS_SAMPLES=1; WARMUP=1 ;;
        --gnu-sleep) GNU_SLEEP=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-exec.sh: unknown option: $arg" >&2; usage >&2; exit 2 ;;
    esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DROVER="$ROOT/target/release/drover"

SCRIPT_NAME=bench-exec.sh
# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"
command -v hyperfine >/dev/null || { log "installing hyperfine"; apt_install hyperfine; }
[ -x /usr/bin/time ] || { log "installing time (/usr/bin/time)"; apt_install time; }
command -v parallel >/dev/null || { log "installing GNU parallel"; apt_install parallel; }
mkdir -p "$HOME/.parallel" && touch "$HOME/.parallel/will-cite"
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v rust-parallel >/dev/null; then
    log "installing rust-parallel (cargo install)"
    cargo install --quiet --locked rust-parallel || cargo install --quiet rust-parallel
fi
RUST_PARALLEL="$(command -v rust-parallel)"
PARALLEL="$(command -v parallel)"

# ---- build ------------------------------------------------------------------
log "building drover (release)"
cargo build --release --quiet
[ -x "$DROVER" ] || { echo "bench-exec.sh: $DROVER was not built" >&2; exit 1; }
# What was built (others may commit while the benchmark runs).
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    commit+=" (with uncommitted changes)"
fi

# ---- inputs -----------------------------------------------------------------
TMP="$(mktemp -d -t drover-bench-exec.XXXXXX)"
trap 'rm -rf "$TMP"' EXIT

# Every tool appends the item to the command, so the items are chosen to be
# harmless arguments: `true N`, `sleep SLEEP_SECS`, `head -c OUT_BYTES /dev/zero`.
# `yes` dies of SIGPIPE when `head` has enough: not a failure (pipefail).
repeat() { yes "$1" || true; }
seq "$TRUE_JOBS" >"$TMP/true.items"
repeat "$SLEEP_SECS" | head -n "$SLEEP_JOBS" >"$TMP/sleep.items"
repeat /dev/zero | head -n "$OUT_JOBS" >"$TMP/out.items"
log "preparing the 1 GiB --pipe input"
repeat "$(printf '%099d' 0)" | head -c "$PIPE_BYTES" >"$TMP/big"

# Check that drover does the work before timing it.
check() { # check WHAT EXPECTED ACTUAL
    [ "$2" = "$3" ] || { echo "bench-exec.sh: $1: expected $2, got $3" >&2; exit 1; }
}
check "drover exec true" 0 "$("$DROVER" exec -j 16 -- true <"$TMP/true.items" >/dev/null; echo $?)"
check "drover exec output bytes" $((OUT_JOBS * OUT_BYTES)) \
    "$("$DROVER" exec -j "$OUT_PAR" -- head -c "$OUT_BYTES" <"$TMP/out.items" | wc -c)"
check "drover exec --pipe bytes" "$PIPE_BYTES" \
    "$("$DROVER" exec --pipe --block "$PIPE_BLOCK" -j "$PIPE_PAR" -- wc -c <"$TMP/big" | awk '{ s += $1 } END { print s }')"

# ---- helpers ----------------------------------------------------------------
# hyperfine CSV columns: command,mean,stddev,median,user,system,min,max.
# csv_median FILE ROW -> median seconds of row ROW (1 = first command). The
# median decides pass/fail: it is robust to a stray slow run on a busy box.
csv_median() { awk -F, -v row="$(($2 + 1))" 'NR == row { print $4 }' "$1"; }
# csv_fmt FILE ROW -> "median s (min–max)"
csv_fmt() { awk -F, -v row="$(($2 + 1))" 'NR == row { printf "%.3f s (%.3f–%.3f)", $4, $7, $8 }' "$1"; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
verdict() { if "$@"; then echo PASS; else echo FAIL; fi; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
gbs() { awk -v b="$PIPE_BYTES" -v s="$1" 'BEGIN { printf "%.2f", b / s / 1e9 }'; }
hf() { # hf NAME RUNS WARMUP hyperfine-args...
    local name=$1 runs=$2 warm=$3
    shift 3
    hyperfine --style basic --warmup "$warm" --runs "$runs" \
        --export-markdown "$TMP/$name.md" --export-csv "$TMP/$name.csv" "$@"
}
# rss_max SAMPLES CMD... (stdin from $RSS_IN) -> prints "MAX_KIB WALLS"
rss_max() {
    local n=$1 max=0 walls="" kib wall
    shift
    for _ in $(seq "$n"); do
        /usr/bin/time -f '%M %e' -o "$TMP/time.out" "$@" <"$RSS_IN" >/dev/null
        read -r kib wall <"$TMP/time.out"
        [ "$kib" -gt "$max" ] && max=$kib
        walls+="${wall}s,"
    done
    echo "$max ${walls%,}"
}

load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
rows=()

# ---- 1: many short jobs -----------------------------------------------------
for par in $TRUE_PARS; do
    log "1: $TRUE_JOBS x true, -j $par ($RUNS_TRUE runs each)"
    hf "true$par" "$RUNS_TRUE" "$WARMUP" \
        -n "drover exec -j $par" "'$DROVER' exec -j $par -- true <'$TMP/true.items'" \
        -n "xargs -P $par" "xargs -P $par -n 1 true <'$TMP/true.items'" \
        -n "parallel -j $par" "'$PARALLEL' -j $par true <'$TMP/true.items'" \
        -n "rust-parallel -j $par" "'$RUST_PARALLEL' -j $par true <'$TMP/true.items'"
    c="$TMP/true$par.csv"
    d=$(csv_median "$c" 1)
    r=$(verdict eval "lt $d $(csv_median "$c" 2) && lt $d $(csv_median "$c" 3) && lt $d $(csv_median "$c" 4)")
    rows+=("| $TRUE_JOBS × \`true\`, -j $par (wall) | $(csv_fmt "$c" 1) | $(csv_fmt "$c" 2) | $(csv_fmt "$c" 3) | $(csv_fmt "$c" 4) | drover < all | $r |")
done

# ---- 2: wide fan-out of sleeps ----------------------------------------------
log "2: $SLEEP_JOBS x sleep $SLEEP_SECS, -j $SLEEP_JOBS ($RUNS_SLEEP runs each)"
gnu_sleep=()
if [ "$GNU_SLEEP" -eq 1 ]; then
    gnu_sleep=(-n "parallel -j $SLEEP_JOBS" "'$PARALLEL' -j $SLEEP_JOBS sleep <'$TMP/sleep.items'")
fi
hf sleep "$RUNS_SLEEP" 1 \
    -n "drover exec -j $SLEEP_JOBS" "'$DROVER' exec -j $SLEEP_JOBS -- sleep <'$TMP/sleep.items'" \
    -n "xargs -P $SLEEP_JOBS" "xargs -P $SLEEP_JOBS -n 1 sleep <'$TMP/sleep.items'" \
    -n "rust-parallel -j $SLEEP_JOBS" "'$RUST_PARALLEL' -j $SLEEP_JOBS sleep <'$TMP/sleep.items'" \
    "${gnu_sleep[@]}"
c="$TMP/sleep.csv"
r=$(verdict lt "$(csv_median "$c" 1)" "$(csv_median "$c" 2)")
gnu_col="not run (--gnu-sleep)"
[ "$GNU_SLEEP" -eq 1 ] && gnu_col="$(csv_fmt "$c" 4)"
rows+=("| $SLEEP_JOBS × \`sleep $SLEEP_SECS\`, -j $SLEEP_JOBS (wall) | $(csv_fmt "$c" 1) | $(csv_fmt "$c" 2) | $gnu_col | $(csv_fmt "$c" 3) | drover < xargs | $r |")

log "2: peak RSS ($RSS_SAMPLES sample(s) each)"
RSS_IN="$TMP/sleep.items"
read -r sm_d sw_d < <(rss_max "$RSS_SAMPLES" "$DROVER" exec -j "$SLEEP_JOBS" -- sleep)
read -r sm_x sw_x < <(rss_max "$RSS_SAMPLES" xargs -P "$SLEEP_JOBS" -n 1 sleep)
read -r sm_r sw_r < <(rss_max "$RSS_SAMPLES" "$RUST_PARALLEL" -j "$SLEEP_JOBS" sleep)
r=$(verdict test "$sm_d" -lt "$RSS_GOAL_KIB")
rows+=("| peak RSS, $SLEEP_JOBS × \`sleep $SLEEP_SECS\` | $(mib "$sm_d") | $(mib "$sm_x") | – | $(mib "$sm_r") | drover < $((RSS_GOAL_KIB / 1024)) MiB | $r |")

# ---- 3: jobs with a lot of output -------------------------------------------
log "3: $OUT_JOBS x $OUT_BYTES bytes of output, -j $OUT_PAR ($RUNS_OUT runs each)"
hf out "$RUNS_OUT" "$WARMUP" \
    -n "drover exec -j $OUT_PAR (grouped)" "'$DROVER' exec -j $OUT_PAR -- head -c $OUT_BYTES <'$TMP/out.items' >/dev/null" \
    -n "xargs -P $OUT_PAR (ungrouped)" "xargs -P $OUT_PAR -n 1 head -c $OUT_BYTES <'$TMP/out.items' >/dev/null" \
    -n "parallel -j $OUT_PAR (grouped)" "'$PARALLEL' -j $OUT_PAR head -c $OUT_BYTES <'$TMP/out.items' >/dev/null" \
    -n "rust-parallel -j $OUT_PAR" "'$RUST_PARALLEL' -j $OUT_PAR head -c $OUT_BYTES <'$TMP/out.items' >/dev/null"
c="$TMP/out.csv"
o_d=$(csv_median "$c" 1); o_x=$(csv_median "$c" 2)
o_ratio=$(awk -v a="$o_d" -v b="$o_x" 'BEGIN { printf "%.2f", a / b }')
r=$(verdict le "$o_ratio" "$OUT_RATIO")
rows+=("| $OUT_JOBS × $OUT_BYTES B output, -j $OUT_PAR (wall) | $(csv_fmt "$c" 1) | $(csv_fmt "$c" 2) | $(csv_fmt "$c" 3) | $(csv_fmt "$c" 4) | drover ≤ $OUT_RATIO × xargs (is ${o_ratio}×) | $r |")

log "3: peak RSS ($RSS_SAMPLES sample(s) each)"
RSS_IN="$TMP/out.items"
read -r om_d ow_d < <(rss_max "$RSS_SAMPLES" "$DROVER" exec -j "$OUT_PAR" -- head -c "$OUT_BYTES")
read -r om_x ow_x < <(rss_max "$RSS_SAMPLES" xargs -P "$OUT_PAR" -n 1 head -c "$OUT_BYTES")
read -r om_p ow_p < <(rss_max "$RSS_SAMPLES" "$PARALLEL" -j "$OUT_PAR" head -c "$OUT_BYTES")
read -r om_r ow_r < <(rss_max "$RSS_SAMPLES" "$RUST_PARALLEL" -j "$OUT_PAR" head -c "$OUT_BYTES")
r=$(verdict test "$om_d" -lt "$RSS_GOAL_KIB")
rows+=("| peak RSS, $OUT_JOBS × $OUT_BYTES B output | $(mib "$om_d") | $(mib "$om_x") | $(mib "$om_p") | $(mib "$om_r") | drover < $((RSS_GOAL_KIB / 1024)) MiB | $r |")

# ---- 4: --pipe throughput ---------------------------------------------------
log "4: --pipe, 1 GiB, --block $PIPE_BLOCK, -j $PIPE_PAR ($RUNS_PIPE runs each)"
hf pipe "$RUNS_PIPE" 1 \
    -n "drover exec --pipe --block $PIPE_BLOCK -j $PIPE_PAR wc -c" \
        "'$DROVER' exec --pipe --block $PIPE_BLOCK -j $PIPE_PAR -- wc -c <'$TMP/big'" \
    -n "parallel --pipe --block $PIPE_BLOCK -j $PIPE_PAR wc -c" \
        "'$PARALLEL' --pipe --block $PIPE_BLOCK -j $PIPE_PAR wc -c <'$TMP/big'" \
    -n "cat | wc -c" "cat '$TMP/big' | wc -c"
c="$TMP/pipe.csv"
p_d=$(gbs "$(csv_median "$c" 1)"); p_p=$(gbs "$(csv_median "$c" 2)"); p_c=$(gbs "$(csv_median "$c" 3)")
r=$(verdict le "$PIPE_GOAL_GBS" "$p_d")
rows+=("| \`--pipe\` 1 GiB, --block $PIPE_BLOCK, -j $PIPE_PAR (GB/s; xargs column: \`cat \\| wc -c\`) | $p_d GB/s — $(csv_fmt "$c" 1) | $p_c GB/s — $(csv_fmt "$c" 3) | $p_p GB/s — $(csv_fmt "$c" 2) | – | drover ≥ $PIPE_GOAL_GBS GB/s | $r |")

RSS_IN="$TMP/big"
read -r pm_d _ < <(rss_max 1 "$DROVER" exec --pipe --block "$PIPE_BLOCK" -j "$PIPE_PAR" -- wc -c)
read -r pm_p _ < <(rss_max 1 "$PARALLEL" --pipe --block "$PIPE_BLOCK" -j "$PIPE_PAR" wc -c)

# ---- summary ----------------------------------------------------------------
mode=full; [ "$RUNS_TRUE" -lt 10 ] && mode=quick
cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)"
first_line() { "$@" 2>/dev/null | sed -n 1p || true; }
versions="$(first_line "$PARALLEL" --version); $(first_line "$RUST_PARALLEL" --version); xargs $(first_line xargs --version | awk '{ print $NF }'); $(hyperfine --version)"

summary="$(
    echo "| workload | drover exec | xargs -P | GNU parallel | rust-parallel | goal | result |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
)"

mkdir -p "$ROOT/docs/bench"
{
    cat <<EOF
# drover exec benchmark — latest run

- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')
- machine: nproc = $(nproc), kernel $(uname -r)${cpu:+, $cpu}
- load average at start / end: $load_start / $(cut -d' ' -f1-3 /proc/loadavg) (other work on the box skews wall times)
- drover: commit $commit, release build
- others: $versions
- mode: $mode (hyperfine runs: $RUNS_TRUE / $RUNS_SLEEP / $RUNS_OUT / $RUNS_PIPE for workloads 1 / 2 / 3 / 4; RSS samples: $RSS_SAMPLES, max reported)
- produced by \`scripts/bench-exec.sh${args:+ $args}\`

## Summary

$summary

Wall times are hyperfine medians (min–max); pass/fail uses the median. All
tools of a workload run in the same hyperfine invocation (through \`sh -c\`,
so all pay the same shell start-up), reading their items from the same file
on stdin. Peak RSS is \`/usr/bin/time -f %M\` (ru_maxrss of the tool or of
the largest child it reaped; the children here are ~2 MiB), max over the
samples. Wall times of the RSS runs: workload 2 drover $sw_d, xargs $sw_x,
rust-parallel $sw_r; workload 3 drover $ow_d, xargs $ow_x, parallel $ow_p,
rust-parallel $ow_r. Peak RSS with \`--pipe\` (workload 4, no goal): drover
$(mib "$pm_d"), GNU parallel $(mib "$pm_p").

## 1. $TRUE_JOBS × \`true\`
EOF
    for par in $TRUE_PARS; do
        printf '\n### -j %s\n\n' "$par"
        cat "$TMP/true$par.md"
    done
    cat <<EOF

## 2. $SLEEP_JOBS × \`sleep $SLEEP_SECS\`, -j $SLEEP_JOBS

$(cat "$TMP/sleep.md")

## 3. $OUT_JOBS jobs × $OUT_BYTES bytes of output, -j $OUT_PAR, stdout to /dev/null

$(cat "$TMP/out.md")

## 4. \`--pipe\`, $PIPE_BYTES bytes of 100-byte lines, --block $PIPE_BLOCK, -j $PIPE_PAR, \`wc -c\`

$(cat "$TMP/pipe.md")
EOF
} >"$ROOT/docs/bench/exec-latest.md"

echo
echo "## drover exec vs xargs -P / GNU parallel / rust-parallel — $(nproc) CPUs, kernel $(uname -r), $mode"
echo
echo "$summary"
echo
echo "written to docs/bench/exec-latest.md"

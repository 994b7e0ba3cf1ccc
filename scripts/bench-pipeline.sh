#!/usr/bin/env bash
# Benchmark drover's `[[pipeline]]` on this machine. Not part of the test
# suite: the numbers depend on the machine.
#
#   scripts/bench-pipeline.sh [--quick]
#
#   --quick   fewer hyperfine runs and a single RSS sample (for a fast check)
#
# Workloads:
#   a. STREAM_ITEMS items (`items = { file }`, from `seq`) through two
#      stream-mode stages of `cat`, STREAM_WORKERS workers each, queue
#      STREAM_QUEUE; items/s = STREAM_ITEMS / median wall time.
#      Reference: the shell pipeline `cat FILE | cat | cat`.
#                                    goal: drover >= STREAM_GOAL items/s
#   b. ITEM_JOBS items through one per-item stage running `true` with
#      workers = ITEM_PAR, against `drover exec -j ITEM_PAR true` fed the
#      same items on stdin (exec appends the item, which `true` ignores).
#                                    goal: pipeline <= ITEM_RATIO x exec
#   c. peak RSS of drover (`/usr/bin/time -f %M`) for RSS_ITEMS items from
#      `items = { sh = "seq RSS_ITEMS" }` through a stream stage `cat`, then
#      a slower stream stage (awk flushing every line: a write per item),
#      queue RSS_QUEUE. Reference: the same pipeline with RSS_ITEMS / 10
#      items (memory must not grow with the number of items).
#                                    goal: drover < RSS_GOAL_KIB
#
# Installs hyperfine and time (Debian packages) when missing, builds drover
# in release mode, and writes the summary to docs/bench/pipeline-latest.md.
set -euo pipefail

# ---- parameters -------------------------------------------------------------
STREAM_ITEMS=100000
STREAM_WORKERS=2
STREAM_QUEUE=1024
STREAM_GOAL=200000
ITEM_JOBS=2000
ITEM_PAR=16
ITEM_QUEUE=64
ITEM_RATIO=1.10
RSS_ITEMS=1000000
RSS_QUEUE=64
RSS_GOAL_KIB=$((24 * 1024))

RUNS_STREAM=10    # hyperfine runs per command, workload a
RUNS_ITEM=10      # hyperfine runs per command, workload b
RSS_SAMPLES=3     # /usr/bin/time samples per command, workload c (max is reported)
WARMUP=2

usage() { sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; }

args="$*"
for arg in "$@"; do
    case "$arg" in
        --quick) RUNS_STREAM=3; RUNS_ITEM=3; RSS_SAMPLES=1; WARMUP=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-pipeline.sh: unknown option: $arg" >&2; usage >&2; exit 2 ;;
    esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DROVER="$ROOT/target/release/drover"

SCRIPT_NAME=bench-pipeline.sh
# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"
command -v hyperfine >/dev/null || { log "installing hyperfine"; apt_install hyperfine; }
[ -x /usr/bin/time ] || { log "installing time (/usr/bin/time)"; apt_install time; }

# ---- build ------------------------------------------------------------------
log "building drover (release)"
cargo build --release --quiet
[ -x "$DROVER" ] || { echo "bench-pipeline.sh: $DROVER was not built" >&2; exit 1; }
# What was built (others may commit while the benchmark runs).
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    commit+=" (with uncommitted changes)"
fi

# ---- inputs -----------------------------------------------------------------
TMP="$(mktemp -d -t drover-bench-pipeline.XXXXXX)"
trap 'rm -rf "$TMP"' EXIT

seq "$STREAM_ITEMS" >"$TMP/stream.items"
seq "$ITEM_JOBS" >"$TMP/item.items"

# a: two stream stages of `cat`.
cat >"$TMP/stream.toml" <<EOF
[[pipeline]]
name = "stream"
items = { file = "$TMP/stream.items" }
queue = $STREAM_QUEUE
output = { file = "$TMP/stream.out" }

[[pipeline.stage]]
name = "cat-1"
mode = "stream"
workers = $STREAM_WORKERS
cmd = ["cat"]

[[pipeline.stage]]
name = "cat-2"
mode = "stream"
workers = $STREAM_WORKERS
cmd = ["cat"]
EOF

# b: one per-item stage of `true`.
cat >"$TMP/item.toml" <<EOF
[[pipeline]]
name = "item"
items = { file = "$TMP/item.items" }
queue = $ITEM_QUEUE

[[pipeline.stage]]
name = "true"
cmd = ["true"]
workers = $ITEM_PAR
EOF

# c: a big source into a fast then a slower stream stage. rss_toml N FILE
rss_toml() {
    cat >"$2" <<EOF
[[pipeline]]
name = "rss"
items = { sh = "seq $1" }
queue = $RSS_QUEUE

[[pipeline.stage]]
name = "fast"
mode = "stream"
cmd = ["cat"]

[[pipeline.stage]]
name = "slow"
mode = "stream"
sh = "awk '{ print; fflush() }'"
EOF
}
RSS_SMALL=$((RSS_ITEMS / 10))
rss_toml "$RSS_ITEMS" "$TMP/rss.toml"
rss_toml "$RSS_SMALL" "$TMP/rss-small.toml"

# Check that drover does the work before timing it.
check() { # check WHAT EXPECTED ACTUAL
    [ "$2" = "$3" ] || { echo "bench-pipeline.sh: $1: expected $2, got $3" >&2; exit 1; }
}
# report_field FILE KEY -> the first number after "KEY": in a JSON report
report_field() { tr -d ' \n' <"$1" | grep -o "\"$2\":[0-9]*" | head -n 1 | cut -d: -f2; }
for f in stream item rss; do
    "$DROVER" check "$TMP/$f.toml" >/dev/null
done
check "stream pipeline exit code" 0 "$("$DROVER" run -q "$TMP/stream.toml" --report "$TMP/stream.json" >/dev/null; echo $?)"
check "stream pipeline delivered" "$STREAM_ITEMS" "$(report_field "$TMP/stream.json" delivered)"
check "stream pipeline output" "$(cksum <"$TMP/stream.items")" "$(sort -n "$TMP/stream.out" | cksum)"
check "per-item pipeline exit code" 0 "$("$DROVER" run -q "$TMP/item.toml" --report "$TMP/item.json" >/dev/null; echo $?)"
check "per-item pipeline delivered" "$ITEM_JOBS" "$(report_field "$TMP/item.json" delivered)"
check "drover exec true" 0 "$("$DROVER" exec -j "$ITEM_PAR" -- true <"$TMP/item.items" >/dev/null; echo $?)"
check "rss pipeline exit code" 0 "$("$DROVER" run -q "$TMP/rss.toml" --report "$TMP/rss.json" >/dev/null; echo $?)"
check "rss pipeline delivered" "$RSS_ITEMS" "$(report_field "$TMP/rss.json" delivered)"

# ---- helpers ----------------------------------------------------------------
# hyperfine CSV columns: command,mean,stddev,median,user,system,min,max
# (so the -n names of the commands must not contain commas).
# csv_median FILE ROW -> median seconds of row ROW (1 = first command). The
# median decides pass/fail: it is robust to a stray slow run on a busy box.
csv_median() { awk -F, -v row="$(($2 + 1))" 'NR == row { print $4 }' "$1"; }
# csv_fmt FILE ROW -> "median s (min–max)"
csv_fmt() { awk -F, -v row="$(($2 + 1))" 'NR == row { printf "%.3f s (%.3f–%.3f)", $4, $7, $8 }' "$1"; }
# rate N SECONDS -> items/s, rounded
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
# thousands separators for the table: 1234567 -> 1 234 567
grp() { echo "$1" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\| \)/\1 \2\3/; ta'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
verdict() { if "$@"; then echo met; else echo missed; fi; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
hf() { # hf NAME RUNS WARMUP hyperfine-args...
    local name=$1 runs=$2 warm=$3
    shift 3
    hyperfine --style basic --warmup "$warm" --runs "$runs" \
        --export-markdown "$TMP/$name.md" --export-csv "$TMP/$name.csv" "$@"
}
# rss_max SAMPLES CMD... -> prints "MAX_KIB WALLS"
rss_max() {
    local n=$1 max=0 walls="" kib wall
    shift
    for _ in $(seq "$n"); do
        /usr/bin/time -f '%M %e' -o "$TMP/time.out" "$@" >/dev/null
        read -r kib wall <"$TMP/time.out"
        [ "$kib" -gt "$max" ] && max=$kib
        walls+="${wall}s,"
    done
    echo "$max ${walls%,}"
}

load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
rows=()

# ---- a: stream throughput ---------------------------------------------------
log "a: $STREAM_ITEMS items through 2 stream stages of cat ($RUNS_STREAM runs each)"
hf stream "$RUNS_STREAM" "$WARMUP" \
    -n "drover pipeline: 2 stream stages × $STREAM_WORKERS cat" "'$DROVER' run -q '$TMP/stream.toml'" \
    -n "cat | cat | cat" "cat '$TMP/stream.items' | cat | cat >'$TMP/shell.out'"
c="$TMP/stream.csv"
s_d=$(rate "$STREAM_ITEMS" "$(csv_median "$c" 1)")
s_p=$(rate "$STREAM_ITEMS" "$(csv_median "$c" 2)")
r=$(verdict le "$STREAM_GOAL" "$s_d")
rows+=("| a. $(grp "$STREAM_ITEMS") items, 2 stream stages of \`cat\` ($STREAM_WORKERS workers each, queue $STREAM_QUEUE); peer: \`cat \\| cat \\| cat\` | $(grp "$s_d") items/s — $(csv_fmt "$c" 1) | $(grp "$s_p") items/s — $(csv_fmt "$c" 2) | ≥ $(grp "$STREAM_GOAL") items/s | $r |")

# ---- b: per-item stage vs drover exec ---------------------------------------
log "b: $ITEM_JOBS x true, per-item stage workers = $ITEM_PAR vs drover exec -j $ITEM_PAR ($RUNS_ITEM runs each)"
hf item "$RUNS_ITEM" "$WARMUP" \
    -n "drover pipeline: per-item true with workers = $ITEM_PAR" "'$DROVER' run -q '$TMP/item.toml'" \
    -n "drover exec -j $ITEM_PAR true" "'$DROVER' exec -j $ITEM_PAR -- true <'$TMP/item.items'"
c="$TMP/item.csv"
i_ratio=$(awk -v a="$(csv_median "$c" 1)" -v b="$(csv_median "$c" 2)" 'BEGIN { printf "%.2f", a / b }')
r=$(verdict le "$i_ratio" "$ITEM_RATIO")
rows+=("| b. $ITEM_JOBS × \`true\`, per-item stage, workers = $ITEM_PAR (queue $ITEM_QUEUE); peer: \`drover exec -j $ITEM_PAR true\` | $(csv_fmt "$c" 1) | $(csv_fmt "$c" 2) | pipeline ≤ $ITEM_RATIO × exec (is ${i_ratio}×) | $r |")

# ---- c: peak RSS with a big source ------------------------------------------
log "c: peak RSS, $RSS_ITEMS items through cat then awk ($RSS_SAMPLES sample(s) each)"
read -r m_big w_big < <(rss_max "$RSS_SAMPLES" "$DROVER" run -q "$TMP/rss.toml")
read -r m_small w_small < <(rss_max "$RSS_SAMPLES" "$DROVER" run -q "$TMP/rss-small.toml")
r=$(verdict test "$m_big" -lt "$RSS_GOAL_KIB")
rows+=("| c. peak RSS, $(grp "$RSS_ITEMS") items from \`seq\` → stream \`cat\` → stream \`awk\` (fflush per line), queue $RSS_QUEUE; peer: same with $(grp "$RSS_SMALL") items | $(mib "$m_big") (wall $w_big) | $(mib "$m_small") (wall $w_small) | < $((RSS_GOAL_KIB / 1024)) MiB | $r |")

# ---- summary ----------------------------------------------------------------
mode=full; [ "$RUNS_STREAM" -lt 10 ] && mode=quick
cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)"

summary="$(
    echo "| workload | drover | peer | goal | result |"
    echo "|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
)"

mkdir -p "$ROOT/docs/bench"
{
    cat <<EOF
# drover pipeline benchmark — latest run

- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')
- machine: nproc = $(nproc), kernel $(uname -r)${cpu:+, $cpu}
- load average at start / end: $load_start / $(cut -d' ' -f1-3 /proc/loadavg) (other work on the box skews wall times)
- drover: commit $commit, release build; $(hyperfine --version)
- mode: $mode (hyperfine runs: $RUNS_STREAM / $RUNS_ITEM for workloads a / b, warmup $WARMUP; RSS samples: $RSS_SAMPLES, max reported)
- produced by \`scripts/bench-pipeline.sh${args:+ $args}\`

## Summary

$summary

Wall times are hyperfine medians (min–max); pass/fail uses the median. The
commands of a workload run in the same hyperfine invocation (through \`sh -c\`,
so all pay the same shell start-up). Items/s is items / median wall time of
the whole \`drover run\` (start-up, spawning the workers and the source
included). Peak RSS is \`/usr/bin/time -f %M\`: ru_maxrss of drover or of the
largest child it reaped (\`seq\`, \`cat\`, \`awk\`: ~2 MiB), max over the samples.
The \`cat | cat | cat\` peer of workload a is only a floor (kernel pipes, no
per-item bookkeeping, no process start-up to speak of); at a few
milliseconds hyperfine cannot time it precisely.

## a. $STREAM_ITEMS items through two stream stages of \`cat\`

$(cat "$TMP/stream.md")

## b. $ITEM_JOBS × \`true\`: per-item stage vs \`drover exec\`

$(cat "$TMP/item.md")
EOF
} >"$ROOT/docs/bench/pipeline-latest.md"

echo
echo "## drover pipeline — $(nproc) CPUs, kernel $(uname -r), $mode"
echo
echo "$summary"
echo
echo "written to docs/bench/pipeline-latest.md"

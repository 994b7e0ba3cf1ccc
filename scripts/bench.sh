#!/usr/bin/env bash
# drover against its peers and against the machine's floor, side by side in
# one run. Not part of the test suite: a full run takes about 15 minutes and
# the numbers depend on the machine.
#
#   scripts/bench.sh [--quick] [--runs N] [--only LIST]
#
#   --quick     2 repetitions (startup: 10) instead of 5 (startup: 30)
#   --runs N    N repetitions of every workload
#   --only L    only the workloads in L, e.g. --only 1,4 (the README is then
#               left alone)
#
# Tools: drover (exec and run), xargs -P, GNU parallel, rust-parallel, and the
# floor: scripts/bench/floor.c, a C program that posix_spawns and waits N
# processes with at most J at once and does nothing else; in workload 1 also
# floor-2t, the same from two threads (the limit on 2 CPUs: one thread
# spawns while the other waits in vfork).
#
# Workloads (every tool of a workload interleaved: A B C A B C ...):
#   1. 2000 x `true` at -j 2 and -j 16            per-job overhead, jobs/s
#   2. 200 x `sleep 1` at -j 200, 1000 x `sleep 1` at -j 1000   fan-out;
#      and 200 at once of scripts/bench/bare-sleep.S, a sleep without the
#      C library's start-up (the runners' own fan-out cost)
#   3. 5000 x `sleep 2` at -j 5000                scale, peak RSS
#   4. 1 GiB of lines through one `cat`: `producer | cat | wc -c` in sh
#      against drover run (stdin = { from }) and drover exec --pipe
#   5. 500 jobs x 1 MB of output, -j 16, into a pipe: drover grouped (the
#      default) against ungrouped xargs; drover run capturing a tail of each
#   6. one job, start to exit (startup)
#   7. drover run on a 10 000-job file against drover exec on the same jobs
#      (the cost of parsing, planning and the report)
#
# Each run is timed by scripts/bench/measure.c: wall clock from spawn to
# reap, and ru_maxrss (the largest of the tool and the children it reaped;
# the children here are true/sleep/cat, 1-2 MiB). Tables report median, min
# and max; goals are judged on the median.
#
# Installs what it needs (Debian: parallel, hyperfine, gcc, gnuplot-nox;
# cargo install rust-parallel), builds drover in release mode, and writes
# docs/bench/latest.md, docs/bench/latest.tsv (every run), docs/bench/chart.png
# and the README's benchmark section.
set -euo pipefail

# ---- parameters -------------------------------------------------------------
RUNS=5
STARTUP_RUNS=30
ONLY=""
TRUE_JOBS=2000
SLEEP_JOBS_A=200
SLEEP_JOBS_B=1000
SCALE_JOBS=5000
DATA_BYTES=$((1 << 30))
OUT_JOBS=500
OUT_BYTES=1000000
OUT_PAR=16
BIG_JOBS=10000
BIG_PAR=16

usage() { sed -n '2,38p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) RUNS=2; STARTUP_RUNS=10 ;;
        --runs) RUNS=$2; STARTUP_RUNS=$((RUNS * 6)); shift ;;
        --only) ONLY=",$2,"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
wanted() { [ -z "$ONLY" ] || [[ "$ONLY" == *",$1,"* ]]; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DROVER="$ROOT/target/release/drover"
OUT_DIR="$ROOT/docs/bench"

SCRIPT_NAME=bench.sh
# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"

# ---- what it needs ----------------------------------------------------------
if [ ! -c /dev/null ]; then
    echo "bench.sh: /dev/null is not the null device on this machine; restore it (mknod -m 666 /dev/null c 1 3)" >&2
    exit 1
fi
need=()
command -v parallel >/dev/null || need+=(parallel)
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    apt_install "${need[@]}"
fi
mkdir -p "$HOME/.parallel" && touch "$HOME/.parallel/will-cite"
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v rust-parallel >/dev/null; then
    log "installing rust-parallel (cargo install)"
    cargo install --quiet --locked rust-parallel
fi

log "building drover (release)"
cargo build --release --quiet
TMP="$(mktemp -d -t drover-bench.XXXXXX)"
trap 'rm -rf "$TMP"' EXIT
log "building the floor and the timer"
cc -O2 -Wall -pthread -o "$TMP/floor" scripts/bench/floor.c
cc -O2 -Wall -o "$TMP/measure" scripts/bench/measure.c
# x86-64 Linux only (system call numbers); elsewhere the workload is skipped.
BARE=""
if [ "$(uname -m)" = x86_64 ]; then
    cc -static -nostdlib -o "$TMP/bare-sleep" scripts/bench/bare-sleep.S && BARE="$TMP/bare-sleep"
fi
FLOOR="$TMP/floor"
TRUE="$(type -P true)"
SLEEP="$(type -P sleep)"
HEAD="$(type -P head)"

# ---- inputs -----------------------------------------------------------------
# items FILE COUNT VALUE: COUNT lines of VALUE. Every tool appends the item
# to the command, so all of them run the same argv (`true 0`, `sleep 1`).
items() { awk -v n="$2" -v v="$3" 'BEGIN { for (i = 0; i < n; i++) print v }' >"$1"; }
# job_file FILE COUNT MAX_PARALLEL CMD_TOML [DEFAULTS_TOML]
job_file() {
    {
        printf '[run]\nmax_parallel = %s\n\n' "$3"
        [ -z "${5:-}" ] || printf '[defaults]\n%s\n\n' "$5"
        printf '[[job]]\nname = "j-{n}"\ncmd = %s\n' "$4"
        printf 'matrix = { n = ['
        seq "$2" | sed 's/.*/"&"/' | paste -sd, -
        printf '] }\n'
    } >"$1"
}
items "$TMP/true.items" "$TRUE_JOBS" 0
items "$TMP/sleep1a.items" "$SLEEP_JOBS_A" 1
items "$TMP/sleep1b.items" "$SLEEP_JOBS_B" 1
items "$TMP/sleep2.items" "$SCALE_JOBS" 2
items "$TMP/out.items" "$OUT_JOBS" "$OUT_BYTES"
items "$TMP/one.items" 1 0
items "$TMP/big.items" "$BIG_JOBS" 0
for j in 2 16; do job_file "$TMP/true-$j.toml" "$TRUE_JOBS" "$j" '["true", "0"]'; done
job_file "$TMP/sleep1a.toml" "$SLEEP_JOBS_A" 0 '["sleep", "1"]'
job_file "$TMP/sleep1b.toml" "$SLEEP_JOBS_B" 0 '["sleep", "1"]'
job_file "$TMP/bare.toml" "$SLEEP_JOBS_A" 0 "[\"$TMP/bare-sleep\", \"1\"]"
job_file "$TMP/sleep2.toml" "$SCALE_JOBS" 0 '["sleep", "2"]'
job_file "$TMP/one.toml" 1 0 '["true", "0"]'
job_file "$TMP/big.toml" "$BIG_JOBS" "$BIG_PAR" '["true", "0"]'
# Workload 5 for drover run: every byte through its capture pipes, the
# report keeping a 64 KiB tail of each.
job_file "$TMP/out.toml" "$OUT_JOBS" "$OUT_PAR" "[\"head\", \"-c\", \"$OUT_BYTES\", \"/dev/zero\"]" \
    'capture_limit = "64KiB"'
if wanted 4; then
    log "writing 1 GiB of lines"
    # `yes` dies of SIGPIPE when head has enough: not a failure here.
    (set +o pipefail; yes 'drover moves this line from one process to the next, 64 bytes.' |
        head -c "$DATA_BYTES" >"$TMP/data")
    cat >"$TMP/pipe.toml" <<EOF
[[job]]
name = "producer"
cmd = ["cat", "$TMP/data"]

[[job]]
name = "cat"
cmd = ["cat"]
stdin = { from = "producer" }

[[job]]
name = "count"
cmd = ["wc", "-c"]
stdin = { from = "cat" }
stdout = "inherit"
EOF
fi

# ---- the runner ---------------------------------------------------------------
RESULTS="$TMP/results.tsv"
: >"$RESULTS"
# m [measure options] -- CMD...: one timed run; prints "WALL KIB STATUS CPU".
m() { "$TMP/measure" -e "$TMP/stderr.log" "$@"; }

# interleave ID REPS FN TOOL...: REPS rounds of FN TOOL for every TOOL in turn.
interleave() {
    local id=$1 reps=$2 fn=$3 rep tool wall kib status cpu
    shift 3
    for rep in $(seq "$reps"); do
        for tool in "$@"; do
            read -r wall kib status cpu < <("$fn" "$tool")
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$tool" "$rep" "$wall" "$kib" "$status" "$cpu" >>"$RESULTS"
            if [ "$status" != 0 ]; then
                log "warning: $id: $tool exited with $status; its stderr ends:"
                tail -3 "$TMP/stderr.log" >&2 || true
                # Without its floor a workload means nothing.
                [ "$tool" != floor ] || exit 1
            fi
        done
    done
}

TOOLS_SPAWN=(floor drover-exec drover-run xargs parallel rust-parallel)

# Workloads 1-3: JOBS jobs of CMD with its item appended, PAR at once;
# ITEMS holds the items, TOML the same jobs for drover run; the floor runs
# FLOOR_PROG (CMD's path) with FLOOR_ARG.
JOBS=0 PAR=0 ITEMS="" TOML="" CMD="" FLOOR_PROG="" FLOOR_ARG=""
w_fanout() {
    case $1 in
        floor) m -- "$FLOOR" "$JOBS" "$PAR" "$FLOOR_PROG" "$FLOOR_ARG" ;;
        floor-2t) m -- "$FLOOR" -t 2 "$JOBS" "$PAR" "$FLOOR_PROG" "$FLOOR_ARG" ;;
        drover-exec) m -i "$ITEMS" -- "$DROVER" exec -j "$PAR" -- "$CMD" ;;
        drover-run) m -- "$DROVER" run -q "$TOML" ;;
        xargs) m -i "$ITEMS" -- xargs -P "$PAR" -n 1 "$CMD" ;;
        parallel) m -i "$ITEMS" -- parallel -j "$PAR" "$CMD" ;;
        rust-parallel) m -i "$ITEMS" -- rust-parallel -j "$PAR" "$CMD" ;;
    esac
}

w_data() {
    local data="$TMP/data"
    case $1 in
        shell-pipe) m -- sh -c "cat '$data' | cat | wc -c" ;;
        drover-run) m -- "$DROVER" run -q "$TMP/pipe.toml" ;;
        drover-exec) m -- sh -c "cat '$data' | '$DROVER' exec --pipe cat | wc -c" ;;
        drover-exec-16M) m -- sh -c "cat '$data' | '$DROVER' exec --pipe --block 16M cat | wc -c" ;;
        drover-exec-rr) m -- sh -c "cat '$data' | '$DROVER' exec --pipe --round-robin -j 1 -u cat | wc -c" ;;
        drover-exec-rr-grouped) m -- sh -c "cat '$data' | '$DROVER' exec --pipe --round-robin -j 1 cat | wc -c" ;;
        parallel) m -- sh -c "cat '$data' | parallel --pipe cat | wc -c" ;;
        parallel-rr) m -- sh -c "cat '$data' | parallel --pipe --round-robin -j 1 -u cat | wc -c" ;;
    esac
}

w_out() {
    case $1 in
        floor) m -p -- "$FLOOR" "$OUT_JOBS" "$OUT_PAR" "$HEAD" -c "$OUT_BYTES" /dev/zero ;;
        drover-exec) m -p -i "$TMP/out.items" -- "$DROVER" exec -j "$OUT_PAR" -- head -c {} /dev/zero ;;
        drover-run) m -p -- "$DROVER" run -q "$TMP/out.toml" ;;
        xargs) m -p -i "$TMP/out.items" -- xargs -P "$OUT_PAR" -I{} head -c {} /dev/zero ;;
        parallel) m -p -i "$TMP/out.items" -- parallel -j "$OUT_PAR" head -c {} /dev/zero ;;
        rust-parallel) m -p -i "$TMP/out.items" -- rust-parallel -j "$OUT_PAR" head /dev/zero -c ;;
    esac
}

w_one() {
    case $1 in
        floor) m -- "$FLOOR" 1 1 "$TRUE" 0 ;;
        drover-exec) m -- "$DROVER" exec -- true ::: 0 ;;
        drover-run) m -- "$DROVER" run -q "$TMP/one.toml" ;;
        xargs) m -i "$TMP/one.items" -- xargs true ;;
        parallel) m -i "$TMP/one.items" -- parallel true ;;
        rust-parallel) m -i "$TMP/one.items" -- rust-parallel true ;;
    esac
}

w_big() {
    case $1 in
        floor) m -- "$FLOOR" "$BIG_JOBS" "$BIG_PAR" "$TRUE" 0 ;;
        drover-exec) m -i "$TMP/big.items" -- "$DROVER" exec -j "$BIG_PAR" -- true ;;
        drover-run) m -- "$DROVER" run -q --report "$TMP/big.json" "$TMP/big.toml" ;;
        drover-check) m -- "$DROVER" check "$TMP/big.toml" ;;
    esac
}

load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
started=$(date +%s)
if wanted 1; then
    for PAR in 2 16; do
        JOBS=$TRUE_JOBS ITEMS="$TMP/true.items" TOML="$TMP/true-$PAR.toml" CMD=true FLOOR_PROG="$TRUE" FLOOR_ARG=0
        log "1: $JOBS x true at -j $PAR ($RUNS rounds)"
        interleave "true-j$PAR" "$RUNS" w_fanout floor-2t "${TOOLS_SPAWN[@]}"
    done
fi
if wanted 2; then
    JOBS=$SLEEP_JOBS_A PAR=$SLEEP_JOBS_A ITEMS="$TMP/sleep1a.items" TOML="$TMP/sleep1a.toml" CMD=sleep FLOOR_PROG="$SLEEP" FLOOR_ARG=1
    log "2: $JOBS x sleep 1 at -j $PAR ($RUNS rounds)"
    interleave "sleep-$JOBS" "$RUNS" w_fanout "${TOOLS_SPAWN[@]}"
    # GNU parallel stops at ~250 jobs at once for lack of file handles.
    JOBS=$SLEEP_JOBS_B PAR=$SLEEP_JOBS_B ITEMS="$TMP/sleep1b.items" TOML="$TMP/sleep1b.toml"
    log "2: $JOBS x sleep 1 at -j $PAR ($RUNS rounds)"
    interleave "sleep-$JOBS" "$RUNS" w_fanout floor drover-exec drover-run xargs rust-parallel
    # The same 200 with a sleep that starts at once: what is left over the
    # second is the runner's, not the sleeps' start-up.
    if [ -n "$BARE" ]; then
        JOBS=$SLEEP_JOBS_A PAR=$SLEEP_JOBS_A ITEMS="$TMP/sleep1a.items" TOML="$TMP/bare.toml" CMD="$BARE" FLOOR_PROG="$BARE" FLOOR_ARG=1
        log "2: $JOBS x bare-sleep at -j $PAR ($RUNS rounds)"
        interleave "bare-$JOBS" "$RUNS" w_fanout "${TOOLS_SPAWN[@]}"
    fi
fi
if wanted 3; then
    JOBS=$SCALE_JOBS PAR=$SCALE_JOBS ITEMS="$TMP/sleep2.items" TOML="$TMP/sleep2.toml" CMD=sleep FLOOR_PROG="$SLEEP" FLOOR_ARG=2
    log "3: $JOBS x sleep 2 at -j $PAR ($RUNS rounds)"
    interleave "sleep-$JOBS" "$RUNS" w_fanout floor drover-exec drover-run xargs rust-parallel
fi
if wanted 4; then
    log "4: 1 GiB through cat ($RUNS rounds)"
    cat "$TMP/data" >/dev/null # into the page cache
    for tool in shell-pipe drover-exec drover-exec-rr drover-exec-rr-grouped parallel; do
        got="$(w_data_check() { sh -c "cat '$TMP/data' | $1"; }; case $tool in
            shell-pipe) w_data_check "cat | wc -c" ;;
            drover-exec) w_data_check "'$DROVER' exec --pipe cat | wc -c" ;;
            drover-exec-rr) w_data_check "'$DROVER' exec --pipe --round-robin -j 1 -u cat | wc -c" ;;
            drover-exec-rr-grouped) w_data_check "'$DROVER' exec --pipe --round-robin -j 1 cat | wc -c" ;;
            parallel) w_data_check "parallel --pipe cat | wc -c" ;;
        esac)"
        [ "$got" = "$DATA_BYTES" ] || { echo "bench.sh: $tool moved $got bytes, not $DATA_BYTES" >&2; exit 1; }
    done
    got="$("$DROVER" run -q "$TMP/pipe.toml")"
    [ "$got" = "$DATA_BYTES" ] || { echo "bench.sh: drover run moved $got bytes, not $DATA_BYTES" >&2; exit 1; }
    interleave data "$RUNS" w_data shell-pipe drover-run drover-exec-rr drover-exec-rr-grouped drover-exec drover-exec-16M parallel parallel-rr
fi
if wanted 5; then
    log "5: $OUT_JOBS x $OUT_BYTES bytes of output at -j $OUT_PAR ($RUNS rounds)"
    interleave output "$RUNS" w_out floor drover-exec drover-run xargs parallel rust-parallel
fi
if wanted 6; then
    log "6: one job, start to exit ($STARTUP_RUNS rounds)"
    interleave startup "$STARTUP_RUNS" w_one "${TOOLS_SPAWN[@]}"
fi
if wanted 7; then
    log "7: $BIG_JOBS jobs from a job file ($RUNS rounds)"
    interleave big "$RUNS" w_big floor drover-exec drover-run drover-check
fi
elapsed=$(($(date +%s) - started))

# ---- numbers ----------------------------------------------------------------
# stat ID TOOL -> "MEDIAN MIN MAX MAXRSS_KIB" (empty if not measured)
stat() {
    awk -F'\t' -v id="$1" -v tool="$2" '$1 == id && $2 == tool { print $4, $5 }' "$RESULTS" |
        sort -n | awk '
        { w[NR] = $1; if ($2 > rss) rss = $2 }
        END {
            if (NR == 0) exit
            med = (NR % 2) ? w[(NR + 1) / 2] : (w[NR / 2] + w[NR / 2 + 1]) / 2
            printf "%.6f %.6f %.6f %d\n", med, w[1], w[NR], rss
        }'
}
median() { stat "$1" "$2" | awk '{ print $1 }'; }
# cpu_median ID TOOL -> the median CPU seconds of the tool and its jobs
cpu_median() {
    awk -F'\t' -v id="$1" -v tool="$2" '$1 == id && $2 == tool { print $7 }' "$RESULTS" |
        sort -n | awk '{ c[NR] = $1 } END { if (NR) print (NR % 2) ? c[(NR + 1) / 2] : (c[NR / 2] + c[NR / 2 + 1]) / 2 }'
}
rss_kib() { stat "$1" "$2" | awk '{ print $4 }'; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
pass() { if awk "BEGIN { exit !($1) }"; then echo met; else echo "**missed**"; fi; }
floor_of() {
    case $1 in
        data) echo shell-pipe ;;
        *) echo floor ;;
    esac
}

# table ID UNIT_NOTE TOOL...: one row per tool.
table() {
    local id=$1 note=$2 tool s f
    shift 2
    f="$(median "$id" "$(floor_of "$id")")"
    echo "| tool | median | min | max | peak RSS | × floor | $note |"
    echo "|---|---|---|---|---|---|---|"
    for tool in "$@"; do
        s="$(stat "$id" "$tool")"
        [ -n "$s" ] || continue
        read -r med min max rss <<<"$s"
        local extra=""
        case $id in
            true-*|big) extra="$(calc '%.0f jobs/s' "$(count_of "$id") / $med")" ;;
            data) extra="$(calc '%.2f GB/s' "$DATA_BYTES / $med / 1e9")" ;;
            startup) extra="$(calc '%+.2f ms' "($med - $f) * 1000")" ;;
            *) extra="$(calc '%+.0f ms' "($med - $f) * 1000")" ;;
        esac
        printf '| %s | %s | %s | %s | %.1f MiB | %.2f | %s |\n' "$tool" "$(secs "$med")" \
            "$(secs "$min")" "$(secs "$max")" "$(calc '%.3f' "$rss / 1024")" "$(calc '%.4f' "$med / $f")" "$extra"
    done
}
# secs S: seconds, or milliseconds under a tenth of a second.
secs() { awk -v s="$1" 'BEGIN { if (s < 0.1) printf "%.2f ms", s * 1000; else printf "%.3f s", s }'; }
count_of() {
    case $1 in
        true-*) echo "$TRUE_JOBS" ;;
        big) echo "$BIG_JOBS" ;;
    esac
}

goal_rows=()
# goal TEXT MEASURED CONDITION
goal() { goal_rows+=("| $1 | $2 | $(pass "$3") |"); }
# A figure beside the goals, not one of them.
shown() { goal_rows+=("| $1 | $2 | (not a goal) |"); }
have() { [ -n "$(median "$1" "$2")" ]; }

# spawn_goals J FLOOR NAME: exec and run at -j J reach 95% (-j 16) or 90%
# (-j 2) of FLOOR's jobs/s (NAME: how the row calls it).
spawn_goals() {
    local J=$1 floor=$2 name=$3 want f d t
    want=$([ "$J" = 16 ] && echo 0.95 || echo 0.90)
    f="$(median "true-j$J" "$floor")"
    for t in drover-exec drover-run; do
        d="$(median "true-j$J" "$t")"
        goal "spawn, 2000 × true -j $J, ${t#drover-}: ≥ $(calc '%.0f' "$want * 100")% of $name's jobs/s" \
            "$(calc '%.1f%% (%.3f s vs %.3f s)' "$f / $d * 100, $d, $f")" "$f / $d >= $want"
    done
}
if have true-j16 drover-exec; then
    for J in 16 2; do
        spawn_goals "$J" floor "the floor"
        best=""
        for t in xargs parallel rust-parallel; do
            p="$(median "true-j$J" "$t")"
            [ -n "$p" ] && { [ -z "$best" ] || awk "BEGIN { exit !($p < $best) }"; } && best=$p
        done
        d="$(median "true-j$J" drover-exec)"
        goal "2000 × true -j $J: exec faster than every peer" "$(calc '%.3f s vs %.3f s' "$d, $best")" "$d < $best"
    done
fi
# The limit: the floor from two threads.
if have true-j16 floor-2t; then
    for J in 16 2; do
        spawn_goals "$J" floor-2t "the two-thread floor"
    done
fi
if have sleep-200 drover-exec; then
    for t in drover-exec drover-run; do
        d="$(median sleep-200 "$t")"
        f="$(median sleep-200 floor)"
        # Where the floor itself is over 1.06 s (the sleeps' start-up on a
        # VM), the goal is the floor: no runner can start them sooner.
        goal "200 × sleep 1, -j 200, ${t#drover-}: ≤ 1.06 s, or ≤ the floor where the floor is over it" \
            "$(calc '%.3f s (floor %.3f s)' "$d, $f")" "$d <= 1.06 || $d <= $f"
    done
    # Near what no runner can beat: the sleeps' own start-up (exec, ld.so)
    # is CPU work, shared by the CPUs, before the last `sleep 1` begins.
    # (Their exits are in the figure too: a little above the true limit.)
    c="$(cpu_median sleep-200 floor)"
    shown "200 × sleep 1: 1 s + the jobs' own CPU time (the floor's run) / $(nproc) CPUs, most of it start-up before the last sleep begins" \
        "$(calc '%.0f ms of CPU → %.3f s' "$c * 1000, 1 + $c / $(nproc)")"
fi
if have bare-200 drover-exec; then
    for t in drover-exec drover-run; do
        d="$(median bare-200 "$t")"
        goal "fan-out, 200 × bare-sleep (a sleep with no C library start-up), -j 200, ${t#drover-}: ≤ 1.06 s" \
            "$(calc '%.3f s (floor %.3f s, jobs'"'"' CPU %.0f ms)' "$d, $(median bare-200 floor), $(cpu_median bare-200 floor) * 1000")" "$d <= 1.06"
    done
fi
if have sleep-5000 drover-exec; then
    f1="$(median true-j16 floor)"
    for t in drover-exec drover-run; do
        d="$(median sleep-5000 "$t")"
        if [ -n "$f1" ]; then
            bound="$(calc '%.4f' "$SCALE_JOBS / ($TRUE_JOBS / $f1) + 2")"
            goal "5000 × sleep 2, ${t#drover-}: within 10% of 5000 / floor rate + 2 s = $(calc '%.3f' "$bound") s" \
                "$(calc '%.3f s (%.1f%%)' "$d, ($d / $bound - 1) * 100")" "$d <= $bound * 1.10"
        fi
        r="$(rss_kib sleep-5000 "$t")"
        goal "5000 × sleep 2, ${t#drover-}: peak RSS < 24 MiB" "$(calc '%.1f MiB' "$r / 1024")" "$r < 24 * 1024"
    done
fi
if have data drover-exec; then
    f="$(median data shell-pipe)"
    # The goal's workload is one `cat` job: run's stdin.from, and exec
    # --pipe with --round-robin -j 1. Blocks of 1 MiB and 16 MiB are a job
    # each (1024 and 64 `cat` start-ups): shown, not the goal.
    for t in drover-run drover-exec-rr drover-exec-rr-grouped drover-exec drover-exec-16M; do
        d="$(median data "$t")"
        [ -n "$d" ] || continue
        ratio="$(calc '%.2f GB/s vs %.2f GB/s (%.0f%%)' "$DATA_BYTES / $d / 1e9, $DATA_BYTES / $f / 1e9, $f / $d * 100")"
        case $t in
            drover-run | drover-exec-rr)
                goal "1 GiB through one cat job, ${t#drover-}: ≥ 90% of the shell pipe's throughput" "$ratio" "$f / $d >= 0.90" ;;
            drover-exec-rr-grouped)
                shown "1 GiB through one cat job, exec-rr with its output grouped (followed: written out as it comes), against the shell pipe" "$ratio" ;;
            *) shown "1 GiB through $([ "$t" = drover-exec ] && echo 1024 || echo 64) cat jobs, ${t#drover-}, against the shell pipe" "$ratio" ;;
        esac
    done
fi
if have output drover-exec; then
    d="$(median output drover-exec)"; x="$(median output xargs)"
    goal "500 × 1 MB grouped, -j 16: ≤ 1.2 × ungrouped xargs" "$(calc '%.3f s vs %.3f s (%.2f×)' "$d, $x, $d / $x")" "$d <= 1.2 * $x"
    r="$(rss_kib output drover-exec)"
    goal "500 × 1 MB grouped: peak RSS < 20 MiB" "$(calc '%.1f MiB' "$r / 1024")" "$r < 20 * 1024"
fi
if have startup drover-exec; then
    f="$(median startup floor)"
    for t in drover-exec drover-run; do
        d="$(median startup "$t")"
        goal "startup, ${t#drover-}: ≤ 2 ms over the floor running the same job" \
            "$(calc '%.2f ms (total %.2f ms, floor %.2f ms)' "($d - $f) * 1000, $d * 1000, $f * 1000")" "$d - $f <= 0.002"
    done
fi
if have big drover-run; then
    r="$(median big drover-run)"; e="$(median big drover-exec)"; c="$(median big drover-check)"
    goal "10 000-job file: run's own cost (run − exec of the same jobs) < 5% of the run" \
        "$(calc '%.1f%% (run %.3f s, exec %.3f s, check alone %.3f s)' "($r - $e) / $r * 100, $r, $e, $c")" "($r - $e) / $r < 0.05"
fi

# ---- the chart --------------------------------------------------------------
CHART_TOOLS=(floor-2t drover-exec drover-run xargs parallel rust-parallel)
chart_ids=(true-j2 true-j16 sleep-200 bare-200 sleep-1000 sleep-5000 data output startup)
chart_labels=("2000 true -j2" "2000 true -j16" "200 sleep 1" "200 bare-sleep" "1000 sleep 1" "5000 sleep 2" "1 GiB cat" "500x1MB out" "startup")
{
    printf 'workload'
    printf '\t%s' "${CHART_TOOLS[@]}"
    printf '\n'
    for i in "${!chart_ids[@]}"; do
        id=${chart_ids[$i]}
        f="$(median "$id" "$(floor_of "$id")")"
        [ -n "$f" ] || continue
        printf '"%s"' "${chart_labels[$i]}"
        for t in "${CHART_TOOLS[@]}"; do
            v="$(median "$id" "$t")"
            if [ -n "$v" ]; then printf '\t%s' "$(calc '%.4f' "$v / $f")"; else printf '\t-'; fi
        done
        printf '\n'
    done
} >"$TMP/chart.dat"
mkdir -p "$OUT_DIR"
if [ "$(wc -l <"$TMP/chart.dat")" -gt 1 ]; then
    gnuplot <<EOF
set terminal pngcairo size 1100,520 font "sans,10" noenhanced
set output "$OUT_DIR/chart.png"
set title "Wall time as a multiple of the floor (1 = the C posix_spawn loop, or the shell pipe for 1 GiB cat; lower is better)\n$(date -u +%Y-%m-%d), $(nproc) CPUs, $(uname -r)"
set datafile separator "\t"
set datafile missing "-"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set boxwidth 0.9
set logscale y 2
set yrange [0.5:*]
set ytics (0.5, 1, 1.5, 2, 4, 8, 16, 32, 64)
set grid ytics
set key top left
set xtics rotate by -20
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 1.5
plot for [i=2:$((${#CHART_TOOLS[@]} + 1))] "$TMP/chart.dat" using i:xtic(1) title columnhead(i)
EOF
fi

# ---- the report -------------------------------------------------------------
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    commit+=" (with uncommitted changes)"
fi
cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)"
mem="$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
first_line() { "$@" 2>/dev/null | head -1 || true; }
versions="$(first_line parallel --version); $(first_line rust-parallel --version); xargs $(first_line xargs --version | awk '{ print $NF }')"
machine="$(nproc) CPUs${cpu:+ ($cpu)}, $mem, kernel $(uname -r)"
when="$(date -u '+%Y-%m-%d %H:%M UTC')"
goals_md="$(
    echo "| goal | measured | result |"
    echo "|---|---|---|"
    printf '%s\n' "${goal_rows[@]}"
)"
# The tables of drover serve's and the fleet's own benchmarks (slower, and
# needing pueue and PostgreSQL: run apart), as they last ran, so that one
# page shows where drover stands on every face.
tables_of() { # tables_of FILE: every table of FILE, up to its per-round table
    awk '/^## Every round/ { exit } /^\|/ { print; t = 1; next } t { print ""; t = 0 }' "$1"
}
other_faces() {
    local serve="$OUT_DIR/serve-latest.md" fleet="$OUT_DIR/fleet-latest.md"
    printf '\n## drover serve and the fleet\n\n'
    printf 'From their own benchmarks, run apart (not by this script): each line says when.\n'
    if [ -f "$serve" ]; then
        printf '\n### drover serve: 10 000 × POST /v1/jobs against `pueue add` ([serve-latest.md](serve-latest.md), `scripts/bench-serve.sh`)\n\n'
        grep -m1 '^- date:' "$serve" || true
        printf '\n'
        tables_of "$serve"
    fi
    if [ -f "$fleet" ]; then
        printf '\n### The fleet: workers sharing one PostgreSQL queue ([fleet-latest.md](fleet-latest.md), `scripts/bench-fleet.sh`)\n\n'
        grep -m1 '^20[0-9][0-9]-' "$fleet" || true
        printf '\n'
        tables_of "$fleet"
        printf '\nFor context only (published, not measured here): River ~500 jobs/s and pgmq ~11 000 messages/s on a 4-CPU machine in one independent benchmark.\n'
    fi
}
section() { # section ID TITLE NOTE TOOL...
    local id=$1 title=$2
    have "$id" "$4" || return 0
    printf '\n### %s\n\n' "$title"
    shift 2
    table "$id" "$@"
}
{
    cat <<EOF
# drover benchmark — latest run

- date: $when; took ${elapsed} s
- machine: $machine
- load average at start / end: $load_start / $(cut -d' ' -f1-3 /proc/loadavg)
- drover: commit $commit, release build; peers: $versions
- $RUNS rounds per workload ($STARTUP_RUNS for startup), every tool in turn within a round
- produced by \`scripts/bench.sh${ONLY:+ --only $(echo "${ONLY:1:-1}")}\`; every run is in \`latest.tsv\`

![drover and its peers as multiples of the floor](chart.png)

## Goals

$goals_md

## Workloads

"× floor" divides the median by the floor's median: the C program of
\`scripts/bench/floor.c\` (posix_spawn and wait, one thread, nothing else;
\`floor-2t\` is the same from two threads, the limit on this machine), or
for 1 GiB the plain shell pipe \`cat data | cat | wc -c\`. Peak RSS is the
largest of the tool and the children it reaped (\`true\`, \`sleep\`, \`cat\`:
1–2 MiB), as \`/usr/bin/time %M\` reports it.
EOF
    for J in 2 16; do
        section "true-j$J" "1. $TRUE_JOBS × \`true 0\` at -j $J" rate floor-2t "${TOOLS_SPAWN[@]}"
    done
    section sleep-200 "2. $SLEEP_JOBS_A × \`sleep 1\` at -j $SLEEP_JOBS_A" "over the floor" "${TOOLS_SPAWN[@]}"
    section bare-200 "2. $SLEEP_JOBS_A × \`bare-sleep 1\` at -j $SLEEP_JOBS_A (\`scripts/bench/bare-sleep.S\`: sleeps without the C library's start-up)" "over the floor" "${TOOLS_SPAWN[@]}"
    section sleep-1000 "2. $SLEEP_JOBS_B × \`sleep 1\` at -j $SLEEP_JOBS_B (GNU parallel cannot run this many at once)" "over the floor" floor drover-exec drover-run xargs rust-parallel
    section sleep-5000 "3. $SCALE_JOBS × \`sleep 2\` at -j $SCALE_JOBS" "over the floor" floor drover-exec drover-run xargs rust-parallel
    section data "4. 1 GiB of 64-byte lines through \`cat\`, counted by \`wc -c\`" throughput shell-pipe drover-run drover-exec-rr drover-exec-rr-grouped drover-exec drover-exec-16M parallel parallel-rr
    section output "5. $OUT_JOBS jobs × $OUT_BYTES bytes of output at -j $OUT_PAR, into a pipe" "over the floor" floor drover-exec drover-run xargs parallel rust-parallel
    section startup "6. one job (\`true 0\`), start to exit" "over the floor" "${TOOLS_SPAWN[@]}"
    section big "7. $BIG_JOBS jobs of \`true 0\` at -j $BIG_PAR: job file (with --report) vs exec vs check" rate floor drover-exec drover-run drover-check
    other_faces
    cat <<EOF

## How each tool is run

- 1–3: \`drover exec -j J -- CMD\`, \`xargs -P J -n 1 CMD\`, \`parallel -j J CMD\`,
  \`rust-parallel -j J CMD\` with the items on stdin (each appends its item:
  every tool runs \`true 0\` / \`sleep 1\`); \`drover run -q\` on a job file of
  the same jobs with \`max_parallel = J\` (0 for the sleeps).
- 4: \`cat data | drover exec --pipe cat | wc -c\` (1 MiB blocks: 1024
  \`cat\` jobs; \`exec-16M\`: \`--block 16M\`, 64 jobs, the nearest to one
  \`cat\` that still streams; \`exec-rr\`: \`--round-robin -j 1 -u\`, one
  \`cat\` fed every block, \`-u\` as a lone job's output cannot interleave;
  \`exec-rr-grouped\`: the same without \`-u\`, its output followed),
  \`cat data | parallel --pipe cat | wc -c\` (\`parallel-rr\`: with
  \`--round-robin -j 1 -u\`), and \`drover run\` on a file of
  three jobs joined by \`stdin = { from = ... }\`: cat data → cat → wc -c.
- 5: \`head -c 1000000 /dev/zero\` per job; drover and GNU parallel group
  output per job (the default), xargs does not; stdout is a pipe read by the
  timer. \`drover run\` reads every byte through its capture pipes and keeps
  a 64 KiB tail per job (\`capture_limit\`): it guards short jobs with
  more output than a pipe holds.
- 7: \`drover run --report FILE\` on a 10 000-job file (a matrix), \`drover
  exec -j 16\` on the same 10 000 commands, \`drover check\` on the file.
EOF
} >"$OUT_DIR/latest.md"
cp "$RESULTS" "$OUT_DIR/latest.tsv"

# The README shows the goals and the chart (whole runs only).
if [ -z "$ONLY" ] && grep -q '<!-- bench:start -->' README.md; then
    {
        sed '/<!-- bench:start -->/q' README.md
        printf '\n%s, %s, %s rounds (`scripts/bench.sh`):\n\n' "$when" "$machine" "$RUNS"
        printf '![drover and its peers as multiples of the floor](docs/bench/chart.png)\n\n'
        printf '%s\n\n' "$goals_md"
        printf 'Every workload, tool and figure: [docs/bench/latest.md](docs/bench/latest.md).\n\n'
        sed -n '/<!-- bench:end -->/,$p' README.md
    } >"$TMP/README.md"
    cp "$TMP/README.md" README.md
fi

echo
echo "$goals_md"
echo
log "written: docs/bench/latest.md, latest.tsv, chart.png (${elapsed} s)"

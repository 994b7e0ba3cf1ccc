#!/usr/bin/env bash
# The container image of `drover serve` (Dockerfile), tested against a real
# Docker engine. Where `docker info` fails it says so and exits 0.
#
# No image is pulled: it builds a minimal Debian bookworm base itself
# (debootstrap --variant=minbase from the mirror apt uses, slimmed as
# debian:bookworm-slim is; cached in /var/tmp/drover-debian-base, keyed by
# suite, mirror, architecture and recipe), builds drover in release mode on
# the host, and builds the Dockerfile's `runtime-prebuilt` stage on that base
# with the host's (stripped) binary: the slim image (FROM scratch, the files
# of a few of the base's packages). Then, each a PASS or FAIL line: the
# image builds and is configured as documented; it holds the tools it says
# and no package manager; no token, no start; 401 without the token; submit,
# poll, follow, cancel; HEALTHCHECK (`drover health`) healthy, and `drover
# health` unhealthy where nothing listens; `docker stop` drains a running job
# and exits 0; `docker kill` with jobs queued, then `docker start` on the
# same volume: every accepted job ends; a fleet of three worker containers
# on a private network sharing a PostgreSQL (jobs across workers, docker
# kill of a worker during a job, cancel across nodes, a worker cut off from
# the network); the image is under 40 MB; the
# variants build: EXTRA_PACKAGES (one the base has, so no mirror is needed)
# and VARIANT=debian (apt-get there). It prints the sizes, and removes every
# container, volume and image it made.
#
# Environment:
#   DROVER_TEST_BASE_IMAGE  a runtime base to use instead of the debootstrap
#                           one (e.g. debian:bookworm-slim where pulls work)
#   DROVER_DEBIAN_MIRROR    the mirror for debootstrap (default: apt's)
#   DROVER_BASE_CACHE       the cache folder (default /var/tmp/drover-debian-base)
#   KEEP_IMAGE=1            keep the drover test image afterwards
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
say() { printf 'test-container: %s\n' "$*"; }

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
  say "SKIP: no Docker engine here (docker info fails); the container is not tested"
  exit 0
fi

# A base image, an image build and a release build take room: on a machine
# short of disk (seen: CI machines with a few hundred MB free) the test
# would fail for the machine's sake, not drover's. Say so and skip.
need_kib=$((3 * 1024 * 1024))
docker_root=$(docker info --format '{{.DockerRootDir}}' 2>/dev/null || echo /var/lib/docker)
for where in /var/tmp "$docker_root" .; do
  [ -d "$where" ] || continue
  avail=$(df -Pk "$where" | awk 'NR == 2 { print $4 }')
  if [ "${avail:-0}" -lt "$need_kib" ]; then
    say "SKIP: only $((avail / 1024)) MiB free under $where (the container test needs about 3 GiB); the container is not tested"
    exit 0
  fi
done

# --- what the script needs ---------------------------------------------------
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }
apt_install() {
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
missing=()
for tool in curl jq; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
command -v strip >/dev/null 2>&1 || missing+=(binutils)
if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi

# --- results -------------------------------------------------------------------
passed=0
failed=0
pass() { printf 'PASS: %s\n' "$*"; passed=$((passed + 1)); }
fail() { printf 'FAIL: %s\n' "$*"; failed=$((failed + 1)); }
die() {
  fail "$*"
  exit 1
}

# --- cleanup -------------------------------------------------------------------
run_id="drover-test-$$"
image="drover-test:$$"
images=("$image")
tmp=$(mktemp -d)
containers=()
volumes=()
networks=()
pg_cluster=""
cleanup() {
  local rc=$?
  for c in "${containers[@]}"; do docker rm -f -v "$c" >/dev/null 2>&1 || true; done
  for v in "${volumes[@]}"; do docker volume rm -f "$v" >/dev/null 2>&1 || true; done
  for n in "${networks[@]}"; do docker network rm "$n" >/dev/null 2>&1 || true; done
  if [ -n "$pg_cluster" ]; then as_root pg_dropcluster --stop $pg_cluster >/dev/null 2>&1 || true; fi
  if [ "${KEEP_IMAGE:-0}" != 1 ]; then docker image rm -f "${images[@]}" >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"
  say "$passed passed, $failed failed, $((SECONDS - started)) s"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Polls `cmd` until it succeeds or `seconds` pass: wait_until SECONDS CMD...
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# --- the base image ------------------------------------------------------------
# The mirror apt uses for bookworm (deb822 .sources or one-line .list), so
# debootstrap reaches what apt-get reaches.
apt_mirror() {
  local f uri=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    uri=$(awk 'BEGIN { RS = ""; FS = "\n" }
      {
        u = ""; s = 0; t = 0
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { u = $i; sub(/^URIs:[ \t]*/, "", u); sub(/[ \t].*/, "", u) }
          if ($i ~ /^Suites:/ && (" " $i " ") ~ /[ \t]bookworm[ \t]/) s = 1
          if ($i ~ /^Types:/ && $i ~ /[ \t]deb([ \t]|$)/) t = 1
        }
        if (u != "" && s && t) { print u; exit }
      }' "$f")
    [ -n "$uri" ] && break
  done
  if [ -z "$uri" ]; then
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) while ($i !~ /\]$/) i++; if ($i ~ /^\[/ || $i ~ /\]$/) i++;
                         if ($(i + 1) == "bookworm") { print $i; exit } }')
  fi
  printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

base_image=${DROVER_TEST_BASE_IMAGE:-}
if [ -z "$base_image" ]; then
  suite=bookworm
  arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
  mirror=${DROVER_DEBIAN_MIRROR:-$(apt_mirror)}
  # Bump when the recipe below changes.
  recipe=2
  key=$(printf '%s %s %s %s\n' "$suite" "$mirror" "$arch" "$recipe" | sha256sum | cut -c1-16)
  cache=${DROVER_BASE_CACHE:-/var/tmp/drover-debian-base}
  rootfs_tar="$cache/$suite-$arch-$key.tar"
  base_image="drover-test-base:$suite"
  have_key=$(docker image inspect --format '{{index .Config.Labels "org.drover.base-key"}}' "$base_image" 2>/dev/null || true)
  if [ "$have_key" = "$key" ]; then
    say "base image $base_image (cached, key $key)"
  else
    if [ ! -s "$rootfs_tar" ]; then
      t0=$SECONDS
      say "debootstrap --variant=minbase $suite from $mirror (a few minutes; cached in $cache)"
      command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
      as_root mkdir -p "$cache"
      root="$cache/rootfs.$$"
      as_root rm -rf "$root"
      if ! as_root debootstrap --variant=minbase --arch="$arch" "$suite" "$root" "$mirror" >"$tmp/debootstrap.log" 2>&1; then
        tail -n 30 "$tmp/debootstrap.log" >&2
        as_root rm -rf "$root"
        die "debootstrap of the base image (needs root or sudo, and the mirror; or set DROVER_TEST_BASE_IMAGE)"
      fi
      # Slimmed as debian:bookworm-slim is (debuerreotype's slimify): no
      # docs but copyrights, no man pages, info or locales, no apt lists or
      # caches; and dpkg keeps them out of later installs too.
      as_root tee "$root/etc/dpkg/dpkg.cfg.d/docker" >/dev/null <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
      as_root find "$root/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
      as_root find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
      as_root rm -rf "$root"/usr/share/{man,groff,info,lintian,linda,locale}/* \
        "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
        "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/var/cache/debconf/*-old \
        "$root"/var/lib/dpkg/*-old "$root"/dev/* "$root"/tmp/* "$root"/run/*
      as_root tar -C "$root" --numeric-owner -cf "$rootfs_tar.tmp" .
      as_root mv "$rootfs_tar.tmp" "$rootfs_tar"
      as_root rm -rf "$root"
      say "debootstrap took $((SECONDS - t0)) s"
    fi
    docker import --change "LABEL org.drover.base-key=$key" \
      --change 'CMD ["bash"]' "$rootfs_tar" "$base_image" >/dev/null ||
      die "docker import of the base image"
    say "base image $base_image imported (key $key)"
  fi
fi

# --- drover, built on the host -----------------------------------------------------
say "cargo build --release --locked"
cargo build --release --locked --quiet || die "cargo build --release"
bin="${CARGO_TARGET_DIR:-target}/release/drover"
mkdir -p dist
# The image's binary has no debug line tables or symbols (as the from-source
# stage builds it).
strip -o dist/drover.tmp "$bin" && mv dist/drover.tmp dist/drover

# --- the image -----------------------------------------------------------------------
build() { # build TAG [docker build flags...]: runtime-prebuilt on the base
  local tag=$1
  shift
  docker build -q --target runtime-prebuilt \
    --build-arg RUNTIME_IMAGE="$base_image" --build-arg DROVER_BIN=dist/drover \
    "$@" -t "$tag" . >"$tmp/build.log" 2>&1
}
t0=$SECONDS
if build "$image"; then
  pass "the image builds (runtime-prebuilt on $base_image, $((SECONDS - t0)) s)"
else
  cat "$tmp/build.log" >&2
  die "the image builds"
fi

cfg=$(docker image inspect --format \
  'user={{.Config.User}} entrypoint={{json .Config.Entrypoint}} cmd={{json .Config.Cmd}} volumes={{json .Config.Volumes}} ports={{json .Config.ExposedPorts}} stop={{.Config.StopSignal}} health={{json .Config.Healthcheck.Test}}' \
  "$image")
want_cmd='["serve","--listen","0.0.0.0:7070","--state-dir","/var/lib/drover"]'
if [[ $cfg == *'user=10001:10001 '* && $cfg == *'entrypoint=["drover"] '* && $cfg == *"cmd=$want_cmd "* &&
  $cfg == *'volumes={"/var/lib/drover":{}} '* && $cfg == *'ports={"7070/tcp":{}} '* &&
  $cfg == *'stop=SIGTERM '* && $cfg == *'health=["CMD","drover","health"]' ]]; then
  pass "image config: user 10001, ENTRYPOINT drover, CMD serve 0.0.0.0:7070, VOLUME, EXPOSE 7070, STOPSIGNAL, HEALTHCHECK drover health"
else
  fail "image config: $cfg"
fi

# What the image holds: the tools jobs use, the drover user, no package
# manager.
# shellcheck disable=SC2016 # for the image's shell
tools='sh bash ls cat cp mv rm mkdir chmod date sleep env id sort head tail wc tr cut tee timeout grep sed awk find xargs gzip tar which'
if out=$(docker run --rm --entrypoint sh "$image" -c '
  for t in '"$tools"'; do command -v "$t" >/dev/null || echo "missing $t"; done
  for t in apt-get dpkg perl curl; do command -v "$t" >/dev/null && echo "has $t"; done
  [ "$(readlink -f /bin/sh)" = /usr/bin/dash ] || echo "/bin/sh is $(readlink -f /bin/sh)"
  [ "$(id -un)" = drover ] || echo "user $(id -un)"
  [ -w /var/lib/drover ] || echo "/var/lib/drover not writable"
  echo "$(ls /var/lib/dpkg/status.d | wc -l) packages"' 2>&1) && [[ $out == *' packages' && $out != *missing* && $out != *has* ]]; then
  pass "the image holds sh (dash), bash, coreutils, grep, sed, awk, find, gzip, tar; no apt-get, dpkg or perl ($out)"
else
  fail "the image's contents: $out"
fi

# Without a token, a non-loopback --listen is refused (exit 2).
out=$(docker run --rm --name "$run_id-notoken" "$image" 2>&1) && rc=0 || rc=$?
if [ "$rc" -eq 2 ] && [[ $out == *"without a token"* ]]; then
  pass "no token: the default CMD refuses to listen on 0.0.0.0 (exit 2)"
else
  fail "no token: exit $rc (want 2): $out"
fi

# --- a server ---------------------------------------------------------------------
token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
url=""
api() { curl -sS --max-time 10 -H "Authorization: Bearer $token" "$@"; }
# http_code of a request, its body in $tmp/body
code() { curl -sS --max-time 10 -o "$tmp/body" -w '%{http_code}' "$@" || echo 000; }
locate() { # the host address of container $1's port 7070
  local hp
  hp=$(docker port "$1" 7070/tcp 2>/dev/null | head -n 1) || return 1
  [ -n "$hp" ] || return 1
  url="http://$hp"
}
ready() { [ "$(code "$url/readyz")" = 200 ]; }
start_server() { # start_server NAME VOLUME [docker run flags...] -- [drover args...]
  local name=$1 vol=$2
  shift 2
  local flags=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do flags+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  docker volume create "$vol" >/dev/null
  volumes+=("$vol")
  containers+=("$name")
  docker run -d --name "$name" -p 127.0.0.1::7070 \
    -v "$vol:/var/lib/drover" "${flags[@]}" "$image" "$@" >/dev/null
  wait_until 20 locate "$name" && wait_until 20 ready
}
restart_server() {
  docker start "$1" >/dev/null && wait_until 20 locate "$1" && wait_until 20 ready
}
submit() { # submit JSON: the new job's id on stdout, or nothing
  local c
  c=$(code -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "$1" "$url/v1/jobs")
  [ "$c" = 201 ] && jq -r .id "$tmp/body"
}
field() { api "$url/v1/jobs/$1" | jq -r ".$2"; }
is_status() { [ "$(field "$1" status 2>/dev/null)" = "$2" ]; }
is_final() {
  case "$(field "$1" status 2>/dev/null)" in
    succeeded | failed | timed_out | skipped | cancelled | spawn_failed) return 0 ;;
    *) return 1 ;;
  esac
}
health() { [ "$(docker inspect --format '{{.State.Health.Status}}' "$1")" = "$2" ]; }
logs_on_failure() { docker logs --tail 30 "$1" 2>&1 | sed 's/^/    | /' >&2; }

main="$run_id-main"
if ! start_server "$main" "$run_id-main" -e DROVER_TOKEN="$token" \
  --health-interval=1s --health-timeout=3s --health-retries=3 --health-start-period=0s; then
  logs_on_failure "$main"
  die "the server starts and answers /readyz"
fi
pass "the container starts; /readyz 200 at $url"

c=$(code -d '{"cmd":["true"]}' "$url/v1/jobs")
c2=$(code -H 'Authorization: Bearer wrong' "$url/v1/jobs")
if [ "$c" = 401 ] && [ "$c2" = 401 ]; then
  pass "no or a wrong token: 401"
else
  fail "no token: $c, wrong token: $c2 (want 401)"
fi

# shellcheck disable=SC2016 # $(id -un) is for the job's shell
if id=$(submit '{"cmd":["sh","-c","echo hello from $(id -un)"]}') && [ -n "$id" ]; then
  pass "POST /v1/jobs with the token: 201 (job $id)"
  if wait_until 20 is_status "$id" succeeded && [ "$(field "$id" stdout)" = "hello from drover" ]; then
    pass "job $id succeeded, stdout 'hello from drover' (ran as the image's user)"
  else
    fail "job $id: $(api "$url/v1/jobs/$id")"
  fi
else
  fail "POST /v1/jobs with the token: $c $(cat "$tmp/body")"
fi

# follow: the output as it is written, to the job's last byte.
if id=$(submit '{"cmd":["sh","-c","echo one; sleep 1; echo two"]}') && [ -n "$id" ]; then
  out=$(curl -sS -N --max-time 20 -H "Authorization: Bearer $token" \
    "$url/v1/jobs/$id/output?follow=true") || true
  if [ "$out" = $'one\ntwo' ] && is_final "$id"; then
    pass "GET /v1/jobs/$id/output?follow=true streamed 'one', 'two' and ended with the job"
  else
    fail "follow: got '$out', job $(field "$id" status)"
  fi
else
  fail "submit the follow job"
fi

# cancel: a running job gets TERM; 202, then cancelled.
if id=$(submit '{"cmd":["sleep","300"]}') && [ -n "$id" ] && wait_until 20 is_status "$id" running; then
  c=$(code -X POST -H "Authorization: Bearer $token" "$url/v1/jobs/$id/cancel")
  if [ "$c" = 202 ] && wait_until 20 is_status "$id" cancelled; then
    pass "POST /v1/jobs/$id/cancel on a running job: 202, then cancelled"
  else
    fail "cancel: $c, job $(api "$url/v1/jobs/$id")"
  fi
else
  fail "a job to cancel never ran"
fi

if wait_until 30 health "$main" healthy; then
  pass "HEALTHCHECK (drover health: GET /healthz): healthy"
else
  fail "HEALTHCHECK: $(docker inspect --format '{{json .State.Health}}' "$main")"
fi

out=$(docker exec "$main" drover health --addr 127.0.0.1:1 --timeout 1s 2>&1) && rc=0 || rc=$?
if [ "$rc" -eq 1 ] && [[ $out == *"cannot connect"* ]]; then
  pass "drover health where nothing listens: exit 1 ($out)"
else
  fail "drover health where nothing listens: exit $rc: $out"
fi

# An orphan: a job's background process outlives the job and is reparented
# to PID 1, which is drover. Does anything reap it? (Information only.)
zombies() { docker exec "$1" bash -c 'n=0; for s in /proc/[0-9]*/stat; do read -r _ _ st _ < "$s" 2>/dev/null && [ "$st" = Z ] && n=$((n+1)); done; echo $n'; }
if id=$(submit '{"cmd":["sh","-c","setsid sleep 0.5 & exit 0"]}') && [ -n "$id" ] && wait_until 20 is_final "$id"; then
  some_zombie() { [ "$(zombies "$main")" -gt 0 ]; }
  if wait_until 5 some_zombie; then
    say "INFO: drover as PID 1 does not reap orphans: $(zombies "$main") zombie(s) left (docker run --init, or a drover change)"
  else
    say "INFO: no zombie left by an orphaned job process"
  fi
fi

# docker stop with a job running: /readyz 503, the job ends within
# drain_timeout, drover exits 0 within the grace; the job is recorded.
if id=$(submit '{"cmd":["sh","-c","sleep 3; echo drained"]}') && [ -n "$id" ] && wait_until 20 is_status "$id" running; then
  t0=$(date +%s.%N)
  docker stop -t 20 "$main" >/dev/null 2>&1 &
  stopper=$!
  unready() { [ "$(code "$url/readyz")" = 503 ]; }
  if wait_until 5 unready; then
    pass "docker stop: /readyz 503 while draining"
  else
    fail "docker stop: /readyz did not answer 503 while the job ran"
  fi
  wait "$stopper" || true
  took=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { print a - b }')
  exit_code=$(docker inspect --format '{{.State.ExitCode}}' "$main")
  if [ "$exit_code" = 0 ] && awk -v t="$took" 'BEGIN { exit !(t >= 2 && t < 20) }'; then
    pass "docker stop -t 20 with a job running: drained in $(printf '%.1f' "$took") s, exit 0"
  else
    fail "docker stop -t 20: exit $exit_code after $took s"
    logs_on_failure "$main"
  fi
  if restart_server "$main" && [ "$(field "$id" status)" = succeeded ] && [ "$(field "$id" stdout)" = drained ]; then
    pass "docker start on the same volume: the drained job $id is recorded succeeded with its output"
  else
    fail "after the restart, job $id: $(api "$url/v1/jobs/$id" 2>&1)"
  fi
else
  fail "a job to drain never ran"
fi

# The Kubernetes sidecar (config/kubernetes/sidecar.yaml): its settings
# hold together, and the crash test below runs drover as that pod does: its
# args, the ConfigMap's serve.toml, the token as a file, a read-only root
# with a /tmp of its own, no capabilities.
k8s_flags=(-e DROVER_TOKEN="$token")
k8s_args=(serve --listen 0.0.0.0:7070 --state-dir /var/lib/drover)
k8s_how="the default CMD"
mkdir -p "$tmp/k8s/config" "$tmp/k8s/secret"
chmod 755 "$tmp/k8s" "$tmp/k8s/config" "$tmp/k8s/secret"
if command -v python3 >/dev/null 2>&1 && python3 -c 'import yaml, tomllib' 2>/dev/null; then
  if python3 - config/kubernetes/sidecar.yaml "$tmp/k8s" >"$tmp/k8s/check" 2>&1 <<'EOF'
import sys, tomllib, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = {d["kind"]: d for d in docs}
spec = kinds["Deployment"]["spec"]["template"]["spec"]
sidecar = spec["initContainers"][0]
config = kinds["ConfigMap"]["data"]["serve.toml"]
settings = tomllib.loads(config)
seconds = lambda v: float(v.rstrip("s"))
drain = seconds(settings["serve"]["drain_timeout"])
kill_grace = seconds(settings["defaults"]["kill_grace"])
grace = spec["terminationGracePeriodSeconds"]
problems = []
if sidecar.get("restartPolicy") != "Always":
    problems.append("the drover init container is not a sidecar (restartPolicy: Always)")
if not grace > drain + kill_grace:
    problems.append(f"terminationGracePeriodSeconds {grace} <= drain_timeout {drain} + kill_grace {kill_grace}")
probes = {k: sidecar[k]["httpGet"]["path"] for k in ("startupProbe", "readinessProbe", "livenessProbe")}
if probes != {"startupProbe": "/readyz", "readinessProbe": "/readyz", "livenessProbe": "/healthz"}:
    problems.append(f"probes: {probes}")
if "/var/lib/drover" not in {m["mountPath"] for m in sidecar["volumeMounts"]}:
    problems.append("no volume at /var/lib/drover")
if problems:
    print("; ".join(problems))
    sys.exit(1)
open(sys.argv[2] + "/config/serve.toml", "w").write(config)
with open(sys.argv[2] + "/args", "w") as f:
    for a in sidecar["args"]:
        f.write(a + "\n")
print(f"a native sidecar, probes /readyz /readyz /healthz, grace {grace} s > drain_timeout {drain:g} s + kill_grace {kill_grace:g} s")
EOF
  then
    pass "config/kubernetes/sidecar.yaml: $(cat "$tmp/k8s/check")"
    chmod 644 "$tmp/k8s/config/serve.toml"
    printf '%s\n' "$token" >"$tmp/k8s/secret/token"
    chmod 644 "$tmp/k8s/secret/token"
    mapfile -t k8s_args <"$tmp/k8s/args"
    k8s_flags=(-v "$tmp/k8s/config:/etc/drover:ro" -v "$tmp/k8s/secret:/run/secrets/drover:ro"
      --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges)
    k8s_how="as the sidecar runs it: ${k8s_args[*]}, a read-only root, no capabilities"
  else
    fail "config/kubernetes/sidecar.yaml: $(cat "$tmp/k8s/check")"
  fi
else
  say "INFO: no python3 with yaml and tomllib: config/kubernetes/sidecar.yaml not checked; the crash test runs the default CMD"
fi

# docker kill (SIGKILL) with one job running and three queued (-j 1), then
# docker start on the same volume: every accepted job reaches a final status.
crash="$run_id-crash"
if start_server "$crash" "$run_id-crash" "${k8s_flags[@]}" -- "${k8s_args[@]}" -j 1; then
  pass "drover -j 1 starts $k8s_how"
  ids=()
  for n in 1 2 3 4; do
    id=$(submit "{\"cmd\":[\"sh\",\"-c\",\"sleep 2; echo job$n\"]}") && [ -n "$id" ] && ids+=("$id")
  done
  if [ ${#ids[@]} -eq 4 ] && wait_until 20 is_status "${ids[0]}" running; then
    queued=$(api "$url/v1/jobs?status=queued" | jq '.jobs | length' 2>/dev/null || echo '?')
    docker kill "$crash" >/dev/null
    killed=$(docker inspect --format 'exit {{.State.ExitCode}}' "$crash")
    if restart_server "$crash"; then
      all_final() { local i; for i in "${ids[@]}"; do is_final "$i" || return 1; done; }
      if wait_until 40 all_final; then
        statuses=""
        for i in "${ids[@]}"; do statuses+="$i:$(field "$i" status) "; done
        listed=$(api "$url/v1/jobs?limit=1000" | jq '[.jobs[].id] | length')
        pass "docker kill ($killed; $queued queued) then docker start: all 4 accepted jobs ended (${statuses% }), $listed listed"
        # The queued ones ran after the restart, with their output.
        ok=1
        for n in 2 3 4; do
          i=${ids[$((n - 1))]}
          [ "$(field "$i" status)" = succeeded ] && [ "$(field "$i" stdout)" = "job$n" ] || ok=0
        done
        if [ $ok = 1 ]; then
          pass "the jobs queued at the kill ran after the restart, with their output"
        else
          fail "queued jobs after the restart: $statuses"
        fi
      else
        fail "after docker kill and start, not every job ended: $(api "$url/v1/jobs" | jq -c '[.jobs[] | {id, status}]')"
      fi
    else
      logs_on_failure "$crash"
      fail "docker start after docker kill: no /readyz"
    fi
  else
    fail "submitting the crash jobs: ${#ids[@]} of 4 accepted"
  fi
else
  logs_on_failure "$crash"
  fail "the -j 1 server starts"
fi

# --- a fleet on a private network ------------------------------------------------------
# Three worker containers on a network of their own (a user-defined bridge)
# share one PostgreSQL: a cluster made for this test on the host, listening
# only on that network's gateway address, dropped at the end. Jobs sent to
# one node run across the workers; `docker kill` of the worker running a
# job: it runs again on another, the lost attempt marked; cancel on one
# node of a job running on another; a worker cut off from the network (the
# database unreachable past its lease) kills its job before the lease ends,
# and the job runs elsewhere.
if ! command -v pg_createcluster >/dev/null 2>&1; then apt_install postgresql; fi
net="$run_id-net"
docker network create "$net" >/dev/null
networks+=("$net")
gw=$(docker network inspect --format '{{(index .IPAM.Config 0).Gateway}}' "$net")
subnet=$(docker network inspect --format '{{(index .IPAM.Config 0).Subnet}}' "$net")
pg_version=$(ls /usr/lib/postgresql | sort -n | tail -1)
pg_name="drover_ct_$$"
pg_cluster="$pg_version $pg_name"
pg_password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
fleet_ok=0
if as_root pg_createcluster "$pg_version" "$pg_name" >"$tmp/pg.log" 2>&1; then
  echo "listen_addresses = '$gw'" | as_root tee -a "/etc/postgresql/$pg_version/$pg_name/postgresql.conf" >/dev/null
  # The workers, from the network; this script, from the host's own
  # addresses (which one the kernel picks as the source varies).
  printf 'host drover drover %s scram-sha-256\nhost drover drover samehost scram-sha-256\n' "$subnet" |
    as_root tee -a "/etc/postgresql/$pg_version/$pg_name/pg_hba.conf" >/dev/null
  pg_port=$(pg_lsclusters -h | awk -v n="$pg_name" '$2 == n { print $3 }')
  if as_root pg_ctlcluster "$pg_version" "$pg_name" start >>"$tmp/pg.log" 2>&1 &&
    as_root su postgres -c "psql -p $pg_port -qtA -c \"CREATE ROLE drover LOGIN PASSWORD '$pg_password'\" -c 'CREATE DATABASE drover OWNER drover'" >>"$tmp/pg.log" 2>&1; then
    fleet_ok=1
  fi
fi
if [ $fleet_ok = 1 ]; then
  pg_url="postgres://drover:$pg_password@$gw:$pg_port/drover"
  fq() { psql "$pg_url" -qtA -c "$1"; }
  printf '[serve]\nstore = "%s"\nlease = "3s"\n' "$pg_url" >"$tmp/fleet.toml"
  chmod 644 "$tmp/fleet.toml"
  declare -A node_url
  start_worker() { # start_worker N
    local name="$run_id-w$1"
    containers+=("$name")
    docker run -d --name "$name" --hostname "$name" --network "$net" -p 127.0.0.1::7070 \
      -e DROVER_TOKEN="$token" -v "$tmp/fleet.toml:/etc/drover/fleet.toml:ro" "$image" \
      serve --listen 0.0.0.0:7070 --state-dir /var/lib/drover --config /etc/drover/fleet.toml -j 2 >/dev/null &&
      wait_until 20 locate "$name" && wait_until 30 ready && node_url[$1]=$url
  }
  on() { url=${node_url[$1]}; }
  # The container (its name: its hostname) whose worker runs job $1 now.
  runner_of() {
    fq "SELECT w.host FROM drover_jobs j JOIN drover_workers w ON w.id = j.worker WHERE j.id = $1 AND j.status = 'running' AND j.pid IS NOT NULL"
  }
  runs() { [ -n "$(runner_of "$1")" ]; }
  if start_worker 1 && start_worker 2 && start_worker 3; then
    pass "a fleet: three worker containers on the private network $net, PostgreSQL at $gw:$pg_port"
    on 1
    ids=()
    # shellcheck disable=SC2016 # for the job's shell
    for _ in 1 2 3 4 5 6; do ids+=("$(submit '{"cmd":["sh","-c","echo $DROVER_JOB_ID; sleep 1"]}')"); done
    on 3
    all_final() { for i in "${ids[@]}"; do is_final "$i" || return 1; done; }
    if [ ${#ids[@]} = 6 ] && wait_until 30 all_final; then
      ok=1
      for i in "${ids[@]}"; do
        [ "$(field "$i" status)" = succeeded ] && [ "$(field "$i" stdout)" = "$i" ] || ok=0
      done
      hosts=$(fq "SELECT count(DISTINCT w.host) FROM drover_attempts a JOIN drover_workers w ON w.id = a.worker")
      if [ $ok = 1 ] && [ "$hosts" -ge 2 ]; then
        pass "6 jobs sent to one node ran once each, on $hosts workers; another node answers for them"
      else
        fail "jobs across the fleet: $(api "$url/v1/jobs" | jq -c '[.jobs[] | {id, status, stdout}]'), on $hosts workers"
      fi
    else
      fail "jobs across the fleet: submitted ${#ids[@]}, not all ended"
    fi

    # docker kill of the worker running a job.
    on 1
    # shellcheck disable=SC2016
    id=$(submit '{"cmd":["sh","-c","sleep 3; echo attempt $DROVER_ATTEMPT"],"retries":1}')
    if [ -n "$id" ] && wait_until 20 runs "$id"; then
      victim=$(runner_of "$id")
      docker kill "$victim" >/dev/null
      n=${victim##*-w}
      on $((n % 3 + 1))
      attempts() { fq "SELECT string_agg(attempt || ':' || coalesce(outcome, '-'), ',' ORDER BY attempt) FROM drover_attempts WHERE job = $id"; }
      if wait_until 30 is_final "$id" && [ "$(field "$id" status)" = succeeded ] &&
        [ "$(field "$id" stdout)" = "attempt 2" ] && [ "$(attempts)" = "1:lost,2:succeeded" ]; then
        pass "docker kill of the worker running job $id: it ran again on another (attempts $(attempts))"
      else
        fail "after docker kill of $victim: job $(api "$url/v1/jobs/$id"), attempts $(attempts)"
      fi
      docker start "$victim" >/dev/null && wait_until 20 locate "$victim" && wait_until 30 ready && node_url[$n]=$url
    else
      fail "the job to kill the worker of never ran"
    fi

    # Cancel on one node of a job running on another.
    on 1
    id=$(submit '{"cmd":["sleep","300"]}')
    if [ -n "$id" ] && wait_until 20 runs "$id"; then
      n=$(runner_of "$id")
      n=${n##*-w}
      on $((n % 3 + 1))
      c=$(code -X POST -H "Authorization: Bearer $token" "$url/v1/jobs/$id/cancel")
      if [ "$c" = 202 ] && wait_until 20 is_status "$id" cancelled; then
        pass "cancel on worker $((n % 3 + 1)) of job $id running on worker $n: 202, then cancelled"
      else
        fail "cancel across the fleet: $c, job $(api "$url/v1/jobs/$id")"
      fi
    else
      fail "the job to cancel across the fleet never ran"
    fi

    # A worker cut off from the network past its lease (3 s).
    on 1
    id=$(submit '{"cmd":["sleep","30"],"retries":1}')
    if [ -n "$id" ] && wait_until 20 runs "$id"; then
      cut=$(runner_of "$id")
      docker network disconnect "$net" "$cut"
      t0=$SECONDS
      sleeps() { docker exec "$cut" bash -c 'n=0; for c in /proc/[0-9]*/comm; do [ "$(cat "$c" 2>/dev/null)" = sleep ] && n=$((n+1)); done; echo $n'; }
      no_sleep() { [ "$(sleeps)" = 0 ]; }
      elsewhere() { local r; r=$(runner_of "$id"); [ -n "$r" ] && [ "$r" != "$cut" ]; }
      if wait_until 10 no_sleep; then
        gone=$((SECONDS - t0))
        if wait_until 30 elsewhere; then
          pass "worker $cut cut off from the network: it killed its job within ${gone} s (lease 3 s), which then ran on $(runner_of "$id")"
        else
          fail "worker $cut cut off: its job did not run elsewhere: attempts $(fq "SELECT string_agg(attempt || ':' || coalesce(outcome, '-'), ',') FROM drover_attempts WHERE job = $id")"
        fi
      else
        fail "worker $cut cut off from the network: its job still runs after 10 s"
      fi
      docker network connect "$net" "$cut"
      on 1
      code -X POST -H "Authorization: Bearer $token" "$url/v1/jobs/$id/cancel" >/dev/null
    else
      fail "the job of the worker to cut off never ran"
    fi
  else
    for n in 1 2 3; do logs_on_failure "$run_id-w$n"; done
    fail "the fleet's worker containers start"
  fi
else
  cat "$tmp/pg.log" >&2
  fail "a PostgreSQL cluster for the fleet on $gw"
fi

# --- size ------------------------------------------------------------------------------
size=$(docker image inspect --format '{{.Size}}' "$image")
gz=$(docker save "$image" | gzip -1 | wc -c)
bin_size=$(stat -c %s dist/drover)
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
say "SIZE: image $(mb "$size") ($(mb "$gz") as gzip of docker save): drover $(mb "$bin_size") + the rest $(mb $((size - bin_size)))"
goal=40000000
if [ "$size" -lt "$goal" ]; then
  pass "the image is $(mb "$size"), under $(mb "$goal")"
else
  fail "the image is $(mb "$size"), not under $(mb "$goal")"
fi

# --- the variants -------------------------------------------------------------------------
# EXTRA_PACKAGES: one the base has (no mirror needed), copied in with what
# it depends on.
extra="drover-test-extra:$$"
images+=("$extra")
t0=$SECONDS
if build "$extra" --build-arg EXTRA_PACKAGES=diffutils &&
  out=$(docker run --rm --entrypoint diff "$extra" --version 2>&1) && [[ $out == *GNU* ]]; then
  took=$((SECONDS - t0))
  extra_size=$(docker image inspect --format '{{.Size}}' "$extra")
  pass "EXTRA_PACKAGES=diffutils: diff in the image ($(mb "$extra_size"), $took s)"
else
  cat "$tmp/build.log" >&2
  fail "EXTRA_PACKAGES=diffutils: $out"
fi
# VARIANT=debian: all of the base, apt-get included, configured the same.
debian="drover-test-debian:$$"
images+=("$debian")
t0=$SECONDS
if build "$debian" --build-arg VARIANT=debian &&
  out=$(docker run --rm --entrypoint sh "$debian" -c 'apt-get --version | head -n 1 && drover --version' 2>&1) &&
  [ "$(docker image inspect --format '{{json .Config.Healthcheck.Test}} {{.Config.User}}' "$debian")" = \
    "$(docker image inspect --format '{{json .Config.Healthcheck.Test}} {{.Config.User}}' "$image")" ]; then
  took=$((SECONDS - t0))
  debian_size=$(docker image inspect --format '{{.Size}}' "$debian")
  base_size=$(docker image inspect --format '{{.Size}}' "$base_image")
  pass "VARIANT=debian: apt-get and drover in the image ($(mb "$debian_size"); the base $(mb "$base_size"), $took s): ${out//$'\n'/, }"
else
  cat "$tmp/build.log" >&2
  fail "VARIANT=debian: $out"
fi

[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# The whole test suite: unit tests and the integration tests, which run real
# processes (sh, sleep, cat, grep, fixture scripts). Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for tool in sh sleep cat grep seq wc head tr yes; do
  command -v "$tool" >/dev/null 2>&1 || need_apt+=(coreutils)
done
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq coreutils grep >/dev/null
fi

# The differential tests of `drover exec` run the real GNU parallel.
if ! command -v parallel >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq parallel >/dev/null
fi
mkdir -p "$HOME/.parallel" && touch "$HOME/.parallel/will-cite"

# The memory tests read drover's peak RSS from GNU time (tests/it/common.rs).
if ! [ -x /usr/bin/time ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi

# The fleet's tests (tests/it/fleet.rs) run against a real PostgreSQL:
# Debian's package, its cluster started with pg_ctlcluster, and a role that
# may create databases (each test makes one of its own and drops it). A
# cluster or role that exists is used as it is; nothing is torn down.
if [ -z "${DROVER_TEST_PG:-}" ]; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  pg_version=$(ls /usr/lib/postgresql | sort -n | tail -1)
  if ! pg_lsclusters -h | awk -v v="$pg_version" '$1 == v && $2 == "main"' | grep -q .; then
    pg_createcluster "$pg_version" main >/dev/null
  fi
  if ! pg_lsclusters -h | awk -v v="$pg_version" '$1 == v && $2 == "main" && $4 == "online"' | grep -q .; then
    pg_ctlcluster "$pg_version" main start
  fi
  pg_port=$(pg_lsclusters -h | awk -v v="$pg_version" '$1 == v && $2 == "main" {print $3}')
  as_postgres() { su postgres -c "psql -p $pg_port -qtA -c \"$1\""; }
  if [ "$(as_postgres "SELECT 1 FROM pg_roles WHERE rolname = 'drover_test'")" != 1 ]; then
    as_postgres "CREATE ROLE drover_test LOGIN PASSWORD 'drover_test' CREATEDB" >/dev/null
  fi
  export DROVER_TEST_PG="postgres://drover_test:drover_test@127.0.0.1:$pg_port/postgres"
fi

cargo test --locked --all-targets "$@"

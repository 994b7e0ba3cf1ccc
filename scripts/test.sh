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

# The fleet's tests (tests/it/fleet.rs) run against a real PostgreSQL (see
# scripts/pg-lib.sh): each test makes a database of its own and drops it.
# shellcheck source=scripts/pg-lib.sh
. scripts/pg-lib.sh
pg_setup

cargo test --locked --all-targets "$@"

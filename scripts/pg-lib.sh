# Shared by scripts/test.sh and scripts/bench-fleet.sh (sourced, not run).
#
# pg_setup: a real PostgreSQL for the fleet: Debian's package, its cluster
# started with pg_ctlcluster, and a role `drover_test` that may create
# databases. Exports DROVER_TEST_PG (the role's URL to the `postgres`
# database) unless it is set already. A cluster or role that exists is used
# as it is; nothing is torn down.
pg_setup() {
  if [ -n "${DROVER_TEST_PG:-}" ]; then
    return
  fi
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  local pg_version pg_port
  pg_version=$(ls /usr/lib/postgresql | sort -n | tail -1)
  if ! pg_lsclusters -h | awk -v v="$pg_version" '$1 == v && $2 == "main"' | grep -q .; then
    pg_createcluster "$pg_version" main >/dev/null
  fi
  if ! pg_lsclusters -h | awk -v v="$pg_version" '$1 == v && $2 == "main" && $4 == "online"' | grep -q .; then
    pg_ctlcluster "$pg_version" main start
  fi
  pg_port=$(pg_lsclusters -h | awk -v v="$pg_version" '$1 == v && $2 == "main" {print $3}')
  if [ "$(su postgres -c "psql -p $pg_port -qtA -c \"SELECT 1 FROM pg_roles WHERE rolname = 'drover_test'\"")" != 1 ]; then
    su postgres -c "psql -p $pg_port -qtA -c \"CREATE ROLE drover_test LOGIN PASSWORD 'drover_test' CREATEDB\"" >/dev/null
  fi
  export DROVER_TEST_PG="postgres://drover_test:drover_test@127.0.0.1:$pg_port/postgres"
}

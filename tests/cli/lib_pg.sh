# lib_pg.sh - a throwaway embedded PostgreSQL for shell tests. Source it, then call pg_setup:
#
#   source "$DSM_SOURCE_DIR/tests/cli/lib_pg.sh"
#   pg_setup                      # DSM_HOME=<fresh temp dir>, DSM_DATABASE_URL unset, fast cluster
#   "$DSM" db psql -tA -c 'SELECT 1'   # any dsm command starts the cluster on demand
#
# On exit the cluster is stopped and the directory removed (an EXIT trap; call pg_cleanup
# yourself if you install your own trap). PostgreSQL is required (scripts/setup.sh installs it):
# never skip a test because of it.
pg_homes=()

pg_cleanup() {
  local h
  for h in "${pg_homes[@]}"; do
    DSM_HOME="$h" DSM_LOG=error "$DSM" db stop >/dev/null 2>&1 || true
    rm -rf "$h"
  done
}

# pg_new_home [long]: make a fresh home directory the postgres user can traverse; print its path.
pg_new_home() {
  local h
  h=$(mktemp -d /tmp/dsm-clitest-XXXXXX)
  chmod 755 "$h"
  echo "$h"
}

pg_setup() {
  unset DSM_DATABASE_URL
  export DSM_DB_FAST=1
  DSM_HOME=$(pg_new_home)
  export DSM_HOME
  pg_homes+=("$DSM_HOME")
  trap pg_cleanup EXIT
}

# srv_start SCRIPT: run a scripted OpenAI-compatible server (python3 SCRIPT PORTFILE LOGFILE) in the
# current directory: port in ./port, one line per request in ./reqs.log. Sets URL and srv_pid
# (kill it in the test's cleanup); exits the test with FAIL when it does not start.
srv_start() {
  command -v python3 >/dev/null || { echo "FAIL python3 is needed (scripts/setup.sh installs it)"; exit 1; }
  python3 "$1" port reqs.log 2>srv.err &
  srv_pid=$!
  for _ in $(seq 100); do [ -s port ] && break; sleep 0.1; done
  [ -s port ] || { echo "FAIL scripted server did not start: $(cat srv.err)"; exit 1; }
  URL="http://127.0.0.1:$(cat port)"
  : >reqs.log
}

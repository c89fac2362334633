#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on a loopback port, for the PostgreSQL half of BatchStoreTests.
#
#   eval "$(ops/postgres-test-cluster.sh start)"   # initdb if needed, start; prints the export line
#   ops/postgres-test-cluster.sh stop [immediate]   # stop the server, keep the data (a test restarts it)
#   ops/postgres-test-cluster.sh destroy            # stop and delete everything
#   ops/postgres-test-cluster.sh url | status
#
# Environment: SWITCHYARD_PG_TEST_PORT (default 54329), SWITCHYARD_PG_TEST_DIR (default
# /tmp/switchyard-postgres-test), SWITCHYARD_PG_BIN (default: the newest /usr/lib/postgresql/*/bin).
# Trust authentication on 127.0.0.1 only: the cluster holds nothing but test data and listens on no
# other address. initdb refuses to run as root, so as root the server runs as the `postgres` user.
set -euo pipefail

PORT="${SWITCHYARD_PG_TEST_PORT:-54329}"
BASE="${SWITCHYARD_PG_TEST_DIR:-/tmp/switchyard-postgres-test}"
DATA="$BASE/data"
LOG="$BASE/server.log"
ROLE=switchyard
DB=switchyard_test
URL="postgres://$ROLE@127.0.0.1:$PORT/$DB"

pg_bin() {
    if [[ -n "${SWITCHYARD_PG_BIN:-}" ]]; then echo "$SWITCHYARD_PG_BIN"; return; fi
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -z "$dir" ]]; then
        echo "PostgreSQL is not installed: apt-get update && apt-get install -y postgresql" >&2
        exit 1
    fi
    echo "$dir"
}

BIN="$(pg_bin)"

# Runs a server binary as the cluster's owner: `postgres` when we are root, else ourselves.
as_owner() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

running() {
    [[ -f "$DATA/PG_VERSION" ]] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

init_cluster() {
    mkdir -p "$BASE"
    if [[ "$(id -u)" == 0 ]]; then chown postgres: "$BASE"; fi
    chmod 700 "$BASE"
    as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$BASE/initdb.log" 2>&1 \
        || { cat "$BASE/initdb.log" >&2; exit 1; }
    {
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $PORT"
        echo "unix_socket_directories = '$BASE'"
        echo "max_connections = 200"
        echo "shared_buffers = 128MB"
        echo "fsync = on"
    } | as_owner tee -a "$DATA/postgresql.conf" >/dev/null
    # Only loopback TCP and the private socket directory; trust is fine for a throwaway cluster.
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' | as_owner tee "$DATA/pg_hba.conf" >/dev/null
}

# The server outlives this script, so it starts from a subshell that keeps no descriptor but 0-2:
# a caller waiting for the end of a pipe or socket it gave us would wait as long as the server runs.
start_server() {
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd="${fd##*/}"
            if [[ "$fd" =~ ^[0-9]+$ ]] && (( fd > 2 )); then eval "exec $fd>&-" 2>/dev/null || true; fi
        done
        as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start </dev/null >/dev/null
    ) || { tail -n 30 "$LOG" >&2; exit 1; }
}

psql_admin() {
    as_owner "$BIN/psql" -h "$BASE" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"
}

case "${1:-start}" in
start)
    if [[ ! -f "$DATA/PG_VERSION" ]]; then init_cluster; fi
    if ! running; then start_server; fi
    if [[ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != 1 ]]; then
        psql_admin -c "CREATE ROLE $ROLE LOGIN"
    fi
    if [[ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]]; then
        psql_admin -c "CREATE DATABASE $DB OWNER $ROLE"
    fi
    echo "export SWITCHYARD_TEST_POSTGRES_URL=$URL"
    ;;
stop)
    # `stop immediate`: the server goes away at once, as after a crash (the restart test uses it).
    if running; then as_owner "$BIN/pg_ctl" -D "$DATA" -m "${2:-fast}" -w stop >/dev/null; fi
    ;;
destroy)
    if running; then as_owner "$BIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null; fi
    rm -rf "$BASE"
    ;;
url)
    echo "$URL"
    ;;
status)
    if running; then echo "running: $URL"; else echo "stopped"; exit 3; fi
    ;;
*)
    echo "usage: $0 start|stop|destroy|url|status" >&2
    exit 2
    ;;
esac

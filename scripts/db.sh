#!/usr/bin/env bash
# The project's own PostgreSQL 15 + PostGIS server: data directory inside the
# checkout (.pgdata, git-ignored), its own port, listening on 127.0.0.1 only.
# initdb refuses to run as root, so as root every server command runs as the
# `postgres` OS user. Usage: scripts/db.sh start|stop|status
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
PGDATA="${BARRIO_PGDATA:-$here/.pgdata}"
PGPORT="${BARRIO_PGPORT:-55432}"
DB_NAME="${BARRIO_DB_NAME:-barrio}"
DB_USER="${BARRIO_DB_USER:-barrio}"
DB_PASSWORD="${BARRIO_DB_PASSWORD:-barrio}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
LOG="$PGDATA.log"

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
psql_admin() {
  as_owner env PGOPTIONS="-c client_min_messages=warning" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGDATA" -p "$PGPORT" -d "${1:-postgres}" "${@:2}"
}

init() {
  [ -f "$PGDATA/PG_VERSION" ] && return 0
  mkdir -p "$PGDATA"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$PGDATA"
    as_owner test -w "$PGDATA" || {
      echo "The postgres user cannot write $PGDATA: every parent folder must be searchable by it." >&2
      exit 1
    }
  fi
  chmod 700 "$PGDATA"
  as_owner "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$PGDATA'
fsync = off                  # a disposable development/test server
synchronous_commit = off
full_page_writes = off
shared_buffers = 512MB
work_mem = 64MB
maintenance_work_mem = 512MB
max_wal_size = 4GB
CONF
  # peer authentication matches the OS user name; let the invoking user (root or
  # a developer) act as the server's superuser over the private socket.
  if [ "$(id -u)" -ne 0 ]; then
    sed -i "s/^local\s\+all\s\+all\s\+peer/local all all peer map=self/" "$PGDATA/pg_hba.conf"
    echo "self $(id -un) postgres" >>"$PGDATA/pg_ident.conf"
    echo "self postgres postgres" >>"$PGDATA/pg_ident.conf"
  fi
}

start() {
  init
  if ! as_owner "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    touch "$LOG" && { [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$LOG"; }
    as_owner "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$LOG" -w -t 60 start >/dev/null
  fi
  # Role, database and PostGIS. The extension also goes into template1 so the
  # test runner's fresh database has it without needing superuser rights.
  psql_admin postgres <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') THEN
    CREATE ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASSWORD';
  END IF;
END \$\$;
SQL
  if [ -z "$(psql_admin postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" ]; then
    as_owner "$PG_BIN/createdb" -h "$PGDATA" -p "$PGPORT" -O "$DB_USER" "$DB_NAME"
  fi
  psql_admin template1 -c "CREATE EXTENSION IF NOT EXISTS postgis"
  psql_admin "$DB_NAME" -c "CREATE EXTENSION IF NOT EXISTS postgis"
  echo "PostGIS ready: postgis://$DB_USER:***@127.0.0.1:$PGPORT/$DB_NAME"
}

stop() {
  [ -f "$PGDATA/PG_VERSION" ] || return 0
  as_owner "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
  echo "PostGIS stopped"
}

status() {
  as_owner "$PG_BIN/pg_ctl" -D "$PGDATA" status
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Prepares the local PostgreSQL database the audit-store tests use, and prints its
# connection string on stdout (everything else goes to stderr):
#
#   export CONFIG_SERVICE_TEST_DATABASE_URL="$(scripts/pg-test-db.sh)"
#
# Starts the Debian/Ubuntu cluster (pg_ctlcluster) when it is down, then creates the role
# and the database when missing. Idempotent; safe to run before every test run. Run it as
# root or as the `postgres` user. The tests call it themselves when
# CONFIG_SERVICE_TEST_DATABASE_URL is unset.
#
# Environment (all optional):
#   PG_TEST_CLUSTER   "<version> <name>" of the cluster; default: the first pg_lsclusters lists
#   PG_TEST_ROLE      default config_service
#   PG_TEST_PASSWORD  default config_service_test (a local test database only)
#   PG_TEST_DATABASE  default config_service_test
set -euo pipefail

ROLE="${PG_TEST_ROLE:-config_service}"
PASSWORD="${PG_TEST_PASSWORD:-config_service_test}"
DATABASE="${PG_TEST_DATABASE:-config_service_test}"

log() { printf 'pg-test-db: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[[ "$ROLE" =~ ^[a-z_][a-z0-9_]*$ ]] || die "PG_TEST_ROLE must be a plain lower-case identifier"
[[ "$DATABASE" =~ ^[a-z_][a-z0-9_]*$ ]] || die "PG_TEST_DATABASE must be a plain lower-case identifier"
[[ "$PASSWORD" =~ ^[A-Za-z0-9_.~-]+$ ]] || die "PG_TEST_PASSWORD may hold only [A-Za-z0-9_.~-] (it goes into a URL unescaped)"

command -v pg_lsclusters >/dev/null 2>&1 && command -v pg_ctlcluster >/dev/null 2>&1 ||
  die "pg_ctlcluster not found: install PostgreSQL (Debian/Ubuntu postgresql-common), or set CONFIG_SERVICE_TEST_DATABASE_URL to a database you prepared"

if [[ -n "${PG_TEST_CLUSTER:-}" ]]; then
  read -r VERSION NAME <<<"$PG_TEST_CLUSTER"
else
  read -r VERSION NAME _ < <(pg_lsclusters -h | head -n 1) || true
fi
[[ -n "${VERSION:-}" && -n "${NAME:-}" ]] || die "no PostgreSQL cluster found (pg_lsclusters lists none)"

# Runs psql as the postgres superuser over the local socket.
as_postgres() {
  if [[ "$(id -un)" == postgres ]]; then
    "$@"
  elif [[ "$(id -u)" == 0 ]]; then
    # su needs one command string; quote every argument for bash.
    local cmd
    printf -v cmd '%q ' "$@"
    su postgres -s /bin/bash -c "$cmd"
  else
    die "run as root or as the postgres user (or set CONFIG_SERVICE_TEST_DATABASE_URL)"
  fi
}

status="$(pg_lsclusters -h | awk -v v="$VERSION" -v n="$NAME" '$1 == v && $2 == n { print $4 }')"
PORT="$(pg_lsclusters -h | awk -v v="$VERSION" -v n="$NAME" '$1 == v && $2 == n { print $3 }')"
[[ -n "$PORT" ]] || die "cluster $VERSION/$NAME not found"
if [[ "$status" != online* ]]; then
  log "starting PostgreSQL cluster $VERSION/$NAME"
  if [[ "$(id -u)" == 0 || "$(id -un)" == postgres ]]; then
    pg_ctlcluster "$VERSION" "$NAME" start >&2
  else
    die "cluster $VERSION/$NAME is down and only root or postgres may start it"
  fi
fi

for _ in $(seq 1 60); do
  pg_isready -q -h 127.0.0.1 -p "$PORT" && break
  sleep 0.5
done
pg_isready -q -h 127.0.0.1 -p "$PORT" || die "PostgreSQL on 127.0.0.1:$PORT is not accepting connections"

PSQL=(psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" -d postgres)
as_postgres "${PSQL[@]}" -f - >&2 <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD';
  ELSE
    ALTER ROLE $ROLE LOGIN PASSWORD '$PASSWORD';
  END IF;
END
\$\$;
SQL
db_exists() { [[ "$(as_postgres "${PSQL[@]}" -tA -c "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" == 1 ]]; }
if ! db_exists; then
  log "creating database $DATABASE"
  # Another run may create it at the same moment; that is fine.
  as_postgres "${PSQL[@]}" -c "CREATE DATABASE $DATABASE OWNER $ROLE" >&2 || db_exists || die "cannot create database $DATABASE"
fi

printf 'postgres://%s:%s@127.0.0.1:%s/%s\n' "$ROLE" "$PASSWORD" "$PORT" "$DATABASE"

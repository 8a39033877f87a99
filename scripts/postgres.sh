#!/usr/bin/env bash
# Start the tests' own PostgreSQL: Debian's server binaries, a cluster in .tools/postgres
# (trust auth, no TCP listener) and its Unix socket in .tools/postgres/socket, which the
# test run's network namespace reaches as well as the host does. Idempotent.
# Prints the admin URL the tests use (TEST_POSTGRES_ADMIN_URL).
set -euo pipefail
cd "$(dirname "$0")/.."

root=$PWD/.tools/postgres
data=$root/data
socket=$root/socket
port=5432  # only names the socket file (.s.PGSQL.5432); nothing listens on TCP

pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$pgbin" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  else
    echo "PostgreSQL is not installed: install Debian's postgresql (sudo apt-get install postgresql), or set TEST_POSTGRES_ADMIN_URL" >&2
    exit 1
  fi
fi

# initdb and postgres refuse to run as root: as root, the cluster belongs to the postgres user.
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

mkdir -p "$root"
if [ "$(id -u)" = 0 ]; then chown postgres: "$root"; fi
if [ ! -f "$data/PG_VERSION" ]; then
  as_owner "$pgbin/initdb" --pgdata "$data" --username postgres --auth trust --encoding UTF8 >/dev/null
fi
as_owner mkdir -p "$socket"
if ! as_owner "$pgbin/pg_ctl" --pgdata "$data" status >/dev/null 2>&1; then
  as_owner "$pgbin/pg_ctl" --pgdata "$data" --log "$root/server.log" --wait --silent \
    -o "-c listen_addresses='' -c unix_socket_directories='$socket' -p $port -c max_connections=200 -c fsync=off" start
fi
echo "postgresql://postgres@/postgres?host=$socket&port=$port"

# Sourced by .ci/run and scripts/test. start_postgres starts this checkout's own PostgreSQL cluster and
# exports POLICY_TEST_DATABASE_URL, so the storage tests run on SQLite and PostgreSQL:
#   - data directory .postgres/data (ignored by git; POLICY_POSTGRES_DIR moves .postgres elsewhere),
#     created on first use with initdb of the newest PostgreSQL installed (Debian's postgresql package);
#   - its own port, chosen free once and kept in .postgres/port, listening on 127.0.0.1 only, and its
#     Unix socket in .postgres/ (the log is .postgres/log);
#   - the role policy_service (password policy_service) owns the database policy_service_test.
# It never reads, starts or changes any other cluster (pg_lsclusters' clusters are left alone).
# stop_postgres stops it; `rm -rf .postgres` after that removes it. initdb and postgres refuse to run as
# root, so as root the cluster runs as the postgres system user; when that user cannot reach .postgres/
# (a checkout inside a private folder), the cluster's folder is $TMPDIR/policy-service-postgres-<checksum
# of the checkout's path> instead — still this checkout's own.

POLICY_PROJECT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
POLICY_POSTGRES_DIR=${POLICY_POSTGRES_DIR:-$POLICY_PROJECT_DIR/.postgres}
SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo sudo)

postgres_bin() {
  find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -1
}

postgres_installed() {
  local bin
  bin=$(postgres_bin)
  [ -n "$bin" ] && [ -x "$bin/initdb" ] && [ -x "$bin/pg_ctl" ]
}

# Runs a PostgreSQL program as the cluster's owner, from inside its directory (the owner may not be
# allowed into the caller's working directory).
as_cluster_owner() {
  if [ "$(id -u)" = 0 ]; then
    (cd "$POLICY_POSTGRES_DIR" && runuser -u postgres -- "$@")
  else
    (cd "$POLICY_POSTGRES_DIR" && "$@")
  fi
}

# Whether PostgreSQL could listen on the port now. With SO_REUSEADDR, as PostgreSQL itself binds: connections of a
# cluster just stopped linger in TIME-WAIT/FIN-WAIT on its port for up to a minute, and a plain bind() fails on them,
# so a stop then start moved the kept port and a service still connected to the old one answered 503 for good.
# listen() is what fails when another program listens there.
_port_free() {
  python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)' "$1" 2>/dev/null
}

_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_postgres() {
  local bin data port
  bin=$(postgres_bin)
  mkdir -p "$POLICY_POSTGRES_DIR"
  chmod 700 "$POLICY_POSTGRES_DIR"
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$POLICY_POSTGRES_DIR"
  fi
  if ! as_cluster_owner test -w "$POLICY_POSTGRES_DIR" 2>/dev/null; then
    # A checkout in a private directory (e.g. a CI clone under a 700 temporary folder, as root): the
    # cluster's files go to a folder of this checkout's own outside it, named after the checkout's path.
    local outside
    outside="${TMPDIR:-/tmp}/policy-service-postgres-$(printf %s "$POLICY_PROJECT_DIR" | cksum | cut -d' ' -f1)"
    echo "scripts/postgres.sh: the postgres user cannot reach $POLICY_POSTGRES_DIR (a parent directory is not" \
         "searchable), so this checkout's cluster lives in $outside" >&2
    rmdir "$POLICY_POSTGRES_DIR" 2>/dev/null || true
    POLICY_POSTGRES_DIR=$outside
    mkdir -p "$POLICY_POSTGRES_DIR"
    chmod 700 "$POLICY_POSTGRES_DIR"
    if [ "$(id -u)" = 0 ]; then
      chown postgres: "$POLICY_POSTGRES_DIR"
    fi
    if ! as_cluster_owner test -w "$POLICY_POSTGRES_DIR" 2>/dev/null; then
      echo "scripts/postgres.sh: the postgres user cannot write $POLICY_POSTGRES_DIR either;" \
           "set POLICY_POSTGRES_DIR to a directory it can reach" >&2
      return 1
    fi
  fi
  data=$POLICY_POSTGRES_DIR/data
  if [ ! -s "$data/PG_VERSION" ]; then
    # Local connections (the socket in .postgres/, mode 700) trust the OS user; TCP needs a password.
    as_cluster_owner "$bin/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$POLICY_POSTGRES_DIR/initdb.log" 2>&1 \
      || { cat "$POLICY_POSTGRES_DIR/initdb.log" >&2; return 1; }
  fi
  port=$(cat "$POLICY_POSTGRES_DIR/port" 2>/dev/null || true)
  if ! as_cluster_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    # A port taken meanwhile by something else: choose another, once.
    if [ -z "$port" ] || ! _port_free "$port"; then
      port=$(_free_port)
      echo "$port" >"$POLICY_POSTGRES_DIR/port"
    fi
    as_cluster_owner "$bin/pg_ctl" -D "$data" -l "$POLICY_POSTGRES_DIR/log" -w -t 60 \
      -o "-p $port -k $POLICY_POSTGRES_DIR -c listen_addresses=127.0.0.1" start >/dev/null \
      || { tail -20 "$POLICY_POSTGRES_DIR/log" >&2; return 1; }
  fi
  as_cluster_owner "$bin/psql" -h "$POLICY_POSTGRES_DIR" -p "$port" -U postgres -d postgres \
    -v ON_ERROR_STOP=1 -qtA <<'SQL' >/dev/null
SELECT 'CREATE ROLE policy_service LOGIN PASSWORD ''policy_service'''
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'policy_service') \gexec
SELECT 'CREATE DATABASE policy_service_test OWNER policy_service'
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'policy_service_test') \gexec
SQL
  export POLICY_TEST_DATABASE_URL="postgresql://policy_service:policy_service@127.0.0.1:$port/policy_service_test"
  echo "PostgreSQL of this checkout: $data on 127.0.0.1:$port (POLICY_TEST_DATABASE_URL exported)" >&2
}

stop_postgres() {
  if [ -s "$POLICY_POSTGRES_DIR/data/PG_VERSION" ]; then
    as_cluster_owner "$(postgres_bin)/pg_ctl" -D "$POLICY_POSTGRES_DIR/data" -m fast stop
  fi
}

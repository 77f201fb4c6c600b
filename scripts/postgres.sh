# Sourced by .ci/run and scripts/test: start_postgres starts the local PostgreSQL cluster (creating one if
# none exists), creates the role and test database, and exports POLICY_TEST_DATABASE_URL, so the storage
# tests run on SQLite and PostgreSQL. Needs PostgreSQL's Debian packages (postgresql, postgresql-common).

SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo sudo)

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

postgres_installed() {
  command -v pg_ctlcluster >/dev/null 2>&1 && [ -n "$(ls /usr/lib/postgresql 2>/dev/null)" ]
}

start_postgres() {
  if [ -z "$(pg_lsclusters -h)" ]; then
    $SUDO pg_createcluster "$(ls /usr/lib/postgresql | sort -V | tail -1)" main >/dev/null
  fi
  read -r version cluster port status _ < <(pg_lsclusters -h | head -1)
  if [ "$status" != online ]; then
    $SUDO pg_ctlcluster "$version" "$cluster" start
  fi
  as_postgres psql -p "$port" -v ON_ERROR_STOP=1 -qtA <<'SQL'
SELECT 'CREATE ROLE policy_service LOGIN PASSWORD ''policy_service'''
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'policy_service') \gexec
SELECT 'CREATE DATABASE policy_service_test OWNER policy_service'
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'policy_service_test') \gexec
SQL
  export POLICY_TEST_DATABASE_URL="postgresql://policy_service:policy_service@127.0.0.1:$port/policy_service_test"
}

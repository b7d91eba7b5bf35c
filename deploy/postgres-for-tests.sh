#!/usr/bin/env bash
# Installs (Debian package) and starts a local PostgreSQL for the test suite, creates a throwaway
# role and database, and prints the URL to export as FRAUDSTREAM_TEST_PG_URL.
# Usage: export FRAUDSTREAM_TEST_PG_URL="$(bash deploy/postgres-for-tests.sh)"
set -euo pipefail
log() { echo "postgres-for-tests: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  log "installing the Debian package postgresql"
  as_root apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >&2
fi
if ! pg_lsclusters -h 2>/dev/null | grep -q .; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -1)
  as_root pg_createcluster "$version" main >&2
fi
read -r version cluster port status _ < <(pg_lsclusters -h | head -1)
if [ "$status" != online ]; then
  log "starting cluster $version/$cluster on port $port"
  as_root pg_ctlcluster "$version" "$cluster" start >&2
fi
for _ in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 -p "$port" && break
  sleep 1
done
pg_isready -h 127.0.0.1 -p "$port" >&2 || { log "PostgreSQL did not become ready"; exit 1; }
run_psql() { as_root su postgres -c "psql -q -p $port -v ON_ERROR_STOP=1 $*" >&2; }
user=fraudstream_test
pass=$(cat /proc/sys/kernel/random/uuid | tr -d -)
run_psql "-c \"DROP DATABASE IF EXISTS fraudstream_test WITH (FORCE)\""
# The role may own other databases on a shared machine, so it is never dropped: it is created when
# missing and otherwise given a fresh password.
cat > /tmp/fraudstream-role.sql <<SQL
SELECT format('CREATE ROLE %I LOGIN', '$user')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$user') \\gexec
ALTER ROLE $user LOGIN PASSWORD '$pass';
SQL
chmod 644 /tmp/fraudstream-role.sql
run_psql "-f /tmp/fraudstream-role.sql"
rm -f /tmp/fraudstream-role.sql
run_psql "-c \"CREATE DATABASE fraudstream_test OWNER $user\""
echo "postgresql+psycopg://$user:$pass@127.0.0.1:$port/fraudstream_test"

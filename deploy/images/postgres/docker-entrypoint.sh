#!/bin/sh
# The official postgres image's contract, for what docker-compose.yml uses: on an empty $PGDATA,
# initdb with superuser $POSTGRES_USER (default postgres) and password $POSTGRES_PASSWORD
# (required), scram-sha-256 for TCP clients, then CREATE DATABASE $POSTGRES_DB (default: the
# user name). While initialising, the server listens on a private socket only, so pg_isready
# on the default socket (the compose healthcheck) says "ready" only once initialisation is done.
set -eu
if [ "${1:-postgres}" = postgres ]; then
  [ "$#" -gt 0 ] && shift
  : "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
  POSTGRES_USER="${POSTGRES_USER:-postgres}"
  POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    printf '\nhost all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
    printf "\nlisten_addresses = '*'\n" >> "$PGDATA/postgresql.auto.conf"
    init_socket=$(mktemp -d)
    pg_ctl -D "$PGDATA" -w -s -o "-c listen_addresses='' -c unix_socket_directories=$init_socket" start
    if [ "$POSTGRES_DB" != postgres ]; then
      # psql interpolates :"db" (a quoted identifier) only in its input, not in -c.
      printf 'CREATE DATABASE :"db";\n' | psql -v ON_ERROR_STOP=1 -q -h "$init_socket" \
        -U "$POSTGRES_USER" -d postgres -v db="$POSTGRES_DB"
    fi
    pg_ctl -D "$PGDATA" -w -s -m fast stop
    rmdir "$init_socket"
    echo "PostgreSQL init process complete; ready for start up."
  fi
  exec postgres -D "$PGDATA" "$@"
fi
exec "$@"

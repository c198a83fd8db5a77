#!/usr/bin/env bash
# Install (Debian's package) and start PostgreSQL, with a role and database for the tests.
# Usage: bash .ci/postgres.sh [DATABASE]   (default iiif_test, the one CI uses)
# Prints the database URL the tests use. The role may create databases: under pytest-xdist each worker
# makes its own beside this one (DATABASE_gw0, DATABASE_gw1 ...; tests/support.py).
set -euo pipefail
database="${1:-iiif_test}"
case "$database" in
    *[!a-z0-9_]* | "") echo "postgres.sh: a database name is lower-case letters, digits and _" >&2; exit 2 ;;
esac
if ! command -v pg_lsclusters >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
fi
read -r version cluster _ < <(pg_lsclusters -h | head -n 1)
if [ -z "${version:-}" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    cluster=main
    pg_createcluster "$version" "$cluster" >&2
fi
pg_ctlcluster "$version" "$cluster" start >&2 || true
for _ in $(seq 1 30); do
    su postgres -c "psql -qAtc 'select 1'" >/dev/null 2>&1 && break
    sleep 1
done
su postgres -c "psql -qAtc \"select 1 from pg_roles where rolname='iiif'\"" | grep -q 1 \
    || su postgres -c "psql -qc \"create role iiif login password 'iiif'\"" >&2
su postgres -c "psql -qc 'alter role iiif createdb'" >&2
su postgres -c "psql -qAtc \"select 1 from pg_database where datname='${database}'\"" | grep -q 1 \
    || su postgres -c "createdb -O iiif ${database}" >&2
port=$(su postgres -c "psql -qAtc 'show port'")
echo "postgresql://iiif:iiif@127.0.0.1:${port}/${database}"

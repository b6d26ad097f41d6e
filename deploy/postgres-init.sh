#!/usr/bin/env bash
# The postgres container's first start only (/docker-entrypoint-initdb.d): the owner of the
# tables and the database it owns. The owner is no superuser; it may create roles (CREATEROLE),
# so that `db_roles`, run by the `migrate` service, can create the application role.
#
# Name, password and database come from DATABASE_OWNER_URL, the URL `migrate` connects with, so
# they are written down once. Percent-encoded characters (%40 for @) are decoded as the app
# decodes them.
set -euo pipefail

url="${DATABASE_OWNER_URL:?set DATABASE_OWNER_URL}"
rest="${url#*://}"
userinfo="${rest%%@*}"
database="${rest##*/}"
database="${database%%\?*}"

decode() {
    local s="${1//\\/\\\\}"
    printf '%b' "${s//%/\\x}"
}
owner="$(decode "${userinfo%%:*}")"
password="$(decode "${userinfo#*:}")"

# psql's :"name" and :'value' quote what they insert: nothing in the URL can change the SQL.
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    -v owner="$owner" -v password="$password" -v database="$database" <<'SQL'
CREATE ROLE :"owner" LOGIN NOSUPERUSER NOCREATEDB CREATEROLE PASSWORD :'password';
CREATE DATABASE :"database" OWNER :"owner";
SQL

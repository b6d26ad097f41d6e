#!/usr/bin/env bash
# Run the whole test suite. Uses DATABASE_URL / REDIS_URL when set (CI sets PostgreSQL and Redis);
# otherwise SQLite, skipping the tests that only make sense on PostgreSQL or Redis.
source "$(dirname "$0")/_env.sh"
exec .venv/bin/python -m pytest "$@"

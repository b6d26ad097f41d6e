#!/usr/bin/env bash
# Start the back office on http://127.0.0.1:8000 with demo data: SQLite, no Redis, tasks inline.
source "$(dirname "$0")/_env.sh"
export DEBUG="${DEBUG:-1}"
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py seed_demo
exec .venv/bin/python manage.py runserver 127.0.0.1:8000

#!/usr/bin/env bash
# Start the back office on http://127.0.0.1:8000 with demo data: SQLite, no Redis, tasks inline.
source "$(dirname "$0")/_env.sh"
export DEBUG="${DEBUG:-1}"
# Alerts go to the demo founder; mail is printed on this console (EMAIL_URL defaults to consolemail://),
# so the health body does not report alerts with nowhere to go.
export FOUNDER_ALERT_EMAILS="${FOUNDER_ALERT_EMAILS:-founder@planbeta.example}"
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py seed_demo
exec .venv/bin/python manage.py runserver 127.0.0.1:8000

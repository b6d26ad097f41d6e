"""`manage.py` in a subprocess as production runs it: production settings and variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PRODUCTION_ENV = {
    "SECRET_KEY": "pX9!z" * 12,
    "ALLOWED_HOSTS": "office.planbeta.example",
    "DATABASE_URL": "postgres://planbeta@db.internal:5432/planbeta",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "SENTRY_ENVIRONMENT": "production",
    "FOUNDER_ALERT_EMAILS": "founder@planbeta.example",
}

# What the test process has that production would not: the test settings module (pytest-django
# exports it) and the key it sets for itself, the developer's DEBUG, database and CI flag.
_NOT_INHERITED = {
    "DJANGO_SETTINGS_MODULE",
    "SECRET_KEY",
    "DEBUG",
    "DATABASE_URL",
    "REDIS_URL",
    "CI",
}


def production_environ(env: dict[str, str]) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
    return {**clean, **env}


def run_python(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=production_environ(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return run_python("manage.py", *args, env=env)

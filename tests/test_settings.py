"""The settings module as production loads it: from the environment, refusing what is unsafe."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from planbeta import settings as production
from planbeta.celery import app as celery_app
from planbeta.celery import beat_schedule
from tests.production import PRODUCTION_ENV, manage, run_python

ROOT = Path(__file__).resolve().parent.parent
APP_DIRS = ["accounts", "alerts", "audit", "core", "invoices", "leads", "monitoring", "payments"]


# --- placeholders from .env.example -----------------------------------------------------------

PLACEHOLDERS = {
    "SECRET_KEY": ("change-me-to-a-long-random-string", "change-me-to-a-long-random-string"),
    "HEALTH_CHECK_TOKEN": ("Change-Me-health-token-0427", "Change-Me-health-token-0427"),
    "DATABASE_URL": (
        "postgres://planbeta:change-me-db-0427@postgres:5432/planbeta",
        "change-me-db-0427",
    ),
    "EMAIL_URL": (
        "smtp+tls://alerts%40planbeta.example:changeme-mail-0427@smtp.example.com:587",
        "changeme-mail-0427",
    ),
}


@pytest.mark.parametrize("variable", sorted(PLACEHOLDERS))
def test_production_refuses_to_start_with_a_placeholder_and_names_it_without_showing_it(variable):
    value, secret = PLACEHOLDERS[variable]

    result = manage("check", env={**PRODUCTION_ENV, variable: value})

    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "ImproperlyConfigured: Placeholder values from .env.example are still set" in output
    assert variable in output.splitlines()[-1]
    assert secret not in output


def test_every_placeholder_of_env_example_is_refused():
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    placeholders = {k: v for k, v in example.items() if "change-me" in v}
    assert set(placeholders) == {
        "SECRET_KEY",
        "HEALTH_CHECK_TOKEN",
        "METRICS_TOKEN",
        "DATABASE_URL",
        "DATABASE_APP_PASSWORD",
        "DATABASE_OWNER_URL",
        "POSTGRES_PASSWORD",  # the superuser's, read by the postgres container alone
        "EMAIL_URL",
    }
    for variable in placeholders.keys() - {"POSTGRES_PASSWORD"}:
        if variable == "DATABASE_APP_PASSWORD":  # read by db_roles alone
            command, env = (
                ("db_roles", "--app-role", "planbeta_app"),
                {variable: placeholders[variable]},
            )
        else:  # DATABASE_OWNER_URL is the `migrate` service's DATABASE_URL
            name = "DATABASE_URL" if variable == "DATABASE_OWNER_URL" else variable
            command, env = ("check",), {name: placeholders[variable]}
        result = manage(*command, env={**PRODUCTION_ENV, **env})
        assert result.returncode != 0, variable


def test_a_development_machine_may_keep_the_placeholders():
    env = {**PRODUCTION_ENV, "DEBUG": "1", "SECRET_KEY": "change-me-to-a-long-random-string"}
    result = manage("check", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_settings_do_not_change_when_pytest_is_imported():
    # The settings once said `TESTING = "pytest" in sys.modules` and then accepted a missing
    # SECRET_KEY: any production process that happened to import pytest ran with a public key.
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    env["DJANGO_SETTINGS_MODULE"] = "planbeta.settings"
    result = run_python("-c", "import pytest, django; django.setup()", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off." in result.stderr


def test_the_suite_runs_on_its_own_settings_module(settings):
    assert os.environ["DJANGO_SETTINGS_MODULE"] == "planbeta.settings_test"
    assert settings.PASSWORD_HASHERS == ["django.contrib.auth.hashers.MD5PasswordHasher"]
    assert not hasattr(production, "PASSWORD_HASHERS")  # production keeps Django's strong default
    assert "pytest" not in (ROOT / "planbeta" / "settings.py").read_text()


# --- every threshold from the environment -----------------------------------------------------


def _thresholds_the_code_reads() -> list[str]:
    # Read as a setting, or (the ways that hid a default in the code) through getattr, a
    # helper of that kind, or straight from the environment.
    pattern = re.compile(
        r"(?:settings\.|getattr\(settings, \"|_setting\(\"|environ\.get\(\")"
        r"((?:HEALTH|ALERT|MONITORING)_[A-Z_]+)"
    )
    names = set(pattern.findall((ROOT / "planbeta" / "celery.py").read_text()))
    for app in APP_DIRS:
        for path in (ROOT / app).rglob("*.py"):
            names.update(pattern.findall(path.read_text()))
    return sorted(names - {"HEALTH_CHECK_DATABASE"})  # a database alias, not a threshold


def _another_value(default):
    """A value of the default's type that no default has, as an environment string and parsed."""
    if isinstance(default, bool):
        return ("0" if default else "1"), not default
    if isinstance(default, int):
        return str(default + 7), default + 7
    if isinstance(default, float):
        return str(default + 0.25), default + 0.25
    if isinstance(default, list):
        return "json+https://a.example/hook,slack+https://b.example/x", [
            "json+https://a.example/hook",
            "slack+https://b.example/x",
        ]
    return "SELECT 2", "SELECT 2"


def test_there_are_thresholds_to_check():
    names = _thresholds_the_code_reads()
    assert len(names) >= 30
    assert {"HEALTH_DB_SLOW_MS", "HEALTH_CACHE_SECONDS", "ALERT_SLOW_QUERY_CANCEL_MS"} <= set(names)


def test_every_health_and_alert_threshold_the_code_reads_is_set_from_the_environment():
    names = _thresholds_the_code_reads()
    missing = [name for name in names if not hasattr(production, name)]
    assert missing == [], "declared nowhere in planbeta/settings.py"
    values = {name: _another_value(getattr(production, name)) for name in names}
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}))"
    )
    env = {**PRODUCTION_ENV, "DJANGO_SETTINGS_MODULE": "planbeta.settings"}
    env.update({name: raw for name, (raw, _) in values.items()})

    result = run_python("-c", script, env=env)

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.splitlines()[-1])
    assert {n: seen[n] for n in names} == {n: parsed for n, (_, parsed) in values.items()}


def test_every_threshold_is_listed_in_env_example_and_the_readme():
    example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    names = _thresholds_the_code_reads()
    assert [n for n in names if not re.search(rf"^#? ?{n}=", example, re.M)] == []
    assert [n for n in names if f"`{n}`" not in readme] == []


# --- the beat schedule ------------------------------------------------------------------------


def test_the_beat_schedule_is_one_dict_with_intervals_from_the_settings(settings):
    assert celery_app.conf.beat_schedule == {
        "monitoring-heartbeat": {"task": "monitoring.heartbeat", "schedule": 60.0},
        "monitoring-reconcile": {"task": "monitoring.reconcile", "schedule": 3600.0},
        "monitoring-check-run": {"task": "monitoring.check_run", "schedule": 60.0},
        "alerts-evaluate-rules": {"task": "alerts.tasks.evaluate_alert_rules", "schedule": 60.0},
        "alerts-sweep-outbox": {"task": "alerts.tasks.sweep_outbox", "schedule": 30.0},
        "audit-replay-spool": {"task": "audit.replay_spool", "schedule": 30.0},
        "audit-seal-chain": {"task": "audit.seal_chain", "schedule": 5.0},
        "audit-checkpoint-chain": {"task": "audit.checkpoint_chain", "schedule": 3600.0},
        "audit-verify-chain": {"task": "audit.verify_chain", "schedule": 3600.0},
        "audit-fold-rollup": {"task": "audit.fold_rollup", "schedule": 30.0},
        "audit-fold-presence": {"task": "audit.fold_presence", "schedule": 30.0},
        "audit-ensure-partitions": {"task": "audit.ensure_partitions", "schedule": 86400.0},
    }
    settings.ALERT_SWEEP_SECONDS = 7.0
    settings.AUDIT_SEAL_SECONDS = 2.0
    assert beat_schedule()["alerts-sweep-outbox"]["schedule"] == 7.0
    assert beat_schedule()["audit-seal-chain"]["schedule"] == 2.0


def test_env_example_filled_in_passes_check_deploy_and_its_defaults_are_the_code_defaults():
    # Every `change-me…` replaced and every commented threshold switched on, as an operator might.
    env = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        line = line.removeprefix("# ")
        if re.fullmatch(r"[A-Z][A-Z0-9_]*=.*", line):
            name, value = line.split("=", 1)
            env[name] = re.sub(r"change-me[\w-]*", "s3cret-0427-replaced-Qx9vLm2ZpR7t", value)
    env["SECRET_KEY"] = "pX9!z" * 12
    names = _thresholds_the_code_reads()
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}))"
    )

    checked = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    loaded = run_python("-c", script, env={**env, "DJANGO_SETTINGS_MODULE": "planbeta.settings"})

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert loaded.returncode == 0, loaded.stderr
    example = json.loads(loaded.stdout.splitlines()[-1])
    # Production values where the code's defaults suit the quick start.
    assert example.pop("ALERT_BASE_URL") == "https://office.planbeta.example"
    assert example.pop("HEALTH_CHECK_TOKEN") == "s3cret-0427-replaced-Qx9vLm2ZpR7t"
    assert example.pop("HEALTH_EXPECT_HEARTBEAT") is True  # a worker runs
    assert example == {name: getattr(production, name) for name in example}


def test_the_audit_peers_of_the_benchmark_are_not_installed_by_the_real_settings():
    # bench/audit_peers.py adds them in a settings module of its own; production never loads them.
    peers = {"pghistory", "pgtrigger", "simple_history", "auditlog", "bench.peers"}
    assert peers.isdisjoint(production.INSTALLED_APPS)

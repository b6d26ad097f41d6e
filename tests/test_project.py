import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from accounts.models import User
from audit.models import AuditLog
from leads.models import Lead
from tests.production import PRODUCTION_ENV, manage

ROOT = Path(__file__).resolve().parent.parent


def test_check_deploy_is_clean_with_production_variables():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.django_db
def test_seed_demo_creates_three_personas_and_some_leads_and_can_run_twice(capsys):
    call_command("seed_demo")
    first = capsys.readouterr().out
    call_command("seed_demo")
    second = capsys.readouterr().out

    assert sorted(User.objects.values_list("role", flat=True)) == [
        "FOUNDER",
        "MARKETING",
        "TEACHER",
    ]
    assert Lead.objects.count() == 6
    founder_line = next(line for line in second.splitlines() if "founder@" in line)
    password = founder_line.split()[-1]
    assert User.objects.get(role="FOUNDER").check_password(password)
    assert first != second  # new passwords each run
    assert AuditLog.objects.filter(action="LEAD_CREATED", source="COMMAND").count() == 6


def test_code_is_formatted_and_lint_clean():
    ruff = [sys.executable, "-m", "ruff"]
    lint = subprocess.run(
        [*ruff, "check", "."], cwd=ROOT, capture_output=True, text=True, check=False
    )
    fmt = subprocess.run(
        [*ruff, "format", "--check", "."], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, lint.stdout
    assert fmt.returncode == 0, fmt.stdout


def test_the_project_packages_type_check():
    # [tool.mypy] in pyproject.toml names the packages and the django-stubs settings module.
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_imports_follow_the_arrows_between_the_apps():
    # The contracts are [tool.importlinter] in pyproject.toml; a broken one prints the import chain.
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout

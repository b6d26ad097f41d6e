"""With no alert channel configured, every process says so instead of alerting nobody."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.production import PRODUCTION_ENV, ROOT, manage, production_environ, run_python

NO_CHANNEL = {"FOUNDER_ALERT_EMAILS": "", "ALERT_WEBHOOK_URLS": ""}
WARNING_LINE = "No alert channel configured: alerts are recorded but reach nobody."


def test_check_deploy_warns_when_no_alert_channel_is_configured():
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env={**PRODUCTION_ENV, **NO_CHANNEL}
    )

    assert result.returncode != 0
    assert f"(alerts.W001) {WARNING_LINE}" in result.stderr
    assert "HINT: Set FOUNDER_ALERT_EMAILS or ALERT_WEBHOOK_URLS (or both)." in result.stderr


def test_a_webhook_alone_is_a_channel_for_check_deploy():
    env = {**PRODUCTION_ENV, **NO_CHANNEL, "ALERT_WEBHOOK_URLS": "json+https://a.example/hook"}
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("configured", [False, True], ids=["no channel", "a channel"])
def test_the_web_process_logs_a_warning_when_it_starts_without_a_channel(configured):
    env = {**PRODUCTION_ENV} if configured else {**PRODUCTION_ENV, **NO_CHANNEL}

    result = run_python("-c", "import planbeta.wsgi", env=env)

    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if WARNING_LINE in line]
    if configured:
        assert lines == []
    else:
        [line] = lines
        assert " WARNING alerts.checks web process started. " in line


def test_the_worker_and_beat_log_a_warning_when_they_start_without_a_channel(tmp_path):
    env = production_environ(
        {
            **PRODUCTION_ENV,
            **NO_CHANNEL,
            # The in-memory broker and a scratch SQLite file: starting up needs neither server.
            "REDIS_URL": "",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "CELERY_SKIP_CHECKS": "1",
        }
    )
    commands = {
        "worker": ["worker", "--pool", "solo", "--without-gossip", "--without-mingle"],
        "beat": ["beat", "--schedule", str(tmp_path / "beat-schedule")],
    }
    logs = {name: tmp_path / f"{name}.log" for name in commands}
    processes = {}
    try:
        for name, args in commands.items():
            with logs[name].open("w") as log:
                processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "planbeta", *args, "-l", "WARNING"],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        waiting = set(commands)
        deadline = time.monotonic() + 60
        while waiting and time.monotonic() < deadline:
            waiting = {name for name in waiting if WARNING_LINE not in logs[name].read_text()}
            exited = [name for name in waiting if processes[name].poll() is not None]
            assert exited == [], logs[exited[0]].read_text() if exited else ""
            time.sleep(0.2)  # polling other processes' logs: there is no clock to move
        assert waiting == set(), {name: logs[name].read_text() for name in waiting}
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    for name in commands:
        [line] = [line for line in logs[name].read_text().splitlines() if WARNING_LINE in line]
        assert f"WARNING/MainProcess] {name} process started. " in line

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitoring.checks import heartbeat_age_seconds
from monitoring.tasks import heartbeat
from planbeta.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.redis


@pytest.fixture
def worker(tmp_path):
    """A real Celery worker on the test Redis, as `docker compose` runs it."""
    env = {
        **os.environ,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "DEBUG": "1",
        "CELERY_SKIP_CHECKS": "1",
    }
    command = [sys.executable, "-m", "celery", "-A", "planbeta", "worker", "--pool", "solo"]
    command += ["--loglevel", "WARNING", "--without-gossip", "--without-mingle"]
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_heartbeat_sent_through_the_broker_is_recorded_by_a_worker(worker):
    assert heartbeat_age_seconds() is None
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    try:
        heartbeat.delay()
    finally:
        celery_app.conf.task_always_eager = eager
    deadline = time.monotonic() + 30
    age = None
    while age is None and time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.2)  # a real process on the other side: nothing to move with time-machine
        age = heartbeat_age_seconds()
    assert worker.poll() is None, worker.stderr.read().decode()
    assert age is not None and age < 30

"""The health endpoints as real third-party monitors see them, against a live gunicorn: the
monitoring-plugins' `check_http` (Nagios, Icinga) and Prometheus' blackbox exporter, each in
healthy, degraded and unhealthy. Debian packages; `.ci/run` installs them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.db import connection
from django.utils import timezone

from audit.models import AuditLog
from monitoring.checks import record_heartbeat
from tests.gunicorn import ROOT, free_port, http_request, serving

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

CHECK_HTTP = Path("/usr/lib/nagios/plugins/check_http")
BLACKBOX = "prometheus-blackbox-exporter"
MODULES = ROOT / "deploy" / "prometheus" / "blackbox.yml"
HEALTH = "/api/system/health"
MONEY = "/api/system/health/money"


def _tool(path: str, package: str) -> str:
    found = shutil.which(path)
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI runs the monitor tests: install Debian's {package}.")
    pytest.skip(f"needs Debian's {package}")


@pytest.fixture
def site(tmp_path):
    """gunicorn on the test database and Redis, with production settings; the health report is
    computed afresh for every request, so the test sets each state through data."""
    db = connection.settings_dict
    env = {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        f"/{db['NAME']}",
        "REDIS_URL": os.environ["REDIS_URL"],
        "SECRET_KEY": "monitor-peers-test-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "SENTRY_DSN": "",
        "FOUNDER_ALERT_EMAILS": "founder@planbeta.example",
        "HEALTH_EXPECT_HEARTBEAT": "1",
        "HEALTH_CACHE_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
    }
    inherited = {k: v for k, v in os.environ.items() if k not in ("CI", "DEBUG")}
    with serving({**inherited, **env}, tmp_path / "gunicorn.log", workers=1) as port:
        yield port


def _set(state: str) -> None:
    """The whole site healthy, degraded (a stale heartbeat) or unhealthy (a dead one)."""
    age = {"healthy": 5, "degraded": 240, "unhealthy": 660}[state]
    record_heartbeat(now=timezone.now() - timedelta(seconds=age))


def _fail_money() -> None:
    AuditLog.objects.bulk_create(
        AuditLog(action="PAYMENT_RECEIVED", severity="CRITICAL", description="failed")
        for _ in range(2)
    )


def _check_http(port: int, *args: str) -> tuple[int, str]:
    done = subprocess.run(
        [_tool(str(CHECK_HTTP), "monitoring-plugins-basic"), "-H", "127.0.0.1", "-p", str(port),
         "-t", "10", *args],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout


OK, WARNING, CRITICAL = 0, 1, 2


def test_check_http_tells_healthy_degraded_and_unhealthy_apart(site):
    healthy_header = ("-u", HEALTH, "-d", "X-Health-Status: healthy")

    _set("healthy")
    code, out = _check_http(site, *healthy_header)
    assert (code, out.startswith("HTTP OK: HTTP/1.1 200 OK")) == (OK, True), out
    assert _check_http(site, *healthy_header, "-j", "HEAD")[0] == OK  # the header on HEAD too

    _set("degraded")
    code, out = _check_http(site, *healthy_header)
    assert code == CRITICAL, out
    assert "header 'X-Health-Status: healthy' not found" in out
    assert _check_http(site, "-u", HEALTH, "-d", "X-Health-Status: degraded")[0] == OK
    assert _check_http(site, "-u", HEALTH)[0] == OK  # status codes alone: the site is up

    _set("unhealthy")
    code, out = _check_http(site, "-u", HEALTH, "-d", "X-Health-Status: unhealthy")
    assert code == CRITICAL, out
    assert out.startswith("HTTP CRITICAL: HTTP/1.1 503 Service Unavailable"), out


def test_check_http_pages_on_money_while_the_site_is_up(site):
    _set("healthy")
    assert _check_http(site, "-u", MONEY, "-e", "HTTP/1.1 200")[0] == OK
    _fail_money()
    code, out = _check_http(site, "-u", MONEY, "-e", "HTTP/1.1 200")
    assert code == CRITICAL, out
    assert "503" in out
    assert _check_http(site, "-u", HEALTH, "-d", "X-Health-Status: degraded")[0] == OK
    # The IETF format through a real server: the media type and the same status code.
    status, headers, _ = http_request(
        site, "GET", MONEY, headers={"Accept": "application/health+json"}
    )
    assert (status, headers["Content-Type"], headers["X-Health-Status"]) == (
        503,
        "application/health+json",
        "unhealthy",
    )


@pytest.fixture
def blackbox(tmp_path):
    """The exporter with the shipped modules, but over plain HTTP: the test's gunicorn has no TLS
    (in production Caddy has, and the modules insist on it)."""
    binary = _tool(BLACKBOX, "prometheus-blackbox-exporter")
    config = yaml.safe_load(MODULES.read_text())
    for module in config["modules"].values():
        assert module["http"].pop("fail_if_not_ssl") is True
    modules = tmp_path / "blackbox.yml"
    modules.write_text(yaml.safe_dump(config))
    port = free_port()
    log = open(tmp_path / "blackbox.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [binary, f"--config.file={modules}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                if http_request(port, "GET", "/-/healthy", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None, (tmp_path / "blackbox.log").read_text()
            time.sleep(0.1)  # waiting for another process to bind: no event to wait on
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _probe(blackbox_port: int, site_port: int, module: str, path: str) -> dict[str, float]:
    query = urllib.parse.urlencode(
        {"module": module, "target": f"http://127.0.0.1:{site_port}{path}"}
    )
    with urllib.request.urlopen(
        f"http://127.0.0.1:{blackbox_port}/probe?{query}", timeout=20
    ) as response:
        text = response.read().decode()
    return {
        name: float(value)
        for name, value in re.findall(r"^(probe_success|probe_http_status_code) (\S+)$", text, re.M)
    }


def test_the_blackbox_modules_judge_each_state(site, blackbox):
    expected = {
        # state: (health, health_strict, the HTTP status code the exporter saw)
        "healthy": (1, 1, 200),
        "degraded": (1, 0, 200),
        "unhealthy": (0, 0, 503),
    }
    for state, (lenient, strict, code) in expected.items():
        _set(state)
        seen = _probe(blackbox, site, "planbeta_health", HEALTH)
        assert seen == {"probe_success": lenient, "probe_http_status_code": code}, state
        strict_seen = _probe(blackbox, site, "planbeta_health_strict", HEALTH)
        assert strict_seen["probe_success"] == strict, state

    _set("healthy")
    assert _probe(blackbox, site, "planbeta_health", MONEY)["probe_success"] == 1
    _fail_money()
    assert _probe(blackbox, site, "planbeta_health", MONEY) == {
        "probe_success": 0,
        "probe_http_status_code": 503,
    }

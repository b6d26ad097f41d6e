"""The production shape: docker-compose.yml, the Caddy TLS proxy in front of gunicorn, gunicorn's
settings. No container engine runs here, so the compose file is read as data; Caddy and gunicorn
themselves check their configuration, and Caddy is run for real on 127.0.0.1."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

import pytest
import yaml
from django.test import RequestFactory

from audit.context import client_ip
from core.postgresql.base import DEFAULT_PING_DEADLINE
from tests.production import PRODUCTION_ENV, ROOT, production_environ, run_python

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
CADDYFILE = ROOT / "deploy" / "Caddyfile"
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"


def _env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


# --- docker-compose.yml -----------------------------------------------------------------------


def test_compose_runs_the_six_services_behind_a_tls_proxy():
    assert set(SERVICES) == {
        "postgres",
        "redis",
        "migrate",
        "web",
        "events",
        "worker",
        "beat",
        "caddy",
    }


def test_only_the_proxy_publishes_ports_and_gunicorn_is_not_published():
    published = {name: s["ports"] for name, s in SERVICES.items() if "ports" in s}
    assert published == {"caddy": ["80:80", "443:443", "443:443/udp"]}
    assert SERVICES["web"]["expose"] == ["8000"]
    assert SERVICES["events"]["expose"] == ["8001"]


def test_the_live_streams_are_served_by_threads_of_their_own():
    assert SERVICES["events"]["command"] == ["gunicorn", "-c", "deploy/gunicorn_events.conf.py"]
    config: dict[str, object] = {}
    exec((ROOT / "deploy" / "gunicorn_events.conf.py").read_text(), config)  # noqa: S102 - ours
    assert config["worker_class"] == "gthread"
    assert config["bind"] == "0.0.0.0:8001"
    # Each stream holds a thread; the threads left over answer the 204s beyond the limit.
    from django.conf import settings

    assert config["threads"] > settings.ACTIVITY_STREAMS_PER_PROCESS


def test_the_proxy_is_the_one_hop_that_trusted_proxy_count_believes():
    assert _env_example()["TRUSTED_PROXY_COUNT"] == "1"
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in SERVICES["caddy"]["volumes"]
    assert SERVICES["caddy"]["depends_on"] == {"web": {"condition": "service_healthy"}}
    assert "SITE_ADDRESS" in _env_example()


def test_the_database_and_redis_sit_on_an_internal_network_the_proxy_is_not_on():
    networks = {name: set(s["networks"]) for name, s in SERVICES.items()}
    assert networks == {
        "postgres": {"data"},
        "redis": {"data"},
        "migrate": {"data"},
        "web": {"edge", "data"},
        "events": {"edge", "data"},
        "worker": {"edge", "data"},
        "beat": {"edge", "data"},
        "caddy": {"edge"},
    }
    assert COMPOSE["networks"]["data"] == {"internal": True}


def test_web_and_the_image_start_gunicorn_from_its_config_file():
    assert SERVICES["web"]["command"] == ["gunicorn", "-c", "deploy/gunicorn.conf.py"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py"]' in dockerfile
    assert "--bind" not in dockerfile


def test_compose_migrates_as_the_owner_before_serving_as_the_application_role():
    migrate = SERVICES["migrate"]
    assert migrate["environment"]["DATABASE_URL"] == (
        "${DATABASE_OWNER_URL:?set DATABASE_OWNER_URL in .env}"
    )
    steps = [step.strip() for step in migrate["command"].removeprefix("sh -c").split("&&")]
    assert steps == [
        '"python manage.py migrate --noinput',
        'python manage.py db_roles --app-role planbeta_app"',
    ]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("web", "worker", "beat"):
        service = SERVICES[name]
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        # The owner's and the superuser's passwords are blanked where the app serves.
        assert service["environment"] == {"DATABASE_OWNER_URL": "", "POSTGRES_PASSWORD": ""}
        assert "migrate" not in str(service["command"])

    app, owner = (urlsplit(_env_example()[name]) for name in ("DATABASE_URL", "DATABASE_OWNER_URL"))
    assert app.username == "planbeta_app"  # the --app-role above
    assert owner.username not in {"planbeta_app", "postgres"}
    assert (app.hostname, app.path) == (owner.hostname, owner.path) == ("postgres", "/planbeta")
    assert app.password == _env_example()["DATABASE_APP_PASSWORD"]
    postgres = SERVICES["postgres"]
    assert postgres["environment"]["POSTGRES_USER"] == "postgres"
    assert postgres["environment"]["DATABASE_OWNER_URL"] == (
        "${DATABASE_OWNER_URL:?set DATABASE_OWNER_URL in .env}"
    )
    assert (
        "./deploy/postgres-init.sh:/docker-entrypoint-initdb.d/10-owner.sh:ro"
        in (postgres["volumes"])
    )


# --- gunicorn ---------------------------------------------------------------------------------


def _gunicorn_config(**env: str) -> dict[str, str]:
    result = run_python(
        "-m", "gunicorn", "--print-config", "-c", str(GUNICORN_CONF), env={**PRODUCTION_ENV, **env}
    )
    assert result.returncode == 0, result.stderr
    pairs = (line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def test_gunicorn_settings_come_from_the_environment_with_production_defaults():
    defaults = _gunicorn_config()
    assert (defaults["timeout"], defaults["workers"], defaults["bind"]) == (
        "30",
        "3",
        "['0.0.0.0:8000']",
    )
    assert defaults["wsgi_app"] == "planbeta.wsgi:application"
    assert defaults["control_socket_disable"] == "True"

    tuned = _gunicorn_config(GUNICORN_TIMEOUT="45", GUNICORN_WORKERS="5")
    assert (tuned["timeout"], tuned["workers"]) == ("45", "5")


def test_gunicorn_loads_the_application_with_production_variables():
    result = run_python(
        "-m", "gunicorn", "--check-config", "-c", str(GUNICORN_CONF), env=PRODUCTION_ENV
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _milliseconds(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)\s*(ms|s|min)?", value.strip()).groups()
    return float(number) * {"ms": 1, None: 1, "s": 1000, "min": 60_000}[unit]


def test_gunicorn_outlasts_every_timeout_a_request_keeps(settings):
    # Killed by gunicorn, a request leaves no audit row and the client no JSON answer: each wait
    # a request may spend (database, mail, webhooks) must end before the worker timeout.
    worker_timeout_ms = int(_gunicorn_config()["timeout"]) * 1000
    database = settings.DATABASES["default"].get("OPTIONS", {})
    waits = {
        "EMAIL_TIMEOUT": settings.EMAIL_TIMEOUT * 1000,
        "ALERT_WEBHOOK_TIMEOUT": settings.ALERT_WEBHOOK_TIMEOUT * 1000,
        "connect_timeout": float(database.get("connect_timeout", 0)) * 1000,
    }
    for name, value in re.findall(r"-c\s*(\w+_timeout)=(\S+)", database.get("options", "")):
        waits[name] = _milliseconds(value)
    assert {name: ms for name, ms in waits.items() if ms >= worker_timeout_ms} == {}


def test_gunicorn_outlasts_the_longest_a_request_can_wait_for_a_stalled_database(settings):
    # The ping of the kept-alive connection, a new connection, one wait cut at the deadline (the
    # request then stops waiting for the database), and an invoice e-mail on top.
    longest_ms = 1000 * (
        DEFAULT_PING_DEADLINE
        + settings.DB_CONNECT_TIMEOUT
        + settings.DB_CALL_DEADLINE
        + settings.EMAIL_TIMEOUT
    )
    assert int(_gunicorn_config()["timeout"]) * 1000 > longest_ms


# --- Caddy ------------------------------------------------------------------------------------


def _caddy() -> str:
    caddy = shutil.which("caddy")
    if caddy is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI checks the Caddyfile: install Debian's caddy (apt-get install caddy).")
        pytest.skip("needs Debian's caddy")
    return caddy


def _caddy_env(tmp_path: Path, **env: str) -> dict[str, str]:
    # Caddy keeps certificates and state under HOME / XDG_*: a scratch folder, not the machine's.
    home = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    return {**production_environ({}), **home, **env}


def test_caddy_accepts_the_caddyfile_for_the_production_host(tmp_path):
    result = subprocess.run(
        [_caddy(), "validate", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        env=_caddy_env(tmp_path, SITE_ADDRESS="office.planbeta.example"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Valid configuration" in result.stdout + result.stderr


class _HeaderEcho(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_GET(self):
        type(self).seen.append(dict(self.headers))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class _EventStream(BaseHTTPRequestHandler):
    """A live stream as monitoring.live sends it: one event at once, the next when released."""

    release = threading.Event()

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache, no-store")
        self.end_headers()
        self.wfile.write(b"retry: 3000\nevent: ready\ndata: {}\n\n")
        self.wfile.flush()
        type(self).release.wait(30)
        self.wfile.write(b"event: audit\ndata: {}\n\n")
        self.wfile.flush()

    def log_message(self, *args):
        pass


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def caddy_in_front_of_an_upstream(tmp_path):
    """The shipped Caddyfile run on 127.0.0.1 (plain HTTP) in front of a server that records
    the headers it receives."""
    caddy = _caddy()
    _HeaderEcho.seen = []
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _HeaderEcho)
    upstream.daemon_threads = True
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    _EventStream.release.clear()
    events = ThreadingHTTPServer(("127.0.0.1", 0), _EventStream)
    events.daemon_threads = True
    threading.Thread(target=events.serve_forever, daemon=True).start()
    port = _free_port()
    env = _caddy_env(
        tmp_path,
        SITE_ADDRESS=f"http://127.0.0.1:{port}",
        UPSTREAM=f"127.0.0.1:{upstream.server_address[1]}",
        EVENTS_UPSTREAM=f"127.0.0.1:{events.server_address[1]}",
        CADDY_ADMIN="off",
    )
    log = (tmp_path / "caddy.log").open("w")
    process = subprocess.Popen(
        [caddy, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)  # waiting for another process to listen: no clock to move
        assert process.poll() is None, (tmp_path / "caddy.log").read_text()
        yield f"http://127.0.0.1:{port}", _HeaderEcho.seen
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        _EventStream.release.set()
        upstream.shutdown()
        upstream.server_close()
        events.shutdown()
        events.server_close()


def test_caddy_replaces_a_forged_x_forwarded_for_with_the_real_client_address(
    caddy_in_front_of_an_upstream, settings
):
    base, seen = caddy_in_front_of_an_upstream
    forged = {"X-Forwarded-For": "6.6.6.6"}
    request = Request(base + "/api/system/livez", headers=forged)  # noqa: S310 - our local URL

    with urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200

    [headers] = seen
    assert headers["X-Forwarded-For"] == "127.0.0.1"
    assert headers["X-Forwarded-Proto"] == "http"
    # As the application then reads it, with the one proxy that .env.example declares.
    settings.TRUSTED_PROXY_COUNT = 1
    behind_caddy = RequestFactory().get(
        "/", REMOTE_ADDR="172.18.0.5", HTTP_X_FORWARDED_FOR=headers["X-Forwarded-For"]
    )
    assert client_ip(behind_caddy) == "127.0.0.1"


def test_caddy_passes_each_live_event_on_at_once_and_uncompressed(caddy_in_front_of_an_upstream):
    base, _ = caddy_in_front_of_an_upstream
    request = Request(  # noqa: S310 - our local URL
        base + "/dashboard/activity/events", headers={"Accept-Encoding": "gzip, zstd"}
    )
    with urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.headers["Content-Type"] == "text/event-stream"
        assert "Content-Encoding" not in response.headers
        # The upstream holds the second event back: the first must arrive without it.
        assert [response.readline() for _ in range(4)] == [
            b"retry: 3000\n",
            b"event: ready\n",
            b"data: {}\n",
            b"\n",
        ]
        _EventStream.release.set()
        assert [response.readline() for _ in range(3)] == [b"event: audit\n", b"data: {}\n", b"\n"]

"""The browser SDK's side on the server: the vendored file, the settings, what a page carries.

What the SDK then sends from a real browser is tested in tests/browser/test_sentry_browser.py.
"""

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from planbeta.browser_sentry import browser_ingest_origin

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "static/vendor/sentry/sentry-browser.min.js"
DSN = "https://0123abcd@o42.ingest.sentry.io/4500001"


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self._open: dict[str, str | None] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self._open = {**dict(attrs), "text": ""}
            self.scripts.append(self._open)

    def handle_data(self, data):
        if self._open is not None:
            self._open["text"] += data

    def handle_endtag(self, tag):
        if tag == "script":
            self._open = None


def _scripts(response) -> list[dict[str, str | None]]:
    parser = _Scripts()
    parser.feed(response.content.decode())
    return parser.scripts


def _logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_vendored_sdk_is_the_version_package_lock_pins():
    package = json.loads((ROOT / "package.json").read_text())
    lock = json.loads((ROOT / "package-lock.json").read_text())
    pinned = package["devDependencies"]["@sentry/browser"]

    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in package["devDependencies"].values())
    assert lock["packages"][""]["devDependencies"] == package["devDependencies"]
    for name in ("@sentry/browser", "@sentry/core", "@sentry/browser-utils"):
        assert lock["packages"][f"node_modules/{name}"]["version"] == pinned
    bundle = BUNDLE.read_text()
    assert bundle.startswith(f"/*! @sentry/browser {pinned} | MIT")
    # SDK_VERSION, compiled into the SDK's code: what every event reports as sdk.version.
    assert re.search(rf'="{re.escape(pinned)}"', bundle)
    assert (BUNDLE.parent / "LICENSE").read_text().startswith("MIT License")


@pytest.mark.django_db
def test_a_staff_page_carries_the_sdk_its_settings_as_json_and_no_inline_script(settings, founder):
    settings.SENTRY_BROWSER_DSN = DSN
    settings.SENTRY_ENVIRONMENT = "production"
    settings.APP_VERSION = "2026.12.1"

    response = _logged_in(founder).get("/dashboard/activity", HTTP_X_REQUEST_ID="req-page-7")

    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-page-7"
    scripts = _scripts(response)
    assert [s.get("src") or s.get("type") for s in scripts] == [
        "application/json",
        "/static/vendor/sentry/sentry-browser.min.js",
        "/static/js/sentry_init.js",
        "/static/js/nav.js",
        "/static/js/activity.js",
    ]
    # Deferred scripts run in document order: the SDK is set up before the page's own script.
    assert all("defer" in s for s in scripts[1:])
    assert all(s["text"] == "" for s in scripts[1:])
    assert scripts[0]["id"] == "sentry-browser-config"
    assert json.loads(scripts[0]["text"]) == {
        "dsn": DSN,
        "environment": "production",
        "release": "2026.12.1",
        "requestId": "req-page-7",
        "user": {"id": str(founder.pk), "role": "FOUNDER"},
    }
    assert founder.email not in scripts[0]["text"]


@pytest.mark.parametrize(
    ("dsn", "environment", "logged_in"),
    [
        ("", "production", True),  # no browser DSN
        (DSN, "development", True),  # as on the server: nothing leaves development or test
        (DSN, "test", True),
        (DSN, "production", False),  # the login page: not shown to the public
    ],
)
@pytest.mark.django_db
def test_no_sdk_without_a_dsn_outside_a_real_environment_or_for_anonymous_visitors(
    settings, founder, dsn, environment, logged_in
):
    settings.SENTRY_BROWSER_DSN = dsn
    settings.SENTRY_ENVIRONMENT = environment
    client = _logged_in(founder) if logged_in else Client()

    response = client.get("/dashboard/activity" if logged_in else "/accounts/login/")

    assert response.status_code == 200
    assert _scripts(response) == (
        [
            {"src": "/static/js/nav.js", "defer": None, "text": ""},
            {"src": "/static/js/activity.js", "defer": None, "text": ""},
        ]
        if logged_in
        else []
    )
    assert b"sentry" not in response.content.lower()


@pytest.mark.parametrize(
    ("dsn", "origin"),
    [
        (DSN, "https://o42.ingest.sentry.io"),
        ("http://k3y@localhost:9000/12", "http://localhost:9000"),
        ("https://k3y@Sentry.Example.com/sentry/3", "https://sentry.example.com"),
        ("https://k3y@[2001:db8::5]:8443/3", "https://[2001:db8::5]:8443"),
    ],
)
def test_the_csp_origin_of_a_public_dsn(dsn, origin):
    assert browser_ingest_origin(dsn) == origin


@pytest.mark.parametrize(
    "dsn",
    [
        "o42.ingest.sentry.io/4500001",  # no scheme
        "ftp://k3y@o42.ingest.sentry.io/4500001",
        "https://o42.ingest.sentry.io/4500001",  # no public key
        "https://k3y@/4500001",  # no host
        "https://k3y@o42.ingest.sentry.io/",  # no project id
        "https://k3y@o42.ingest.sentry.io:99999/1",
        "https://k3y@o42.ingest.sentry.io/1?x=1",
        "https://k3y@o42.ingest.sentry.io/1 https://evil.example",
        "https://k3y@evil.example 'unsafe-inline'/1",  # would add a keyword to the CSP
        "https://k3y@evil.example;script-src/1",
    ],
)
def test_a_malformed_browser_dsn_is_refused(dsn):
    with pytest.raises(ImproperlyConfigured, match="must look like"):
        browser_ingest_origin(dsn)


def test_a_browser_dsn_with_a_secret_key_is_refused():
    with pytest.raises(ImproperlyConfigured, match="public DSN"):
        browser_ingest_origin("https://k3y:s3cret@o42.ingest.sentry.io/1")


def _directives(policy: str) -> dict[str, str]:
    return dict(part.strip().partition(" ")[::2] for part in policy.strip().split(";"))


def _csp_of_a_fresh_process(**environ: str) -> subprocess.CompletedProcess:
    """The CSP header the settings module gives when the process starts with this environment."""
    script = (
        "import django; django.setup(); from django.test import Client; "
        "print(Client().get('/api/system/livez').headers['Content-Security-Policy'])"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CI")}
    env.update(
        DJANGO_SETTINGS_MODULE="planbeta.settings", DEBUG="1", ALLOWED_HOSTS="testserver", **environ
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_connect_src_gains_only_the_browser_ingest_and_only_when_set():
    without = _csp_of_a_fresh_process(SENTRY_DSN="https://k3y@server-ingest.example/9")
    with_dsn = _csp_of_a_fresh_process(SENTRY_BROWSER_DSN=DSN)

    assert without.returncode == 0, without.stderr
    assert with_dsn.returncode == 0, with_dsn.stderr
    plain, widened = _directives(without.stdout), _directives(with_dsn.stdout)
    assert plain["connect-src"] == "'self'"
    assert widened["connect-src"] == "'self' https://o42.ingest.sentry.io"
    assert plain["script-src"] == widened["script-src"] == "'self'"
    # Nothing else changes.
    assert {**widened, "connect-src": "'self'"} == plain


def test_the_app_refuses_to_start_with_a_secret_in_the_browser_dsn():
    result = _csp_of_a_fresh_process(SENTRY_BROWSER_DSN="https://k3y:s3cret@o42.ingest.sentry.io/1")

    assert result.returncode != 0
    assert "SENTRY_BROWSER_DSN must be a public DSN" in result.stderr
    assert "s3cret" not in result.stderr

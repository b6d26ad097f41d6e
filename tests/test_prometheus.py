"""The example Prometheus configuration in deploy/prometheus/, checked by Prometheus' own tools
(Debian's `prometheus` and `prometheus-blackbox-exporter`; .ci/run installs them)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROMETHEUS_DIR = Path(__file__).resolve().parent.parent / "deploy" / "prometheus"


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI checks deploy/prometheus: install Debian's {package}.")
        pytest.skip(f"needs Debian's {package}")
    return path


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def config_dir(tmp_path):
    # As installed: the files side by side, and the token file the scrape job names.
    for path in PROMETHEUS_DIR.glob("*.yml"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "planbeta_metrics_token").write_text("a-token\n")
    return tmp_path


def test_promtool_accepts_the_example_configuration_and_its_rules(config_dir):
    result = _run(
        _tool("promtool", "prometheus"), "check", "config", "prometheus.yml", cwd=config_dir
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_promtool_accepts_the_alert_rules():
    result = _run(
        _tool("promtool", "prometheus"), "check", "rules", "alert_rules.yml", cwd=PROMETHEUS_DIR
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 9 rules found" in result.stdout


def test_the_alert_rules_fire_and_stay_quiet_as_their_unit_tests_say():
    result = _run(
        _tool("promtool", "prometheus"), "test", "rules", "alert_rules_test.yml", cwd=PROMETHEUS_DIR
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_rule_has_a_unit_test():
    rules = {
        line.split(":", 1)[1].strip()
        for line in (PROMETHEUS_DIR / "alert_rules.yml").read_text().splitlines()
        if line.strip().startswith("- alert:")
    }
    tested = {
        line.split(":", 1)[1].strip()
        for line in (PROMETHEUS_DIR / "alert_rules_test.yml").read_text().splitlines()
        if line.strip().startswith("alertname:")
    }
    assert len(rules) == 9
    assert rules - tested == set()


def test_the_blackbox_exporter_accepts_the_health_module():
    exporter = _tool("prometheus-blackbox-exporter", "prometheus-blackbox-exporter")

    result = _run(exporter, "--config.check", "--config.file=blackbox.yml", cwd=PROMETHEUS_DIR)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Config file is ok" in result.stderr

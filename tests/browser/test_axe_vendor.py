"""The accessibility checker the browser tests inject is the axe-core package-lock.json pins."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "tests" / "browser" / "vendor" / "axe.min.js"


def test_the_vendored_axe_core_is_the_version_package_lock_pins():
    package = json.loads((ROOT / "package.json").read_text())
    lock = json.loads((ROOT / "package-lock.json").read_text())
    pinned = package["devDependencies"]["axe-core"]

    assert lock["packages"]["node_modules/axe-core"]["version"] == pinned
    assert AXE.read_text().startswith(f"/*! axe v{pinned}\n")
    assert (AXE.parent / "axe.LICENSE").read_text().startswith("Mozilla Public License")

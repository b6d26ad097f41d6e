"""The project's settings plus the three peer libraries and the bench app (bench/audit_peers.py).

Production-like: DEBUG off (DEBUG records every query, which would inflate every variant).
"""

import os

os.environ.setdefault("DEBUG", "0")
# The real settings refuse to boot without a key when DEBUG is off; this one signs nothing.
os.environ.setdefault("SECRET_KEY", "bench-only-key-" + "x" * 40)

from planbeta.settings import *  # noqa: F403
from planbeta.settings import INSTALLED_APPS

INSTALLED_APPS = [
    *INSTALLED_APPS,
    "pgtrigger",
    "pghistory",
    "simple_history",
    "auditlog",
    "bench.peers",
]

"""The test suite's settings: production's, with a few lines changed (named in pyproject.toml).

Tests run with whatever DATABASE_URL / REDIS_URL the environment gives them.
"""

import os

# Production refuses to start without a key; the suite needs none of its own.
os.environ.setdefault("SECRET_KEY", "insecure-test-key-never-use-in-production")

from planbeta.settings import *  # noqa: F403
from planbeta.settings import STORAGES, env

# Tasks run inline in the test process unless a test hands them to a real worker.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
HEALTH_EXPECT_HEARTBEAT = env.bool("HEALTH_EXPECT_HEARTBEAT", default=not CELERY_TASK_ALWAYS_EAGER)

# A fast hash: the suite creates users by the hundred.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The test client speaks plain HTTP.
SECURE_SSL_REDIRECT = False

# Static files straight from the app folders: no collectstatic before a test run.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Two months of partitions instead of thirteen (audit.partitions): every transactional test ends
# with a flush that truncates each partition, and its cost grows with their number.
AUDIT_PARTITION_MONTHS_AHEAD = env.int("AUDIT_PARTITION_MONTHS_AHEAD", default=1)

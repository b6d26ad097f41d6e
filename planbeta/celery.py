"""The Celery app and the whole beat schedule."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planbeta.settings")

app = Celery("planbeta")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # The health check reports this heartbeat's age: beat, broker and a worker all work.
    "monitoring-heartbeat": {"task": "monitoring.heartbeat", "schedule": 60.0},
}

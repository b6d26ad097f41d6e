"""The Celery app and the whole beat schedule."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planbeta.settings")

app = Celery("planbeta")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Beat runs as its own process and needs its own Sentry client; celeryd_init alone misses it.
@signals.celeryd_init.connect
def _init_sentry_in_worker(**kwargs):
    from planbeta.sentry import init_sentry

    init_sentry("worker")


@signals.beat_init.connect
def _init_sentry_in_beat(**kwargs):
    from planbeta.sentry import init_sentry

    init_sentry("beat")


app.conf.beat_schedule = {}

# Alerts: rules every minute; the outbox sweep re-queues due and stuck deliveries. The intervals
# are variables so that an end-to-end test can run beat on a short schedule.
app.conf.beat_schedule.update(
    {
        "alerts-evaluate-rules": {
            "task": "alerts.tasks.evaluate_alert_rules",
            "schedule": float(os.environ.get("ALERT_EVALUATE_SECONDS", "60")),
        },
        "alerts-sweep-outbox": {
            "task": "alerts.tasks.sweep_outbox",
            "schedule": float(os.environ.get("ALERT_SWEEP_SECONDS", "30")),
        },
    }
)

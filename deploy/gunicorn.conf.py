"""gunicorn for the `web` service (Dockerfile, docker-compose.yml): `gunicorn -c <this file>`.

Every value comes from the environment, with the defaults production uses.
"""

import os
import shutil
import tempfile
from pathlib import Path

wsgi_app = "planbeta.wsgi:application"
# Inside the container only: docker-compose.yml publishes no port of `web`; Caddy reaches it over
# the compose network.
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "3"))
# A worker silent for this long is killed and its client gets a dropped connection. It must stay
# above every timeout the request itself keeps (the database's statement and lock timeouts, the
# request's own deadline, EMAIL_TIMEOUT and ALERT_WEBHOOK_TIMEOUT), so that a stalled database is
# answered by the application with a JSON 503 and an audit row, never by gunicorn killing it. A
# stalled database now costs a request at most the 1 s ping of its kept-alive connection, a 2 s
# connection attempt and one DB_CALL_DEADLINE (6 s) wait: it then stops waiting (core.db_deadline).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# Restart each worker after a few thousand requests, spread out, against slow leaks.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "200"))
accesslog = "-"
# One container, one master: the control socket (gunicorn 27) would only be another way in.
control_socket_disable = True


# /metrics' request latency histograms live in the process that served the request. With
# prometheus_client's multiprocess mode each worker writes its observations to files in this
# directory and the worker that answers a scrape sums them all, those of workers that have exited
# included (a restart after max_requests loses nothing). The variable must be in the environment
# before a worker imports prometheus_client: this file runs in the master, whose environment the
# workers inherit. Without one given (or given empty), a fresh directory per master, removed when
# it exits.
_metrics_dir_is_ours = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _metrics_dir_is_ours:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="planbeta-metrics-")


def on_starting(server):
    # Files of an earlier run hold other processes' observations (prometheus_client: "wipe the
    # directory between runs"); the counters then restart from zero, which rate() expects.
    path = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    # Drops the exited worker's live gauges; its counters and histograms stay in the sums.
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _metrics_dir_is_ours:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)

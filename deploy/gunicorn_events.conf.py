"""gunicorn for the `events` service: the activity dashboard's live streams (monitoring.live).

The same application as `web`, but in threads: an open stream holds one thread while it waits for
the next commit, so dashboards left open never take one of `web`'s sync workers from the staff.
Caddy sends only /dashboard/activity/events here (deploy/Caddyfile). Each process holds at most
ACTIVITY_STREAMS_PER_PROCESS streams; keep it below the threads, whose rest answer the 204s that
send further tabs to polling. `gunicorn -c deploy/gunicorn_events.conf.py`.
"""

import os

wsgi_app = "planbeta.wsgi:application"
bind = os.environ.get("GUNICORN_EVENTS_BIND", "0.0.0.0:8001")
workers = int(os.environ.get("GUNICORN_EVENTS_WORKERS", "1"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_EVENTS_THREADS", "16"))
# In gthread workers the timeout watches the worker's main loop, not one request, so a stream may
# last longer (ACTIVITY_STREAM_SECONDS). A restart ends the streams; the browsers reconnect.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 5
accesslog = "-"
control_socket_disable = True

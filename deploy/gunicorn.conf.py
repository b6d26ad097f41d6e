"""gunicorn for the `web` service (Dockerfile, docker-compose.yml): `gunicorn -c <this file>`.

Every value comes from the environment, with the defaults production uses.
"""

import os

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

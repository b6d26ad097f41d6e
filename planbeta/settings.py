"""The only settings module. Everything that differs between machines comes from the environment.

Defaults boot a local development copy on SQLite; production sets the variables listed in
`.env.example`. Every threshold the code reads is declared here, once, with its default. The test
suite runs `planbeta/settings_test.py`, which imports this module and changes a few lines.
"""

import re
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

from planbeta.browser_sentry import browser_ingest_origin

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-local-development-key-never-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# How many reverse proxies (load balancer, nginx) stand between the client and gunicorn. Only
# that many hops of X-Forwarded-For are believed; anything to their left is client-supplied.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "axes",
    "accounts",
    "audit",
    "leads",
    "invoices",
    "payments",
    "monitoring",
    "alerts",
    "planbeta",  # last: only for the project-wide commands (seed_demo)
]

MIDDLEWARE = [
    # Times the whole request for /metrics' latency histograms (monitoring.metrics).
    "monitoring.metrics.RequestLatencyMiddleware",
    # Then: a request that found the database stalled stops waiting for it, error pages
    # and failure rows included (core.db_deadline).
    "core.db_deadline.DeadlineScopeMiddleware",
    # Next, so that every response (an HTTPS redirect included) carries X-Request-ID.
    "audit.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads a body or the database: a flood or an oversized API request is
    # answered 429 or 413 at once.
    "planbeta.middleware.ApiRateLimitMiddleware",
    "planbeta.middleware.ApiBodyLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "planbeta.urls"
WSGI_APPLICATION = "planbeta.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# What a stalled or slow database may cost a request (seconds; 0 switches one off). The server
# cancels a statement after DB_STATEMENT_TIMEOUT and a lock wait after DB_LOCK_TIMEOUT, and ends a
# session left idle inside a transaction (a worker whose connection stalled mid-transaction) after
# DB_IDLE_IN_TRANSACTION_TIMEOUT, which frees its row locks for the other workers. When the server
# or the network stops answering at all, none of these fire: DB_CALL_DEADLINE, enforced by us on
# every wait for the server (core.db_deadline), cuts the connection instead. It is above the
# statement timeout so that a slow query is cancelled by the server first and the connection
# survives. A long maintenance command may run with DB_STATEMENT_TIMEOUT=0 DB_CALL_DEADLINE=0.
DB_CONNECT_TIMEOUT = env.int("DB_CONNECT_TIMEOUT", default=2)
DB_STATEMENT_TIMEOUT = env.float("DB_STATEMENT_TIMEOUT", default=5.0)
DB_LOCK_TIMEOUT = env.float("DB_LOCK_TIMEOUT", default=3.0)
DB_IDLE_IN_TRANSACTION_TIMEOUT = env.float("DB_IDLE_IN_TRANSACTION_TIMEOUT", default=10.0)
DB_CALL_DEADLINE = env.float(
    "DB_CALL_DEADLINE", default=DB_STATEMENT_TIMEOUT + 1.0 if DB_STATEMENT_TIMEOUT else 0.0
)
if DB_CALL_DEADLINE and DB_STATEMENT_TIMEOUT and DB_CALL_DEADLINE <= DB_STATEMENT_TIMEOUT:
    raise ImproperlyConfigured("DB_CALL_DEADLINE must be longer than DB_STATEMENT_TIMEOUT.")
DB_TCP_KEEPALIVES_IDLE = env.int("DB_TCP_KEEPALIVES_IDLE", default=30)
DB_TCP_KEEPALIVES_INTERVAL = env.int("DB_TCP_KEEPALIVES_INTERVAL", default=10)
DB_TCP_KEEPALIVES_COUNT = env.int("DB_TCP_KEEPALIVES_COUNT", default=3)
DB_TCP_USER_TIMEOUT = env.float("DB_TCP_USER_TIMEOUT", default=10.0)
# The few hot statements (core.rows.cursor) are prepared once per connection. Off behind a pooler
# that does not carry prepared statements from one server connection to the next (PgBouncer in
# transaction mode before 1.21, or without max_prepared_statements); they still bind on the server.
DB_PREPARE_HOT_STATEMENTS = env.bool("DB_PREPARE_HOT_STATEMENTS", default=True)
ON_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
if ON_POSTGRES:
    from core.database import postgres_options

    DATABASES["default"]["ENGINE"] = "core.postgresql"
    DATABASES["default"]["CALL_DEADLINE"] = DB_CALL_DEADLINE
    DATABASES["default"]["PREPARE_HOT_STATEMENTS"] = DB_PREPARE_HOT_STATEMENTS
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options.update(
        postgres_options(
            connect_timeout=int(options.get("connect_timeout", DB_CONNECT_TIMEOUT)),
            statement_timeout=DB_STATEMENT_TIMEOUT,
            lock_timeout=DB_LOCK_TIMEOUT,
            idle_in_transaction_timeout=DB_IDLE_IN_TRANSACTION_TIMEOUT,
            keepalives_idle=DB_TCP_KEEPALIVES_IDLE,
            keepalives_interval=DB_TCP_KEEPALIVES_INTERVAL,
            keepalives_count=DB_TCP_KEEPALIVES_COUNT,
            tcp_user_timeout=DB_TCP_USER_TIMEOUT,
            extra_options=options.get("options", ""),
        )
    )
# A second connection to the same database. Audit rows that must outlive a rolled-back caller
# (a failed conversion inside ATOMIC_REQUESTS or a surrounding atomic) are written through it,
# so they commit on their own. See audit.services.audit_record_independent. Same limits as the
# main connection: a failure row that cannot be written in time goes to the spool (audit.spool).
DATABASES["audit"] = {
    **DATABASES["default"],
    "OPTIONS": dict(DATABASES["default"].get("OPTIONS", {})),
}
# Health probes open a connection of their own each time: a server that stops answering on a
# kept-alive connection would hang a probe past any statement timeout, while opening a new one is
# bounded by connect_timeout (2 s, the least libpq allows). Each check narrows the statement
# timeout and the call deadline to its own budget (monitoring.checks); readyz bounds the whole
# probe, connection included, to HEALTH_READY_TIMEOUT_MS.
DATABASES["health"] = {
    **DATABASES["default"],
    "CONN_MAX_AGE": 0,
    "CONN_HEALTH_CHECKS": False,
    "OPTIONS": dict(DATABASES["default"].get("OPTIONS", {})),
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The audit log's covering index (INCLUDE) is a PostgreSQL feature; SQLite, used only by the local
# quick start, builds it without the extra columns, which is fine at demo sizes.
SILENCED_SYSTEM_CHECKS = ["models.W040"] if not ON_POSTGRES else []

# --- Cache, Celery ----------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
# Without a broker (the quick start) tasks run inline in the calling process.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=90)
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5}
CELERY_TIMEZONE = "Asia/Kolkata"

# --- Auth -------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Django's database sessions; a database outage while saving one is a 503, not a 400.
SESSION_ENGINE = "core.sessions"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Failed logins (django-axes, accounts/lockout.py) lock out one account at one address: one person
# behind the office's shared address cannot lock out the colleagues, nor a stranger a founder.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=1.0)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_HANDLER = "accounts.lockout.LockoutHandler"
# Failures from one address over all accounts (password spraying) within the same cool-off.
LOGIN_ADDRESS_FAILURE_LIMIT = env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=50)
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "accounts.auth.axes_username"
AXES_CLIENT_IP_CALLABLE = "audit.context.axes_client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.views.lockout_response"
AXES_VERBOSE = False

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["djangorestframework_camel_case.render.CamelCaseJSONRenderer"],
    # Every body goes through one parser: UTF-8 only, bounded depth, money kept as written.
    "DEFAULT_PARSER_CLASSES": ["core.parsers.ApiJSONParser"],
    "EXCEPTION_HANDLER": "planbeta.errors.api_exception_handler",
    "JSON_UNDERSCOREIZE": {"no_underscore_before_number": True, "ignore_fields": ("metadata",)},
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["accounts.throttling.TokenRateThrottle"],
    # No OPTIONS answers describing each endpoint: the schema does that, for staff only.
    "DEFAULT_METADATA_CLASS": None,
}


def _rate(name: str, default: str) -> str:
    """A DRF rate such as "120/min" ("" turns the limit off), checked at startup."""
    value = env(name, default=default).strip()
    if value and not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", value):
        raise ImproperlyConfigured(f"{name} must look like 120/min (or be empty), not {value!r}.")
    return value


# Rate limits of the API (accounts/throttling.py). An office of staff shares one address, so the
# per-address limit is a few tokens' worth; probes have their own, far above any monitor's pace.
API_RATE_LIMIT_PER_TOKEN = _rate("API_RATE_LIMIT_PER_TOKEN", "120/min")
API_RATE_LIMIT_PER_ADDRESS = _rate("API_RATE_LIMIT_PER_ADDRESS", "600/min")
API_RATE_LIMIT_PROBES = _rate("API_RATE_LIMIT_PROBES", "120/min")
# A bearer token that no active token matches (made up, mistyped, revoked) is remembered in the
# cache, by its hash, for this long: a flood repeating one costs no database round trip. 0: off.
API_TOKEN_UNKNOWN_CACHE_SECONDS = env.float("API_TOKEN_UNKNOWN_CACHE_SECONDS", default=60.0)
SPECTACULAR_SETTINGS = {
    "TITLE": "Plan Beta back office API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # The docs page's JS and CSS come from the sidecar package, served by us: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "CAMELIZE_NAMES": False,
    # Leads, invoice items and students share one set of course levels.
    "ENUM_NAME_OVERRIDES": {
        "LevelEnum": "leads.models.Level",
        "LeadStatusEnum": "leads.models.LeadStatus",
        "EditableLeadStatusEnum": "leads.apis.EDITABLE_STATUSES",
        "InvoiceStatusEnum": "invoices.models.InvoiceStatus",
        "PaymentStatusEnum": "payments.models.PaymentStatus",
        "PaymentMethodEnum": "payments.models.PaymentMethod",
        "SeverityEnum": "audit.models.Severity",
        "ProbeStatusEnum": ["healthy", "unhealthy"],
        "HealthStatusEnum": ["healthy", "degraded", "unhealthy"],
        "IetfHealthStatusEnum": ["pass", "warn", "fail"],
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "drf_spectacular.contrib.djangorestframework_camel_case.camelize_serializer_fields",
        "planbeta.openapi.add_error_responses",
    ],
    # Ids in paths are bigints (a larger one finds nothing: 404).
    "PATH_CONVERTER_OVERRIDES": {"int": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}},
}

# --- Internationalisation ---------------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "Asia/Kolkata"
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Outside production, serve straight from the app folders: no collectstatic needed to run or test.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- E-mail -----------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Plan Beta <office@planbeta.example>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Printed under the school's address on invoices when set.
SCHOOL_GSTIN = env("SCHOOL_GSTIN", default="")
# How customers pay, printed on the invoice PDF and in its e-mail (each line only when set). The
# UPI id also makes the PDF's payment QR code, for rupee invoices.
SCHOOL_BANK_ACCOUNT_NAME = env("SCHOOL_BANK_ACCOUNT_NAME", default="")
SCHOOL_BANK_NAME = env("SCHOOL_BANK_NAME", default="")
SCHOOL_BANK_ACCOUNT_NUMBER = env("SCHOOL_BANK_ACCOUNT_NUMBER", default="")
SCHOOL_BANK_IFSC = env("SCHOOL_BANK_IFSC", default="")
SCHOOL_BANK_SWIFT = env("SCHOOL_BANK_SWIFT", default="")
SCHOOL_UPI_ID = env("SCHOOL_UPI_ID", default="")
SCHOOL_UPI_NAME = env("SCHOOL_UPI_NAME", default="Plan Beta")

# --- Security ---------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Uptime monitors and load balancers probe over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^api/system/(livez|readyz|health)$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if TRUSTED_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Observability ----------------------------------------------------------------------------
APP_VERSION = env("APP_RELEASE", default="dev")
SENTRY_DSN = env("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env("SENTRY_ENVIRONMENT", default="development")
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.1)
# The staff pages' own DSN (planbeta/browser_sentry.py says why it is never SENTRY_DSN); empty: no
# SDK in the pages. Its ingest host is the only other origin the pages may connect to (CSP below).
SENTRY_BROWSER_DSN = env("SENTRY_BROWSER_DSN", default="")
ACTIVITY_POLL_SECONDS = env.float("ACTIVITY_POLL_SECONDS", default=10)
# The dashboard's live stream (monitoring.live): new entries are pushed within a moment of their
# commit; the page polls every ACTIVITY_POLL_SECONDS only while it has no stream. A stream lasts
# ACTIVITY_STREAM_SECONDS (the browser reconnects by itself), sends a keep-alive every
# ACTIVITY_STREAM_HEARTBEAT_SECONDS, and a process holds at most ACTIVITY_STREAMS_PER_PROCESS of
# them (each takes a thread: keep it below the threads of the server that serves them).
ACTIVITY_PUSH = env.bool("ACTIVITY_PUSH", default=True)
ACTIVITY_STREAM_SECONDS = env.float("ACTIVITY_STREAM_SECONDS", default=55)
ACTIVITY_STREAM_HEARTBEAT_SECONDS = env.float("ACTIVITY_STREAM_HEARTBEAT_SECONDS", default=15)
ACTIVITY_STREAMS_PER_PROCESS = env.int("ACTIVITY_STREAMS_PER_PROCESS", default=12)

# --- Health checks (monitoring/checks.py; what each means is in the README) -------------------
HEALTH_CHECK_TOKEN = env("HEALTH_CHECK_TOKEN", default="")
HEALTH_CHECK_DATABASE = "health"
# The report is computed at most once per this many seconds per process.
HEALTH_CACHE_SECONDS = env.float("HEALTH_CACHE_SECONDS", default=5.0)
# User tokens shown to the health endpoints that match no token, per minute over all workers;
# past this, user tokens get the summary unread until the minute ends (accounts.auth). 0: off.
HEALTH_TOKEN_MISSES_PER_MINUTE = env.int("HEALTH_TOKEN_MISSES_PER_MINUTE", default=60)
HEALTH_DB_CONNECT_CHECK_MS = env.int("HEALTH_DB_CONNECT_CHECK_MS", default=1000)
# readyz as a whole, connection included (the contract gives it 1 s; monitoring.checks).
HEALTH_READY_TIMEOUT_MS = env.int("HEALTH_READY_TIMEOUT_MS", default=900)
HEALTH_DB_PROBE_SQL = env("HEALTH_DB_PROBE_SQL", default="SELECT 1")
HEALTH_DB_SLOW_MS = env.int("HEALTH_DB_SLOW_MS", default=1000)
HEALTH_DB_TIMEOUT_MS = env.int("HEALTH_DB_TIMEOUT_MS", default=1500)
HEALTH_QUERY_TIMEOUT_MS = env.int("HEALTH_QUERY_TIMEOUT_MS", default=1000)
# One budget for all database checks after the connection check.
HEALTH_DB_BUDGET_MS = env.int("HEALTH_DB_BUDGET_MS", default=2000)
HEALTH_ERROR_RATE_DEGRADED = env.float("HEALTH_ERROR_RATE_DEGRADED", default=5.0)  # percent
HEALTH_ERROR_RATE_MIN_EVENTS = env.int("HEALTH_ERROR_RATE_MIN_EVENTS", default=20)
HEALTH_EXACT_COUNT_BELOW = env.int("HEALTH_EXACT_COUNT_BELOW", default=10_000)
# Money operations (the `moneyOperations` check, /api/system/health/money): failures within this
# window make it degraded, this many in a row with no success since unhealthy.
HEALTH_MONEY_WINDOW_MINUTES = env.int("HEALTH_MONEY_WINDOW_MINUTES", default=60)
HEALTH_MONEY_FAILURES_UNHEALTHY = env.int("HEALTH_MONEY_FAILURES_UNHEALTHY", default=2)
# `serviceId` of the application/health+json answer.
HEALTH_SERVICE_ID = env("HEALTH_SERVICE_ID", default="planbeta-backoffice")
# Beat runs the checks this often on a worker (recording each check's state changes for /status)
# and then pings the dead man's switch: DEADMAN_PING_URL, or DEADMAN_PING_URL + "/fail" when the
# run found the site or the money operations unhealthy. Empty: no ping.
HEALTH_CHECK_RUN_SECONDS = env.float("HEALTH_CHECK_RUN_SECONDS", default=60.0)
DEADMAN_PING_URL = env("DEADMAN_PING_URL", default="")
DEADMAN_PING_TIMEOUT = env.float("DEADMAN_PING_TIMEOUT", default=5.0)
# Where the Celery heartbeat is expected (a worker and beat run).
HEALTH_EXPECT_HEARTBEAT = env.bool("HEALTH_EXPECT_HEARTBEAT", default=not CELERY_TASK_ALWAYS_EAGER)
HEALTH_HEARTBEAT_STALE_SECONDS = env.int("HEALTH_HEARTBEAT_STALE_SECONDS", default=180)
HEALTH_HEARTBEAT_DEAD_SECONDS = env.int("HEALTH_HEARTBEAT_DEAD_SECONDS", default=600)

# --- Prometheus (/metrics, monitoring/metrics.py) ---------------------------------------------
# The scraper's bearer token; empty: every scrape is refused with 401.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# How often the audit counts move their mark up (one GROUP BY over the rows since the last move),
# and how long a candidate mark waits before the transactions that could still write below it
# are noted (monitoring.metrics says why).
MONITORING_AUDIT_ROLLUP_SECONDS = env.float("MONITORING_AUDIT_ROLLUP_SECONDS", default=3600.0)
MONITORING_AUDIT_SETTLE_SECONDS = env.float("MONITORING_AUDIT_SETTLE_SECONDS", default=60.0)

# Content-Security-Policy (django-csp 4): no inline scripts or styles, nothing from other origins.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": [
            "'self'",
            *([browser_ingest_origin(SENTRY_BROWSER_DSN)] if SENTRY_BROWSER_DSN else []),
        ],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# --- Alerts (alerts/) ---------------------------------------------------------------------------
FOUNDER_ALERT_EMAILS = env.list("FOUNDER_ALERT_EMAILS", default=[])
# Comma-separated; each URL may name its format: slack+https://…, discord+https://…, json+https://…
ALERT_WEBHOOK_URLS = env.list("ALERT_WEBHOOK_URLS", default=[])
ALERT_WEBHOOK_TIMEOUT = env.float("ALERT_WEBHOOK_TIMEOUT", default=10.0)
# Transient failures (timeouts, 5xx, 429, mail server down) are retried until this age.
ALERT_GIVE_UP_HOURS = env.float("ALERT_GIVE_UP_HOURS", default=48.0)
ALERT_RETRY_BASE_SECONDS = env.int("ALERT_RETRY_BASE_SECONDS", default=30)
ALERT_RETRY_MAX_SECONDS = env.int("ALERT_RETRY_MAX_SECONDS", default=3600)
ALERT_REPEAT_HOURS = env.float("ALERT_REPEAT_HOURS", default=4.0)
ALERT_RESOLVE_AFTER_MINUTES = env.float("ALERT_RESOLVE_AFTER_MINUTES", default=5.0)
ALERT_CRITICAL_GROUP_SECONDS = env.int("ALERT_CRITICAL_GROUP_SECONDS", default=300)
ALERT_DIGEST_HOUR = env.int("ALERT_DIGEST_HOUR", default=8)  # local time (TIME_ZONE)
ALERT_ERROR_RATE_THRESHOLD = env.float("ALERT_ERROR_RATE_THRESHOLD", default=0.10)
ALERT_ERROR_RATE_MIN_EVENTS = env.int("ALERT_ERROR_RATE_MIN_EVENTS", default=20)
ALERT_SLOW_QUERY_MS = env.float("ALERT_SLOW_QUERY_MS", default=2000.0)
# The rule waits this long for its probe before cancelling it (a cancelled probe fires the alert).
ALERT_SLOW_QUERY_CANCEL_MS = env.float(
    "ALERT_SLOW_QUERY_CANCEL_MS", default=ALERT_SLOW_QUERY_MS * 1.5
)
ALERT_HEARTBEAT_STALE_SECONDS = env.int("ALERT_HEARTBEAT_STALE_SECONDS", default=180)
ALERT_QUIET_HOURS = env.float("ALERT_QUIET_HOURS", default=48.0)
ALERT_BASE_URL = env("ALERT_BASE_URL", default="")
# Beat's intervals (planbeta/celery.py); an end-to-end test shortens them.
ALERT_EVALUATE_SECONDS = env.float("ALERT_EVALUATE_SECONDS", default=60.0)
ALERT_SWEEP_SECONDS = env.float("ALERT_SWEEP_SECONDS", default=30.0)
MONITORING_HEARTBEAT_SECONDS = env.float("MONITORING_HEARTBEAT_SECONDS", default=60.0)
# How often beat compares the money rows with the audit trail (monitoring/reconciliation.py).
RECONCILIATION_SECONDS = env.float("RECONCILIATION_SECONDS", default=3600.0)
# Acknowledge links (alerts/tokens.py): valid this long after the message was sent; an
# acknowledgement pauses repeats for ALERT_ACK_HOURS or until the alert resolves.
ALERT_ACK_LINK_HOURS = env.float("ALERT_ACK_LINK_HOURS", default=24.0)
ALERT_ACK_HOURS = env.float("ALERT_ACK_HOURS", default=8.0)
# An alert nobody acknowledged this long after it was announced goes, once, to these channels
# as well (same formats as FOUNDER_ALERT_EMAILS and ALERT_WEBHOOK_URLS); 0 switches it off.
ALERT_ESCALATE_AFTER_MINUTES = env.float("ALERT_ESCALATE_AFTER_MINUTES", default=30.0)
ALERT_ESCALATION_EMAILS = env.list("ALERT_ESCALATION_EMAILS", default=[])
ALERT_ESCALATION_WEBHOOK_URLS = env.list("ALERT_ESCALATION_WEBHOOK_URLS", default=[])
# Called after a CRITICAL audit row is committed; the audit app itself depends on no other app.
AUDIT_CRITICAL_HOOK = "alerts.services.critical_event_recorded"
# Failure rows that could not be written while the database was away wait here (audit.spool),
# one file per process; beat replays them every AUDIT_SPOOL_REPLAY_SECONDS. Must be local disk,
# writable by the app, and survive a restart (a volume in docker-compose.yml).
AUDIT_SPOOL_DIR = env.path("AUDIT_SPOOL_DIR", default=BASE_DIR / "var" / "audit-spool")
AUDIT_SPOOL_REPLAY_SECONDS = env.float("AUDIT_SPOOL_REPLAY_SECONDS", default=30.0)
# The hash chain (audit.chain): beat seals committed rows every AUDIT_SEAL_SECONDS, writes a
# checkpoint row (the head, sent out with the daily digest) every AUDIT_CHECKPOINT_SECONDS and
# walks the whole chain every AUDIT_VERIFY_SECONDS. Health calls a verification older than
# AUDIT_VERIFY_STALE_SECONDS stale (degraded) while beat is expected to run.
AUDIT_SEAL_SECONDS = env.float("AUDIT_SEAL_SECONDS", default=5.0)
AUDIT_CHECKPOINT_SECONDS = env.float("AUDIT_CHECKPOINT_SECONDS", default=3600.0)
AUDIT_VERIFY_SECONDS = env.float("AUDIT_VERIFY_SECONDS", default=3600.0)
AUDIT_VERIFY_STALE_SECONDS = env.float(
    "AUDIT_VERIFY_STALE_SECONDS", default=2 * AUDIT_VERIFY_SECONDS + 600
)
# The minute counts of the trail (audit.rollup) that the 24 h stats, the error rate and the
# activity counts read: beat folds the sealed rows into them every AUDIT_ROLLUP_SECONDS, at most
# AUDIT_ROLLUP_FOLD_IDS ids per transaction, and keeps AUDIT_ROLLUP_KEEP_DAYS days of minutes
# (reads reaching further back count the rows themselves).
AUDIT_ROLLUP_SECONDS = env.float("AUDIT_ROLLUP_SECONDS", default=30.0)
AUDIT_ROLLUP_FOLD_IDS = env.int("AUDIT_ROLLUP_FOLD_IDS", default=100_000)
AUDIT_ROLLUP_KEEP_DAYS = env.int("AUDIT_ROLLUP_KEEP_DAYS", default=35)
# The months of each filter's rows (audit.presence), folded as often, at most this many ids per
# transaction: each row adds every three characters of its description, so a batch is kept
# well inside DB_STATEMENT_TIMEOUT.
AUDIT_PRESENCE_FOLD_IDS = env.int("AUDIT_PRESENCE_FOLD_IDS", default=20_000)
# How many years each class of audit row is kept before its monthly partition is archived and
# leaves the database (audit.retention; README, "Retention and archives"). Money records follow
# German and Indian bookkeeping (8-10 years); logins and reads of personal data are kept a year.
AUDIT_RETENTION_YEARS = {
    "money": env.int("AUDIT_RETENTION_MONEY_YEARS", default=10),
    "errors": env.int("AUDIT_RETENTION_ERRORS_YEARS", default=2),
    "access": env.int("AUDIT_RETENTION_ACCESS_YEARS", default=1),
    "other": env.int("AUDIT_RETENTION_OTHER_YEARS", default=3),
}
# Monthly partitions of the trail on PostgreSQL (audit.partitions): beat creates the months up
# to AUDIT_PARTITION_MONTHS_AHEAD after the current one every AUDIT_PARTITION_SECONDS (daily), so
# a year of beat outages passes before a row would land in the DEFAULT partition.
AUDIT_PARTITION_MONTHS_AHEAD = env.int("AUDIT_PARTITION_MONTHS_AHEAD", default=12)
AUDIT_PARTITION_SECONDS = env.float("AUDIT_PARTITION_SECONDS", default=86400.0)
# Where a unit of old rows goes before it leaves the database (audit.archive): the storage
# "audit_archive" below, under AUDIT_ARCHIVE_PREFIX. A directory by default; S3-compatible object
# storage when AUDIT_ARCHIVE_S3_BUCKET is set (keys empty: boto3's own chain, an instance role).
AUDIT_ARCHIVE_PREFIX = env("AUDIT_ARCHIVE_PREFIX", default="audit")
AUDIT_ARCHIVE_DIR = env.path("AUDIT_ARCHIVE_DIR", default=BASE_DIR / "var" / "audit-archive")
AUDIT_ARCHIVE_S3_BUCKET = env("AUDIT_ARCHIVE_S3_BUCKET", default="")
if AUDIT_ARCHIVE_S3_BUCKET:
    STORAGES["audit_archive"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AUDIT_ARCHIVE_S3_BUCKET,
            "endpoint_url": env("AUDIT_ARCHIVE_S3_ENDPOINT_URL", default="") or None,
            "region_name": env("AUDIT_ARCHIVE_S3_REGION", default="") or None,
            "access_key": env("AUDIT_ARCHIVE_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env("AUDIT_ARCHIVE_S3_SECRET_ACCESS_KEY", default="") or None,
            # Archives are written once under a key of their own; a second write of the same
            # key is refused by audit.archive before it reaches the storage.
            "file_overwrite": True,
            # Reads of an archive spill to a temporary file past this, instead of holding the
            # whole object in memory (django-storages' default keeps it all).
            "max_memory_size": 8 * 1024 * 1024,
        },
    }
else:
    STORAGES["audit_archive"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(AUDIT_ARCHIVE_DIR)},
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        # Messages and tracebacks without a database error's DETAIL/CONTEXT/HINT, which quote
        # the refused row (core/error_text.py).
        "plain": {
            "class": "core.error_text.SafeFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        # fpdf2 subsets each font of an invoice PDF with fontTools, which logs some fifty INFO
        # lines per font (glyph names of the customer's name among them).
        "fontTools": {"level": "WARNING"},
    },
}

# --- Placeholder secrets ----------------------------------------------------------------------
# .env.example ships `change-me…` values. A production copy that kept one would run with a secret
# printed in the repository, so it does not start; the variable is named, its value never shown.
_PLACEHOLDER = re.compile(r"change[-_]?me", re.IGNORECASE)
if not DEBUG:
    _kept_placeholders = [
        name
        for name, value in (
            ("SECRET_KEY", SECRET_KEY),
            ("HEALTH_CHECK_TOKEN", HEALTH_CHECK_TOKEN),
            ("METRICS_TOKEN", METRICS_TOKEN),
            ("the password in DATABASE_URL", DATABASES["default"].get("PASSWORD")),
            ("the password in EMAIL_URL", EMAIL_CONFIG.get("EMAIL_HOST_PASSWORD")),
        )
        if _PLACEHOLDER.match(str(value or ""))
    ]
    if _kept_placeholders:
        raise ImproperlyConfigured(
            "Placeholder values from .env.example are still set: "
            + ", ".join(_kept_placeholders)
            + ". Replace them with real secrets."
        )

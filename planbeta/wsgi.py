import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planbeta.settings")

application = get_wsgi_application()

from planbeta.sentry import init_sentry  # noqa: E402 - needs the settings loaded above

init_sentry("web")

from alerts.checks import warn_if_no_channel  # noqa: E402

warn_if_no_channel("web")

from django.contrib import admin
from django.urls import include, path

from accounts.views import admin_login
from monitoring.metrics import metrics_view
from monitoring.views import status_page
from planbeta.views import home

# Every login, the admin's included, goes through our login page so that it is rate-limited and
# audited in one place.
admin.site.login = admin_login  # type: ignore[method-assign]
admin.site.site_header = "Plan Beta back office"

urlpatterns = [
    path("", home, name="home"),
    path("accounts/", include("accounts.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("planbeta.api_urls")),
    path("leads/", include("leads.urls")),
    path("invoices/", include("invoices.urls")),
    path("payments/", include("payments.urls")),
    path("dashboard/", include("monitoring.urls")),
    path("status", status_page, name="status"),
    path("alerts/", include("alerts.urls")),
    # Prometheus' conventional path, outside /api/: no session, no API rate limit.
    path("metrics", metrics_view, name="metrics"),
]

# JSON under /api/, Django's pages elsewhere; a 500 (a 503 when the database is the cause) is
# planbeta.errors.server_error.
handler400 = "planbeta.error_pages.bad_request"
handler403 = "planbeta.error_pages.permission_denied"
handler404 = "planbeta.error_pages.not_found"
handler500 = "planbeta.errors.server_error"

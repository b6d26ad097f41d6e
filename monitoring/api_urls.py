from django.urls import path

from monitoring import apis

urlpatterns = [
    path("livez", apis.LivezApi.as_view(), name="api-livez"),
    path("readyz", apis.ReadyzApi.as_view(), name="api-readyz"),
    path("health", apis.HealthApi.as_view(), name="api-health"),
    path("health/money", apis.MoneyHealthApi.as_view(), name="api-health-money"),
    path("audit-logs", apis.AuditLogListApi.as_view(), name="api-audit-logs"),
    path("audit-logs/export", apis.AuditLogExportApi.as_view(), name="api-audit-logs-export"),
]

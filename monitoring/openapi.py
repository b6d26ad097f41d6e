"""OpenAPI descriptions of our authentication schemes (drf-spectacular extensions).

Imported from MonitoringConfig.ready(): extensions register themselves on import.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token from `python manage.py issue_token EMAIL`.",
        }


class HealthSessionScheme(OpenApiAuthenticationExtension):
    target_class = "monitoring.apis._SessionIfAvailable"
    name = "healthCookieAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}

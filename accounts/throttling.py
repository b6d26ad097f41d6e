"""API rate limits (CONTRACT §2: 429 with Retry-After), on DRF's throttles and the shared cache.

Three limits, each a setting read from the environment (planbeta/settings.py):

- per client address, for every request under /api/ before it is authenticated or routed
  (`planbeta.middleware.ApiRateLimitMiddleware`): a caller cannot spend the server's time on 401s,
  403s or 404s either. Set for an office of staff behind one address.
- per token (or per session user), after authentication (`TokenRateThrottle`, the default DRF
  throttle): one script or one person cannot crowd out the others.
- the probes `/api/system/readyz` and `/health` have their own per-address limit, well above what
  load balancers and uptime monitors send; `/livez` has none (it touches nothing, and a 429
  there would make a supervisor restart a healthy process).

The history of each key lives in the Django cache (Redis in production, shared by every worker).
If the cache cannot be reached the request is let through: a limit must not turn a Redis
outage into an API outage.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from redis.exceptions import RedisError
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiToken
from audit.context import client_ip

logger = logging.getLogger(__name__)


class _SettingsRateThrottle(SimpleRateThrottle):
    """The rate comes from a Django setting, read when the throttle is made (per request), so
    that a changed setting applies at once; DRF's own reads its rates once, at import."""

    rate_setting = ""

    def get_rate(self) -> str | None:
        return getattr(settings, self.rate_setting) or None

    def allow_request(self, request: Any, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except (RedisError, OSError) as exc:
            logger.warning(
                "rate limit %s not applied: cache unavailable (%s)", self.scope, type(exc).__name__
            )
            return True


class TokenRateThrottle(_SettingsRateThrottle):
    scope = "token"
    rate_setting = "API_RATE_LIMIT_PER_TOKEN"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None  # anonymous callers are limited by address only
        auth = getattr(request, "auth", None)
        ident = f"token-{auth.pk}" if isinstance(auth, ApiToken) else f"user-{user.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AddressRateThrottle(_SettingsRateThrottle):
    scope = "address"
    rate_setting = "API_RATE_LIMIT_PER_ADDRESS"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        # The address the audit trail records: X-Forwarded-For only through trusted proxies.
        ident = client_ip(request) or "unknown"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ProbeRateThrottle(AddressRateThrottle):
    scope = "probe"
    rate_setting = "API_RATE_LIMIT_PROBES"

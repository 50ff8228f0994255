"""Request rates for the API, per user and per anonymous client address.

The rates come from settings.API_THROTTLE_USER / API_THROTTLE_ANON ("600/min", "60/min"; empty or
"none" turns a limit off), read on every request so a changed setting applies at once. Counts live
in Django's default cache: per process with the local-memory cache, shared with Redis or Memcached.
A refused request gets 429 with a Retry-After header (DRF's own behaviour).
"""

import os

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

DEFAULT_USER_RATE = "600/min"
DEFAULT_ANON_RATE = "60/min"


def _rate(name: str, default: str) -> str | None:
    # The environment is the fallback until settings.py defines the name itself.
    value = getattr(settings, name, os.environ.get(name, default))
    if value is None or str(value).strip().lower() in ("", "none", "off"):
        return None
    return str(value).strip()


class ApiUserThrottle(UserRateThrottle):
    scope = "user"

    def get_rate(self) -> str | None:
        return _rate("API_THROTTLE_USER", DEFAULT_USER_RATE)


class ApiAnonThrottle(AnonRateThrottle):
    scope = "anon"

    def get_rate(self) -> str | None:
        return _rate("API_THROTTLE_ANON", DEFAULT_ANON_RATE)


API_THROTTLES = [ApiUserThrottle, ApiAnonThrottle]

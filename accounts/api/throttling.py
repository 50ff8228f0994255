"""Request rates for the API, per user and per anonymous client address.

The rates come from settings.API_THROTTLE_USER / API_THROTTLE_ANON ("600/min", "60/min"; empty or
"none" turns a limit off), read on every request so a changed setting applies at once. Counts live
in Django's default cache: per process with the local-memory cache, shared with Redis or Memcached.
A refused request gets 429 with a Retry-After header (DRF's own behaviour).

A client is its address as settings.REST_FRAMEWORK["NUM_PROXIES"] counts it (settings.NUM_PROXIES):
0 takes REMOTE_ADDR and ignores X-Forwarded-For, which the client writes itself; N takes the N-th
address from the end of X-Forwarded-For, the one our own proxies appended. django-axes counts failed
logins (admin and API) by the same address (settings.AXES_CLIENT_IP_CALLABLE = client_address).
"""

import ipaddress
import os

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, BaseThrottle, UserRateThrottle

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


def client_address(request) -> str | None:
    """The client's address, as the anonymous throttle sees it. A proxy count larger than the real one
    would let the client's own text through; anything that is not an address falls back to REMOTE_ADDR."""
    address = BaseThrottle().get_ident(request)
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return request.META.get("REMOTE_ADDR")

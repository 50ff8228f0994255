"""Which URLs a webhook may call.

A URL must resolve to public addresses only (no private, loopback, link-local, multicast,
reserved... ones, and none in the IANA special-purpose registries, which this Python's ipaddress
tables do not fully know) unless they lie in settings.WEBHOOK_ALLOWED_NETWORKS; an address that
embeds an IPv4 one (mapped, 6to4, Teredo, NAT64) is refused when that IPv4 address is, even where its
prefix is allowed. Its port must be 80, 443 or one of settings.WEBHOOK_ALLOWED_PORTS. That is checked
when a webhook is saved and again at every send, and the send connects to the very address it checked
(no second DNS lookup a rebinding name could answer differently).
"""

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

# Which address properties refuse a URL, checked in this order (127.0.0.1 is private too: say loopback).
REFUSED_KINDS = ["loopback", "link_local", "private", "multicast", "reserved", "unspecified"]
# The IANA special-purpose address registries, whole, whatever "globally reachable" says for an entry
# (iana-ipv4-special-registry, iana-ipv6-special-registry), and the deprecated IPv6 site-local range.
SPECIAL_PURPOSE_NETWORKS = [
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.31.196.0/24",
        "192.52.193.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "192.175.48.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "240.0.0.0/4",
        "255.255.255.255/32",
        "::/128",
        "::1/128",
        "::ffff:0:0/96",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "100::/64",
        "100:0:0:1::/64",
        "2001::/23",
        "2001:db8::/32",
        "2002::/16",
        "2620:4f:8000::/48",
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
    )
]
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
DEFAULT_PORTS = (80, 443)


class Refused(ValidationError):
    """A URL that may not be called: bad scheme, no host, or a non-public address."""


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(network, strict=False) for network in settings.WEBHOOK_ALLOWED_NETWORKS]


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses a 6to4, Teredo (server and client) or NAT64 address reaches."""
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)
    if address in NAT64_PREFIX:
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    return []


def address_refusal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why a webhook may not call this address ("a private address"), or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address_refusal(address.ipv4_mapped)  # ::ffff:10.0.0.1 is 10.0.0.1
        for ipv4 in _embedded_ipv4(address):
            refusal = address_refusal(ipv4)
            if refusal is not None:
                return f"an address that reaches {ipv4}, {refusal}"
    if any(address in network for network in _allowed_networks()):
        return None
    for kind in REFUSED_KINDS:
        if getattr(address, f"is_{kind}"):
            return f"a {kind.replace('_', '-')} address"
    if any(address in network for network in SPECIAL_PURPOSE_NETWORKS):
        return "a special-purpose address"
    if not address.is_global:  # e.g. 100.64.0.0/10, the carriers' shared space
        return "an address that is not public"
    return None


def url_addresses(url: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The checked addresses a webhook URL resolves to; Refused names what is wrong with it.
    A name that does not resolve (now) raises OSError."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as error:  # "Invalid IPv6 URL", a port out of range or not a number
        raise Refused(f"Webhook URL is not a valid URL: {error}.", code="invalid") from error
    if parts.scheme not in ("http", "https"):
        raise Refused(
            f"Webhook URL must start with http:// or https://, not {parts.scheme or 'nothing'}.",
            code="invalid",
        )
    if parts.username is not None or parts.password is not None:
        raise Refused(
            "Webhook URL must not hold a user name or password; the signature authenticates.", code="invalid"
        )
    if not host:
        raise Refused("Webhook URL has no host.", code="invalid")
    port = (443 if parts.scheme == "https" else 80) if port is None else port
    if port not in (*DEFAULT_PORTS, *settings.WEBHOOK_ALLOWED_PORTS):
        raise Refused(
            f"Webhook URL port {port} is not allowed: only 80 and 443 (an operator may allow "
            "others with WEBHOOK_ALLOWED_PORTS).",
            code="invalid",
        )
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
    for address in addresses:
        refusal = address_refusal(address)
        if refusal is not None:
            literal = str(address) == host.strip("[]")
            what = f"is {refusal}" if literal else f"resolves to {address}, {refusal}"
            raise Refused(
                f"Webhook URL host {host} {what}: only public addresses are allowed "
                "(an operator may allow networks with WEBHOOK_ALLOWED_NETWORKS).",
                code="not_public",
            )
    return addresses


def url_check(url: Any) -> str:
    """A webhook URL that may be saved: http(s), resolving to allowed addresses only. The same
    words for the admin and the API."""
    if not isinstance(url, str) or not url.strip():
        raise ValidationError("Webhook URL is empty.", code="required")
    url = url.strip()
    try:
        url_addresses(url)
    except Refused:
        raise
    except (OSError, UnicodeError) as error:
        host = urlsplit(url).hostname
        raise ValidationError(
            f"Webhook URL host {host} cannot be resolved: {error}.", code="unresolvable"
        ) from error
    return url

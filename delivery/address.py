"""Where webhooks may go (API.md §11, SSRF): ``https://`` URLs, or URLs under a prefix of
``NOCERT_WEBHOOK_ALLOW``; a host that resolves to a loopback, private, link-local or unspecified address is
refused unless its URL is under an allowed prefix. Checked when a subscription is made and again before
every delivery (DNS can change)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from domain.errors import InvalidUrl

MAX_URL = 2000


def allowed_prefixes(setting: str) -> tuple[str, ...]:
    return tuple(prefix.strip() for prefix in setting.split(",") if prefix.strip())


def _internal(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified or ip.is_reserved or ip.is_multicast


def check_url(url: object, allow: Sequence[str]) -> str:
    """The URL if a webhook may be sent there now; `InvalidUrl` otherwise."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise InvalidUrl(f"url must be a text of at most {MAX_URL} characters")
    allowed = any(url.startswith(prefix) for prefix in allow)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidUrl("url is no valid URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.username or parts.password:
        raise InvalidUrl("url must be an https:// URL with a host and no credentials")
    if parts.scheme != "https" and not allowed:
        raise InvalidUrl("url must be https:// (or under a prefix of NOCERT_WEBHOOK_ALLOW)")
    if allowed:
        return url
    try:
        infos = socket.getaddrinfo(parts.hostname, port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise InvalidUrl(f"the host {parts.hostname!r} does not resolve") from None
    for info in infos:
        if _internal(str(info[4][0])):
            raise InvalidUrl(f"the host {parts.hostname!r} resolves to an internal address")
    return url

"""What keeps a local web server local: Host and Origin checks, headers (pure functions).

A page on any web site can make the browser send requests to 127.0.0.1, and with DNS
rebinding (a name that first resolves to the attacker, then to 127.0.0.1) it can even read
the answers. The browser still sends that page's name in `Host`, so a server that answers only
to the names it was bound to cannot be read that way. Requests that change the archive (a
speaker rename) must also come from our own pages: the browser's `Origin` must be ours, and
the request must carry the per-process token our pages hold (a custom header, which a foreign
page cannot add without a CORS preflight we never grant).
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})

# No inline script, no script or style from elsewhere; media only from us. The YouTube embed
# (a recording with no local media) is the one frame we allow.
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self'",
        "connect-src 'self'",
        "frame-src https://www.youtube-nocookie.com",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(bind_host: str) -> frozenset[str]:
    """The host names the server answers to: loopback names, and the one it was bound to
    (unless that is a wildcard address, which names no host)."""
    extra = set() if bind_host in ("", "0.0.0.0", "::") else {bind_host.strip("[]").lower()}
    return LOOPBACK_NAMES | extra


def host_name(header: str | None) -> str | None:
    """`127.0.0.1:8765` → `127.0.0.1`, `[::1]:80` → `::1`; None when malformed or missing."""
    if not header:
        return None
    try:
        parts = urlsplit(f"http://{header}")
        name = parts.hostname
        _ = parts.port  # raises ValueError on a non-numeric port
    except ValueError:
        return None
    if not name or parts.username is not None or parts.path or parts.query:
        return None
    return name.lower()


def host_allowed(header: str | None, allowed: frozenset[str]) -> bool:
    name = host_name(header)
    return name is not None and name in allowed


def origin_allowed(origin: str | None, host_header: str | None) -> bool:
    """True when `Origin` is this very server (`http://` + the Host the browser sent)."""
    if not origin or not host_header or origin == "null":
        return False
    parts = urlsplit(origin)
    return parts.scheme == "http" and parts.netloc.lower() == host_header.lower()


def token_ok(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given), expected)

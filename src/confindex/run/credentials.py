"""Logins and stalls of downloads (issue 30): credentials given in a URL are taken out before
the URL is stored or printed and handed to yt-dlp for the download only; `--username`,
`--password` and `--netrc` log in the same way; long URLs are cut in messages. (The minimum
download rate is in `stall`.)"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit


def is_url(arg: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", arg)) and not arg.startswith("file://")


# Credentials given in a URL (`https://alice:s3cret@host/talk.wav`): taken out before the URL
# is stored, printed or hashed into an id (it was in the transcript, every citation, search
# links, `list --json` and exports), kept here by host for the download only, and handed to
# Dask workers in `ydl_extra[CREDENTIALS_KEY]` (never written to the ledger or a transcript).
CREDENTIALS_KEY = "confindex_credentials"
_CREDENTIALS: dict[str, tuple[str, str]] = {}


def _host_key(parts: Any) -> str:
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{parts.port or ''}"


def strip_credentials(url: str) -> str:
    """`url` without the user:password part (remembered for this process's downloads from
    that host). Any other string comes back unchanged."""
    if "@" not in url or not is_url(url):
        return url
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
        host_port = parts.netloc.rpartition("@")[2]
        key = _host_key(parts)
    except ValueError:  # a malformed URL (its error names it): the userinfo goes all the same
        return re.sub(r"^([^:/]+://)[^/?#]*@", r"\1", url)
    if user is None and password is None:
        return url
    _CREDENTIALS[key] = (unquote(user or ""), unquote(password or ""))
    return parts._replace(netloc=host_port).geturl()


def redact_url(text: str) -> str:
    """Any user:password@ in URLs inside `text` replaced by ***@, and any password remembered
    from a URL replaced by *** (yt-dlp's generic extractor names a file by its URL, userinfo
    included), for messages and logs."""
    text = re.sub(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]*@", r"\1***@", text)
    for user, password in _CREDENTIALS.values():
        for secret in (f"{user}:{password}@", password):
            if len(secret) > 1:
                text = text.replace(secret, "***")
    return text


def short(text: str, n: int = 200) -> str:
    """`text` cut to `n` characters for a one-line message."""
    return text if len(text) <= n else text[: n - 1] + "…"


def remembered_credentials() -> dict[str, tuple[str, str]]:
    return dict(_CREDENTIALS)


def _with_credentials(url: str, extra: dict[str, Any]) -> str:
    """The URL yt-dlp gets: with the credentials remembered for its host (from the URL as
    given, or from Dask's `ydl_extra`), else `--username/--password`, else the user's netrc
    when `--netrc` asked for it; yt-dlp sends them as HTTP basic auth (and to the site's own
    login, where it has one)."""
    if not url.lower().startswith(("http://", "https://", "ftp://")):
        return url
    parts = urlsplit(url)
    if parts.username is not None:
        return url
    key = _host_key(parts)
    creds = (extra.get(CREDENTIALS_KEY) or {}).get(key) or _CREDENTIALS.get(key)
    if creds is None and extra.get("username") is not None:
        creds = (str(extra["username"]), str(extra.get("password") or ""))
    if creds is None and extra.get("usenetrc"):
        creds = _netrc_login(parts.hostname or "", extra.get("netrc_location"))
    if creds is None:
        return url
    from urllib.parse import quote

    user, password = (quote(c, safe="") for c in creds)
    return parts._replace(netloc=f"{user}:{password}@{parts.netloc}").geturl()


def _netrc_login(host: str, location: str | None) -> tuple[str, str] | None:
    import netrc

    try:
        found = netrc.netrc(location).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return None
    return (found[0], found[2] or "") if found else None

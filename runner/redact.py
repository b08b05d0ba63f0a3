"""Keep index credentials out of everything runner shows, logs or stores."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()]+")


def redact_url(url: str, *, mask: str = "***@") -> str:
    """Replace the user and password part of a URL by `mask` ("" drops it entirely)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if port:
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme, f"{mask}{host}", parts.path, parts.query, parts.fragment))


def redact_text(text: str, *, mask: str = "***@") -> str:
    """Redact every URL in free text (installer output, command lines, lock files)."""
    return _URL.sub(lambda m: redact_url(m.group(0), mask=mask), text)

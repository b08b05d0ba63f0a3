"""Keep index credentials out of everything runner shows, logs or stores."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# Patterns, compiled (and cached by `re`) on first use: most text has no `@`, so a cold run
# usually compiles none of them.
_URL = r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()]+"
# The user information of a URL that does not parse (a bad port, a broken IPv6 host): what
# lies between `scheme://` and the *last* `@` of the authority, as urlsplit would cut it.
_USERINFO = r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@"
# `user:password@host` outside a URL (a proxy setting, a mangled command line).
_BARE = r"(?<![\w/.:@%+-])[^\s/@:'\"<>()]+:[^\s/@'\"<>()]+@(?=[\w\[])"


def redact_url(url: str, *, mask: str = "***@") -> str:
    """Replace the user and password part of a URL by `mask` ("" drops it entirely).

    A URL that does not parse is still redacted: anything before the last `@` of its
    authority goes.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return re.sub(_USERINFO, lambda m: m.group("scheme") + mask, url, count=1)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address keeps its brackets
    if port:
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme, f"{mask}{host}", parts.path, parts.query, parts.fragment))


def redact_text(text: str, *, mask: str = "***@") -> str:
    """Redact every URL in free text (installer output, command lines, lock files), and
    anything else that looks like `user:password@host`."""
    if "@" not in text:
        return text  # credentials always end in `@`: nothing to redact (installer output)
    text = re.sub(_URL, lambda m: redact_url(m.group(0), mask=mask), text)
    return re.sub(_BARE, mask, text)

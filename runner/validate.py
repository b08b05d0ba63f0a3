"""Validate option values before any work: one-line UsageErrors (exit 2), never a traceback.

The CLI calls `run_options` for run, python, sync and lock, and `duration` for the cache
commands, as soon as the command line is parsed: before standard input is read, before the
cache is touched, before an interpreter is probed or an installer started.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

from runner.errors import UsageError
from runner.redact import redact_text


class _Options(Protocol):
    """What `run_options` reads of api.RunOptions (a protocol: the core's api is above us)."""

    @property
    def python(self) -> str | None: ...
    @property
    def with_requirements(self) -> Sequence[str]: ...
    @property
    def index_url(self) -> str | None: ...
    @property
    def extra_index_urls(self) -> Sequence[str]: ...
    @property
    def find_links(self) -> Sequence[str]: ...
    @property
    def exclude_newer(self) -> str | None: ...
    @property
    def installer(self) -> str | None: ...


Options = TypeVar("Options", bound=_Options)

INSTALLERS = ("pip", "uv", "auto")
_INDEX_SCHEMES = ("http", "https", "file")
# Direct references pip and uv understand: plain URLs and VCS URLs (`git+https://...`).
_VCS = ("git", "hg", "svn", "bzr")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# The scheme, read without urlsplit (which raises on some malformed hosts).
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def _scheme(url: str) -> str:
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else ""


def _shown(value: str) -> str:
    """The value as an error message may show it: credentials masked, quoted, one line."""
    return repr(redact_text(value))


def _plain(value: str, option: str) -> None:
    if _CONTROL.search(value):
        raise UsageError(
            f"{option} {_shown(value)}: contains a control character",
            hint="Check the value for a stray newline, tab or NUL byte.",
        )


def requirement(value: str, option: str = "--with") -> str:
    """A PEP 508 requirement; a direct reference must be a URL installers understand."""
    _plain(value, option)
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import InvalidSpecifier  # what packaging 26.0 may raise

    try:
        req = Requirement(value)
    except (InvalidRequirement, InvalidSpecifier) as exc:
        reason = str(exc).splitlines()[0]
        raise UsageError(
            f"{option} {_shown(value)}: not a valid requirement ({redact_text(reason)})",
            hint="Use a PEP 508 requirement such as 'requests>=2.31', 'rich[jupyter]' or "
            "'pkg @ https://host/pkg-1.0-py3-none-any.whl'.",
        ) from None
    if req.url is not None:
        scheme = _scheme(req.url)
        base = scheme.split("+", 1)[0] if "+" in scheme else scheme
        if not scheme or (base not in _INDEX_SCHEMES and base not in _VCS):
            raise UsageError(
                f"{option} {_shown(value)}: the part after '@' must be a URL "
                "(https://..., file:///..., git+https://...)",
                hint="For a local file write 'pkg @ file:///absolute/path/pkg.whl'.",
            )
        _url_parts(req.url, option, value)
    return value


def _url_parts(url: str, option: str, shown_as: str) -> None:
    """The URL must split into host and port as every installer will split it."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number
    except ValueError as exc:
        raise UsageError(
            f"{option} {_shown(shown_as)}: not a valid URL ({exc})",
            hint="Check the host and port, e.g. https://pypi.example.com:8443/simple.",
        ) from None
    if parts.scheme.lower().split("+")[-1] in ("http", "https") and not parts.hostname:
        raise UsageError(
            f"{option} {_shown(shown_as)}: the URL has no host",
            hint="Write it as https://HOST/PATH, e.g. https://pypi.example.com/simple.",
        )


def index_url(value: str, option: str = "--index-url") -> str:
    """An http(s) or file URL of a package index."""
    _plain(value, option)
    scheme = _scheme(value)
    if scheme not in _INDEX_SCHEMES or " " in value:
        raise UsageError(
            f"{option} {_shown(value)}: not an http, https or file URL",
            hint="Write it as https://HOST/simple (or file:///path/to/simple for a local index).",
        )
    _url_parts(value, option, value)
    return value


def find_links(value: str, option: str = "--find-links") -> str:
    """A URL (as for an index) or an existing local directory or HTML file."""
    _plain(value, option)
    if "://" in value:
        return index_url(value, option)
    if not value.strip():
        raise UsageError(f"{option}: the value is empty", hint="Name a directory of wheels.")
    if not os.path.exists(os.path.expanduser(value)):
        raise UsageError(
            f"{option} {_shown(value)}: no such file or directory "
            f"(relative paths are taken from {os.getcwd()})",
            hint="Name an existing directory of wheels, or an URL.",
        )
    return value


def exclude_newer(value: str, option: str = "--exclude-newer") -> str:
    from runner.settings import parse_cutoff

    _plain(value, option)
    try:
        parse_cutoff(value)
    except ValueError as exc:
        raise UsageError(
            f"{option}: {exc}",
            hint='Use an RFC 3339 time such as "2026-01-01T00:00:00Z" or a duration '
            'such as "14 days".',
        ) from None
    return value


def installer(value: str, option: str = "--installer") -> str:
    if value.strip().lower() not in INSTALLERS:
        raise UsageError(
            f"{option} {_shown(value)}: not an installer runner knows",
            hint="Use --installer pip, uv or auto (or set RUNNER_INSTALLER to one of them).",
        )
    return value


def python(value: str, option: str = "--python") -> str:
    """Only the shape: whether it names an interpreter is decided when one is chosen."""
    _plain(value, option)
    return value


_DURATION = re.compile(r"^\s*(\d{1,9}(?:\.\d{1,6})?)\s*([smhdw]?)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "": 86400}


def duration(value: str, option: str = "--older-than") -> float:
    """Seconds in `30d`, `12h`, `90m`, `45s`, `2w` (a bare number is days)."""
    match = _DURATION.match(value.lower())
    if not match:
        raise UsageError(
            f"{option} {_shown(value)}: not a duration",
            hint="Use a number with a unit: 30d (days), 12h (hours), 90m (minutes), 2w, 45s.",
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_options(options: Options) -> Options:
    """Check every value of run, python, sync and lock options; return them unchanged."""
    if options.python:
        python(options.python)
    for req in options.with_requirements:
        requirement(req)
    if options.index_url is not None:
        index_url(options.index_url)
    for url in options.extra_index_urls:
        index_url(url, "--extra-index-url")
    for link in options.find_links:
        find_links(link)
    if options.exclude_newer is not None:
        exclude_newer(options.exclude_newer)
    if options.installer is not None:
        installer(options.installer)
    return options

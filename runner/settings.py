"""The script's own `[tool.runner]` settings: index options and the upload-date cutoff."""

from __future__ import annotations

import datetime as _dt
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from runner.errors import MetadataError
from runner.metadata import ScriptMetadata
from runner.spec import IndexSettings
from runner.values import dataclass

_SETTING_TYPES: dict[str, tuple[type, str]] = {
    "index-url": (str, 'index-url = "https://example.org/simple"'),
    "extra-index-urls": (list, 'extra-index-urls = ["https://example.org/simple"]'),
    "find-links": (list, 'find-links = ["wheels"]'),
    "no-index": (bool, "no-index = true"),
    "exclude-newer": (str, 'exclude-newer = "2026-01-01T00:00:00Z" or "14 days"'),
}


# --------------------------------------------------------------------------- [tool.runner]


@dataclass(frozen=True)
class ScriptSettings:
    """The `[tool.runner]` keys this module understands, validated."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    exclude_newer: str | None = None


def _block_line(meta: ScriptMetadata, key: str) -> int | None:
    """1-based file line of the block line that sets `key` (best effort)."""
    if meta.block is None or meta.block_line is None:
        return None
    pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
    for i, line in enumerate(meta.block.split("\n")):
        if pattern.match(line):
            return meta.block_line + 1 + i
    for i, line in enumerate(meta.block.split("\n")):
        if "tool.runner" in line:
            return meta.block_line + 1 + i
    return meta.block_line


def script_settings(meta: ScriptMetadata, path: str) -> ScriptSettings:
    """Validate the index and cutoff keys of the script's `[tool.runner]` table."""
    raw = meta.runner_settings
    if not isinstance(meta.tool.get("runner", {}), Mapping):
        line = _block_line(meta, "runner")
        raise MetadataError(
            f"{path}:{line}: 'tool.runner' must be a table",
            hint="Write it as a [tool.runner] table inside the script block.",
        )
    for key, (kind, example) in _SETTING_TYPES.items():
        if key not in raw:
            continue
        value = raw[key]
        ok = isinstance(value, kind) and (
            not isinstance(value, list) or all(isinstance(v, str) and v for v in value)
        )
        if kind is str and ok and not value.strip():
            ok = False
        if not ok:
            line = _block_line(meta, key)
            what = "a list of strings" if kind is list else f"a {kind.__name__}"
            what = "true or false" if kind is bool else what
            raise MetadataError(
                f"{path}:{line}: [tool.runner] {key} must be {what}, not {value!r}",
                hint=f"Write it as {example}.",
            )
    exclude = raw.get("exclude-newer")
    if exclude is not None:
        try:
            parse_cutoff(exclude)
        except ValueError as exc:
            line = _block_line(meta, "exclude-newer")
            raise MetadataError(
                f"{path}:{line}: [tool.runner] exclude-newer: {exc}",
                hint='Use an RFC 3339 time such as "2026-01-01T00:00:00Z" or a duration '
                'such as "14 days".',
            ) from None
    return ScriptSettings(
        index_url=raw.get("index-url"),
        extra_index_urls=tuple(raw.get("extra-index-urls", ())),
        find_links=tuple(raw.get("find-links", ())),
        no_index=bool(raw.get("no-index", False)),
        exclude_newer=exclude,
    )


def _local(link: str, base: str) -> str:
    """A find-links entry: URLs stay, paths become absolute against `base`."""
    if "://" in link:
        return link
    return os.path.normpath(os.path.join(base, os.path.expanduser(link)))


def effective_index(
    settings: ScriptSettings,
    *,
    script_dir: str,
    index_url: str | None = None,
    extra_index_urls: Sequence[str] = (),
    find_links: Sequence[str] = (),
    no_index: bool = False,
) -> IndexSettings:
    """Flags override the block's index-url and extend its lists.

    Relative find-links in the block resolve against the script's directory; on the
    command line, against the current directory.
    """
    extras = tuple(dict.fromkeys([*settings.extra_index_urls, *extra_index_urls]))
    links = [_local(p, script_dir) for p in settings.find_links]
    links += [_local(p, os.getcwd()) for p in find_links]
    return IndexSettings(
        index_url=index_url or settings.index_url,
        extra_index_urls=extras,
        find_links=tuple(dict.fromkeys(links)),
        no_index=no_index or settings.no_index,
    )


def index_and_cutoff(
    meta: ScriptMetadata, path: str, script_dir: str, options: Any
) -> tuple[IndexSettings, str | None, int | None]:
    """The effective index settings, normalized cutoff, and when that cutoff next moves
    (`cutoff_expires`) for a script run with `options`.

    `options` is an api.RunOptions (flags); the block's `[tool.runner]` fills the rest.
    """
    from runner.errors import UsageError

    settings = script_settings(meta, path)
    index = effective_index(
        settings,
        script_dir=script_dir,
        index_url=options.index_url,
        extra_index_urls=options.extra_index_urls,
        find_links=options.find_links,
        no_index=options.no_index,
    )
    cutoff_text = options.exclude_newer or settings.exclude_newer
    if not cutoff_text:
        return index, None, None
    try:
        return index, parse_cutoff(cutoff_text), cutoff_expires(cutoff_text)
    except ValueError as exc:
        raise UsageError(
            f"--exclude-newer: {exc}",
            hint='Use an RFC 3339 time such as "2026-01-01T00:00:00Z" or a duration '
            'such as "14 days".',
        ) from None


# --------------------------------------------------------------------------- exclude-newer

_DURATION = re.compile(
    r"^\s*(?:P(?P<iso>\d+)D|(?P<n>\d+)\s*(?P<unit>d|days?|w|weeks?))\s*$", re.IGNORECASE
)


def cutoff_expires(value: str | None, now: _dt.datetime | None = None) -> int | None:
    """When a relative cutoff ("14 days") moves next: the coming UTC midnight, in epoch
    seconds; None for an absolute time or no cutoff. Warm aliases must not outlive it."""
    if not value or not _DURATION.match(value):
        return None
    now = now or _dt.datetime.now(_dt.UTC)
    midnight = now.astimezone(_dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return int((midnight + _dt.timedelta(days=1)).timestamp())


def parse_cutoff(value: str, now: _dt.datetime | None = None) -> str:
    """Normalize an upload-date cutoff to `YYYY-MM-DDTHH:MM:SSZ` (UTC).

    A duration ("14 days", "2 weeks", "P14D") means that long before today's UTC midnight,
    so the value, and with it the environment key, changes once a day rather than every
    second. An RFC 3339 time without an offset is taken as UTC. Raises ValueError.
    """
    try:
        return _parse_cutoff(value, now)
    except OverflowError:
        raise ValueError(f"{value!r} is out of range") from None


def _parse_cutoff(value: str, now: _dt.datetime | None) -> str:
    match = _DURATION.match(value)
    if match:
        if match.group("iso") is not None:
            days = int(match.group("iso"))
        else:
            days = int(match.group("n")) * (7 if match.group("unit").lower().startswith("w") else 1)
        now = now or _dt.datetime.now(_dt.UTC)
        midnight = now.astimezone(_dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        moment = midnight - _dt.timedelta(days=days)
    else:
        text = value.strip()
        if text.endswith(("z", "Z")):
            text = text[:-1] + "+00:00"
        try:
            moment = _dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{value!r} is neither an RFC 3339 time nor a duration in days or weeks"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=_dt.UTC)
    return moment.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

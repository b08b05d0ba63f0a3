"""Index settings from `[tool.runner]`, upload-date cutoffs, and PEP 751 `pylock` files."""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import fastpath, proc
from runner.errors import LockfileError, MetadataError
from runner.installers import index_args
from runner.interpreters import Interpreter
from runner.metadata import ScriptMetadata
from runner.redact import redact_text, redact_url
from runner.report import Reporter
from runner.spec import IndexSettings, canonical_json, normalize_requirements, sha256_hex

# Bump when the meaning of the requirements digest recorded in lock files changes.
LOCK_DIGEST_FORMAT = 1

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


# --------------------------------------------------------------------------- lock files


def requirements_digest(meta: ScriptMetadata) -> str:
    """What a lock was made from: the block's normalized requirements and requires-python."""
    return sha256_hex(
        canonical_json(
            {
                "format": LOCK_DIGEST_FORMAT,
                "requirements": list(normalize_requirements(meta.dependencies)),
                "requires-python": meta.requires_python or "",
            }
        )
    )


def environment_marker(interpreter: Interpreter) -> str:
    """The PEP 751 `environments` entry a lock made for this interpreter is valid for."""
    env = interpreter.marker_env
    parts = [
        f"{name} == {json.dumps(env[name])}"
        for name in ("implementation_name", "python_version", "sys_platform", "platform_machine")
        if name in env
    ]
    return " and ".join(parts)


@dataclass(frozen=True)
class Lock:
    """A validated lock file and what it pins for one interpreter."""

    path: str
    content: bytes
    data: dict[str, Any]

    @property
    def digest(self) -> str:
        return sha256_hex(self.content)

    @property
    def recorded_digest(self) -> str | None:
        tool = self.data.get("tool", {}).get("runner", {})
        value = tool.get("requirements-digest") if isinstance(tool, dict) else None
        return value if isinstance(value, str) else None

    def mismatch(self, meta: ScriptMetadata, interpreter: Interpreter) -> str | None:
        """Why this lock does not fit the script and interpreter, or None if it does."""
        if self.recorded_digest != requirements_digest(meta):
            return "the script's dependencies or requires-python changed since it was made"
        from packaging.markers import Marker

        environments = self.data.get("environments")
        if environments:
            env = interpreter.marker_env
            if not any(Marker(m).evaluate(dict(env)) for m in environments):
                return f"it was made for another interpreter ({'; '.join(environments)})"
        return None

    def pinned_lines(self, interpreter: Interpreter) -> list[str]:
        """Requirement lines pinning each package to its version and artifact hashes."""
        from packaging.markers import Marker

        env = interpreter.marker_env
        lines = []
        for package in self.data.get("packages", []):
            marker = package.get("marker")
            if marker and not Marker(marker).evaluate(dict(env)):
                continue
            name = package["name"]
            hashes: list[str] = []
            for artifact in [
                *package.get("wheels", []),
                package.get("sdist"),
                package.get("archive"),
            ]:
                if isinstance(artifact, dict):
                    sha = artifact.get("hashes", {}).get("sha256")
                    if sha:
                        hashes.append(sha)
            if not hashes or "version" not in package:
                raise LockfileError(
                    f"{self.path}: package {name} has no version with sha256 hashes; runner "
                    "can only install hash-checked artifacts from a lock",
                    hint="Lock a released version from an index or find-links instead of a "
                    "VCS checkout or local directory, then run `runner lock` again.",
                )
            pins = " ".join(f"--hash=sha256:{h}" for h in dict.fromkeys(hashes))
            lines.append(f"{name}=={package['version']} {pins}")
        return lines


def load_lock(path: str) -> Lock | None:
    """Read and validate a lock file; None if it does not exist."""
    try:
        content = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LockfileError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(content.decode("utf-8"))
        from packaging.pylock import Pylock

        Pylock.from_dict(data)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, Exception) as exc:
        raise LockfileError(
            f"{path} is not a valid PEP 751 lock file: {exc}",
            hint="Recreate it with `runner lock SCRIPT`, or delete it.",
        ) from None
    return Lock(path=path, content=content, data=data)


def write_pinned_file(lines: Sequence[str], directory: str) -> Path:
    """A requirements file for the installer's --require-hashes mode."""
    fd, name = tempfile.mkstemp(prefix="pinned-", suffix=".txt", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return Path(name)


def _pip_lock_command(
    python: str,
    *,
    seeded: bool,
    requirements: Sequence[str],
    index: IndexSettings,
    exclude_newer: str | None,
    offline: bool,
    output: str,
) -> list[str]:
    import sys

    cmd = [python, "-m", "pip"] if seeded else [sys.executable, "-m", "pip", "--python", python]
    cmd += ["lock", "--no-input", "--disable-pip-version-check", "--progress-bar", "off"]
    cmd += ["--output", output]
    cmd += index_args(index)
    if offline and not index.no_index:
        cmd.append("--no-index")
    if exclude_newer:
        cmd += ["--uploaded-prior-to", exclude_newer]
    return cmd + list(requirements)


def make_lock(
    meta: ScriptMetadata,
    script_path: str,
    interpreter: Interpreter,
    index: IndexSettings,
    *,
    exclude_newer: str | None,
    offline: bool,
    log_path: Path,
    reporter: Reporter,
) -> str:
    """Resolve the script's dependencies with `pip lock` and write its pylock file.

    Returns the lock file's path. The file is written atomically and validated with
    `packaging.pylock` before it replaces any older one.
    """
    from runner.fsutil import atomic_write_text
    from runner.installers import PipInstaller, failure

    lock_path = fastpath.lock_path_for(script_path)
    requirements = normalize_requirements(meta.dependencies)
    with tempfile.TemporaryDirectory(prefix="runner-lock-") as tmp:
        output = os.path.join(tmp, "pylock.toml")
        python, seeded = interpreter.path, False
        if PipInstaller().needs_seed(interpreter):
            # runner's pip cannot run under this Python: use a throwaway env with its own pip.
            from runner.builder import create_venv

            created = create_venv(interpreter, Path(tmp) / "venv", seed=True)
            python, seeded = created.python, True
        if requirements:
            cmd = _pip_lock_command(
                python,
                seeded=seeded,
                requirements=requirements,
                index=index,
                exclude_newer=exclude_newer,
                offline=offline,
                output=output,
            )
            reporter.info(
                f"resolving {len(requirements)} requirement(s) for {interpreter.describe()}"
            )
            outcome = proc.run(
                cmd, env=proc.child_env(), log_path=log_path, stream=reporter.verbose
            )
            if not outcome.ok:
                error = failure(outcome, "pip lock", log_path)
                raise LockfileError(
                    f"could not lock {script_path}: {error.message}",
                    hint=error.hint,
                    details=error.details,
                )
            body = Path(output).read_text(encoding="utf-8")
        else:
            body = 'lock-version = "1.0"\ncreated-by = "runner"\npackages = []\n'
    body = redact_text(body, mask="")  # a lock keeps no credentials, not even masked
    data = tomllib.loads(body)
    if "tool" in data:
        raise LockfileError("pip lock wrote an unexpected [tool] table; runner cannot annotate it")
    header = [
        f"# Lock file for {os.path.basename(script_path)}, written by `runner lock`.",
        "# Regenerate it with `runner lock` after changing the script's dependencies.",
        f"environments = [{json.dumps(environment_marker(interpreter))}]",
    ]
    if meta.requires_python:
        header.append(f"requires-python = {json.dumps(meta.requires_python)}")
    tool = [
        "",
        "[tool.runner]",
        f"requirements-digest = {json.dumps(requirements_digest(meta))}",
        "requirements = [" + ", ".join(json.dumps(r) for r in requirements) + "]",
    ]
    if exclude_newer:
        tool.append(f"exclude-newer = {json.dumps(exclude_newer)}")
    text = "\n".join(header) + "\n" + body.rstrip("\n") + "\n" + "\n".join(tool) + "\n"
    try:
        from packaging.pylock import Pylock

        Pylock.from_dict(tomllib.loads(text))
    except Exception as exc:
        raise LockfileError(
            f"the lock produced for {script_path} does not validate as PEP 751: {exc}",
            hint="This is a bug in runner or pip; run with -v and report it.",
        ) from None
    atomic_write_text(Path(lock_path), text)
    return lock_path


def describe_index(index: IndexSettings) -> str:
    """Index settings for messages, credentials removed."""
    parts = []
    if index.index_url:
        parts.append(f"index {redact_url(index.index_url)}")
    parts += [f"extra index {redact_url(u)}" for u in index.extra_index_urls]
    parts += [f"find-links {redact_url(u)}" for u in index.find_links]
    if index.no_index:
        parts.append("no index")
    return ", ".join(parts) or "pip's configured index"

"""PEP 751 `pylock` files for scripts: write them with `pip lock`, read, match, install."""

from __future__ import annotations

import errno
import json
import os
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runner import layout, proc
from runner.errors import LockfileError
from runner.hashing import sha256_hex
from runner.installers import pip_handoff, private_requirements
from runner.interpreters import Interpreter
from runner.metadata import ScriptMetadata
from runner.redact import redact_text, redact_url
from runner.report import Reporter
from runner.spec import IndexSettings, canonical_json, normalize_requirements
from runner.values import dataclass

# Bump when the meaning of the requirements digest recorded in lock files changes.
LOCK_DIGEST_FORMAT = 1

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
    requirements_file: str,
    index: IndexSettings,
    exclude_newer: str | None,
    offline: bool,
    output: str,
) -> list[str]:
    import sys

    cmd = [python, "-m", "pip"] if seeded else [sys.executable, "-m", "pip", "--python", python]
    cmd += ["lock", "--no-input", "--disable-pip-version-check", "--progress-bar", "off"]
    cmd += ["--output", output]
    if offline and not index.no_index:
        cmd.append("--no-index")
    if exclude_newer:
        cmd += ["--uploaded-prior-to", exclude_newer]
    # Index URLs (credentials) and the requirements go in a private file, not on argv.
    return [*cmd, "-r", requirements_file]


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

    lock_path = layout.lock_path_for(script_path)
    requirements = normalize_requirements(meta.dependencies)
    with tempfile.TemporaryDirectory(prefix="runner-lock-") as tmp:
        output = os.path.join(tmp, "pylock.toml")
        python, seeded = interpreter.path, False
        if PipInstaller().needs_seed(interpreter):
            # runner's pip cannot run under this Python: use a throwaway env with its own pip.
            from runner.venvs import create_venv

            created = create_venv(interpreter, Path(tmp) / "venv", seed=True)
            python, seeded = created.python, True
        if requirements:
            reporter.info(
                f"resolving {len(requirements)} requirement(s) for {interpreter.describe()}"
            )
            lines = [*pip_handoff(index).lines, *requirements]
            with private_requirements(lines) as requirements_file:
                cmd = _pip_lock_command(
                    python,
                    seeded=seeded,
                    requirements_file=str(requirements_file),
                    index=index,
                    exclude_newer=exclude_newer,
                    offline=offline,
                    output=output,
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
        # A lock keeps no credentials, not even masked (the digest above is a hash).
        "requirements = ["
        + ", ".join(json.dumps(redact_text(r, mask="")) for r in requirements)
        + "]",
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
    try:
        atomic_write_text(Path(lock_path), text)
    except OSError as exc:
        raise write_error(lock_path, exc, "writing the lock file") from None
    return lock_path


def write_error(path: str, exc: OSError, doing: str) -> LockfileError:
    """A clear error for a file `runner lock` could not write (a full disk, no permission),
    naming the path the operating system complained about."""
    where = exc.filename if isinstance(exc.filename, str) and exc.filename else path
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        hint = "Free some space on that filesystem and run `runner lock` again."
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "Make the directory writable and run `runner lock` again."
    else:
        hint = "Fix the problem named above and run `runner lock` again."
    if where == path:
        message = f"cannot write {path}: {exc.strerror or exc}; an older lock file is unchanged"
    else:
        message = f"{where}: {exc.strerror or exc} while {doing}; {path} was not written"
    return LockfileError(message, hint=hint)


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

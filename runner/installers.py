"""Installers behind one small interface: pip (always available) and uv (optional, faster)."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from runner import proc
from runner.errors import InstallError, NetworkError
from runner.interpreters import Interpreter
from runner.report import Reporter
from runner.spec import IndexSettings, redact_url


@dataclass(frozen=True)
class InstallRequest:
    """What to install into which environment, and from where."""

    python: str  # the environment's interpreter
    requirements: tuple[str, ...]
    index: IndexSettings = field(default_factory=IndexSettings)
    offline: bool = False
    exclude_newer: str | None = None
    # A requirements file with pinned, hash-checked artifacts (from a lock): install
    # exactly these, without resolving.
    pinned_file: Path | None = None
    refresh: bool = False


class Installer(Protocol):
    name: str

    def needs_seed(self, interpreter: Interpreter) -> bool:
        """Whether the environment must contain its own pip for this installer to drive it."""
        ...

    def install(self, request: InstallRequest, *, log_path: Path, reporter: Reporter) -> None:
        """Install into request.python; raise InstallError (with the lines that matter)."""
        ...


def _index_args(index: IndexSettings) -> list[str]:
    args: list[str] = []
    if index.index_url:
        args += ["--index-url", index.index_url]
    for url in index.extra_index_urls:
        args += ["--extra-index-url", url]
    for link in index.find_links:
        args += ["--find-links", link]
    if index.no_index:
        args.append("--no-index")
    return args


_NETWORK_MARKERS = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Max retries exceeded",
    "Connection refused",
    "Name or service not known",
    "Temporary failure in name resolution",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "Could not fetch URL",
    "Network is unreachable",
    "No route to host",
    "failed to connect",  # uv
    "error sending request",  # uv
    "dns error",  # uv
)
_NOT_FOUND = re.compile(
    r"No matching distribution found for (?P<req>\S+)"
    r"|Because (?P<uvreq>\S+) was not found in the package registry"
    r"|No solution found when resolving dependencies"
)


def failure(outcome: proc.Outcome, installer: str, log_path: Path) -> InstallError:
    """Turn a failed install into an error that shows the lines that matter."""
    lines = [redact_url(line) for line in outcome.output.splitlines()]
    important = [
        line
        for line in lines
        if line.startswith(("ERROR:", "error:", "  × ", "  ╰─▶", "      ", "  Caused by"))
        or "error" in line.lower()
        and ("fatal" in line.lower() or "failed" in line.lower())
    ]
    if not important:
        important = lines[-15:]
    details = "\n".join(important[-25:])
    text = outcome.output
    network = any(marker in text for marker in _NETWORK_MARKERS)
    match = _NOT_FOUND.search(text)
    hint_log = f"The full installer output is in {log_path}."
    if network and (match or "Could not find a version" in text or "error" in text.lower()):
        return NetworkError(
            "could not reach the package index while installing the script's dependencies",
            hint="Check your network or proxy, or the index settings (pip.conf, PIP_INDEX_URL, "
            "--index-url); use --offline with a local --find-links directory to build "
            f"without a network. {hint_log}",
            details=details,
        )
    if match:
        req = match.group("req") or match.group("uvreq")
        what = f"no release of {req} can be installed" if req else "the dependencies cannot be resolved"
        return InstallError(
            f"{what} from the configured package index",
            hint="Check the spelling and version bounds in the script's dependencies, and "
            f"that your index carries the package. {hint_log}",
            details=details,
        )
    return InstallError(
        f"{installer} failed to install the script's dependencies (exit status {outcome.returncode})",
        hint=f"See the installer's messages above; run with -v to see everything. {hint_log}",
        details=details,
    )


def _requires_python_of_pip() -> str:
    from importlib.metadata import metadata

    return metadata("pip").get("Requires-Python") or ""


class PipInstaller:
    """runner's own pip driving the new environment with `pip --python` (no pip inside it)."""

    name = "pip"

    def needs_seed(self, interpreter: Interpreter) -> bool:
        from packaging.specifiers import SpecifierSet

        # `pip --python` runs this pip's code under the target interpreter.
        supported = SpecifierSet(_requires_python_of_pip())
        return not supported.contains(interpreter.version_obj, prereleases=True)

    def command(self, request: InstallRequest, *, seeded: bool) -> list[str]:
        if seeded:
            cmd = [request.python, "-m", "pip"]
        else:
            cmd = [sys.executable, "-m", "pip", "--python", request.python]
        cmd += ["install", "--no-input", "--no-warn-script-location", "--compile"]
        cmd += ["--disable-pip-version-check", "--progress-bar", "off"]
        cmd += _index_args(request.index)
        if request.offline:
            cmd.append("--no-index")
        if request.exclude_newer:
            cmd += ["--uploaded-prior-to", request.exclude_newer]
        if request.refresh:
            cmd += ["--upgrade", "--no-cache-dir"]
        if request.pinned_file is not None:
            cmd += ["--no-deps", "--require-hashes", "-r", str(request.pinned_file)]
        else:
            cmd += list(request.requirements)
        return cmd

    def install(
        self, request: InstallRequest, *, log_path: Path, reporter: Reporter, seeded: bool = False
    ) -> None:
        outcome = proc.run(
            self.command(request, seeded=seeded),
            env=proc.child_env(),
            log_path=log_path,
            stream=reporter.verbose,
        )
        if not outcome.ok:
            raise failure(outcome, "pip", log_path)


def get_installer(name: str | None) -> Installer:
    """The installer named by --installer / RUNNER_INSTALLER (default: pip)."""
    choice = (name or "pip").lower()
    if choice in ("pip", "auto"):
        return PipInstaller()
    raise InstallError(
        f"unknown installer {choice!r}", hint="Use --installer pip, uv or auto."
    )


def describe_requirements(requirements: Sequence[str]) -> str:
    if not requirements:
        return "no dependencies"
    shown = ", ".join(requirements[:4])
    more = f" and {len(requirements) - 4} more" if len(requirements) > 4 else ""
    return shown + more

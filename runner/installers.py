"""Installers behind one small interface: pip (always available) and uv (optional, faster).

Both honour the index settings runner passes explicitly (from the script's block or flags)
and their *own* configuration: pip reads pip.conf and `PIP_*` variables, uv reads uv.toml /
pyproject `[tool.uv]` and `UV_*` variables. uv does not read pip's configuration, so a
mirror configured only in pip.conf is not seen by `--installer uv` (set `UV_INDEX_URL` or
`UV_DEFAULT_INDEX` too). Both compile bytecode at build time, whatever
PYTHONDONTWRITEBYTECODE says, so later runs never recompile.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from runner import proc
from runner.errors import InstallError, NetworkError
from runner.interpreters import Interpreter
from runner.redact import redact_text
from runner.report import Reporter
from runner.spec import IndexSettings


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
    # The environment has its own pip (seeded because runner's pip cannot run under it).
    seeded: bool = False


class Installer(Protocol):
    name: str

    def needs_seed(self, interpreter: Interpreter) -> bool:
        """Whether the environment must contain its own pip for this installer to drive it."""
        ...

    def install(self, request: InstallRequest, *, log_path: Path, reporter: Reporter) -> None:
        """Install into request.python; raise InstallError (with the lines that matter)."""
        ...


def what_to_install(request: InstallRequest) -> list[str]:
    """The requirements, or a lock's pinned artifacts (hash-checked, nothing resolved);
    pip and uv spell both alike."""
    if request.pinned_file is not None:
        return ["--no-deps", "--require-hashes", "-r", str(request.pinned_file)]
    return list(request.requirements)


def index_args(index: IndexSettings) -> list[str]:
    """The command-line form of explicit index settings (pip and uv spell them alike)."""
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
    "tcp connect error",  # uv
    "dns error",  # uv
)
_NOT_FOUND = re.compile(
    r"No matching distribution found for (?P<req>\S+)"
    # uv: "... was not found in the package registry / provided package locations / cache"
    r"|Because (?P<uvreq>\S+) was not found in the "
    r"|Because there (?:is|are) no versions? of (?P<uvver>[^\s,]+)"
    r"|Because only \S+ (?:is|are) available and you require (?P<uvonly>[^\s,]+)"
    r"|(?P<unsolvable>No solution found when resolving dependencies)"
)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


# Lines that carry the diagnosis in pip's and uv's output.
_KEY_PREFIXES = (
    "ERROR:",
    "error:",
    "× ",  # noqa: RUF001  # uv's own error glyph
    "╰─▶",
    "╰─>",
    "cause:",
    "Caused by:",
    "hint:",
    "help:",
    "note:",
)
_KEY_LINES = 25
_TAIL_OF_BLOCK = 8


def important_lines(output: str) -> list[str]:
    """The lines of an installer's output worth showing: the errors and their causes, plus
    the last lines of any embedded build output (a compiler's error), never the whole wall."""
    lines = [redact_text(_ANSI.sub("", line.rstrip())) for line in output.splitlines()]
    keep: list[str] = []
    block: list[str] | None = None
    for line in lines:
        stripped = line.strip()
        if block is not None:
            # pip: "╰─> [N lines of output]" ... "[end of output]"; uv: "[stderr]" ... blank.
            if stripped in ("[end of output]", "") or stripped.startswith(_KEY_PREFIXES):
                keep += [f"    {b.strip()}" for b in block[-_TAIL_OF_BLOCK:]]
                block = None
                if not stripped or stripped == "[end of output]":
                    continue
            else:
                if stripped not in ("[stdout]", "[stderr]"):
                    block.append(line)
                continue
        if stripped.endswith("lines of output]") or stripped == "[stderr]":
            block = []
            if stripped.startswith(_KEY_PREFIXES):
                keep.append(line)
            continue
        if stripped.startswith(_KEY_PREFIXES):
            keep.append(line)
    if block:
        keep += [f"    {b.strip()}" for b in block[-_TAIL_OF_BLOCK:]]
    if not keep:
        keep = [line for line in lines if line.strip()][-15:]
    return keep[-_KEY_LINES:]


def failure(outcome: proc.Outcome, installer: str, log_path: Path) -> InstallError:
    """Turn a failed install into an error that shows the lines that matter."""
    details = "\n".join(important_lines(outcome.output))
    text = _ANSI.sub("", outcome.output)
    network = any(marker in text for marker in _NETWORK_MARKERS)
    match = _NOT_FOUND.search(text)
    hint_log = f"The full {installer} output is in {log_path}"
    if network and (match or "Could not find a version" in text or "error" in text.lower()):
        return NetworkError(
            "could not reach the package index while installing the script's dependencies",
            hint="Check your network or proxy, or the index settings (pip.conf, PIP_INDEX_URL, "
            "UV_INDEX_URL, --index-url); use --offline with a local --find-links directory to "
            f"build without a network. {hint_log}.",
            details=details,
        )
    if match:
        req = next((g for g in match.group("req", "uvreq", "uvver", "uvonly") if g), None)
        if req is None and match.group("unsolvable"):
            found = re.search(r"you require (?P<req>[^\s,]+)", text)
            req = found.group("req") if found else None
        what = (
            f"no release of {req} can be installed"
            if req
            else "the dependencies cannot be resolved"
        )
        return InstallError(
            f"{what} from the configured package index",
            hint="Check the spelling and version bounds in the script's dependencies, and "
            f"that your index carries the package. {hint_log}.",
            details=details,
        )
    return InstallError(
        f"{installer} failed to install the script's dependencies "
        f"(exit status {outcome.returncode})",
        hint=f"See the installer's messages above; run with -v to see everything. {hint_log}.",
        details=details,
    )


def _requires_python_of_pip() -> str:
    from importlib.metadata import metadata

    found = metadata("pip").get_all("Requires-Python") or []
    return str(found[0]) if found else ""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


class PipProgress:
    """Turns pip's output lines into build phases for the reporter."""

    def __init__(self, reporter: Reporter):
        self.reporter = reporter
        self.collected = 0

    def __call__(self, line: str) -> None:
        if line.startswith("Collecting "):
            self.collected += 1
            self.reporter.step("resolving", _plural(self.collected, "package"))
        elif line.startswith("Downloading "):  # indented: metadata during the resolve
            self.reporter.step("downloading", line.split()[1])
        elif line.startswith("Installing collected packages:"):
            names = [n for n in line.split(":", 1)[1].split(",") if n.strip()]
            # pip compiles each package as it installs it.
            self.reporter.step("installing", _plural(len(names), "package"))


_UV_DONE = re.compile(r"^(Resolved|Prepared|Installed|Uninstalled|Audited) (\d+) package")


class UvProgress:
    """Turns uv's output lines (each says a phase is done) into the phase that follows."""

    def __init__(self, reporter: Reporter, *, compile_bytecode: bool = True):
        self.reporter = reporter
        self.compile_bytecode = compile_bytecode

    def start(self) -> None:
        self.reporter.step("resolving")

    def __call__(self, line: str) -> None:
        match = _UV_DONE.match(line.strip())
        if match is None:
            return
        done, count = match.group(1), int(match.group(2))
        if done == "Resolved":
            self.reporter.step("downloading", _plural(count, "package"))
        elif done == "Prepared":
            self.reporter.step("installing", _plural(count, "package"))
        elif done == "Installed" and self.compile_bytecode:
            self.reporter.step("compiling")


class PipInstaller:
    """runner's own pip driving the new environment with `pip --python` (no pip inside it).

    Reads pip's own configuration (pip.conf, PIP_* variables) as pip always does.
    """

    name = "pip"

    def needs_seed(self, interpreter: Interpreter) -> bool:
        from packaging.specifiers import SpecifierSet

        # `pip --python` runs this pip's code under the target interpreter.
        supported = SpecifierSet(_requires_python_of_pip())
        return not supported.contains(interpreter.version_obj, prereleases=True)

    def command(self, request: InstallRequest) -> list[str]:
        runner_file = _pip_runner()
        if request.seeded:
            cmd = [request.python, "-m", "pip"]
        elif runner_file is not None:
            # What `pip --python ENV` does, minus starting pip once more under our own
            # interpreter just to re-execute it: run this pip's code under ENV's Python.
            cmd = [request.python, runner_file]
        else:
            cmd = [sys.executable, "-m", "pip", "--python", request.python]
        cmd += ["install", "--no-input", "--no-warn-script-location", "--compile"]
        cmd += ["--disable-pip-version-check", "--progress-bar", "off"]
        cmd += index_args(request.index)
        if request.offline:
            cmd.append("--no-index")
        if request.exclude_newer:
            cmd += ["--uploaded-prior-to", request.exclude_newer]
        if request.refresh:
            cmd += ["--upgrade", "--no-cache-dir"]
        return cmd + what_to_install(request)

    def install(self, request: InstallRequest, *, log_path: Path, reporter: Reporter) -> None:
        reporter.step("resolving")
        env = proc.child_env()
        env.pop("PIP_PYTHON", None)  # pip would re-execute itself under that interpreter
        # pip's own modules run under the environment's Python; with this set, a Python
        # other than runner's own would recompile all of pip from source on every build
        # (about a second). The environment is compiled by --compile either way.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        outcome = proc.run(
            self.command(request),
            env=env,
            log_path=log_path,
            stream=reporter.verbose,
            on_line=PipProgress(reporter),
        )
        if not outcome.ok:
            raise failure(outcome, "pip", log_path)


def _pip_runner() -> str | None:
    """pip's own file for running this copy of pip under another interpreter (pip >= 22.3)."""
    import importlib.util

    spec = importlib.util.find_spec("pip")
    if spec is None or spec.origin is None:
        return None
    path = os.path.join(os.path.dirname(spec.origin), "__pip-runner__.py")
    return path if os.path.isfile(path) else None


_TRUE = ("1", "true", "yes", "on")


def find_uv() -> str | None:
    """The uv binary: from the `uv` package (`runner[uv]`), else `uv` on PATH."""
    try:
        from uv import find_uv_bin  # type: ignore[import-not-found,unused-ignore]

        found = str(find_uv_bin())
    except (ImportError, FileNotFoundError, OSError):
        found = ""
    if found and os.access(found, os.X_OK):
        return found
    return shutil.which("uv")


class UvInstaller:
    """`uv pip install --python ENV` into an unseeded environment; compiles bytecode.

    uv reads its own configuration (uv.toml, UV_INDEX_URL, UV_FIND_LINKS...), not pip's.
    """

    name = "uv"

    def __init__(self, uv: str):
        self.uv = uv

    def needs_seed(self, interpreter: Interpreter) -> bool:
        return False  # uv installs into any Python >= 3.8 from outside

    def command(self, request: InstallRequest) -> list[str]:
        cmd = [self.uv, "pip", "install", "--python", request.python, "--compile-bytecode"]
        cmd += index_args(request.index)
        if request.offline:
            cmd.append("--offline")
        if request.exclude_newer:
            cmd += ["--exclude-newer", request.exclude_newer]
        if request.refresh:
            # uv refuses --refresh offline (it cannot refetch); --upgrade still applies.
            offline = request.offline or os.environ.get("UV_OFFLINE", "").lower() in _TRUE
            cmd += ["--upgrade"] if offline else ["--refresh", "--upgrade"]
        return cmd + what_to_install(request)

    def install(self, request: InstallRequest, *, log_path: Path, reporter: Reporter) -> None:
        progress = UvProgress(reporter)
        progress.start()
        outcome = proc.run(
            self.command(request),
            env=proc.child_env(),
            log_path=log_path,
            stream=reporter.verbose,
            on_line=progress,
        )
        if not outcome.ok:
            raise failure(outcome, "uv", log_path)


INSTALLER_CHOICES = ("pip", "uv", "auto")


def get_installer(name: str | None) -> Installer:
    """The installer named by --installer / RUNNER_INSTALLER: pip (default), uv, or auto
    (uv when it is available, else pip)."""
    choice = (name or "pip").strip().lower()
    if choice == "pip":
        return PipInstaller()
    if choice in ("uv", "auto"):
        uv = find_uv()
        if uv is not None:
            return UvInstaller(uv)
        if choice == "auto":
            return PipInstaller()
        raise InstallError(
            "the uv installer was requested but uv is not installed",
            hint="Install it with `pip install 'runner[uv]'` (or put `uv` on PATH), or use "
            "--installer pip or auto.",
        )
    raise InstallError(f"unknown installer {choice!r}", hint="Use --installer pip, uv or auto.")


def describe_requirements(requirements: Sequence[str]) -> str:
    if not requirements:
        return "no dependencies"
    shown = ", ".join(requirements[:4])
    more = f" and {len(requirements) - 4} more" if len(requirements) > 4 else ""
    return shown + more

"""Installers behind one small interface: pip (always available) and uv (optional, faster).

`--installer auto` (the default) uses uv when it is available and pip otherwise. Both get
the same index configuration: pip reads its own (pip.conf, PIP_* variables), and runner
hands pip's effective settings to uv (with pip's semantics across indexes, uv's
`unsafe-best-match`) unless uv's own index configuration is present, which then wins.
Explicit settings from the script's block or flags apply on top, for both.

Nothing secret and nothing unbounded goes on an installer's command line (which any user
can read): index URLs travel in the installer's environment or in a private requirements
file (mode 0600, removed afterwards) that also carries the requirements. Neither installer
compiles bytecode: the builder compiles the environment afterwards on every core
(`runner.bytecode`), whatever PYTHONDONTWRITEBYTECODE says.

Installer output is interpreted here and nowhere else: a failure becomes an
`InstallFailed` carrying a `Diagnosis` (network, not found, hash mismatch, no space, other)
that the rest of runner matches on.
"""

from __future__ import annotations

import enum
import os
import re
import shlex
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from runner import pipconfig, proc, records
from runner.errors import InstallError, NetworkError
from runner.fsutil import new_directory
from runner.interpreters import Interpreter
from runner.redact import redact_text
from runner.report import Reporter
from runner.spec import IndexSettings
from runner.values import dataclass, field


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
    # Where to put the installer's private files (the requirements file): the unpublished
    # build directory, which prune removes if the build is killed. None: the temp dir.
    scratch: Path | None = None
    # Called once the installer has started (`proc.run`'s `meanwhile`).
    meanwhile: Callable[[], None] | None = None
    # The interpreter binary the environment runs (its `python` links to it), when the
    # environment is a POSIX venv at `prefix`: uv then installs with `--prefix PREFIX
    # --python BASE`, which uv knows from its cache, instead of running the new
    # environment's interpreter to learn what it is (35-70 ms of every cold build).
    base_python: str | None = None
    prefix: Path | None = None


class Installer(Protocol):
    name: str
    why: str  # how it was chosen, for -v

    def needs_seed(self, interpreter: Interpreter) -> bool:
        """Whether the environment must contain its own pip for this installer to drive it."""
        ...

    def install(self, request: InstallRequest, *, log_path: Path, reporter: Reporter) -> None:
        """Install into request.python; raise InstallError (with the lines that matter)."""
        ...


def _link(location: str) -> str:
    """A find-links location as both installers read it in a requirements file: URLs as they
    are, local paths absolute and as file: URLs (no quoting, spaces or '#' to go wrong)."""
    if "://" in location:
        return location
    path = os.path.expanduser(location)
    if not os.path.isabs(path):
        try:
            path = os.path.join(os.getcwd(), path)
        except OSError:  # the current directory was deleted: nothing relative to find there
            return location
    return Path(os.path.normpath(path)).as_uri()


def _option(name: str, value: str | None = None) -> str:
    # pip splits option lines with shlex, uv unquotes them the same way.
    return name if value is None else f"{name} {shlex.quote(value)}"


@dataclass(frozen=True)
class Handoff:
    """How the index settings reach one installer: variables for its environment and option
    lines for its private requirements file; `description` says where they came from (-v)."""

    env: dict[str, str] = field(default_factory=dict)
    lines: tuple[str, ...] = ()
    description: str = ""


def pip_handoff(
    index: IndexSettings, *, ambient: pipconfig.PipIndexConfig | None = None
) -> Handoff:
    """pip reads its own configuration; the explicit settings are requirements-file options.

    In a requirements file `--index-url` replaces *every* index pip knows, its configured
    extra indexes too, while on a command line it would only replace the main one: those
    extra indexes are named again so the meaning stays the command line's.
    """
    lines: list[str] = []
    if index.no_index:
        lines.append(_option("--no-index"))
    elif index.index_url:
        lines.append(_option("--index-url", index.index_url))
        if ambient is None:
            ambient = pipconfig.read_pip_config()
        if not ambient.no_index:
            lines += [_option("--extra-index-url", url) for url in ambient.extra_index_urls]
    lines += [_option("--extra-index-url", url) for url in index.extra_index_urls]
    lines += [_option("--find-links", _link(link)) for link in index.find_links]
    return Handoff(lines=tuple(lines), description="pip's own configuration")


def uv_handoff(
    index: IndexSettings,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> Handoff:
    """pip's effective configuration translated for uv (its constraints files too), unless uv
    has its own; then the explicit settings on top. URLs go into variables (a requirements
    file's index URL would lose to uv's configured default index), locations into
    requirements-file lines."""
    environ = pipconfig.ambient_environ() if environ is None else environ
    env: dict[str, str] = {}
    extras: list[str] = []
    links: list[str] = []
    constraints: list[str] = []
    no_index = index.no_index
    own = pipconfig.uv_index_configuration(environ, cwd)
    if own is None:
        pip = pipconfig.read_pip_config(environ)
        # pip looks at every index and takes the best match; uv's default stops at the first
        # index that has the package at all.
        env["UV_INDEX_STRATEGY"] = "unsafe-best-match"
        if pip.index_url:
            env["UV_DEFAULT_INDEX"] = pip.index_url
        extras += pip.extra_index_urls
        links += pip.find_links
        no_index = no_index or pip.no_index
        constraints = [_option("-c", os.path.abspath(c)) for c in pip.constraints]
        if pip.trusted_hosts:
            env["UV_INSECURE_HOST"] = " ".join(pip.trusted_hosts)
        if pip.cert:
            env["SSL_CERT_FILE"] = pip.cert
        if pip.client_cert:
            env["SSL_CLIENT_CERT"] = pip.client_cert
        if pip.proxy:
            for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
                env[name] = pip.proxy
        where = ", ".join(pip.sources) or "defaults"
        description = f"pip's configuration ({where}), handed to uv with pip's index strategy"
    else:
        if index.extra_index_urls:  # a variable replaces uv's: keep the user's value too
            extras += environ.get("UV_EXTRA_INDEX_URL", "").split()
        description = f"uv's own configuration ({own})"
    if index.index_url:
        # UV_DEFAULT_INDEX comes before UV_INDEX_URL and any configuration file in uv.
        env["UV_DEFAULT_INDEX"] = index.index_url
    extras += index.extra_index_urls
    if extras and not no_index:
        env["UV_EXTRA_INDEX_URL"] = " ".join(dict.fromkeys(extras))
    lines = [_option("--no-index")] if no_index else []
    lines += constraints
    every_link = dict.fromkeys((*links, *index.find_links))
    lines += [_option("--find-links", _link(link)) for link in every_link]
    return Handoff(env=env, lines=tuple(lines), description=description)


def requirement_lines(request: InstallRequest, handoff: Handoff) -> list[str]:
    """The private requirements file: index options, then one requirement a line (a lock's
    pinned artifacts stay in their own hash-checked file)."""
    lines = list(handoff.lines)
    if request.pinned_file is None:
        lines += list(request.requirements)
    return lines


def pinned_args(request: InstallRequest) -> list[str]:
    """A lock's pinned artifacts: hash-checked, nothing resolved (pip and uv spell it alike)."""
    if request.pinned_file is None:
        return []
    return ["--no-deps", "--require-hashes", "-r", str(request.pinned_file)]


@contextmanager
def private_requirements(lines: Sequence[str], within: Path | None = None) -> Iterator[Path]:
    """A requirements file only this user can read, removed when the installer is done.

    `within`: the directory to make it in (an unpublished build directory, so that a build
    killed before it could remove the file leaves it where prune removes it, not in $TMPDIR).
    """
    if within is None:
        import tempfile

        directory = tempfile.mkdtemp(prefix=".runner-req-")  # mode 0700
    else:
        directory = str(new_directory(within, ".runner-req-", mode=0o700))
    path = Path(directory) / "requirements.txt"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)


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
# Patterns for failed runs only: compiled (and cached by `re`) when a run fails.
_NOT_FOUND = (
    r"No matching distribution found for (?P<req>\S+)"
    # uv: "... was not found in the package registry / provided package locations / cache"
    r"|Because (?P<uvreq>\S+) was not found in the "
    r"|Because there (?:is|are) no versions? of (?P<uvver>[^\s,]+)"
    r"|Because only \S+ (?:is|are) available and you require (?P<uvonly>[^\s,]+)"
    r"|(?P<unsolvable>No solution found when resolving dependencies)"
)
_ANSI = r"\x1b\[[0-9;?]*[A-Za-z]"


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
    lines = [redact_text(re.sub(_ANSI, "", line.rstrip())) for line in output.splitlines()]
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


class Problem(enum.Enum):
    """What a failed installer run says went wrong."""

    NETWORK = "network"
    NOT_FOUND = "not found"
    HASH_MISMATCH = "hash mismatch"
    NO_SPACE = "no space"
    OTHER = "other"


@dataclass(frozen=True)
class Diagnosis:
    """The structured reading of a failed installer run: the problem and the packages it
    names (the requirement not found, the artifacts whose hashes did not match)."""

    problem: Problem
    packages: tuple[str, ...] = ()


class InstallFailed(InstallError):
    """The installer ran and failed; `diagnosis` says how (match on it, not on the text)."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        details: str | None = None,
        diagnosis: Diagnosis | None = None,
    ):
        super().__init__(message, hint, details=details)
        self.diagnosis = diagnosis if diagnosis is not None else Diagnosis(Problem.OTHER)


class InstallNetworkFailed(InstallFailed, NetworkError):
    """The installer could not reach a package index (exit status 105)."""


# How pip, uv and the OS word a full disk or quota.
_NO_SPACE_TEXT = ("No space left on device", "Disk quota exceeded", "[Errno 28]", "os error 28")
_HASH_TEXT = ("THESE PACKAGES DO NOT MATCH THE HASHES", "Hash mismatch for")
# pip: "    alpha==1.0 from http://...:" under its banner; uv: "Hash mismatch for `alpha==1.0`".
_HASH_PACKAGE = r"(?m)(?:^ {4}|[Hh]ash mismatch for `)([A-Za-z0-9._-]+==[^\s`:]+)"


def diagnose(output: str) -> Diagnosis:
    """Read a failed installer run's output (pip's or uv's wording) into a Diagnosis."""
    text = re.sub(_ANSI, "", output)
    if any(marker in text for marker in _NO_SPACE_TEXT):
        return Diagnosis(Problem.NO_SPACE)
    if any(marker in text for marker in _HASH_TEXT):
        found = re.findall(_HASH_PACKAGE, text)
        return Diagnosis(Problem.HASH_MISMATCH, tuple(dict.fromkeys(found)))
    match = re.search(_NOT_FOUND, text)
    network = any(marker in text for marker in _NETWORK_MARKERS)
    if network and (match or "Could not find a version" in text or "error" in text.lower()):
        return Diagnosis(Problem.NETWORK)
    if match:
        req = next((g for g in match.group("req", "uvreq", "uvver", "uvonly") if g), None)
        if req is None and match.group("unsolvable"):
            found_req = re.search(r"you require (?P<req>[^\s,]+)", text)
            req = found_req.group("req") if found_req else None
        return Diagnosis(Problem.NOT_FOUND, (req,) if req else ())
    return Diagnosis(Problem.OTHER)


def failure(outcome: proc.Outcome, installer: str, log_path: Path) -> InstallFailed:
    """Turn a failed install into an error that carries its diagnosis and shows the lines
    that matter."""
    details = "\n".join(important_lines(outcome.output))
    diagnosis = diagnose(outcome.output)
    hint_log = f"The full {installer} output is in {log_path}"
    problem = diagnosis.problem
    if problem is Problem.NETWORK:
        return InstallNetworkFailed(
            "could not reach the package index while installing the script's dependencies",
            hint="Check your network or proxy, or the index settings (pip.conf, PIP_INDEX_URL, "
            "UV_INDEX_URL, --index-url); use --offline with a local --find-links directory to "
            f"build without a network. {hint_log}.",
            details=details,
            diagnosis=diagnosis,
        )
    if problem is Problem.NOT_FOUND:
        what = (
            f"no release of {diagnosis.packages[0]} can be installed"
            if diagnosis.packages
            else "the dependencies cannot be resolved"
        )
        return InstallFailed(
            f"{what} from the configured package index",
            hint="Check the spelling and version bounds in the script's dependencies, and "
            f"that your index carries the package. {hint_log}.",
            details=details,
            diagnosis=diagnosis,
        )
    if problem is Problem.HASH_MISMATCH:
        which = ", ".join(diagnosis.packages) or "a package"
        return InstallFailed(
            f"{which}: the downloaded artifact does not match its expected sha256",
            hint=f"The file on the index changed, or the expected hash is wrong. {hint_log}.",
            details=details,
            diagnosis=diagnosis,
        )
    if problem is Problem.NO_SPACE:
        return InstallFailed(
            f"{installer} ran out of disk space while installing the script's dependencies",
            hint=f"Free some space (`runner cache prune`). {hint_log}.",
            details=details,
            diagnosis=diagnosis,
        )
    return InstallFailed(
        f"{installer} failed to install the script's dependencies "
        f"(exit status {outcome.returncode})",
        hint=f"See the installer's messages above; run with -v to see everything. {hint_log}.",
        details=details,
        diagnosis=diagnosis,
    )


def _requires_python_of_pip() -> str:
    """Requires-Python of the pip runner drives, read from its METADATA beside it
    (importlib.metadata would cost a cold run ~20 ms of imports)."""
    import importlib.util

    spec = importlib.util.find_spec("pip")
    if spec is not None and spec.origin is not None:
        site = os.path.dirname(os.path.dirname(spec.origin))
        dist = records.find_distribution(site, "pip")
        if dist is not None:
            return dist.requires_python
    from importlib.metadata import metadata  # pip installed some other way (an egg)

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
    """Turns uv's output lines (each says a phase is done) into the phase that follows.
    uv does not compile bytecode here: runner does that as a build step of its own."""

    def __init__(self, reporter: Reporter):
        self.reporter = reporter

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


def _report_choice(reporter: Reporter, installer: str, why: str, handoff: Handoff) -> None:
    reporter.detail(f"installer: {installer} ({why})")
    reporter.detail(f"index configuration: {redact_text(handoff.description)}")


class PipInstaller:
    """runner's own pip driving the new environment with `pip --python` (no pip inside it).

    Reads pip's own configuration (pip.conf, PIP_* variables) as pip always does.
    """

    name = "pip"

    def __init__(self, why: str = "requested"):
        self.why = why

    def needs_seed(self, interpreter: Interpreter) -> bool:
        # `pip --python` runs this pip's code under the target interpreter: a Python of the
        # version this pip runs on now is one it supports (no `packaging` needed to say so).
        if interpreter.version.split(".")[:2] == [str(v) for v in sys.version_info[:2]]:
            return False
        from packaging.specifiers import SpecifierSet

        supported = SpecifierSet(_requires_python_of_pip())
        return not supported.contains(interpreter.version_obj, prereleases=True)

    def handoff(self, request: InstallRequest) -> Handoff:
        return pip_handoff(request.index)

    def command(self, request: InstallRequest, requirements_file: Path) -> list[str]:
        runner_file = _pip_runner()
        if request.seeded:
            cmd = [request.python, "-m", "pip"]
        elif runner_file is not None:
            # What `pip --python ENV` does, minus starting pip once more under our own
            # interpreter just to re-execute it: run this pip's code under ENV's Python.
            cmd = [request.python, runner_file]
        else:
            cmd = [sys.executable, "-m", "pip", "--python", request.python]
        # Bytecode is compiled afterwards, on every core (runner.bytecode).
        cmd += ["install", "--no-input", "--no-warn-script-location", "--no-compile"]
        cmd += ["--disable-pip-version-check", "--progress-bar", "off"]
        if request.offline:
            cmd.append("--no-index")
        if request.exclude_newer:
            cmd += ["--uploaded-prior-to", request.exclude_newer]
        if request.refresh:
            cmd += ["--upgrade", "--no-cache-dir"]
        return [*cmd, "-r", str(requirements_file), *pinned_args(request)]

    def install(self, request: InstallRequest, *, log_path: Path, reporter: Reporter) -> None:
        reporter.step("resolving")
        handoff = self.handoff(request)
        _report_choice(reporter, self.name, self.why, handoff)
        env = proc.child_env(handoff.env)
        env.pop("PIP_PYTHON", None)  # pip would re-execute itself under that interpreter
        # pip's own modules run under the environment's Python; with this set, a Python
        # other than runner's own would recompile all of pip from source on every build
        # (about a second). The environment is compiled afterwards either way.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        lines = requirement_lines(request, handoff)
        with private_requirements(lines, request.scratch) as requirements:
            outcome = proc.run(
                self.command(request, requirements),
                env=env,
                log_path=log_path,
                stream=reporter.verbose,
                on_line=PipProgress(reporter),
                meanwhile=request.meanwhile,
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
    return _find_uv()[0]


def _find_uv() -> tuple[str | None, str]:
    """The uv binary and where it was found ("runner[uv]" or "PATH")."""
    try:
        from uv import find_uv_bin  # type: ignore[import-not-found,unused-ignore]

        found = str(find_uv_bin())
    except (ImportError, FileNotFoundError, OSError):
        found = ""
    if found and os.access(found, os.X_OK):
        return found, "runner[uv]"
    on_path = shutil.which("uv")
    return on_path, "PATH"


class UvInstaller:
    """`uv pip install --python ENV` into an unseeded environment, or `--prefix ENV
    --python BASE` where the request allows it (the scripts are then pointed at ENV's
    interpreter, `records.repoint_scripts`).

    Gets pip's index configuration unless uv's own index configuration is present.
    """

    name = "uv"

    def __init__(self, uv: str, why: str = "requested"):
        self.uv = uv
        self.why = why

    def needs_seed(self, interpreter: Interpreter) -> bool:
        return False  # uv installs into any Python >= 3.8 from outside

    def handoff(self, request: InstallRequest) -> Handoff:
        return uv_handoff(request.index)

    def command(self, request: InstallRequest, requirements_file: Path) -> list[str]:
        # No --compile-bytecode: runner compiles afterwards, as for pip (runner.bytecode).
        if request.base_python is not None and request.prefix is not None:
            # The same layout as `--python ENV` ("as if a virtual environment were present
            # at that location"); what the base has installed does not count as installed.
            target = ["--prefix", str(request.prefix), "--python", request.base_python]
        else:
            target = ["--python", request.python]
        cmd = [self.uv, "pip", "install", *target]
        if request.offline:
            cmd.append("--offline")
        if request.exclude_newer:
            cmd += ["--exclude-newer", request.exclude_newer]
        if request.refresh:
            # uv refuses --refresh offline (it cannot refetch); --upgrade still applies.
            offline = request.offline or os.environ.get("UV_OFFLINE", "").lower() in _TRUE
            cmd += ["--upgrade"] if offline else ["--refresh", "--upgrade"]
        return [*cmd, "-r", str(requirements_file), *pinned_args(request)]

    def install(self, request: InstallRequest, *, log_path: Path, reporter: Reporter) -> None:
        progress = UvProgress(reporter)
        progress.start()
        handoff = self.handoff(request)
        _report_choice(reporter, self.name, self.why, handoff)
        lines = requirement_lines(request, handoff)
        with private_requirements(lines, request.scratch) as requirements:
            outcome = proc.run(
                self.command(request, requirements),
                env=proc.child_env(handoff.env),
                log_path=log_path,
                stream=reporter.verbose,
                on_line=progress,
                meanwhile=request.meanwhile,
            )
        if not outcome.ok:
            raise failure(outcome, "uv", log_path)
        if request.base_python is not None and request.prefix is not None:
            moved = records.repoint_scripts(request.prefix, request.base_python, request.python)
            if moved:
                reporter.detail(
                    f"pointed {_plural(len(moved), 'script')} at the environment's interpreter"
                )


INSTALLER_CHOICES = ("pip", "uv", "auto")


def get_installer(name: str | None) -> Installer:
    """The installer named by --installer / RUNNER_INSTALLER: auto (the default: uv when it
    is available, else pip), pip or uv. The installer's `why` says how it was chosen."""
    choice = (name or "auto").strip().lower()
    if choice == "pip":
        return PipInstaller("requested with --installer pip or RUNNER_INSTALLER")
    if choice in ("uv", "auto"):
        uv, where = _find_uv()
        if uv is not None:
            how = (
                "default when uv is available"
                if choice == "auto"
                else "requested with --installer uv or RUNNER_INSTALLER"
            )
            return UvInstaller(uv, f"found at {uv} via {where}; {how}")
        if choice == "auto":
            return PipInstaller(
                "default: uv is not available (install runner[uv] or put uv on PATH to use it)"
            )
        raise InstallError(
            "the uv installer was requested but uv is not installed",
            hint="Install it with `pip install 'runner[uv]'` (or put `uv` on PATH), or use "
            "--installer pip or auto.",
        )
    raise InstallError(f"unknown installer {choice!r}", hint="Use --installer pip, uv or auto.")


def describe_requirements(requirements: Sequence[str]) -> str:
    if not requirements:
        return "no dependencies"
    shown = ", ".join(redact_text(r) for r in requirements[:4])
    more = f" and {len(requirements) - 4} more" if len(requirements) > 4 else ""
    return shown + more

"""Find Python interpreters, probe and cache their identity, and pick one for a script.

How the interpreter is chosen (`select`):

* An explicit choice wins: `--python`, else the `RUNNER_PYTHON` variable. It may be a path
  (`/usr/bin/python3.12`, `./venv/bin/python`), a version (`3.12`, `python3.12`, `3.12.1`),
  a specifier (`>=3.12`, `>=3.11,<3.13`) or a command name on PATH (`pypy3`). A version or
  specifier picks the highest discovered interpreter that matches it and the script's
  `requires-python`. An explicit choice that contradicts `requires-python` is an error.
* Otherwise the script runs on the interpreter runner itself runs on, as `python script.py`
  would, when it satisfies the script's `requires-python` (or there is none); nothing is
  discovered then. Adding `requires-python = ">=3.9"` to a script does not move it to
  another Python.
* Otherwise the highest discovered interpreter that satisfies `requires-python` (final
  releases preferred over pre-releases).

Discovery looks at runner's own interpreter, `python3` and `python3.X` in every PATH
directory (pyenv/asdf `shims` directories are skipped: shims are not interpreters), pyenv
(`$PYENV_ROOT` or `~/.pyenv`), asdf, mise and uv installation folders, the usual system
folders and, on Windows, the `py` launcher. Every candidate is probed at most once per
change of its file: the probe result is cached in the runner cache keyed by path, size and
mtime, so repeated cold runs do not start interpreters again. runner's own interpreter is
never started for this: the probe's function runs in-process.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import InterpreterError
from runner.fsutil import atomic_write_text
from runner.hashing import sha256_hex
from runner.options import is_path_value
from runner.values import dataclass

if TYPE_CHECKING:  # `packaging` is imported where a version or specifier is compared
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

# Runs under the *target* interpreter, which may be old: keep it Python 2.7/3.x compatible.
# `-E -s -S` rather than `-I` (2.7 lacks it); the current directory is dropped from sys.path
# before anything is imported so a stray json.py there cannot answer for the interpreter.
# runner's own interpreter runs the same function in-process (`_own_info`): one source for
# both answers, so they cannot drift apart.
_PROBE_FUNCTION = r"""
def _runner_probe():
    import os, platform, sys, sysconfig
    impl = sys.implementation.name if hasattr(sys, "implementation") else "cpython"
    iv = sys.version_info
    markers = {
        "implementation_name": impl,
        "implementation_version": "%d.%d.%d" % (iv[0], iv[1], iv[2]),
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }
    # What names and heads its .pyc files: the cache tag and the magic number
    # (runner.pycindex); the frozen module is loaded in every Python 3: no import.
    try:
        import _frozen_importlib_external as external
        bytecode = [sys.implementation.cache_tag or "", external.MAGIC_NUMBER.hex()]
    except Exception:
        bytecode = ["", ""]
    return {
        "executable": sys.executable,
        "real_path": os.path.realpath(sys.executable),
        "implementation": impl,
        "version": platform.python_version(),
        "sys_version": sys.version,
        "platform": sysconfig.get_platform(),
        "soabi": sysconfig.get_config_var("SOABI") or "",
        "pointer_size": 64 if sys.maxsize > 2**32 else 32,
        "markers": markers,
        "bytecode": bytecode,
    }
"""
_PROBE = (
    "import sys\nsys.path = [p for p in sys.path if p]\nimport json\n"
    + _PROBE_FUNCTION
    + 'sys.stdout.write("RUNNER-PROBE " + json.dumps(_runner_probe()) + "\\n")\n'
)
_PROBE_MARK = "RUNNER-PROBE "

PROBE_FORMAT = 3  # 3: the bytecode cache tag and magic number
# An interpreter that has not answered by then is reported, not waited for forever.
PROBE_TIMEOUT = 30.0


class ProbeTimeout(InterpreterError):
    """The interpreter did not answer in time: possibly a passing load, so never cached."""


# The oldest target runner can build environments for: virtualenv still creates them and
# pip can be put inside (virtualenv's seeder from 3.9, the interpreter's ensurepip on 3.8).
MIN_TARGET = (3, 8)
SUPPORTED_TARGETS = "Python 3.8 and newer"

# Variables that change what discovery finds; the warm path compares them.
DISCOVERY_VARS = (
    "PATH",
    "HOME",
    "PYENV_ROOT",
    "ASDF_DATA_DIR",
    "MISE_DATA_DIR",
    "XDG_DATA_HOME",
    "UV_PYTHON_INSTALL_DIR",
)

# Patterns for discovery and version choices: compiled (and cached by `re`) when used.
if sys.platform == "win32":
    _EXE_RE = r"(?i)^python(3(\.\d+)?)?\.exe$"
    SYSTEM_DIRS: tuple[str, ...] = ()
else:
    _EXE_RE = r"^python3(\.\d+)?$"
    SYSTEM_DIRS = ("/usr/local/bin", "/usr/bin", "/opt/homebrew/bin", "/opt/local/bin")

_VERSION_RE = r"(?i)^(?:python|py|cpython)?-?(\d+(?:\.\d+){0,2})$"


@dataclass(frozen=True)
class Interpreter:
    """What runner needs to know about a Python: where it is and exactly what it is."""

    path: str
    real_path: str
    implementation: str
    version: str
    sys_version: str
    platform: str
    soabi: str
    markers: tuple[tuple[str, str], ...]
    # `sys.implementation.cache_tag` and the bytecode magic number (hex); "" if unknown.
    cache_tag: str = ""
    magic: str = ""

    @property
    def version_obj(self) -> Version:
        from packaging.version import Version

        return Version(self.version)

    @property
    def marker_env(self) -> dict[str, str]:
        return dict(self.markers)

    @property
    def supported(self) -> bool:
        """Whether runner can build environments for this interpreter."""
        release = re.match(r"[0-9]+(?:\.[0-9]+)*", self.version)  # without packaging
        if release is None:
            return self.version_obj.release[:2] >= MIN_TARGET
        return tuple(int(part) for part in release.group().split("."))[:2] >= MIN_TARGET

    def identity(self) -> dict[str, str]:
        """The fields that make environments built on this interpreter differ (for the key)."""
        return {
            "implementation": self.implementation,
            "version": self.version,
            "sys_version": self.sys_version,
            "platform": self.platform,
            "soabi": self.soabi,
            "real_path": self.real_path,
        }

    def describe(self) -> str:
        return f"{self.implementation} {self.version} ({self.path})"


@dataclass(frozen=True)
class Selection:
    """The chosen interpreter and what the warm path must re-check to trust the choice."""

    interpreter: Interpreter
    # Paths whose (mtime, size) must be unchanged and variables whose value must match
    # for the warm path to reuse this choice without asking again.
    stat_checks: tuple[str, ...]
    var_checks: tuple[str, ...] = ()
    # Why this interpreter, for `runner show`.
    reason: str = ""


# --------------------------------------------------------------------------- probing


def _probe_cache_file(cache_root: Path, path: str) -> Path:
    name = sha256_hex(path.encode("utf-8", "surrogateescape")) + ".json"
    return cache_root / "interpreters" / name


def probe(path: str, cache_root: Path | None = None) -> Interpreter:
    """Run `path` once to learn its identity; cached by path, size and mtime.

    A failed probe is cached as well (as its error), so a broken `python3` on PATH is not
    started again on every cold run.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InterpreterError(
            f"Python interpreter not found: {path} ({exc.strerror})",
            hint="Pass an existing interpreter with --python, or install that Python.",
        ) from None
    real = os.path.realpath(path)
    try:
        real_st = os.stat(real)
    except OSError:
        real_st = st
    if _is_running(real, real_st):
        # The interpreter running runner: asking it costs no process (nor a cache file).
        return _from_probe(path, _own_info(path, real))
    stamp = [PROBE_FORMAT, real, real_st.st_size, real_st.st_mtime_ns, st.st_mtime_ns]
    cache_file = _probe_cache_file(cache_root, path) if cache_root is not None else None
    if cache_file is not None:
        try:
            cached = json.loads(cache_file.read_text(encoding="utf-8"))
            if cached.get("stamp") == stamp:
                if "error" in cached:
                    error = cached["error"]
                    raise InterpreterError(
                        str(error["message"]), hint=error.get("hint"), details=error.get("details")
                    )
                return _from_probe(path, cached["info"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
    try:
        info = _run_probe(path)
    except ProbeTimeout:
        raise
    except InterpreterError as exc:
        _store(
            cache_file,
            {
                "stamp": stamp,
                "error": {"message": exc.message, "hint": exc.hint, "details": exc.details},
            },
        )
        raise
    _store(cache_file, {"stamp": stamp, "info": info})
    return _from_probe(path, info)


def _store(cache_file: Path | None, data: dict[str, object]) -> None:
    if cache_file is None:
        return
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        # Not synced: a probe result cut by a power loss does not parse and is redone.
        atomic_write_text(cache_file, json.dumps(data), sync=False)
    except OSError:
        pass  # read-only cache: probing again next time is only slower


def _is_running(real: str, real_st: os.stat_result) -> bool:
    """Whether `real` (a resolved path) is the interpreter binary running this process: the
    real path of sys.executable or of its base and, where /proc tells, the very file (not
    a newer one installed over it since this process started)."""
    own = {os.path.realpath(sys.executable)}
    base = getattr(sys, "_base_executable", None)
    if base:
        own.add(os.path.realpath(base))
    if real not in own:
        return False
    try:
        running = os.stat("/proc/self/exe")
    except OSError:
        return True  # no /proc: the path is all there is to compare
    return (running.st_dev, running.st_ino) == (real_st.st_dev, real_st.st_ino)


def _own_info(path: str, real: str) -> dict[str, object]:
    """What the probe reports for the running interpreter, computed in this process by the
    probe's own function; `executable` and `real_path` are those of `path`, as a probe
    started as `path` reports them."""
    namespace: dict[str, Any] = {}
    exec(compile(_PROBE_FUNCTION, "<runner probe>", "exec"), namespace)
    info: dict[str, object] = namespace["_runner_probe"]()
    info["executable"] = path
    info["real_path"] = real
    return info


def _run_probe(path: str) -> dict[str, object]:
    from runner import proc

    try:
        outcome = proc.run(
            [path, "-E", "-s", "-S", "-c", _PROBE], env=proc.child_env(), timeout=PROBE_TIMEOUT
        )
    except OSError as exc:
        raise InterpreterError(
            f"cannot run Python interpreter {path}: {exc.strerror}",
            hint="Check that it is an executable Python, or choose another with --python.",
        ) from None
    if outcome.timed_out:
        raise ProbeTimeout(
            f"{path} did not answer within {PROBE_TIMEOUT:.0f} s when asked for its version",
            hint="Check that it is a working Python, or choose another with --python.",
        )
    if outcome.returncode < 0:
        # Killed by a signal (a segfault, an abort): it will crash again; cached like a
        # failure, so it is not started again until the file changes.
        raise InterpreterError(
            f"{path} crashed with {_signal_name(-outcome.returncode)} when asked for its version",
            hint="Check that it is a working Python (reinstall it), or choose another with "
            "--python.",
            details="\n".join(outcome.output.strip().splitlines()[-5:]) or None,
        )
    lines = [line for line in outcome.output.splitlines() if line.startswith(_PROBE_MARK)]
    if not outcome.ok or not lines:
        tail = "\n".join(outcome.output.strip().splitlines()[-5:])
        raise InterpreterError(
            f"{path} does not look like a working Python interpreter",
            hint="Choose another with --python.",
            details=tail or None,
        )
    from packaging.version import InvalidVersion, Version

    try:
        info = json.loads(lines[-1][len(_PROBE_MARK) :])
        Version(str(info["version"]))
        assert isinstance(info["markers"], dict)
    except (ValueError, KeyError, TypeError, AssertionError, InvalidVersion):
        raise InterpreterError(f"{path} did not report its identity as a Python would") from None
    return info  # type: ignore[no-any-return]


def _signal_name(number: int) -> str:
    import signal

    try:
        return f"signal {number} ({signal.Signals(number).name})"
    except ValueError:
        return f"signal {number}"


def _from_probe(path: str, info: dict[str, object]) -> Interpreter:
    markers = info["markers"]
    assert isinstance(markers, dict)
    return Interpreter(
        path=path,
        real_path=str(info["real_path"]),
        implementation=str(info["implementation"]),
        version=str(info["version"]),
        sys_version=str(info["sys_version"]),
        platform=str(info["platform"]),
        soabi=str(info["soabi"]),
        markers=tuple(sorted((str(k), str(v)) for k, v in markers.items())),
        **_bytecode_identity(info.get("bytecode")),
    )


def _bytecode_identity(value: object) -> dict[str, str]:
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return {"cache_tag": value[0], "magic": value[1]}
    return {}


def current_python() -> str:
    """The interpreter runner itself runs on (resolved out of any virtual environment)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return base if os.path.exists(base) else sys.executable


# --------------------------------------------------------------------------- discovery


@dataclass(frozen=True)
class Discovery:
    """What discovery found: usable interpreters in preference order, and what it looked at."""

    interpreters: tuple[Interpreter, ...]
    # Directories whose listing discovery read: a new or removed Python changes their mtime.
    scanned: tuple[str, ...]
    broken: tuple[str, ...] = ()


def _home() -> str:
    return os.path.expanduser("~")


def _is_shim_dir(directory: str) -> bool:
    """pyenv/asdf shims and the Windows Store's app aliases only forward or advertise."""
    name = os.path.basename(os.path.normpath(directory))
    return name == "shims" or (sys.platform == "win32" and name.lower() == "windowsapps")


def _pythons_in(directory: str) -> list[str]:
    """`python3` and `python3.X` in a directory, newest-named first."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    found = [n for n in names if re.match(_EXE_RE, n)]

    def order(name: str) -> tuple[int, ...]:
        digits = re.findall(r"\d+", name)
        return tuple(-int(d) for d in digits) + (0,) * (3 - len(digits))

    out = []
    for name in sorted(found, key=order):
        path = os.path.join(directory, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            out.append(path)
    return out


def _install_roots() -> list[str]:
    """Folders whose subfolders are Python installations (pyenv, asdf, mise, uv)."""
    home = _home()
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    env = os.environ.get
    return [
        os.path.join(env("PYENV_ROOT") or os.path.join(home, ".pyenv"), "versions"),
        os.path.join(env("ASDF_DATA_DIR") or os.path.join(home, ".asdf"), "installs", "python"),
        os.path.join(env("MISE_DATA_DIR") or os.path.join(data, "mise"), "installs", "python"),
        os.environ.get("UV_PYTHON_INSTALL_DIR") or os.path.join(data, "uv", "python"),
    ]


def candidate_paths() -> tuple[list[str], list[str]]:
    """Paths worth probing, in preference order, and the directories that were listed."""
    paths: list[str] = [current_python()]
    scanned: list[str] = []
    seen: set[str] = set()  # real paths: /bin and /usr/bin are often one folder

    def scan(directory: str) -> None:
        real = os.path.realpath(directory)
        if real in seen or not os.path.isdir(directory):
            return
        seen.add(real)
        scanned.append(directory)
        paths.extend(_pythons_in(directory))

    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry and os.path.isabs(entry) and not _is_shim_dir(entry):
            scan(os.path.normpath(entry))
    for root in _install_roots():
        try:
            versions = sorted(os.listdir(root), reverse=True)
        except OSError:
            continue
        scanned.append(root)
        for version in versions:
            install = os.path.join(root, version)
            scan(install if sys.platform == "win32" else os.path.join(install, "bin"))
    for directory in SYSTEM_DIRS:
        scan(directory)
    if sys.platform == "win32":
        paths.extend(_py_launcher_paths())
    return paths, scanned


def _py_launcher_paths() -> list[str]:
    """Interpreters the Windows `py` launcher knows (`py -0p`)."""
    from runner import proc

    launcher = shutil.which("py")
    if launcher is None:
        return []
    try:
        outcome = proc.run([launcher, "-0p"], env=proc.child_env())
    except OSError:
        return []
    found = []
    for line in outcome.output.splitlines():
        match = re.search(r"([A-Za-z]:\\.*?\.exe)\s*$", line.strip())
        if match:
            found.append(match.group(1))
    return found


def discover(cache_root: Path | None) -> Discovery:
    """Probe every candidate (cached) and return the distinct interpreters found."""
    paths, scanned = candidate_paths()
    seen_real: set[str] = set()
    seen_identity: set[str] = set()
    found: list[Interpreter] = []
    broken: list[str] = []
    for path in paths:
        real = os.path.realpath(path)
        if real in seen_real:
            continue
        seen_real.add(real)
        try:
            interpreter = probe(path, cache_root)
        except InterpreterError:
            broken.append(path)
            continue
        identity = json.dumps(interpreter.identity(), sort_keys=True)
        if identity in seen_identity:
            continue  # a wrapper or second name of one already found
        seen_identity.add(identity)
        found.append(interpreter)
    return Discovery(interpreters=tuple(found), scanned=tuple(scanned), broken=tuple(broken))


def best(interpreters: Iterable[Interpreter], spec: SpecifierSet | None) -> Interpreter | None:
    """The highest supported version satisfying `spec`; final releases beat pre-releases.

    Ties keep discovery order (runner's own interpreter first, then PATH order).
    """
    matching = [
        i
        for i in interpreters
        if i.supported and (spec is None or spec.contains(i.version_obj, prereleases=True))
    ]
    if not matching:
        return None
    order = {id(i): n for n, i in enumerate(matching)}
    return max(
        matching, key=lambda i: (not i.version_obj.is_prerelease, i.version_obj, -order[id(i)])
    )


# --------------------------------------------------------------------------- selection


def _parse_requires(requires_python: str | None) -> SpecifierSet | None:
    if requires_python is None:
        return None
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        return SpecifierSet(requires_python)
    except InvalidSpecifier:
        raise InterpreterError(f"invalid requires-python: {requires_python!r}") from None


def _explicit_spec(choice: str) -> SpecifierSet | None:
    """`3.12` / `python3.12` / `>=3.12` as a specifier; None if it is not one."""
    match = re.match(_VERSION_RE, choice.strip())
    if match is None and not any(c in "<>=!~" for c in choice):
        return None  # a name (`pypy3`): every specifier has an operator
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    if match:
        version = match.group(1)
        parts = version.split(".")
        return SpecifierSet(f"=={version}" if len(parts) == 3 else f"=={version}.*")
    try:
        spec = SpecifierSet(choice)
    except InvalidSpecifier:
        return None
    return spec if len(spec) else None


def _unsupported(interpreter: Interpreter, source: str) -> InterpreterError:
    return InterpreterError(
        f"{source} is {interpreter.describe()}, which runner cannot build environments for: "
        f"runner supports {SUPPORTED_TARGETS}",
        hint="Choose a newer interpreter with --python, e.g. --python 3.12.",
    )


def _listing(discovery: Discovery) -> str:
    lines = []
    for i in sorted(discovery.interpreters, key=lambda i: i.version_obj, reverse=True):
        note = "" if i.supported else f"  (unsupported: runner needs {SUPPORTED_TARGETS})"
        lines.append(f"found {i.describe()}{note}")
    for path in discovery.broken:
        lines.append(f"found {path} (does not run as Python)")
    return "\n".join(lines) or "found no Python interpreters"


def _dir_checks(discovery: Discovery, chosen: Interpreter) -> tuple[str, ...]:
    return tuple(dict.fromkeys([chosen.path, chosen.real_path, *discovery.scanned]))


def select(
    requires_python: str | None,
    explicit: str | None,
    cache_root: Path | None,
    *,
    env_choice: str | None = None,
) -> Selection:
    """Pick the interpreter for a script.

    Order: explicit `--python`, else `env_choice` (RUNNER_PYTHON); else runner's own
    interpreter (what `python script.py` would use) when it satisfies `requires-python`;
    else the highest discovered interpreter satisfying it. Raises InterpreterError when the
    explicit choice breaks `requires-python`, when nothing matches (listing what was
    found), or when the chosen Python is too old for runner to build environments for.
    """
    spec = _parse_requires(requires_python)
    choice = (explicit or env_choice or "").strip() or None
    source = (f"--python {choice}" if explicit else f"RUNNER_PYTHON={choice}") if choice else ""
    wants = f"the script requires Python {requires_python}"

    # The same rule the launcher canonicalizes by: a separator or `~` makes it a path.
    if choice is not None and is_path_value(choice):
        interpreter = probe(os.path.abspath(os.path.expanduser(choice)), cache_root)
        _check_explicit(interpreter, spec, wants, source)
        checks = tuple(dict.fromkeys([interpreter.path, interpreter.real_path]))
        return Selection(interpreter=interpreter, stat_checks=checks, reason=source)

    if choice is not None:
        wanted = _explicit_spec(choice)
        if wanted is None:
            command = shutil.which(choice)
            if command is None:
                raise InterpreterError(
                    f"{source}: not a path, a version, a specifier or a command on PATH",
                    hint="Use e.g. --python 3.12, --python '>=3.11' or --python /usr/bin/python3.",
                )
            interpreter = probe(command, cache_root)
            _check_explicit(interpreter, spec, wants, source)
            checks = tuple(dict.fromkeys([interpreter.path, interpreter.real_path]))
            return Selection(
                interpreter=interpreter,
                stat_checks=checks,
                var_checks=("PATH",),
                reason=f"{source} (found on PATH)",
            )
        discovery = discover(cache_root)
        chosen = best(discovery.interpreters, wanted & spec if spec is not None else wanted)
        if chosen is None:
            only_wanted = best(discovery.interpreters, wanted)
            if only_wanted is not None and spec is not None:
                raise InterpreterError(
                    f"{wants}, but {source} selects {only_wanted.describe()}",
                    hint=f"{_drop(source)}, or choose a Python that satisfies {requires_python}.",
                )
            too_old = [
                i for i in discovery.interpreters if not i.supported and i.version_obj in wanted
            ]
            if too_old:
                raise _unsupported(too_old[0], source)
            raise InterpreterError(
                f"no installed Python matches {source}"
                + (f" and {requires_python}" if spec is not None else ""),
                hint="Install that Python (e.g. `pyenv install`, `uv python install`, your "
                "package manager), or pass its path with --python /path/to/python. "
                f"runner supports {SUPPORTED_TARGETS}.",
                details=_listing(discovery),
            )
        return Selection(
            interpreter=chosen,
            stat_checks=_dir_checks(discovery, chosen),
            var_checks=DISCOVERY_VARS,
            reason=f"the newest installed Python matching {source}"
            + (f" and requires-python {requires_python}" if spec is not None else ""),
        )

    own = probe(current_python(), cache_root)
    if spec is None or (own.supported and spec.contains(own.version_obj, prereleases=True)):
        if not own.supported:
            raise _unsupported(own, "runner's own interpreter")
        checks = tuple(dict.fromkeys([own.path, own.real_path]))
        if spec is None:
            why = "runner's own Python (the script declares no requires-python)"
        else:
            why = f"runner's own Python, which satisfies requires-python {requires_python}"
        return Selection(interpreter=own, stat_checks=checks, reason=why)

    discovery = discover(cache_root)
    chosen = best(discovery.interpreters, spec)
    if chosen is None:
        raise InterpreterError(
            f"{wants}, and no installed Python satisfies it",
            hint=f"Install a Python that satisfies {requires_python} (e.g. `pyenv install`, "
            "`uv python install`, your package manager), or pass one with "
            "--python /path/to/python.",
            details=_listing(discovery),
        )
    return Selection(
        interpreter=chosen,
        stat_checks=_dir_checks(discovery, chosen),
        var_checks=DISCOVERY_VARS,
        reason=f"the newest installed Python satisfying requires-python {requires_python}",
    )


def _drop(source: str) -> str:
    return "Drop --python" if source.startswith("--python") else "Unset RUNNER_PYTHON"


def _check_explicit(
    interpreter: Interpreter, spec: SpecifierSet | None, wants: str, source: str
) -> None:
    if spec is not None and not spec.contains(interpreter.version_obj, prereleases=True):
        raise InterpreterError(
            f"{wants}, but {source} is {interpreter.describe()}",
            hint=f"{_drop(source)} (runner then picks a matching installed Python), or "
            "choose one that satisfies the requirement.",
        )
    if not interpreter.supported:
        raise _unsupported(interpreter, source)

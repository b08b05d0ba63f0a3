"""Find Python interpreters, probe and cache their identity, and pick one for a script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from runner.errors import InterpreterError
from runner.fsutil import atomic_write_text

# Runs under the *target* interpreter, which may be old: keep it Python 2.7/3.x compatible.
_PROBE = r"""
import json, os, platform, sys, sysconfig
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
print(json.dumps({
    "executable": sys.executable,
    "real_path": os.path.realpath(sys.executable),
    "implementation": impl,
    "version": platform.python_version(),
    "sys_version": sys.version,
    "platform": sysconfig.get_platform(),
    "soabi": sysconfig.get_config_var("SOABI") or "",
    "pointer_size": 64 if sys.maxsize > 2**32 else 32,
    "markers": markers,
}))
"""

PROBE_FORMAT = 1


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

    @property
    def version_obj(self) -> Version:
        return Version(self.version)

    @property
    def marker_env(self) -> dict[str, str]:
        return dict(self.markers)

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


def _probe_cache_file(cache_root: Path, path: str) -> Path:
    from runner.spec import sha256_hex

    return cache_root / "interpreters" / (sha256_hex(path.encode("utf-8", "surrogateescape")) + ".json")


def probe(path: str, cache_root: Path | None = None) -> Interpreter:
    """Run `path` once to learn its identity; cached by path, size and mtime."""
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
    stamp = [PROBE_FORMAT, real, real_st.st_size, real_st.st_mtime_ns, st.st_mtime_ns]
    cache_file = _probe_cache_file(cache_root, path) if cache_root is not None else None
    if cache_file is not None:
        try:
            cached = json.loads(cache_file.read_text(encoding="utf-8"))
            if cached.get("stamp") == stamp:
                return _from_probe(path, cached["info"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    try:
        proc = subprocess.run(
            [path, "-I", "-S", "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except OSError as exc:
        raise InterpreterError(
            f"cannot run Python interpreter {path}: {exc.strerror}",
            hint="Check that it is an executable Python, or choose another with --python.",
        ) from None
    except subprocess.TimeoutExpired:
        raise InterpreterError(f"Python interpreter {path} did not answer within 60 s") from None
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise InterpreterError(
            f"{path} does not look like a working Python interpreter",
            hint="Choose another with --python.",
            details=tail,
        )
    try:
        info = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise InterpreterError(f"{path} did not report its identity as a Python would") from None
    if cache_file is not None:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(cache_file, json.dumps({"stamp": stamp, "info": info}))
        except OSError:
            pass  # read-only cache: probing again next time is only slower
    return _from_probe(path, info)


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
    )


def current_python() -> str:
    """The interpreter runner itself runs on (resolved out of any virtual environment)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return base if os.path.exists(base) else sys.executable


def _parse_requires(requires_python: str | None) -> SpecifierSet | None:
    if requires_python is None:
        return None
    try:
        return SpecifierSet(requires_python)
    except InvalidSpecifier:
        raise InterpreterError(f"invalid requires-python: {requires_python!r}") from None


def select(
    requires_python: str | None, explicit: str | None, cache_root: Path | None
) -> Selection:
    """Pick the interpreter for a script: an explicit choice, else runner's own Python."""
    spec = _parse_requires(requires_python)
    choice = explicit or os.environ.get("RUNNER_PYTHON") or None
    if choice is not None and ("/" in choice or os.sep in choice or os.path.exists(choice)):
        interpreter = probe(os.path.abspath(choice), cache_root)
        source = f"--python {choice}" if explicit else f"RUNNER_PYTHON={choice}"
    elif choice is not None:
        raise InterpreterError(
            f"--python {choice}: only interpreter paths are supported",
            hint="Pass the path of a Python executable, e.g. --python /usr/bin/python3.12.",
        )
    else:
        interpreter = probe(current_python(), cache_root)
        source = "runner's own interpreter"
    if spec is not None and not spec.contains(interpreter.version_obj, prereleases=True):
        raise InterpreterError(
            f"the script requires Python {requires_python}, but {source} is "
            f"{interpreter.describe()}",
            hint="Run it with a matching interpreter: runner run --python /path/to/python SCRIPT",
        )
    checks = tuple(dict.fromkeys([interpreter.path, interpreter.real_path]))
    return Selection(interpreter=interpreter, stat_checks=checks)

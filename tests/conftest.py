"""Shared fixtures: an isolated environment with no network, local wheels, and a runner helper."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO

import pytest

from tests.wheels import make_wheel

# The console script installed next to the interpreter running the tests.
RUNNER = str(Path(sys.executable).with_name("runner"))
# Nothing listens on port 9 (discard): any attempt to reach an index fails at once.
DEAD_INDEX = "http://127.0.0.1:9/simple"
PYENV = Path.home() / ".pyenv" / "versions"


def _uv_missing() -> bool:
    from runner.installers import find_uv

    return find_uv() is None


# Both installers, for @pytest.mark.parametrize("installer", INSTALLERS); uv is skipped
# where it is not installed.
INSTALLERS = [
    "pip",
    pytest.param("uv", marks=pytest.mark.skipif(_uv_missing(), reason="uv is not installed")),
]


def pyenv_python(minor: str) -> str | None:
    """Path of an installed ~/.pyenv Python X.Y, or None."""
    for candidate in sorted(PYENV.glob(f"{minor}.*"), reverse=True):
        exe = candidate / "bin" / f"python{minor}"
        if exe.exists():
            return str(exe)
    return None


@pytest.fixture(scope="session")
def shared_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Caches worth sharing between tests (virtualenv's app data only: no package caches)."""
    base = tmp_path_factory.mktemp("shared")
    return {"venv_app_data": base / "virtualenv"}


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shared_dirs: dict[str, Path]) -> Path:
    """Isolate every test from this machine's pip/uv configuration and from the network."""
    for name in list(os.environ):
        if name.startswith(("PIP_", "UV_", "RUNNER_", "VIRTUALENV_")) or name in (
            "VIRTUAL_ENV",
            "PYTHONDONTWRITEBYTECODE",
        ):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", DEAD_INDEX)
    # One retry: pip reports connection failures only when it retries.
    monkeypatch.setenv("PIP_RETRIES", "1")
    monkeypatch.setenv("PIP_TIMEOUT", "5")
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    # No UV_* index variables: runner hands pip's configuration (the dead index above) to uv,
    # as it does for users; a test that sets uv's own must also set UV_DEFAULT_INDEX.
    monkeypatch.setenv("UV_NO_CONFIG", "1")
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("VIRTUALENV_OVERRIDE_APP_DATA", str(shared_dirs["venv_app_data"]))
    monkeypatch.setenv("RUNNER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RUNNER_NO_AUTO_PRUNE", "1")
    return tmp_path


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of tiny wheels used across the suite."""
    d = tmp_path_factory.mktemp("wheelhouse")
    make_wheel(d, "alpha", "1.0")
    make_wheel(d, "beta", "1.0", requires=["alpha>=1.0"])
    make_wheel(
        d,
        "gamma",
        "1.0",
        modules={"gamma": "def main():\n    print('gamma-cli ok')\n"},
        console_scripts={"gamma-cli": "gamma:main"},
    )
    make_wheel(d, "delta", "2.0", extras={"fast": ["alpha"]})
    return d


@pytest.fixture
def offline_wheels(monkeypatch: pytest.MonkeyPatch, wheelhouse: Path) -> Path:
    """Make pip and uv install from the wheelhouse only, as a user's pip.conf find-links would."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheelhouse))  # runner hands both to uv too
    return wheelhouse


def write_script(
    path: Path, body: str, dependencies: list[str] | None = None, **extra: str
) -> Path:
    """Write a script with a metadata block (dependencies and any extra TOML keys)."""
    lines = ["# /// script"]
    for key, value in extra.items():
        lines.append(f"# {key.replace('_', '-')} = {value}")
    if dependencies is not None:
        deps = ", ".join(f'"{d}"' for d in dependencies)
        lines.append(f"# dependencies = [{deps}]")
    lines.append("# ///")
    path.write_text("\n".join(lines) + "\n" + body)
    return path


def run_runner(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    input: str | None = None,  # mirrors subprocess.run
    timeout: float = 240,
) -> subprocess.CompletedProcess[str]:
    """Run the installed `runner` console script in a real process."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run(
        [RUNNER, *args],
        env=full_env,
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _within(read: Callable[[], str], timeout: float, what: str) -> str:
    """Call a blocking `read` in a helper thread; fail (never hang) after `timeout` s."""
    box: list[str] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            box.append(read())
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(timeout)
    if errors:
        raise errors[0]
    if thread.is_alive():
        raise AssertionError(f"{what}: nothing within {timeout:.0f} s")
    return box[0]


def readline(stream: IO[str] | None, timeout: float = 120) -> str:
    """One line from a child's pipe, or an AssertionError after `timeout` seconds (the
    caller's cleanup kills the child, which ends the helper thread)."""
    assert stream is not None
    return _within(stream.readline, timeout, "reading a line from a child process")


def read_all(stream: IO[str] | IO[bytes] | None, timeout: float = 120) -> str:
    """Everything up to EOF from a child's pipe (text or bytes, decoded), within `timeout`."""
    assert stream is not None

    def read() -> str:
        data = stream.read()
        return data.decode() if isinstance(data, bytes) else data

    return _within(read, timeout, "reading a child's output")


def read_fifo(path: Path, timeout: float = 120) -> str:
    """What a writer writes into the FIFO at `path`, until it closes it, within `timeout`.

    On timeout the FIFO is opened for writing once, so the blocked reader sees EOF and its
    thread ends.
    """
    try:
        return _within(path.read_text, timeout, f"waiting for {path.name}")
    except AssertionError:
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        raise


def write_fifo(path: Path, data: str, timeout: float = 120) -> None:
    """Write `data` into the FIFO at `path` once a reader opens it, within `timeout`.

    On timeout the FIFO is opened for reading once, so the blocked writer gets through.
    """

    def write() -> str:
        with open(path, "w") as f:
            f.write(data)
        return ""

    try:
        _within(write, timeout, f"writing to {path.name}")
    except AssertionError:
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        raise


def store_dirs(cache: Path) -> list[Path]:
    store = cache / "store"
    return sorted(p for p in store.iterdir()) if store.exists() else []


def published(cache: Path) -> list[Path]:
    envs = cache / "envs"
    return sorted(p for p in envs.iterdir() if not p.name.startswith(".")) if envs.exists() else []


@pytest.fixture
def cache_dir(isolated: Path) -> Path:
    return isolated / "cache"


@pytest.fixture(scope="session", autouse=True)
def _runner_installed() -> Iterator[None]:
    if not shutil.which(RUNNER):
        pytest.exit(
            f"the runner console script is not installed at {RUNNER}; pip install -e '.[test]'"
        )
    yield


@pytest.fixture
def other_user() -> Iterator[tuple[str, int, int]]:
    """A user created for this test (name, uid, gid), removed afterwards."""
    if not (hasattr(os, "geteuid") and os.geteuid() == 0):
        pytest.skip("creating a second user with useradd needs root")
    if shutil.which("useradd") is None:
        pytest.skip("useradd is not installed")
    name = f"rt{secrets.token_hex(5)}"
    made = subprocess.run(
        ["useradd", "--no-create-home", "--user-group", "--shell", "/bin/sh", name],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"useradd failed: {made.stderr.strip()}")
    import pwd

    entry = pwd.getpwnam(name)
    try:
        yield name, entry.pw_uid, entry.pw_gid
    finally:
        subprocess.run(["userdel", name], capture_output=True, timeout=60, check=False)

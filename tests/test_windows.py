"""Windows code paths, exercised on Linux by monkeypatching: child-process execution with
Ctrl-C, pointer files instead of symlinks, retries on sharing violations, cache location
and the environment's interpreter path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import pytest

from runner import api, fsutil
from runner.cache import Cache
from tests import warmpath

K1 = "1" * 32  # environment keys
K2 = "2" * 32

pytestmark = pytest.mark.timeout(120)


def _sharing_violation() -> PermissionError:
    exc = PermissionError(13, "The process cannot access the file because it is being used")
    exc.winerror = 32  # type: ignore[attr-defined]  # set by Windows builds only
    return exc


# --------------------------------------------------------------------------- child process


class FakePopen:
    """A child whose wait() is interrupted by Ctrl-C twice before it exits with 3."""

    instances: ClassVar[list[FakePopen]] = []

    def __init__(self, cmd: list[str], env: dict[str, str]):
        self.cmd = cmd
        self.env = env
        self.interrupts = 2
        FakePopen.instances.append(self)

    def wait(self) -> int:
        if self.interrupts:
            self.interrupts -= 1
            raise KeyboardInterrupt
        return 3


def test_run_child_rides_out_ctrl_c_and_passes_status(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(api.subprocess, "Popen", FakePopen)
    FakePopen.instances.clear()
    env_dir = tmp_path / "env"
    assert api.run_child(env_dir, "s.py", ["a", "b"]) == 3
    [child] = FakePopen.instances
    assert child.interrupts == 0  # both Ctrl-C were ridden out
    python = str(env_dir / "Scripts" / "python.exe")
    assert child.cmd == [python, "s.py", "a", "b"]
    assert child.env["VIRTUAL_ENV"] == str(env_dir)
    assert child.env["PATH"].startswith(str(env_dir / "Scripts") + os.pathsep)
    assert child.env["RUNNER_DEPTH"] == "1"


def test_run_child_real_ctrl_c_reaches_the_child_which_decides(tmp_path: Path) -> None:
    """A terminal's Ctrl-C goes to the whole process group: parent and child. The parent
    must keep waiting and pass on the child's own exit status."""
    env_dir = tmp_path / "env"
    (env_dir / "bin").mkdir(parents=True)
    (env_dir / "bin" / "python").symlink_to(sys.executable)
    script = tmp_path / "child.py"
    script.write_text(
        textwrap.dedent(
            """
            import signal, sys
            try:
                print("ready", flush=True)
                signal.pause()
            except KeyboardInterrupt:
                print("child saw ctrl-c", flush=True)
                sys.exit(42)
            """
        )
    )
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, pathlib; from runner import api; "
            f"sys.exit(api.run_child(pathlib.Path({str(env_dir)!r}), {str(script)!r}, []))",
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a console would have
    )
    assert parent.stdout is not None
    assert parent.stdout.readline() == "ready\n"  # the child is running
    wchan = Path(f"/proc/{parent.pid}/wchan")
    if wchan.exists():  # and the parent is blocked waiting for it
        while wchan.read_text() not in ("do_wait", "kernel_wait4"):
            assert parent.poll() is None
    os.killpg(parent.pid, signal.SIGINT)
    out, _ = parent.communicate(timeout=60)
    assert out == "child saw ctrl-c\n"
    assert parent.returncode == 42


# --------------------------------------------------------------------------- pointer files


def test_publish_falls_back_to_pointer_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    env_dir = cache.new_build_dir(K1)
    (env_dir / warmpath.MANIFEST_NAME).write_text(json.dumps({"key": K1}))
    (env_dir / warmpath.LEASE_NAME).touch()
    (env_dir / "bin").mkdir()
    (env_dir / "bin" / "python").symlink_to(sys.executable)

    def no_symlinks(*args: Any, **kwargs: Any) -> None:
        raise OSError(1314, "A required privilege is not held by the client")

    monkeypatch.setattr(os, "symlink", no_symlinks)
    cache.publish(K1, env_dir)
    pointer = cache.envs / K1
    assert pointer.is_file() and not pointer.is_symlink()
    assert cache.pointer_target(K1) == env_dir
    assert cache.lookup(K1) == env_dir
    # Windows' readlink on a plain file is not EINVAL: the pointer file is still read.
    monkeypatch.setattr(os, "readlink", lambda p: (_ for _ in ()).throw(OSError(22, "4390")))
    assert cache.pointer_target(K1) == env_dir
    monkeypatch.setattr(os, "readlink", lambda p: (_ for _ in ()).throw(OSError(0, "not a link")))
    assert cache.pointer_target(K1) == env_dir
    # Re-publishing replaces the pointer file atomically.
    newer = cache.new_build_dir(K1)
    cache.publish(K1, newer)
    assert cache.pointer_target(K1) == newer
    assert [p.name for p in cache.envs.iterdir()] == [K1]  # no temporary left


def test_warm_alias_is_independent_of_pointer_kind(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    env_dir = cache.new_build_dir(K2)
    monkeypatch.setattr(os, "symlink", lambda *a, **k: (_ for _ in ()).throw(OSError(1314, "no")))
    cache.publish(K2, env_dir)
    cache.write_alias("d" * 64, env_dir, stat_paths=())
    # The alias names the absolute store directory, never the pointer.
    assert warmpath.read_alias(str(cache.root), "d" * 64) == str(env_dir)


# --------------------------------------------------------------------------- retries


class FlakyReplace:
    def __init__(self, failures: int):
        self.failures = failures
        self.calls = 0

    def __call__(self, src: Any, dst: Any) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise _sharing_violation()
        os.rename(src, dst)


def test_replace_retries_sharing_violations_with_backoff(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(fsutil, "_sleep", waits.append)
    flaky = FlakyReplace(failures=2)
    monkeypatch.setattr(os, "replace", flaky)
    src, dst = tmp_path / "a", tmp_path / "b"
    src.write_text("x")
    fsutil.replace_retrying(src, dst)
    assert dst.read_text() == "x" and flaky.calls == 3
    assert waits == list(fsutil.RETRY_DELAYS[:2]) and waits[0] < waits[1]
    # Other permission errors are not retried.
    monkeypatch.setattr(
        os, "replace", lambda s, d: (_ for _ in ()).throw(PermissionError(13, "no"))
    )
    with pytest.raises(PermissionError):
        fsutil.replace_retrying(dst, src)
    assert len(waits) == 2
    # A file held for good: the error surfaces after the last attempt.
    always = FlakyReplace(failures=100)
    monkeypatch.setattr(os, "replace", always)
    with pytest.raises(PermissionError):
        fsutil.replace_retrying(dst, src)
    assert always.calls == len(fsutil.RETRY_DELAYS) + 1


def test_publish_and_atomic_write_retry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(fsutil, "_sleep", lambda s: None)
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    env_dir = cache.new_build_dir("k3")
    flaky = FlakyReplace(failures=2)
    monkeypatch.setattr(os, "replace", flaky)
    cache.publish("k3", env_dir)
    assert cache.pointer_target("k3") == env_dir and flaky.calls == 3
    flaky2 = FlakyReplace(failures=2)
    monkeypatch.setattr(os, "replace", flaky2)
    fsutil.atomic_write_text(tmp_path / "f.txt", "hello")
    assert (tmp_path / "f.txt").read_text() == "hello" and flaky2.calls == 3


def test_remove_tree_retries_sharing_violations(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(fsutil, "_sleep", waits.append)
    tree = tmp_path / "env"
    (tree / "Lib").mkdir(parents=True)
    held = tree / "Lib" / "held.pyd"
    held.write_text("x")
    (tree / "other.txt").write_text("y")
    real_unlink = os.unlink
    failures = {"left": 2}

    def scanner_holds(path: Any, *args: Any, **kwargs: Any) -> None:
        if os.path.basename(path) == "held.pyd" and failures["left"]:
            failures["left"] -= 1
            raise _sharing_violation()
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", scanner_holds)
    fsutil.remove_tree(tree)
    assert not tree.exists()
    assert failures["left"] == 0 and len(waits) >= 1


# --------------------------------------------------------------------------- locations


def test_cache_root_in_localappdata(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RUNNER_CACHE_DIR", raising=False)
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "Local"))
    assert warmpath.default_cache_root() == os.path.join(str(tmp_path / "Local"), "runner", "Cache")
    monkeypatch.delenv("LOCALAPPDATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = os.path.join(os.path.expanduser("~\\AppData\\Local"), "runner", "Cache")
    assert warmpath.default_cache_root() == expected
    monkeypatch.setenv("RUNNER_CACHE_DIR", str(tmp_path / "explicit"))
    assert warmpath.default_cache_root() == str(tmp_path / "explicit")


def test_env_python_on_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    assert warmpath.env_python("C:/envs/x") == os.path.join("C:/envs/x", "Scripts", "python.exe")
    monkeypatch.setattr(sys, "platform", "linux")
    assert warmpath.env_python("/envs/x") == "/envs/x/bin/python"


def test_launcher_hands_over_where_exec_is_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """On Windows the launcher never follows an alias: the cold path runs a child."""
    from runner import alias, launcher, options
    from runner.config import Config

    script = tmp_path / "x.py"
    script.write_text("# /// script\n# dependencies = []\n# ///\n")
    calls: list[str] = []
    monkeypatch.setattr(alias, "read", lambda *a: calls.append("alias"))
    monkeypatch.setattr(launcher, "cold_run", lambda *a, **k: calls.append("cold") or 7)
    parsed = options.parse_run([str(script)])
    assert isinstance(parsed, options.ParsedRun)
    config = Config(str(tmp_path / "cache"))
    Cache(config.cache_root).ensure()
    # The same call on POSIX reaches the alias (so the assertion below can fail).
    assert launcher.run(parsed, config) == 7
    assert calls == ["alias", "alias", "cold"]
    calls.clear()
    monkeypatch.setattr(os, "name", "nt")
    assert launcher.run(parsed, config) == 7
    assert calls == ["cold"]

"""Creating environments: stdlib venv (in-process or not), uv venv, virtualenv where needed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runner import durable
from runner.interpreters import Interpreter, current_python, probe
from runner.venvs import Created, create_venv, is_own_interpreter
from tests.conftest import published, pyenv_python, run_runner, write_script

pytestmark = pytest.mark.timeout(180)

UV = str(Path(sys.executable).with_name("uv"))
needs_uv = pytest.mark.skipif(not os.access(UV, os.X_OK), reason="uv is not installed")


def need(minor: str) -> str:
    path = pyenv_python(minor)
    if path is None:
        pytest.skip(f"pyenv Python {minor} is not installed here")
    return path


def other_python() -> str:
    """An installed Python that is not the one running runner."""
    own = os.path.realpath(current_python())
    for minor in ("3.12", "3.13", "3.11", "3.10"):
        path = pyenv_python(minor)
        if path is not None and os.path.realpath(path) != own:
            return path
    pytest.skip("no pyenv Python other than runner's own is installed here")


def runs(created: Created) -> tuple[str, str]:
    """(sys.prefix, version) as the environment's interpreter reports them."""
    out = subprocess.run(
        [created.python, "-c", "import sys; print(sys.prefix); print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split("\n")
    return out[0], out[1]


def assert_empty_env(created: Created, dest: Path, interpreter: Interpreter) -> None:
    assert Path(created.python).parent.parent == dest
    prefix, version = runs(created)
    assert Path(prefix) == dest
    assert version == interpreter.version
    assert created.site_packages and all(Path(p).is_dir() for p in created.site_packages)
    for site in created.site_packages:
        assert not list(Path(site).glob("pip*")), "an unseeded environment has no pip"


def test_runners_own_interpreter_is_created_in_process(tmp_path: Path) -> None:
    interpreter = probe(current_python(), tmp_path / "probes")
    assert is_own_interpreter(interpreter)
    dest = tmp_path / "env"
    created = create_venv(interpreter, dest, seed=False)
    assert created.method == "venv (in-process)"
    assert created.fallbacks == ()
    assert_empty_env(created, dest, interpreter)
    assert not (dest / "bin" / "activate").exists()  # nobody activates a cached environment


@pytest.mark.parametrize("minor", ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"])
def test_another_interpreter_gets_its_own_stdlib_venv(tmp_path: Path, minor: str) -> None:
    interpreter = probe(need(minor), tmp_path / "probes")
    if is_own_interpreter(interpreter):
        pytest.skip("runner's own interpreter is created in-process")
    dest = tmp_path / "env"
    dest.mkdir()  # the build directory exists already, empty
    created = create_venv(interpreter, dest, seed=False)
    assert created.method == "venv"
    assert_empty_env(created, dest, interpreter)


@needs_uv
def test_uv_venv_when_uv_installs(tmp_path: Path) -> None:
    interpreter = probe(other_python(), tmp_path / "probes")
    dest = tmp_path / "env"
    dest.mkdir()
    created = create_venv(interpreter, dest, seed=False, uv=UV)
    assert created.method == "uv venv"
    assert_empty_env(created, dest, interpreter)


@pytest.mark.parametrize("minor", ["3.8", "3.9"])
def test_seeding_pip_uses_virtualenv(tmp_path: Path, minor: str) -> None:
    interpreter = probe(need(minor), tmp_path / "probes")
    created = create_venv(interpreter, tmp_path / "env", seed=True)
    assert created.method == "virtualenv"
    pip = subprocess.run(
        [created.python, "-m", "pip", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert str(tmp_path / "env") in pip.stdout


def broken_venv_python(tmp_path: Path) -> Path:
    """A wrapper around a real Python whose `venv` module fails, as on Debian without
    python3-venv; everything else is passed through. The installed Python is not touched."""
    real = other_python()
    wrapper = tmp_path / "bin" / "python3"
    wrapper.parent.mkdir(parents=True)
    wrapper.write_text(
        "#!/bin/sh\n"
        'for arg in "$@"; do\n'
        '  if [ "$arg" = venv ]; then\n'
        '    echo "The virtual environment was not created successfully because ensurepip '
        'is not available." >&2\n'
        "    exit 1\n"
        "  fi\n"
        "done\n"
        f'exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


def test_a_broken_venv_module_falls_back_to_virtualenv(tmp_path: Path) -> None:
    wrapper = broken_venv_python(tmp_path)
    interpreter = probe(str(wrapper), tmp_path / "probes")
    dest = tmp_path / "env"
    dest.mkdir()
    created = create_venv(interpreter, dest, seed=False)
    assert created.method == "virtualenv"
    assert len(created.fallbacks) == 1
    assert created.fallbacks[0].startswith("venv: exit status 1: The virtual environment")
    assert_empty_env(created, dest, interpreter)


@needs_uv
def test_a_failing_uv_venv_falls_back_to_stdlib_venv(tmp_path: Path) -> None:
    fake_uv = tmp_path / "uv"
    # Leaves something in the destination (its last argument), then fails.
    fake_uv.write_text(
        '#!/bin/sh\nfor last; do :; done\nmkdir -p "$last/junk"\necho "error: no" >&2\nexit 2\n'
    )
    fake_uv.chmod(0o755)
    interpreter = probe(other_python(), tmp_path / "probes")
    dest = tmp_path / "env"
    dest.mkdir()
    created = create_venv(interpreter, dest, seed=False, uv=str(fake_uv))
    assert created.method == "venv"
    assert created.fallbacks == ("uv venv: exit status 2: error: no",)
    assert not (dest / "junk").exists()  # what the failed attempt left was removed
    assert_empty_env(created, dest, interpreter)


def test_a_build_with_a_broken_venv_module_still_runs_the_script(
    tmp_path: Path, cache_dir: Path, offline_wheels: Path
) -> None:
    wrapper = broken_venv_python(tmp_path)
    script = write_script(tmp_path / "s.py", "import alpha\nprint(alpha.VERSION)\n", ["alpha"])
    # With pip installing (with uv, `uv venv` creates it and never runs `-m venv`).
    result = run_runner("run", "-v", "--installer", "pip", "--python", str(wrapper), str(script))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1.0\n"
    assert "could not create the environment with venv: exit status 1" in result.stderr
    assert "created the environment with virtualenv" in result.stderr
    assert len(published(cache_dir)) == 1


# ---------------------------------------------------------------------------- durability


def test_a_build_is_flushed_with_syncfs_and_not_with_os_sync(
    tmp_path: Path, cache_dir: Path, offline_wheels: Path
) -> None:
    script = write_script(tmp_path / "s.py", "import alpha\nprint(alpha.VERSION)\n", ["alpha"])
    # os.sync() from the build would be a failure: a sitecustomize in the way makes it one.
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import os\ndef _no(*a):\n    raise SystemExit('os.sync was called')\nos.sync = _no\n"
    )
    result = run_runner("run", "-v", str(script), env={"PYTHONPATH": str(hook)})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1.0\n"
    how = "syncfs" if sys.platform.startswith("linux") else "fsync"
    assert f"flushed to disk ({how})" in result.stderr


def test_no_sync_skips_the_flush(tmp_path: Path, offline_wheels: Path) -> None:
    script = write_script(tmp_path / "s.py", "import alpha\nprint(alpha.VERSION)\n", ["alpha"])
    result = run_runner("run", "-v", str(script), env={"RUNNER_NO_SYNC": "1"})
    assert result.returncode == 0, result.stderr
    assert "flushed to disk" not in result.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="syncfs is Linux's")
def test_syncfs_works_on_a_directory_here(tmp_path: Path) -> None:
    assert durable.syncfs(tmp_path)
    assert durable.flush(tmp_path) == "syncfs"
    assert not durable.syncfs(tmp_path / "missing")


def test_without_syncfs_every_file_and_directory_is_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "env"
    (tree / "lib" / "pkg").mkdir(parents=True)
    (tree / "lib" / "pkg" / "a.py").write_text("a")
    (tree / "b.txt").write_text("b")
    (tree / "link").symlink_to(tree / "b.txt")
    (tree / "lib64").symlink_to("lib")
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(durable, "syncfs", lambda path: False)
    monkeypatch.setattr(os, "fsync", fsync)
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name the synced descriptors")
    assert durable.flush(tree) == "fsync"
    expected = {tree, tree / "lib", tree / "lib" / "pkg", tree / "lib" / "pkg" / "a.py"}
    expected.add(tree / "b.txt")
    assert sorted(synced) == sorted(str(p) for p in expected)  # each once; links not followed


def test_publishing_syncs_the_pointer_but_not_the_notes_a_power_cut_may_lose(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pointer's directory is flushed when an environment is published; the build
    lock's owner note, the `.built` record and the warm alias are not (a lost or cut one
    only costs a cold run, and their readers refuse a cut one)."""
    from runner.cache import Cache

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name the synced descriptors")
    cache = Cache(cache_dir)
    cache.ensure()
    key = "a" * 32
    env_dir = cache.new_build_dir(key)
    (env_dir / "bin").mkdir()
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with cache.build_lock(key, label="s.py", on_wait=print, on_unlockable=print):
        cache.publish(key, env_dir)
    cache.write_alias("b" * 64, env_dir, stat_paths=(str(env_dir / "bin"),))
    assert synced == [str(cache.envs)]
    assert (cache.locks / f"{key}.owner").read_text().startswith("pid ")
    assert (cache.locks / f"{key}.built").read_text().endswith(f"\t{env_dir}\n")
    assert (cache.scripts / ("b" * 64)).read_text().endswith("end\n")

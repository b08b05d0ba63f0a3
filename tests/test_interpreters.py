"""Interpreter discovery, choice for requires-python, per-interpreter environments (issue 4).

Discovery is controlled by giving each run its own PATH (a folder of links to the pyenv
Pythons installed on this machine) and a HOME / PYENV_ROOT with no installations in them.
The usual system folders are still scanned; the assertions only rely on the pyenv Pythons
being newer than whatever the system carries (3.11 here), and skip where one is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from runner import interpreters
from runner.cache import Cache
from runner.errors import EXIT_INTERPRETER, InterpreterError
from runner.interpreters import Interpreter, best, probe, select
from tests.conftest import RUNNER, pyenv_python, run_runner, store_dirs, write_script

pytestmark = pytest.mark.timeout(180)

PRINT_VERSION = "import sys\nprint('%d.%d' % sys.version_info[:2], sys.prefix)\n"


def need(minor: str) -> str:
    path = pyenv_python(minor)
    if path is None:
        pytest.skip(f"pyenv Python {minor} is not installed here")
    return path


@pytest.fixture
def pybin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH folder of our own, and a HOME without Python installations."""
    bin_dir = tmp_path / "pybin"
    bin_dir.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), "/usr/bin", "/bin"]))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PYENV_ROOT", str(home / ".pyenv"))
    for name in ("ASDF_DATA_DIR", "MISE_DATA_DIR", "XDG_DATA_HOME", "UV_PYTHON_INSTALL_DIR"):
        monkeypatch.delenv(name, raising=False)
    return bin_dir


def link(bin_dir: Path, minor: str) -> Path:
    target = bin_dir / f"python{minor}"
    target.symlink_to(need(minor))
    return target


def ran_on(proc: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    assert proc.returncode == 0, proc.stderr
    version, prefix = proc.stdout.split()
    return version, prefix


# --------------------------------------------------------------------------- choosing


def test_requires_python_runner_own_interpreter_when_it_satisfies_it(
    tmp_path: Path, pybin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As `python script.py` would: adding a requires-python it meets changes nothing."""
    link(pybin, "3.13")
    own = "{}.{}".format(*sys.version_info[:2])
    plain = write_script(tmp_path / "plain.py", PRINT_VERSION, [])
    floor = write_script(tmp_path / "floor.py", PRINT_VERSION, [], requires_python=f'">={own}"')
    assert ran_on(run_runner("run", str(plain)))[0] == own
    assert ran_on(run_runner("run", str(floor)))[0] == own
    # Chosen without discovery: only the interpreter itself must stay unchanged.
    monkeypatch.setattr(interpreters, "discover", None)  # would raise if called
    chosen = select(f">={own}", None, tmp_path / "cache")
    assert chosen.interpreter.path == interpreters.current_python()
    assert chosen.var_checks == ()
    assert str(pybin) not in chosen.stat_checks


def test_requires_python_runs_on_highest_matching(tmp_path: Path, pybin: Path) -> None:
    assert sys.version_info[:2] < (3, 12) or pytest.skip("runner itself must run on < 3.12")
    link(pybin, "3.12")
    link(pybin, "3.13")
    script = write_script(tmp_path / "s.py", PRINT_VERSION, [], requires_python='">=3.12"')
    assert ran_on(run_runner("run", str(script)))[0] == "3.13"
    # A narrower requirement picks the highest inside it.
    narrow = write_script(tmp_path / "n.py", PRINT_VERSION, [], requires_python='">=3.12,<3.13"')
    assert ran_on(run_runner("run", str(narrow)))[0] == "3.12"


def test_without_requires_python_runner_own_interpreter_is_used(
    tmp_path: Path, pybin: Path
) -> None:
    link(pybin, "3.13")
    script = write_script(tmp_path / "s.py", PRINT_VERSION, [])
    assert ran_on(run_runner("run", str(script)))[0] == "{}.{}".format(*sys.version_info[:2])


@pytest.mark.parametrize("choice", ["3.12", "python3.12", ">=3.10,<3.13"])
def test_explicit_version_or_specifier(tmp_path: Path, pybin: Path, choice: str) -> None:
    link(pybin, "3.12")
    link(pybin, "3.13")
    link(pybin, "3.10")
    script = write_script(tmp_path / "s.py", PRINT_VERSION, [], requires_python='">=3.10"')
    assert ran_on(run_runner("run", "--python", choice, str(script)))[0] == "3.12"
    # RUNNER_PYTHON chooses the same way; an explicit flag wins over it.
    assert ran_on(run_runner("run", str(script), env={"RUNNER_PYTHON": choice}))[0] == "3.12"
    both = run_runner("run", "--python", "3.13", str(script), env={"RUNNER_PYTHON": choice})
    assert ran_on(both)[0] == "3.13"


def test_explicit_path(tmp_path: Path, pybin: Path) -> None:
    python = need("3.10")
    script = write_script(tmp_path / "s.py", PRINT_VERSION, [])
    assert ran_on(run_runner("run", "--python", python, str(script)))[0] == "3.10"
    assert ran_on(run_runner("run", str(script), env={"RUNNER_PYTHON": python}))[0] == "3.10"


def test_conflicting_choice_is_an_error_and_script_not_run(tmp_path: Path, pybin: Path) -> None:
    link(pybin, "3.10")
    link(pybin, "3.12")
    marker = tmp_path / "ran"
    script = write_script(
        tmp_path / "s.py", f"open({str(marker)!r}, 'w').close()\n", [], requires_python='">=3.12"'
    )
    for args, env in (
        (["--python", "3.10"], {}),
        (["--python", need("3.10")], {}),
        ([], {"RUNNER_PYTHON": "3.10"}),
    ):
        proc = run_runner("run", *args, str(script), env=env)
        assert proc.returncode == EXIT_INTERPRETER, proc.stderr
        assert ">=3.12" in proc.stderr and "3.10" in proc.stderr
        assert not marker.exists()


def test_no_match_lists_what_was_found(tmp_path: Path, pybin: Path) -> None:
    link(pybin, "3.12")
    script = write_script(tmp_path / "s.py", "print('ran')\n", [], requires_python='">=3.99"')
    proc = run_runner("run", str(script))
    assert proc.returncode == EXIT_INTERPRETER
    assert proc.stdout == ""
    assert ">=3.99" in proc.stderr
    assert str(pybin / "python3.12") in proc.stderr  # the interpreters found, with versions
    assert "3.12." in proc.stderr
    assert "--python" in proc.stderr and "Install" in proc.stderr
    missing = run_runner("run", "--python", "3.98", str(script))
    assert missing.returncode == EXIT_INTERPRETER
    assert "no installed Python matches --python 3.98" in missing.stderr


@pytest.mark.parametrize("minor", ["2.7", "3.6", "3.7"])
def test_too_old_targets_get_a_clear_error(tmp_path: Path, minor: str) -> None:
    candidates = sorted((Path.home() / ".pyenv" / "versions").glob(f"{minor}.*/bin/python{minor}"))
    if not candidates:
        pytest.skip(f"pyenv Python {minor} is not installed here")
    script = write_script(tmp_path / "s.py", "print('ran')\n", [])
    proc = run_runner("run", "--python", str(candidates[-1]), str(script))
    assert proc.returncode == EXIT_INTERPRETER
    assert "runner supports Python 3.8 and newer" in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("minor", ["3.9", "3.8"])
def test_old_target_works_via_seeded_pip(tmp_path: Path, offline_wheels: Path, minor: str) -> None:
    python = need(minor)
    script = write_script(
        tmp_path / "s.py",
        "import alpha, sys\nprint('%d.%d' % sys.version_info[:2], alpha.VERSION)\n",
        ["alpha"],
    )
    proc = run_runner("run", "--python", python, str(script))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [minor, "1.0"]


# ------------------------------------------------------------- caching and the warm path


def test_probes_are_cached_across_cold_runs(tmp_path: Path, pybin: Path) -> None:
    log = tmp_path / "invocations.log"
    wrapper = pybin / "python3.12"
    wrapper.write_text(f'#!/bin/sh\necho "$1 $2 $3" >> {log}\nexec {need("3.12")} "$@"\n')
    wrapper.chmod(0o755)
    script = write_script(tmp_path / "s.py", PRINT_VERSION, [], requires_python='">=3.12"')
    assert ran_on(run_runner("run", str(script)))[0] == "3.12"
    first = log.read_text().splitlines()
    assert first.count("-E -s -S") == 1  # probed exactly once
    # Cold again (no warm path), then warm: the wrapper is never started again.
    assert ran_on(run_runner("run", str(script), env={"RUNNER_NO_FASTPATH": "1"}))[0] == "3.12"
    assert ran_on(run_runner("run", str(script)))[0] == "3.12"
    assert log.read_text().splitlines() == first


def test_new_python_in_a_scanned_folder_is_noticed(tmp_path: Path, pybin: Path) -> None:
    link(pybin, "3.12")
    script = write_script(tmp_path / "s.py", PRINT_VERSION, [], requires_python='">=3.12"')
    assert ran_on(run_runner("run", str(script)))[0] == "3.12"
    assert ran_on(run_runner("run", str(script)))[0] == "3.12"  # warm
    link(pybin, "3.13")  # installing a newer Python changes the folder's mtime
    assert ran_on(run_runner("run", str(script)))[0] == "3.13"


def test_selection_checks(tmp_path: Path, pybin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    link(pybin, "3.12")
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "python3.13").symlink_to(need("3.13"))
    monkeypatch.setenv("PATH", os.pathsep.join([str(shims), str(pybin)]))
    monkeypatch.setattr(interpreters, "SYSTEM_DIRS", ())
    root = tmp_path / "cache"
    chosen = select(">=3.12", None, root)
    # The shim folder is not an interpreter folder: 3.13 there is not seen.
    assert chosen.interpreter.version.startswith("3.12.")
    assert chosen.interpreter.path == str(pybin / "python3.12")
    assert str(pybin) in chosen.stat_checks and str(shims) not in chosen.stat_checks
    assert chosen.interpreter.real_path in chosen.stat_checks
    assert "PATH" in chosen.var_checks
    # An explicit path is trusted on its own stat; no folders, no variables.
    explicit = select(None, need("3.13"), root)
    assert explicit.var_checks == ()
    assert set(explicit.stat_checks) == {need("3.13"), os.path.realpath(need("3.13"))}
    # No requires-python, no choice: runner's own interpreter, no discovery.
    own = select(None, None, root)
    assert own.interpreter.path == interpreters.current_python()


def test_explicit_choice_forms(
    tmp_path: Path, pybin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    link(pybin, "3.12")
    link(pybin, "3.13")
    monkeypatch.setattr(interpreters, "SYSTEM_DIRS", ())
    root = tmp_path / "cache"
    assert select(None, "3.12", root).interpreter.version.startswith("3.12.")
    assert select(None, "python3.13", root).interpreter.version.startswith("3.13.")
    assert select(None, "3", root).interpreter.version.startswith("3.13.")
    assert select(">=3", "<3.13", root).interpreter.version.startswith("3.12.")
    # RUNNER_PYTHON reaches select through the settings value; --python wins over it.
    assert select(None, None, root, env_choice="3.12").interpreter.version.startswith("3.12.")
    assert select(None, "3.13", root, env_choice="3.12").interpreter.version.startswith("3.13.")
    with pytest.raises(InterpreterError, match="not a path, a version"):
        select(None, "no-such-python-anywhere", root)
    with pytest.raises(InterpreterError, match=r"requires Python >=3\.13, but --python 3\.12"):
        select(">=3.13", "3.12", root)


def _fake(version: str, path: str) -> Interpreter:
    return Interpreter(path, path, "cpython", version, version, "linux-x86_64", "", ())


def test_best_prefers_highest_final_release_then_discovery_order() -> None:
    found = [
        _fake("3.11.2", "a"),
        _fake("3.13.0rc1", "b"),
        _fake("3.12.1", "c"),
        _fake("3.12.1", "d"),
        _fake("3.7.1", "e"),
    ]
    assert best(found, None).path == "c"  # type: ignore[union-attr]
    assert best(found, SpecifierSet(">=3.12.5")).path == "b"  # type: ignore[union-attr]
    assert best(found, SpecifierSet("<3.8")) is None  # 3.7 is too old to build for
    assert best(found, SpecifierSet("<3.12")).path == "a"  # type: ignore[union-attr]


def test_failed_probe_is_cached_and_reported(tmp_path: Path) -> None:
    log = tmp_path / "log"
    fake = tmp_path / "python3"
    fake.write_text(f"#!/bin/sh\necho run >> {log}\necho 'not python' >&2\nexit 3\n")
    fake.chmod(0o755)
    for _ in range(2):
        with pytest.raises(InterpreterError, match="does not look like a working Python"):
            probe(str(fake), tmp_path / "cache")
    assert log.read_text().splitlines() == ["run"]


def test_own_interpreter_is_known_in_process_exactly_as_the_probe_reports_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every name of the running interpreter: its base, the venv's python, a link to it.
    alias = tmp_path / "python-link"
    alias.symlink_to(interpreters.current_python())
    names = [interpreters.current_python(), sys.executable, str(alias)]
    started = {path: interpreters._run_probe(path) for path in names}  # a real process each
    for path in names:
        real = os.path.realpath(path)
        assert interpreters._own_info(path, real) == started[path], path

    # probe() then starts no process and writes no cache file for them.
    def no_process(path: str) -> dict[str, object]:
        raise AssertionError(f"{path} was started")

    monkeypatch.setattr(interpreters, "_run_probe", no_process)
    cache_root = tmp_path / "cache"
    for path in names:
        assert probe(path, cache_root) == interpreters._from_probe(path, started[path])
    assert not (cache_root / "interpreters").exists()


def test_another_interpreter_is_still_probed_in_a_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = next((p for p in map(pyenv_python, ("3.12", "3.13", "3.10")) if p is not None), None)
    if other is None or os.path.realpath(other) == os.path.realpath(interpreters.current_python()):
        pytest.skip("needs a second Python")
    started: list[str] = []
    real_run = interpreters._run_probe

    def counting(path: str) -> dict[str, object]:
        started.append(path)
        return real_run(path)

    monkeypatch.setattr(interpreters, "_run_probe", counting)
    cache_root = tmp_path / "cache"
    assert probe(other, cache_root).version == probe(other, cache_root).version
    assert started == [other]  # probed once, then from the cache file
    assert len(list((cache_root / "interpreters").iterdir())) == 1


# --------------------------------------------------------------------------- per-interpreter envs


def test_two_interpreters_concurrently_on_one_script(tmp_path: Path, pybin: Path) -> None:
    link(pybin, "3.12")
    link(pybin, "3.13")
    meet = tmp_path / "meet"
    meet.mkdir()
    # Each run announces itself, waits until the other is running too, then checks that its
    # own environment is still there, whole, and its own.
    body = (
        "import os, sys, time\n"
        "me = '%d.%d' % sys.version_info[:2]\n"
        f"meet = {str(meet)!r}\n"
        "open(os.path.join(meet, me), 'w').close()\n"
        "deadline = time.monotonic() + 60\n"
        "while len(os.listdir(meet)) < 2 and time.monotonic() < deadline:\n"
        "    time.sleep(0.02)\n"
        "assert len(os.listdir(meet)) == 2, 'the other run never started'\n"
        "assert os.path.exists(os.path.join(sys.prefix, 'runner-env.json'))\n"
        "print(me, sys.prefix)\n"
    )
    script = write_script(tmp_path / "s.py", body, [], requires_python='">=3.12"')
    procs = [
        subprocess.Popen(
            [RUNNER, "run", "--python", minor, str(script)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for minor in ("3.12", "3.13")
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(out.split())
    assert [r[0] for r in results] == ["3.12", "3.13"]
    assert results[0][1] != results[1][1]
    assert len(store_dirs(Path(os.environ["RUNNER_CACHE_DIR"]))) == 2


def test_vanished_interpreter(tmp_path: Path, pybin: Path) -> None:
    link(pybin, "3.12")
    copy = pybin / "python3.13"
    shutil.copy2(need("3.13"), copy)  # a real file that can vanish (its stdlib stays)
    script = write_script(tmp_path / "s.py", PRINT_VERSION, [], requires_python='">=3.12"')
    version, first_env = ran_on(run_runner("run", str(script)))
    assert version == "3.13"
    manifest = json.loads((Path(first_env) / "runner-env.json").read_text())
    key = manifest["key"]
    cache = Cache(os.environ["RUNNER_CACHE_DIR"])
    assert cache.lookup(key) == Path(first_env)
    copy.unlink()
    # The environment's python pointed at the copy: it is no longer intact.
    assert cache.lookup(key) is None
    # Discovery: rebuilt on the next best Python.
    version, env = ran_on(run_runner("run", str(script)))
    assert version == "3.12" and env != first_env
    # An explicit path that vanished: a clear error.
    proc = run_runner("run", "--python", str(copy), str(script))
    assert proc.returncode == EXIT_INTERPRETER
    assert f"Python interpreter not found: {copy}" in proc.stderr


def test_interpreter_upgraded_in_place_gets_a_new_environment(tmp_path: Path) -> None:
    python = tmp_path / "bin" / "python3"
    python.parent.mkdir()
    shutil.copy2(need("3.12"), python)
    script = write_script(tmp_path / "s.py", PRINT_VERSION, [])
    version, first_env = ran_on(run_runner("run", "--python", str(python), str(script)))
    assert version == "3.12"
    python.unlink()
    shutil.copy2(need("3.13"), python)  # same path, another Python
    version, env = ran_on(run_runner("run", "--python", str(python), str(script)))
    assert version == "3.13" and env != first_env


def test_install_folders_are_discovered(
    tmp_path: Path, pybin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyenv, asdf and mise installation folders (here holding links to real Pythons)."""
    monkeypatch.setattr(interpreters, "SYSTEM_DIRS", ())
    home = Path(os.environ["HOME"])
    layouts = {
        "pyenv": (home / ".pyenv" / "versions", "3.12"),
        "asdf": (home / ".asdf" / "installs" / "python", "3.13"),
        "mise": (home / ".local" / "share" / "mise" / "installs" / "python", "3.10"),
    }
    for root, minor in layouts.values():
        bin_dir = root / f"{minor}.0" / "bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / f"python{minor}").symlink_to(need(minor))
    found = interpreters.discover(tmp_path / "cache")
    versions = {i.version.rsplit(".", 1)[0] for i in found.interpreters}
    assert {"3.10", "3.12", "3.13"} <= versions
    for root, minor in layouts.values():
        assert str(root) in found.scanned
        assert str(root / f"{minor}.0" / "bin") in found.scanned
    chosen = select(">=3.12,<3.13", None, tmp_path / "cache")
    assert chosen.interpreter.path == str(layouts["pyenv"][0] / "3.12.0" / "bin" / "python3.12")
    assert str(layouts["pyenv"][0]) in chosen.stat_checks


def test_a_hanging_interpreter_is_reported_not_waited_for_and_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner import interpreters
    from runner.errors import InterpreterError

    hang = tmp_path / "python3"
    hang.write_text("#!/bin/sh\nexec sleep 600\n")
    hang.chmod(0o755)
    monkeypatch.setattr(interpreters, "PROBE_TIMEOUT", 0.5)
    cache_root = tmp_path / "cache"
    with pytest.raises(InterpreterError, match="did not answer"):
        interpreters.probe(str(hang), cache_root)
    # A timeout may be a passing load: nothing is remembered about it.
    assert not list((cache_root / "interpreters").glob("*.json"))


def test_a_crashing_interpreter_is_reported_with_its_signal_and_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "log"
    crash = tmp_path / "python3"
    crash.write_text(f"#!/bin/sh\necho run >> {log}\nkill -SEGV $$\n")
    crash.chmod(0o755)
    monkeypatch.setattr(interpreters, "PROBE_TIMEOUT", 60.0)
    cache_root = tmp_path / "cache"
    for _ in range(2):
        with pytest.raises(InterpreterError, match=r"crashed with signal 11 \(SIGSEGV\)") as info:
            interpreters.probe(str(crash), cache_root)
        assert "did not answer" not in info.value.message
        assert str(crash) in info.value.message
    assert log.read_text().splitlines() == ["run"]  # remembered: not started again
    # A changed file (size, mtime) is probed again.
    crash.write_text(f"#!/bin/sh\necho again >> {log}\nkill -ABRT $$\n")
    with pytest.raises(InterpreterError, match=r"SIGABRT"):
        interpreters.probe(str(crash), cache_root)
    assert log.read_text().splitlines() == ["run", "again"]


def test_a_crashing_interpreter_on_the_command_line(tmp_path: Path) -> None:
    crash = tmp_path / "python3"
    crash.write_text("#!/bin/sh\nkill -SEGV $$\n")
    crash.chmod(0o755)
    script = write_script(tmp_path / "s.py", "print(1)\n", [])
    got = run_runner("run", "--python", str(crash), str(script))
    assert got.returncode == EXIT_INTERPRETER, got.stderr
    assert "crashed with signal 11 (SIGSEGV)" in got.stderr
    assert "Traceback" not in got.stderr

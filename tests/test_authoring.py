"""Authoring commands end to end: init, add, remove, python, sync, stdin and shebang scripts."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from runner.metadata import decode_source, parse
from tests.conftest import RUNNER, run_runner, store_dirs, write_script

BIN = str(Path(sys.executable).parent)  # where the `runner` console script lives


def deps_of(path: Path) -> list[str]:
    return list(parse(decode_source(path.read_bytes(), str(path))).dependencies)


def exec_direct(
    path: Path, *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Execute a file directly (the kernel reads its shebang), with runner on PATH."""
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    return subprocess.run(
        [str(path), *args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


# --------------------------------------------------------------------------- init / add / remove


def test_init_creates_a_valid_script_and_never_overwrites(tmp_path: Path) -> None:
    script = tmp_path / "new.py"
    r = run_runner("init", str(script), "--python", "3.11", "--dep", "alpha>=1", "--dep", "beta")
    assert r.returncode == 0, r.stderr
    meta = parse(script.read_text())
    assert meta.requires_python == ">=3.11" and list(meta.dependencies) == ["alpha>=1", "beta"]
    assert not os.stat(script).st_mode & stat.S_IXUSR
    before = script.read_bytes()
    r = run_runner("init", str(script))
    assert r.returncode == 101
    assert "already exists" in r.stderr and str(script) in r.stderr
    assert script.read_bytes() == before
    # No temporary file left (the cache, RUNNER_CACHE_DIR here, holds the edit lock).
    assert [p.name for p in tmp_path.iterdir() if p.name != "cache"] == ["new.py"]


def test_init_shebang_makes_an_executable_command(tmp_path: Path) -> None:
    tool = tmp_path / "tool"
    r = run_runner("init", str(tool), "--shebang")
    assert r.returncode == 0, r.stderr
    assert tool.read_text().startswith("#!/usr/bin/env -S runner run\n# /// script\n")
    assert os.stat(tool).st_mode & stat.S_IXUSR
    r = exec_direct(tool)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Hello from a runner script!\n"


def test_init_rejects_an_invalid_requirement(tmp_path: Path) -> None:
    r = run_runner("init", str(tmp_path / "x.py"), "--dep", "no good!!")
    assert r.returncode == 2 and "invalid requirement" in r.stderr
    assert not (tmp_path / "x.py").exists()


def test_add_and_remove_edit_in_place_keeping_mode_and_bytes(tmp_path: Path) -> None:
    script = tmp_path / "s.py"
    original = (
        b"#!/usr/bin/env -S runner run\r\n"
        b"# /// script\r\n"
        b"# dependencies = [\r\n"
        b'#   "alpha",  # first\r\n'
        b"# ]\r\n"
        b"# ///\r\n"
        b"print('hi')\r\n"
    )
    script.write_bytes(original)
    script.chmod(0o750)
    r = run_runner("add", str(script), "beta>=1", "--python", "3.11")
    assert r.returncode == 0, r.stderr
    assert deps_of(script) == ["alpha", "beta>=1"]
    data = script.read_bytes()
    assert b'#   "beta>=1",\r\n' in data and b'# requires-python = ">=3.11"\r\n' in data
    assert stat.S_IMODE(os.stat(script).st_mode) == 0o750
    r = run_runner("remove", str(script), "Beta")
    assert r.returncode == 0, r.stderr
    assert deps_of(script) == ["alpha"]
    r = run_runner("remove", str(script), "gamma")
    assert r.returncode == 2 and "gamma" in r.stderr
    before = script.read_bytes()
    r = run_runner("add", str(script), "gamma", "bad req!!")
    assert r.returncode == 2 and "bad req!!" in r.stderr
    assert script.read_bytes() == before  # validated before anything was written


def test_add_to_a_missing_file_says_how_to_create_it(tmp_path: Path) -> None:
    r = run_runner("add", str(tmp_path / "nope.py"), "alpha")
    assert r.returncode == 101 and "runner init" in r.stderr


# --------------------------------------------------------------------------- python / sync


def test_python_prints_the_environment_interpreter(tmp_path: Path, offline_wheels: Path) -> None:
    script = write_script(tmp_path / "s.py", "import alpha\n", ["alpha"])
    r = run_runner("python", str(script))
    assert r.returncode == 0, r.stderr
    python = r.stdout.strip()
    assert r.stdout == python + "\n" and os.path.isabs(python)
    check = subprocess.run(
        [python, "-c", "import alpha; print(alpha.VERSION)"], capture_output=True, text=True
    )
    assert check.stdout == "1.0\n"
    # Built once: a second call finds it and says nothing.
    again = run_runner("python", str(script))
    assert again.stdout == r.stdout and again.stderr == ""


def test_sync_builds_several_without_running_and_reports_json(
    tmp_path: Path, offline_wheels: Path, cache_dir: Path
) -> None:
    marker = tmp_path / "ran"
    body = f"open({str(marker)!r}, 'w').close()\n"
    a = write_script(tmp_path / "a.py", body, ["alpha"])
    b = write_script(tmp_path / "b.py", body, ["beta"])
    c = write_script(tmp_path / "c.py", body, ["alpha"])  # same needs as a.py: same env
    r = run_runner("sync", str(a), str(b), str(c), "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert [item["script"] for item in result] == [str(a), str(b), str(c)]
    assert set(result[0]) == {"script", "python", "environment", "key"}
    assert result[0]["environment"] == result[2]["environment"] != result[1]["environment"]
    assert result[0]["key"] == result[2]["key"] != result[1]["key"]
    for item in result:
        assert Path(item["python"]).is_file()
        assert Path(item["environment"]) in store_dirs(cache_dir)
    assert not marker.exists()
    assert len(store_dirs(cache_dir)) == 2
    # The batch step after it is warm: nothing of runner's own on stderr.
    run = run_runner("run", str(b))
    assert run.returncode == 0 and run.stderr == ""
    assert marker.exists()


def test_sync_fails_before_building_when_a_script_is_missing(
    tmp_path: Path, cache_dir: Path
) -> None:
    a = write_script(tmp_path / "a.py", "", [])
    r = run_runner("sync", str(a), str(tmp_path / "missing.py"))
    assert r.returncode == 101 and "missing.py" in r.stderr
    assert store_dirs(cache_dir) == []


# --------------------------------------------------------------------------- stdin


def test_stdin_script_runs_and_is_stored_by_content(offline_wheels: Path, cache_dir: Path) -> None:
    source = (
        "# /// script\n# dependencies = ['alpha']\n# ///\n"
        "import sys, alpha\nprint('from stdin', alpha.VERSION, sys.argv[1:])\n"
    )
    r = run_runner("run", "-", "x", "--flag", input=source)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "from stdin 1.0 ['x', '--flag']\n"
    stored = list((cache_dir / "stdin").iterdir())
    assert len(stored) == 1 and stored[0].read_text() == source
    r = run_runner("run", "-", input=source)
    assert r.returncode == 0 and "building" not in r.stderr
    assert list((cache_dir / "stdin").iterdir()) == stored
    # The same metadata from a file uses the same environment.
    assert len(store_dirs(cache_dir)) == 1


def test_stdin_script_with_bad_metadata_is_reported(cache_dir: Path) -> None:
    r = run_runner("run", "-", input="# /// script\n# dependencies = 'x'\n# ///\n")
    assert r.returncode == 102 and "dependencies" in r.stderr


# --------------------------------------------------------------------------- shebang scripts


@pytest.mark.parametrize("name", ["tool.py", "tool"])
def test_shebang_scripts_run_and_are_silent_when_warm(
    tmp_path: Path, offline_wheels: Path, name: str
) -> None:
    tool = tmp_path / name
    tool.write_text(
        "#!/usr/bin/env -S runner run\n"
        "# /// script\n# dependencies = ['alpha']\n# ///\n"
        "import sys, alpha\nprint(alpha.VERSION, sys.argv[1:])\nsys.exit(3)\n"
    )
    tool.chmod(0o755)
    first = exec_direct(tool, "a b", "-v")
    assert first.returncode == 3, first.stderr
    assert first.stdout == "1.0 ['a b', '-v']\n"
    assert "building" in first.stderr
    warm = exec_direct(tool, "again")
    assert warm.returncode == 3
    assert warm.stdout == "1.0 ['again']\n"
    assert warm.stderr == ""


def test_a_script_that_starts_itself_through_runner_is_stopped(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.write_text(
        "#!/usr/bin/env -S runner run\n# /// script\n# dependencies = []\n# ///\n"
        "import os, sys\nos.execv(sys.argv[0], sys.argv)\n"
    )
    loop.chmod(0o755)
    r = exec_direct(loop)
    assert r.returncode == 101
    assert "nested 16 deep" in r.stderr and "starts itself" not in r.stdout
    nested = write_script(
        tmp_path / "nested.py",
        "import subprocess, sys\n"
        f"sys.exit(subprocess.run([{RUNNER!r}, 'run', __file__]).returncode)\n",
        [],
    )
    r = run_runner("run", str(nested), env={"RUNNER_MAX_DEPTH": "4"})
    assert r.returncode == 101
    assert r.stderr.count("nested 4 deep") == 1


def test_depth_is_passed_to_the_script(tmp_path: Path) -> None:
    script = write_script(tmp_path / "d.py", "import os\nprint(os.environ['RUNNER_DEPTH'])\n", [])
    assert run_runner("run", str(script)).stdout == "1\n"
    warm = run_runner("run", str(script), env={"RUNNER_DEPTH": "5"})
    assert warm.stdout == "6\n" and warm.stderr == ""


def test_sync_builds_the_others_when_one_fails_and_reports_both(
    tmp_path: Path, offline_wheels: Path, cache_dir: Path
) -> None:
    bad = write_script(tmp_path / "bad.py", "", ["no-such-package-xyz"])
    good = write_script(tmp_path / "good.py", "", ["alpha"])
    r = run_runner("sync", str(bad), str(good), "--json")
    assert r.returncode == 104  # the first failure's code
    result = json.loads(r.stdout)
    assert result[0]["script"] == str(bad) and "no-such-package-xyz" in result[0]["error"]
    assert result[1]["script"] == str(good) and Path(result[1]["python"]).is_file()
    assert "no-such-package-xyz" in r.stderr
    assert len(store_dirs(cache_dir)) == 1

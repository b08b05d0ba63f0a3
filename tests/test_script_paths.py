"""Scripts as people pass them: pipes and FIFOs, names that look like options, a deleted cwd."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from tests.conftest import RUNNER, run_runner, write_script

BODY = "import alpha, sys\nprint('ran', alpha.VERSION, sys.argv[1:])\n"


def test_process_substitution_is_read_once_and_run(tmp_path: Path, offline_wheels: Path) -> None:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    script = write_script(tmp_path / "s.py", BODY, ["alpha"])
    for _ in range(2):  # cold, then warm (the stored copy has its alias)
        got = subprocess.run(
            ["bash", "-c", f'"{RUNNER}" run <(cat "{script}") x'],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert (got.returncode, got.stdout) == (0, "ran 1.0 ['x']\n"), got.stderr


def test_named_fifo_is_read_once_and_run(tmp_path: Path, offline_wheels: Path) -> None:
    source = write_script(tmp_path / "s.py", BODY, ["alpha"]).read_bytes()
    fifo = tmp_path / "script.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as f:  # blocks until runner opens it, exactly once
            f.write(source)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    got = run_runner("run", str(fifo), "y", timeout=240)
    writer.join(timeout=10)
    assert not writer.is_alive()
    assert (got.returncode, got.stdout) == (0, "ran 1.0 ['y']\n"), got.stderr


def test_a_script_named_like_an_interpreter_option_runs_as_a_file(
    tmp_path: Path, offline_wheels: Path
) -> None:
    write_script(tmp_path / "-mhttp.server", "print('the file ran')\n", [])
    for _ in range(2):  # cold and warm
        got = run_runner("run", "--", "-mhttp.server", cwd=tmp_path, timeout=60)
        assert (got.returncode, got.stdout) == (0, "the file ran\n"), got.stderr


def test_a_deleted_working_directory(tmp_path: Path, offline_wheels: Path) -> None:
    script = write_script(tmp_path / "s.py", BODY, ["alpha"])
    gone = tmp_path / "gone"
    gone.mkdir()
    code = (
        "import os, subprocess, sys\n"
        f"os.chdir({str(gone)!r}); os.rmdir({str(gone)!r})\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stdout.write(r.stdout); sys.stderr.write(r.stderr); sys.exit(r.returncode)\n"
    )
    absolute = subprocess.run(
        ["python3", "-c", code, RUNNER, "run", str(script), "z"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert (absolute.returncode, absolute.stdout) == (0, "ran 1.0 ['z']\n"), absolute.stderr
    gone.mkdir()
    relative = subprocess.run(
        ["python3", "-c", code, RUNNER, "run", "s.py"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert relative.returncode == 101, relative.stderr
    assert "Traceback" not in relative.stderr
    assert "script not found: s.py" in relative.stderr

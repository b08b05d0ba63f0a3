"""PEP 751 lock files, --locked, --refresh and --offline, end to end against a local index."""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.pylock import Pylock

from tests import warmpath
from tests.conftest import RUNNER, readline, run_runner, write_fifo, write_script
from tests.wheels import make_wheel, serve_index

pytestmark = pytest.mark.timeout(180)

BODY = 'import alpha\nprint("alpha", alpha.VERSION)\n'


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    d = tmp_path / "index"
    make_wheel(d, "alpha", "1.0")
    make_wheel(d, "beta", "1.0", requires=["alpha>=1.0"])
    return d


def test_lock_file_names_follow_pep_751() -> None:
    assert warmpath.lock_path_for("dir/tool.py") == "dir/pylock.tool.toml"
    assert warmpath.lock_path_for("my.tool.py") == "pylock.my-tool.toml"
    assert warmpath.lock_path_for("tool") == "pylock.tool.toml"


def test_lock_pins_against_drift_and_refresh_takes_the_newest(
    tmp_path: Path, index_dir: Path
) -> None:
    script = write_script(tmp_path / "tool.py", BODY, ["beta"])
    with serve_index(index_dir) as (url, _):
        made = run_runner("lock", str(script), "--index-url", url)
        assert made.returncode == 0, made.stderr
        lock_path = tmp_path / "pylock.tool.toml"
        data = tomllib.loads(lock_path.read_text())
        Pylock.from_dict(data)  # validates as PEP 751
        pins = {p["name"]: p for p in data["packages"]}
        assert set(pins) == {"alpha", "beta"}  # transitive dependency included
        assert pins["alpha"]["version"] == "1.0"
        wheel = pins["alpha"]["wheels"][0]
        assert wheel["url"].endswith("/files/alpha-1.0-py3-none-any.whl")
        assert len(wheel["hashes"]["sha256"]) == 64
        assert data["tool"]["runner"]["requirements-digest"]
        assert run_runner("lock", "--check", str(script)).returncode == 0

        make_wheel(index_dir, "alpha", "2.0")  # a newer release appears: drift
        locked = run_runner("run", "--index-url", url, str(script))
        assert locked.returncode == 0, locked.stderr
        assert locked.stdout == "alpha 1.0\n"
        assert "pinned" in locked.stderr

        refreshed = run_runner("run", "--index-url", url, "--refresh", str(script))
        assert refreshed.returncode == 0, refreshed.stderr
        assert refreshed.stdout == "alpha 2.0\n"
        assert "--refresh ignores pylock.tool.toml" in refreshed.stderr

        # The refresh did not take over the locked script's warm path.
        again = run_runner("run", "--index-url", url, str(script))
        assert again.stdout == "alpha 1.0\n"

        # Re-locking picks up the new release.
        assert run_runner("lock", str(script), "--index-url", url).returncode == 0
        relocked = run_runner("run", "--index-url", url, str(script))
        assert relocked.stdout == "alpha 2.0\n", relocked.stderr


def test_locked_requires_a_current_lock(tmp_path: Path, index_dir: Path) -> None:
    marker = tmp_path / "ran"
    body = f"open({str(marker)!r}, 'w').close()\n" + BODY
    script = write_script(tmp_path / "job.py", body, ["beta"])
    with serve_index(index_dir) as (url, _):
        missing = run_runner("run", "--locked", "--index-url", url, str(script))
        assert missing.returncode == 107
        assert "no lock file" in missing.stderr and "runner lock" in missing.stderr
        assert run_runner("lock", "--check", str(script)).returncode == 107
        assert not marker.exists()

        assert run_runner("lock", str(script), "--index-url", url).returncode == 0
        ok = run_runner("run", "--locked", "--index-url", url, str(script))
        assert ok.returncode == 0, ok.stderr
        assert marker.exists()
        marker.unlink()

        # The block changes: the lock is stale.
        write_script(script, body, ["beta", "alpha<3"])
        check = run_runner("lock", "--check", str(script))
        assert check.returncode == 107 and "out of date" in check.stderr
        stale = run_runner("run", "--locked", "--index-url", url, str(script))
        assert stale.returncode == 107 and "out of date" in stale.stderr
        assert not marker.exists()

        # Without --locked: warn, resolve anew, run.
        for _ in range(2):  # the warning repeats on the next run (no warm alias)
            warned = run_runner("run", "--index-url", url, str(script))
            assert warned.returncode == 0, warned.stderr
            assert "pylock.job.toml does not match" in warned.stderr
            assert warned.stdout == "alpha 1.0\n"


def test_a_tampered_artifact_stops_the_run(tmp_path: Path, index_dir: Path) -> None:
    marker = tmp_path / "ran"
    script = write_script(
        tmp_path / "job.py", f"open({str(marker)!r}, 'w').close()\n" + BODY, ["beta"]
    )
    with serve_index(index_dir) as (url, _):
        assert run_runner("lock", str(script), "--index-url", url).returncode == 0
        # Same file name, different content, after locking.
        make_wheel(index_dir, "alpha", "1.0", modules={"alpha": "VERSION = 'evil'\n"})
        result = run_runner("run", "--index-url", url, str(script))
    assert result.returncode in (104, 107), result.stderr
    assert "alpha==1.0" in result.stderr
    assert "hash" in result.stderr.lower()
    assert not marker.exists()
    assert not (tmp_path / "cache" / "envs").exists() or not any(
        (tmp_path / "cache" / "envs").iterdir()
    )


def test_refresh_publishes_atomically_while_the_old_env_runs(
    tmp_path: Path, index_dir: Path
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    body = (
        "import sys, alpha, os\n"
        "print('first', alpha.VERSION, flush=True)\n"
        "if sys.argv[1:] == ['hold']:\n"
        f"    open({str(fifo)!r}).read()\n"
        "    import importlib; importlib.reload(alpha)\n"
        "    print('after', alpha.VERSION, os.path.exists(alpha.__file__), flush=True)\n"
    )
    script = write_script(tmp_path / "job.py", body, ["alpha"])
    with serve_index(index_dir) as (url, _):
        held = subprocess.Popen(
            [RUNNER, "run", "--index-url", url, str(script), "hold"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert readline(held.stdout) == "first 1.0\n"
            make_wheel(index_dir, "alpha", "2.0")
            refreshed = run_runner("run", "--refresh", "--index-url", url, str(script))
            assert refreshed.returncode == 0, refreshed.stderr
            assert refreshed.stdout == "first 2.0\n"
        finally:
            try:
                write_fifo(fifo, "go", timeout=60)
            except AssertionError:  # it never reached its read: the checks below fail
                held.kill()
            out, err = held.communicate(timeout=60)
        assert held.returncode == 0, err
        assert out == "after 1.0 True\n"
        # Later plain runs get the refreshed environment.
        assert run_runner("run", "--index-url", url, str(script)).stdout == "first 2.0\n"


def test_offline_cold_build_needs_local_sources(tmp_path: Path, wheelhouse: Path) -> None:
    script = write_script(tmp_path / "job.py", "import beta\nprint('ok')\n", ["beta"])
    failed = run_runner("run", "--offline", str(script))
    assert failed.returncode in (104, 105), failed.stderr
    assert "--offline" in failed.stderr and "beta" in failed.stderr
    assert "--find-links" in failed.stderr
    assert "Traceback" not in failed.stderr

    env = {"RUNNER_OFFLINE": "1"}
    ok = run_runner("run", "--find-links", str(wheelhouse), str(script), env=env)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "ok\n"


def test_warm_runs_never_touch_the_network(tmp_path: Path, index_dir: Path) -> None:
    script = write_script(tmp_path / "job.py", BODY, ["beta"])
    with serve_index(index_dir) as (url, requests):
        first = run_runner("run", "--index-url", url, str(script))
        assert first.returncode == 0, first.stderr
        assert requests
    # The server is gone: the fast path and the cold-path lookup both still work.
    assert run_runner("run", "--index-url", url, str(script)).stdout == "alpha 1.0\n"
    slow = run_runner("run", "--index-url", url, str(script), env={"RUNNER_NO_FASTPATH": "1"})
    assert slow.returncode == 0, slow.stderr
    assert slow.stdout == "alpha 1.0\n"
    assert "building" not in slow.stderr


def test_offline_run_installs_a_lock_from_find_links(tmp_path: Path, index_dir: Path) -> None:
    script = write_script(tmp_path / "job.py", BODY, ["beta"])
    with serve_index(index_dir) as (url, _):
        assert run_runner("lock", str(script), "--index-url", url).returncode == 0
    result = run_runner("run", "--offline", "--locked", "--find-links", str(index_dir), str(script))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "alpha 1.0\n"

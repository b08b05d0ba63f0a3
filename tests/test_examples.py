"""Every example under examples/ runs as its comments say (with local wheels only)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster_support import make_fake_numpy
from tests.conftest import run_runner, store_dirs
from tests.wheels import make_wheel

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BIN = str(Path(sys.executable).parent)  # where the `runner` console script lives

FAKE_RICH_CONSOLE = '''
import re, sys


class Console:
    """Just enough of rich.console.Console for the examples: markup is dropped."""

    def print(self, *objects, **kwargs):
        text = " ".join(str(o) for o in objects)
        sys.stdout.write(re.sub(r"\\[/?[a-z ]*\\]", "", text) + "\\n")
'''


def with_path(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    env.update(extra)
    return env


@pytest.fixture
def fake_rich(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A wheelhouse holding a tiny `rich` 13.0 (hello.py needs rich>=13)."""
    house = tmp_path / "wheels"
    make_wheel(
        house, "rich", "13.0", modules={"rich.__init__": "", "rich.console": FAKE_RICH_CONSOLE}
    )
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(house))
    return house


def test_hello(fake_rich: Path) -> None:
    r = run_runner("run", str(EXAMPLES / "hello.py"), "tester")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Hello, tester! (Python 3.")
    warm = run_runner("run", str(EXAMPLES / "hello.py"))
    assert warm.stdout.startswith("Hello, world!") and warm.stderr == ""


def test_wordcount_is_a_shebang_command(tmp_path: Path) -> None:
    tool = EXAMPLES / "wordcount"
    assert os.access(tool, os.X_OK) and tool.read_text().startswith(
        "#!/usr/bin/env -S runner run\n"
    )
    (tmp_path / "a.txt").write_text("one two\nthree\n")
    (tmp_path / "b.txt").write_text("four\n")
    r = subprocess.run(
        [str(tool), "a.txt", "b.txt"],
        cwd=tmp_path,
        env=with_path(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:3] == [
        f"{2:8} {3:8} {14:8} a.txt",
        f"{1:8} {1:8} {5:8} b.txt",
        f"{3:8} {4:8} {19:8} total",
    ]
    warm = subprocess.run(
        [str(tool)],
        input="x y z\n",
        env=with_path(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert warm.stdout == f"{1:8} {3:8} {6:8} -\n" and warm.stderr == ""


def _batch_inputs(tmp_path: Path, count: int = 12) -> tuple[Path, Path]:
    inputs, out = tmp_path / "inputs", tmp_path / "out"
    inputs.mkdir()
    for i in range(count):
        (inputs / f"part{i:02}.txt").write_text(f"{i}\n{i + 2}\n")
    return inputs, out


def _run_batch(name: str, inputs: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXAMPLES / "batch" / name), str(inputs), str(out), "4"],
        env=with_path(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _batch_results(out: Path) -> dict[str, object]:
    results = {p.name: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert len(results) == 12
    assert results["part05.json"] == {"input": "part05.txt", "count": 2, "mean": 6.0, "max": 7.0}
    return results


def test_batch_prebuilds_once_then_fans_out(tmp_path: Path, cache_dir: Path) -> None:
    inputs, out = _batch_inputs(tmp_path)
    r = _run_batch("run_batch.sh", inputs, out)
    assert r.returncode == 0, r.stderr
    _batch_results(out)
    # One build, by `runner sync`; the 12 parallel runs were all warm and silent.
    assert r.stderr.count("building an environment") == 1
    assert len(store_dirs(cache_dir)) == 1


def test_cold_batch_races_and_builds_once(tmp_path: Path, cache_dir: Path) -> None:
    inputs, out = _batch_inputs(tmp_path)
    r = _run_batch("run_cold.sh", inputs, out)
    assert r.returncode == 0, r.stderr
    _batch_results(out)
    # No prebuild: the first run to take the build lock built, the others of the first
    # wave waited for it (silently, -q), and every run used that one environment.
    assert r.stderr == ""
    assert len(store_dirs(cache_dir)) == 1


@pytest.mark.skipif(shutil.which("parallel") is None, reason="GNU parallel is not installed")
def test_batch_with_gnu_parallel(tmp_path: Path, cache_dir: Path) -> None:
    inputs, out = _batch_inputs(tmp_path)
    r = _run_batch("run_parallel.sh", inputs, out)
    assert r.returncode == 0, r.stderr
    _batch_results(out)
    assert r.stderr.count("building an environment") == 1
    assert len(store_dirs(cache_dir)) == 1
    # parallel's job log: one line per input, each with exit status 0.
    rows = [line.split("\t") for line in (out / "joblog").read_text().splitlines()[1:]]
    assert len(rows) == 12 and {row[6] for row in rows} == {"0"}


def test_cluster_array_job_with_a_shared_cache(tmp_path: Path) -> None:
    """The job script under imitated SLURM variables (tests/test_cluster.py runs it for real)."""
    shared = tmp_path / "shared-cache"
    out = tmp_path / "results"
    wheels = make_fake_numpy(tmp_path / "wheels")
    env = with_path(RUNNER_CACHE_DIR=str(shared), PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheels))
    cluster = EXAMPLES / "cluster"
    sync = run_runner("sync", "--json", str(cluster / "task.py"), env=env)
    assert sync.returncode == 0, sync.stderr
    built = json.loads(sync.stdout)[0]["environment"]
    tasks = [
        subprocess.Popen(
            ["bash", str(cluster / "job.sh")],
            env=dict(
                env, SLURM_ARRAY_TASK_ID=str(i), SLURM_SUBMIT_DIR=str(cluster), OUT_DIR=str(out)
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    for task in tasks:
        _, stderr = task.communicate(timeout=120)
        assert task.returncode == 0 and stderr == "", stderr
    results = [json.loads((out / f"task-{i}.json").read_text()) for i in range(4)]
    assert [r["result"] for r in results] == [2.0, 12.0, 30.0, 56.0]
    assert [str(p) for p in store_dirs(shared)] == [built]
    # Outside an array job the script says what is missing instead of guessing.
    r = subprocess.run(
        ["bash", str(cluster / "job.sh")],
        env=dict(env, SLURM_SUBMIT_DIR=str(cluster)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode != 0 and "SLURM_ARRAY_TASK_ID" in r.stderr

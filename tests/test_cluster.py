"""A real SLURM array job runs examples/cluster/ against one shared cache.

The test starts its own single-node cluster (munged, slurmctld, slurmd; see
tests/cluster_support.py), submits the example as it is shipped, with both of its patterns,
and stops the daemons afterwards by their own pids.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster_support import Slurm, make_fake_numpy, sbatch_env, slurm_unavailable
from tests.conftest import published, store_dirs
from tests.wheels import serve_index

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BIN = str(Path(sys.executable).parent)  # where the `runner` console script lives
TASKS = 40

_WHY_NOT = slurm_unavailable()
pytestmark = pytest.mark.skipif(_WHY_NOT is not None, reason=_WHY_NOT or "")


def _gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


@pytest.fixture
def slurm(tmp_path: Path) -> Iterator[Slurm]:
    cluster = Slurm(tmp_path / "slurm")
    with cluster:
        pids = cluster.daemon_pids()
        # The pids the daemons wrote are the processes this test started and will stop.
        assert pids == {name: proc.pid for name, proc in cluster.daemons.items()}
        yield cluster
    for name, proc in cluster.daemons.items():
        assert proc.returncode is not None and _gone(pids[name]), f"{name} still runs"


def _task_logs(work: Path) -> str:
    logs = work / "logs"
    return "".join(
        f"--- {p.name}\n{p.read_text()}" for p in sorted(logs.glob("*")) if p.stat().st_size
    )


@pytest.mark.parametrize("pattern", ["prebuild", "no-prebuild"])
def test_array_job_shares_one_environment(tmp_path: Path, slurm: Slurm, pattern: str) -> None:
    work = tmp_path / "cluster"  # the example as a user copies it
    shutil.copytree(EXAMPLES / "cluster", work)
    params = tmp_path / "params.txt"
    params.write_text("".join(f"{i} {i + 0.5}\n" for i in range(TASKS)))
    shared, out = tmp_path / "shared-cache", tmp_path / "results"
    wheels = make_fake_numpy(tmp_path / "wheels")
    with serve_index(wheels) as (index, requests):
        env = sbatch_env(
            slurm,
            {
                "PATH": BIN + os.pathsep + os.environ["PATH"],
                "RUNNER_CACHE_DIR": str(shared),
                "PIP_INDEX_URL": index,
                "PARAMS": str(params),
                "OUT_DIR": str(out),
            },
        )
        argv = [str(work / "submit.sh"), *(["--no-prebuild"] if pattern != "prebuild" else [])]
        # --wait: sbatch returns when the last task has ended, with the worst exit status.
        submitted = subprocess.run(
            [*argv, "--wait"], env=env, capture_output=True, text=True, timeout=300, check=False
        )
    assert submitted.returncode == 0, submitted.stderr + _task_logs(work)
    assert re.fullmatch(r"Submitted batch job \d+\n", submitted.stdout), submitted.stdout
    results = [json.loads((out / f"task-{i}.json").read_text()) for i in range(TASKS)]
    assert [r["task"] for r in results] == list(range(TASKS))
    assert [r["result"] for r in results] == [i * (i + 0.5) for i in range(TASKS)]
    # Every task ran silently (-q): its SLURM output file is empty.
    logs = sorted((work / "logs").iterdir())
    assert len(logs) == TASKS and _task_logs(work) == ""
    # Exactly one environment was built (one store directory, one installer log), and it
    # came from the local index.
    assert len(store_dirs(shared)) == 1 and len(published(shared)) == 1
    assert len(list((shared / "logs").glob("*.log"))) == 1
    assert any(r.startswith("/files/numpy-1.26.0") for r in requests)

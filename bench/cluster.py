"""Cluster benchmark: a real SLURM array job of examples/cluster/, prebuilt and cold.

Starts a throwaway single-node SLURM cluster (munged, slurmctld, slurmd, as the tests do;
needs root and `apt-get install slurm-wlm munge`) and submits the example as an array of
--tasks tasks, three ways, interleaved over --rounds rounds (each with a fresh cache):

    floor      sbatch of plain `python task.py N` with a prebuilt environment's interpreter
    prebuilt   examples/cluster/submit.sh: `runner sync`, then the array of `runner run`
    cold       examples/cluster/submit.sh --no-prebuild: every task races on a cold cache

and, for reference, `runner sync` alone on a fresh cache (the prebuild's share).

The wall time runs from the moment the submission starts (so the prebuild counts) to the
end of the last task (the newest result file). Prints medians and ratios to the floor.
Packages come from local wheels: a tiny stand-in for numpy by default, or the wheels in
--wheelhouse (e.g. filled once with `pip download numpy -d DIR`).

    python bench/cluster.py [--tasks 40] [--rounds 3] [--wheelhouse DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.cluster_support import Slurm, make_fake_numpy, slurm_unavailable  # noqa: E402

FLOOR_JOB = """#!/bin/bash
cd "$SLURM_SUBMIT_DIR"
exec "$TASK_PYTHON" task.py "$SLURM_ARRAY_TASK_ID"
"""


def last_result(out: Path, tasks: int) -> float:
    files = [out / f"task-{i}.json" for i in range(tasks)]
    missing = [f.name for f in files if not f.exists()]
    if missing:
        raise SystemExit(f"tasks did not finish: {missing[:5]}")
    return max(f.stat().st_mtime for f in files)


def submit(argv: list[str], env: dict[str, str], out: Path, tasks: int, cwd: Path) -> float:
    """Seconds from the start of the submission (sbatch --wait) to the end of the last task."""
    shutil.rmtree(out, ignore_errors=True)
    start = time.time()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}): {done.stderr}")
    return last_result(out, tasks) - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--wheelhouse", type=Path, help="directory of wheels (default: tiny)")
    parser.add_argument("--runner", default=str(Path(sys.executable).with_name("runner")))
    opts = parser.parse_args()
    why_not = slurm_unavailable()
    if why_not:
        raise SystemExit(f"cannot run: {why_not}")

    work = Path(tempfile.mkdtemp(prefix="runner-bench-cluster-"))
    example = work / "cluster"
    shutil.copytree(ROOT / "examples" / "cluster", example)
    (example / "floor.sh").write_text(FLOOR_JOB)
    params = work / "params.txt"
    params.write_text("".join(f"{i} {i + 0.5}\n" for i in range(opts.tasks)))
    wheels = opts.wheelhouse or make_fake_numpy(work / "wheels")
    out = work / "results"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "RUNNER_"))}
    env.update(
        PATH=str(Path(opts.runner).parent) + os.pathsep + env["PATH"],
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(wheels),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        RUNNER_NO_AUTO_PRUNE="1",
        PARAMS=str(params),
        OUT_DIR=str(out),
    )
    samples: dict[str, list[float]] = {"floor": [], "prebuilt": [], "cold": [], "sync": []}
    with Slurm(work / "slurm", cpus=max(opts.tasks, 2)) as cluster:
        env.update(cluster.env)
        # The floor's environment: built once, outside the timing.
        floor_env = {**env, "RUNNER_CACHE_DIR": str(work / "floor-cache")}
        python = subprocess.run(
            [opts.runner, "python", str(example / "task.py")],
            env=floor_env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        floor_env["TASK_PYTHON"] = python
        floor_argv = ["sbatch", "--wait", f"--array=0-{opts.tasks - 1}", "--output=/dev/null"]
        floor_argv.append("floor.sh")
        for i in range(opts.rounds):
            samples["floor"].append(submit(floor_argv, floor_env, out, opts.tasks, example))
            for name, flags in (("prebuilt", []), ("cold", ["--no-prebuild"])):
                cache = work / f"cache-{name}-{i}"
                renv = {**env, "RUNNER_CACHE_DIR": str(cache)}
                argv = [str(example / "submit.sh"), *flags, "--wait", "--output=/dev/null"]
                samples[name].append(submit(argv, renv, out, opts.tasks, example))
                builds = len(list((cache / "store").iterdir()))
                if builds != 1:
                    raise SystemExit(f"{name}: {builds} environments built, expected 1")
            # The prebuild alone, on a fresh cache: what `prebuilt` spends before sbatch.
            start = time.perf_counter()
            subprocess.run(
                [opts.runner, "sync", "-q", str(example / "task.py")],
                env={**env, "RUNNER_CACHE_DIR": str(work / f"cache-sync-{i}")},
                check=True,
            )
            samples["sync"].append(time.perf_counter() - start)
            print(
                f"round {i + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in samples.items()),
                file=sys.stderr,
            )
    shutil.rmtree(work, ignore_errors=True)

    floor = statistics.median(samples["floor"])
    print(
        f"SLURM array of {opts.tasks} tasks, submission to last task's end, "
        f"{opts.rounds} interleaved rounds (medians; min-max)"
    )
    for name, values in samples.items():
        if name == "sync":
            print(f"  (runner sync alone, the prebuild: {statistics.median(values):.2f} s)")
            continue
        median = statistics.median(values)
        print(
            f"  {name:9} {median:7.2f} s  ({min(values):.2f}-{max(values):.2f})"
            f"  x{median / floor:.2f} of the floor"
        )


if __name__ == "__main__":
    main()

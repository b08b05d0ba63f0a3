"""Core benchmark: cold, warm and 20 simultaneous cold runs of a two-package script.

The baseline, measured in the same run, is plain `python script.py` with the built
environment's interpreter. Packages come from local wheels (pip's package cache plays no
part), so the figures show runner's own work: environment creation, pip, verification,
publish. Prints medians over --rounds repetitions (each cold repetition uses a fresh cache).

    python bench/run.py [--rounds 5] [--runner PATH]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from workspace import two_package_script  # bench/workspace.py


def run(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def simultaneous(cmd: list[str], env: dict[str, str], count: int) -> tuple[float, int]:
    """Start `count` copies at once; return (time until the last one ends, failures)."""
    start = time.perf_counter()
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(count)
    ]
    failures = sum(p.wait() != 0 for p in procs)
    return time.perf_counter() - start, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runner", default=str(Path(sys.executable).with_name("runner")))
    opts = parser.parse_args()

    work, script, env = two_package_script("runner-bench-run-")
    cold, warm, direct, burst = [], [], [], []
    failures = 0
    builds = []
    for i in range(opts.rounds):
        cache = work / f"cache-{i}"
        renv = {**env, "RUNNER_CACHE_DIR": str(cache)}
        cold.append(run([opts.runner, "run", str(script)], renv))
        warm.append(run([opts.runner, "run", str(script)], renv))
        python = subprocess.run(
            [opts.runner, "python", str(script)],
            env=renv,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        direct.append(run([python, str(script)], renv))
        burst_env = {**env, "RUNNER_CACHE_DIR": str(work / f"burst-{i}")}
        elapsed, failed = simultaneous([opts.runner, "run", str(script)], burst_env, 20)
        burst.append(elapsed)
        failures += failed
        builds.append(len(list((work / f"burst-{i}" / "store").iterdir())))
        shutil.rmtree(cache)

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:8.1f} ms"

    base = statistics.median(direct)
    print(f"two-package script (local wheels), {opts.rounds} rounds, medians")
    print(f"  plain python (baseline)     {ms(direct)}")
    for label, values in (("warm", warm), ("cold", cold)):
        ratio = statistics.median(values) / base
        print(f"  runner run, {label}            {ms(values)}   {ratio:6.2f} x baseline")
    print(f"  20 simultaneous cold runs   {ms(burst)}   (until the last exits)")
    print(
        f"  failed runs in the bursts: {failures} of {20 * opts.rounds}; "
        f"environments built per burst: {builds}"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

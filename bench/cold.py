"""Cold-path benchmark (issue: one lean cold path): runner against uv and pipx, same run.

A two-package script from local wheels (no network; package caches warm, environments cold):

- one cold run: runner --installer uv vs `uv run --script`; runner --installer pip vs
  `pipx run` (each run in a fresh runner cache / PIPX_HOME; uv's script environments removed);
- runner's own time on a cold run, outside the installer's subprocess (the launcher is run
  under a small wrapper that times `runner.proc.run` calls and stops the clock at exec);
- N copies started at once on a cold cache (20 and 100), until the last exits: runner
  (--installer uv) vs `uv run --script`, and runner's default installer.

Rounds are interleaved so drift hits every tool alike; medians, min and max are printed,
with the ratios against the targets. A tool that is not installed is skipped.

    python bench/cold.py [--rounds 5] [--bursts 20,100] [--burst-rounds 3]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from workspace import two_package_script  # bench/workspace.py

# Runs the console entry point, timing installer subprocesses; writes "total installer
# other" (seconds, from the first line of runner's code to exec) to $BENCH_OWN_TIME.
WRAPPER = r"""
import os, sys, time
t0 = time.perf_counter()
import runner.proc as proc
spent = {"installer": 0.0, "other": 0.0}
original = proc.run
def timed(cmd, *args, **kwargs):
    started = time.perf_counter()
    try:
        return original(cmd, *args, **kwargs)
    finally:
        kind = "installer" if "install" in list(cmd)[:6] else "other"
        spent[kind] += time.perf_counter() - started
proc.run = timed
real_execve = os.execve
def execve(path, argv, env):
    with open(os.environ["BENCH_OWN_TIME"], "w") as f:
        f.write(f"{time.perf_counter() - t0} {spent['installer']} {spent['other']}")
    real_execve(path, argv, env)
os.execve = execve
sys.argv = ["runner", *sys.argv[1:]]
from runner.launcher import main
sys.exit(main())
"""


def find_tool(name: str) -> str | None:
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name)


def timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    got = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if got.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({got.returncode}):\n{got.stderr[-3000:]}")
    return elapsed


def burst(cmd: list[str], env: dict[str, str], count: int) -> tuple[float, int]:
    started = time.perf_counter()
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(count)
    ]
    failures = sum(p.wait(timeout=900) != 0 for p in procs)
    return time.perf_counter() - started, failures


def describe(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):7.3f} s  (min {min(values):.3f}, max {max(values):.3f})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bursts", default="20,100")
    parser.add_argument("--burst-rounds", type=int, default=3)
    args = parser.parse_args()
    runner = find_tool("runner")
    uv = find_tool("uv")
    pipx = find_tool("pipx")
    if runner is None:
        raise SystemExit("runner is not installed beside this Python or on PATH")
    work, script, base_env = two_package_script("runner-bench-cold-")
    python = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    uv_cache = work / "uv-cache"
    counter = [0]

    def fresh(name: str) -> Path:
        counter[0] += 1
        path = work / f"{name}-{counter[0]}"
        path.mkdir()
        return path

    def drop_uv_envs() -> None:
        for env_dir in glob.glob(str(uv_cache / "environments-v*")):
            shutil.rmtree(env_dir, ignore_errors=True)

    def runner_cmd(installer: str | None) -> Callable[[], tuple[list[str], dict[str, str]]]:
        def make() -> tuple[list[str], dict[str, str]]:
            cmd = [runner, "run", "--python", python]
            if installer is not None:
                cmd += ["--installer", installer]
            return [*cmd, str(script)], {**base_env, "RUNNER_CACHE_DIR": str(fresh("cache"))}

        return make

    def uv_cmd() -> tuple[list[str], dict[str, str]]:
        assert uv is not None
        drop_uv_envs()
        cmd = [uv, "run", "--quiet", "--offline", "--python", python, "--script", str(script)]
        return cmd, dict(base_env)

    def pipx_cmd() -> tuple[list[str], dict[str, str]]:
        assert pipx is not None
        home = fresh("pipx")
        env = {
            **base_env,
            "PIPX_HOME": str(home),
            "PIPX_SHARED_LIBS": str(work / "pipx-shared"),
            "PIPX_DEFAULT_BACKEND": "pip",
        }
        return [pipx, "run", "--python", python, "--path", str(script)], env

    single: dict[str, Callable[[], tuple[list[str], dict[str, str]]]] = {
        "runner-uv": runner_cmd("uv"),
        "runner-pip": runner_cmd("pip"),
    }
    if uv is not None:
        single["uv-run"] = uv_cmd
    if pipx is not None:
        single["pipx-run"] = pipx_cmd
    print(f"python {python}; tools: {', '.join(single)}; {args.rounds} rounds, interleaved")
    if pipx is not None:
        # pipx fetches pip for its shared libraries once; that may use the machine's index.
        cmd, env = pipx_cmd()
        ambient = {k: v for k, v in os.environ.items() if k != "PIP_NO_INDEX"}
        wheels = base_env["PIP_FIND_LINKS"]
        links = " ".join(filter(None, [os.environ.get("PIP_FIND_LINKS"), wheels]))
        timed(
            cmd,
            {
                **ambient,
                **{k: v for k, v in env.items() if k.startswith("PIPX")},
                "PIP_FIND_LINKS": links,
            },
        )
    for make in single.values():  # warm the package caches
        timed(*make())
    times: dict[str, list[float]] = {name: [] for name in single}
    for _ in range(args.rounds):
        for name, make in single.items():
            times[name].append(timed(*make()))
    print("\none cold run (two packages, local wheels)")
    for name, values in times.items():
        print(f"  {name:<11} {describe(values)}")
    med = {name: statistics.median(v) for name, v in times.items()}
    for ours, theirs, target in (("runner-uv", "uv-run", 1.5), ("runner-pip", "pipx-run", 0.9)):
        if theirs in med:
            ratio = med[ours] / med[theirs]
            verdict = "meets" if ratio <= target else "MISSES"
            print(f"  {ours} / {theirs} = {ratio:.2f}  ({verdict} target <= {target})")

    print("\nrunner's own time on a cold run (from its first line to exec)")
    start_cost = statistics.median(
        timed([python, "-c", "pass"], base_env) for _ in range(max(3, args.rounds))
    )
    for installer in ("uv", "pip"):
        own, inst, other = [], [], []
        for _ in range(args.rounds):
            out = work / f"own-{counter[0]}.txt"
            cmd, env = runner_cmd(installer)()
            env["BENCH_OWN_TIME"] = str(out)
            timed([sys.executable, "-c", WRAPPER, *cmd[1:]], env)
            total, installer_time, other_time = map(float, out.read_text().split())
            own.append(total - installer_time)
            inst.append(installer_time)
            other.append(other_time)
        own_ms = statistics.median(own) * 1000
        verdict = "meets" if own_ms <= 60 else "MISSES"
        print(
            f"  --installer {installer}: own {own_ms:.0f} ms ({verdict} target <= 60 ms; of "
            f"which other subprocesses {statistics.median(other) * 1000:.0f} ms), installer "
            f"{statistics.median(inst) * 1000:.0f} ms; interpreter start "
            f"{start_cost * 1000:.0f} ms not included"
        )

    for count in (int(c) for c in args.bursts.split(",") if c):
        print(f"\n{count} copies at once on a cold cache, until the last exits")
        walls: dict[str, list[float]] = {}
        failures: dict[str, int] = {}
        makers: dict[str, Callable[[], tuple[list[str], dict[str, str]]]] = {
            "runner-uv": runner_cmd("uv"),
            "runner-default": runner_cmd(None),
        }
        if uv is not None:
            makers["uv-run"] = uv_cmd
        for _ in range(args.burst_rounds):
            for name, make in makers.items():
                cmd, env = make()
                wall, failed = burst(cmd, env, count)
                walls.setdefault(name, []).append(wall)
                failures[name] = failures.get(name, 0) + failed
        for name, values in walls.items():
            print(f"  {name:<15} {describe(values)}   failures {failures[name]}")
        if "uv-run" in walls:
            for ours in ("runner-uv", "runner-default"):
                ratio = statistics.median(walls[ours]) / statistics.median(walls["uv-run"])
                verdict = "meets" if ratio <= 1.5 else "MISSES"
                print(f"  {ours} / uv-run = {ratio:.2f}  ({verdict} target <= 1.5, stretch 1.2)")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

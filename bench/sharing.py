"""File-sharing benchmark: cache size of many numpy + pandas variants, cold and warm cost.

Downloads numpy, pandas (and their dependencies) and a few small packages once into a
wheelhouse outside the repo (default ~/.cache/runner-bench/filestore-wheelhouse, under a file
lock), then builds offline from it (PIP_NO_INDEX, PIP_FIND_LINKS). Measures, in fresh caches:

1. cache size after 3 variants (numpy+pandas; +six; +attrs), sharing vs RUNNER_LINK_MODE=copy,
   as a ratio to one environment (target <= 1.15x);
2. cache size after N variants (default 20; target <= 1.5x);
3. cold build time of a variant whose heavy packages are already in the cache: sharing vs
   copy, alternated, medians (target: no more than 5% slower);
3b. (`first`) a first build, in an empty cache: what sharing (hashing, linking, recording
   the bytecode index) costs when there is nothing to share yet;
4. warm run time of a script importing pandas, in a shared environment vs a copied one
   (target: unchanged).

Sizes are disk use with every hard-linked file counted once (what `du` reports for the
whole cache). Builds run with RUNNER_NO_SYNC=1: the build's final os.sync() flushes the
whole machine's dirty data and is noise here (and sharing only makes it cheaper).

    python bench/sharing.py [--variants 20] [--repeat 5] [--warm 15] [--wheelhouse DIR]
                            [--installer pip|uv] [--skip sizes3,sizes,cold,first,warm]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from runner.filestore import disk_usage  # after the path set-up

RUNNER = str(Path(sys.executable).with_name("runner"))
BASE = ["numpy", "pandas"]
EXTRAS = [
    "six",
    "attrs",
    "idna",
    "certifi",
    "packaging",
    "toolz",
    "click",
    "pyparsing",
    "tabulate",
    "termcolor",
    "colorama",
    "wcwidth",
    "more-itertools",
    "iniconfig",
    "pluggy",
    "decorator",
    "platformdirs",
    "typing-extensions",
    "zipp",
]
DEFAULT_WHEELHOUSE = Path.home() / ".cache" / "runner-bench" / "filestore-wheelhouse"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def ensure_wheelhouse(wheelhouse: Path) -> None:
    """Download every package once (the only step that uses the network)."""
    with locked(wheelhouse.with_name(wheelhouse.name + ".lock")):
        if (wheelhouse / ".complete").exists():
            return
        wheelhouse.mkdir(parents=True, exist_ok=True)
        pip = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:"]
        subprocess.run([*pip, "-d", str(wheelhouse), *BASE, *EXTRAS], check=True)
        (wheelhouse / ".complete").touch()


def variant(i: int) -> list[str]:
    """Variant 0 is numpy + pandas; variant i adds the i-th small package."""
    return BASE + ([EXTRAS[i - 1]] if i else [])


def write_script(directory: Path, deps: list[str], name: str) -> Path:
    quoted = ", ".join(f'"{d}"' for d in deps)
    path = directory / f"{name}.py"
    path.write_text(f"# /// script\n# dependencies = [{quoted}]\n# ///\nimport pandas\n")
    return path


class Bench:
    def __init__(self, work: Path, wheelhouse: Path, installer: str):
        self.work = work
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "RUNNER_"))}
        env.update(
            PIP_CONFIG_FILE=os.devnull,
            PIP_NO_INDEX="1",
            PIP_FIND_LINKS=str(wheelhouse),
            PIP_DISABLE_PIP_VERSION_CHECK="1",
            RUNNER_NO_AUTO_PRUNE="1",
            RUNNER_NO_SYNC="1",
            RUNNER_INSTALLER=installer,
            UV_CACHE_DIR=str(work / "uv-cache"),  # warm after the first build, like pip's
        )
        self.env = env
        self.cpu = 0.0

    def run(self, cache: Path, mode: str, *args: str) -> float:
        """Wall time of one runner command; its CPU time (with every child's) goes to
        self.cpu, which a loaded machine disturbs less than wall time."""
        env = dict(self.env, RUNNER_CACHE_DIR=str(cache), RUNNER_LINK_MODE=mode)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        result = subprocess.run(
            [RUNNER, *args], env=env, capture_output=True, text=True, timeout=900, check=False
        )
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        if result.returncode != 0:
            sys.exit(f"runner {' '.join(args)} failed:\n{result.stderr}")
        return elapsed

    def fill(self, cache: Path, mode: str, count: int) -> list[Path]:
        scripts = [write_script(self.work, variant(i), f"v{i}") for i in range(count)]
        for script in scripts:
            self.run(cache, mode, "sync", str(script))
        return scripts


def one_env_size(cache: Path) -> int:
    """Disk use of the first environment built, on its own (its apparent size)."""
    first = min((cache / "store").iterdir(), key=lambda p: p.stat().st_mtime)
    return disk_usage([first])


def sizes(bench: Bench, count: int) -> None:
    print(f"\n== cache size after {count} variants (numpy + pandas [+ one small package])")
    # Without sharing the size is count x one environment: measured for 3, not for 20.
    for mode in ("link", "copy") if count <= 3 else ("link",):
        cache = bench.work / f"cache-{mode}-{count}"
        start = time.perf_counter()
        bench.fill(cache, mode, count)
        built = time.perf_counter() - start
        total, one = disk_usage([cache]), one_env_size(cache)
        print(
            f"  {mode:4}: cache {total / 1e6:7.1f} MB, one environment {one / 1e6:6.1f} MB, "
            f"ratio {total / one:5.2f}x   (built in {built:.0f} s)"
        )
        if mode == "link":
            target = 1.15 if count <= 3 else 1.5
            verdict = "met" if total / one <= target else "NOT met"
            print(f"        target <= {target}x: {verdict}")
        shutil.rmtree(cache, ignore_errors=True)


def cold(bench: Bench, repeat: int) -> None:
    print(f"\n== cold build of a variant, numpy + pandas cached ({repeat} each, alternated)")
    times: dict[str, list[float]] = {"link": [], "copy": []}
    cpu: dict[str, list[float]] = {"link": [], "copy": []}
    caches = {}
    for mode in times:
        caches[mode] = bench.work / f"cache-cold-{mode}"
        bench.fill(caches[mode], mode, 1)
    script = write_script(bench.work, variant(1), "cold")
    for i in range(repeat):
        for mode in ("link", "copy") if i % 2 == 0 else ("copy", "link"):
            times[mode].append(bench.run(caches[mode], mode, "sync", "--refresh", str(script)))
            cpu[mode].append(bench.cpu)
    report(times, cpu, 1.0, "s", "target <= 1.05")


def first(bench: Bench, repeat: int) -> None:
    print(f"\n== first build of numpy + pandas in an empty cache ({repeat} each, alternated)")
    times: dict[str, list[float]] = {"link": [], "copy": []}
    cpu: dict[str, list[float]] = {"link": [], "copy": []}
    script = write_script(bench.work, variant(0), "first")
    for i in range(repeat):
        for mode in ("link", "copy") if i % 2 == 0 else ("copy", "link"):
            cache = bench.work / f"cache-first-{mode}"
            times[mode].append(bench.run(cache, mode, "sync", str(script)))
            cpu[mode].append(bench.cpu)
            shutil.rmtree(cache)
    report(times, cpu, 1.0, "s", "sharing's cost when there is nothing to share")


def warm(bench: Bench, repeat: int) -> None:
    print(f"\n== warm run of a script importing pandas ({repeat} each, alternated)")
    times: dict[str, list[float]] = {"link": [], "copy": []}
    cpu: dict[str, list[float]] = {"link": [], "copy": []}
    caches = {m: bench.work / f"cache-cold-{m}" for m in times}
    script = write_script(bench.work, variant(1), "cold")
    for mode in times:
        bench.run(caches[mode], mode, "run", str(script))  # write the alias, warm the page cache
    for i in range(repeat):
        for mode in ("link", "copy") if i % 2 == 0 else ("copy", "link"):
            times[mode].append(bench.run(caches[mode], mode, "run", str(script)))
            cpu[mode].append(bench.cpu)
    report(times, cpu, 1000.0, "ms", "target: unchanged")


def report(
    times: dict[str, list[float]], cpu: dict[str, list[float]], scale: float, unit: str, goal: str
) -> None:
    for mode, values in times.items():
        spread = f"min {min(values) * scale:.0f}, max {max(values) * scale:.0f}"
        print(
            f"  {mode:4}: wall median {statistics.median(values) * scale:7.1f} {unit} ({spread}); "
            f"CPU median {statistics.median(cpu[mode]) * scale:7.1f} {unit}"
        )
    wall = statistics.median(times["link"]) / statistics.median(times["copy"])
    used = statistics.median(cpu["link"]) / statistics.median(cpu["copy"])
    print(f"  ratio link/copy: wall {wall:.3f}, CPU {used:.3f} ({goal})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--warm", type=int, default=15)
    parser.add_argument("--wheelhouse", type=Path, default=DEFAULT_WHEELHOUSE)
    parser.add_argument("--installer", default="pip", choices=("pip", "uv"))
    parser.add_argument("--skip", default="", help="comma-separated: sizes3,sizes,cold,first,warm")
    args = parser.parse_args()
    ensure_wheelhouse(args.wheelhouse)
    skip = set(args.skip.split(","))
    with tempfile.TemporaryDirectory(prefix="runner-bench-sharing-") as tmp:
        bench = Bench(Path(tmp), args.wheelhouse, args.installer)
        load, cores = os.getloadavg()[0], os.cpu_count()
        print(f"installer {args.installer}; load average at start {load:.1f} on {cores} cores")
        if "sizes3" not in skip:
            sizes(bench, 3)
        if "sizes" not in skip:
            sizes(bench, args.variants)
        if "cold" not in skip:
            cold(bench, args.repeat)
        if "first" not in skip:
            first(bench, args.repeat)
        if "warm" not in skip and "cold" not in skip:
            warm(bench, args.warm)
        print(f"\nload average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

"""Cold-build benchmark: runner (pip) vs `pipx run`, runner (uv) vs `uv run --script`.

Every timed run builds a fresh environment (a fresh RUNNER_CACHE_DIR / PIPX_HOME, uv's
script environments removed) while the package caches (pip's, uv's) stay warm, which is what
a user sees the first time a script with already-downloaded packages runs. All tools use the
same interpreter and this machine's own installer configuration (pip.conf, UV_* variables).
A tool that is not installed is skipped. Prints medians and the ratios against the targets:
runner (pip) <= 0.8 x pipx run; runner (uv) <= 1.5 x uv run --script.

    python bench/build.py [--runs 5] [--python PATH]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

SCRIPTS = {
    "two packages (attrs, six)": (["attrs", "six"], "import attrs, six\nprint('ok')\n"),
    "rich + requests": (["rich", "requests"], "import rich, requests\nprint('ok')\n"),
}
TARGETS = {("runner-pip", "pipx-run"): 0.8, ("runner-uv", "uv-run"): 1.5}
INFORMATIVE = {("runner-uv", "uv-run-pyc")}


def write_script(directory: Path, deps: list[str], body: str) -> Path:
    path = directory / "bench_script.py"
    quoted = ", ".join(f'"{d}"' for d in deps)
    path.write_text(f"# /// script\n# dependencies = [{quoted}]\n# ///\n{body}")
    return path


def base_python() -> str:
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def find_tool(name: str) -> str | None:
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name)


class Tool:
    """One way of running a script cold: prepare() resets its env cache, cmd() runs it."""

    def __init__(
        self,
        name: str,
        cmd: Callable[[Path, Path], list[str]],
        env: Callable[[Path], dict[str, str]],
        reset: Callable[[Path], None] | None = None,
    ):
        self.name, self._cmd, self._env, self._reset = name, cmd, env, reset

    def run_once(self, script: Path, scratch: Path) -> float:
        fresh = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir=scratch))
        if self._reset is not None:
            self._reset(fresh)
        env = {**os.environ, **self._env(fresh)}
        started = time.perf_counter()
        result = subprocess.run(
            self._cmd(script, fresh), env=env, capture_output=True, text=True, check=False
        )
        elapsed = time.perf_counter() - started
        if result.returncode != 0 or result.stdout.strip() != "ok":
            raise SystemExit(f"{self.name} failed ({result.returncode}):\n{result.stderr[-3000:]}")
        shutil.rmtree(fresh, ignore_errors=True)
        return elapsed


def tools(python: str, scratch: Path) -> list[Tool]:
    found: list[Tool] = []
    runner = find_tool("runner")
    if runner is None:
        raise SystemExit("runner is not installed beside this Python or on PATH")
    for installer in ("pip", "uv"):
        found.append(
            Tool(
                f"runner-{installer}",
                lambda s, f, i=installer: [
                    runner,
                    "run",
                    "--installer",
                    i,
                    "--python",
                    python,
                    str(s),
                ],
                lambda f: {"RUNNER_CACHE_DIR": str(f / "cache")},
            )
        )
    pipx = find_tool("pipx")
    if pipx is not None:
        shared = scratch / "pipx-shared"  # pipx's shared pip stays warm, like pip's cache
        found.append(
            Tool(
                "pipx-run",
                lambda s, f: [pipx, "run", "--python", python, "--path", str(s)],
                lambda f: {
                    "PIPX_HOME": str(f / "pipx"),
                    "PIPX_SHARED_LIBS": str(shared),
                    "PIPX_DEFAULT_BACKEND": "pip",  # pipx 1.18+ picks uv when it can
                },
            )
        )
    uv = find_tool("uv")
    if uv is not None:
        cache = subprocess.run([uv, "cache", "dir"], capture_output=True, text=True).stdout.strip()

        def drop_script_envs(_fresh: Path) -> None:
            for env_dir in glob.glob(os.path.join(cache, "environments-v*")):
                shutil.rmtree(env_dir, ignore_errors=True)

        found.append(
            Tool(
                "uv-run",
                lambda s, f: [uv, "run", "--quiet", "--python", python, "--script", str(s)],
                lambda f: {},
                reset=drop_script_envs,
            )
        )
        # Not a target: uv run does not compile bytecode, runner does (later runs are faster).
        found.append(
            Tool(
                "uv-run-pyc",
                lambda s, f: [
                    uv,
                    "run",
                    "--quiet",
                    "--compile-bytecode",
                    "--python",
                    python,
                    "--script",
                    str(s),
                ],
                lambda f: {},
                reset=drop_script_envs,
            )
        )
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--python", default=base_python())
    parser.add_argument("--only", choices=sorted(SCRIPTS), action="append")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="runner-bench-"))
    try:
        available = tools(args.python, scratch)
        print(
            f"python: {args.python}; runs: {args.runs}; tools: "
            + ", ".join(t.name for t in available)
        )
        for title, (deps, body) in SCRIPTS.items():
            if args.only and title not in args.only:
                continue
            work = Path(tempfile.mkdtemp(dir=scratch))
            script = write_script(work, deps, body)
            for tool in available:  # warm the package caches (and pipx's shared libs)
                tool.run_once(script, scratch)
            times: dict[str, list[float]] = {t.name: [] for t in available}
            for _ in range(args.runs):
                for tool in available:  # interleaved, so drift hits every tool alike
                    times[tool.name].append(tool.run_once(script, scratch))
            medians = {name: statistics.median(ts) for name, ts in times.items()}
            print(f"\n{title}")
            for name, ts in times.items():
                print(
                    f"  {name:<11} median {medians[name]:.3f} s   "
                    f"(min {min(ts):.3f}, max {max(ts):.3f})"
                )
            for ours, theirs in INFORMATIVE:
                if ours in medians and theirs in medians:
                    print(
                        f"  {ours} / {theirs} = {medians[ours] / medians[theirs]:.2f}"
                        "  (both compile bytecode; informative)"
                    )
            for (ours, theirs), target in TARGETS.items():
                if ours in medians and theirs in medians:
                    ratio = medians[ours] / medians[theirs]
                    verdict = "meets" if ratio <= target else "MISSES"
                    print(f"  {ours} / {theirs} = {ratio:.2f}  ({verdict} target <= {target})")
                else:
                    print(f"  {ours} / {theirs}: skipped ({theirs} is not installed)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

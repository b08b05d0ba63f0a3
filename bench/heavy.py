"""Heavy cold builds: numpy + pandas, runner against `pipx run` and `uv run` in the same run.

numpy and pandas wheels for the chosen Python are downloaded once with pip into a wheelhouse
outside the repository (~/.cache/runner-bench/heavy-<version>/); after that nothing touches
the network: every tool installs from that folder only (pip: PIP_NO_INDEX + PIP_FIND_LINKS,
no pip.conf; uv: UV_OFFLINE + UV_FIND_LINKS, no uv.toml). Each timed run builds a fresh
environment while the package caches stay warm (pip has nothing to download; uv's cache is
kept), which is what a user sees the first time a script with known packages runs. The tools
take turns (interleaved), so drift on a busy machine hits all of them alike, and each run
starts after an (untimed) sync, so none pays for the writeback of the run before it.

Measured: runner with its default installer, `--installer pip` and `--installer uv`;
`pipx run` (pip backend); `uv run --script`; `uv run --compile-bytecode --script`. runner
publishes a large environment before compiling its bytecode and compiles it in a detached
background job, so each runner run is timed twice: to the script's exit (what the user
waits for) and until the background compile is done (its marker gone; everything compiled,
as after `uv run --compile-bytecode` or pipx). This process makes itself the child
subreaper (Linux), so the detached job is reaped here and its CPU time is counted. Each
runner run gets a new cache that starts with the interpreter probes of the first one (uv's
interpreter cache stays warm too); --fresh-probes gives it none, as before.
Then a warm run after a build and its background compile, with PYTHONDONTWRITEBYTECODE=1
and unset; then (with --batch N) N copies started at once on a cold cache, runner's default
against uv run. pipx and uv come from beside this Python or PATH, else they are installed
once into ~/.cache/runner-bench/tools.

Prints medians, min-max spread and the ratios against issue 14's targets: of the medians,
and paired (the median of each round's own ratio, which a slow minute on this noisy machine
moves less). --tools limits the cold runs to some tools, for more rounds in the same time.

    python bench/heavy.py [--runs 5] [--warm-runs 10] [--batch 10] [--python PATH]
                          [--tools runner-default,uv-run]
"""

from __future__ import annotations

import argparse
import fcntl
import glob
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BENCH_HOME = Path.home() / ".cache" / "runner-bench"
PACKAGES = ["numpy", "pandas"]
# pipx keeps its own pip up to date in its shared libraries, from the same wheelhouse.
ALSO = ["pip"]
BODY = "import numpy, pandas\nprint('ok')\n"
TARGETS = [
    ("runner-default", "pipx-run", 0.6),
    ("runner-pip", "pipx-run", 0.75),
    ("runner-uv", "uv-run-pyc", 1.1),
]
# Issue 14's stretch target: the first run, to the script's exit, against uv run (no bytecode).
STRETCH = [("runner-default", "uv-run", 1.2)]
INFORMATIVE = [("runner-uv", "uv-run"), ("runner-default", "uv-run-pyc")]
PENDING = "runner-bytecode-pending"  # runner.layout.BYTECODE_PENDING


def become_subreaper() -> bool:
    """Adopt orphaned descendants (runner's detached compile), so their CPU time reaches
    RUSAGE_CHILDREN once reaped (`reap_orphans`). Linux only."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(36, 1, 0, 0, 0) == 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def reap_orphans() -> None:
    """Wait for adopted children (a background compile ending after its marker is gone)."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _timeout(signum: int, frame: object) -> None:
    raise TimeoutError


def wait_compiled(cache: Path, timeout: int = 900) -> None:
    """Until every background compile in the runner cache at `cache` has finished: a
    blocking flock on each pending marker (the job holds it exclusively while it works)."""
    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(timeout)
    try:
        for marker in glob.glob(str(cache / "store" / "*" / PENDING)):
            try:
                fd = os.open(marker, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
            finally:
                os.close(fd)
            if os.path.exists(marker):
                raise SystemExit(f"a background compile ended without finishing: {marker}")
    except TimeoutError:
        raise SystemExit(f"background compile still running after {timeout} s") from None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    reap_orphans()


def base_python() -> str:
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def py_version(python: str) -> str:
    return subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()


def wheelhouse(python: str) -> Path:
    """numpy + pandas (and their dependencies) as wheels for `python`, downloaded once."""
    house = BENCH_HOME / f"heavy-{py_version(python)}"
    done = house / ".complete"
    if done.exists():
        return house
    house.mkdir(parents=True, exist_ok=True)
    print(f"downloading {' '.join(PACKAGES)} for {python} into {house} (once)", file=sys.stderr)
    pip = [sys.executable, "-m", "pip", "--python", python]
    subprocess.run(
        [*pip, "download", "--only-binary=:all:", "--dest", str(house), *PACKAGES, *ALSO],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=1800,
    )
    done.write_text("")
    return house


def find_tool(name: str) -> str | None:
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    return shutil.which(name)


def tool(name: str) -> str:
    """pipx or uv: beside this Python, on PATH, or installed once into a bench venv."""
    found = find_tool(name)
    if found is not None:
        return found
    tools = BENCH_HOME / "tools"
    exe = tools / "bin" / name
    if not exe.exists():
        print(f"installing pipx and uv into {tools} (once)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(tools)], check=True, timeout=300)
        subprocess.run(
            [str(tools / "bin" / "python"), "-m", "pip", "install", "-q", "pipx", "uv"],
            check=True,
            timeout=1800,
        )
    return str(exe)


def offline_env(house: Path, uv_cache: Path) -> dict[str, str]:
    """This machine's environment without pip/uv/runner/pipx settings, installing from
    `house` only."""
    prefixes = ("PIP_", "UV_", "RUNNER_", "PIPX_", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(house),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        UV_NO_CONFIG="1",
        UV_OFFLINE="1",
        UV_FIND_LINKS=str(house),
        UV_CACHE_DIR=str(uv_cache),
        UV_PYTHON_DOWNLOADS="never",
        RUNNER_NO_AUTO_PRUNE="1",
    )
    return env


class Tool:
    """One way of running the script cold: `fresh(dir)` gives the command and environment
    for a run that builds a new environment in `dir`."""

    def __init__(
        self,
        name: str,
        fresh: Callable[[Path], tuple[list[str], dict[str, str]]],
        reset: Callable[[], None] = lambda: None,
        settle: Callable[[Path], None] = lambda work: None,
    ):
        self.name, self.fresh, self.reset, self.settle = name, fresh, reset, settle

    def run_once(self, scratch: Path) -> tuple[float, float]:
        """Seconds to the script's exit, and until its bytecode is complete (`settle`)."""
        work = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir=scratch))
        self.reset()
        cmd, env = self.fresh(work)
        # The previous run's writes (50-150 MB of files and bytecode) are still being written
        # back; that would land on whichever tool runs next, always the same one in this
        # fixed order. Untimed, so every run starts with nothing dirty.
        os.sync()
        cpu = children_cpu()
        started = time.perf_counter()
        elapsed = timed(cmd, env, self.name)
        self.settle(work)
        compiled = time.perf_counter() - started
        CPU.setdefault(f"{self.name} compiled", []).append(children_cpu() - cpu)
        shutil.rmtree(work, ignore_errors=True)
        return elapsed, compiled


CPU: dict[str, list[float]] = {}  # name -> CPU seconds (user + sys) of each timed run


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict[str, str], name: str) -> float:
    """Wall seconds of one run; its CPU seconds (every process it waited for) go to CPU."""
    cpu = children_cpu()
    started = time.perf_counter()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - started
    CPU.setdefault(name, []).append(children_cpu() - cpu)
    if result.returncode != 0 or result.stdout.strip() != "ok":
        raise SystemExit(f"{name} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return elapsed


# runner caches what it learns about interpreters in its cache (`interpreters/`), as uv does
# in its own (which the benchmark keeps). A new runner cache for each run would probe every
# Python on the machine each time (0.45 s here, with --python given); unless --fresh-probes,
# each new cache starts with the probes of the first run, like uv's interpreter cache.
PROBES: dict[str, Path | None] = {"saved": None}


def keep_probes(cache: Path) -> None:
    saved = PROBES.get("dir")
    if saved is not None and PROBES["saved"] is None and (cache / "interpreters").is_dir():
        shutil.copytree(cache / "interpreters", saved)
        PROBES["saved"] = saved


def seed_probes(cache: Path) -> None:
    saved = PROBES["saved"]
    if saved is not None:
        shutil.copytree(saved, cache / "interpreters")


def make_tools(python: str, script: Path, env: dict[str, str], scratch: Path) -> list[Tool]:
    runner = find_tool("runner")
    if runner is None:
        raise SystemExit("runner is not installed beside this Python or on PATH")
    pipx, uv = tool("pipx"), tool("uv")
    uv_cache = Path(env["UV_CACHE_DIR"])

    def drop_uv_script_envs() -> None:
        for env_dir in glob.glob(str(uv_cache / "environments-v*")):
            shutil.rmtree(env_dir, ignore_errors=True)

    def runner_fresh(d: Path, extra: list[str]) -> tuple[list[str], dict[str, str]]:
        seed_probes(d / "cache")
        cmd = [runner, "run", *extra, "--python", python, str(script)]
        return cmd, {**env, "RUNNER_CACHE_DIR": str(d / "cache")}

    def runner_tool(name: str, extra: list[str]) -> Tool:
        return Tool(
            name,
            lambda d: runner_fresh(d, extra),
            settle=lambda d: (wait_compiled(d / "cache"), keep_probes(d / "cache")),
        )

    shared = scratch / "pipx-shared"  # pipx's shared pip stays warm, like pip's cache
    uv_run = [uv, "run", "--quiet", "--python", python]
    return [
        runner_tool("runner-default", []),
        runner_tool("runner-pip", ["--installer", "pip"]),
        runner_tool("runner-uv", ["--installer", "uv"]),
        Tool(
            "pipx-run",
            lambda d: (
                [pipx, "run", "--python", python, "--path", str(script)],
                {
                    **env,
                    "PIPX_HOME": str(d / "pipx"),
                    "PIPX_SHARED_LIBS": str(shared),
                    "PIPX_DEFAULT_BACKEND": "pip",  # pipx 1.18+ picks uv when it can
                },
            ),
        ),
        Tool("uv-run", lambda d: ([*uv_run, "--script", str(script)], env), drop_uv_script_envs),
        Tool(
            "uv-run-pyc",
            lambda d: ([*uv_run, "--compile-bytecode", "--script", str(script)], env),
            drop_uv_script_envs,
        ),
    ]


def summary(name: str, values: list[float]) -> str:
    med = statistics.median(values)
    spread = (max(values) - min(values)) / med * 100 if med else 0.0
    return (
        f"  {name:<44} median {med:7.3f} s   min {min(values):.3f}  max {max(values):.3f}"
        f"  (spread {spread:.0f}% of the median, n={len(values)})"
    )


def cold(tools: list[Tool], runs: int, scratch: Path) -> dict[str, float]:
    for t in tools:  # warm the package caches (uv's cache, pipx's shared pip)
        t.run_once(scratch)
    CPU.clear()
    times: dict[str, list[float]] = {t.name: [] for t in tools}
    compiled: dict[str, list[float]] = {t.name: [] for t in tools}
    for _ in range(runs):
        for t in tools:
            first, done = t.run_once(scratch)
            times[t.name].append(first)
            compiled[t.name].append(done)
    print("\ncold environment, package caches warm: to the script's exit")
    for name, values in times.items():
        print(summary(name, values))
    print("until the bytecode is complete (runner: its background compile; the others at exit)")
    for name, values in compiled.items():
        if name.startswith("runner"):
            print(summary(name, values))
    exits = {name: statistics.median(v) for name, v in times.items()}
    # The others compile before they exit (pipx, uv --compile-bytecode) or never (uv run).
    full = {
        n: statistics.median(compiled[n]) if n.startswith("runner") else exits[n] for n in times
    }

    def paired(ours: list[float], theirs: list[float]) -> str:
        """The median of each round's own ratio: the tools of one round ran back to back,
        so a slow minute on this machine weighs on both sides of it."""
        ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
        return f"paired {statistics.median(ratios):.2f}"

    for ours, theirs, target in STRETCH:
        if ours not in times or theirs not in times:
            continue
        ratio = exits[ours] / exits[theirs]
        verdict = "meets" if ratio <= target else "MISSES"
        print(
            f"  {ours} / {theirs}, to exit = {ratio:.2f}, "
            f"{paired(times[ours], times[theirs])}  ({verdict} stretch target <= {target})"
        )
    for ours, theirs in INFORMATIVE:
        if ours not in times or theirs not in times:
            continue
        print(
            f"  {ours} / {theirs} = {exits[ours] / exits[theirs]:.2f} to exit, "
            f"{full[ours] / exits[theirs]:.2f} until compiled (informative)"
        )
    for ours, theirs, target in TARGETS:
        if ours not in times or theirs not in times:
            continue
        for label, ratio, pair in (
            ("to exit", exits[ours] / exits[theirs], paired(times[ours], times[theirs])),
            (
                "until compiled",
                full[ours] / exits[theirs],
                paired(compiled[ours], times[theirs]),
            ),
        ):
            verdict = "meets" if ratio <= target else "MISSES"
            print(
                f"  {ours} / {theirs}, {label} = {ratio:.2f}, {pair}  "
                f"({verdict} target <= {target})"
            )
    # On a loaded machine wall time mostly measures the others' load; CPU time does not.
    print(
        "  CPU seconds (user + sys of every process waited for, runner's background compile "
        "included), less sensitive to load:"
    )
    cpu = {name: statistics.median(CPU[f"{name} compiled"]) for name in times}
    for name in times:
        print(f"    {name:<16} median {cpu[name]:7.3f} s")
    for ours, theirs, target in TARGETS:
        if ours in cpu and theirs in cpu:
            ratio = cpu[ours] / cpu[theirs]
            print(f"    {ours} / {theirs} = {ratio:.2f}  (wall target <= {target})")
    return exits


def warm(
    runner: str, uv: str, python: str, script: Path, env: dict[str, str], runs: int, scratch: Path
) -> None:
    """Warm runs after a build by each installer (and uv run's own), with
    PYTHONDONTWRITEBYTECODE=1 and unset, interleaved."""
    cases: dict[str, tuple[list[str], dict[str, str]]] = {}
    for installer in ("pip", "uv"):
        cache = scratch / f"warm-{installer}"
        cmd = [runner, "run", "--installer", installer, "--python", python, str(script)]
        cases[f"runner ({installer} build)"] = (cmd, {**env, "RUNNER_CACHE_DIR": str(cache)})
    cases["uv run"] = ([uv, "run", "--quiet", "--python", python, "--script", str(script)], env)
    for env_dir in glob.glob(str(Path(env["UV_CACHE_DIR"]) / "environments-v*")):
        shutil.rmtree(env_dir, ignore_errors=True)  # built afresh below, without bytecode
    for name, (cmd, case_env) in cases.items():
        timed(cmd, case_env, name)  # the build
        if "RUNNER_CACHE_DIR" in case_env:
            wait_compiled(Path(case_env["RUNNER_CACHE_DIR"]))  # and its background compile
    times: dict[str, list[float]] = {}
    for _ in range(runs):
        for name, (cmd, case_env) in cases.items():
            for flag in ("unset", "=1"):
                run_env = dict(case_env)
                if flag == "=1":
                    run_env["PYTHONDONTWRITEBYTECODE"] = "1"
                label = f"{name}, DONTWRITEBYTECODE {flag}"
                times.setdefault(label, []).append(timed(cmd, run_env, label))
    print("\nwarm run after a build, PYTHONDONTWRITEBYTECODE unset and =1")
    for label, values in times.items():
        print(summary(label, values))
    for name in cases:
        unset = statistics.median(times[f"{name}, DONTWRITEBYTECODE unset"])
        set_ = statistics.median(times[f"{name}, DONTWRITEBYTECODE =1"])
        note = "" if name.startswith("runner") else "  (informative)"
        verdict = "" if note else ("  (meets: no slower)" if set_ <= unset * 1.05 else "  (SLOWER)")
        print(f"  {name}: =1 / unset = {set_ / unset:.2f}{verdict}{note}")


def simultaneous(
    cmd: list[str], env: dict[str, str], count: int, settle: Callable[[], None] = lambda: None
) -> tuple[float, float]:
    """Wall seconds until the last of `count` copies ends, and until `settle` returns."""
    started = time.perf_counter()
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    failed = 0
    for p in procs:
        out, _err = p.communicate(timeout=900)
        failed += p.returncode != 0 or out.strip() != "ok"
    if failed:
        raise SystemExit(f"{failed} of {count} simultaneous runs failed: {cmd}")
    ended = time.perf_counter() - started
    settle()
    return ended, time.perf_counter() - started


def batch(
    runner: str,
    uv: str,
    python: str,
    script: Path,
    env: dict[str, str],
    count: int,
    rounds: int,
    scratch: Path,
) -> None:
    uv_cache = Path(env["UV_CACHE_DIR"])
    walls: dict[str, list[float]] = {"runner-default": [], "uv-run": []}
    compiled: list[float] = []
    for i in range(rounds):
        cache = scratch / f"batch-{i}"
        seed_probes(cache)
        ended, done = simultaneous(
            [runner, "run", "--python", python, str(script)],
            {**env, "RUNNER_CACHE_DIR": str(cache)},
            count,
            settle=lambda cache=cache: wait_compiled(cache),
        )
        walls["runner-default"].append(ended)
        compiled.append(done)
        shutil.rmtree(cache, ignore_errors=True)
        for env_dir in glob.glob(str(uv_cache / "environments-v*")):
            shutil.rmtree(env_dir, ignore_errors=True)
        walls["uv-run"].append(
            simultaneous(
                [uv, "run", "--quiet", "--python", python, "--script", str(script)], env, count
            )[0]
        )
    print(f"\n{count} copies started at once, cold environment, wall until the last ends")
    for name, values in walls.items():
        print(summary(name, values))
    print(summary("runner-default, until its bytecode is complete", compiled))
    ratio = statistics.median(walls["runner-default"]) / statistics.median(walls["uv-run"])
    verdict = "meets" if ratio <= 1.3 else "MISSES"
    print(f"  runner-default / uv-run = {ratio:.2f}  ({verdict} target <= 1.3)")
    ratio = statistics.median(compiled) / statistics.median(walls["uv-run"])
    print(f"  runner-default until compiled / uv-run = {ratio:.2f}  (informative)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warm-runs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=10, help="copies at once; 0 skips")
    parser.add_argument("--batch-rounds", type=int, default=3)
    parser.add_argument("--python", default=base_python())
    parser.add_argument("--skip-cold", action="store_true")
    parser.add_argument(
        "--tools",
        help="comma-separated: only these in the cold runs (e.g. runner-default,uv-run for "
        "more rounds of the stretch target in the same time)",
    )
    parser.add_argument(
        "--fresh-probes",
        action="store_true",
        help="give every new runner cache no interpreter probes (as before issue 14's stretch)",
    )
    args = parser.parse_args()
    subreaper = become_subreaper()
    house = wheelhouse(args.python)
    scratch = Path(tempfile.mkdtemp(prefix="runner-bench-heavy-"))
    if not args.fresh_probes:
        PROBES["dir"] = scratch / "runner-probes"
    try:
        env = offline_env(house, BENCH_HOME / "uv-cache")
        work = scratch / "work"
        work.mkdir()
        script = work / "heavy.py"
        deps = ", ".join(f'"{p}"' for p in PACKAGES)
        script.write_text(f"# /// script\n# dependencies = [{deps}]\n# ///\n{BODY}")
        tools = make_tools(args.python, script, env, scratch)
        if args.tools:
            wanted = args.tools.split(",")
            unknown = set(wanted) - {t.name for t in tools}
            if unknown:
                parser.error(f"--tools: unknown {', '.join(sorted(unknown))}")
            tools = [t for t in tools if t.name in wanted]
        runner, uv = find_tool("runner") or "runner", tool("uv")
        print(
            f"python: {args.python}; wheelhouse: {house}; cores: {os.cpu_count()}; "
            f"load average: {os.getloadavg()[0]:.1f}; runs: {args.runs}; "
            f"background compiles {'reaped here' if subreaper else 'NOT counted in CPU'}; "
            f"runner's interpreter probes {'fresh' if args.fresh_probes else 'kept'}"
        )
        if not args.skip_cold:
            cold(tools, args.runs, scratch)
        if args.warm_runs:
            warm(runner, uv, args.python, script, env, args.warm_runs, scratch)
        if args.batch:
            batch(runner, uv, args.python, script, env, args.batch, args.batch_rounds, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

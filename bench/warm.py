"""Warm-start benchmark: how much runner adds over running the environment's Python directly.

Measured in one interleaved run (each round runs every command once, in turn, so machine
noise hits all of them alike); prints medians and ratios:

- direct: `<env>/bin/python script.py` (the baseline)
- runner: `runner run script.py` (a warm hit: the fast path execs)
- uv: `uv run --script script.py` and pipx: `pipx run --path script.py`, when on PATH
- scale: runner's warm hit with 1,000 environments in the cache vs with 1
- the launcher's peak RSS before exec (VmHWM, reported with RUNNER_DEBUG_RSS=1)

The script has two dependencies, served from local wheels (no network).

    python bench/warm.py [--rounds 40] [--runner PATH]

Install runner non-editable for a fair figure (an editable install's path finder adds
imports at interpreter start-up): python -m venv /tmp/b && /tmp/b/bin/pip install .
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from workspace import two_package_script  # bench/workspace.py


def find_tool(name: str) -> str | None:
    """A tool installed beside this Python, else on PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name)


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def interleaved(
    commands: dict[str, tuple[list[str], dict[str, str]]], rounds: int
) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for cmd, env in commands.values():  # warm every command once
        timed(cmd, env)
    for _ in range(rounds):
        for name, (cmd, env) in commands.items():
            samples[name].append(timed(cmd, env))
    return {name: statistics.median(values) for name, values in samples.items()}


def fake_cache_entries(cache: Path, count: int) -> None:
    """Add `count` published environments (pointer + store dir + manifest + alias) to a cache."""
    import secrets

    for _ in range(count):
        key = secrets.token_hex(16)
        store = cache / "store" / f"{key}-{secrets.token_hex(6)}"
        (store / "bin").mkdir(parents=True)
        (store / "runner-env.json").write_text('{"format": 1, "requirements": []}\n')
        (store / "runner-lease").touch()
        os.symlink(f"../store/{store.name}", cache / "envs" / key)
        (cache / "scripts" / secrets.token_hex(32)).write_text(
            f"runner-alias 2\nenv\t{store}\nend\n"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--runner", default=str(Path(sys.executable).with_name("runner")))
    opts = parser.parse_args()

    work, script, env = two_package_script("runner-bench-warm-")
    env["RUNNER_CACHE_DIR"] = str(work / "cache")
    subprocess.run([opts.runner, "run", str(script)], env=env, check=True)
    python = subprocess.run(
        [opts.runner, "python", str(script)], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()

    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        "direct": ([python, str(script)], env),
        "runner": ([opts.runner, "run", str(script)], env),
    }
    uv = find_tool("uv")
    if uv:
        subprocess.run(
            [uv, "run", "--script", str(script)], env=env, check=True, capture_output=True
        )
        commands["uv run --script"] = ([uv, "run", "--quiet", "--script", str(script)], env)
    pipx = find_tool("pipx")
    if pipx:
        pipx_env = {**env, "PIPX_HOME": str(work / "pipx")}
        if (
            subprocess.run(
                [pipx, "run", "--path", str(script)], env=pipx_env, capture_output=True
            ).returncode
            == 0
        ):
            commands["pipx run"] = ([pipx, "run", "--path", str(script)], pipx_env)

    medians = interleaved(commands, opts.rounds)
    direct = medians["direct"]
    print(f"warm start, two-package script, {opts.rounds} interleaved rounds (medians)")
    for name, value in medians.items():
        print(
            f"  {name:18s} {value * 1000:7.1f} ms   {value / direct:5.2f} x direct   "
            f"+{(value - direct) * 1000:6.1f} ms"
        )
    overhead = (medians["runner"] - direct) * 1000
    print(
        f"runner - direct = {overhead:.1f} ms (target <= 10 ms): "
        f"{'OK' if overhead <= 10 else 'MISSED'}"
    )
    if "uv run --script" in medians:
        ratio = medians["runner"] / medians["uv run --script"]
        print(
            f"runner / uv run = {ratio:.2f} (target <= 1.10): {'OK' if ratio <= 1.10 else 'MISSED'}"
        )

    # Scale: the same warm hit with 1,000 environments in the cache.
    big_env = {**env, "RUNNER_CACHE_DIR": str(work / "cache-big")}
    shutil.copytree(work / "cache", work / "cache-big", symlinks=True)
    for alias in (work / "cache-big" / "scripts").iterdir():
        alias.unlink()  # the copies name the first cache's store; let the cold path rewrite it
    fake_cache_entries(work / "cache-big", 999)
    subprocess.run([opts.runner, "run", str(script)], env=big_env, check=True)
    scale = interleaved(
        {
            "1 environment": ([opts.runner, "run", str(script)], env),
            "1,000 environments": ([opts.runner, "run", str(script)], big_env),
        },
        opts.rounds,
    )
    one, many = scale["1 environment"], scale["1,000 environments"]
    print(
        f"scale: warm hit with 1 env {one * 1000:.1f} ms, "
        f"with 1,000 envs {many * 1000:.1f} ms ({many / one:.2f} x)"
    )

    rss = subprocess.run(
        [opts.runner, "run", str(script)],
        env={**env, "RUNNER_DEBUG_RSS": "1"},
        capture_output=True,
        text=True,
        check=True,
    ).stderr.strip()
    print(f"launcher before exec: {rss.removeprefix('runner: launcher ')} (target <= 15 MiB)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

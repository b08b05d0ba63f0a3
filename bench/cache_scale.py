"""Time `runner cache list` and `runner cache prune --dry-run` on a cache of 1,000 environments.

Builds one real environment with runner, then clones its store directory 999 times (hard
links for files, fresh lease files, distinct keys in manifests, pointers and aliases); half
of the clones look unused for 60 days so prune has work to report. Prints medians and the
ratio to `runner cache dir` (CLI start-up) measured in the same run. Target: < 2 s each.

    python bench/cache_scale.py [--envs 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNNER = str(Path(sys.executable).with_name("runner"))


def clone_tree(src: Path, dest: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        target = dest / rel if rel != "." else dest
        target.mkdir(exist_ok=True)
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                os.symlink(os.readlink(path), target / name)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                os.symlink(os.readlink(path), target / name)
            elif name not in ("runner-lease", "runner-env.json"):
                os.link(path, target / name)
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]


def make_cache(root: Path, count: int) -> None:
    env = dict(os.environ, RUNNER_CACHE_DIR=str(root), RUNNER_NO_AUTO_PRUNE="1")
    script = root.parent / "seed.py"
    script.write_text('# /// script\n# dependencies = []\n# ///\nprint("ok")\n')
    subprocess.run([RUNNER, "run", str(script)], env=env, check=True, capture_output=True)
    (pointer,) = [p for p in (root / "envs").iterdir() if not p.name.startswith(".")]
    seed = (root / "envs" / os.readlink(pointer)).resolve()
    manifest = json.loads((seed / "runner-env.json").read_text())
    old = time.time() - 60 * 86400
    for i in range(count - 1):
        key = secrets.token_hex(16)
        dest = root / "store" / f"{key}-{secrets.token_hex(6)}"
        clone_tree(seed, dest)
        manifest["key"] = key
        manifest["requirements"] = [f"pkg{i}==1.0"]
        (dest / "runner-env.json").write_text(json.dumps(manifest))
        (dest / "runner-lease").touch()
        if i % 2:
            os.utime(dest / "runner-lease", (old, old))
        os.symlink(os.path.relpath(dest, root / "envs"), root / "envs" / key)
        (root / "scripts" / secrets.token_hex(32)).write_text(
            f"runner-alias 2\nenv\t{dest}\nscript\t/home/user/script{i}.py\nend\n"
        )


def median_time(args: list[str], env: dict[str, str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([RUNNER, *args], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--envs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    opts = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="runner-cache-scale-"))
    try:
        root = base / "cache"
        started = time.perf_counter()
        make_cache(root, opts.envs)
        print(f"made a cache of {opts.envs} environments in {time.perf_counter() - started:.1f} s")
        env = dict(os.environ, RUNNER_CACHE_DIR=str(root), RUNNER_NO_AUTO_PRUNE="1")
        listed = subprocess.run(
            [RUNNER, "cache", "list", "--json"], env=env, check=True, capture_output=True, text=True
        )
        assert len(json.loads(listed.stdout)["environments"]) == opts.envs
        pruned = json.loads(
            subprocess.run(
                [RUNNER, "cache", "prune", "--dry-run", "--json"],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        baseline = median_time(["cache", "dir"], env, opts.repeat)
        results = {
            "cache list": median_time(["cache", "list"], env, opts.repeat),
            "cache list --json": median_time(["cache", "list", "--json"], env, opts.repeat),
            "cache prune --dry-run": median_time(["cache", "prune", "--dry-run"], env, opts.repeat),
        }
        print(f"baseline `runner cache dir` (start-up): median {baseline * 1000:.0f} ms")
        for name, value in results.items():
            verdict = "ok" if value < 2.0 else "OVER 2 s"
            print(
                f"`runner {name}` on {opts.envs} envs: median {value * 1000:.0f} ms "
                f"({value / baseline:.1f}x start-up; target < 2 s: {verdict})"
            )
        print(f"(prune --dry-run would remove {len(pruned['removed'])} environments)")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Installed-command benchmark: an installed command's warm start against `runner run`.

One interleaved run (each round runs every command once, in turn, so machine noise hits
all of them alike); prints medians, the spread (interquartile range) and ratios:

- direct: `<env>/bin/python <stored script>` (the floor)
- runner run: `runner run <stored script>` (a warm hit: the fast path execs)
- launcher: the command `runner install` wrote, run by its name
- sh launcher: a `#!/bin/sh` file doing `exec runner run <stored script> "$@"` (the
  alternative design, for comparison)
- url: `runner run --allow-insecure-http http://127.0.0.1:PORT/two.py` within the freshness
  window (served by this program; the stored copy runs on the warm path)

The script has two dependencies, served from local wheels (no network).

    python bench/command.py [--rounds 40] [--runner PATH]

Install runner non-editable for a fair figure (an editable install's path finder adds
imports at interpreter start-up): python -m venv /tmp/b && /tmp/b/bin/pip install .
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from workspace import two_package_script  # bench/workspace.py


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True, timeout=60)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--runner", default=str(Path(sys.executable).with_name("runner")))
    opts = parser.parse_args()

    work, script, env = two_package_script("runner-bench-command-")
    try:
        bin_dir = work / "bin"
        env.update(RUNNER_CACHE_DIR=str(work / "cache"), RUNNER_BIN_DIR=str(bin_dir))
        subprocess.run(
            [opts.runner, "install", "-q", "--name", "two", str(script)], env=env, check=True
        )
        listing = subprocess.run(
            [opts.runner, "list", "--json"], env=env, check=True, capture_output=True, text=True
        )
        (row,) = json.loads(listing.stdout)
        stored = row["script"]
        python = os.path.join(row["environment"]["path"], "bin", "python")
        sh_launcher = work / "two-sh"
        sh_launcher.write_text(
            f'#!/bin/sh\nexec {shlex.quote(opts.runner)} run {shlex.quote(stored)} "$@"\n'
        )
        sh_launcher.chmod(0o755)
        server = _serve(script.parent)
        url = f"http://127.0.0.1:{server.server_address[1]}/{script.name}"
        env["RUNNER_URL_TTL"] = "3600"
        commands = {
            "direct": [python, stored],
            "runner run": [opts.runner, "run", stored],
            "launcher": [str(bin_dir / "two")],
            "sh launcher": [str(sh_launcher)],
            "url": [opts.runner, "run", "--allow-insecure-http", url],
        }
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for cmd in commands.values():
            timed(cmd, env)  # warm every command once
        for _ in range(opts.rounds):
            for name, cmd in commands.items():
                samples[name].append(timed(cmd, env))
        base = statistics.median(samples["runner run"])
        print(f"{'command':<12} {'median ms':>10} {'IQR ms':>8} {'vs runner run':>14}")
        for name, values in samples.items():
            median = statistics.median(values)
            q = statistics.quantiles(values, n=4)
            print(
                f"{name:<12} {median * 1000:>10.1f} {(q[2] - q[0]) * 1000:>8.1f} "
                f"{median / base:>13.2f}x"
            )
        first_line = (bin_dir / "two").read_text().splitlines()[0]
        print(f"({opts.rounds} interleaved rounds; the launcher starts with {first_line!r})")
        server.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _serve(directory: Path) -> http.server.ThreadingHTTPServer:
    import functools
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # stdlib's name
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


if __name__ == "__main__":
    main()

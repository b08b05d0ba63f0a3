"""Cache lifecycle: list, prune, clean, verify and automatic pruning, with real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import filelock
import pytest

from runner import lifecycle
from runner.cache import Cache
from runner.errors import UsageError
from runner.report import Reporter
from tests.conftest import RUNNER, read_fifo, readline, run_runner, write_script

pytestmark = pytest.mark.timeout(180)

DAY = 86400.0


def ok_script(tmp: Path, name: str = "load.py") -> Path:
    return write_script(tmp / name, 'print("ok")\n', dependencies=[])


def variant(i: int) -> list[str]:
    """Options giving a distinct environment key without installing anything."""
    return ["--exclude-newer", f"2020-01-{i:02d}T00:00:00Z"]


def build(script: Path, *opts: str) -> Path:
    """Run a script (cold or warm) and return its published store directory."""
    result = run_runner("run", *opts, str(script))
    assert result.returncode == 0, result.stderr
    return env_for(*opts)


def env_for(*opts: str) -> Path:
    """The published environment built with these `variant` options."""
    cache = Cache()
    wanted = opts[1] if opts else None
    found = []
    for pointer in cache.envs.iterdir():
        target = cache.pointer_target(pointer.name)
        if pointer.name.startswith(".") or target is None:
            continue
        if (cache.read_manifest(target) or {}).get("inputs", {}).get("exclude_newer") == wanted:
            found.append(target)
    assert len(found) == 1, found
    return found[0]


def store_keys(root: Path) -> list[str]:
    store = root / "store"
    return sorted(p.name for p in store.iterdir()) if store.exists() else []


def age(env_dir: Path, days: float) -> None:
    """Pretend an environment was last used `days` ago."""
    stamp = time.time() - days * DAY
    os.utime(env_dir / "runner-lease", (stamp, stamp))


def cache_json(*args: str) -> dict:
    result = run_runner("cache", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            out[os.path.relpath(path, root)] = (
                st.st_mode,
                st.st_mtime_ns if not os.path.isdir(path) else 0,
            )
    return out


class Hold:
    """A script running in its environment until released (holds the lease meanwhile)."""

    def __init__(self, tmp: Path, *opts: str):
        script = write_script(
            tmp / "hold.py",
            'import sys\nprint("ready", flush=True)\nsys.stdin.read()\nprint("done")\n',
            dependencies=[],
        )
        self.proc = subprocess.Popen(
            [RUNNER, "run", *opts, str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            line = readline(self.proc.stdout)  # the event: the script runs, its lease is held
        except BaseException:
            self.proc.kill()
            self.proc.communicate(timeout=60)
            raise
        if line != "ready\n":
            self.proc.kill()
            _, err = self.proc.communicate(timeout=60)
            raise AssertionError(f"the held script did not start: {err}")

    def release(self) -> tuple[int, str]:
        out, _ = self.proc.communicate("", timeout=60)
        return self.proc.returncode, out


# --------------------------------------------------------------------------- units


def test_parse_duration() -> None:
    assert lifecycle.parse_duration("30d") == 30 * DAY
    assert lifecycle.parse_duration("12h") == 12 * 3600
    assert lifecycle.parse_duration("90m") == 90 * 60
    assert lifecycle.parse_duration("2w") == 14 * DAY
    assert lifecycle.parse_duration("7") == 7 * DAY
    assert lifecycle.parse_duration("0s") == 0
    for bad in ("", "d", "3y", "-1d", "1 day"):
        with pytest.raises(UsageError):
            lifecycle.parse_duration(bad)


def test_cache_dir_prints_root(cache_dir: Path) -> None:
    result = run_runner("cache", "dir")
    assert result.returncode == 0
    assert result.stdout.strip() == str(cache_dir)


def test_bad_duration_is_a_usage_error() -> None:
    result = run_runner("cache", "prune", "--older-than", "soon")
    assert result.returncode == 2
    assert "not a duration" in result.stderr


# --------------------------------------------------------------------------- list


def test_list_human_and_json_agree(tmp_path: Path, cache_dir: Path) -> None:
    a = ok_script(tmp_path, "a.py")
    env_a = build(a)
    env_b = build(a, *variant(1))
    hold = Hold(tmp_path, *variant(1))
    try:
        data = cache_json("list")
        human = run_runner("cache", "list")
    finally:
        assert hold.release()[0] == 0
    assert human.returncode == 0
    assert data["version"] == 1 and data["root"] == str(cache_dir)
    rows = {e["path"]: e for e in data["environments"]}
    assert set(rows) == {str(env_a), str(env_b)}
    assert rows[str(env_b)]["in_use"] is True
    assert rows[str(env_a)]["in_use"] is False
    for env in data["environments"]:
        assert env["state"] == "published"
        assert env["requirements"] == [] and env["interpreter"].startswith("cpython ")
        assert env["size"] > 0 and env["created"] and env["last_used"]
        assert env["short_key"] == env["key"][:12]
        assert str(a.resolve()) in env["scripts"] or str(a) in env["scripts"]
    table = human.stdout.splitlines()
    assert table[0].split()[:2] == ["KEY", "STATE"]
    for env in data["environments"]:
        (line,) = [row for row in table if row.startswith(env["short_key"])]
        assert ("yes" if env["in_use"] else "no") in line.split()
        assert "(no dependencies)" in line
    assert table[-1].startswith("2 environments")


# --------------------------------------------------------------------------- prune / clean


def test_prune_and_clean_under_load(tmp_path: Path, cache_dir: Path) -> None:
    """4 workers run scripts back to back while prune and clean run: nothing fails."""
    load = ok_script(tmp_path)
    env_load = build(load)
    old = [build(load, *variant(i)) for i in (2, 3)]
    idle = build(load, *variant(13))  # recently used but idle: clean removes it, prune keeps it
    hold = Hold(tmp_path, *variant(1))
    env_hold = env_for(*variant(1))
    for env in (*old, env_hold):
        age(env, 40)  # unused for 40 days (the held one only looks unused)

    stop = threading.Event()
    started = threading.Barrier(5, timeout=240)
    failures: list[str] = []
    runs = [0] * 4

    def worker(n: int) -> None:
        first = True
        while not stop.is_set():
            result = run_runner("run", str(load), timeout=120)
            runs[n] += 1
            if result.returncode != 0 or result.stdout != "ok\n":
                failures.append(f"rc={result.returncode} out={result.stdout!r} err={result.stderr}")
            if first:
                first = False
                started.wait()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        started.wait()  # every worker has completed a run: the load is on
        pruned = cache_json("prune")
        removed = {r["path"] for r in pruned["removed"] if r["kind"] == "environment"}
        assert removed == {str(p) for p in old}
        assert idle.exists()
        assert {
            "path": str(env_hold),
            "reason": "in use",
            "key": env_hold.name.rsplit("-", 1)[0],
            "detail": None,  # the descriptor lease said so; no need to look for processes
            "removable_after": None,
        } in pruned["kept"]
        assert pruned["bytes_freed"] > 0
        for env in old:
            assert not env.exists()
            assert not (cache_dir / "envs" / env.name.rsplit("-", 1)[0]).exists()
        cleaned_paths: set[str] = set()
        for _ in range(4):
            cleaned = cache_json("clean")
            cleaned_paths |= {r["path"] for r in cleaned["removed"] if r["kind"] == "environment"}
            kept = {k["path"]: k["reason"] for k in cleaned["kept"]}
            assert kept[str(env_hold)] == "in use"
        # Both commands returned while the load (and the held script) still ran.
        assert hold.proc.poll() is None
        assert not stop.is_set()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
        rc, out = hold.release()
    assert rc == 0 and out == "done\n"
    assert failures == []
    assert sum(runs) >= 8
    assert env_hold.exists()  # in use throughout, never removed
    assert str(env_hold) not in cleaned_paths
    assert str(idle) in cleaned_paths and not idle.exists()
    # The load's own environment may or may not have been idle when clean looked; if it
    # was removed, the workers above rebuilt it without a failed run.
    load_key = env_load.name.rsplit("-", 1)[0]
    assert all(p == str(idle) or Path(p).name.startswith(load_key) for p in cleaned_paths)
    assert run_runner("run", str(load)).stdout == "ok\n"


def test_clean_only_the_given_scripts(tmp_path: Path) -> None:
    a = ok_script(tmp_path, "a.py")
    b = ok_script(tmp_path, "b.py")
    env_a = build(a, *variant(4))
    env_b = build(b, *variant(5))
    env_shared = build(a)  # a's default environment
    data = cache_json("clean", str(a))
    removed = {r["path"] for r in data["removed"]}
    assert removed == {str(env_a), str(env_shared)}
    assert env_b.exists() and not env_a.exists() and not env_shared.exists()
    missing = cache_json("clean", str(tmp_path / "nope.py"))
    assert missing["not_found"] == [str(tmp_path / "nope.py")] and missing["removed"] == []
    # The next run of a simply rebuilds.
    assert run_runner("run", *variant(4), str(a)).stdout == "ok\n"


def test_dry_run_changes_nothing_and_json_matches_human(tmp_path: Path, cache_dir: Path) -> None:
    s = ok_script(tmp_path)
    envs = [build(s, *variant(i)) for i in (6, 7)]
    for env in envs:
        age(env, 40)
    before = snapshot(cache_dir)
    data = cache_json("prune", "--dry-run")
    human = run_runner("cache", "prune", "--dry-run")
    clean_data = cache_json("clean", "--dry-run")
    assert snapshot(cache_dir) == before
    assert data["dry_run"] is True
    assert {r["path"] for r in data["removed"]} == {str(e) for e in envs}
    assert {r["path"] for r in clean_data["removed"]} == {str(e) for e in envs}
    lines = [line for line in human.stderr.splitlines() if "would remove environment" in line]
    assert sorted(line.split()[4] for line in lines) == sorted(str(e) for e in envs)
    assert "would remove 2 environments" in human.stderr
    assert human.stdout == ""
    real = cache_json("prune")
    assert real["bytes_freed"] == data["bytes_freed"]
    assert {r["path"] for r in real["removed"]} == {r["path"] for r in data["removed"]}


def test_prune_keeps_recent_and_respects_older_than(tmp_path: Path) -> None:
    s = ok_script(tmp_path)
    env = build(s)
    age(env, 2)
    assert cache_json("prune")["removed"] == []
    assert cache_json("prune", "--older-than", "3d")["removed"] == []
    data = cache_json("prune", "--older-than", "36h")
    assert [r["path"] for r in data["removed"]] == [str(env)]
    assert list((Cache().envs).iterdir()) == [] and list(Cache().scripts.iterdir()) == []


def test_killed_build_leftovers_removed_after_grace_only(tmp_path: Path, cache_dir: Path) -> None:
    s = ok_script(tmp_path)
    assert run_runner("cache", "dir").stdout == f"{cache_dir}\n"
    fifo = tmp_path / "hang"
    os.mkfifo(fifo)
    env = dict(os.environ, RUNNER_TEST_HANG_AT="created", RUNNER_TEST_HANG_FILE=str(fifo))
    proc = subprocess.Popen([RUNNER, "run", str(s)], env=env, stderr=subprocess.DEVNULL)
    try:
        pid = int(read_fifo(fifo))  # the build is inside its private directory
        (leftover,) = [cache_dir / "store" / n for n in store_keys(cache_dir)]
        # Even with no grace period, a build holding its lock is never touched.
        data = cache_json("prune", "--grace", "0s")
        assert data["removed"] == []
        assert data["kept"][0]["reason"] == "build in progress"
        os.kill(pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert leftover.exists() and not (leftover / "runner-env.json").exists()
    assert cache_json("prune")["removed"] == []  # younger than the grace period: kept
    assert cache_json("clean")["removed"] == []
    stamp = time.time() - 2 * 3600
    os.utime(leftover, (stamp, stamp))
    data = cache_json("prune")
    assert [(r["path"], r["kind"], r["reason"]) for r in data["removed"]] == [
        (str(leftover), "unpublished", "unfinished build")
    ]
    assert not leftover.exists()
    # RUNNER_PRUNE_GRACE shortens the period (for tests and impatient users).
    (cache_dir / "store" / ("f" * 32 + "-" + "a" * 12)).mkdir()
    assert run_runner("cache", "prune", env={"RUNNER_PRUNE_GRACE": "0"}).returncode == 0
    assert store_keys(cache_dir) == []
    assert run_runner("run", str(s)).stdout == "ok\n"


def test_prune_racing_cold_builds_of_the_same_key(tmp_path: Path) -> None:
    """Cold builds of one key run back to back while clean deletes it: no run fails."""
    s = ok_script(tmp_path)
    stop = threading.Event()
    failures: list[str] = []
    runs = [0, 0]

    def worker(n: int) -> None:
        while not stop.is_set():
            r = run_runner("run", str(s), env={"RUNNER_NO_FASTPATH": "1"}, timeout=120)
            runs[n] += 1
            if r.returncode != 0 or r.stdout != "ok\n":
                failures.append(r.stderr)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    removed = 0
    try:
        # Clean until it has caught the environment idle a few times (between two runs);
        # each removal forces the next run through a cold build racing the next clean.
        for _ in range(300):
            data = cache_json("clean", "--grace", "0s")
            removed += sum(
                1 for r in data["removed"] if r["kind"] in ("environment", "unpublished")
            )
            if removed >= 3:
                break
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
    assert failures == []
    assert sum(runs) >= 2 and removed >= 3


def test_prune_skips_a_key_whose_build_lock_is_held(tmp_path: Path, cache_dir: Path) -> None:
    s = ok_script(tmp_path)
    env = build(s)
    age(env, 40)
    key = env.name.rsplit("-", 1)[0]
    lock = filelock.FileLock(str(cache_dir / "locks" / f"{key}.lock"))
    with lock:
        data = cache_json("prune")
    assert data["removed"] == [] and data["kept"][0]["reason"] == "build in progress"
    assert env.exists()
    assert [r["path"] for r in cache_json("prune")["removed"]] == [str(env)]
    assert (cache_dir / "locks" / f"{key}.lock").exists()  # lock files are never deleted


def test_stale_aliases_pointers_trash_and_temp_files(tmp_path: Path, cache_dir: Path) -> None:
    s = ok_script(tmp_path)
    env = build(s)
    cache = Cache()
    alias = next(cache.scripts.iterdir())
    (cache.store / ".trash-0123456789ab").mkdir()
    (cache.store / ".trash-0123456789ab" / "x").write_text("x")
    (cache.envs / ("a" * 32)).symlink_to("../store/" + "a" * 32 + "-" + "0" * 12)
    tmp_file = cache.envs / f".{'b' * 32}.123abc.tmp"
    tmp_file.write_text("")
    old = time.time() - 7200
    os.utime(tmp_file, (old, old))
    fresh_tmp = cache.scripts / f".{'c' * 64}.x1_y.tmp"
    fresh_tmp.write_text("")
    # The alias now names a missing directory (the renamed one is unpublished, kept a while).
    os.rename(env, cache.store / (env.name[:-12] + "0" * 12))
    data = cache_json("prune")
    kinds = sorted(r["kind"] for r in data["removed"])
    assert kinds == ["alias", "pointer", "pointer", "temp", "trash"]
    assert not alias.exists() and not tmp_file.exists() and fresh_tmp.exists()
    assert not (cache.store / ".trash-0123456789ab").exists()


# --------------------------------------------------------------------------- verify


def test_verify_detects_and_repairs_damage(
    tmp_path: Path, cache_dir: Path, offline_wheels: Path
) -> None:
    s = write_script(
        tmp_path / "a.py", "import alpha\nprint(alpha.VERSION)\n", dependencies=["alpha"]
    )
    env = build(s)
    assert run_runner("cache", "verify").returncode == 0
    (module,) = env.glob("lib/python*/site-packages/alpha.py")
    # Replaced, not edited in place: uv hard-links installed files to its own cache, which an
    # in-place edit would damage too (and the rebuild below would install the damage).
    tampered = module.read_text() + "# tampered\n"
    module.unlink()
    module.write_text(tampered)
    data = json.loads(run_runner("cache", "verify", "--json").stdout)
    (check,) = data["environments"]
    assert not check["ok"] and any("alpha.py" in p and "wrong size" in p for p in check["problems"])
    module.unlink()
    result = run_runner("cache", "verify")
    assert result.returncode == 106
    assert "alpha.py is missing" in result.stderr and "--repair" in result.stderr
    # Without --repair nothing changes: the run fails the way a damaged env does.
    assert env.exists()
    repaired = run_runner("cache", "verify", "--repair", "--json")
    assert repaired.returncode == 0, repaired.stderr
    (check,) = json.loads(repaired.stdout)["environments"]
    assert check["action"] == "removed"
    assert not env.exists() and list(Cache().envs.iterdir()) == []
    rerun = run_runner("run", str(s))
    assert rerun.returncode == 0 and rerun.stdout == "1.0\n", rerun.stderr
    assert run_runner("cache", "verify").returncode == 0


def test_verify_repair_keeps_an_env_in_use_but_unpublishes_it(tmp_path: Path) -> None:
    s = ok_script(tmp_path)
    hold = Hold(tmp_path, *variant(8))
    try:
        cache = Cache()
        (pointer,) = list(cache.envs.iterdir())
        env = cache.pointer_target(pointer.name)
        assert env is not None
        (env / "runner-env.json").write_text("{broken")
        result = run_runner("cache", "verify", "--repair", "--json")
        (check,) = json.loads(result.stdout)["environments"]
        assert "the manifest is missing or unreadable" in check["problems"]
        assert check["action"] == "unpublished"
        assert env.exists() and not pointer.exists() and list(cache.scripts.iterdir()) == []
    finally:
        assert hold.release() == (0, "done\n")
    assert run_runner("run", *variant(8), str(s)).stdout == "ok\n"


# --------------------------------------------------------------------------- automatic


def test_auto_prune_runs_at_most_daily(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = ok_script(tmp_path)
    env = build(s)
    age(env, 40)
    cache = Cache()
    reporter = Reporter(quiet=True)
    assert lifecycle.maybe_auto_prune(cache, reporter) is None  # RUNNER_NO_AUTO_PRUNE=1
    assert env.exists()
    monkeypatch.delenv("RUNNER_NO_AUTO_PRUNE")
    cache = Cache()  # the settings value is read when the cache is made
    result = lifecycle.maybe_auto_prune(cache, reporter)
    assert result is not None and [r.path for r in result.removed] == [str(env)]
    assert (cache.root / lifecycle.AUTO_PRUNE_STAMP).exists()
    env2 = build(s, *variant(9))
    age(env2, 40)
    assert lifecycle.maybe_auto_prune(cache, reporter) is None  # pruned less than a day ago
    assert env2.exists()
    old = time.time() - 2 * DAY
    os.utime(cache.root / lifecycle.AUTO_PRUNE_STAMP, (old, old))
    # The cold path starts it beside the script: a new build triggers the prune of env2 in a
    # detached process, which restamps first; the run itself does not wait for it.
    assert run_runner("run", *variant(10), str(s)).returncode == 0
    deadline = time.monotonic() + 60
    while env2.exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # no event to wait on: the prune runs in a detached process
    assert not env2.exists()


def test_auto_prune_respects_its_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = ok_script(tmp_path)
    envs = [build(s, *variant(i)) for i in (11, 12)]
    for env in envs:
        age(env, 40)
    result = lifecycle.prune(Cache(), budget=0.0)
    assert result.complete is False
    assert all(env.exists() for env in envs)


def test_the_cold_path_starts_the_detached_prune_only_when_due(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner import api

    started: list[list[str]] = []

    def spawn_detached(cmd: list[str], **kwargs: object) -> int:
        started.append(cmd)
        return 1

    monkeypatch.setattr(api.proc, "spawn_detached", spawn_detached)
    cache = Cache(cache_dir)
    cache.ensure()
    assert not api.start_auto_prune(cache)  # RUNNER_NO_AUTO_PRUNE=1
    monkeypatch.delenv("RUNNER_NO_AUTO_PRUNE")
    cache = Cache(cache_dir)
    assert api.start_auto_prune(cache)  # never pruned: due
    assert started == [[sys.executable, "-m", "runner.lifecycle", str(cache_dir)]]
    stamp = cache_dir / lifecycle.AUTO_PRUNE_STAMP
    stamp.write_text("")
    assert not api.start_auto_prune(cache)  # pruned less than a day ago
    old = time.time() - 2 * DAY
    os.utime(stamp, (old, old))
    assert api.start_auto_prune(cache)
    assert len(started) == 2


def test_auto_prune_is_never_a_child_of_the_script(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run execs the script: a prune started as its child would be the script's child,
    which a script waiting for any child of its own would reap (or wait for)."""
    monkeypatch.delenv("RUNNER_NO_AUTO_PRUNE", raising=False)
    script = write_script(
        tmp_path / "waits.py",
        "import os\n"
        "try:\n"
        "    print('child', os.waitpid(-1, os.WNOHANG))\n"
        "except ChildProcessError:\n"
        "    print('no child')\n",
        dependencies=[],
    )
    result = run_runner("run", str(script))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "no child\n"
    stamp = cache_dir / lifecycle.AUTO_PRUNE_STAMP
    deadline = time.monotonic() + 60
    while not stamp.exists():  # the detached prune did run (a file, no event to wait on)
        assert time.monotonic() < deadline, "the auto-prune never ran"
        time.sleep(0.05)


def test_prune_removes_old_logs_and_stdin_scripts_but_not_recent_ones(
    tmp_path: Path, cache_dir: Path
) -> None:
    cache = Cache(cache_dir)
    cache.ensure()
    stdin_dir = cache_dir / "stdin"
    stdin_dir.mkdir()
    old_log = cache.logs / f"{'a' * 32}-20260101T000000-123.log"
    new_log = cache.logs / "lock-20260101T000000-124.log"
    old_stdin, new_stdin = stdin_dir / f"{'1' * 64}.py", stdin_dir / f"{'2' * 64}.py"
    long_ago = time.time() - 40 * 86400
    for path in (old_log, new_log, old_stdin, new_stdin):
        path.write_text("x")
    for path in (old_log, old_stdin):
        os.utime(path, (long_ago, long_ago))
    dry = lifecycle.prune(cache, dry_run=True)
    assert {r.kind for r in dry.removed} == {"log", "stdin script"}
    assert old_log.exists() and old_stdin.exists()
    result = lifecycle.prune(cache)
    assert {r.path for r in result.removed} == {str(old_stdin), str(old_log)}
    assert not old_log.exists() and not old_stdin.exists()
    assert new_log.exists() and new_stdin.exists()

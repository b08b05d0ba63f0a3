"""The cache trust rule: runner never executes what another user could have planted.

Real processes; where ownership matters, a second user is created with `useradd` (removed
afterwards), and the tests skip with the reason where that is impossible.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from tests import warmpath
from tests.conftest import run_runner, write_script

KEY = "ab" * 16
TOKEN = "cd" * 6


def plant_environment(env_dir: Path, marker: Path) -> None:
    """A fake environment whose `python` proves it ran by writing `marker`."""
    (env_dir / "bin").mkdir(parents=True)
    python = env_dir / "bin" / "python"
    python.write_text(f"#!/bin/sh\necho planted > {marker}\n")
    python.chmod(0o755)
    (env_dir / warmpath.LEASE_NAME).touch()
    (env_dir / warmpath.MANIFEST_NAME).write_text(json.dumps({"key": KEY}) + "\n")


def plant_alias(cache: Path, script: Path, env_dir: Path) -> None:
    digest = warmpath.digest_for_bytes(script.read_bytes(), [], None, str(script.parent))
    assert digest is not None
    (cache / "scripts").mkdir(parents=True, exist_ok=True)
    (cache / "scripts" / digest).write_text(f"runner-alias 2\nenv\t{env_dir}\nend\n")


def chown_tree(path: Path, uid: int, gid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [*dirnames, *filenames]:
            os.lchown(os.path.join(dirpath, name), uid, gid)
    os.lchown(path, uid, gid)


def test_alias_naming_a_directory_outside_the_store_is_never_followed(
    tmp_path: Path, offline_wheels: Path, cache_dir: Path
) -> None:
    script = write_script(
        tmp_path / "s.py", "import alpha\nprint('real', alpha.VERSION)\n", ["alpha"]
    )
    assert run_runner("run", str(script)).returncode == 0  # a real cache, ours
    marker = tmp_path / "marker"
    elsewhere = tmp_path / "elsewhere" / f"{KEY}-{TOKEN}"
    plant_environment(elsewhere, marker)
    plant_alias(cache_dir, script, elsewhere)
    got = run_runner("run", str(script))
    assert (got.returncode, got.stdout) == (0, "real 1.0\n"), got.stderr
    assert not marker.exists()


def test_alias_naming_a_store_directory_of_another_form_is_never_followed(
    tmp_path: Path, offline_wheels: Path, cache_dir: Path
) -> None:
    script = write_script(tmp_path / "s.py", "import alpha\nprint('real')\n", ["alpha"])
    assert run_runner("run", str(script)).returncode == 0
    marker = tmp_path / "marker"
    odd = cache_dir / "store" / "user-uploads"
    plant_environment(odd, marker)
    plant_alias(cache_dir, script, odd)
    got = run_runner("run", str(script))
    assert (got.returncode, got.stdout) == (0, "real\n"), got.stderr
    assert not marker.exists()


def test_a_symlinked_store_is_refused_by_name(
    tmp_path: Path, offline_wheels: Path, cache_dir: Path
) -> None:
    script = write_script(tmp_path / "s.py", "print('hi')\n", [])
    assert run_runner("run", str(script)).returncode == 0
    outside = tmp_path / "outside-store"
    (cache_dir / "store").rename(outside)
    (cache_dir / "store").symlink_to(outside)
    marker = tmp_path / "marker"
    plant_environment(outside / f"{KEY}-{TOKEN}", marker)
    plant_alias(cache_dir, script, cache_dir / "store" / f"{KEY}-{TOKEN}")
    got = run_runner("run", str(script))
    assert got.returncode == 106, got.stderr
    assert f"{cache_dir / 'store'} is not a directory of the cache" in got.stderr
    assert not marker.exists()


def test_a_cache_writable_by_others_is_refused_and_its_alias_not_followed(
    tmp_path: Path, offline_wheels: Path, cache_dir: Path
) -> None:
    script = write_script(tmp_path / "s.py", "print('hi')\n", [])
    assert run_runner("run", str(script)).returncode == 0
    marker = tmp_path / "marker"
    env_dir = cache_dir / "store" / f"{KEY}-{TOKEN}"
    plant_environment(env_dir, marker)
    plant_alias(cache_dir, script, env_dir)
    cache_dir.chmod(0o777)
    got = run_runner("run", str(script))
    assert got.returncode == 106, got.stderr
    assert "writable by other users" in got.stderr
    assert not marker.exists()


def test_another_users_cache_never_runs_its_code(
    tmp_path: Path, cache_dir: Path, other_user: tuple[str, int, int]
) -> None:
    """The planted alias, lease, manifest and bin/python of another user: refused, not run,
    even on the warm path; with RUNNER_ALLOW_SHARED_CACHE the store boundary still holds."""
    script = write_script(tmp_path / "s.py", "print('hi')\n", [])
    marker = tmp_path / "marker"
    for name in ("envs", "store", "locks", "scripts", "interpreters", "logs"):
        (cache_dir / name).mkdir(parents=True, exist_ok=True)
    env_dir = cache_dir / "store" / f"{KEY}-{TOKEN}"
    plant_environment(env_dir, marker)
    plant_alias(cache_dir, script, env_dir)
    _, uid, gid = other_user
    chown_tree(cache_dir, uid, gid)
    cache_dir.chmod(0o755)
    got = run_runner("run", str(script))
    assert got.returncode == 106, got.stderr
    assert f"belongs to another user (uid {uid})" in got.stderr
    assert not marker.exists()
    for command in (["cache", "list"], ["cache", "clean"]):
        refused = run_runner(*command)
        assert refused.returncode == 106, (command, refused.stderr)
    assert env_dir.exists()


def test_a_parent_directory_another_user_controls_is_refused(
    tmp_path: Path, other_user: tuple[str, int, int]
) -> None:
    """Whoever can rename the cache away can plant a new one: such a parent is refused."""
    parent = tmp_path / "shared-parent"
    parent.mkdir()
    _, uid, gid = other_user
    os.chown(parent, uid, gid)
    script = write_script(tmp_path / "s.py", "print('hi')\n", [])
    got = run_runner("run", str(script), env={"RUNNER_CACHE_DIR": str(parent / "cache")})
    assert got.returncode == 106, got.stderr
    assert f"{parent}, above the runner cache" in got.stderr
    # A sticky, world-writable parent owned by root (like /tmp) is fine.
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o777 | stat.S_ISVTX)
    ok = run_runner("run", str(script), env={"RUNNER_CACHE_DIR": str(sticky / "cache")})
    assert (ok.returncode, ok.stdout) == (0, "hi\n"), ok.stderr

"""The content-addressed file store: sharing, its safety under races and kills, cleanup, verify."""

from __future__ import annotations

import errno
import io
import json
import multiprocessing
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runner import builder, filestore
from runner.cache import Cache
from runner.report import Reporter
from tests.conftest import INSTALLERS, run_runner, write_script
from tests.test_concurrency import _kill_group, _start_build, _wait_for_checkpoint
from tests.wheels import make_wheel

SITE = "lib/python3.11/site-packages"
BODY = "import alpha\nprint(alpha.VERSION, alpha.where.__code__.co_filename)\n"


def fake_env(root: Path, name: str, files: dict[str, bytes], record: list[str] = ()) -> Path:  # type: ignore[assignment]
    """An environment-shaped directory: `files` relative to site-packages (or env root when
    they start with '/'), and one RECORD listing `record` (paths relative to site-packages)."""
    env = root / "store" / f"{'0' * 32}-{name}"
    for rel, data in files.items():
        path = env / rel[1:] if rel.startswith("/") else env / SITE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    info = env / SITE / "pkg-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "RECORD").write_text("".join(f"{r},,\n" for r in record))
    return env


def ino(path: Path) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_dev, st.st_ino


def stored_for(cache_root: Path, path: Path) -> Path:
    executable = bool(os.stat(path).st_mode & 0o111)
    return filestore.stored_path(
        filestore.store_root(cache_root), filestore.hash_file(path), executable
    )


def all_stored_files_match_their_names(cache_root: Path) -> None:
    for stored in filestore.stored_files(cache_root):
        named = filestore.digest_of_stored(stored.path)
        assert named is not None
        assert filestore.hash_file(stored.path) == named[0], stored.path
        assert stat.S_IMODE(stored.st.st_mode) & 0o222 == 0


# ---------------------------------------------------------------------------- sharing


def test_identical_files_become_one_read_only_stored_file(tmp_path: Path) -> None:
    common = {"pkg/__init__.py": b"X = 1\n", "pkg/big.py": b"y = 2\n" * 1000, "empty.py": b""}
    a = fake_env(tmp_path, "a", {**common, "a_only.py": b"A\n"})
    b = fake_env(tmp_path, "b", {**common, "b_only.py": b"B\n"})
    first = filestore.share(a, tmp_path)
    second = filestore.share(b, tmp_path)
    # Empty files are shared as well (one stored empty file for empty.py and the RECORDs).
    assert (first.linked, first.added) == (1, 4)
    assert (second.linked, second.added) == (4, 1)  # b_only.py is new
    for rel in ("pkg/__init__.py", "pkg/big.py"):
        fa, fb = a / SITE / rel, b / SITE / rel
        assert ino(fa) == ino(fb) == ino(stored_for(tmp_path, fa))
        assert fb.read_bytes() == common[rel]
        assert stat.S_IMODE(os.stat(fa).st_mode) == 0o444
    assert ino(a / SITE / "empty.py") == ino(b / SITE / "pkg-1.0.dist-info" / "RECORD")
    assert (a / SITE / "a_only.py").read_bytes() == b"A\n"
    all_stored_files_match_their_names(tmp_path)


def test_executable_and_plain_copies_of_the_same_bytes_are_stored_apart(tmp_path: Path) -> None:
    a = fake_env(tmp_path, "a", {"tool.so": b"\x7fELF..."})
    b = fake_env(tmp_path, "b", {"tool.so": b"\x7fELF..."})
    os.chmod(a / SITE / "tool.so", 0o755)
    filestore.share(a, tmp_path)
    filestore.share(b, tmp_path)
    assert ino(a / SITE / "tool.so") != ino(b / SITE / "tool.so")
    assert stat.S_IMODE(os.stat(a / SITE / "tool.so").st_mode) == 0o555
    assert stat.S_IMODE(os.stat(b / SITE / "tool.so").st_mode) == 0o444
    assert stored_for(tmp_path, a / SITE / "tool.so").name.endswith(filestore.EXECUTABLE_SUFFIX)


def test_a_file_an_installer_linked_from_its_cache_is_left_linked_to_it(
    tmp_path: Path,
) -> None:
    """uv links its cached files into environments: they are shared already (with every
    environment uv linked them into), and not ours: neither copied nor made read-only."""
    installer_cache = tmp_path / "uv-cache" / "mod.py"
    installer_cache.parent.mkdir()
    installer_cache.write_bytes(b"print('cached')\n")
    os.chmod(installer_cache, 0o644)
    env = fake_env(tmp_path, "a", {})
    os.link(installer_cache, env / SITE / "mod.py")  # what uv's hard-link mode does
    result = filestore.share(env, tmp_path)
    assert result.added == 1 and result.already_shared == 1  # the (empty) RECORD; mod.py
    assert stat.S_IMODE(os.stat(installer_cache).st_mode) == 0o644  # their file: untouched
    assert ino(env / SITE / "mod.py") == ino(installer_cache)  # still linked to it
    assert os.stat(installer_cache).st_nlink == 2  # and not to the store
    assert (env / SITE / "mod.py").read_bytes() == b"print('cached')\n"
    assert not list(filestore.temp_files(tmp_path))


def test_only_site_packages_and_installed_scripts_are_shared(tmp_path: Path) -> None:
    files = {
        "/pyvenv.cfg": b"home = /usr\n",
        "/runner-lease": b"x",
        "/runner-env.json": b"{}",
        "/bin/activate": b"# not written by an installer\n",
        "/bin/tool": b"#!/bin/sh\necho tool\n",
        "mod.py": b"m = 1\n",
    }
    env = fake_env(tmp_path, "a", files, record=["mod.py", "../../../bin/tool"])
    filestore.share(env, tmp_path)
    for rel in ("pyvenv.cfg", "runner-lease", "runner-env.json", "bin/activate"):
        assert os.stat(env / rel).st_nlink == 1, rel
    for path in (env / "bin" / "tool", env / SITE / "mod.py"):
        assert os.stat(path).st_nlink == 2


def test_bytecode_only_pass_takes_only_pyc_files(tmp_path: Path) -> None:
    env = fake_env(tmp_path, "a", {"m.py": b"m = 1\n", "__pycache__/m.cpython-311.pyc": b"pyc"})
    result = filestore.share(env, tmp_path, bytecode_only=True)
    assert (result.files, result.added) == (1, 1)
    assert os.stat(env / SITE / "m.py").st_nlink == 1


@pytest.mark.parametrize("code", [errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP])
def test_where_links_cannot_be_made_files_stay_private_and_nothing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    calls: list[str] = []

    def no_links(src: object, dst: object, **kwargs: object) -> None:
        calls.append(str(dst))
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(filestore, "_link", no_links)
    files = {f"m{i}.py": f"m = {i}\n".encode() for i in range(20)}
    env = fake_env(tmp_path, "a", files)
    result = filestore.share(env, tmp_path)
    assert result.fallback is not None and os.strerror(code) in result.fallback
    assert result.linked == result.added == 0
    assert len(calls) <= filestore.SHARE_THREADS  # it stops trying after the first refusal
    for rel, data in files.items():
        path = env / SITE / rel
        assert path.read_bytes() == data
        assert stat.S_IMODE(os.stat(path).st_mode) & 0o200  # mode restored
    assert not list(filestore.stored_files(tmp_path))
    # The build says so once, only with -v.
    out = io.StringIO()
    assert not builder._share(
        env, Cache(tmp_path), Reporter(verbose=True, stream=out), bytecode_only=False
    )
    assert out.getvalue().count("cannot hard-link") == 1
    quiet = io.StringIO()
    builder._share(env, Cache(tmp_path), Reporter(stream=quiet), bytecode_only=False)
    assert quiet.getvalue() == ""


def test_a_file_with_too_many_links_stays_private_and_the_rest_is_shared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = fake_env(tmp_path, "a", {"x.py": b"x\n", "y.py": b"y\n"})
    filestore.share(a, tmp_path)
    real_link = os.link
    x_stored = str(stored_for(tmp_path, a / SITE / "x.py"))

    def link(src: object, dst: object, **kwargs: object) -> None:
        if str(src) == x_stored:
            raise OSError(errno.EMLINK, os.strerror(errno.EMLINK))
        real_link(src, dst, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(filestore, "_link", link)
    b = fake_env(tmp_path, "b", {"x.py": b"x\n", "y.py": b"y\n"})
    result = filestore.share(b, tmp_path)
    assert result.fallback is None
    assert os.stat(b / SITE / "x.py").st_nlink == 1
    assert ino(b / SITE / "y.py") == ino(a / SITE / "y.py")


def test_an_unreadable_file_stays_private_and_a_full_disk_fails_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_hash = filestore._hash_open

    def hash_open(f: io.BufferedReader) -> str:
        if f.name.endswith("secret.py"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_hash(f)

    monkeypatch.setattr(filestore, "_hash_open", hash_open)
    env = fake_env(tmp_path, "a", {"secret.py": b"s\n", "open.py": b"o\n"})
    result = filestore.share(env, tmp_path)
    assert (result.private, result.fallback) == (1, None)
    assert os.stat(env / SITE / "open.py").st_nlink == 2

    def full(src: object, dst: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(filestore, "_link", full)
    with pytest.raises(OSError) as caught:
        filestore.share(fake_env(tmp_path, "b", {"new.py": b"n\n"}), tmp_path)
    assert caught.value.errno == errno.ENOSPC


@pytest.mark.parametrize("proc_fd", [True, False])
def test_a_file_replaced_while_it_is_hashed_is_never_stored_under_the_old_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, proc_fd: bool
) -> None:
    """A script running in a published environment may replace a .pyc (by rename) while
    the background compile shares it: the store must get the bytes that were hashed, or
    nothing; the newer file stays the environment's own. With and without /proc."""
    if proc_fd and not filestore._PROC_FD:
        pytest.skip("no /proc/self/fd here")
    monkeypatch.setattr(filestore, "_PROC_FD", proc_fd)
    real_hash = filestore._hash_open

    def hash_then_replace(f: io.BufferedReader) -> str:
        digest = real_hash(f)
        if f.name.endswith("new.pyc"):
            tmp = Path(f.name + ".tmp")
            tmp.write_bytes(b"written by the script meanwhile\n")
            os.replace(tmp, f.name)
        return digest

    monkeypatch.setattr(filestore, "_hash_open", hash_then_replace)
    env = fake_env(tmp_path, "a", {"__pycache__/new.pyc": b"compiled by the job\n"})
    result = filestore.share(env, tmp_path, bytecode_only=True)
    assert (result.added, result.private) == (0, 1)
    all_stored_files_match_their_names(tmp_path)
    assert not list(filestore.stored_files(tmp_path))
    path = env / SITE / "__pycache__/new.pyc"
    assert path.read_bytes() == b"written by the script meanwhile\n"
    assert os.stat(path).st_nlink == 1


def test_link_mode_comes_from_runner_link_mode() -> None:
    from runner.config import Config

    assert Config.from_environ({}).link_mode == ("copy" if sys.platform == "win32" else "link")
    assert Config.from_environ({"RUNNER_LINK_MODE": "copy"}).link_mode == "copy"
    assert Config.from_environ({"RUNNER_LINK_MODE": " Link "}).link_mode == "link"
    assert Config.from_environ({"RUNNER_LINK_MODE": "bogus"}).link_mode == "link"


def test_stored_files_with_one_link_are_removed_and_linked_ones_kept(tmp_path: Path) -> None:
    env = fake_env(tmp_path, "a", {"keep.py": b"keep\n", "gone.py": b"gone\n"})
    filestore.share(env, tmp_path)
    keep = stored_for(tmp_path, env / SITE / "keep.py")
    gone = stored_for(tmp_path, env / SITE / "gone.py")
    os.unlink(env / SITE / "gone.py")
    assert filestore.remove_if_unlinked(keep) is None and keep.exists()
    assert filestore.remove_if_unlinked(gone) is not None and not gone.exists()
    assert os.listdir(gone.parent) == []  # nothing left aside


# ---------------------------------------------------------------------------- races, kills


def _share_at_barrier(env: str, root: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    barrier.wait(timeout=60)
    filestore.share(Path(env), Path(root))


def test_concurrent_builds_adding_the_same_files(tmp_path: Path) -> None:
    files = {f"pkg/m{i}.py": (f"value = {i}\n" * (i + 1)).encode() for i in range(60)}
    envs = [fake_env(tmp_path, f"e{n}", files) for n in range(6)]
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(envs))
    procs = [
        ctx.Process(target=_share_at_barrier, args=(str(e), str(tmp_path), barrier)) for e in envs
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    for rel, data in files.items():
        inodes = {ino(e / SITE / rel) for e in envs}
        assert len(inodes) == 1, rel  # every environment links the one stored copy
        assert inodes == {ino(stored_for(tmp_path, envs[0] / SITE / rel))}
        assert all((e / SITE / rel).read_bytes() == data for e in envs)
    all_stored_files_match_their_names(tmp_path)
    assert not list(filestore.temp_files(tmp_path))


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from runner import filestore
    env, root, after = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    real_link, calls = os.link, []
    def link(src, dst, **kwargs):
        calls.append(dst)
        if len(calls) == after:
            os.kill(os.getpid(), signal.SIGKILL)  # half-way through linking
        real_link(src, dst, **kwargs)
    filestore._link = link
    filestore.share(env, root)
    """
)


@pytest.mark.parametrize("after", [1, 9, 40])
def test_a_build_killed_half_way_through_linking(tmp_path: Path, after: int) -> None:
    files = {f"pkg/m{i}.py": f"value = {i}\n".encode() for i in range(50)}
    # Half the files are stored already (linking) and half are new (adding).
    filestore.share(fake_env(tmp_path, "old", dict(list(files.items())[:25])), tmp_path)
    env = fake_env(tmp_path, "killed", files)
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, str(env), str(tmp_path), str(after)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    for rel, data in files.items():  # nothing missing, nothing wrong
        assert (env / SITE / rel).read_bytes() == data
    all_stored_files_match_their_names(tmp_path)
    # A later build of the same files is unaffected.
    later = fake_env(tmp_path, "later", files)
    result = filestore.share(later, tmp_path)
    assert result.fallback is None and result.private == 0
    for rel, data in files.items():
        assert (later / SITE / rel).read_bytes() == data
        assert ino(later / SITE / rel) == ino(stored_for(tmp_path, later / SITE / rel))


# ---------------------------------------------------------------------------- end to end


@pytest.fixture
def wheels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "wheels"
    source = "VERSION = '1.0'\ndef where():\n    pass\n"
    make_wheel(d, "alpha", "1.0", modules={"alpha": source})
    make_wheel(d, "beta", "1.0", requires=["alpha"])
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(d))
    return d


def env_of(cache: Path, script: Path) -> Path:
    data = json.loads(run_runner("cache", "list", "--json").stdout)
    (env,) = [e for e in data["environments"] if str(script) in e["scripts"]]
    return Path(env["path"])


def two_envs(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    a = write_script(tmp_path / "a.py", BODY, ["alpha"])
    b = write_script(tmp_path / "b.py", BODY, ["alpha", "beta"])
    for script in (a, b):
        result = run_runner("run", str(script))
        assert result.returncode == 0, result.stderr
    cache = tmp_path / "cache"
    return a, b, env_of(cache, a), env_of(cache, b)


@pytest.mark.parametrize("installer", INSTALLERS)
def test_environments_share_sources_and_bytecode(
    tmp_path: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch, installer: str
) -> None:
    monkeypatch.setenv("RUNNER_INSTALLER", installer)
    a, _b, env_a, env_b = two_envs(tmp_path)
    (site_a,) = env_a.glob("lib/python*/site-packages")
    (site_b,) = env_b.glob("lib/python*/site-packages")
    (pyc_a,) = (site_a / "__pycache__").glob("alpha.*.pyc")
    pyc_b = site_b / "__pycache__" / pyc_a.name
    assert ino(site_a / "alpha.py") == ino(site_b / "alpha.py")
    assert ino(pyc_a) == ino(pyc_b)  # byte-identical bytecode: one file
    assert stat.S_IMODE(os.stat(pyc_a).st_mode) == 0o444
    # The .pyc is valid for the stored source: it records the stored file's mtime and size.
    st = os.stat(site_a / "alpha.py")
    header = pyc_a.read_bytes()[:16]
    assert int.from_bytes(header[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF
    assert int.from_bytes(header[12:16], "little") == st.st_size
    before = os.stat(pyc_a)
    result = run_runner("run", str(a))
    assert result.returncode == 0, result.stderr
    # Tracebacks name the real file (the import system puts the path back)...
    assert result.stdout == f"1.0 {site_a / 'alpha.py'}\n"
    after = os.stat(pyc_a)  # ...and the bytecode was used, not rewritten
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_link_mode_copy_turns_sharing_off(
    tmp_path: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_LINK_MODE", "copy")
    monkeypatch.setenv("RUNNER_INSTALLER", "pip")  # uv would link its own cache's files
    _a, _b, env_a, _env_b = two_envs(tmp_path)
    assert not list(filestore.stored_files(tmp_path / "cache"))
    (site_a,) = env_a.glob("lib/python*/site-packages")
    assert os.stat(site_a / "alpha.py").st_nlink == 1
    assert list((site_a / "__pycache__").glob("alpha.*.pyc"))  # still compiled


def test_cache_list_shows_apparent_and_own_size(tmp_path: Path, wheels: Path) -> None:
    two_envs(tmp_path)
    data = json.loads(run_runner("cache", "list", "--json").stdout)
    envs = data["environments"]
    assert len(envs) == 2
    for env in envs:
        assert 0 < env["own_size"] < env["size"]
    assert data["file_store_size"] > 0
    assert data["disk_usage"] < sum(e["size"] for e in envs) + data["file_store_size"]
    human = run_runner("cache", "list").stdout
    assert "OWN" in human and "on disk" in human and "shared file store" in human


def test_prune_and_clean_remove_stored_files_only_when_nothing_links_them(
    tmp_path: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_INSTALLER", "pip")  # uv's files stay linked to uv's cache
    a, b, env_a, env_b = two_envs(tmp_path)
    cache = tmp_path / "cache"
    (site_a,) = env_a.glob("lib/python*/site-packages")
    alpha = stored_for(cache, site_a / "alpha.py")
    stored_before = {s.path for s in filestore.stored_files(cache)}
    dry = json.loads(run_runner("cache", "clean", "--dry-run", "--json", str(a)).stdout)
    assert not [r for r in dry["removed"] if r["kind"] == "stored files"]  # b links them all
    result = run_runner("cache", "clean", str(a))
    assert result.returncode == 0, result.stderr
    assert not env_a.exists() and alpha.exists()  # b still links it
    again = run_runner("run", str(b))
    assert again.returncode == 0 and again.stdout.startswith("1.0 ")
    dry = json.loads(run_runner("cache", "clean", "--dry-run", "--json").stdout)
    (would,) = [r for r in dry["removed"] if r["kind"] == "stored files"]
    assert would["size"] > 0
    assert {s.path for s in filestore.stored_files(cache)} <= stored_before
    done = json.loads(run_runner("cache", "clean", "--json").stdout)
    (freed,) = [r for r in done["removed"] if r["kind"] == "stored files"]
    assert freed["reason"] == would["reason"]
    assert not env_b.exists()
    assert not list(filestore.stored_files(cache))


def test_verify_reports_and_repairs_a_damaged_stored_file(tmp_path: Path, wheels: Path) -> None:
    a, _b, env_a, env_b = two_envs(tmp_path)
    cache = tmp_path / "cache"
    (site_a,) = env_a.glob("lib/python*/site-packages")
    # Bytecode is in no RECORD: only the store's own check can see this damage.
    (pyc,) = (site_a / "__pycache__").glob("alpha.*.pyc")
    stored = stored_for(cache, pyc)
    data = stored.read_bytes()
    os.chmod(stored, 0o644)
    stored.write_bytes(data[:-4] + b"XXXX")
    os.chmod(stored, 0o444)
    check = run_runner("cache", "verify")
    assert check.returncode == 106
    assert f"damaged stored file {stored}" in check.stderr
    assert f"used by {env_a}" in check.stderr and f"used by {env_b}" in check.stderr
    report = json.loads(run_runner("cache", "verify", "--json").stdout)
    (bad,) = report["stored_files"]
    assert sorted(bad["environments"]) == sorted([str(env_a), str(env_b)])
    repair = run_runner("cache", "verify", "--repair")
    assert repair.returncode == 0, repair.stderr
    assert "removed from the store" in repair.stderr
    assert not stored.exists() and not env_a.exists() and not env_b.exists()
    rebuilt = run_runner("run", str(a))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert run_runner("cache", "verify").returncode == 0
    all_stored_files_match_their_names(cache)


def test_a_build_killed_after_sharing_leaves_later_builds_unaffected(
    tmp_path: Path, wheels: Path
) -> None:
    a = write_script(tmp_path / "a.py", BODY, ["alpha"])
    hang_file = tmp_path / "hung"
    os.mkfifo(hang_file)
    proc = _start_build(
        a, {"RUNNER_TEST_HANG_AT": "shared", "RUNNER_TEST_HANG_FILE": str(hang_file)}
    )
    assert _wait_for_checkpoint(hang_file, proc) == proc.pid
    _kill_group(proc)
    cache = tmp_path / "cache"
    assert list(filestore.stored_files(cache))  # it had added its files
    result = run_runner("run", str(a))
    assert result.returncode == 0, result.stderr
    all_stored_files_match_their_names(cache)
    pruned = run_runner("cache", "prune", "--grace", "0s")
    assert pruned.returncode == 0, pruned.stderr
    assert len(list((cache / "store").iterdir())) == 1
    again = run_runner("run", str(a))
    assert again.returncode == 0 and again.stdout.startswith("1.0 ")


def test_uv_cache_files_keep_their_mode(tmp_path: Path, wheels: Path) -> None:
    from runner.installers import find_uv

    if find_uv() is None:
        pytest.skip("uv is not installed")
    a = write_script(tmp_path / "a.py", BODY, ["alpha"])
    result = run_runner(
        "run", "--installer", "uv", "--no-index", "--find-links", str(wheels), str(a)
    )
    assert result.returncode == 0, result.stderr
    uv_cache = Path(os.environ["UV_CACHE_DIR"])
    cached = [Path(d, n) for d, _, names in os.walk(uv_cache) for n in names if n == "alpha.py"]
    assert cached
    for path in cached:
        assert stat.S_IMODE(os.stat(path).st_mode) & 0o200, path  # still writable: not ours


def test_a_file_store_someone_else_could_fill_is_not_used(
    tmp_path: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache trust rule covers files/: a symlink or a directory others can write is
    never linked from (its content could be anyone's)."""
    monkeypatch.setenv("RUNNER_INSTALLER", "pip")  # uv would link its own cache's files
    cache = tmp_path / "cache"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_runner("cache", "dir")  # creates the cache root
    cache.mkdir(exist_ok=True, mode=0o700)
    (cache / "files").symlink_to(elsewhere)
    a = write_script(tmp_path / "a.py", BODY, ["alpha"])
    result = run_runner("run", "-v", str(a))
    assert result.returncode == 0, result.stderr
    assert "not sharing files through the cache's file store" in result.stderr
    assert list(elsewhere.iterdir()) == []
    env_a = env_of(cache, a)
    (site,) = env_a.glob("lib/python*/site-packages")
    assert os.stat(site / "alpha.py").st_nlink == 1


def test_cleanup_never_follows_a_symlinked_file_store(tmp_path: Path, wheels: Path) -> None:
    """Like store/ and the other directories cleanup works in: a files/ that is a symlink
    could take the removal of unlinked files anywhere, so nothing is removed."""
    a = write_script(tmp_path / "a.py", BODY, ["alpha"])
    assert run_runner("run", str(a)).returncode == 0
    cache = tmp_path / "cache"
    elsewhere = tmp_path / "elsewhere"
    os.rename(cache / "files", elsewhere)
    (cache / "files").symlink_to(elsewhere)
    before = sorted(p.name for p in elsewhere.rglob("*"))
    result = run_runner("cache", "clean")
    assert result.returncode == 106, result.stderr
    assert "files is a symbolic link" in result.stderr
    assert sorted(p.name for p in elsewhere.rglob("*")) == before

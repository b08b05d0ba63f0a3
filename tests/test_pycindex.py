"""The bytecode index: hits, misses, what it never trusts, kills, cleanup and verify."""

from __future__ import annotations

import compileall
import errno
import hashlib
import importlib.util
import json
import multiprocessing
import multiprocessing.synchronize
import os
import py_compile
import re
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runner import bytecode, filestore, lifecycle, pycindex
from runner.cache import Cache
from tests.conftest import INSTALLERS, run_runner, write_script
from tests.test_concurrency import _kill_group, _start_build, _wait_for_checkpoint
from tests.test_filestore import SITE, env_of, fake_env, ino
from tests.wheels import make_wheel

COMPILER = pycindex.Compiler(importlib.util.MAGIC_NUMBER, sys.implementation.cache_tag)
TAG = sys.implementation.cache_tag


def pyc_of(source: Path) -> Path:
    return source.parent / "__pycache__" / f"{source.stem}.{TAG}.pyc"


def index_root(cache_root: Path) -> Path:
    root, problem = pycindex.usable_root(cache_root, allow_shared=False)
    assert root is not None, problem
    return root


def look_up(env: Path, cache_root: Path) -> tuple[pycindex.Lookup, filestore.ShareResult]:
    """A build's steps up to compiling: share the sources, link what the index knows."""
    shared = filestore.share(env, cache_root)
    lookup = pycindex.link_known(
        env, [str(env / SITE)], index_root(cache_root), COMPILER, shared.digests
    )
    return lookup, shared


def compile_and_record(env: Path, cache_root: Path, lookup: pycindex.Lookup) -> int:
    """The rest: compile (compileall, force=False), share the bytecode, record."""
    done = bytecode.compile_tree(
        sys.executable, (str(env / SITE),), same_interpreter=True, relative_to=str(env)
    )
    assert done.ok, done.output
    compiled = filestore.share(env, cache_root, bytecode_only=True)
    return pycindex.record(lookup, compiled.digests)


def build(
    cache_root: Path, name: str, files: dict[str, bytes]
) -> tuple[Path, pycindex.Lookup, int]:
    env = fake_env(cache_root, name, files)
    lookup, _shared = look_up(env, cache_root)
    return env, lookup, compile_and_record(env, cache_root, lookup)


def compiled_fresh(env: Path, source: Path, work: Path) -> bytes:
    """What compileall writes for a copy of `source` (the same bytes, mtime and path
    relative to its environment), asked directly, not through runner.bytecode."""
    copy = work / source.relative_to(env)
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, copy)
    st = os.stat(source)
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))
    ddir = os.path.relpath(copy.parent, work)
    invalidation = py_compile.PycInvalidationMode.TIMESTAMP
    assert compileall.compile_file(copy, ddir, force=True, quiet=2, invalidation_mode=invalidation)
    return pyc_of(copy).read_bytes()


def check_index(cache_root: Path) -> int:
    """Every entry is a read-only stored file (the store names it too); no temp names."""
    stored = {(f.st.st_dev, f.st.st_ino) for f in filestore.stored_files(cache_root)}
    count = 0
    for ident, paths in pycindex.entries_by_inode(cache_root).items():
        assert ident in stored, paths
        for path in paths:
            assert stat.S_IMODE(os.lstat(path).st_mode) & 0o222 == 0
            count += 1
    assert not list(pycindex.temp_entries(cache_root))
    return count


FILES = {
    "pkg/__init__.py": b"",
    "pkg/a.py": b"A = 1\n",
    "pkg/sub/b.py": b"def f():\n    return 2\n",
    "top.py": b"import pkg\nprint(pkg)\n",
}


# ---------------------------------------------------------------------------- unit


def test_entry_key_is_the_sha256_of_canonical_json() -> None:
    fields = [1, COMPILER.magic.hex(), TAG, 0, "timestamp", "ab" * 32, "lib/x", "m\u00e9.py"]
    text = json.dumps(fields, separators=(",", ":"))
    expected = hashlib.sha256(text.encode("ascii")).hexdigest()
    assert pycindex.entry_key(COMPILER, "ab" * 32, "lib/x", "m\u00e9.py") == expected
    # Each field counts: no two differ only by where a boundary falls.
    assert pycindex.entry_key(COMPILER, "ab" * 32, "lib/xm", "\u00e9.py") != expected


def test_the_probe_reports_the_bytecode_magic_number_and_cache_tag(tmp_path: Path) -> None:
    from runner import interpreters

    found = interpreters.probe(sys.executable, tmp_path)
    assert (found.magic, found.cache_tag) == (importlib.util.MAGIC_NUMBER.hex(), TAG)
    again = interpreters.probe(sys.executable, tmp_path)  # from the probe cache
    assert pycindex.Compiler.of(again.magic, again.cache_tag) == COMPILER
    assert pycindex.Compiler.of("", "") is None


def test_a_variant_links_known_bytecode_and_compiles_only_its_new_files(tmp_path: Path) -> None:
    one, first, written = build(tmp_path, "one", FILES)
    assert (first.files, first.hits, written) == (len(FILES), 0, len(FILES))
    assert check_index(tmp_path) == len(FILES)

    two = fake_env(tmp_path, "two", {**FILES, "new.py": b"N = 3\n"})
    lookup, _ = look_up(two, tmp_path)
    assert lookup.hits == len(FILES)
    assert [m.path for m in lookup.misses] == [str(two / SITE / "new.py")]
    linked = {rel: os.stat(pyc_of(two / SITE / rel)) for rel in FILES}
    for rel, st in linked.items():
        assert (st.st_dev, st.st_ino) == ino(pyc_of(one / SITE / rel))
    assert not pyc_of(two / SITE / "new.py").exists()
    assert compile_and_record(two, tmp_path, lookup) == 1
    # compileall found the linked files up to date and left them as they were.
    for rel, st in linked.items():
        after = os.stat(pyc_of(two / SITE / rel))
        assert (after.st_ino, after.st_mtime_ns) == (st.st_ino, st.st_mtime_ns), rel
    assert check_index(tmp_path) == len(FILES) + 1


def env_linking_uv_cache(tmp_path: Path, name: str, mtime: int) -> Path:
    """An environment whose `mod.py` is linked from a uv cache copy with this mtime."""
    cached = tmp_path / "uv-cache" / name / "mod.py"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"M = 1\n")
    os.utime(cached, (mtime, mtime))
    env = fake_env(tmp_path, name, {})
    os.link(cached, env / SITE / "mod.py")
    return env


def test_a_header_that_does_not_match_the_source_is_a_miss(tmp_path: Path) -> None:
    """uv links sources from its cache: re-extracted, a source has a new mtime, and the
    stored .pyc (for the old one) is not what compiling it now writes."""
    one = env_linking_uv_cache(tmp_path, "one", 1_600_000_000)
    lookup, shared = look_up(one, tmp_path)
    assert shared.already_shared == 1 and str(one / SITE / "mod.py") not in shared.digests
    assert compile_and_record(one, tmp_path, lookup) == 1  # hashed by the index itself

    two = env_linking_uv_cache(tmp_path, "two", 1_700_000_000)
    lookup, _ = look_up(two, tmp_path)
    assert (lookup.hits, len(lookup.misses)) == (0, 1)
    assert compile_and_record(two, tmp_path, lookup) == 1  # the entry now names the new one
    header = pyc_of(two / SITE / "mod.py").read_bytes()[:16]
    assert int.from_bytes(header[8:12], "little") == 1_700_000_000
    (entry,) = [p for paths in pycindex.entries_by_inode(tmp_path).values() for p in paths]
    assert ino(entry) == ino(pyc_of(two / SITE / "mod.py"))
    # A third environment linking the new source now hits.
    three = fake_env(tmp_path, "three", {})
    os.link(tmp_path / "uv-cache" / "two" / "mod.py", three / SITE / "mod.py")
    assert look_up(three, tmp_path)[0].hits == 1


def test_a_damaged_stored_pyc_is_not_linked(tmp_path: Path) -> None:
    one, _, _ = build(tmp_path, "one", FILES)
    stored = pyc_of(one / SITE / "pkg" / "a.py")
    data = stored.read_bytes()

    def damage(new: bytes) -> None:
        os.chmod(stored, 0o644)
        with open(stored, "r+b") as f:  # in place: every link sees it
            f.write(new)
        os.chmod(stored, 0o444)

    # Its header no longer matches the source (a flipped mtime byte): compiled instead.
    damage(data[:8] + bytes([data[8] ^ 1]) + data[9:])
    lookup, _ = look_up(fake_env(tmp_path, "two", FILES), tmp_path)
    assert lookup.hits == len(FILES) - 1
    assert [Path(m.path).name for m in lookup.misses] == ["a.py"]

    # Its body damaged, the header intact: `cache verify --repair` takes the entry out of
    # the index before the file out of the store, and the next build compiles it.
    damage(data[:-4] + b"XXXX")
    (check,) = lifecycle.verify_stored_files(Cache(tmp_path), repair=True)
    assert check.path == str(
        filestore.stored_path(
            filestore.store_root(tmp_path), hashlib.sha256(data).hexdigest(), False
        )
    )
    assert ino(stored) not in pycindex.entries_by_inode(tmp_path)
    lookup, _ = look_up(fake_env(tmp_path, "three", FILES), tmp_path)
    assert [Path(m.path).name for m in lookup.misses] == ["a.py"]
    check_index(tmp_path)


def test_an_entry_that_is_not_a_read_only_stored_file_is_not_trusted(tmp_path: Path) -> None:
    one, _, _ = build(tmp_path, "one", {"m.py": b"M = 1\n"})
    (entry,) = [p for paths in pycindex.entries_by_inode(tmp_path).values() for p in paths]
    good = entry.read_bytes()
    # A writable file with the right header and bytes: not made by the store.
    os.unlink(entry)
    entry.write_bytes(good)
    os.link(entry, tmp_path / "elsewhere")
    lookup, _ = look_up(fake_env(tmp_path, "two", {"m.py": b"M = 1\n"}), tmp_path)
    assert lookup.hits == 0
    # Read-only but named by nothing else (one link): not trusted either.
    os.unlink(tmp_path / "elsewhere")
    os.chmod(entry, 0o444)
    lookup, _ = look_up(fake_env(tmp_path, "three", {"m.py": b"M = 1\n"}), tmp_path)
    assert lookup.hits == 0
    # A symlink to the real stored file: never followed.
    os.unlink(entry)
    entry.symlink_to(pyc_of(one / SITE / "m.py"))
    lookup, _ = look_up(fake_env(tmp_path, "four", {"m.py": b"M = 1\n"}), tmp_path)
    assert lookup.hits == 0


def test_a_source_changed_after_its_lookup_is_not_recorded(tmp_path: Path) -> None:
    env = fake_env(tmp_path, "one", {"m.py": b"M = 1\n"})
    lookup, _ = look_up(env, tmp_path)
    source = env / SITE / "m.py"
    os.unlink(source)  # the key holds the old content's digest: the new bytecode is not its
    source.write_bytes(b"M = 22\n")
    assert compile_and_record(env, tmp_path, lookup) == 0
    assert not pycindex.entries_by_inode(tmp_path)


def test_a_shipped_pyc_is_compiled_as_before_and_never_recorded(tmp_path: Path) -> None:
    files = {"m.py": b"M = 1\n", f"__pycache__/m.{TAG}.pyc": b"not really bytecode"}
    _env, lookup, written = build(tmp_path, "one", files)
    assert (lookup.files, lookup.misses, written) == (1, (), 0)
    assert not list(pycindex.entries_by_inode(tmp_path))


@pytest.mark.parametrize("code", [errno.EXDEV, errno.EPERM, errno.EMLINK])
def test_where_links_cannot_be_made_everything_compiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    build(tmp_path, "one", FILES)

    def no_links(src: object, dst: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(pycindex, "_link", no_links)
    two, lookup, written = build(tmp_path, "two", FILES)
    assert (lookup.hits, len(lookup.misses), written) == (0, len(FILES), 0)
    for rel in FILES:
        assert pyc_of(two / SITE / rel).read_bytes()[:4] == COMPILER.magic


def test_an_index_others_could_write_is_not_used(tmp_path: Path) -> None:
    build(tmp_path, "one", FILES)
    root = pycindex.index_root(tmp_path)
    os.chmod(root, 0o777)
    found, problem = pycindex.usable_root(tmp_path, allow_shared=False)
    assert found is None and problem is not None and "writable by other users" in problem
    assert pycindex.usable_root(tmp_path, allow_shared=True)[0] == root
    os.chmod(root, 0o755)
    shutil.rmtree(root)
    root.symlink_to(tmp_path)
    found, problem = pycindex.usable_root(tmp_path, allow_shared=True)
    assert found is None and problem is not None and "symlink" in problem


def test_usage_counts_bytecode_the_index_links_as_the_environments_own(tmp_path: Path) -> None:
    env, _, _ = build(tmp_path, "one", FILES)
    with_index = filestore.usage(env, filestore.stored_inodes(tmp_path))
    shutil.rmtree(pycindex.index_root(tmp_path))
    assert filestore.usage(env, filestore.stored_inodes(tmp_path)) == with_index


def test_an_entry_goes_only_when_nothing_but_the_store_links_its_file(tmp_path: Path) -> None:
    env, _, _ = build(tmp_path, "one", {"m.py": b"M = 1\n"})
    ((ident, (entry,)),) = pycindex.entries_by_inode(tmp_path).items()
    assert os.stat(entry).st_nlink == 3  # the store, the index, the environment
    # Prune saw two links, a build linked it since: the entry stays.
    assert pycindex.remove_entries_if_unused([entry], 2) == 0
    assert ino(entry) == ident and not list(pycindex.temp_entries(tmp_path))
    shutil.rmtree(env)
    assert pycindex.remove_entries_if_unused([entry], 2) == 1
    assert not entry.exists() and not list(pycindex.temp_entries(tmp_path))


def _build_at_barrier(root: str, name: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    env = fake_env(Path(root), name, MANY)
    barrier.wait(timeout=60)
    lookup, _ = look_up(env, Path(root))
    compile_and_record(env, Path(root), lookup)


def test_concurrent_builds_recording_the_same_entries(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    names = [f"e{n}" for n in range(5)]
    barrier = ctx.Barrier(len(names))
    procs = [ctx.Process(target=_build_at_barrier, args=(str(tmp_path), n, barrier)) for n in names]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    assert check_index(tmp_path) == len(MANY)
    work = tmp_path / "work"
    for name in names:
        env = tmp_path / "store" / f"{'0' * 32}-{name}"
        for rel in MANY:
            source = env / SITE / rel
            assert pyc_of(source).read_bytes() == compiled_fresh(env, source, work / name)
    _later, lookup, written = build(tmp_path, "later", MANY)
    assert (lookup.hits, written) == (len(MANY), 0)


# ---------------------------------------------------------------------------- kills

KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from runner import pycindex
    sys.path.insert(0, sys.argv[4])
    from tests import test_pycindex as t
    env, root, after, step = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[5]
    real_link, calls = os.link, []
    def link(src, dst):
        calls.append(dst)
        if len(calls) == after:
            os.kill(os.getpid(), signal.SIGKILL)
        real_link(src, dst)
    if step == "lookup":
        pycindex._link = link
    lookup, _ = t.look_up(env, root)
    pycindex._link = link
    t.compile_and_record(env, root, lookup)
    """
)

MANY = {f"pkg/m{i}.py": f"value = {i}\n".encode() for i in range(30)}


@pytest.mark.parametrize(
    ("step", "after"), [("lookup", 1), ("lookup", 12), ("record", 1), ("record", 7)]
)
def test_a_build_killed_while_linking_or_recording_poisons_nothing(
    tmp_path: Path, step: str, after: int
) -> None:
    # Half the files are known to the index (linking), half are new (recording).
    build(tmp_path, "old", dict(list(MANY.items())[:15]))
    env = fake_env(tmp_path, "killed", MANY)
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLER,
            str(env),
            str(tmp_path),
            str(after),
            str(Path(__file__).parent.parent),
            step,
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    work = tmp_path / "work"
    for rel in MANY:  # each .pyc there is either absent or what compiling writes
        pyc = pyc_of(env / SITE / rel)
        if pyc.exists():
            assert pyc.read_bytes() == compiled_fresh(env, env / SITE / rel, work / "killed"), rel
    check_index(tmp_path)
    # A later build of the same files: everything it links is right, and nothing is missing.
    later, lookup, _ = build(tmp_path, "later", MANY)
    assert lookup.hits >= 15
    for rel in MANY:
        pyc = pyc_of(later / SITE / rel)
        assert pyc.read_bytes() == compiled_fresh(later, later / SITE / rel, work / "later"), rel
    assert check_index(tmp_path) == len(MANY)


# ---------------------------------------------------------------------------- end to end

ALPHA = {
    "alpha/__init__.py": "VERSION = '1.0'\nfrom alpha.core import where\n",
    "alpha/core.py": "def where():\n    return __file__\n",
    "alpha/deep/__init__.py": "",
    "alpha/deep/more.py": "X = [i * i for i in range(10)]\nclass C:\n    y = 'caf\u00e9'\n",
    "alpha/broken.py": "def oops(:\n",  # does not compile: skipped, as pip skips it
}
BODY = "import alpha\nprint(alpha.VERSION, alpha.where())\n"


@pytest.fixture
def wheels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "wheels"
    modules = {rel[:-3].replace("/", "."): src for rel, src in ALPHA.items()}
    make_wheel(d, "alpha", "1.0", modules=modules)
    make_wheel(d, "beta", "1.0", requires=["alpha"])
    make_wheel(d, "gamma", "1.0", requires=["alpha"])
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(d))
    return d


def index_line(stderr: str) -> tuple[int, int, int]:
    """(hits, sources, to compile) from a build's -v output."""
    found = re.search(
        r"bytecode index: (\d+) of (\d+) files' bytecode linked from the store, (\d+) to compile",
        stderr,
    )
    assert found is not None, stderr
    hits, files, misses = (int(g) for g in found.groups())
    return hits, files, misses


def run_verbose(script: Path, *extra: str) -> str:
    result = run_runner("run", "-v", *extra, str(script))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1.0 "), result.stdout
    return result.stderr


def every_pyc_is_what_compiling_writes(env: Path, work: Path) -> int:
    (site,) = env.glob("lib/python*/site-packages")
    compared = 0
    for dirpath, dirnames, filenames in os.walk(site):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            if not name.endswith(".py"):
                continue
            source = Path(dirpath, name)
            pyc = pyc_of(source)
            if name == "broken.py":
                assert not pyc.exists()
                continue
            assert pyc.read_bytes() == compiled_fresh(env, source, work), source
            compared += 1
    return compared


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_variant_compiles_only_its_new_files_and_gets_the_same_bytecode(
    tmp_path: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch, installer: str
) -> None:
    monkeypatch.setenv("RUNNER_INSTALLER", installer)
    a = write_script(tmp_path / "a.py", BODY, ["alpha"])
    b = write_script(tmp_path / "b.py", BODY, ["alpha", "beta"])
    first = run_verbose(a)
    hits, files, misses = index_line(first)
    assert hits == 0 and misses == files
    second = run_verbose(b)
    hits, files, misses = index_line(second)
    # Everything alpha (and the environment creator) put there was known but broken.py,
    # which does not compile (tried again: cheap); beta.py is new.
    assert misses == 2 and hits == files - 2 and hits >= len(ALPHA) - 1
    # The compile step left the linked files alone: only the new one was stored after it.
    shared = re.search(r"shared bytecode: (\d+) linked to stored copies.*?(\d+) added", second)
    assert shared is not None and shared.groups() == ("0", "1"), second
    cache = tmp_path / "cache"
    env_a, env_b = env_of(cache, a), env_of(cache, b)
    assert every_pyc_is_what_compiling_writes(env_b, tmp_path / "fresh") == files - 1
    (site_a,) = env_a.glob("lib/python*/site-packages")
    (site_b,) = env_b.glob("lib/python*/site-packages")
    assert ino(pyc_of(site_a / "alpha" / "core.py")) == ino(pyc_of(site_b / "alpha" / "core.py"))
    # The script runs from the linked bytecode and does not rewrite it.
    before = os.stat(pyc_of(site_b / "alpha" / "core.py"))
    result = run_runner("run", str(b))
    assert result.stdout == f"1.0 {site_b / 'alpha' / 'core.py'}\n"
    after = os.stat(pyc_of(site_b / "alpha" / "core.py"))
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert run_runner("cache", "verify").returncode == 0


@pytest.mark.parametrize("how", ["writable", "owner"])
def test_an_entry_in_an_index_someone_else_could_write_is_ignored(
    tmp_path: Path,
    wheels: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    how: str,
) -> None:
    monkeypatch.setenv("RUNNER_INSTALLER", "pip")
    a = write_script(tmp_path / "a.py", BODY, ["alpha"])
    run_verbose(a)
    cache = tmp_path / "cache"
    (site_a,) = env_of(cache, a).glob("lib/python*/site-packages")
    good = pyc_of(site_a / "alpha" / "core.py")
    # Plant an entry: the right header, other code, read-only and linked twice, as a stored
    # file would be.
    (entry,) = pycindex.entries_by_inode(cache)[ino(good)]
    evil = tmp_path / "evil.pyc"
    source = tmp_path / "evil-src" / "core.py"
    source.parent.mkdir()
    source.write_text("def where():\n    return 'evil'\n")
    bytecode.compile_tree(sys.executable, (str(source.parent),), same_interpreter=True)
    evil.write_bytes(good.read_bytes()[:16] + pyc_of(source).read_bytes()[16:])
    os.chmod(evil, 0o444)
    os.unlink(entry)
    os.link(evil, entry)
    root = pycindex.index_root(cache)
    if how == "writable":
        os.chmod(root, 0o777)
    else:
        _name, uid, gid = request.getfixturevalue("other_user")
        os.chown(root, uid, gid)
    b = write_script(tmp_path / "b.py", BODY, ["alpha", "beta"])
    stderr = run_verbose(b)
    assert "not using the bytecode index" in stderr
    (site_b,) = env_of(cache, b).glob("lib/python*/site-packages")
    assert pyc_of(site_b / "alpha" / "core.py").read_bytes() == good.read_bytes()
    # The control: the same entry in an index of ours is used (entries are hints that only
    # the trust rule and the header check guard), so the check above is what kept it out.
    os.chmod(root, 0o755)
    os.chown(root, os.getuid(), os.getgid())
    c = write_script(
        tmp_path / "c.py", "import alpha.core\nprint(alpha.core.where())\n", ["alpha", "gamma"]
    )
    result = run_runner("run", str(c))
    assert result.stdout == "evil\n"


def test_a_build_killed_after_linking_leaves_later_builds_right(
    tmp_path: Path, wheels: Path
) -> None:
    a = write_script(tmp_path / "a.py", BODY, ["alpha"])
    run_verbose(a)
    b = write_script(tmp_path / "b.py", BODY, ["alpha", "beta"])
    hang_file = tmp_path / "hung"
    os.mkfifo(hang_file)
    proc = _start_build(
        b, {"RUNNER_TEST_HANG_AT": "indexed", "RUNNER_TEST_HANG_FILE": str(hang_file)}
    )
    assert _wait_for_checkpoint(hang_file, proc) == proc.pid
    _kill_group(proc)
    cache = tmp_path / "cache"
    check_index(cache)
    assert run_runner("cache", "prune", "--grace", "0s").returncode == 0
    stderr = run_verbose(b)
    assert index_line(stderr)[2] == 2  # beta.py, and broken.py (it does not compile)
    assert (
        every_pyc_is_what_compiling_writes(env_of(cache, b), tmp_path / "fresh") >= len(ALPHA) - 1
    )
    assert run_runner("cache", "verify").returncode == 0
    check_index(cache)


def test_prune_and_clean_remove_entries_with_their_bytecode(
    tmp_path: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_INSTALLER", "pip")
    a = write_script(tmp_path / "a.py", BODY, ["alpha"])
    b = write_script(tmp_path / "b.py", BODY, ["alpha", "beta"])
    run_verbose(a)
    run_verbose(b)
    cache = tmp_path / "cache"
    entries = check_index(cache)
    assert entries >= len(ALPHA)
    # b links everything a's entries link: cleaning a removes none.
    done = json.loads(run_runner("cache", "clean", "--json", str(a)).stdout)
    assert not [r for r in done["removed"] if r["kind"] == "index entries"]
    assert check_index(cache) == entries
    dry = json.loads(run_runner("cache", "clean", "--dry-run", "--json").stdout)
    (would,) = [r for r in dry["removed"] if r["kind"] == "index entries"]
    assert would["reason"].startswith(f"{entries} bytecode index entries")
    assert check_index(cache) == entries
    done = json.loads(run_runner("cache", "clean", "--json").stdout)
    (removed,) = [r for r in done["removed"] if r["kind"] == "index entries"]
    assert removed["reason"] == would["reason"]
    assert check_index(cache) == 0
    assert not list(filestore.stored_files(cache))
    # And the next build starts from an empty index.
    assert index_line(run_verbose(b))[0] == 0


def test_verify_counts_entries_and_removes_those_linking_no_stored_file(
    tmp_path: Path, wheels: Path
) -> None:
    a = write_script(tmp_path / "a.py", BODY, ["alpha"])
    run_verbose(a)
    cache = tmp_path / "cache"
    entries = check_index(cache)
    orphan = pycindex.index_root(cache) / ("0" * 64)
    (tmp_path / "stray.pyc").write_bytes(b"x")
    os.link(tmp_path / "stray.pyc", orphan)
    report = json.loads(run_runner("cache", "verify", "--json").stdout)
    assert report["bytecode_index"] == {"entries": entries + 1, "orphans": 1, "removed": 0}
    check = run_runner("cache", "verify")
    assert check.returncode == 0 and "link no stored file" in check.stderr
    repaired = json.loads(run_runner("cache", "verify", "--repair", "--json").stdout)
    assert repaired["bytecode_index"]["removed"] == 1
    assert not orphan.exists()
    assert check_index(cache) == entries

"""Bytecode: installers do not compile; runner compiles site-packages on every core at build."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from runner import bytecode
from runner.builder import compile_bytecode
from runner.report import Reporter
from runner.venvs import Created
from tests.conftest import INSTALLERS, published, pyenv_python, run_runner, write_script
from tests.wheels import make_wheel

pytestmark = pytest.mark.timeout(240)

BROKEN = 'print "this is Python 2"\n'
# Enough modules for the compile program's process pool (more than 2 x 40 files).
MANY = 120


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@pytest.fixture(scope="module")
def heavy_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`heavy`: many modules, a deep package and one module that is Python 2 only;
    `light`: two modules (compiled without a process pool)."""
    d = tmp_path_factory.mktemp("heavy-wheels")
    modules = {f"heavy.m{i}": f"VALUE = {i}\n" for i in range(MANY)}
    modules["heavy.__init__"] = "NAME = 'heavy'\n"
    modules["heavy.a.b.c.d.e.f.g.h.i.j.k.deep"] = "DEEP = True\n"  # deeper than compileall's 10
    modules["heavy.py2only"] = BROKEN
    make_wheel(d, "heavy", "1.0", modules=modules)
    make_wheel(d, "light", "1.0", modules={"light": "X = 1\n", "light_py2": BROKEN})
    return d


def site_packages(env_dir: Path) -> Path:
    (site,) = env_dir.glob("lib/python*/site-packages")
    return site


def pyc_header(source: Path) -> tuple[int, int, int] | None:
    """(flags, mtime, size) of the plain (not optimized) .pyc of `source`, or None."""
    found = [
        p
        for p in (source.parent / "__pycache__").glob(f"{source.stem}.*.pyc")
        if ".opt-" not in p.name and p.name.count(".") == 2
    ]
    if not found:
        return None
    data = found[0].read_bytes()
    return (
        int.from_bytes(data[4:8], "little"),
        int.from_bytes(data[8:12], "little"),
        int.from_bytes(data[12:16], "little"),
    )


def assert_all_compiled_by_timestamp(site: Path, *, broken: set[str]) -> int:
    """Every .py in `site` has a plain .pyc in timestamp mode matching its source."""
    count = 0
    for source in site.rglob("*.py"):
        if source.name in broken:
            assert pyc_header(source) is None
            continue
        header = pyc_header(source)
        assert header is not None, f"{source} was not compiled"
        st = source.stat()
        assert header == (0, int(st.st_mtime) & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF), source
        count += 1
    assert not list(site.rglob("*.opt-*.pyc"))  # pip's --compile level: plain bytecode only
    return count


@pytest.mark.parametrize("installer", INSTALLERS)
def test_everything_is_compiled_and_a_python2_module_does_not_fail_the_build(
    installer: str, tmp_path: Path, cache_dir: Path, heavy_wheels: Path
) -> None:
    body = "import heavy.m7, heavy.a.b.c.d.e.f.g.h.i.j.k.deep, light\nprint(heavy.m7.VALUE)\n"
    script = write_script(tmp_path / "s.py", body, ["heavy", "light"])
    result = run_runner(
        "run",
        "-v",
        "--installer",
        installer,
        "--no-index",
        "--find-links",
        str(heavy_wheels),
        str(script),
        env={"PYTHONDONTWRITEBYTECODE": "1", "SOURCE_DATE_EPOCH": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "7\n"
    assert "2 skipped (they do not compile)" in result.stderr
    used = re.search(r"compiled \d+ of \d+ files.* with (\d+) workers?", result.stderr)
    assert used is not None, result.stderr
    assert int(used.group(1)) == min(cores(), (MANY + 4) // bytecode.MIN_FILES_PER_WORKER)
    (pointer,) = published(cache_dir)
    site = site_packages(pointer.resolve())
    compiled = assert_all_compiled_by_timestamp(site, broken={"py2only.py", "light_py2.py"})
    assert compiled >= MANY + 3


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_warm_run_with_dontwritebytecode_compiles_nothing(
    installer: str, tmp_path: Path, cache_dir: Path, heavy_wheels: Path
) -> None:
    """What makes it as fast as a run without PYTHONDONTWRITEBYTECODE: every module of the
    environment is loaded from its .pyc, none is compiled from source."""
    body = "import heavy, heavy.m1, heavy.m99, light\nprint('ok')\n"
    script = write_script(tmp_path / "s.py", body, ["heavy", "light"])
    flags = ["--installer", installer, "--no-index", "--find-links", str(heavy_wheels)]
    cold = run_runner("run", *flags, str(script))
    assert cold.returncode == 0, cold.stderr
    env = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONVERBOSE": "1"}
    warm = run_runner("run", *flags, str(script), env=env)
    assert warm.returncode == 0, warm.stderr
    assert warm.stdout == "ok\n"
    (pointer,) = published(cache_dir)
    site = str(site_packages(pointer.resolve()))
    ours = [line for line in warm.stderr.splitlines() if site in line]
    from_pyc = [line for line in ours if line.startswith("# ") and " matches " in line]
    from_source = [line for line in ours if "code object from" in line and line.endswith(".py")]
    assert from_source == []
    assert len(from_pyc) == 4, ours


def write_tree(root: Path, count: int) -> None:
    for i in range(count):
        package = root / f"p{i % 5}"
        package.mkdir(parents=True, exist_ok=True)
        (package / f"m{i}.py").write_text(f"X = {i}\n")
    (root / "p0" / "old.py").write_text(BROKEN)


def test_compile_uses_a_process_pool_for_many_files_and_keeps_going(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(tmp_path, 200)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1")  # would make py_compile pick checked-hash
    done = bytecode.compile_tree(sys.executable, (str(tmp_path),))
    assert done.ok, done.output
    assert (done.files, done.failed, done.written) == (201, 1, 200)
    assert done.workers == min(cores(), 5)  # 200 files: at most 5 workers of 40 files
    assert "old.py" in done.output  # the compile error, for -v
    assert_all_compiled_by_timestamp(tmp_path, broken={"old.py"})


def test_few_files_of_runners_own_interpreter_compile_in_process(tmp_path: Path) -> None:
    write_tree(tmp_path, 10)
    done = bytecode.compile_tree(sys.executable, (str(tmp_path),), same_interpreter=True)
    assert (done.ok, done.files, done.failed, done.workers, done.written) == (True, 11, 1, 1, 10)
    assert_all_compiled_by_timestamp(tmp_path, broken={"old.py"})


@pytest.mark.parametrize("minor", ["3.8", "3.9", "3.10", "3.12", "3.13"])
def test_the_compile_program_runs_on_every_supported_python(tmp_path: Path, minor: str) -> None:
    python = pyenv_python(minor)
    if python is None:
        pytest.skip(f"pyenv Python {minor} is not installed here")
    write_tree(tmp_path, 100)
    done = bytecode.compile_tree(python, (str(tmp_path),))
    assert done.ok, done.output
    assert (done.files, done.failed) == (101, 1)
    tag = subprocess.run(
        [python, "-c", "import sys; print(sys.implementation.cache_tag)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    assert (tmp_path / "p1" / "__pycache__" / f"m1.{tag}.pyc").exists()
    assert_all_compiled_by_timestamp(tmp_path, broken={"old.py"})


def test_a_compile_step_that_cannot_run_does_not_fail_the_build(tmp_path: Path) -> None:
    stream = io.StringIO()
    (tmp_path / "mod.py").write_text("x = 1\n")  # something to compile
    created = Created(python=str(tmp_path / "no-python"), site_packages=(str(tmp_path),))
    compile_bytecode(created, Reporter(stream=stream), same_interpreter=False)
    assert "warning: could not compile the environment's bytecode" in stream.getvalue()


def test_nothing_to_compile_starts_no_interpreter(tmp_path: Path) -> None:
    done = bytecode.compile_tree(str(tmp_path / "no-python"), (str(tmp_path),))
    assert (done.ok, done.files) == (True, 0)


@pytest.mark.parametrize("same_interpreter", [False, True])
def test_an_up_to_date_pyc_is_kept_unless_forced(tmp_path: Path, same_interpreter: bool) -> None:
    """What the background compile does with the .pyc a running script wrote meanwhile
    (its absolute file name inside): kept while its header matches the source; a
    restarted job (`force`) writes every file again, atomically (a new inode)."""
    import importlib.util
    import marshal
    import py_compile

    write_tree(tmp_path, 2 if same_interpreter else 100)
    source = tmp_path / "p1" / "m1.py"
    own = Path(importlib.util.cache_from_source(str(source)))
    py_compile.compile(str(source), cfile=str(own), dfile=str(source), doraise=True)
    before = own.stat().st_ino
    kwargs = {"same_interpreter": same_interpreter, "relative_to": str(tmp_path)}
    files = 3 if same_interpreter else 101  # one of them does not compile
    done = bytecode.compile_tree(sys.executable, (str(tmp_path),), **kwargs)
    assert (done.ok, done.files, done.written) == (True, files, files - 2)
    assert own.stat().st_ino == before
    assert marshal.loads(own.read_bytes()[16:]).co_filename == str(source)
    done = bytecode.compile_tree(sys.executable, (str(tmp_path),), force=True, **kwargs)
    assert (done.ok, done.written) == (True, files - 1)
    assert own.stat().st_ino != before
    assert marshal.loads(own.read_bytes()[16:]).co_filename == os.path.join("p1", "m1.py")

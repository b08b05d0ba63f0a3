"""Compile an environment's bytecode at build time, on every core, in its own interpreter.

Installers are told not to compile (pip `--no-compile`, uv without `--compile-bytecode`):
pip compiles one file at a time, which was most of a cold build of a heavy package set.
Instead every `.py` file under the environment's site-packages is compiled here, by the
environment's own interpreter (so the bytecode matches the Python that will load it), in a
process pool. The bytecode is what pip's `--compile` writes: the interpreter's default
optimization level (plain `.pyc`, no `.opt-1`) and timestamp invalidation (source mtime
and size, checked cheaply at import), whatever SOURCE_DATE_EPOCH or
PYTHONDONTWRITEBYTECODE say, so later runs never compile, even with
PYTHONDONTWRITEBYTECODE=1.

A file that does not compile (a package shipping Python 2 code or templates named `.py`)
is skipped, as pip skips it: Python reports the error if that module is ever imported.
"""

from __future__ import annotations

import os

from runner import proc
from runner.values import dataclass

# Runs under the environment's interpreter (3.8 and newer): keep it compatible.
# `-I` keeps the working directory and user site out of sys.path.
_PROGRAM = r"""
import sys
sys.path = [p for p in sys.path if p]
import compileall, functools, importlib.util, os, py_compile

files = []
for root in sys.argv[1:]:
    # os.walk does not descend into symlinked directories: each file is compiled once.
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        files.extend(os.path.join(dirpath, n) for n in filenames if n.endswith(".py"))


def identity(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


# Which .pyc files this compile wrote (compileall keeps the ones that are up to date).
cfiles = [importlib.util.cache_from_source(f) for f in files]
before = [identity(c) for c in cfiles]
compile_one = functools.partial(
    compileall.compile_file,
    force=FORCE,
    quiet=1,
    invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP,
)
# The file name recorded in each .pyc (its second argument, ddir): relative to RELATIVE_TO
# when given, so the bytes do not depend on the store directory (see compile_tree).
ddirs = [os.path.relpath(os.path.dirname(f), RELATIVE_TO) if RELATIVE_TO else None for f in files]
try:
    cores = len(os.sched_getaffinity(0))
except (AttributeError, OSError):
    cores = os.cpu_count() or 1
workers = min(cores, 32, len(files) // MIN_FILES_PER_WORKER)
results = None
if workers > 1:
    try:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            chunk = max(1, len(files) // (workers * 8))
            results = list(pool.map(compile_one, files, ddirs, chunksize=chunk))
    except Exception:  # no working process pool here: compile in this process
        results = None
if results is None:
    workers = 1
    results = [compile_one(f, d) for f, d in zip(files, ddirs)]
written = len([c for c, b in zip(cfiles, before) if identity(c) not in (None, b)])
sys.stdout.flush()
print("%s %d %d %d %d" % (MARK, len(files), len([r for r in results if not r]), workers, written))
"""
_MARK = "RUNNER-COMPILED"
# Below this many files per worker a pool costs more (starting workers) than it saves.
MIN_FILES_PER_WORKER = 40


@dataclass(frozen=True)
class Compiled:
    """What the compile step did; `ok` is False when the step itself did not run through."""

    files: int
    failed: int
    workers: int
    ok: bool
    output: str
    written: int = 0  # .pyc files written; the others were up to date (or failed)


def program(relative_to: str | None = None, force: bool = False) -> str:
    """The compile program, with its constants."""
    return (
        f"MARK = {_MARK!r}\nMIN_FILES_PER_WORKER = {MIN_FILES_PER_WORKER}\n"
        f"RELATIVE_TO = {relative_to!r}\nFORCE = {force!r}\n" + _PROGRAM
    )


def compile_tree(
    python: str,
    roots: tuple[str, ...],
    *,
    same_interpreter: bool = False,
    stream: bool = False,
    relative_to: str | None = None,
    force: bool = False,
) -> Compiled:
    """Compile every `.py` under `roots` with `python`; never raises for a file that fails.

    With `same_interpreter` (`python` is the interpreter running runner), a few files are
    compiled in this process: the same bytecode, without starting an interpreter.
    With `relative_to` (the environment), each .pyc records its source's path relative to
    it: the import system puts the real path back when it loads a .pyc beside its source,
    and the same source compiled in two environments gives the same bytes (filestore).
    A .pyc whose header already matches its source (magic number, timestamp mode, mtime)
    is kept, as compileall keeps it, unless `force`: then every file is written again
    (atomically: py_compile writes a temporary file and renames it).
    """
    found = python_files(roots)
    if not found:  # nothing to compile: no interpreter to start
        return Compiled(files=0, failed=0, workers=0, ok=True, output="")
    if same_interpreter and len(found) < 2 * MIN_FILES_PER_WORKER:
        return _compile_here(found, relative_to, force)
    env = proc.child_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        outcome = proc.run(
            [python, "-I", "-c", program(relative_to, force), *roots], env=env, stream=stream
        )
    except OSError as exc:
        return Compiled(files=0, failed=0, workers=0, ok=False, output=str(exc))
    for line in reversed(outcome.output.splitlines()):
        fields = line.split()
        if len(fields) == 5 and fields[0] == _MARK and outcome.ok:
            files, failed, workers, written = (int(f) for f in fields[1:])
            return Compiled(files, failed, workers, ok=True, output=outcome.output, written=written)
    return Compiled(files=0, failed=0, workers=0, ok=False, output=outcome.output)


def python_files(roots: tuple[str, ...]) -> list[str]:
    """The `.py` files under `roots`, as the compile program finds them."""
    files: list[str] = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            files.extend(os.path.join(dirpath, n) for n in filenames if n.endswith(".py"))
    return files


def _compile_here(
    files: list[str], relative_to: str | None = None, force: bool = False
) -> Compiled:
    import compileall
    import contextlib
    import importlib.util
    import io
    import py_compile

    failed = written = 0
    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # compile errors are printed: keep them off stdout
        for path in files:
            ddir = os.path.relpath(os.path.dirname(path), relative_to) if relative_to else None
            cfile = importlib.util.cache_from_source(path)
            before = _identity(cfile)
            if not compileall.compile_file(
                path,
                ddir,
                force=force,
                quiet=1,
                invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP,
            ):
                failed += 1
            written += _identity(cfile) not in (None, before)
    return Compiled(
        len(files),
        failed,
        workers=1 if files else 0,
        ok=True,
        output=out.getvalue(),
        written=written,
    )


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns

"""Create an empty virtual environment in milliseconds, with virtualenv only where it is needed.

Which way (`create_venv`):

* pip must be seeded into the environment (runner's own pip cannot run under the target,
  e.g. Python 3.8 and 3.9): virtualenv, which seeds pip (its bundled wheels from 3.9, the
  target's ensurepip on 3.8).
* The target is the interpreter runner itself runs on: stdlib `venv` in this process
  (a few milliseconds: no interpreter start).
* uv is the installer: `uv venv` (about 20 ms).
* Otherwise: `TARGET -m venv --without-pip` (about 50 ms).

A fast way that fails (a Python whose `venv` module is missing or broken, as on Debian
without python3-venv, or a failing `uv venv`) is not an error: the directory is emptied and
the next way is tried, down to virtualenv, which works for any supported target. The ways
that were tried and why they failed are returned, for `-v` output.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

from runner import layout, proc
from runner.errors import InterpreterError, RunnerError
from runner.fsutil import remove_tree
from runner.interpreters import Interpreter
from runner.values import dataclass

# A Python that has not created an empty environment by then is treated as broken.
CREATE_TIMEOUT = 60.0


@dataclass(frozen=True)
class Created:
    """A new, empty environment: its interpreter, where packages go, and how it was made."""

    python: str
    site_packages: tuple[str, ...]
    method: str = "virtualenv"
    # "<method>: <why it failed>" for each faster way that was tried first.
    fallbacks: tuple[str, ...] = ()


class _Failed(Exception):
    """One way of creating the environment did not work; the next one is tried."""


def create_venv(
    interpreter: Interpreter, dest: Path, *, seed: bool, uv: str | None = None
) -> Created:
    """Create an environment for `interpreter` at `dest` (absent or empty).

    With `seed`, the environment gets its own pip (virtualenv). Otherwise it has no pip,
    and is made by the fastest way that works here (see the module's docstring); `uv` is
    the uv binary when uv is the installer.
    """
    if seed:
        return _with_virtualenv(interpreter, dest, seed=True)
    ways: list[tuple[str, Callable[[Interpreter, Path], None]]] = []
    if is_own_interpreter(interpreter):
        ways.append(("venv (in-process)", _in_process))
    if uv is not None:
        ways.append(("uv venv", lambda i, d: _with_uv(uv, i, d)))
    ways.append(("venv", _with_stdlib_venv))
    failed: list[str] = []
    for method, make in ways:
        try:
            make(interpreter, dest)
            return Created(
                python=layout.env_python(str(dest)),
                site_packages=_site_packages(dest),
                method=method,
                fallbacks=tuple(failed),
            )
        except _Failed as exc:
            failed.append(f"{method}: {exc}")
            _empty(dest)
    created = _with_virtualenv(interpreter, dest, seed=False)
    return Created(
        python=created.python,
        site_packages=created.site_packages,
        method=created.method,
        fallbacks=tuple(failed),
    )


def is_own_interpreter(interpreter: Interpreter) -> bool:
    """Whether `interpreter` is the one running runner (then venv can run in-process)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    try:
        same_file = os.path.samefile(os.path.realpath(base), interpreter.real_path)
    except OSError:
        return False
    return same_file and interpreter.sys_version == sys.version


def _site_packages(dest: Path) -> tuple[str, ...]:
    """The site-packages directories of a new environment (CPython and PyPy layouts)."""
    if sys.platform == "win32":
        found = [dest / "Lib" / "site-packages"]
    else:
        # lib64 is a symlink to lib where it exists: looking in lib finds each once.
        found = sorted((dest / "lib").glob("*/site-packages"))
    dirs = tuple(str(p) for p in found if p.is_dir())
    if not dirs:
        raise _Failed("the new environment has no site-packages directory")
    return dirs


def _check_layout(dest: Path) -> None:
    python = layout.env_python(str(dest))
    try:
        os.stat(python)  # follows the link to the base interpreter
    except OSError as exc:
        raise _Failed(f"the new environment has no working {python} ({exc.strerror})") from None
    _site_packages(dest)


def _empty(dest: Path) -> None:
    """Remove what a failed attempt left in `dest`, keeping the (private) directory."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(dest):
            remove_tree(Path(entry.path))


def _tail(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def _in_process(interpreter: Interpreter, dest: Path) -> None:
    import venv

    class Bare(venv.EnvBuilder):
        def setup_scripts(self, context: object) -> None:
            pass  # activation scripts: nobody activates a cached environment

    try:
        Bare(with_pip=False, symlinks=os.name != "nt").create(str(dest))
    except (OSError, ValueError, RuntimeError) as exc:
        raise _Failed(str(exc)) from None
    _check_layout(dest)


def _with_stdlib_venv(interpreter: Interpreter, dest: Path) -> None:
    # -I: a stray venv.py in the working directory must not answer for the stdlib.
    cmd = [interpreter.path, "-I", "-m", "venv", "--without-pip"]
    if os.name != "nt":
        cmd.append("--symlinks")
    _run([*cmd, str(dest)])
    _check_layout(dest)


def _with_uv(uv: str, interpreter: Interpreter, dest: Path) -> None:
    # --allow-existing: `dest` is our private directory, already made; it is empty.
    _run(
        [
            uv,
            "venv",
            "--quiet",
            "--no-project",
            "--allow-existing",
            "--python",
            interpreter.path,
            str(dest),
        ]
    )
    _check_layout(dest)


def _run(cmd: list[str]) -> None:
    try:
        outcome = proc.run(cmd, env=proc.child_env(), timeout=CREATE_TIMEOUT)
    except OSError as exc:
        raise _Failed(exc.strerror or str(exc)) from None
    if outcome.timed_out:
        raise _Failed(f"no answer within {CREATE_TIMEOUT:.0f} s")
    if not outcome.ok:
        raise _Failed(f"exit status {outcome.returncode}: {_tail(outcome.output)}")


def _with_virtualenv(interpreter: Interpreter, dest: Path, *, seed: bool) -> Created:
    """virtualenv, in-process: for seeding pip, and where stdlib venv does not work."""
    from virtualenv import cli_run

    args = [
        str(dest),
        "--python",
        interpreter.path,
        "--no-periodic-update",
        "--activators",
        "",
        "--quiet",
    ]
    # virtualenv's bundled seeder stops at 3.9; older targets get pip from their ensurepip.
    use_ensurepip = seed and interpreter.version_obj.release[:2] < (3, 9)
    if seed and not use_ensurepip:
        args += ["--seeder", "app-data", "--no-setuptools"]
    else:
        args.append("--no-seed")
    try:
        session = cli_run(args, setup_logging=False)
    except (Exception, SystemExit) as exc:  # virtualenv raises assorted types
        raise RunnerError(
            f"could not create a virtual environment for {interpreter.describe()}: {exc}",
            hint="Check that the interpreter works (`PYTHON -c pass`), or choose another "
            "with --python.",
        ) from None
    creator = session.creator
    if use_ensurepip:
        outcome = proc.run(
            [str(creator.exe), "-m", "ensurepip", "--default-pip"], env=proc.child_env()
        )
        if not outcome.ok:
            raise InterpreterError(
                f"cannot put pip into an environment for {interpreter.describe()}: its "
                "ensurepip module failed",
                hint="runner supports Python 3.9 and newer, and 3.8 where ensurepip works; "
                "choose a newer interpreter with --python.",
                details="\n".join(outcome.output.strip().splitlines()[-5:]),
            )
    site = tuple(dict.fromkeys(str(p) for p in (creator.purelib, creator.platlib)))
    return Created(python=str(creator.exe), site_packages=site, method="virtualenv")

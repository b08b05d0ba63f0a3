"""Build one environment in a private directory: create, install, verify, write the manifest."""

from __future__ import annotations

import errno
import json
import os
import time
from dataclasses import dataclass
from importlib.metadata import Distribution, distributions
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from runner import __version__, layout
from runner.cache import Cache
from runner.config import Config
from runner.errors import InstallError, RunnerError
from runner.fsutil import atomic_write_text, fsync_dir, remove_tree
from runner.installers import Installer, InstallFailed, InstallRequest, Problem
from runner.interpreters import Interpreter
from runner.report import Reporter
from runner.spec import EnvSpec

MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class Created:
    python: str
    site_packages: tuple[str, ...]


def create_venv(interpreter: Interpreter, dest: Path, *, seed: bool) -> Created:
    """Create an environment with virtualenv, in-process, without pip unless `seed`."""
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
        from runner import proc
        from runner.errors import InterpreterError

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
    return Created(python=str(creator.exe), site_packages=site)


def _installed(site_packages: tuple[str, ...]) -> dict[str, Distribution]:
    found: dict[str, Distribution] = {}
    for dist in distributions(path=list(site_packages)):
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonicalize_name(name), dist)
    return found


def verify(spec: EnvSpec, site_packages: tuple[str, ...]) -> dict[str, str]:
    """Check that every requirement, transitively, is satisfied by what got installed.

    Returns {canonical name: version} of everything installed.
    """
    installed = _installed(site_packages)
    env = spec.interpreter.marker_env
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    todo: list[tuple[Requirement, str | None]] = [(Requirement(r), None) for r in spec.requirements]
    while todo:
        req, parent = todo.pop()
        if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
            continue
        name = canonicalize_name(req.name)
        dist = installed.get(name)
        who = f" (needed by {parent})" if parent else ""
        if dist is None:
            problems.append(f"{req.name} is not installed{who}")
            continue
        try:
            version = Version(dist.version)
        except InvalidVersion:
            continue
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name} {version} does not satisfy {req}{who}")
            continue
        for extra in ("", *sorted(canonicalize_name(e) for e in req.extras)):
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            for text in dist.requires or []:
                sub = Requirement(text)
                if sub.marker is None:
                    if extra:
                        continue  # unconditional: already taken with extra ""
                elif (extra and "extra" not in str(sub.marker)) or not sub.marker.evaluate(
                    {**env, "extra": extra}
                ):
                    continue
                sub.marker = None
                todo.append((sub, f"{name}[{extra}]" if extra else name))
    if problems:
        raise InstallError(
            "the installed environment does not satisfy the script's dependencies",
            hint="The installer reported success but left requirements unmet; run again "
            "with -v to see what it did.",
            details="\n".join(problems),
        )
    return {name: dist.version for name, dist in sorted(installed.items())}


def write_manifest(
    env_dir: Path, spec: EnvSpec, installed: dict[str, str], installer: str, python: str
) -> None:
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "key": spec.key,
        "inputs": spec.key_data(),
        "requirements": list(spec.requirements),
        "installed": [{"name": n, "version": v} for n, v in installed.items()],
        "interpreter": {
            "path": spec.interpreter.path,
            "real_path": spec.interpreter.real_path,
            "implementation": spec.interpreter.implementation,
            "version": spec.interpreter.version,
        },
        "python": python,
        "installer": installer,
        "created": time.time(),
        "runner_version": __version__,
    }
    atomic_write_text(env_dir / layout.MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")


def checkpoint(name: str, config: Config) -> None:
    """Fault injection for crash tests: with RUNNER_TEST_HANG_AT=name, stop here until killed.

    The process writes its pid to RUNNER_TEST_HANG_FILE first, so a test knows the build has
    reached this point and can SIGKILL it deterministically.
    """
    if config.hang_at != name or config.hang_file is None:
        return
    import signal

    Path(config.hang_file).write_text(str(os.getpid()))
    while True:
        signal.pause()


def build(
    spec: EnvSpec,
    cache: Cache,
    installer: Installer,
    reporter: Reporter,
    *,
    offline: bool = False,
    refresh: bool = False,
    pinned_file: Path | None = None,
) -> Path:
    """Build `spec` in a fresh store directory and return it, complete but unpublished.

    On any failure the directory is removed; if the process is killed instead, it stays
    behind unpublished, where nothing reads it and prune removes it.
    """
    env_dir = cache.new_build_dir(spec.key)
    try:
        started = time.monotonic()
        seed = installer.needs_seed(spec.interpreter)
        reporter.phase(f"creating an environment for {spec.interpreter.describe()}")
        created = create_venv(spec.interpreter, env_dir, seed=seed)
        checkpoint("created", cache.config)
        if spec.requirements or pinned_file is not None:
            count = len(spec.requirements)
            reporter.phase(
                f"installing {count} requirement{'s' if count != 1 else ''} with {installer.name}"
            )
            request = InstallRequest(
                python=created.python,
                requirements=spec.requirements,
                index=spec.index,
                offline=offline,
                exclude_newer=spec.exclude_newer,
                pinned_file=pinned_file,
                refresh=refresh,
                seeded=seed,
            )
            installer.install(request, log_path=cache.log_path(spec.key), reporter=reporter)
        checkpoint("installed", cache.config)
        installed = verify(spec, created.site_packages)
        # The lease file exists before the manifest: an env with a manifest is leasable.
        (env_dir / layout.LEASE_NAME).touch()
        write_manifest(env_dir, spec, installed, installer.name, created.python)
        if cache.config.sync:
            os.sync()  # what is published must survive a power cut, not just SIGKILL
        fsync_dir(env_dir)
        reporter.detail(f"built {env_dir} in {time.monotonic() - started:.2f} s")
    except BaseException as exc:
        remove_tree(env_dir)
        space = cache.build_failure(exc)
        if isinstance(exc, InstallFailed) and exc.diagnosis.problem is Problem.NO_SPACE:
            # The installer reports a full disk only in its output: the cache is full.
            space = cache.build_failure(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
            if space is not None:
                space.details = exc.details
        if space is not None:
            raise space from None
        raise
    finally:
        reporter.end_status()  # erase the live status line before anyone else writes
    return env_dir

"""Build one environment in a private directory: create, install, verify, compile, write the
manifest, flush to disk."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner import __version__, durable, layout, simplereq, start
from runner.cache import Cache
from runner.config import Config
from runner.errors import InstallError
from runner.fsutil import atomic_write_text, fsync_dir, remove_tree
from runner.installers import Installer, InstallFailed, InstallRequest, Problem, UvInstaller
from runner.interpreters import Interpreter
from runner.records import Distribution, fingerprint_dirs, installed_distributions
from runner.report import Reporter
from runner.spec import EnvSpec
from runner.venvs import Created, create_venv, is_own_interpreter

if TYPE_CHECKING:
    from runner.filestore import ShareResult

MANIFEST_FORMAT = 1
# From this many modules on, `build(background_bytecode=True)` publishes first and the
# bytecode is compiled in the background (`runner.bgcompile`). numpy + pandas: 1,970 modules
# in 3.1-3.3 s with 2 workers, so 200 such modules cost a first run ~0.3 s; fewer are
# compiled before publish, where the saving would not pay for a background process.
BACKGROUND_MIN_FILES = 200


def _while_installing() -> None:
    """What the rest of a build imports, imported while the installer runs (on another core):
    `packaging` for `verify` (the cold path reads everyday requirements without it,
    `runner.simplereq`), the RECORD reader, compileall, the thread pools of file sharing,
    the file store and the bytecode index."""
    # Import statements, not importlib.import_module: `-X importtime` (tests/test_warm.py)
    # sees only these.
    import compileall  # noqa: F401
    import concurrent.futures  # noqa: F401
    import csv  # noqa: F401

    from packaging import requirements, utils, version  # noqa: F401

    from runner import bytecode, filestore, pycindex  # noqa: F401


def _installed(site_packages: tuple[str, ...]) -> dict[str, Distribution]:
    found: dict[str, Distribution] = {}
    for dist in installed_distributions(site_packages):
        found.setdefault(simplereq.canonical_name(dist.name), dist)
    return found


def verify(spec: EnvSpec, site_packages: tuple[str, ...]) -> dict[str, str]:
    """Check that every requirement, transitively, is satisfied by what got installed.

    Returns {canonical name: version} of everything installed.
    """
    installed = _installed(site_packages)
    if not spec.requirements:
        return {name: dist.version for name, dist in sorted(installed.items())}
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version

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
        "inputs": spec.stored_key_data(),
        "requirements": list(spec.shown_requirements()),
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


def create(
    spec: EnvSpec, env_dir: Path, installer: Installer, *, seed: bool, reporter: Reporter
) -> Created:
    """The empty environment: uv venv when uv installs, else stdlib venv (see `runner.venvs`)."""
    uv = installer.uv if isinstance(installer, UvInstaller) else None
    begun = time.monotonic()
    created = create_venv(spec.interpreter, env_dir, seed=seed, uv=uv)
    for note in created.fallbacks:
        reporter.detail(f"could not create the environment with {note}")
    reporter.detail(
        f"created the environment with {created.method} in "
        f"{(time.monotonic() - begun) * 1000:.0f} ms"
    )
    return created


def _base_binary(created: Created, env_dir: Path, seed: bool) -> str | None:
    """The interpreter binary a new POSIX environment's `python` links to, for installing
    into it from outside (`InstallRequest.base_python`); None where it is a copy."""
    if os.name != "posix" or seed:
        return None
    real = os.path.realpath(created.python)
    if real.startswith(os.path.realpath(env_dir) + os.sep) or not os.access(real, os.X_OK):
        return None
    return real


def compile_bytecode(
    created: Created,
    reporter: Reporter,
    *,
    same_interpreter: bool,
    env_dir: Path | None = None,
    force: bool = False,
) -> None:
    """Compile the environment's site-packages in parallel (installers were told not to).

    One step of its own: it runs after the installed files are final, so everything the
    environment will ever import is compiled (`compile_and_share_bytecode`).
    """
    from runner import bytecode

    reporter.phase("compiling bytecode")
    begun = time.monotonic()
    done = bytecode.compile_tree(
        created.python,
        created.site_packages,
        same_interpreter=same_interpreter,
        stream=reporter.verbose,
        # Environment-relative file names: byte-identical bytecode can be shared.
        relative_to=str(env_dir) if env_dir is not None else None,
        force=force,
    )
    took = time.monotonic() - begun
    if not done.ok:
        # Not a build failure: the environment works, only its first imports are slower.
        tail = "\n".join(done.output.strip().splitlines()[-5:])
        reporter.warn(f"could not compile the environment's bytecode ({took:.2f} s): {tail}")
        return
    kept = done.files - done.written - done.failed
    up_to_date = f", {kept} up to date already" if kept else ""
    skipped = f", {done.failed} skipped (they do not compile)" if done.failed else ""
    reporter.detail(
        f"compiled {done.written} of {done.files} files{up_to_date}{skipped} with "
        f"{done.workers} worker{'s' if done.workers != 1 else ''} in {took:.2f} s"
    )


def compile_and_share_bytecode(
    env_dir: Path,
    created: Created,
    cache: Cache,
    reporter: Reporter,
    *,
    interpreter: Interpreter | None,
    sources: ShareResult | None,
    same_interpreter: bool,
    background: bool = False,
    force: bool = False,
) -> bool:
    """The bytecode step, in one place: link the .pyc files the bytecode index holds for
    these sources (`runner.pycindex`), compile the rest, share the bytecode through the file
    store and record what was compiled in the index. `sources`: what sharing the sources
    did (None: they were not shared, so neither is the bytecode, nor is the index used);
    `interpreter`: the environment's (None: unknown, no index).

    `build` runs it before the manifest. With `background`, when BACKGROUND_MIN_FILES
    modules or more are left to compile after the index, it stops there instead and
    prepares the environment to be published without them (`defer_bytecode`); the
    background job (`runner.bgcompile`) runs the step again after publish. Every file it
    writes appears by an atomic rename or link (py_compile's temporary file, the index's and
    the file store's links), so a script running meanwhile sees each .pyc whole or not at
    all. Returns whether it deferred.
    """
    from runner import bytecode, pycindex  # imported while the installer ran

    modules = bytecode.python_files(created.site_packages) if background else []
    if (
        len(modules) >= BACKGROUND_MIN_FILES
        # Nothing to find (a first build): the lookup would only hash the sources (uv's:
        # 0.2-0.4 s for numpy + pandas) that the background job hashes anyway.
        and _index_is_empty(cache)
        and _defer(env_dir, modules, len(modules), reporter)
    ):
        return True
    known = None
    if interpreter is not None:
        # Bytecode the store holds for these very sources is linked, not compiled again.
        known = pycindex.link_before_compile(
            env_dir, created.site_packages, cache, interpreter, sources, reporter
        )
    checkpoint("indexed", cache.config)
    left = len(known.misses) if known is not None else len(modules)
    if background and left >= BACKGROUND_MIN_FILES and _defer(env_dir, modules, left, reporter):
        return True
    compile_bytecode(
        created, reporter, same_interpreter=same_interpreter, env_dir=env_dir, force=force
    )
    checkpoint("compiled", cache.config)
    if sources is not None:
        compiled = _share(env_dir, cache, reporter, bytecode_only=True)
        pycindex.record_after_compile(known, compiled, reporter)
    return False


def _index_is_empty(cache: Cache) -> bool:
    from runner import pycindex

    try:
        with os.scandir(pycindex.index_root(cache.root)) as entries:
            return next(entries, None) is None
    except OSError:
        return True


def _defer(env_dir: Path, modules: list[str], left: int, reporter: Reporter) -> bool:
    if not defer_bytecode(env_dir, modules):
        return False
    reporter.detail(
        f"publishing before the bytecode of {left} modules is compiled: it is compiled in "
        "the background"
    )
    return True


def defer_bytecode(env_dir: Path, files: list[str]) -> bool:
    """Prepare an unpublished environment to get its bytecode after publish: make the
    `__pycache__` directories whose making would change what the warm alias records, then
    the pending marker, locked once to check that this filesystem can lock it; False
    (nothing deferred) where it cannot.

    The alias records the mtimes of site-packages and of the directories directly in it
    (`records.fingerprint_dirs`, asked here too): a `__pycache__` made in one of those
    after publish would send every later run cold, so those few are made now. The others
    (numpy + pandas: 224 of 228) are made by whoever writes bytecode there first, the
    compile or the script's own imports, as Python makes them anywhere: making one changes
    only its parent's mtime, which nothing records, and making them all here cost the first
    run 0.17 s (0.75 ms a directory on this machine's disk). Filling a `__pycache__`
    changes only its own mtime.
    """
    watched = set(fingerprint_dirs(env_dir))
    for directory in sorted({os.path.dirname(f) for f in files} & watched):
        os.makedirs(os.path.join(directory, "__pycache__"), exist_ok=True)
    marker = env_dir / layout.BYTECODE_PENDING
    os.close(os.open(marker, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644))
    fd = start.claim_bytecode(str(env_dir))
    if fd is None:
        # No flock (or not here): a job could not tell whether another one runs.
        os.unlink(marker)
        return False
    os.close(fd)
    return True


def make_durable(env_dir: Path, reporter: Reporter, config: Config) -> None:
    """What is published must survive a power cut, not just SIGKILL: flush the build (only
    the cache's filesystem, or the build's own files), then its directory entry.
    RUNNER_NO_SYNC (`config.sync` False) skips it: throwaway caches only."""
    if not config.sync:
        return
    begun = time.monotonic()
    how = durable.flush(env_dir)
    fsync_dir(env_dir.parent)
    reporter.detail(f"flushed to disk ({how}) in {time.monotonic() - begun:.2f} s")


def _share(
    env_dir: Path, cache: Cache, reporter: Reporter, *, bytecode_only: bool
) -> ShareResult | None:
    """Share the environment's files through the store; None if links cannot be made."""
    started = time.monotonic()
    from runner import filestore, trust

    root = filestore.store_root(cache.root)
    with contextlib.suppress(OSError):  # the trust check below says what is wrong
        root.mkdir(mode=0o755, exist_ok=True)
    problem = trust.subdir_problem(
        str(cache.root), root.name, allow_shared=cache.config.allow_shared_cache
    )
    if problem is not None:  # the cache trust rule: never link to files someone else made
        reporter.detail(f"not sharing files through the cache's file store: {problem}")
        return None
    result = filestore.share(env_dir, cache.root, bytecode_only=bytecode_only)
    what = "bytecode" if bytecode_only else "files"
    reporter.detail(
        f"shared {what}: {result.linked} linked to stored copies "
        f"({result.bytes_linked / 1e6:.1f} MB), {result.added} added to the store, "
        f"{result.private} kept private, {result.already_shared} linked already (from the "
        f"installer's cache or the bytecode index), in {time.monotonic() - started:.2f} s"
    )
    if result.fallback is not None:
        reporter.detail(
            f"cannot hard-link files into the cache's file store, so this environment keeps "
            f"its own copies: {result.fallback}"
        )
    return result if result.fallback is None else None


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
    background_bytecode: bool = False,
) -> Path:
    """Build `spec` in a fresh store directory and return it, complete but unpublished.

    On any failure the directory is removed; if the process is killed instead, it stays
    behind unpublished, where nothing reads it and prune removes it.

    With `background_bytecode`, an environment with BACKGROUND_MIN_FILES modules or more to
    compile (after the bytecode index) is left without them, marked pending
    (`defer_bytecode`): the caller publishes it and starts the background compile
    (`runner.bgcompile`).
    """
    env_dir = cache.new_build_dir(spec.key)
    try:
        started = time.monotonic()
        seed = installer.needs_seed(spec.interpreter)
        reporter.phase(f"creating an environment for {spec.interpreter.describe()}")
        created = create(spec, env_dir, installer, seed=seed, reporter=reporter)
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
                scratch=env_dir,
                meanwhile=_while_installing,
                base_python=_base_binary(created, env_dir, seed),
                prefix=env_dir,
            )
            installer.install(request, log_path=cache.log_path(spec.key), reporter=reporter)
        checkpoint("installed", cache.config)
        installed = verify(spec, created.site_packages)
        # File sharing (filestore): sources first, so each .pyc records the stored file's
        # mtime and size and comes out byte-identical wherever the same source is compiled.
        sharing = cache.config.link_mode == "link"
        shared = _share(env_dir, cache, reporter, bytecode_only=False) if sharing else None
        checkpoint("shared", cache.config)
        # Even without requirements: environment creators may leave modules in
        # site-packages (uv venv's _virtualenv.py), and a first import that writes their
        # bytecode would change the directory the warm alias records.
        compile_and_share_bytecode(
            env_dir,
            created,
            cache,
            reporter,
            interpreter=spec.interpreter,
            sources=shared,
            same_interpreter=is_own_interpreter(spec.interpreter),
            background=background_bytecode,
        )
        # The lease file exists before the manifest: an env with a manifest is leasable.
        (env_dir / layout.LEASE_NAME).touch()
        write_manifest(env_dir, spec, installed, installer.name, created.python)
        make_durable(env_dir, reporter, cache.config)
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

"""The cold path: script -> metadata -> spec -> environment (found or built) -> exec."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

from runner import fastpath
from runner.builder import build, checkpoint
from runner.cache import Cache
from runner.errors import RunnerError, ScriptError
from runner.installers import describe_requirements, get_installer
from runner.interpreters import Selection, select
from runner.metadata import ScriptMetadata, decode_source, parse
from runner.report import Reporter
from runner.spec import EnvSpec, IndexSettings, make_spec


@dataclass(frozen=True)
class RunOptions:
    """Options of `run` (and `sync`, `python`) that affect which environment is used."""

    python: str | None = None
    with_requirements: tuple[str, ...] = ()
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    exclude_newer: str | None = None
    locked: bool = False
    refresh: bool = False
    offline: bool = False
    installer: str | None = None

    def selection_pairs(self) -> list[tuple[str, str]]:
        """The same canonical pairs the fast path derives from the command line."""
        pairs: list[tuple[str, str]] = []

        def add(name: str, value: str) -> None:
            pairs.append((name, fastpath.canonical_option(name, value)))

        if self.python:
            add("python", self.python)
        for req in self.with_requirements:
            add("with", req)
        if self.index_url:
            add("index-url", self.index_url)
        for url in self.extra_index_urls:
            add("extra-index-url", url)
        for link in self.find_links:
            add("find-links", link)
        if self.exclude_newer:
            add("exclude-newer", self.exclude_newer)
        if self.no_index:
            pairs.append(("no-index", ""))
        if self.locked:
            pairs.append(("locked", ""))
        return pairs


@dataclass(frozen=True)
class Script:
    """A script as read from disk: the path as given, its bytes, text and metadata."""

    path: str
    data: bytes
    text: str
    metadata: ScriptMetadata

    @property
    def directory(self) -> str:
        return os.path.dirname(os.path.abspath(self.path))


def load_script(path: str) -> Script:
    """Read and parse a script; every failure is a ScriptError/MetadataError with a fix."""
    if os.path.isdir(path):
        raise ScriptError(
            f"{path} is a directory, not a script",
            hint="Pass the path of a Python file: runner run path/to/script.py",
        )
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ScriptError(
            f"script not found: {path}",
            hint="Check the path; it is taken relative to the current directory "
            f"({os.getcwd()}).",
        ) from None
    except PermissionError:
        raise ScriptError(
            f"cannot read {path}: permission denied",
            hint=f"Make it readable (chmod u+r {path}).",
        ) from None
    except OSError as exc:
        raise ScriptError(f"cannot read {path}: {exc.strerror}") from None
    text = decode_source(data, path)
    return Script(path=path, data=data, text=text, metadata=parse(text, path))


@dataclass(frozen=True)
class Prepared:
    """Everything decided before the environment is looked up."""

    script: Script
    spec: EnvSpec
    selection: Selection
    digest: str | None


def prepare(script: Script, options: RunOptions, cache: Cache) -> Prepared:
    meta = script.metadata
    selection = select(meta.requires_python, options.python, cache.root)
    index = IndexSettings(
        index_url=options.index_url,
        extra_index_urls=options.extra_index_urls,
        find_links=tuple(os.path.abspath(p) if "://" not in p else p for p in options.find_links),
        no_index=options.no_index,
    )
    spec = make_spec(
        [*meta.dependencies, *options.with_requirements],
        selection.interpreter,
        index=index,
        exclude_newer=options.exclude_newer,
    )
    lock_bytes: bytes | None
    try:
        lock_bytes = Path(fastpath.lock_path_for(script.path)).read_bytes()
    except OSError:
        lock_bytes = None
    digest = fastpath.selection_digest(
        meta.block, options.selection_pairs(), lock_bytes, script.directory
    )
    return Prepared(script=script, spec=spec, selection=selection, digest=digest)


def ensure_environment(
    prepared: Prepared, options: RunOptions, cache: Cache, reporter: Reporter
) -> Path:
    """Return a published environment for the spec, building it (once) if needed."""
    spec = prepared.spec
    key = spec.key
    if not options.refresh:
        found = cache.lookup(key)
        if found is not None:
            return found
    label = prepared.script.path
    warned: list[bool] = []

    def on_wait(owner: str) -> None:
        reporter.info(f"waiting for another build of this environment ({owner})")

    def on_unlockable(message: str) -> None:
        if not warned:
            warned.append(True)
            reporter.detail(message)

    with cache.build_lock(key, label=label, on_wait=on_wait, on_unlockable=on_unlockable):
        if not options.refresh:
            found = cache.lookup(key)
            if found is not None:
                return found
        reporter.info(
            f"building an environment for {label} ({describe_requirements(spec.requirements)})"
        )
        installer = get_installer(options.installer or os.environ.get("RUNNER_INSTALLER"))
        env_dir = build(
            spec, cache, installer, reporter, offline=options.offline, refresh=options.refresh
        )
        checkpoint("publish")
        cache.publish(key, env_dir)
        reporter.info(f"environment ready in {reporter.elapsed():.1f} s")
    from runner.lifecycle import maybe_auto_prune  # cold path only, after the lock is released

    maybe_auto_prune(cache, reporter)
    return env_dir


def environment_for(
    script: Script, options: RunOptions, cache: Cache, reporter: Reporter
) -> tuple[Prepared, Path]:
    cache.ensure()
    prepared = prepare(script, options, cache)
    env_dir = ensure_environment(prepared, options, cache, reporter)
    if prepared.digest is not None:
        cache.write_alias(
            prepared.digest,
            env_dir,
            stat_paths=prepared.selection.stat_checks,
            var_names=prepared.selection.var_checks,
            script=os.path.abspath(script.path),
        )
    return prepared, env_dir


def run(script_path: str, args: list[str], options: RunOptions, reporter: Reporter) -> int:
    """Run a script in its environment. On POSIX this does not return (exec)."""
    cache = Cache()
    script = load_script(script_path)
    for _attempt in range(3):
        _, env_dir = environment_for(script, options, cache, reporter)
        lease = fastpath.take_lease(str(env_dir))
        if lease is None:
            # Cleanup removed it between publish and lease: build again.
            options = replace(options, refresh=False)
            continue
        if os.name == "posix":
            fastpath.exec_environment(str(env_dir), script.path, args, lease)
        return run_child(env_dir, script.path, args)
    raise RunnerError(
        f"the environment for {script_path} kept disappearing while starting it",
        hint="Another process is cleaning the cache continuously; stop it and try again.",
    )


def run_child(env_dir: Path, script: str, args: list[str]) -> int:
    """Where exec is unavailable (Windows): run a child and pass its exit status through."""
    python = fastpath.env_python(str(env_dir))
    env = dict(os.environ)
    env["VIRTUAL_ENV"] = str(env_dir)
    env["PATH"] = os.path.dirname(python) + os.pathsep + env.get("PATH", "")
    env["RUNNER_DEPTH"] = str(fastpath.nesting_depth() + 1)
    child = subprocess.Popen([python, script, *args], env=env)
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            continue  # the console delivered Ctrl-C to the child too; let it decide


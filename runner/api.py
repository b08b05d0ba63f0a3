"""The run pipeline (the cold path): a settings value and a script in, an environment out,
then exec. script -> metadata -> spec -> environment (found or built) -> exec."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from runner import alias, layout, options, proc, records
from runner.builder import build, checkpoint
from runner.cache import Cache
from runner.config import Config
from runner.errors import (
    CacheError,
    InstallError,
    LockfileError,
    RunnerError,
    ScriptError,
    UsageError,
)
from runner.hashing import sha256_hex
from runner.installers import (
    Installer,
    InstallFailed,
    Problem,
    describe_requirements,
    get_installer,
)
from runner.interpreters import Selection, select
from runner.metadata import ScriptMetadata, decode_source, parse
from runner.report import Reporter
from runner.spec import EnvSpec, make_spec
from runner.values import dataclass, fields, replace

if TYPE_CHECKING:
    from runner.lockfile import Lock
    from runner.options import ParsedRun


@dataclass(frozen=True)
class RunOptions:
    """Options of `run` (and `sync`, `python`, `lock`) that affect which environment is used
    and how it is built: one field per environment option of `options.RUN_OPTIONS`."""

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

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> RunOptions:
        """From the option table's values (`options.parse_run`, or the CLI's)."""
        given = {f.name: values[f.name] for f in fields(cls) if f.name in values}
        return cls(**given)  # type: ignore[arg-type]

    def with_config(self, config: Config) -> RunOptions:
        """Fill what the command line left unset from RUNNER_OFFLINE and RUNNER_INSTALLER."""
        return replace(
            self,
            offline=self.offline or config.offline,
            installer=self.installer or config.installer,
        )

    def selection_pairs(self) -> list[tuple[str, str]]:
        """The same canonical pairs the launcher derives from the command line."""
        return options.selection_pairs({f.name: getattr(self, f.name) for f in fields(self)})


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


def load_script(path: str, data: bytes | None = None, reporter: Reporter | None = None) -> Script:
    """Read (unless `data` holds its bytes already) and parse a script; every failure is a
    ScriptError/MetadataError with a fix.

    With a reporter, say which lines hold the block (-v) and warn about an opener that
    nothing closes: the specification says to ignore it, which silently drops its
    dependencies.
    """
    if data is None:
        data = _read_script_file(path)
    text = decode_source(data, path)
    script = Script(path=path, data=data, text=text, metadata=parse(text, path))
    if reporter is not None:
        describe_block(script, reporter)
    return script


def describe_block(script: Script, reporter: Reporter) -> None:
    """Which block is used (-v), and a warning per `# /// script` line that nothing closes."""
    meta = script.metadata
    if meta.block_line is not None:
        reporter.detail(
            f"{script.path}: using the script block on lines "
            f"{meta.block_line}-{meta.block_end_line}"
        )
    elif not meta.unclosed:
        reporter.detail(f"{script.path}: no script block; running without dependencies")
    for line in meta.unclosed:
        reporter.warn(
            f"{script.path}:{line}: '# /// script' opens a block that no '# ///' line "
            "closes, so it is ignored (end the block with a line '# ///')"
        )


def _read_script_file(path: str) -> bytes:
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
            hint=f"Check the path; it is taken relative to the current directory ({_cwd()}).",
        ) from None
    except PermissionError:
        raise ScriptError(
            f"cannot read {path}: permission denied",
            hint=f"Make it readable (chmod u+r {path}).",
        ) from None
    except OSError as exc:
        raise ScriptError(f"cannot read {path}: {exc.strerror}") from None
    return data


@dataclass(frozen=True)
class Prepared:
    """Everything decided before the environment is looked up."""

    script: Script
    spec: EnvSpec
    selection: Selection
    digest: str | None
    # From a matching lock file: `name==version --hash=...` lines to install without resolving.
    pinned: tuple[str, ...] | None = None
    # Warnings decided while preparing (a stale lock), shown when the environment is built.
    notes: tuple[str, ...] = ()
    # Epoch seconds after which the warm alias must not be trusted (a relative cutoff moves).
    alias_expires: int | None = None


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError:
        return "which no longer exists"


def prepare(script: Script, options: RunOptions, cache: Cache) -> Prepared:
    from runner import settings

    meta = script.metadata
    selection = select(
        meta.requires_python, options.python, cache.root, env_choice=cache.config.python
    )
    index, exclude_newer, alias_expires = settings.index_and_cutoff(
        meta, script.path, script.directory, options
    )
    lock_path = layout.lock_path_for(script.path)
    lock = _load_lock(lock_path)
    pinned: tuple[str, ...] | None = None
    notes: list[str] = []
    use_alias = True
    lock_name = os.path.basename(lock_path)
    if options.locked and options.refresh:
        raise UsageError(
            "--locked and --refresh contradict each other",
            hint="--refresh re-resolves to the newest versions; --locked installs the lock.",
        )
    if lock is None:
        if options.locked:
            raise LockfileError(
                f"--locked: {script.path} has no lock file ({lock_path})",
                hint=f"Create it with `runner lock {script.path}`.",
            )
    else:
        why = lock.mismatch(meta, selection.interpreter)
        if why is None and options.with_requirements:
            why = "--with adds requirements the lock does not cover"
        if why is not None:
            if options.locked:
                raise LockfileError(
                    f"--locked: {lock_path} is out of date: {why}",
                    hint=f"Update it with `runner lock {script.path}`.",
                )
            notes.append(f"{lock_name} does not match {script.path} ({why}); resolving anew")
            use_alias = False  # keep warning on every run until the lock is fixed
        elif options.refresh:
            notes.append(f"--refresh ignores {lock_name}; run `runner lock` to update it")
            use_alias = False  # later runs must still get the locked environment
        else:
            pinned = tuple(lock.pinned_lines(selection.interpreter))
    spec = make_spec(
        [*meta.dependencies, *options.with_requirements],
        selection.interpreter,
        index=index,
        lock_digest=lock.digest if pinned is not None and lock is not None else None,
        exclude_newer=exclude_newer,
    )
    digest = None
    if meta.unclosed:
        use_alias = False  # keep warning on every run until the block is closed
    if use_alias:
        digest = alias.selection_digest(
            meta.block,
            options.selection_pairs(),
            lock.content if lock is not None else None,
            script.directory,
            cache.config.python,
        )
    return Prepared(
        script=script,
        spec=spec,
        selection=selection,
        digest=digest,
        pinned=pinned,
        notes=tuple(notes),
        alias_expires=alias_expires,
    )


def _load_lock(lock_path: str) -> Lock | None:
    """The script's lock file, if it has one (`runner.lockfile` is imported only then)."""
    try:
        os.stat(lock_path)
    except FileNotFoundError:
        return None
    except OSError:
        pass  # load_lock says what is wrong
    from runner import lockfile

    return lockfile.load_lock(lock_path)


def ensure_environment(
    prepared: Prepared,
    options: RunOptions,
    cache: Cache,
    reporter: Reporter,
    *,
    background_bytecode: bool = False,
) -> Path:
    """Return a published environment for the spec, building it (once) if needed (a large
    one without its bytecode, with `background_bytecode`: see `runner.bgcompile`)."""
    spec = prepared.spec
    key = spec.key
    for note in prepared.notes:
        reporter.warn(note)
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
        else:
            from runner.cache import process_start_time

            found = cache.refreshed_since(key, process_start_time() or 0.0)
            if found is not None:  # a --refresh that started after we were asked: as good
                reporter.info(f"using the environment just refreshed by another run ({found})")
                return found
        reporter.info(
            f"building an environment for {label} ({describe_requirements(spec.requirements)})"
        )
        installer = get_installer(options.installer)
        env_dir = _build(
            prepared, options, cache, installer, reporter, background_bytecode=background_bytecode
        )
        checkpoint("publish", cache.config)
        cache.publish(key, env_dir)
        reporter.info(f"environment ready in {reporter.elapsed():.1f} s")
    start_auto_prune(cache)  # beside the script, never before it
    return env_dir


def start_auto_prune(cache: Cache) -> bool:
    """Start the daily automatic prune in a detached process, if it is due; whether it was.

    Called on the cold path after a build: the script starts at once, the prune runs beside
    it (`python -m runner.lifecycle ROOT`, which builds its settings from the same
    environment). Never raises. Deciding costs one stat: `runner.lifecycle` is not imported.
    """
    if not cache.config.auto_prune:
        return False
    try:
        last: float | None = os.stat(cache.root / layout.AUTO_PRUNE_STAMP).st_mtime
    except OSError:
        last = None
    if last is not None and time.time() - last < layout.AUTO_PRUNE_INTERVAL:
        return False
    try:
        # Detached, never a child of the script this process becomes: a script that waits
        # for any child must not reap (or wait for) the prune.
        proc.spawn_detached([sys.executable, "-m", "runner.lifecycle", str(cache.root)])
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def _build(
    prepared: Prepared,
    options: RunOptions,
    cache: Cache,
    installer: Installer,
    reporter: Reporter,
    *,
    background_bytecode: bool = False,
) -> Path:
    """Build the spec, from the lock's pinned artifacts when there is a matching lock."""
    spec = prepared.spec
    with contextlib.ExitStack() as stack:
        pinned_file = None
        if prepared.pinned is not None:
            import tempfile

            from runner import lockfile

            reporter.info(
                f"installing the {len(prepared.pinned)} pinned package(s) of the lock file"
            )
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="runner-pins-"))
            pinned_file = lockfile.write_pinned_file(prepared.pinned, tmp)
        try:
            return build(
                spec,
                cache,
                installer,
                reporter,
                offline=options.offline,
                refresh=options.refresh,
                pinned_file=pinned_file,
                background_bytecode=background_bytecode,
            )
        except InstallError as exc:
            if (
                pinned_file is not None
                and isinstance(exc, InstallFailed)
                and exc.diagnosis.problem is Problem.HASH_MISMATCH
            ):
                which = ", ".join(exc.diagnosis.packages) or "a locked package"
                raise LockfileError(
                    f"{which}: the downloaded artifact does not match the sha256 recorded in "
                    "the lock file; nothing was run",
                    hint="Someone changed a file on the index after it was locked, or the lock "
                    "was edited. Check the package named above; if the change is legitimate, "
                    f"run `runner lock {prepared.script.path}` again.",
                    details=exc.details,
                ) from None
            if options.offline:
                from runner.lockfile import describe_index

                raise type(exc)(
                    f"--offline: {exc.message} without the network (looked in: "
                    f"{describe_index(spec.index)}, with pip's configuration)",
                    hint="Run once without --offline to fetch the packages, or give a directory "
                    "holding them with --find-links DIR (or find-links in [tool.runner]).",
                    details=exc.details,
                ) from None
            raise


def environment_for(
    script: Script,
    options: RunOptions,
    cache: Cache,
    reporter: Reporter,
    *,
    background_bytecode: bool = False,
) -> tuple[Prepared, Path]:
    """The script's environment, found or built, with its alias written.

    Its bytecode is complete on return unless `background_bytecode` (`run`: the script
    starts while a background job compiles a large environment, `runner.bgcompile`)."""
    cache.ensure()
    prepared = prepare(script, options, cache)
    env_dir = ensure_environment(
        prepared, options, cache, reporter, background_bytecode=background_bytecode
    )
    if prepared.digest is not None:
        cache.write_alias(
            prepared.digest,
            env_dir,
            # The interpreter choice, the directories whose mtime moves if installed files
            # are deleted, and the manifest (a truncated one must not be trusted): the warm
            # path falls back to the cold path's checks when any of them changed.
            stat_paths=(
                *prepared.selection.stat_checks,
                *records.fingerprint_dirs(env_dir),
                str(env_dir / layout.MANIFEST_NAME),
            ),
            var_names=prepared.selection.var_checks,
            script=os.path.abspath(script.path),
            expires=prepared.alias_expires,
        )
    if os.path.lexists(env_dir / layout.BYTECODE_PENDING):
        from runner import bgcompile

        if background_bytecode:
            bgcompile.start_background(env_dir, cache, reporter)
        else:
            bgcompile.finish(env_dir, cache, reporter)
    return prepared, env_dir


def run(
    script_path: str,
    args: list[str],
    options: RunOptions,
    reporter: Reporter,
    cache: Cache,
    data: bytes | None = None,
) -> int:
    """Run a script in its environment (`data`: its bytes, if read already). On POSIX this
    does not return (exec)."""
    from runner import start

    script = load_script(script_path, data, reporter)
    for _attempt in range(3):
        _, env_dir = environment_for(script, options, cache, reporter, background_bytecode=True)
        lease = start.take_lease(str(env_dir))
        if lease is None:
            # Cleanup removed it between publish and lease: build again.
            options = replace(options, refresh=False)
            continue
        if os.name == "posix":
            start.exec_environment(str(env_dir), script.path, args, cache.config)
        return run_child(env_dir, script.path, args, cache.config.depth)
    raise RunnerError(
        f"the environment for {script_path} kept disappearing while starting it",
        hint="Another process is cleaning the cache continuously; stop it and try again.",
    )


def run_child(env_dir: Path, script: str, args: list[str], depth: int = 0) -> int:
    """Where exec is unavailable (Windows): run a child and pass its exit status through."""
    from runner import start

    python = layout.env_python(str(env_dir))
    child = subprocess.Popen(
        [python, start.script_argument(script), *args],
        env=start.script_environ(str(env_dir), depth),
    )
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            continue  # the console delivered Ctrl-C to the child too; let it decide


# --------------------------------------------------------------------------- the run command


def run_command(parsed: ParsedRun, config: Config, data: bytes | None = None) -> int:
    """`runner run` as the launcher parsed it (`data`: the script's bytes, where the launcher
    read them already)."""
    from runner import validate

    # Every value is checked before standard input is read or the cache touched.
    run_options = validate.run_options(RunOptions.from_values(parsed.values).with_config(config))
    reporter = Reporter(quiet=bool(parsed.values["quiet"]), verbose=bool(parsed.values["verbose"]))
    cache = Cache(config=config)
    script = resolve_script(parsed.script, cache, data)
    if script != parsed.script:
        data = None  # the stored copy of a pipe or of standard input
    from runner import remote  # a URL becomes its stored download; --sha256 pins the content

    local = remote.resolve(
        script,
        sha256=parsed.values.get("sha256"),  # type: ignore[arg-type]
        allow_insecure_http=bool(parsed.values.get("allow_insecure_http")),
        offline=run_options.offline,
        refresh=run_options.refresh,
        config=config,
        data=data,
    )
    if local != script:
        script, data = local, None
    return run(script, list(parsed.args), run_options, reporter, cache, data)


def check_depth(script: str, config: Config) -> None:
    """Refuse to start another nested runner launch once RUNNER_DEPTH reaches the limit.

    Every launch sets RUNNER_DEPTH one higher for the script it starts, so a script that
    starts itself through runner (its shebang, or a `runner run` on itself) is stopped here
    instead of nesting processes without end.
    """
    depth, limit = config.depth, config.max_depth
    if depth >= limit:
        raise ScriptError(
            f"{script}: runner launches are nested {depth} deep (RUNNER_DEPTH={depth}); "
            "the script seems to start itself through runner",
            hint="A script that runs itself with `runner run` (or execs itself through a "
            "`#!/usr/bin/env -S runner run` shebang) loops forever; make the call "
            "conditional. If the nesting is intended, raise RUNNER_MAX_DEPTH "
            f"(now {limit}).",
        )


def resolve_script(script: str, cache: Cache, data: bytes | None = None) -> str:
    """The file `runner run SCRIPT` runs: `-` (standard input) and scripts that are not
    regular files (pipes, FIFOs, process substitution) are read exactly once and stored in
    the cache by content; a regular file runs where it is."""
    check_depth(script, cache.config)
    if script == "-":
        return stdin_script(cache, sys.stdin.buffer.read())
    if data is None:
        try:
            st = os.stat(script)
        except OSError:
            return script  # load_script explains
        if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
            return script
        try:
            with open(script, "rb") as f:
                data = f.read()
        except OSError:
            return script
        return stdin_script(cache, data)
    try:
        regular = stat.S_ISREG(os.stat(script).st_mode)
    except OSError:
        regular = False
    return script if regular else stdin_script(cache, data)


def stdin_script(cache: Cache, data: bytes) -> str:
    """Store a script read from standard input (or a pipe) in the cache; return its path.

    The file is content-addressed (`<cache>/stdin/<sha256>.py`), so the same text always
    has the same path and its environment is chosen by its metadata like any other script.
    """
    from runner.fsutil import atomic_write_bytes

    cache.ensure()
    directory = cache.root / "stdin"
    path = directory / f"{sha256_hex(data)}.py"
    try:
        directory.mkdir(mode=0o755, exist_ok=True)
        try:
            if path.read_bytes() == data:
                os.utime(path)  # its mtime is its last use: prune removes it when unused
                return str(path)
        except FileNotFoundError:
            pass
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise CacheError(
            f"cannot store the script from standard input in {directory}: {exc.strerror}",
            hint="Check that the runner cache is writable, or save the script to a file.",
        ) from None
    return str(path)

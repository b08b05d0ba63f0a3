"""Authoring and integration commands: init, add, remove, python, sync."""

# No `from __future__ import annotations`: typer evaluates the commands' annotations, and
# the option types are imported from runner.cliopts inside register(), not at module level.

import contextlib
import hashlib
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from runner.errors import RunnerError, ScriptError, UsageError
from runner.fsutil import write_temp
from runner.redact import redact_text

PathArg = Annotated[str, typer.Argument(help="The script file.")]


# --------------------------------------------------------------------------- file writes


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ScriptError(
            f"script not found: {path}", hint=f"Create it first with `runner init {path}`."
        ) from None
    except IsADirectoryError:
        raise ScriptError(f"{path} is a directory, not a script") from None
    except OSError as exc:
        raise ScriptError(f"cannot read {path}: {exc.strerror}") from None


@contextlib.contextmanager
def edit_lock(path: str) -> Iterator[None]:
    """Hold a lock for one script file around a read-modify-write, so concurrent `add`,
    `remove` and `init` of the same file all land.

    The lock lives in the cache (`locks/edit-<digest>.lock`, keyed by the file's real path, so
    every name of the file meets on one lock). Where the cache cannot be used or cannot
    lock, the edit goes ahead unlocked, as before, with a note on stderr.
    """
    import warnings

    import filelock

    from runner.cache import Cache
    from runner.cliopts import config
    from runner.errors import CacheError

    real = os.path.realpath(path)
    cache = Cache(config=config())
    try:
        cache.ensure()
    except CacheError as exc:
        sys.stderr.write(f"runner: editing {path} without a lock ({exc.message})\n")
        yield
        return
    digest = hashlib.sha256(os.fsencode(real)).hexdigest()[:32]
    lock = filelock.FileLock(str(cache.locks / f"edit-{digest}.lock"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lock.acquire()
    except (OSError, NotImplementedError) as exc:
        sys.stderr.write(f"runner: editing {path} without a lock ({exc})\n")
        yield
        return
    try:
        yield
    finally:
        lock.release()


def _replace(path: str, data: bytes) -> None:
    """Write the script's new content (call it holding `edit_lock`).

    Normally an atomic replace that keeps the permission bits and group. The file is
    rewritten in place instead, keeping its inode, owner, group and mode, where replacing
    it would change what others see: it has other hard links (they would keep the old
    content), it belongs to another user (root editing it would take it over), its group
    cannot be kept, or its directory is not writable.
    """
    real = os.path.realpath(path)  # edit the target of a symlink, keep the link
    try:
        st = os.stat(real)
        if not _must_write_in_place(real, st):
            from runner.fsutil import replace_retrying

            tmp = write_temp(Path(real), data, mode=stat.S_IMODE(st.st_mode))
            try:
                if os.name == "posix" and os.stat(tmp).st_gid != st.st_gid:
                    os.chown(tmp, -1, st.st_gid)
                    os.chmod(tmp, stat.S_IMODE(st.st_mode))  # chown may clear set-id bits
                replace_retrying(tmp, real)
                return
            except PermissionError:
                pass  # the group cannot be kept: write in place below
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        _write_in_place(real, data)
    except OSError as exc:
        raise ScriptError(
            f"cannot write {path}: {exc.strerror}",
            hint="Check that the file and its directory are writable.",
        ) from None


def _must_write_in_place(real: str, st: os.stat_result) -> bool:
    if st.st_nlink > 1:
        return True
    if os.name == "posix" and st.st_uid != os.geteuid():
        return True
    return not os.access(os.path.dirname(real) or ".", os.W_OK | os.X_OK)


def _write_in_place(real: str, data: bytes) -> None:
    with open(real, "r+b") as f:
        f.write(data)
        f.truncate()
        f.flush()
        os.fsync(f.fileno())


def create_new(path: str, data: bytes, *, executable: bool) -> None:
    """Write a new file atomically; never replace an existing one (link(2) refuses)."""
    target = Path(path)
    if os.path.lexists(target):
        raise ScriptError(
            f"{path} already exists; not overwriting it",
            hint=f"Choose another name, or edit it with `runner add {path} REQ`.",
        )
    umask = os.umask(0)
    os.umask(umask)
    mode = (0o777 if executable else 0o666) & ~umask
    try:
        tmp = write_temp(target, data, mode=mode)
    except FileNotFoundError:
        raise ScriptError(
            f"cannot create {path}: the directory {target.parent} does not exist"
        ) from None
    except OSError as exc:
        raise ScriptError(f"cannot create {path}: {exc.strerror}") from None
    try:
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise ScriptError(f"{path} already exists; not overwriting it") from None
        except OSError:
            # No hard links here (some network and FUSE filesystems): exclusive create.
            with open(target, "xb") as f:
                f.write(data)
            os.chmod(target, mode)
    except FileExistsError:
        raise ScriptError(f"{path} already exists; not overwriting it") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


# --------------------------------------------------------------------------- commands

# For systems whose `env` has no -S (coreutils before 8.30): `sh` runs line 2, an `exec` of
# runner on this file; Python reads line 2 as a string and runs the rest itself.
PORTABLE_HEADER = "#!/bin/sh\n''''exec runner run \"$0\" \"$@\" # '''\n"


class _InitCommand(TyperCommand):
    """`--shebang` alone means the `env -S` form; `--shebang=portable` the sh form."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        cut = args.index("--") if "--" in args else len(args)
        args = ["--shebang=env" if a == "--shebang" else a for a in args[:cut]] + args[cut:]
        return super().parse_args(ctx, args)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""
    from runner.cliopts import (
        ExcludeNewerOpt,
        ExtraIndexOpt,
        FindLinksOpt,
        IndexUrlOpt,
        InstallerOpt,
        NoIndexOpt,
        OfflineOpt,
        PythonOpt,
        QuietOpt,
        RefreshOpt,
        VerboseOpt,
        WithOpt,
        config,
        run_options,
    )

    @app.command(cls=_InitCommand)
    def init(
        script: PathArg,
        python: Annotated[
            str | None,
            typer.Option(
                "--python", "-p", help="requires-python: 3.12 (meaning >=3.12) or a specifier."
            ),
        ] = None,
        dep: Annotated[
            list[str] | None, typer.Option("--dep", "-d", help="A dependency (repeatable).")
        ] = None,
        shebang: Annotated[
            str | None,
            typer.Option(
                "--shebang",
                metavar="[=portable]",
                help="Make it an executable command: #!/usr/bin/env -S runner run, or with "
                "=portable a #!/bin/sh header that needs no `env -S`.",
            ),
        ] = None,
    ) -> None:
        """Create a new script with a metadata block; never overwrites a file."""
        from runner.edit import new_script

        if shebang not in (None, "env", "portable"):
            raise UsageError(
                f"--shebang={shebang}: unknown form",
                hint="Use --shebang (#!/usr/bin/env -S runner run) or --shebang=portable.",
            )
        data = new_script(
            requires_python=python, dependencies=list(dep or []), shebang=shebang == "env"
        )
        if shebang == "portable":
            data = PORTABLE_HEADER.encode("ascii") + data
        with edit_lock(script):
            create_new(script, data, executable=shebang is not None)
        sys.stderr.write(f"runner: created {script}\n")

    @app.command()
    def add(
        script: PathArg,
        requirements: Annotated[
            list[str] | None, typer.Argument(help="Requirements such as 'requests>=2.31'.")
        ] = None,
        python: Annotated[
            str | None,
            typer.Option(
                "--python", "-p", help="Set requires-python: 3.12 (meaning >=3.12) or a specifier."
            ),
        ] = None,
    ) -> None:
        """Add dependencies to a script's block (a name already present is replaced)."""
        from runner import edit

        reqs = list(requirements or [])
        if not reqs and python is None:
            raise UsageError(
                "nothing to add",
                hint=f"Name requirements (runner add {script} 'rich>=13') or --python.",
            )
        edit.validate_requirements(reqs)
        if python is not None:
            edit.python_specifier(python)
        with edit_lock(script):
            data = _read(script)
            new = data
            if reqs:
                new = edit.add_requirements(new, reqs, script)
            if python is not None:
                new = edit.set_requires_python(new, python, script)
            if new != data:
                _replace(script, new)
        what = ", ".join(
            reqs + ([f"requires-python {edit.python_specifier(python)}"] if python else [])
        )
        sys.stderr.write(f"runner: {script}: set {redact_text(what)}\n")

    @app.command()
    def remove(
        script: PathArg,
        names: Annotated[list[str], typer.Argument(help="Names of the dependencies to remove.")],
    ) -> None:
        """Remove dependencies from a script's block."""
        from runner import edit

        with edit_lock(script):
            data = _read(script)
            new = edit.remove_requirements(data, list(names), script)
            _replace(script, new)
        sys.stderr.write(f"runner: {script}: removed {redact_text(', '.join(names))}\n")

    @app.command("python")
    def python_cmd(
        script: PathArg,
        python: PythonOpt = None,
        with_requirements: WithOpt = None,
        index_url: IndexUrlOpt = None,
        extra_index_urls: ExtraIndexOpt = None,
        find_links: FindLinksOpt = None,
        no_index: NoIndexOpt = False,
        exclude_newer: ExcludeNewerOpt = None,
        offline: OfflineOpt = False,
        installer: InstallerOpt = None,
        quiet: QuietOpt = False,
        verbose: VerboseOpt = False,
    ) -> None:
        """Print the interpreter of the script's environment (building it if needed)."""
        from runner import api, layout
        from runner.cache import Cache
        from runner.report import Reporter

        options = run_options(
            python=python,
            with_requirements=with_requirements,
            index_url=index_url,
            extra_index_urls=extra_index_urls,
            find_links=find_links,
            no_index=no_index,
            exclude_newer=exclude_newer,
            offline=offline,
            installer=installer,
        )
        reporter = Reporter(quiet=quiet, verbose=verbose)
        cache = Cache(config=config())
        _, env_dir = api.environment_for(
            api.load_script(script, reporter=reporter), options, cache, reporter
        )
        print(layout.env_python(str(env_dir)))

    @app.command()
    def sync(
        scripts: Annotated[list[str], typer.Argument(help="Scripts whose environments to build.")],
        python: PythonOpt = None,
        with_requirements: WithOpt = None,
        index_url: IndexUrlOpt = None,
        extra_index_urls: ExtraIndexOpt = None,
        find_links: FindLinksOpt = None,
        no_index: NoIndexOpt = False,
        exclude_newer: ExcludeNewerOpt = None,
        refresh: RefreshOpt = False,
        offline: OfflineOpt = False,
        installer: InstallerOpt = None,
        json_: Annotated[
            bool, typer.Option("--json", help="Print the paths as JSON on stdout.")
        ] = False,
        quiet: QuietOpt = False,
        verbose: VerboseOpt = False,
    ) -> None:
        """Build the scripts' environments without running anything (before a batch)."""
        import json

        from runner import api, layout
        from runner.cache import Cache
        from runner.report import Reporter

        options = run_options(
            python=python,
            with_requirements=with_requirements,
            index_url=index_url,
            extra_index_urls=extra_index_urls,
            find_links=find_links,
            no_index=no_index,
            exclude_newer=exclude_newer,
            refresh=refresh,
            offline=offline,
            installer=installer,
        )
        reporter = Reporter(quiet=quiet, verbose=verbose)
        cache = Cache(config=config())
        # Read every script first: a typo in the last one should fail before any build.
        loaded = [api.load_script(s, reporter=reporter) for s in scripts]
        # A failed build does not stop the others: a batch learns every problem at once.
        results: list[dict[str, str]] = []
        failures: list[RunnerError] = []
        for script in loaded:
            try:
                prepared, env_dir = api.environment_for(script, options, cache, reporter)
            except RunnerError as exc:
                failures.append(exc)
                results.append({"script": script.path, "error": redact_text(exc.message)})
                if not json_:
                    reporter.warn(f"{script.path}: {exc.message}")
                continue
            results.append(
                {
                    "script": script.path,
                    "python": layout.env_python(str(env_dir)),
                    "environment": str(env_dir),
                    "key": prepared.spec.key,
                }
            )
            if not json_:
                reporter.info(f"{script.path}: {env_dir}")
        if json_:
            print(json.dumps(results, indent=2))
        if failures:
            raise failures[0]

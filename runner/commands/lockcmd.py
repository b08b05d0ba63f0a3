"""`runner lock`: write or check the PEP 751 lock file beside a script."""

from __future__ import annotations

import os
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""

    @app.command()
    def lock(
        script: Annotated[str, typer.Argument(help="The script whose dependencies to lock.")],
        check: Annotated[
            bool, typer.Option("--check", help="Only report whether the lock file is current.")
        ] = False,
        python: Annotated[
            str | None,
            typer.Option("--python", "-p", help="Interpreter to lock for (default: as `run`)."),
        ] = None,
        index_url: Annotated[
            str | None, typer.Option("--index-url", help="Base URL of the package index.")
        ] = None,
        extra_index_url: Annotated[
            list[str] | None,
            typer.Option("--extra-index-url", help="Additional index URL (repeatable)."),
        ] = None,
        find_links: Annotated[
            list[str] | None,
            typer.Option("--find-links", help="Directory or URL with distributions."),
        ] = None,
        no_index: Annotated[
            bool, typer.Option("--no-index", help="Ignore package indexes.")
        ] = False,
        exclude_newer: Annotated[
            str | None,
            typer.Option("--exclude-newer", help="Only use distributions uploaded before this."),
        ] = None,
        offline: Annotated[
            bool,
            typer.Option("--offline", envvar="RUNNER_OFFLINE", help="Never touch the network."),
        ] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only report errors.")] = False,
        verbose: Annotated[
            bool, typer.Option("--verbose", "-v", help="Show pip's output.")
        ] = False,
    ) -> None:
        """Resolve SCRIPT's dependencies and write pylock.<name>.toml beside it (PEP 751).

        The name is the script's file name without `.py`, other dots turned into `-`:
        tool.py -> pylock.tool.toml. `runner run` installs exactly what the lock pins while
        it matches the script's block; `--check` exits 107 when it is missing or stale.
        """
        from runner import fastpath, lockfile, settings
        from runner.api import RunOptions, load_script
        from runner.cache import Cache
        from runner.errors import LockfileError
        from runner.interpreters import select
        from runner.report import Reporter

        reporter = Reporter(quiet=quiet, verbose=verbose)
        loaded = load_script(script)
        lock_path = fastpath.lock_path_for(script)
        cache = Cache()
        if check:
            existing = lockfile.load_lock(lock_path)
            if existing is None:
                raise LockfileError(
                    f"{script} has no lock file ({lock_path})",
                    hint=f"Create it with `runner lock {script}`.",
                )
            selection = select(loaded.metadata.requires_python, python, cache.root)
            why = existing.mismatch(loaded.metadata, selection.interpreter)
            if why is not None:
                raise LockfileError(
                    f"{lock_path} is out of date: {why}",
                    hint=f"Update it with `runner lock {script}`.",
                )
            reporter.info(f"{lock_path} is up to date")
            return
        cache.ensure()
        options = RunOptions(
            python=python,
            index_url=index_url,
            extra_index_urls=tuple(extra_index_url or ()),
            find_links=tuple(find_links or ()),
            no_index=no_index,
            exclude_newer=exclude_newer,
            offline=offline,
        )
        selection = select(loaded.metadata.requires_python, python, cache.root)
        index, cutoff, _ = settings.index_and_cutoff(
            loaded.metadata, script, loaded.directory, options
        )
        written = lockfile.make_lock(
            loaded.metadata,
            script,
            selection.interpreter,
            index,
            exclude_newer=cutoff,
            offline=offline,
            log_path=cache.log_path("lock"),
            reporter=reporter,
        )
        reporter.info(f"wrote {os.path.relpath(written)}")

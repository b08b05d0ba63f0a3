"""`runner lock`: write or check the PEP 751 lock file beside a script."""

# No `from __future__ import annotations`: typer evaluates the command's annotations, and
# the option types are imported from runner.cliopts inside register(), not at module level.

import os
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""
    from runner.cliopts import (
        ExcludeNewerOpt,
        ExtraIndexOpt,
        FindLinksOpt,
        IndexUrlOpt,
        NoIndexOpt,
        OfflineOpt,
        PythonOpt,
        QuietOpt,
        VerboseOpt,
        config,
        run_options,
    )

    @app.command()
    def lock(
        script: Annotated[str, typer.Argument(help="The script whose dependencies to lock.")],
        check: Annotated[
            bool, typer.Option("--check", help="Only report whether the lock file is current.")
        ] = False,
        python: PythonOpt = None,
        index_url: IndexUrlOpt = None,
        extra_index_urls: ExtraIndexOpt = None,
        find_links: FindLinksOpt = None,
        no_index: NoIndexOpt = False,
        exclude_newer: ExcludeNewerOpt = None,
        offline: OfflineOpt = False,
        quiet: QuietOpt = False,
        verbose: VerboseOpt = False,
    ) -> None:
        """Resolve SCRIPT's dependencies and write pylock.<name>.toml beside it (PEP 751).

        The name is the script's file name without `.py`, other dots turned into `-`:
        tool.py -> pylock.tool.toml. `runner run` installs exactly what the lock pins while
        it matches the script's block; `--check` exits 107 when it is missing or stale.
        """
        from runner import layout, lockfile, settings
        from runner.api import load_script
        from runner.cache import Cache
        from runner.errors import LockfileError
        from runner.interpreters import select
        from runner.report import Reporter

        options = run_options(  # validated before anything else happens
            python=python,
            index_url=index_url,
            extra_index_urls=extra_index_urls,
            find_links=find_links,
            no_index=no_index,
            exclude_newer=exclude_newer,
            offline=offline,
        )
        reporter = Reporter(quiet=quiet, verbose=verbose)
        loaded = load_script(script, reporter=reporter)
        lock_path = layout.lock_path_for(script)
        cache = Cache(config=config())
        if check:
            existing = lockfile.load_lock(lock_path)
            if existing is None:
                raise LockfileError(
                    f"{script} has no lock file ({lock_path})",
                    hint=f"Create it with `runner lock {script}`.",
                )
            selection = select(
                loaded.metadata.requires_python,
                options.python,
                cache.root,
                env_choice=cache.config.python,
            )
            why = existing.mismatch(loaded.metadata, selection.interpreter)
            if why is not None:
                raise LockfileError(
                    f"{lock_path} is out of date: {why}",
                    hint=f"Update it with `runner lock {script}`.",
                )
            reporter.info(f"{lock_path} is up to date")
            return
        cache.ensure()
        selection = select(
            loaded.metadata.requires_python,
            options.python,
            cache.root,
            env_choice=cache.config.python,
        )
        index, cutoff, _ = settings.index_and_cutoff(
            loaded.metadata, script, loaded.directory, options
        )
        try:
            written = lockfile.make_lock(
                loaded.metadata,
                script,
                selection.interpreter,
                index,
                exclude_newer=cutoff,
                offline=options.offline,
                log_path=cache.log_path("lock"),
                reporter=reporter,
            )
        except OSError as exc:  # a full disk or no permission in the cache, TMPDIR, ...
            raise lockfile.write_error(lock_path, exc, "resolving") from None
        reporter.info(f"wrote {os.path.relpath(written)}")

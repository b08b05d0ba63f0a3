"""Scripts as commands: install, uninstall, list, and show (what runner would run, and how)."""

# No `from __future__ import annotations`: typer evaluates the commands' annotations, and
# the option types are imported from runner.cli inside register(), not at module level.

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from runner.errors import ScriptError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


def _script_for(arg: str, cache: Any, **fetch: Any) -> tuple[str, str | None, str | None]:
    """(local path, source URL, installed command name) for a file, URL or command name."""
    from runner import installs, remote

    if remote.is_url(arg):
        return remote.resolve(arg, config=cache.config, **fetch), remote.public_url(arg), None
    if not os.path.exists(arg) and os.sep not in arg:
        found = installs.read(cache.root, arg)
        if found is not None:
            source = found.source if remote.is_url(found.source) else None
            return found.script, source, found.name
    return remote.resolve(arg, sha256=fetch.get("sha256"), config=cache.config), None, None


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""
    from runner.cliopts import (
        ExcludeNewerOpt,
        ExtraIndexOpt,
        FindLinksOpt,
        IndexUrlOpt,
        InsecureHttpOpt,
        InstallerOpt,
        LockedOpt,
        NoIndexOpt,
        OfflineOpt,
        PythonOpt,
        QuietOpt,
        Sha256Opt,
        VerboseOpt,
        WithOpt,
        config,
        run_options,
    )

    @app.command()
    def install(
        script: Annotated[str, typer.Argument(metavar="SCRIPT|URL", help="The script to install.")],
        name: Annotated[
            str | None,
            typer.Option("--name", "-n", help="Command name (default: the file name's stem)."),
        ] = None,
        force: Annotated[
            bool,
            typer.Option("--force", "-f", help="Replace the command (a URL is fetched again)."),
        ] = False,
        sha256: Sha256Opt = None,
        allow_insecure_http: InsecureHttpOpt = False,
        python: PythonOpt = None,
        with_requirements: WithOpt = None,
        index_url: IndexUrlOpt = None,
        extra_index_urls: ExtraIndexOpt = None,
        find_links: FindLinksOpt = None,
        no_index: NoIndexOpt = False,
        exclude_newer: ExcludeNewerOpt = None,
        locked: LockedOpt = False,
        offline: OfflineOpt = False,
        installer: InstallerOpt = None,
        quiet: QuietOpt = False,
        verbose: VerboseOpt = False,
    ) -> None:
        """Install a script (a file or URL) as a command in ~/.local/bin (RUNNER_BIN_DIR)."""
        from runner import installs
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
            locked=locked,
            offline=offline,
            installer=installer,
        )
        reporter = Reporter(quiet=quiet, verbose=verbose)
        cache = Cache(config=config())
        record = installs.install(
            script,
            options,
            reporter,
            cache=cache,
            name=name,
            sha256=sha256,
            allow_insecure_http=allow_insecure_http,
            force=force,
        )
        reporter.info(f"installed {record.name} -> {record.launcher} (sha256 {record.sha256})")
        directory = os.path.dirname(record.launcher)
        default_dir = installs.bin_dir(cache.config)
        if not installs.on_path(default_dir) and os.path.realpath(directory) == (
            os.path.realpath(default_dir)
        ):
            reporter.warn(
                f'{directory} is not on PATH: add it (e.g. export PATH="{directory}:$PATH" '
                f"in your shell's profile) or run {record.launcher} by its path"
            )

    @app.command()
    def uninstall(
        names: Annotated[list[str], typer.Argument(metavar="NAME...", help="Installed commands.")],
    ) -> None:
        """Remove installed commands (their launchers and stored scripts)."""
        from runner import installs
        from runner.cache import Cache

        cache = Cache(config=config())
        missing = []
        for name in names:
            launcher_gone, copy_gone, foreign = installs.remove(cache, name)
            if foreign:
                sys.stderr.write(f"runner: left {foreign} alone: runner did not write it\n")
            if launcher_gone or copy_gone:
                sys.stderr.write(f"runner: uninstalled {name}\n")
            elif not foreign:
                missing.append(name)
        if missing:
            raise ScriptError(
                f"no installed command named {', '.join(missing)}",
                hint="`runner list` shows the installed commands.",
            )

    @app.command("list")
    def list_cmd(json_: JsonOpt = False) -> None:
        """List installed commands: source, sha256, environment."""
        from runner import api, installs
        from runner.cache import Cache
        from runner.errors import RunnerError

        cache = Cache(config=config())
        rows: list[dict[str, Any]] = []
        for record in installs.list_installed(cache.root):
            row: dict[str, Any] = dict(record.to_json())
            row["launcher_present"] = installs.is_ours(Path(record.launcher))
            try:
                options = installs.options_from_args(record.run_args)
                prepared = api.prepare(api.load_script(record.script), options, cache)
                env = cache.lookup(prepared.spec.key)
                row["environment"] = {
                    "key": prepared.spec.key,
                    "path": str(env) if env else None,
                    "exists": env is not None,
                }
            except RunnerError as exc:
                row["environment"] = {"error": exc.message}
            rows.append(row)
        if json_:
            print(json.dumps(rows, indent=2))
            return
        if not rows:
            sys.stderr.write("runner: no commands installed (`runner install SCRIPT|URL`)\n")
            return
        for row in rows:
            env = row["environment"]
            if "error" in env:
                env_text = f"error: {env['error']}"
            else:
                env_text = f"{env['key']} ({'built' if env['exists'] else 'not built'})"
            launcher = row["launcher"] + ("" if row["launcher_present"] else " (missing)")
            print(f"{row['name']}\n  source       {row['source']}")
            print(f"  sha256       {row['sha256']}\n  launcher     {launcher}")
            print(f"  environment  {env_text}")

    @app.command()
    def show(
        script: Annotated[
            str, typer.Argument(metavar="SCRIPT|URL|NAME", help="A file, URL or installed command.")
        ],
        build: Annotated[
            bool, typer.Option("--build", help="Build the environment if it does not exist.")
        ] = False,
        json_: JsonOpt = False,
        sha256: Sha256Opt = None,
        allow_insecure_http: InsecureHttpOpt = False,
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
        """Show how a script would run: block, interpreter, environment, lock, packages."""
        from runner import api, describe
        from runner.cache import Cache
        from runner.report import Reporter

        cache = Cache(config=config())
        path, source, command = _script_for(
            script,
            cache,
            sha256=sha256,
            allow_insecure_http=allow_insecure_http,
            offline=offline or cache.config.offline,
        )
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
        if command is not None:
            from runner import installs

            record = installs.read(cache.root, command)
            given = (python, with_requirements, index_url, extra_index_urls, find_links)
            if record is not None and not any((*given, no_index, exclude_newer)):
                options = installs.options_from_args(record.run_args).with_config(cache.config)
        loaded = api.load_script(path)
        if build:
            api.environment_for(loaded, options, cache, Reporter(quiet=quiet, verbose=verbose))
        info = describe.describe(loaded, options, cache, source=source, command=command)
        if json_:
            print(json.dumps(info, indent=2))
        else:
            sys.stdout.write(describe.render(info))

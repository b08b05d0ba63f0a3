"""The command line: parse, call the core, render. Runner errors become messages + exit codes."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from runner import __version__
from runner.errors import RunnerError, UsageError
from runner.report import Reporter

if TYPE_CHECKING:
    from runner.api import RunOptions

app = typer.Typer(
    name="runner",
    help="Run Python scripts with inline (PEP 723) metadata in cached, isolated environments.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Options after the script path belong to the script: stop option parsing at the first
# positional argument and keep unknown options as arguments.
PASSTHROUGH = {"allow_interspersed_args": False, "ignore_unknown_options": True}

PythonOpt = Annotated[
    str | None,
    typer.Option(
        "--python", "-p", help="Interpreter: a path, a version like 3.12, or a specifier."
    ),
]
WithOpt = Annotated[
    list[str] | None, typer.Option("--with", help="Extra requirement for this run (repeatable).")
]
IndexUrlOpt = Annotated[
    str | None, typer.Option("--index-url", help="Base URL of the package index.")
]
ExtraIndexOpt = Annotated[
    list[str] | None, typer.Option("--extra-index-url", help="Additional index URL (repeatable).")
]
FindLinksOpt = Annotated[
    list[str] | None, typer.Option("--find-links", help="Directory or URL with distributions.")
]
NoIndexOpt = Annotated[bool, typer.Option("--no-index", help="Ignore package indexes.")]
ExcludeNewerOpt = Annotated[
    str | None,
    typer.Option("--exclude-newer", help="Only use distributions uploaded before this time."),
]
LockedOpt = Annotated[
    bool, typer.Option("--locked", help="Require an up-to-date pylock file beside the script.")
]
RefreshOpt = Annotated[
    bool,
    typer.Option("--refresh", "--upgrade", help="Build anew with the newest allowed versions."),
]
OfflineOpt = Annotated[
    bool, typer.Option("--offline", envvar="RUNNER_OFFLINE", help="Never touch the network.")
]
InstallerOpt = Annotated[
    str | None,
    typer.Option("--installer", envvar="RUNNER_INSTALLER", help="pip, uv or auto."),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only report errors.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show the installer's output.")]


def run_options(
    *,
    python: str | None = None,
    with_: list[str] | None = None,
    index_url: str | None = None,
    extra_index_url: list[str] | None = None,
    find_links: list[str] | None = None,
    no_index: bool = False,
    exclude_newer: str | None = None,
    locked: bool = False,
    refresh: bool = False,
    offline: bool = False,
    installer: str | None = None,
) -> RunOptions:
    """The core's options from the CLI's (shared by run, python and sync)."""
    from runner.api import RunOptions

    return RunOptions(
        python=python,
        with_requirements=tuple(with_ or ()),
        index_url=index_url,
        extra_index_urls=tuple(extra_index_url or ()),
        find_links=tuple(find_links or ()),
        no_index=no_index,
        exclude_newer=exclude_newer,
        locked=locked,
        refresh=refresh,
        offline=offline,
        installer=installer,
    )


@app.command(context_settings=PASSTHROUGH)
def run(
    script: Annotated[
        str,
        typer.Argument(metavar="SCRIPT", help="The script to run ('-' reads standard input)."),
    ],
    args: Annotated[
        list[str] | None, typer.Argument(metavar="[ARGS]...", help="Arguments for the script.")
    ] = None,
    python: PythonOpt = None,
    with_: WithOpt = None,
    index_url: IndexUrlOpt = None,
    extra_index_url: ExtraIndexOpt = None,
    find_links: FindLinksOpt = None,
    no_index: NoIndexOpt = False,
    exclude_newer: ExcludeNewerOpt = None,
    locked: LockedOpt = False,
    refresh: RefreshOpt = False,
    offline: OfflineOpt = False,
    installer: InstallerOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run SCRIPT in an environment that satisfies its inline metadata."""
    import os

    from runner import api

    if script.startswith("-") and script != "-" and not os.path.exists(script):
        # Unknown options reach us as the script (the script's own options must pass).
        raise UsageError(
            f"no such option: {script}",
            hint="runner's options go before the script (`runner run --help` lists them); "
            f"for a file named {script}, write ./{script}.",
        )

    options = run_options(
        python=python,
        with_=with_,
        index_url=index_url,
        extra_index_url=extra_index_url,
        find_links=find_links,
        no_index=no_index,
        exclude_newer=exclude_newer,
        locked=locked,
        refresh=refresh,
        offline=offline,
        installer=installer,
    )
    reporter = Reporter(quiet=quiet, verbose=verbose)
    from runner.commands.authoring import resolve_run_script  # `-` (stdin), nesting depth

    script = resolve_run_script(script)
    raise typer.Exit(api.run(script, list(args or []), options, reporter))


@app.command()
def version() -> None:
    """Print runner's version."""
    print(__version__)


def _print_version(value: bool) -> None:
    if value:
        print(__version__)
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", is_eager=True, callback=_print_version, help="Print the version."
        ),
    ] = False,
) -> None:
    """Run Python scripts with inline (PEP 723) metadata in cached, isolated environments."""


def _register_commands() -> None:
    import importlib

    from runner.commands import MODULES

    for name in MODULES:
        importlib.import_module(f"runner.commands.{name}").register(app)


_register_commands()


def render_error(exc: RunnerError) -> None:
    lines = [f"runner: error: {exc.message}"]
    if exc.details:
        lines += ["  " + line for line in exc.details.rstrip().splitlines()]
    if exc.hint:
        lines.append(f"runner: hint: {exc.hint}")
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


def fail(exc: RunnerError) -> NoReturn:
    render_error(exc)
    raise SystemExit(exc.exit_code)


def main() -> int:
    """Run the CLI; runner's own failures become a message and a documented exit code."""
    try:
        # Without standalone mode click returns a command's `Exit` status instead of exiting.
        status = app(prog_name="runner", standalone_mode=False)
    except RunnerError as exc:
        render_error(exc)
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        sys.stderr.write("runner: aborted\n")
        return 130
    except KeyboardInterrupt:
        sys.stderr.write("runner: interrupted\n")
        return 130
    except Exception as exc:
        # click's usage errors: show them the way click would, with its exit code.
        show = getattr(exc, "show", None)
        if callable(show) and hasattr(exc, "exit_code"):
            show()
            return int(exc.exit_code)
        raise
    return status if isinstance(status, int) else 0

"""The command line: parse, call the core, render. Runner errors become messages + exit codes."""

from __future__ import annotations

import sys
from typing import Annotated, NoReturn

import typer

from runner import __version__, options
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
    RefreshOpt,
    Sha256Opt,
    VerboseOpt,
    WithOpt,
    config,
)
from runner.errors import RunnerError, UsageError, format_error

app = typer.Typer(
    name="runner",
    help="Run Python scripts with inline (PEP 723) metadata in cached, isolated environments.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Options after the script path belong to the script: stop option parsing at the first
# positional argument and keep unknown options as arguments.
PASSTHROUGH = {"allow_interspersed_args": False, "ignore_unknown_options": True}


@app.command(context_settings=PASSTHROUGH)
def run(
    script: Annotated[
        str,
        typer.Argument(
            metavar="SCRIPT", help="The script: a file, an https:// URL, or '-' (standard input)."
        ),
    ],
    args: Annotated[
        list[str] | None, typer.Argument(metavar="[ARGS]...", help="Arguments for the script.")
    ] = None,
    python: PythonOpt = None,
    with_requirements: WithOpt = None,
    index_url: IndexUrlOpt = None,
    extra_index_urls: ExtraIndexOpt = None,
    find_links: FindLinksOpt = None,
    no_index: NoIndexOpt = False,
    exclude_newer: ExcludeNewerOpt = None,
    locked: LockedOpt = False,
    refresh: RefreshOpt = False,
    offline: OfflineOpt = False,
    installer: InstallerOpt = None,
    sha256: Sha256Opt = None,
    allow_insecure_http: InsecureHttpOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run SCRIPT (a file, a URL, or '-') in an environment that satisfies its inline metadata.

    The console script reads `run` itself (runner.launcher, without typer); this command
    serves `runner run --help` and reads the same table of options.
    """
    import os

    from runner import api

    if script.startswith("-") and script != "-" and not os.path.exists(script):
        # Unknown options reach us as the script (the script's own options must pass).
        raise UsageError(
            f"no such option: {script}",
            hint="runner's options go before the script (`runner run --help` lists them); "
            f"for a file named {script}, write ./{script}.",
        )
    values: dict[str, object] = {o.name: o.empty() for o in options.RUN_OPTIONS}
    given = {
        "python": python,
        "with_requirements": with_requirements,
        "index_url": index_url,
        "extra_index_urls": extra_index_urls,
        "find_links": find_links,
        "no_index": no_index,
        "exclude_newer": exclude_newer,
        "locked": locked,
        "refresh": refresh,
        "offline": offline,
        "installer": installer,
        "sha256": sha256,
        "allow_insecure_http": allow_insecure_http,
        "quiet": quiet,
        "verbose": verbose,
    }
    values.update(
        {k: tuple(v) if isinstance(v, list) else v for k, v in given.items() if v is not None}
    )
    parsed = options.ParsedRun(values, script, list(args or []))
    raise typer.Exit(api.run_command(parsed, config()))


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
    from runner.redact import redact_text

    # Messages quote what the user typed: a URL in it may carry a password.
    sys.stderr.write(redact_text(format_error(exc)))
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

"""The CLI's side of the run options table: typer options declared from `runner.options`,
and the settings value the commands share (typer; not on the run path)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any

import typer

from runner import options
from runner.config import Config

if TYPE_CHECKING:
    from runner.api import RunOptions


def _option(name: str, *, help: str | None = None) -> Any:
    """The typer option for one entry of the run options table (`runner.options`)."""
    option = options.BY_NAME[name]
    return typer.Option(*option.flags, help=help or option.help, metavar=option.metavar or None)


# Every run option, declared from the one table; commands take the subset they need.
PythonOpt = Annotated[str | None, _option("python")]
WithOpt = Annotated[list[str] | None, _option("with_requirements")]
IndexUrlOpt = Annotated[str | None, _option("index_url")]
ExtraIndexOpt = Annotated[list[str] | None, _option("extra_index_urls")]
FindLinksOpt = Annotated[list[str] | None, _option("find_links")]
NoIndexOpt = Annotated[bool, _option("no_index")]
ExcludeNewerOpt = Annotated[str | None, _option("exclude_newer")]
LockedOpt = Annotated[bool, _option("locked")]
RefreshOpt = Annotated[bool, _option("refresh")]
OfflineOpt = Annotated[bool, _option("offline")]
InstallerOpt = Annotated[str | None, _option("installer")]
Sha256Opt = Annotated[str | None, _option("sha256")]
InsecureHttpOpt = Annotated[bool, _option("allow_insecure_http")]
QuietOpt = Annotated[bool, _option("quiet")]
VerboseOpt = Annotated[bool, _option("verbose")]


def config() -> Config:
    """The settings value, built once from the environment (RUNNER_* variables)."""
    return _config()


@functools.cache
def _config() -> Config:
    return Config.from_environ()


def run_options(**values: object) -> RunOptions:
    """The core's options from a command's table options (keyword names are the table's
    names; lists become tuples), with RUNNER_OFFLINE / RUNNER_INSTALLER filled in."""
    from runner.api import RunOptions
    from runner.validate import run_options as validated

    given = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if v is not None}
    # Checked before the command does anything: a bad value is a usage error (exit 2).
    return validated(RunOptions.from_values(given).with_config(config()))

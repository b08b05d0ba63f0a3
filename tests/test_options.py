"""The one table of run options: the launcher and the CLI read every argument list alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from runner import api, cli, options
from runner.api import RunOptions
from runner.config import Config
from runner.values import fields


def test_run_options_fields_are_the_tables_environment_options() -> None:
    assert [f.name for f in fields(RunOptions)] == list(options.ENV_FIELDS)


def test_every_command_declares_the_tables_spellings() -> None:
    """The typer options of run/sync/python/lock are the table's (flags and help)."""
    import typer.main

    group = typer.main.get_group(cli.app)
    by_flags = {tuple(o.flags): o for o in options.RUN_OPTIONS}
    for name in ("run", "sync", "python", "lock"):
        command = group.commands[name]
        seen = 0
        for param in command.params:
            flags = tuple(param.opts + param.secondary_opts)
            if flags in by_flags:
                seen += 1
                assert param.help == by_flags[flags].help, (name, flags)
                assert param.multiple == by_flags[flags].multiple, (name, flags)
                assert (not param.is_flag) == by_flags[flags].takes_value, (name, flags)  # type: ignore[attr-defined]
        assert seen >= 8, name


VALUE_SPELLINGS = st.sampled_from(
    ["3.12", "venv/bin/python", "~/py", "pypy3", "rich>=13", "https://i.invalid/simple", "w", ""]
)


@st.composite
def argument_lists(draw: st.DrawFn) -> list[str]:
    argv: list[str] = []
    for option in draw(st.lists(st.sampled_from(options.RUN_OPTIONS), max_size=6)):
        if option.takes_value:
            value = draw(VALUE_SPELLINGS)
            flag = draw(st.sampled_from(option.flags))
            form = draw(
                st.sampled_from(
                    ["separate", "equals"] if flag.startswith("--") else ["separate", "attached"]
                )
            )
            if form == "separate":
                argv += [flag, value]
            elif form == "equals":
                argv.append(f"{flag}={value}")
            elif value:
                argv.append(flag + value)
            else:
                argv += [flag, value]
        else:
            argv.append(draw(st.sampled_from(option.flags)))
    if draw(st.booleans()):
        argv.append("--")
    argv.append(draw(st.sampled_from(["s.py", "dir/s.py", "-"])))
    argv += draw(st.lists(st.sampled_from(["a", "-p", "--with", "x", "--"]), max_size=3))
    return argv


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(argv=argument_lists())
def test_launcher_and_cli_read_run_alike(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    seen: list[Any] = []

    def capture(parsed: options.ParsedRun, config: Config, data: bytes | None = None) -> int:
        seen.append(parsed)
        return 0

    monkeypatch.setattr(api, "run_command", capture)
    result = CliRunner().invoke(cli.app, ["run", *argv])
    launcher_view = options.parse_run(argv)
    assert isinstance(launcher_view, options.ParsedRun), argv
    assert result.exit_code == 0, (argv, result.output)
    (cli_view,) = seen
    assert (cli_view.script, list(cli_view.args)) == (
        launcher_view.script,
        list(launcher_view.args),
    )
    assert cli_view.values == launcher_view.values
    # And both select the same environment.
    assert options.selection_pairs(cli_view.values) == options.selection_pairs(launcher_view.values)


def test_a_bare_python_name_is_never_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--python pypy3` with a file ./pypy3 present: both readers take it as a command."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pypy3").write_text("#!/bin/sh\n")
    parsed = options.parse_run(["--python", "pypy3", "s.py"])
    assert isinstance(parsed, options.ParsedRun)
    assert options.selection_pairs(parsed.values) == [("python", "pypy3")]
    assert not options.is_path_value("pypy3")
    assert options.is_path_value("./pypy3") and options.is_path_value("~/py")

"""The project's own promises: CI runs exactly the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", readme, re.S)
    test_commands = [b for b in blocks if "pytest" in b]
    assert len(test_commands) == 1, blocks
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_commands[0] in ci


def test_readme_install_command_runs_an_example() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", readme, re.S)
    install = [b for b in blocks if "runner run examples/" in b]
    assert len(install) == 1
    example = install[0].split("runner run ", 1)[1].split()[0]
    assert (ROOT / example).is_file()


def test_only_the_settings_value_reads_runner_variables() -> None:
    """RUNNER_* variables are read once, into runner.config.Config; the rest takes it."""
    offenders = []
    for path in sorted((ROOT / "runner").rglob("*.py")):
        if path.name == "config.py":
            continue
        text = path.read_text()
        for needle in ('environ.get("RUNNER_', 'environ["RUNNER_', 'getenv("RUNNER_'):
            if needle in text:
                offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert offenders == []
